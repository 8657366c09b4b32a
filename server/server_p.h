#pragma once

#include "acceptor_p.h"
#include "cluster_p.h"
#include "registry_p.h"
#include "socketlink_p.h"
#include "wireframe_p.h"
#include "worker_p.h"

#include <QtNotif/abstractnotifier.h>
#include <QtNotif/handshakerequest.h>
#include <QtNotif/server.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QHash>
#include <QtCore/QPointer>
#include <QtCore/QTimer>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

namespace QtNotif {

namespace Protocol {
struct ClientFrame;
}

// A notification held back because an earlier one for the same client still waits for its
// asynchronous prepare. A null frame once ready means prepare left this client out.
struct PendingNotif
{
    bool ready = false;
    WireFrame frame;
};

// What the server needs to know of an upgraded socket to decide on it (ServerPrivate::admit()).
struct Handshake
{
    static Handshake of(const Upgrade &upgrade, const QTcpSocket &socket);

    // Whether the socket was still connected once upgraded.
    bool connected = false;
    QString subprotocol;
    QString origin;
    HandshakeRequest request; // the peer's address among it
};

// The close code of a server going away (RFC 6455, 7.4.1): close() and stopping workers.
inline constexpr quint16 CloseGoingAway = 1001;

// When connections' credentials expire: milliseconds since the epoch, earliest first.
using Expiries = std::multimap<qint64, ConnectionId>;

// One welcomed client connection.
struct Connection
{
    ConnectionId id = 0;
    // The client's socket, on the server's thread; none with worker threads. Held in place:
    // sendFrame() reaches it for every delivery. Every socket operation of the server goes
    // through ServerPrivate's send(), flushOutbox(), boundSendQueue(), closeLink(), ping()
    // and setLinkMaxFrameSize().
    std::optional<SocketLink> link;
    // With worker threads: the worker that owns the socket, and the socket's number there.
    WorkerThread *worker = nullptr;
    quint64 ticket = 0;
    // The frames sent during this event-loop turn, not handed to the socket yet:
    // flushOutboxes() hands them over together at the end of the turn. The frames' own bytes,
    // shared with every other recipient, not a copy; outboxBytes is their total size.
    std::vector<WireFrame> outbox;
    qint64 outboxBytes = 0;
    // What Qt held for the socket when the outbox began (see queueFrame()).
    qint64 heldBytes = 0;
    Identity identity;
    QElapsedTimer lastHeard; // restarted by every frame and pong
    // Non-empty only while an asynchronous prepare is pending for this client: notifications
    // wait here so that the client receives them in notify order.
    // A QList, not a std::deque: an empty deque still allocates over 500 bytes.
    QList<std::shared_ptr<PendingNotif>> ordered;
    // Set once more than maxSendQueue bytes waited for the client: it is being closed, and
    // nothing more is queued for it.
    bool overflowing = false;
    // Token bucket of upstream requests: refilled at requestRate per second up to requestBurst.
    double requestTokens = 0;
    QElapsedTimer requestClock;
    // This connection's entry in ServerPrivate::expiries, when its credentials expire.
    std::optional<Expiries::iterator> expiry;
};

// The server's connections by id, which it owns: added once admitted, taken out when they go,
// deleted with the table. Pointers in a QHash rather than a std::unordered_map of
// std::unique_ptr: a notification looks up each of its recipients, and a QHash keeps its keys in
// arrays where the map allocates a node for each, a cache miss more per delivery (in window
// mode the map's lookup was 6 % of the server's time, the QHash's 2.7 %).
class ConnectionTable
{
public:
    ConnectionTable() = default;
    ~ConnectionTable() { qDeleteAll(m_connections); }
    Q_DISABLE_COPY_MOVE(ConnectionTable)

    Connection *find(ConnectionId id) const { return m_connections.value(id); }
    void add(ConnectionId id, std::unique_ptr<Connection> connection)
    {
        m_connections.insert(id, connection.release());
    }
    std::unique_ptr<Connection> take(ConnectionId id)
    {
        return std::unique_ptr<Connection>(m_connections.take(id));
    }
    qsizetype size() const { return m_connections.size(); }
    // (id, Connection *) pairs, for a loop that does not add or remove connections.
    auto begin() const { return m_connections.constKeyValueBegin(); }
    auto end() const { return m_connections.constKeyValueEnd(); }

private:
    QHash<ConnectionId, Connection *> m_connections;
};

class ServerPrivate
{
public:
    explicit ServerPrivate(Server *server);
    static ServerPrivate *get(Server *server) { return server->d.get(); }

