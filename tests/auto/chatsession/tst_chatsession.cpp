// ChatDemo::ChatSession (demo-app/common) against a real ChatDemo::ChatServer on loopback.
#include <chatserver.h>
#include <chatsession.h>

#include <QtNotif/client.h>
#include <QtNotif/clientnotifier.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QTimer>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>

#include <memory>

using namespace std::chrono_literals;
using ChatDemo::ChatServer;
using ChatDemo::ChatSession;

using State = ChatSession::State;

namespace {

// "from: text" of each message a messageReceived spy recorded, in order.
QStringList lines(const QSignalSpy &spy)
{
    QStringList result;
    for (const QList<QVariant> &arguments : spy) {
        const QVariantMap message = arguments.at(1).toMap();
        result.append(message.value("from").toString() + ": " + message.value("text").toString());
    }
    return result;
}

// The "typing" values of the typing notifications a clientEvent spy recorded.
QList<bool> typingValues(const QSignalSpy &spy)
{
    QList<bool> result;
    for (const QList<QVariant> &arguments : spy)
        result.append(arguments.at(1).toMap().value("typing").toBool());
    return result;
}

// Joins room, opens the session and waits until the session is a member of the room: its
// three listens are in place then (the server handles them in order).
bool joinAndWait(ChatSession &session, const QString &room = "lobby")
{
    session.join(room);
    session.open();
    return QTest::qWaitFor(
            [&] {
                return session.state() == State::Connected
                       && session.members(room).contains(session.userName());
            },
            5000);
}

// The two sessions most tests talk between: alice (a moderator) and bob, not open yet, and spies
// on what each receives. Set the sessions up, then joinLobby(): the spies record what comes
// after both are in the lobby.
struct AliceAndBob
{
    AliceAndBob(std::unique_ptr<ChatSession> aliceSession, std::unique_ptr<ChatSession> bobSession)
        : alice(std::move(aliceSession)), bob(std::move(bobSession))
    {
    }

    // Joins alice, then bob, to the lobby (each with the rooms it was told to join before),
    // then clears the spies. False if either was not in the lobby in time.
    bool joinLobby()
    {
        if (!joinAndWait(*alice) || !joinAndWait(*bob))
            return false;
        for (QSignalSpy *spy : { &aliceMessages, &bobMessages, &aliceTyping, &bobTyping })
            spy->clear();
        return true;
    }

    std::unique_ptr<ChatSession> alice;
    std::unique_ptr<ChatSession> bob;
    QSignalSpy aliceMessages{ alice.get(), &ChatSession::messageReceived };
    QSignalSpy bobMessages{ bob.get(), &ChatSession::messageReceived };
    QSignalSpy aliceTyping{ alice.get(), &ChatSession::typingChanged };
    QSignalSpy bobTyping{ bob.get(), &ChatSession::typingChanged };
};

// A plain Client listening to "typing" of the lobby, and a spy on the typing notifications it
// receives: every one the server sends, unfiltered.
struct TypingObserver
{
    std::unique_ptr<QtNotif::Client> client;
    std::unique_ptr<QSignalSpy> sent;
};

} // namespace

class tst_ChatSession : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void logsInAndReportsModerator();
    void invalidNameIsReported();
    void joinReportsHistoryAndMembers();
    void sendReachesOthersAndTheSenderOnce();
    void typingIsThrottledAndNotForMe();
    void sendingStopsTyping();
    void blockedSenderIsNotReceived();
    void mentionIsMarked();
    void commands();
    void kickRemovesFromRoom();
    void onlyModeratorsKick();
    void leaveThenJoinReportsHistoryAgain();
    void reconnectDoesNotDuplicateMessages();
    void reconnectFetchesMissedMessages();
    void refusedTokenLogsInAgain();

