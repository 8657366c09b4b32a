#include "redisbackplane_p.h"

#include "../logging_p.h"

// hiredis's Qt adapter is a header-only QObject written with the `slots` keyword, which this
// project turns off (QT_NO_KEYWORDS). Its moc output is built from server/CMakeLists.txt.
#define slots Q_SLOTS
#include <hiredis/adapters/qt.h>
#undef slots
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QRandomGenerator>

#include <algorithm>

namespace QtNotif {

Q_LOGGING_CATEGORY(lcBackplane, "qtnotif.backplane", QtInfoMsg)

namespace {

constexpr int DefaultPort = 6379;
// Backoff between reconnection attempts: doubles from the first to the last, with +-20% jitter
// so that the nodes of a cluster do not all knock at once when Redis comes back.
constexpr std::chrono::milliseconds FirstRetry{ 100 };
constexpr std::chrono::milliseconds LastRetry{ 5000 };
// A connection that is not up by then is given up and made again.
constexpr std::chrono::milliseconds ConnectTimeout{ 5000 };
// Published bytes waiting for Redis beyond which further messages are dropped: a stalled
// Redis must not make the node's memory grow without bound.
constexpr qint64 MaxPendingBytes = 32 * 1024 * 1024;
// Channels per SUBSCRIBE command when subscribing again after a reconnection.
constexpr int SubscribeBatch = 512;

QByteArray replyText(const redisReply *reply)
{
    return reply && reply->str ? QByteArray(reply->str, int(reply->len)) : QByteArray();
}

} // namespace

// A PUBLISH waiting for its reply.
struct RedisBackplane::PendingPublish
{
    RedisBackplane *self;
    qint64 bytes; // of a PUBLISH, counted in m_pendingBytes until Redis answers
    Sent sent;    // of the PUBSUB NUMSUB behind a PUBLISH that asked how many nodes it reached
};

// One hiredis connection and the Qt adapter that drives it from the event loop.
struct RedisBackplane::Link
{
    RedisBackplane *owner = nullptr;
    const char *name = "";
    redisAsyncContext *context = nullptr; // null while down
    bool ready = false;                   // connected, authenticated, answered PING
    QTimer connectTimer;
    QTimer retry;    // the next attempt after a failure
    int attempt = 0; // failed attempts since it was last ready: the backoff's exponent
    // The adapter is made once and pointed at each new context. It keeps the last context's
    // address after hiredis frees it, and its destructor writes through it: before deleting
    // the adapter it is pointed at this zeroed context, which outlives it.
    redisAsyncContext parking{};
    std::unique_ptr<RedisQtAdapter> adapter = std::make_unique<RedisQtAdapter>();

