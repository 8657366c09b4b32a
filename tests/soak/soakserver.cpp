// The server of the churn test (tst_churn), in a process of its own so that its memory is its
// own: a QtNotif::Server alone on 127.0.0.1 (a free port), without backplane.
//
//   qtnotif_soakserver
//
// It quits when its stdin closes (the end of the test), with exit status 0: a sanitizer build
// checks it for leaks then.
//
// It prints one line on stdout once it listens:
//   {"event":"listening","url":"ws://127.0.0.1:<port>"}
//
// Identity: the user named by the query parameter "user", else anonymous. Two notifiers, both
// keyed by strings:
//   "room"   SimpleNotifier<QString, QJsonObject>: every listener receives the same object
//   "inbox"  Notifier<QString, QJsonObject> whose prepare answers from the event loop (the
//            callback form), notification number i after i ms: it adds "to", the recipient's
//            user. Notifications for a client wait in its order queue meanwhile, so a client
//            that goes away leaves prepares behind that must come to nothing.
// Upstream methods:
//   publish  {notifier, keys: [...], repeat: n (1), wave: w, pad: bytes (0)}   -> null
//            notifies each key n times with {"wave": w, "key": key, "i": 0..n-1}, plus "pad",
//            a string of that many "x", when pad > 0
//   echo     anything  -> the same: answered after every frame the connection sent before
//   stats    {trim: bool}  -> {"connections", "listens", "keys", "preparing", "rss",
//            "rssAnon", "heap", "fds"}: the server's tables; the inbox prepares not done yet;
//            its resident set (VmRSS) and the anonymous part of it (RssAnon), in bytes, after
//            returning free heap memory to the system (malloc_trim) when trim is true; the
//            bytes malloc has handed out (-1 when the C library does not tell); and its open
//            file descriptors
//   settle   {connections: n, timeout: ms (30000)}  -> the stats (untrimmed), once at most n
//            clients are connected (the caller included) and no prepare is pending, or after
//            timeout ms: the test waits for the server to have handled every disconnect without
//            polling
#include "eventdispatcherchoice.h"

#include <QtNotif/notifier.h>
#include <QtNotif/server.h>

#include <QtCore/QCoreApplication>
#include <QtCore/QDir>
#include <QtCore/QFile>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QSocketNotifier>
#include <QtCore/QTimer>

#include <cstdio>

#ifdef Q_OS_LINUX
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>
#endif

using namespace QtNotif;

namespace {

void print(const QJsonObject &line)
{
    std::fputs(QJsonDocument(line).toJson(QJsonDocument::Compact).append('\n').constData(), stdout);
    std::fflush(stdout);
}

// A field of /proc/self/status in bytes ("VmRSS", "RssAnon"); -1 when it cannot be read.
qint64 statusBytes(const QByteArray &field)
{
    QFile file("/proc/self/status");
    if (!file.open(QIODevice::ReadOnly | QIODevice::Text))
        return -1;
    // readAll(), not atEnd(): files in /proc have a size of 0.
    const QList<QByteArray> lines = file.readAll().split('\n');
    for (const QByteArray &line : lines) {
        if (line.startsWith(field) && line.mid(field.size()).startsWith(':')) // "VmRSS:  12 kB"
            return line.mid(field.size() + 1).simplified().split(' ').value(0).toLongLong() * 1024;
    }
    return -1;
}

// Bytes malloc has handed out and not had back (mallinfo2: the heap's chunks in use and the
// mapped ones); -1 where unknown. Unlike the resident set, it does not depend on how the heap is
// fragmented.
qint64 heapBytes()
{
#if defined(Q_OS_LINUX) && defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    const struct mallinfo2 info = ::mallinfo2();
    return qint64(info.uordblks + info.hblkhd);
#else
    return -1;
#endif
}

// Every client of the test holds a socket here: as many as the hard limit allows (the soft
// limit is often 1024).
void raiseFileLimit()
{
#ifdef Q_OS_LINUX
    rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
#endif
}

// Open file descriptors (sockets included); -1 when /proc cannot tell.
int openFiles()
{
    const QDir fds("/proc/self/fd");
    return fds.exists() ? int(fds.entryList(QDir::AllEntries | QDir::NoDotAndDotDot).size()) : -1;
}

// The notifiers, the handlers, and what "settle" waits for.
class SoakServer
{
public:
    SoakServer();
    bool listen();
    QUrl url() const { return server.serverUrl(); }

private:
    void publish(const Request &request);
    QJsonObject stats() const;
    // Answers the "settle" requests whose condition holds.
    void answerSettled();

    struct Settle
    {
        Request request;
        int connections = 0;
    };

