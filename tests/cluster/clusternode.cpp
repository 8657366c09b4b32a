// One node of a qtnotif cluster, for tst_rediscluster: a QtNotif::Server on 127.0.0.1 (a free
// port) joined to the other nodes through Redis. The test starts two of them and drives them over
// the wire with Client::call().
//
//   qtnotif_clusternode --redis redis://127.0.0.1:6379/0
//
// It prints one JSON object per line on stdout:
//   {"event":"listening","url":"ws://127.0.0.1:<port>","node":"<node id>","status":"Connecting"}
//   {"event":"status","status":"Online"}      at every change of the backplane's status
//
// It quits when its stdin closes (the test's Node::stop()), as a server does: exit status 0, and
// a sanitizer build checks it for leaks then.
//
// Identity: the user named by the query parameter "user" or by "Authorization: Bearer <name>",
// else anonymous. Two notifiers, both keyed by room name:
//   "chat"   SimpleNotifier<QString, QJsonObject>: every listener receives the same object
//   "greet"  Notifier<QString, QJsonObject>: prepare, run by the node of each recipient, adds
//            "to" (the recipient's user) and "node" (that node's id), and leaves out the user
//            named by the notification's "skip"
// Upstream methods:
//   notify         {notifier, key, data, notFor: "me" | "<user>" | null,
//                   repeat: n (1), pad: bytes of "x" added to data as "pad" (0)}   -> null
//   unlistenUser   {notifier, key, user}        -> how many stopped listening in the cluster
//   listenerCount  {notifier, key}              -> {"total": in the cluster, "local": here}
//   listeningUsers {notifier, key}              -> the users listening in the cluster, sorted
//   stats          -> {"node", "status", "published", "dropped", "received", "channels"}
#include <QtNotif/backplane.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QMetaEnum>
#include <QtCore/QSocketNotifier>

#include <cstdio>
#include <unistd.h>

using namespace QtNotif;

