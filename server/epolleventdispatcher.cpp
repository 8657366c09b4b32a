#include "epolleventdispatcher.h"

#include <QtCore/QCoreApplication>
#include <QtCore/QHash>
#include <QtCore/QSocketNotifier>
#include <QtCore/QVarLengthArray>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <set>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace QtNotif {

namespace {

using Clock = std::chrono::steady_clock;

// The data of the wake-up eventfd's epoll entry. A socket's entry holds its descriptor in the
// low half and its generation in the high half, so neither can be all ones.
constexpr quint64 WakeUpTag = ~quint64(0);

constexpr int NotifierTypes = 3; // QSocketNotifier::Read, Write, Exception

// What each notifier type asks the kernel for, and what activates it: an error or a hang-up
// activates all three, as poll()'s do in Qt's UNIX dispatcher.
constexpr uint32_t Requested[NotifierTypes] = { EPOLLIN, EPOLLOUT, EPOLLPRI };
constexpr uint32_t Activating[NotifierTypes]
        = { EPOLLIN | EPOLLHUP | EPOLLERR, EPOLLOUT | EPOLLHUP | EPOLLERR,
            EPOLLPRI | EPOLLHUP | EPOLLERR };

// epoll_wait() returns at most this many ready descriptors at first; the buffer doubles, up to
// MaxEvents, while a turn fills it. Those left over are still ready next turn.
constexpr size_t FirstEvents = 256;
constexpr size_t MaxEvents = 4096;

const char *typeName(int type)
{
    switch (type) {
    case QSocketNotifier::Read:
        return "Read";
    case QSocketNotifier::Write:
        return "Write";
    default:
        return "Exception";
    }
}

// Milliseconds from now to deadline, 0 if past, rounded up: a timer waited for so fires up to a
// millisecond late, never early.
int msUntil(Clock::time_point deadline)
{
    const auto wait = deadline - Clock::now();
    if (wait <= Clock::duration::zero())
        return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(wait).count();
    return int(std::min<qint64>(ms, INT_MAX));
}

quint64 tagOf(int fd, quint32 generation)
{
    return (quint64(generation) << 32) | quint32(fd);
}

} // namespace

class EpollEventDispatcherPrivate
{
public:
    EpollEventDispatcherPrivate();
    ~EpollEventDispatcherPrivate();

    // A descriptor with notifiers. Changes reach the kernel's set in one pass before each wait,
    // so a notifier switched off and on again in one turn (as QAbstractSocket does with its write
    // notifier) costs no system call.
    struct Socket
    {
        QSocketNotifier *notifiers[NotifierTypes] = {};
        uint32_t inKernel = 0;  // the events the epoll set holds for it; 0: not in the set
        quint32 generation = 0; // new each time it enters the set: tells stale events apart
        bool dirty = false;
    };

    struct Pending
    {
        int fd;
        quint32 generation;
        int type;
    };

    struct Timer
    {
        QObject *object;
        qint64 interval;
        Qt::TimerType type;
        Clock::time_point deadline;
        // Its QTimerEvent is being delivered: it is out of the schedule meanwhile, so that an
        // event loop run from its handler neither fires it again nor spins on its old deadline.
        bool delivering = false;
    };

    void markDirty(int fd);
    void updateKernelSet();
    int waitAndActivate(int timeout);
    int waitForWakeUpOnly(int timeout);
    void drainWakeUp();
    int msUntilNextTimer() const;
    int activateTimers();
    void unschedule(int timerId, const Timer &timer);

    int epollFd = -1;
    int wakeUpFd = -1;
    std::atomic<bool> wakeUpPending{ false };
    std::atomic<bool> interrupted{ false };

    std::vector<Socket> sockets; // by descriptor
    std::vector<int> dirtyFds;
    quint32 nextGeneration = 0;
    std::vector<epoll_event> events;

    QHash<int, Timer> timers;
    QMultiHash<QObject *, int> timersOfObject;
    std::set<std::pair<Clock::time_point, int>> schedule; // (deadline, id) of waiting timers
};

