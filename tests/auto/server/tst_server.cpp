// The server over real WebSocket connections on loopback, spoken to in raw qtnotif.v1 frames.
#include "chatmessage.h"
#include "rawwebsocket.h"
#include "server_p.h"
#include "tcpsegments.h"
#include "testmain.h"
#include "testpeer.h"

#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QAbstractEventDispatcher>
#include <QtCore/QElapsedTimer>
#include <QtCore/QJsonDocument>
#include <QtCore/QPromise>
#include <QtCore/QSemaphore>
#include <QtCore/QThread>
#include <QtCore/QTimer>
#include <QtNetwork/QTcpSocket>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <atomic>
#include <memory>

#ifdef Q_OS_LINUX
#include <QtCore/QDir>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#endif

using namespace QtNotif;
using namespace std::chrono_literals;

class tst_Server : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void clientSocketsSendAtOnce();
    void aClientThatDoesNotReadIsClosed();
    void requestsAreRateLimited();
    void connectionsPerUserAreBounded();
    void handshakeTimeoutDropsSilentPeers();
    void listenRaisesTheLimitOfOpenFiles();

    void welcomeCarriesIdentityAndLimits();
    void upgradeAnswerGoesWithTheFirstFrame();
    void listenNotifyUnlisten();
    void listenTwiceIsHarmless();
    void twoNotifiersOnOneConnection();
    void gadgetNotificationsAndIntegerKeys();
    void gadgetKeysAreListenedInTheirOwnForm();
    void prepareTransformsPerIdentity();
    void prepareBlocksByIdentity();
    void prepareRedactsDespiteOperatorEquals();
    void framesAreExactlyEachClientsOwn_data();
    void framesAreExactlyEachClientsOwn();
    void asyncPrepareKeepsNotifyOrder();
    void callbackPrepareKeepsNotifyOrder();
    void prepareMayDisconnectListeners();
    void authenticatorSeesHeadersQueryAndCookies();
    void authenticatorRefusal();
    void missingSubprotocolIsRefused();
    void listenDeniedByServerAuthorizer();
    void listenDeniedByNotifierAuthorizer();
    void listenErrors_data();
    void listenErrors();
    void tooManyListens();
    void upstreamCallAndReply();
    void upstreamErrors();
    void notForMeFromAHandler();
    void notForUser();
    void unlistenUserIsObservedByTheClient();
    void serverSideListenAndUnlisten();
    void notificationsKeepTheirPlaceAmongOtherFrames();
    void listenerSignalsTrackPresence();
    void disconnectLeavesRegistryEmpty();
    void identityChangeDropsListens();
    void identityChangeDropsNotificationsPreparedForTheOldIdentity();
    void nonPositiveSettingsAreIgnored();
    void writeDelayGathersNotifications();
    void writeDelayLeavesAnswersAlone();
    void malformedFramesGetErrorsWhileOthersKeepReceiving_data();
    void malformedFramesGetErrorsWhileOthersKeepReceiving();
    void frameBeyondLimitClosesOnlyThatClient();
    void deadPeerIsDroppedByHeartbeat();
    void heartbeatSpreadsItsPingsOverTheInterval();
    void notifyFromAnotherThreadIsQueued();
    void deletedNotifierTellsItsListeners();
    void closeDisconnectsEveryone();
    void duplicateNotifierNameIsRejected();
    void adviceOnTheEventDispatcher();

private:
    std::unique_ptr<TestPeer> connectPeer(const QList<QPair<QByteArray, QByteArray>> &headers = {});
    bool waitForNotifs(TestPeer &peer, int count);

    std::unique_ptr<Server> server;
};

void tst_Server::init()
{
    server = std::make_unique<Server>();
    QVERIFY(server->listen(QHostAddress::LocalHost, 0));
}

void tst_Server::cleanup()
{
    server.reset();
}

std::unique_ptr<TestPeer> tst_Server::connectPeer(
        const QList<QPair<QByteArray, QByteArray>> &headers)
{
    auto peer = std::make_unique<TestPeer>();
    if (!peer->open(server->serverUrl(), headers))
        qWarning("peer did not get its welcome");
    return peer;
}

bool tst_Server::waitForNotifs(TestPeer &peer, int count)
{
    return QTest::qWaitFor([&] { return peer.framesOf("notif").size() >= count; }, 5000);
}

// An authenticator for tests: "Authorization: Bearer <user>" names the user.
static AuthResult userFromBearer(const HandshakeRequest &request)
{
    const QByteArray user = request.bearerToken();
    if (user.isEmpty())
        return AuthResult::anonymous();
    return AuthResult::accept(Identity::user(QString::fromUtf8(user), { { "role", "member" } }));
}

static QList<QPair<QByteArray, QByteArray>> bearer(const QByteArray &user)
{
    return { { "Authorization", "Bearer " + user } };
}

void tst_Server::upgradeAnswerGoesWithTheFirstFrame()
{
#ifndef Q_OS_LINUX
    QSKIP("TCP_INFO's count of segments is Linux's");
#else
    // The 101 response and the welcome reach the client in one write of the server, whichever
    // thread writes it (tst_server_workers: a worker's).
    RawWebSocket welcomed;
    QVERIFY(welcomed.open(server->serverPort()));
    QVERIFY(welcomed.waitForMessages("welcome", 1));
    QCOMPARE(tcpDataSegmentsReceived(welcomed.socket.socketDescriptor()), 1);

    // So do the 101 and the close frame of a refused client; counted as the close frame comes,
    // before the connection closes.
    server->setAuthenticator([](const HandshakeRequest &) { return AuthResult::refuse("no"); });
    RawWebSocket refused;
    int segmentsAtClose = -1;
    connect(&refused.socket, &QIODevice::readyRead, this, [&] {
        if (refused.closeCode && segmentsAtClose < 0)
            segmentsAtClose = tcpDataSegmentsReceived(refused.socket.socketDescriptor());
    });
    QVERIFY(refused.open(server->serverPort()));
    QVERIFY(refused.waitForClose());
    QCOMPARE(*refused.closeCode, quint16(Protocol::CloseCode::AuthenticationRefused));
    QCOMPARE(segmentsAtClose, 1);
#endif
}

void tst_Server::welcomeCarriesIdentityAndLimits()
{
    server->setAuthenticator(userFromBearer);
    server->setHeartbeatInterval(7s);
    QSignalSpy connected(server.get(), &Server::clientConnected);
    auto alice = connectPeer(bearer("alice"));
    const QJsonObject welcome = alice->welcome();
    QCOMPARE(welcome["protocol"].toInt(), 1);
    QCOMPARE(welcome["identity"]["user"].toString(), QString("alice"));
    QCOMPARE(welcome["identity"]["attributes"]["role"].toString(), QString("member"));
    QCOMPARE(welcome["heartbeat"].toInt(), 7000);
    QCOMPARE(welcome["limits"]["maxFrameSize"].toInt(), 65536);
    QCOMPARE(welcome["limits"]["maxListens"].toInt(), 1000);
    QCOMPARE(alice->socket.subprotocol(), QString("qtnotif.v1"));
    QTRY_COMPARE(connected.size(), 1);
    const auto id = connected.at(0).at(0).value<ConnectionId>();
    QCOMPARE(welcome["connection"].toString(), QString::number(id));
    QCOMPARE(server->identity(id).userId(), QString("alice"));

    auto anonymous = connectPeer();
    const QJsonObject anonymousWelcome = anonymous->welcome();
    QVERIFY(anonymousWelcome["identity"]["user"].isNull());
    QCOMPARE(server->connectionCount(), 2);
}

void tst_Server::listenNotifyUnlisten()
{
    auto *chat = new SimpleNotifier<QString, QJsonObject>(server.get(), "chat");
    auto peer = connectPeer();
    const QJsonObject ack = peer->answerTo(peer->listen("chat", "room1"));
    QCOMPARE(ack["op"].toString(), QString("ack"));
    QCOMPARE(ack["alreadyListening"].toBool(), false);
    QCOMPARE(chat->localListenerCount("room1"), 1);

    chat->notify("room1", { { "text", "hello" } });
    chat->notify("room2", { { "text", "nobody listens" } });
    chat->notify("room1", { { "text", "again" } });
    QVERIFY(waitForNotifs(*peer, 2));
    const QJsonObject first = peer->framesOf("notif").at(0);
    QCOMPARE(first["notifier"].toString(), QString("chat"));
    QCOMPARE(first["key"].toString(), QString("room1"));
    QCOMPARE(first["seq"].toInt(), 1);
    QCOMPARE(first["data"]["text"].toString(), QString("hello"));
    QCOMPARE(peer->framesOf("notif").at(1)["seq"].toInt(), 2);

    const QJsonObject unlistenAck = peer->answerTo(peer->unlisten("chat", "room1"));
    QCOMPARE(unlistenAck["wasListening"].toBool(), true);
    QCOMPARE(peer->answerTo(peer->unlisten("chat", "room1"))["wasListening"].toBool(), false);
    QCOMPARE(chat->localListenerCount("room1"), 0);
    QCOMPARE(server->keyCount(), 0);

    // A marker notify on another key proves nothing more came for room1 meanwhile.
    QVERIFY(peer->listenAndWait("chat", "marker"));
    chat->notify("room1", { { "text", "after unlisten" } });
    chat->notify("marker", {});
    QVERIFY(waitForNotifs(*peer, 3));
    QCOMPARE(peer->framesOf("notif").at(2)["key"].toString(), QString("marker"));
}

