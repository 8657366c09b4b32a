#include "socketlink_p.h"

#include "writethroughsocket_p.h"

#include <QtCore/QTimer>
#include <QtNetwork/QSslSocket>

#ifdef Q_OS_LINUX
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#endif

namespace QtNotif {

namespace {

// How long a closing socket may take to finish the close handshake before it is aborted.
constexpr int CloseTimeoutMs = 5000;

} // namespace

SocketLink::SocketLink(QWebSocket *socket, QTcpSocket *tcpSocket)
    : m_socket(socket), m_tcpSocket(tcpSocket)
{
#ifdef Q_OS_LINUX
    if (tcpSocket && !qobject_cast<QSslSocket *>(tcpSocket))
        m_descriptor = tcpSocket->socketDescriptor();
#endif
    m_writeThrough = dynamic_cast<WriteThroughSocket *>(tcpSocket) != nullptr;
}

void SocketLink::releaseReadBuffer()
{
    if (m_writeThrough && m_tcpSocket)
        static_cast<WriteThroughSocket *>(m_tcpSocket.data())->releaseReadBuffer();
}

void SocketLink::setMaxFrameSize(qint64 bytes)
{
    m_socket->setMaxAllowedIncomingMessageSize(quint64(bytes));
    m_socket->setMaxAllowedIncomingFrameSize(quint64(bytes));
}

void SocketLink::close(QObject *context, QObject *owner, quint16 closeCode, const QString &reason)
{
    QWebSocket *socket = m_socket.release();
    QObject::disconnect(socket, nullptr, context, nullptr);
    socket->setParent(owner);
    QObject::connect(socket, &QWebSocket::disconnected, socket, &QObject::deleteLater);
    QTimer::singleShot(CloseTimeoutMs, socket, [socket] {
        socket->abort();
        socket->deleteLater();
    });
    socket->close(QWebSocketProtocol::CloseCode(closeCode), reason);
}

void SocketLink::writeFrames(const WireFrame *frames, std::size_t count)
{
    QWebSocket *socket = m_socket.get();
    if (socket->state() != QAbstractSocket::ConnectedState)
        return;
    // QWebSocket writes whole frames to the same TCP socket, so frames written here between its
    // own stay whole and in order. Past the size at which QWebSocket would fragment a message,
    // it sends the text itself.
    const quint64 fragmentSize = socket->outgoingFrameSize();
    std::size_t next = 0;
    while (next < count) {
        std::size_t end = next;
        if (m_tcpSocket) {
            while (end < count && quint64(frames[end].payload().size()) <= fragmentSize)
                ++end;
            writeRaw(frames + next, end - next);
        }
        if (end < count)
            socket->sendTextMessage(frames[end++].text());
        next = end;
    }
}

void SocketLink::writeRaw(const WireFrame *frames, std::size_t count)
{
    if (count == 0)
        return;
    QTcpSocket *tcpSocket = m_tcpSocket.data();
    std::size_t next = 0; // the first frame not fully written
    qint64 offset = 0;    // how much of it was written
#ifdef Q_OS_LINUX
    // Straight to the kernel when Qt holds nothing back for this socket: the frames go in one
    // system call, as Qt's own flush would make, gathered from where they are, without enabling
    // and disabling the socket's write notifier (in GLib's event dispatcher that costs time in
    // proportion to the number of sockets). What the kernel does not take, and any error, is
    // left to Qt.
    if (m_descriptor >= 0 && tcpSocket->bytesToWrite() == 0) {
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
    for (; next < count; ++next, offset = 0) {
        const QByteArray &frame = frames[next].bytes();
        tcpSocket->write(frame.constData() + offset, frame.size() - offset);
    }
}

} // namespace QtNotif
