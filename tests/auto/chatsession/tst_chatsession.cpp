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
    // Joins room, opens the session and waits until the session is a member of the room: its
    // three listens are in place then (the server handles them in order).
    bool joinAndWait(ChatSession &session, const QString &room = "lobby");
    // A plain Client logged in as name and listening to "typing" of the lobby: it sees every
    // typing notification, unfiltered. Null if the listen did not reach the server in time.
    std::unique_ptr<QtNotif::Client> makeTypingObserver(const QString &name);

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

bool tst_ChatSession::joinAndWait(ChatSession &session, const QString &room)
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

std::unique_ptr<QtNotif::Client> tst_ChatSession::makeTypingObserver(const QString &name)
{
    const QtNotif::AbstractNotifier *typing = server->server()->notifier("typing");
    const int listeners = typing->listenerCountJson("lobby");
    auto client = std::make_unique<QtNotif::Client>();
    client->setUrl(server->url());
    client->setToken(server->tokenFor(name));
    client->notifier("typing")->listen("lobby");
    client->open();
    // Listening before anyone types: the typing notifications are not kept for later.
    if (!QTest::qWaitFor([&] { return typing->listenerCountJson("lobby") == listeners + 1; },
                         5000)) {
        return nullptr;
    }
    return client;
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
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QSignalSpy aliceMessages(alice.get(), &ChatSession::messageReceived);
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);

    alice->send("lobby", "hi bob");
    QTRY_COMPARE(bobMessages.size(), 1);
    QCOMPARE(lines(bobMessages), QStringList{ "alice: hi bob" });
    QTRY_COMPARE(aliceMessages.size(), 1);
    QCOMPARE(lines(aliceMessages), QStringList{ "alice: hi bob" });

    // The server does not send alice her own message: bob's answer, sent after it, proves no
    // second copy is on its way.
    bob->send("lobby", "hi alice");
    QTRY_COMPARE(aliceMessages.size(), 2);
    QCOMPARE(lines(aliceMessages), (QStringList{ "alice: hi bob", "bob: hi alice" }));
    QTRY_COMPARE(bobMessages.size(), 2);
    QCOMPARE(lines(bobMessages), (QStringList{ "alice: hi bob", "bob: hi alice" }));

    // Writing to a room not joined fails on the client.
    QSignalSpy errors(alice.get(), &ChatSession::errorOccurred);
    alice->send("qt", "anyone?");
    QCOMPARE(errors.size(), 1);
}

void tst_ChatSession::typingIsThrottledAndNotForMe()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    constexpr auto repeat = 200ms;
    alice->setTypingIntervals(repeat, 400ms);
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    const auto observer = makeTypingObserver("carol");
    QVERIFY(observer);
    QSignalSpy sent(observer->notifier("typing"), &QtNotif::ClientNotifier::clientEvent);
    QSignalSpy aliceTyping(alice.get(), &ChatSession::typingChanged);
    QSignalSpy bobTyping(bob.get(), &ChatSession::typingChanged);

    // Keystrokes in a row: one "typing".
    for (int i = 0; i < 5; ++i)
        alice->setTyping("lobby", true);
    QTRY_COMPARE(bobTyping.size(), 1);
    QCOMPARE(bobTyping.at(0).at(0).toString(), QString("lobby"));
    QCOMPARE(bobTyping.at(0).at(1).toStringList(), QStringList{ "alice" });
    QCOMPARE(bob->typists("lobby"), QStringList{ "alice" });
    QTRY_COMPARE(sent.size(), 1);

    // Idle: "not typing" by itself.
    QTRY_COMPARE(bobTyping.size(), 2);
    QVERIFY(bob->typists("lobby").isEmpty());
    QTRY_COMPARE(typingValues(sent), (QList<bool>{ true, false }));

    // Typing on and on: "typing" again once per repeat interval, not per keystroke.
    QTimer keystrokes;
    keystrokes.setInterval(20ms);
    connect(&keystrokes, &QTimer::timeout, alice.get(), [&] { alice->setTyping("lobby", true); });
    QElapsedTimer elapsed;
    elapsed.start();
    keystrokes.start();
    alice->setTyping("lobby", true);
    QVERIFY(QTest::qWaitFor([&] { return elapsed.elapsed() >= 700; }, 5000));
    keystrokes.stop();
    const qint64 typedFor = elapsed.elapsed();
    alice->setTyping("lobby", false); // the input was cleared
    QTRY_COMPARE(typingValues(sent).last(), false);
    const qsizetype repeats = typingValues(sent).count(true) - 1;
    // At most once per interval (timers may fire a little early), and more than once.
    QVERIFY2(repeats >= 2 && repeats <= typedFor / (repeat.count() * 9 / 10) + 1,
             qPrintable(QString("%1 repeats in %2 ms").arg(repeats).arg(typedFor)));

    // notFor me: alice is never told about her own typing.
    QCOMPARE(aliceTyping.size(), 0);
    QCOMPARE(bob->typists("lobby"), QStringList());
}

