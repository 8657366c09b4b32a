#include "registry_p.h"

#include <algorithm>

namespace QtNotif {

bool Registry::ConnectionInfo::isListening(const ListenKey &listen) const
{
    return std::binary_search(listens.cbegin(), listens.cend(), listen);
}

void Registry::ConnectionInfo::addListen(const ListenKey &listen)
{
    // Most connections listen to a few keys: up to a handful the list grows by one, to what
    // they take (160 bytes for 3) rather than to the next power of two (256).
    constexpr qsizetype GrownByOneUpTo = 8;
    if (listens.size() == listens.capacity() && listens.size() < GrownByOneUpTo)
        listens.reserve(listens.size() + 1);
    const auto at = std::lower_bound(listens.cbegin(), listens.cend(), listen);
    listens.insert(at - listens.cbegin(), listen);
}

bool Registry::ConnectionInfo::removeListen(const ListenKey &listen)
{
    const auto at = std::lower_bound(listens.cbegin(), listens.cend(), listen);
    if (at == listens.cend() || *at != listen)
        return false;
    listens.remove(at - listens.cbegin());
    return true;
}

void Registry::addConnection(ConnectionId connection, const QString &userId)
{
    Q_ASSERT(!m_connections.contains(connection));
    m_connections.insert(connection, ConnectionInfo{ userId, {} });
    if (!userId.isEmpty())
        m_users[userId].append(connection);
}

void Registry::dropListens(ConnectionId connection, ConnectionInfo &info, QList<Listen> *removed)
{
    for (const auto &[notifier, key] : std::as_const(info.listens)) {
        if (removed) {
            const Entry *e = entry(notifier, key);
            removed->append(Listen{ notifier, key, e ? e->key : QJsonValue() });
        }
        removeListener(notifier, key, connection);
    }
    info.listens.clear();
}

QList<Registry::Listen> Registry::removeConnection(ConnectionId connection)
{
    QList<Listen> removed;
    auto it = m_connections.find(connection);
    if (it == m_connections.end())
        return removed;
    dropListens(connection, *it, &removed);
    if (!it->userId.isEmpty()) {
        auto user = m_users.find(it->userId);
        user->removeOne(connection);
        if (user->isEmpty())
            m_users.erase(user);
    }
    m_connections.erase(it);
    return removed;
}

QList<Registry::Listen> Registry::resetConnection(ConnectionId connection, const QString &userId)
{
    auto it = m_connections.find(connection);
    if (it == m_connections.end())
        return {};
    // Re-adding is the one path that updates the user index, listens and all, consistently.
    const QList<Listen> removed = removeConnection(connection);
    addConnection(connection, userId);
    return removed;
}

QString Registry::userOf(ConnectionId connection) const
{
    return m_connections.value(connection).userId;
}

Registry::ListenResult Registry::listen(ConnectionId connection, const QString &notifier,
                                        const QString &key, const QJsonValue &keyJson,
                                        int maxListens)
{
    auto it = m_connections.find(connection);
    if (it == m_connections.end())
        return ListenResult::UnknownConnection;
    if (it->isListening({ notifier, key }))
        return ListenResult::AlreadyListening;
    if (maxListens > 0 && it->listens.size() >= maxListens)
        return ListenResult::LimitReached;
    auto keys = m_keys.find(notifier);
    if (keys == m_keys.end())
        keys = m_keys.insert(notifier, {});
    auto slot = keys->find(key);
    if (slot == keys->end())
        slot = keys->insert(key, {});
    // The table's strings, so that every listen of a key shares one.
    it->addListen({ keys.key(), slot.key() });
    Entry &entry = *slot;
    if (entry.listeners.isEmpty()) {
        entry.key = keyJson;
        entry.listeners.reserve(m_listenerHints.value(notifier));
    }
    entry.listeners.append(connection);
    if (entry.listeners.size() == 1 && m_keyObserver)
        m_keyObserver(notifier, key, true);
    return ListenResult::Added;
}

void Registry::removeListener(const QString &notifier, const QString &key, ConnectionId connection)
{
    auto keys = m_keys.find(notifier);
    if (keys == m_keys.end())
        return;
    auto entry = keys->find(key);
    if (entry == keys->end())
        return;
    entry->listeners.removeOne(connection);
    // Empty keys go at once: the table never holds a key nobody listens to (Eliom needed clean()).
    if (entry->listeners.isEmpty()) {
        keys->erase(entry);
        if (m_keyObserver)
            m_keyObserver(notifier, key, false);
    }
}

bool Registry::unlisten(ConnectionId connection, const QString &notifier, const QString &key)
{
    auto it = m_connections.find(connection);
    if (it == m_connections.end() || !it->removeListen({ notifier, key }))
        return false;
    removeListener(notifier, key, connection);
    return true;
}

QList<ConnectionId> Registry::unlistenUser(const QString &userId, const QString &notifier,
                                           const QString &key)
{
    QList<ConnectionId> removed;
    if (userId.isEmpty())
        return removed;
    // Copy: unlisten() does not touch m_users, but the copy keeps that an implementation detail.
    const QList<ConnectionId> connections = m_users.value(userId);
    for (ConnectionId connection : connections) {
        if (unlisten(connection, notifier, key))
            removed.append(connection);
    }
    return removed;
}

QList<QPair<ConnectionId, Registry::Listen>> Registry::removeNotifier(const QString &notifier)
{
    QList<QPair<ConnectionId, Listen>> removed;
    m_listenerHints.remove(notifier);
    const QHash<QString, Entry> keys = m_keys.take(notifier);
    for (auto it = keys.cbegin(); it != keys.cend(); ++it) {
        for (ConnectionId connection : it->listeners) {
            m_connections[connection].removeListen({ notifier, it.key() });
            removed.append({ connection, Listen{ notifier, it.key(), it->key } });
        }
        if (m_keyObserver)
            m_keyObserver(notifier, it.key(), false);
    }
    return removed;
}

void Registry::forEachKey(
        const std::function<void(const QString &notifier, const QString &key)> &f) const
{
    for (auto keys = m_keys.cbegin(); keys != m_keys.cend(); ++keys) {
        for (auto entry = keys->cbegin(); entry != keys->cend(); ++entry)
            f(keys.key(), entry.key());
    }
}

const Registry::Entry *Registry::entry(const QString &notifier, const QString &key) const
{
    const auto keys = m_keys.constFind(notifier);
    if (keys == m_keys.cend())
        return nullptr;
    const auto entry = keys->constFind(key);
    return entry == keys->cend() ? nullptr : &*entry;
}

Registry::Entry *Registry::entry(const QString &notifier, const QString &key)
{
    const auto keys = m_keys.find(notifier);
    if (keys == m_keys.end())
        return nullptr;
    const auto entry = keys->find(key);
    return entry == keys->end() ? nullptr : &*entry;
}

quint64 Registry::nextSeq(const QString &notifier, const QString &key)
{
    auto keys = m_keys.find(notifier);
    if (keys == m_keys.end())
        return 0;
    auto entry = keys->find(key);
    return entry == keys->end() ? 0 : ++entry->seq;
}

QList<ConnectionId> Registry::recipients(const QString &notifier, const QString &key,
                                         const NotFor &notFor) const
{
    const Entry *e = entry(notifier, key);
    return e ? recipients(*e, notFor) : QList<ConnectionId>();
}

QList<ConnectionId> Registry::recipients(const Entry &entry, const NotFor &notFor) const
{
    if (notFor.kind() == NotFor::Kind::Nobody)
        return entry.listeners;
    QList<ConnectionId> result;
    result.reserve(entry.listeners.size());
    for (ConnectionId connection : entry.listeners) {
        if (!notFor.excludes(connection, m_connections.value(connection).userId))
            result.append(connection);
    }
    return result;
}

int Registry::listenerCount(const QString &notifier, const QString &key) const
{
    const Entry *e = entry(notifier, key);
    return e ? int(e->listeners.size()) : 0;
}

int Registry::listenCount(ConnectionId connection) const
{
    const auto it = m_connections.constFind(connection);
    return it == m_connections.cend() ? 0 : int(it->listens.size());
}

bool Registry::isListening(ConnectionId connection, const QString &notifier,
                           const QString &key) const
{
    const auto it = m_connections.constFind(connection);
    return it != m_connections.cend() && it->isListening({ notifier, key });
}

QList<ConnectionId> Registry::connectionsOfUser(const QString &userId) const
{
    return m_users.value(userId);
}

void Registry::reserve(const QString &notifier, int keys, int listenersPerKey)
{
    m_keys[notifier].reserve(keys);
    m_listenerHints.insert(notifier, listenersPerKey);
}

void Registry::squeeze(const QString &notifier)
{
    const auto keys = m_keys.find(notifier);
    if (keys != m_keys.end())
        keys->squeeze();
}

int Registry::keyCount(const QString &notifier) const
{
    return int(m_keys.value(notifier).size());
}

int Registry::keyCount() const
{
    int count = 0;
    for (const auto &keys : m_keys)
        count += int(keys.size());
    return count;
}

int Registry::listenCount() const
{
    int count = 0;
    for (const auto &info : m_connections)
        count += int(info.listens.size());
    return count;
}

} // namespace QtNotif