private:
    // A session of the test server with short reconnect delays, not open yet.
    std::unique_ptr<ChatSession> makeSession(const QString &name);
    // Sessions of alice and bob with their spies, not open yet.
    AliceAndBob makeAliceAndBob() { return { makeSession("alice"), makeSession("bob") }; }
    // A typing observer logged in as name. Null if its listen did not reach the server in time.
    std::unique_ptr<TypingObserver> makeTypingObserver(const QString &name);

    std::unique_ptr<ChatServer> server;
};

void tst_ChatSession::init()
{
    ChatServer::Options options;
    options.secret = "test secret";
    server = std::make_unique<ChatServer>(options);
    QVERIFY2(server->listen(), qPrintable(server->errorString()));
}

void tst_ChatSession::cleanup()
{
    server.reset();
}

std::unique_ptr<ChatSession> tst_ChatSession::makeSession(const QString &name)
{
    auto session = std::make_unique<ChatSession>(server->url(), name);
    session->client()->setReconnectDelays(20ms, 200ms);
    return session;
}

std::unique_ptr<TypingObserver> tst_ChatSession::makeTypingObserver(const QString &name)
{
    const QtNotif::AbstractNotifier *typing = server->server()->notifier("typing");
    const int listeners = typing->localListenerCountJson("lobby");
    auto client = std::make_unique<QtNotif::Client>();
    client->setUrl(server->url());
    client->setToken(server->tokenFor(name));
    client->notifier("typing")->listen("lobby");
    client->open();
    // Listening before anyone types: the typing notifications are not kept for later.
    if (!QTest::qWaitFor([&] { return typing->localListenerCountJson("lobby") == listeners + 1; },
                         5000)) {
        return nullptr;
    }
    auto observer = std::make_unique<TypingObserver>();
    observer->sent = std::make_unique<QSignalSpy>(client->notifier("typing"),
                                                  &QtNotif::ClientNotifier::clientEvent);
    observer->client = std::move(client);
    return observer;
}

void tst_ChatSession::logsInAndReportsModerator()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QSignalSpy states(alice.get(), &ChatSession::stateChanged);
    QSignalSpy moderator(alice.get(), &ChatSession::moderatorChanged);
    QSignalSpy rooms(alice.get(), &ChatSession::roomsChanged);
    QCOMPARE(alice->state(), State::Disconnected);
    QCOMPARE(alice->userName(), QString("alice"));

    alice->open();
    bob->open();
    QTRY_COMPARE(alice->state(), State::Connected);
    // Connected means logged in: the login is part of connecting.
    QCOMPARE(states.size(), 2);
    QCOMPARE(states.at(0).at(0).value<State>(), State::Connecting);
    QCOMPARE(states.at(1).at(0).value<State>(), State::Connected);
    QCOMPARE(alice->client()->userId(), QString("alice"));
    // The token is set for the Client's reconnections.
    QCOMPARE(alice->client()->token(), server->tokenFor("alice"));
    QVERIFY(alice->isModerator());
    QCOMPARE(moderator.size(), 1);
    QTRY_COMPARE(rooms.size(), 1);
    QCOMPARE(alice->rooms(), (QStringList{ "lobby", "qt", "random" }));

    QTRY_COMPARE(bob->state(), State::Connected);
    QVERIFY(!bob->isModerator());

    // Closing fails the calls still waiting; that is no error to report to whoever closed.
    QSignalSpy errors(alice.get(), &ChatSession::errorOccurred);
    alice->setBlocked("bob", true);
    alice->close();
    QCOMPARE(alice->state(), State::Disconnected);
    QCoreApplication::processEvents();
    QCOMPARE(errors.size(), 0);
}

void tst_ChatSession::invalidNameIsReported()
{
    auto session = makeSession("not a name!");
    QSignalSpy errors(session.get(), &ChatSession::errorOccurred);
    session->open();
    QTRY_COMPARE(errors.size(), 1);
    QVERIFY2(session->errorString().contains("Login refused"), qPrintable(session->errorString()));
    QCOMPARE(session->state(), State::Disconnected);
}

