#include "registry_p.h"

#include <algorithm>

namespace QtNotif {

bool Registry::ConnectionInfo::isListening(const Entry *entry) const
{
    return std::binary_search(listens.cbegin(), listens.cend(), entry, std::less<>());
}

void Registry::ConnectionInfo::addListen(Entry *entry)
{
    // Most connections listen to a few keys: up to a handful the list grows by one, to what
    // they take rather than to the next power of two.
    constexpr qsizetype GrownByOneUpTo = 8;
    if (listens.size() == listens.capacity() && listens.size() < GrownByOneUpTo)
        listens.reserve(listens.size() + 1);
    const auto at = std::lower_bound(listens.cbegin(), listens.cend(), entry, std::less<>());
    listens.insert(at - listens.cbegin(), entry);
}

bool Registry::ConnectionInfo::removeListen(Entry *entry)
{
    const auto at = std::lower_bound(listens.cbegin(), listens.cend(), entry, std::less<>());
    if (at == listens.cend() || *at != entry)
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
    for (Entry *entry : std::as_const(info.listens)) {
        if (removed)
            removed->append(Listen{ entry->notifier, entry->keyText, entry->key });
        removeListener(*entry, connection);
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
    Entry *existing = entry(notifier, key);
    if (existing && it->isListening(existing))
        return ListenResult::AlreadyListening;
    if (maxListens > 0 && it->listens.size() >= maxListens)
        return ListenResult::LimitReached;
    Entry &entry = existing ? *existing : addEntry(notifier, key);
    it->addListen(&entry);
    if (entry.listeners.isEmpty()) {
        entry.key = keyJson;
        entry.listeners.reserve(m_listenerHints.value(notifier));
    }
    entry.listeners.append(connection);
    if (entry.listeners.size() == 1 && m_keyObserver)
        m_keyObserver(notifier, key, true);
    return ListenResult::Added;
}

Registry::Entry &Registry::addEntry(const QString &notifier, const QString &key)
{
    const auto keys = m_keys.try_emplace(notifier).first;
    const auto slot = keys->second.try_emplace(key).first;
    Entry &entry = slot->second;
    // The table's strings, so that the entry's and the table's are one.
    entry.notifier = keys->first;
    entry.keyText = slot->first;
    return entry;
}

void Registry::removeListener(Entry &entry, ConnectionId connection)
{
    entry.listeners.removeOne(connection);
    // Empty keys go at once: the table never holds a key nobody listens to (Eliom needed clean()).
    if (!entry.listeners.isEmpty())
        return;
    const QString notifier = entry.notifier;
    const QString key = entry.keyText;
    m_keys.at(notifier).erase(key);
    if (m_keyObserver)
        m_keyObserver(notifier, key, false);
}

bool Registry::unlisten(ConnectionId connection, const QString &notifier, const QString &key)
{
    auto it = m_connections.find(connection);
    Entry *e = entry(notifier, key);
    if (it == m_connections.end() || !e || !it->removeListen(e))
        return false;
    removeListener(*e, connection);
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
    // Out of the table, its entries where they were until the node goes.
    auto node = m_keys.extract(notifier);
    if (node.empty())
        return removed;
    for (auto &[key, entry] : node.mapped()) {
        for (ConnectionId connection : std::as_const(entry.listeners)) {
            const auto info = m_connections.find(connection);
            if (info != m_connections.end())
                info->removeListen(&entry);
            removed.append({ connection, Listen{ notifier, key, entry.key } });
        }
        if (m_keyObserver)
            m_keyObserver(notifier, key, false);
    }
    return removed;
}

void Registry::forEachKey(
        const std::function<void(const QString &notifier, const QString &key)> &f) const
{
    for (const auto &[notifier, keys] : m_keys) {
        for (const auto &entry : keys)
            f(notifier, entry.first);
    }
}

const Registry::Entry *Registry::entry(const QString &notifier, const QString &key) const
{
    const auto keys = m_keys.find(notifier);
    if (keys == m_keys.cend())
        return nullptr;
    const auto entry = keys->second.find(key);
    return entry == keys->second.cend() ? nullptr : &entry->second;
}

Registry::Entry *Registry::entry(const QString &notifier, const QString &key)
{
    return const_cast<Entry *>(std::as_const(*this).entry(notifier, key));
}

quint64 Registry::nextSeq(const QString &notifier, const QString &key)
{
    Entry *e = entry(notifier, key);
    return e ? ++e->seq : 0;
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
    const Entry *e = entry(notifier, key);
    return it != m_connections.cend() && e && it->isListening(e);
}

QList<ConnectionId> Registry::connectionsOfUser(const QString &userId) const
{
    return m_users.value(userId);
}

void Registry::reserve(const QString &notifier, int keys, int listenersPerKey)
{
    m_keys[notifier].reserve(std::size_t(std::max(0, keys)));
    m_listenerHints.insert(notifier, listenersPerKey);
}

void Registry::squeeze(const QString &notifier)
{
    const auto keys = m_keys.find(notifier);
    if (keys != m_keys.end())
        keys->second.rehash(0); // as few buckets as its keys need
}

int Registry::keyCount(const QString &notifier) const
{
    const auto keys = m_keys.find(notifier);
    return keys == m_keys.cend() ? 0 : int(keys->second.size());
}

int Registry::keyCount() const
{
    int count = 0;
    for (const auto &[notifier, keys] : m_keys)
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