void tst_Server::listenTwiceIsHarmless()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("chat", "a"));
    QCOMPARE(peer->answerTo(peer->listen("chat", "a"))["alreadyListening"].toBool(), true);
    QCOMPARE(chat->localListenerCount("a"), 1);
    chat->notify("a", "once");
    chat->notify("a", "twice");
    QVERIFY(waitForNotifs(*peer, 2));
    QCOMPARE(peer->framesOf("notif").at(0)["data"].toString(), QString("once"));
    QCOMPARE(peer->framesOf("notif").at(1)["data"].toString(), QString("twice"));
}

void tst_Server::twoNotifiersOnOneConnection()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto *jobs = new SimpleNotifier<int, QVariantMap>(server.get(), "jobs");
    auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("chat", "a"));
    QVERIFY(peer->listenAndWait("jobs", 7));
    jobs->notify(7, { { "done", true } });
    chat->notify("a", "hi");
    QVERIFY(waitForNotifs(*peer, 2));
    const auto notifs = peer->framesOf("notif");
    QCOMPARE(notifs.at(0)["notifier"].toString(), QString("jobs"));
    QCOMPARE(notifs.at(0)["key"].toInt(), 7);
    QCOMPARE(notifs.at(0)["data"]["done"].toBool(), true);
    QCOMPARE(notifs.at(1)["notifier"].toString(), QString("chat"));
    // The same key on two notifiers is two different keys.
    QCOMPARE(chat->localListenerCount("a"), 1);
    QCOMPARE(server->keyCount(), 2);
}

void tst_Server::gadgetNotificationsAndIntegerKeys()
{
    auto *chat = new SimpleNotifier<qint64, ChatMessage>(server.get(), "chat");
    auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("chat", 42));
    chat->notify(42, ChatMessage{ "alice", "hi" });
    QVERIFY(waitForNotifs(*peer, 1));
    const QJsonObject data = peer->framesOf("notif").at(0)["data"].toObject();
    QCOMPARE(data["from"].toString(), QString("alice"));
    QCOMPARE(data["text"].toString(), QString("hi"));
}

void tst_Server::gadgetKeysAreListenedInTheirOwnForm()
{
    auto *rooms = new SimpleNotifier<ChatMessage, QString>(server.get(), "rooms");
    auto peer = connectPeer();
    // The order of the members does not matter: keys compare in their canonical form.
    QVERIFY(peer->listenAndWait("rooms", QJsonObject{ { "text", "b" }, { "from", "a" } }));
    rooms->notify(ChatMessage{ "a", "b" }, "hi");
    QVERIFY(waitForNotifs(*peer, 1));
    QCOMPARE(peer->framesOf("notif").at(0)["data"].toString(), QString("hi"));
    QCOMPARE(rooms->localListenerCount(ChatMessage{ "a", "b" }), 1);
}

void tst_Server::prepareTransformsPerIdentity()
{
    server->setAuthenticator(userFromBearer);
    // ServerNotif is the message; each client gets it addressed to them.
    auto *chat = new Notifier<QString, ChatMessage, QVariantMap>(
            server.get(), "chat", [](const Identity &identity, const ChatMessage &message) {
                return std::optional<QVariantMap>(
                        { { "text", message.text },
                          { "mine", identity.userId() == message.from },
                          { "to", identity.isAnonymous() ? "guest" : identity.userId() } });
            });
    auto alice = connectPeer(bearer("alice"));
    auto bob = connectPeer(bearer("bob"));
    auto guest = connectPeer();
    for (TestPeer *peer : { alice.get(), bob.get(), guest.get() })
        QVERIFY(peer->listenAndWait("chat", "room"));
    chat->notify("room", ChatMessage{ "alice", "hello" });
    for (TestPeer *peer : { alice.get(), bob.get(), guest.get() })
        QVERIFY(waitForNotifs(*peer, 1));
    QCOMPARE(alice->framesOf("notif").at(0)["data"]["mine"].toBool(), true);
    QCOMPARE(bob->framesOf("notif").at(0)["data"]["mine"].toBool(), false);
    QCOMPARE(bob->framesOf("notif").at(0)["data"]["to"].toString(), QString("bob"));
    QCOMPARE(guest->framesOf("notif").at(0)["data"]["to"].toString(), QString("guest"));
    QCOMPARE(guest->framesOf("notif").at(0)["data"]["text"].toString(), QString("hello"));
}

// A notification that is "the same message" when from the same sender: an equality an
// application may well define, blind to what a prepare redacts.
struct Post
{
    Q_GADGET
    Q_PROPERTY(QString from MEMBER from)
    Q_PROPERTY(QString text MEMBER text)
public:
    QString from;
    QString text;
    friend bool operator==(const Post &a, const Post &b) { return a.from == b.from; }
};

// A prepare's result goes out as the notification's own frame only when it shares the
// notification's data, never because operator== says equal.
void tst_Server::prepareRedactsDespiteOperatorEquals()
{
    server->setAuthenticator(userFromBearer);
    auto *chat = new Notifier<QString, Post>(
            server.get(), "chat",
            [](const Identity &identity, const Post &post) -> std::optional<Post> {
                if (identity.userId() != "guest")
                    return post;
                return Post{ post.from, "[hidden]" }; // equal, by operator==
            });
    auto alice = connectPeer(bearer("alice"));
    auto guest = connectPeer(bearer("guest"));
    QVERIFY(alice->listenAndWait("chat", "room"));
    QVERIFY(guest->listenAndWait("chat", "room"));
    chat->notify("room", Post{ "bob", "secret" });
    QVERIFY(waitForNotifs(*alice, 1));
    QVERIFY(waitForNotifs(*guest, 1));
    QCOMPARE(alice->framesOf("notif").at(0)["data"]["text"].toString(), QString("secret"));
    QCOMPARE(guest->framesOf("notif").at(0)["data"]["text"].toString(), QString("[hidden]"));
}

void tst_Server::prepareBlocksByIdentity()
{
    server->setAuthenticator(userFromBearer);
    // Bob blocked alice: he does not receive her messages.
    auto *chat = new Notifier<QString, ChatMessage>(
            server.get(), "chat",
            [](const Identity &identity, const ChatMessage &message) -> std::optional<ChatMessage> {
                if (identity.userId() == "bob" && message.from == "alice")
                    return std::nullopt;
                return message;
            });
    auto alice = connectPeer(bearer("alice"));
    auto bob = connectPeer(bearer("bob"));
    QVERIFY(alice->listenAndWait("chat", "room"));
    QVERIFY(bob->listenAndWait("chat", "room"));
    chat->notify("room", ChatMessage{ "alice", "from alice" });
    chat->notify("room", ChatMessage{ "carol", "from carol" });
    QVERIFY(waitForNotifs(*alice, 2));
    QVERIFY(waitForNotifs(*bob, 1));
    QCOMPARE(bob->framesOf("notif").size(), 1);
    QCOMPARE(bob->framesOf("notif").at(0)["data"]["text"].toString(), QString("from carol"));
    // The sequence number is the key's: bob sees 2, and knows one was not for him.
    QCOMPARE(bob->framesOf("notif").at(0)["seq"].toInt(), 2);
}

void tst_Server::framesAreExactlyEachClientsOwn_data()
{
    QTest::addColumn<QString>("form");
    QTest::addRow("SimpleNotifier") << "simple";
    // The notification itself (shared data) to some clients, their own copy to others.
    QTest::addRow("Notifier") << "unchanged";
    // An equal object built anew (no shared data) instead of the notification itself.
    QTest::addRow("Notifier, equal copies") << "equal";
    // A prepare returning bool: the notification unchanged, or nothing.
    QTest::addRow("Notifier, filter") << "filter";
}