namespace {

void print(const QJsonObject &line)
{
    std::fputs(QJsonDocument(line).toJson(QJsonDocument::Compact).append('\n').constData(), stdout);
    std::fflush(stdout);
}

QString statusName(Backplane::Status status)
{
    return QString::fromLatin1(QMetaEnum::fromType<Backplane::Status>().valueToKey(int(status)));
}

AuthResult userFromRequest(const HandshakeRequest &request)
{
    QString user = request.queryItem("user");
    if (user.isEmpty())
        user = QString::fromUtf8(request.bearerToken());
    return user.isEmpty() ? AuthResult::anonymous() : AuthResult::accept(Identity::user(user));
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCommandLineParser parser;
    parser.setApplicationDescription("A qtnotif cluster node for tst_rediscluster.");
    parser.addHelpOption();
    const QCommandLineOption redisOption("redis", "The backplane: redis://host:port/db.", "url");
    parser.addOption(redisOption);
    parser.process(app);
    if (!parser.isSet(redisOption)) {
        std::fputs("--redis <url> is required\n", stderr);
        return 2;
    }

    Server server;
    if (!server.setBackplane(QUrl(parser.value(redisOption)))) {
        std::fprintf(stderr, "%s\n", qPrintable(server.errorString()));
        return 1;
    }
    QObject::connect(server.backplane(), &Backplane::statusChanged, &server,
                     [](Backplane::Status status) {
                         print({ { "event", "status" }, { "status", statusName(status) } });
                     });
    server.setAuthenticator(userFromRequest);
    // The tests drive the node with calls in quick loops and push bursts of tens of MiB to one
    // client (stalledRedisBoundsWhatWaitsForIt): the SDK's client limits are tested elsewhere.
    server.setRequestRate(1e6, 1'000'000);
    server.setMaxSendQueue(qint64(1) << 30);

    const QString nodeId = server.nodeId();
    auto *chat = new SimpleNotifier<QString, QJsonObject>(&server, "chat");
    auto *greet = new Notifier<QString, QJsonObject>(
            &server, "greet",
            [nodeId](const Identity &who, const QJsonObject &notif) -> std::optional<QJsonObject> {
                if (!who.isAnonymous() && notif.value("skip").toString() == who.userId())
                    return std::nullopt;
                QJsonObject prepared = notif;
                prepared.insert("to", who.userId());
                prepared.insert("node", nodeId);
                return prepared;
            });
    const QHash<QString, KeyedNotifier<QString> *> notifiers{ { "chat", chat },
                                                              { "greet", greet } };

    server.setHandler("notify", [chat, greet](const Request &request) {
        const QJsonObject payload = request.payload().toObject();
        const QString name = payload.value("notifier").toString();
        const QString key = payload.value("key").toString();
        const QJsonObject data = payload.value("data").toObject();
        const QJsonValue notForValue = payload.value("notFor");
        NotFor notFor;
        if (notForValue == QJsonValue("me"))
            notFor = request.me();
        else if (notForValue.isString())
            notFor = NotFor::user(notForValue.toString());
        QJsonObject padded = data;
        if (const int pad = payload.value("pad").toInt(); pad > 0)
            padded.insert("pad", QString(pad, u'x'));
        if (name != "chat" && name != "greet")
            return request.fail("not_found", "no notifier " + name);
        for (int i = payload.value("repeat").toInt(1); i > 0; --i) {
            if (name == "chat")
                chat->notify(key, padded, notFor);
            else
                greet->notify(key, padded, notFor);
        }
        request.reply();
    });

    // The cluster requests answer once every node has: in a continuation, never by waiting.
    server.setHandler("unlistenUser", [&server, notifiers](const Request &request) {
        const QJsonObject payload = request.payload().toObject();
        KeyedNotifier<QString> *notifier = notifiers.value(payload.value("notifier").toString());
        if (!notifier)
            return request.fail("not_found", "no such notifier");
        notifier->unlistenUser(payload.value("user").toString(), payload.value("key").toString())
                .then(&server, [request](int total) { request.reply(total); });
    });
    server.setHandler("listenerCount", [&server, notifiers](const Request &request) {
        const QJsonObject payload = request.payload().toObject();
        KeyedNotifier<QString> *notifier = notifiers.value(payload.value("notifier").toString());
        if (!notifier)
            return request.fail("not_found", "no such notifier");
        const QString key = payload.value("key").toString();
        const int local = notifier->localListenerCount(key);
        notifier->listenerCount(key).then(&server, [request, local](int total) {
            request.reply(QJsonObject{ { "total", total }, { "local", local } });
        });
    });

    server.setHandler("listeningUsers", [&server, notifiers](const Request &request) {
        const QJsonObject payload = request.payload().toObject();
        KeyedNotifier<QString> *notifier = notifiers.value(payload.value("notifier").toString());
        if (!notifier)
            return request.fail("not_found", "no such notifier");
        notifier->listeningUsers(payload.value("key").toString())
                .then(&server, [request](const QStringList &users) {
                    request.reply(QJsonArray::fromStringList(users));
                });
    });

    server.setHandler("stats", [&server](const Request &request) {
        const Backplane::Stats stats = server.backplane()->stats();
        request.reply(QJsonObject{ { "node", server.nodeId() },
                                   { "status", statusName(server.backplane()->status()) },
                                   { "published", qint64(stats.published) },
                                   { "dropped", qint64(stats.dropped) },
                                   { "received", qint64(stats.received) },
                                   { "channels", stats.channels } });
    });

    if (!server.listen(QHostAddress::LocalHost, 0)) {
        std::fprintf(stderr, "cannot listen: %s\n", qPrintable(server.errorString()));
        return 1;
    }
    QSocketNotifier input(STDIN_FILENO, QSocketNotifier::Read);
    QObject::connect(&input, &QSocketNotifier::activated, &app, [&app] {
        char buffer[64];
        if (::read(STDIN_FILENO, buffer, sizeof buffer) <= 0)
            app.quit(); // end of file: the test is done with this node
    });
    print({ { "event", "listening" },
            { "url", server.serverUrl().toString() },
            { "node", nodeId },
            { "status", statusName(server.backplane()->status()) } });
    return app.exec();
}