void tst_ChatSession::sendingStopsTyping()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    alice->setTypingIntervals(10s, 10s); // nothing by the timers during this test
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    const auto observer = makeTypingObserver("carol");
    QVERIFY(observer);
    QSignalSpy sent(observer->notifier("typing"), &QtNotif::ClientNotifier::clientEvent);

    alice->setTyping("lobby", true);
    QTRY_COMPARE(bob->typists("lobby"), QStringList{ "alice" });
    alice->send("lobby", "done");
    // The server says alice stopped typing when she sends.
    QTRY_COMPARE(bob->typists("lobby"), QStringList());
    // Typing again right after is new typing, announced at once although the repeat interval
    // has not passed.
    alice->setTyping("lobby", true);
    QTRY_COMPARE(typingValues(sent), (QList<bool>{ true, false, true }));
    QTRY_COMPARE(bob->typists("lobby"), QStringList{ "alice" });
}

void tst_ChatSession::blockedSenderIsNotReceived()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    const auto observer = makeTypingObserver("carol");
    QVERIFY(observer);
    QSignalSpy sent(observer->notifier("typing"), &QtNotif::ClientNotifier::clientEvent);
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);
    QSignalSpy bobTyping(bob.get(), &ChatSession::typingChanged);
    QSignalSpy blocked(bob.get(), &ChatSession::blockedUsersChanged);

    bob->setBlocked("alice", true);
    QTRY_COMPARE(blocked.size(), 1);
    QCOMPARE(blocked.at(0).at(0).toStringList(), QStringList{ "alice" });
    QVERIFY(bob->isBlocked("alice"));

    QSignalSpy aliceMessages(alice.get(), &ChatSession::messageReceived);
    alice->send("lobby", "can you hear me?");
    alice->setTyping("lobby", true);
    QTRY_COMPARE(aliceMessages.size(), 1); // the server took it
    // Carol got the typing (after the "not typing" that sending implies).
    QTRY_COMPARE(typingValues(sent), (QList<bool>{ false, true }));

    // The reply to bob's unblock comes on the connection that would have brought both, after
    // them: once it is here, the message is not coming, and the typing came but was not shown.
    qsizetype typingWhenUnblocked = -1;
    connect(bob.get(), &ChatSession::blockedUsersChanged, this,
            [&] { typingWhenUnblocked = bobTyping.size(); });
    bob->setBlocked("alice", false);
    QTRY_COMPARE(blocked.size(), 2);
    QCOMPARE(blocked.at(1).at(0).toStringList(), QStringList());
    QCOMPARE(bobMessages.size(), 0);
    QCOMPARE(typingWhenUnblocked, 0);
    // Unblocked, her typing shows (the server had sent it).
    QCOMPARE(bobTyping.size(), 1);
    QCOMPARE(bob->typists("lobby"), QStringList{ "alice" });

    alice->send("lobby", "and now?");
    QTRY_COMPARE(bobMessages.size(), 1);
    QCOMPARE(lines(bobMessages), QStringList{ "alice: and now?" });
}

void tst_ChatSession::mentionIsMarked()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    auto carol = makeSession("carol");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QVERIFY(joinAndWait(*carol));
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);
    QSignalSpy carolMessages(carol.get(), &ChatSession::messageReceived);

    alice->send("lobby", "hello @bob");
    QTRY_COMPARE(bobMessages.size(), 1);
    QVERIFY(bobMessages.at(0).at(1).toMap().value("mentionsMe").toBool());
    QTRY_COMPARE(carolMessages.size(), 1);
    QVERIFY(!carolMessages.at(0).at(1).toMap().value("mentionsMe").toBool());
}

