// The server with worker threads (Server::setWorkerThreads()): where the sockets go, and that
// clients on every worker get what the server sends them, in order. The suites of the server
// (tst_server, tst_badinput, tst_tls) run with workers too, as their *_workers tests.

#include "server_p.h"
#include "testmain.h"
#include "testpeer.h"

#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QScopeGuard>
#include <QtCore/QSet>
#include <QtCore/QThread>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <memory>
#include <vector>

using namespace QtNotif;

class tst_Workers : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void setOnlyWhileNotListening();
    void environmentGivesTheDefault();
    void connectionsAreSpreadOverTheWorkers();
    void notificationsReachEveryWorkerInOrder();
    void repliesFollowNotificationsInOrder();
    void disconnectsReachTheServer();
    void closeAndListenAgain();

private:
    std::unique_ptr<TestPeer> connectPeer();

    std::unique_ptr<Server> server;
};

void tst_Workers::init()
{
    server = std::make_unique<Server>();
    QVERIFY(server->setWorkerThreads(2));
    QCOMPARE(server->workerThreads(), 2);
    QVERIFY(server->listen(QHostAddress::LocalHost, 0));
}

void tst_Workers::cleanup()
{
    server.reset();
}

std::unique_ptr<TestPeer> tst_Workers::connectPeer()
{
    auto peer = std::make_unique<TestPeer>();
    if (!peer->open(server->serverUrl()))
        qWarning("peer did not get its welcome");
    return peer;
}

void tst_Workers::setOnlyWhileNotListening()
{
    QTest::ignoreMessage(QtWarningMsg,
                         QRegularExpression("worker threads: .close\\(\\) the server"));
    QVERIFY(!server->setWorkerThreads(3));
    QVERIFY(server->errorString().contains("close()"));
    QCOMPARE(server->workerThreads(), 2);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("cannot be negative"));
    QVERIFY(!server->setWorkerThreads(-1));
    server->close();
    QVERIFY(server->setWorkerThreads(0));
    QCOMPARE(server->workerThreads(), 0);
    QVERIFY(server->listen(QHostAddress::LocalHost, 0));
    const auto peer = connectPeer();
    QCOMPARE(server->connectionCount(), 1);
    // Without workers, on the server's own thread.
    QCOMPARE(ServerPrivate::get(server.get())->threadOf(server->connections().value(0)),
             server->thread());
}

void tst_Workers::environmentGivesTheDefault()
{
    // What the *_workers runs of the server's suites rely on.
    const QByteArray before = qgetenv("QTNOTIF_WORKER_THREADS");
    const auto restore = qScopeGuard([&before] {
        if (before.isNull())
            qunsetenv("QTNOTIF_WORKER_THREADS");
        else
            qputenv("QTNOTIF_WORKER_THREADS", before);
    });
    qputenv("QTNOTIF_WORKER_THREADS", "3");
    QCOMPARE(Server().workerThreads(), 3);
    qputenv("QTNOTIF_WORKER_THREADS", "none");
    QCOMPARE(Server().workerThreads(), 0);
    qunsetenv("QTNOTIF_WORKER_THREADS");
    QCOMPARE(Server().workerThreads(), 0);
}

void tst_Workers::connectionsAreSpreadOverTheWorkers()
{
    std::vector<std::unique_ptr<TestPeer>> peers;
    for (int i = 0; i < 4; ++i)
        peers.push_back(connectPeer());
    QTRY_COMPARE(server->connectionCount(), 4);
    ServerPrivate *d = ServerPrivate::get(server.get());
    QList<ConnectionId> ids = server->connections();
    std::sort(ids.begin(), ids.end());
    QList<QThread *> threads;
    for (ConnectionId id : ids)
        threads.append(d->threadOf(id));
    QSet<QThread *> distinct(threads.begin(), threads.end());
    QCOMPARE(distinct.size(), 2);
    QVERIFY(!distinct.contains(server->thread()));
    QVERIFY(!distinct.contains(nullptr));
    // Round robin: one after the other.
    QCOMPARE(threads.at(0), threads.at(2));
    QCOMPARE(threads.at(1), threads.at(3));
    QVERIFY(threads.at(0) != threads.at(1));
}

