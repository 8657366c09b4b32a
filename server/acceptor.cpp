#include "acceptor_p.h"

#include "logging_p.h"
#include "tlssocket_p.h"
#include "upgrade_p.h"

#include <QtNotif/protocol.h>

#include <QtCore/QTimer>

#include <cerrno>
#include <sys/resource.h>
#include <sys/socket.h>

namespace QtNotif {

namespace {

constexpr QByteArrayView EndOfRequest("\r\n\r\n");

const char RequestTooLarge[] = "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                               "Connection: close\r\nContent-Length: 0\r\n\r\n";

// A failed TLS handshake ends that TCP connection alone, before any WebSocket frame (so
// without close code).
void logTlsFailure(const QTcpSocket *socket, const QString &reason, bool clientLeft)
{
    const QHostAddress peer = socket->peerAddress();
    if (peer.isNull()) // aborted at the handshake timeout, which is not logged either
        return;
    if (clientLeft)
        qCInfo(lcServer) << peer << "left in the TLS handshake: does it trust the certificate?";
    else
        qCInfo(lcServer) << "TLS handshake with" << peer << "failed:" << reason;
}

// Each connection is a file descriptor, and a process may open 1024 by default (the soft
// limit of RLIMIT_NOFILE on most Linux systems), far below what a server holds. Raises the
// soft limit to the hard one, which the process may do by itself, as the Go and .NET runtimes
// do at start.
void raiseFileLimit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
        return;
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
        qCWarning(lcServer) << "cannot raise the limit of open files from" << quint64(before) << ":"
                            << qt_error_string(errno);
        return;
    }
    qCInfo(lcServer) << "raised the limit of open files from" << quint64(before) << "to"
                     << quint64(limit.rlim_cur);
}

} // namespace

Acceptor::Acceptor(Upgraded upgraded) : m_upgraded(std::move(upgraded))
{
    m_acceptRetry.setSingleShot(true);
    m_acceptRetry.callOnTimeout([this] {
        if (m_acceptNotifier)
            m_acceptNotifier->setEnabled(true);
    });
}

Acceptor::~Acceptor() = default;

void Acceptor::setIncoming(Incoming incoming)
{
    m_incoming = std::move(incoming);
}

void Acceptor::adopt(qintptr descriptor)
{
    if (!m_tls) {
        auto *socket = new WriteThroughSocket(m_tcpServer.get());
        socket->setSocketDescriptor(descriptor);
        take(socket);
        return;
    }
    // The TLS handshake within the handshake timeout, then the upgrade request.
    auto *socket = new TlsSocket(m_tls, m_tcpServer.get());
    if (!socket->setSocketDescriptor(descriptor)) {
        delete socket;
        return;
    }
    auto *timer = new QTimer(socket);
    timer->setSingleShot(true);
    QObject::connect(timer, &QTimer::timeout, socket, [socket] {
        socket->abort();
        socket->deleteLater();
    });
    timer->start(m_handshakeTimeout);
    m_encrypting.insert(socket);
    QObject::connect(socket, &QObject::destroyed, m_tcpServer.get(),
                     [this, socket] { m_encrypting.remove(socket); });
    QObject::connect(socket, &TlsSocket::handshakeFailed, timer,
                     [socket](const QString &reason, bool clientLeft) {
                         logTlsFailure(socket, reason, clientLeft);
                         socket->abort();
                         socket->deleteLater();
                     });
    QObject::connect(socket, &TlsSocket::encrypted, timer, [this, socket, timer] {
        m_encrypting.remove(socket);
        QObject::disconnect(socket, &QObject::destroyed, m_tcpServer.get(), nullptr);
        QObject::disconnect(socket, nullptr, timer, nullptr);
        timer->deleteLater();
        take(socket);
    });
    socket->startServerEncryption();
}

