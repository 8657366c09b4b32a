// Churn: thousands of clients connect, listen to a few keys, receive, and go away, wave after
// wave, against a server in a process of its own (qtnotif_soakserver); afterwards the server's
// listener table is empty and its memory has come back to where it was after the first wave.
//
// Each wave opens WaveSize clients on loopback, half of them QtNotif::Client, half raw
// QWebSockets speaking qtnotif.v1, each a user of its own listening to 3 to 5 keys of two
// notifiers ("room", a SimpleNotifier, and "inbox", whose asynchronous prepare adds "to"). Every
// client goes away in one of eight ways (Exit): close() or deletion of a Client, close() or
// abort() of a raw socket after receiving; a Client closed, or a socket aborted, in the same
// turn as its listens are sent (listens in flight); a Client closed, or a socket aborted, at the
// first of a burst of large notifications on the key "flood" (notifications being delivered,
// prepares pending). The clients that stay until the end of the wave must each receive exactly
// the notifications of their keys, in order, prepared for them. Then the test waits until the
// server has handled every disconnect ("settle") and checks that no listen and no key is left.
//
// Memory: the server reports its heap in use (mallinfo2), its resident set (VmRSS, after
// malloc_trim) and its open files after the first wave, which grows the heap, the tables and
// Qt's caches to their working size, and after the last one. Later waves are the same as the
// first, so whatever they leave behind adds up: at the end the heap must be within HeapBound of
// where the first wave left it, the resident set within RssBound, and no file more be open.
//
// Size: QTNOTIF_SOAK_CLIENTS clients in all, WaveSize at a time. The default, 10 000, takes
// about 12 s on two idle cores and 30 s on two busy ones, and runs in scripts/test.sh under the
// label "soak" (ctest -L soak runs it alone). Longer runs are opted into:
//   QTNOTIF_SOAK_CLIENTS=100000 build/tests/soak/tst_churn      that many clients
//   QTNOTIF_SOAK_MINUTES=30 build/tests/soak/tst_churn          waves for that long
// (run the binary itself: ctest stops a test after 300 s). QTNOTIF_SOAK_SEED picks the keys
// and the order of the exits (1 by default). The figures (clients, waves, time, notifications,
// memory) go to the test's log, and every 10th wave's memory too.
//
// Synchronisation, never fixed sleeps: a raw client's listens are registered once acknowledged,
// a Client's once an "echo" call after them is answered; notifications are complete once every
// staying client has all of its own; "settle" answers once the server has only the test's
// control connection left and no prepare pending.
#include <QtNotif/client.h>
#include <QtNotif/clientnotifier.h>

#include <QtCore/QElapsedTimer>
#include <QtCore/QHash>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QProcess>
#include <QtCore/QRandomGenerator>
#include <QtCore/QUrlQuery>
#include <QtNetwork/QNetworkRequest>
#include <QtTest/QTest>
#include <QtWebSockets/QWebSocket>
#include <QtWebSockets/QWebSocketHandshakeOptions>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#ifdef Q_OS_LINUX
#include <csignal>
#include <sys/prctl.h>
#include <sys/resource.h>
#endif

using namespace QtNotif;
using namespace std::chrono_literals;

