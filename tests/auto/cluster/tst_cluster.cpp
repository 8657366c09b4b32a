// Servers joined by a backplane: the cluster's rules (who receives a notify published on
// another node, notFor, unlistenUser, listenerCount, which channels a node subscribes to),
// with several servers in this process on inproc://. tests/cluster runs the same kind of
// cluster over a real Redis, with the nodes in processes of their own.
#include "testpeer.h"

#include <QtNotif/backplane.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QThread>
#include <QtNetwork/QTcpServer>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <memory>

using namespace QtNotif;
using namespace std::chrono_literals;

using Chat = SimpleNotifier<QString, QString>;

// A backplane of the test's own: it records what is published, and confirms subscriptions
// only when the test says so (as a network transport does, later).
class ManualBackplane : public Backplane
{
public:
    ManualBackplane() : Backplane(QUrl("manual:")) { }
    bool reachesOtherNodes() const override { return true; }
    void confirm(const QByteArray &channel) { subscriptionConfirmed(channel); }
    void goOffline() { setStatus(Status::Connecting); }

    QList<QPair<QByteArray, QByteArray>> published;

protected:
    void doStart() override { setStatus(Status::Online); }
    void doSubscribe(const QByteArray &) override { }
    void doUnsubscribe(const QByteArray &) override { }
    bool doPublish(const QByteArray &channel, const QByteArray &message, Sent sent) override
    {
        published.append({ channel, message });
        if (sent)
            sent(1); // only this node
        return true;
    }
};
// The prepare runs on the node of each recipient: it greets the recipient by name.
using Greeter = Notifier<QString, QString, QString>;

class tst_Cluster : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void badUrlsAreRefused_data();
    void badUrlsAreRefused();
    void aServerAloneReachesNoOne();
    void notifyReachesTheOtherNodeOnce();
    void prepareRunsOnTheRecipientsNode();
    void notForUserHoldsOnEveryNode();
    void notForMeLeavesOutTheCallerOnly();
    void unlistenUserReachesEveryNode();
    void listenerCountCoversTheCluster();
    void listeningUsersCoverTheCluster();
    void aNodeSubscribesOnlyToItsKeys();
    void aNodeReceivesNothingForKeysNobodyThereListensTo();
    void nodesOnOtherThreads();
    void listenAckWaitsForTheSubscription();
    void aCustomBackplaneCarriesEachNotifyOnce();
    void replacingTheBackplaneKeepsListens();
    void redisUnreachableKeepsLocalDeliveryGoing();

private:
    struct Node
    {
        std::unique_ptr<Server> server;
        Chat *chat = nullptr;
        Greeter *greeter = nullptr;
    };
    // A node on inproc://<test function name>.
    std::unique_ptr<Node> makeNode(const QString &cluster = QString());
    // A raw client of the node, logged in as user, listening to key of notifier.
    std::unique_ptr<TestPeer> listener(Node &node, const QString &user,
                                       const QString &notifier = "chat",
                                       const QString &key = "room");
    static QStringList notifData(const TestPeer &peer);

    std::unique_ptr<Node> a;
    std::unique_ptr<Node> b;
};

static AuthResult userFromBearer(const HandshakeRequest &request)
{
    const QString user = QString::fromUtf8(request.bearerToken());
    return user.isEmpty() ? AuthResult::anonymous() : AuthResult::accept(Identity::user(user));
}

std::unique_ptr<tst_Cluster::Node> tst_Cluster::makeNode(const QString &cluster)
{
    auto node = std::make_unique<Node>();
    node->server = std::make_unique<Server>();
    node->server->setAuthenticator(userFromBearer);
    const QString name
            = cluster.isEmpty() ? QString::fromLatin1(QTest::currentTestFunction()) : cluster;
    if (!node->server->setBackplane(QUrl("inproc://" + name)))
        qFatal("inproc:// refused: %s", qPrintable(node->server->errorString()));
    node->chat = new Chat(node->server.get(), "chat");
    node->greeter = new Greeter(node->server.get(), "greeter",
                                [](const Identity &recipient, const QString &text) {
                                    return std::optional<QString>(text + ", " + recipient.userId());
                                });
    if (!node->server->listen())
        qFatal("cannot listen");
    return node;
}

