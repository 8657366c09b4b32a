// The Redis backplane end to end: a real redis-server (RedisServer) and two cluster nodes in
// processes of their own (qtnotif_clusternode, "A" and "B"), with real clients on each. Every test
// starts two fresh nodes on a cluster of its own (a Redis database number of its own, hence
// channels of its own), and checks the channels in Redis itself with PUBSUB.
//
// Synchronisation, never fixed sleeps:
// - A listen is registered on its node once a later call on the same connection is answered
//   (frames are handled in order). Client does not show the listen's ack, which is what waits
//   for the node's Redis subscription, so tests wait for PUBSUB NUMSUB before notifying from the
//   other node; listenAckMeansOtherNodesReachTheListener checks the ack itself with a TestPeer.
// - barrier(peer): a listenerCount call on peer's node. The cluster request travels after
//   everything that node published before, and each node answers it after handling those
//   messages: once it returns, every node has delivered what the notifies before it sent.
#include "redisserver.h"
#include "testpeer.h"

#include <QtNotif/client.h>
#include <QtNotif/clientnotifier.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QProcess>
#include <QtNetwork/QTcpSocket>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <memory>
#include <optional>
#include <vector>

#ifdef Q_OS_LINUX
#include <csignal>
#include <sys/prctl.h>
#endif

using namespace QtNotif;
using namespace std::chrono_literals;

namespace {

// Reconnection after Redis comes back: the backplane's backoff reaches seconds; this leaves
// room for a loaded machine.
constexpr int BackplaneTimeout = 20000;

// One qtnotif_clusternode process.
class Node
{
public:
    explicit Node(const QString &name) : name(name) { }
    ~Node() { stop(); }

    // Starts the node on the Redis URL and waits until it listens; false when it does not.
    bool start(const QString &redisUrl)
    {
        QObject::connect(&process, &QProcess::readyReadStandardOutput, &process,
                         [this] { readStdout(); });
        QObject::connect(&process, &QProcess::readyReadStandardError, &process,
                         [this] { log += process.readAllStandardError(); });
#ifdef Q_OS_LINUX
        process.setChildProcessModifier([] { ::prctl(PR_SET_PDEATHSIG, SIGKILL); });
#endif
        process.start(QStringLiteral(QTNOTIF_CLUSTERNODE), { "--redis", redisUrl });
        return QTest::qWaitFor(
                       [this] { return !url.isEmpty() || process.state() == QProcess::NotRunning; },
                       10000)
               && !url.isEmpty();
    }

    // Closes the node's stdin, which makes it quit, and kills it if it lingers. True when it
    // exited with status 0 (in a sanitizer build: with no report, leaks at exit included).
    bool stop()
    {
        if (process.state() == QProcess::NotRunning)
            return process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0;
        process.closeWriteChannel();
        if (!process.waitForFinished(10000)) {
            process.kill();
            process.waitForFinished(5000);
            return false;
        }
        log += process.readAllStandardError();
        return process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0;
    }

    // The backplane status the node last printed.
    QString status() const
    {
        return statuses.isEmpty() ? QString() : statuses.constLast();
    }

    const QString name;
    QProcess process;
    QUrl url;
    QString id;
    // Every backplane status the node printed, in order, from the one it had when it listened.
    QStringList statuses;
    QByteArray log; // its stderr

private:
    void readStdout()
    {
        while (process.canReadLine()) {
            const QJsonObject line = QJsonDocument::fromJson(process.readLine()).object();
            if (line.value("event") == QJsonValue("listening")) {
                url = QUrl(line.value("url").toString());
                id = line.value("node").toString();
            }
            if (line.contains("status"))
                statuses.append(line.value("status").toString());
        }
    }
};

// A client of one node, recording every notification it receives.
class Peer
{
public:
    Peer(const Node &node, const QString &user) : user(user)
    {
        client.setUrl(node.url);
        client.setToken(user);
        client.setReconnectDelays(20ms, 200ms);
        client.setRequestTimeout(10s);
        for (const QString name : { "chat", "greet" }) {
            QObject::connect(client.notifier(name), &ClientNotifier::jsonEvent, &client,
                             [this, name](const QJsonValue &key, const QJsonValue &data) {
                                 received.append(QJsonObject{
                                         { "notifier", name }, { "key", key }, { "data", data } });
                             });
        }
    }

    // The notifications of the notifier (on any key), in arrival order.
    QList<QJsonObject> data(const QString &notifier) const
    {
        QList<QJsonObject> result;
        for (const QJsonObject &event : received) {
            if (event.value("notifier").toString() == notifier)
                result.append(event.value("data").toObject());
        }
        return result;
    }
    // Their "text" members.
    QStringList texts(const QString &notifier) const
    {
        QStringList result;
        for (const QJsonObject &data : data(notifier))
            result.append(data.value("text").toString());
        return result;
    }