namespace {

// Clients open at once: a few hundred sockets on each side stay far below a soft limit of 1024
// open files, and the waves come and go at the rate the machine allows.
constexpr int WaveSize = 250;
// Clients in their handshake at once: above the server's listen backlog (50) the kernel drops
// SYNs, and the clients would wait a second to retry.
constexpr int ConnectingAtOnce = 32;
// Keys per notifier; each client listens to 3 to 5 of the 2 * KeyCount.
constexpr int KeyCount = 16;
// Notifications per key and wave: ordered, and told apart by "i".
constexpr int PerKey = 3;
// The burst the *Delivering clients leave in: per notifier, this many notifications of about
// FloodPad bytes (100 KiB), which the inbox prepares over 50 ms (see qtnotif_soakserver).
constexpr int FloodCount = 50;
constexpr int FloodPad = 2048;
// What the server may keep from the waves after the first (see the file comment). The heap in
// use (what malloc handed out) is exact but for malloc's per-thread cache of freed chunks (a few
// hundred KiB at most; it grew by 150 KiB over the default run): 1 MiB is about 100 bytes per
// client of the default run, while an idle connection costs the server about 3 KiB. The
// resident set also holds the holes of a fragmented heap, which malloc_trim cannot return: they
// grew by 1.5 MiB over the 10 000 clients of the default run and by 2.7 MiB over 50 000,
// levelling off; 6 MiB leaves room for that, and still catches what the heap does not count
// (memory mapped outside malloc).
constexpr qint64 HeapBound = 1024 * 1024;
constexpr qint64 RssBound = 6 * 1024 * 1024;
// A wave's steps wait this long at most; on an idle machine a wave takes a second or two.
constexpr int StepTimeoutMs = 60000;

enum class Exit {
    Close,           // a Client: close() after receiving
    Delete,          // a Client: deleted after receiving (it closes gracefully)
    CloseListening,  // a Client: close() in the turn it sends its listens
    CloseDelivering, // a Client: close() at its first "flood" notification
    Abort,           // a raw socket: abort() after receiving
    RawClose,        // a raw socket: close() (the WebSocket close handshake) after receiving
    AbortListening,  // a raw socket: its listens flushed to the kernel, then abort()
    AbortDelivering, // a raw socket: abort() at its first "flood" notification
};
constexpr int ExitCount = 8;

bool isLibrary(Exit exit)
{
    return exit <= Exit::CloseDelivering;
}
// Leaves before the end of the wave: receives nothing that is checked.
bool leavesEarly(Exit exit)
{
    return exit == Exit::CloseListening || exit == Exit::CloseDelivering
           || exit == Exit::AbortListening || exit == Exit::AbortDelivering;
}
bool leavesInFlood(Exit exit)
{
    return exit == Exit::CloseDelivering || exit == Exit::AbortDelivering;
}

// The server's memory, in bytes.
struct Memory
{
    qint64 rss = -1;  // resident, after malloc_trim
    qint64 anon = -1; // of which anonymous (not pages of files: the code of libraries, say)
    qint64 heap = -1; // handed out by malloc; -1 when the server cannot tell
    int fds = -1;     // open file descriptors
};

struct Topic
{
    QString notifier;
    QString key;
};

QString mib(qint64 bytes)
{
    return QString::number(double(bytes) / (1024 * 1024), 'f', 1) + " MiB";
}

int environmentInt(const char *name, int fallback)
{
    bool ok = false;
    const int value = qEnvironmentVariableIntValue(name, &ok);
    return ok && value > 0 ? value : fallback;
}

// One client of a wave: its keys, what it received, and how it goes.
class Peer : public QObject
{
public:
    Peer(const QString &user, QList<Topic> topics, Exit exit)
        : user(user), topics(std::move(topics)), exit(exit)
    {
    }

    // Connects; once welcomed, listens to the topics. welcomedOrFailed is called once, when
    // the server welcomed it or the connection failed first.
    virtual void start(const QUrl &url, std::function<void()> welcomedOrFailed) = 0;
    // Goes away as exit says.
    virtual void leave() = 0;

    // Its listens are registered on the server.
    bool isReady() const { return ready; }
    bool isGone() const { return gone; }
    // Something went wrong (see check()): it waits for nothing more.
    bool hasFailed() const { return !problems.isEmpty(); }
    // Notifications received, "flood" ones included.
    int receivedCount() const { return notifications; }
    // Whether it received every notification of its keys (PerKey each).
    bool hasAll() const
    {
        for (const Topic &topic : topics) {
            if (received.value(topic.notifier + '/' + topic.key).size() < PerKey)
                return false;
        }
        return true;
    }
    // What was wrong with what it received, and, when it stayed to the end of the wave, whether
    // it received all its notifications; empty when all is well.
    QStringList check() const
    {
        QStringList found = problems;
        if (leavesEarly(exit))
            return found;
        QList<int> expected;
        for (int i = 0; i < PerKey; ++i)
            expected.append(i);
        for (const Topic &topic : topics) {
            const QList<int> got = received.value(topic.notifier + '/' + topic.key);
            if (got != expected) {
                QStringList numbers;
                for (int i : got)
                    numbers.append(QString::number(i));
                found.append(topic.notifier + '/' + topic.key + " received [" + numbers.join(',')
                             + "]");
            }
        }
        return found;
    }

