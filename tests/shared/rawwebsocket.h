// A WebSocket client written by hand over QTcpSocket (or TLS), for tests that send what QWebSocket
// never would: invalid UTF-8 in text frames, reserved bits and opcodes, unmasked, fragmented or
// oversize frames, lengths declared and never sent, frames before the handshake's answer. It
// parses what the server sends back (RFC 6455, section 5.2), close frames included.
#pragma once

#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QList>
#include <QtCore/QObject>
#include <QtCore/QStringDecoder>
#include <QtCore/QtEndian>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QSslConfiguration>
#include <QtNetwork/QSslSocket>
#include <QtTest/QTest>

#include <algorithm>
#include <optional>

// How RawWebSocket::frame() writes a frame; the defaults make a valid, final, masked client frame.
struct RawFrameOptions
{
    bool fin = true;
    quint8 rsv = 0; // the three reserved bits, RSV1 = 4, RSV2 = 2, RSV3 = 1
    bool masked = true;
    quint32 maskKey = 0x37fa213d;
    // The payload length written in the header, when it differs from the payload's.
    static constexpr quint64 PayloadSize = ~quint64(0);
    quint64 declaredLength = PayloadSize;
    // Bytes of extended length: 0, 2 or 8; -1 for the fewest (what RFC 6455 requires).
    int lengthBytes = -1;
};

class RawWebSocket : public QObject
{
    Q_OBJECT
public:
    enum Opcode : quint8 {
        Continuation = 0x0,
        Text = 0x1,
        Binary = 0x2,
        Close = 0x8,
        Ping = 0x9,
        Pong = 0xA,
    };

    using FrameOptions = RawFrameOptions;

    // One frame received from the server.
    struct Frame
    {
        bool fin = true;
        quint8 rsv = 0;
        quint8 opcode = 0;
        bool masked = false; // a server must not mask its frames
        QByteArray payload;
    };

    // The bytes of one client frame.
    static QByteArray frame(quint8 opcode, const QByteArray &payload, FrameOptions options = {})
    {
        QByteArray bytes;
        bytes.append(char((options.fin ? 0x80 : 0) | ((options.rsv & 0x7) << 4) | (opcode & 0xf)));
        const quint64 length = options.declaredLength == RawFrameOptions::PayloadSize
                                       ? quint64(payload.size())
                                       : options.declaredLength;
        const char maskBit = options.masked ? char(0x80) : char(0);
        const int lengthBytes = options.lengthBytes >= 0 ? options.lengthBytes
                                : length < 126           ? 0
                                : length < 65536         ? 2
                                                         : 8;
        if (lengthBytes == 0) {
            bytes.append(char(maskBit | char(length)));
        } else if (lengthBytes == 2) {
            bytes.append(char(maskBit | 126));
            bytes.append(char(length >> 8)).append(char(length & 0xff));
        } else {
            bytes.append(char(maskBit | 127));
            for (int shift = 56; shift >= 0; shift -= 8)
                bytes.append(char((length >> shift) & 0xff));
        }
        if (!options.masked)
            return bytes + payload;
        char key[4];
        qToBigEndian(options.maskKey, key);
        bytes.append(key, 4);
        QByteArray masked = payload;
        for (qsizetype i = 0; i < masked.size(); ++i)
            masked[i] = char(masked[i] ^ key[i % 4]);
        return bytes + masked;
    }

    static QByteArray text(const QByteArray &utf8, FrameOptions options = {})
    {
        return frame(Text, utf8, options);
    }

    // The payload of a close frame: the code, then the reason.
    static QByteArray closePayload(quint16 code, const QByteArray &reason = {})
    {
        char bytes[2];
        qToBigEndian(code, bytes);
        return QByteArray(bytes, 2) + reason;
    }

