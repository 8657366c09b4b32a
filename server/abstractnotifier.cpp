#include <QtNotif/abstractnotifier.h>

#include "server_p.h"

#include <QtNotif/protocol.h>

#include <QtCore/QPointer>
#include <QtCore/QThread>

namespace QtNotif {

using namespace Protocol;

AbstractNotifier::AbstractNotifier(Server *server, const QString &name)
    : QObject(server), m_server(server), m_name(name), m_nameJson(toJsonUtf8(name))
{
    Q_ASSERT(server);
    server->d->registerNotifier(this);
}

AbstractNotifier::~AbstractNotifier()
{
    if (m_registered)
        m_server->d->unregisterNotifier(this);
}

bool AbstractNotifier::isOnServerThread() const
{
    return QThread::currentThread() == thread();
}

bool AbstractNotifier::authorizeListen(const Identity &, const QJsonValue &) const
{
    return true;
}

bool AbstractNotifier::listenJson(ConnectionId connection, const QJsonValue &key)
{
    if (!m_registered)
        return false;
    ServerPrivate *d = m_server->d.get();
    if (d->registry.listen(connection, m_name, canonicalKey(key), key)
        != Registry::ListenResult::Added)
        return false;
    if (Connection *c = d->connection(connection)) {
        d->send(*c, encode({ { QLatin1String("op"), Op::Listened },
                             { QLatin1String("notifier"), m_name },
                             { QLatin1String("key"), key } }));
        Q_EMIT listenerAdded(connection, c->identity, key);
    }
    return true;
}

bool AbstractNotifier::unlistenJson(ConnectionId connection, const QJsonValue &key)
{
    if (!m_registered)
        return false;
    ServerPrivate *d = m_server->d.get();
    if (!d->registry.unlisten(connection, m_name, canonicalKey(key)))
        return false;
    d->sendUnlistened(connection, m_name, key, UnlistenReason::Server);
    if (Connection *c = d->connection(connection))
        Q_EMIT listenerRemoved(connection, c->identity, key);
    return true;
}

QFuture<int> AbstractNotifier::unlistenUserJson(const QString &userId, const QJsonValue &key)
{
    const int here = unlistenUserHere(userId, key);
    if (!m_registered || userId.isEmpty())
        return QtFuture::makeReadyFuture(here);
    return m_server->d->cluster.unlistenUser(m_name, key, userId, here);
}

int AbstractNotifier::unlistenUserHere(const QString &userId, const QJsonValue &key)
{
    if (!m_registered)
        return 0;
    ServerPrivate *d = m_server->d.get();
    const QList<ConnectionId> removed = d->registry.unlistenUser(userId, m_name, canonicalKey(key));
    for (ConnectionId connection : removed) {
        d->sendUnlistened(connection, m_name, key, UnlistenReason::User);
        if (Connection *c = d->connection(connection))
            Q_EMIT listenerRemoved(connection, c->identity, key);
    }
    return int(removed.size());
}

QFuture<int> AbstractNotifier::listenerCountJson(const QJsonValue &key) const
{
    const int here = localListenerCountJson(key);
    if (!m_registered)
        return QtFuture::makeReadyFuture(here);
    return m_server->d->cluster.countListeners(m_name, key, here);
}

int AbstractNotifier::localListenerCountJson(const QJsonValue &key) const
{
    return m_registered ? m_server->d->registry.listenerCount(m_name, canonicalKey(key)) : 0;
}

QFuture<QStringList> AbstractNotifier::listeningUsersJson(const QJsonValue &key) const
{
    QStringList here = localListeningUsersJson(key);
    if (!m_registered)
        return QtFuture::makeReadyFuture(std::move(here));
    return m_server->d->cluster.listeningUsers(m_name, key, std::move(here));
}

QStringList AbstractNotifier::localListeningUsersJson(const QJsonValue &key) const
{
    QStringList users;
    const QList<ConnectionId> listeners = localListenersJson(key);
    for (ConnectionId id : listeners) {
        const QString user = m_server->d->registry.userOf(id);
        if (!user.isEmpty())
            users.append(user);
    }
    users.sort();
    users.removeDuplicates();
    return users;
}

QList<ConnectionId> AbstractNotifier::localListenersJson(const QJsonValue &key) const
{
    if (!m_registered)
        return {};
    const Registry::Entry *entry = m_server->d->registry.entry(m_name, canonicalKey(key));
    return entry ? entry->listeners : QList<ConnectionId>();
}

int AbstractNotifier::keyCount() const
{
    return m_registered ? m_server->d->registry.keyCount(m_name) : 0;
}

void AbstractNotifier::setCapacityHints(int keys, int listenersPerKey)
{
    if (m_registered)
        m_server->d->registry.reserve(m_name, keys, listenersPerKey);
}

void AbstractNotifier::clean()
{
    if (m_registered)
        m_server->d->registry.squeeze(m_name);
}

bool AbstractNotifier::isClustered() const
{
    return m_registered && m_server->d->cluster.reachesOtherNodes();
}

void AbstractNotifier::publishToCluster(const QJsonValue &key, const QJsonValue &notif,
                                        const NotFor &notFor)
{
    if (isClustered())
        m_server->d->cluster.publishNotify(m_name, canonicalKey(key), toJsonText(notif), notFor);
}

void AbstractNotifier::deliverFromCluster(const QJsonValue &key, const QJsonValue &notif,
                                          const NotFor &notFor)
{
    deliverSame(key, notif, notFor);
}

namespace {

// One notify: its recipients and the frame parts they all share, in UTF-8.
struct Delivery
{
    QByteArray nameJson;
    QByteArray keyJson;
    quint64 seq = 0;
    // Ids, not pointers: prepare is user code and may disconnect clients while we iterate.
    QList<ConnectionId> recipients;

