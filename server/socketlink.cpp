#include "socketlink_p.h"

#include "logging_p.h"
#include "tlssocket_p.h"

#include <QtCore/QTimer>

#include <utility>
#include <vector>

#ifdef Q_OS_LINUX
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#endif

namespace QtNotif {

SocketLink::SocketLink(QTcpSocket *socket, QByteArray preamble)
    : m_socket(socket), m_preamble(std::move(preamble))
{
    if (!socket)
        return;
    m_tls = qobject_cast<TlsSocket *>(socket);
#ifdef Q_OS_LINUX
    if (!m_tls)
        m_descriptor = socket->socketDescriptor();
#endif
    m_writeThrough = dynamic_cast<WriteThroughSocket *>(socket) != nullptr;
}

SocketLink::~SocketLink()
{
    if (m_alive)
        *m_alive = false;
    // Later: the link may go in a signal of its socket.
    if (QTcpSocket *socket = release()) {
        socket->abort();
        socket->deleteLater();
    }
}

QTcpSocket *SocketLink::release()
{
    QTcpSocket *socket = std::exchange(m_socket, nullptr);
    m_tls = nullptr;
    m_descriptor = -1;
    if (socket)
        QObject::disconnect(socket, nullptr, socket, nullptr); // the link's connections
    return socket;
}

void SocketLink::start(Receiver *receiver, quint64 tag)
{
    m_receiver = receiver;
    m_tag = tag;
    if (!m_socket)
        return;
    m_socket->setReadBufferSize(0); // the acceptor's limit while the link did not read
    QObject::connect(m_socket, &QIODevice::readyRead, m_socket, [this] { onReadyRead(); });
    QObject::connect(m_socket, &QAbstractSocket::disconnected, m_socket,
                     [this] { onDisconnected(); });
    // What came with the upgrade request, or since; then a client that went meanwhile, whose
    // disconnected() no one heard.
    bool alive = true;
    m_alive = &alive;
    onReadyRead();
    if (!alive)
        return;
    m_alive = nullptr;
    if (m_socket && m_socket->state() != QAbstractSocket::ConnectedState)
        onDisconnected();
}

void SocketLink::onReadyRead()
{
    bool alive = true;
    bool *const outer = std::exchange(m_alive, &alive);
    const auto done = [&] {
        if (!alive) {
            if (outer)
                *outer = false;
            return true;
        }
        return false;
    };
    if (m_tls && !m_tls->decrypt()) {
        // The client's bytes are not TLS records of this connection: nothing more can be
        // read from it, nor a close frame sent.
        qCInfo(lcServer) << m_socket->peerAddress() << "broke TLS:" << m_tls->errorString();
        m_receiver->linkEnded(m_tag, 0, QString());
        if (!done())
            m_alive = outer;
        return;
    }
    FrameReader::Message message;
    while (m_socket) {
        const FrameReader::Result result = m_tls ? m_reader.read(m_tls->plaintext(), message)
                                                 : m_reader.read(*m_socket, message);
        if (result == FrameReader::Result::NeedMore)
            break;
        if (result == FrameReader::Result::Failed) {
            // The receiver closes the link, or destroys it: nothing more is read.
            m_receiver->linkEnded(m_tag, m_reader.failureCode(), m_reader.failureReason());
            if (done())
                return;
            break;
        }
        if (message.kind == FrameReader::Kind::Text) {
            m_receiver->linkText(m_tag, message.payload);
        } else if (message.kind == FrameReader::Kind::Binary) {
            m_receiver->linkBinary(m_tag);
        } else if (message.kind == FrameReader::Kind::Pong) {
            m_receiver->linkPong(m_tag);
        } else if (message.kind == FrameReader::Kind::Ping) {
            const WireFrame pong = WireFrame::pong(message.payload);
            writeFrames(&pong, 1);
            m_receiver->linkPinged(m_tag);
        } else {
            // A close frame, answered with the client's code (RFC 6455, 5.5.1), 1000 for none.
            m_closeReceived = true;
            m_receiver->linkEnded(m_tag,
                                  message.closeCode == 1005 ? quint16(1000) : message.closeCode,
                                  QString());
        }
        if (done())
            return;
    }
    m_alive = outer;
    // The read buffer's block goes back once the client's frames are read.
    if (m_writeThrough && m_socket)
        static_cast<WriteThroughSocket *>(m_socket)->releaseReadBuffer();
}

void SocketLink::onDisconnected()
{
    release()->deleteLater();
    m_receiver->linkEnded(m_tag, 0, QString());
}

void SocketLink::ping()
{
    static const WireFrame frame = WireFrame::ping();
    writeFrames(&frame, 1);
}

void SocketLink::close(QObject *owner, quint16 closeCode, const QString &reason)
{
    if (!m_socket)
        return;
    const WireFrame frame = WireFrame::close(closeCode, reason);
    writeFrames(&frame, 1);
    TlsSocket *tls = m_tls;
    QTcpSocket *socket = release();
    socket->setParent(owner);
    if (socket->state() != QAbstractSocket::ConnectedState) {
        socket->deleteLater();
        return;
    }
    QObject::connect(socket, &QAbstractSocket::disconnected, socket, &QObject::deleteLater);
    // A child of the socket, gone with it: QTimer::singleShot() would keep its timer for the
    // whole timeout, which a server closing thousands of connections a second would pile up.
    auto *timeout = new QTimer(socket);
    timeout->setSingleShot(true);
    QObject::connect(timeout, &QTimer::timeout, socket, [socket] {
        socket->abort();
        socket->deleteLater();
    });
    timeout->start(CloseTimeoutMs);
    if (m_closeReceived) {
        // The client's close frame came first: the handshake is done once this one is sent.
        socket->disconnectFromHost();
        return;
    }
    // Reads what the client still sends up to its close frame, then disconnects: closing with
    // frames of the client still coming would reset the connection, and the client could lose
    // the close frame in the reset.
    QObject::connect(
            socket, &QIODevice::readyRead, socket, [socket, tls, reader = FrameReader()]() mutable {
                if (tls && !tls->decrypt()) {
                    socket->abort();
                    return;
                }
                FrameReader::Message message;
                for (;;) {
                    const FrameReader::Result result = tls ? reader.read(tls->plaintext(), message)
                                                           : reader.read(*socket, message);
                    if (result == FrameReader::Result::NeedMore)
                        return;
                    if (result == FrameReader::Result::Failed
                        || message.kind == FrameReader::Kind::Close) {
                        socket->disconnectFromHost();
                        return;
                    }
                }
            });
    if (socket->bytesAvailable() > 0 || (tls && !tls->plaintext().isEmpty())) {
        QMetaObject::invokeMethod(
                socket, [socket] { Q_EMIT socket->readyRead(); }, Qt::QueuedConnection);
    }
}

void SocketLink::writeFrames(const WireFrame *frames, std::size_t count)
{
    if (count == 0 || !m_socket)
        return;
    if (!m_preamble.isEmpty()) {
        std::vector<WireFrame> withPreamble;
        withPreamble.reserve(count + 1);
        withPreamble.push_back(WireFrame::raw(std::exchange(m_preamble, {})));
        withPreamble.insert(withPreamble.end(), frames, frames + count);
        return writeFrames(withPreamble.data(), withPreamble.size());
    }
    QTcpSocket *tcpSocket = m_socket;
    std::size_t next = 0; // the first frame not fully written
    qint64 offset = 0;    // how much of it was written
#ifdef Q_OS_LINUX
    // Straight to the kernel when Qt holds nothing back for this socket: the frames go in one
    // system call, as Qt's own flush would make, gathered from where they are, without enabling
    // and disabling the socket's write notifier (in GLib's event dispatcher that costs time in
    // proportion to the number of sockets). What the kernel does not take, and any error, is
    // left to Qt.
    if (m_descriptor >= 0 && bytesToWrite() == 0) {
        constexpr std::size_t MaxParts = 64; // well under IOV_MAX
        while (next < count) {
            iovec parts[MaxParts];
            std::size_t parted = 0;
            qint64 size = 0;
            for (; parted < MaxParts && next + parted < count; ++parted) {
                const QByteArray &frame = frames[next + parted].bytes();
                parts[parted]
                        = { const_cast<char *>(frame.constData()), std::size_t(frame.size()) };
                size += frame.size();
            }
            msghdr message = {};
            message.msg_iov = parts;
            message.msg_iovlen = parted;
            const ssize_t sent
                    = ::sendmsg(int(m_descriptor), &message, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent <= 0)
                break;
            qint64 left = sent;
            while (left > 0 && left >= frames[next].bytes().size())
                left -= frames[next++].bytes().size();
            offset = left;
            if (sent < size)
                break;
        }
    }
#endif
    if (m_tls && count > 1) {
        // The frames in one TLS record where they fit, encrypted and sent together: a record
        // and a system call for each would cost more than the copy.
        thread_local QByteArray batch;
        batch.resize(0);
        for (std::size_t i = 0; i < count; ++i)
            batch.append(frames[i].bytes());
        m_tls->write(batch);
        if (batch.capacity() > MaxKeptBatch)
            batch = QByteArray();
        return;
    }
    if (next < count)
        m_qtMayHold = true;
    for (; next < count; ++next, offset = 0) {
        const QByteArray &frame = frames[next].bytes();
        tcpSocket->write(frame.constData() + offset, frame.size() - offset);
    }
}

} // namespace QtNotif
