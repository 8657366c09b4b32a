// The client library against a real qtnotif server on loopback (and, for servers that
// misbehave, against RawServer).
#include "chatmessage.h"
#include "rawserver.h"
#include "testmain.h"

#include <QtNotif/client.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QElapsedTimer>
#include <QtTest/QSignalSpy>
#include <QtTest/QTest>
#include <QtWebSockets/QWebSocketServer>

#include <memory>

using namespace QtNotif;
using namespace std::chrono_literals;

using State = Client::State;

class tst_Client : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();

    void connectsAndReportsIdentity();
    void listenReceivesUnlistenStops();
    void keysListenedBeforeOpenAreSentOnConnect();
    void objectKeysAndTypedEvents();
    void twoNotifiersOnOneClient();
    void openTwiceLosesNoListens();
    void closeThenOpenListensAgain();
    void reconnectsAfterServerRestartOnSamePort();
    void noReconnectWhenTurnedOff();
    void invalidUrlIsRetriedWithTheNewUrl();
    void reconnectDelaysBackOff();
    void authenticationRefusalIsNotRetried();
    void serverWithoutTheSubprotocolIsAProtocolError();
    void listenDeniedLeavesTheWantedSet();
    void unlistenUserIsSignalled();
    void serverSideListenIsSignalled();
    void deletedServerNotifierIsSignalled();
    void identityChangeListensAgain();
    void callGetsReply();
    void callGetsServerErrors();
    void callWhenNotConnected();
    void callLostWithTheConnection();
    void callTimesOut();
    void callWithCallback();
    void welcomeTimeout();
    void silentServerIsDroppedByHeartbeat();
    void unknownServerFramesAreIgnored();
    void droppedConnectionIsReported();
    void destroyingTheClientWithPendingCalls();

private:
    // A Client of the test server with short reconnect delays, not yet open.
    std::unique_ptr<Client> makeClient(const QString &token = QString());
    // Opens the client and waits until it is Connected.
    bool openAndWait(Client &client);
    // Waits until the server side has listenerCount listeners on key of notifier.
    template<typename N, typename Key>
    bool waitForListeners(N *notifier, const Key &key, int count)
    {
        return QTest::qWaitFor([&] { return notifier->localListenerCount(key) == count; }, 5000);
    }

    std::unique_ptr<Server> server;
};

// An authenticator for tests: the bearer token is the user name; "bad" is refused.
static AuthResult userFromBearer(const HandshakeRequest &request)
{
    const QString user = QString::fromUtf8(request.bearerToken());
    if (user == "bad")
        return AuthResult::refuse("unknown token");
    if (user.isEmpty())
        return AuthResult::anonymous();
    return AuthResult::accept(Identity::user(user, { { "role", "member" } }));
}

void tst_Client::init()
{
    server = std::make_unique<Server>();
    server->setAuthenticator(userFromBearer);
    QVERIFY(server->listen(QHostAddress::LocalHost, 0));
}

void tst_Client::cleanup()
{
    server.reset();
}

std::unique_ptr<Client> tst_Client::makeClient(const QString &token)
{
    auto client = std::make_unique<Client>();
    client->setUrl(server->serverUrl());
    client->setToken(token);
    client->setReconnectDelays(20ms, 200ms);
    return client;
}

bool tst_Client::openAndWait(Client &client)
{
    client.open();
    return QTest::qWaitFor([&] { return client.state() == State::Connected; }, 5000);
}

void tst_Client::connectsAndReportsIdentity()
{
    auto client = makeClient("alice");
    QSignalSpy states(client.get(), &Client::stateChanged);
    QSignalSpy connected(client.get(), &Client::connected);
    QSignalSpy identityChanged(client.get(), &Client::identityChanged);
    QCOMPARE(client->state(), State::Disconnected);
    QVERIFY(client->connectionId().isEmpty());

    QVERIFY(openAndWait(*client));
    QCOMPARE(states.size(), 2);
    QCOMPARE(states.at(0).at(0).value<State>(), State::Connecting);
    QCOMPARE(states.at(1).at(0).value<State>(), State::Connected);
    QCOMPARE(connected.size(), 1);
    QCOMPARE(identityChanged.size(), 1);
    QCOMPARE(client->userId(), QString("alice"));
    QCOMPARE(client->identity().value("user").toString(), QString("alice"));
    QCOMPARE(client->identity().value("attributes").toMap().value("role").toString(),
             QString("member"));
    QCOMPARE(client->error(), Client::Error::NoError);
    const QList<ConnectionId> ids = server->connections();
    QCOMPARE(ids.size(), 1);
    QCOMPARE(client->connectionId(), QString::number(ids.first()));

    QSignalSpy disconnected(client.get(), &Client::disconnected);
    client->close();
    QCOMPARE(client->state(), State::Disconnected);
    QCOMPARE(disconnected.size(), 1);
    QVERIFY(client->connectionId().isEmpty());
    QTRY_COMPARE(server->connectionCount(), 0);
}