    WireFrame frame(const QByteArray &dataJson) const
    {
        return WireFrame::notification(nameJson, keyJson, seq, dataJson);
    }
    WireFrame frame(const QJsonValue &data) const { return frame(toJsonUtf8(data)); }
};

// Counts the notification on the key and lists who receives it; std::nullopt when nobody
// listens to the key, or when d is null (the notifier is not registered).
std::optional<Delivery> startDelivery(ServerPrivate *d, const QString &name,
                                      const QByteArray &nameJson, const QString &keyText,
                                      const NotFor &notFor)
{
    if (!d)
        return std::nullopt;
    Registry::Entry *entry = d->registry.entry(name, keyText);
    if (!entry)
        return std::nullopt;
    Delivery delivery;
    delivery.nameJson = nameJson;
    delivery.keyJson = keyText.toUtf8();
    delivery.seq = ++entry->seq;
    delivery.recipients = d->registry.recipients(*entry, notFor);
    return delivery;
}

} // namespace

void AbstractNotifier::deliverSame(const QJsonValue &key, const QJsonValue &data,
                                   const NotFor &notFor)
{
    QByteArray dataJson;
    sendSame(canonicalKey(key), data, dataJson, notFor);
}

void AbstractNotifier::notifySame(const QJsonValue &key, const QJsonValue &data,
                                  const NotFor &notFor)
{
    const QString keyText = canonicalKey(key);
    QByteArray dataJson;
    sendSame(keyText, data, dataJson, notFor);
    if (!isClustered())
        return;
    if (dataJson.isNull())
        dataJson = toJsonUtf8(data); // nobody here listens: encoded for the other nodes alone
    m_server->d->cluster.publishNotify(m_name, keyText, QString::fromUtf8(dataJson), notFor);
}

void AbstractNotifier::sendSame(const QString &keyText, const QJsonValue &data,
                                QByteArray &dataJson, const NotFor &notFor)
{
    ServerPrivate *d = m_registered ? m_server->d.get() : nullptr;
    const auto delivery = startDelivery(d, m_name, m_nameJson, keyText, notFor);
    if (!delivery)
        return;
    dataJson = toJsonUtf8(data);
    const WireFrame frame = delivery->frame(dataJson);
    for (ConnectionId id : std::as_const(delivery->recipients)) {
        if (Connection *c = d->connection(id))
            d->sendNotif(*c, frame);
    }
}

void AbstractNotifier::deliverPrepared(const QJsonValue &key, const NotFor &notFor,
                                       const void *notif, const SyncPrepare &prepare,
                                       const SameData &sameData)
{
    ServerPrivate *d = m_registered ? m_server->d.get() : nullptr;
    const auto delivery = startDelivery(d, m_name, m_nameJson, canonicalKey(key), notFor);
    if (!delivery)
        return;
    // The notification itself is encoded once, for the first listener that receives it as it
    // is. Consecutive listeners whose prepare gives data of their own that compares equal
    // share one encoded frame too (comparing is cheaper than encoding).
    WireFrame sameFrame;
    QJsonValue data;
    QJsonValue lastData;
    WireFrame lastFrame;
    for (ConnectionId id : std::as_const(delivery->recipients)) {
        Connection *c = d->connection(id);
        if (!c)
            continue;
        const quint64 removed = d->removedConnections;
        const Prepared prepared = prepare(c->identity, notif, data);
        if (prepared == Prepared::Skipped)
            continue;
        // prepare is the application's code: it may have closed this connection.
        if (d->removedConnections != removed && !(c = d->connection(id)))
            continue;
        if (prepared == Prepared::Same) {
            Q_ASSERT(sameData);
            if (sameFrame.isNull())
                sameFrame = delivery->frame(sameData());
            d->sendNotif(*c, sameFrame);
            continue;
        }
        if (lastFrame.isNull() || data != lastData) {
            lastData = std::move(data);
            lastFrame = delivery->frame(lastData);
        }
        d->sendNotif(*c, lastFrame);
    }
}

void AbstractNotifier::deliverPreparedAsync(const QJsonValue &key, const NotFor &notFor,
                                            const AsyncPrepare &prepare)
{
    ServerPrivate *d = m_registered ? m_server->d.get() : nullptr;
    auto delivery = startDelivery(d, m_name, m_nameJson, canonicalKey(key), notFor);
    if (!delivery)
        return;
    auto shared = std::make_shared<const Delivery>(std::move(*delivery));
    QPointer<Server> server = m_server;
    for (ConnectionId id : shared->recipients) {
        Connection *c = d->connection(id);
        if (!c)
            continue;
        std::shared_ptr<PendingNotif> pending = d->reserveNotif(*c);
        prepare(c->identity, [server, id, pending, shared](std::optional<QJsonValue> data) {
            if (!server || pending->ready)
                return; // server gone, or done called twice
            pending->ready = true;
            if (data)
                pending->frame = shared->frame(*data);
            server->d->flushOrdered(id);
        });
    }
}

} // namespace QtNotif
