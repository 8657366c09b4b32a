// qtnotif-bench-server: the server the benchmarks drive, until it is killed.
//   qtnotif-bench-server [--host 127.0.0.1] [--port 0] [--redis redis://127.0.0.1:6379/0]
//                        [--tls-certificate FILE --tls-key FILE] (--help lists them all)
//
// It has two notifiers with QString keys and JSON object notifications: "bench", a
// SimpleNotifier, and "benchp", a Notifier whose synchronous prepare leaves the notification
// out for the client whose user id is data["author"] and sends it unchanged to everyone else
// (what a chat does with the sender's own message: the cheapest realistic prepare). Three
// upstream methods let a load generator drive it over the wire as any client would:
//   call "publish" {"key": k, "data": {...}[, "notifier": "benchp"]}
//                                             notifies key k of "bench" (or of the notifier
//                                             named) with data plus "notified" (the server's
//                                             CLOCK_MONOTONIC in µs at the notify), then
//                                             replies null
//   call "count" {"key": k}                   replies the listeners of key k in the whole
//                                             cluster (listenerCount(): a request to every
//                                             node through Redis; at once without a backplane)
//   call "stats"                              replies the server's counters (see statsOf())
// It prints "qtnotif bench server listening on ws://..." (wss:// with TLS) on stdout once it
// listens and, with --redis, once the backplane is online: scripts wait for that line.
#include "benchclock.h"
#include "benchtls.h"

#include <QtNotif/backplane.h>
#include <QtNotif/epolleventdispatcher.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QFuture>
#include <QtCore/QJsonObject>
#include <QtCore/QMetaEnum>
#include <QtCore/QTextStream>
#include <QtCore/QTimer>

#include <algorithm>
#include <cstring>
#include <utility>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace {

// A backplane that is not online this long after start-up is reported as a failure: on
// loopback Redis answers in milliseconds.
constexpr auto BackplaneTimeout = 10s;

int fail(const QString &message)
{
    QTextStream(stderr) << "qtnotif-bench-server: " << message << Qt::endl;
    return 1;
}

// What "stats" replies: who this node is, its clock and CPU time (µs) to turn counter
// differences into rates, its tables, and its backplane's counters.
QJsonObject statsOf(const QtNotif::Server &server)
{
    const QtNotif::Backplane *backplane = server.backplane();
    const QtNotif::Backplane::Stats counters = backplane->stats();
    const char *status = QMetaEnum::fromType<QtNotif::Backplane::Status>().valueToKey(
            int(backplane->status()));
    return QJsonObject{
        { u"node"_s, server.nodeId() },
        { u"time"_s, QtNotifBench::monotonicMicroseconds() },
        { u"cpu"_s, QtNotifBench::processCpuMicroseconds() },
        { u"connections"_s, server.connectionCount() },
        { u"listens"_s, server.listenCount() },
        { u"keys"_s, server.keyCount() },
        { u"backplane"_s, QJsonObject{ { u"url"_s, backplane->url().toString() },
                                       { u"status"_s, QString::fromLatin1(status) },
                                       { u"published"_s, qint64(counters.published) },
                                       { u"dropped"_s, qint64(counters.dropped) },
                                       { u"received"_s, qint64(counters.received) },
                                       { u"channels"_s, counters.channels } } },
    };
}

} // namespace