void tst_Client::listenReceivesUnlistenStops()
{
    auto *chat = new SimpleNotifier<QString, QVariantMap>(server.get(), "chat");
    auto client = makeClient();
    QVERIFY(openAndWait(*client));
    ClientNotifier *notifier = client->notifier("chat");
    QCOMPARE(client->notifier("chat"), notifier);
    QSignalSpy events(notifier, &ClientNotifier::clientEvent);
    QSignalSpy jsonEvents(notifier, &ClientNotifier::jsonEvent);
    QSignalSpy keysChanged(notifier, &ClientNotifier::keysChanged);

    notifier->listen("room");
    QCOMPARE(keysChanged.size(), 1);
    QVERIFY(notifier->isListening("room"));
    QCOMPARE(notifier->keys(), QVariantList{ "room" });
    QVERIFY(waitForListeners(chat, QString("room"), 1));
    chat->notify("room", { { "text", "hello" }, { "n", 1 } });
    chat->notify("room", { { "text", "again" }, { "n", 2 } });
    QTRY_COMPARE(events.size(), 2);
    QCOMPARE(events.at(0).at(0).toString(), QString("room"));
    // JSON objects arrive as QVariantMap, ready for QML.
    QCOMPARE(events.at(0).at(1).typeId(), QMetaType::QVariantMap);
    QCOMPARE(events.at(0).at(1).toMap().value("text").toString(), QString("hello"));
    QCOMPARE(events.at(1).at(1).toMap().value("n").toInt(), 2);
    QCOMPARE(jsonEvents.at(0).at(2).toULongLong(), 1u);
    QCOMPARE(jsonEvents.at(1).at(2).toULongLong(), 2u);

    notifier->unlisten("room");
    QCOMPARE(keysChanged.size(), 2);
    QVERIFY(!notifier->isListening("room"));
    QVERIFY(notifier->keys().isEmpty());
    QVERIFY(waitForListeners(chat, QString("room"), 0));
    // A marker on another key proves nothing more came for room meanwhile.
    notifier->listen("marker");
    QVERIFY(waitForListeners(chat, QString("marker"), 1));
    chat->notify("room", { { "text", "unheard" } });
    chat->notify("marker", {});
    QTRY_COMPARE(events.size(), 3);
    QCOMPARE(events.at(2).at(0).toString(), QString("marker"));

    // Unlistening a key not wanted changes nothing.
    notifier->unlisten("never");
    QCOMPARE(keysChanged.size(), 3);
}

void tst_Client::keysListenedBeforeOpenAreSentOnConnect()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto client = makeClient();
    ClientNotifier *notifier = client->notifier("chat");
    notifier->listen("a");
    notifier->listen("b");
    notifier->listen("a"); // twice is harmless
    QCOMPARE(notifier->keys(), (QVariantList{ "a", "b" }));
    QCOMPARE(server->listenCount(), 0);

    QSignalSpy events(notifier, &ClientNotifier::clientEvent);
    QVERIFY(openAndWait(*client));
    QVERIFY(waitForListeners(chat, QString("a"), 1));
    QVERIFY(waitForListeners(chat, QString("b"), 1));
    chat->notify("b", "to b");
    QTRY_COMPARE(events.size(), 1);
    QCOMPARE(events.at(0).at(1).toString(), QString("to b"));
}