// The server frames a notification once and writes the same bytes to every client owed the
// same text. Each client must still receive exactly the frame it is owed, seq included: with a
// prepare that gives the notification unchanged to some clients and changed to others, in
// alternation, a shared frame never reaches a client owed another. Texts of every length class
// of the WebSocket header (7-bit, 16-bit and 64-bit lengths, and past the 512 KiB at which
// QWebSocket fragments), with characters beyond ASCII.
void tst_Server::framesAreExactlyEachClientsOwn()
{
    QFETCH(QString, form);
    server->setAuthenticator(userFromBearer);
    AbstractNotifier *notifier = nullptr;
    std::function<void(const QJsonObject &)> notify;
    // What each client is owed: nothing for the author; for the x* users their own copy
    // (except with the filter); for the others the notification unchanged.
    const auto expect = [form](const Identity &identity,
                               const QJsonObject &message) -> std::optional<QJsonObject> {
        if (form == "simple")
            return message;
        if (identity.userId() == message["author"].toString())
            return std::nullopt;
        if (form == "filter" || !identity.userId().startsWith(u'x'))
            return message;
        QJsonObject mine = message;
        mine.insert("to", identity.userId());
        return mine;
    };
    if (form == "simple") {
        auto *chat = new SimpleNotifier<QString, QJsonObject>(server.get(), "chat");
        notify = [chat](const QJsonObject &message) { chat->notify("room", message); };
        notifier = chat;
    } else if (form == "filter") {
        auto *chat = new Notifier<QString, QJsonObject>(
                server.get(), "chat", [](const Identity &identity, const QJsonObject &message) {
                    return identity.userId() != message["author"].toString();
                });
        notify = [chat](const QJsonObject &message) { chat->notify("room", message); };
        notifier = chat;
    } else {
        const bool copy = form == "equal";
        auto *chat = new Notifier<QString, QJsonObject>(
                server.get(), "chat",
                [expect, copy](const Identity &identity,
                               const QJsonObject &message) -> std::optional<QJsonObject> {
                    std::optional<QJsonObject> data = expect(identity, message);
                    if (copy && data == message)
                        return QJsonDocument::fromJson(QJsonDocument(message).toJson()).object();
                    return data;
                });
        notify = [chat](const QJsonObject &message) { chat->notify("room", message); };
        notifier = chat;
    }
    const QStringList users{ "a1", "x1", "a2", "x2", "author", "a3" };
    std::vector<std::unique_ptr<TestPeer>> peers;
    for (const QString &user : users) {
        peers.push_back(connectPeer(bearer(user.toUtf8())));
        QVERIFY(peers.back()->listenAndWait("chat", "room"));
    }
    const QList<QJsonObject> messages{
        { { "author", "author" }, { "text", "short: é€😀" } },
        { { "author", "nobody" }, { "text", QString(300, u'ü') } },
        { { "author", "author" }, { "text", QString(70'000, u'€') } },
        { { "author", "nobody" }, { "text", QString(600'000, u'a') } },
        { { "author", "author" }, { "text", "\"quoted\"\n" } },
    };
    for (const QJsonObject &message : messages)
        notify(message);

    using namespace Protocol;
    for (qsizetype p = 0; p < users.size(); ++p) {
        QStringList expected;
        for (qsizetype m = 0; m < messages.size(); ++m) {
            const auto data = expect(Identity::user(users[p]), messages[m]);
            if (data) {
                expected.append(notifFrame(toJsonText(notifier->name()), canonicalKey("room"),
                                           quint64(m + 1), toJsonText(*data)));
            }
        }
        TestPeer &peer = *peers[std::size_t(p)];
        QVERIFY(QTest::qWaitFor([&] { return peer.framesOf("notif").size() >= expected.size(); },
                                10000));
        QStringList received;
        for (const QString &text : std::as_const(peer.texts)) {
            if (text.startsWith(QLatin1String("{\"op\":\"notif\"")))
                received.append(text);
        }
        QCOMPARE(received.size(), expected.size());
        for (qsizetype i = 0; i < expected.size(); ++i)
            QVERIFY2(received[i] == expected[i],
                     qPrintable(users[p] + u" frame " + QString::number(i)));
    }
}

// prepare is the application's code and may close connections, the one it prepares for
// included: a closed connection receives nothing more, and its prepare does not run once it is
// gone; the others still receive what they are owed.
void tst_Server::prepareMayDisconnectListeners()
{
    server->setAuthenticator(userFromBearer);
    QHash<QString, ConnectionId> ids;
    connect(server.get(), &Server::clientConnected, this,
            [&ids](ConnectionId id, const Identity &identity) { ids[identity.userId()] = id; });
    QStringList preparedFor;
    auto *chat = new Notifier<QString, QJsonObject>(
            server.get(), "chat",
            [&](const Identity &identity,
                const QJsonObject &message) -> std::optional<QJsonObject> {
                const QString user = identity.userId();
                preparedFor.append(user);
                if (user == "a") // a later listener
                    server->disconnectClient(ids.value("c"));
                if (user == "b") // the listener being prepared for
                    server->disconnectClient(ids.value("b"));
                if (user == "d")
                    return QJsonObject{ { "text", message["text"] }, { "to", "d" } };
                return message;
            });
    const QStringList users{ "a", "b", "c", "d", "e" };
    std::vector<std::unique_ptr<TestPeer>> peers;
    for (const QString &user : users) {
        peers.push_back(connectPeer(bearer(user.toUtf8())));
        QVERIFY(peers.back()->listenAndWait("chat", "room"));
    }
    QCOMPARE(ids.size(), users.size());
    chat->notify("room", QJsonObject{ { "text", "hi" } });
    QCOMPARE(preparedFor, (QStringList{ "a", "b", "d", "e" }));
    QVERIFY(waitForNotifs(*peers[0], 1));
    QVERIFY(waitForNotifs(*peers[3], 1));
    QVERIFY(waitForNotifs(*peers[4], 1));
    QTRY_VERIFY(peers[1]->disconnected);
    QTRY_VERIFY(peers[2]->disconnected);
    QCOMPARE(peers[1]->framesOf("notif").size(), 0);
    QCOMPARE(peers[2]->framesOf("notif").size(), 0);
    QCOMPARE(peers[0]->framesOf("notif").at(0)["data"].toObject(),
             (QJsonObject{ { "text", "hi" } }));
    QCOMPARE(peers[3]->framesOf("notif").at(0)["data"].toObject(),
             (QJsonObject{ { "text", "hi" }, { "to", "d" } }));
    QCOMPARE(peers[4]->framesOf("notif").at(0)["data"].toObject(),
             (QJsonObject{ { "text", "hi" } }));
    // Still one frame each: the next notification reaches exactly the three left.
    chat->notify("room", QJsonObject{ { "text", "again" } });
    QVERIFY(waitForNotifs(*peers[4], 2));
    QTRY_COMPARE(peers[0]->framesOf("notif").size(), 2);
    QTRY_COMPARE(peers[3]->framesOf("notif").size(), 2);
}

void tst_Server::asyncPrepareKeepsNotifyOrder()
{
    // Each prepare finishes after a delay that shrinks with n, so later notifications are
    // prepared first; the client must still receive 1, 2, 3, 4, 5.
    auto *jobs = new Notifier<QString, int>(
            server.get(), "jobs", [this](const Identity &, const int &n) {
                auto promise = std::make_shared<QPromise<std::optional<int>>>();
                promise->start();
                QTimer::singleShot((6 - n) * 20, server.get(), [promise, n] {
                    promise->addResult(n == 3 ? std::nullopt : std::optional<int>(n));
                    promise->finish();
                });
                return promise->future();
            });
    auto peer = connectPeer();
    auto other = connectPeer();
    QVERIFY(peer->listenAndWait("jobs", "k"));
    QVERIFY(other->listenAndWait("jobs", "k"));
    for (int n = 1; n <= 5; ++n)
        jobs->notify("k", n);
    QVERIFY(waitForNotifs(*peer, 4));
    QVERIFY(waitForNotifs(*other, 4));
    QList<int> received;
    for (const QJsonObject &frame : peer->framesOf("notif"))
        received.append(frame["data"].toInt());
    QCOMPARE(received, QList<int>({ 1, 2, 4, 5 }));
}

void tst_Server::callbackPrepareKeepsNotifyOrder()
{
    using Jobs = Notifier<QString, int>;
    // The callback form, answering odd numbers at once and even ones later.
    auto *jobs = new Jobs(server.get(), "jobs",
                          [this](const Identity &, const int &n, Jobs::Done done) {
                              if (n % 2)
                                  done(n);
                              else
                                  QTimer::singleShot(50, server.get(), [done, n] { done(n * 10); });
                          });
    auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("jobs", "k"));
    for (int n = 1; n <= 4; ++n)
        jobs->notify("k", n);
    QVERIFY(waitForNotifs(*peer, 4));
    QList<int> received;
    for (const QJsonObject &frame : peer->framesOf("notif"))
        received.append(frame["data"].toInt());
    QCOMPARE(received, QList<int>({ 1, 20, 3, 40 }));
}

void tst_Server::authenticatorSeesHeadersQueryAndCookies()
{
    HandshakeRequest seen;
    server->setAuthenticator([&seen](const HandshakeRequest &request) {
        seen = request;
        return AuthResult::anonymous();
    });
    auto peer = std::make_unique<TestPeer>();
    QUrl url = server->serverUrl();
    url.setQuery("token=abc%20def&room=1");
    QVERIFY(peer->open(url, { { "Cookie", "session=s3cret; theme=dark" }, { "X-App", "demo" } }));
    QCOMPARE(seen.queryItem("token"), QString("abc def"));
    QVERIFY(seen.queryItem("absent").isNull());
    QCOMPARE(seen.cookie("session"), QByteArray("s3cret"));
    QCOMPARE(seen.cookie("theme"), QByteArray("dark"));
    QCOMPARE(seen.header("x-app"), QByteArray("demo"));
    QVERIFY(seen.peerAddress().isLoopback());
}

void tst_Server::authenticatorRefusal()
{
    server->setAuthenticator([](const HandshakeRequest &request) {
        return request.bearerToken() == "good" ? AuthResult::anonymous()
                                               : AuthResult::refuse("token expired");
    });
    QSignalSpy refused(server.get(), &Server::clientRefused);
    TestPeer peer;
    QVERIFY(peer.open(server->serverUrl(), bearer("bad"), { "qtnotif.v1" }, false));
    QCOMPARE(int(peer.socket.closeCode()), 4401);
    QCOMPARE(peer.socket.closeReason(), QString("token expired"));
    QVERIFY(peer.framesOf("welcome").isEmpty());
    QCOMPARE(refused.size(), 1);
    QCOMPARE(server->connectionCount(), 0);

    auto good = connectPeer(bearer("good"));
    QVERIFY(!good->welcome().isEmpty());
}

void tst_Server::missingSubprotocolIsRefused()
{
    TestPeer peer;
    QVERIFY(peer.open(server->serverUrl(), {}, {}, false));
    QCOMPARE(int(peer.socket.closeCode()), 4400);
    QVERIFY(peer.socket.closeReason().contains("qtnotif.v1"));
    QCOMPARE(server->connectionCount(), 0);
}

void tst_Server::listenDeniedByServerAuthorizer()
{
    server->setAuthenticator(userFromBearer);
    new SimpleNotifier<QString, QString>(server.get(), "chat");
    server->setListenAuthorizer([](const Identity &identity, const QString &notifier,
                                   const QJsonValue &key) {
        return notifier == "chat" && (key.toString() != "staff" || identity.userId() == "boss");
    });
    auto alice = connectPeer(bearer("alice"));
    const QJsonObject denied = alice->answerTo(alice->listen("chat", "staff"));
    QCOMPARE(denied["op"].toString(), QString("error"));
    QCOMPARE(denied["code"].toString(), QString("listen_denied"));
    QCOMPARE(server->listenCount(), 0);
    QVERIFY(alice->listenAndWait("chat", "lobby"));
    auto boss = connectPeer(bearer("boss"));
    QVERIFY(boss->listenAndWait("chat", "staff"));
}

void tst_Server::listenDeniedByNotifierAuthorizer()
{
    server->setAuthenticator(userFromBearer);
    auto *inbox = new SimpleNotifier<QString, QString>(server.get(), "inbox");
    // Only the owner listens to their inbox: a claim-style rule on the typed key.
    inbox->setListenAuthorizer(
            [](const Identity &identity, const QString &key) { return key == identity.userId(); });
    auto alice = connectPeer(bearer("alice"));
    QCOMPARE(alice->answerTo(alice->listen("inbox", "bob"))["code"].toString(),
             QString("listen_denied"));
    QVERIFY(alice->listenAndWait("inbox", "alice"));
    QCOMPARE(server->listenCount(), 1);
}

void tst_Server::listenErrors_data()
{
    QTest::addColumn<QString>("notifier");
    QTest::addColumn<QJsonValue>("key");
    QTest::addColumn<QString>("code");
    QTest::addRow("unknown notifier") << "nope" << QJsonValue("a") << "unknown_notifier";
    QTest::addRow("key of the wrong type") << "numbers" << QJsonValue("a") << "invalid_key";
    QTest::addRow("fractional key for an integer key")
            << "numbers" << QJsonValue(1.5) << "invalid_key";
    QTest::addRow("key longer than the limit")
            << "chat" << QJsonValue(QString(2000, QChar(u'k'))) << "invalid_key";
    // 600 characters, but 1202 bytes of UTF-8 with the quotes: the limit counts bytes.
    QTest::addRow("key longer than the limit in UTF-8 bytes")
            << "chat" << QJsonValue(QString(600, QChar(u'\u00e9'))) << "invalid_key";
    // Both decode as a ChatMessage, but notify() on that value sends to {"from":..,"text":..}:
    // acked, the listen would never receive anything (found by fuzz/fuzz_frames).
    QTest::addRow("gadget key without one of its properties")
            << "rooms" << QJsonValue(QJsonObject{ { "from", "a" } }) << "invalid_key";
    QTest::addRow("gadget key with a member its type does not have")
            << "rooms" << QJsonValue(QJsonObject{ { "from", "a" }, { "text", "b" }, { "x", 1 } })
            << "invalid_key";
}

void tst_Server::listenErrors()
{
    QFETCH(QString, notifier);
    QFETCH(QJsonValue, key);
    QFETCH(QString, code);
    new SimpleNotifier<QString, QString>(server.get(), "chat");
    new SimpleNotifier<int, QString>(server.get(), "numbers");
    new SimpleNotifier<ChatMessage, QString>(server.get(), "rooms");
    auto peer = connectPeer();
    const qint64 id = peer->listen(notifier, key);
    const QJsonObject error = peer->answerTo(id);
    QCOMPARE(error["op"].toString(), QString("error"));
    QCOMPARE(error["code"].toString(), code);
    QCOMPARE(error["id"].toInteger(), id);
    QCOMPARE(server->listenCount(), 0);
}

void tst_Server::tooManyListens()
{
    server->setMaxListensPerConnection(3);
    new SimpleNotifier<int, QString>(server.get(), "n");
    auto peer = connectPeer();
    for (int i = 0; i < 3; ++i)
        QVERIFY(peer->listenAndWait("n", i));
    QCOMPARE(peer->answerTo(peer->listen("n", 3))["code"].toString(), QString("too_many_listens"));
    QCOMPARE(server->listenCount(), 3);
}

void tst_Server::upstreamCallAndReply()
{
    server->setAuthenticator(userFromBearer);
    server->setHandler("add", [](const Request &request) {
        const auto numbers = request.payloadAs<QList<int>>();
        if (!numbers) {
            request.fail("bad_numbers", "send a list of integers");
            return;
        }
        int sum = 0;
        for (int n : *numbers)
            sum += n;
        request.reply(QJsonObject{ { "sum", sum }, { "by", request.identity().userId() } });
    });
    // An asynchronous handler: answers later, from a copy of the request.
    server->setHandler("later", [this](const Request &request) {
        QTimer::singleShot(20, server.get(), [request] { request.reply("done"); });
    });
    auto alice = connectPeer(bearer("alice"));
    const QJsonObject reply = alice->answerTo(alice->request("add", QJsonArray{ 1, 2, 3 }));
    QCOMPARE(reply["op"].toString(), QString("reply"));
    QCOMPARE(reply["result"]["sum"].toInt(), 6);
    QCOMPARE(reply["result"]["by"].toString(), QString("alice"));
    const QJsonObject failed = alice->answerTo(alice->request("add", "x"));
    QCOMPARE(failed["code"].toString(), QString("bad_numbers"));
    QCOMPARE(alice->answerTo(alice->request("later", {}))["result"].toString(), QString("done"));
}

void tst_Server::upstreamErrors()
{
    server->setHandler("forget", [](const Request &) {});
    server->setHandler("twice", [](const Request &request) {
        request.reply(1);
        request.reply(2);
        request.fail("x", "y");
    });
    auto peer = connectPeer();
    QCOMPARE(peer->answerTo(peer->request("nope", {}))["code"].toString(),
             QString("unknown_method"));
    QCOMPARE(peer->answerTo(peer->request("forget", {}))["code"].toString(), QString("no_reply"));
    const qint64 id = peer->request("twice", {});
    QCOMPARE(peer->answerTo(id)["result"].toInt(), 1);
    // The marker request is answered after everything "twice" could have sent.
    QVERIFY(!peer->answerTo(peer->request("nope", {})).isEmpty());
    int answers = 0;
    for (const QJsonObject &frame : std::as_const(peer->frames))
        answers += frame["id"].toInteger() == id ? 1 : 0;
    QCOMPARE(answers, 1);
}

void tst_Server::notForMeFromAHandler()
{
    server->setAuthenticator(userFromBearer);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    server->setHandler("say", [chat](const Request &request) {
        chat->notify("room", request.payload().toString(), request.me());
        request.reply();
    });
    auto alice1 = connectPeer(bearer("alice"));
    auto alice2 = connectPeer(bearer("alice"));
    auto bob = connectPeer(bearer("bob"));
    for (TestPeer *peer : { alice1.get(), alice2.get(), bob.get() })
        QVERIFY(peer->listenAndWait("chat", "room"));
    QCOMPARE(alice1->answerTo(alice1->request("say", "hi"))["op"].toString(), QString("reply"));
    QVERIFY(waitForNotifs(*bob, 1));
    QVERIFY(waitForNotifs(*alice2, 1)); // the same user on another connection receives it
    chat->notify("room", "marker");
    QVERIFY(waitForNotifs(*alice1, 1));
    QCOMPARE(alice1->framesOf("notif").at(0)["data"].toString(), QString("marker"));
}

void tst_Server::notForUser()
{
    server->setAuthenticator(userFromBearer);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto alice1 = connectPeer(bearer("alice"));
    auto alice2 = connectPeer(bearer("alice"));
    auto bob = connectPeer(bearer("bob"));
    auto guest = connectPeer();
    for (TestPeer *peer : { alice1.get(), alice2.get(), bob.get(), guest.get() })
        QVERIFY(peer->listenAndWait("chat", "room"));
    chat->notify("room", "not for alice", NotFor::user("alice"));
    chat->notify("room", "marker");
    QVERIFY(waitForNotifs(*bob, 2));
    QVERIFY(waitForNotifs(*guest, 2));
    QVERIFY(waitForNotifs(*alice1, 1));
    QVERIFY(waitForNotifs(*alice2, 1));
    QCOMPARE(alice1->framesOf("notif").at(0)["data"].toString(), QString("marker"));
    QCOMPARE(alice2->framesOf("notif").at(0)["data"].toString(), QString("marker"));
}

void tst_Server::unlistenUserIsObservedByTheClient()
{
    server->setAuthenticator(userFromBearer);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto alice1 = connectPeer(bearer("alice"));
    auto alice2 = connectPeer(bearer("alice"));
    auto bob = connectPeer(bearer("bob"));
    for (TestPeer *peer : { alice1.get(), alice2.get(), bob.get() })
        QVERIFY(peer->listenAndWait("chat", "room"));
    QCOMPARE(chat->unlistenUser("alice", "room").result(), 2);
    for (TestPeer *peer : { alice1.get(), alice2.get() }) {
        QTRY_COMPARE(peer->framesOf("unlistened").size(), 1);
        const QJsonObject frame = peer->framesOf("unlistened").at(0);
        QCOMPARE(frame["notifier"].toString(), QString("chat"));
        QCOMPARE(frame["key"].toString(), QString("room"));
        QCOMPARE(frame["reason"].toString(), QString("user"));
    }
    QCOMPARE(chat->localListenerCount("room"), 1);
    chat->notify("room", "only bob");
    QVERIFY(waitForNotifs(*bob, 1));
    QVERIFY(bob->framesOf("unlistened").isEmpty());
}

void tst_Server::serverSideListenAndUnlisten()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    QSignalSpy connected(server.get(), &Server::clientConnected);
    auto peer = connectPeer();
    QTRY_COMPARE(connected.size(), 1);
    const auto id = connected.at(0).at(0).value<ConnectionId>();
    QVERIFY(chat->listen(id, "announcements"));
    QVERIFY(!chat->listen(id, "announcements"));
    QTRY_COMPARE(peer->framesOf("listened").size(), 1);
    QCOMPARE(peer->framesOf("listened").at(0)["key"].toString(), QString("announcements"));
    chat->notify("announcements", "welcome");
    QVERIFY(waitForNotifs(*peer, 1));
    QVERIFY(chat->unlisten(id, "announcements"));
    QVERIFY(!chat->unlisten(id, "announcements"));
    QTRY_COMPARE(peer->framesOf("unlistened").size(), 1);
    QCOMPARE(peer->framesOf("unlistened").at(0)["reason"].toString(), QString("server"));
    QVERIFY(!chat->listen(999, "announcements"));
}

// Notification frames wait for the end of the event-loop turn, other frames do not: those sent
// in the same turn still arrive in the order they were sent, and the client is closed after
// what was sent to it before.
void tst_Server::notificationsKeepTheirPlaceAmongOtherFrames()
{
    auto *chat = new SimpleNotifier<QString, int>(server.get(), "chat");
    QSignalSpy connected(server.get(), &Server::clientConnected);
    auto peer = connectPeer();
    QTRY_COMPARE(connected.size(), 1);
    const auto id = connected.at(0).at(0).value<ConnectionId>();
    QVERIFY(peer->listenAndWait("chat", "a"));
    QVERIFY(peer->listenAndWait("chat", "b"));
    chat->notify("a", 1);
    chat->notify("b", 2);
    QVERIFY(chat->unlisten(id, "a")); // an unlistened frame, between notifications
    chat->notify("a", 3);             // nobody listens any more
    chat->notify("b", 4);
    QVERIFY(server->setIdentity(id, Identity::user("alice")));
    QVERIFY(chat->listen(id, "b")); // listens were reset with the identity
    chat->notify("b", 5);
    QVERIFY(server->disconnectClient(id, 4000, "bye"));
    QTRY_VERIFY(peer->disconnected);
    QStringList ops;
    for (const QJsonObject &frame : std::as_const(peer->frames)) {
        const QString op = frame["op"].toString();
        if (op == "notif")
            ops.append(op + QString::number(frame["data"].toInt()));
        else if (op != "welcome" && op != "ack")
            ops.append(op);
    }
    QCOMPARE(ops, QStringList({ "notif1", "notif2", "unlistened", "notif4", "identity", "listened",
                                "notif5" }));
    QCOMPARE(int(peer->socket.closeCode()), 4000);
}

void tst_Server::listenerSignalsTrackPresence()
{
    server->setAuthenticator(userFromBearer);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    // Presence as an application builds it: the users listening to a room.
    auto members = [&](const QString &room) {
        QStringList users;
        for (ConnectionId id : chat->localListeners(room))
            users.append(server->identity(id).userId());
        return users;
    };
    QStringList log;
    connect(chat, &AbstractNotifier::listenerAdded, this,
            [&](ConnectionId id, const Identity &identity, const QJsonValue &key) {
                QVERIFY(chat->localListeners(key.toString()).contains(id));
                log.append("+" + identity.userId() + " " + key.toString());
            });
    connect(chat, &AbstractNotifier::listenerRemoved, this,
            [&](ConnectionId id, const Identity &identity, const QJsonValue &key) {
                QVERIFY(!chat->localListeners(key.toString()).contains(id));
                log.append("-" + identity.userId() + " " + key.toString());
            });
    QSignalSpy connected(server.get(), &Server::clientConnected);
    auto alice = connectPeer(bearer("alice"));
    auto bob = connectPeer(bearer("bob"));
    QTRY_COMPARE(connected.size(), 2);
    const auto aliceId = connected.at(0).at(0).value<ConnectionId>();
    const auto bobId = connected.at(1).at(0).value<ConnectionId>();

    QVERIFY(alice->listenAndWait("chat", "room"));
    QVERIFY(alice->listenAndWait("chat", "room")); // already listening: no second signal
    QVERIFY(chat->listen(bobId, "room"));
    QCOMPARE(members("room"), (QStringList{ "alice", "bob" }));
    QVERIFY(alice->answerTo(alice->unlisten("chat", "room"))["wasListening"].toBool());
    QVERIFY(alice->answerTo(alice->unlisten("chat", "room")).contains("wasListening"));
    QVERIFY(alice->listenAndWait("chat", "room"));
    QVERIFY(chat->unlisten(aliceId, "room"));
    QVERIFY(alice->listenAndWait("chat", "room"));
    QCOMPARE(chat->unlistenUser("alice", "room").result(), 1);
    QVERIFY(alice->listenAndWait("chat", "room"));
    QVERIFY(server->setIdentity(aliceId, Identity::user("alicia")));
    QVERIFY(alice->listenAndWait("chat", "room"));
    QCOMPARE(members("room"), (QStringList{ "bob", "alicia" }));
    bob->socket.abort();
    QTRY_COMPARE(members("room"), QStringList{ "alicia" });
    server->disconnectClient(aliceId);
    QCOMPARE(members("room"), QStringList());

    QCOMPARE(log, (QStringList{ "+alice room", "+bob room", "-alice room", "+alice room",
                                "-alice room", "+alice room", "-alice room", "+alice room",
                                "-alice room", "+alicia room", "-bob room", "-alicia room" }));
}

void tst_Server::disconnectLeavesRegistryEmpty()
{
    server->setAuthenticator(userFromBearer);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    QSignalSpy gone(server.get(), &Server::clientDisconnected);
    auto alice = connectPeer(bearer("alice"));
    auto bob = connectPeer(bearer("bob"));
    QVERIFY(alice->listenAndWait("chat", "a"));
    QVERIFY(alice->listenAndWait("chat", "b"));
    QVERIFY(bob->listenAndWait("chat", "a"));
    QCOMPARE(server->listenCount(), 3);
    alice->socket.close();
    QTRY_COMPARE(gone.size(), 1);
    QCOMPARE(server->listenCount(), 1);
    QCOMPARE(server->connectionsOfUser("alice").size(), 0);
    bob->socket.abort(); // abrupt: no close handshake
    QTRY_COMPARE(gone.size(), 2);
    QCOMPARE(server->listenCount(), 0);
    QCOMPARE(server->keyCount(), 0);
    QCOMPARE(server->connectionCount(), 0);
    QCOMPARE(chat->keyCount(), 0);
}

void tst_Server::identityChangeDropsListens()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    QSignalSpy connected(server.get(), &Server::clientConnected);
    auto peer = connectPeer();
    QTRY_COMPARE(connected.size(), 1);
    const auto id = connected.at(0).at(0).value<ConnectionId>();
    QVERIFY(peer->listenAndWait("chat", "a"));
    QVERIFY(server->setIdentity(id, Identity::user("carol")));
    QTRY_COMPARE(peer->framesOf("identity").size(), 1);
    QCOMPARE(peer->framesOf("identity").at(0)["identity"]["user"].toString(), QString("carol"));
    QCOMPARE(server->listenCount(), 0);
    QCOMPARE(server->keyCount(), 0);
    QCOMPARE(server->connectionsOfUser("carol"), QList<ConnectionId>{ id });
    // Listening again works under the new identity.
    QVERIFY(peer->listenAndWait("chat", "a"));
    chat->notify("a", "x", NotFor::user("carol"));
    chat->notify("a", "y");
    QVERIFY(waitForNotifs(*peer, 1));
    QCOMPARE(peer->framesOf("notif").at(0)["data"].toString(), QString("y"));
    QVERIFY(!server->setIdentity(999, Identity()));
}

void tst_Server::identityChangeDropsNotificationsPreparedForTheOldIdentity()
{
    using Docs = Notifier<QString, QString>;
    // The callback form, holding every prepare until the test lets it finish.
    QList<std::function<void()>> held;
    auto *docs = new Docs(server.get(), "docs",
                          [&](const Identity &identity, const QString &text, Docs::Done done) {
                              const QString prepared = identity.userId() + ": " + text;
                              held.append([done, prepared] { done(prepared); });
                          });
    QSignalSpy connected(server.get(), &Server::clientConnected);
    auto peer = connectPeer();
    QTRY_COMPARE(connected.size(), 1);
    const auto id = connected.at(0).at(0).value<ConnectionId>();
    QVERIFY(peer->listenAndWait("docs", "d"));
    docs->notify("d", "secret for the guest");
    QCOMPARE(held.size(), 1);

    // The connection becomes erin's before the guest's prepare finishes: what was prepared
    // for the guest must not reach erin's connection.
    QVERIFY(server->setIdentity(id, Identity::user("erin")));
    held.takeFirst()();
    QVERIFY(peer->listenAndWait("docs", "d"));
    docs->notify("d", "for erin");
    QCOMPARE(held.size(), 1);
    held.takeFirst()();
    QVERIFY(waitForNotifs(*peer, 1));
    const auto notifs = peer->framesOf("notif");
    QCOMPARE(notifs.size(), 1);
    QCOMPARE(notifs.at(0)["data"].toString(), QString("erin: for erin"));
    const qsizetype identityAt = peer->frames.indexOf(peer->framesOf("identity").value(0));
    QVERIFY(identityAt >= 0 && identityAt < peer->frames.indexOf(notifs.at(0)));
}

void tst_Server::nonPositiveSettingsAreIgnored()
{
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a listens per connection of 0"));
    server->setMaxListensPerConnection(0);
    QCOMPARE(server->maxListensPerConnection(), 1000);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a heartbeat interval of -1"));
    server->setHeartbeatInterval(-1ms);
    QCOMPARE(server->heartbeatInterval(), 25s);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a largest key size of 0"));
    server->setMaxKeySize(0);
    QCOMPARE(server->maxKeySize(), 1024);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a largest frame size of 0"));
    server->setMaxFrameSize(0);
    QCOMPARE(server->maxFrameSize(), 64 * 1024);
}

void tst_Server::writeDelayGathersNotifications()
{
    QCOMPARE(server->writeDelay(), 0ms);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a write delay of -1 ms"));
    server->setWriteDelay(-1ms);
    QCOMPARE(server->writeDelay(), 0ms);

    auto *chat = new SimpleNotifier<QString, int>(server.get(), "chat");
    auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("chat", "a"));
    QList<qint64> arrivals; // ms since the first notify, one per notification received
    QElapsedTimer clock;
    connect(&peer->socket, &QWebSocket::textMessageReceived, this, [&](const QString &text) {
        if (text.contains(QLatin1String("\"notif\"")))
            arrivals.append(clock.elapsed());
    });
    server->setWriteDelay(1s);
    QCOMPARE(server->writeDelay(), 1s);
    clock.start();
    chat->notify("a", 1);
    // A second notification 100 ms later, in another turn, joins the first in its write.
    QTimer::singleShot(100ms, chat, [chat] { chat->notify("a", 2); });
    QTRY_COMPARE_WITH_TIMEOUT(arrivals.size(), 2, 10000);
    const QList<QJsonObject> notifs = peer->framesOf("notif");
    QCOMPARE(notifs.size(), 2);
    QCOMPARE(notifs.at(0)["data"].toInt(), 1);
    QCOMPARE(notifs.at(1)["data"].toInt(), 2);
    // The first waited for the delay (a timer may fire late, never early) ...
    QVERIFY2(arrivals.at(0) >= 900, qPrintable(QString::number(arrivals.at(0))));
    // ... and both came in one write, read at once: without the delay they would come 100 ms
    // apart.
    QVERIFY2(arrivals.at(1) - arrivals.at(0) < 50,
             qPrintable(QString::number(arrivals.at(1) - arrivals.at(0))));
}

void tst_Server::writeDelayLeavesAnswersAlone()
{
    auto *chat = new SimpleNotifier<QString, int>(server.get(), "chat");
    server->setWriteDelay(1h);
    auto peer = connectPeer();                 // the welcome is not delayed
    QVERIFY(peer->listenAndWait("chat", "a")); // nor the answer to a listen
    chat->notify("a", 1);
    const qint64 id = peer->request("nope", {}); // answered after the notification
    QCOMPARE(peer->answerTo(id)["code"].toString(), QString("unknown_method"));
    // What waited before the answer went with it, in its place.
    QCOMPARE(peer->framesOf("notif").size(), 1);
    QVERIFY(peer->frames.indexOf(peer->framesOf("notif").at(0))
            < peer->frames.indexOf(peer->answerTo(id)));
    // Back to 0, what waits goes at the end of the turn.
    chat->notify("a", 2);
    server->setWriteDelay(0ms);
    QTRY_COMPARE(peer->framesOf("notif").size(), 2);
    QCOMPARE(peer->framesOf("notif").at(1)["data"].toInt(), 2);
}

void tst_Server::malformedFramesGetErrorsWhileOthersKeepReceiving_data()
{
    QTest::addColumn<QString>("frame");
    QTest::addColumn<QString>("code");
    QTest::addRow("not JSON") << "hello there"
                              << "invalid_json";
    QTest::addRow("JSON array") << "[1,2,3]"
                                << "not_an_object";
    // Qt parses only objects and arrays at the top: a bare scalar is not JSON to it.
    QTest::addRow("JSON string") << "\"listen\""
                                 << "invalid_json";
    QTest::addRow("no op") << R"({"id":1})"
                           << "invalid_field";
    QTest::addRow("wrong types") << R"({"op":"listen","id":"x","notifier":[],"key":{}})"
                                 << "invalid_field";
    QTest::addRow("unknown op") << R"({"op":"subscribe","id":1})"
                                << "unknown_op";
    QTest::addRow("huge number id") << R"({"op":"listen","id":1e999,"notifier":"chat","key":"a"})"
                                    << "invalid_json";
    QTest::addRow("deep nesting") << QString(3000, QChar(u'[')) + QString(3000, QChar(u']'))
                                  << "invalid_json";
    QTest::addRow("binary frame") << QString() << "binary_frame";
}

void tst_Server::malformedFramesGetErrorsWhileOthersKeepReceiving()
{
    QFETCH(QString, frame);
    QFETCH(QString, code);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto bad = connectPeer();
    auto good = connectPeer();
    QVERIFY(good->listenAndWait("chat", "room"));
    QVERIFY(bad->listenAndWait("chat", "room"));
    for (int round = 0; round < 3; ++round) {
        if (frame.isEmpty())
            bad->socket.sendBinaryMessage("\x01\x02");
        else
            bad->sendText(frame);
        chat->notify("room", QString::number(round));
    }
    QTRY_COMPARE(bad->framesOf("error").size(), 3);
    for (const QJsonObject &error : bad->framesOf("error")) {
        QCOMPARE(error["code"].toString(), code);
        QVERIFY(!error["message"].toString().isEmpty());
    }
    QVERIFY(waitForNotifs(*good, 3));
    QVERIFY(waitForNotifs(*bad, 3)); // a bad frame costs the sender nothing but an error
    QCOMPARE(server->connectionCount(), 2);
}

void tst_Server::frameBeyondLimitClosesOnlyThatClient()
{
    server->setMaxFrameSize(1024);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto big = connectPeer();
    auto good = connectPeer();
    QVERIFY(good->listenAndWait("chat", "room"));
    const QJsonObject bigWelcome = big->welcome();
    QCOMPARE(bigWelcome["limits"]["maxFrameSize"].toInt(), 1024);
    big->sendText(QString(4096, QChar(u'x')));
    QTRY_VERIFY(big->disconnected);
    QCOMPARE(int(big->socket.closeCode()), 1009);
    chat->notify("room", "still here");
    QVERIFY(waitForNotifs(*good, 1));
    QTRY_COMPARE(server->connectionCount(), 1);
}

void tst_Server::deadPeerIsDroppedByHeartbeat()
{
    server->setHeartbeatInterval(100ms);
    QSignalSpy connected(server.get(), &Server::clientConnected);
    QSignalSpy gone(server.get(), &Server::clientDisconnected);
    // A raw TCP peer that completes the upgrade and then never reads or answers again: the
    // server's pings go unanswered, as with a peer that vanished without a FIN.
    QTcpSocket raw;
    raw.connectToHost(QHostAddress::LocalHost, server->serverPort());
    QVERIFY(raw.waitForConnected(5000));
    raw.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Protocol: qtnotif.v1\r\n\r\n");
    QTRY_COMPARE(connected.size(), 1);
    auto healthy = connectPeer();
    QTRY_COMPARE_WITH_TIMEOUT(gone.size(), 1, 5000);
    QCOMPARE(gone.at(0).at(0).value<ConnectionId>(), connected.at(0).at(0).value<ConnectionId>());
    // The healthy client answers pings (Qt pongs by itself) and stays.
    QCOMPARE(server->connectionCount(), 1);
}

void tst_Server::heartbeatSpreadsItsPingsOverTheInterval()
{
    // A heartbeat pings its clients in slices over the interval (four of 250 ms for 1 s), not
    // all in one turn, in which a server with many clients would stall everything else.
    server->setHeartbeatInterval(1s);
    constexpr int Clients = 8;
    std::vector<std::unique_ptr<RawWebSocket>> clients;
    for (int i = 0; i < Clients; ++i) {
        clients.push_back(std::make_unique<RawWebSocket>());
        QVERIFY(clients.back()->open(server->serverPort()));
    }
    QElapsedTimer clock;
    clock.start();
    QList<qint64> firstPing(Clients, -1);
    const auto pinged = [&] {
        for (int i = 0; i < Clients; ++i) {
            if (firstPing[i] >= 0)
                continue;
            for (const RawWebSocket::Frame &frame : std::as_const(clients[size_t(i)]->frames)) {
                if (frame.opcode == RawWebSocket::Ping)
                    firstPing[i] = clock.elapsed();
            }
        }
        return !firstPing.contains(-1);
    };
    // Looked at every 5 ms: the time each client's first ping arrived, within 5 ms.
    QTimer look;
    look.start(5);
    connect(&look, &QTimer::timeout, this, pinged);
    QTRY_VERIFY_WITH_TIMEOUT(pinged(), 5000);
    const auto [earliest, latest] = std::minmax_element(firstPing.cbegin(), firstPing.cend());
    QCOMPARE_LE(*latest, 1000 + 250);
    QCOMPARE_GE(*latest - *earliest, 500);
    // Every client answered and stays.
    QCOMPARE(server->connectionCount(), Clients);
}

void tst_Server::notifyFromAnotherThreadIsQueued()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("chat", "room"));
    std::unique_ptr<QThread> worker(QThread::create([chat] {
        for (int i = 0; i < 10; ++i)
            chat->notify("room", QString::number(i));
    }));
    worker->start();
    QVERIFY(worker->wait(5000));
    QVERIFY(waitForNotifs(*peer, 10));
    QCOMPARE(peer->framesOf("notif").at(9)["data"].toString(), QString("9"));
}