    Server server;
    SimpleNotifier<QString, QJsonObject> *room = nullptr;
    Notifier<QString, QJsonObject> *inbox = nullptr;
    int preparing = 0; // inbox prepares not done yet
    QList<Settle> settling;
};

SoakServer::SoakServer()
{
    server.setAuthenticator([](const HandshakeRequest &request) {
        const QString user = request.queryItem("user");
        return user.isEmpty() ? AuthResult::anonymous() : AuthResult::accept(Identity::user(user));
    });
    // The test's control connection publishes and polls stats in quick loops: the request rate
    // limit is tested elsewhere (tst_server). The other limits hold: each test client is a user
    // of its own with a few listens, and reads what it is sent.
    server.setRequestRate(1e6, 1'000'000);

    room = new SimpleNotifier<QString, QJsonObject>(&server, "room");
    // Notification i is prepared i ms later: the client of a burst receives the first ones and
    // goes away while the others are still being prepared.
    inbox = new Notifier<QString, QJsonObject>(
            &server, "inbox",
            [this](const Identity &who, const QJsonObject &notif,
                   Notifier<QString, QJsonObject>::Done done) {
                QJsonObject prepared = notif;
                prepared.insert("to", who.userId());
                ++preparing;
                QTimer::singleShot(notif.value("i").toInt(), &server,
                                   [this, done = std::move(done), prepared] {
                                       done(prepared);
                                       --preparing;
                                       answerSettled();
                                   });
            });

    server.setHandler("publish", [this](const Request &request) { publish(request); });
    server.setHandler("echo", [](const Request &request) { request.reply(request.payload()); });
    server.setHandler("stats", [this](const Request &request) {
#ifdef Q_OS_LINUX
        if (request.payload().toObject().value("trim").toBool())
            ::malloc_trim(0);
#endif
        request.reply(stats());
    });
    server.setHandler("settle", [this](const Request &request) {
        const QJsonObject payload = request.payload().toObject();
        settling.append({ request, payload.value("connections").toInt() });
        // Answered with what there is when the clients do not all go: the test says what is
        // left. A reply after the settled one is ignored.
        QTimer::singleShot(payload.value("timeout").toInt(30000), &server,
                           [this, request] { request.reply(stats()); });
        answerSettled();
    });
    QObject::connect(&server, &Server::clientDisconnected, &server, [this] { answerSettled(); });
}

bool SoakServer::listen()
{
    if (server.listen(QHostAddress::LocalHost, 0))
        return true;
    std::fprintf(stderr, "cannot listen: %s\n", qPrintable(server.errorString()));
    return false;
}

void SoakServer::publish(const Request &request)
{
    const QJsonObject payload = request.payload().toObject();
    const QString name = payload.value("notifier").toString();
    if (name != "room" && name != "inbox")
        return request.fail("not_found", "no notifier " + name);
    const int repeat = payload.value("repeat").toInt(1);
    const int pad = payload.value("pad").toInt(0);
    const QJsonValue wave = payload.value("wave");
    const QJsonArray keys = payload.value("keys").toArray();
    for (const QJsonValue &keyValue : keys) {
        const QString key = keyValue.toString();
        for (int i = 0; i < repeat; ++i) {
            QJsonObject data{ { "wave", wave }, { "key", key }, { "i", i } };
            if (pad > 0)
                data.insert("pad", QString(pad, u'x'));
            if (name == "room")
                room->notify(key, data);
            else
                inbox->notify(key, data);
        }
    }
    request.reply();
}

QJsonObject SoakServer::stats() const
{
    return QJsonObject{ { "connections", server.connectionCount() },
                        { "listens", server.listenCount() },
                        { "keys", server.keyCount() },
                        { "preparing", preparing },
                        { "rss", statusBytes("VmRSS") },
                        { "rssAnon", statusBytes("RssAnon") },
                        { "heap", heapBytes() },
                        { "fds", openFiles() } };
}

void SoakServer::answerSettled()
{
    for (auto it = settling.begin(); it != settling.end();) {
        if (server.connectionCount() <= it->connections && preparing == 0) {
            it->request.reply(stats());
            it = settling.erase(it);
        } else {
            ++it;
        }
    }
}

} // namespace

int main(int argc, char *argv[])
{
    raiseFileLimit();
    QtNotifTest::chooseEventDispatcher();
    QCoreApplication app(argc, argv);
    SoakServer server;
    if (!server.listen())
        return 1;
    QSocketNotifier input(STDIN_FILENO, QSocketNotifier::Read);
    QObject::connect(&input, &QSocketNotifier::activated, &app, [&app] {
        char buffer[64];
        if (::read(STDIN_FILENO, buffer, sizeof buffer) <= 0)
            app.quit(); // end of file: the test is done
    });
    print({ { "event", "listening" }, { "url", server.url().toString() } });
    return app.exec();
}
