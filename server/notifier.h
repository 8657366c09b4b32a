#pragma once

#include <QtNotif/abstractnotifier.h>
#include <QtNotif/codec.h>
#include <QtNotif/protocol.h>

#include <QtCore/QFuture>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonObject>
#include <QtCore/QLoggingCategory>
#include <QtCore/QMetaObject>

#include <concepts>
#include <cstring>
#include <memory>
#include <type_traits>

namespace QtNotif {

// What Notifier and SimpleNotifier share: the typed key operations.
template<typename Key>
class KeyedNotifier : public AbstractNotifier
{
    static_assert(Encodable<Key>, "the key type has no QtNotif::Codec");

public:
    // Lets only some identities listen to some keys (after the server-wide authoriser).
    void setListenAuthorizer(std::function<bool(const Identity &, const Key &)> authorize)
    {
        m_authorize = std::move(authorize);
    }

    bool listen(ConnectionId connection, const Key &key)
    {
        return listenJson(connection, Codec<Key>::encode(key));
    }
    bool unlisten(ConnectionId connection, const Key &key)
    {
        return unlistenJson(connection, Codec<Key>::encode(key));
    }
    // On every node of the cluster; see AbstractNotifier::unlistenUserJson().
    QFuture<int> unlistenUser(const QString &userId, const Key &key)
    {
        return unlistenUserJson(userId, Codec<Key>::encode(key));
    }
    // In the whole cluster; see AbstractNotifier::listenerCountJson() for what it costs.
    QFuture<int> listenerCount(const Key &key) const
    {
        return listenerCountJson(Codec<Key>::encode(key));
    }
    int localListenerCount(const Key &key) const
    {
        return localListenerCountJson(Codec<Key>::encode(key));
    }
    // The users listening to the key in the whole cluster, sorted; see
    // AbstractNotifier::listeningUsersJson().
    QFuture<QStringList> listeningUsers(const Key &key) const
    {
        return listeningUsersJson(Codec<Key>::encode(key));
    }
    QStringList localListeningUsers(const Key &key) const
    {
        return localListeningUsersJson(Codec<Key>::encode(key));
    }
    // The connections listening to the key on this server, in listen order.
    QList<ConnectionId> localListeners(const Key &key) const
    {
        return localListenersJson(Codec<Key>::encode(key));
    }

protected:
    using AbstractNotifier::AbstractNotifier;

    bool acceptsKey(const QJsonValue &key) const override
    {
        // Only in the form notify() gives the key: a listen must be one notify() can reach. A
        // gadget key missing a property, or with an unknown member, decodes all the same, but
        // notify() would send to another key, and the listener would wait for nothing.
        const std::optional<Key> decoded = Codec<Key>::decode(key);
        return decoded
               && Protocol::canonicalKey(Codec<Key>::encode(*decoded))
                          == Protocol::canonicalKey(key);
    }
    bool authorizeListen(const Identity &identity, const QJsonValue &key) const override
    {
        if (!m_authorize)
            return true;
        const auto decoded = Codec<Key>::decode(key);
        return decoded && m_authorize(identity, *decoded);
    }

private:
    std::function<bool(const Identity &, const Key &)> m_authorize;
};

// Eliom_notif.Make: notifications customised per client.
//
// notify(key, ServerNotif) sends prepare(identity, ServerNotif) to each listening client;
// prepare returns the ClientNotif that client receives, or std::nullopt to leave it out.
// ServerNotif is the recipient-independent form (the one that would travel between servers);
// prepare runs once per listening client, on the server's thread.
//
// prepare takes one of four forms, told apart at compile time:
//   std::optional<ClientNotif>(const Identity &, const ServerNotif &)           synchronous
//   bool(const Identity &, const ServerNotif &)                                 filter
//   QFuture<std::optional<ClientNotif>>(const Identity &, const ServerNotif &)  asynchronous
//   void(const Identity &, const ServerNotif &, Notifier::Done done)           callback
// The filter form, when ClientNotif is ServerNotif, says only who receives the notification:
// true sends it unchanged, false leaves the client out. (So with bool notifications a
// synchronous prepare returns std::optional<bool>.)
// An asynchronous prepare never blocks the server; each client still receives its
// notifications in notify order (a slow prepare for one notification holds that client's
// later ones, not other clients'). A failed or cancelled future counts as std::nullopt.
//
// Every client that receives the notification unchanged gets one frame, encoded once per
// notify as SimpleNotifier does: those the filter form lets through, and, when ClientNotif is
// ServerNotif, those whose synchronous prepare returns its argument, or a copy of it, of an
// implicitly shared Qt type (QJsonObject, QJsonArray, QString, QByteArray, QList, QMap,
// QVariantMap...): a copy that still shares the notification's data cannot differ from it.
// Not operator==, which an application may define on fewer members than prepare changes. Other
// results are encoded per client (clients in a row whose results encode alike share a frame).
//
// Key, ServerNotif and ClientNotif need a Codec (QString, integers, JSON types, QVariantMap,
// Q_GADGET structs, lists and maps of those, ...).
template<typename Key, typename ServerNotif, typename ClientNotif = ServerNotif>
class Notifier : public KeyedNotifier<Key>
{
    static_assert(Encodable<ServerNotif>, "the server notification type has no QtNotif::Codec");
    static_assert(Encodable<ClientNotif>, "the client notification type has no QtNotif::Codec");

public:
    using Done = std::function<void(std::optional<ClientNotif> result)>;

