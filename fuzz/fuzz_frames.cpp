// libFuzzer target over the frame decoder (protocol/) and the server's dispatch of client frames
// (ServerPrivate::onTextMessage() and what follows), with notifiers, authorisers, handlers and
// notifications interleaved. docs/fuzzing.md tells how to run it.
//
// An input is a script of lines ('\n' ends a line; empty lines are skipped). When the first line
// is "!C", the server is two, nodes of one cluster, clients 0 and 1 on the first, 2 and 3 on the
// second; what they send each other, subscription confirmations included (listens wait for
// them to be acked), arrives on "!e" and at the end. Then:
//   - a line that does not start with '!' is a text frame the current client sends;
//   - a line that starts with '!' is something the server's application or the network does
//     (on the current client's server):
//       !c<digit>  client <digit> % 4 becomes the current one, connected first if it is not
//                  (0 is anonymous, 1 alice, 2 bob, 3 kim, whose credentials expire at
//                  once: the next "!e" closes the connection)
//       !d         the current client's socket goes away
//       !k         the application disconnects the current client (Server::disconnectClient)
//       !i<user>   the application changes the current client's identity (no user: anonymous)
//       !n<json>   notify the key on every notifier whose key type takes it
//       !m<json>   the same, leaving out the current client (notFor me)
//       !o<json>   the same, leaving out the current client's user
//       !l<json>   server-side listen of the current client to the key on "any"
//       !u<json>   server-side unlisten of the same
//       !U<json>   unlistenUser of the current client's user on "any"
//       !a         answer the requests the handler "later" kept, finish pending prepares
//                  of "room" (bob's finish at once; the others wait for this)
//       !x         remove the notifier "room", or add it back
//       !e         deliver what the nodes of a cluster sent each other, and run the event loop
//                  once (deferred deletes, queued calls)
//       !b         in a cluster, take the current node's backplane link down, or bring it back
//       !q<json>   ask "any" who listens to the key (count, connections, users)
//       !h<digit>  capacity hints for "any", then clean() it
//
// The server is real; only the sockets are not. A connection is made as accept() makes one after
// the handshake, with a SocketLink that has no socket (sending to it does nothing), and the
// server's sendObserver shows the harness every frame sent. Each input gets a server of its own.
//
// Besides the sanitizers and Q_ASSERT, the harness checks what docs/protocol.md promises:
//   - every text frame gets exactly one answer (ack, reply or error), carrying the frame's id
//     when it had a readable one;
//   - the decoder agrees with parseObject(), and what it decodes encodes and decodes again to
//     the same frame; the canonical text of keys and payloads reads back as the same value and
//     the same text, and notification frames built from them parse;
//   - every frame sent is a JSON object; notifications (sent at once) go to listening
//     connections, with seq increasing while they listen; none prepared for an identity reaches
//     the connection after that identity changed;
//   - listenerAdded and listenerRemoved tell exactly the changes of the listener table, and
//     a notifier's answers about who listens to a key agree with them;
//   - a listen to a typed notifier is registered under the key notify() gives for the key's
//     decoded value, so that notifications on that value reach it.

#include "roomkey.h"
#include "server_p.h"

#include <QtNotif/backplane.h>
#include <QtNotif/notifier.h>
#include <QtNotif/protocol.h>
#include <QtNotif/server.h>

#include <QtCore/QAbstractEventDispatcher>
#include <QtCore/QCoreApplication>
#include <QtCore/QDateTime>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QPointer>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

using namespace QtNotif;