std::unique_ptr<TestPeer> tst_Cluster::listener(Node &node, const QString &user,
                                                const QString &notifier, const QString &key)
{
    auto peer = std::make_unique<TestPeer>();
    const QByteArray bearer = "Bearer " + user.toUtf8();
    if (!peer->open(node.server->serverUrl(), { { "Authorization", bearer } })
        || !peer->listenAndWait(notifier, key))
        return nullptr;
    return peer;
}

QStringList tst_Cluster::notifData(const TestPeer &peer)
{
    QStringList data;
    for (const QJsonObject &frame : peer.framesOf("notif"))
        data.append(frame.value("data").toString());
    return data;
}

void tst_Cluster::init()
{
    a = makeNode();
    b = makeNode();
}

void tst_Cluster::cleanup()
{
    a.reset();
    b.reset();
}

void tst_Cluster::badUrlsAreRefused_data()
{
    QTest::addColumn<QString>("url");
    QTest::addColumn<QString>("error");
    QTest::newRow("unknown scheme") << "nats://127.0.0.1:4222"
                                    << "unknown backplane scheme";
    QTest::newRow("no host") << "redis:///0"
                             << "without a host";
    QTest::newRow("database not a number") << "redis://127.0.0.1:6379/one"
                                           << "not a number";
    QTest::newRow("user without password") << "redis://alice@127.0.0.1"
                                           << "no password";
}

void tst_Cluster::badUrlsAreRefused()
{
    QFETCH(QString, url);
    QFETCH(QString, error);
    Backplane *before = a->server->backplane();
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("cannot use the backplane"));
    QVERIFY(!a->server->setBackplane(QUrl(url)));
    QVERIFY2(a->server->errorString().contains(error), qPrintable(a->server->errorString()));
    QCOMPARE(a->server->backplane(), before); // the previous one stays

    QString direct;
    QVERIFY(!Backplane::create(QUrl(url), &direct));
    QVERIFY(direct.contains(error));
}

void tst_Cluster::aServerAloneReachesNoOne()
{
    Server alone;
    Chat chat(&alone, "chat");
    QVERIFY(alone.listen());
    Backplane *backplane = alone.backplane();
    QVERIFY(backplane);
    QCOMPARE(backplane->status(), Backplane::Status::Online);
    QVERIFY(!backplane->reachesOtherNodes());

    TestPeer peer;
    QVERIFY(peer.open(alone.serverUrl()));
    QVERIFY(peer.listenAndWait("chat", "room"));
    chat.notify("room", "hello");
    QTRY_COMPARE(notifData(peer), QStringList{ "hello" });
    // Nothing is encoded for a backplane that reaches no one.
    QCOMPARE(backplane->stats().published, 0u);
    QCOMPARE(chat.listenerCount("room").result(), 1); // ready at once: no one to ask
}

void tst_Cluster::notifyReachesTheOtherNodeOnce()
{
    QVERIFY(a->server->backplane()->reachesOtherNodes());
    QVERIFY(a->server->nodeId() != b->server->nodeId());
    auto onA = listener(*a, "alice");
    auto onB = listener(*b, "bob");
    QVERIFY(onA && onB);

    b->chat->notify("room", "first");
    b->chat->notify("room", "second");
    QTRY_COMPARE(notifData(*onA), QStringList({ "first", "second" }));
    QTRY_COMPARE(notifData(*onB), QStringList({ "first", "second" }));
    // A marker sent after them arrives after any duplicate would have.
    a->chat->notify("room", "marker");
    QTRY_COMPARE(notifData(*onB), QStringList({ "first", "second", "marker" }));
    QTRY_COMPARE(notifData(*onA), QStringList({ "first", "second", "marker" }));
    // Each node numbers the key's notifications for its own clients.
    QCOMPARE(onA->framesOf("notif").at(0).value("seq").toInteger(), 1);
}

void tst_Cluster::prepareRunsOnTheRecipientsNode()
{
    auto alice = listener(*a, "alice", "greeter", "hall");
    auto bob = listener(*b, "bob", "greeter", "hall");
    QVERIFY(alice && bob);
    b->greeter->notify("hall", "welcome");
    QTRY_COMPARE(notifData(*alice), QStringList{ "welcome, alice" });
    QTRY_COMPARE(notifData(*bob), QStringList{ "welcome, bob" });
}

