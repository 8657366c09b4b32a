#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QHash>
#include <QtCore/QSet>
#include <QtCore/QSocketNotifier>
#include <QtCore/QTimer>
#include <QtCore/QUrl>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

#include <chrono>
#include <functional>
#include <memory>

namespace QtNotif {

class TlsContext;
class TlsSocket;
struct Upgrade;

// Accepts TCP (or TLS) connections, reads their WebSocket upgrade requests (Upgrade) and
// answers them. A request is read whole before it is answered, and whatever the client sends
// after it, in the same TCP segment or not, waits in the socket for the connection's
// SocketLink: a client may send its first requests without waiting for the welcome.
class Acceptor
{
public:
    // Called with each upgraded socket, which the callee now owns, and the upgrade. Its
    // "101 Switching Protocols" (upgrade.response) is not written yet: the callee writes it
    // ahead of its first frames, in the same write (SocketLink's preamble). The socket reads at
    // most MaxRequestSize bytes more from the network until its link starts
    // (SocketLink::start()).
    using Upgraded = std::function<void(QTcpSocket *socket, const Upgrade &upgrade)>;

    // The largest upgrade request read (its headers, a JWT among them). A larger one gets
    // the HTTP status 431.
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

    // Null serves ws://. Switching between ws:// and wss:// makes a new listening socket, so
    // the caller does it only while not listening; a new context for wss:// (a new
    // certificate) applies to the next connections.
    void setTlsContext(std::shared_ptr<TlsContext> context);
    const std::shared_ptr<TlsContext> &tlsContext() const { return m_tls; }
    // How long a TCP connection may take to send its upgrade request once accepted (and,
    // with wss://, to finish its TLS handshake before that, as long again).
    void setHandshakeTimeout(std::chrono::milliseconds timeout);
    std::chrono::milliseconds handshakeTimeout() const { return m_handshakeTimeout; }
    // Connections accepted and not yet upgraded, in their TLS handshake or after it.
    qsizetype handshakesInProgress() const { return m_pending.size() + m_encrypting.size(); }
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
    // Takes the connections the kernel holds, as many as AcceptsPerTurn.
    void acceptConnections();
    void retryAcceptLater(int error);
    // Starts reading the upgrade request of an accepted connection.
    void take(QTcpSocket *socket);
    void readRequest(QTcpSocket *socket);
    // What socket has received of its request, decrypted where it is TLS; false when the
    // TLS layer failed.
    static bool readReceived(QTcpSocket *socket, QByteArray &bytes);
    void answer(QTcpSocket *socket, QByteArray bytes, qsizetype requestSize);

    Upgraded m_upgraded;
    Incoming m_incoming;
    std::shared_ptr<TlsContext> m_tls;
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
    // Connections whose request is not complete yet.
    QHash<QTcpSocket *, Pending> m_pending;
    // Connections in their TLS handshake, before m_pending.
    QSet<TlsSocket *> m_encrypting;
};

} // namespace QtNotif
