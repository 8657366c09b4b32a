#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QString>

QT_BEGIN_NAMESPACE
class QIODevice;
QT_END_NAMESPACE

namespace QtNotif {

class ByteQueue;

// Reads what a client sends over a WebSocket connection, as its server (RFC 6455, section 5):
// whole messages and control frames, from whatever part of them the network has delivered.
// It takes the bytes of a frame from the device only once the whole frame is there, so an
// idle connection's reader holds nothing: the device buffers what has come of the next frame,
// and the reader the fragments of a message that is not complete.
//
// Every check the RFC asks of a server fails the connection, with the close code it names:
// 1002 for a frame the RFC forbids (reserved bits or opcodes, an unmasked frame, a length not
// in its fewest bytes, a fragmented or long control frame, fragments out of order, an invalid
// close code); 1007 for text, or a close reason, that is not UTF-8; 1009 for a message over
// the size limit, as soon as its header declares it. A text message is checked whole, so a
// character may span its fragments.
class FrameReader
{
public:
    enum class Kind : quint8 { Text, Binary, Ping, Pong, Close };

    struct Message
    {
        Kind kind = Kind::Text;
        // The UTF-8 of a text message (valid), the bytes of a binary one, a ping's or pong's
        // application data, or a close frame's reason (valid UTF-8).
        QByteArray payload;
        // Of a close frame: the client's code, 1005
        // (QWebSocketProtocol::CloseCodeMissingStatusCode) when it gave none.
        quint16 closeCode = 0;
    };

    enum class Result : quint8 {
        NeedMore, // wait for more bytes, and read again
        Message,  // message is set; read again for the next
        Failed,   // failureCode() and failureReason() tell why; read nothing more
    };

    // Consumes the next message or control frame from device, if all of it has come, and any
    // fragments before it.
    Result read(QIODevice &device, Message &message);
    // The same from the plaintext of a TLS connection.
    Result read(ByteQueue &bytes, Message &message);

    // After Failed: the code to close the connection with, and the reason.
    quint16 failureCode() const { return m_failureCode; }
    QString failureReason() const { return QString::fromLatin1(m_failureReason); }

    // Whether a message has begun (fragments read) and not ended.
    bool inMessage() const { return m_messageOpcode != 0; }

    // The largest message, and so frame, taken; larger ones fail with 1009. 64 KiB by default.
    void setMaxMessageSize(qint64 bytes) { m_maxMessageSize = bytes; }
    qint64 maxMessageSize() const { return m_maxMessageSize; }

private:
    template<typename Source>
    Result readFrom(Source &source, Message &message);
    Result fail(quint16 code, const char *reason);

    QByteArray m_fragments; // the payload so far of a message in fragments
    qint64 m_maxMessageSize = 64 * 1024;
    const char *m_failureReason = "";
    quint16 m_failureCode = 0;
    quint8 m_messageOpcode = 0; // of the message in fragments: text (1) or binary (2); 0 none
};

} // namespace QtNotif