void tst_Client::objectKeysAndTypedEvents()
{
    auto *docs = new SimpleNotifier<QVariantMap, ChatMessage>(server.get(), "docs");
    auto client = makeClient();
    ClientNotifier *notifier = client->notifier("docs");
    QList<QPair<QVariantMap, ChatMessage>> received;
    notifier->onEvent<QVariantMap, ChatMessage>(this, [&](QVariantMap key, ChatMessage message) {
        received.append({ key, message });
    });
    // The same object key in another member order is the same key.
    notifier->listen(QVariantMap{ { "doc", 7 }, { "part", "body" } });
    QVERIFY(openAndWait(*client));
    const QVariantMap key{ { "part", "body" }, { "doc", 7 } };
    QVERIFY(waitForListeners(docs, key, 1));
    QVERIFY(notifier->isListening(key));

    docs->notify(key, ChatMessage{ "bob", "edited" });
    QTRY_COMPARE(received.size(), 1);
    QCOMPARE(received.at(0).first.value("doc").toInt(), 7);
    QCOMPARE(received.at(0).second.from, QString("bob"));
    QCOMPARE(received.at(0).second.text, QString("edited"));

    // An event that does not decode as the callback's types is skipped with a warning.
    auto *raw = new SimpleNotifier<QString, QString>(server.get(), "raw");
    ClientNotifier *rawNotifier = client->notifier("raw");
    int typedCalls = 0;
    rawNotifier->onEvent<QString, int>(this, [&](const QString &, int) { ++typedCalls; });
    QSignalSpy rawEvents(rawNotifier, &ClientNotifier::clientEvent);
    rawNotifier->listen("k");
    QVERIFY(waitForListeners(raw, QString("k"), 1));
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("skipped an event of notifier.*raw"));
    raw->notify("k", "not a number");
    QTRY_COMPARE(rawEvents.size(), 1);
    QCOMPARE(typedCalls, 0);
}

void tst_Client::twoNotifiersOnOneClient()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto *jobs = new SimpleNotifier<int, QVariantMap>(server.get(), "jobs");
    auto client = makeClient();
    ClientNotifier *chatNotifier = client->notifier("chat");
    ClientNotifier *jobsNotifier = client->notifier("jobs");
    QSignalSpy chatEvents(chatNotifier, &ClientNotifier::clientEvent);
    QSignalSpy jobsEvents(jobsNotifier, &ClientNotifier::clientEvent);
    chatNotifier->listen("7");
    jobsNotifier->listen(7);
    QVERIFY(openAndWait(*client));
    QVERIFY(waitForListeners(chat, QString("7"), 1));
    QVERIFY(waitForListeners(jobs, 7, 1));
    jobs->notify(7, { { "done", true } });
    chat->notify("7", "text");
    QTRY_COMPARE(chatEvents.size(), 1);
    QTRY_COMPARE(jobsEvents.size(), 1);
    QCOMPARE(jobsEvents.at(0).at(0).toInt(), 7);
    QCOMPARE(jobsEvents.at(0).at(1).toMap().value("done").toBool(), true);
    QCOMPARE(chatEvents.at(0).at(1).toString(), QString("text"));
}

void tst_Client::openTwiceLosesNoListens()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto client = makeClient();
    client->notifier("chat")->listen("room");
    client->open();
    client->open(); // while connecting
    QTRY_COMPARE(client->state(), State::Connected);
    client->open(); // while connected
    QVERIFY(waitForListeners(chat, QString("room"), 1));
    QCOMPARE(server->connectionCount(), 1);
    QSignalSpy events(client->notifier("chat"), &ClientNotifier::clientEvent);
    chat->notify("room", "still here");
    QTRY_COMPARE(events.size(), 1);
    QCOMPARE(client->state(), State::Connected);
    QCOMPARE(server->connectionCount(), 1);
}

void tst_Client::closeThenOpenListensAgain()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto client = makeClient();
    client->notifier("chat")->listen("room");
    QVERIFY(openAndWait(*client));
    QVERIFY(waitForListeners(chat, QString("room"), 1));

    client->close();
    // Deinit removes the listens on the server at once; the client keeps its wanted keys.
    QVERIFY(waitForListeners(chat, QString("room"), 0));
    QCOMPARE(server->keyCount(), 0);
    QVERIFY(client->notifier("chat")->isListening("room"));

    QVERIFY(openAndWait(*client));
    QVERIFY(waitForListeners(chat, QString("room"), 1));
}