    const QString user;
    const QList<Topic> topics;
    const Exit exit;
    int wave = 0;

protected:
    void welcomed()
    {
        if (welcomedOrFailed)
            std::exchange(welcomedOrFailed, nullptr)();
    }
    void failed(const QString &what)
    {
        if (!gone)
            problems.append(what);
        welcomed();
    }
    void onNotif(const QString &notifier, const QString &key, const QJsonObject &data)
    {
        if (gone)
            return;
        ++notifications;
        if (key == "flood") {
            if (leavesInFlood(exit))
                leave();
            else
                problems.append("received a flood notification");
            return;
        }
        bool listened = false;
        for (const Topic &topic : topics)
            listened = listened || (topic.notifier == notifier && topic.key == key);
        if (!listened)
            problems.append("received " + notifier + '/' + key + ", not one of its keys");
        if (data.value("wave").toInt(-1) != wave || data.value("key").toString() != key)
            problems.append("received a wrong notification: "
                            + QString::fromUtf8(QJsonDocument(data).toJson()));
        if (notifier == "inbox" && data.value("to").toString() != user)
            problems.append("received an inbox notification prepared for "
                            + data.value("to").toString());
        received[notifier + '/' + key].append(data.value("i").toInt(-1));
    }

    std::function<void()> welcomedOrFailed;
    bool ready = false;
    bool gone = false;
    QHash<QString, QList<int>> received; // "notifier/key" -> the "i" of each, in arrival order
    QStringList problems;
    int notifications = 0;
};

// A QtNotif::Client.
class LibraryPeer : public Peer
{
public:
    using Peer::Peer;
    // The client goes before the members its signals would reach.
    ~LibraryPeer() override
    {
        if (client)
            client->disconnect(this);
    }

    void start(const QUrl &url, std::function<void()> done) override
    {
        welcomedOrFailed = std::move(done);
        client = std::make_unique<Client>();
        QUrl withUser = url;
        withUser.setQuery(QUrlQuery{ { "user", user } });
        client->setUrl(withUser);
        client->setAutoReconnect(false);
        client->setRequestTimeout(std::chrono::milliseconds(StepTimeoutMs));
        for (const QString name : { "room", "inbox" }) {
            connect(client->notifier(name), &ClientNotifier::jsonEvent, this,
                    [this, name](const QJsonValue &key, const QJsonValue &data) {
                        onNotif(name, key.toString(), data.toObject());
                    });
            connect(client->notifier(name), &ClientNotifier::listenFailed, this,
                    [this](const QVariant &key, const QString &code) {
                        problems.append("listen to " + key.toString() + " failed: " + code);
                    });
        }
        connect(client.get(), &Client::errorOccurred, this,
                [this] { failed("connection error: " + client->errorString()); });
        connect(client.get(), &Client::connected, this, [this] { onConnected(); });
        client->open();
    }

    void leave() override
    {
        gone = true;
        if (exit == Exit::Delete)
            client.reset();
        else if (client)
            client->close();
    }

private:
    void onConnected()
    {
        welcomed();
        for (const Topic &topic : topics)
            client->notifier(topic.notifier)->listen(topic.key);
        if (exit == Exit::CloseListening)
            return leave();
        // Frames are handled in order: the echo's answer comes after every listen's.
        client->call("echo", QJsonValue(), this, [this](const CallReply &reply) {
            if (reply.isError())
                failed("echo failed: " + reply.errorCode());
            else
                ready = true;
        });
    }

    std::unique_ptr<Client> client;
};

// A QWebSocket speaking qtnotif.v1 itself.
class RawPeer : public Peer
{
public:
    using Peer::Peer;
    // An open socket aborts when destroyed: not into this half-destroyed peer.
    ~RawPeer() override { socket.disconnect(this); }

    void start(const QUrl &url, std::function<void()> done) override
    {
        welcomedOrFailed = std::move(done);
        connect(&socket, &QWebSocket::textMessageReceived, this,
                [this](const QString &text) { onFrame(QJsonDocument::fromJson(text.toUtf8())); });
        connect(&socket, &QWebSocket::disconnected, this,
                [this] { failed("disconnected: " + socket.errorString()); });
        QUrl withUser = url;
        withUser.setQuery(QUrlQuery{ { "user", user } });
        QWebSocketHandshakeOptions options;
        options.setSubprotocols({ "qtnotif.v1" });
        socket.open(QNetworkRequest(withUser), options);
    }

    void leave() override
    {
        gone = true;
        if (exit == Exit::RawClose)
            socket.close();
        else
            socket.abort();
    }

private:
    void onFrame(const QJsonDocument &document)
    {
        const QJsonObject frame = document.object();
        const QString op = frame.value("op").toString();
        if (op == "welcome") {
            welcomed();
            listen();
        } else if (op == "ack") {
            ready = ++acks == topics.size();
        } else if (op == "notif") {
            onNotif(frame.value("notifier").toString(), frame.value("key").toString(),
                    frame.value("data").toObject());
        } else if (!gone) {
            problems.append("received "
                            + QString::fromUtf8(document.toJson(QJsonDocument::Compact)));
        }
    }

