#include <QtNotif/client.h>

#include "client_p.h"

#include <QtNotif/protocol.h>

#include <QtCore/QRandomGenerator>
#include <QtNetwork/QNetworkRequest>
#include <QtWebSockets/QWebSocketHandshakeOptions>

namespace QtNotif {

Q_LOGGING_CATEGORY(lcClient, "qtnotif.client", QtInfoMsg)

using namespace Protocol;
using namespace std::chrono_literals;

namespace {

// How long a closing socket may take to finish the close handshake before it is aborted.
constexpr auto CloseTimeout = 5s;

// Sends the close frame; the socket deletes itself once closed, or after CloseTimeout.
void closeGracefully(QWebSocket *socket)
{
    QObject::connect(socket, &QWebSocket::disconnected, socket, &QObject::deleteLater);
    QTimer::singleShot(CloseTimeout, socket, [socket] {
        socket->abort();
        socket->deleteLater();
    });
    socket->close();
}

QString stringField(const QJsonObject &frame, const char *name)
{
    return frame.value(QLatin1String(name)).toString();
}

qint64 idField(const QJsonObject &frame)
{
    return frame.value(QLatin1String("id")).toInteger(-1);
}

} // namespace

ClientPrivate::ClientPrivate(Client *client) : q(client)
{
    reconnectTimer.setSingleShot(true);
    // A coarse timer may fire 5% early: the backoff's waits are minimums, as documented.
    reconnectTimer.setTimerType(Qt::PreciseTimer);
    QObject::connect(&reconnectTimer, &QTimer::timeout, q, [this] { startAttempt(); });
    QObject::connect(&watchdog, &QTimer::timeout, q, [this] { onWatchdog(); });
}

void ClientPrivate::setState(Client::State newState)
{
    if (state == newState)
        return;
    const bool wasConnected = state == Client::State::Connected;
    state = newState;
    Q_EMIT q->stateChanged(state);
    if (wasConnected || state == Client::State::Connected)
        Q_EMIT q->connectionIdChanged();
    if (state == Client::State::Connected)
        Q_EMIT q->connected();
    else if (wasConnected)
        Q_EMIT q->disconnected();
}

void ClientPrivate::startAttempt()
{
    if (tokenStale)
        requestToken();
    else
        openSocket();
}

void ClientPrivate::requestToken()
{
    awaitingToken = true;
    if (!tokenProvider) {
        qCInfo(lcClient) << "waiting for a fresh token (setToken())";
        return;
    }
    const quint64 request = ++tokenRequest;
    const auto current = [this, request] { return awaitingToken && request == tokenRequest; };
    tokenProvider()
            .then(q,
                  [this, current](const QString &fresh) {
                      if (!current())
                          return;
                      if (fresh.isEmpty())
                          return tokenRequestFailed(Client::tr("the token provider gave none"));
                      q->setToken(fresh);
                  })
            .onCanceled(q,
                        [this, current] {
                            if (current())
                                tokenRequestFailed(Client::tr("the token request was canceled"));
                        })
            .onFailed(q, [this, current] {
                if (current())
                    tokenRequestFailed(Client::tr("the token provider failed"));
            });
}

void ClientPrivate::tokenRequestFailed(const QString &why)
{
    qCWarning(lcClient) << why << "; trying again later";
    awaitingToken = false;
    errorString = why;
    Q_EMIT q->errorChanged();
    reconnectTimer.start(nextReconnectWait());
}

void ClientPrivate::openSocket()
{
    Q_ASSERT(!connection);
    connection = std::make_unique<Connection>();
    connection->socket.reset(new QWebSocket);
    QWebSocket *socket = connection->socket.get();
    QObject::connect(socket, &QWebSocket::connected, q, [this] {
        connection->upgraded = true;
        if (connection->socket->subprotocol() != Subprotocol) {
            connectionLost(Client::Error::ProtocolError,
                           Client::tr("the server does not speak %1").arg(Subprotocol));
        }
    });
    QObject::connect(socket, &QWebSocket::textMessageReceived, q,
                     [this](const QString &text) { onTextMessage(text); });
    QObject::connect(socket, &QWebSocket::pong, q, [this] { connection->lastHeard.restart(); });
    QObject::connect(socket, &QWebSocket::sslErrors, q,
                     [this](const QList<QSslError> &errors) { connection->sslErrors = errors; });
    QObject::connect(socket, &QWebSocket::disconnected, q, [this] { onSocketLost(); });
    // Some failures (an invalid URL, say) come as an error without disconnected(). Qt 6.4 names
    // the signal error(); 6.5 renamed it errorOccurred().
    QObject::connect(socket, qOverload<QAbstractSocket::SocketError>(&QWebSocket::error), q,
                     [this] {
                         if (connection->socket->state() == QAbstractSocket::UnconnectedState)
                             onSocketLost();
                     });

    socket->setSslConfiguration(sslConfiguration);
    QNetworkRequest request(url);
    if (!token.isEmpty())
        request.setRawHeader(QByteArrayLiteral("Authorization"), "Bearer " + token.toUtf8());
    QWebSocketHandshakeOptions options;
    options.setSubprotocols({ QString(Subprotocol) });
    qCDebug(lcClient) << "connecting to" << url;
    watchdog.start(requestTimeout);
    socket->open(request, options);
}

std::unique_ptr<ClientPrivate::Connection> ClientPrivate::takeConnection(Closing closing)
{
    watchdog.stop();
    std::unique_ptr<Connection> taken = std::move(connection);
    if (!taken)
        return taken;
    QObject::disconnect(taken->socket.get(), nullptr, q, nullptr);
    if (closing == Closing::Graceful)
        closeGracefully(taken->socket.release());
    else
        taken->socket->abort();
    return taken;
}

void ClientPrivate::failCalls(Connection &connection)
{
    for (const QPointer<CallReply> &reply : std::as_const(connection.calls)) {
        if (reply) {
            reply->finish(QJsonValue(), QString(ErrorCode::ConnectionLost),
                          Client::tr("the connection was lost before the reply"));
        }
    }
}

std::chrono::milliseconds ClientPrivate::nextReconnectWait()
{
    const qint64 ceiling = reconnectDelay.count();
    reconnectDelay = std::min(reconnectDelay * 2, maximumReconnectDelay);
    return std::chrono::milliseconds(QRandomGenerator::global()->bounded(ceiling / 2, ceiling + 1));
}

// Every signal is emitted once the client's state is consistent again, so that a slot may
// call close() or open().
void ClientPrivate::connectionLost(Client::Error reason, const QString &message)
{
    qCInfo(lcClient).nospace() << "connection to " << url << " lost: " << message;
    const std::unique_ptr<Connection> lost = takeConnection(Closing::Abort);
    error = reason;
    errorString = message;
    // A refused token or a server that speaks another protocol would refuse the next attempt
    // too: retrying would only load the server. The application fixes the cause and calls open().
    const bool retry = autoReconnect && reason != Client::Error::AuthenticationError
                       && reason != Client::Error::ProtocolError;
    const bool expired = reason == Client::Error::TokenExpired;
    tokenStale = expired;
    // A token that expired on a live connection is renewed at once; one refused at the
    // handshake (a provider handing out stale tokens, clocks apart) after the backoff.
    const bool renewNow = retry && expired && lost->welcomed;
    if (retry && !renewNow)
        reconnectTimer.start(nextReconnectWait());
    setState(retry ? Client::State::Reconnecting : Client::State::Disconnected);
    Q_EMIT q->errorChanged();
    Q_EMIT q->errorOccurred(reason);
    if (expired)
        Q_EMIT q->tokenExpired();
    failCalls(*lost);
    // Unless a slot of the signals above gave a token, or closed the client.
    if (renewNow && tokenStale && state == Client::State::Reconnecting && !connection)
        requestToken();
}

void ClientPrivate::onSocketLost()
{
    const QWebSocket &socket = *connection->socket;
    if (!connection->upgraded) { // refused, unreachable, not trusted, or not a WebSocket server
        // Nothing was sent yet (the token goes with the WebSocket handshake, after TLS's).
        if (!connection->sslErrors.isEmpty()) {
            QStringList errors;
            for (const QSslError &error : std::as_const(connection->sslErrors))
                errors.append(error.errorString());
            return connectionLost(Client::Error::SslError,
                                  Client::tr("TLS: %1").arg(errors.join(QLatin1String("; "))));
        }
        if (socket.error() == QAbstractSocket::SslHandshakeFailedError)
            return connectionLost(Client::Error::SslError, socket.errorString());
        return connectionLost(Client::Error::ConnectionError, socket.errorString());
    }
    const QString reason = socket.closeReason();
    const quint16 code = socket.closeCode();
    switch (code) {
    case CloseCode::AuthenticationRefused:
        return connectionLost(Client::Error::AuthenticationError, reason);
    case CloseCode::ProtocolViolation:
        return connectionLost(Client::Error::ProtocolError, reason);
    case CloseCode::HeartbeatTimeout:
        return connectionLost(Client::Error::HeartbeatTimeout, reason);
    case CloseCode::CredentialsExpired:
        return connectionLost(Client::Error::TokenExpired, reason);
    default:
        // Without a close frame (the server died, the network broke), the socket has an error
        // and closeCode() means nothing.
        if (socket.error() != QAbstractSocket::UnknownSocketError)
            return connectionLost(Client::Error::ConnectionError, socket.errorString());
        return connectionLost(
                Client::Error::ConnectionError,
                reason.isEmpty()
                        ? Client::tr("closed by the server (%1)").arg(code)
                        : Client::tr("closed by the server (%1): %2").arg(code).arg(reason));
    }
}

void ClientPrivate::onWatchdog()
{
    if (!connection->welcomed) {
        return connectionLost(
                Client::Error::ConnectionError,
                Client::tr("no welcome from the server within %1 ms").arg(requestTimeout.count()));
    }
    const qint64 deadline = 2 * connection->heartbeat.count();
    if (connection->lastHeard.elapsed() >= deadline) {
        return connectionLost(Client::Error::HeartbeatTimeout,
                              Client::tr("nothing heard from the server for %1 ms").arg(deadline));
    }
    connection->socket->ping();
}

void ClientPrivate::send(const QString &frame)
{
    connection->socket->sendTextMessage(frame);
}

void ClientPrivate::onTextMessage(const QString &text)
{
    connection->lastHeard.restart();
    const std::optional<QJsonObject> frame = parseObject(text.toUtf8());
    if (!frame) {
        qCWarning(lcClient) << "ignored a frame that is not a JSON object:" << text.left(80);
        return;
    }
    const QString op = stringField(*frame, "op");
    if (!connection->welcomed) {
        if (op == Op::Welcome)
            handleWelcome(*frame);
        else
            connectionLost(Client::Error::ProtocolError,
                           Client::tr("the server sent \"%1\" before its welcome").arg(op));
        return;
    }
    if (op == Op::Notif || op == Op::Unlistened) {
        ClientNotifier *notifier = notifiers.value(stringField(*frame, "notifier"));
        if (!notifier)
            return; // never asked for: nothing can be listening
        ClientNotifierPrivate *n = ClientNotifierPrivate::get(notifier);
        const QJsonValue key = frame->value(QLatin1String("key"));
        if (op == Op::Notif) {
            n->deliver(key, frame->value(QLatin1String("data")),
                       quint64(frame->value(QLatin1String("seq")).toInteger()));
        } else {
            n->unlistenedByServer(key, stringField(*frame, "reason"));
        }
    } else if (op == Op::Listened) {
        ClientNotifierPrivate::get(q->notifier(stringField(*frame, "notifier")))
                ->listenedByServer(frame->value(QLatin1String("key")));
    } else if (op == Op::Ack) {
        connection->listens.remove(idField(*frame));
    } else if (op == Op::Reply) {
        finishCall(idField(*frame), frame->value(QLatin1String("result")), QString(), QString());
    } else if (op == Op::Error) {
        handleError(*frame);
    } else if (op == Op::Identity) {
        handleIdentity(*frame);
    } else {
        qCDebug(lcClient) << "ignored a frame with op" << op; // from a newer server
    }
}

void ClientPrivate::handleWelcome(const QJsonObject &frame)
{
    const qint64 version = frame.value(QLatin1String("protocol")).toInteger();
    if (version != Version) {
        return connectionLost(
                Client::Error::ProtocolError,
                Client::tr("the server speaks protocol %1, not %2").arg(version).arg(Version));
    }
    connection->welcomed = true;
    connection->id = stringField(frame, "connection");
    connection->heartbeat
            = std::chrono::milliseconds(frame.value(QLatin1String("heartbeat")).toInteger());
    if (connection->heartbeat > 0ms)
        watchdog.start(connection->heartbeat);
    else
        watchdog.stop();
    reconnectDelay = initialReconnectDelay;
    qCDebug(lcClient) << "welcomed as connection" << connection->id;

    const bool identityChanged = setIdentity(frame.value(QLatin1String("identity")).toObject());
    const bool errorCleared = error != Client::Error::NoError;
    error = Client::Error::NoError;
    errorString.clear();
    listenAll();
    setState(Client::State::Connected);
    if (errorCleared)
        Q_EMIT q->errorChanged();
    if (identityChanged)
        Q_EMIT q->identityChanged();
}

void ClientPrivate::handleIdentity(const QJsonObject &frame)
{
    // The server dropped every listen of this connection: listen again under the new identity.
    const bool changed = setIdentity(frame.value(QLatin1String("identity")).toObject());
    listenAll();
    if (changed)
        Q_EMIT q->identityChanged();
}

bool ClientPrivate::setIdentity(const QJsonObject &object)
{
    const QVariantMap map = object.toVariantMap();
    if (map == identity)
        return false;
    identity = map;
    userId = stringField(object, "user");
    return true;
}

void ClientPrivate::handleError(const QJsonObject &frame)
{
    const QString code = stringField(frame, "code");
    const QString message = stringField(frame, "message");
    const qint64 id = idField(frame);
    if (finishCall(id, QJsonValue(), code, message))
        return;
    if (const PendingListen listen = connection->listens.take(id); listen.notifier) {
        ClientNotifierPrivate::get(listen.notifier)->listenFailed(id, listen.key, code, message);
        return;
    }
    // An unlisten of an unknown notifier, or a frame the server could not read: a client bug.
    qCWarning(lcClient) << "server error" << code << message << "to frame" << id;
}

bool ClientPrivate::finishCall(qint64 id, const QJsonValue &result, const QString &code,
                               const QString &message)
{
    const QPointer<CallReply> reply = connection->calls.take(id);
    if (!reply)
        return false;
    reply->finish(result, code, message);
    return true;
}

void ClientPrivate::listenAll()
{
    for (ClientNotifier *notifier : std::as_const(notifiers)) {
        auto &keys = ClientNotifierPrivate::get(notifier)->keys;
        for (auto it = keys.begin(); it != keys.end(); ++it)
            sendListen(notifier, it.key(), it.value());
    }
}

void ClientPrivate::sendListen(ClientNotifier *notifier, const QString &key,
                               ClientNotifierPrivate::WantedKey &wanted)
{
    if (!isReady())
        return;
    wanted.listenId = ++lastId;
    connection->listens.insert(wanted.listenId, PendingListen{ notifier, key });
    send(listenFrame(Op::Listen, wanted.listenId, notifier->name(), wanted.key));
}

void ClientPrivate::sendUnlisten(ClientNotifier *notifier, const QJsonValue &key)
{
    if (isReady())
        send(listenFrame(Op::Unlisten, ++lastId, notifier->name(), key));
}

CallReply *ClientPrivate::call(const QString &method, const QJsonValue &payload)
{
    auto *reply = new CallReply(method, q);
    if (!isReady()) {
        QMetaObject::invokeMethod(
                reply,
                [reply] {
                    reply->finish(QJsonValue(), QString(ErrorCode::NotConnected),
                                  Client::tr("not connected to the server"));
                },
                Qt::QueuedConnection);
        return reply;
    }
    const qint64 id = ++lastId;
    connection->calls.insert(id, reply);
    QTimer::singleShot(requestTimeout, reply, [this, id, reply] {
        if (connection)
            connection->calls.remove(id);
        reply->finish(QJsonValue(), QString(ErrorCode::Timeout),
                      Client::tr("no reply within %1 ms").arg(requestTimeout.count()));
    });
    send(requestFrame(id, method, payload));
    return reply;
}

Client::Client(QObject *parent) : QObject(parent), d(std::make_unique<ClientPrivate>(this)) { }

Client::~Client()
{
    d->takeConnection(ClientPrivate::Closing::Graceful);
}

QUrl Client::url() const
{
    return d->url;
}

void Client::setUrl(const QUrl &url)
{
    if (d->url == url)
        return;
    d->url = url;
    Q_EMIT urlChanged();
}

QString Client::token() const
{
    return d->token;
}

void Client::setToken(const QString &token)
{
    if (d->token != token) {
        d->token = token;
        Q_EMIT tokenChanged();
    }
    // Even the same token: the application says it is the one to use now.
    d->tokenStale = false;
    if (d->awaitingToken && d->state != State::Disconnected && !d->connection) {
        d->awaitingToken = false;
        d->reconnectTimer.stop();
        d->openSocket();
    }
}

void Client::setTokenProvider(TokenProvider provider)
{
    d->tokenProvider = std::move(provider);
}

QSslConfiguration Client::sslConfiguration() const
{
    return d->sslConfiguration;
}

void Client::setSslConfiguration(const QSslConfiguration &configuration)
{
    d->sslConfiguration = configuration;
}

bool Client::autoReconnect() const
{
    return d->autoReconnect;
}

void Client::setAutoReconnect(bool enabled)
{
    if (d->autoReconnect == enabled)
        return;
    d->autoReconnect = enabled;
    Q_EMIT autoReconnectChanged();
    if (!enabled && !d->connection && d->state == State::Reconnecting) {
        d->reconnectTimer.stop();
        d->awaitingToken = false;
        d->setState(State::Disconnected);
    }
}

void Client::setReconnectDelays(std::chrono::milliseconds initial,
                                std::chrono::milliseconds maximum)
{
    if (initial <= 0ms || maximum < initial) {
        qCWarning(lcClient) << "ignored reconnect delays" << initial.count() << "ms and"
                            << maximum.count() << "ms (need 0 < initial <= maximum)";
        return;
    }
    d->initialReconnectDelay = initial;
    d->maximumReconnectDelay = maximum;
    d->reconnectDelay = initial;
}

std::chrono::milliseconds Client::initialReconnectDelay() const
{
    return d->initialReconnectDelay;
}

std::chrono::milliseconds Client::maximumReconnectDelay() const
{
    return d->maximumReconnectDelay;
}

void Client::setRequestTimeout(std::chrono::milliseconds timeout)
{
    if (timeout <= 0ms) {
        qCWarning(lcClient) << "ignored a request timeout of" << timeout.count() << "ms";
        return;
    }
    d->requestTimeout = timeout;
}

std::chrono::milliseconds Client::requestTimeout() const
{
    return d->requestTimeout;
}

Client::State Client::state() const
{
    return d->state;
}

QString Client::connectionId() const
{
    return d->isReady() ? d->connection->id : QString();
}

QString Client::userId() const
{
    return d->userId;
}

QVariantMap Client::identity() const
{
    return d->identity;
}

Client::Error Client::error() const
{
    return d->error;
}

QString Client::errorString() const
{
    return d->errorString;
}

void Client::open()
{
    if (d->state != State::Disconnected)
        return;
    d->setState(State::Connecting);
    if (d->state != State::Connecting || d->connection) // a slot closed or opened it again
        return;
    if (d->token.isEmpty() && d->tokenProvider)
        d->tokenStale = true;
    d->startAttempt();
}

void Client::close()
{
    if (d->state == State::Disconnected)
        return;
    d->reconnectTimer.stop();
    d->reconnectDelay = d->initialReconnectDelay;
    d->awaitingToken = false;
    const auto closed = d->takeConnection(ClientPrivate::Closing::Graceful);
    d->setState(State::Disconnected);
    if (closed)
        ClientPrivate::failCalls(*closed);
}

ClientNotifier *Client::notifier(const QString &name)
{
    ClientNotifier *&notifier = d->notifiers[name];
    if (!notifier)
        notifier = new ClientNotifier(this, name);
    return notifier;
}

CallReply *Client::call(const QString &method, const QJsonValue &payload)
{
    return d->call(method, payload);
}

} // namespace QtNotif
