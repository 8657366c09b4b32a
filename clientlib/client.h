#pragma once

#include <QtNotif/callreply.h>
#include <QtNotif/clientnotifier.h>
#include <QtNotif/qtnotif_client_export.h>

#include <QtCore/QFuture>
#include <QtCore/QJsonValue>
#include <QtCore/QObject>
#include <QtCore/QString>
#include <QtCore/QUrl>
#include <QtCore/QVariantMap>
#include <QtNetwork/QSslConfiguration>

#include <chrono>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace QtNotif {

class ClientPrivate;

// A connection to a qtnotif server, kept alive: it connects with the WebSocket subprotocol
// qtnotif.v1 (and a bearer token when set), pings the server every heartbeat, reconnects with
// exponential backoff when the connection is lost, and then listens again to every key its
// notifiers want. The application sees state changes, never lost listens.
//
// Set url (and token), listen with notifier(name)->listen(key) and call open(), in any order.
// url and token take effect at the next connection.
//
// Tokens that expire: when the server closes the connection because its token expired (close
// code 4419, or a handshake refused with it), the client emits tokenExpired() and waits for a
// fresh token: from the token provider when one is set, or from setToken() (in a slot of
// tokenExpired(), say, or later). It then reconnects at once and listens again. A Client, its
// notifiers and its call replies live in the thread that created the Client.
class QTNOTIF_CLIENT_EXPORT Client : public QObject
{
    Q_OBJECT
    Q_PROPERTY(QUrl url READ url WRITE setUrl NOTIFY urlChanged)
    Q_PROPERTY(QString token READ token WRITE setToken NOTIFY tokenChanged)
    Q_PROPERTY(bool autoReconnect READ autoReconnect WRITE setAutoReconnect NOTIFY
                       autoReconnectChanged)
    Q_PROPERTY(State state READ state NOTIFY stateChanged)
    Q_PROPERTY(QString connectionId READ connectionId NOTIFY connectionIdChanged)
    Q_PROPERTY(QString userId READ userId NOTIFY identityChanged)
    Q_PROPERTY(QVariantMap identity READ identity NOTIFY identityChanged)
    Q_PROPERTY(Error error READ error NOTIFY errorChanged)
    Q_PROPERTY(QString errorString READ errorString NOTIFY errorChanged)
public:
    enum class State {
        Disconnected, // not open(), closed, refused, or lost without autoReconnect
        Connecting,   // open() called, waiting for the server's welcome
        Connected,    // welcomed: listens and calls go to the server
        Reconnecting, // lost: waiting for the next attempt, or attempting
    };
    Q_ENUM(State)

    // Transport errors, then the server's refusals and protocol errors from 256 up.
    enum class Error {
        NoError = 0,
        ConnectionError = 1,       // could not connect, or the connection was closed or broke
        HeartbeatTimeout = 2,      // nothing heard from the server for two heartbeats
        SslError = 3,              // the TLS handshake failed: an untrusted certificate, say
        AuthenticationError = 256, // the server's authenticator refused (close code 4401)
        ProtocolError = 257,       // the peers do not agree on qtnotif.v1 (close code 4400, ...)
        TokenExpired = 258,        // the token expired (close code 4419): a fresh one is needed
    };
    Q_ENUM(Error)

    explicit Client(QObject *parent = nullptr);
    // Closes the connection; pending call replies are deleted without finished().
    ~Client() override;

    // The server's ws:// or wss:// URL.
    QUrl url() const;
    void setUrl(const QUrl &url);
    // Sent as "Authorization: Bearer <token>" at the handshake when not empty.
    QString token() const;
    // While the client waits for a fresh token (after tokenExpired()), a new token reconnects
    // at once.
    void setToken(const QString &token);
    // Where fresh tokens come from: called when the token has expired, and by open() when no
    // token is set. The future's result becomes the token; an empty result, a failed or a
    // canceled future is tried again after the reconnect delay. Called on the client's thread;
    // the future may finish on any thread.
    //   client.setTokenProvider([&auth] { return auth.fetchToken(); }); // QFuture<QString>
    using TokenProvider = std::function<QFuture<QString>()>;
    void setTokenProvider(TokenProvider provider);
    // The TLS settings of wss:// connections, taking effect at the next connection. Qt's
    // default verifies the server's certificate against the system's CA certificates and the
    // URL's host name; to trust a private CA instead:
    //   QSslConfiguration tls = QSslConfiguration::defaultConfiguration();
    //   tls.setCaCertificates(QSslCertificate::fromPath(u"ca.pem"_s));
    //   client.setSslConfiguration(tls);
    // A client certificate goes in setLocalCertificate() and setPrivateKey().
    QSslConfiguration sslConfiguration() const;
    void setSslConfiguration(const QSslConfiguration &configuration);
    // Whether a lost connection is retried (true by default). Turning it off while waiting for
    // a retry stops trying: the state becomes Disconnected. AuthenticationError and
    // ProtocolError are never retried (the next attempt would be refused the same way): the
    // state becomes Disconnected and the application calls open() once it has fixed the cause
    // (a new token, say). SslError is retried, with the same backoff: a certificate is mostly
    // fixed on the server (renewed, its chain completed), and no token is sent to a server
    // that was not trusted.
    bool autoReconnect() const;
    void setAutoReconnect(bool enabled);