namespace {

// QTNOTIF_FUZZ_TRACE=1 prints each step and each frame sent: what reproducing a finding shows.
const bool tracing = qEnvironmentVariableIsSet("QTNOTIF_FUZZ_TRACE");

// A broken promise: reported like a crash, with the input that caused it kept as an artifact.
[[noreturn]] void fail(const char *what, const QString &detail = QString())
{
    std::fprintf(stderr, "fuzz_frames: %s %s\n", what, qUtf8Printable(detail));
    std::abort();
}

void check(bool condition, const char *what, const QString &detail = QString())
{
    if (!condition)
        fail(what, detail);
}

// The id an answer must carry, read by the harness's own rule (docs/protocol.md: an integer
// from 0 to 2^53-1); -1 when the frame has none that can be read.
qint64 readableId(const QByteArray &utf8)
{
    const QJsonDocument document = QJsonDocument::fromJson(utf8);
    if (!document.isObject())
        return -1;
    const QJsonValue id = document.object().value(QLatin1String("id"));
    if (!id.isDouble())
        return -1;
    const double value = id.toDouble();
    if (!(value >= 0 && value <= 9007199254740991.0) || value != std::floor(value))
        return -1;
    return id.toInteger(qint64(value));
}

// A JSON value from text, scalars included.
std::optional<QJsonValue> parseValue(const QByteArray &text)
{
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson('[' + text + ']', &error);
    if (error.error != QJsonParseError::NoError || document.array().size() != 1)
        return std::nullopt;
    return document.array().at(0);
}

// The text of a key or payload reads back as the same value, with the same text.
void checkValueText(const QJsonValue &value)
{
    const QString text = Protocol::toJsonText(value);
    const std::optional<QJsonValue> back = parseValue(text.toUtf8());
    check(back.has_value(), "the JSON text of a value does not parse:", text);
    check(Protocol::toJsonText(*back) == text, "the JSON text of a value changes when read back:",
          text + QLatin1String(" -> ") + Protocol::toJsonText(*back));
    check(*back == value, "a value is not equal to itself read back from its text:", text);
}

void checkDecoder(const QByteArray &utf8)
{
    using namespace Protocol;
    const auto decoded = decodeClientFrame(utf8);
    const std::optional<QJsonObject> object = parseObject(utf8);
    const qint64 id = readableId(utf8);
    if (const auto *error = std::get_if<FrameError>(&decoded)) {
        const bool shapeless
                = error->code == ErrorCode::InvalidJson || error->code == ErrorCode::NotAnObject;
        check(object.has_value() != shapeless,
              "decoder and parseObject() disagree:", QString(error->code));
        check(error->id.value_or(-1) == id, "an error's id is not the frame's readable id");
        check(error->code == ErrorCode::InvalidJson || error->code == ErrorCode::NotAnObject
                      || error->code == ErrorCode::InvalidField
                      || error->code == ErrorCode::UnknownOp,
              "the decoder gave an error code of another stage:", QString(error->code));
        return;
    }
    const ClientFrame &frame = std::get<ClientFrame>(decoded);
    check(object.has_value(), "decoded a frame that parseObject() refuses");
    check(frame.id == id, "a decoded frame has another id than the readable one");

    // Encoded again, it decodes to the same frame.
    QString again;
    if (frame.kind == ClientFrame::Kind::Request) {
        check(!frame.payload.isUndefined(), "a request without payload");
        checkValueText(frame.payload);
        again = requestFrame(frame.id, frame.method, frame.payload);
    } else {
        check(!frame.key.isNull() && !frame.key.isUndefined(), "a listen without key");
        checkValueText(frame.key);
        again = listenFrame(frame.kind == ClientFrame::Kind::Listen ? Op::Listen : Op::Unlisten,
                            frame.id, frame.notifier, frame.key);
    }
    const auto redecoded = decodeClientFrame(again.toUtf8());
    const auto *same = std::get_if<ClientFrame>(&redecoded);
    check(same, "an encoded frame does not decode:", again);
    check(same->kind == frame.kind && same->id == frame.id && same->notifier == frame.notifier
                  && same->method == frame.method
                  && canonicalKey(same->key) == canonicalKey(frame.key) && same->key == frame.key
                  && same->payload == frame.payload,
          "a frame encoded and decoded again differs:", again);

    // A notification assembled from these parts, as the server assembles one, parses.
    const QString name = frame.kind == ClientFrame::Kind::Request ? frame.method : frame.notifier;
    const QJsonValue key = frame.kind == ClientFrame::Kind::Request ? frame.payload : frame.key;
    const QString notif = notifFrame(toJsonText(name), canonicalKey(key), 7, toJsonText(key));
    const std::optional<QJsonObject> parsed = parseObject(notif.toUtf8());
    check(parsed.has_value(), "an assembled notif frame does not parse:", notif);
    check(parsed->value(QLatin1String("notifier")) == name
                  && parsed->value(QLatin1String("key")) == key
                  && parsed->value(QLatin1String("data")) == key
                  && parsed->value(QLatin1String("seq")) == 7,
          "an assembled notif frame reads back differently:", notif);
}

using Chat = SimpleNotifier<QString, QJsonValue>;
using Any = SimpleNotifier<QJsonValue, QJsonValue>;
using Count = Notifier<int, int, QString>;
using Room = Notifier<RoomKey, QString, QString>;

Identity identityFor(const QString &user)
{
    if (user.isEmpty())
        return Identity::anonymous();
    return Identity::user(user, { { QStringLiteral("role"), user == QLatin1String("admin")
                                                                    ? QStringLiteral("admin")
                                                                    : QStringLiteral("member") } });
}

// The backplane of the fuzzer's clusters: what travels between the nodes of one input waits on
// their bus until "!e" delivers it, subscription confirmations included, so that listens wait
// for their acks as they do over Redis. "!b" takes a node's link down, or brings it back.
class FuzzBackplane : public Backplane
{
public:
    struct Bus
    {
        std::vector<FuzzBackplane *> members;
        std::deque<std::function<void()>> inFlight; // in the order they were sent
    };

