// EpollEventDispatcher against what Qt's event loop expects of a dispatcher: timers, socket
// notifiers, posted events, wake-ups from other threads. The test's own main thread runs on it,
// so QtTest's waits exercise it too.
#include <QtNotif/epolleventdispatcher.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QEventLoop>
#include <QtCore/QPointer>
#include <QtCore/QSemaphore>
#include <QtCore/QSocketNotifier>
#include <QtCore/QThread>
#include <QtCore/QTimer>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <array>
#include <memory>
#include <thread>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace QtNotif;
using namespace std::chrono_literals;
using namespace Qt::StringLiterals;

namespace {

// Both ends of a non-blocking UNIX stream socket pair, closed when it goes.
class SocketPair
{
public:
    SocketPair()
    {
        QVERIFY(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds.data())
                == 0);
    }
    ~SocketPair()
    {
        closeEnd(0);
        closeEnd(1);
    }
    int end(int i) const { return fds[size_t(i)]; }
    void closeEnd(int i)
    {
        if (fds[size_t(i)] >= 0)
            ::close(fds[size_t(i)]);
        fds[size_t(i)] = -1;
    }
    bool send(int i, char byte = 'x') const { return ::write(end(i), &byte, 1) == 1; }
    int drain(int i) const
    {
        char buffer[64];
        int total = 0;
        for (ssize_t n; (n = ::read(end(i), buffer, sizeof buffer)) > 0;)
            total += int(n);
        return total;
    }

private:
    std::array<int, 2> fds{ -1, -1 };
};

// Counts QTimerEvents per timer id.
class TimerTarget : public QObject
{
public:
    QHash<int, int> fired;
    std::function<void(int)> onTimer;

protected:
    void timerEvent(QTimerEvent *event) override
    {
        ++fired[event->timerId()];
        if (onTimer)
            onTimer(event->timerId());
    }
};

// Runs the event loop until a timer of `ms` milliseconds fires: a quiet period in which
// something that should not happen would.
void runFor(int ms)
{
    QEventLoop loop;
    QTimer::singleShot(ms, &loop, &QEventLoop::quit);
    loop.exec();
}

} // namespace

class tst_EventDispatcher : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void theMainThreadRunsIt();

    void singleShotTimerFiresOnce();
    void repeatingTimerNeverFiresEarly();
    void zeroTimerDoesNotStarveOthers();
    void timerKilledByAnEarlierHandlerDoesNotFire();
    void timerKilledInItsOwnEvent();
    void nestedLoopInATimerEventNeitherRefiresNorSpins();
    void remainingTimeAndRegisteredTimers();
    void veryCoarseTimerKeepsWholeSeconds();

    void readNotifierIsLevelTriggered();
    void writeNotifierFiresWhileWritable();
    void hangUpActivatesTheReadNotifier();
    void notifierDeletedByAnotherHandlerIsNotActivated();
    void descriptorReusedAfterItsNotifierWent();
    void excludedNotifiersWaitForALaterTurn();

    void postedEventsAndDeleteLater();
    void postedBeforeTheWaitEndedComesFirst();
    void wakeUpFromAnotherThread();
    void workerThreadOnTheDispatcher();
    void tcpEchoOverManyConnections();
};

void tst_EventDispatcher::theMainThreadRunsIt()
{
    QVERIFY(qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance()));
}

void tst_EventDispatcher::singleShotTimerFiresOnce()
{
    QTimer timer;
    timer.setSingleShot(true);
    QSignalSpy fired(&timer, &QTimer::timeout);
    QElapsedTimer clock;
    clock.start();
    timer.start(20);
    QTRY_COMPARE(fired.count(), 1);
    QCOMPARE_GE(clock.elapsed(), 20);
    runFor(60);
    QCOMPARE(fired.count(), 1);
}

