#pragma once

#include <QtNotif/identity.h>
#include <QtNotif/notfor.h>

#include <QtCore/QFuture>
#include <QtCore/QJsonValue>
#include <QtCore/QObject>
#include <QtCore/QString>
#include <QtCore/QStringList>

#include <functional>
#include <optional>

namespace QtNotif {

class Server;

// The untyped core of a notifier: one named table of listeners on a Server, for one kind of
// data (one instance of Eliom_notif's functor). Use Notifier or SimpleNotifier; this class
// holds what does not depend on the C++ types of keys and notifications, and works with keys
// as JSON values.
//
// A notifier lives on its server's thread and is owned by the server (its QObject parent).
// Deleting it unregisters it: its listeners are told "unlistened" with reason "notifier".
class QTNOTIF_SERVER_EXPORT AbstractNotifier : public QObject
{
    Q_OBJECT
public:
    ~AbstractNotifier() override;

    QString name() const { return m_name; }
    Server *server() const { return m_server; }
    // False when the server already had a notifier of this name: this one then does nothing.
    bool isRegistered() const { return m_registered; }

    // Server-side listen: makes the client listen to the key as if it had asked, without the
    // listen authoriser; the client is told with a "listened" frame. Returns false when the
    // connection does not exist or already listened.
    bool listenJson(ConnectionId connection, const QJsonValue &key);
    // Server-side unlisten (Eliom's Ext.unlisten); the client is told with an "unlistened"
    // frame. Returns whether the client was listening.
    bool unlistenJson(ConnectionId connection, const QJsonValue &key);
    // Unlistens every client of the user from the key (Os_notif's unlisten_user), on every node
    // of the cluster; each client is told. On this server it is done when the call returns;
    // the future gives how many connections stopped listening in the whole cluster.
    QFuture<int> unlistenUserJson(const QString &userId, const QJsonValue &key);
    // Connections listening to the key in the whole cluster. A server alone answers at once;
    // in a cluster it asks every node (one message to each, and their answers), so it is
    // meant for an occasional look, not for every notify. Never wait for the future on the
    // server's thread: the answers arrive through its event loop. Use QFuture::then().
    QFuture<int> listenerCountJson(const QJsonValue &key) const;
    // Connections listening to the key on this server.
    int localListenerCountJson(const QJsonValue &key) const;
    // The users listening to the key in the whole cluster, sorted, each once however many
    // connections it has; anonymous clients are not users. Presence: who is in a room. Costs
    // what listenerCountJson() costs.
    QFuture<QStringList> listeningUsersJson(const QJsonValue &key) const;
    QStringList localListeningUsersJson(const QJsonValue &key) const;
    // The connections listening to the key on this server, in the order they listened.
    // Server::identity() tells who each one is.
    QList<ConnectionId> localListenersJson(const QJsonValue &key) const;
    // Keys with at least one listener on this server.
    int keyCount() const;
    // Capacity hints (Eliom's max_resource and max_identity_per_resource): how many keys and
    // how many listeners per key to make room for up front. They size tables; they limit
    // nothing.
    void setCapacityHints(int keys, int listenersPerKey);
    // Eliom's clean(), kept for parity. Keys already go with their last listener, so there is
    // never an empty key to remove; clean() gives back the memory the notifier's key table
    // still holds from keys that are gone (after a burst, say), capacity hints included.
    void clean();

Q_SIGNALS:
    // A connection started listening to the key: it asked, or the server made it listen.
    // Emitted once the listen is registered (listenersJson() includes the connection).
    void listenerAdded(QtNotif::ConnectionId connection, const QtNotif::Identity &identity,
                       const QJsonValue &key);
    // A connection stopped listening to the key, whatever the cause: it unlistened, the server
    // unlistened it or its user, it disconnected, or its identity changed (identity is then the
    // old one). Emitted once the tables no longer hold the listen; not emitted when the
    // notifier itself is deleted. Together with listenerAdded it is what presence is made of.
    void listenerRemoved(QtNotif::ConnectionId connection, const QtNotif::Identity &identity,
                         const QJsonValue &key);

protected:
    AbstractNotifier(Server *server, const QString &name);

