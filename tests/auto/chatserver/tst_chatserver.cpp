// The chat demo's server (demo-app/server) against real QtNotif::Client windows on loopback:
// every rule of the contract in demo-app/README.md.
#include <chatserver.h>

#include <QtNotif/client.h>

#include <QtCore/QCryptographicHash>
#include <QtCore/QDateTime>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonObject>
#include <QtCore/QMessageAuthenticationCode>
#include <QtCore/QRegularExpression>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <array>
#include <memory>

using namespace QtNotif;
using namespace std::chrono_literals;
using ChatDemo::ChatServer;

using State = Client::State;
using Reason = ClientNotifier::UnlistenReason;

namespace {

// One chat window of a test: a Client and spies on the three notifiers of the chat.
struct Window
{
    std::unique_ptr<Client> client;
    ClientNotifier *messages = nullptr;
    ClientNotifier *typing = nullptr;
    ClientNotifier *members = nullptr;
    std::unique_ptr<QSignalSpy> messageEvents;
    std::unique_ptr<QSignalSpy> typingEvents;
    std::unique_ptr<QSignalSpy> memberEvents;

    ConnectionId connection() const { return client->connectionId().toULongLong(); }
    QVariantMap message(int i) const { return messageEvents->at(i).at(1).toMap(); }
    QVariantMap lastMessage() const { return messageEvents->last().at(1).toMap(); }
    QVariantMap lastTyping() const { return typingEvents->last().at(1).toMap(); }
    // The member list of the last "members" notification; empty before the first.
    QStringList lastMembers() const
    {
        return memberEvents->isEmpty()
                       ? QStringList()
                       : memberEvents->last().at(1).toMap().value("members").toStringList();
    }
};

// The answer to one call.
struct Answer
{
    bool finished = false;
    QJsonValue result;
    QString error;

    bool ok() const { return finished && error.isEmpty(); }
};

const QStringList NotificationFields{ "from", "id", "kind", "mentionsMe", "room", "text", "time" };

QStringList sortedKeys(const QVariantMap &map)
{
    QStringList keys = map.keys();
    keys.sort();
    return keys;
}

QStringList texts(const QJsonArray &events)
{
    QStringList result;
    for (const QJsonValue &event : events)
        result.append(event["text"].toString());
    return result;
}

} // namespace

class tst_ChatServer : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void listenAndUrl();
    void roomsListsTheConfiguredRooms();
    void tokenIsTheNameAndItsHmac();
    void login_data();
    void login();
    void loginAgainSwitchesTheUser();
    void tokenAuthenticatesReconnections();
    void invalidTokensAreRefused_data();
    void invalidTokensAreRefused();
    void anonymousClientsCannotListen();
    void onlyTheServersRoomsCanBeListened();
    void blockListIsBounded();
    void anonymousCalls_data();
    void anonymousCalls();
    void sendReachesEveryoneButTheSender();
    void sendErrors();
    void typingIsNotForTheTypist();
    void membersFollowPresence();
    void historyKeepsTheLastMessagesInOrder();
    void historyIsPreparedForTheCaller();
    void blockAndUnblockAffectLiveDelivery();
    void mentionsAreMarkedOnlyForTheMentioned();
    void kickByModerator();
    void kickByNonModeratorIsForbidden();

private:
    // (Re)starts the chat server with options on a free port.
    bool startServer(const ChatServer::Options &options = ChatServer::Options());
    // A connected window, anonymous or with a token; nullptr when it did not connect.
    std::unique_ptr<Window> openWindow(const QString &token = QString());
    // A window logged in as name (its client keeps the token); nullptr on failure.
    std::unique_ptr<Window> loggedIn(const QString &name);
    // Calls method and waits for the answer.
    Answer call(Window &window, const QString &method, const QJsonValue &payload = QJsonValue());
    // Sends text to room and checks the reply.
    bool send(Window &window, const QString &room, const QString &text);
    // Listens to the three notifiers for room, and waits until the server has the listens.
    bool join(Window &window, const QString &room);
    // Joins each window to room, in order. False if a window is missing (nullptr: it did not
    // log in) or a join did not reach the server in time.
    bool joinAll(const QList<Window *> &windows, const QString &room = "lobby");
    // The set-up of most tests: a window logged in as each of names, all in order, then each
    // joined to room in the same order. All null if a login or a join failed.
    template<std::size_t N>
    std::array<std::unique_ptr<Window>, N> loggedInAndJoined(const QString (&names)[N],
                                                             const QString &room = "lobby");
    // Whether the connection listens to room on the named notifier, server side.
    bool listensTo(const Window &window, const char *notifier, const QString &room) const;
    // A round trip to the server: every notification it sent the window before has arrived,
    // since notifications and replies share the connection, in order. Tests prove that
    // something did NOT arrive with it.
    bool roundTrip(Window &window) { return call(window, "rooms").ok(); }

    std::unique_ptr<ChatServer> chat;
};

void tst_ChatServer::init()
{
    QVERIFY(startServer());
}

void tst_ChatServer::cleanup()
{
    chat.reset();
}

bool tst_ChatServer::startServer(const ChatServer::Options &options)
{
    chat = std::make_unique<ChatServer>(options);
    return chat->listen(QHostAddress::LocalHost, 0);
}

