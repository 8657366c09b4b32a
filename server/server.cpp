#include "server_p.h"

#include "logging_p.h"
#include "tlscontext_p.h"
#include "upgrade_p.h"

#include <QtNotif/backplane.h>
#include <QtNotif/handshakerequest.h>
#include <QtNotif/protocol.h>

#include <QtCore/QJsonArray>
#include <QtCore/QJsonObject>
#include <QtCore/QScopeGuard>

#include <algorithm>

using namespace std::chrono_literals;

namespace QtNotif {

Q_LOGGING_CATEGORY(lcServer, "qtnotif.server", QtInfoMsg)

using namespace Protocol;

namespace {

// Limits and intervals must be positive; anything else is a programming error, refused with a
// warning so that a release build keeps its previous, working value.
bool isPositiveSetting(const char *what, qint64 value)
{
    if (value > 0)
        return true;
    qCWarning(lcServer) << "ignored a" << what << "of" << value << "(it must be positive)";
    return false;
}

} // namespace

Handshake Handshake::of(const Upgrade &upgrade, const QTcpSocket &socket)
{
    Handshake handshake;
    handshake.connected = socket.state() == QAbstractSocket::ConnectedState;
    handshake.subprotocol = upgrade.subprotocol;
    handshake.origin = upgrade.origin;
    handshake.request = upgrade.request;
    return handshake;
}

ServerPrivate::ServerPrivate(Server *server) : q(server)
{
    setHeartbeatTicks();
    QObject::connect(&heartbeat, &QTimer::timeout, q, [this] { onHeartbeat(); });
    writeDelayTimer.setSingleShot(true);
    writeDelayTimer.setTimerType(Qt::PreciseTimer);
    QObject::connect(&writeDelayTimer, &QTimer::timeout, q, [this] { flushDue(); });
    expiryTimer.setSingleShot(true);
    expiryTimer.setTimerType(Qt::PreciseTimer);
    QObject::connect(&expiryTimer, &QTimer::timeout, q, [this] { onExpiry(); });
    registry.setKeyObserver([this](const QString &notifier, const QString &key, bool added) {
        if (added)
            cluster.keyAdded(notifier, key);
        else
            cluster.keyRemoved(notifier, key);
    });
    cluster.setBackplane(nullptr);
    // The default of setWorkerThreads(), so that a deployment (or a test run) can try workers
    // without a new build.
    bool ok = false;
    const int fromEnvironment = qEnvironmentVariableIntValue("QTNOTIF_WORKER_THREADS", &ok);
    if (ok && fromEnvironment > 0)
        setWorkerCount(fromEnvironment);
}

void ServerPrivate::setWorkerCount(int count)
{
    stopWorkers();
    workerCount = count;
    if (count > 0)
        acceptor.setIncoming([this](qintptr descriptor) { handOff(descriptor); });
    else
        acceptor.setIncoming(nullptr);
}

bool ServerPrivate::isOriginAllowed(const QString &origin) const
{
    // No Origin: not a browser page, which always sends one.
    if (allowedOrigins.isEmpty() || origin.isEmpty())
        return true;
    for (const QString &allowed : allowedOrigins) {
        if (allowed == u'*' || allowed.compare(origin, Qt::CaseInsensitive) == 0)
            return true;
    }
    return false;
}

Connection *ServerPrivate::connection(ConnectionId id)
{
    return connections.find(id);
}

void ServerPrivate::refuse(std::unique_ptr<Connection> candidate, const Handshake &handshake,
                           quint16 closeCode, const QString &reason, const QString &userId)
{
    if (userId.isEmpty())
        qCInfo(lcServer) << "refused" << handshake.request.peerAddress() << reason;
    else
        qCInfo(lcServer) << "refused" << handshake.request.peerAddress() << "as" << userId << ":"
                         << reason;
    closeLink(*candidate, closeCode, reason);
    Q_EMIT q->clientRefused(reason);
}

void ServerPrivate::accept(QTcpSocket *socket, const Upgrade &upgrade)
{
    auto candidate = std::make_unique<Connection>();
    candidate->link.emplace(socket, upgrade.response);
    ConnectionId admitted = 0;
    admit(std::move(candidate), Handshake::of(upgrade, *socket),
          [&admitted](ConnectionId id) { admitted = id; });
    // After its welcome: what the client sent with its upgrade request, then what comes.
    if (Connection *c = admitted ? connection(admitted) : nullptr)
        c->link->start(&linkReceiver, admitted);
}

void ServerPrivate::linkText(quint64 tag, const QByteArray &utf8)
{
    onTextMessage(tag, QString::fromUtf8(utf8));
}

void ServerPrivate::linkBinary(quint64 tag)
{
    onBinaryMessage(tag);
}

void ServerPrivate::linkPong(quint64 tag)
{
    if (Connection *c = connection(tag))
        c->lastHeard.restart();
}

void ServerPrivate::linkPinged(quint64 tag)
{
    // The link answers the client's pings by itself, past send(): a client that sends pings
    // and reads nothing is caught here.
    if (Connection *c = connection(tag))
        boundSendQueueAfterWrite(*c);
}

void ServerPrivate::linkEnded(quint64 tag, quint16 closeCode, const QString &reason)
{
    if (closeCode == 0) {
        if (removeConnection(tag))
            qCDebug(lcServer) << "connection" << tag << "gone";
        return;
    }
    qCDebug(lcServer) << "connection" << tag << "closed:" << closeCode << reason;
    // What was sent to it before goes first (removeConnection() flushes its outbox).
    dropConnection(tag, closeCode, reason);
}

void ServerPrivate::onBinaryMessage(ConnectionId id)
{
    if (Connection *c = connection(id)) {
        c->lastHeard.restart();
        send(*c, errorFrame(ErrorCode::BinaryFrame,
                            QStringLiteral("qtnotif.v1 uses text frames only")));
    }
}

void ServerPrivate::admit(std::unique_ptr<Connection> candidate, const Handshake &handshake,
                          const std::function<void(ConnectionId id)> &wire)
{
    // A socket the peer closed meanwhile must not become a connection that nothing would ever
    // remove.
    if (!handshake.connected) {
        qCInfo(lcServer) << "dropped a connection closed before its welcome";
        return;
    }
    if (handshake.subprotocol != Subprotocol) {
        return refuse(std::move(candidate), handshake, CloseCode::ProtocolViolation,
                      QStringLiteral("offer the WebSocket subprotocol qtnotif.v1"));
    }
    // Before the authenticator: a page of another site would come with this site's cookies.
    if (!isOriginAllowed(handshake.origin)) {
        return refuse(std::move(candidate), handshake, CloseCode::OriginNotAllowed,
                      QStringLiteral("origin not allowed: %1").arg(handshake.origin.left(80)));
    }
    const AuthResult auth
            = authenticator ? authenticator(handshake.request) : AuthResult::anonymous();
    const bool expired = auth.isExpired()
                         || (auth.isAccepted() && auth.expiresAt().isValid()
                             && auth.expiresAt() <= QDateTime::currentDateTimeUtc());
    if (expired) {
        return refuse(std::move(candidate), handshake, CloseCode::CredentialsExpired,
                      auth.reason().isEmpty() ? QStringLiteral("token expired") : auth.reason(),
                      auth.identity().userId());
    }
    if (!auth.isAccepted()) {
        return refuse(std::move(candidate), handshake, CloseCode::AuthenticationRefused,
                      auth.reason().isEmpty() ? QStringLiteral("authentication refused")
                                              : auth.reason());
    }
    const QString userId = auth.identity().userId();
    if (!userId.isEmpty() && registry.connectionsOfUser(userId).size() >= maxConnectionsPerUser) {
        return refuse(std::move(candidate), handshake, CloseCode::TooManyConnections,
                      QStringLiteral("at most %1 connections per user").arg(maxConnectionsPerUser),
                      userId);
    }

    std::unique_ptr<Connection> owned = std::move(candidate);
    const ConnectionId id = ++lastId;
    owned->id = id;
    owned->identity = auth.identity();
    owned->lastHeard.start();
    owned->requestTokens = requestBurst;
    owned->requestClock.start();
    if (auth.expiresAt().isValid()) {
        owned->expiry = expiries.emplace(auth.expiresAt().toMSecsSinceEpoch(), id);
        if (*owned->expiry == expiries.begin())
            scheduleExpiry();
    }
    setLinkMaxFrameSize(*owned);
    wire(id);

    registry.addConnection(id, owned->identity.userId());
    Connection &c = *owned;
    connections.add(id, std::move(owned));
    send(c, welcomeFrame(c));
    // Now, not at the end of the turn: the frames that came with the upgrade request are read
    // next, and may close the connection; the client is owed its welcome first.
    flushOutbox(c);
    qCDebug(lcServer) << "connection" << id << "welcomed as" << c.identity.userId();
    Q_EMIT q->clientConnected(id, c.identity);
}

void ServerPrivate::setLinkMaxFrameSize(Connection &connection)
{
    // A worker applies its own copy of the limit (updateWorkers()) to its sockets.
    if (connection.link)
        connection.link->setMaxFrameSize(maxFrameSize);
}

void ServerPrivate::push(Connection &connection, LinkCommand::Kind kind, QString text,
                         quint16 closeCode)
{
    LinkCommand command;
    command.kind = kind;
    command.ticket = connection.ticket;
    command.closeCode = closeCode;
    command.text = std::move(text);
    connection.worker->batch.commands.push_back(std::move(command));
    scheduleFlush();
}

void ServerPrivate::ping(Connection &connection)
{
    if (connection.link) {
        connection.link->ping(); // past send(), as the link's answers to the client's pings
        boundSendQueueAfterWrite(connection);
    } else {
        push(connection, LinkCommand::Kind::Ping);
    }
}

void ServerPrivate::startWorkers()
{
    if (workerCount == 0 || !workers.empty())
        return;
    const Worker::Settings settings = workerSettings();
    for (int i = 0; i < workerCount; ++i)
        workers.push_back(std::make_unique<WorkerThread>(this, ++lastWorkerId, settings));
}

void ServerPrivate::stopWorkers()
{
    if (workers.empty())
        return;
    // Connections still on a worker (none after close()) go with it.
    QList<ConnectionId> remote;
    for (const auto &[id, c] : connections) {
        if (c->worker)
            remote.append(id);
    }
    for (ConnectionId id : remote)
        dropConnection(id, CloseGoingAway, QStringLiteral("server closing"));
    flushOutboxes();
    workers.clear(); // each stops its thread once it has run what it was sent
    nextWorker = 0;
}

Worker::Settings ServerPrivate::workerSettings() const
{
    return { acceptor.tlsContext(), acceptor.handshakeTimeout(), maxFrameSize, maxSendQueue };
}

void ServerPrivate::updateWorkers()
{
    const Worker::Settings settings = workerSettings();
    for (const auto &thread : workers) {
        Worker *worker = thread->worker();
        QMetaObject::invokeMethod(
                worker, [worker, settings] { worker->setSettings(settings); },
                Qt::QueuedConnection);
    }
}

void ServerPrivate::handOff(qintptr descriptor)
{
    startWorkers();
    // Round robin: connections come and go at random, so the counts stay close, and a test
    // knows where each lands.
    Worker *worker = workers[nextWorker++ % workers.size()]->worker();
    QMetaObject::invokeMethod(
            worker, [worker, descriptor] { worker->adopt(descriptor); }, Qt::QueuedConnection);
}

WorkerThread *ServerPrivate::workerById(int id) const
{
    for (const auto &thread : workers) {
        if (thread->id() == id)
            return thread.get();
    }
    return nullptr; // a worker stopped since: what it said is stale
}

Connection *ServerPrivate::connectionOf(int worker, quint64 ticket)
{
    WorkerThread *thread = workerById(worker);
    if (!thread)
        return nullptr;
    const auto it = thread->connections.find(ticket);
    return it == thread->connections.end() ? nullptr : connection(it->second);
}

void ServerPrivate::onWorkerHandshake(int worker, quint64 ticket, const Handshake &handshake)
{
    WorkerThread *thread = workerById(worker);
    if (!thread)
        return;
    auto candidate = std::make_unique<Connection>();
    candidate->worker = thread;
    candidate->ticket = ticket;
    // Upgraded as the server closed: not welcomed by a closed server.
    if (!acceptor.isListening()) {
        closeLink(*candidate, CloseGoingAway, QStringLiteral("server closing"));
        return;
    }
    admit(std::move(candidate), handshake, [this, thread, ticket](ConnectionId id) {
        thread->connections.emplace(ticket, id);
        LinkCommand admitted;
        admitted.kind = LinkCommand::Kind::Admit;
        admitted.ticket = ticket;
        thread->batch.commands.push_back(std::move(admitted));
        scheduleFlush();
    });
}

void ServerPrivate::onWorkerText(int worker, quint64 ticket, const QString &message)
{
    if (Connection *c = connectionOf(worker, ticket))
        onTextMessage(c->id, message);
}

void ServerPrivate::onWorkerBinary(int worker, quint64 ticket)
{
    if (Connection *c = connectionOf(worker, ticket))
        onBinaryMessage(c->id);
}

void ServerPrivate::onWorkerPong(int worker, quint64 ticket)
{
    if (Connection *c = connectionOf(worker, ticket))
        c->lastHeard.restart();
}

void ServerPrivate::onWorkerGone(int worker, quint64 ticket)
{
    if (Connection *c = connectionOf(worker, ticket)) {
        const ConnectionId id = c->id;
        removeConnection(id);
        qCDebug(lcServer) << "connection" << id << "gone";
    }
}

void ServerPrivate::onWorkerOverflow(int worker, quint64 ticket, qint64 waiting)
{
    Connection *c = connectionOf(worker, ticket);
    if (!c || c->overflowing)
        return;
    // As boundSendQueue() does for the sockets of this thread; this runs from the event loop.
    markSlowClient(*c, waiting);
    dropSlowClient(c->id, waiting);
}

void ServerPrivate::markSlowClient(Connection &connection, qint64 waiting)
{
    connection.overflowing = true;
    qCWarning(lcServer) << "connection" << connection.id << "does not read:" << waiting
                        << "bytes wait for it (limit" << maxSendQueue << "); closing it (4413)";
}

void ServerPrivate::dropSlowClient(ConnectionId id, qint64 waiting)
{
    dropConnection(id, CloseCode::SlowClient,
                   QStringLiteral("too slow: %1 bytes unread").arg(waiting));
}

qsizetype ServerPrivate::handshakesInProgress() const
{
    qsizetype count = acceptor.handshakesInProgress();
    for (const auto &thread : workers) {
        Worker *worker = thread->worker();
        QMetaObject::invokeMethod(
                worker, [worker, &count] { count += worker->handshakesInProgress(); },
                Qt::BlockingQueuedConnection);
    }
    return count;
}

QThread *ServerPrivate::threadOf(ConnectionId id)
{
    const Connection *c = connection(id);
    if (!c)
        return nullptr;
    return c->worker ? static_cast<QThread *>(c->worker) : q->thread();
}

QString ServerPrivate::welcomeFrame(const Connection &connection) const
{
    const QJsonObject limits{ { QLatin1String("maxFrameSize"), maxFrameSize },
                              { QLatin1String("maxListens"), maxListens },
                              { QLatin1String("maxKeySize"), maxKeySize } };
    return encode({ { QLatin1String("op"), Op::Welcome },
                    { QLatin1String("protocol"), Version },
                    { QLatin1String("connection"), QString::number(connection.id) },
                    { QLatin1String("identity"), connection.identity.toJson() },
                    { QLatin1String("heartbeat"), qint64(heartbeatInterval.count()) },
                    { QLatin1String("limits"), limits } });
}

void ServerPrivate::closeLink(Connection &connection, quint16 closeCode, const QString &reason)
{
    // Owned by the server meanwhile, so that a server deleted meanwhile takes the socket with it
    // (a worker's, by the worker: see ~WorkerThread()).
    if (connection.link)
        connection.link->close(q, closeCode, reason);
    else if (connection.worker)
        push(connection, LinkCommand::Kind::Close, reason, closeCode);
}

std::unique_ptr<Connection> ServerPrivate::removeConnection(ConnectionId id)
{
    std::unique_ptr<Connection> removed = connections.take(id);
    if (!removed)
        return nullptr;
    flushOutbox(*removed); // what was sent before it goes
    if (removed->worker)
        removed->worker->connections.erase(removed->ticket);
    if (removed->expiry)
        expiries.erase(*removed->expiry);
    ++removedConnections;
    listenersRemoved(id, removed->identity, registry.removeConnection(id));
    Q_EMIT q->clientDisconnected(id);
    return removed;
}

void ServerPrivate::dropConnection(ConnectionId id, quint16 closeCode, const QString &reason)
{
    if (const std::unique_ptr<Connection> removed = removeConnection(id))
        closeLink(*removed, closeCode, reason);
}

void ServerPrivate::listenersRemoved(ConnectionId id, const Identity &identity,
                                     const QList<Registry::Listen> &removed)
{
    for (const Registry::Listen &listen : removed) {
        if (AbstractNotifier *n = notifiers.value(listen.notifier))
            Q_EMIT n->listenerRemoved(id, identity, listen.keyJson);
    }
}

void ServerPrivate::send(Connection &connection, const QString &text)
{
    if (connection.overflowing)
        return;
    if (sendObserver)
        sendObserver(connection.id, text);
    queueFrame(connection, WireFrame(text));
    if (writeDelay > 0ms) {
        // Answers are not delayed: they go at the end of the turn, with what waits before them.
        urgentOutboxes.push_back(connection.id);
        scheduleFlush();
    }
}

void ServerPrivate::sendFrame(Connection &connection, const WireFrame &frame)
{
    if (connection.overflowing)
        return;
    if (sendObserver)
        sendObserver(connection.id, frame.text());
    queueFrame(connection, frame);
}

void ServerPrivate::queueFrame(Connection &connection, const WireFrame &frame)
{
    if (connection.outbox.empty()) {
        if (writeDelay == 0ms) {
            outboxes.push_back({ connection.id, {} });
            scheduleFlush();
        } else {
            outboxes.push_back({ connection.id, std::chrono::steady_clock::now() + writeDelay });
            armWriteDelay();
        }
        // Asked once an outbox rather than for each frame, which would reach into every socket
        // of a fan-out for each notification: what Qt holds only shrinks as the event loop
        // sends it, and grows as the server writes, in flushOutbox() and in
        // boundSendQueueAfterWrite().
        connection.heldBytes = connection.link ? connection.link->bytesToWrite() : 0;
    }
    connection.outbox.push_back(frame);
    connection.outboxBytes += frame.bytes().size();
    boundSendQueue(connection);
}

void ServerPrivate::flushOutbox(Connection &connection)
{
    if (connection.outbox.empty())
        return;
    // Emptied whatever happens next; its capacity stays for the next turn unless it is large.
    const auto clear = qScopeGuard([&connection] {
        constexpr std::size_t KeptCapacity = 64;
        if (connection.outbox.capacity() > KeptCapacity)
            connection.outbox = {};
        else
            connection.outbox.clear();
        connection.outboxBytes = 0;
    });
    if (connection.link) {
        connection.link->writeFrames(connection.outbox.data(), connection.outbox.size());
    } else if (connection.worker) {
        // Moved, not copied: the worker holds the last references of this connection's frames.
        WorkerBatch &batch = connection.worker->batch;
        LinkCommand command;
        command.kind = LinkCommand::Kind::Frames;
        command.ticket = connection.ticket;
        command.first = quint32(batch.frames.size());
        command.count = quint32(connection.outbox.size());
        batch.commands.push_back(std::move(command));
        batch.frames.insert(batch.frames.end(), std::make_move_iterator(connection.outbox.begin()),
                            std::make_move_iterator(connection.outbox.end()));
    }
}

void ServerPrivate::flushOutboxes()
{
    writeDelayTimer.stop();
    urgentOutboxes.clear();
    // Those listed now; an outbox filled meanwhile waits for its own flush. Popped rather than
    // swapped for a new deque, which would allocate at every turn. (A slot that closes the
    // server from a flush empties the list itself.)
    for (std::size_t listed = outboxes.size(); listed > 0 && !outboxes.empty(); --listed)
        flushFirstListed();
    handBatches();
}

void ServerPrivate::flushFirstListed()
{
    const ConnectionId id = outboxes.front().id;
    outboxes.pop_front();
    if (Connection *c = connection(id))
        flushOutbox(*c);
}

void ServerPrivate::flushDue()
{
    const auto now = std::chrono::steady_clock::now();
    while (!outboxes.empty() && outboxes.front().due <= now)
        flushFirstListed();
    handBatches();
    armWriteDelay();
}

void ServerPrivate::armWriteDelay()
{
    if (outboxes.empty() || writeDelayTimer.isActive())
        return;
    const auto wait = outboxes.front().due - std::chrono::steady_clock::now();
    writeDelayTimer.start(std::max(0ms, std::chrono::ceil<std::chrono::milliseconds>(wait)));
}

void ServerPrivate::flushTurn()
{
    flushScheduled = false;
    if (writeDelay == 0ms) {
        flushOutboxes();
        return;
    }
    for (ConnectionId id : std::exchange(urgentOutboxes, {})) {
        if (Connection *c = connection(id))
            flushOutbox(*c);
    }
    handBatches();
    armWriteDelay(); // for frames queued before the delay was set
}

void ServerPrivate::handBatches()
{
    // One queued call per worker and turn, whatever the number of its connections.
    for (const auto &thread : workers) {
        if (thread->batch.isEmpty())
            continue;
        Worker *worker = thread->worker();
        QMetaObject::invokeMethod(
                worker, [worker, batch = std::exchange(thread->batch, {})] { worker->run(batch); },
                Qt::QueuedConnection);
    }
}

void ServerPrivate::boundSendQueue(Connection &connection)
{
    // A worker bounds the queues of its sockets itself (Worker::boundSendQueue()).
    if (connection.overflowing || !connection.link)
        return;
    // Qt hands the frames of one event-loop turn to the kernel together; only what the kernel
    // will not take counts, so a burst to a client that reads is not mistaken for a stall.
    if (connection.outboxBytes + connection.heldBytes <= maxSendQueue)
        return;
    flushOutbox(connection);
    connection.link->flush();
    const qint64 waiting = connection.link->bytesToWrite();
    if (waiting <= maxSendQueue)
        return;
    // A client that does not read would make the server hold everything sent to it. It is
    // closed, from the event loop: callers may still use the connection after send().
    markSlowClient(connection, waiting);
    const ConnectionId id = connection.id;
    QMetaObject::invokeMethod(
            q, [this, id, waiting] { dropSlowClient(id, waiting); }, Qt::QueuedConnection);
}

void ServerPrivate::boundSendQueueAfterWrite(Connection &connection)
{
    connection.heldBytes = connection.link->bytesToWrite();
    boundSendQueue(connection);
}

void ServerPrivate::sendNotif(Connection &connection, const WireFrame &frame)
{
    if (connection.ordered.empty())
        sendFrame(connection, frame);
    else
        connection.ordered.push_back(std::make_shared<PendingNotif>(PendingNotif{ true, frame }));
}

std::shared_ptr<PendingNotif> ServerPrivate::reserveNotif(Connection &connection)
{
    auto pending = std::make_shared<PendingNotif>();
    connection.ordered.push_back(pending);
    return pending;
}

void ServerPrivate::flushOrdered(ConnectionId id)
{
    Connection *c = connection(id);
    if (!c)
        return;
    while (!c->ordered.empty() && c->ordered.front()->ready) {
        const WireFrame frame = std::move(c->ordered.front()->frame);
        c->ordered.pop_front();
        if (!frame.isNull())
            sendFrame(*c, frame);
    }
}

void ServerPrivate::onTextMessage(ConnectionId id, const QString &message)
{
    Connection *c = connection(id);
    if (!c)
        return;
    c->lastHeard.restart();
    auto decoded = decodeClientFrame(message.toUtf8());
    if (const auto *error = std::get_if<FrameError>(&decoded)) {
        qCDebug(lcServer) << "connection" << id << "sent a bad frame:" << error->code;
        send(*c, errorFrame(error->code, error->message, error->id));
        return;
    }
    const auto &frame = std::get<ClientFrame>(decoded);
    switch (frame.kind) {
    case ClientFrame::Kind::Listen:
        handleListen(*c, frame);
        break;
    case ClientFrame::Kind::Unlisten:
        handleUnlisten(*c, frame);
        break;
    case ClientFrame::Kind::Request:
        handleRequest(*c, frame);
        break;
    }
}

void ServerPrivate::handleListen(Connection &c, const ClientFrame &frame)
{
    AbstractNotifier *notifier = notifiers.value(frame.notifier);
    if (!notifier) {
        send(c, errorFrame(ErrorCode::UnknownNotifier,
                           QStringLiteral("no notifier ") + quotedName(frame.notifier), frame.id));
        return;
    }
    const QString key = canonicalKey(frame.key);
    const bool tooLong = key.toUtf8().size() > maxKeySize;
    if (tooLong || !notifier->acceptsKey(frame.key)) {
        send(c, errorFrame(ErrorCode::InvalidKey,
                           tooLong ? QStringLiteral("key longer than %1 bytes").arg(maxKeySize)
                                   : QStringLiteral("key does not have the notifier's key type"),
                           frame.id));
        return;
    }
    if (registry.isListening(c.id, frame.notifier, key)) {
        send(c, ackFrame(frame.id, { { QLatin1String("alreadyListening"), true } }));
        return;
    }
    if ((listenAuthorizer && !listenAuthorizer(c.identity, frame.notifier, frame.key))
        || !notifier->authorizeListen(c.identity, frame.key)) {
        send(c, errorFrame(ErrorCode::ListenDenied,
                           QStringLiteral("not allowed to listen to this key"), frame.id));
        return;
    }
    if (registry.listen(c.id, frame.notifier, key, frame.key, maxListens)
        == Registry::ListenResult::LimitReached) {
        send(c, errorFrame(ErrorCode::TooManyListens,
                           QStringLiteral("at most %1 listens per connection").arg(maxListens),
                           frame.id));
        return;
    }
    // In a cluster the ack waits until notifications published on other nodes reach this one
    // (at once when the key already had listeners here): a client that listens, then asks for
    // what it missed, misses nothing in between.
    const QString ack = ackFrame(frame.id, { { QLatin1String("alreadyListening"), false } });
    cluster.whenKeyReachable(frame.notifier, key, [this, id = c.id, ack] {
        if (Connection *listener = connection(id))
            send(*listener, ack);
    });
    Q_EMIT notifier->listenerAdded(c.id, c.identity, frame.key);
}

void ServerPrivate::handleUnlisten(Connection &c, const ClientFrame &frame)
{
    AbstractNotifier *notifier = notifiers.value(frame.notifier);
    if (!notifier) {
        send(c, errorFrame(ErrorCode::UnknownNotifier,
                           QStringLiteral("no notifier ") + quotedName(frame.notifier), frame.id));
        return;
    }
    const bool was = registry.unlisten(c.id, frame.notifier, canonicalKey(frame.key));
    send(c, ackFrame(frame.id, { { QLatin1String("wasListening"), was } }));
    if (was)
        Q_EMIT notifier->listenerRemoved(c.id, c.identity, frame.key);
}

bool ServerPrivate::takeRequestToken(Connection &c)
{
    const double elapsed = double(c.requestClock.restart()) / 1000.0;
    c.requestTokens = std::min(double(requestBurst), c.requestTokens + elapsed * requestRate);
    if (c.requestTokens < 1)
        return false;
    c.requestTokens -= 1;
    return true;
}

void ServerPrivate::handleRequest(Connection &c, const ClientFrame &frame)
{
    if (!takeRequestToken(c)) {
        send(c, errorFrame(ErrorCode::RateLimited,
                           QStringLiteral("at most %1 requests per second (bursts of %2)")
                                   .arg(requestRate)
                                   .arg(requestBurst),
                           frame.id));
        return;
    }
    const auto handler = handlers.constFind(frame.method);
    if (handler == handlers.cend()) {
        send(c, errorFrame(ErrorCode::UnknownMethod,
                           QStringLiteral("no handler for ") + quotedName(frame.method), frame.id));
        return;
    }
    auto state = std::make_shared<RequestState>();
    state->server = q;
    state->connection = c.id;
    state->id = frame.id;
    state->identity = c.identity;
    state->method = frame.method;
    state->payload = frame.payload;
    // A copy of the handler: it may replace or remove itself while it runs.
    const Handler run = *handler;
    run(Request(std::move(state)));
}

void ServerPrivate::setHeartbeatTicks()
{
    // A tick every quarter second at least, up to 25 a heartbeat: 1 s for the default 25 s.
    heartbeatSlices = int(std::clamp<qint64>(heartbeatInterval / 250ms, 1, 25));
    nextHeartbeatSlice = 0;
    heartbeat.setInterval(heartbeatInterval / heartbeatSlices);
}

void ServerPrivate::onHeartbeat()
{
    // Each connection comes up once a heartbeat interval, in the tick of its slice.
    const auto slice = quint64(nextHeartbeatSlice);
    nextHeartbeatSlice = (nextHeartbeatSlice + 1) % heartbeatSlices;
    const qint64 deadline = 2 * heartbeatInterval.count();
    QList<ConnectionId> silent;
    for (const auto &[id, c] : connections) {
        if (id % quint64(heartbeatSlices) != slice)
            continue;
        if (c->lastHeard.elapsed() > deadline) {
            silent.append(id);
        } else {
            ping(*c);
        }
    }
    for (ConnectionId id : silent) {
        qCInfo(lcServer) << "connection" << id << "silent for two heartbeats: closing";
        dropConnection(id, CloseCode::HeartbeatTimeout, QStringLiteral("heartbeat timeout"));
    }
}

void ServerPrivate::onExpiry()
{
    const qint64 now = QDateTime::currentMSecsSinceEpoch();
    QList<ConnectionId> expired;
    for (auto it = expiries.begin(); it != expiries.end() && it->first <= now; ++it)
        expired.append(it->second);
    for (ConnectionId id : expired) {
        qCInfo(lcServer) << "connection" << id << "credentials expired: closing";
        dropConnection(id, CloseCode::CredentialsExpired, QStringLiteral("token expired"));
    }
    scheduleExpiry();
}

void ServerPrivate::scheduleExpiry()
{
    if (expiries.empty()) {
        expiryTimer.stop();
        return;
    }
    // The wall clock may move: onExpiry() compares with it again, and waits more if early. A
    // day at most, well within QTimer's range.
    constexpr qint64 Day = 24 * 60 * 60 * 1000;
    const qint64 wait = expiries.begin()->first - QDateTime::currentMSecsSinceEpoch();
    expiryTimer.start(int(std::clamp<qint64>(wait, 0, Day)));
}

void ServerPrivate::registerNotifier(AbstractNotifier *notifier)
{
    if (notifiers.contains(notifier->name())) {
        qCCritical(lcServer) << "a notifier named" << notifier->name()
                             << "is already registered; the new one is ignored";
        return;
    }
    notifiers.insert(notifier->name(), notifier);
    notifier->m_registered = true;
}

void ServerPrivate::unregisterNotifier(AbstractNotifier *notifier)
{
    if (notifiers.value(notifier->name()) != notifier)
        return;
    notifiers.remove(notifier->name());
    const auto removed = registry.removeNotifier(notifier->name());
    for (const auto &[id, listen] : removed)
        sendUnlistened(id, listen.notifier, listen.keyJson, UnlistenReason::Notifier);
}

void ServerPrivate::sendUnlistened(ConnectionId id, const QString &notifier, const QJsonValue &key,
                                   QLatin1String reason)
{
    if (Connection *c = connection(id))
        send(*c, unlistenedFrame(notifier, key, reason));
}

Server::Server(QObject *parent) : QObject(parent), d(std::make_unique<ServerPrivate>(this)) { }

Server::~Server()
{
    close();
    d->stopWorkers();
    // Notifiers are children of this object; delete them while d still exists, since they
    // unregister from it.
    const auto notifiers = d->notifiers.values();
    for (AbstractNotifier *notifier : notifiers)
        delete notifier;
}

bool Server::listen(const QHostAddress &address, quint16 port)
{
    d->startWorkers();
    if (!d->acceptor.listen(address, port)) {
        d->errorString = d->acceptor.errorString();
        qCWarning(lcServer) << "cannot listen on" << address << port << ":" << d->errorString;
        return false;
    }
    d->errorString.clear();
    d->heartbeat.start();
    if (d->workerCount == 0)
        adviseOnEventDispatcher();
    return true;
}

void Server::close()
{
    d->acceptor.close();
    d->heartbeat.stop();
    QList<ConnectionId> ids;
    for (const auto &entry : d->connections)
        ids.append(entry.first);
    for (ConnectionId id : ids)
        d->dropConnection(id, CloseGoingAway, QStringLiteral("server closing"));
    if (!d->workers.empty()) {
        // What was just closed first, then the handshakes in progress, as acceptor.close().
        d->flushOutboxes();
        for (const auto &thread : d->workers) {
            Worker *worker = thread->worker();
            QMetaObject::invokeMethod(
                    worker, [worker] { worker->closeHandshakes(); }, Qt::BlockingQueuedConnection);
        }
    }
}

bool Server::setWorkerThreads(int count)
{
    QString error;
    if (count < 0)
        error = QStringLiteral("the number of worker threads cannot be negative");
    else if (isListening())
        error = QStringLiteral("close() the server before changing its worker threads");
    if (!error.isEmpty()) {
        d->errorString = error;
        qCWarning(lcServer) << "ignored" << count << "worker threads:" << error;
        return false;
    }
    if (count != d->workerCount)
        d->setWorkerCount(count);
    return true;
}

int Server::workerThreads() const
{
    return d->workerCount;
}

bool Server::isListening() const
{
    return d->acceptor.isListening();
}

quint16 Server::serverPort() const
{
    return d->acceptor.port();
}

QUrl Server::serverUrl() const
{
    return d->acceptor.url();
}

QString Server::errorString() const
{
    return d->errorString;
}

bool Server::setSslConfiguration(const QSslConfiguration &configuration)
{
    const bool secure = !configuration.isNull();
    const bool switching = secure == d->sslConfiguration.isNull();
    QString error;
    std::shared_ptr<TlsContext> tls;
    if (switching && isListening())
        error = QStringLiteral("close() the server before switching between ws:// and wss://");
    else if (secure)
        tls = TlsContext::make(configuration, &error);
    if (!error.isEmpty()) {
        d->errorString = error;
        qCWarning(lcServer) << "ignored a TLS configuration:" << error;
        return false;
    }
    d->sslConfiguration = configuration;
    d->acceptor.setTlsContext(std::move(tls));
    d->updateWorkers();
    return true;
}

QSslConfiguration Server::sslConfiguration() const
{
    return d->sslConfiguration;
}

void Server::setAllowedOrigins(const QStringList &origins)
{
    for (const QString &origin : origins) {
        const QUrl url(origin);
        if (origin != u'*'
            && (url.scheme().isEmpty() || url.host().isEmpty() || !url.path().isEmpty()
                || url.hasQuery())) {
            qCWarning(lcServer) << "the allowed origin" << origin
                                << "matches no browser's Origin (scheme://host[:port])";
        }
    }
    d->allowedOrigins = origins;
}

QStringList Server::allowedOrigins() const
{
    return d->allowedOrigins;
}

void Server::setAuthenticator(Authenticator authenticator)
{
    d->authenticator = std::move(authenticator);
}

void Server::setListenAuthorizer(ListenAuthorizer authorizer)
{
    d->listenAuthorizer = std::move(authorizer);
}

void Server::setHandler(const QString &method, Handler handler)
{
    d->handlers.insert(method, std::move(handler));
}

void Server::removeHandler(const QString &method)
{
    d->handlers.remove(method);
}

AbstractNotifier *Server::notifier(const QString &name) const
{
    return d->notifiers.value(name);
}

void Server::setHeartbeatInterval(std::chrono::milliseconds interval)
{
    if (!isPositiveSetting("heartbeat interval", interval.count()))
        return;
    d->heartbeatInterval = interval;
    d->setHeartbeatTicks();
}

std::chrono::milliseconds Server::heartbeatInterval() const
{
    return d->heartbeatInterval;
}

void Server::setWriteDelay(std::chrono::milliseconds delay)
{
    if (delay < 0ms) {
        qCWarning(lcServer) << "ignored a write delay of" << delay.count()
                            << "ms (it must be 0 or more)";
        return;
    }
    d->writeDelay = delay;
    if (delay == 0ms && d->writeDelayTimer.isActive()) {
        d->writeDelayTimer.stop();
        d->scheduleFlush(); // what waits goes at the end of this turn
    }
}

std::chrono::milliseconds Server::writeDelay() const
{
    return d->writeDelay;
}

void Server::setMaxFrameSize(qint64 bytes)
{
    if (!isPositiveSetting("largest frame size", bytes))
        return;
    d->maxFrameSize = bytes;
    for (const auto &[id, c] : d->connections)
        d->setLinkMaxFrameSize(*c);
    d->updateWorkers();
}

qint64 Server::maxFrameSize() const
{
    return d->maxFrameSize;
}

void Server::setMaxListensPerConnection(int count)
{
    if (!isPositiveSetting("listens per connection", count))
        return;
    d->maxListens = count;
}

int Server::maxListensPerConnection() const
{
    return d->maxListens;
}

void Server::setMaxKeySize(int bytes)
{
    if (!isPositiveSetting("largest key size", bytes))
        return;
    d->maxKeySize = bytes;
}

int Server::maxKeySize() const
{
    return d->maxKeySize;
}

void Server::setMaxSendQueue(qint64 bytes)
{
    if (isPositiveSetting("send queue bound", bytes)) {
        d->maxSendQueue = bytes;
        d->updateWorkers();
    }
}

qint64 Server::maxSendQueue() const
{
    return d->maxSendQueue;
}

void Server::setMaxConnectionsPerUser(int count)
{
    if (isPositiveSetting("connections per user", count))
        d->maxConnectionsPerUser = count;
}

int Server::maxConnectionsPerUser() const
{
    return d->maxConnectionsPerUser;
}

void Server::setHandshakeTimeout(std::chrono::milliseconds timeout)
{
    if (isPositiveSetting("handshake timeout", timeout.count())) {
        d->acceptor.setHandshakeTimeout(timeout);
        d->updateWorkers();
    }
}

std::chrono::milliseconds Server::handshakeTimeout() const
{
    return d->acceptor.handshakeTimeout();
}

void Server::setRequestRate(double perSecond, int burst)
{
    if (!(perSecond > 0)) {
        qCWarning(lcServer) << "ignored a request rate of" << perSecond << "(it must be positive)";
        return;
    }
    if (!isPositiveSetting("request burst", burst))
        return;
    d->requestRate = perSecond;
    d->requestBurst = burst;
}

double Server::requestRate() const
{
    return d->requestRate;
}

int Server::requestBurst() const
{
    return d->requestBurst;
}

int Server::connectionCount() const
{
    return int(d->connections.size());
}

QList<ConnectionId> Server::connections() const
{
    return d->registry.connections();
}

QList<ConnectionId> Server::connectionsOfUser(const QString &userId) const
{
    return d->registry.connectionsOfUser(userId);
}

Identity Server::identity(ConnectionId connection) const
{
    const Connection *c = d->connection(connection);
    return c ? c->identity : Identity();
}

bool Server::setIdentity(ConnectionId connection, const Identity &identity)
{
    Connection *c = d->connection(connection);
    if (!c)
        return false;
    const Identity previous = std::exchange(c->identity, identity);
    const QList<Registry::Listen> removed
            = d->registry.resetConnection(connection, identity.userId());
    // Notifications still waiting for an asynchronous prepare were prepared for the old
    // identity: they are dropped, and their prepares' results go nowhere.
    c->ordered.clear();
    d->send(*c, encode({ { QLatin1String("op"), Op::Identity },
                         { QLatin1String("identity"), identity.toJson() } }));
    d->listenersRemoved(connection, previous, removed);
    return true;
}

bool Server::disconnectClient(ConnectionId connection, quint16 closeCode, const QString &reason)
{
    if (!d->connection(connection))
        return false;
    d->dropConnection(connection, closeCode, reason);
    return true;
}

bool Server::setBackplane(const QUrl &url)
{
    std::unique_ptr<Backplane> backplane = Backplane::create(url, &d->errorString);
    if (!backplane) {
        qCWarning(lcServer) << "cannot use the backplane" << Backplane::redacted(url) << ":"
                            << d->errorString;
        return false;
    }
    setBackplane(std::move(backplane));
    return true;
}

void Server::setBackplane(std::unique_ptr<Backplane> backplane)
{
    if (backplane)
        backplane->setParent(this); // it must live in the server's thread: make it there
    d->cluster.setBackplane(std::move(backplane));
}

Backplane *Server::backplane() const
{
    return d->cluster.backplane();
}

QString Server::nodeId() const
{
    return d->cluster.nodeId();
}

void Server::setClusterRequestTimeout(std::chrono::milliseconds timeout)
{
    if (isPositiveSetting("cluster request timeout", timeout.count()))
        d->cluster.requestTimeout = timeout;
}

std::chrono::milliseconds Server::clusterRequestTimeout() const
{
    return d->cluster.requestTimeout;
}

int Server::listenCount() const
{
    return d->registry.listenCount();
}

int Server::keyCount() const
{
    return d->registry.keyCount();
}

} // namespace QtNotif