EpollEventDispatcherPrivate::EpollEventDispatcherPrivate() : events(FirstEvents)
{
    epollFd = epoll_create1(EPOLL_CLOEXEC);
    wakeUpFd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epollFd < 0 || wakeUpFd < 0)
        qFatal("QtNotif::EpollEventDispatcher: cannot create its epoll set or eventfd: %s",
               qPrintable(qt_error_string(errno)));
    epoll_event wake{};
    wake.events = EPOLLIN;
    wake.data.u64 = WakeUpTag;
    if (epoll_ctl(epollFd, EPOLL_CTL_ADD, wakeUpFd, &wake) < 0)
        qFatal("QtNotif::EpollEventDispatcher: cannot watch its eventfd: %s",
               qPrintable(qt_error_string(errno)));
}

EpollEventDispatcherPrivate::~EpollEventDispatcherPrivate()
{
    ::close(wakeUpFd);
    ::close(epollFd);
}

void EpollEventDispatcherPrivate::markDirty(int fd)
{
    Socket &socket = sockets[size_t(fd)];
    if (!socket.dirty) {
        socket.dirty = true;
        dirtyFds.push_back(fd);
    }
}

void EpollEventDispatcherPrivate::updateKernelSet()
{
    for (int fd : dirtyFds) {
        Socket &socket = sockets[size_t(fd)];
        socket.dirty = false;
        uint32_t wanted = 0;
        for (int type = 0; type < NotifierTypes; ++type) {
            if (socket.notifiers[type])
                wanted |= Requested[type];
        }
        if (wanted == socket.inKernel)
            continue;
        if (wanted == 0) {
            // The kernel drops a descriptor from the set itself when it is closed: EBADF and
            // ENOENT only say that happened first.
            epoll_ctl(epollFd, EPOLL_CTL_DEL, fd, nullptr);
            socket.inKernel = 0;
            continue;
        }
        epoll_event event{};
        event.events = wanted;
        int result;
        if (socket.inKernel == 0) {
            socket.generation = ++nextGeneration;
            event.data.u64 = tagOf(fd, socket.generation);
            result = epoll_ctl(epollFd, EPOLL_CTL_ADD, fd, &event);
            if (result < 0 && errno == EEXIST)
                result = epoll_ctl(epollFd, EPOLL_CTL_MOD, fd, &event);
        } else {
            event.data.u64 = tagOf(fd, socket.generation);
            result = epoll_ctl(epollFd, EPOLL_CTL_MOD, fd, &event);
            // Closed and opened again since it entered the set: the kernel dropped the old one.
            if (result < 0 && errno == ENOENT)
                result = epoll_ctl(epollFd, EPOLL_CTL_ADD, fd, &event);
        }
        if (result < 0) {
            qWarning("QSocketNotifier: cannot watch socket %d: %s", fd,
                     qPrintable(qt_error_string(errno)));
            socket.inKernel = 0;
            continue;
        }
        socket.inKernel = wanted;
    }
    dirtyFds.clear();
}

void EpollEventDispatcherPrivate::drainWakeUp()
{
    eventfd_t count;
    eventfd_read(wakeUpFd, &count);
    wakeUpPending.store(false, std::memory_order_release);
}

int EpollEventDispatcherPrivate::waitAndActivate(int timeout)
{
    const int ready = epoll_wait(epollFd, events.data(), int(events.size()), timeout);
    if (ready < 0) {
        // A signal: the caller's loop comes back with the timers' new timeout.
        if (errno != EINTR)
            qErrnoWarning("QtNotif::EpollEventDispatcher: epoll_wait");
        return 0;
    }

    int activated = 0;
    bool woken = false;
    // Collected before any is activated, as a handler may run a nested event loop that reuses
    // events, or change which notifiers exist.
    QVarLengthArray<Pending, 64> pending;
    for (int i = 0; i < ready; ++i) {
        const epoll_event &event = events[size_t(i)];
        if (event.data.u64 == WakeUpTag) {
            drainWakeUp();
            woken = true;
            ++activated;
            continue;
        }
        const int fd = int(quint32(event.data.u64));
        const auto generation = quint32(event.data.u64 >> 32);
        const Socket &socket = sockets[size_t(fd)];
        if (socket.inKernel == 0 || socket.generation != generation)
            continue;
        for (int type = 0; type < NotifierTypes; ++type) {
            if (socket.notifiers[type] && (event.events & Activating[type]))
                pending.append({ fd, generation, type });
        }
    }
    if (size_t(ready) == events.size() && events.size() < MaxEvents)
        events.resize(events.size() * 2);

    // What another thread posted before the wait ended comes before what the sockets brought
    // meanwhile: a setting changed, then data sent under it, arrive in that order.
    if (woken && !pending.isEmpty())
        QCoreApplication::sendPostedEvents();

    QEvent activation(QEvent::SockAct);
    for (const Pending &p : pending) {
        // Looked up again each time: an earlier handler may have switched this notifier off,
        // deleted it, or closed the descriptor (generation) and grown the table.
        const Socket &socket = sockets[size_t(p.fd)];
        QSocketNotifier *notifier = socket.notifiers[p.type];
        if (!notifier || socket.generation != p.generation)
            continue;
        QCoreApplication::sendEvent(notifier, &activation);
        ++activated;
    }
    return activated;
}