    // Whether a key sent by a client has the shape of this notifier's key type, in the form
    // notifications on it are sent with (for a typed key: encoded back from its decoded value).
    virtual bool acceptsKey(const QJsonValue &key) const = 0;
    // Whether the identity may listen to the key; the server-wide authoriser runs first.
    virtual bool authorizeListen(const Identity &identity, const QJsonValue &key) const;

    // Whether the caller is on the server's thread; notify calls from other threads are
    // queued to it.
    bool isOnServerThread() const;

    // Whether a notify must also be published to the other nodes of a cluster.
    bool isClustered() const;
    // Publishes a notification to the other nodes; each delivers it to its own listeners
    // through deliverFromCluster(). notif is what prepare takes (ServerNotif).
    void publishToCluster(const QJsonValue &key, const QJsonValue &notif, const NotFor &notFor);
    // Delivers a notification published on another node to this server's listeners. notif is
    // the JSON of what was published; the default sends it as it is (SimpleNotifier).
    virtual void deliverFromCluster(const QJsonValue &key, const QJsonValue &notif,
                                    const NotFor &notFor);

    // Sends the same data to every listener of the key on this server except notFor, encoded
    // once.
    void deliverSame(const QJsonValue &key, const QJsonValue &data, const NotFor &notFor);
    // deliverSame(), then publishes the data to the other nodes: key and data are encoded once
    // for both.
    void notifySame(const QJsonValue &key, const QJsonValue &data, const NotFor &notFor);

    // What a synchronous prepare made of the notification for one listener.
    enum class Prepared : quint8 {
        Skipped, // the listener does not receive it
        Same,    // the notification itself: the frame every such listener shares
        Data,    // data of its own, written to the QJsonValue prepare was given
    };
    // Runs once per listener with the notif pointer deliverPrepared() was given (the typed
    // notification: a Notifier knows its type); writes data only when it returns
    // Prepared::Data. The notification is a pointer so that one std::function, made once per
    // setPrepare(), is all that runs between the loop and the application's prepare.
    using SyncPrepare = std::function<Prepared(const Identity &identity, const void *notif,
                                               QJsonValue &data)>;
    // Gives the notification's JSON, for the listeners prepare answers Prepared::Same: called at
    // most once per delivery, and not at all when no listener receives the notification itself.
    using SameData = std::function<QJsonValue()>;
    // Sends what prepare makes for each listener of the key on this server except notFor.
    // sameData may be empty when prepare never answers Prepared::Same.
    void deliverPrepared(const QJsonValue &key, const NotFor &notFor, const void *notif,
                         const SyncPrepare &prepare, const SameData &sameData);

    // Asynchronous prepare: done(result) may be called later, once, on the server's thread.
    // Each client still receives its notifications in notify order.
    using Done = std::function<void(std::optional<QJsonValue> result)>;
    using AsyncPrepare = std::function<void(const Identity &identity, Done done)>;
    void deliverPreparedAsync(const QJsonValue &key, const NotFor &notFor,
                              const AsyncPrepare &prepare);

private:
    friend class ServerPrivate;
    friend class Cluster;
    // Unlistens the user's clients on this server; returns how many stopped listening.
    int unlistenUserHere(const QString &userId, const QJsonValue &key);
    // deliverSame() on a key already in canonical text; dataJson is set to the data's JSON text
    // (UTF-8) when it was encoded (someone here listens), and stays null otherwise.
    void sendSame(const QString &keyText, const QJsonValue &data, QByteArray &dataJson,
                  const NotFor &notFor);

    Server *m_server = nullptr;
    QString m_name;
    QByteArray m_nameJson; // the name as JSON text in UTF-8, as notification frames carry it
    bool m_registered = false;
};

} // namespace QtNotif