    Connection *connection(ConnectionId id);
    // Sends a frame of this client's own (a welcome, a reply, an error) after everything sent to
    // it before, at the end of the event-loop turn with its notifications (see sendFrame()).
    void send(Connection &connection, const QString &text);
    // Closes the connection (4413, from the event loop) when more than maxSendQueue bytes wait
    // to be sent to it. A worker checks its own sockets (Worker::boundSendQueue()).
    void boundSendQueue(Connection &connection);
    // The same after the connection's link wrote to its socket past the outbox (a ping, the
    // answer to one).
    void boundSendQueueAfterWrite(Connection &connection);
    // A client with waiting bytes unread past maxSendQueue: marked overflowing (nothing more is
    // queued for it) and logged; then dropped with 4413, from the event loop.
    void markSlowClient(Connection &connection, qint64 waiting);
    void dropSlowClient(ConnectionId id, qint64 waiting);
    // Sends a frame made once for many clients: its bytes go to the TCP socket as they are, at
    // the end of the event-loop turn (the connection's outbox).
    void sendFrame(Connection &connection, const WireFrame &frame);
    // Puts the frame in the connection's outbox, past the send observer.
    void queueFrame(Connection &connection, const WireFrame &frame);
    // Hands the connection's outbox to its socket now (to its worker's batch, with workers);
    // before anything else is written to it, so that frames keep their order.
    void flushOutbox(Connection &connection);
    // Flushes every outbox filled since the last flush, and hands each worker its batch.
    void flushOutboxes();
    // Takes the first entry off the list of outboxes and flushes it (a connection gone since
    // is skipped).
    void flushFirstListed();
    // The end of an event-loop turn in which frames were queued: flushOutboxes(), or with a
    // write delay only the outboxes holding a frame of the client's own (a reply, an error) and
    // the workers' batches; the notifications then wait for the delay.
    void flushTurn();
    // Hands each worker the commands and frames gathered for it, in one queued call.
    void handBatches();
    // With a write delay: flushes the outboxes that are due, each in its time, so that the
    // writes spread as the frames came instead of going out in one burst.
    void flushDue();
    // Starts the write delay's timer for the first listed outbox, unless it runs.
    void armWriteDelay();
    // Makes sure flushTurn() runs at the end of this event-loop turn.
    void scheduleFlush()
    {
        if (!flushScheduled) {
            flushScheduled = true;
            QMetaObject::invokeMethod(
                    q, [this] { flushTurn(); }, Qt::QueuedConnection);
        }
    }
    // Queues a command for the worker that owns the connection's socket.
    void push(Connection &connection, LinkCommand::Kind kind, QString text = QString(),
              quint16 closeCode = 0);
    void ping(Connection &connection);
    // Sends a notification frame, behind any still waiting for an asynchronous prepare.
    void sendNotif(Connection &connection, const WireFrame &frame);
    // A place in the client's notification order, filled in later by an asynchronous prepare.
    std::shared_ptr<PendingNotif> reserveNotif(Connection &connection);
    // Sends the ready notifications at the head of the client's order.
    void flushOrdered(ConnectionId id);

    void registerNotifier(AbstractNotifier *notifier);
    void unregisterNotifier(AbstractNotifier *notifier);
    // Tells the client of a listen the server removed or added.
    void sendUnlistened(ConnectionId id, const QString &notifier, const QJsonValue &key,
                        QLatin1String reason);

    // Emits listenerRemoved on the notifier of each removed listen (a connection gone or
    // reset), once the tables are consistent.
    void listenersRemoved(ConnectionId id, const Identity &identity,
                          const QList<Registry::Listen> &removed);