    const QString user;
    QList<QJsonObject> received; // {"notifier", "key", "data"}
    Client client;               // last: goes first, before what its signals write to
};

} // namespace

class tst_RedisCluster : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void init();
    void cleanup();

    void notifyFromOtherNodeArrivesExactlyOnce();
    void prepareRunsOnTheReceivingNode();
    void notForUserExcludesTheUserOnEveryNode_data();
    void notForUserExcludesTheUserOnEveryNode();
    void notForMeExcludesOnlyTheCaller();
    void unlistenUserReachesEveryNode();
    void listenerCountIsClusterWide();
    void listeningUsersIsClusterWide();
    void listenAckMeansOtherNodesReachTheListener();
    void nodeSubscribesOnlyToKeysListenedOnIt();
    void nodeReceivesNothingForKeysNobodyThereListensTo();
    void deliveryResumesAfterRedisRestart();
    void stalledRedisBoundsWhatWaitsForIt();
    void oneConnectionDroppingLeavesTheOtherWorking();
    void credentialsFromTheUrl();

private:
    // A client of the node, connected; nullptr when it could not connect. The test owns it.
    Peer *connectPeer(const Node &node, const QString &user);
    // Calls method on the peer's node and waits for the answer; std::nullopt (and a warning that
    // says why) when it fails.
    std::optional<QJsonValue> call(Peer &peer, const QString &method,
                                   const QJsonObject &payload = {});
    bool notify(Peer &from, const QString &notifier, const QString &key, const QJsonObject &data,
                const QJsonValue &notFor = {});
    // Listens (unlistens) and waits until the peer's node has registered it.
    bool listen(Peer &peer, const QString &notifier, const QString &key);
    bool unlisten(Peer &peer, const QString &notifier, const QString &key);
    // The node's "stats" answer (status and backplane counters); empty when the call fails.
    QJsonObject stats(Peer &peer);
    qint64 counter(Peer &peer, const char *name) { return stats(peer).value(name).toInteger(-1); }
    // {"total", "local"} listener counts of the key, asked on the peer's node.
    QJsonObject listenerCount(Peer &peer, const QString &notifier, const QString &key);
    // See the file comment.
    bool barrier(Peer &via);

    // The Redis channels of this test's cluster.
    QByteArray channel(const QByteArray &name) const
    {
        return "qtnotif:" + QByteArray::number(db) + ':' + name;
    }
    QByteArray keyChannel(const QString &notifier, const QString &key) const
    {
        return channel("key:\"" + notifier.toUtf8() + "\":\"" + key.toUtf8() + '"');
    }
    // Subscribers of the key's channel in Redis: the nodes with a listener of the key.
    int nodesListening(const QString &notifier, const QString &key)
    {
        return redis.subscriberCount(keyChannel(notifier, key));
    }

    RedisServer redis;
    int db = 0;
    std::unique_ptr<Node> a;
    std::unique_ptr<Node> b;
    std::vector<std::unique_ptr<Peer>> peers;
};

void tst_RedisCluster::initTestCase()
{
    QVERIFY2(redis.start(), qPrintable(redis.errorString()));
}

