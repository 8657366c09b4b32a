#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QHash>
#include <QtCore/QPointer>
#include <QtCore/QSocketNotifier>
#include <QtCore/QTimer>
#include <QtCore/QUrl>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QSslConfiguration>
#include <QtNetwork/QTcpServer>
#include <QtWebSockets/QWebSocket>
#include <QtWebSockets/QWebSocketServer>

#include <chrono>
#include <functional>
#include <memory>

namespace QtNotif {

// Accepts TCP (or TLS) connections and upgrades them to WebSocket connections with Qt's
// WebSocket layer, after reading each upgrade request itself.
//
// Why not QWebSocketServer::listen(): Qt's layer reads the frames that follow the request in
// the same TCP segment while it makes the QWebSocket, before anyone can connect to its
// signals, so their messages are lost unanswered (and its answers to them are masked). The
// acceptor holds back what follows the request, lets Qt read the request alone, and hands
// the held bytes to the new QWebSocket once the server has connected its slots. A client may
// thus send its first requests without waiting for the welcome.
class Acceptor
{
public:
    // Lets Qt's WebSocket layer read the frames of an upgraded socket held back (see
    // setHoldFrames()): those that followed its upgrade request, then the network's.
    using Release = std::function<void()>;
    // Called with each upgraded socket, which the callee owns, and the TCP (or TLS) socket it
    // reads and writes, which it owns (null if that one is already gone). Its slots connected
    // when the call returns see every frame the client sent after its upgrade request; or,
    // with setHoldFrames(), those connected when it calls release.
    using Upgraded
            = std::function<void(QWebSocket *socket, QTcpSocket *tcpSocket, Release release)>;

    // The largest upgrade request read (its headers, a JWT among them). A larger one gets
    // the HTTP status 431. Qt's own limit is 8 KiB per header line.
    static constexpr qsizetype MaxRequestSize = 64 * 1024;
    // Connections the kernel may hold for the acceptor to take.
    static constexpr int ListenBacklog = 4096;
    // Connections taken in one go; the next ones in the next turn of the event loop.
    static constexpr int AcceptsPerTurn = 32;
    // After an accept fails for want of resources (file descriptors, mostly), the acceptor
    // tries again after the first delay, then twice as long each time up to the last.
    static constexpr std::chrono::milliseconds FirstAcceptRetry{ 10 };
    static constexpr std::chrono::milliseconds LastAcceptRetry{ 1000 };

    // Called in the acceptor's thread with the descriptor of each TCP connection accepted, when
    // another acceptor (a worker's, see Worker) is to read its upgrade request: adopt() there.
    using Incoming = std::function<void(qintptr descriptor)>;

    explicit Acceptor(Upgraded upgraded);
    ~Acceptor();

    // Hands accepted connections to incoming instead of upgrading them here; a null function
    // upgrades them here, the default. Only while not listening.
    void setIncoming(Incoming incoming);
    // Reads the upgrade request of a TCP connection accepted by another acceptor (with its TLS
    // handshake first for wss://), as if this one had accepted it.
    void adopt(qintptr descriptor);

    bool listen(const QHostAddress &address, quint16 port);
    // Stops listening and drops the connections still in their handshake.
    void close();
    bool isListening() const;
    quint16 port() const;
    QUrl url() const; // ws:// or wss://, empty when not listening
    QString errorString() const;

    // A null configuration serves ws://. Switching between ws:// and wss:// makes a new
    // listening socket, so the caller does it only while not listening; a new certificate
    // for wss:// applies to the next connections.
    void setSslConfiguration(const QSslConfiguration &configuration);
    // How long a TCP connection may take to send its upgrade request once accepted (and,
    // with wss://, to finish its TLS handshake before that, as long again).
    void setHandshakeTimeout(std::chrono::milliseconds timeout);
    // Whether Qt reads no frame of an upgraded socket until the callee calls the release it
    // was given (a worker's acceptor, until the server's thread has welcomed the client: on the
    // server's thread, that happens before the callback returns). Meanwhile the TCP socket's
    // signals are blocked: QWebSocket reads nothing, and sees no disconnection either (the
    // callee checks the TCP socket's state after release). Off by default: an empty release.
    void setHoldFrames(bool hold) { m_holdFrames = hold; }
    std::chrono::milliseconds handshakeTimeout() const { return m_handshakeTimeout; }
    // Connections accepted and not yet upgraded.
    qsizetype handshakesInProgress() const { return m_pending.size() + m_held.size(); }
    // Accepts that failed for want of resources since the acceptor was made.
    qsizetype acceptFailures() const { return m_acceptFailures; }
    // How long the acceptor waits before it tries again; zero while accepts succeed.
    std::chrono::milliseconds acceptRetryDelay() const { return m_acceptRetryDelay; }

private:
    // The bytes of one connection read so far, the request and what follows it.
    struct Pending
    {
        QByteArray bytes;
        qsizetype scanned = 0;   // where the search for the request's end goes on
        QTimer *timer = nullptr; // the handshake timeout, a child of the socket
    };
    using Peer = std::pair<QHostAddress, quint16>;

    void makeWebSocketServer(bool secure);
    // Takes the connections the kernel holds, as many as AcceptsPerTurn.
    void acceptConnections();
    void retryAcceptLater(int error);
    // Starts reading the upgrade request of an accepted connection.
    void take(QTcpSocket *socket);
    void readRequest(QTcpSocket *socket);
    void handOver(QTcpSocket *socket, Pending &pending, qsizetype requestSize);
    void onUpgraded();

    Upgraded m_upgraded;
    Incoming m_incoming;
    bool m_holdFrames = false;
    QSslConfiguration m_sslConfiguration;
    std::chrono::milliseconds m_handshakeTimeout{ 10000 };
    QString m_errorString;
    // Listens; the acceptor takes its connections itself (see acceptConnections()). The
    // parent of the sockets in their handshake.
    std::unique_ptr<QTcpServer> m_tcpServer = std::make_unique<QTcpServer>();
    // Tells when connections wait to be accepted, while listening.
    std::unique_ptr<QSocketNotifier> m_acceptNotifier;
    // Enables m_acceptNotifier again after a failed accept.
    QTimer m_acceptRetry;
    std::chrono::milliseconds m_acceptRetryDelay{ 0 };
    qsizetype m_acceptFailures = 0;
    // Reads the requests the acceptor hands over; never listens.
    std::unique_ptr<QWebSocketServer> m_webSocketServer;
    // Connections whose request is not complete yet.
    QHash<QTcpSocket *, Pending> m_pending;
    // What followed each request handed over, until Qt has upgraded its socket. QWebSocket
    // does not tell its TCP socket; the peer's address and port do while that socket lives.
    struct Held
    {
        QPointer<QTcpSocket> socket;
        QByteArray bytes;
    };
    QHash<Peer, Held> m_held;
};

} // namespace QtNotif
