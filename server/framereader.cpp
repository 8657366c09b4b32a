#include "framereader_p.h"

#include "bytequeue_p.h"

#include <QtCore/QByteArrayView>
#include <QtCore/QIODevice>
#include <QtCore/QtEndian>

#include <utility>

namespace QtNotif {

namespace {

enum Opcode : quint8 {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
};

// The longest header of a client frame: 2 bytes, 8 of extended length, 4 of masking key.
constexpr qsizetype MaxHeaderSize = 14;
constexpr quint64 MaxControlPayload = 125;
constexpr quint16 NoStatusCode = 1005;

// Codes a peer may send in a close frame (RFC 6455, 7.4): those of the RFC but the three it
// reserves for reports (1004, 1005, 1006), and 3000 to 4999 for libraries and applications.
// As Qt's QWebSocket does, it refuses 1012 to 2999, which the RFC leaves to future revisions.
bool isValidCloseCode(quint16 code)
{
    return code >= 1000 && code < 5000 && code != 1004 && code != 1005 && code != 1006
           && (code < 1012 || code >= 3000);
}

void unmask(QByteArray &payload, const uchar *key)
{
    char *bytes = payload.data();
    const qsizetype size = payload.size();
    for (qsizetype i = 0; i < size; ++i)
        bytes[i] = char(uchar(bytes[i]) ^ key[i & 3]);
}

} // namespace

FrameReader::Result FrameReader::read(QIODevice &device, Message &message)
{
    return readFrom(device, message);
}

FrameReader::Result FrameReader::read(ByteQueue &bytes, Message &message)
{
    return readFrom(bytes, message);
}

// Source reads as a QIODevice does: peek(), bytesAvailable(), skip(), read().
template<typename Source>
FrameReader::Result FrameReader::readFrom(Source &device, Message &message)
{
    if (m_failureCode != 0)
        return Result::Failed;
    for (;;) {
        uchar header[MaxHeaderSize];
        const qint64 peeked = device.peek(reinterpret_cast<char *>(header), MaxHeaderSize);
        if (peeked < 2)
            return Result::NeedMore;
        const bool fin = header[0] & 0x80;
        const quint8 opcode = header[0] & 0x0f;
        if (header[0] & 0x70)
            return fail(1002, "reserved bits set");
        if (!(header[1] & 0x80))
            return fail(1002, "an unmasked frame from a client");
        const bool control = opcode & 0x8;
        if (opcode != Continuation && opcode != Text && opcode != Binary && opcode != Close
            && opcode != Ping && opcode != Pong) {
            return fail(1002, "a reserved opcode");
        }
        const quint8 shortLength = header[1] & 0x7f;
        const qsizetype lengthBytes = shortLength == 126 ? 2 : shortLength == 127 ? 8 : 0;
        const qsizetype headerSize = 2 + lengthBytes + 4;
        if (peeked < headerSize)
            return Result::NeedMore;
        quint64 length = shortLength;
        if (lengthBytes == 2) {
            length = qFromBigEndian<quint16>(header + 2);
            if (length < 126)
                return fail(1002, "a length not in its fewest bytes");
        } else if (lengthBytes == 8) {
            length = qFromBigEndian<quint64>(header + 2);
            if (length >> 63)
                return fail(1002, "a length with its most significant bit set");
            if (length <= 0xffff)
                return fail(1002, "a length not in its fewest bytes");
        }
        if (control) {
            if (!fin)
                return fail(1002, "a fragmented control frame");
            if (length > MaxControlPayload)
                return fail(1002, "a control frame over 125 bytes");
        } else {
            if (opcode == Continuation && m_messageOpcode == 0)
                return fail(1002, "a continuation frame outside a message");
            if (opcode != Continuation && m_messageOpcode != 0)
                return fail(1002, "a new message before the end of the last one");
            if (length > quint64(m_maxMessageSize - m_fragments.size()))
                return fail(1009, "a message over the size limit");
        }
        // The whole frame, or nothing of it.
        if (quint64(device.bytesAvailable()) < headerSize + length)
            return Result::NeedMore;
        device.skip(headerSize);
        QByteArray payload = device.read(qint64(length));
        unmask(payload, header + headerSize - 4);

        if (control) {
            message.closeCode = 0;
            if (opcode == Ping) {
                message.kind = Kind::Ping;
            } else if (opcode == Pong) {
                message.kind = Kind::Pong;
            } else {
                message.kind = Kind::Close;
                if (payload.size() == 1)
                    return fail(1002, "a close frame of one byte");
                if (payload.isEmpty()) {
                    message.closeCode = NoStatusCode;
                } else {
                    message.closeCode = qFromBigEndian<quint16>(payload.constData());
                    if (!isValidCloseCode(message.closeCode))
                        return fail(1002, "an invalid close code");
                    payload.remove(0, 2);
                    if (!QByteArrayView(payload).isValidUtf8())
                        return fail(1007, "a close reason that is not UTF-8");
                }
            }
            message.payload = std::move(payload);
            return Result::Message;
        }

        if (!fin) {
            if (opcode != Continuation)
                m_messageOpcode = opcode;
            m_fragments.append(payload);
            continue;
        }
        quint8 messageOpcode = opcode;
        if (opcode == Continuation) {
            messageOpcode = std::exchange(m_messageOpcode, 0);
            QByteArray whole = std::exchange(m_fragments, QByteArray());
            whole.append(payload);
            payload = std::move(whole);
        }
        if (messageOpcode == Text && !QByteArrayView(payload).isValidUtf8())
            return fail(1007, "text that is not UTF-8");
        message.kind = messageOpcode == Text ? Kind::Text : Kind::Binary;
        message.payload = std::move(payload);
        message.closeCode = 0;
        return Result::Message;
    }
}

FrameReader::Result FrameReader::fail(quint16 code, const char *reason)
{
    m_failureCode = code;
    m_failureReason = reason;
    m_fragments = QByteArray();
    m_messageOpcode = 0;
    return Result::Failed;
}

} // namespace QtNotif