int main(int argc, char *argv[])
{
    // Chosen before the application exists, which takes the thread's dispatcher.
    const bool epoll = std::any_of(argv + 1, argv + argc, [](const char *argument) {
        return std::strcmp(argument, "--epoll") == 0;
    });
    if (epoll)
        QCoreApplication::setEventDispatcher(new QtNotif::EpollEventDispatcher);
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"qtnotif-bench-server"_s);

    QCommandLineParser parser;
    parser.setApplicationDescription(u"The server qtnotif's benchmarks drive (bench/)."_s);
    parser.addHelpOption();
    const QCommandLineOption hostOption(u"host"_s, u"Address to listen on (127.0.0.1)."_s,
                                        u"address"_s, u"127.0.0.1"_s);
    const QCommandLineOption portOption(u"port"_s, u"Port to listen on; 0 for any free one (0)."_s,
                                        u"port"_s, u"0"_s);
    const QCommandLineOption redisOption(
            QStringList{ u"redis"_s, u"backplane"_s },
            u"Join the cluster of this backplane URL (redis://host:port/db); alone without."_s,
            u"url"_s);
    const QCommandLineOption workersOption(
            u"workers"_s,
            u"Spread the sockets over this many worker threads (Server::setWorkerThreads()); "
            u"0 keeps them on the server's thread (QTNOTIF_WORKER_THREADS, else 0)."_s,
            u"count"_s);
    const QCommandLineOption epollOption(
            u"epoll"_s,
            u"Run the server's thread on QtNotif::EpollEventDispatcher instead of Qt's default."_s);
    const QCommandLineOption writeDelayOption(
            u"write-delay"_s,
            u"Let notifications wait this long to go out together (Server::setWriteDelay()); "
            u"0, the default, writes at the end of each event-loop turn."_s,
            u"ms"_s);
    const QtNotifBench::TlsOptions tlsOptions;
    parser.addOptions({ hostOption, portOption, redisOption, workersOption, epollOption,
                        writeDelayOption, tlsOptions.certificate, tlsOptions.key });
    parser.process(app);

    QHostAddress address;
    if (!address.setAddress(parser.value(hostOption)))
        return fail(u"--host: not an IP address: "_s + parser.value(hostOption));
    bool portOk = false;
    const uint port = parser.value(portOption).toUInt(&portOk);
    if (!portOk || port > 65535)
        return fail(u"--port: not a port number: "_s + parser.value(portOption));

    QtNotif::Server server;
    if (parser.isSet(workersOption)) {
        bool workersOk = false;
        const int workers = parser.value(workersOption).toInt(&workersOk);
        if (!workersOk || !server.setWorkerThreads(workers))
            return fail(u"--workers: not a number of threads: "_s + parser.value(workersOption));
    }
    if (parser.isSet(writeDelayOption)) {
        bool delayOk = false;
        const int delay = parser.value(writeDelayOption).toInt(&delayOk);
        if (!delayOk || delay < 0)
            return fail(u"--write-delay: not a number of milliseconds: "_s
                        + parser.value(writeDelayOption));
        server.setWriteDelay(std::chrono::milliseconds(delay));
    }
    std::optional<QSslConfiguration> tls;
    if (QString error; !tlsOptions.read(parser, tls, error))
        return fail(error);
    if (tls && !server.setSslConfiguration(*tls))
        return fail(u"--tls-certificate: "_s + server.errorString());
    // The load generator's publishers call as fast as they can: no request rate limit here.
    server.setRequestRate(1e9, 1'000'000'000);
    auto *bench = new QtNotif::SimpleNotifier<QString, QJsonObject>(&server, u"bench"_s);
    auto *benchp = new QtNotif::Notifier<QString, QJsonObject>(
            &server, u"benchp"_s,
            [](const QtNotif::Identity &identity,
               const QJsonObject &data) -> std::optional<QJsonObject> {
                const QString user = identity.userId();
                if (!user.isEmpty() && data.value(u"author"_s).toString() == user)
                    return std::nullopt;
                return data;
            });
    server.setHandler(u"publish"_s, [bench, benchp](const QtNotif::Request &request) {
        const QJsonObject payload = request.payload().toObject();
        const QString key = payload.value(u"key"_s).toString();
        const QString notifier = payload.value(u"notifier"_s).toString(u"bench"_s);
        if (key.isEmpty() || (notifier != u"bench"_s && notifier != u"benchp"_s)) {
            return request.fail(u"bad_publish"_s,
                                u"publish {\"key\": string, \"data\": {}[, \"notifier\": "
                                u"\"bench\" or \"benchp\"]}"_s);
        }
        QJsonObject data = payload.value(u"data"_s).toObject();
        data.insert(u"notified"_s, QtNotifBench::monotonicMicroseconds());
        if (notifier == u"benchp"_s)
            benchp->notify(key, data);
        else
            bench->notify(key, data);
        request.reply();
    });
    // The answer comes from the server's event loop once every node has answered (or the
    // cluster request timeout, 2 s, has passed): the handler must not wait for it.
    server.setHandler(u"count"_s, [bench, &server](const QtNotif::Request &request) {
        const QString key = request.payload().toObject().value(u"key"_s).toString();
        if (key.isEmpty())
            return request.fail(u"bad_count"_s, u"count {\"key\": string}"_s);
        bench->listenerCount(key).then(&server, [request](int count) { request.reply(count); });
    });
    server.setHandler(u"stats"_s, [&server](const QtNotif::Request &request) {
        request.reply(statsOf(server));
    });

    if (parser.isSet(redisOption) && !server.setBackplane(QUrl(parser.value(redisOption))))
        return fail(u"--redis: "_s + server.errorString());
    if (!server.listen(address, quint16(port)))
        return fail(u"cannot listen: "_s + server.errorString());

    bool announced = false;
    const auto announce = [&server, &announced] {
        if (std::exchange(announced, true))
            return; // online again after a reconnection to Redis
        // Flushed by endl: scripts read it through a pipe.
        QTextStream(stdout) << "qtnotif bench server listening on " << server.serverUrl().toString()
                            << Qt::endl;
    };
    QtNotif::Backplane *backplane = server.backplane();
    if (backplane->status() == QtNotif::Backplane::Status::Online) {
        announce();
    } else {
        QObject::connect(backplane, &QtNotif::Backplane::statusChanged, &app,
                         [announce](QtNotif::Backplane::Status status) {
                             if (status == QtNotif::Backplane::Status::Online)
                                 announce();
                         });
        QTimer::singleShot(BackplaneTimeout, &app, [backplane] {
            if (backplane->status() != QtNotif::Backplane::Status::Online) {
                fail(u"the backplane %1 is not online after %2 s"_s.arg(
                        backplane->url().toString(), QString::number(BackplaneTimeout.count())));
                QCoreApplication::exit(1);
            }
        });
    }
    return app.exec();
}