    // Registers the notifier on the server under name; the server owns it.
    template<typename Prepare>
    Notifier(Server *server, const QString &name, Prepare prepare)
        : KeyedNotifier<Key>(server, name)
    {
        setPrepare(std::move(prepare));
    }

    // Replaces prepare; see the class comment for the four accepted forms.
    template<typename Prepare>
    void setPrepare(Prepare prepare)
    {
        using Sync = std::optional<ClientNotif>;
        if constexpr (std::is_invocable_v<Prepare, const Identity &, const ServerNotif &, Done>) {
            m_sync = nullptr;
            m_async = [prepare = std::move(prepare)](const Identity &identity,
                                                     const ServerNotif &notif, Done done) {
                prepare(identity, notif, std::move(done));
            };
        } else {
            static_assert(std::is_invocable_v<Prepare, const Identity &, const ServerNotif &>,
                          "prepare must take (const Identity &, const ServerNotif &[, Done])");
            using Result = std::invoke_result_t<Prepare, const Identity &, const ServerNotif &>;
            if constexpr (std::is_same_v<Result, bool>) {
                static_assert(IsSameType,
                              "a prepare returning bool (a filter) needs ClientNotif to be "
                              "ServerNotif");
                m_async = nullptr;
                m_sync = [prepare = std::move(prepare)](const Identity &identity, const void *notif,
                                                        QJsonValue &) {
                    return prepare(identity, *static_cast<const ServerNotif *>(notif))
                                   ? Prepared::Same
                                   : Prepared::Skipped;
                };
            } else if constexpr (std::is_convertible_v<Result, Sync>) {
                m_async = nullptr;
                // The application's prepare is inlined here: one indirect call per client.
                m_sync = [prepare = std::move(prepare)](const Identity &identity,
                                                        const void *notifPointer,
                                                        QJsonValue &data) {
                    const ServerNotif &notif = *static_cast<const ServerNotif *>(notifPointer);
                    const Sync prepared = prepare(identity, notif);
                    if (!prepared)
                        return Prepared::Skipped;
                    if constexpr (IsSameType) {
                        if (sharesData(*prepared, notif))
                            return Prepared::Same;
                    }
                    data = Codec<ClientNotif>::encode(*prepared);
                    return Prepared::Data;
                };
            } else {
                static_assert(std::is_same_v<Result, QFuture<Sync>>,
                              "prepare must return std::optional<ClientNotif>, bool or a QFuture "
                              "of std::optional<ClientNotif>");
                m_sync = nullptr;
                m_async = [this, prepare = std::move(prepare)](
                                  const Identity &identity, const ServerNotif &notif, Done done) {
                    auto shared = std::make_shared<Done>(std::move(done));
                    prepare(identity, notif)
                            .then(this, [shared](Sync result) { (*shared)(std::move(result)); })
                            .onFailed(this, [shared] { (*shared)(std::nullopt); })
                            .onCanceled(this, [shared] { (*shared)(std::nullopt); });
                };
            }
        }
    }

