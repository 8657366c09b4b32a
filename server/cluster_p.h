// The nodes' side of a cluster: which backplane channels this server subscribes to, and the
// messages it exchanges with the other nodes over them. docs/cluster.md describes the design.
#pragma once

#include <QtNotif/backplane.h>
#include <QtNotif/notfor.h>

#include <QtCore/QFuture>
#include <QtCore/QJsonObject>
#include <QtCore/QPromise>
#include <QtCore/QStringList>

#include <functional>

#include <chrono>
#include <memory>
#include <unordered_map>

namespace QtNotif {

class ServerPrivate;

class Cluster
{
public:
    explicit Cluster(ServerPrivate *d);
    ~Cluster();

    // Replaces the backplane (a fresh in-process one when null) and subscribes it to every
    // channel this node needs.
    void setBackplane(std::unique_ptr<Backplane> backplane);
    Backplane *backplane() const { return m_backplane.get(); }
    QString nodeId() const { return QString::fromLatin1(m_nodeId); }

    // Whether notify must publish: false for a server alone.
    bool reachesOtherNodes() const { return m_backplane->reachesOtherNodes(); }

    // A key got its first listener on this node, or lost its last.
    void keyAdded(const QString &notifier, const QString &keyText);
    void keyRemoved(const QString &notifier, const QString &keyText);
    // Runs ready once notifications published on other nodes for the key reach this one.
    void whenKeyReachable(const QString &notifier, const QString &keyText,
                          std::function<void()> ready);

    // Sends a notify to the other nodes listening to the key. dataText is the notification as
    // JSON text, encoded once. A connection in notFor lives on this node and is left out here,
    // so only a user travels.
    void publishNotify(const QString &notifier, const QString &keyText, const QString &dataText,
                       const NotFor &notFor);

    // Cluster requests: each other node answers, and the future gives the answers combined
    // with this node's (local): a sum, or the sorted union of user ids. Nodes that do not
    // answer within the timeout are left out (a warning says so); without other nodes, or
    // offline, the future is ready with local at once.
    QFuture<int> countListeners(const QString &notifier, const QJsonValue &key, int local);
    QFuture<int> unlistenUser(const QString &notifier, const QJsonValue &key, const QString &userId,
                              int local);
    QFuture<QStringList> listeningUsers(const QString &notifier, const QJsonValue &key,
                                        QStringList local);

    std::chrono::milliseconds requestTimeout{ 2000 };

private:
    struct PendingRequest
    {
        std::function<void(const QJsonValue &answer)> add;
        std::function<void()> finish; // gives the future its result
        int expected = -1; // answers to wait for, once the publish says how many nodes it reached
        int answers = 0;
    };

    static QByteArray keyChannel(const QString &notifier, const QString &keyText);
    // The same, from the notifier's name as JSON text.
    static QByteArray keyChannelOf(const QString &nameText, const QString &keyText);
    // Sends a request to every node; add(result, answer) folds each answer into local.
    template<typename T, typename Add>
    QFuture<T> gather(QJsonObject message, T local, Add add);
    void send(QJsonObject message, PendingRequest pending);
    void finishIfAnswered(quint64 id);
    void finish(quint64 id);
    void onMessage(const QByteArray &channel, const QByteArray &message);
    void onRequest(const QJsonObject &message);
    void onNotify(const QJsonObject &message);

    ServerPrivate *d;
    QByteArray m_nodeId;
    QByteArray m_nodeChannel;
    std::unique_ptr<Backplane> m_backplane;
    bool m_alone = true; // the default backplane: no other node, no key subscriptions
    std::unordered_map<quint64, PendingRequest> m_requests;
    quint64 m_lastRequest = 0;
};

} // namespace QtNotif
