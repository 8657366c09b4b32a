#include <QtNotif/clientnotifier.h>

#include "client_p.h"

#include <QtNotif/protocol.h>

namespace QtNotif {

using Protocol::canonicalKey;

ClientNotifier::ClientNotifier(Client *client, const QString &name)
    : QObject(client), d(std::make_unique<ClientNotifierPrivate>(this, client, name))
{
}

ClientNotifier::~ClientNotifier() = default;

QString ClientNotifier::name() const
{
    return d->name;
}

Client *ClientNotifier::client() const
{
    return d->client;
}

QVariantList ClientNotifier::keys() const
{
    QVariantList keys;
    keys.reserve(d->keys.size());
    for (const ClientNotifierPrivate::WantedKey &wanted : std::as_const(d->keys))
        keys.append(wanted.key.toVariant());
    return keys;
}

void ClientNotifier::listen(const QVariant &key)
{
    const QJsonValue json = variantToJson(key);
    const QString canonical = canonicalKey(json);
    if (d->keys.contains(canonical))
        return; // wanted already: listened, or to be listened on connect
    const auto wanted = d->keys.insert(canonical, { json });
    ClientPrivate::get(d->client)->sendListen(this, canonical, *wanted);
    Q_EMIT keysChanged();
}

void ClientNotifier::unlisten(const QVariant &key)
{
    const QJsonValue json = variantToJson(key);
    if (!d->keys.remove(canonicalKey(json)))
        return;
    ClientPrivate::get(d->client)->sendUnlisten(this, json);
    Q_EMIT keysChanged();
}

bool ClientNotifier::isListening(const QVariant &key) const
{
    return d->keys.contains(canonicalKey(variantToJson(key)));
}

void ClientNotifier::warnUndecodable(const QJsonValue &key, bool keyFailed) const
{
    qCWarning(lcClient).noquote() << "skipped an event of notifier" << d->name << "for key"
                                  << Protocol::toJsonText(key) << "whose"
                                  << (keyFailed ? "key" : "notification")
                                  << "does not decode as the type onEvent() expects";
}

void ClientNotifierPrivate::deliver(const QJsonValue &key, const QJsonValue &data, quint64 seq)
{
    if (!keys.contains(canonicalKey(key)))
        return; // unlistened while the notification was on its way
    Q_EMIT q->jsonEvent(key, data, seq);
    Q_EMIT q->clientEvent(key.toVariant(), data.toVariant());
}

void ClientNotifierPrivate::listenFailed(qint64 id, const QString &key, const QString &code,
                                         const QString &message)
{
    const auto wanted = keys.constFind(key);
    if (wanted == keys.cend() || wanted->listenId != id)
        return; // unlistened since, or listened again with a newer frame
    const QVariant keyVariant = wanted->key.toVariant();
    keys.erase(wanted);
    Q_EMIT q->keysChanged();
    Q_EMIT q->listenFailed(keyVariant, code, message);
}

void ClientNotifierPrivate::listenedByServer(const QJsonValue &key)
{
    const QString canonical = canonicalKey(key);
    const bool added = !keys.contains(canonical);
    if (added) {
        keys.insert(canonical, { key });
        Q_EMIT q->keysChanged();
    }
    Q_EMIT q->listened(key.toVariant());
}

void ClientNotifierPrivate::unlistenedByServer(const QJsonValue &key, const QString &reason)
{
    if (!keys.remove(canonicalKey(key)))
        return; // the application unlistened it meanwhile
    using Reason = ClientNotifier::UnlistenReason;
    const Reason why = reason == Protocol::UnlistenReason::User       ? Reason::User
                       : reason == Protocol::UnlistenReason::Notifier ? Reason::Notifier
                                                                      : Reason::Server;
    Q_EMIT q->keysChanged();
    Q_EMIT q->unlistened(key.toVariant(), why);
}

} // namespace QtNotif
