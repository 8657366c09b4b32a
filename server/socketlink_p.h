#pragma once

#include "wireframe_p.h"

#include <QtCore/QPointer>
#include <QtNetwork/QTcpSocket>
#include <QtWebSockets/QWebSocket>

#include <memory>

namespace QtNotif {

struct DeleteLater
{
    void operator()(QObject *object) const { object->deleteLater(); }
};

// The socket of one welcomed client: what the server writes to it, and how it closes it. Lives
// in the thread of its socket, the server's or a worker's (see Worker), and is used there only.
class SocketLink
{
public:
    // Takes socket, and reaches the TCP (or TLS) socket it reads and writes, which it owns (null
    // where there is none: the fuzzer's connections).
    SocketLink(QWebSocket *socket, QTcpSocket *tcpSocket);

    QWebSocket *socket() const { return m_socket.get(); }
    QTcpSocket *tcpSocket() const { return m_tcpSocket.data(); }
    // Hands the socket over to the caller, who now owns it.
    QWebSocket *release() { return m_socket.release(); }

    // Writes frames after everything written before: notifications made once for many clients,
    // and this client's own replies alike. Their bytes go to the TCP socket as they are, in one
    // gathering system call where possible (plain TCP on Linux). Frames QWebSocket would fragment,
    // and all of them when there is no TCP socket, go through QWebSocket::sendTextMessage(); none
    // is sent once the socket is closing (no data frame may follow its close frame), as QWebSocket
    // would not send them either.
    void writeFrames(const WireFrame *frames, std::size_t count);
    // Bytes Qt holds for the socket: what the kernel did not take yet.
    qint64 bytesToWrite() const { return m_socket->bytesToWrite(); }
    void flush() { m_socket->flush(); }
    void ping() { m_socket->ping(); }
    void setMaxFrameSize(qint64 bytes);
    // Called once frames of the client have been read: gives back the read buffer's block if
    // nothing else waits in it (WriteThroughSocket::releaseReadBuffer(); TLS sockets keep
    // theirs).
    void releaseReadBuffer();
    // Disconnects the slots of context from the socket, and closes it gracefully: it then
    // belongs to owner, which deletes it if it still lives when owner goes. The socket is
    // deleted once disconnected, or aborted if its close handshake takes more than 5 s.
    void close(QObject *context, QObject *owner, quint16 closeCode, const QString &reason);

private:
    // Writes frames none of which QWebSocket would fragment to the TCP socket.
    void writeRaw(const WireFrame *frames, std::size_t count);

    std::unique_ptr<QWebSocket, DeleteLater> m_socket;
    QPointer<QTcpSocket> m_tcpSocket;
    // The TCP socket's descriptor where frames are written to it directly (plain TCP on Linux),
    // -1 elsewhere; see writeRaw().
    qintptr m_descriptor = -1;
    bool m_writeThrough = false; // m_tcpSocket is a WriteThroughSocket
};

} // namespace QtNotif