void tst_RedisCluster::init()
{
    // Redis was killed by a test that failed half-way: the next one starts with it again.
    if (!redis.isRunning())
        QVERIFY2(redis.start(), qPrintable(redis.errorString()));
    db = (db + 1) % 16; // a cluster of its own: channels named qtnotif:<db>:...
    a = std::make_unique<Node>("A");
    b = std::make_unique<Node>("B");
    for (Node *node : { a.get(), b.get() }) {
        QVERIFY2(node->start(redis.url(db)),
                 qPrintable("node " + node->name + " did not start: " + node->log));
    }
    QTRY_COMPARE_WITH_TIMEOUT(a->status(), QString("Online"), BackplaneTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(b->status(), QString("Online"), BackplaneTimeout);
    QVERIFY(a->id != b->id);
    // Online means subscribed: each node to the cluster's channel and to its own.
    QCOMPARE(redis.subscriberCount(channel("all")), 2);
    QCOMPARE(redis.subscriberCount(channel("node:" + a->id.toLatin1())), 1);
    QCOMPARE(redis.subscriberCount(channel("node:" + b->id.toLatin1())), 1);
}

void tst_RedisCluster::cleanup()
{
    peers.clear();
    for (Node *node : { a.get(), b.get() }) {
        if (!node)
            continue;
        // A node that crashed (in a reconnection, say) fails the test even when the checks
        // before did not notice.
        QVERIFY2(node->process.state() == QProcess::Running,
                 qPrintable("node " + node->name + " exited during the test: " + node->log));
    }
    // Stopped here rather than by ~Node: a node must also quit cleanly (in a sanitizer build,
    // a report at exit, a leak say, fails the test).
    for (Node *node : { a.get(), b.get() }) {
        if (!node)
            continue;
        const bool clean = node->stop();
        if (QTest::currentTestFailed() || !clean)
            qInfo("node %s (%s) logged:\n%s", qPrintable(node->name), qPrintable(node->id),
                  node->log.constData());
        QVERIFY2(clean, qPrintable("node " + node->name + " did not quit with status 0"));
    }
    a.reset();
    b.reset();
}

Peer *tst_RedisCluster::connectPeer(const Node &node, const QString &user)
{
    auto peer = std::make_unique<Peer>(node, user);
    peer->client.open();
    if (!QTest::qWaitFor([&] { return peer->client.state() == Client::State::Connected; }, 10000)) {
        qWarning("%s could not connect to node %s: %s", qPrintable(user), qPrintable(node.name),
                 qPrintable(peer->client.errorString()));
        return nullptr;
    }
    peers.push_back(std::move(peer));
    return peers.back().get();
}

std::optional<QJsonValue> tst_RedisCluster::call(Peer &peer, const QString &method,
                                                 const QJsonObject &payload)
{
    struct Answer
    {
        bool finished = false;
        QJsonValue result;
        QString error;
    };
    // Shared with the callback, which may outlive this call if the wait below times out.
    auto answer = std::make_shared<Answer>();
    peer.client.call(method, payload, &peer.client, [answer](const CallReply &reply) {
        answer->finished = true;
        answer->result = reply.result();
        if (reply.isError())
            answer->error = reply.errorCode() + ": " + reply.errorMessage();
    });
    if (!QTest::qWaitFor([&] { return answer->finished; }, 15000)) {
        qWarning("%s: no answer to %s", qPrintable(peer.user), qPrintable(method));
        return std::nullopt;
    }
    if (!answer->error.isEmpty()) {
        qWarning("%s: %s failed: %s", qPrintable(peer.user), qPrintable(method),
                 qPrintable(answer->error));
        return std::nullopt;
    }
    return answer->result;
}

bool tst_RedisCluster::notify(Peer &from, const QString &notifier, const QString &key,
                              const QJsonObject &data, const QJsonValue &notFor)
{
    return call(from, "notify",
                { { "notifier", notifier },
                  { "key", key },
                  { "data", data },
                  { "notFor", notFor } })
            .has_value();
}

bool tst_RedisCluster::listen(Peer &peer, const QString &notifier, const QString &key)
{
    peer.client.notifier(notifier)->listen(key);
    return call(peer, "stats").has_value();
}

bool tst_RedisCluster::unlisten(Peer &peer, const QString &notifier, const QString &key)
{
    peer.client.notifier(notifier)->unlisten(key);
    return call(peer, "stats").has_value();
}

QJsonObject tst_RedisCluster::stats(Peer &peer)
{
    return call(peer, "stats").value_or(QJsonValue()).toObject();
}

QJsonObject tst_RedisCluster::listenerCount(Peer &peer, const QString &notifier, const QString &key)
{
    return call(peer, "listenerCount", { { "notifier", notifier }, { "key", key } })
            .value_or(QJsonValue())
            .toObject();
}

bool tst_RedisCluster::barrier(Peer &via)
{
    return !listenerCount(via, "chat", "barrier").isEmpty();
}

void tst_RedisCluster::notifyFromOtherNodeArrivesExactlyOnce()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *carol = connectPeer(*b, "carol");
    Peer *bob = connectPeer(*b, "bob");
    QVERIFY(alice && carol && bob);
    QVERIFY(listen(*alice, "chat", "room1"));
    QVERIFY(listen(*carol, "chat", "room1"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 2);

    // Made on B: carol there gets it from B at once, alice on A through Redis. B's own message
    // also comes back to B from Redis, and must not reach carol a second time.
    QVERIFY(notify(*bob, "chat", "room1", { { "text", "hello" } }));
    QVERIFY(notify(*bob, "chat", "room1", { { "text", "marker" } }));
    QTRY_COMPARE(alice->texts("chat"), QStringList({ "hello", "marker" }));
    QTRY_COMPARE(carol->texts("chat"), QStringList({ "hello", "marker" }));
    QVERIFY(barrier(*bob));
    QCOMPARE(alice->texts("chat"), QStringList({ "hello", "marker" }));
    QCOMPARE(carol->texts("chat"), QStringList({ "hello", "marker" }));
    QVERIFY(bob->received.isEmpty());
    for (const QJsonObject &event : std::as_const(alice->received))
        QCOMPARE(event.value("key"), QJsonValue("room1"));
}

void tst_RedisCluster::prepareRunsOnTheReceivingNode()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *bob = connectPeer(*b, "bob");
    Peer *carol = connectPeer(*b, "carol");
    QVERIFY(alice && bob && carol);
    QVERIFY(listen(*alice, "greet", "room1"));
    QVERIFY(listen(*bob, "greet", "room1"));
    QTRY_COMPARE(nodesListening("greet", "room1"), 2);

    // prepare adds the recipient and the node that ran it; "skip" makes it leave a user out.
    QVERIFY(notify(*carol, "greet", "room1", { { "text", "hi" } }));
    QVERIFY(notify(*carol, "greet", "room1", { { "text", "secret" }, { "skip", "alice" } }));
    QVERIFY(notify(*carol, "greet", "room1", { { "text", "bye" } }));
    QTRY_COMPARE(alice->texts("greet"), QStringList({ "hi", "bye" }));
    QTRY_COMPARE(bob->texts("greet"), QStringList({ "hi", "secret", "bye" }));
    QVERIFY(barrier(*carol));
    QCOMPARE(alice->texts("greet"), QStringList({ "hi", "bye" }));

    const QJsonObject toAlice{ { "text", "hi" }, { "to", "alice" }, { "node", a->id } };
    const QJsonObject toBob{ { "text", "hi" }, { "to", "bob" }, { "node", b->id } };
    QCOMPARE(alice->data("greet").value(0), toAlice);
    QCOMPARE(bob->data("greet").value(0), toBob);
}