std::unique_ptr<Window> tst_ChatServer::openWindow(const QString &token)
{
    auto window = std::make_unique<Window>();
    window->client = std::make_unique<Client>();
    window->client->setUrl(chat->url());
    window->client->setToken(token);
    window->client->setReconnectDelays(20ms, 200ms);
    window->client->setRequestTimeout(5s);
    window->messages = window->client->notifier("messages");
    window->typing = window->client->notifier("typing");
    window->members = window->client->notifier("members");
    window->messageEvents
            = std::make_unique<QSignalSpy>(window->messages, &ClientNotifier::clientEvent);
    window->typingEvents
            = std::make_unique<QSignalSpy>(window->typing, &ClientNotifier::clientEvent);
    window->memberEvents
            = std::make_unique<QSignalSpy>(window->members, &ClientNotifier::clientEvent);
    window->client->open();
    if (!QTest::qWaitFor([&] { return window->client->state() == State::Connected; }, 5000))
        return nullptr;
    return window;
}

std::unique_ptr<Window> tst_ChatServer::loggedIn(const QString &name)
{
    std::unique_ptr<Window> window = openWindow();
    if (!window)
        return nullptr;
    const Answer answer = call(*window, "login", QJsonObject{ { "name", name } });
    if (!answer.ok())
        return nullptr;
    window->client->setToken(answer.result["token"].toString());
    if (!QTest::qWaitFor([&] { return window->client->userId() == name; }, 5000))
        return nullptr;
    return window;
}

Answer tst_ChatServer::call(Window &window, const QString &method, const QJsonValue &payload)
{
    // Shared: a reply that came after the wait still has somewhere to go.
    auto answer = std::make_shared<Answer>();
    window.client->call(method, payload, this, [answer](const CallReply &reply) {
        *answer = { true, reply.result(), reply.errorCode() };
    });
    if (!QTest::qWaitFor([&] { return answer->finished; }, 10000))
        qWarning() << "no answer to" << method; // finished stays false: every check fails
    return *answer;
}

bool tst_ChatServer::send(Window &window, const QString &room, const QString &text)
{
    const Answer answer = call(window, "send", QJsonObject{ { "room", room }, { "text", text } });
    return answer.ok() && answer.result["id"].isDouble() && answer.result["time"].isString();
}

bool tst_ChatServer::listensTo(const Window &window, const char *notifier,
                               const QString &room) const
{
    return chat->server()->notifier(notifier)->localListenersJson(room).contains(
            window.connection());
}

bool tst_ChatServer::join(Window &window, const QString &room)
{
    window.messages->listen(room);
    window.typing->listen(room);
    window.members->listen(room);
    return QTest::qWaitFor(
            [&] {
                return listensTo(window, "messages", room) && listensTo(window, "typing", room)
                       && listensTo(window, "members", room);
            },
            5000);
}

bool tst_ChatServer::joinAll(const QList<Window *> &windows, const QString &room)
{
    if (windows.contains(nullptr))
        return false;
    for (Window *window : windows) {
        if (!join(*window, room))
            return false;
    }
    return true;
}

template<std::size_t N>
std::array<std::unique_ptr<Window>, N> tst_ChatServer::loggedInAndJoined(const QString (&names)[N],
                                                                         const QString &room)
{
    std::array<std::unique_ptr<Window>, N> windows;
    for (std::size_t i = 0; i < N; ++i)
        windows[i] = loggedIn(names[i]);
    QList<Window *> all;
    for (const std::unique_ptr<Window> &window : windows)
        all.append(window.get());
    if (!joinAll(all, room))
        return {};
    return windows;
}

void tst_ChatServer::listenAndUrl()
{
    QVERIFY2(chat->url().toString().startsWith("ws://127.0.0.1:"),
             qPrintable(chat->url().toString()));
    QCOMPARE(chat->url().port(), int(chat->server()->serverPort()));
    QVERIFY(chat->errorString().isEmpty());

    // A port already taken: false, and errorString() says why.
    ChatServer second;
    QVERIFY(second.url().isEmpty());
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("cannot listen on"));
    QVERIFY(!second.listen(QHostAddress::LocalHost, chat->server()->serverPort()));
    QVERIFY(!second.errorString().isEmpty());
    QVERIFY(second.url().isEmpty());
}

void tst_ChatServer::roomsListsTheConfiguredRooms()
{
    auto guest = openWindow();
    QVERIFY(guest);
    Answer answer = call(*guest, "rooms");
    QVERIFY(answer.ok());
    QCOMPARE(answer.result, QJsonValue(QJsonArray{ "lobby", "qt", "random" }));

    guest.reset();
    ChatServer::Options options;
    options.rooms = QStringList{ "kitchen", "garden" };
    QVERIFY(startServer(options));
    guest = openWindow();
    QVERIFY(guest);
    answer = call(*guest, "rooms");
    QVERIFY(answer.ok());
    QCOMPARE(answer.result, QJsonValue(QJsonArray{ "kitchen", "garden" }));
}

void tst_ChatServer::tokenIsTheNameAndItsHmac()
{
    const QByteArray mac = QMessageAuthenticationCode::hash("alice", "qtnotif-demo-secret",
                                                            QCryptographicHash::Sha256);
    QCOMPARE(chat->tokenFor("alice"), "alice." + QString::fromLatin1(mac.toHex()));
    QVERIFY(chat->tokenFor("bob") != chat->tokenFor("alice"));

    ChatServer::Options options;
    options.secret = "another secret";
    const ChatServer other(options);
    QVERIFY(other.tokenFor("alice") != chat->tokenFor("alice"));
    QVERIFY(other.tokenFor("alice").startsWith("alice."));
}