void tst_ChatSession::joinReportsHistoryAndMembers()
{
    auto alice = makeSession("alice");
    QSignalSpy aliceMembers(alice.get(), &ChatSession::membersChanged);
    QVERIFY(joinAndWait(*alice));
    QCOMPARE(alice->joinedRooms(), QStringList{ "lobby" });
    QCOMPARE(aliceMembers.last().at(0).toString(), QString("lobby"));
    QCOMPARE(aliceMembers.last().at(1).toStringList(), QStringList{ "alice" });
    QSignalSpy aliceMessages(alice.get(), &ChatSession::messageReceived);
    for (const QString text : { "one", "two", "three" })
        alice->send("lobby", text);
    QTRY_COMPARE(aliceMessages.size(), 3);

    auto bob = makeSession("bob");
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);
    QSignalSpy bobMembers(bob.get(), &ChatSession::membersChanged);
    QSignalSpy bobHistory(bob.get(), &ChatSession::historyLoaded);
    qsizetype messagesBeforeHistoryLoaded = -1;
    connect(bob.get(), &ChatSession::historyLoaded, this,
            [&] { messagesBeforeHistoryLoaded = bobMessages.size(); });
    QVERIFY(joinAndWait(*bob));
    QTRY_COMPARE(bobHistory.size(), 1);
    QCOMPARE(bobHistory.at(0).at(0).toString(), QString("lobby"));
    QCOMPARE(messagesBeforeHistoryLoaded, 3);
    QCOMPARE(bobMessages.size(), 3);
    QCOMPARE(lines(bobMessages), (QStringList{ "alice: one", "alice: two", "alice: three" }));
    const QVariantMap first = bobMessages.first().at(1).toMap();
    QCOMPARE(bobMessages.first().at(0).toString(), QString("lobby"));
    QCOMPARE(first.value("room").toString(), QString("lobby"));
    QCOMPARE(first.value("kind").toString(), QString("message"));
    QVERIFY(!first.value("time").toString().isEmpty());
    // The sender's own copy carries the server's id and time, as everyone else's.
    QCOMPARE(aliceMessages.first().at(1).toMap().value("id"), first.value("id"));
    QCOMPARE(aliceMessages.first().at(1).toMap().value("time"), first.value("time"));

    QCOMPARE(bob->members("lobby"), (QStringList{ "alice", "bob" }));
    QCOMPARE(bobMembers.last().at(1).toStringList(), (QStringList{ "alice", "bob" }));
    QTRY_COMPARE(alice->members("lobby"), (QStringList{ "alice", "bob" }));
    QCOMPARE(aliceMembers.last().at(1).toStringList(), (QStringList{ "alice", "bob" }));
    QVERIFY(bob->members("qt").isEmpty());
}

void tst_ChatSession::sendReachesOthersAndTheSenderOnce()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());

    chat.alice->send("lobby", "hi bob");
    QTRY_COMPARE(chat.bobMessages.size(), 1);
    QCOMPARE(lines(chat.bobMessages), QStringList{ "alice: hi bob" });
    QTRY_COMPARE(chat.aliceMessages.size(), 1);
    QCOMPARE(lines(chat.aliceMessages), QStringList{ "alice: hi bob" });

    // The server does not send alice her own message: bob's answer, sent after it, proves no
    // second copy is on its way.
    chat.bob->send("lobby", "hi alice");
    QTRY_COMPARE(chat.aliceMessages.size(), 2);
    QCOMPARE(lines(chat.aliceMessages), (QStringList{ "alice: hi bob", "bob: hi alice" }));
    QTRY_COMPARE(chat.bobMessages.size(), 2);
    QCOMPARE(lines(chat.bobMessages), (QStringList{ "alice: hi bob", "bob: hi alice" }));

    // Writing to a room not joined fails on the client.
    QSignalSpy errors(chat.alice.get(), &ChatSession::errorOccurred);
    chat.alice->send("qt", "anyone?");
    QCOMPARE(errors.size(), 1);
}