    void listen()
    {
        for (const Topic &topic : topics) {
            const QJsonObject frame{ { "op", "listen" },
                                     { "id", ++lastId },
                                     { "notifier", topic.notifier },
                                     { "key", topic.key } };
            socket.sendTextMessage(
                    QString::fromUtf8(QJsonDocument(frame).toJson(QJsonDocument::Compact)));
        }
        if (exit == Exit::AbortListening) {
            socket.flush(); // else abort() would discard them before they are sent
            leave();
        }
    }

    QWebSocket socket;
    int acks = 0;
    qint64 lastId = 0;
};

} // namespace

class tst_Churn : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();
    void churn();

private:
    // Runs one wave; fails the test (QTest::currentTestFailed()) when something is wrong.
    void runWave(int wave, int clients);
    // Starts the wave's clients, ConnectingAtOnce at a time.
    void startMore();
    // Calls method on the server through the control client and waits for the answer;
    // std::nullopt (and a warning that says why) when it fails.
    std::optional<QJsonObject> call(const QString &method, const QJsonObject &payload = {});
    // The server's stats once only the control connection is left (see "settle").
    std::optional<QJsonObject> settle();
    // The server's memory after malloc_trim; all -1 when the call fails.
    Memory serverMemory();

    QProcess server;
    QByteArray serverLog;
    QUrl url;
    std::unique_ptr<Client> control;
    QRandomGenerator random;
    std::vector<std::unique_ptr<Peer>> peers;
    std::size_t nextToStart = 0;
    int connecting = 0;
    qint64 notificationsReceived = 0;
};

void tst_Churn::initTestCase()
{
#ifdef Q_OS_LINUX
    rlimit limit;
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
    server.setChildProcessModifier([] { ::prctl(PR_SET_PDEATHSIG, SIGKILL); });
#endif
    random.seed(quint32(environmentInt("QTNOTIF_SOAK_SEED", 1)));
    connect(&server, &QProcess::readyReadStandardOutput, this, [this] {
        while (server.canReadLine()) {
            const QJsonObject line = QJsonDocument::fromJson(server.readLine()).object();
            if (line.value("event") == QJsonValue("listening"))
                url = QUrl(line.value("url").toString());
        }
    });
    connect(&server, &QProcess::readyReadStandardError, this,
            [this] { serverLog += server.readAllStandardError(); });
    server.start(QStringLiteral(QTNOTIF_SOAKSERVER));
    QTRY_VERIFY2_WITH_TIMEOUT(!url.isEmpty() || server.state() == QProcess::NotRunning,
                              "the server did not start", 10000);
    QVERIFY2(!url.isEmpty(), serverLog.constData());

    control = std::make_unique<Client>();
    control->setUrl(url);
    control->setAutoReconnect(false);
    control->setRequestTimeout(2ms * StepTimeoutMs);
    control->open();
    QTRY_COMPARE(control->state(), Client::State::Connected);
}

void tst_Churn::cleanupTestCase()
{
    peers.clear();
    control.reset();
    if (server.state() == QProcess::NotRunning)
        return;
    // Closing its stdin tells the server to quit; a sanitizer build checks it for leaks then.
    server.closeWriteChannel();
    const bool quit = server.waitForFinished(10000);
    if (!quit) {
        server.kill();
        server.waitForFinished(5000);
    }
    serverLog += server.readAllStandardError();
    if (!serverLog.isEmpty())
        qInfo("the server logged:\n%s", serverLog.constData());
    QVERIFY2(quit && server.exitStatus() == QProcess::NormalExit && server.exitCode() == 0,
             "the server did not quit with status 0");
}

