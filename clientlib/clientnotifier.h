#pragma once

#include <QtNotif/codec.h>
#include <QtNotif/qtnotif_client_export.h>

#include <QtCore/QJsonValue>
#include <QtCore/QObject>
#include <QtCore/QString>
#include <QtCore/QVariant>

#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace QtNotif {

class Client;
class ClientNotifierPrivate;

// The client side of one notifier of the server (Eliom's client_ev for one notifier): the set
// of keys this client wants to listen to, and the events that arrive for them.
//
// The set is the client's wish and survives connections: listen() adds a key at once and the
// Client sends it to the server whenever it is (re)connected, so a reconnect, an identity
// change or close() then open() never loses a listen. Get instances from Client::notifier();
// the Client owns them (do not delete one) and they live in its thread.
class QTNOTIF_CLIENT_EXPORT ClientNotifier : public QObject
{
    Q_OBJECT
    Q_PROPERTY(QString name READ name CONSTANT)
    Q_PROPERTY(QVariantList keys READ keys NOTIFY keysChanged)
public:
    // Why the server removed a listen (the "reason" of an "unlistened" frame).
    enum class UnlistenReason {
        Server,   // the server unlistened this client
        User,     // the server unlistened every client of this user
        Notifier, // the notifier was removed from the server
    };
    Q_ENUM(UnlistenReason)

    ~ClientNotifier() override;

    // The notifier's name on the server.
    QString name() const;
    // The client that owns this notifier.
    Client *client() const;
    // The keys wanted, sorted by their JSON text; JSON objects come as QVariantMap.
    QVariantList keys() const;

    // Adds the key to the wanted set and listens to it now when connected, else on connect.
    // Listening twice is harmless. If the server refuses, the key leaves the set again and
    // listenFailed() is emitted. Keys travel as JSON: Q_GADGET values become objects.
    Q_INVOKABLE void listen(const QVariant &key);
    // Removes the key from the wanted set and unlistens it on the server when connected. Events
    // for the key still on their way are dropped. Does nothing when the key is not wanted.
    Q_INVOKABLE void unlisten(const QVariant &key);
    // Whether the key is in the wanted set (listened, or to be listened on connect).
    Q_INVOKABLE bool isListening(const QVariant &key) const;

    // Calls callback(Key, Notif) in context for every event, decoded with Codec<Key> and
    // Codec<Notif>; events that do not decode are skipped with a warning. The connection ends
    // with context or this notifier, or with QObject::disconnect() on the returned handle.
    template<typename Key, typename Notif, typename F>
    QMetaObject::Connection onEvent(QObject *context, F callback)
    {
        static_assert(Encodable<Key>, "the key type has no QtNotif::Codec");
        static_assert(Encodable<Notif>, "the notification type has no QtNotif::Codec");
        static_assert(std::is_invocable_v<F &, Key, Notif>, "callback must take (Key, Notif)");
        return connect(this, &ClientNotifier::jsonEvent, context,
                       [this, callback = std::move(callback)](
                               const QJsonValue &key, const QJsonValue &data, quint64) mutable {
                           std::optional<Key> k = Codec<Key>::decode(key);
                           std::optional<Notif> n = Codec<Notif>::decode(data);
                           if (!k || !n) {
                               warnUndecodable(key, !k);
                               return;
                           }
                           callback(std::move(*k), std::move(*n));
                       });
    }

Q_SIGNALS:
    // The wanted set changed.
    void keysChanged();
    // A notification for a wanted key, converted with QJsonValue::toVariant() (JSON objects
    // become QVariantMap, so QML gets JavaScript objects).
    void clientEvent(const QVariant &key, const QVariant &notif);
    // The same event as JSON, with the notification's sequence number on this key.
    void jsonEvent(const QJsonValue &key, const QJsonValue &data, quint64 seq);
    // The server refused to listen to the key (code "listen_denied", "invalid_key",
    // "too_many_listens", "unknown_notifier", ...); the key has left the wanted set.
    void listenFailed(const QVariant &key, const QString &code, const QString &message);
    // The server removed a listen; the key has left the wanted set.
    void unlistened(const QVariant &key, QtNotif::ClientNotifier::UnlistenReason reason);
    // The server made this client listen to the key; it is now in the wanted set.
    void listened(const QVariant &key);

private:
    friend class Client;
    friend class ClientNotifierPrivate;
    ClientNotifier(Client *client, const QString &name);
    void warnUndecodable(const QJsonValue &key, bool keyFailed) const;

    std::unique_ptr<ClientNotifierPrivate> d;
};

} // namespace QtNotif
