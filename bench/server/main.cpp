// qtnotif-bench-server: the server the benchmarks drive, until it is killed.
//   qtnotif-bench-server [--host 127.0.0.1] [--port 0] [--redis redis://127.0.0.1:6379/0]
//                        [--tcp-nodelay]
//
// It has one notifier, "bench": a SimpleNotifier with QString keys and JSON object
// notifications, and two upstream methods, so that a load generator drives it over the wire as
// any client would:
//   call "publish" {"key": k, "data": {...}}  notifies key k with data plus "notified" (the
//                                             server's CLOCK_MONOTONIC in µs at the notify),
//                                             then replies null
//   call "stats"                              replies the server's counters (see statsOf())
// It prints "qtnotif bench server listening on ws://..." on stdout once it listens and, with
// --redis, once the backplane is online: scripts wait for that line.
#include "benchclock.h"

#include <QtNotif/backplane.h>
#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QDir>
#include <QtCore/QJsonObject>
#include <QtCore/QMetaEnum>
#include <QtCore/QTextStream>
#include <QtCore/QTimer>

#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

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

// Sets TCP_NODELAY on this process's socket listening on port; Linux hands the option down to
// every socket it accepts. QtNotif::Server does not set it on its client sockets (Nagle's
// algorithm then holds small frames back until the client's delayed ACK, up to 40 ms): this
// measures what setting it would change. Linux only; false when no such socket is found.
bool setNoDelayOnListener(quint16 port)
{
    const QStringList entries
            = QDir(u"/proc/self/fd"_s)
                      .entryList(QDir::NoDotAndDotDot | QDir::AllEntries | QDir::System);
    for (const QString &entry : entries) {
        const int fd = entry.toInt();
        int listening = 0;
        socklen_t size = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || !listening)
            continue;
        sockaddr_storage address{};
        socklen_t addressSize = sizeof address;
        if (getsockname(fd, reinterpret_cast<sockaddr *>(&address), &addressSize) != 0)
            continue;
        quint16 boundPort = 0;
        if (address.ss_family == AF_INET)
            boundPort = ntohs(reinterpret_cast<const sockaddr_in *>(&address)->sin_port);
        else if (address.ss_family == AF_INET6)
            boundPort = ntohs(reinterpret_cast<const sockaddr_in6 *>(&address)->sin6_port);
        const int on = 1;
        if (boundPort == port && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0)
            return true;
    }
    return false;
}

} // namespace

int main(int argc, char *argv[])
{
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
    const QCommandLineOption noDelayOption(
            u"tcp-nodelay"_s,
            u"Set TCP_NODELAY on the client sockets (Linux), which the server does not do."_s);
    parser.addOptions({ hostOption, portOption, redisOption, noDelayOption });
    parser.process(app);

    QHostAddress address;
    if (!address.setAddress(parser.value(hostOption)))
        return fail(u"--host: not an IP address: "_s + parser.value(hostOption));
    bool portOk = false;
    const uint port = parser.value(portOption).toUInt(&portOk);
    if (!portOk || port > 65535)
        return fail(u"--port: not a port number: "_s + parser.value(portOption));

    QtNotif::Server server;
    auto *bench = new QtNotif::SimpleNotifier<QString, QJsonObject>(&server, u"bench"_s);
    server.setHandler(u"publish"_s, [bench](const QtNotif::Request &request) {
        const QJsonObject payload = request.payload().toObject();
        const QString key = payload.value(u"key"_s).toString();
        if (key.isEmpty())
            return request.fail(u"bad_publish"_s, u"publish {\"key\": string, \"data\": {}}"_s);
        QJsonObject data = payload.value(u"data"_s).toObject();
        data.insert(u"notified"_s, QtNotifBench::monotonicMicroseconds());
        bench->notify(key, data);
        request.reply();
    });
    server.setHandler(u"stats"_s, [&server](const QtNotif::Request &request) {
        request.reply(statsOf(server));
    });

    if (parser.isSet(redisOption) && !server.setBackplane(QUrl(parser.value(redisOption))))
        return fail(u"--redis: "_s + server.errorString());
    if (!server.listen(address, quint16(port)))
        return fail(u"cannot listen: "_s + server.errorString());
    if (parser.isSet(noDelayOption) && !setNoDelayOnListener(server.serverPort()))
        return fail(
                u"--tcp-nodelay: no listening socket found on port %1"_s.arg(server.serverPort()));

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