void tst_Server::deletedNotifierTellsItsListeners()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto peer = connectPeer();
    QVERIFY(peer->listenAndWait("chat", "room"));
    delete chat;
    QCOMPARE(server->notifier("chat"), nullptr);
    QCOMPARE(server->listenCount(), 0);
    QTRY_COMPARE(peer->framesOf("unlistened").size(), 1);
    QCOMPARE(peer->framesOf("unlistened").at(0)["reason"].toString(), QString("notifier"));
    QCOMPARE(peer->answerTo(peer->listen("chat", "room"))["code"].toString(),
             QString("unknown_notifier"));
}

void tst_Server::closeDisconnectsEveryone()
{
    new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto a = connectPeer();
    auto b = connectPeer();
    QVERIFY(a->listenAndWait("chat", "room"));
    QVERIFY(b->listenAndWait("chat", "room"));
    server->close();
    QVERIFY(!server->isListening());
    QCOMPARE(server->listenCount(), 0);
    QCOMPARE(server->keyCount(), 0);
    QCOMPARE(server->connectionCount(), 0);
    QTRY_VERIFY(a->disconnected);
    QTRY_VERIFY(b->disconnected);
    QCOMPARE(int(a->socket.closeCode()), 1001);
}

void tst_Server::duplicateNotifierNameIsRejected()
{
    auto *first = new SimpleNotifier<QString, QString>(server.get(), "chat");
    QTest::ignoreMessage(QtCriticalMsg, QRegularExpression("already registered"));
    auto *second = new SimpleNotifier<QString, QString>(server.get(), "chat");
    QVERIFY(first->isRegistered());
    QVERIFY(!second->isRegistered());
    QCOMPARE(server->notifier("chat"), first);
    delete second; // must not unregister the first
    QCOMPARE(server->notifier("chat"), first);
}