void tst_RedisCluster::notForUserExcludesTheUserOnEveryNode_data()
{
    QTest::addColumn<bool>("fromA");
    QTest::addRow("notify made on A") << true;
    QTest::addRow("notify made on B") << false;
}

void tst_RedisCluster::notForUserExcludesTheUserOnEveryNode()
{
    QFETCH(bool, fromA);
    Peer *aliceA = connectPeer(*a, "alice");
    Peer *bobA = connectPeer(*a, "bob");
    Peer *aliceB = connectPeer(*b, "alice");
    Peer *bobB = connectPeer(*b, "bob");
    Peer *carol = connectPeer(fromA ? *a : *b, "carol");
    QVERIFY(aliceA && bobA && aliceB && bobB && carol);
    for (Peer *peer : { aliceA, bobA, aliceB, bobB })
        QVERIFY(listen(*peer, "chat", "room1"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 2);

    QVERIFY(notify(*carol, "chat", "room1", { { "text", "not for alice" } }, "alice"));
    QVERIFY(notify(*carol, "chat", "room1", { { "text", "for all" } }));
    for (Peer *peer : { aliceA, aliceB })
        QTRY_COMPARE(peer->texts("chat"), QStringList({ "for all" }));
    for (Peer *peer : { bobA, bobB })
        QTRY_COMPARE(peer->texts("chat"), QStringList({ "not for alice", "for all" }));
    QVERIFY(barrier(*carol));
    QCOMPARE(aliceA->texts("chat"), QStringList({ "for all" }));
    QCOMPARE(aliceB->texts("chat"), QStringList({ "for all" }));
}

void tst_RedisCluster::notForMeExcludesOnlyTheCaller()
{
    Peer *aliceA = connectPeer(*a, "alice");
    Peer *aliceB = connectPeer(*b, "alice");
    Peer *bobB = connectPeer(*b, "bob");
    QVERIFY(aliceA && aliceB && bobB);
    // Connection ids are per node: both alices are connection 1 of theirs. Leaving out the
    // caller on B must not leave out A's connection that has the same number.
    QCOMPARE(aliceA->client.connectionId(), aliceB->client.connectionId());
    for (Peer *peer : { aliceA, aliceB, bobB })
        QVERIFY(listen(*peer, "chat", "room1"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 2);

    QVERIFY(notify(*aliceB, "chat", "room1", { { "text", "not for me" } }, "me"));
    QVERIFY(notify(*aliceB, "chat", "room1", { { "text", "for all" } }));
    QTRY_COMPARE(aliceA->texts("chat"), QStringList({ "not for me", "for all" }));
    QTRY_COMPARE(bobB->texts("chat"), QStringList({ "not for me", "for all" }));
    QTRY_COMPARE(aliceB->texts("chat"), QStringList({ "for all" }));
    QVERIFY(barrier(*aliceB));
    QCOMPARE(aliceB->texts("chat"), QStringList({ "for all" }));
}

void tst_RedisCluster::unlistenUserReachesEveryNode()
{
    Peer *alice1 = connectPeer(*a, "alice");
    Peer *alice2 = connectPeer(*a, "alice");
    Peer *bob = connectPeer(*a, "bob");
    Peer *alice3 = connectPeer(*b, "alice");
    Peer *moderator = connectPeer(*b, "moderator");
    QVERIFY(alice1 && alice2 && bob && alice3 && moderator);
    for (Peer *peer : { alice1, alice2, bob, alice3 })
        QVERIFY(listen(*peer, "chat", "room1"));
    QVERIFY(listen(*alice1, "chat", "room2"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 2);
    std::vector<std::unique_ptr<QSignalSpy>> unlistened;
    for (Peer *peer : { alice1, alice2, alice3, bob }) {
        unlistened.push_back(std::make_unique<QSignalSpy>(peer->client.notifier("chat"),
                                                          &ClientNotifier::unlistened));
    }

    // Made on B: two connections of alice's on A, one on B.
    const auto total = call(*moderator, "unlistenUser",
                            { { "notifier", "chat" }, { "key", "room1" }, { "user", "alice" } });
    QVERIFY(total);
    QCOMPARE(total->toInt(), 3);
    for (int i = 0; i < 3; ++i) {
        QTRY_COMPARE(unlistened[i]->size(), 1);
        QCOMPARE(unlistened[i]->at(0).at(0).toString(), QString("room1"));
        QCOMPARE(unlistened[i]->at(0).at(1).value<ClientNotifier::UnlistenReason>(),
                 ClientNotifier::UnlistenReason::User);
    }
    QVERIFY(!alice1->client.notifier("chat")->isListening("room1"));
    QVERIFY(alice1->client.notifier("chat")->isListening("room2"));
    QCOMPARE(listenerCount(*moderator, "chat", "room1").value("total").toInt(), 1);
    // B has nobody left on room1 and leaves its channel; A keeps it for bob.
    QTRY_COMPARE(nodesListening("chat", "room1"), 1);

    QVERIFY(notify(*moderator, "chat", "room1", { { "text", "after" } }));
    QTRY_COMPARE(bob->texts("chat"), QStringList({ "after" }));
    QVERIFY(barrier(*moderator));
    for (Peer *peer : { alice1, alice2, alice3 })
        QCOMPARE(peer->texts("chat"), QStringList());
    QCOMPARE(unlistened[3]->size(), 0);

    // Nothing left to remove: 0, on both nodes.
    const auto again = call(*bob, "unlistenUser",
                            { { "notifier", "chat" }, { "key", "room1" }, { "user", "alice" } });
    QVERIFY(again);
    QCOMPARE(again->toInt(), 0);
}

void tst_RedisCluster::listenerCountIsClusterWide()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *bob = connectPeer(*a, "bob");
    Peer *carol = connectPeer(*b, "carol");
    Peer *dave = connectPeer(*b, "dave");
    QVERIFY(alice && bob && carol && dave);
    for (Peer *peer : { alice, bob, carol })
        QVERIFY(listen(*peer, "chat", "room1"));
    QVERIFY(listen(*dave, "chat", "room2"));

    QCOMPARE(listenerCount(*alice, "chat", "room1"),
             QJsonObject({ { "total", 3 }, { "local", 2 } }));
    QCOMPARE(listenerCount(*dave, "chat", "room1"),
             QJsonObject({ { "total", 3 }, { "local", 1 } }));
    QCOMPARE(listenerCount(*alice, "chat", "room2"),
             QJsonObject({ { "total", 1 }, { "local", 0 } }));
    QCOMPARE(listenerCount(*alice, "greet", "room1"),
             QJsonObject({ { "total", 0 }, { "local", 0 } }));

    QVERIFY(unlisten(*carol, "chat", "room1"));
    QCOMPARE(listenerCount(*alice, "chat", "room1").value("total").toInt(), 2);
    // A disconnect removes the listens of the connection on its node at once.
    bob->client.close();
    QTRY_COMPARE(listenerCount(*dave, "chat", "room1").value("total").toInt(), 1);
}

void tst_RedisCluster::listeningUsersIsClusterWide()
{
    Peer *aliceA = connectPeer(*a, "alice");
    Peer *bob = connectPeer(*a, "bob");
    Peer *aliceB = connectPeer(*b, "alice");
    Peer *carol = connectPeer(*b, "carol");
    Peer *anonymous = connectPeer(*b, QString());
    QVERIFY(aliceA && bob && aliceB && carol && anonymous);
    for (Peer *peer : { aliceA, bob, aliceB, carol, anonymous })
        QVERIFY(listen(*peer, "chat", "room1"));

    // Each user once, however many connections and nodes; anonymous clients are no user.
    const QJsonArray everyone{ "alice", "bob", "carol" };
    const QJsonObject room1{ { "notifier", "chat" }, { "key", "room1" } };
    QCOMPARE(call(*bob, "listeningUsers", room1), QJsonValue(everyone));
    QCOMPARE(call(*carol, "listeningUsers", room1), QJsonValue(everyone));

    QVERIFY(unlisten(*aliceB, "chat", "room1"));
    QCOMPARE(call(*carol, "listeningUsers", room1), QJsonValue(everyone));
    QVERIFY(unlisten(*aliceA, "chat", "room1"));
    QCOMPARE(call(*carol, "listeningUsers", room1), QJsonValue(QJsonArray{ "bob", "carol" }));
}

void tst_RedisCluster::listenAckMeansOtherNodesReachTheListener()
{
    Peer *bob = connectPeer(*b, "bob");
    QVERIFY(bob);
    TestPeer alice;
    QVERIFY(alice.open(a->url, { { "Authorization", "Bearer alice" } }));

    // Redis holds every client's commands for half a second, from before the listen is sent
    // (its answer comes once the pause is in force): A's SUBSCRIBE waits, and so must alice's
    // ack. Redis's pause ends about 500 ms after the command left, never sooner; an ack sent
    // without waiting would come within milliseconds. (Not DEBUG SLEEP from another
    // connection: Redis may read A's SUBSCRIBE first.)
    QTcpSocket pauser;
    pauser.connectToHost(QHostAddress::LocalHost, redis.port());
    QVERIFY(pauser.waitForConnected(5000));
    QElapsedTimer sincePause;
    sincePause.start();
    pauser.write("CLIENT PAUSE 500 ALL\r\n");
    QVERIFY(pauser.waitForReadyRead(5000));
    QCOMPARE(pauser.readAll(), QByteArray("+OK\r\n"));
    const qint64 listen = alice.listen("chat", "room1");
    QCOMPARE(alice.answerTo(listen).value("op").toString(), QString("ack"));
    QCOMPARE_GE(sincePause.elapsed(), 450); // Redis counts whole milliseconds

    // Nothing else waits for Redis: once acknowledged, the subscription is in place and a
    // notify made on B right away reaches alice.
    QCOMPARE(nodesListening("chat", "room1"), 1);
    QVERIFY(notify(*bob, "chat", "room1", { { "text", "right after the ack" } }));
    QTRY_COMPARE(alice.framesOf("notif").size(), 1);
    QCOMPARE(alice.framesOf("notif").at(0).value("data").toObject().value("text").toString(),
             QString("right after the ack"));
}

void tst_RedisCluster::nodeSubscribesOnlyToKeysListenedOnIt()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *bobA = connectPeer(*a, "bob");
    Peer *bobB = connectPeer(*b, "bob");
    QVERIFY(alice && bobA && bobB);
    const QByteArray room1 = keyChannel("chat", "room1");
    QCOMPARE(redis.activeChannels(channel("key:*")), QList<QByteArray>());

    // The documented channel name, subscribed at a node's first listener of the key.
    QVERIFY(listen(*alice, "chat", "room1"));
    QTRY_COMPARE(redis.activeChannels(channel("key:*")), QList<QByteArray>({ room1 }));
    QCOMPARE(redis.subscriberCount(room1), 1);
    QVERIFY(listen(*bobA, "chat", "room1"));
    QVERIFY(listen(*bobB, "chat", "room1"));
    QTRY_COMPARE(redis.subscriberCount(room1), 2);
    QCOMPARE(stats(*alice).value("channels").toInt(), 3); // all, node:<A>, room1
    QCOMPARE(stats(*bobB).value("channels").toInt(), 3);

    // Unsubscribed at the node's last listener: an unlisten, then a disconnect.
    QVERIFY(unlisten(*bobB, "chat", "room1"));
    QTRY_COMPARE(redis.subscriberCount(room1), 1);
    QCOMPARE(stats(*bobB).value("channels").toInt(), 2);
    QVERIFY(unlisten(*alice, "chat", "room1"));
    QCOMPARE(redis.subscriberCount(room1), 1); // bob on A still listens
    bobA->client.close();
    QTRY_COMPARE(redis.subscriberCount(room1), 0);
    QCOMPARE(redis.activeChannels(channel("key:*")), QList<QByteArray>());
    QCOMPARE(stats(*alice).value("channels").toInt(), 2);

    // And again, which a stale subscription state would break.
    QVERIFY(listen(*bobB, "chat", "room1"));
    QTRY_COMPARE(redis.subscriberCount(room1), 1);
}

void tst_RedisCluster::nodeReceivesNothingForKeysNobodyThereListensTo()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *bob = connectPeer(*b, "bob");
    QVERIFY(alice && bob);
    QVERIFY(listen(*alice, "chat", "room1"));
    QVERIFY(listen(*bob, "chat", "room2"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 1);
    QTRY_COMPARE(nodesListening("chat", "room2"), 1);
    const qint64 receivedOnB = counter(*bob, "received");
    const qint64 publishedOnA = counter(*alice, "published");
    QVERIFY(receivedOnB >= 0 && publishedOnA >= 0);

    // Five notifies on room1, which only A listens to, and then one on room2, which B listens to.
    // A publishes them in order, and B would receive them in that order: once the last has
    // arrived, B has had all it would ever get of the others.
    for (int i = 1; i <= 5; ++i)
        QVERIFY(notify(*alice, "chat", "room1", { { "text", QString("room1 #%1").arg(i) } }));
    QVERIFY(notify(*alice, "chat", "room3", { { "text", "nobody listens" } }));
    QVERIFY(notify(*alice, "chat", "room2", { { "text", "marker" } }));
    QTRY_COMPARE(bob->texts("chat"), QStringList({ "marker" }));
    QCOMPARE(counter(*bob, "received"), receivedOnB + 1);
    QCOMPARE(counter(*alice, "published"), publishedOnA + 7);
    QCOMPARE(alice->texts("chat").size(), 5);
}

void tst_RedisCluster::deliveryResumesAfterRedisRestart()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *dave = connectPeer(*a, "dave");
    Peer *bob = connectPeer(*b, "bob");
    QVERIFY(alice && dave && bob);
    for (Peer *peer : { alice, dave, bob })
        QVERIFY(listen(*peer, "chat", "room1"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 2);
    QVERIFY(notify(*bob, "chat", "room1", { { "text", "before" } }));
    QTRY_COMPARE(alice->texts("chat"), QStringList({ "before" }));

    std::vector<std::unique_ptr<QSignalSpy>> clientSpies;
    for (Peer *peer : { alice, dave, bob }) {
        clientSpies.push_back(std::make_unique<QSignalSpy>(&peer->client, &Client::disconnected));
        clientSpies.push_back(std::make_unique<QSignalSpy>(&peer->client, &Client::stateChanged));
    }
    const qsizetype statusesOfA = a->statuses.size();
    const qsizetype statusesOfB = b->statuses.size();

    redis.kill();
    QTRY_COMPARE_WITH_TIMEOUT(stats(*alice).value("status").toString(), QString("Connecting"),
                              BackplaneTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(stats(*bob).value("status").toString(), QString("Connecting"),
                              BackplaneTimeout);

    // Meanwhile: local delivery goes on (B's clients do not get it, then or later), requests
    // answer with the local count at once, and a key first listened to now is subscribed to
    // once Redis is back.
    const qint64 droppedOnA = counter(*alice, "dropped");
    QVERIFY(notify(*alice, "chat", "room1", { { "text", "during" } }));
    QTRY_COMPARE(dave->texts("chat"), QStringList({ "before", "during" }));
    QCOMPARE(alice->texts("chat"), QStringList({ "before", "during" }));
    QCOMPARE(counter(*alice, "dropped"), droppedOnA + 1);
    QCOMPARE(listenerCount(*alice, "chat", "room1"),
             QJsonObject({ { "total", 2 }, { "local", 2 } }));
    Peer *carol = connectPeer(*b, "carol");
    QVERIFY(carol);
    QVERIFY(listen(*carol, "chat", "room2"));

    QVERIFY2(redis.start(), qPrintable(redis.errorString()));
    QTRY_COMPARE_WITH_TIMEOUT(stats(*alice).value("status").toString(), QString("Online"),
                              BackplaneTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(stats(*bob).value("status").toString(), QString("Online"),
                              BackplaneTimeout);
    QCOMPARE(a->statuses.mid(statusesOfA), QStringList({ "Connecting", "Online" }));
    QCOMPARE(b->statuses.mid(statusesOfB), QStringList({ "Connecting", "Online" }));
    // Online means every channel is subscribed again, room2 included.
    QCOMPARE(redis.subscriberCount(channel("all")), 2);
    QCOMPARE(nodesListening("chat", "room1"), 2);
    QCOMPARE(nodesListening("chat", "room2"), 1);

    QVERIFY(notify(*bob, "chat", "room1", { { "text", "after, from B" } }));
    QTRY_COMPARE(dave->texts("chat"), QStringList({ "before", "during", "after, from B" }));
    QVERIFY(notify(*alice, "chat", "room1", { { "text", "after, from A" } }));
    QVERIFY(notify(*alice, "chat", "room2", { { "text", "to carol" } }));
    QTRY_COMPARE(dave->texts("chat"),
                 QStringList({ "before", "during", "after, from B", "after, from A" }));
    QTRY_COMPARE(bob->texts("chat"), QStringList({ "before", "after, from B", "after, from A" }));
    QTRY_COMPARE(carol->texts("chat"), QStringList({ "to carol" }));
    QCOMPARE(listenerCount(*bob, "chat", "room1").value("total").toInt(), 3);

    // The clients never noticed.
    for (const auto &spy : clientSpies)
        QCOMPARE(spy->size(), 0);
    for (Peer *peer : { alice, dave, bob })
        QCOMPARE(peer->client.state(), Client::State::Connected);
}

void tst_RedisCluster::stalledRedisBoundsWhatWaitsForIt()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *bob = connectPeer(*b, "bob");
    QVERIFY(alice && bob);
    QVERIFY(listen(*alice, "chat", "local"));
    QVERIFY(listen(*bob, "chat", "room1"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 1);

    // Redis frozen: A's publishes pile up unanswered. Past 32 MiB waiting, A drops them instead
    // of holding more, and says so once.
    redis.pause();
    auto thaw = qScopeGuard([this] { redis.resume(); });
    const QJsonObject burst{ { "notifier", "chat" },
                             { "key", "room1" },
                             { "data", QJsonObject{ { "text", "burst" } } },
                             { "repeat", 100 },
                             { "pad", 64 * 1024 } };
    for (int i = 0; i < 7; ++i) // 700 notifications of 64 KiB: about 45 MiB
        QVERIFY(call(*alice, "notify", burst));
    const qint64 dropped = counter(*alice, "dropped");
    QVERIFY2(dropped > 0 && dropped < 700, qPrintable(QString::number(dropped)));
    QCOMPARE(a->log.count("Redis is not keeping up"), 1);
    // A keeps serving its own clients meanwhile (the publish of this one is dropped too).
    QVERIFY(notify(*alice, "chat", "local", { { "text", "still here" } }));
    QTRY_COMPARE(alice->texts("chat"), QStringList{ "still here" });
    QCOMPARE(counter(*alice, "dropped"), dropped + 1);

    // Thawed, Redis works through what reached it, and A publishes again.
    redis.resume();
    thaw.dismiss();
    QTRY_COMPARE_WITH_TIMEOUT(bob->texts("chat").size(), int(700 - dropped), BackplaneTimeout);
    QVERIFY(notify(*alice, "chat", "room1", { { "text", "after" } }));
    QTRY_COMPARE(bob->texts("chat").value(int(700 - dropped)), QString("after"));
    QCOMPARE(counter(*alice, "dropped"), dropped + 1);
}

void tst_RedisCluster::oneConnectionDroppingLeavesTheOtherWorking()
{
    Peer *alice = connectPeer(*a, "alice");
    Peer *bob = connectPeer(*b, "bob");
    QVERIFY(alice && bob);
    QVERIFY(listen(*alice, "chat", "room1"));
    QVERIFY(listen(*bob, "chat", "room1"));
    QTRY_COMPARE(nodesListening("chat", "room1"), 2);

    // Each connection names itself (CLIENT SETNAME): qtnotif:<pid>:publisher|subscriber.
    const QByteArray name = "qtnotif:" + QByteArray::number(b->process.processId()) + ":subscriber";
    QByteArray id;
    const QList<QByteArray> clients = redis.command({ "CLIENT", "LIST" }).toByteArray().split('\n');
    for (const QByteArray &client : clients) {
        if (client.contains(QByteArray(" name=" + name + ' ')))
            id = client.mid(3, client.indexOf(' ') - 3); // "id=<n> addr=..."
    }
    QVERIFY2(!id.isEmpty(), QByteArray("no client named " + name).constData());
    const qint64 droppedOnB = counter(*bob, "dropped");
    QCOMPARE(redis.command({ "CLIENT", "KILL", "ID", id }).toLongLong(), 1);

    // B's publisher is untouched: B's notifications still reach A while its subscriber is away.
    QVERIFY(notify(*bob, "chat", "room1", { { "text", "from B, subscriber down" } }));
    QTRY_COMPARE(alice->texts("chat"), QStringList{ "from B, subscriber down" });
    QCOMPARE(counter(*bob, "dropped"), droppedOnB);

    // B's subscriber comes back by itself and subscribes again: A reaches bob.
    QTRY_VERIFY_WITH_TIMEOUT(b->statuses.contains("Connecting"), BackplaneTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(b->status(), QString("Online"), BackplaneTimeout);
    QCOMPARE(nodesListening("chat", "room1"), 2);
    QVERIFY(notify(*alice, "chat", "room1", { { "text", "from A, all back" } }));
    QTRY_COMPARE(bob->texts("chat"),
                 QStringList({ "from B, subscriber down", "from A, all back" }));
}

void tst_RedisCluster::credentialsFromTheUrl()
{
    // A Redis of its own with a password, and an ACL user.
    RedisServer secured;
    secured.setArguments({ "--requirepass", "s3cret", "--user", "alice", "on", ">wonderland", "~*",
                           "&*", "+@all" },
                         "s3cret");
    QVERIFY2(secured.start(), qPrintable(secured.errorString()));
    const QString at = QString("@127.0.0.1:%1/0").arg(secured.port());
    Node password("password"), user("user"), wrong("wrong"), none("none");
    QVERIFY(password.start("redis://:s3cret" + at));
    QVERIFY(user.start("redis://alice:wonderland" + at));
    QVERIFY(wrong.start("redis://:nope" + at));
    QVERIFY(none.start("redis://" + at.mid(1)));

    QTRY_COMPARE_WITH_TIMEOUT(password.status(), QString("Online"), BackplaneTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(user.status(), QString("Online"), BackplaneTimeout);
    // Refused: said loudly, and the node goes on trying (the password may be fixed in Redis).
    QTRY_VERIFY(wrong.log.contains("Redis refused the"));
    QTRY_VERIFY(none.log.contains("Redis refused the"));
    QCOMPARE(wrong.status(), QString("Connecting"));
    QCOMPARE(none.status(), QString("Connecting"));
    // The password never reaches the log.
    for (const Node *node : { &password, &user, &wrong })
        QVERIFY(!node->log.contains("s3cret") && !node->log.contains("wonderland")
                && !node->log.contains("nope"));
}

QTEST_GUILESS_MAIN(tst_RedisCluster)
#include "tst_rediscluster.moc"