    // Removes the connection from the tables, tells the application (listenerRemoved,
    // clientDisconnected) and hands it back, with its socket (deleted with it unless closed
    // with closeLink()); nullptr when there is no such connection.
    std::unique_ptr<Connection> removeConnection(ConnectionId id);
    // Applies maxFrameSize to the connection's socket.
    void setLinkMaxFrameSize(Connection &connection);
    // Closes the socket of a removed connection gracefully.
    void closeLink(Connection &connection, quint16 closeCode, const QString &reason);
    // Removes the connection from the tables now and closes its socket gracefully.
    void dropConnection(ConnectionId id, quint16 closeCode, const QString &reason);
    // Reads one text frame of a welcomed client and answers it. The fuzzer (fuzz/) calls it
    // directly, without sockets.
    void onTextMessage(ConnectionId id, const QString &message);

    // Worker threads (Server::setWorkerThreads()), in the server's thread.
    void setWorkerCount(int count);
    void startWorkers();
    void stopWorkers();
    Worker::Settings workerSettings() const;
    // Sets the heartbeat's slices and tick from heartbeatInterval.
    void setHeartbeatTicks();
    // Hands the workers the settings they apply, after one changed.
    void updateWorkers();
    // Hands an accepted TCP connection to the next worker.
    void handOff(qintptr descriptor);
    // What workers tell of their sockets, from the server's event loop. A ticket the server
    // does not know (refused, or already removed) is ignored, and so is a worker stopped since.
    void onWorkerHandshake(int worker, quint64 ticket, const Handshake &handshake);
    void onWorkerText(int worker, quint64 ticket, const QString &message);
    void onWorkerBinary(int worker, quint64 ticket);
    void onWorkerPong(int worker, quint64 ticket);
    void onWorkerGone(int worker, quint64 ticket);
    void onWorkerOverflow(int worker, quint64 ticket, qint64 waiting);
    // Connections accepted and not welcomed yet, on every thread (waits for the workers).
    QTNOTIF_SERVER_EXPORT qsizetype handshakesInProgress() const;
    // The thread a connection's socket lives in: a worker's, or the server's own without
    // workers; nullptr when there is no such connection. For tests.
    QTNOTIF_SERVER_EXPORT QThread *threadOf(ConnectionId id);

    Server *q;
    Acceptor acceptor{ [this](QTcpSocket *socket, const Upgrade &upgrade) {
        accept(socket, upgrade);
    } };
    QSslConfiguration sslConfiguration; // null: ws://
    QStringList allowedOrigins;
    Registry registry;
    Cluster cluster{ this };
    ConnectionTable connections;
    // Connections removed so far: a loop that calls user code (prepare) between connection()
    // and using the Connection it got looks it up again only when this has changed.
    quint64 removedConnections = 0;
    // Connections whose outbox received frames since the last flushOutboxes(), in the order
    // their outboxes were filled (a flushed one may still be listed). With a write delay, each
    // with the time its outbox is due: the delay after its first frame.
    struct PendingOutbox
    {
        ConnectionId id;
        std::chrono::steady_clock::time_point due;
    };
    std::deque<PendingOutbox> outboxes;
    bool flushScheduled = false;
    // With a write delay: the outboxes that received a frame of the client's own this turn, and
    // the timer that fires when the first listed outbox is due (flushDue()).
    std::vector<ConnectionId> urgentOutboxes;
    QTimer writeDelayTimer;
    // 0: every socket on the server's thread.
    int workerCount = 0;
    std::vector<std::unique_ptr<WorkerThread>> workers; // started at listen()
    std::size_t nextWorker = 0;
    int lastWorkerId = 0; // a worker's id is never reused: see workerById()
    QHash<QString, AbstractNotifier *> notifiers;
    QHash<QString, Handler> handlers;
    Authenticator authenticator;
    ListenAuthorizer listenAuthorizer;
    // Ticks heartbeatSlices times per heartbeat interval; each tick pings, or drops when silent,
    // the connections of one slice (id modulo heartbeatSlices), so that a server with many
    // clients never spends a whole turn on all of their pings.
    QTimer heartbeat;
    int heartbeatSlices = 1;
    int nextHeartbeatSlice = 0;
    Expiries expiries;
    QTimer expiryTimer; // fires at the earliest expiry
    ConnectionId lastId = 0;
    QString errorString;
    // Sees every frame send() hands to a client's socket. Unset but in the fuzzer, which checks
    // with it that every client frame gets exactly one answer.
    std::function<void(ConnectionId id, const QString &text)> sendObserver;

