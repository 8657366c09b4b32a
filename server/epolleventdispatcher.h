// An event dispatcher over Linux's epoll, for threads that hold thousands of sockets.
#pragma once

#include <QtNotif/qtnotif_server_export.h>

#include <QtCore/QAbstractEventDispatcher>

#include <memory>

namespace QtNotif {

class EpollEventDispatcherPrivate;

// Qt's own event dispatchers, GLib's and Qt's UNIX one, hand the kernel every socket notifier of
// the thread on every turn of the event loop, so a turn costs in proportion to the connections a
// server holds, busy or not. This one keeps the notifiers in an epoll set and asks only which are
// ready: a turn costs in proportion to those. Timers, posted events, wakeUp() and interrupt()
// behave as in Qt's UNIX dispatcher.
//
// A thread takes its dispatcher before its event loop first runs:
//
//     QCoreApplication::setEventDispatcher(new QtNotif::EpollEventDispatcher); // before the app
//     QCoreApplication app(argc, argv);
//
//     thread->setEventDispatcher(new QtNotif::EpollEventDispatcher);            // before start()
//
// A GUI thread keeps the dispatcher of its platform plugin; Server::setWorkerThreads() moves the
// sockets to threads that run this dispatcher. docs/guide.md, "Event dispatcher", compares them.
class QTNOTIF_SERVER_EXPORT EpollEventDispatcher final : public QAbstractEventDispatcher
{
    Q_OBJECT

public:
    explicit EpollEventDispatcher(QObject *parent = nullptr);
    ~EpollEventDispatcher() override;

    bool processEvents(QEventLoop::ProcessEventsFlags flags) override;

    void registerSocketNotifier(QSocketNotifier *notifier) override;
    void unregisterSocketNotifier(QSocketNotifier *notifier) override;

    void registerTimer(int timerId, qint64 interval, Qt::TimerType timerType,
                       QObject *object) override;
    bool unregisterTimer(int timerId) override;
    bool unregisterTimers(QObject *object) override;
    QList<TimerInfo> registeredTimers(QObject *object) const override;
    int remainingTime(int timerId) override;

    void wakeUp() override;
    void interrupt() override;

private:
    std::unique_ptr<EpollEventDispatcherPrivate> d;
};

} // namespace QtNotif