void tst_ChatServer::login_data()
{
    QTest::addColumn<QJsonValue>("payload");
    QTest::addColumn<QString>("error");

    const auto named = [](const QString &name) {
        return QJsonValue(QJsonObject{ { "name", name } });
    };
    QTest::addRow("alice") << named("alice") << QString();
    QTest::addRow("one character") << named("b") << QString();
    QTest::addRow("32 characters") << named(QString(32, 'x')) << QString();
    QTest::addRow("every kind of character") << named("Bob_the-2nd") << QString();
    QTest::addRow("empty") << named("") << "invalid_name";
    QTest::addRow("33 characters") << named(QString(33, 'x')) << "invalid_name";
    QTest::addRow("space") << named("bob smith") << "invalid_name";
    QTest::addRow("dot") << named("bob.smith") << "invalid_name";
    QTest::addRow("at sign") << named("@bob") << "invalid_name";
    QTest::addRow("not ASCII") << named("zoë") << "invalid_name";
    QTest::addRow("no name") << QJsonValue(QJsonObject{}) << "invalid_name";
    QTest::addRow("no payload") << QJsonValue() << "invalid_name";
}

void tst_ChatServer::login()
{
    QFETCH(QJsonValue, payload);
    QFETCH(QString, error);
    auto window = openWindow();
    QVERIFY(window);
    QSignalSpy identityChanged(window->client.get(), &Client::identityChanged);
    const QString connectionId = window->client->connectionId();

    const Answer answer = call(*window, "login", payload);
    QVERIFY(answer.finished);
    QCOMPARE(answer.error, error);
    if (!error.isEmpty()) {
        QVERIFY(answer.result.isNull());
        QVERIFY(roundTrip(*window));
        QCOMPARE(identityChanged.size(), 0);
        QVERIFY(window->client->userId().isEmpty());
        QVERIFY(chat->server()->identity(window->connection()).isAnonymous());
        return;
    }
    const QString name = payload["name"].toString();
    QCOMPARE(answer.result["user"].toString(), name);
    QCOMPARE(answer.result["token"].toString(), chat->tokenFor(name));
    // The live connection is that user now: the client was told, without reconnecting.
    QTRY_COMPARE(window->client->userId(), name);
    QCOMPARE(identityChanged.size(), 1);
    QCOMPARE(window->client->connectionId(), connectionId);
    // Only the moderators of the options (alice by default) have the attribute set.
    QCOMPARE(window->client->identity().value("attributes").toMap().value("moderator").toBool(),
             name == "alice");
    QCOMPARE(chat->server()->identity(window->connection()).userId(), name);
}

void tst_ChatServer::loginAgainSwitchesTheUser()
{
    auto window = loggedIn("alice");
    QVERIFY(window);
    // alice is a moderator by default, and the client sees it.
    QCOMPARE(window->client->identity().value("attributes").toMap().value("moderator").toBool(),
             true);
    QVERIFY(join(*window, "lobby"));
    QCOMPARE(chat->localMembers("lobby"), QStringList{ "alice" });

    // Logging in again as another user: the listens come back under the new identity.
    const Answer answer = call(*window, "login", QJsonObject{ { "name", "bob" } });
    QVERIFY(answer.ok());
    QTRY_COMPARE(window->client->userId(), QString("bob"));
    QCOMPARE(window->client->identity().value("attributes").toMap().value("moderator").toBool(),
             false);
    QTRY_COMPARE(chat->localMembers("lobby"), QStringList{ "bob" });
    QVERIFY(join(*window, "lobby"));
    QTRY_COMPARE(window->lastMembers(), QStringList{ "bob" });

    // Again as bob: nothing changes, the listens stay.
    QSignalSpy identityChanged(window->client.get(), &Client::identityChanged);
    QSignalSpy removed(chat->server()->notifier("messages"), &AbstractNotifier::listenerRemoved);
    QVERIFY(call(*window, "login", QJsonObject{ { "name", "bob" } }).ok());
    QVERIFY(roundTrip(*window));
    QCOMPARE(identityChanged.size(), 0);
    QCOMPARE(removed.size(), 0);
    QVERIFY(listensTo(*window, "messages", "lobby"));
}

void tst_ChatServer::tokenAuthenticatesReconnections()
{
    auto [alice, bob] = loggedInAndJoined({ "alice", "bob" });
    QVERIFY(alice && bob);
    QSignalSpy refused(chat->server(), &Server::clientRefused);

    // The server drops alice's connection; her client reconnects with the token of her login.
    const ConnectionId before = alice->connection();
    QVERIFY(chat->server()->disconnectClient(before));
    QTRY_VERIFY(alice->client->state() == State::Connected && alice->connection() != before);
    const Identity identity = chat->server()->identity(alice->connection());
    QCOMPARE(identity.userId(), QString("alice"));
    QCOMPARE(identity.attribute("moderator").toBool(), true);
    QCOMPARE(alice->client->userId(), QString("alice"));
    QCOMPARE(refused.size(), 0);

    // Still in the room as alice: the client library listened again by itself.
    QTRY_VERIFY(listensTo(*alice, "messages", "lobby") && listensTo(*alice, "members", "lobby"));
    QTRY_COMPARE(alice->lastMembers(), (QStringList{ "alice", "bob" }));
    QVERIFY(send(*bob, "lobby", "welcome back"));
    QTRY_COMPARE(alice->messageEvents->size(), 1);
    QCOMPARE(alice->lastMessage().value("text").toString(), QString("welcome back"));
}

void tst_ChatServer::invalidTokensAreRefused_data()
{
    QTest::addColumn<QString>("token");
    // _data() runs before init(): a server of the same (default) secret makes the tokens.
    const ChatServer server;
    const QString aliceMac = server.tokenFor("alice").section('.', 1);
    ChatServer::Options options;
    options.secret = "not the server's secret";
    QTest::addRow("no signature") << "alice";
    QTest::addRow("wrong signature") << "alice.0123456789abcdef";
    QTest::addRow("empty signature") << "alice.";
    QTest::addRow("another user's signature") << "bob." + aliceMac;
    QTest::addRow("another secret") << ChatServer(options).tokenFor("alice");
    QTest::addRow("signature with something after it") << server.tokenFor("alice") + ".x";
    QTest::addRow("invalid name") << "bob smith." + aliceMac;
    QTest::addRow("no name") << "." + aliceMac;
}