void tst_EventDispatcher::repeatingTimerNeverFiresEarly()
{
    TimerTarget target;
    QList<qint64> at;
    QElapsedTimer clock;
    target.onTimer = [&](int) { at.append(clock.nsecsElapsed()); };
    clock.start();
    const int id = target.startTimer(10ms, Qt::PreciseTimer);
    QTRY_COMPARE_GE(at.size(), 10);
    target.killTimer(id);
    // The k-th event comes no sooner than k periods after the start.
    for (qsizetype k = 0; k < at.size(); ++k)
        QCOMPARE_GE(at[k], (k + 1) * 10'000'000);
}

void tst_EventDispatcher::zeroTimerDoesNotStarveOthers()
{
    TimerTarget target;
    const int zero = target.startTimer(0ms);
    QTimer other;
    other.setSingleShot(true);
    QSignalSpy otherFired(&other, &QTimer::timeout);
    other.start(30);
    bool posted = false;
    QMetaObject::invokeMethod(
            this, [&] { posted = true; }, Qt::QueuedConnection);
    QTRY_VERIFY(posted);
    QTRY_COMPARE(otherFired.count(), 1);
    QCOMPARE_GT(target.fired.value(zero), 1);
    target.killTimer(zero);
}

void tst_EventDispatcher::timerKilledByAnEarlierHandlerDoesNotFire()
{
    TimerTarget target;
    // Both due in the same turn; whichever fires first kills the other.
    int first = 0;
    int second = 0;
    target.onTimer = [&](int id) {
        target.killTimer(id);
        target.killTimer(id == first ? second : first);
    };
    first = target.startTimer(15ms, Qt::PreciseTimer);
    second = target.startTimer(15ms, Qt::PreciseTimer);
    QTRY_COMPARE(target.fired.value(first) + target.fired.value(second), 1);
    runFor(50);
    QCOMPARE(target.fired.value(first) + target.fired.value(second), 1);
    QVERIFY(QAbstractEventDispatcher::instance()->registeredTimers(&target).isEmpty());
}

void tst_EventDispatcher::timerKilledInItsOwnEvent()
{
    TimerTarget target;
    int events = 0;
    int second = 0;
    target.onTimer = [&](int id) {
        ++events;
        target.killTimer(id);
        // The new timer may take the id just freed: it starts from scratch all the same.
        if (!second)
            second = target.startTimer(20ms);
    };
    target.startTimer(5ms);
    QTRY_COMPARE(events, 2);
    runFor(50);
    QCOMPARE(events, 2);
    QVERIFY(QAbstractEventDispatcher::instance()->registeredTimers(&target).isEmpty());
}

void tst_EventDispatcher::nestedLoopInATimerEventNeitherRefiresNorSpins()
{
    TimerTarget target;
    QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    int turnsInside = 0;
    int firedInside = -1;
    const int id = target.startTimer(5ms, Qt::PreciseTimer);
    target.onTimer = [&](int timerId) {
        if (firedInside >= 0)
            return;
        firedInside = 0;
        const int before = target.fired.value(timerId);
        const auto connection = connect(dispatcher, &QAbstractEventDispatcher::awake, this,
                                        [&] { ++turnsInside; });
        runFor(100);
        disconnect(connection);
        firedInside = target.fired.value(timerId) - before;
    };
    QTRY_VERIFY(firedInside >= 0 && target.fired.value(id) > 1);
    target.killTimer(id);
    // The timer whose event runs the loop stays out of it, and its past deadline does not make
    // the loop poll without waiting: a spinning loop turns thousands of times in 100 ms.
    QCOMPARE(firedInside, 0);
    QCOMPARE_LT(turnsInside, 50);
}