void tst_Server::clientSocketsSendAtOnce()
{
#ifdef Q_OS_LINUX
    // The server's side of a client connection lives in this process: find it among the open
    // descriptors (a connected socket whose local port is the server's) and read its options.
    TestPeer peer;
    QVERIFY(peer.open(server->serverUrl()));
    int accepted = 0;
    const QStringList fds
            = QDir("/proc/self/fd")
                      .entryList(QDir::NoDotAndDotDot | QDir::System | QDir::AllEntries);
    for (const QString &entry : fds) {
        const int fd = entry.toInt();
        int listening = 1;
        socklen_t size = sizeof listening;
        sockaddr_in local{};
        socklen_t localSize = sizeof local;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening
            || ::getsockname(fd, reinterpret_cast<sockaddr *>(&local), &localSize) != 0
            || local.sin_family != AF_INET || ntohs(local.sin_port) != server->serverPort())
            continue;
        int noDelay = 0;
        size = sizeof noDelay;
        QCOMPARE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &noDelay, &size), 0);
        QVERIFY2(noDelay, "Nagle's algorithm would hold notifications back");
        ++accepted;
    }
    QCOMPARE(accepted, 1);
#else
    QSKIP("TCP_NODELAY is set on Linux only");
#endif
}

void tst_Server::aClientThatDoesNotReadIsClosed()
{
    server->setMaxSendQueue(256 * 1024);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");

    // The slow client is a real QWebSocket on a thread of its own; holding that thread's event
    // loop makes it stop reading, as a client on a stalled device would.
    QThread thread;
    QObject onThread;
    onThread.moveToThread(&thread);
    thread.start();
    const auto there = [&onThread](auto f) {
        QMetaObject::invokeMethod(&onThread, f, Qt::BlockingQueuedConnection);
    };
    std::unique_ptr<TestPeer> slow;
    std::atomic<int> listening = 0; // 1 listening, -1 failed
    const QUrl url = server->serverUrl();
    // Not blocking: this thread serves the handshake meanwhile.
    QMetaObject::invokeMethod(
            &onThread,
            [&slow, &listening, url] {
                slow = std::make_unique<TestPeer>();
                listening = slow->open(url) && slow->listenAndWait("chat", "room") ? 1 : -1;
            },
            Qt::QueuedConnection);
    auto stop = qScopeGuard([&] {
        there([&] { slow.reset(); });
        thread.quit();
        thread.wait();
    });
    QTRY_VERIFY(listening != 0);
    QCOMPARE(listening.load(), 1);
    TestPeer fast;
    QVERIFY(fast.open(server->serverUrl()));
    QVERIFY(fast.listenAndWait("chat", "room"));
    QElapsedTimer clock;
    clock.start();
    QList<qint64> arrivals; // ms on clock, per notification the fast client got
    connect(&fast.socket, &QWebSocket::textMessageReceived, this, [&](const QString &text) {
        if (text.contains(QLatin1String("\"notif\"")))
            arrivals.append(clock.elapsed());
    });

    QSemaphore held, release;
    QMetaObject::invokeMethod(
            &onThread,
            [&] {
                held.release();
                release.acquire();
            },
            Qt::QueuedConnection);
    held.acquire();
    auto thaw = qScopeGuard([&] { release.release(); });

    // 32 KiB notifications, each stamped with the time it was made, until the server gives up
    // on the slow client (the kernel's socket buffers take several MiB first).
    QSignalSpy gone(server.get(), &Server::clientDisconnected);
    const QString padding(32 * 1024, u'x');
    QList<qint64> stamps;
    QTest::ignoreMessage(QtWarningMsg,
                         QRegularExpression("does not read: .* closing it \\(4413\\)"));
    while (gone.isEmpty() && stamps.size() < 4000) {
        stamps.append(clock.elapsed());
        chat->notify("room", QString::number(stamps.size()) + u':' + padding);
        // The fast client reads as it goes: at most 8 notifications on their way to it.
        QVERIFY(QTest::qWaitFor(
                [&] { return arrivals.size() + 8 >= stamps.size() || !gone.isEmpty(); }, 5000));
    }
    QCOMPARE(gone.size(), 1);
    QCOMPARE(server->connectionCount(), 1);
    QCOMPARE(chat->localListenerCount("room"), 1);

    // The fast client got every notification, and one after; its latency goes to the log.
    chat->notify("room", "after");
    QTRY_COMPARE(arrivals.size(), stamps.size() + 1);
    QList<qint64> latencies;
    for (qsizetype i = 0; i < stamps.size(); ++i)
        latencies.append(arrivals.at(i) - stamps.at(i));
    std::sort(latencies.begin(), latencies.end());
    qInfo("the other client, while one did not read: %lld notifications of 32 KiB, latency "
          "p50 %lld ms, max %lld ms",
          qint64(latencies.size()), latencies.at(latencies.size() / 2), latencies.constLast());

    // Released, the slow client reads what was sent before the limit, then the close: 4413.
    thaw.dismiss();
    release.release();
    bool closed = false;
    QTRY_VERIFY((there([&] { closed = slow->disconnected; }), closed));
    quint16 code = 0;
    there([&] { code = slow->socket.closeCode(); });
    QCOMPARE(code, quint16(Protocol::CloseCode::SlowClient));
}

