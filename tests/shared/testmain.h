// QTEST_GUILESS_MAIN with a choice of event dispatcher for the main thread
// (eventdispatcherchoice.h), so that one suite checks the server on each dispatcher:
// qtnotif_add_test(... EPOLL) runs it again as <name>_epoll (tests/CMakeLists.txt).
#pragma once

#include "eventdispatcherchoice.h"

#include <QtCore/QCoreApplication>
#include <QtTest/QTest>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace QtNotifTest {

// Registered with atexit() at the start of main(), before Qt registers the destructors of its
// global statics, this runs after them and before LeakSanitizer's check (registered when the
// process started). Qt joins some of its threads there, QHostInfo's lookup pool among them
// (a test that connects to "localhost" starts one), and such a thread may still be ending when
// the check runs, holding the last pointer to its QThreadData: a leak reported now and then.
// Waiting until the thread is gone makes the check see the process as it ends.
inline void waitForOtherThreadsAtExit()
{
#ifdef Q_OS_LINUX
    using namespace std::chrono_literals;
    const auto threads = [] {
        std::error_code error;
        const std::filesystem::directory_iterator tasks("/proc/self/task", error);
        return error ? 1 : std::distance(begin(tasks), end(tasks));
    };
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (threads() > 1) {
        if (std::chrono::steady_clock::now() > deadline) {
            std::fprintf(stderr, "%ld threads besides the main one still run at exit\n",
                         long(threads() - 1));
            return;
        }
        std::this_thread::sleep_for(1ms);
    }
#endif
}

} // namespace QtNotifTest

#define QTNOTIF_TEST_MAIN(TestObject) \
    int main(int argc, char *argv[]) \
    { \
        std::atexit(QtNotifTest::waitForOtherThreadsAtExit); \
        QtNotifTest::chooseEventDispatcher(); \
        QCoreApplication app(argc, argv); \
        TestObject tc; \
        QTEST_SET_MAIN_SOURCE_PATH \
        return QTest::qExec(&tc, argc, argv); \
    }
