// A raw qtnotif.v1 peer for tests: a real QWebSocket on loopback that records every frame it
// receives, so tests can speak the wire protocol directly (and send what no client would).
#pragma once

#include <QtNotif/protocol.h>

#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QList>
#include <QtCore/QObject>
#include <QtNetwork/QNetworkRequest>
#include <QtTest/QTest>
#include <QtWebSockets/QWebSocket>
#include <QtWebSockets/QWebSocketHandshakeOptions>

class TestPeer : public QObject
{
    Q_OBJECT
public:
    explicit TestPeer(QObject *parent = nullptr) : QObject(parent)
    {
        connect(&socket, &QWebSocket::textMessageReceived, this, [this](const QString &text) {
            const QJsonDocument document = QJsonDocument::fromJson(text.toUtf8());
            frames.append(document.object());
            texts.append(text);
        });
        connect(&socket, &QWebSocket::disconnected, this, [this] { disconnected = true; });
    }

    // Opens the connection offering qtnotif.v1 (or the given subprotocols), with optional
    // extra headers, and waits for the welcome (or for the close when expectWelcome is false).
    bool open(const QUrl &url, const QList<QPair<QByteArray, QByteArray>> &headers = {},
              QStringList subprotocols = { QString(QtNotif::Protocol::Subprotocol) },
              bool expectWelcome = true)
    {
        QNetworkRequest request(url);
        for (const auto &[name, value] : headers)
            request.setRawHeader(name, value);
        QWebSocketHandshakeOptions options;
        options.setSubprotocols(subprotocols);
        socket.open(request, options);
        if (!expectWelcome)
            return QTest::qWaitFor([this] { return disconnected; }, 5000);
        return QTest::qWaitFor([this] { return !framesOf("welcome").isEmpty(); }, 5000);
    }

    QJsonObject welcome() const { return framesOf("welcome").value(0); }

    void sendText(const QString &text) { socket.sendTextMessage(text); }
    void send(const QJsonObject &frame) { sendText(QtNotif::Protocol::encode(frame)); }

    qint64 listen(const QString &notifier, const QJsonValue &key)
    {
        send({ { "op", "listen" }, { "id", ++lastId }, { "notifier", notifier }, { "key", key } });
        return lastId;
    }
    qint64 unlisten(const QString &notifier, const QJsonValue &key)
    {
        send({ { "op", "unlisten" },
               { "id", ++lastId },
               { "notifier", notifier },
               { "key", key } });
        return lastId;
    }
    qint64 request(const QString &method, const QJsonValue &payload)
    {
        send({ { "op", "request" },
               { "id", ++lastId },
               { "method", method },
               { "payload", payload } });
        return lastId;
    }

    QList<QJsonObject> framesOf(const char *op) const
    {
        QList<QJsonObject> result;
        for (const QJsonObject &frame : frames) {
            if (frame.value(QLatin1String("op")).toString() == QLatin1String(op))
                result.append(frame);
        }
        return result;
    }

    // The ack, error or reply answering request id, waiting for it; empty on timeout.
    QJsonObject answerTo(qint64 id, int timeoutMs = 5000)
    {
        QJsonObject answer;
        (void)QTest::qWaitFor(
                [&] {
                    for (const QJsonObject &frame : std::as_const(frames)) {
                        const QString op = frame.value(QLatin1String("op")).toString();
                        const bool isAnswer = op == QLatin1String("ack")
                                              || op == QLatin1String("error")
                                              || op == QLatin1String("reply");
                        if (isAnswer && frame.value(QLatin1String("id")).toInteger(-1) == id) {
                            answer = frame;
                            return true;
                        }
                    }
                    return false;
                },
                timeoutMs);
        return answer;
    }

    // Listens and waits for the ack; true when acknowledged.
    bool listenAndWait(const QString &notifier, const QJsonValue &key)
    {
        return answerTo(listen(notifier, key)).value(QLatin1String("op")).toString()
               == QLatin1String("ack");
    }

    QWebSocket socket;
    QList<QJsonObject> frames;
    QStringList texts; // the same frames as received, exact
    bool disconnected = false;
    qint64 lastId = 0;
};