    // An opening handshake offering the subprotocol (none when empty).
    static QByteArray handshakeRequest(const QByteArray &subprotocol = "qtnotif.v1")
    {
        QByteArray request = "GET / HTTP/1.1\r\n"
                             "Host: 127.0.0.1\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Key: "
                             + QByteArray(HandshakeKey)
                             + "\r\n"
                               "Sec-WebSocket-Version: 13\r\n";
        if (!subprotocol.isEmpty())
            request += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n";
        return request + "\r\n";
    }

    explicit RawWebSocket(QObject *parent = nullptr) : QObject(parent)
    {
        connect(&socket, &QTcpSocket::readyRead, this, [this] { onReadyRead(); });
        connect(&socket, &QTcpSocket::disconnected, this, [this] { disconnected = true; });
    }

    // Connects to the server on loopback; true once the TCP connection is up.
    bool connectToServer(quint16 port)
    {
        socket.connectToHost(QHostAddress::LocalHost, port);
        return socket.waitForConnected(5000);
    }

    // Connects to a wss:// server on loopback with configuration (its CA); true once the TLS
    // handshake is done, false as soon as it failed.
    bool connectToServerEncrypted(quint16 port, const QSslConfiguration &configuration)
    {
        socket.setSslConfiguration(configuration);
        socket.connectToHostEncrypted(QStringLiteral("127.0.0.1"), port);
        // Not waitForEncrypted(): the server may run in this thread.
        (void)QTest::qWaitFor(
                [this] {
                    return socket.isEncrypted()
                           || socket.state() == QAbstractSocket::UnconnectedState;
                },
                5000);
        return socket.isEncrypted();
    }

    // Connects, writes the opening handshake followed by extra (in the same write), and waits
    // for the server's answer to the handshake; true when it upgraded the connection.
    bool open(quint16 port, const QByteArray &extra = {})
    {
        if (!connectToServer(port))
            return false;
        write(handshakeRequest() + extra);
        return waitForUpgrade();
    }

    // Waits for the answer to the handshake; true when it is "101 Switching Protocols".
    bool waitForUpgrade(int timeoutMs = 5000)
    {
        (void)QTest::qWaitFor([this] { return httpStatus != 0 || disconnected; }, timeoutMs);
        return httpStatus == 101;
    }

    void write(const QByteArray &bytes) { socket.write(bytes); }

    // Stops reading from the socket, as a client that stalled; the kernel's buffers fill up
    // and the server's writes to this client wait. Reading again takes everything pending.
    void setReading(bool reading)
    {
        m_reading = reading;
        socket.setReadBufferSize(reading ? 0 : 1);
        if (reading)
            onReadyRead();
    }

    void sendText(const QByteArray &utf8, FrameOptions options = {}) { write(text(utf8, options)); }

    // The text messages received, parsed as JSON objects.
    QList<QJsonObject> messagesOf(const char *op) const
    {
        QList<QJsonObject> result;
        for (const QJsonObject &message : messages) {
            if (message.value(QLatin1String("op")).toString() == QLatin1String(op))
                result.append(message);
        }
        return result;
    }

    bool waitForMessages(const char *op, int count, int timeoutMs = 5000)
    {
        return QTest::qWaitFor([&] { return messagesOf(op).size() >= count; }, timeoutMs);
    }

    // Whether the server sent a masked frame, which RFC 6455 forbids it.
    bool anyMaskedFrame() const
    {
        return std::any_of(frames.cbegin(), frames.cend(),
                           [](const Frame &frame) { return frame.masked; });
    }

    // Waits for the server's close frame and the end of the TCP connection.
    bool waitForClose(int timeoutMs = 5000)
    {
        return QTest::qWaitFor([this] { return closeCode.has_value() && disconnected; }, timeoutMs);
    }