    explicit FuzzBackplane(Bus &bus) : Backplane(QUrl(QStringLiteral("fuzz:"))), bus(bus)
    {
        bus.members.push_back(this);
    }
    ~FuzzBackplane() override { std::erase(bus.members, this); }

    bool reachesOtherNodes() const override { return bus.members.size() > 1; }

    void toggleLink()
    {
        if (status() == Status::Online) {
            setStatus(Status::Connecting);
        } else {
            setStatus(Status::Online);
            confirmLater(channels());
        }
    }

    // Delivers what is on its way, and what that sends in turn; false when there was nothing.
    static bool deliver(Bus &bus)
    {
        // Bounded: nodes answer each other's requests, never endlessly, but a bug could.
        for (int i = 0; i < 10000; ++i) {
            if (bus.inFlight.empty())
                return i > 0;
            const std::function<void()> next = std::move(bus.inFlight.front());
            bus.inFlight.pop_front();
            next();
        }
        fail("the nodes of a cluster keep sending each other messages");
    }

protected:
    void doStart() override
    {
        setStatus(Status::Online);
        confirmLater(channels());
    }
    void doSubscribe(const QByteArray &channel) override { confirmLater({ channel }); }
    void doUnsubscribe(const QByteArray &) override { }
    bool doPublish(const QByteArray &channel, const QByteArray &message, Sent sent) override
    {
        if (status() != Status::Online)
            return false;
        int receivers = 0;
        for (FuzzBackplane *member : bus.members) {
            if (member->status() != Status::Online || !member->isSubscribed(channel))
                continue;
            ++receivers;
            bus.inFlight.push_back([member = QPointer<FuzzBackplane>(member), channel, message] {
                if (member)
                    member->received(channel, message);
            });
        }
        if (sent) {
            bus.inFlight.push_back([self = QPointer<FuzzBackplane>(this), sent, receivers] {
                if (self)
                    sent(receivers);
            });
        }
        return true;
    }

private:
    void confirmLater(const QSet<QByteArray> &channels)
    {
        bus.inFlight.push_back([self = QPointer<FuzzBackplane>(this), channels] {
            if (self && self->status() == Status::Online) {
                for (const QByteArray &channel : channels)
                    self->subscriptionConfirmed(channel);
            }
        });
    }

    Bus &bus;
};

// One input's server (two in a cluster), its application and the harness's record of what the
// clients saw.
class Harness
{
public:
    explicit Harness(bool clustered);
    ~Harness();
    void run(const QList<QByteArray> &lines);

private:
    // One server and the notifiers its application made.
    struct Node
    {
        std::unique_ptr<Server> server;
        ServerPrivate *d = nullptr;
        Chat *chat = nullptr;
        Any *any = nullptr;
        Count *count = nullptr;
        Room *room = nullptr;
        FuzzBackplane *backplane = nullptr; // in a cluster; the server owns it
    };
    // What the harness knows of one connection.
    struct Peer
    {
        QList<qint64> awaited; // ids of frames still unanswered; -1: no readable id
        QHash<QPair<QString, QString>, qint64> lastSeq; // (notifier, key) -> last seq seen
    };
    using Listen = std::tuple<ConnectionId, QString, QString>; // connection, notifier, key text

