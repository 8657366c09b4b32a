#include <QtNotif/backplane.h>

#include "inprocessbackplane_p.h"
#include "redisbackplane_p.h"

#include "../logging_p.h"

namespace QtNotif {

Backplane::Backplane(const QUrl &url, QObject *parent) : QObject(parent), m_url(redacted(url)) { }

QUrl Backplane::redacted(const QUrl &url)
{
    QUrl result = url.adjusted(QUrl::RemovePassword);
    if (result.userName().isEmpty())
        result.setUserInfo(QString());
    return result;
}

Backplane::~Backplane() = default;

std::unique_ptr<Backplane> Backplane::create(const QUrl &url, QString *errorString)
{
    QString error;
    std::unique_ptr<Backplane> backplane;
    if (!url.isValid())
        error = QStringLiteral("invalid backplane URL: %1").arg(url.errorString());
    else if (url.scheme() == QLatin1String("inproc"))
        backplane = InProcessBackplane::create(url, &error);
    else if (url.scheme() == QLatin1String("redis"))
        backplane = RedisBackplane::create(url, &error);
    else
        error = QStringLiteral("unknown backplane scheme \"%1\" (use inproc:// or redis://)")
                        .arg(url.scheme());
    if (errorString)
        *errorString = error;
    return backplane;
}

Backplane::Stats Backplane::stats() const
{
    Stats stats = m_stats;
    stats.channels = int(m_channels.size());
    return stats;
}

void Backplane::start()
{
    doStart();
}

void Backplane::subscribe(const QByteArray &channel)
{
    if (m_channels.contains(channel))
        return;
    m_channels.insert(channel);
    doSubscribe(channel);
}

void Backplane::unsubscribe(const QByteArray &channel)
{
    if (!m_channels.remove(channel))
        return;
    m_confirmed.remove(channel);
    runWaiting(channel);
    doUnsubscribe(channel);
}

void Backplane::whenSubscribed(const QByteArray &channel, std::function<void()> ready)
{
    if (m_status != Status::Online || !m_channels.contains(channel)
        || m_confirmed.contains(channel)) {
        ready();
        return;
    }
    m_waiting[channel].append(std::move(ready));
}

void Backplane::subscriptionConfirmed(const QByteArray &channel)
{
    if (!m_channels.contains(channel))
        return;
    m_confirmed.insert(channel);
    runWaiting(channel);
}

void Backplane::runAllWaiting()
{
    const auto waiting = std::exchange(m_waiting, {});
    for (const auto &channel : waiting) {
        for (const auto &ready : channel)
            ready();
    }
}

void Backplane::runWaiting(const QByteArray &channel)
{
    const QList<std::function<void()>> waiting = m_waiting.take(channel);
    for (const auto &ready : waiting)
        ready();
}

void Backplane::publish(const QByteArray &channel, const QByteArray &message, Sent sent)
{
    // Not only when Online: a transport may publish with part of its link down (Redis: the
    // publisher connection up while the subscriber reconnects). doPublish() refuses otherwise.
    if (m_status != Status::Offline && doPublish(channel, message, sent)) {
        ++m_stats.published;
        return;
    }
    ++m_stats.dropped;
    if (sent)
        sent(-1);
}

void Backplane::setStatus(Status status)
{
    if (m_status == status)
        return;
    m_status = status;
    if (status != Status::Online) {
        m_confirmed.clear();
        runAllWaiting();
    }
    Q_EMIT statusChanged(status);
}

void Backplane::received(const QByteArray &channel, const QByteArray &message)
{
    ++m_stats.received;
    Q_EMIT messageReceived(channel, message);
}

} // namespace QtNotif