bool Acceptor::listen(const QHostAddress &address, quint16 port)
{
    // Qt's default backlog of 50 overflows when a few thousand clients connect at once (after
    // a restart, say): their SYNs are dropped and retried after a second or more. The kernel
    // caps it at net.core.somaxconn.
    m_tcpServer->setListenBacklogSize(ListenBacklog);
    raiseFileLimit();
    if (!m_tcpServer->listen(address, port)) {
        m_errorString = m_tcpServer->errorString();
        return false;
    }
    m_errorString.clear();
    // QTcpServer listens, the acceptor accepts: when accept() fails for want of a file
    // descriptor, Qt 6.4 tries again at once, and again in every turn of the event loop for
    // as long as it lasts (strace counted 14 000 calls a second), so a server out of
    // descriptors spends a core on it while its clients wait.
    m_tcpServer->pauseAccepting();
    m_acceptNotifier = std::make_unique<QSocketNotifier>(m_tcpServer->socketDescriptor(),
                                                         QSocketNotifier::Read);
    QObject::connect(m_acceptNotifier.get(), &QSocketNotifier::activated, m_tcpServer.get(),
                     [this] { acceptConnections(); });
    return true;
}

void Acceptor::close()
{
    m_acceptNotifier.reset();
    m_acceptRetry.stop();
    m_acceptRetryDelay = {};
    m_tcpServer->close();
    // Connections still in their handshake would otherwise be welcomed by a closed server.
    const QList<QTcpSocket *> pending = m_pending.keys();
    for (QTcpSocket *socket : pending)
        socket->abort();
    m_pending.clear();
    const QList<TlsSocket *> encrypting = m_encrypting.values();
    for (TlsSocket *socket : encrypting)
        socket->abort(); // handshakeFailed(): deleted
    m_encrypting.clear();
}

bool Acceptor::isListening() const
{
    return m_tcpServer->isListening();
}

quint16 Acceptor::port() const
{
    return m_tcpServer->serverPort();
}

QUrl Acceptor::url() const
{
    if (!isListening())
        return {};
    QUrl url;
    url.setScheme(m_tls ? QStringLiteral("wss") : QStringLiteral("ws"));
    url.setHost(m_tcpServer->serverAddress().toString());
    url.setPort(port());
    return url;
}

QString Acceptor::errorString() const
{
    return m_errorString;
}

void Acceptor::setTlsContext(std::shared_ptr<TlsContext> context)
{
    m_tls = std::move(context);
}

void Acceptor::setHandshakeTimeout(std::chrono::milliseconds timeout)
{
    m_handshakeTimeout = timeout;
}

void Acceptor::acceptConnections()
{
    const int listening = int(m_tcpServer->socketDescriptor());
    for (int i = 0; i < AcceptsPerTurn; ++i) {
        const int descriptor = ::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC);
        if (descriptor >= 0) {
            if (m_acceptRetryDelay != std::chrono::milliseconds::zero()) {
                m_acceptRetryDelay = {};
                qCInfo(lcServer) << "accepting connections again";
            }
            if (m_incoming)
                m_incoming(descriptor);
            else
                adopt(descriptor);
            continue;
        }
        const int error = errno;
        switch (error) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return;
        case EINTR:
        case ECONNABORTED:
        // A connection that failed before it was taken: Linux reports its network error here.
        case EPROTO:
        case ENOPROTOOPT:
        case ENETDOWN:
        case ENETUNREACH:
        case EHOSTDOWN:
        case EHOSTUNREACH:
        case ENONET:
        case EOPNOTSUPP:
        case EPERM: // a firewall rule
            qCDebug(lcServer) << "accept() failed:" << qt_error_string(error);
            continue;
        default: // EMFILE, ENFILE, ENOBUFS, ENOMEM
            return retryAcceptLater(error);
        }
    }
}

void Acceptor::retryAcceptLater(int error)
{
    // The connection waits in the kernel's backlog, with those behind it, until a descriptor
    // is free: when connections go. Log it once, and try less often the longer it lasts.
    ++m_acceptFailures;
    if (m_acceptRetryDelay == std::chrono::milliseconds::zero()) {
        qCWarning(lcServer).noquote().nospace()
                << "cannot accept a connection: " << qt_error_string(error)
                << "; trying again every " << LastAcceptRetry.count()
                << " ms at most (docs/guide.md, \"File descriptors\")";
        m_acceptRetryDelay = FirstAcceptRetry;
    } else {
        m_acceptRetryDelay = std::min(2 * m_acceptRetryDelay, LastAcceptRetry);
    }
    m_acceptNotifier->setEnabled(false);
    m_acceptRetry.start(m_acceptRetryDelay);
}

