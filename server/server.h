#pragma once

#include <QtNotif/authresult.h>
#include <QtNotif/identity.h>
#include <QtNotif/request.h>

#include <QtCore/QObject>
#include <QtCore/QUrl>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QSslConfiguration>

#include <chrono>
#include <functional>
#include <memory>

namespace QtNotif {

class AbstractNotifier;
class Backplane;
class ServerPrivate;

// The server-wide listen authoriser: whether identity may listen to key of the named
// notifier. A denied listen gets the error "listen_denied" and registers nothing.
using ListenAuthorizer = std::function<bool(const Identity &identity, const QString &notifier,
                                            const QJsonValue &key)>;

// A qtnotif server: accepts WebSocket clients speaking qtnotif.v1, keeps the table of who
// listens to which key of which notifier, and delivers notifications.
//
// Create notifiers on it (Notifier, SimpleNotifier), set an authenticator and handlers, then
// listen(). Everything the application sees happens on the thread the server lives in: the
// authenticator, authorisers, handlers, prepares and signals run there, and notify() alone may
// be called from other threads (it is queued to this one). Only the sockets may be spread over
// worker threads (setWorkerThreads()).
//
// A client's listens are removed the moment it disconnects, its identity changes, or the
// server closes: nothing waits for a timeout.
class QTNOTIF_SERVER_EXPORT Server : public QObject
{
    Q_OBJECT
public:
    explicit Server(QObject *parent = nullptr);
    ~Server() override;

    // Starts accepting clients. Port 0 picks a free port (see serverPort()). Returns false and
    // sets errorString() when the address cannot be bound.
    bool listen(const QHostAddress &address = QHostAddress::LocalHost, quint16 port = 0);
    // Stops accepting, drops the connections still in their handshake, closes every client
    // connection (close code 1001, going away) and empties the listener table. Notifiers and
    // handlers stay registered.
    void close();
    bool isListening() const;
    quint16 serverPort() const;
    // ws://address:port/ of the listening server (wss:// with a TLS configuration); empty when
    // not listening.
    QUrl serverUrl() const;
    QString errorString() const;

    // Spreads the clients' sockets over count worker threads of the server's own, each with
    // its event loop: the server's thread accepts TCP connections and hands each to the next
    // worker (round robin), which reads its upgrade request, TLS included, and then reads and
    // writes its frames. Everything else stays on the server's thread, as with 0: the
    // authenticator and every other callback and signal, the listener table, notify(). A
    // notification is encoded once on the server's thread, and each worker gets the frames of
    // one event-loop turn for all its clients in one hand-over.
    // 0, the default, keeps every socket on the server's thread. Workers help when the
    // server's thread is busy with socket system calls (many clients, many notifications)
    // and the machine has cores to spare; on one or two cores they cost more than they
    // save. The environment variable QTNOTIF_WORKER_THREADS, read at construction, sets
    // the default.
    // Only while not listening (before listen(), or after close()): returns false with
    // errorString() otherwise, or for a negative count. The threads start at listen() and
    // stop at the server's destruction or at the next change of count; close() closes every
    // connection as without workers.
    bool setWorkerThreads(int count);
    int workerThreads() const;

    // Serves wss:// with the certificate (localCertificate(), or localCertificateChain() with
    // the intermediates) and privateKey() of configuration. The server does TLS with OpenSSL
    // itself, not with QSslSocket (a quarter of the memory per connection, docs/performance.md),
    // and takes of the configuration: protocol(), TLS 1.2 and 1.3 only (TLS 1.2 and later by
    // default); ciphers() and ellipticCurves() where they differ from Qt's defaults;
    // peerVerifyMode() VerifyPeer with caCertificates(), which asks clients for a certificate
    // from those CAs and requires it, or QueryPeer, which asks for any and requires none (the
    // other modes ask for none); and QSsl::SslOptionDisableSessionTickets (otherwise one TLS 1.3
    // ticket per full handshake) and SslOptionDisableServerCipherPreference. Everything else is
    // OpenSSL's defaults with the system's configuration (/etc/ssl/openssl.cnf). A null
    // configuration (QSslConfiguration()), the default, serves ws://.
    // Best called before listen(). While listening, a new certificate applies to the
    // connections that come next (a renewal needs no restart); switching between ws:// and
    // wss:// needs close() first. Returns false, keeping the previous configuration, when
    // a certificate or its key is missing or unusable, the key is not the certificate's, the
    // protocol is not TLS 1.2 or 1.3, OpenSSL refuses the ciphers or curves, no cipher serves
    // the protocols allowed, or the switch is attempted while listening (see errorString()).
    bool setSslConfiguration(const QSslConfiguration &configuration);
    QSslConfiguration sslConfiguration() const;