void tst_Cluster::notForUserHoldsOnEveryNode()
{
    auto aliceOnA = listener(*a, "alice");
    auto aliceOnB = listener(*b, "alice");
    auto bobOnA = listener(*a, "bob");
    QVERIFY(aliceOnA && aliceOnB && bobOnA);
    b->chat->notify("room", "not for alice", NotFor::user("alice"));
    b->chat->notify("room", "for all");
    QTRY_COMPARE(notifData(*bobOnA), QStringList({ "not for alice", "for all" }));
    QTRY_COMPARE(notifData(*aliceOnA), QStringList{ "for all" });
    QTRY_COMPARE(notifData(*aliceOnB), QStringList{ "for all" });
}

void tst_Cluster::notForMeLeavesOutTheCallerOnly()
{
    auto caller = listener(*b, "alice");
    auto sameIdOnA = listener(*a, "bob");
    QVERIFY(caller && sameIdOnA);
    // Connection ids are per node: the first connection of each node has the same id, and
    // only the caller's node leaves it out.
    const ConnectionId callerId = b->server->connections().value(0);
    QCOMPARE(a->server->connections().value(0), callerId);
    b->chat->notify("room", "not for me", NotFor::connection(callerId));
    b->chat->notify("room", "for all");
    QTRY_COMPARE(notifData(*sameIdOnA), QStringList({ "not for me", "for all" }));
    QTRY_COMPARE(notifData(*caller), QStringList{ "for all" });
}

void tst_Cluster::unlistenUserReachesEveryNode()
{
    auto aliceOnA = listener(*a, "alice");
    auto aliceOnB = listener(*b, "alice");
    auto bobOnA = listener(*a, "bob");
    QVERIFY(aliceOnA && aliceOnB && bobOnA);

    QFuture<int> removed = b->chat->unlistenUser("alice", "room");
    QCOMPARE(b->chat->localListenerCount("room"), 0); // done here at once
    QTRY_VERIFY(removed.isFinished());
    QCOMPARE(removed.result(), 2);
    QTRY_COMPARE(aliceOnA->framesOf("unlistened").size(), 1);
    QCOMPARE(aliceOnA->framesOf("unlistened").at(0).value("reason").toString(), "user");
    QCOMPARE(aliceOnB->framesOf("unlistened").size(), 1);
    QCOMPARE(a->chat->localListenerCount("room"), 1); // bob stays

    b->chat->notify("room", "after");
    QTRY_COMPARE(notifData(*bobOnA), QStringList{ "after" });
    QVERIFY(notifData(*aliceOnA).isEmpty());
}

void tst_Cluster::listenerCountCoversTheCluster()
{
    auto c = makeNode(QTest::currentTestFunction());
    auto one = listener(*a, "alice");
    auto two = listener(*b, "bob");
    auto three = listener(*b, "carol");
    QVERIFY(one && two && three);
    for (Node *node : { a.get(), b.get(), c.get() }) {
        QFuture<int> count = node->chat->listenerCount("room");
        QTRY_VERIFY(count.isFinished());
        QCOMPARE(count.result(), 3);
    }
    QCOMPARE(c->chat->localListenerCount("room"), 0);
    QCOMPARE(b->chat->localListenerCount("room"), 2);
}

void tst_Cluster::listeningUsersCoverTheCluster()
{
    auto alice = listener(*a, "alice");
    auto aliceAgain = listener(*a, "alice");
    auto bob = listener(*b, "bob");
    auto anonymous = listener(*b, QString());
    auto elsewhere = listener(*b, "carol", "chat", "elsewhere");
    QVERIFY(alice && aliceAgain && bob && anonymous && elsewhere);
    QCOMPARE(a->chat->localListeningUsers("room"), QStringList{ "alice" });
    for (Node *node : { a.get(), b.get() }) {
        QFuture<QStringList> users = node->chat->listeningUsers("room");
        QTRY_VERIFY(users.isFinished());
        QCOMPARE(users.result(), QStringList({ "alice", "bob" }));
    }
}

