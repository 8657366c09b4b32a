// QTEST_GUILESS_MAIN with a choice of event dispatcher for the main thread:
// QTNOTIF_TEST_EVENT_DISPATCHER=epoll runs it on QtNotif::EpollEventDispatcher, so that one suite
// checks the server on each dispatcher (tests/CMakeLists.txt, qtnotif_add_test(... EPOLL)).
#pragma once

#include <QtNotif/epolleventdispatcher.h>

#include <QtCore/QCoreApplication>
#include <QtTest/QTest>

namespace QtNotifTest {

inline void chooseEventDispatcher()
{
    const QByteArray choice = qgetenv("QTNOTIF_TEST_EVENT_DISPATCHER");
    if (choice == "epoll")
        QCoreApplication::setEventDispatcher(new QtNotif::EpollEventDispatcher);
    else if (!choice.isEmpty())
        qFatal("QTNOTIF_TEST_EVENT_DISPATCHER: unknown dispatcher \"%s\" (known: epoll)",
               choice.constData());
}

} // namespace QtNotifTest

#define QTNOTIF_TEST_MAIN(TestObject) \
    int main(int argc, char *argv[]) \
    { \
        QtNotifTest::chooseEventDispatcher(); \
        QCoreApplication app(argc, argv); \
        TestObject tc; \
        QTEST_SET_MAIN_SOURCE_PATH \
        return QTest::qExec(&tc, argc, argv); \
    }
