#include "cluster_p.h"

#include "backplane/inprocessbackplane_p.h"
#include "logging_p.h"
#include "server_p.h"

#include <QtNotif/protocol.h>

#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QRandomGenerator>
#include <QtCore/QTimer>

namespace QtNotif {

using namespace Protocol;

// Messages between nodes are compact JSON objects; "t" tells their type.
// clang-format off
//   type          channel                  fields
//   notify        key:<notifier>:<key>     o: origin node, n: notifier, k: key, d: data,
//                                          u: the notFor user (absent for none)
//   count         all                      o, q: request id, n, k
//   users         all                      o, q, n, k
//   unlistenUser  all                      o, q, n, k, u: user id
//   answer        node:<origin>            q, v: the answering node's share (a number, or an
//                                          array of user ids for "users")
// clang-format on
namespace {

const QByteArray AllChannel = QByteArrayLiteral("all");
const QLatin1String Type("t");
const QLatin1String Origin("o");
const QLatin1String RequestId("q");
const QLatin1String Notifier("n");
const QLatin1String Key("k");
const QLatin1String Data("d");
const QLatin1String User("u");
const QLatin1String Value("v");

QByteArray encodeMessage(const QJsonObject &message)
{
    return QJsonDocument(message).toJson(QJsonDocument::Compact);
}

} // namespace

Cluster::Cluster(ServerPrivate *d)
    : d(d), m_nodeId(QByteArray::number(QRandomGenerator::system()->generate64(), 16)
                             .rightJustified(16, '0')),
      m_nodeChannel("node:" + m_nodeId)
{
}

Cluster::~Cluster() = default;

void Cluster::setBackplane(std::unique_ptr<Backplane> backplane)
{
    // A server alone (the default) has nobody to hear from: it subscribes to no key, so that a
    // first listen costs no channel bookkeeping.
    m_alone = !backplane;
    if (!backplane)
        backplane = InProcessBackplane::create(QUrl(), nullptr);
    // Acks waiting for the old backplane's subscriptions go now; requests waiting on its nodes
    // end with what they have.
    if (m_backplane)
        m_backplane->runAllWaiting();
    std::vector<quint64> waiting;
    for (const auto &entry : m_requests)
        waiting.push_back(entry.first);
    for (quint64 id : waiting)
        finish(id);

    m_backplane = std::move(backplane);
    QObject::connect(m_backplane.get(), &Backplane::messageReceived, d->q,
                     [this](const QByteArray &channel, const QByteArray &message) {
                         onMessage(channel, message);
                     });
    m_backplane->subscribe(AllChannel);
    m_backplane->subscribe(m_nodeChannel);
    d->registry.forEachKey([this](const QString &notifier, const QString &keyText) {
        keyAdded(notifier, keyText);
    });
    m_backplane->start();
}

QByteArray Cluster::keyChannel(const QString &notifier, const QString &keyText)
{
    return keyChannelOf(toJsonText(notifier), keyText);
}

QByteArray Cluster::keyChannelOf(const QString &nameText, const QString &keyText)
{
    // The notifier as a JSON string ends at its closing quote: no two (notifier, key) pairs
    // share a channel.
    return "key:" + nameText.toUtf8() + ':' + keyText.toUtf8();
}

void Cluster::keyAdded(const QString &notifier, const QString &keyText)
{
    if (!m_alone)
        m_backplane->subscribe(keyChannel(notifier, keyText));
}

void Cluster::keyRemoved(const QString &notifier, const QString &keyText)
{
    if (!m_alone)
        m_backplane->unsubscribe(keyChannel(notifier, keyText));
}

void Cluster::whenKeyReachable(const QString &notifier, const QString &keyText,
                               std::function<void()> ready)
{
    if (m_alone)
        ready();
    else
        m_backplane->whenSubscribed(keyChannel(notifier, keyText), std::move(ready));
}

void Cluster::publishNotify(const QString &notifier, const QString &keyText,
                            const QString &dataText, const NotFor &notFor)
{
    // Built as text from parts already encoded: the notification is not encoded again.
    const QString nameText = toJsonText(notifier);
    QString text = u"{\"t\":\"notify\",\"o\":\"" + QString::fromLatin1(m_nodeId) + u"\",\"n\":"
                   + nameText + u",\"k\":" + keyText + u",\"d\":" + dataText;
    if (notFor.kind() == NotFor::Kind::User)
        text += u",\"u\":" + toJsonText(notFor.userId());
    text += u'}';
    m_backplane->publish(keyChannelOf(nameText, keyText), text.toUtf8());
}

QFuture<int> Cluster::countListeners(const QString &notifier, const QJsonValue &key, int local)
{
    return gather({ { Type, QLatin1String("count") }, { Notifier, notifier }, { Key, key } }, local,
                  [](int &total, const QJsonValue &answer) { total += answer.toInt(); });
}

QFuture<int> Cluster::unlistenUser(const QString &notifier, const QJsonValue &key,
                                   const QString &userId, int local)
{
    return gather({ { Type, QLatin1String("unlistenUser") },
                    { Notifier, notifier },
                    { Key, key },
                    { User, userId } },
                  local, [](int &total, const QJsonValue &answer) { total += answer.toInt(); });
}

QFuture<QStringList> Cluster::listeningUsers(const QString &notifier, const QJsonValue &key,
                                             QStringList local)
{
    local.sort();
    return gather({ { Type, QLatin1String("users") }, { Notifier, notifier }, { Key, key } }, local,
                  [](QStringList &users, const QJsonValue &answer) {
                      for (const QJsonValue &user : answer.toArray())
                          users.append(user.toString());
                      users.sort();
                      users.removeDuplicates();
                  });
}

template<typename T, typename Add>
QFuture<T> Cluster::gather(QJsonObject message, T local, Add add)
{
    if (!m_backplane->reachesOtherNodes() || m_backplane->status() != Backplane::Status::Online)
        return QtFuture::makeReadyFuture(std::move(local));
    struct State
    {
        QPromise<T> promise;
        T result;
    };
    auto state = std::make_shared<State>(State{ QPromise<T>(), std::move(local) });
    state->promise.start();
    PendingRequest pending;
    pending.add = [state, add](const QJsonValue &answer) { add(state->result, answer); };
    pending.finish = [state] {
        state->promise.addResult(std::move(state->result));
        state->promise.finish();
    };
    send(std::move(message), std::move(pending));
    return state->promise.future();
}

void Cluster::send(QJsonObject message, PendingRequest pending)
{
    const quint64 id = ++m_lastRequest;
    message.insert(Origin, QString::fromLatin1(m_nodeId));
    message.insert(RequestId, QString::number(id));
    m_requests.emplace(id, std::move(pending));
    m_backplane->publish(AllChannel, encodeMessage(message), [this, id](int receivers) {
        const auto it = m_requests.find(id);
        if (it == m_requests.end())
            return;
        // Every node is subscribed to "all", this one included.
        it->second.expected = receivers < 0 ? 0 : receivers - 1;
        finishIfAnswered(id);
    });
    QTimer::singleShot(requestTimeout, d->q, [this, id] {
        const auto it = m_requests.find(id);
        if (it == m_requests.end())
            return;
        qCWarning(lcServer) << "a cluster request got" << it->second.answers << "answers of"
                            << it->second.expected << "within" << requestTimeout.count()
                            << "ms; the result leaves the others out";
        finish(id);
    });
}

void Cluster::finishIfAnswered(quint64 id)
{
    const auto it = m_requests.find(id);
    if (it != m_requests.end() && it->second.expected >= 0
        && it->second.answers >= it->second.expected)
        finish(id);
}

void Cluster::finish(quint64 id)
{
    auto node = m_requests.extract(id);
    if (node.empty())
        return;
    node.mapped().finish();
}

void Cluster::onMessage(const QByteArray &channel, const QByteArray &bytes)
{
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(bytes, &error);
    if (!document.isObject()) {
        qCWarning(lcServer) << "ignored a backplane message that is not a JSON object on" << channel
                            << ":" << error.errorString();
        return;
    }
    const QJsonObject message = document.object();
    const QString type = message.value(Type).toString();
    if (type == QLatin1String("answer")) {
        const auto it = m_requests.find(message.value(RequestId).toString().toULongLong());
        if (it == m_requests.end())
            return; // timed out already
        it->second.add(message.value(Value));
        ++it->second.answers;
        finishIfAnswered(it->first);
    } else if (message.value(Origin).toString() == QLatin1String(m_nodeId)) {
        return; // this node's own message back: delivered or answered here already
    } else if (type == QLatin1String("notify")) {
        onNotify(message);
    } else {
        onRequest(message);
    }
}

void Cluster::onNotify(const QJsonObject &message)
{
    AbstractNotifier *notifier = d->notifiers.value(message.value(Notifier).toString());
    if (!notifier)
        return; // a notifier other nodes have and this one does not
    const QJsonValue user = message.value(User);
    notifier->deliverFromCluster(message.value(Key), message.value(Data),
                                 user.isString() ? NotFor::user(user.toString()) : NotFor());
}

void Cluster::onRequest(const QJsonObject &message)
{
    const QString type = message.value(Type).toString();
    AbstractNotifier *notifier = d->notifiers.value(message.value(Notifier).toString());
    const QJsonValue key = message.value(Key);
    QJsonValue value;
    if (type == QLatin1String("count")) {
        value = notifier ? notifier->localListenerCountJson(key) : 0;
    } else if (type == QLatin1String("unlistenUser")) {
        value = notifier ? notifier->unlistenUserHere(message.value(User).toString(), key) : 0;
    } else if (type == QLatin1String("users")) {
        value = QJsonArray::fromStringList(notifier ? notifier->localListeningUsersJson(key)
                                                    : QStringList());
    } else {
        qCWarning(lcServer) << "ignored a backplane request of unknown type" << type;
        return;
    }
    const QByteArray origin = message.value(Origin).toString().toLatin1();
    m_backplane->publish("node:" + origin, encodeMessage({ { Type, QLatin1String("answer") },
                                                           { RequestId, message.value(RequestId) },
                                                           { Value, value } }));
}

} // namespace QtNotif