void tst_Churn::churn()
{
    const int totalClients = environmentInt("QTNOTIF_SOAK_CLIENTS", 10000);
    const int minutes = environmentInt("QTNOTIF_SOAK_MINUTES", 0);
    const Memory start = serverMemory();
    QVERIFY(start.rss > 0);

    QElapsedTimer clock;
    clock.start();
    runWave(0, WaveSize);
    if (QTest::currentTestFailed())
        return;
    const Memory warm = serverMemory();
    QVERIFY(warm.rss > 0);
    qInfo("after the warm-up wave (%d clients, %.1f s): server RSS %s, heap %s, %d files (at "
          "start %s, %s, %d)",
          WaveSize, double(clock.elapsed()) / 1000, qPrintable(mib(warm.rss)),
          qPrintable(mib(warm.heap)), warm.fds, qPrintable(mib(start.rss)),
          qPrintable(mib(start.heap)), start.fds);

    int clients = WaveSize;
    int waves = 1;
    const auto more = [&] {
        return minutes > 0 ? clock.elapsed() < minutes * 60000LL : clients < totalClients;
    };
    while (more()) {
        const int size = minutes > 0 ? WaveSize : std::min(WaveSize, totalClients - clients);
        runWave(waves, size);
        if (QTest::currentTestFailed())
            return;
        clients += size;
        ++waves;
        // Every 10th wave, so that the log of a long run shows the trend.
        if (waves % 10 == 0) {
            const Memory now = serverMemory();
            qInfo("%d waves, %d clients, %.1f s: server RSS %s (anonymous %s), heap %s, %d files",
                  waves, clients, double(clock.elapsed()) / 1000, qPrintable(mib(now.rss)),
                  qPrintable(mib(now.anon)), qPrintable(mib(now.heap)), now.fds);
        }
    }

    const std::optional<QJsonObject> last = settle();
    QVERIFY(last);
    QCOMPARE(last->value("listens").toInt(-1), 0);
    QCOMPARE(last->value("keys").toInt(-1), 0);
    const Memory end = serverMemory();
    QVERIFY(end.rss > 0);
    qInfo("churn: %d clients in %d waves of up to %d, %.1f s, %lld notifications received", clients,
          waves, WaveSize, double(clock.elapsed()) / 1000, notificationsReceived);
    qInfo("server at start, after the warm-up wave, at the end: RSS %s, %s, %s (%+.0f KiB, bound "
          "%s); anonymous %s, %s, %s; heap %s, %s, %s (%+.0f KiB, bound %s); files %d, %d, %d",
          qPrintable(mib(start.rss)), qPrintable(mib(warm.rss)), qPrintable(mib(end.rss)),
          double(end.rss - warm.rss) / 1024, qPrintable(mib(RssBound)), qPrintable(mib(start.anon)),
          qPrintable(mib(warm.anon)), qPrintable(mib(end.anon)), qPrintable(mib(start.heap)),
          qPrintable(mib(warm.heap)), qPrintable(mib(end.heap)),
          double(end.heap - warm.heap) / 1024, qPrintable(mib(HeapBound)), start.fds, warm.fds,
          end.fds);
    QVERIFY2(end.fds <= warm.fds,
             qPrintable(QString("the server has %1 more open files than after the warm-up wave")
                                .arg(end.fds - warm.fds)));
    if (warm.heap >= 0) {
        QVERIFY2(end.heap - warm.heap <= HeapBound,
                 qPrintable("the server's heap grew by " + mib(end.heap - warm.heap)
                            + " after the warm-up wave"));
    }
#ifdef __SANITIZE_ADDRESS__
    // AddressSanitizer keeps freed memory in quarantine (256 MiB) on purpose: resident memory
    // says nothing then, and LeakSanitizer checks the server when it quits.
    QSKIP("resident memory is not bounded under AddressSanitizer");
#endif
    QVERIFY2(end.rss - warm.rss <= RssBound,
             qPrintable("the server's resident memory grew by " + mib(end.rss - warm.rss)
                        + " after the warm-up wave"));
}

