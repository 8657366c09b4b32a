// QTEST_GUILESS_MAIN with a choice of event dispatcher for the main thread
// (eventdispatcherchoice.h), so that one suite checks the server on each dispatcher:
// qtnotif_add_test(... EPOLL) runs it again as <name>_epoll (tests/CMakeLists.txt).
#pragma once

#include "eventdispatcherchoice.h"

#include <QtCore/QCoreApplication>
#include <QtTest/QTest>

#define QTNOTIF_TEST_MAIN(TestObject) \
    int main(int argc, char *argv[]) \
    { \
        QtNotifTest::chooseEventDispatcher(); \
        QCoreApplication app(argc, argv); \
        TestObject tc; \
        QTEST_SET_MAIN_SOURCE_PATH \
        return QTest::qExec(&tc, argc, argv); \
    }
