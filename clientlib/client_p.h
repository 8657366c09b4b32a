#pragma once

#include <QtNotif/client.h>
#include "clientnotifier_p.h"

#include <QtCore/QElapsedTimer>
#include <QtCore/QHash>
#include <QtCore/QJsonObject>
#include <QtCore/QLoggingCategory>
#include <QtCore/QPointer>
#include <QtCore/QTimer>
#include <QtWebSockets/QWebSocket>

namespace QtNotif {

// "qtnotif.client": connections, reconnections, frames the client ignores.
Q_DECLARE_LOGGING_CATEGORY(lcClient)

class ClientPrivate
{
public:
    struct DeleteLater
    {
        void operator()(QObject *object) const { object->deleteLater(); }
    };

    // A listen frame waiting for its ack or error.
    struct PendingListen
    {
        ClientNotifier *notifier = nullptr;
        QString key; // canonical
    };

    // One connection attempt and what lives and dies with it.
    struct Connection
    {
        std::unique_ptr<QWebSocket, DeleteLater> socket;
        bool upgraded = false; // the WebSocket handshake succeeded
        // Why the TLS handshake failed, when it did.
        QList<QSslError> sslErrors;
        bool welcomed = false;
        QString id;
        std::chrono::milliseconds heartbeat{ 0 };
        QElapsedTimer lastHeard; // restarted by every frame and pong
        QHash<qint64, PendingListen> listens;
        QHash<qint64, QPointer<CallReply>> calls;
    };

    enum class Closing { Abort, Graceful };

    explicit ClientPrivate(Client *client);
    static ClientPrivate *get(Client *client) { return client->d.get(); }

    // Welcomed: frames may be sent.
    bool isReady() const { return connection && connection->welcomed; }
    void sendListen(ClientNotifier *notifier, const QString &key,
                    ClientNotifierPrivate::WantedKey &wanted);
    void sendUnlisten(ClientNotifier *notifier, const QJsonValue &key);
    CallReply *call(const QString &method, const QJsonValue &payload);

    // Connects, after asking the token provider for a fresh token when the token is stale.
    void startAttempt();
    void openSocket();
    // Detaches the connection from this client (no more signals from its socket) and closes
    // its socket.
    std::unique_ptr<Connection> takeConnection(Closing closing);
    void connectionLost(Client::Error error, const QString &message);
    // Finishes the calls still waiting on a connection that is gone with "connection_lost".
    static void failCalls(Connection &connection);
    void setState(Client::State state);

    Client *q;
    QUrl url;
    QString token;
    Client::TokenProvider tokenProvider;
    // The token was refused as expired (or none is set while a provider is): the next attempt
    // needs a fresh one.
    bool tokenStale = false;
    // No attempt runs until a fresh token comes (from the provider or from setToken()).
    bool awaitingToken = false;
    quint64 tokenRequest = 0; // tells the provider's current answer from late ones
    QSslConfiguration sslConfiguration = QSslConfiguration::defaultConfiguration();
    bool autoReconnect = true;
    std::chrono::milliseconds initialReconnectDelay{ 500 };
    std::chrono::milliseconds maximumReconnectDelay{ 30000 };
    std::chrono::milliseconds reconnectDelay = initialReconnectDelay; // the next ceiling
    std::chrono::milliseconds requestTimeout{ 30000 };

    Client::State state = Client::State::Disconnected;
    Client::Error error = Client::Error::NoError;
    QString errorString;
    QVariantMap identity;
    QString userId;

    std::unique_ptr<Connection> connection;     // null when no socket is open
    QHash<QString, ClientNotifier *> notifiers; // children of q
    qint64 lastId = 0; // frame ids, never reused, so a late answer cannot hit a newer frame
    QTimer reconnectTimer;
    // Before the welcome: fires once after requestTimeout. After: every heartbeat, to ping and
    // check that the server was heard from.
    QTimer watchdog;

private:
    void send(const QString &frame);
    void onWatchdog();
    void onSocketLost();
    void onTextMessage(const QString &text);
    void handleWelcome(const QJsonObject &frame);
    void handleIdentity(const QJsonObject &frame);
    void handleError(const QJsonObject &frame);
    bool finishCall(qint64 id, const QJsonValue &result, const QString &code,
                    const QString &message);
    // Takes the identity object of a welcome or identity frame; returns whether it changed.
    bool setIdentity(const QJsonObject &identity);
    // Sends a listen for every wanted key of every notifier.
    void listenAll();
    std::chrono::milliseconds nextReconnectWait();
    // Asks the token provider for a fresh token, or waits for setToken() without one.
    void requestToken();
    void tokenRequestFailed(const QString &why);
};

} // namespace QtNotif