void tst_Cluster::aNodeSubscribesOnlyToItsKeys()
{
    Backplane *backplane = a->server->backplane();
    const QByteArray channel = R"(key:"chat":"room")";
    QVERIFY(!backplane->isSubscribed(channel));
    const int base = backplane->stats().channels; // the cluster's own channels
    auto first = listener(*a, "alice");
    QVERIFY(first);
    QVERIFY(backplane->isSubscribed(channel));
    auto second = listener(*a, "bob");
    QVERIFY(second);
    QCOMPARE(backplane->stats().channels, base + 1);

    first->unlisten("chat", "room");
    QTRY_COMPARE(a->chat->localListenerCount("room"), 1);
    QVERIFY(backplane->isSubscribed(channel)); // bob still listens
    second.reset();                            // disconnects
    QTRY_VERIFY(!backplane->isSubscribed(channel));
    QCOMPARE(backplane->stats().channels, base);
}

void tst_Cluster::aNodeReceivesNothingForKeysNobodyThereListensTo()
{
    auto onB = listener(*b, "bob", "chat", "elsewhere");
    QVERIFY(onB);
    const quint64 receivedBefore = a->server->backplane()->stats().received;
    for (int i = 0; i < 10; ++i)
        b->chat->notify("elsewhere", QString::number(i));
    // A marker on a key A listens to: once it is in, anything sent before it would be too.
    auto onA = listener(*a, "alice", "chat", "marker");
    QVERIFY(onA);
    b->chat->notify("marker", "marker");
    QTRY_COMPARE(notifData(*onA), QStringList{ "marker" });
    QCOMPARE(a->server->backplane()->stats().received, receivedBefore + 1);
    QCOMPARE(notifData(*onB).size(), 10);
    QCOMPARE(b->server->backplane()->stats().published, 11u);
}

void tst_Cluster::nodesOnOtherThreads()
{
    // C is made, works and is deleted on a thread of its own; inproc:// carries messages
    // across threads.
    QThread thread;
    QObject onThread;
    onThread.moveToThread(&thread);
    thread.start();
    std::unique_ptr<Node> c;
    const auto onC = [&](auto f) {
        QMetaObject::invokeMethod(&onThread, f, Qt::BlockingQueuedConnection);
    };
    onC([&] { c = makeNode("nodesOnOtherThreads"); });
    auto stop = qScopeGuard([&] {
        onC([&] { c.reset(); });
        thread.quit();
        thread.wait();
    });
    QCOMPARE(c->server->backplane()->thread(), &thread);

    auto onA = listener(*a, "alice");
    auto onThreadC = listener(*c, "bob");
    QVERIFY(onA && onThreadC);
    // notify() from this thread is queued to C's, which delivers and publishes to A and B.
    c->chat->notify("room", "from another thread");
    QTRY_COMPARE(notifData(*onA), QStringList{ "from another thread" });
    QTRY_COMPARE(notifData(*onThreadC), QStringList{ "from another thread" });
    a->chat->notify("room", "to another thread");
    QTRY_COMPARE(notifData(*onThreadC),
                 QStringList({ "from another thread", "to another thread" }));
}

void tst_Cluster::listenAckWaitsForTheSubscription()
{
    Server node;
    Chat chat(&node, "chat");
    auto owned = std::make_unique<ManualBackplane>();
    ManualBackplane *backplane = owned.get();
    node.setBackplane(std::move(owned));
    QVERIFY(node.listen());
    const QByteArray channel = R"(key:"chat":"room")";

    TestPeer first;
    QVERIFY(first.open(node.serverUrl()));
    QSignalSpy added(&chat, &AbstractNotifier::listenerAdded);
    const qint64 listenId = first.listen("chat", "room");
    QTRY_COMPARE(added.size(), 1);
    QVERIFY(backplane->isSubscribed(channel));
    // An answer sent after the listen was handled arrives after any ack sent then.
    QCOMPARE(first.answerTo(first.request("nothing", {})).value("code").toString(),
             "unknown_method");
    QVERIFY(first.framesOf("ack").isEmpty());
    // Local notifications flow meanwhile: the listen is registered.
    chat.notify("room", "local");
    QTRY_COMPARE(notifData(first), QStringList{ "local" });

    backplane->confirm(channel);
    QCOMPARE(first.answerTo(listenId).value("op").toString(), "ack");

    // The key is reachable now: the next listener is acked at once.
    TestPeer second;
    QVERIFY(second.open(node.serverUrl()));
    QVERIFY(second.listenAndWait("chat", "room"));

    // Offline, nothing comes from other nodes anyway: no waiting.
    backplane->goOffline();
    TestPeer third;
    QVERIFY(third.open(node.serverUrl()));
    QVERIFY(third.listenAndWait("chat", "elsewhere"));
}