void tst_Client::reconnectsAfterServerRestartOnSamePort()
{
    new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto client = makeClient("alice");
    QSignalSpy states(client.get(), &Client::stateChanged);
    QSignalSpy errors(client.get(), &Client::errorOccurred);
    ClientNotifier *notifier = client->notifier("chat");
    QSignalSpy events(notifier, &ClientNotifier::clientEvent);
    QSignalSpy keysChanged(notifier, &ClientNotifier::keysChanged);
    notifier->listen("room");
    QVERIFY(openAndWait(*client));
    const QString firstConnection = client->connectionId();

    const quint16 port = server->serverPort();
    server.reset();
    QTRY_COMPARE(client->state(), State::Reconnecting);
    QCOMPARE(errors.first().at(0).value<Client::Error>(), Client::Error::ConnectionError);
    QVERIFY(!client->errorString().isEmpty());
    QVERIFY(notifier->isListening("room")); // the wish survives the outage

    // A new server process on the same port: nothing is carried over but the port.
    server = std::make_unique<Server>();
    server->setAuthenticator(userFromBearer);
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    QVERIFY(server->listen(QHostAddress::LocalHost, port));

    QTRY_COMPARE_WITH_TIMEOUT(client->state(), State::Connected, 10000);
    QCOMPARE(client->error(), Client::Error::NoError);
    QCOMPARE(client->userId(), QString("alice"));
    QVERIFY(waitForListeners(chat, QString("room"), 1));
    chat->notify("room", "after the restart");
    QTRY_COMPARE(events.size(), 1);
    QCOMPARE(events.at(0).at(1).toString(), QString("after the restart"));
    QCOMPARE(keysChanged.size(), 1); // only the app's own listen: nothing was lost
    // The app saw Connected -> Reconnecting -> Connected, never Disconnected.
    for (const QList<QVariant> &state : std::as_const(states))
        QVERIFY(state.at(0).value<State>() != State::Disconnected);
    Q_UNUSED(firstConnection);
}

void tst_Client::noReconnectWhenTurnedOff()
{
    auto client = makeClient();
    client->setAutoReconnect(false);
    QVERIFY(openAndWait(*client));
    QSignalSpy disconnected(client.get(), &Client::disconnected);
    server->disconnectClient(server->connections().first(), 1000, "bye");
    QTRY_COMPARE(client->state(), State::Disconnected);
    QCOMPARE(disconnected.size(), 1);
    QCOMPARE(client->error(), Client::Error::ConnectionError);
    QVERIFY2(client->errorString().contains("bye"), qPrintable(client->errorString()));

    // Turning it off while waiting for a retry stops trying.
    client->setAutoReconnect(true);
    QVERIFY(openAndWait(*client));
    client->setReconnectDelays(10s, 10s);
    server->disconnectClient(server->connections().first());
    QTRY_COMPARE(client->state(), State::Reconnecting);
    client->setAutoReconnect(false);
    QCOMPARE(client->state(), State::Disconnected);
}

void tst_Client::invalidUrlIsRetriedWithTheNewUrl()
{
    Client client;
    client.setReconnectDelays(20ms, 100ms);
    QSignalSpy errors(&client, &Client::errorOccurred);
    client.open(); // no URL yet: fails, and keeps trying
    QTRY_VERIFY(errors.size() >= 1);
    QCOMPARE(client.error(), Client::Error::ConnectionError);
    QVERIFY(client.state() != State::Disconnected);
    client.setUrl(server->serverUrl()); // taken at the next attempt
    QTRY_COMPARE(client.state(), State::Connected);
}

void tst_Client::reconnectDelaysBackOff()
{
    // Nothing listens on the port of a closed server: every attempt fails at once, and the
    // waits between attempts are at least half their doubling ceilings: 50, 100, 200, 200 ms.
    const QUrl url = server->serverUrl();
    server.reset();
    Client client;
    client.setUrl(url);
    client.setReconnectDelays(100ms, 400ms);
    QList<qint64> attempts;
    QElapsedTimer clock;
    clock.start();
    connect(&client, &Client::errorOccurred, this, [&] { attempts.append(clock.elapsed()); });
    client.open();
    QTRY_VERIFY_WITH_TIMEOUT(attempts.size() >= 5, 10000);
    client.close();
    const qint64 minimumWaits[] = { 50, 100, 200, 200 };
    for (int i = 0; i < 4; ++i) {
        const qint64 wait = attempts.at(i + 1) - attempts.at(i);
        QVERIFY2(wait >= minimumWaits[i],
                 qPrintable(QString("wait %1 was %2 ms").arg(i).arg(wait)));
    }
    QCOMPARE(client.state(), State::Disconnected);
    QCOMPARE(client.initialReconnectDelay(), 100ms);
    QCOMPARE(client.maximumReconnectDelay(), 400ms);
}

