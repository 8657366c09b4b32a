// The listener table: who listens to which key of which notifier. No sockets, no Qt objects:
// the rules of listening are written here once and tested table-driven (tst_registry).
#pragma once

#include <QtNotif/global.h>
#include <QtNotif/notfor.h>

#include <QtCore/QHash>
#include <QtCore/QJsonValue>
#include <QtCore/QList>
#include <QtCore/QString>

#include <functional>
#include <unordered_map>

namespace QtNotif {

class Registry
{
public:
    Registry() = default;
    // Connections point at entries of the key tables: a copy would point at the original's.
    Q_DISABLE_COPY_MOVE(Registry)

    enum class ListenResult { Added, AlreadyListening, UnknownConnection, LimitReached };

    // One listen: a (notifier, key) pair of one connection.
    struct Listen
    {
        QString notifier;
        QString key; // canonical key text
        QJsonValue keyJson;
    };

    // A key with its listeners, in the order they listened.
    struct Entry
    {
        QJsonValue key;
        QList<ConnectionId> listeners;
        quint64 seq = 0; // notifications sent on this key since it got its first listener
        // Where the entry is in the table (the table's strings, shared).
        QString notifier;
        QString keyText; // canonical key text
    };

    // Told when a key gets its first listener (added) and when it loses its last (not added):
    // the cluster subscribes to exactly the keys listened to on this node.
    using KeyObserver
            = std::function<void(const QString &notifier, const QString &key, bool added)>;
    void setKeyObserver(KeyObserver observer) { m_keyObserver = std::move(observer); }
    // Calls f(notifier, key) for every key with listeners.
    void forEachKey(
            const std::function<void(const QString &notifier, const QString &key)> &f) const;

    // Connections must be added before they listen; userId is empty for anonymous clients.
    void addConnection(ConnectionId connection, const QString &userId);
    bool hasConnection(ConnectionId connection) const { return m_connections.contains(connection); }
    // Removes the connection and every listen it had; returns those listens.
    QList<Listen> removeConnection(ConnectionId connection);
    // Removes every listen of the connection but keeps it, now as userId; returns the listens.
    QList<Listen> resetConnection(ConnectionId connection, const QString &userId);
    QString userOf(ConnectionId connection) const;

    // maxListens <= 0 means no limit.
    ListenResult listen(ConnectionId connection, const QString &notifier, const QString &key,
                        const QJsonValue &keyJson, int maxListens = 0);
    // Returns whether the connection was listening.
    bool unlisten(ConnectionId connection, const QString &notifier, const QString &key);
    // Unlistens every connection of the user; returns the connections that were listening.
    QList<ConnectionId> unlistenUser(const QString &userId, const QString &notifier,
                                     const QString &key);
    // Removes every listen on the notifier; returns them with their connections.
    QList<QPair<ConnectionId, Listen>> removeNotifier(const QString &notifier);

    // The key's entry, or nullptr when nobody listens to it.
    const Entry *entry(const QString &notifier, const QString &key) const;
    Entry *entry(const QString &notifier, const QString &key);
    // Counts one more notification on the key and returns its sequence number (from 1); 0 when
    // nobody listens to the key.
    quint64 nextSeq(const QString &notifier, const QString &key);
    // The listeners of the key that notFor does not leave out, in listen order.
    QList<ConnectionId> recipients(const QString &notifier, const QString &key,
                                   const NotFor &notFor) const;
    QList<ConnectionId> recipients(const Entry &entry, const NotFor &notFor) const;

    int listenerCount(const QString &notifier, const QString &key) const;
    int listenCount(ConnectionId connection) const;
    bool isListening(ConnectionId connection, const QString &notifier, const QString &key) const;
    QList<ConnectionId> connectionsOfUser(const QString &userId) const;
    QList<ConnectionId> connections() const { return m_connections.keys(); }
    int connectionCount() const { return int(m_connections.size()); }

    // Eliom's max_resource / max_identity_per_resource: sizes to reserve up front for a
    // notifier's key table and for each of its keys' listener lists. Hints, not limits.
    void reserve(const QString &notifier, int keys, int listenersPerKey);

    // Gives back the memory the notifier's key table holds beyond its keys.
    void squeeze(const QString &notifier);

    // Keys with at least one listener: in one notifier, and in all.
    int keyCount(const QString &notifier) const;
    int keyCount() const;
    // Listens over every connection.
    int listenCount() const;

private:
    struct StringHash
    {
        std::size_t operator()(const QString &string) const noexcept { return qHash(string); }
    };
    // A notifier's keys. Its entries stay where they are while other keys come and go (a
    // std::unordered_map does not move its nodes, a QHash does): connections point at them.
    using KeyTable = std::unordered_map<QString, Entry, StringHash>;

    struct ConnectionInfo
    {
        QString userId;
        // The entries of its listens, sorted by address for binary search: 8 bytes a listen.
        // A list and not a QSet: a QSet's table takes about 2 KiB for the few listens a
        // connection usually has, more than the rest of its state.
        QList<Entry *> listens;

        bool isListening(const Entry *entry) const;
        void addListen(Entry *entry);
        bool removeListen(Entry *entry);
    };

    // The entry of a key nobody listens to yet, added to the table.
    Entry &addEntry(const QString &notifier, const QString &key);
    // Removes the connection from the entry's listeners, and the entry once it has none (entry
    // is gone then).
    void removeListener(Entry &entry, ConnectionId connection);
    void dropListens(ConnectionId connection, ConnectionInfo &info, QList<Listen> *removed);

    // notifier -> key -> entry. A notifier's table stays (empty) after its last key goes, so
    // that a reserved capacity lasts; removeNotifier() drops it. Not a QHash either: copying
    // it would copy the entries.
    std::unordered_map<QString, KeyTable, StringHash> m_keys;
    QHash<QString, int> m_listenerHints; // notifier -> listeners to reserve per key
    QHash<ConnectionId, ConnectionInfo> m_connections;
    QHash<QString, QList<ConnectionId>> m_users; // user id -> its connections
    KeyObserver m_keyObserver;
};

} // namespace QtNotif