int EpollEventDispatcherPrivate::waitForWakeUpOnly(int timeout)
{
    pollfd wake{ wakeUpFd, POLLIN, 0 };
    if (::poll(&wake, 1, timeout) <= 0)
        return 0;
    drainWakeUp();
    return 1;
}

int EpollEventDispatcherPrivate::msUntilNextTimer() const
{
    return schedule.empty() ? -1 : msUntil(schedule.begin()->first);
}

void EpollEventDispatcherPrivate::unschedule(int timerId, const Timer &timer)
{
    if (!timer.delivering)
        schedule.erase({ timer.deadline, timerId });
}

int EpollEventDispatcherPrivate::activateTimers()
{
    if (schedule.empty())
        return 0;
    const Clock::time_point now = Clock::now();
    // Each timer due now fires once, even when a handler takes long or starts new timers.
    QVarLengthArray<int, 16> due;
    for (auto it = schedule.begin(); it != schedule.end() && it->first <= now; ++it)
        due.append(it->second);

    int activated = 0;
    for (int id : due) {
        auto timer = timers.find(id);
        // Killed by an earlier handler, or killed and its id given to a new timer.
        if (timer == timers.end() || timer->delivering || timer->deadline > now)
            continue;
        schedule.erase({ timer->deadline, id });
        const auto interval = std::chrono::milliseconds(timer->interval);
        // Like Qt's precise timers: keep the period, but skip what was missed.
        timer->deadline += interval;
        if (timer->deadline < now)
            timer->deadline = now + interval;
        timer->delivering = true;
        QObject *object = timer->object;

        QTimerEvent event(id);
        QCoreApplication::sendEvent(object, &event);
        ++activated;

        // The handler may have killed it, or started timers that moved the hash.
        timer = timers.find(id);
        if (timer != timers.end() && timer->delivering) {
            timer->delivering = false;
            schedule.insert({ timer->deadline, id });
        }
    }
    return activated;
}

EpollEventDispatcher::EpollEventDispatcher(QObject *parent)
    : QAbstractEventDispatcher(parent), d(std::make_unique<EpollEventDispatcherPrivate>())
{
}

EpollEventDispatcher::~EpollEventDispatcher() = default;

bool EpollEventDispatcher::processEvents(QEventLoop::ProcessEventsFlags flags)
{
    d->interrupted.store(false, std::memory_order_relaxed);
    Q_EMIT awake();
    QCoreApplication::sendPostedEvents();

    const bool includeTimers = !(flags & QEventLoop::X11ExcludeTimers);
    const bool includeNotifiers = !(flags & QEventLoop::ExcludeSocketNotifiers);
    const bool canWait = (flags & QEventLoop::WaitForMoreEvents)
                         && !d->interrupted.load(std::memory_order_relaxed);
    if (canWait)
        Q_EMIT aboutToBlock();
    if (d->interrupted.load(std::memory_order_relaxed))
        return false;

    // Events posted from now on call wakeUp(), which ends the wait at once.
    int timeout = 0;
    if (canWait)
        timeout = includeTimers ? d->msUntilNextTimer() : -1;

    int activated;
    if (includeNotifiers) {
        d->updateKernelSet();
        activated = d->waitAndActivate(timeout);
    } else {
        activated = d->waitForWakeUpOnly(timeout);
    }
    if (includeTimers)
        activated += d->activateTimers();
    return activated > 0;
}