void tst_ChatServer::invalidTokensAreRefused()
{
    QFETCH(QString, token);
    Client client;
    client.setUrl(chat->url());
    client.setToken(token);
    QSignalSpy refused(chat->server(), &Server::clientRefused);
    client.open();
    QTRY_COMPARE(client.state(), State::Disconnected);
    QCOMPARE(client.error(), Client::Error::AuthenticationError);
    QCOMPARE(client.errorString(), QString("invalid token: log in again"));
    QCOMPARE(refused.size(), 1);
    QCOMPARE(chat->server()->connectionCount(), 0);
}

void tst_ChatServer::anonymousClientsCannotListen()
{
    auto guest = openWindow();
    QVERIFY(guest);
    QVERIFY(guest->client->userId().isEmpty());
    QList<std::shared_ptr<QSignalSpy>> failures;
    for (ClientNotifier *notifier : { guest->messages, guest->typing, guest->members }) {
        failures.append(std::make_shared<QSignalSpy>(notifier, &ClientNotifier::listenFailed));
        notifier->listen("lobby");
    }
    for (const auto &failed : failures) {
        QTRY_COMPARE(failed->size(), 1);
        QCOMPARE(failed->at(0).at(0).toString(), QString("lobby"));
        QCOMPARE(failed->at(0).at(1).toString(), QString("listen_denied"));
    }
    QCOMPARE(chat->server()->listenCount(), 0);

    // Once logged in, the same client may.
    QVERIFY(call(*guest, "login", QJsonObject{ { "name", "carol" } }).ok());
    QTRY_COMPARE(guest->client->userId(), QString("carol"));
    QVERIFY(join(*guest, "lobby"));
}

void tst_ChatServer::onlyTheServersRoomsCanBeListened()
{
    // Rooms are the server's: clients cannot make it keep a history for names of their own.
    auto alice = loggedIn("alice");
    QVERIFY(alice);
    QSignalSpy failed(alice->messages, &ClientNotifier::listenFailed);
    alice->messages->listen("my-own-room");
    QTRY_COMPARE(failed.size(), 1);
    QCOMPARE(failed.at(0).at(1).toString(), QString("listen_denied"));
    const Answer sent
            = call(*alice, "send", QJsonObject{ { "room", "my-own-room" }, { "text", "hi" } });
    QCOMPARE(sent.error, QString("not_in_room"));
    QVERIFY(join(*alice, "random"));
}

void tst_ChatServer::blockListIsBounded()
{
    // A hundred calls in a row: beyond the SDK's default request rate, which is not under test.
    chat->server()->setRequestRate(1000, 1000);
    auto alice = loggedIn("alice");
    QVERIFY(alice);
    for (int i = 0; i < 100; ++i) {
        const Answer answer
                = call(*alice, "block",
                       QJsonObject{ { "user", QString("pest%1").arg(i) }, { "blocked", true } });
        QVERIFY2(answer.ok(), qPrintable(answer.error));
    }
    const Answer full
            = call(*alice, "block", QJsonObject{ { "user", "one-more" }, { "blocked", true } });
    QCOMPARE(full.error, QString("too_many_blocks"));
    // Blocking someone already blocked, or unblocking, still works.
    QVERIFY(call(*alice, "block", QJsonObject{ { "user", "pest1" }, { "blocked", true } }).ok());
    QVERIFY(call(*alice, "block", QJsonObject{ { "user", "pest1" }, { "blocked", false } }).ok());
    QVERIFY(call(*alice, "block", QJsonObject{ { "user", "one-more" }, { "blocked", true } }).ok());
    QCOMPARE(chat->blockedBy("alice").size(), 100);
}

void tst_ChatServer::anonymousCalls_data()
{
    QTest::addColumn<QString>("method");
    QTest::addColumn<QJsonValue>("payload");
    QTest::addColumn<QString>("error");

    const QJsonObject lobby{ { "room", "lobby" } };
    QTest::addRow("send") << "send"
                          << QJsonValue(QJsonObject{ { "room", "lobby" }, { "text", "hi" } })
                          << "not_logged_in";
    QTest::addRow("typing") << "typing"
                            << QJsonValue(QJsonObject{ { "room", "lobby" }, { "typing", true } })
                            << "not_logged_in";
    QTest::addRow("history") << "history" << QJsonValue(lobby) << "not_logged_in";
    QTest::addRow("block") << "block"
                           << QJsonValue(QJsonObject{ { "user", "bob" }, { "blocked", true } })
                           << "not_logged_in";
    QTest::addRow("kick") << "kick"
                          << QJsonValue(QJsonObject{ { "room", "lobby" }, { "user", "bob" } })
                          << "not_logged_in";
    // These two need no login.
    QTest::addRow("rooms") << "rooms" << QJsonValue() << QString();
    QTest::addRow("members") << "members" << QJsonValue(lobby) << QString();
}

void tst_ChatServer::anonymousCalls()
{
    QFETCH(QString, method);
    QFETCH(QJsonValue, payload);
    QFETCH(QString, error);
    auto bob = loggedIn("bob");
    QVERIFY(bob);
    QVERIFY(join(*bob, "lobby"));
    auto guest = openWindow();
    QVERIFY(guest);
    const Answer answer = call(*guest, method, payload);
    QVERIFY(answer.finished);
    QCOMPARE(answer.error, error);
    // A refused call changed nothing.
    QVERIFY(roundTrip(*bob));
    QCOMPARE(bob->messageEvents->size(), 0);
    QCOMPARE(bob->typingEvents->size(), 0);
    QVERIFY(listensTo(*bob, "messages", "lobby"));
}