    // Delays between reconnection attempts: initial, doubled after each failed attempt up to
    // maximum, back to initial once welcomed. Each wait is random in [delay / 2, delay] so
    // that clients cut off together do not come back together. 0.5 s and 30 s by default.
    // Needs 0 < initial <= maximum (other values are ignored with a warning).
    void setReconnectDelays(std::chrono::milliseconds initial = std::chrono::milliseconds(500),
                            std::chrono::milliseconds maximum = std::chrono::seconds(30));
    std::chrono::milliseconds initialReconnectDelay() const;
    std::chrono::milliseconds maximumReconnectDelay() const;
    // How long a call waits for its reply before it finishes with "timeout", and a connection
    // attempt for the server's welcome. 30 s by default; must be positive.
    void setRequestTimeout(std::chrono::milliseconds timeout);
    std::chrono::milliseconds requestTimeout() const;

    State state() const;
    // The server's id of this connection; empty when not Connected.
    QString connectionId() const;
    // The user id the server gave this client; empty when anonymous.
    QString userId() const;
    // The identity object as the server last sent it: {"user": id or null, "attributes": {...}}.
    QVariantMap identity() const;
    // The last error; back to NoError once connected again.
    Error error() const;
    QString errorString() const;

    // Starts connecting (init). Does nothing unless Disconnected: calling it again while
    // connecting or connected loses nothing.
    Q_INVOKABLE void open();
    // Closes the connection and stops reconnecting (deinit); the state becomes Disconnected.
    // The wanted keys stay, so a later open() listens to them again. Pending calls finish
    // with "connection_lost".
    Q_INVOKABLE void close();

    // The notifier of this name, created on the first call; the Client owns it, and later calls
    // return the same object.
    Q_INVOKABLE QtNotif::ClientNotifier *notifier(const QString &name);

    // Calls the server's handler of method with payload. The Client owns the returned reply and
    // deletes it after its finished(), which always comes later than this call returns: with
    // the result, the server's error, or "not_connected" when not Connected, "connection_lost"
    // when the connection goes first, "timeout" after requestTimeout().
    Q_INVOKABLE QtNotif::CallReply *call(const QString &method, const QJsonValue &payload);
    // As above, then calls callback(const CallReply &) in context (which must live in this
    // thread) when the reply has finished.
    template<typename F>
    void call(const QString &method, const QJsonValue &payload, QObject *context, F callback)
    {
        static_assert(std::is_invocable_v<F &, const CallReply &>,
                      "callback must take (const CallReply &)");
        CallReply *reply = call(method, payload);
        connect(reply, &CallReply::finished, context,
                [reply, callback = std::move(callback)]() mutable {
                    callback(std::as_const(*reply));
                });
    }

Q_SIGNALS:
    void urlChanged();
    void tokenChanged();
    void autoReconnectChanged();
    void stateChanged(QtNotif::Client::State state);
    // The server welcomed this client: the state is Connected.
    void connected();
    // A Connected connection ended (closed, or lost: see state()).
    void disconnected();
    void connectionIdChanged();
    // The welcome or an "identity" frame brought a different identity.
    void identityChanged();
    void errorChanged();
    // Something went wrong with the connection; error() and errorString() say what.
    void errorOccurred(QtNotif::Client::Error error);
    // The server closed the connection, or refused it, because the token has expired. Unless a
    // token provider is set, give the client a fresh token with setToken(): it reconnects then.
    void tokenExpired();

private:
    friend class ClientPrivate;
    std::unique_ptr<ClientPrivate> d;
};

} // namespace QtNotif