void tst_Client::authenticationRefusalIsNotRetried()
{
    auto client = makeClient("bad");
    QSignalSpy errors(client.get(), &Client::errorOccurred);
    QSignalSpy refused(server.get(), &Server::clientRefused);
    client->open();
    QTRY_COMPARE(client->state(), State::Disconnected);
    QCOMPARE(errors.size(), 1);
    QCOMPARE(client->error(), Client::Error::AuthenticationError);
    QCOMPARE(client->errorString(), QString("unknown token"));
    QCOMPARE(refused.size(), 1);

    // A new token and open() again: welcomed.
    client->setToken("carol");
    QVERIFY(openAndWait(*client));
    QCOMPARE(client->userId(), QString("carol"));
    QCOMPARE(client->error(), Client::Error::NoError);
    QCOMPARE(refused.size(), 1);
}

void tst_Client::serverWithoutTheSubprotocolIsAProtocolError()
{
    QWebSocketServer plain("plain", QWebSocketServer::NonSecureMode);
    QVERIFY(plain.listen(QHostAddress::LocalHost, 0));
    Client client;
    client.setUrl(QUrl(QString("ws://127.0.0.1:%1").arg(plain.serverPort())));
    client.open();
    QTRY_COMPARE(client.state(), State::Disconnected);
    QCOMPARE(client.error(), Client::Error::ProtocolError);
    QVERIFY2(client.errorString().contains("qtnotif.v1"), qPrintable(client.errorString()));
}

void tst_Client::listenDeniedLeavesTheWantedSet()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    chat->setListenAuthorizer([](const Identity &identity, const QString &room) {
        return room != "staff" || identity.attributes().value("role") == "staff";
    });
    auto client = makeClient("alice");
    ClientNotifier *notifier = client->notifier("chat");
    QSignalSpy failed(notifier, &ClientNotifier::listenFailed);
    QSignalSpy keysChanged(notifier, &ClientNotifier::keysChanged);
    notifier->listen("staff");
    notifier->listen("lobby");
    QVERIFY(openAndWait(*client));
    QTRY_COMPARE(failed.size(), 1);
    QCOMPARE(failed.at(0).at(0).toString(), QString("staff"));
    QCOMPARE(failed.at(0).at(1).toString(), QString("listen_denied"));
    QVERIFY(!failed.at(0).at(2).toString().isEmpty());
    QCOMPARE(notifier->keys(), QVariantList{ "lobby" });
    QCOMPARE(keysChanged.size(), 3);
    QVERIFY(waitForListeners(chat, QString("lobby"), 1));
    QCOMPARE(chat->localListenerCount("staff"), 0);

    // A notifier the server does not have.
    ClientNotifier *unknown = client->notifier("nope");
    QSignalSpy unknownFailed(unknown, &ClientNotifier::listenFailed);
    unknown->listen("x");
    QTRY_COMPARE(unknownFailed.size(), 1);
    QCOMPARE(unknownFailed.at(0).at(1).toString(), QString("unknown_notifier"));
    QVERIFY(unknown->keys().isEmpty());
}

