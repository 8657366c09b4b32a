// The server the QML tests talk to: a QtNotif::Server on loopback with two notifiers whose keys
// and notifications are any JSON, an "echo" handler, and an authenticator taking the bearer
// token as the user name (with an optional lifetime). QML drives it through the invokables below.
#pragma once

#include <QtNotif/codec.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QDateTime>
#include <QtQml/QJSValue>

#include <memory>

class TestServer : public QObject
{
    Q_OBJECT
    Q_PROPERTY(QUrl url READ url NOTIFY urlChanged)
public:
    using JsonNotifier = QtNotif::SimpleNotifier<QJsonValue, QJsonValue>;

    TestServer() { start(0); }

    QUrl url() const { return m_server->serverUrl(); }

    // A fresh server on a free port: no listens, no connections.
    Q_INVOKABLE void reset()
    {
        start(0);
        Q_EMIT urlChanged();
    }
    // A new server process on the same port, as after a crash and a restart.
    Q_INVOKABLE void restart() { start(m_server->serverPort()); }

    Q_INVOKABLE void notify(const QString &notifier, const QJSValue &key, const QJSValue &data)
    {
        if (JsonNotifier *n = find(notifier))
            n->notify(json(key), json(data));
    }
    Q_INVOKABLE int listenerCount(const QString &notifier, const QJSValue &key) const
    {
        JsonNotifier *n = find(notifier);
        return n ? n->localListenerCount(json(key)) : -1;
    }
    Q_INVOKABLE int unlistenUser(const QString &user, const QString &notifier, const QJSValue &key)
    {
        JsonNotifier *n = find(notifier);
        return n ? n->unlistenUser(user, json(key)).result() : -1; // ready at once: a server alone
    }
    Q_INVOKABLE int connectionCount() const { return m_server->connectionCount(); }

Q_SIGNALS:
    void urlChanged();

private:
    static QJsonValue json(const QJSValue &value)
    {
        return QtNotif::variantToJson(value.toVariant());
    }
    JsonNotifier *find(const QString &name) const
    {
        return static_cast<JsonNotifier *>(m_server->notifier(name));
    }

    void start(quint16 port)
    {
        m_server.reset(); // before the new one binds the same port
        m_server = std::make_unique<QtNotif::Server>();
        // "alice" is alice for ever; "alice+300" is alice for 300 ms.
        m_server->setAuthenticator([](const QtNotif::HandshakeRequest &request) {
            const QStringList token = QString::fromUtf8(request.bearerToken()).split(u'+');
            if (token.first().isEmpty())
                return QtNotif::AuthResult::anonymous();
            const QDateTime expiresAt
                    = token.size() > 1
                              ? QDateTime::currentDateTimeUtc().addMSecs(token.at(1).toInt())
                              : QDateTime();
            return QtNotif::AuthResult::accept(QtNotif::Identity::user(token.first()), expiresAt);
        });
        m_server->setListenAuthorizer(
                [](const QtNotif::Identity &, const QString &, const QJsonValue &key) {
                    return key != QJsonValue(QStringLiteral("forbidden"));
                });
        m_server->setHandler(QStringLiteral("echo"), [](const QtNotif::Request &request) {
            request.reply(request.payload());
        });
        new JsonNotifier(m_server.get(), QStringLiteral("chat"));
        new JsonNotifier(m_server.get(), QStringLiteral("jobs"));
        if (!m_server->listen(QHostAddress::LocalHost, port))
            qFatal("test server cannot listen: %s", qPrintable(m_server->errorString()));
    }

    std::unique_ptr<QtNotif::Server> m_server;
};