void tst_ChatSession::typingIsThrottledAndNotForMe()
{
    AliceAndBob chat = makeAliceAndBob();
    constexpr auto repeat = 200ms;
    chat.alice->setTypingIntervals(repeat, 400ms);
    QVERIFY(chat.joinLobby());
    const auto observer = makeTypingObserver("carol");
    QVERIFY(observer);

    // Keystrokes in a row: one "typing".
    for (int i = 0; i < 5; ++i)
        chat.alice->setTyping("lobby", true);
    QTRY_COMPARE(chat.bobTyping.size(), 1);
    QCOMPARE(chat.bobTyping.at(0).at(0).toString(), QString("lobby"));
    QCOMPARE(chat.bobTyping.at(0).at(1).toStringList(), QStringList{ "alice" });
    QCOMPARE(chat.bob->typists("lobby"), QStringList{ "alice" });
    QTRY_COMPARE(observer->sent->size(), 1);

    // Idle: "not typing" by itself.
    QTRY_COMPARE(chat.bobTyping.size(), 2);
    QVERIFY(chat.bob->typists("lobby").isEmpty());
    QTRY_COMPARE(typingValues(*observer->sent), (QList<bool>{ true, false }));

    // Typing on and on: "typing" again once per repeat interval, not per keystroke.
    QTimer keystrokes;
    keystrokes.setInterval(20ms);
    connect(&keystrokes, &QTimer::timeout, chat.alice.get(),
            [&] { chat.alice->setTyping("lobby", true); });
    QElapsedTimer elapsed;
    elapsed.start();
    keystrokes.start();
    chat.alice->setTyping("lobby", true);
    QVERIFY(QTest::qWaitFor([&] { return elapsed.elapsed() >= 700; }, 5000));
    keystrokes.stop();
    const qint64 typedFor = elapsed.elapsed();
    chat.alice->setTyping("lobby", false); // the input was cleared
    QTRY_COMPARE(typingValues(*observer->sent).last(), false);
    const qsizetype repeats = typingValues(*observer->sent).count(true) - 1;
    // At most once per interval (timers may fire a little early), and more than once.
    QVERIFY2(repeats >= 2 && repeats <= typedFor / (repeat.count() * 9 / 10) + 1,
             qPrintable(QString("%1 repeats in %2 ms").arg(repeats).arg(typedFor)));

    // notFor me: alice is never told about her own typing.
    QCOMPARE(chat.aliceTyping.size(), 0);
    QCOMPARE(chat.bob->typists("lobby"), QStringList());
}

void tst_ChatSession::sendingStopsTyping()
{
    AliceAndBob chat = makeAliceAndBob();
    chat.alice->setTypingIntervals(10s, 10s); // nothing by the timers during this test
    QVERIFY(chat.joinLobby());
    const auto observer = makeTypingObserver("carol");
    QVERIFY(observer);

    chat.alice->setTyping("lobby", true);
    QTRY_COMPARE(chat.bob->typists("lobby"), QStringList{ "alice" });
    chat.alice->send("lobby", "done");
    // The server says alice stopped typing when she sends.
    QTRY_COMPARE(chat.bob->typists("lobby"), QStringList());
    // Typing again right after is new typing, announced at once although the repeat interval
    // has not passed.
    chat.alice->setTyping("lobby", true);
    QTRY_COMPARE(typingValues(*observer->sent), (QList<bool>{ true, false, true }));
    QTRY_COMPARE(chat.bob->typists("lobby"), QStringList{ "alice" });
}