void tst_Server::requestsAreRateLimited()
{
    server->setRequestRate(10, 5);
    QCOMPARE(server->requestRate(), 10.0);
    QCOMPARE(server->requestBurst(), 5);
    int calls = 0;
    server->setHandler("echo", [&calls](const Request &request) {
        ++calls;
        request.reply(request.payload());
    });
    TestPeer peer;
    QVERIFY(peer.open(server->serverUrl()));
    TestPeer other;
    QVERIFY(other.open(server->serverUrl()));

    // A burst of 8 at once: the bucket holds 5; the rest are refused before the handler runs.
    QList<qint64> ids;
    for (int i = 0; i < 8; ++i)
        ids.append(peer.request("echo", i));
    QStringList answers;
    for (qint64 id : ids) {
        const QJsonObject answer = peer.answerTo(id);
        answers.append(answer.value("op").toString() == "reply" ? "reply"
                                                                : answer.value("code").toString());
    }
    QCOMPARE(answers, QStringList({ "reply", "reply", "reply", "reply", "reply", "rate_limited",
                                    "rate_limited", "rate_limited" }));
    QCOMPARE(calls, 5);
    // Each connection has a bucket of its own.
    QCOMPARE(other.answerTo(other.request("echo", "other")).value("op").toString(), "reply");
    // The bucket refills at 10 per second: a later request goes through (refused ones do not
    // consume tokens, so asking again until it passes ends).
    QVERIFY(QTest::qWaitFor(
            [&] {
                return peer.answerTo(peer.request("echo", "later")).value("op").toString()
                       == "reply";
            },
            5000));
    QVERIFY(!peer.disconnected); // an error frame, never a close

    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a request rate of 0"));
    server->setRequestRate(0, 5);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("ignored a request burst of -1"));
    server->setRequestRate(5, -1);
    QCOMPARE(server->requestRate(), 10.0);
    QCOMPARE(server->requestBurst(), 5);
}