void tst_ChatServer::sendReachesEveryoneButTheSender()
{
    auto [alice, aliceLaptop, bob] = loggedInAndJoined({ "alice", "alice", "bob" });
    QVERIFY(alice && aliceLaptop && bob);

    const Answer answer
            = call(*alice, "send", QJsonObject{ { "room", "lobby" }, { "text", "hello" } });
    QVERIFY(answer.ok());
    const qint64 id = answer.result["id"].toInteger();
    const QString time = answer.result["time"].toString();
    QVERIFY(id > 0);
    // ISO 8601, UTC, with milliseconds.
    QVERIFY2(QRegularExpression(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)")
                     .match(time)
                     .hasMatch(),
             qPrintable(time));
    QVERIFY(qAbs(QDateTime::fromString(time, Qt::ISODateWithMs)
                         .msecsTo(QDateTime::currentDateTimeUtc()))
            < 60000);

    // Everyone else in the room receives it, alice's other window included.
    for (Window *window : { bob.get(), aliceLaptop.get() }) {
        QTRY_COMPARE(window->messageEvents->size(), 1);
        QCOMPARE(window->messageEvents->at(0).at(0).toString(), QString("lobby"));
        const QVariantMap message = window->message(0);
        QCOMPARE(sortedKeys(message), NotificationFields);
        QCOMPARE(message.value("id").toLongLong(), id);
        QCOMPARE(message.value("room").toString(), QString("lobby"));
        QCOMPARE(message.value("from").toString(), QString("alice"));
        QCOMPARE(message.value("text").toString(), QString("hello"));
        QCOMPARE(message.value("time").toString(), time);
        QCOMPARE(message.value("kind").toString(), QString("message"));
        QCOMPARE(message.value("mentionsMe").toBool(), false);
    }
    // Sending ends typing, for the others too.
    QTRY_COMPARE(bob->typingEvents->size(), 1);
    QCOMPARE(bob->lastTyping(), (QVariantMap{ { "user", "alice" }, { "typing", false } }));

    // The sending window adds its message itself: it receives nothing.
    QVERIFY(roundTrip(*alice));
    QCOMPARE(alice->messageEvents->size(), 0);
    QCOMPARE(alice->typingEvents->size(), 0);

    // Ids increase.
    QVERIFY(send(*bob, "lobby", "hi alice"));
    QTRY_COMPARE(alice->messageEvents->size(), 1);
    QVERIFY(alice->lastMessage().value("id").toLongLong() > id);
    QCOMPARE(alice->lastMessage().value("from").toString(), QString("bob"));
}

void tst_ChatServer::sendErrors()
{
    auto alice = loggedIn("alice");
    auto bob = loggedIn("bob");
    QVERIFY(alice && bob);
    QVERIFY(join(*bob, "lobby"));
    const auto sendText = [&](const QString &room, const QString &text) {
        return call(*alice, "send", QJsonObject{ { "room", room }, { "text", text } }).error;
    };

    // Not listening to the room's messages.
    QCOMPARE(sendText("lobby", "hi"), QString("not_in_room"));
    alice->typing->listen("lobby");
    QTRY_VERIFY(listensTo(*alice, "typing", "lobby"));
    QCOMPARE(sendText("lobby", "hi"), QString("not_in_room"));
    QVERIFY(join(*alice, "lobby"));
    QCOMPARE(sendText("qt", "hi"), QString("not_in_room"));
    QCOMPARE(call(*alice, "send", QJsonObject{ { "text", "no room" } }).error,
             QString("not_in_room"));

    // Empty, blank, or longer than 2000 characters.
    QCOMPARE(sendText("lobby", ""), QString("invalid_text"));
    QCOMPARE(sendText("lobby", " \n\t "), QString("invalid_text"));
    QCOMPARE(sendText("lobby", QString(2001, 'x')), QString("invalid_text"));
    QCOMPARE(call(*alice, "send", QJsonObject{ { "room", "lobby" } }).error,
             QString("invalid_text"));

    // 2000 characters pass; nothing refused reached bob or the history.
    QCOMPARE(sendText("lobby", QString(2000, 'x')), QString());
    QTRY_COMPARE(bob->messageEvents->size(), 1);
    QCOMPARE(bob->lastMessage().value("text").toString(), QString(2000, 'x'));
    QVERIFY(roundTrip(*bob));
    QCOMPARE(bob->messageEvents->size(), 1);
    const Answer history = call(*bob, "history", QJsonObject{ { "room", "lobby" } });
    QVERIFY(history.ok());
    QCOMPARE(history.result.toArray().size(), 1);
}