void tst_Client::unlistenUserIsSignalled()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto phone = makeClient("alice");
    auto laptop = makeClient("alice");
    auto bob = makeClient("bob");
    for (Client *client : { phone.get(), laptop.get(), bob.get() }) {
        client->notifier("chat")->listen("room");
        QVERIFY(openAndWait(*client));
    }
    QVERIFY(waitForListeners(chat, QString("room"), 3));
    QSignalSpy phoneUnlistened(phone->notifier("chat"), &ClientNotifier::unlistened);
    QSignalSpy laptopUnlistened(laptop->notifier("chat"), &ClientNotifier::unlistened);
    QSignalSpy bobUnlistened(bob->notifier("chat"), &ClientNotifier::unlistened);

    QCOMPARE(chat->unlistenUser("alice", "room").result(), 2);
    QTRY_COMPARE(phoneUnlistened.size(), 1);
    QTRY_COMPARE(laptopUnlistened.size(), 1);
    QCOMPARE(phoneUnlistened.at(0).at(0).toString(), QString("room"));
    QCOMPARE(phoneUnlistened.at(0).at(1).value<ClientNotifier::UnlistenReason>(),
             ClientNotifier::UnlistenReason::User);
    QVERIFY(!phone->notifier("chat")->isListening("room"));
    QVERIFY(!laptop->notifier("chat")->isListening("room"));
    QVERIFY(bob->notifier("chat")->isListening("room"));
    QCOMPARE(bobUnlistened.size(), 0);
    QCOMPARE(chat->localListenerCount("room"), 1);

    // The removal sticks across a reconnect: the client no longer wants the key.
    server->disconnectClient(server->connectionsOfUser("alice").first());
    QTRY_COMPARE(server->connectionsOfUser("alice").size(), 2);
    QCOMPARE(chat->localListenerCount("room"), 1);

    // Server-side unlisten of one connection says "server".
    QVERIFY(chat->unlisten(server->connectionsOfUser("bob").first(), "room"));
    QTRY_COMPARE(bobUnlistened.size(), 1);
    QCOMPARE(bobUnlistened.at(0).at(1).value<ClientNotifier::UnlistenReason>(),
             ClientNotifier::UnlistenReason::Server);
}

void tst_Client::serverSideListenIsSignalled()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto client = makeClient("alice");
    QVERIFY(openAndWait(*client));
    ClientNotifier *notifier = client->notifier("chat");
    QSignalSpy listened(notifier, &ClientNotifier::listened);
    QSignalSpy events(notifier, &ClientNotifier::clientEvent);
    QVERIFY(chat->listen(server->connections().first(), "invited"));
    QTRY_COMPARE(listened.size(), 1);
    QCOMPARE(listened.at(0).at(0).toString(), QString("invited"));
    QVERIFY(notifier->isListening("invited"));
    chat->notify("invited", "welcome aboard");
    QTRY_COMPARE(events.size(), 1);

    // The key is now the client's own wish: it is listened again after a reconnect.
    server->disconnectClient(server->connections().first());
    QTRY_COMPARE(client->state(), State::Reconnecting);
    QVERIFY(waitForListeners(chat, QString("invited"), 1));
}

void tst_Client::deletedServerNotifierIsSignalled()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    auto client = makeClient();
    ClientNotifier *notifier = client->notifier("chat");
    notifier->listen("room");
    QVERIFY(openAndWait(*client));
    QVERIFY(waitForListeners(chat, QString("room"), 1));
    QSignalSpy unlistened(notifier, &ClientNotifier::unlistened);
    delete chat;
    QTRY_COMPARE(unlistened.size(), 1);
    QCOMPARE(unlistened.at(0).at(1).value<ClientNotifier::UnlistenReason>(),
             ClientNotifier::UnlistenReason::Notifier);
    QVERIFY(notifier->keys().isEmpty());
}

void tst_Client::identityChangeListensAgain()
{
    auto *chat = new SimpleNotifier<QString, QString>(server.get(), "chat");
    QStringList authorised;
    chat->setListenAuthorizer([&](const Identity &identity, const QString &) {
        authorised.append(identity.userId());
        return true;
    });
    auto client = makeClient(); // anonymous
    client->notifier("chat")->listen("room");
    QVERIFY(openAndWait(*client));
    QVERIFY(waitForListeners(chat, QString("room"), 1));
    QCOMPARE(client->userId(), QString());
    QSignalSpy identityChanged(client.get(), &Client::identityChanged);

    // A login on the live connection: the server drops the listens made as a guest, and the
    // client listens again under its new identity, without reconnecting.
    QVERIFY(server->setIdentity(server->connections().first(), Identity::user("dave")));
    QTRY_COMPARE(identityChanged.size(), 1);
    QCOMPARE(client->userId(), QString("dave"));
    QVERIFY(waitForListeners(chat, QString("room"), 1));
    QCOMPARE(authorised, (QStringList{ QString(), "dave" }));
    QCOMPARE(client->state(), State::Connected);
    QSignalSpy events(client->notifier("chat"), &ClientNotifier::clientEvent);
    chat->notify("room", "for dave");
    QTRY_COMPARE(events.size(), 1);
}

