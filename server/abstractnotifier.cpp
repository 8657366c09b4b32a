#include <QtNotif/abstractnotifier.h>

#include "server_p.h"

#include <QtNotif/protocol.h>

#include <QtCore/QPointer>
#include <QtCore/QThread>

namespace QtNotif {

using namespace Protocol;

AbstractNotifier::AbstractNotifier(Server *server, const QString &name)
    : QObject(server), m_server(server), m_name(name)
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
    return true;
}

int AbstractNotifier::unlistenUserJson(const QString &userId, const QJsonValue &key)
{
    if (!m_registered)
        return 0;
    ServerPrivate *d = m_server->d.get();
    const QList<ConnectionId> removed = d->registry.unlistenUser(userId, m_name, canonicalKey(key));
    for (ConnectionId connection : removed)
        d->sendUnlistened(connection, m_name, key, UnlistenReason::User);
    return int(removed.size());
}

int AbstractNotifier::listenerCountJson(const QJsonValue &key) const
{
    return m_registered ? m_server->d->registry.listenerCount(m_name, canonicalKey(key)) : 0;
}

int AbstractNotifier::keyCount() const
{
    return m_registered ? m_server->d->registry.keyCount(m_name) : 0;
}

void AbstractNotifier::clean()
{
    // Nothing to do by construction: Registry drops a key with its last listener.
    Q_ASSERT(!m_registered || m_server->d->registry.keyCount(m_name) >= 0);
}

void AbstractNotifier::deliverSame(const QJsonValue &key, const QJsonValue &data,
                                   const NotFor &notFor)
{
    deliverPrepared(key, notFor, [data](const Identity &) { return std::optional(data); });
}

void AbstractNotifier::deliverPrepared(const QJsonValue &key, const NotFor &notFor,
                                       const SyncPrepare &prepare)
{
    if (!m_registered)
        return;
    ServerPrivate *d = m_server->d.get();
    const QString keyText = canonicalKey(key);
    const quint64 seq = d->registry.nextSeq(m_name, keyText);
    if (!seq)
        return; // nobody listens
    const QString nameText = toJsonText(m_name);
    const QList<ConnectionId> recipients = d->registry.recipients(m_name, keyText, notFor);
    // Recipients whose prepare gives the same JSON share one encoded frame: with a
    // SimpleNotifier that is everyone, so the data is encoded once per notify.
    QJsonValue lastData;
    QString lastFrame;
    for (ConnectionId id : recipients) {
        Connection *c = d->connection(id);
        if (!c)
            continue;
        const std::optional<QJsonValue> data = prepare(c->identity);
        if (!data)
            continue;
        if (lastFrame.isNull() || *data != lastData) {
            lastData = *data;
            lastFrame = notifFrame(nameText, keyText, seq, toJsonText(lastData));
        }
        d->sendNotif(*c, lastFrame);
    }
}

void AbstractNotifier::deliverPreparedAsync(const QJsonValue &key, const NotFor &notFor,
                                            const AsyncPrepare &prepare)
{
    if (!m_registered)
        return;
    ServerPrivate *d = m_server->d.get();
    const QString keyText = canonicalKey(key);
    const quint64 seq = d->registry.nextSeq(m_name, keyText);
    if (!seq)
        return;
    const QString nameText = toJsonText(m_name);
    const QList<ConnectionId> recipients = d->registry.recipients(m_name, keyText, notFor);
    for (ConnectionId id : recipients) {
        Connection *c = d->connection(id);
        if (!c)
            continue;
        std::shared_ptr<PendingNotif> pending = d->reserveNotif(*c);
        QPointer<Server> server = m_server;
        prepare(c->identity,
                [server, id, pending, nameText, keyText, seq](std::optional<QJsonValue> data) {
                    if (!server || pending->ready)
                        return; // server gone, or done called twice
                    pending->ready = true;
                    if (data)
                        pending->text = notifFrame(nameText, keyText, seq, toJsonText(*data));
                    server->d->flushOrdered(id);
                });
    }
}

} // namespace QtNotif