void tst_ChatServer::typingIsNotForTheTypist()
{
    auto [alice, aliceLaptop, bob] = loggedInAndJoined({ "alice", "alice", "bob" });
    QVERIFY(alice && aliceLaptop && bob);

    const Answer answer
            = call(*alice, "typing", QJsonObject{ { "room", "lobby" }, { "typing", true } });
    QVERIFY(answer.ok());
    QVERIFY(answer.result.isNull());
    QTRY_COMPARE(bob->typingEvents->size(), 1);
    QCOMPARE(bob->typingEvents->at(0).at(0).toString(), QString("lobby"));
    QCOMPARE(bob->lastTyping(), (QVariantMap{ { "user", "alice" }, { "typing", true } }));
    QTRY_COMPARE(aliceLaptop->typingEvents->size(), 1);

    QVERIFY(call(*alice, "typing", QJsonObject{ { "room", "lobby" }, { "typing", false } }).ok());
    QTRY_COMPARE(bob->typingEvents->size(), 2);
    QCOMPARE(bob->lastTyping(), (QVariantMap{ { "user", "alice" }, { "typing", false } }));

    // The typist's own window hears nothing of it, but hears the others.
    QVERIFY(roundTrip(*alice));
    QCOMPARE(alice->typingEvents->size(), 0);
    QVERIFY(call(*bob, "typing", QJsonObject{ { "room", "lobby" }, { "typing", true } }).ok());
    QTRY_COMPARE(alice->typingEvents->size(), 1);
    QCOMPARE(alice->lastTyping(), (QVariantMap{ { "user", "bob" }, { "typing", true } }));
    QVERIFY(roundTrip(*bob));
    QCOMPARE(bob->typingEvents->size(), 2);
}

void tst_ChatServer::membersFollowPresence()
{
    auto alice = loggedIn("alice");
    auto carol = loggedIn("carol");
    auto bob = loggedIn("bob");
    auto bobLaptop = loggedIn("bob");
    QVERIFY(alice && carol && bob && bobLaptop);
    const auto membersCall = [&](Window &window) {
        return call(window, "members", QJsonObject{ { "room", "lobby" } })
                .result.toVariant()
                .toStringList();
    };

    QVERIFY(join(*alice, "lobby"));
    QCOMPARE(membersCall(*alice), QStringList{ "alice" });
    QTRY_COMPARE(alice->lastMembers(), QStringList{ "alice" });
    QCOMPARE(alice->memberEvents->last().at(0).toString(), QString("lobby"));

    // Joins: everyone in the room hears of it, and the list is sorted.
    QVERIFY(join(*carol, "lobby"));
    QTRY_COMPARE(alice->lastMembers(), (QStringList{ "alice", "carol" }));
    QVERIFY(join(*bob, "lobby"));
    const QStringList everyone{ "alice", "bob", "carol" };
    QTRY_COMPARE(alice->lastMembers(), everyone);
    QTRY_COMPARE(carol->lastMembers(), everyone);
    // The newcomer gets the list too, with itself in it.
    QTRY_COMPARE(bob->lastMembers(), everyone);
    QCOMPARE(membersCall(*carol), everyone);

    // A user is listed once, however many windows are in the room.
    QVERIFY(join(*bobLaptop, "lobby"));
    QTRY_COMPARE(bobLaptop->lastMembers(), everyone);
    QCOMPARE(membersCall(*alice), everyone);
    QCOMPARE(chat->localMembers("lobby"), everyone);

    // Leaving (unlistening the room's messages) is seen at once.
    carol->messages->unlisten("lobby");
    QTRY_COMPARE(alice->lastMembers(), (QStringList{ "alice", "bob" }));
    QCOMPARE(membersCall(*alice), (QStringList{ "alice", "bob" }));

    // bob is still there while one of his windows is; then both disconnect.
    bobLaptop->client->close();
    QTRY_COMPARE(chat->server()->connectionCount(), 3);
    QVERIFY(roundTrip(*alice));
    QCOMPARE(alice->lastMembers(), (QStringList{ "alice", "bob" }));
    bob.reset();
    QTRY_COMPARE(alice->lastMembers(), QStringList{ "alice" });
    QCOMPARE(membersCall(*alice), QStringList{ "alice" });

    // Presence is per room.
    QCOMPARE(call(*alice, "members", QJsonObject{ { "room", "qt" } }).result,
             QJsonValue(QJsonArray()));
}

void tst_ChatServer::historyKeepsTheLastMessagesInOrder()
{
    ChatServer::Options options;
    options.historySize = 3;
    QVERIFY(startServer(options));
    auto alice = loggedIn("alice");
    auto bob = loggedIn("bob");
    QVERIFY(alice && bob);
    QVERIFY(join(*alice, "lobby"));
    QVERIFY(join(*alice, "qt"));
    QVERIFY(join(*bob, "lobby"));

    for (const QString text : { "one", "two", "three", "four" })
        QVERIFY(send(*alice, "lobby", text));
    QVERIFY(send(*bob, "lobby", "five"));
    QVERIFY(send(*alice, "qt", "elsewhere"));

    // The last three, oldest first, each as a live notification.
    const Answer answer = call(*bob, "history", QJsonObject{ { "room", "lobby" } });
    QVERIFY(answer.ok());
    const QJsonArray history = answer.result.toArray();
    QCOMPARE(texts(history), (QStringList{ "three", "four", "five" }));
    QCOMPARE(sortedKeys(history.at(0).toObject().toVariantMap()), NotificationFields);
    QVERIFY(history.at(0)["id"].toInteger() < history.at(1)["id"].toInteger());
    QVERIFY(history.at(1)["id"].toInteger() < history.at(2)["id"].toInteger());
    QCOMPARE(history.at(0)["from"].toString(), QString("alice"));
    QCOMPARE(history.at(2)["from"].toString(), QString("bob"));
    QCOMPARE(history.at(0)["room"].toString(), QString("lobby"));
    QCOMPARE(history.at(0)["kind"].toString(), QString("message"));
    // What bob received live is what history gives him.
    QTRY_COMPARE(bob->messageEvents->size(), 4);
    QCOMPARE(QJsonObject::fromVariantMap(bob->message(3)), history.at(1).toObject());

    // The sender gets its own messages back in history.
    QCOMPARE(texts(call(*alice, "history", QJsonObject{ { "room", "lobby" } }).result.toArray()),
             (QStringList{ "three", "four", "five" }));
    QCOMPARE(texts(call(*bob, "history", QJsonObject{ { "room", "qt" } }).result.toArray()),
             QStringList{ "elsewhere" });
    QCOMPARE(call(*bob, "history", QJsonObject{ { "room", "random" } }).result,
             QJsonValue(QJsonArray()));
}

