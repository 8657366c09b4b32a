#pragma once

#include "framereader_p.h"
#include "wireframe_p.h"

#include <QtNetwork/QTcpSocket>

namespace QtNotif {

class TlsSocket;

// The WebSocket connection of one upgraded client, over its TCP (or TLS) socket: it reads the
// client's frames (FrameReader), answers its pings, writes what the server sends, and closes
// the connection with the close handshake (RFC 6455, 7). Over TLS, it reads and writes the
// plaintext of its TlsSocket. Lives in the thread of its socket, the
// server's or a worker's (see Worker), and is used there only.
//
// It is the server's own WebSocket layer rather than QWebSocket, which costs a connection
// about 6 KB more (docs/performance.md, "Memory per idle connection").
class SocketLink
{
public:
    // Told what the client sends, for all the links of a server's thread or of a worker; tag
    // tells the links apart. A call may destroy the link or close it.
    class Receiver
    {
    public:
        virtual void linkText(quint64 tag, const QByteArray &utf8) = 0;
        virtual void linkBinary(quint64 tag) = 0;
        virtual void linkPong(quint64 tag) = 0;
        // The link answered a ping of the client: what waits for the client grew.
        virtual void linkPinged(quint64 tag) = 0;
        // The client went (closeCode 0), or closed the connection or broke the protocol: the
        // receiver closes the link with closeCode and reason (after what it still has for the
        // client, if it likes), or destroys it.
        virtual void linkEnded(quint64 tag, quint16 closeCode, const QString &reason) = 0;

    protected:
        ~Receiver() = default;
    };

    // How long a closing connection may take to finish its close handshake before it is
    // aborted.
    static constexpr int CloseTimeoutMs = 5000;
    // The largest buffer a thread keeps to gather the frames it writes at once to a TLS
    // connection; a larger one is freed after the write.
    static constexpr qsizetype MaxKeptBatch = 64 * 1024;

    // Takes socket, upgraded, which the link now owns (null where there is none: the fuzzer's
    // connections). It reads nothing before start(). preamble, the upgrade's 101 response, goes
    // ahead of the first frames written, in the same write: a client's welcome costs one
    // system call (and over TLS one record), not two.
    explicit SocketLink(QTcpSocket *socket, QByteArray preamble = {});
    // Aborts the socket if the link still holds it (see close()).
    ~SocketLink();
    Q_DISABLE_COPY_MOVE(SocketLink)

    // Reads the frames the socket holds already and those that come, and tells receiver of
    // them as tag; tells it at once if the client went meanwhile.
    void start(Receiver *receiver, quint64 tag);

    QTcpSocket *tcpSocket() const { return m_socket; }
    // Disconnects the link from its socket and hands the socket over to the caller, who now
    // owns it; the link holds nothing more.
    QTcpSocket *release();

    // Writes frames after everything written before: notifications made once for many clients,
    // and this client's own replies alike. Their bytes go to the TCP socket as they are, in one
    // gathering system call where possible (plain TCP on Linux). None is written once the link
    // is closing.
    void writeFrames(const WireFrame *frames, std::size_t count);
    // Bytes Qt holds for the socket: what the kernel did not take yet.
    qint64 bytesToWrite() const
    {
        if (!m_qtMayHold)
            return 0;
        const qint64 held = m_socket ? m_socket->bytesToWrite() : 0;
        if (held == 0 && !m_tls)
            m_qtMayHold = false;
        return held;
    }
    void flush()
    {
        if (m_socket)
            m_socket->flush();
    }
    void ping();
    // The largest message the client may send; a larger one closes the connection with 1009.
    void setMaxFrameSize(qint64 bytes) { m_reader.setMaxMessageSize(bytes); }
    // Closes the connection gracefully: writes the close frame, then hands the socket to
    // owner, which deletes it if it still lives when owner goes. The socket reads until the
    // client's close frame and is disconnected then, or aborted after CloseTimeoutMs, and is
    // deleted once disconnected.
    void close(QObject *owner, quint16 closeCode, const QString &reason);

private:
    void onReadyRead();
    void onDisconnected();

    QTcpSocket *m_socket = nullptr;
    TlsSocket *m_tls = nullptr; // m_socket where it is TLS
    Receiver *m_receiver = nullptr;
    quint64 m_tag = 0;
    FrameReader m_reader;
    // Set while onReadyRead() runs: cleared by the destructor, for a receiver that destroys
    // the link.
    bool *m_alive = nullptr;
    // The TCP socket's descriptor where frames are written to it directly (plain TCP on Linux),
    // -1 elsewhere; see writeFrames().
    qintptr m_descriptor = -1;
    QByteArray m_preamble;        // written ahead of the first frames, then dropped
    bool m_writeThrough = false;  // m_socket is a WriteThroughSocket
    bool m_closeReceived = false; // the client's close frame was read
    // False once Qt was seen to hold nothing for a plain TCP socket, until the link leaves
    // bytes to Qt again: every write to the socket goes through the link, so bytesToWrite(),
    // asked for every delivery, need not reach into the socket's private data (cache misses)
    // while the kernel takes everything. Always true over TLS, which writes through Qt.
    mutable bool m_qtMayHold = true;
};

} // namespace QtNotif