void tst_Server::connectionsPerUserAreBounded()
{
    QCOMPARE(server->maxConnectionsPerUser(), 100);
    server->setMaxConnectionsPerUser(2);
    server->setAuthenticator([](const HandshakeRequest &request) {
        const QString user = QString::fromUtf8(request.bearerToken());
        return user.isEmpty() ? AuthResult::anonymous() : AuthResult::accept(Identity::user(user));
    });
    const QList<QPair<QByteArray, QByteArray>> alice{ { "Authorization", "Bearer alice" } };
    auto first = std::make_unique<TestPeer>();
    TestPeer second, third, bob, anonymous[3];
    QVERIFY(first->open(server->serverUrl(), alice));
    QVERIFY(second.open(server->serverUrl(), alice));
    QSignalSpy refused(server.get(), &Server::clientRefused);
    QVERIFY(third.open(server->serverUrl(), alice, { "qtnotif.v1" }, false));
    QCOMPARE(int(third.socket.closeCode()), 4429);
    QCOMPARE(third.socket.closeReason(), "at most 2 connections per user");
    QCOMPARE(refused.size(), 1);
    // Other users, and anonymous clients (no user), are not counted against alice.
    QVERIFY(bob.open(server->serverUrl(), { { "Authorization", "Bearer bob" } }));
    for (TestPeer &peer : anonymous)
        QVERIFY(peer.open(server->serverUrl()));
    // A connection of alice's goes: she may open another.
    first.reset();
    QTRY_COMPARE(server->connectionsOfUser("alice").size(), 1);
    TestPeer again;
    QVERIFY(again.open(server->serverUrl(), alice));
}