void tst_ChatSession::blockedSenderIsNotReceived()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());
    const auto observer = makeTypingObserver("carol");
    QVERIFY(observer);
    QSignalSpy blocked(chat.bob.get(), &ChatSession::blockedUsersChanged);

    chat.bob->setBlocked("alice", true);
    QTRY_COMPARE(blocked.size(), 1);
    QCOMPARE(blocked.at(0).at(0).toStringList(), QStringList{ "alice" });
    QVERIFY(chat.bob->isBlocked("alice"));

    chat.alice->send("lobby", "can you hear me?");
    chat.alice->setTyping("lobby", true);
    QTRY_COMPARE(chat.aliceMessages.size(), 1); // the server took it
    // Carol got the typing (after the "not typing" that sending implies).
    QTRY_COMPARE(typingValues(*observer->sent), (QList<bool>{ false, true }));

    // The reply to bob's unblock comes on the connection that would have brought both, after
    // them: once it is here, the message is not coming, and the typing came but was not shown.
    qsizetype typingWhenUnblocked = -1;
    connect(chat.bob.get(), &ChatSession::blockedUsersChanged, this,
            [&] { typingWhenUnblocked = chat.bobTyping.size(); });
    chat.bob->setBlocked("alice", false);
    QTRY_COMPARE(blocked.size(), 2);
    QCOMPARE(blocked.at(1).at(0).toStringList(), QStringList());
    QCOMPARE(chat.bobMessages.size(), 0);
    QCOMPARE(typingWhenUnblocked, 0);
    // Unblocked, her typing shows (the server had sent it).
    QCOMPARE(chat.bobTyping.size(), 1);
    QCOMPARE(chat.bob->typists("lobby"), QStringList{ "alice" });

    chat.alice->send("lobby", "and now?");
    QTRY_COMPARE(chat.bobMessages.size(), 1);
    QCOMPARE(lines(chat.bobMessages), QStringList{ "alice: and now?" });
}

void tst_ChatSession::mentionIsMarked()
{
    AliceAndBob chat = makeAliceAndBob();
    auto carol = makeSession("carol");
    QVERIFY(chat.joinLobby());
    QVERIFY(joinAndWait(*carol));
    QSignalSpy carolMessages(carol.get(), &ChatSession::messageReceived);

    chat.alice->send("lobby", "hello @bob");
    QTRY_COMPARE(chat.bobMessages.size(), 1);
    QVERIFY(chat.bobMessages.at(0).at(1).toMap().value("mentionsMe").toBool());
    QTRY_COMPARE(carolMessages.size(), 1);
    QVERIFY(!carolMessages.at(0).at(1).toMap().value("mentionsMe").toBool());
}

void tst_ChatSession::commands()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());
    QSignalSpy errors(chat.alice.get(), &ChatSession::errorOccurred);
    QSignalSpy blocked(chat.alice.get(), &ChatSession::blockedUsersChanged);

    QVERIFY(!chat.alice->submit("lobby", "   "));
    QVERIFY(!chat.alice->submit("lobby", "/dance"));
    QVERIFY(!chat.alice->submit("lobby", "/block"));
    QVERIFY(!chat.alice->submit("lobby", "/kick bob now"));
    QCOMPARE(errors.size(), 3);

    QVERIFY(chat.alice->submit("lobby", "/block bob"));
    QTRY_COMPARE(chat.alice->blockedUsers(), QStringList{ "bob" });
    QVERIFY(chat.alice->submit("lobby", "/unblock  bob"));
    QTRY_COMPARE(blocked.size(), 2);
    QVERIFY(chat.alice->blockedUsers().isEmpty());

    QVERIFY(chat.alice->submit("lobby", "  plain text  "));
    QTRY_COMPARE(lines(chat.bobMessages), QStringList{ "alice: plain text" });

    QSignalSpy removed(chat.bob.get(), &ChatSession::removedFromRoom);
    QVERIFY(chat.alice->submit("lobby", "/kick bob"));
    QTRY_COMPARE(removed.size(), 1);
    QCOMPARE(errors.size(), 3);
}