void tst_ChatSession::commands()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QSignalSpy errors(alice.get(), &ChatSession::errorOccurred);
    QSignalSpy blocked(alice.get(), &ChatSession::blockedUsersChanged);
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);

    QVERIFY(!alice->submit("lobby", "   "));
    QVERIFY(!alice->submit("lobby", "/dance"));
    QVERIFY(!alice->submit("lobby", "/block"));
    QVERIFY(!alice->submit("lobby", "/kick bob now"));
    QCOMPARE(errors.size(), 3);

    QVERIFY(alice->submit("lobby", "/block bob"));
    QTRY_COMPARE(alice->blockedUsers(), QStringList{ "bob" });
    QVERIFY(alice->submit("lobby", "/unblock  bob"));
    QTRY_COMPARE(blocked.size(), 2);
    QVERIFY(alice->blockedUsers().isEmpty());

    QVERIFY(alice->submit("lobby", "  plain text  "));
    QTRY_COMPARE(lines(bobMessages), QStringList{ "alice: plain text" });

    QSignalSpy removed(bob.get(), &ChatSession::removedFromRoom);
    QVERIFY(alice->submit("lobby", "/kick bob"));
    QTRY_COMPARE(removed.size(), 1);
    QCOMPARE(errors.size(), 3);
}

void tst_ChatSession::kickRemovesFromRoom()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    bob->join("qt");
    QVERIFY(joinAndWait(*bob));
    QTRY_COMPARE(alice->members("lobby"), (QStringList{ "alice", "bob" }));
    QSignalSpy removed(bob.get(), &ChatSession::removedFromRoom);
    QSignalSpy bobJoined(bob.get(), &ChatSession::joinedRoomsChanged);
    QSignalSpy aliceMessages(alice.get(), &ChatSession::messageReceived);

    alice->kick("lobby", "bob");
    QTRY_COMPARE(removed.size(), 1);
    QCOMPARE(removed.at(0).at(0).toString(), QString("lobby"));
    QVERIFY(!bob->isJoined("lobby"));
    QCOMPARE(bob->joinedRooms(), QStringList{ "qt" });
    QCOMPARE(bobJoined.size(), 1);
    QCOMPARE(bobJoined.at(0).at(0).toStringList(), QStringList{ "qt" });

    QTRY_COMPARE(aliceMessages.size(), 1);
    const QVariantMap notice = aliceMessages.at(0).at(1).toMap();
    QCOMPARE(notice.value("kind").toString(), QString("system"));
    QCOMPARE(notice.value("text").toString(), QString("bob was removed by alice"));
    QTRY_COMPARE(alice->members("lobby"), QStringList{ "alice" });

    // Removed for good: a reconnection does not bring bob back into the room.
    const QtNotif::ConnectionId connection = server->server()->connectionsOfUser("bob").first();
    server->server()->disconnectClient(connection);
    QTRY_COMPARE(bob->state(), State::Reconnecting);
    QTRY_COMPARE(bob->state(), State::Connected);
    QTRY_COMPARE(server->members("qt"), QStringList{ "bob" });
    QCOMPARE(server->members("lobby"), QStringList{ "alice" });
}

void tst_ChatSession::onlyModeratorsKick()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QSignalSpy errors(bob.get(), &ChatSession::errorOccurred);
    bob->kick("lobby", "alice");
    QTRY_COMPARE(errors.size(), 1);
    QVERIFY2(bob->errorString().contains("moderators"), qPrintable(bob->errorString()));
    QVERIFY(alice->isJoined("lobby"));
    QCOMPARE(server->members("lobby"), (QStringList{ "alice", "bob" }));

    // A moderator removing someone who is not there is told so.
    QSignalSpy aliceErrors(alice.get(), &ChatSession::errorOccurred);
    alice->kick("lobby", "nobody");
    QTRY_COMPARE(aliceErrors.size(), 1);
}

void tst_ChatSession::leaveThenJoinReportsHistoryAgain()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);
    alice->send("lobby", "before");
    QTRY_COMPARE(bobMessages.size(), 1);

    bob->leave("lobby");
    QVERIFY(!bob->isJoined("lobby"));
    QTRY_COMPARE(alice->members("lobby"), QStringList{ "alice" });
    QVERIFY(bob->members("lobby").isEmpty());

    bob->join("lobby");
    QTRY_COMPARE(bobMessages.size(), 2);
    QCOMPARE(lines(bobMessages), (QStringList{ "alice: before", "alice: before" }));
    QTRY_COMPARE(alice->members("lobby"), (QStringList{ "alice", "bob" }));
}