    ~Link() { adapter->setContext(&parking); }
};

std::unique_ptr<Backplane> RedisBackplane::create(const QUrl &url, QString *errorString)
{
    Settings settings;
    settings.host = url.host().toUtf8();
    settings.port = url.port(DefaultPort);
    settings.user = url.userName().toUtf8();
    settings.password = url.password().toUtf8();
    const QString path = url.path().mid(1); // "/3" -> "3"
    bool ok = true;
    if (!path.isEmpty())
        settings.db = path.toInt(&ok);
    if (settings.host.isEmpty()) {
        *errorString = QStringLiteral("redis:// URL without a host");
        return nullptr;
    }
    if (!ok || settings.db < 0) {
        *errorString
                = QStringLiteral("redis:// URL with a database that is not a number: %1").arg(path);
        return nullptr;
    }
    if (!settings.user.isEmpty() && settings.password.isEmpty()) {
        *errorString = QStringLiteral("redis:// URL with a user but no password");
        return nullptr;
    }
    return std::unique_ptr<Backplane>(new RedisBackplane(url, settings));
}

RedisBackplane::RedisBackplane(const QUrl &url, const Settings &settings)
    : Backplane(url), m_settings(settings),
      m_prefix("qtnotif:" + QByteArray::number(settings.db) + ':'),
      m_publisher(std::make_unique<Link>()), m_subscriber(std::make_unique<Link>())
{
    for (Link *link : { m_publisher.get(), m_subscriber.get() }) {
        link->owner = this;
        link->connectTimer.setSingleShot(true);
        link->connectTimer.setInterval(ConnectTimeout);
        QObject::connect(&link->connectTimer, &QTimer::timeout, this,
                         [this, link] { linkLost(*link, "no answer within the connect timeout"); });
        link->retry.setSingleShot(true);
        QObject::connect(&link->retry, &QTimer::timeout, this,
                         [this, link] { connectLink(*link); });
    }
    m_publisher->name = "publisher";
    m_subscriber->name = "subscriber";
}

RedisBackplane::~RedisBackplane()
{
    // Freeing a context runs its pending callbacks with no reply: they must do nothing now.
    m_destroying = true;
    closeLink(*m_publisher);
    closeLink(*m_subscriber);
}

void RedisBackplane::doStart()
{
    if (m_started)
        return;
    m_started = true;
    qCInfo(lcBackplane).noquote() << "connecting to" << url().toString();
    setStatus(Status::Connecting);
    connectLink(*m_publisher);
    connectLink(*m_subscriber);
}

void RedisBackplane::connectLink(Link &link)
{
    if (!openLink(link)) {
        closeLink(link);
        scheduleReconnect(link);
    }
}

bool RedisBackplane::openLink(Link &link)
{
    redisAsyncContext *context = redisAsyncConnect(m_settings.host.constData(), m_settings.port);
    if (!context || context->err) {
        qCWarning(lcBackplane).noquote()
                << "cannot connect the" << link.name << "to" << url().toString() << ":"
                << (context ? context->errstr : "out of memory");
        if (context)
            redisAsyncFree(context);
        return false;
    }
    context->data = &link;
    link.context = context;
    link.ready = false;
    link.adapter->setContext(context);
    redisAsyncSetConnectCallback(context, &RedisBackplane::onConnect);
    redisAsyncSetDisconnectCallback(context, &RedisBackplane::onDisconnect);
    // Commands queue until the connection is up. AUTH first when the URL has a password; the
    // PING that follows proves the link works (and that AUTH passed).
    if (!m_settings.password.isEmpty()) {
        if (m_settings.user.isEmpty()) {
            redisAsyncCommand(context, &RedisBackplane::onHandshake, nullptr, "AUTH %b",
                              m_settings.password.constData(), size_t(m_settings.password.size()));
        } else {
            redisAsyncCommand(context, &RedisBackplane::onHandshake, nullptr, "AUTH %b %b",
                              m_settings.user.constData(), size_t(m_settings.user.size()),
                              m_settings.password.constData(), size_t(m_settings.password.size()));
        }
    }
    // A name that CLIENT LIST shows: which process and which of its two connections.
    const QByteArray name
            = "qtnotif:" + QByteArray::number(QCoreApplication::applicationPid()) + ':' + link.name;
    redisAsyncCommand(context, &RedisBackplane::onHandshake, nullptr, "CLIENT SETNAME %b",
                      name.constData(), size_t(name.size()));
    redisAsyncCommand(context, &RedisBackplane::onHandshake, &link, "PING");
    link.connectTimer.start();
    return true;
}

void RedisBackplane::closeLink(Link &link)
{
    link.connectTimer.stop();
    link.ready = false;
    if (redisAsyncContext *context = std::exchange(link.context, nullptr))
        redisAsyncFree(context); // runs the callbacks, which see a context no longer theirs
}

void RedisBackplane::onConnect(const redisAsyncContext *context, int status)
{
    auto *link = static_cast<Link *>(context->data);
    if (!link || link->context != context || link->owner->m_destroying)
        return;
    if (status != REDIS_OK) {
        // hiredis frees the context once this returns.
        link->context = nullptr;
        link->owner->linkLost(*link, context->errstr);
    } else {
        redisEnableKeepAlive(const_cast<redisContext *>(&context->c));
    }
}

void RedisBackplane::onDisconnect(const redisAsyncContext *context, int status)
{
    auto *link = static_cast<Link *>(context->data);
    if (!link || link->context != context || link->owner->m_destroying)
        return;
    // hiredis frees the context once this returns.
    link->context = nullptr;
    link->owner->linkLost(*link,
                          status == REDIS_OK ? QByteArray("closed") : QByteArray(context->errstr));
}

void RedisBackplane::onHandshake(redisAsyncContext *context, void *reply, void *privdata)
{
    auto *link = static_cast<Link *>(context->data);
    if (!link || link->context != context || link->owner->m_destroying || !reply)
        return;
    const auto *r = static_cast<redisReply *>(reply);
    if (r->type == REDIS_REPLY_ERROR) {
        qCCritical(lcBackplane).noquote()
                << "Redis refused the" << link->name << ":" << replyText(r);
        redisAsyncDisconnect(context); // onDisconnect follows
        return;
    }
    if (privdata) // the PING, last of the handshake
        link->owner->linkReady(*link);
}

void RedisBackplane::linkReady(Link &link)
{
    link.connectTimer.stop();
    link.ready = true;
    link.attempt = 0;
    if (&link == m_subscriber.get()) {
        m_remote.clear();
        m_resubscribing = channels();
        const QList<QByteArray> wanted = m_resubscribing.values();
        for (qsizetype i = 0; i < wanted.size(); i += SubscribeBatch)
            sendSubscribe(wanted.mid(i, SubscribeBatch));
    }
    updateStatus();
}

void RedisBackplane::linkLost(Link &link, const QByteArray &why)
{
    // The two connections come back on their own: a node whose subscriber connection dropped
    // still publishes, and one whose publisher dropped still receives.
    const bool subscriber = &link == m_subscriber.get();
    if (link.ready && status() == Status::Online)
        qCWarning(lcBackplane).noquote().nospace()
                << "lost the " << link.name << " connection to " << url().toString() << " (" << why
                << "): "
                << (subscriber ? "notifications from other nodes stop"
                               : "this node's notifications stop reaching the others")
                << " until it is back; local ones go on";
    else if (link.attempt == 0)
        qCWarning(lcBackplane).noquote().nospace()
                << "cannot reach " << url().toString() << " with the " << link.name << " (" << why
                << "); trying again with backoff";
    else
        qCDebug(lcBackplane) << "the" << link.name << "connection failed:" << why;
    closeLink(link);
    if (subscriber) {
        m_remote.clear();
        m_resubscribing.clear();
    } else {
        m_pendingBytes = 0; // the pending publishes went with the connection
    }
    setStatus(Status::Connecting);
    scheduleReconnect(link);
}

void RedisBackplane::scheduleReconnect(Link &link)
{
    if (link.retry.isActive())
        return;
    const qint64 base
            = std::min<qint64>(LastRetry.count(), FirstRetry.count() << std::min(link.attempt, 16));
    const double jitter = 0.8 + 0.4 * QRandomGenerator::global()->generateDouble();
    ++link.attempt;
    link.retry.start(int(double(base) * jitter));
}

void RedisBackplane::updateStatus()
{
    if (m_publisher->ready && m_subscriber->ready && m_resubscribing.isEmpty()) {
        if (status() != Status::Online)
            qCInfo(lcBackplane).noquote() << "online:" << url().toString() << ","
                                          << channels().size() << "channels subscribed";
        setStatus(Status::Online);
    }
}

void RedisBackplane::doSubscribe(const QByteArray &channel)
{
    if (!m_subscriber->ready)
        return; // linkReady() subscribes to every channel
    const auto it = m_remote.constFind(channel);
    if (it == m_remote.cend())
        sendSubscribe({ channel });
    // Unsubscribing: onSubscriberReply() subscribes again once Redis confirms. Sending SUBSCRIBE
    // now would have hiredis drop this channel's callback when the UNSUBSCRIBE reply arrives.
}

void RedisBackplane::doUnsubscribe(const QByteArray &channel)
{
    if (!m_subscriber->ready)
        return;
    const auto it = m_remote.constFind(channel);
    if (it != m_remote.cend() && *it == Remote::Subscribed)
        sendUnsubscribe(channel);
    // Subscribing: onSubscriberReply() unsubscribes once Redis confirms the subscription.
}

void RedisBackplane::sendSubscribe(const QList<QByteArray> &list)
{
    if (list.isEmpty())
        return;
    QList<QByteArray> args;
    args.reserve(list.size() + 1);
    args.append(QByteArrayLiteral("SUBSCRIBE"));
    for (const QByteArray &channel : list) {
        args.append(m_prefix + channel);
        m_remote.insert(channel, Remote::Subscribing);
    }
    std::vector<const char *> argv;
    std::vector<size_t> argvlen;
    for (const QByteArray &arg : std::as_const(args)) {
        argv.push_back(arg.constData());
        argvlen.push_back(size_t(arg.size()));
    }
    redisAsyncCommandArgv(m_subscriber->context, &RedisBackplane::onSubscriberMessage, this,
                          int(argv.size()), argv.data(), argvlen.data());
}

void RedisBackplane::sendUnsubscribe(const QByteArray &channel)
{
    m_remote.insert(channel, Remote::Unsubscribing);
    const QByteArray prefixed = m_prefix + channel;
    redisAsyncCommand(m_subscriber->context, &RedisBackplane::onSubscriberMessage, this,
                      "UNSUBSCRIBE %b", prefixed.constData(), size_t(prefixed.size()));
}

void RedisBackplane::onSubscriberMessage(redisAsyncContext *context, void *reply, void *privdata)
{
    auto *self = static_cast<RedisBackplane *>(privdata);
    if (!reply || self->m_destroying || self->m_subscriber->context != context)
        return;
    self->onSubscriberReply(reply);
}

void RedisBackplane::onSubscriberReply(void *reply)
{
    const auto *r = static_cast<redisReply *>(reply);
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    const QByteArray kind = replyText(r->element[0]);
    QByteArray channel = replyText(r->element[1]);
    if (!channel.startsWith(m_prefix))
        return;
    channel.remove(0, m_prefix.size());

    if (kind == "message") {
        received(channel, replyText(r->element[2]));
    } else if (kind == "subscribe") {
        m_remote.insert(channel, Remote::Subscribed);
        if (!isSubscribed(channel))
            sendUnsubscribe(channel); // no longer wanted
        else
            subscriptionConfirmed(channel);
        if (m_resubscribing.remove(channel) && m_resubscribing.isEmpty())
            updateStatus();
    } else if (kind == "unsubscribe") {
        m_remote.remove(channel);
        if (isSubscribed(channel))
            sendSubscribe({ channel }); // wanted again meanwhile
    }
}

bool RedisBackplane::doPublish(const QByteArray &channel, const QByteArray &message, Sent sent)
{
    if (!m_publisher->ready)
        return false;
    if (m_pendingBytes > MaxPendingBytes) {
        if (!std::exchange(m_overloaded, true))
            qCWarning(lcBackplane).noquote()
                    << "Redis is not keeping up:" << m_pendingBytes
                    << "bytes wait for it; messages are dropped until it catches up";
        return false;
    }
    m_overloaded = false;
    const QByteArray prefixed = m_prefix + channel;
    auto *publish = new PendingPublish{ this, qint64(prefixed.size() + message.size()), {} };
    if (redisAsyncCommand(m_publisher->context, &RedisBackplane::onPublished, publish,
                          "PUBLISH %b %b", prefixed.constData(), size_t(prefixed.size()),
                          message.constData(), size_t(message.size()))
        != REDIS_OK) {
        delete publish;
        return false;
    }
    m_pendingBytes += publish->bytes;
    if (sent) {
        // PUBLISH counts pattern subscribers too (a redis-cli PSUBSCRIBE '*' watching the
        // traffic, say), which are not nodes. NUMSUB, sent right behind it on the same
        // connection, counts the channel's own subscribers: the nodes.
        auto *count = new PendingPublish{ this, 0, std::move(sent) };
        if (redisAsyncCommand(m_publisher->context, &RedisBackplane::onPublished, count,
                              "PUBSUB NUMSUB %b", prefixed.constData(), size_t(prefixed.size()))
            != REDIS_OK) {
            count->sent(-1);
            delete count;
        }
    }
    return true;
}

void RedisBackplane::onPublished(redisAsyncContext *context, void *reply, void *privdata)
{
    Q_UNUSED(context);
    std::unique_ptr<PendingPublish> publish(static_cast<PendingPublish *>(privdata));
    RedisBackplane *self = publish->self;
    if (self->m_destroying)
        return;
    // No reply: the connection went down with the message (linkLost() reset the count).
    if (!reply) {
        if (publish->sent)
            publish->sent(-1);
        return;
    }
    self->m_pendingBytes = std::max<qint64>(0, self->m_pendingBytes - publish->bytes);
    if (!publish->sent)
        return;
    // Only the PUBSUB NUMSUB behind a PUBLISH carries sent: its answer is [channel, count].
    const auto *r = static_cast<redisReply *>(reply);
    const bool counted = r->type == REDIS_REPLY_ARRAY && r->elements == 2
                         && r->element[1]->type == REDIS_REPLY_INTEGER;
    publish->sent(counted ? int(r->element[1]->integer) : -1);
}

} // namespace QtNotif