void tst_Client::callGetsReply()
{
    server->setHandler("echo", [](const Request &request) {
        request.reply(QJsonObject{ { "you", request.identity().userId() },
                                   { "said", request.payload() } });
    });
    auto client = makeClient("erin");
    QVERIFY(openAndWait(*client));
    CallReply *reply = client->call("echo", QJsonObject{ { "text", "hi" } });
    QPointer<CallReply> guard(reply);
    QSignalSpy finished(reply, &CallReply::finished);
    QCOMPARE(reply->method(), QString("echo"));
    QVERIFY(!reply->isFinished());
    QVERIFY(finished.wait(5000));
    QVERIFY(reply->isFinished());
    QVERIFY(!reply->isError());
    QCOMPARE(reply->result()["you"].toString(), QString("erin"));
    QCOMPARE(reply->result()["said"]["text"].toString(), QString("hi"));
    QVERIFY(reply->errorCode().isEmpty());
    // The Client deletes the reply once finished() has been handled.
    QTRY_VERIFY(guard.isNull());
}

void tst_Client::callGetsServerErrors()
{
    server->setHandler("refuse",
                       [](const Request &request) { request.fail("forbidden", "not for you"); });
    server->setHandler("forget", [](const Request &) {});
    auto client = makeClient();
    QVERIFY(openAndWait(*client));

    const struct
    {
        const char *method;
        const char *code;
    } cases[] = { { "refuse", "forbidden" },
                  { "missing", "unknown_method" },
                  { "forget", "no_reply" } };
    for (const auto &c : cases) {
        CallReply *reply = client->call(c.method, QJsonValue());
        QSignalSpy finished(reply, &CallReply::finished);
        QVERIFY(finished.wait(5000));
        QVERIFY(reply->isError());
        QCOMPARE(reply->errorCode(), QString(c.code));
        QVERIFY(!reply->errorMessage().isEmpty());
        QVERIFY(reply->result().isNull());
    }
    QCOMPARE(client->state(), State::Connected); // an error to one call harms nothing else
}

void tst_Client::callWhenNotConnected()
{
    auto client = makeClient();
    CallReply *reply = client->call("echo", QJsonValue());
    QSignalSpy finished(reply, &CallReply::finished);
    QVERIFY(!reply->isFinished()); // never finished before call() returns
    QVERIFY(finished.wait(5000));
    QCOMPARE(reply->errorCode(), QString("not_connected"));
}

void tst_Client::callLostWithTheConnection()
{
    std::optional<Request> held;
    server->setHandler("slow", [&](const Request &request) { held = request; });
    auto client = makeClient();
    QVERIFY(openAndWait(*client));
    CallReply *reply = client->call("slow", QJsonValue());
    QSignalSpy finished(reply, &CallReply::finished);
    QTRY_VERIFY(held.has_value());
    server->disconnectClient(held->connection());
    QVERIFY(finished.wait(5000));
    QCOMPARE(reply->errorCode(), QString("connection_lost"));
    // Answering a request whose client is gone is harmless.
    held->reply(1);

    // close() finishes pending calls the same way.
    QTRY_COMPARE(client->state(), State::Connected);
    held.reset();
    CallReply *second = client->call("slow", QJsonValue());
    QSignalSpy secondFinished(second, &CallReply::finished);
    QTRY_VERIFY(held.has_value());
    client->close();
    QCOMPARE(secondFinished.size(), 1);
    QCOMPARE(second->errorCode(), QString("connection_lost"));
}

void tst_Client::callTimesOut()
{
    std::optional<Request> held;
    server->setHandler("slow", [&](const Request &request) { held = request; });
    auto client = makeClient();
    client->setRequestTimeout(100ms);
    QCOMPARE(client->requestTimeout(), 100ms);
    QVERIFY(openAndWait(*client));
    CallReply *reply = client->call("slow", QJsonValue());
    QSignalSpy finished(reply, &CallReply::finished);
    QVERIFY(finished.wait(5000));
    QCOMPARE(reply->errorCode(), QString("timeout"));
    // The late reply is dropped; the connection goes on.
    QVERIFY(held.has_value());
    held->reply("late");
    server->setHandler("echo", [](const Request &request) { request.reply(request.payload()); });
    CallReply *next = client->call("echo", 5);
    QSignalSpy nextFinished(next, &CallReply::finished);
    QVERIFY(nextFinished.wait(5000));
    QCOMPARE(next->result().toInt(), 5);
    QCOMPARE(finished.size(), 1);
}

