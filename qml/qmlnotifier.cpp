#include "qmlnotifier.h"

#include "qmlclient.h"
#include "qmlvalues_p.h"

#include <QtNotif/clientnotifier.h>

namespace QtNotif {

namespace {

// How many Notifier elements want each key of one ClientNotifier: the key is listened while
// the count is above zero. A child of the ClientNotifier, so it lives and dies with it.
class KeyShares : public QObject
{
public:
    static KeyShares *of(ClientNotifier *notifier)
    {
        auto *shares = notifier->findChild<KeyShares *>(QString(), Qt::FindDirectChildrenOnly);
        return shares ? shares : new KeyShares(notifier);
    }

    void acquire(const QString &canonical, const QVariant &key)
    {
        if (m_counts[canonical]++ == 0 || !m_notifier->isListening(key))
            m_notifier->listen(key);
    }

    void release(const QString &canonical, const QVariant &key)
    {
        auto it = m_counts.find(canonical);
        if (it == m_counts.end())
            return;
        if (--*it == 0) {
            m_counts.erase(it);
            m_notifier->unlisten(key);
        }
    }

private:
    explicit KeyShares(ClientNotifier *notifier) : QObject(notifier), m_notifier(notifier) { }

    ClientNotifier *m_notifier;
    QHash<QString, int> m_counts;
};

QString reasonName(ClientNotifier::UnlistenReason reason)
{
    switch (reason) {
    case ClientNotifier::UnlistenReason::User:
        return QStringLiteral("user");
    case ClientNotifier::UnlistenReason::Notifier:
        return QStringLiteral("notifier");
    case ClientNotifier::UnlistenReason::Server:
        break;
    }
    return QStringLiteral("server");
}

} // namespace

QmlNotifier::QmlNotifier(QObject *parent) : QObject(parent) { }

QmlNotifier::~QmlNotifier()
{
    detach();
}

void QmlNotifier::setClient(QmlClient *client)
{
    if (m_client == client)
        return;
    detach();
    m_client = client;
    attach();
    Q_EMIT clientChanged();
}

void QmlNotifier::setName(const QString &name)
{
    if (m_name == name)
        return;
    detach();
    m_name = name;
    attach();
    Q_EMIT nameChanged();
}

void QmlNotifier::setKeys(const QVariantList &keys)
{
    QVariantList plain;
    plain.reserve(keys.size());
    for (const QVariant &key : keys)
        plain.append(plainVariant(key));
    if (m_keys == plain)
        return;
    m_keys = plain;
    if (m_notifier)
        holdShares(m_keys);
    Q_EMIT keysChanged();
}

void QmlNotifier::componentComplete()
{
    m_complete = true;
    attach();
}

void QmlNotifier::attach()
{
    if (!m_complete || !m_client || m_name.isEmpty() || m_notifier)
        return;
    m_notifier = m_client->notifier(m_name);
    connect(m_notifier, &ClientNotifier::clientEvent, this,
            [this](const QVariant &key, const QVariant &notif) {
                if (isMine(key))
                    Q_EMIT clientEvent(key, notif);
            });
    connect(m_notifier, &ClientNotifier::listenFailed, this,
            [this](const QVariant &key, const QString &code, const QString &message) {
                if (isMine(key))
                    Q_EMIT listenFailed(key, code, message);
            });
    connect(m_notifier, &ClientNotifier::unlistened, this,
            [this](const QVariant &key, ClientNotifier::UnlistenReason reason) {
                if (!isMine(key))
                    return;
                m_serverKeys.remove(canonicalQmlKey(key));
                Q_EMIT unlistened(key, reasonName(reason));
            });
    connect(m_notifier, &ClientNotifier::listened, this, [this](const QVariant &key) {
        m_serverKeys.insert(canonicalQmlKey(key));
        Q_EMIT listened(key);
    });
    holdShares(m_keys);
}

void QmlNotifier::detach()
{
    if (!m_notifier)
        return;
    disconnect(m_notifier, nullptr, this, nullptr);
    holdShares({});
    m_serverKeys.clear();
    m_notifier = nullptr;
}

void QmlNotifier::holdShares(const QVariantList &keys)
{
    // Take the new shares before giving back the old ones, so that a key in both lists is
    // never unlistened in between.
    KeyShares *shares = KeyShares::of(m_notifier);
    QHash<QString, QVariant> wanted;
    for (const QVariant &key : keys) {
        const QString canonical = canonicalQmlKey(key);
        if (wanted.contains(canonical))
            continue;
        wanted.insert(canonical, key);
        if (!m_held.contains(canonical))
            shares->acquire(canonical, key);
    }
    for (auto it = m_held.cbegin(); it != m_held.cend(); ++it) {
        if (!wanted.contains(it.key()))
            shares->release(it.key(), it.value());
    }
    m_held = wanted;
}

bool QmlNotifier::isMine(const QVariant &key) const
{
    const QString canonical = canonicalQmlKey(key);
    return m_held.contains(canonical) || m_serverKeys.contains(canonical);
}

void QmlNotifier::call(const QString &method, const QJSValue &payload, const QJSValue &callback)
{
    if (!m_client) {
        qCWarning(lcQml) << "Notifier" << m_name << "has no client to call" << method;
        return;
    }
    m_client->call(method, payload, callback);
}

} // namespace QtNotif