void tst_Server::handshakeTimeoutDropsSilentPeers()
{
    QCOMPARE(server->handshakeTimeout(), 10000ms);
    server->setHandshakeTimeout(200ms);
    QCOMPARE(server->handshakeTimeout(), 200ms);
    // A TCP connection that never sends its WebSocket handshake.
    QTcpSocket silent;
    silent.connectToHost(QHostAddress::LocalHost, server->serverPort());
    QVERIFY(silent.waitForConnected(5000));
    QTRY_COMPARE_WITH_TIMEOUT(silent.state(), QAbstractSocket::UnconnectedState, 5000);
    QCOMPARE(server->connectionCount(), 0);
}

void tst_Server::listenRaisesTheLimitOfOpenFiles()
{
#ifndef Q_OS_LINUX
    QSKIP("RLIMIT_NOFILE on Linux");
#else
    // Each connection takes a file descriptor: listen() lifts the soft limit (1024 by default
    // on most systems) to the hard one, so that a server is not refused descriptors at a
    // thousand clients.
    rlimit limit{};
    QCOMPARE(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    const rlimit saved = limit;
    const auto restore = qScopeGuard([&] { ::setrlimit(RLIMIT_NOFILE, &saved); });
    const rlim_t open = rlim_t(QDir(QStringLiteral("/proc/self/fd")).count());
    if (limit.rlim_max < open + 64)
        QSKIP("the hard limit leaves no room to lower the soft one");
    limit.rlim_cur = open + 32;
    QCOMPARE(::setrlimit(RLIMIT_NOFILE, &limit), 0);
    QTest::ignoreMessage(QtInfoMsg,
                         QRegularExpression(QStringLiteral("raised the limit of open files from %1 "
                                                           "to %2")
                                                    .arg(limit.rlim_cur)
                                                    .arg(limit.rlim_max)));
    Server other;
    QVERIFY(other.listen());
    QCOMPARE(::getrlimit(RLIMIT_NOFILE, &limit), 0);
    QCOMPARE(limit.rlim_cur, saved.rlim_max);
    // Nothing to raise: no word of it.
    Server third;
    QVERIFY(third.listen());
#endif
}

void tst_Server::adviceOnTheEventDispatcher()
{
    // ctest runs this test function once more with QT_NO_GLIB=1 (tests/auto/server/), and the
    // whole suite on EpollEventDispatcher (tst_server_epoll) and with workers.
    const QByteArray dispatcher = QAbstractEventDispatcher::instance()->metaObject()->className();
    const bool epoll = qgetenv("QTNOTIF_TEST_EVENT_DISPATCHER") == "epoll";
    const bool workers = qEnvironmentVariableIntValue("QTNOTIF_WORKER_THREADS") > 0;
    QCOMPARE(dispatcher.contains("Glib"), !epoll && !qEnvironmentVariableIsSet("QT_NO_GLIB"));
    QCOMPARE(runsEpollEventDispatcher(), epoll);

    static QAtomicInt advices;
    advices = 0;
    static QtMessageHandler previous = nullptr;
    previous = qInstallMessageHandler(
            [](QtMsgType type, const QMessageLogContext &context, const QString &message) {
                if (type == QtInfoMsg && message.contains(u"EpollEventDispatcher"))
                    advices.ref();
                previous(type, context, message);
            });
    auto restore = qScopeGuard([] { qInstallMessageHandler(previous); });
    resetEventDispatcherAdvice();
    // Once per process, however many servers listen; none when the sockets are on epoll
    // already, on this thread or on the workers'.
    Server first;
    QVERIFY(first.listen());
    Server second;
    QVERIFY(second.listen());
    QCOMPARE(advices.loadRelaxed(), epoll || workers ? 0 : 1);
}

QTNOTIF_TEST_MAIN(tst_Server)
#include "tst_server.moc"