void tst_Churn::runWave(int wave, int clients)
{
    peers.clear();
    nextToStart = 0;
    connecting = 0;
    QStringList allKeys;
    for (int k = 0; k < KeyCount; ++k)
        allKeys.append("k" + QString::number(k));
    for (int i = 0; i < clients; ++i) {
        QList<Topic> topics;
        const int count = 3 + int(random.bounded(3));
        while (topics.size() < count) {
            const Topic topic{ random.bounded(2) ? "inbox" : "room",
                               allKeys.at(int(random.bounded(KeyCount))) };
            bool known = false;
            for (const Topic &t : std::as_const(topics))
                known = known || (t.notifier == topic.notifier && t.key == topic.key);
            if (!known)
                topics.append(topic);
        }
        const auto exit = Exit(i % ExitCount);
        if (leavesInFlood(exit))
            topics.append(Topic{ random.bounded(2) ? "inbox" : "room", "flood" });
        const QString user = QString("w%1c%2").arg(wave).arg(i);
        std::unique_ptr<Peer> peer;
        if (isLibrary(exit))
            peer = std::make_unique<LibraryPeer>(user, topics, exit);
        else
            peer = std::make_unique<RawPeer>(user, topics, exit);
        peer->wave = wave;
        peers.push_back(std::move(peer));
    }
    // Library and raw clients, and their exits, in a different order in every wave.
    std::shuffle(peers.begin(), peers.end(), random);

    startMore();
    const auto allListening = [this] {
        for (const auto &peer : peers) {
            if (!peer->isReady() && !peer->isGone() && !peer->hasFailed())
                return false;
        }
        return nextToStart == peers.size();
    };
    QTRY_VERIFY_WITH_TIMEOUT(allListening(), StepTimeoutMs);
    for (const auto &peer : peers)
        QVERIFY2(!peer->hasFailed(), qPrintable(peer->user + ": " + peer->check().join("; ")));

    for (const QString notifier : { "room", "inbox" }) {
        QVERIFY(call("publish", { { "notifier", notifier },
                                  { "keys", QJsonArray::fromStringList(allKeys) },
                                  { "repeat", PerKey },
                                  { "wave", wave } }));
    }
    for (const QString notifier : { "inbox", "room" }) {
        QVERIFY(call("publish", { { "notifier", notifier },
                                  { "keys", QJsonArray{ "flood" } },
                                  { "repeat", FloodCount },
                                  { "pad", FloodPad },
                                  { "wave", wave } }));
    }
    const auto allReceived = [this] {
        for (const auto &peer : peers) {
            const bool done = leavesInFlood(peer->exit) ? peer->isGone()
                                                        : leavesEarly(peer->exit) || peer->hasAll();
            if (!done && !peer->hasFailed())
                return false;
        }
        return true;
    };
    QTRY_VERIFY_WITH_TIMEOUT(allReceived(), StepTimeoutMs);
    for (const auto &peer : peers) {
        const QStringList problems = peer->check();
        QVERIFY2(problems.isEmpty(), qPrintable(peer->user + ": " + problems.join("; ")));
        if (!leavesEarly(peer->exit))
            peer->leave();
    }
    for (const auto &peer : peers)
        notificationsReceived += peer->receivedCount();

    const std::optional<QJsonObject> stats = settle();
    QVERIFY(stats);
    QVERIFY2(stats->value("connections").toInt() == 1,
             qPrintable("clients left on the server: "
                        + QString::fromUtf8(QJsonDocument(*stats).toJson())));
    QCOMPARE(stats->value("listens").toInt(-1), 0);
    QCOMPARE(stats->value("keys").toInt(-1), 0);
    QCOMPARE(stats->value("preparing").toInt(-1), 0);
    peers.clear();
}

void tst_Churn::startMore()
{
    while (nextToStart < peers.size() && connecting < ConnectingAtOnce) {
        ++connecting;
        peers.at(nextToStart++)->start(url, [this] {
            --connecting;
            startMore();
        });
    }
}

std::optional<QJsonObject> tst_Churn::call(const QString &method, const QJsonObject &payload)
{
    struct Answer
    {
        bool finished = false;
        QJsonValue result;
        QString error;
    };
    // Shared with the callback, which may outlive this call if the wait below times out.
    auto answer = std::make_shared<Answer>();
    control->call(method, payload, control.get(), [answer](const CallReply &reply) {
        answer->finished = true;
        answer->result = reply.result();
        if (reply.isError())
            answer->error = reply.errorCode() + ": " + reply.errorMessage();
    });
    if (!QTest::qWaitFor([&] { return answer->finished; }, 2 * StepTimeoutMs)) {
        qWarning("no answer to %s", qPrintable(method));
        return std::nullopt;
    }
    if (!answer->error.isEmpty()) {
        qWarning("%s failed: %s", qPrintable(method), qPrintable(answer->error));
        return std::nullopt;
    }
    return answer->result.toObject();
}

std::optional<QJsonObject> tst_Churn::settle()
{
    return call("settle", { { "connections", 1 }, { "timeout", StepTimeoutMs } });
}

Memory tst_Churn::serverMemory()
{
    const std::optional<QJsonObject> stats = call("stats", { { "trim", true } });
    if (!stats)
        return {};
    return { stats->value("rss").toInteger(-1), stats->value("rssAnon").toInteger(-1),
             stats->value("heap").toInteger(-1), stats->value("fds").toInt(-1) };
}

QTEST_GUILESS_MAIN(tst_Churn)
#include "tst_churn.moc"