void tst_ChatSession::reconnectDoesNotDuplicateMessages()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QSignalSpy aliceMessages(alice.get(), &ChatSession::messageReceived);
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);
    alice->send("lobby", "one");
    bob->send("lobby", "two");
    QTRY_COMPARE(bobMessages.size(), 2);
    QTRY_COMPARE(aliceMessages.size(), 2);
    QSignalSpy bobStates(bob.get(), &ChatSession::stateChanged);
    QSignalSpy bobHistory(bob.get(), &ChatSession::historyLoaded);

    server->server()->disconnectClient(server->server()->connectionsOfUser("bob").first());
    QTRY_COMPARE(bob->state(), State::Reconnecting);
    QTRY_COMPARE(bob->state(), State::Connected);
    QCOMPARE(bobStates.size(), 2);
    QCOMPARE(bobStates.at(0).at(0).value<State>(), State::Reconnecting);
    QCOMPARE(bobStates.at(1).at(0).value<State>(), State::Connected);
    QCOMPARE(bob->client()->userId(), QString("bob")); // by the token, without a login
    QTRY_COMPARE(server->members("lobby"), (QStringList{ "alice", "bob" }));
    QTRY_COMPARE(bobHistory.size(), 1);
    QCOMPARE(bobMessages.size(), 2);

    // The history fetched again holds "one" and "two": neither is reported again. A message
    // sent after the reconnection comes after that history.
    alice->send("lobby", "three");
    QTRY_COMPARE(bobMessages.size(), 3);
    QCOMPARE(lines(bobMessages), (QStringList{ "alice: one", "bob: two", "alice: three" }));
    bob->send("lobby", "four");
    QTRY_COMPARE(aliceMessages.size(), 4);
    QTRY_COMPARE(bobMessages.size(), 4);
    QCOMPARE(lines(bobMessages),
             (QStringList{ "alice: one", "bob: two", "alice: three", "bob: four" }));
}

void tst_ChatSession::reconnectFetchesMissedMessages()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);
    alice->send("lobby", "seen");
    QTRY_COMPARE(bobMessages.size(), 1);

    // Bob stays away while alice writes, then comes back: the Client listens again by
    // itself, and the history fills the gap.
    bob->client()->setAutoReconnect(false);
    server->server()->disconnectClient(server->server()->connectionsOfUser("bob").first());
    QTRY_COMPARE(bob->state(), State::Disconnected);
    QSignalSpy aliceMessages(alice.get(), &ChatSession::messageReceived);
    alice->send("lobby", "missed");
    QTRY_COMPARE(aliceMessages.size(), 1);
    bob->open();
    QTRY_COMPARE(bobMessages.size(), 2);
    QCOMPARE(lines(bobMessages), (QStringList{ "alice: seen", "alice: missed" }));
    QVERIFY(bob->isJoined("lobby"));
    QTRY_COMPARE(server->members("lobby"), (QStringList{ "alice", "bob" }));
    alice->send("lobby", "live");
    QTRY_COMPARE(bobMessages.size(), 3);
    QCOMPARE(lines(bobMessages), (QStringList{ "alice: seen", "alice: missed", "alice: live" }));
}

void tst_ChatSession::refusedTokenLogsInAgain()
{
    auto alice = makeSession("alice");
    auto bob = makeSession("bob");
    QVERIFY(joinAndWait(*alice));
    QVERIFY(joinAndWait(*bob));
    QSignalSpy bobErrors(bob.get(), &ChatSession::errorOccurred);

    // As if the server had restarted with another secret: the token is refused at the next
    // handshake. The session logs in again and keeps its rooms.
    bob->client()->setToken("bob.0123");
    server->server()->disconnectClient(server->server()->connectionsOfUser("bob").first());
    QTRY_VERIFY(bob->client()->token() == server->tokenFor("bob"));
    QTRY_COMPARE(bob->state(), State::Connected);
    QVERIFY(bobErrors.size() >= 1);
    QCOMPARE(bob->joinedRooms(), QStringList{ "lobby" });
    QTRY_COMPARE(server->members("lobby"), (QStringList{ "alice", "bob" }));

    QSignalSpy bobMessages(bob.get(), &ChatSession::messageReceived);
    alice->send("lobby", "still there?");
    QTRY_COMPARE(bobMessages.size(), 1);
    QCOMPARE(lines(bobMessages), QStringList{ "alice: still there?" });
}

QTEST_GUILESS_MAIN(tst_ChatSession)
#include "tst_chatsession.moc"