void tst_Cluster::aCustomBackplaneCarriesEachNotifyOnce()
{
    Server node;
    Greeter greeter(&node, "greeter", [](const Identity &, const QString &text) {
        return std::optional<QString>(text);
    });
    auto owned = std::make_unique<ManualBackplane>();
    ManualBackplane *backplane = owned.get();
    node.setBackplane(std::move(owned));
    QCOMPARE(node.backplane(), backplane);
    QVERIFY(node.listen());
    // Listeners or not, each notify is published once, with the ServerNotif encoded once.
    TestPeer one, two;
    QVERIFY(one.open(node.serverUrl()) && two.open(node.serverUrl()));
    QVERIFY(one.listen("greeter", "hall") && two.listen("greeter", "hall"));
    greeter.notify("hall", "hello", NotFor::user("alice"));
    greeter.notify("nobody here", "hi");
    QCOMPARE(backplane->published.size(), 2);
    QCOMPARE(backplane->published.at(0).first, QByteArray(R"(key:"greeter":"hall")"));
    const QJsonObject message = QJsonDocument::fromJson(backplane->published.at(0).second).object();
    QCOMPARE(message.value("t").toString(), "notify");
    QCOMPARE(message.value("o").toString(), node.nodeId());
    QCOMPARE(message.value("k").toString(), "hall");
    QCOMPARE(message.value("d").toString(), "hello");
    QCOMPARE(message.value("u").toString(), "alice");
}

void tst_Cluster::replacingTheBackplaneKeepsListens()
{
    Server node;
    Chat chat(&node, "chat");
    node.setBackplane(std::make_unique<ManualBackplane>()); // never confirms
    QVERIFY(node.listen());
    TestPeer peer;
    QVERIFY(peer.open(node.serverUrl()));
    const qint64 listenId = peer.listen("chat", "room");
    QTRY_COMPARE(chat.localListenerCount("room"), 1);

    // The ack waiting on the old backplane goes, and the new one subscribes to the key.
    QVERIFY(node.setBackplane(QUrl("inproc://replacingTheBackplaneKeepsListens")));
    QCOMPARE(peer.answerTo(listenId).value("op").toString(), "ack");
    QVERIFY(node.backplane()->isSubscribed(R"(key:"chat":"room")"));
    auto other = makeNode("replacingTheBackplaneKeepsListens");
    other->chat->notify("room", "from the new cluster");
    QTRY_COMPARE(notifData(peer), QStringList{ "from the new cluster" });
}

void tst_Cluster::redisUnreachableKeepsLocalDeliveryGoing()
{
    // A port nobody listens on: the node keeps trying, and serves its own clients meanwhile.
    QTcpServer probe;
    QVERIFY(probe.listen(QHostAddress::LocalHost));
    const quint16 port = probe.serverPort();
    probe.close();

    Server node;
    Chat chat(&node, "chat");
    // Each of its two connections says so once, then retries quietly.
    QTest::ignoreMessage(QtWarningMsg,
                         QRegularExpression("cannot reach redis://127.0.0.1.* publisher"));
    QTest::ignoreMessage(QtWarningMsg,
                         QRegularExpression("cannot reach redis://127.0.0.1.* subscriber"));
    QVERIFY(node.setBackplane(QUrl(QString("redis://:secret@127.0.0.1:%1/2").arg(port))));
    QCOMPARE(node.backplane()->url().toString(), QString("redis://127.0.0.1:%1/2").arg(port));
    QSignalSpy status(node.backplane(), &Backplane::statusChanged);
    QVERIFY(node.listen());
    QTRY_COMPARE(node.backplane()->status(), Backplane::Status::Connecting);

    TestPeer peer;
    QVERIFY(peer.open(node.serverUrl()));
    QVERIFY(peer.listenAndWait("chat", "room"));
    chat.notify("room", "local");
    QTRY_COMPARE(notifData(peer), QStringList{ "local" });
    QCOMPARE(node.backplane()->stats().dropped, 1u);
    QFuture<int> count = chat.listenerCount("room");
    QVERIFY(count.isFinished()); // offline: this node's count at once
    QCOMPARE(count.result(), 1);
    QVERIFY(!status.contains(QVariantList{ QVariant::fromValue(Backplane::Status::Online) }));
}

QTEST_MAIN(tst_Cluster)
#include "tst_cluster.moc"