    QSslSocket socket; // unencrypted unless connectToServerEncrypted()
    // The server's answer to the handshake: the status code (0 until it came) and its headers.
    int httpStatus = 0;
    QByteArray httpResponse;
    QList<Frame> frames; // every frame after the handshake
    // Text frames, parsed as JSON (a qtnotif server sends each message in one frame: Qt
    // fragments only messages beyond 512 KiB).
    QList<QJsonObject> messages;
    QList<QByteArray> pongs; // payloads of pong frames
    // Answers the server's pings with pongs, as a client must; off for a test that leaves a
    // frame of its own unfinished, which a pong would complete with its bytes.
    bool answerPings = true;
    int invalidUtf8Messages = 0;      // text frames from the server that are not UTF-8
    std::optional<quint16> closeCode; // of the server's close frame; 1005 for an empty one
    QByteArray closeReason;
    bool disconnected = false;

private:
    static constexpr char HandshakeKey[] = "dGhlIHNhbXBsZSBub25jZQ==";

    void onReadyRead()
    {
        if (!m_reading)
            return;
        m_buffer += socket.readAll();
        if (httpStatus == 0) {
            const qsizetype end = m_buffer.indexOf("\r\n\r\n");
            if (end < 0)
                return;
            httpResponse = m_buffer.left(end + 4);
            m_buffer.remove(0, end + 4);
            const QList<QByteArray> statusLine
                    = httpResponse.left(httpResponse.indexOf("\r\n")).split(' ');
            httpStatus = statusLine.size() > 1 ? statusLine.at(1).toInt() : -1;
        }
        while (std::optional<Frame> next = takeFrame())
            onFrame(*next);
        m_buffer.remove(0, m_read);
        m_read = 0;
    }

    // The first whole frame of the buffer from m_read on, read past.
    std::optional<Frame> takeFrame()
    {
        const qsizetype available = m_buffer.size() - m_read;
        if (available < 2)
            return std::nullopt;
        const char *data = m_buffer.constData() + m_read;
        Frame frame;
        frame.fin = data[0] & 0x80;
        frame.rsv = (data[0] >> 4) & 0x7;
        frame.opcode = data[0] & 0xf;
        frame.masked = data[1] & 0x80;
        quint64 length = data[1] & 0x7f;
        qsizetype offset = 2;
        if (length == 126) {
            if (available < 4)
                return std::nullopt;
            length = qFromBigEndian<quint16>(data + 2);
            offset = 4;
        } else if (length == 127) {
            if (available < 10)
                return std::nullopt;
            length = qFromBigEndian<quint64>(data + 2);
            offset = 10;
        }
        const qsizetype maskOffset = offset;
        if (frame.masked)
            offset += 4;
        if (quint64(available - offset) < length)
            return std::nullopt;
        frame.payload = QByteArray(data + offset, qsizetype(length));
        if (frame.masked) {
            for (qsizetype i = 0; i < frame.payload.size(); ++i)
                frame.payload[i] = char(frame.payload[i] ^ data[maskOffset + i % 4]);
        }
        m_read += offset + qsizetype(length);
        return frame;
    }

    void onFrame(const Frame &frame)
    {
        frames.append(frame);
        switch (frame.opcode) {
        case Text: {
            QStringDecoder utf8(QStringDecoder::Utf8);
            (void)QString(utf8(frame.payload));
            if (utf8.hasError())
                ++invalidUtf8Messages;
            messages.append(QJsonDocument::fromJson(frame.payload).object());
            break;
        }
        case Ping:
            if (answerPings)
                write(RawWebSocket::frame(Pong, frame.payload));
            break;
        case Pong:
            pongs.append(frame.payload);
            break;
        case Close:
            closeCode = frame.payload.size() >= 2
                                ? qFromBigEndian<quint16>(frame.payload.constData())
                                : quint16(1005);
            closeReason = frame.payload.mid(2);
            // The closing handshake: answer with the same code, as a well-behaved client does.
            write(RawWebSocket::frame(Close, frame.payload.left(2)));
            break;
        default:
            break;
        }
    }

    QByteArray m_buffer;
    qsizetype m_read = 0; // bytes of m_buffer already parsed
    bool m_reading = true;
};
