#pragma once

#include <QtNotif/global.h>

#include <QtCore/QByteArray>
#include <QtCore/QHash>
#include <QtCore/QList>
#include <QtCore/QObject>
#include <QtCore/QSet>
#include <QtCore/QUrl>

#include <functional>
#include <memory>

namespace QtNotif {

// What carries notifications and cluster requests between the servers (nodes) of a cluster: a
// publish/subscribe transport of byte messages on named channels.
//
// A Server has one. By default it is an in-process backplane of its own, which reaches no
// other node: nothing travels and nothing is encoded. Backplane::create() makes the others
// from a URL:
//
//   inproc://name                                 servers of one process (one per thread, say)
//   redis://[[user]:password@]host[:port][/db]    nodes anywhere, through one Redis server
//
// The server subscribes to a channel for each key that has listeners on it, so a node receives
// nothing for keys nobody on it listens to (a server alone, on its default backplane, subscribes
// to none). A backplane lives on its server's thread.
//
// To write another transport, subclass and implement the do*() functions; call received()
// for every message that arrives on a subscribed channel and setStatus() as the link changes.
class QTNOTIF_SERVER_EXPORT Backplane : public QObject
{
    Q_OBJECT
public:
    enum class Status {
        Offline,    // not started, or given up (see the log)
        Connecting, // (re)connecting; messages that cannot travel meanwhile are dropped
        Online,     // messages travel; every subscription is in place
    };
    Q_ENUM(Status)

    // Counters since the backplane was made.
    struct Stats
    {
        quint64 published = 0; // messages handed to the transport
        quint64 dropped = 0;   // messages not sent: offline, or too many waiting
        quint64 received = 0;  // messages received on subscribed channels
        int channels = 0;      // channels currently subscribed to
    };

    ~Backplane() override;

    // The backplane a URL names (see the class comment), not started; nullptr and a message in
    // errorString for a URL it cannot use.
    static std::unique_ptr<Backplane> create(const QUrl &url, QString *errorString = nullptr);

    // The URL it was made from, password removed: fit for logs.
    QUrl url() const { return m_url; }
    // url without its password (and without an empty user name left behind).
    static QUrl redacted(const QUrl &url);
    Status status() const { return m_status; }
    Stats stats() const;
    // Whether a published message may reach another node. False for a server alone: the
    // server then skips encoding messages nobody would read.
    virtual bool reachesOtherNodes() const { return true; }

    // Connects; done by the server when the backplane is set.
    void start();

    // Subscriptions are a set: subscribing twice, or unsubscribing from a channel not
    // subscribed to, does nothing. They last across reconnections.
    void subscribe(const QByteArray &channel);
    void unsubscribe(const QByteArray &channel);
    bool isSubscribed(const QByteArray &channel) const { return m_channels.contains(channel); }
    QSet<QByteArray> channels() const { return m_channels; }
    // Runs ready once messages published on the channel by any node reach this one: at once
    // when the subscription is in place, later when the transport has yet to confirm it. Also
    // at once when not online (nothing reaches this node then) or not subscribed to channel.
    // The server acknowledges a client's listen this way, so that a client that listens and
    // then fetches what it missed (a history call) misses nothing published in between.
    void whenSubscribed(const QByteArray &channel, std::function<void()> ready);

    // Called once the message is sent, with the number of nodes subscribed to the channel it
    // reached (this one included when subscribed), or -1 when it was dropped.
    using Sent = std::function<void(int receivers)>;
    // Publishes message on channel. Fire and forget: when offline it is dropped (counted in
    // stats().dropped), never queued for later.
    void publish(const QByteArray &channel, const QByteArray &message, Sent sent = {});

Q_SIGNALS:
    void statusChanged(QtNotif::Backplane::Status status);
    // A message arrived on a subscribed channel; this node's own messages come back too.
    void messageReceived(const QByteArray &channel, const QByteArray &message);

protected:
    explicit Backplane(const QUrl &url, QObject *parent = nullptr);

    // Leaving Online forgets every confirmation (they are made again after a reconnection).
    void setStatus(Status status);
    // To call when the transport confirms a subscription (at once, if it has nothing to wait for).
    void subscriptionConfirmed(const QByteArray &channel);
    // To call for each message arriving on a subscribed channel.
    void received(const QByteArray &channel, const QByteArray &message);

    virtual void doStart() = 0;
    virtual void doSubscribe(const QByteArray &channel) = 0;
    virtual void doUnsubscribe(const QByteArray &channel) = 0;
    // Returns false when the message cannot be sent now; sent is then not called.
    virtual bool doPublish(const QByteArray &channel, const QByteArray &message, Sent sent) = 0;

private:
    friend class Cluster;
    void runWaiting(const QByteArray &channel);
    // Runs every callback still waiting for a subscription: the backplane is being replaced.
    void runAllWaiting();

    QUrl m_url;
    Status m_status = Status::Offline;
    QSet<QByteArray> m_channels;
    QSet<QByteArray> m_confirmed;
    QHash<QByteArray, QList<std::function<void()>>> m_waiting;
    Stats m_stats;
};

} // namespace QtNotif