void tst_ChatServer::historyIsPreparedForTheCaller()
{
    auto alice = loggedIn("alice");
    auto bob = loggedIn("bob");
    auto carol = loggedIn("carol");
    auto dave = loggedIn("dave"); // stays out of the room
    QVERIFY(dave);
    QVERIFY(joinAll({ alice.get(), bob.get(), carol.get() })); // false if one is null
    QVERIFY(call(*carol, "block", QJsonObject{ { "user", "bob" }, { "blocked", true } }).ok());

    QVERIFY(send(*bob, "lobby", "hi @carol"));
    QVERIFY(send(*alice, "lobby", "hey @carol"));
    QVERIFY(send(*alice, "lobby", "for @bob"));

    const auto history = [&](Window &window) {
        return call(window, "history", QJsonObject{ { "room", "lobby" } }).result.toArray();
    };
    // carol blocked bob: his message is left out of her history.
    const QJsonArray forCarol = history(*carol);
    QCOMPARE(texts(forCarol), (QStringList{ "hey @carol", "for @bob" }));
    QCOMPARE(forCarol.at(0)["mentionsMe"].toBool(), true);
    QCOMPARE(forCarol.at(1)["mentionsMe"].toBool(), false);

    const QJsonArray forBob = history(*bob);
    QCOMPARE(texts(forBob), (QStringList{ "hi @carol", "hey @carol", "for @bob" }));
    QCOMPARE(forBob.at(0)["mentionsMe"].toBool(), false);
    QCOMPARE(forBob.at(1)["mentionsMe"].toBool(), false);
    QCOMPARE(forBob.at(2)["mentionsMe"].toBool(), true);

    // No need to be in the room to read its history.
    const QJsonArray forDave = history(*dave);
    QCOMPARE(forDave.size(), 3);
    for (const QJsonValue &event : forDave)
        QCOMPARE(event["mentionsMe"].toBool(), false);

    // Unblocking brings bob's message back.
    QVERIFY(call(*carol, "block", QJsonObject{ { "user", "bob" }, { "blocked", false } }).ok());
    QCOMPARE(texts(history(*carol)), (QStringList{ "hi @carol", "hey @carol", "for @bob" }));
    QCOMPARE(history(*carol).at(0)["mentionsMe"].toBool(), true);
}

void tst_ChatServer::blockAndUnblockAffectLiveDelivery()
{
    auto [alice, bob, bobLaptop, carol] = loggedInAndJoined({ "alice", "bob", "bob", "carol" });
    QVERIFY(alice && bob && bobLaptop && carol);
    const auto block = [&](Window &window, const QString &user, bool blocked) {
        return call(window, "block", QJsonObject{ { "user", user }, { "blocked", blocked } });
    };

    // The reply is the caller's whole block list, sorted.
    Answer answer = block(*bob, "carol", true);
    QVERIFY(answer.ok());
    QCOMPARE(answer.result, QJsonValue(QJsonObject{ { "blocked", QJsonArray{ "carol" } } }));
    answer = block(*bob, "alice", true);
    QCOMPARE(answer.result,
             QJsonValue(QJsonObject{ { "blocked", QJsonArray{ "alice", "carol" } } }));
    answer = block(*bob, "carol", false);
    QCOMPARE(answer.result, QJsonValue(QJsonObject{ { "blocked", QJsonArray{ "alice" } } }));
    QCOMPARE(block(*bob, "alice", true).result["blocked"], QJsonValue(QJsonArray{ "alice" }));
    QCOMPARE(block(*bob, "not a name", true).error, QString("invalid_name"));
    QCOMPARE(chat->blockedBy("bob"), QStringList{ "alice" });

    // bob blocked alice, in every window of his; carol did not.
    QVERIFY(send(*alice, "lobby", "one"));
    QTRY_COMPARE(carol->messageEvents->size(), 1);
    QVERIFY(roundTrip(*bob));
    QVERIFY(roundTrip(*bobLaptop));
    QCOMPARE(bob->messageEvents->size(), 0);
    QCOMPARE(bobLaptop->messageEvents->size(), 0);
    // Blocking is one way: alice still hears bob.
    QVERIFY(send(*bob, "lobby", "from bob"));
    QTRY_COMPARE(alice->messageEvents->size(), 1);

    // Unblocked: the next message reaches him.
    QCOMPARE(block(*bobLaptop, "alice", false).result["blocked"], QJsonValue(QJsonArray()));
    QVERIFY(send(*alice, "lobby", "two"));
    QTRY_COMPARE(bob->messageEvents->size(), 1);
    QCOMPARE(bob->lastMessage().value("text").toString(), QString("two"));
    QTRY_COMPARE(bobLaptop->messageEvents->size(), 2); // "from bob" (another window), "two"
    QCOMPARE(bobLaptop->lastMessage().value("text").toString(), QString("two"));
}