    // The origins whose browser pages may connect, as browsers send them in the Origin header:
    // scheme://host, plus :port when not the scheme's default ("https://chat.example.com").
    // They are compared ignoring case; "*" allows every origin. A handshake from any other
    // origin is refused with close code 4403. A handshake without Origin (a program, not a
    // page: the client library sends none) is allowed: the check keeps other sites' pages from
    // using a visitor's cookies here, it does not stop a script. Empty, the default, allows
    // every origin.
    void setAllowedOrigins(const QStringList &origins);
    QStringList allowedOrigins() const;

    // Decides who a client is at the handshake. The default accepts everyone as anonymous.
    void setAuthenticator(Authenticator authenticator);
    // The server-wide listen authoriser; the default allows every listen.
    void setListenAuthorizer(ListenAuthorizer authorizer);

    // Registers the handler of upstream requests for method, replacing any previous one. A
    // request for a method without handler gets the error "unknown_method".
    void setHandler(const QString &method, Handler handler);
    void removeHandler(const QString &method);

    // The notifier registered under name, or nullptr. The server owns it.
    AbstractNotifier *notifier(const QString &name) const;

    // The interval of WebSocket pings to every client. A client not heard from for two
    // intervals is closed (4408). 25 s by default: under common 30 s proxy idle timeouts.
    // Each limit below and this interval must be positive: other values are ignored with a
    // warning.
    void setHeartbeatInterval(std::chrono::milliseconds interval);
    std::chrono::milliseconds heartbeatInterval() const;
    // How long a notification may wait for the ones after it, so that the frames a client
    // receives within the delay go to it in one write: fewer system calls and packets, at the
    // cost of up to this much latency. It helps clients that receive several notifications
    // within the delay (many keys, busy keys), and saves nothing for one that receives one now
    // and then. 0, the default, writes at the end of the event-loop turn, which already gathers
    // what one turn sends. Answers to a client's requests, its welcome and the heartbeat's
    // pings are not delayed (what waits before an answer goes with it). Negative values are
    // ignored with a warning. Setting 0 sends what waits at the end of the turn.
    void setWriteDelay(std::chrono::milliseconds delay);
    std::chrono::milliseconds writeDelay() const;
    // Largest frame a client may send; larger ones close the connection (1009). 64 KiB by
    // default: client frames are small requests, and a larger one is a bug or an attack.
    // Applies to the connections already open too.
    void setMaxFrameSize(qint64 bytes);
    qint64 maxFrameSize() const;
    // Listens one connection may hold; more get "too_many_listens". 1000 by default.
    void setMaxListensPerConnection(int count);
    int maxListensPerConnection() const;
    // Longest key (in UTF-8 bytes of its compact JSON text) a client may listen to; longer
    // keys get "invalid_key". 1 KiB by default.
    void setMaxKeySize(int bytes);
    int maxKeySize() const;
    // Bytes that may wait to be sent to one client (what the kernel would not take yet). A
    // client that does not read past it is closed with 4413 and logged, so that it cannot make
    // the server's memory grow; the client library reconnects. 1 MiB by default: thousands of
    // notifications, or seconds of a busy stream to a client that stopped reading.
    void setMaxSendQueue(qint64 bytes);
    qint64 maxSendQueue() const;
    // Connections one user (not anonymous clients) may hold at once; the next is refused at the
    // handshake with close code 4429, which the client library retries with backoff. 100 by
    // default: a person's windows and devices fit, a script opening connections in a loop does
    // not. Checked at the handshake only: setIdentity() does not refuse.
    void setMaxConnectionsPerUser(int count);
    int maxConnectionsPerUser() const;
    // How long a TCP connection may take to complete its WebSocket handshake before it is
    // dropped. 10 s by default (Qt's): a peer that connects and sends nothing holds a socket
    // no longer. With wss://, the TLS handshake gets this long too, then the WebSocket
    // handshake again as long.
    void setHandshakeTimeout(std::chrono::milliseconds timeout);
    std::chrono::milliseconds handshakeTimeout() const;
    // Upstream requests one connection may make: perSecond on average, in bursts of up to
    // burst (a token bucket). More get the error "rate_limited", and the handler does not run.
    // 20 per second in bursts of 40 by default: a person's clicks and a client's start-up calls
    // fit, a loop flooding handlers does not. Listens are bounded by maxListensPerConnection().
    void setRequestRate(double perSecond, int burst);
    double requestRate() const;
    int requestBurst() const;