void tst_EventDispatcher::remainingTimeAndRegisteredTimers()
{
    QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    QObject owner;
    const int id = owner.startTimer(1000ms, Qt::CoarseTimer);
    const int remaining = dispatcher->remainingTime(id);
    QCOMPARE_GT(remaining, 500);
    QCOMPARE_LE(remaining, 1000);
    const auto timers = dispatcher->registeredTimers(&owner);
    QCOMPARE(timers.size(), 1);
    QCOMPARE(timers.first().timerId, id);
    QCOMPARE(timers.first().interval, 1000);
    QCOMPARE(timers.first().timerType, Qt::CoarseTimer);
    owner.killTimer(id);
    QCOMPARE(dispatcher->remainingTime(id), -1);
    QVERIFY(dispatcher->registeredTimers(&owner).isEmpty());
    QVERIFY(!dispatcher->unregisterTimer(id));
}

void tst_EventDispatcher::veryCoarseTimerKeepsWholeSeconds()
{
    QObject owner;
    const int id = owner.startTimer(1600ms, Qt::VeryCoarseTimer);
    const auto timers = QAbstractEventDispatcher::instance()->registeredTimers(&owner);
    QCOMPARE(timers.size(), 1);
    QCOMPARE(timers.first().interval, 2000);
    owner.killTimer(id);
}

void tst_EventDispatcher::readNotifierIsLevelTriggered()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.end(0), QSocketNotifier::Read);
    QSignalSpy activated(&notifier, &QSocketNotifier::activated);
    runFor(20);
    QCOMPARE(activated.count(), 0);
    QVERIFY(pair.send(1));
    // Not read: it stays ready, and the notifier fires again each turn.
    QTRY_COMPARE_GE(activated.count(), 3);
    QCOMPARE(pair.drain(0), 1);
    const auto settled = activated.count();
    runFor(30);
    QCOMPARE_LE(activated.count(), settled + 1);
    const auto afterDrain = activated.count();
    runFor(30);
    QCOMPARE(activated.count(), afterDrain);
}

void tst_EventDispatcher::writeNotifierFiresWhileWritable()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.end(0), QSocketNotifier::Write);
    QSignalSpy activated(&notifier, &QSocketNotifier::activated);
    QTRY_COMPARE_GE(activated.count(), 2);
    notifier.setEnabled(false);
    const auto stopped = activated.count();
    runFor(30);
    QCOMPARE(activated.count(), stopped);
    // Switched on again, with a read notifier on the same descriptor.
    QSocketNotifier reader(pair.end(0), QSocketNotifier::Read);
    QSignalSpy read(&reader, &QSocketNotifier::activated);
    notifier.setEnabled(true);
    QTRY_COMPARE_GT(activated.count(), stopped);
    QVERIFY(pair.send(1));
    QTRY_COMPARE_GE(read.count(), 1);
}

void tst_EventDispatcher::hangUpActivatesTheReadNotifier()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.end(0), QSocketNotifier::Read);
    QSignalSpy activated(&notifier, &QSocketNotifier::activated);
    pair.closeEnd(1);
    QTRY_COMPARE_GE(activated.count(), 1);
    char byte;
    QCOMPARE(::read(pair.end(0), &byte, 1), 0);
}

void tst_EventDispatcher::notifierDeletedByAnotherHandlerIsNotActivated()
{
    SocketPair a;
    SocketPair b;
    auto *first = new QSocketNotifier(a.end(0), QSocketNotifier::Read, this);
    auto *second = new QSocketNotifier(b.end(0), QSocketNotifier::Read, this);
    QPointer<QSocketNotifier> alive[] = { first, second };
    int activations = 0;
    // Both become ready in the same turn; whichever goes first switches itself off and deletes
    // the other, which was already found ready.
    for (int i = 0; i < 2; ++i) {
        connect(alive[i], &QSocketNotifier::activated, this, [&, i] {
            ++activations;
            alive[i]->setEnabled(false);
            delete alive[1 - i].data();
        });
    }
    QVERIFY(a.send(1));
    QVERIFY(b.send(1));
    QTRY_COMPARE(activations, 1);
    runFor(30);
    QCOMPARE(activations, 1);
    QCOMPARE(int(!alive[0]) + int(!alive[1]), 1);
    delete alive[0].data();
    delete alive[1].data();
}