void tst_ChatServer::mentionsAreMarkedOnlyForTheMentioned()
{
    auto [alice, bob, bobby, carol, dave]
            = loggedInAndJoined({ "alice", "bob", "bobby", "carol", "dave" });
    QVERIFY(alice && bob && bobby && carol && dave);
    const QList<Window *> listeners{ bob.get(), bobby.get(), carol.get(), dave.get() };

    // "@bob," and "@dave!" are mentions; "bob" without @ is not; "@bobby" names bobby only.
    QVERIFY(send(*alice, "lobby", "hi @bob, @dave! not bob, not carol@ nor @ carol, but @bobby"));
    const QHash<Window *, bool> mentioned{
        { bob.get(), true }, { bobby.get(), true }, { carol.get(), false }, { dave.get(), true }
    };
    for (Window *window : listeners) {
        QTRY_COMPARE(window->messageEvents->size(), 1);
        QCOMPARE(window->lastMessage().value("mentionsMe").toBool(), mentioned.value(window));
    }

    QVERIFY(send(*alice, "lobby", "only @bobby"));
    for (Window *window : listeners) {
        QTRY_COMPARE(window->messageEvents->size(), 2);
        QCOMPARE(window->lastMessage().value("mentionsMe").toBool(), window == bobby.get());
    }
}

void tst_ChatServer::kickByModerator()
{
    // alice is the default moderator.
    auto [alice, bob, bobLaptop, carol] = loggedInAndJoined({ "alice", "bob", "bob", "carol" });
    QVERIFY(alice && bob && bobLaptop && carol);
    QVERIFY(join(*bob, "qt"));
    // System messages are never blocked.
    QVERIFY(call(*carol, "block", QJsonObject{ { "user", "alice" }, { "blocked", true } }).ok());
    QTRY_COMPARE(carol->lastMembers(), (QStringList{ "alice", "bob", "carol" }));
    QList<std::shared_ptr<QSignalSpy>> unlistened;
    for (Window *window : { bob.get(), bobLaptop.get() }) {
        for (ClientNotifier *notifier : { window->messages, window->typing, window->members })
            unlistened.append(std::make_shared<QSignalSpy>(notifier, &ClientNotifier::unlistened));
    }

    const Answer answer
            = call(*alice, "kick", QJsonObject{ { "room", "lobby" }, { "user", "bob" } });
    QVERIFY(answer.ok());
    QCOMPARE(answer.result, QJsonValue(QJsonObject{ { "removed", 2 } }));

    // Each of bob's windows is told, for each of the three notifiers, that the server removed
    // every client of the user; the room leaves their wanted keys.
    for (const auto &spy : unlistened) {
        QTRY_COMPARE(spy->size(), 1);
        QCOMPARE(spy->at(0).at(0).toString(), QString("lobby"));
        QCOMPARE(spy->at(0).at(1).value<Reason>(), Reason::User);
    }
    for (Window *window : { bob.get(), bobLaptop.get() }) {
        QVERIFY(!window->messages->isListening("lobby"));
        QVERIFY(!window->typing->isListening("lobby"));
        QVERIFY(!window->members->isListening("lobby"));
        QVERIFY(!listensTo(*window, "messages", "lobby"));
    }
    QVERIFY(bob->messages->isListening("qt")); // other rooms stay
    QVERIFY(listensTo(*bob, "messages", "qt"));

    // The room hears it as a system message, the moderator included.
    for (Window *window : { alice.get(), carol.get() }) {
        QTRY_COMPARE(window->messageEvents->size(), 1);
        const QVariantMap message = window->lastMessage();
        QCOMPARE(sortedKeys(message), NotificationFields);
        QCOMPARE(message.value("kind").toString(), QString("system"));
        QCOMPARE(message.value("text").toString(), QString("bob was removed by alice"));
        QCOMPARE(message.value("from").toString(), QString());
        QCOMPARE(message.value("room").toString(), QString("lobby"));
        QCOMPARE(message.value("mentionsMe").toBool(), false);
    }
    QVERIFY(roundTrip(*bob));
    QCOMPARE(bob->messageEvents->size(), 0);
    QTRY_COMPARE(carol->lastMembers(), (QStringList{ "alice", "carol" }));
    const Answer history = call(*carol, "history", QJsonObject{ { "room", "lobby" } });
    QCOMPARE(texts(history.result.toArray()), QStringList{ "bob was removed by alice" });

    // Kicking someone who is not there removes nobody and says nothing.
    const Answer again
            = call(*alice, "kick", QJsonObject{ { "room", "lobby" }, { "user", "bob" } });
    QCOMPARE(again.result, QJsonValue(QJsonObject{ { "removed", 0 } }));
    QVERIFY(roundTrip(*carol));
    QCOMPARE(carol->messageEvents->size(), 1);
}

void tst_ChatServer::kickByNonModeratorIsForbidden()
{
    auto [alice, bob] = loggedInAndJoined({ "alice", "bob" });
    QVERIFY(alice && bob);
    QSignalSpy unlistened(alice->messages, &ClientNotifier::unlistened);

    const Answer answer
            = call(*bob, "kick", QJsonObject{ { "room", "lobby" }, { "user", "alice" } });
    QVERIFY(answer.finished);
    QCOMPARE(answer.error, QString("forbidden"));
    QVERIFY(roundTrip(*alice));
    QCOMPARE(unlistened.size(), 0);
    QVERIFY(listensTo(*alice, "messages", "lobby"));
    QCOMPARE(alice->messageEvents->size(), 0);

    // Moderators are whoever the options name.
    alice.reset();
    bob.reset();
    ChatServer::Options options;
    options.moderators = QStringList{ "bob" };
    QVERIFY(startServer(options));
    alice = loggedIn("alice");
    bob = loggedIn("bob");
    QVERIFY(alice && bob);
    QVERIFY(join(*bob, "lobby"));
    QCOMPARE(call(*alice, "kick", QJsonObject{ { "room", "lobby" }, { "user", "bob" } }).error,
             QString("forbidden"));
    QVERIFY(call(*bob, "kick", QJsonObject{ { "room", "lobby" }, { "user", "alice" } }).ok());
}

QTEST_GUILESS_MAIN(tst_ChatServer)
#include "tst_chatserver.moc"