    // Sends the notification to every client listening to key, but those notFor leaves out,
    // each through prepare. In a cluster, the ServerNotif is encoded once and published, and
    // every node runs prepare for its own clients. Callable from any thread: from another
    // thread it is queued to the server's. Fire and forget, as in Eliom.
    void notify(const Key &key, const ServerNotif &notif, const NotFor &notFor = NotFor())
    {
        if (!this->isOnServerThread()) {
            QMetaObject::invokeMethod(
                    this, [this, key, notif, notFor] { notify(key, notif, notFor); },
                    Qt::QueuedConnection);
            return;
        }
        const QJsonValue keyJson = Codec<Key>::encode(key);
        if (!this->isClustered()) {
            deliverHere(keyJson, notif, nullptr, notFor);
            return;
        }
        const QJsonValue notifJson = Codec<ServerNotif>::encode(notif);
        deliverHere(keyJson, notif, &notifJson, notFor);
        this->publishToCluster(keyJson, notifJson, notFor);
    }

protected:
    void deliverFromCluster(const QJsonValue &key, const QJsonValue &notif,
                            const NotFor &notFor) override
    {
        // Not notif itself for the clients that receive the notification unchanged: they get it
        // as this node's type encodes it, as they would from a notify() here.
        if (const std::optional<ServerNotif> decoded = Codec<ServerNotif>::decode(notif))
            deliverHere(key, *decoded, nullptr, notFor);
        else
            qWarning("qtnotif: notifier %s dropped a notification from another node that does "
                     "not decode as its ServerNotif type (do all nodes run the same version?)",
                     qUtf8Printable(this->name()));
    }

private:
    using Prepared = typename AbstractNotifier::Prepared;

    static constexpr bool IsSameType = std::is_same_v<ClientNotif, ServerNotif>;
    // Whether a and b are copies of one implicitly shared value, so that a synchronous
    // prepare's result can be recognised as the notification itself: a prepare that returns
    // its argument returns a copy that shares its data. False says nothing: they may be equal.
    template<typename T>
    static bool sharesData(const T &a, const T &b)
    {
        if constexpr (std::is_same_v<T, QJsonObject> || std::is_same_v<T, QJsonArray>) {
            // No public test, and operator== is out of line, at a cost next to the rest of a
            // delivery; but a QJsonObject or QJsonArray is one pointer to its data (null when
            // empty): the same bytes are the same data.
            static_assert(sizeof(T) == sizeof(void *), "a JSON container is one pointer");
            return std::memcmp(&a, &b, sizeof(T)) == 0;
        } else if constexpr (requires {
                                 a.constData() == b.constData();
                                 a.size();
                             }) {
            // QString, QByteArray, QList: the same characters or elements, as many.
            return a.constData() == b.constData() && a.size() == b.size();
        } else if constexpr (requires { a.isSharedWith(b); }) {
            return a.isSharedWith(b); // QMap, QVariantMap, QHash (no data: both empty)
        } else {
            return false;
        }
    }

    // notifJson: the notification's JSON when the caller already has it; encoded on demand
    // otherwise (once, and only when some client receives the notification unchanged).
    void deliverHere(const QJsonValue &keyJson, const ServerNotif &notif,
                     const QJsonValue *notifJson, const NotFor &notFor)
    {
        if (m_sync) {
            typename AbstractNotifier::SameData sameData;
            if constexpr (IsSameType) {
                sameData = [&notif, notifJson] {
                    return notifJson ? *notifJson : Codec<ServerNotif>::encode(notif);
                };
            }
            this->deliverPrepared(keyJson, notFor, &notif, m_sync, sameData);
        } else if (m_async) {
            auto shared = std::make_shared<ServerNotif>(notif);
            this->deliverPreparedAsync(
                    keyJson, notFor,
                    [this, shared](const Identity &identity, AbstractNotifier::Done done) {
                        m_async(identity, *shared,
                                [done = std::move(done)](std::optional<ClientNotif> r) {
                                    done(r ? std::optional<QJsonValue>(
                                                 Codec<ClientNotif>::encode(*r))
                                           : std::nullopt);
                                });
                    });
        }
    }

    // The synchronous prepare (either form), its notif argument a const ServerNotif *.
    typename AbstractNotifier::SyncPrepare m_sync;
    std::function<void(const Identity &, const ServerNotif &, Done)> m_async;
};

// Eliom_notif.Make_Simple: every listener receives the same notification. It is encoded once
// per notify and the same frame goes to every listener.
template<typename Key, typename Notif>
class SimpleNotifier : public KeyedNotifier<Key>
{
    static_assert(Encodable<Notif>, "the notification type has no QtNotif::Codec");

public:
    // Registers the notifier on the server under name; the server owns it.
    SimpleNotifier(Server *server, const QString &name) : KeyedNotifier<Key>(server, name) { }

    // Sends notif to every client listening to key but those notFor leaves out, on every node
    // of the cluster. Callable from any thread: from another thread it is queued to the
    // server's.
    void notify(const Key &key, const Notif &notif, const NotFor &notFor = NotFor())
    {
        if (!this->isOnServerThread()) {
            QMetaObject::invokeMethod(
                    this, [this, key, notif, notFor] { notify(key, notif, notFor); },
                    Qt::QueuedConnection);
            return;
        }
        this->notifySame(Codec<Key>::encode(key), Codec<Notif>::encode(notif), notFor);
    }
};

} // namespace QtNotif
