#pragma once

#include <QtNotif/backplane.h>

#include <QtCore/QHash>
#include <QtCore/QTimer>

#include <chrono>
#include <memory>

struct redisAsyncContext;

namespace QtNotif {

// Backplane through one Redis server's publish/subscribe, with hiredis on the Qt event loop.
//
// Two connections: one subscribed to this node's channels, one for PUBLISH (a subscribed
// connection can do nothing else). Channels are prefixed with "qtnotif:<db>:": Redis
// publish/subscribe ignores databases, so the number keeps clusters on different databases
// of one Redis apart. A connection that drops is made again with exponential backoff, on its
// own (the other goes on working), and the subscriber subscribes again to every channel; the
// status says Online once both are up and every channel is subscribed.
class RedisBackplane : public Backplane
{
    Q_OBJECT
public:
    // redis://[[user]:password@]host[:port][/db]
    static std::unique_ptr<Backplane> create(const QUrl &url, QString *errorString);
    ~RedisBackplane() override;

protected:
    void doStart() override;
    void doSubscribe(const QByteArray &channel) override;
    void doUnsubscribe(const QByteArray &channel) override;
    bool doPublish(const QByteArray &channel, const QByteArray &message, Sent sent) override;

private:
    struct Link;
    struct PendingPublish;
    struct Settings
    {
        QByteArray host;
        int port = 6379;
        int db = 0;
        QByteArray user;
        QByteArray password;
    };
    // What the subscriber connection was last told about a channel.
    enum class Remote { Subscribing, Subscribed, Unsubscribing };

    RedisBackplane(const QUrl &url, const Settings &settings);

    void connectLink(Link &link);
    bool openLink(Link &link);
    void closeLink(Link &link);
    void linkReady(Link &link);
    // A connection failed or dropped: closes it and tries again after a backoff.
    void linkLost(Link &link, const QByteArray &why);
    void scheduleReconnect(Link &link);
    void updateStatus();

    void sendSubscribe(const QList<QByteArray> &channels);
    void sendUnsubscribe(const QByteArray &channel);
    void onSubscriberReply(void *reply);

    // hiredis callbacks; the context's data is the Link.
    static void onConnect(const redisAsyncContext *context, int status);
    static void onDisconnect(const redisAsyncContext *context, int status);
    static void onHandshake(redisAsyncContext *context, void *reply, void *privdata);
    static void onSubscriberMessage(redisAsyncContext *context, void *reply, void *privdata);
    static void onPublished(redisAsyncContext *context, void *reply, void *privdata);

    Settings m_settings;
    QByteArray m_prefix;
    std::unique_ptr<Link> m_publisher;
    std::unique_ptr<Link> m_subscriber;
    QHash<QByteArray, Remote> m_remote; // channel (without prefix) -> state on the subscriber
    QSet<QByteArray> m_resubscribing;   // channels subscribed again after (re)connecting, not
                                        // confirmed yet: Online waits for them
    bool m_started = false;
    bool m_destroying = false;

    qint64 m_pendingBytes = 0; // published bytes Redis has not answered yet
    bool m_overloaded = false; // dropping messages since the last warning
};

} // namespace QtNotif
