#include "server_p.h"

#include "logging_p.h"

#include <QtCore/QAbstractEventDispatcher>

#include <atomic>

namespace QtNotif {

namespace {
std::atomic<bool> advised{ false };
} // namespace

bool runsGlibEventDispatcher()
{
    const QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    // QEventDispatcherGlib in QtCore, QPAEventDispatcherGlib in QtGui: both poll every socket
    // notifier of the thread each time one is switched on or off.
    return dispatcher && QByteArrayView(dispatcher->metaObject()->className()).contains("Glib");
}

void adviseOnEventDispatcher()
{
    if (!runsGlibEventDispatcher() || advised.exchange(true))
        return;
    qCInfo(lcServer) << "this thread runs GLib's event dispatcher; a server with thousands of "
                        "connections delivers faster and with less CPU on Qt's own, which "
                        "QT_NO_GLIB=1 selects (docs/guide.md, \"Event dispatcher\")";
}

void resetEventDispatcherAdvice()
{
    advised = false;
}

} // namespace QtNotif