    std::chrono::milliseconds heartbeatInterval{ 25000 };
    qint64 maxFrameSize = 64 * 1024;
    int maxListens = 1000;
    int maxKeySize = 1024;
    qint64 maxSendQueue = 1024 * 1024;
    std::chrono::milliseconds writeDelay{ 0 };
    int maxConnectionsPerUser = 100;
    double requestRate = 20;
    int requestBurst = 40;

private:
    bool isOriginAllowed(const QString &origin) const;
    void accept(QTcpSocket *socket, const Upgrade &upgrade);
    // What the links of this thread's connections read (through linkReceiver); tag is the
    // connection's id.
    void linkText(quint64 tag, const QByteArray &utf8);
    void linkBinary(quint64 tag);
    void linkPong(quint64 tag);
    void linkPinged(quint64 tag);
    void linkEnded(quint64 tag, quint16 closeCode, const QString &reason);
    // Hands what the links read to the functions above. A member rather than a base class:
    // ServerPrivate, which the tests reach into, stays without virtual functions, so that the
    // tests' UBSan checks need no type information the library does not export.
    class LinkReceiver final : public SocketLink::Receiver
    {
    public:
        explicit LinkReceiver(ServerPrivate *d) : d(d) { }
        void linkText(quint64 tag, const QByteArray &utf8) override { d->linkText(tag, utf8); }
        void linkBinary(quint64 tag) override { d->linkBinary(tag); }
        void linkPong(quint64 tag) override { d->linkPong(tag); }
        void linkPinged(quint64 tag) override { d->linkPinged(tag); }
        void linkEnded(quint64 tag, quint16 closeCode, const QString &reason) override
        {
            d->linkEnded(tag, closeCode, reason);
        }

    private:
        ServerPrivate *d;
    };
    LinkReceiver linkReceiver{ this };
    // Decides on an upgraded socket, the link of candidate: refuses it, or makes candidate a
    // connection and welcomes it. wire() is told the new connection's id before its welcome
    // (on this thread, the link starts reading after it; a worker's, once told).
    void admit(std::unique_ptr<Connection> candidate, const Handshake &handshake,
               const std::function<void(ConnectionId id)> &wire);
    // Closes a socket that did not become a connection, and tells the log (with the user it
    // claimed to be, when known) and the application why.
    void refuse(std::unique_ptr<Connection> candidate, const Handshake &handshake,
                quint16 closeCode, const QString &reason, const QString &userId = QString());
    void onBinaryMessage(ConnectionId id);
    // The connection of a worker's socket, nullptr if none.
    Connection *connectionOf(int worker, quint64 ticket);
    WorkerThread *workerById(int id) const;
    void onHeartbeat();
    // Closes the connections whose credentials have expired (4419), then waits for the next.
    void onExpiry();
    void scheduleExpiry();
    void handleListen(Connection &connection, const Protocol::ClientFrame &frame);
    void handleUnlisten(Connection &connection, const Protocol::ClientFrame &frame);
    void handleRequest(Connection &connection, const Protocol::ClientFrame &frame);
    // Whether the connection may make one more upstream request now (its token bucket).
    bool takeRequestToken(Connection &connection);
    QString welcomeFrame(const Connection &connection) const;
};

// Whether the calling thread runs EpollEventDispatcher. Exported for the tests, as the next.
QTNOTIF_SERVER_EXPORT bool runsEpollEventDispatcher();
// Logs once per process, at info level, that another event dispatcher runs the calling thread,
// and how to choose EpollEventDispatcher, which serves many connections much better
// (docs/performance.md). Server::listen() calls it when the sockets stay on its thread.
void adviseOnEventDispatcher();
// Lets the next adviseOnEventDispatcher() log again (for tests).
QTNOTIF_SERVER_EXPORT void resetEventDispatcherAdvice();

// What a Request handle shares with its copies.
class RequestState
{
public:
    ~RequestState();
    void answer(const QString &frame);

    QPointer<Server> server;
    ConnectionId connection = 0;
    qint64 id = 0;
    Identity identity;
    QString method;
    QJsonValue payload;
    bool answered = false;
};

} // namespace QtNotif
