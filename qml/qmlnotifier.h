#pragma once

#include "qmlclient.h"

#include <QtCore/QHash>
#include <QtCore/QObject>
#include <QtCore/QPointer>
#include <QtCore/QSet>
#include <QtCore/QVariant>
#include <QtQml/QJSValue>
#include <QtQml/QQmlParserStatus>
#include <QtQml/qqmlregistration.h>

namespace QtNotif {

class ClientNotifier;

// Notifier in QML: listens declaratively to the keys of one notifier of the server.
//
//     Notifier {
//         client: client; name: "messages"; keys: [currentRoom]
//         onClientEvent: (key, notif) => console.log(key, notif.text)
//     }
//
// Changing `keys` listens to the keys added and unlistens those removed. Several Notifier
// elements of one client and name share the client's ClientNotifier: a key stays listened while
// any of them has it. Each element emits clientEvent only for its own keys, and for keys the
// server made the client listen to. Lives in the QML engine's thread.
class QmlNotifier : public QObject, public QQmlParserStatus
{
    Q_OBJECT
    Q_INTERFACES(QQmlParserStatus)
    QML_NAMED_ELEMENT(Notifier)
    Q_PROPERTY(QtNotif::QmlClient *client READ client WRITE setClient NOTIFY clientChanged)
    Q_PROPERTY(QString name READ name WRITE setName NOTIFY nameChanged)
    Q_PROPERTY(QVariantList keys READ keys WRITE setKeys NOTIFY keysChanged)
public:
    explicit QmlNotifier(QObject *parent = nullptr);
    ~QmlNotifier() override;

    QmlClient *client() const { return m_client; }
    void setClient(QmlClient *client);
    // The notifier's name on the server.
    QString name() const { return m_name; }
    void setName(const QString &name);
    // The keys this element listens to (any JSON-like values; objects are compared by value).
    QVariantList keys() const { return m_keys; }
    void setKeys(const QVariantList &keys);

    // The client's call() with a callback, for convenience: callback(reply) gets
    // { ok, result, errorCode, errorMessage }.
    Q_INVOKABLE void call(const QString &method, const QJSValue &payload, const QJSValue &callback);

    void classBegin() override { }
    void componentComplete() override;

Q_SIGNALS:
    void clientChanged();
    void nameChanged();
    void keysChanged();
    // A notification for one of this element's keys (JSON objects arrive as JavaScript objects).
    void clientEvent(const QVariant &key, const QVariant &notif);
    // The server refused to listen to the key ("listen_denied", "invalid_key", ...).
    void listenFailed(const QVariant &key, const QString &code, const QString &message);
    // The server removed a listen; reason is "server", "user" or "notifier". The key stays in
    // `keys`: assign keys without it, then with it, to listen again.
    void unlistened(const QVariant &key, const QString &reason);
    // The server made the client listen to the key.
    void listened(const QVariant &key);

private:
    // Listens to every key through the ClientNotifier of (client, name), or stops.
    void attach();
    void detach();
    // Holds a share of exactly these keys of the attached ClientNotifier.
    void holdShares(const QVariantList &keys);
    bool isMine(const QVariant &key) const;

    QPointer<QmlClient> m_client;
    QString m_name;
    QVariantList m_keys;
    QPointer<ClientNotifier> m_notifier; // while attached
    QHash<QString, QVariant> m_held;     // canonical key -> key, for the keys this element holds
    QSet<QString> m_serverKeys;          // canonical keys the server added
    bool m_complete = false;
};

} // namespace QtNotif