void EpollEventDispatcher::registerSocketNotifier(QSocketNotifier *notifier)
{
    Q_ASSERT(notifier);
    const qintptr fd = notifier->socket();
    const int type = notifier->type();
    if (fd < 0 || fd > INT_MAX) {
        qWarning("QSocketNotifier: Internal error");
        return;
    }
    if (size_t(fd) >= d->sockets.size())
        d->sockets.resize(size_t(fd) + 1);
    EpollEventDispatcherPrivate::Socket &socket = d->sockets[size_t(fd)];
    if (socket.notifiers[type] && socket.notifiers[type] != notifier)
        qWarning("QSocketNotifier: Multiple socket notifiers for same socket %d and type %s",
                 int(fd), typeName(type));
    socket.notifiers[type] = notifier;
    d->markDirty(int(fd));
}

void EpollEventDispatcher::unregisterSocketNotifier(QSocketNotifier *notifier)
{
    Q_ASSERT(notifier);
    const qintptr fd = notifier->socket();
    const int type = notifier->type();
    if (fd < 0 || size_t(fd) >= d->sockets.size())
        return;
    EpollEventDispatcherPrivate::Socket &socket = d->sockets[size_t(fd)];
    if (socket.notifiers[type] != notifier)
        return;
    socket.notifiers[type] = nullptr;
    // Its last notifier gone, the descriptor leaves the set now rather than before the next
    // wait: it may be closed before then, and its number given to a socket that must enter the
    // set afresh.
    if (!socket.notifiers[0] && !socket.notifiers[1] && !socket.notifiers[2]) {
        if (socket.inKernel)
            epoll_ctl(d->epollFd, EPOLL_CTL_DEL, int(fd), nullptr);
        socket.inKernel = 0;
        return;
    }
    d->markDirty(int(fd));
}

void EpollEventDispatcher::registerTimer(int timerId, qint64 interval, Qt::TimerType timerType,
                                         QObject *object)
{
    Q_ASSERT(timerId > 0 && interval >= 0 && object);
    // As Qt's dispatchers do: a very coarse timer keeps whole seconds.
    if (timerType == Qt::VeryCoarseTimer && interval > 0)
        interval = std::max<qint64>(1000, (interval + 500) / 1000 * 1000);
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(interval);
    d->timers.insert(timerId, { object, interval, timerType, deadline });
    d->timersOfObject.insert(object, timerId);
    d->schedule.insert({ deadline, timerId });
}

bool EpollEventDispatcher::unregisterTimer(int timerId)
{
    const auto timer = d->timers.constFind(timerId);
    if (timer == d->timers.cend())
        return false;
    d->unschedule(timerId, *timer);
    d->timersOfObject.remove(timer->object, timerId);
    d->timers.erase(timer);
    return true;
}

bool EpollEventDispatcher::unregisterTimers(QObject *object)
{
    const QList<int> ids = d->timersOfObject.values(object);
    for (int id : ids) {
        const auto timer = d->timers.constFind(id);
        d->unschedule(id, *timer);
        d->timers.erase(timer);
    }
    d->timersOfObject.remove(object);
    return !ids.isEmpty();
}

QList<QAbstractEventDispatcher::TimerInfo> EpollEventDispatcher::registeredTimers(
        QObject *object) const
{
    QList<TimerInfo> infos;
    for (auto it = d->timersOfObject.constFind(object);
         it != d->timersOfObject.cend() && it.key() == object; ++it) {
        const auto timer = d->timers.constFind(it.value());
        infos.append(TimerInfo(it.value(), int(timer->interval), timer->type));
    }
    return infos;
}

int EpollEventDispatcher::remainingTime(int timerId)
{
    const auto timer = d->timers.constFind(timerId);
    return timer == d->timers.cend() ? -1 : msUntil(timer->deadline);
}

void EpollEventDispatcher::wakeUp()
{
    // Thread-safe: one write until the loop drains it.
    if (!d->wakeUpPending.exchange(true, std::memory_order_acq_rel))
        eventfd_write(d->wakeUpFd, 1);
}

void EpollEventDispatcher::interrupt()
{
    d->interrupted.store(true, std::memory_order_relaxed);
    wakeUp();
}

} // namespace QtNotif
