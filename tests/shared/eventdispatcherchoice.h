// The main thread's event dispatcher of a test process, from its environment:
// QTNOTIF_TEST_EVENT_DISPATCHER=epoll chooses QtNotif::EpollEventDispatcher, unset keeps Qt's.
// Called before the application object exists. The processes a test starts inherit the choice.
#pragma once

#include <QtNotif/epolleventdispatcher.h>

#include <QtCore/QCoreApplication>

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