void tst_EventDispatcher::descriptorReusedAfterItsNotifierWent()
{
    // A notifier goes and its descriptor closes within one turn; the next socket gets the same
    // number: it must be watched afresh, not taken for the old one.
    auto old = std::make_unique<SocketPair>();
    auto notifier = std::make_unique<QSocketNotifier>(old->end(0), QSocketNotifier::Read);
    runFor(10);
    const int number = old->end(0);
    notifier.reset();
    old->closeEnd(0);
    SocketPair fresh;
    const int reused = fresh.end(0) == number ? 0 : fresh.end(1) == number ? 1 : -1;
    if (reused < 0)
        QSKIP("the kernel did not reuse the descriptor number");
    QSocketNotifier next(number, QSocketNotifier::Read);
    QSignalSpy activated(&next, &QSocketNotifier::activated);
    QVERIFY(fresh.send(1 - reused));
    QTRY_COMPARE_GE(activated.count(), 1);
    QCOMPARE(fresh.drain(reused), 1);
}

void tst_EventDispatcher::excludedNotifiersWaitForALaterTurn()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.end(0), QSocketNotifier::Read);
    QSignalSpy activated(&notifier, &QSocketNotifier::activated);
    QVERIFY(pair.send(1));
    QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    for (int i = 0; i < 5; ++i)
        dispatcher->processEvents(QEventLoop::ExcludeSocketNotifiers);
    QCOMPARE(activated.count(), 0);
    // Waiting with sockets excluded still ends with a timer.
    QTimer timer;
    timer.setSingleShot(true);
    QSignalSpy fired(&timer, &QTimer::timeout);
    timer.start(10);
    QElapsedTimer clock;
    clock.start();
    while (fired.isEmpty() && clock.elapsed() < 5000)
        dispatcher->processEvents(QEventLoop::ExcludeSocketNotifiers
                                  | QEventLoop::WaitForMoreEvents);
    QCOMPARE(fired.count(), 1);
    QCOMPARE(activated.count(), 0);
    QTRY_COMPARE_GE(activated.count(), 1);
    pair.drain(0);
}

void tst_EventDispatcher::postedEventsAndDeleteLater()
{
    QPointer<QObject> doomed = new QObject;
    doomed->deleteLater();
    int order = 0;
    int first = 0;
    int second = 0;
    QMetaObject::invokeMethod(
            this, [&] { first = ++order; }, Qt::QueuedConnection);
    QMetaObject::invokeMethod(
            this, [&] { second = ++order; }, Qt::QueuedConnection);
    QTRY_VERIFY(!doomed);
    QTRY_COMPARE(second, 2);
    QCOMPARE(first, 1);
}

void tst_EventDispatcher::postedBeforeTheWaitEndedComesFirst()
{
    // Another thread posts, then writes to a socket, while this one is about to wait: both may
    // be ready when the wait ends. The posted event goes first, as it was first.
    SocketPair pair;
    QSocketNotifier notifier(pair.end(0), QSocketNotifier::Read);
    QStringList order;
    QEventLoop loop; // a waiting loop: QTRY_* would not wait, nor block
    const auto arrived = [&](const QString &what) {
        order.append(what);
        if (order.size() == 2)
            loop.quit();
    };
    connect(&notifier, &QSocketNotifier::activated, this, [&] {
        pair.drain(0);
        arrived(u"socket"_s);
    });
    for (int round = 0; round < 20; ++round) {
        order.clear();
        QSemaphore blocking;
        const auto connection = connect(
                QAbstractEventDispatcher::instance(), &QAbstractEventDispatcher::aboutToBlock, this,
                [&] { blocking.release(); }, Qt::DirectConnection);
        std::thread other([&] {
            blocking.acquire();
            QMetaObject::invokeMethod(
                    this, [&] { arrived(u"posted"_s); }, Qt::QueuedConnection);
            pair.send(1);
        });
        QTimer guard;
        guard.setSingleShot(true);
        connect(&guard, &QTimer::timeout, &loop, &QEventLoop::quit);
        guard.start(10s);
        loop.exec();
        disconnect(connection);
        other.join();
        QCOMPARE(order, QStringList({ u"posted"_s, u"socket"_s }));
    }
}