    // Connected clients (authenticated, welcomed).
    int connectionCount() const;
    QList<ConnectionId> connections() const;
    // The connections of one user.
    QList<ConnectionId> connectionsOfUser(const QString &userId) const;
    // The identity of a connection; anonymous when it does not exist.
    Identity identity(ConnectionId connection) const;
    // Changes who a connection is (a login on a live connection, say). Its listens are
    // removed at once, since they were authorised for the old identity; the client is told
    // with an "identity" frame and the client library listens again. Returns false when the
    // connection does not exist.
    bool setIdentity(ConnectionId connection, const Identity &identity);
    // Closes one client connection with the given WebSocket close code and reason.
    bool disconnectClient(ConnectionId connection, quint16 closeCode = 1000,
                          const QString &reason = QString());

    // Makes this server a node of the cluster the URL names (see Backplane):
    //   server.setBackplane(QUrl(u"redis://:password@10.0.0.5:6379/0"_s));
    // Notifications, unlistenUser() and listenerCount() then reach the clients of every node.
    // The default is an in-process backplane of the server's own: a server alone. Returns
    // false, keeping the previous backplane, when the URL cannot be used (see errorString()).
    // Best called before listen(); later, the new backplane is subscribed to the keys
    // listened to so far.
    bool setBackplane(const QUrl &url);
    // Uses a backplane of the application's own; the server owns it.
    void setBackplane(std::unique_ptr<Backplane> backplane);
    Backplane *backplane() const;
    // Tells this server from the other nodes of its cluster; random, made at construction.
    QString nodeId() const;
    // How long listenerCount() and unlistenUser() wait for the other nodes' answers. 2 s by
    // default; a node that has not answered by then is left out of the result.
    void setClusterRequestTimeout(std::chrono::milliseconds timeout);
    std::chrono::milliseconds clusterRequestTimeout() const;

    // Listens over all notifiers and connections, and keys with at least one listener, on this
    // server: both are 0 when no client listens to anything.
    int listenCount() const;
    int keyCount() const;

Q_SIGNALS:
    // A client passed the handshake and the authenticator and was sent its welcome.
    void clientConnected(QtNotif::ConnectionId connection, const QtNotif::Identity &identity);
    // A client connection ended; its listens are already removed.
    void clientDisconnected(QtNotif::ConnectionId connection);
    // The server refused a client at the handshake: the authenticator did, or the client did
    // not speak qtnotif.v1, came from an origin not allowed, or held too many connections.
    void clientRefused(const QString &reason);

private:
    friend class AbstractNotifier;
    friend class RequestState;
    friend class ServerPrivate;
    std::unique_ptr<ServerPrivate> d;
};

} // namespace QtNotif