void tst_ChatSession::kickRemovesFromRoom()
{
    AliceAndBob chat = makeAliceAndBob();
    chat.bob->join("qt");
    QVERIFY(chat.joinLobby());
    QTRY_COMPARE(chat.alice->members("lobby"), (QStringList{ "alice", "bob" }));
    QSignalSpy removed(chat.bob.get(), &ChatSession::removedFromRoom);
    QSignalSpy bobJoined(chat.bob.get(), &ChatSession::joinedRoomsChanged);

    chat.alice->kick("lobby", "bob");
    QTRY_COMPARE(removed.size(), 1);
    QCOMPARE(removed.at(0).at(0).toString(), QString("lobby"));
    QVERIFY(!chat.bob->isJoined("lobby"));
    QCOMPARE(chat.bob->joinedRooms(), QStringList{ "qt" });
    QCOMPARE(bobJoined.size(), 1);
    QCOMPARE(bobJoined.at(0).at(0).toStringList(), QStringList{ "qt" });

    QTRY_COMPARE(chat.aliceMessages.size(), 1);
    const QVariantMap notice = chat.aliceMessages.at(0).at(1).toMap();
    QCOMPARE(notice.value("kind").toString(), QString("system"));
    QCOMPARE(notice.value("text").toString(), QString("bob was removed by alice"));
    QTRY_COMPARE(chat.alice->members("lobby"), QStringList{ "alice" });

    // Removed for good: a reconnection does not bring bob back into the room.
    const QtNotif::ConnectionId connection = server->server()->connectionsOfUser("bob").first();
    server->server()->disconnectClient(connection);
    QTRY_COMPARE(chat.bob->state(), State::Reconnecting);
    QTRY_COMPARE(chat.bob->state(), State::Connected);
    QTRY_COMPARE(server->localMembers("qt"), QStringList{ "bob" });
    QCOMPARE(server->localMembers("lobby"), QStringList{ "alice" });
}

void tst_ChatSession::onlyModeratorsKick()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());
    QSignalSpy errors(chat.bob.get(), &ChatSession::errorOccurred);
    chat.bob->kick("lobby", "alice");
    QTRY_COMPARE(errors.size(), 1);
    QVERIFY2(chat.bob->errorString().contains("moderators"), qPrintable(chat.bob->errorString()));
    QVERIFY(chat.alice->isJoined("lobby"));
    QCOMPARE(server->localMembers("lobby"), (QStringList{ "alice", "bob" }));

    // A moderator removing someone who is not there is told so.
    QSignalSpy aliceErrors(chat.alice.get(), &ChatSession::errorOccurred);
    chat.alice->kick("lobby", "nobody");
    QTRY_COMPARE(aliceErrors.size(), 1);
}

void tst_ChatSession::leaveThenJoinReportsHistoryAgain()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());
    chat.alice->send("lobby", "before");
    QTRY_COMPARE(chat.bobMessages.size(), 1);

    chat.bob->leave("lobby");
    QVERIFY(!chat.bob->isJoined("lobby"));
    QTRY_COMPARE(chat.alice->members("lobby"), QStringList{ "alice" });
    QVERIFY(chat.bob->members("lobby").isEmpty());

    chat.bob->join("lobby");
    QTRY_COMPARE(chat.bobMessages.size(), 2);
    QCOMPARE(lines(chat.bobMessages), (QStringList{ "alice: before", "alice: before" }));
    QTRY_COMPARE(chat.alice->members("lobby"), (QStringList{ "alice", "bob" }));
}