    // The connection ids of node n start at n << 32: ids say their node.
    Node &nodeOf(ConnectionId id) { return nodes[std::size_t(id >> 32)]; }
    const Node &nodeOf(ConnectionId id) const { return nodes[std::size_t(id >> 32)]; }
    void setUp(Node &node, int index);
    void step(const QByteArray &line);
    void command(char op, const QByteArray &argument);
    ConnectionId current();
    ConnectionId connect(int slot);
    void addRoom(Node &node);
    template<typename Key>
    void watch(Node &node, KeyedNotifier<Key> *notifier);
    void notifyAll(Node &node, const QJsonValue &key, const QJsonValue &data, const NotFor &notFor);
    void answerLater();
    void finishPrepares();
    void onSent(ConnectionId id, const QString &text);
    void checkTables() const;
    void checkListeners(const Node &node, const QJsonValue &key) const;

    // Node 0; in a cluster, node 1 too, joined by the bus. Clients 0 and 1 are on node 0,
    // clients 2 and 3 on the last node.
    FuzzBackplane::Bus bus;
    std::vector<Node> nodes;
    ConnectionId clientSlots[4] = {};
    int currentSlot = 0;
    std::map<ConnectionId, Peer> peers;
    std::set<Listen> listens; // as listenerAdded and listenerRemoved told them
    std::vector<Request> later;
    std::vector<Request> orphans;                   // kept until the servers are gone
    qint64 dispatching = -1;                        // id of the frame being dispatched
    std::vector<std::function<void(int)>> prepares; // room's, waiting for "!a"
    bool finishing = false;                         // in "!a": queued notifications go out
    int notifies = 0;
};

Harness::Harness(bool clustered) : nodes(clustered ? 2 : 1)
{
    for (std::size_t i = 0; i < nodes.size(); ++i)
        setUp(nodes[i], int(i));
    if (clustered) {
        for (Node &node : nodes) {
            auto backplane = std::make_unique<FuzzBackplane>(bus);
            node.backplane = backplane.get();
            node.server->setBackplane(std::move(backplane));
        }
    }
}

void Harness::setUp(Node &node, int index)
{
    node.server = std::make_unique<Server>();
    Server *server = node.server.get();
    node.d = ServerPrivate::get(server);
    node.d->lastId = ConnectionId(index) << 32;
    // Small limits, so that inputs reach them.
    server->setMaxListensPerConnection(6);
    server->setMaxKeySize(96);
    // Practically no refill: which request is refused does not depend on time.
    server->setRequestRate(1e-6, 12);
    node.d->sendObserver = [this](ConnectionId id, const QString &text) { onSent(id, text); };
    QObject::connect(server, &Server::clientDisconnected, server, [this](ConnectionId id) {
        peers.erase(id);
        for (ConnectionId &s : clientSlots) {
            if (s == id)
                s = 0;
        }
    });

    server->setListenAuthorizer(
            [](const Identity &identity, const QString &notifier, const QJsonValue &key) {
                if (key.isString() && key.toString().startsWith(QLatin1String("secret")))
                    return identity.userId() == QLatin1String("admin");
                return !(notifier == QLatin1String("any") && key.isObject()
                         && key.toObject().value(QLatin1String("deny")).toBool());
            });

    node.chat = new Chat(server, QStringLiteral("chat"));
    node.any = new Any(server, QStringLiteral("any"));
    node.count
            = new Count(server, QStringLiteral("count"),
                        [server](const Identity &identity, const int &n) -> std::optional<QString> {
                            if (identity.isAnonymous())
                                return std::nullopt;
                            // A prepare that disconnects its recipient (and others of the
                            // user).
                            if (identity.userId().startsWith(QLatin1Char('k'))) {
                                const auto ids = server->connectionsOfUser(identity.userId());
                                for (ConnectionId id : ids)
                                    server->disconnectClient(id);
                            }
                            return QString::number(n);
                        });
    node.count->setListenAuthorizer([](const Identity &, const int &key) { return key >= 0; });
    watch(node, node.chat);
    watch(node, node.any);
    watch(node, node.count);
    addRoom(node);

    server->setHandler(QStringLiteral("echo"), [](const Request &r) { r.reply(r.payload()); });
    server->setHandler(QStringLiteral("fail"),
                       [](const Request &r) { r.fail(QStringLiteral("nope"), r.method()); });
    server->setHandler(QStringLiteral("silent"), [](const Request &) {});
    server->setHandler(QStringLiteral("later"), [this](const Request &r) { later.push_back(r); });
    server->setHandler(QStringLiteral("orphan"), [this](const Request &r) {
        // Answered ("no_reply") only once the server is gone, which must not matter.
        orphans.push_back(r);
        peers[r.connection()].awaited.removeOne(dispatching);
    });
    server->setHandler(QStringLiteral("notify"), [this, &node](const Request &r) {
        const QJsonObject payload = r.payload().toObject();
        notifyAll(node, payload.value(QLatin1String("key")), payload.value(QLatin1String("data")),
                  r.me());
        r.reply();
    });
    server->setHandler(QStringLiteral("kick"), [server](const Request &r) {
        server->disconnectClient(r.connection());
        r.reply();
    });
    server->setHandler(QStringLiteral("relogin"), [server](const Request &r) {
        server->setIdentity(r.connection(), identityFor(r.payload().toString()));
        r.reply(true);
    });
    server->setHandler(QStringLiteral("listen"), [&node](const Request &r) {
        r.reply(node.any->listenJson(r.connection(), r.payload()));
    });
    server->setHandler(QStringLiteral("unhandle"), [server](const Request &r) {
        server->removeHandler(r.method());
        r.reply();
    });
}

Harness::~Harness()
{
    for (Node &node : nodes)
        node.d->sendObserver = nullptr;
    later.clear();
    for (Node &node : nodes)
        node.server.reset();
    nodes.clear();
    // What outlives the servers: requests still to answer and prepares still to finish.
    orphans.clear();
    finishPrepares();
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    // A closed socket is aborted if its close handshake takes more than 5 s, and a cluster
    // request ends after 2 s: single-shot timers, parented to the event dispatcher until they
    // fire. The event loop does not run here: without this, every input would leave its timers
    // behind, and libFuzzer would take the growth for a leak to look into after each input.
    if (QObject *dispatcher = QAbstractEventDispatcher::instance()) {
        const QObjectList children = dispatcher->children();
        for (QObject *child : children) {
            if (child->inherits("QSingleShotTimer"))
                delete child;
        }
    }
}

template<typename Key>
void Harness::watch(Node &node, KeyedNotifier<Key> *notifier)
{
    // Presence, as applications do it: a chat key that starts with 'p' is told who comes and
    // goes.
    const auto presence = [&node, notifier](const QJsonValue &key, const QString &what) {
        if (static_cast<AbstractNotifier *>(notifier) == node.chat
            && key.toString().startsWith(QLatin1Char('p')))
            node.chat->notify(key.toString(), what);
    };
    QObject::connect(
            notifier, &AbstractNotifier::listenerAdded, notifier,
            [this, notifier, presence](ConnectionId id, const Identity &, const QJsonValue &key) {
                const QString text = Protocol::canonicalKey(key);
                check(listens.emplace(id, notifier->name(), text).second,
                      "listenerAdded for a listen already there");
                // notify(value) sends to the listeners of encode(value).
                const std::optional<Key> value = Codec<Key>::decode(key);
                check(value.has_value(), "a listen to a key of another type:", text);
                const QString notified = Protocol::canonicalKey(Codec<Key>::encode(*value));
                check(notified == text, "a listen that notifications on its key do not reach:",
                      text + QLatin1String(" is notified as ") + notified);
                presence(key, QStringLiteral("joined"));
            });
    QObject::connect(
            notifier, &AbstractNotifier::listenerRemoved, notifier,
            [this, notifier, presence](ConnectionId id, const Identity &, const QJsonValue &key) {
                const QString text = Protocol::canonicalKey(key);
                check(listens.erase({ id, notifier->name(), text }) == 1,
                      "listenerRemoved for no listen:", text);
                if (const auto peer = peers.find(id); peer != peers.end())
                    peer->second.lastSeq.remove({ notifier->name(), text });
                presence(key, QStringLiteral("left"));
            });
}

void Harness::addRoom(Node &node)
{
    node.room = new Room(node.server.get(), QStringLiteral("room"),
                         [this](const Identity &identity, const QString &, Room::Done done) {
                             // Finished by "!a", in an order of the harness's choosing, or at
                             // once for bob; the data is the user it was prepared for.
                             if (identity.userId() == QLatin1String("bob")) {
                                 done(identity.userId());
                                 return;
                             }
                             prepares.push_back([done, user = identity.userId()](int how) {
                                 if (how % 3 == 1)
                                     done(std::nullopt);
                                 else
                                     done(user);
                                 if (how % 4 == 0)
                                     done(user); // a second call must be ignored
                             });
                         });
    node.room->setListenAuthorizer([](const Identity &identity, const RoomKey &key) {
        return key.level <= 3
               || identity.attribute(QStringLiteral("role")) == QLatin1String("admin");
    });
    watch(node, node.room);
}

ConnectionId Harness::connect(int s)
{
    static const QLatin1String users[] = { QLatin1String(""), QLatin1String("alice"),
                                           QLatin1String("bob"), QLatin1String("kim") };
    ServerPrivate *d = nodes[s < 2 ? 0 : nodes.size() - 1].d;
    // What ServerPrivate::accept() does once the handshake and the authenticator passed.
    auto owned = std::make_unique<Connection>();
    const ConnectionId id = ++d->lastId;
    owned->id = id;
    owned->link.emplace(nullptr);
    owned->identity = identityFor(users[s]);
    owned->lastHeard.start();
    owned->requestTokens = d->requestBurst;
    owned->requestClock.start();
    if (s == 3) {
        // kim's credentials expire at once: the connection is closed (4419) when events next
        // run ("!e").
        owned->expiry = d->expiries.emplace(QDateTime::currentMSecsSinceEpoch(), id);
        d->expiryTimer.start(0);
    }
    d->registry.addConnection(id, owned->identity.userId());
    d->connections.add(id, std::move(owned));
    peers[id];
    clientSlots[s] = id;
    return id;
}

ConnectionId Harness::current()
{
    return clientSlots[currentSlot] ? clientSlots[currentSlot] : connect(currentSlot);
}

void Harness::notifyAll(Node &node, const QJsonValue &key, const QJsonValue &data,
                        const NotFor &notFor)
{
    ++notifies;
    if (const auto k = Codec<QString>::decode(key))
        node.chat->notify(*k, data, notFor);
    node.any->notify(key, data, notFor);
    if (const auto k = Codec<int>::decode(key))
        node.count->notify(*k, notifies, notFor);
    if (node.room) {
        if (const auto k = Codec<RoomKey>::decode(key))
            node.room->notify(*k, QString::number(notifies), notFor);
    }
}

void Harness::answerLater()
{
    const auto kept = std::exchange(later, {});
    for (std::size_t i = 0; i < kept.size(); ++i) {
        if (i % 2 == 0)
            kept[i].reply(int(i));
        // the others go unanswered: "no_reply" when the last copy goes
    }
}

void Harness::finishPrepares()
{
    finishing = true;
    // Last first: each client must still get its notifications in notify order.
    auto waiting = std::exchange(prepares, {});
    for (std::size_t i = waiting.size(); i-- > 0;)
        waiting[i](int(i));
    finishing = false;
}

void Harness::command(char op, const QByteArray &argument)
{
    if (op == 'c') {
        currentSlot = argument.isEmpty() ? 0 : (argument.at(0) & 0xff) % 4;
        current();
        return;
    }
    const auto json = [&argument] { return parseValue(argument); };
    const ConnectionId me = current();
    Node &node = nodeOf(me);
    Server *server = node.server.get();
    switch (op) {
    case 'd':
        node.d->removeConnection(me); // deletes its socket
        break;
    case 'k':
        server->disconnectClient(me, 1000, QStringLiteral("kicked"));
        break;
    case 'i':
        server->setIdentity(me, identityFor(QString::fromUtf8(argument)));
        break;
    case 'n':
    case 'm':
    case 'o':
        if (const auto key = json()) {
            const NotFor notFor = op == 'n'   ? NotFor()
                                  : op == 'm' ? NotFor::connection(me)
                                              : NotFor::user(server->identity(me).userId());
            notifyAll(node, *key, QJsonValue(notifies), notFor);
        }
        break;
    case 'l':
        if (const auto key = json())
            node.any->listenJson(me, *key);
        break;
    case 'u':
        if (const auto key = json())
            node.any->unlistenJson(me, *key);
        break;
    case 'U':
        if (const auto key = json())
            node.any->unlistenUserJson(server->identity(me).userId(), *key);
        break;
    case 'a':
        answerLater();
        finishPrepares();
        break;
    case 'x':
        if (node.room) {
            delete node.room;
            node.room = nullptr;
            // Deleting a notifier tells its listeners "unlistened", not listenerRemoved.
            for (auto it = listens.begin(); it != listens.end();) {
                if (std::get<1>(*it) == QLatin1String("room") && &nodeOf(std::get<0>(*it)) == &node)
                    it = listens.erase(it);
                else
                    ++it;
            }
        } else {
            addRoom(node);
        }
        break;
    case 'e':
        FuzzBackplane::deliver(bus);
        QCoreApplication::processEvents();
        QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
        break;
    case 'b':
        if (node.backplane)
            node.backplane->toggleLink();
        break;
    case 'q':
        if (const auto key = json())
            checkListeners(node, *key);
        break;
    case 'h': {
        const int hint = argument.isEmpty() ? 0 : (argument.at(0) & 0xff) % 8;
        node.any->setCapacityHints(hint * 4, hint);
        node.any->clean();
        break;
    }
    default:
        break;
    }
}

void Harness::step(const QByteArray &line)
{
    if (tracing)
        std::fprintf(stderr, "client %d: %s\n", currentSlot, line.constData());
    if (line.startsWith('!')) {
        command(line.size() > 1 ? line.at(1) : '\0', line.mid(2));
    } else {
        // What a WebSocket hands over is valid UTF-8: invalid text closes the connection.
        const QString text = QString::fromUtf8(line);
        const QByteArray utf8 = text.toUtf8();
        checkDecoder(utf8);
        const ConnectionId id = current();
        dispatching = readableId(utf8);
        peers[id].awaited.append(dispatching);
        nodeOf(id).d->onTextMessage(id, text);
    }
    checkTables();
}

void Harness::run(const QList<QByteArray> &lines)
{
    for (const QByteArray &line : lines) {
        if (!line.isEmpty())
            step(line);
    }
    answerLater();
    // What the nodes still have on their way to each other (listen acks among it).
    while (FuzzBackplane::deliver(bus))
        checkTables();
    for (const auto &[id, peer] : peers) {
        check(peer.awaited.isEmpty(), "frames never answered on connection", QString::number(id));
    }
    checkTables();
}

void Harness::onSent(ConnectionId id, const QString &text)
{
    if (tracing) {
        std::fprintf(stderr, "  to %llu%s: %s\n", id & 0xffffffffu, id >> 32 ? " (node 1)" : "",
                     qUtf8Printable(text));
    }
    const std::optional<QJsonObject> frame = Protocol::parseObject(text.toUtf8());
    check(frame.has_value(), "the server sent a frame that is not a JSON object:", text);
    const auto peer = peers.find(id);
    check(peer != peers.end(), "a frame sent to a connection that is gone:", text);
    const ServerPrivate *d = nodeOf(id).d;
    const QString op = frame->value(QLatin1String("op")).toString();
    if (op == QLatin1String("ack") || op == QLatin1String("reply")
        || op == QLatin1String("error")) {
        const QJsonValue idValue = frame->value(QLatin1String("id"));
        const qint64 answered = idValue.isUndefined() ? -1 : idValue.toInteger(-2);
        const auto at = peer->second.awaited.indexOf(answered);
        check(at >= 0, "an answer to no frame:", text);
        peer->second.awaited.removeAt(at);
    } else if (op == QLatin1String("notif")) {
        const QString notifier = frame->value(QLatin1String("notifier")).toString();
        const QString key = Protocol::canonicalKey(frame->value(QLatin1String("key")));
        const qint64 seq = frame->value(QLatin1String("seq")).toInteger();
        if (notifier == QLatin1String("room")) {
            const Connection *c = d->connections.find(id);
            check(frame->value(QLatin1String("data")).toString() == c->identity.userId(),
                  "a notification prepared for another identity:", text);
        }
        qint64 &last = peer->second.lastSeq[{ notifier, key }];
        if (finishing) {
            // Held back behind a prepare: it may follow an unlisten, or a listen again.
            last = 0;
        } else {
            check(d->registry.isListening(id, notifier, key),
                  "a notification for a key the connection does not listen to:", text);
            check(seq > last, "seq did not increase:", text);
            last = seq;
        }
    } else if (op == QLatin1String("unlistened")) {
        // The listen ended (its notifier removed, say): a listen again counts seq afresh.
        peer->second.lastSeq.remove({ frame->value(QLatin1String("notifier")).toString(),
                                      Protocol::canonicalKey(frame->value(QLatin1String("key"))) });
    } else {
        check(op == QLatin1String("listened") || op == QLatin1String("identity"),
              "the server sent a frame of unknown op:", text);
    }
}

void Harness::checkTables() const
{
    int listenCount = 0;
    std::set<std::tuple<const Node *, QString, QString>> keys;
    std::size_t connections = 0;
    for (const Node &node : nodes) {
        listenCount += node.server->listenCount();
        check(int(node.d->connections.size()) == node.d->registry.connectionCount(),
              "connections and the table disagree");
        connections += node.d->connections.size();
    }
    check(int(listens.size()) == listenCount,
          "listenerAdded/listenerRemoved do not add up to the listener tables");
    for (const auto &[id, notifier, key] : listens) {
        const Node &node = nodeOf(id);
        check(node.d->registry.isListening(id, notifier, key),
              "a listen the table does not have:", notifier + QLatin1Char(' ') + key);
        keys.emplace(&node, notifier, key);
    }
    int keyCount = 0;
    for (const Node &node : nodes)
        keyCount += node.server->keyCount();
    check(int(keys.size()) == keyCount, "key count differs from the listens");
    check(connections == peers.size(), "the harness lost track of connections");
}

void Harness::checkListeners(const Node &node, const QJsonValue &key) const
{
    const QString text = Protocol::canonicalKey(key);
    QSet<ConnectionId> expected;
    QStringList users;
    for (const auto &[id, notifier, listened] : listens) {
        if (&nodeOf(id) == &node && notifier == node.any->name() && listened == text) {
            expected.insert(id);
            if (const QString user = node.server->identity(id).userId(); !user.isEmpty())
                users.append(user);
        }
    }
    users.sort();
    users.removeDuplicates();
    const QList<ConnectionId> listeners = node.any->localListenersJson(key);
    check(QSet<ConnectionId>(listeners.cbegin(), listeners.cend()) == expected
                  && listeners.size() == expected.size(),
          "localListenersJson() differs from the listens:", text);
    check(node.any->localListenerCountJson(key) == expected.size(),
          "localListenerCountJson() differs from the listens:", text);
    check(node.any->localListeningUsersJson(key) == users,
          "localListeningUsersJson() differs from the listens:", text);
    if (nodes.size() == 1) {
        check(node.any->listenerCountJson(key).result() == expected.size(),
              "listenerCountJson() of a server alone differs from the listens:", text);
    } else {
        // Answered once the other node has: seen through the event loop, or never.
        node.any->listenerCountJson(key);
        node.any->listeningUsersJson(key);
    }
}

void ignoreMessages(QtMsgType, const QMessageLogContext &, const QString &) { }

} // namespace

extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    // Warnings ("does not decode", "ignored a limit") are expected: keep the run quiet. Fatal
    // messages (Q_ASSERT) still abort after the handler.
    qInstallMessageHandler(ignoreMessages);
    new QCoreApplication(*argc, *argv); // for timers and deleteLater; lives until exit
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    QList<QByteArray> lines
            = QByteArray::fromRawData(reinterpret_cast<const char *>(data), qsizetype(size))
                      .split('\n');
    // "!C" first: two servers in a cluster.
    const bool clustered = !lines.isEmpty() && lines.first() == "!C";
    if (clustered)
        lines.removeFirst();
    Harness harness(clustered);
    harness.run(lines);
    return 0;
}