void tst_EventDispatcher::wakeUpFromAnotherThread()
{
    // The main loop waits with no timer due: only the other thread's post can end the wait.
    QEventLoop loop;
    bool delivered = false;
    std::thread poster([&] {
        QMetaObject::invokeMethod(
                &loop,
                [&] {
                    delivered = true;
                    loop.quit();
                },
                Qt::QueuedConnection);
    });
    QTimer guard;
    guard.setSingleShot(true);
    connect(&guard, &QTimer::timeout, &loop, &QEventLoop::quit);
    guard.start(10s);
    loop.exec();
    poster.join();
    QVERIFY(delivered);
    QVERIFY(guard.isActive());
}

void tst_EventDispatcher::workerThreadOnTheDispatcher()
{
    QThread thread;
    thread.setEventDispatcher(new EpollEventDispatcher);
    thread.start();
    auto *context = new QObject;
    context->moveToThread(&thread);
    std::atomic<bool> onEpoll{ false };
    std::atomic<int> ticks{ 0 };
    QMetaObject::invokeMethod(context, [&, context] {
        onEpoll = qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance())
                  != nullptr;
        auto *timer = new QTimer(context);
        connect(timer, &QTimer::timeout, timer, [&] { ++ticks; });
        timer->start(5);
    });
    QTRY_COMPARE_GE(ticks.load(), 3);
    QVERIFY(onEpoll);
    // Both reach the worker through its dispatcher's wakeUp() and interrupt().
    context->deleteLater();
    thread.quit();
    QVERIFY(thread.wait(10'000));
}

void tst_EventDispatcher::tcpEchoOverManyConnections()
{
    QTcpServer server;
    QVERIFY(server.listen(QHostAddress::LocalHost));
    connect(&server, &QTcpServer::newConnection, this, [&] {
        while (QTcpSocket *peer = server.nextPendingConnection()) {
            connect(peer, &QTcpSocket::readyRead, peer, [peer] { peer->write(peer->readAll()); });
            connect(peer, &QTcpSocket::disconnected, peer, &QObject::deleteLater);
        }
    });
    constexpr int Clients = 200;
    constexpr int Rounds = 5;
    std::vector<std::unique_ptr<QTcpSocket>> clients;
    QList<QByteArray> received(Clients);
    for (int i = 0; i < Clients; ++i) {
        auto socket = std::make_unique<QTcpSocket>();
        QTcpSocket *raw = socket.get();
        connect(raw, &QTcpSocket::readyRead, this,
                [&received, raw, i] { received[i] += raw->readAll(); });
        raw->connectToHost(server.serverAddress(), server.serverPort());
        clients.push_back(std::move(socket));
    }
    QByteArray expected;
    for (int round = 0; round < Rounds; ++round) {
        const QByteArray line = QByteArray::number(round) + '\n';
        expected += line;
        for (auto &client : clients)
            client->write(line);
        for (int i = 0; i < Clients; ++i)
            QTRY_COMPARE(received[i], expected);
    }
    for (auto &client : clients)
        client->disconnectFromHost();
    for (auto &client : clients)
        QTRY_COMPARE(client->state(), QAbstractSocket::UnconnectedState);
}

int main(int argc, char *argv[])
{
    QCoreApplication::setEventDispatcher(new EpollEventDispatcher);
    QCoreApplication app(argc, argv);
    tst_EventDispatcher test;
    QTEST_SET_MAIN_SOURCE_PATH
    return QTest::qExec(&test, argc, argv);
}

#include "tst_eventdispatcher.moc"
