// qtnotif-chat-server: the chat demo's server, until SIGINT or SIGTERM.
//   qtnotif-chat-server [--host 127.0.0.1] [--port 8080] [--rooms lobby,qt,random]
//                       [--moderators alice] [--secret <hmac key>]
//                       [--backplane redis://127.0.0.1:6379/0]
#include "chatserver.h"

#include <QtNotif/epolleventdispatcher.h>

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QTextStream>

#ifdef Q_OS_UNIX
#include <QtCore/QSocketNotifier>

#include <csignal>
#include <sys/socket.h>
#include <unistd.h>
#endif

using namespace Qt::StringLiterals;

namespace {

#ifdef Q_OS_UNIX
int signalSockets[2] = { -1, -1 };

void onQuitSignal(int)
{
    // Only async-signal-safe calls here: a byte to the socket pair; the event loop does the rest.
    const char byte = 1;
    [[maybe_unused]] const ssize_t written = ::write(signalSockets[0], &byte, 1);
}

// Quits the event loop on SIGINT and SIGTERM, so that ~ChatServer closes the clients with
// 1001 "going away" (they reconnect to the next server at once) instead of leaving them to
// notice a dead connection by heartbeat.
void quitOnTerminationSignals(QCoreApplication &app)
{
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, signalSockets) != 0) {
        qWarning("cannot catch SIGINT and SIGTERM: socketpair failed");
        return;
    }
    auto *notifier = new QSocketNotifier(signalSockets[1], QSocketNotifier::Read, &app);
    QObject::connect(notifier, &QSocketNotifier::activated, &app, [&app] {
        char byte;
        [[maybe_unused]] const ssize_t read = ::read(signalSockets[1], &byte, 1);
        app.quit();
    });
    struct sigaction action = {};
    action.sa_handler = onQuitSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
}
#else
void quitOnTerminationSignals(QCoreApplication &) { }
#endif

QStringList commaList(const QString &value)
{
    QStringList items = value.split(u',', Qt::SkipEmptyParts);
    for (QString &item : items)
        item = item.trimmed();
    items.removeAll(QString());
    return items;
}

int fail(const QString &message)
{
    QTextStream(stderr) << "qtnotif-chat-server: " << message << Qt::endl;
    return 1;
}

} // namespace

int main(int argc, char *argv[])
{
    // An event dispatcher whose turns cost in proportion to the sockets that are ready, not to
    // all of them (docs/guide.md, "Event dispatcher"); before the application, which would
    // make Qt's own.
    QCoreApplication::setEventDispatcher(new QtNotif::EpollEventDispatcher);
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"qtnotif-chat-server"_s);

    const ChatDemo::ChatServer::Options defaults;
    QCommandLineParser parser;
    parser.setApplicationDescription(
            u"The qtnotif chat demo server. Its logins are a demo: anyone may log in under any "
            "name. Do not use it in production."_s);
    parser.addHelpOption();
    const QCommandLineOption hostOption(
            u"host"_s, u"Address to listen on; 0.0.0.0 for every interface (127.0.0.1)."_s,
            u"address"_s, u"127.0.0.1"_s);
    const QCommandLineOption portOption(
            u"port"_s, u"Port to listen on; 0 for any free one (8080)."_s, u"port"_s, u"8080"_s);
    const QCommandLineOption roomsOption(
            u"rooms"_s,
            u"The rooms the \"rooms\" call lists (%1)."_s.arg(defaults.rooms.join(u',')),
            u"a,b,c"_s, defaults.rooms.join(u','));
    const QCommandLineOption moderatorsOption(
            u"moderators"_s, u"The users who may kick (%1)."_s.arg(defaults.moderators.join(u',')),
            u"a,b"_s, defaults.moderators.join(u','));
    const QCommandLineOption secretOption(
            u"secret"_s, u"HMAC key of the login tokens; the default one is public."_s, u"secret"_s,
            QString::fromUtf8(defaults.secret));
    const QCommandLineOption backplaneOption(
            u"backplane"_s,
            u"Join a cluster of chat servers: redis://[:password@]host[:port][/db] (none: a "
            "server alone). docs/cluster.md runs three behind a load balancer."_s,
            u"url"_s);
    parser.addOptions({ hostOption, portOption, roomsOption, moderatorsOption, secretOption,
                        backplaneOption });
    parser.process(app);

    const QString host = parser.value(hostOption);
    QHostAddress address;
    if (host == u"localhost")
        address = QHostAddress::LocalHost;
    else if (!address.setAddress(host))
        return fail(u"--host: not an IP address: "_s + host);
    bool portOk = false;
    const uint port = parser.value(portOption).toUInt(&portOk);
    if (!portOk || port > 65535)
        return fail(u"--port: not a port number: "_s + parser.value(portOption));

    ChatDemo::ChatServer::Options options;
    options.rooms = commaList(parser.value(roomsOption));
    options.moderators = commaList(parser.value(moderatorsOption));
    options.secret = parser.value(secretOption).toUtf8();
    if (options.rooms.isEmpty())
        return fail(u"--rooms: name at least one room"_s);
    if (options.secret.isEmpty())
        return fail(u"--secret: must not be empty"_s);

    ChatDemo::ChatServer server(options);
    if (parser.isSet(backplaneOption)
        && !server.server()->setBackplane(QUrl(parser.value(backplaneOption))))
        return fail(u"--backplane: "_s + server.server()->errorString());
    if (!server.listen(address, quint16(port)))
        return fail(u"cannot listen on %1:%2: %3"_s.arg(host).arg(port).arg(server.errorString()));
    // Scripts wait for this line (stdout, flushed by endl) to know the server is up.
    QTextStream(stdout) << "qtnotif chat server listening on " << server.url().toString()
                        << Qt::endl;

    quitOnTerminationSignals(app);
    return app.exec();
}