void tst_ChatSession::reconnectDoesNotDuplicateMessages()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());
    chat.alice->send("lobby", "one");
    chat.bob->send("lobby", "two");
    QTRY_COMPARE(chat.bobMessages.size(), 2);
    QTRY_COMPARE(chat.aliceMessages.size(), 2);
    QSignalSpy bobStates(chat.bob.get(), &ChatSession::stateChanged);
    QSignalSpy bobHistory(chat.bob.get(), &ChatSession::historyLoaded);

    server->server()->disconnectClient(server->server()->connectionsOfUser("bob").first());
    QTRY_COMPARE(chat.bob->state(), State::Reconnecting);
    QTRY_COMPARE(chat.bob->state(), State::Connected);
    QCOMPARE(bobStates.size(), 2);
    QCOMPARE(bobStates.at(0).at(0).value<State>(), State::Reconnecting);
    QCOMPARE(bobStates.at(1).at(0).value<State>(), State::Connected);
    QCOMPARE(chat.bob->client()->userId(), QString("bob")); // by the token, without a login
    QTRY_COMPARE(server->localMembers("lobby"), (QStringList{ "alice", "bob" }));
    QTRY_COMPARE(bobHistory.size(), 1);
    QCOMPARE(chat.bobMessages.size(), 2);

    // The history fetched again holds "one" and "two": neither is reported again. A message
    // sent after the reconnection comes after that history.
    chat.alice->send("lobby", "three");
    QTRY_COMPARE(chat.bobMessages.size(), 3);
    QCOMPARE(lines(chat.bobMessages), (QStringList{ "alice: one", "bob: two", "alice: three" }));
    chat.bob->send("lobby", "four");
    QTRY_COMPARE(chat.aliceMessages.size(), 4);
    QTRY_COMPARE(chat.bobMessages.size(), 4);
    QCOMPARE(lines(chat.bobMessages),
             (QStringList{ "alice: one", "bob: two", "alice: three", "bob: four" }));
}

void tst_ChatSession::reconnectFetchesMissedMessages()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());
    chat.alice->send("lobby", "seen");
    QTRY_COMPARE(chat.bobMessages.size(), 1);

    // Bob stays away while alice writes, then comes back: the Client listens again by
    // itself, and the history fills the gap.
    chat.bob->client()->setAutoReconnect(false);
    server->server()->disconnectClient(server->server()->connectionsOfUser("bob").first());
    QTRY_COMPARE(chat.bob->state(), State::Disconnected);
    chat.aliceMessages.clear(); // her copy of "seen" is not counted
    chat.alice->send("lobby", "missed");
    QTRY_COMPARE(chat.aliceMessages.size(), 1);
    chat.bob->open();
    QTRY_COMPARE(chat.bobMessages.size(), 2);
    QCOMPARE(lines(chat.bobMessages), (QStringList{ "alice: seen", "alice: missed" }));
    QVERIFY(chat.bob->isJoined("lobby"));
    QTRY_COMPARE(server->localMembers("lobby"), (QStringList{ "alice", "bob" }));
    chat.alice->send("lobby", "live");
    QTRY_COMPARE(chat.bobMessages.size(), 3);
    QCOMPARE(lines(chat.bobMessages),
             (QStringList{ "alice: seen", "alice: missed", "alice: live" }));
}

void tst_ChatSession::refusedTokenLogsInAgain()
{
    AliceAndBob chat = makeAliceAndBob();
    QVERIFY(chat.joinLobby());
    QSignalSpy bobErrors(chat.bob.get(), &ChatSession::errorOccurred);

    // As if the server had restarted with another secret: the token is refused at the next
    // handshake. The session logs in again and keeps its rooms.
    chat.bob->client()->setToken("bob.0123");
    server->server()->disconnectClient(server->server()->connectionsOfUser("bob").first());
    QTRY_VERIFY(chat.bob->client()->token() == server->tokenFor("bob"));
    QTRY_COMPARE(chat.bob->state(), State::Connected);
    QVERIFY(bobErrors.size() >= 1);
    QCOMPARE(chat.bob->joinedRooms(), QStringList{ "lobby" });
    QTRY_COMPARE(server->localMembers("lobby"), (QStringList{ "alice", "bob" }));

    chat.bobMessages.clear(); // only what comes after the new login
    chat.alice->send("lobby", "still there?");
    QTRY_COMPARE(chat.bobMessages.size(), 1);
    QCOMPARE(lines(chat.bobMessages), QStringList{ "alice: still there?" });
}

QTEST_GUILESS_MAIN(tst_ChatSession)
#include "tst_chatsession.moc"
