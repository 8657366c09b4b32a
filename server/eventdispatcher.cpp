#include "server_p.h"

#include "epolleventdispatcher.h"
#include "logging_p.h"

#include <QtCore/QAbstractEventDispatcher>

#include <atomic>

namespace QtNotif {

namespace {
std::atomic<bool> advised{ false };
} // namespace

bool runsEpollEventDispatcher()
{
    return qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance()) != nullptr;
}

void adviseOnEventDispatcher()
{
    if (runsEpollEventDispatcher() || advised.exchange(true))
        return;
    const QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    // GLib's and Qt's UNIX dispatcher alike hand the kernel every socket of the thread on every
    // turn of its loop; GLib's also goes over them each time one is switched on or off.
    qCInfo(lcServer).nospace()
            << "this thread runs " << (dispatcher ? dispatcher->metaObject()->className() : "no")
            << " event dispatcher; a server with thousands of connections delivers faster and "
               "idles on less CPU on QtNotif::EpollEventDispatcher, or with setWorkerThreads(), "
               "whose threads run it (docs/guide.md, \"Event dispatcher\")";
}

void resetEventDispatcherAdvice()
{
    advised = false;
}

} // namespace QtNotif