void tst_Client::callWithCallback()
{
    server->setHandler(
            "double", [](const Request &request) { request.reply(request.payload().toInt() * 2); });
    auto client = makeClient();
    QVERIFY(openAndWait(*client));
    int result = 0;
    client->call("double", 21, this,
                 [&](const CallReply &reply) { result = reply.result().toInt(); });
    QTRY_COMPARE(result, 42);
}

void tst_Client::welcomeTimeout()
{
    RawServer raw; // answers the handshake and then says nothing
    QVERIFY(raw.listen());
    Client client;
    client.setUrl(raw.url());
    client.setAutoReconnect(false);
    client.setRequestTimeout(200ms);
    client.open();
    QTRY_COMPARE(client.state(), State::Disconnected);
    QCOMPARE(client.error(), Client::Error::ConnectionError);
    QVERIFY2(client.errorString().contains("welcome"), qPrintable(client.errorString()));
    QCOMPARE(raw.upgraded.size(), 1);
}

void tst_Client::silentServerIsDroppedByHeartbeat()
{
    RawServer raw;
    raw.greeting = { RawServer::welcome(100) };
    QVERIFY(raw.listen());
    Client client;
    client.setUrl(raw.url());
    client.setAutoReconnect(false);
    QSignalSpy errors(&client, &Client::errorOccurred);
    client.open();
    QTRY_COMPARE(client.state(), State::Connected);
    // Pings go unanswered: after two heartbeats without a word the client gives up.
    QTRY_COMPARE(client.state(), State::Disconnected);
    QCOMPARE(errors.size(), 1);
    QCOMPARE(client.error(), Client::Error::HeartbeatTimeout);
}

void tst_Client::unknownServerFramesAreIgnored()
{
    // A newer server may send ops and fields this client does not know; they are skipped.
    RawServer raw;
    raw.greeting = {
        R"({"op":"welcome","protocol":1,"connection":"9","identity":{"user":"x","attributes":{}},)"
        R"("heartbeat":0,"future":true})",
        R"({"op":"someday","anything":[1,2,3]})",
        R"(not json)",
        R"({"op":"notif","notifier":"chat","key":"room","seq":1,"data":"hi","extra":{}})",
    };
    QVERIFY(raw.listen());
    Client client;
    client.setUrl(raw.url());
    ClientNotifier *notifier = client.notifier("chat");
    notifier->listen("room");
    QSignalSpy events(notifier, &ClientNotifier::clientEvent);
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression("not a JSON object"));
    client.open();
    QTRY_COMPARE(events.size(), 1);
    QCOMPARE(events.at(0).at(1).toString(), QString("hi"));
    QCOMPARE(client.state(), State::Connected);
    QCOMPARE(client.connectionId(), QString("9"));
    QCOMPARE(client.userId(), QString("x"));
}

void tst_Client::droppedConnectionIsReported()
{
    RawServer raw;
    raw.greeting = { RawServer::welcome(0) };
    QVERIFY(raw.listen());
    Client client;
    client.setUrl(raw.url());
    client.setAutoReconnect(false);
    client.open();
    QTRY_COMPARE(client.state(), State::Connected);
    raw.upgraded.first()->abort(); // no close frame: the TCP connection just ends
    QTRY_COMPARE(client.state(), State::Disconnected);
    QCOMPARE(client.error(), Client::Error::ConnectionError);
    QVERIFY2(!client.errorString().contains("closed by the server"),
             qPrintable(client.errorString()));
}

void tst_Client::destroyingTheClientWithPendingCalls()
{
    server->setHandler("slow", [](const Request &) {});
    auto client = makeClient();
    QVERIFY(openAndWait(*client));
    QPointer<CallReply> reply = client->call("slow", QJsonValue());
    QSignalSpy finished(reply.data(), &CallReply::finished);
    client.reset();
    QVERIFY(reply.isNull()); // deleted with its Client, without finished()
    QCOMPARE(finished.size(), 0);
    QTRY_COMPARE(server->connectionCount(), 0);
}

QTNOTIF_TEST_MAIN(tst_Client)
#include "tst_client.moc"
