// A WebSocket server written by hand over QTcpServer, for the client's tests of servers that
// misbehave: it completes the opening handshake, sends the frames it is told to, and never
// answers anything, not even pings. No qtnotif server can be made that silent on purpose.
#pragma once

#include <QtCore/QCryptographicHash>
#include <QtCore/QList>
#include <QtCore/QPointer>
#include <QtCore/QUrl>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>

class RawServer : public QObject
{
    Q_OBJECT
public:
    // subprotocol is echoed in the handshake answer when not empty.
    explicit RawServer(QByteArray subprotocol = "qtnotif.v1", QObject *parent = nullptr)
        : QObject(parent), m_subprotocol(std::move(subprotocol))
    {
        connect(&m_server, &QTcpServer::newConnection, this, [this] {
            while (QTcpSocket *socket = m_server.nextPendingConnection()) {
                socket->setParent(this);
                connect(socket, &QTcpSocket::readyRead, this, [this, socket] { onRead(socket); });
            }
        });
    }

    bool listen() { return m_server.listen(QHostAddress::LocalHost, 0); }
    QUrl url() const
    {
        return QUrl(QStringLiteral("ws://127.0.0.1:%1").arg(m_server.serverPort()));
    }

    // Sent to every connection right after its handshake.
    QList<QByteArray> greeting;
    // Connections whose handshake was answered.
    QList<QPointer<QTcpSocket>> upgraded;

    // A welcome frame of connection "1", anonymous, with the given heartbeat.
    static QByteArray welcome(int heartbeatMs)
    {
        return R"({"op":"welcome","protocol":1,"connection":"1",)"
               R"("identity":{"user":null,"attributes":{}},"heartbeat":)"
               + QByteArray::number(heartbeatMs) + '}';
    }

    // One unmasked, final text frame (RFC 6455, section 5.2).
    static QByteArray textFrame(const QByteArray &payload)
    {
        QByteArray frame(1, char(0x81));
        const qint64 size = payload.size();
        if (size < 126) {
            frame.append(char(size));
        } else if (size < 65536) {
            frame.append(char(126));
            frame.append(char(size >> 8)).append(char(size & 0xff));
        } else {
            frame.append(char(127));
            for (int shift = 56; shift >= 0; shift -= 8)
                frame.append(char((size >> shift) & 0xff));
        }
        return frame + payload;
    }

private:
    void onRead(QTcpSocket *socket)
    {
        if (upgraded.contains(socket)) {
            socket->readAll(); // frames, pings and close frames alike: never answered
            return;
        }
        QByteArray &request = m_requests[socket];
        request += socket->readAll();
        if (!request.contains("\r\n\r\n"))
            return;
        QByteArray key;
        for (const QByteArray &line : request.split('\n')) {
            if (line.toLower().startsWith("sec-websocket-key:"))
                key = line.mid(line.indexOf(':') + 1).trimmed();
        }
        const QByteArray accept
                = QCryptographicHash::hash(QByteArray(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
                                           QCryptographicHash::Sha1)
                          .toBase64();
        QByteArray answer = "HTTP/1.1 101 Switching Protocols\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Accept: "
                            + accept + "\r\n";
        if (!m_subprotocol.isEmpty())
            answer += "Sec-WebSocket-Protocol: " + m_subprotocol + "\r\n";
        socket->write(answer + "\r\n");
        for (const QByteArray &payload : std::as_const(greeting))
            socket->write(textFrame(payload));
        upgraded.append(socket);
    }

    QTcpServer m_server;
    QByteArray m_subprotocol;
    QHash<QTcpSocket *, QByteArray> m_requests;
};