void Acceptor::take(QTcpSocket *socket)
{
    // Notifications are small frames sent as they happen to clients that mostly only
    // read: Nagle's algorithm would hold one back until the client's delayed ACK, up to
    // 40 ms (docs/performance.md measured p99 45 ms, and a quarter of the throughput).
    socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
    // Never more than a request's worth buffered before the request is complete.
    socket->setReadBufferSize(MaxRequestSize);
    auto *timer = new QTimer(socket);
    timer->setSingleShot(true);
    QObject::connect(timer, &QTimer::timeout, socket, [socket] {
        qCDebug(lcServer) << socket->peerAddress() << "sent no upgrade request in time";
        socket->abort();
    });
    timer->start(m_handshakeTimeout);
    m_pending.insert(socket, { QByteArray(), 0, timer });
    QObject::connect(socket, &QTcpSocket::readyRead, socket,
                     [this, socket] { readRequest(socket); });
    QObject::connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
    QObject::connect(socket, &QObject::destroyed, m_tcpServer.get(),
                     [this, socket] { m_pending.remove(socket); });
    // The request may have come with the end of the TLS handshake, read by then.
    if (socket->bytesAvailable() > 0 || m_tls)
        readRequest(socket);
}

void Acceptor::readRequest(QTcpSocket *socket)
{
    const auto it = m_pending.find(socket);
    if (it == m_pending.end())
        return;
    Pending &pending = *it;
    if (!readReceived(socket, pending.bytes)) {
        qCInfo(lcServer) << "dropped" << socket->peerAddress() << ":" << socket->errorString();
        m_pending.erase(it);
        socket->abort(); // and deleted once disconnected
        return;
    }
    const qsizetype end = pending.bytes.indexOf(EndOfRequest, pending.scanned);
    const qsizetype requestSize = end < 0 ? pending.bytes.size() : end + EndOfRequest.size();
    if (end >= 0 && requestSize <= MaxRequestSize) {
        delete pending.timer; // the handshake timeout
        QByteArray bytes = std::exchange(pending.bytes, {});
        m_pending.erase(it);
        return answer(socket, std::move(bytes), requestSize);
    }
    if (requestSize > MaxRequestSize) {
        qCInfo(lcServer) << "refused" << socket->peerAddress() << ": an upgrade request over"
                         << MaxRequestSize << "bytes";
        m_pending.erase(it);
        QObject::disconnect(socket, &QTcpSocket::readyRead, nullptr, nullptr);
        socket->write(RequestTooLarge);
        socket->disconnectFromHost();
        return;
    }
    pending.scanned = std::max<qsizetype>(0, pending.bytes.size() - EndOfRequest.size() + 1);
}

bool Acceptor::readReceived(QTcpSocket *socket, QByteArray &bytes)
{
    auto *tls = qobject_cast<TlsSocket *>(socket);
    if (!tls) {
        bytes += socket->readAll();
        return true;
    }
    if (!tls->decrypt())
        return false;
    bytes += tls->plaintext().readAll();
    return true;
}

void Acceptor::answer(QTcpSocket *socket, QByteArray bytes, qsizetype requestSize)
{
    QObject::disconnect(socket, &QTcpSocket::readyRead, nullptr, nullptr);
    QObject::disconnect(socket, &QObject::destroyed, m_tcpServer.get(), nullptr);
    const Upgrade upgrade = Upgrade::read(
            QByteArrayView(bytes).first(requestSize), m_tls != nullptr, socket->peerAddress(),
            QByteArrayView(Protocol::Subprotocol.data(), Protocol::Subprotocol.size()));
    if (upgrade.status != 101) {
        qCInfo(lcServer) << "refused" << socket->peerAddress() << "with HTTP" << upgrade.status
                         << ":" << upgrade.error;
        socket->write(upgrade.response);
        socket->disconnectFromHost(); // and deleted once disconnected
        return;
    }
    // The socket goes to the callee, and lives on with its client.
    QObject::disconnect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
    socket->setParent(nullptr);
    // What followed the request goes back in, for the connection's link to read.
    if (auto *tls = qobject_cast<TlsSocket *>(socket)) {
        tls->plaintext().append(bytes.constData() + requestSize, bytes.size() - requestSize);
    } else {
        for (qsizetype i = bytes.size() - 1; i >= requestSize; --i)
            socket->ungetChar(bytes.at(i));
    }
    m_upgraded(socket, upgrade);
}

} // namespace QtNotif
