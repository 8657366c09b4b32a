#pragma once

#include <QtNotif/client.h>

#include <QtQml/QJSValue>
#include <QtQml/QQmlParserStatus>
#include <QtQml/qqmlregistration.h>

namespace QtNotif {

// Client in QML: a QtNotif::Client (url, token, state, identity, errorString, autoReconnect,
// ...) that connects while `active` is true, as QtWebSockets' WebSocket element does.
//
//     Client { id: client; url: "ws://127.0.0.1:8080"; token: session.token; active: true
//              onTokenExpired: session.refresh() }
//
// Lives in the QML engine's thread.
class QmlClient : public Client, public QQmlParserStatus
{
    Q_OBJECT
    Q_INTERFACES(QQmlParserStatus)
    QML_NAMED_ELEMENT(Client)
    Q_PROPERTY(bool active READ isActive WRITE setActive NOTIFY activeChanged)
    Q_PROPERTY(QUrl caCertificates READ caCertificates WRITE setCaCertificates NOTIFY
                       caCertificatesChanged)
public:
    explicit QmlClient(QObject *parent = nullptr);

    // Whether the client should be connected: true opens it (once the component is complete
    // and url is set), false closes it. False by default. After a refusal (error()
    // AuthenticationError) the client stays Disconnected while active: set a new token, then active
    // to false and true.
    bool isActive() const { return m_active; }
    void setActive(bool active);

    // A PEM file of the CA certificates wss:// servers are checked against, instead of the
    // system's: "file:///etc/chat/ca.pem", or relative to the QML file ("ca.pem", which works
    // from qrc: too). Read when set, taking effect at the next connection. Empty, the default,
    // uses the system's. A file without certificates (missing, say) is warned about and leaves
    // no CA trusted: every wss:// connection then fails with SslError.
    QUrl caCertificates() const { return m_caCertificates; }
    void setCaCertificates(const QUrl &file);

    // Calls the server's handler of method with payload (any JavaScript value) and then
    // callback(reply), reply being { ok, result, errorCode, errorMessage }. The C++ form
    // call(method, payload), which returns a CallReply, is available too.
    Q_INVOKABLE void call(const QString &method, const QJSValue &payload, const QJSValue &callback);

    void classBegin() override { }
    void componentComplete() override;

Q_SIGNALS:
    void activeChanged();
    void caCertificatesChanged();

private:
    void openIfWanted();

    QUrl m_caCertificates;
    bool m_active = false;
    bool m_complete = false;
};

} // namespace QtNotif