void tst_Workers::notificationsReachEveryWorkerInOrder()
{
    auto *chat = new SimpleNotifier<QString, int>(server.get(), "chat");
    std::vector<std::unique_ptr<TestPeer>> peers;
    for (int i = 0; i < 5; ++i) {
        peers.push_back(connectPeer());
        QVERIFY(peers.back()->listenAndWait("chat", "room"));
    }
    // Several turns of the server's event loop, and several notifications in each.
    constexpr int Count = 300;
    for (int i = 0; i < Count; ++i) {
        chat->notify("room", i);
        if (i % 7 == 0)
            QCoreApplication::processEvents();
    }
    for (const auto &peer : peers) {
        QTRY_COMPARE(peer->framesOf("notif").size(), Count);
        const QList<QJsonObject> notifs = peer->framesOf("notif");
        for (int i = 0; i < Count; ++i)
            QCOMPARE(notifs.at(i).value("data").toInt(), i);
    }
}

void tst_Workers::repliesFollowNotificationsInOrder()
{
    // A reply sent after notifications of the same turn arrives after them, as without workers.
    auto *chat = new SimpleNotifier<QString, int>(server.get(), "chat");
    server->setHandler("burst", [chat](const Request &request) {
        for (int i = 0; i < 3; ++i)
            chat->notify("room", i);
        request.reply(QJsonValue(QStringLiteral("done")));
    });
    const auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("chat", "room"));
    const qint64 id = peer->request("burst", QJsonValue());
    QCOMPARE(peer->answerTo(id).value("op").toString(), QString("reply"));
    QStringList ops;
    for (const QJsonObject &frame : std::as_const(peer->frames))
        ops.append(frame.value("op").toString());
    QCOMPARE(ops.mid(ops.size() - 4), QStringList({ "notif", "notif", "notif", "reply" }));
}

void tst_Workers::disconnectsReachTheServer()
{
    QSignalSpy gone(server.get(), &Server::clientDisconnected);
    auto *chat = new SimpleNotifier<QString, int>(server.get(), "chat");
    auto first = connectPeer();
    auto second = connectPeer();
    QVERIFY(first->listenAndWait("chat", "room"));
    QVERIFY(second->listenAndWait("chat", "room"));
    QCOMPARE(chat->localListenerCount("room"), 2);
    first->socket.close();
    QTRY_COMPARE(gone.size(), 1);
    QCOMPARE(server->connectionCount(), 1);
    QCOMPARE(chat->localListenerCount("room"), 1);
    // The server closes the other: the client gets the code and reason.
    QVERIFY(server->disconnectClient(server->connections().value(0), 4000, "bye"));
    QTRY_VERIFY(second->disconnected);
    QCOMPARE(int(second->socket.closeCode()), 4000);
    QCOMPARE(second->socket.closeReason(), QString("bye"));
    QCOMPARE(gone.size(), 2);
}

void tst_Workers::closeAndListenAgain()
{
    auto peer = connectPeer();
    server->close();
    QTRY_VERIFY(peer->disconnected);
    QCOMPARE(int(peer->socket.closeCode()), 1001);
    QCOMPARE(ServerPrivate::get(server.get())->handshakesInProgress(), 0);
    QVERIFY(server->listen(QHostAddress::LocalHost, 0));
    auto again = connectPeer();
    QCOMPARE(server->connectionCount(), 1);
    QVERIFY(ServerPrivate::get(server.get())->threadOf(server->connections().value(0))
            != server->thread());
}

QTNOTIF_TEST_MAIN(tst_Workers)
#include "tst_workers.moc"
