// qtnotif-bench-loadgen: the load generator of bench/run.sh peers. It drives qtnotif and the
// servers it is compared with (bench/peers/README.md) with the same load, over raw sockets.
//   qtnotif-bench-loadgen --system qtnotif --url ws[s]://127.0.0.1:PORT/ [--server-pid PID] ...
//   (--help lists the options; bench/README.md the JSON line it prints)
//
// One thread, one epoll loop over non-blocking TCP sockets, and the client side of WebSocket
// written here (upgrade, masked client frames, server frames of any length, ping, close): Qt's
// QWebSocket costs more per message than the servers measured, and the generator must not be
// the bottleneck at about a million notifications per second. Received bytes land in one big
// buffer and are parsed in place; a notification is never parsed as JSON: the generator finds
// "t": (its publish time), "n": (the sequence number per key) and "key":"k in the text.
// With a wss:// URL the bytes go through OpenSSL (certificates are not verified: the server is
// the one on loopback the bench script started). QtCore serves for the command line and the
// JSON output only.
#include "benchclock.h"
#include "histogram.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QDir>
#include <QtCore/QFile>
#include <QtCore/QJsonArray>
#include <QtCore/QJsonDocument>
#include <QtCore/QJsonObject>
#include <QtCore/QTextStream>
#include <QtCore/QUrl>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

using namespace Qt::StringLiterals;
using QtNotifBench::Histogram;
using QtNotifBench::monotonicMicroseconds;

namespace {

// ---------------------------------------------------------------------------------------------
// Settings

enum class System { Qtnotif, QtnotifPrepare, NaiveQt, Ws, SocketIo };
enum class Mode { Window, Rate, Idle };

struct Settings
{
    System system = System::Qtnotif;
    QString systemName = u"qtnotif"_s;
    Mode mode = Mode::Window;
    QString modeName = u"window"_s;
    QString host;
    quint16 port = 0;
    bool tls = false; // wss://
    QByteArray path = "/";
    qint64 serverPid = 0;
    int connections = 2000;
    int keys = 20;
    int keysPerConnection = 1;
    int publishers = 4;
    int window = 500;
    double rate = 0; // deliveries per second
    double duration = 10;
    double warmup = 2;
    int payload = 100;
    QString label;
    std::vector<in_addr> sourceAddresses;
    double connectRate = 0; // 0: unlimited
};

// Exit statuses: 0 a complete run, 1 a failure, 2 bad options, 3 the server does not have
// what the system needs (qtnotif-prepare without the notifier "benchp"): skipped, not failed.
constexpr int ExitFailed = 1;
constexpr int ExitUsage = 2;
constexpr int ExitUnsupported = 3;

// Handshakes (TCP connect to the last listen acknowledged) outstanding at once: more only
// overflow the server's accept backlog and turn into SYN retransmissions, seconds each.
constexpr int MaxOutstandingHandshakes = 500;
// No connection became ready for this long while some are not: the run fails.
constexpr qint64 ConnectTimeoutUs = 30'000'000;
// A TCP connect still pending after this long is started again: its SYN was dropped (a full
// accept backlog), and the kernel would retry only after 3, 7, 15, 31 s.
constexpr qint64 ConnectRetryUs = 2'000'000;
// A connection connected but not ready this long after its connect started is started again:
// the server dropped it without a close (qtnotif closes handshakes after 10 s), or its upgrade
// request was lost with an ACK the full accept queue dropped.
constexpr qint64 HandshakeRetryUs = 15'000'000;
// Times one connection is started again (after a stuck connect, or a close before it was
// ready) before it counts as failed.
constexpr int MaxConnectRetries = 5;
// How long the notifications published while measuring may take to arrive after it.
constexpr qint64 DrainTimeoutUs = 5'000'000;
// One receive buffer for all connections: a recv() takes up to this much at once.
constexpr size_t ReceiveBufferSize = 4 << 20;
// A partial frame is kept and read again in front of the next recv(): frames up to half the
// buffer fit. Notifications are about 100 bytes.
constexpr uint64_t MaxFrameSize = ReceiveBufferSize / 2;

[[noreturn]] void die(int status, const QString &message)
{
    QTextStream(stderr) << "qtnotif-bench-loadgen: " << message << Qt::endl;
    std::exit(status);
}

// ---------------------------------------------------------------------------------------------
// /proc readings of the server process

// Resident memory of a process in KiB (VmRSS), or -1.
qint64 rssKib(qint64 pid)
{
    if (pid <= 0)
        return -1;
    QFile file(u"/proc/%1/status"_s.arg(pid));
    if (!file.open(QIODevice::ReadOnly))
        return -1;
    const QByteArray status = file.readAll();
    const qsizetype at = status.indexOf("VmRSS:");
    if (at < 0)
        return -1;
    const qsizetype end = status.indexOf('\n', at);
    return status.mid(at + 6, end - at - 6).replace("kB", "").trimmed().toLongLong();
}

// Microseconds in one clock tick, the unit of /proc's CPU times.
qint64 tickMicroseconds()
{
    static const qint64 tick = 1'000'000 / sysconf(_SC_CLK_TCK);
    return tick;
}

// CPU time of a process or of one of its threads (user and system, in µs) and its name (the
// kernel's "comm", at most 15 characters: the server's workers are "qtnotif worker ").
struct ThreadCpu
{
    QString name;
    qint64 userUs = 0;
    qint64 systemUs = 0;
};

// Reads a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat; std::nullopt when it cannot (the
// process or thread ended meanwhile).
std::optional<ThreadCpu> readStat(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return std::nullopt;
    const QByteArray stat = file.readAll();
    // The command name may hold spaces: fields count from the last ')'.
    const qsizetype open = stat.indexOf('('), close = stat.lastIndexOf(')');
    const QList<QByteArray> fields = stat.mid(close + 2).split(' ');
    if (open < 0 || close < open || fields.size() < 13)
        return std::nullopt;
    return ThreadCpu{ QString::fromUtf8(stat.mid(open + 1, close - open - 1)),
                      fields.at(11).toLongLong() * tickMicroseconds(),   // utime
                      fields.at(12).toLongLong() * tickMicroseconds() }; // stime
}

// CPU time (user and system) of a process in µs, or -1.
qint64 cpuMicroseconds(qint64 pid)
{
    if (pid <= 0)
        return -1;
    const std::optional<ThreadCpu> cpu = readStat(u"/proc/%1/stat"_s.arg(pid));
    return cpu ? cpu->userUs + cpu->systemUs : -1;
}

// The threads of a process by thread id, from /proc/<pid>/task; empty when it cannot be read.
std::map<qint64, ThreadCpu> threadCpu(qint64 pid)
{
    std::map<qint64, ThreadCpu> threads;
    if (pid <= 0)
        return threads;
    const QStringList tids
            = QDir(u"/proc/%1/task"_s.arg(pid)).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    for (const QString &tid : tids) {
        if (std::optional<ThreadCpu> cpu = readStat(u"/proc/%1/task/%2/stat"_s.arg(pid).arg(tid)))
            threads[tid.toLongLong()] = std::move(*cpu);
    }
    return threads;
}

// The whole machine's CPU time in µs (all cores), from /proc/stat: busy (user, nice, system,
// irq, softirq, steal; -1 when unreadable), and of that the software interrupts and the time the
// hypervisor took for other guests.
struct MachineCpu
{
    qint64 busyUs = -1;
    qint64 softirqUs = 0;
    qint64 stealUs = 0;
};

MachineCpu machineCpu()
{
    QFile file(u"/proc/stat"_s);
    if (!file.open(QIODevice::ReadOnly))
        return {};
    const QList<QByteArray> fields = file.readLine().simplified().split(' ');
    if (fields.size() < 9 || fields.first() != "cpu")
        return {};
    const qint64 tick = tickMicroseconds();
    qint64 busy = 0;
    for (int i : { 1, 2, 3, 6, 7, 8 })
        busy += fields.at(i).toLongLong();
    return { busy * tick, fields.at(7).toLongLong() * tick, fields.at(8).toLongLong() * tick };
}

// CPU time in µs of every process but this one and the server, by pid: other programs, and the
// kernel's threads (ksoftirqd, kworker).
std::map<qint64, qint64> otherProcessesCpu(qint64 serverPid)
{
    std::map<qint64, qint64> cpu;
    const QStringList entries = QDir(u"/proc"_s).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    for (const QString &entry : entries) {
        bool isPid = false;
        const qint64 pid = entry.toLongLong(&isPid);
        if (!isPid || pid == serverPid || pid == getpid())
            continue;
        if (const qint64 us = cpuMicroseconds(pid); us >= 0)
            cpu[pid] = us;
    }
    return cpu;
}

// What the other processes took between two readings: those in both by difference, those
// started in between in full. Those that ended in between are missed.
qint64 otherProcessesCpuBetween(const std::map<qint64, qint64> &start,
                                const std::map<qint64, qint64> &end)
{
    qint64 total = 0;
    for (const auto &[pid, us] : end) {
        const auto before = start.find(pid);
        total += before == start.end() ? us : std::max<qint64>(0, us - before->second);
    }
    return total;
}

// ---------------------------------------------------------------------------------------------
// Text helpers that never allocate

// Appends the decimal form of value.
void appendNumber(std::string &out, qint64 value)
{
    char digits[24];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

// The integer after needle in text, or -1 when needle is not there.
qint64 numberAfter(std::string_view text, std::string_view needle)
{
    const void *at = memmem(text.data(), text.size(), needle.data(), needle.size());
    if (!at)
        return -1;
    const char *begin = static_cast<const char *>(at) + needle.size();
    qint64 value = -1;
    std::from_chars(begin, text.data() + text.size(), value);
    return value;
}

bool contains(std::string_view text, std::string_view needle)
{
    return memmem(text.data(), text.size(), needle.data(), needle.size()) != nullptr;
}

// ---------------------------------------------------------------------------------------------
// Connections

enum class State {
    Connecting,      // TCP connect in progress
    TlsHandshake,    // wss://: TLS handshake in progress
    Upgrading,       // HTTP upgrade sent, waiting for 101
    EngineIoOpen,    // Socket.IO: waiting for the Engine.IO open packet "0{...}"
    SocketIoConnect, // Socket.IO: "40" sent, waiting for "40{...}"
    Listening,       // listens sent, waiting for their acknowledgements
    Ready,
    Closed,
};

struct SslFree
{
    void operator()(SSL *ssl) const { SSL_free(ssl); }
};

struct Connection
{
    int fd = -1;
    std::unique_ptr<SSL, SslFree> ssl; // wss:// only
    int index = 0;                     // subscribers 0..N-1, then publishers
    bool publisher = false;
    State state = State::Connecting;
    int acksMissing = 0;
    int retries = 0;
    qint64 openedUs = 0;
    qint64 nextRequestId = 1;
    // Bytes received that do not form a whole frame yet (or the HTTP answer). Its capacity
    // stays: no allocation per message once warm.
    std::string pending;
    // A fragmented message being put together (servers rarely fragment).
    std::string fragments;
    // Bytes to send that the kernel did not take yet, from sendOffset on.
    std::string out;
    size_t sendOffset = 0;
    bool outstanding = false; // opened, neither ready nor closed yet
    bool dirty = false;       // in the list of connections to flush
    bool wantWrite = false;   // EPOLLOUT is on
    // Subscriber: the next n expected per key it listens to (index j of its keys).
    std::vector<qint64> nextExpected;
};

// A notification in flight: published and not yet received by all its listeners.
struct Slot
{
    qint64 n = -1;
    qint64 publishedUs = 0;
    int32_t missing = 0;
    bool measured = false;
};

class LoadGenerator
{
public:
    explicit LoadGenerator(const Settings &settings);
    int run();

private:
    // The loop
    void openConnections();
    void openOne(int index);
    bool startConnect(Connection &c);
    void retryConnects();
    void giveUpOrRetry(Connection &c);
    void loopOnce(qint64 deadlineUs);
    void onEvent(Connection &c, uint32_t events);
    void onReadable(Connection &c);
    void closeConnection(Connection &c, const char *why);
    void closeSocket(Connection &c);
    void setWantWrite(Connection &c, bool wantWrite);
    void startUpgrade(Connection &c);
    void continueTlsHandshake(Connection &c);
    ssize_t receive(Connection &c, char *buffer, size_t size);
    ssize_t transmit(Connection &c, const char *data, size_t size);
    void flush(Connection &c);
    void markDirty(Connection &c);
    void flushDirty();

    // WebSocket
    void sendUpgrade(Connection &c);
    bool parseHandshake(Connection &c, const char *&data, size_t &size);
    size_t parseFrames(Connection &c, const char *data, size_t size);
    void sendFrame(Connection &c, int opcode, std::string_view payload);
    void beginFrame(Connection &c, int opcode, size_t length, uint32_t &mask, size_t &start);
    void onMessage(Connection &c, std::string_view text);

    // The systems
    void afterUpgrade(Connection &c);
    void sendListens(Connection &c);
    void onListenAnswered(Connection &c);
    void onNotification(Connection &c, std::string_view text, qint64 keyIndex);
    void publish(qint64 nowUs);
    std::string_view keyName(int key);
    void keyOfSubscriber(int subscriber, int j, int &key) const;

    Settings m_s;
    int m_epoll = -1;
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> m_tls{ nullptr, SSL_CTX_free };
    sockaddr_in m_server{};
    std::vector<std::unique_ptr<Connection>> m_connections;
    std::vector<Connection *> m_dirty;
    std::unique_ptr<char[]> m_receiveBuffer{ new char[ReceiveBufferSize] };
    std::string m_scratch; // a publish's payload before masking
    std::string m_padding;
    std::vector<std::string> m_keyNames;
    uint32_t m_random = 0x9e3779b9;

    // Connecting
    int m_opened = 0;
    int m_ready = 0;
    int m_outstanding = 0;
    size_t m_nextSource = 0;
    qint64 m_connectStartUs = 0;
    qint64 m_lastProgressUs = 0; // a connection opened or ready
    qint64 m_lastRetryScanUs = 0;
    bool m_connected = false; // all ready: closes are failures from now on
    std::vector<Connection *> m_toRetry;
    qint64 m_connectRetries = 0;
    int m_failedConnections = 0; // closed before ready, retries spent

    // Publishing and tracking
    bool m_publishing = false;
    bool m_measuring = false;
    std::vector<int> m_listenersOfKey;
    int m_ringBits = 0;
    std::vector<std::vector<Slot>> m_rings; // per key
    std::vector<qint64> m_nextN;            // per key: the n of its next publish
    std::vector<qint64> m_oldestN;          // per key: the oldest n maybe in flight
    qint64 m_publishCount = 0;              // round robin over keys and publishers
    qint64 m_inFlight = 0;
    qint64 m_measuredInFlight = 0;
    double m_notifyRate = 0; // rate mode: notifications per second
    qint64 m_scheduleStartUs = 0;
    qint64 m_scheduled = 0; // publishes due since m_scheduleStartUs that went out
    qint64 m_nowUs = 0;

    // Results over the measured interval
    qint64 m_notifications = 0;
    qint64 m_delivered = 0;
    qint64 m_expected = 0;
    qint64 m_received = 0;
    qint64 m_duplicated = 0;
    qint64 m_late = 0; // notifications for slots already reused or unknown
    Histogram m_latency;
    // Rate mode, qtnotif's servers: from the server's notify() (the "notified" it adds) on.
    Histogram m_notifyLatency;
    Histogram m_sendLag;

    // Errors
    qint64 m_connectFailures = 0;
    qint64 m_unexpected = 0;
    qint64 m_disconnects = 0;
    qint64 m_publishErrors = 0;
    QString m_firstError;
    bool m_unsupported = false;
};

LoadGenerator::LoadGenerator(const Settings &settings) : m_s(settings)
{
    m_server.sin_family = AF_INET;
    m_server.sin_port = htons(m_s.port);
    if (inet_pton(AF_INET, m_s.host.toLatin1().constData(), &m_server.sin_addr) != 1)
        die(ExitUsage, u"--url: the host must be an IPv4 address: "_s + m_s.host);
    if (m_s.tls) {
        m_tls.reset(SSL_CTX_new(TLS_client_method()));
        if (!m_tls)
            die(ExitFailed, u"OpenSSL: cannot create a TLS context"_s);
        SSL_CTX_set_verify(m_tls.get(), SSL_VERIFY_NONE, nullptr);
        // Partial writes, a buffer that grows between retries of a write, and no buffers held
        // by idle connections.
        SSL_CTX_set_mode(m_tls.get(), SSL_MODE_ENABLE_PARTIAL_WRITE
                                              | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                                              | SSL_MODE_RELEASE_BUFFERS);
    }

    for (int k = 0; k < m_s.keys; ++k)
        m_keyNames.push_back(std::string(1, 'k').append(std::to_string(k)));
    m_listenersOfKey.assign(size_t(m_s.keys), 0);
    for (int i = 0; i < m_s.connections; ++i) {
        for (int j = 0; j < m_s.keysPerConnection; ++j) {
            int key;
            keyOfSubscriber(i, j, key);
            ++m_listenersOfKey[size_t(key)];
        }
    }
    // Slots per key: room for seconds of a slow server at the highest rates, 32 MiB at most.
    const qint64 perKey = std::max<qint64>(1024, (qint64(1) << 21) / std::max(1, m_s.keys));
    m_ringBits = 10;
    while ((qint64(1) << m_ringBits) < perKey)
        ++m_ringBits;
    if (m_s.mode != Mode::Idle) {
        m_rings.assign(size_t(m_s.keys), std::vector<Slot>(size_t(1) << m_ringBits));
        m_nextN.assign(size_t(m_s.keys), 0);
        m_oldestN.assign(size_t(m_s.keys), 0);
    }

    // Padding: what makes the text a subscriber receives about --payload bytes. The envelopes
    // below are the notifications of each system with typical numbers and no padding.
    std::string envelope;
    switch (m_s.system) {
    case System::Qtnotif:
    case System::QtnotifPrepare:
        envelope = R"({"data":{"n":123456,"notified":123456789012,"p":"","t":123456789012},)"
                   R"("key":"k12","notifier":"bench","op":"notif","seq":123456})";
        break;
    case System::NaiveQt:
    case System::Ws:
        envelope = R"({"key":"k12","data":{"t":123456789012,"n":123456,"p":""}})";
        break;
    case System::SocketIo:
        envelope = R"(42["notif",{"key":"k12","data":{"t":123456789012,"n":123456,"p":""}}])";
        break;
    }
    m_padding.assign(size_t(std::max<int>(0, m_s.payload - int(envelope.size()))), 'x');
    m_scratch.reserve(size_t(m_s.payload) + 256);

    const double listenersPerKey
            = double(m_s.connections) * m_s.keysPerConnection / std::max(1, m_s.keys);
    if (m_s.mode == Mode::Rate)
        m_notifyRate = m_s.rate / std::max(1.0, listenersPerKey);
}

void LoadGenerator::keyOfSubscriber(int subscriber, int j, int &key) const
{
    key = int((qint64(subscriber) * m_s.keysPerConnection + j) % m_s.keys);
}

std::string_view LoadGenerator::keyName(int key)
{
    return m_keyNames[size_t(key)];
}

// ---------------------------------------------------------------------------------------------
// Connecting

void LoadGenerator::openOne(int index)
{
    auto connection = std::make_unique<Connection>();
    Connection &c = *connection;
    c.index = index;
    c.publisher = index >= m_s.connections;
    if (!c.publisher)
        c.nextExpected.assign(size_t(m_s.keysPerConnection), -1);
    m_connections.push_back(std::move(connection));
    ++m_opened;
    c.outstanding = true;
    ++m_outstanding;
    startConnect(c);
}

// Opens c's socket and starts its TCP connect; false (c closed, to retry or given up) when that
// fails at once.
bool LoadGenerator::startConnect(Connection &c)
{
    c.state = State::Connecting;
    c.pending.clear();
    c.fragments.clear();
    c.out.clear();
    c.sendOffset = 0;
    c.openedUs = m_nowUs;
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0)
        die(ExitFailed, u"socket(): %1 (connection %2; raise the file limit?)"_s.arg(
                                QString::fromLocal8Bit(strerror(errno)), QString::number(c.index)));
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!m_s.sourceAddresses.empty()) {
        // The port is chosen at connect() with the whole 4-tuple, not at bind(): each source
        // address then has the full ephemeral range towards the server.
        setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in source{};
        source.sin_family = AF_INET;
        source.sin_addr = m_s.sourceAddresses[m_nextSource++ % m_s.sourceAddresses.size()];
        if (bind(c.fd, reinterpret_cast<sockaddr *>(&source), sizeof source) != 0)
            die(ExitFailed,
                u"bind() to a source address: "_s + QString::fromLocal8Bit(strerror(errno)));
    }
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT;
    event.data.ptr = &c;
    c.wantWrite = true;
    epoll_ctl(m_epoll, EPOLL_CTL_ADD, c.fd, &event);
    const int status = connect(c.fd, reinterpret_cast<sockaddr *>(&m_server), sizeof m_server);
    if (status != 0 && errno != EINPROGRESS) {
        ++m_connectFailures;
        if (m_firstError.isEmpty())
            m_firstError = u"connect(): "_s + QString::fromLocal8Bit(strerror(errno));
        closeSocket(c);
        giveUpOrRetry(c);
        return false;
    }
    return true;
}

// A connection closed before it was ready: started again after this loop turn
// (retryConnects()), or given up after MaxConnectRetries.
void LoadGenerator::giveUpOrRetry(Connection &c)
{
    if (c.retries < MaxConnectRetries) {
        m_toRetry.push_back(&c);
        return;
    }
    ++m_failedConnections;
    if (std::exchange(c.outstanding, false))
        --m_outstanding;
}

// While connecting: starts again the connections closed before they were ready (a server's
// handshake timeout under a flood of connects) and the connects that hang (a dropped SYN).
// Deferred to here, after the events of a loop turn, which may still name the old socket.
void LoadGenerator::retryConnects()
{
    if (m_nowUs - m_lastRetryScanUs > 500'000) {
        m_lastRetryScanUs = m_nowUs;
        for (auto &c : m_connections) {
            const qint64 age = m_nowUs - c->openedUs;
            const bool stuck
                    = c->state == State::Connecting ? age > ConnectRetryUs : age > HandshakeRetryUs;
            if (c->state != State::Closed && c->state != State::Ready && stuck
                && c->retries < MaxConnectRetries) {
                closeSocket(*c);
                m_toRetry.push_back(c.get());
            }
        }
    }
    std::vector<Connection *> retrying;
    retrying.swap(m_toRetry);
    for (Connection *c : retrying) {
        ++c->retries;
        ++m_connectRetries;
        startConnect(*c);
    }
}

void LoadGenerator::openConnections()
{
    const int total = m_s.connections + m_s.publishers;
    while (m_opened < total && m_outstanding < MaxOutstandingHandshakes) {
        if (m_s.connectRate > 0) {
            const qint64 due = m_connectStartUs + qint64(m_opened * 1e6 / m_s.connectRate);
            if (m_nowUs < due)
                return;
        }
        openOne(m_opened);
        m_lastProgressUs = m_nowUs;
    }
}

// ---------------------------------------------------------------------------------------------
// The loop

void LoadGenerator::loopOnce(qint64 deadlineUs)
{
    flushDirty();
    qint64 wakeUs = deadlineUs;
    if (m_publishing && m_s.mode == Mode::Rate) {
        const qint64 due = m_scheduleStartUs + qint64(double(m_scheduled) * 1e6 / m_notifyRate);
        wakeUs = std::min(wakeUs, due);
    }
    if (m_opened < m_s.connections + m_s.publishers && m_s.connectRate > 0)
        wakeUs = std::min<qint64>(wakeUs, m_nowUs + 1000);
    const qint64 waitUs = std::max<qint64>(0, wakeUs - monotonicMicroseconds());
    timespec timeout{ time_t(waitUs / 1'000'000), long(waitUs % 1'000'000) * 1000 };
    epoll_event events[512];
    const int count = epoll_pwait2(m_epoll, events, 512, &timeout, nullptr);
    m_nowUs = monotonicMicroseconds();
    for (int i = 0; i < count; ++i)
        onEvent(*static_cast<Connection *>(events[i].data.ptr), events[i].events);
    if (m_publishing)
        publish(m_nowUs);
    if (!m_connected) {
        retryConnects();
        if (m_opened < m_s.connections + m_s.publishers)
            openConnections();
    }
}

void LoadGenerator::onEvent(Connection &c, uint32_t events)
{
    if (c.state == State::Closed)
        return;
    if (c.state == State::TlsHandshake)
        return continueTlsHandshake(c);
    if (c.state == State::Connecting) {
        int error = 0;
        socklen_t length = sizeof error;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            ++m_connectFailures;
            if (m_firstError.isEmpty())
                m_firstError = u"connect(): "_s
                               + QString::fromLocal8Bit(strerror(error ? error : ECONNRESET));
            closeConnection(c, nullptr);
            return;
        }
        if (m_tls) {
            c.ssl.reset(SSL_new(m_tls.get()));
            SSL_set_fd(c.ssl.get(), c.fd);
            SSL_set_connect_state(c.ssl.get());
            c.state = State::TlsHandshake;
            return continueTlsHandshake(c);
        }
        return startUpgrade(c);
    }
    if (events & EPOLLIN)
        onReadable(c);
    else if (events & (EPOLLERR | EPOLLHUP))
        closeConnection(c, "the connection broke");
    if (c.state != State::Closed && (events & EPOLLOUT))
        flush(c);
}

void LoadGenerator::startUpgrade(Connection &c)
{
    c.state = State::Upgrading;
    sendUpgrade(c);
    flush(c);
}

void LoadGenerator::continueTlsHandshake(Connection &c)
{
    const int status = SSL_do_handshake(c.ssl.get());
    if (status == 1)
        return startUpgrade(c);
    switch (SSL_get_error(c.ssl.get(), status)) {
    case SSL_ERROR_WANT_READ:
        return setWantWrite(c, false);
    case SSL_ERROR_WANT_WRITE:
        return setWantWrite(c, true);
    default:
        // OpenSSL says why, or else the connection broke (errno 0: the server closed it).
        if (m_firstError.isEmpty()) {
            char reason[256] = {};
            if (const unsigned long error = ERR_peek_error())
                ERR_error_string_n(error, reason, sizeof reason);
            else
                std::strncpy(reason, errno ? strerror(errno) : "the server closed the connection",
                             sizeof reason - 1);
            m_firstError = u"TLS handshake: "_s + QString::fromLocal8Bit(reason);
        }
        ERR_clear_error();
        closeConnection(c, "the TLS handshake failed");
    }
}

// recv(), or over TLS SSL_read() until the buffer is full or OpenSSL needs more from the socket.
// -1 with errno EAGAIN when nothing came, 0 when the server closed the connection.
ssize_t LoadGenerator::receive(Connection &c, char *buffer, size_t size)
{
    if (!c.ssl)
        return recv(c.fd, buffer, size, 0);
    size_t got = 0;
    while (got < size) {
        size_t read = 0;
        const int status = SSL_read_ex(c.ssl.get(), buffer + got, size - got, &read);
        if (status == 1) {
            got += read;
            continue;
        }
        const int error = SSL_get_error(c.ssl.get(), status);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
            break;
        ERR_clear_error(); // OpenSSL's next call must start with an empty error queue
        if (got > 0)
            break; // what came first is parsed; the next read sees the close again
        if (error == SSL_ERROR_ZERO_RETURN)
            return 0;
        errno = ECONNRESET;
        return -1;
    }
    if (got == 0)
        errno = EAGAIN;
    return got == 0 ? -1 : ssize_t(got);
}

// send(), or SSL_write() over TLS; -1 with errno EAGAIN when the socket takes nothing now.
ssize_t LoadGenerator::transmit(Connection &c, const char *data, size_t size)
{
    if (!c.ssl)
        return send(c.fd, data, size, MSG_NOSIGNAL);
    size_t written = 0;
    const int status = SSL_write_ex(c.ssl.get(), data, size, &written);
    if (status == 1)
        return ssize_t(written);
    const int error = SSL_get_error(c.ssl.get(), status);
    if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
        errno = EAGAIN;
    } else {
        ERR_clear_error();
        errno = EPIPE;
    }
    return -1;
}

void LoadGenerator::onReadable(Connection &c)
{
    // The partial frame kept from the last read goes first, then what recv() brings after it:
    // frames are parsed in place in the one receive buffer.
    char *buffer = m_receiveBuffer.get();
    const size_t kept = c.pending.size();
    std::memcpy(buffer, c.pending.data(), kept);
    const ssize_t got = receive(c, buffer + kept, ReceiveBufferSize - kept);
    if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        closeConnection(c, got == 0 ? "the server closed the connection" : "recv() failed");
        return;
    }
    const char *data = buffer;
    size_t size = kept + size_t(got);
    if (c.state == State::Upgrading && !parseHandshake(c, data, size)) {
        if (c.state != State::Closed)
            c.pending.assign(data, size); // the answer is not complete yet
        return;
    }
    const size_t used = parseFrames(c, data, size);
    if (c.state == State::Closed)
        return;
    // Its capacity stays: no allocation per read once warm.
    c.pending.assign(data + used, size - used);
    // What OpenSSL has decrypted and kept (the buffer was full) would not wake epoll.
    if (c.ssl && SSL_pending(c.ssl.get()) > 0)
        onReadable(c);
}

void LoadGenerator::closeConnection(Connection &c, const char *why)
{
    if (c.state == State::Closed)
        return;
    if (!m_connected && c.state != State::Ready) {
        closeSocket(c);
        giveUpOrRetry(c);
        return;
    }
    if (why) {
        ++m_disconnects;
        if (m_firstError.isEmpty())
            m_firstError = QString::fromLatin1(why);
    }
    if (std::exchange(c.outstanding, false))
        --m_outstanding;
    closeSocket(c);
}

void LoadGenerator::closeSocket(Connection &c)
{
    c.state = State::Closed;
    epoll_ctl(m_epoll, EPOLL_CTL_DEL, c.fd, nullptr);
    c.ssl.reset();
    close(c.fd);
    c.fd = -1;
}

void LoadGenerator::setWantWrite(Connection &c, bool wantWrite)
{
    if (c.wantWrite == wantWrite)
        return;
    c.wantWrite = wantWrite;
    epoll_event event{};
    event.events = wantWrite ? EPOLLIN | EPOLLOUT : EPOLLIN;
    event.data.ptr = &c;
    epoll_ctl(m_epoll, EPOLL_CTL_MOD, c.fd, &event);
}

void LoadGenerator::markDirty(Connection &c)
{
    if (!c.dirty) {
        c.dirty = true;
        m_dirty.push_back(&c);
    }
}

void LoadGenerator::flushDirty()
{
    for (Connection *c : m_dirty) {
        c->dirty = false;
        if (c->state != State::Closed)
            flush(*c);
    }
    m_dirty.clear();
}

void LoadGenerator::flush(Connection &c)
{
    while (c.sendOffset < c.out.size()) {
        const ssize_t sent = transmit(c, c.out.data() + c.sendOffset, c.out.size() - c.sendOffset);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                closeConnection(c, "send() failed");
            break;
        }
        c.sendOffset += size_t(sent);
    }
    if (c.state == State::Closed)
        return;
    const bool done = c.sendOffset >= c.out.size();
    if (done) {
        c.out.clear();
        c.sendOffset = 0;
    } else if (c.sendOffset > (1 << 20)) {
        c.out.erase(0, c.sendOffset);
        c.sendOffset = 0;
    }
    setWantWrite(c, !done);
}

// ---------------------------------------------------------------------------------------------
// WebSocket, client side (RFC 6455)

void LoadGenerator::sendUpgrade(Connection &c)
{
    c.out += "GET ";
    c.out += m_s.path.constData();
    c.out += " HTTP/1.1\r\nHost: ";
    c.out += m_s.host.toStdString() + ':' + std::to_string(m_s.port);
    // The key need not be random for a benchmark: the server only hashes it.
    c.out += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    if (m_s.system == System::Qtnotif || m_s.system == System::QtnotifPrepare)
        c.out += "Sec-WebSocket-Protocol: qtnotif.v1\r\n";
    c.out += "\r\n";
}

// Consumes the HTTP answer to the upgrade; false while it is incomplete or when it fails.
bool LoadGenerator::parseHandshake(Connection &c, const char *&data, size_t &size)
{
    const std::string_view text(data, size);
    const size_t end = text.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (size > 16384)
            closeConnection(c, "the upgrade answer is too long");
        return false;
    }
    if (text.substr(0, 12) != "HTTP/1.1 101") {
        ++m_connectFailures;
        if (m_firstError.isEmpty())
            m_firstError = u"the server refused the upgrade: "_s
                           + QString::fromUtf8(text.substr(0, text.find('\r')));
        closeConnection(c, nullptr);
        return false;
    }
    data += end + 4;
    size -= end + 4;
    afterUpgrade(c);
    return true;
}

// Parses whole frames from data; returns the bytes used.
size_t LoadGenerator::parseFrames(Connection &c, const char *data, size_t size)
{
    const auto *bytes = reinterpret_cast<const unsigned char *>(data);
    size_t at = 0;
    while (size - at >= 2 && c.state != State::Closed) {
        const bool fin = bytes[at] & 0x80;
        const int opcode = bytes[at] & 0x0f;
        const bool masked = bytes[at + 1] & 0x80;
        uint64_t length = bytes[at + 1] & 0x7f;
        size_t header = 2;
        if (length == 126) {
            if (size - at < 4)
                break;
            length = (uint64_t(bytes[at + 2]) << 8) | bytes[at + 3];
            header = 4;
        } else if (length == 127) {
            if (size - at < 10)
                break;
            length = 0;
            for (int i = 0; i < 8; ++i)
                length = (length << 8) | bytes[at + 2 + i];
            header = 10;
        }
        if (masked || length > MaxFrameSize) {
            ++m_unexpected;
            closeConnection(c, "a masked or huge frame from the server");
            return size;
        }
        if (size - at < header + length)
            break;
        const std::string_view payload(data + at + header, size_t(length));
        at += header + size_t(length);
        switch (opcode) {
        case 0x1: // text
            if (fin) {
                onMessage(c, payload);
            } else {
                c.fragments.assign(payload);
            }
            break;
        case 0x0: // continuation
            c.fragments.append(payload);
            if (fin) {
                const std::string message = std::move(c.fragments);
                c.fragments.clear();
                onMessage(c, message);
            }
            break;
        case 0x9: // ping
            sendFrame(c, 0xA, payload);
            break;
        case 0xA: // pong
            break;
        case 0x8: // close: answer it, then the connection is over
            sendFrame(c, 0x8, payload.substr(0, 2));
            flush(c);
            closeConnection(c, "the server closed the WebSocket");
            return size;
        default:
            ++m_unexpected;
            break;
        }
    }
    return at;
}

// Appends a masked frame header for length bytes to c.out; start is where the payload goes.
void LoadGenerator::beginFrame(Connection &c, int opcode, size_t length, uint32_t &mask,
                               size_t &start)
{
    char header[14];
    size_t size = 0;
    header[size++] = char(0x80 | opcode);
    if (length < 126) {
        header[size++] = char(0x80 | length);
    } else if (length < 65536) {
        header[size++] = char(0x80 | 126);
        header[size++] = char(length >> 8);
        header[size++] = char(length);
    } else {
        header[size++] = char(0x80 | 127);
        for (int i = 7; i >= 0; --i)
            header[size++] = char(uint64_t(length) >> (8 * i));
    }
    // xorshift32: clients must mask; the key need not be unpredictable against our own server.
    m_random ^= m_random << 13;
    m_random ^= m_random >> 17;
    m_random ^= m_random << 5;
    mask = m_random;
    std::memcpy(header + size, &mask, 4);
    size += 4;
    c.out.append(header, size);
    start = c.out.size();
}

void LoadGenerator::sendFrame(Connection &c, int opcode, std::string_view payload)
{
    uint32_t mask;
    size_t start;
    beginFrame(c, opcode, payload.size(), mask, start);
    c.out.append(payload);
    unsigned char key[4];
    std::memcpy(key, &mask, 4);
    char *p = c.out.data() + start;
    for (size_t i = 0; i < payload.size(); ++i)
        p[i] = char(p[i] ^ key[i & 3]);
    markDirty(c);
}

// ---------------------------------------------------------------------------------------------
// The systems

void LoadGenerator::afterUpgrade(Connection &c)
{
    if (m_s.system == System::SocketIo) {
        c.state = State::EngineIoOpen;
        return;
    }
    sendListens(c);
}

void LoadGenerator::sendListens(Connection &c)
{
    if (c.publisher) {
        // Publishers listen to nothing: ready once upgraded (and Socket.IO-connected).
        onListenAnswered(c);
        return;
    }
    c.state = State::Listening;
    c.acksMissing = m_s.keysPerConnection;
    std::string &frame = m_scratch;
    for (int j = 0; j < m_s.keysPerConnection; ++j) {
        int key;
        keyOfSubscriber(c.index, j, key);
        frame.clear();
        switch (m_s.system) {
        case System::Qtnotif:
        case System::QtnotifPrepare:
            frame += R"({"op":"listen","id":)";
            appendNumber(frame, c.nextRequestId++);
            frame += m_s.system == System::Qtnotif ? R"(,"notifier":"bench","key":")"
                                                   : R"(,"notifier":"benchp","key":")";
            frame += keyName(key);
            frame += "\"}";
            break;
        case System::NaiveQt:
        case System::Ws:
            frame += R"({"op":"listen","key":")";
            frame += keyName(key);
            frame += "\"}";
            break;
        case System::SocketIo:
            frame += R"(42["listen",")";
            frame += keyName(key);
            frame += "\"]";
            break;
        }
        sendFrame(c, 0x1, frame);
    }
}

void LoadGenerator::onListenAnswered(Connection &c)
{
    if (c.publisher || --c.acksMissing <= 0) {
        if (c.state != State::Ready) {
            c.state = State::Ready;
            ++m_ready;
            m_lastProgressUs = m_nowUs;
            if (std::exchange(c.outstanding, false))
                --m_outstanding;
        }
    }
}

void LoadGenerator::onMessage(Connection &c, std::string_view text)
{
    // Notifications first: they are nearly all the traffic. Only they hold "t":.
    if (!c.publisher && (c.state == State::Ready || c.state == State::Listening)) {
        const qint64 t = numberAfter(text, R"("t":)");
        if (t >= 0) {
            onNotification(c, text, t);
            return;
        }
    }
    const bool qtnotif = m_s.system == System::Qtnotif || m_s.system == System::QtnotifPrepare;
    if (qtnotif) {
        if (contains(text, R"("op":"reply")"))
            return;
        if (contains(text, R"("op":"ack")") && c.state == State::Listening) {
            onListenAnswered(c);
            return;
        }
        if (contains(text, R"("op":"welcome")"))
            return;
        if (contains(text, R"("op":"error")")) {
            if (contains(text, R"("unknown_notifier")") || contains(text, "unknown_method")
                || (m_s.system == System::QtnotifPrepare && c.publisher)) {
                m_unsupported = true;
                m_firstError = u"the server answered: "_s + QString::fromUtf8(text);
                return;
            }
            ++(c.publisher ? m_publishErrors : m_unexpected);
            if (m_firstError.isEmpty())
                m_firstError = u"the server answered: "_s + QString::fromUtf8(text);
            return;
        }
    } else if (m_s.system == System::SocketIo) {
        if (text == "2") {
            sendFrame(c, 0x1, "3");
            return;
        }
        if (c.state == State::EngineIoOpen && text.substr(0, 2) == "0{") {
            c.state = State::SocketIoConnect;
            sendFrame(c, 0x1, "40");
            return;
        }
        if (c.state == State::SocketIoConnect && text.substr(0, 2) == "40") {
            sendListens(c);
            return;
        }
        if (c.state == State::Listening && text.substr(0, 14) == R"(42["listening")") {
            onListenAnswered(c);
            return;
        }
        if (text.substr(0, 2) == "41" || text == "1") {
            closeConnection(c, "the Socket.IO server disconnected the client");
            return;
        }
    } else {
        if (c.state == State::Listening && contains(text, R"("op":"listening")")) {
            onListenAnswered(c);
            return;
        }
    }
    ++m_unexpected;
    if (m_firstError.isEmpty())
        m_firstError = u"an unexpected message: "_s + QString::fromUtf8(text.substr(0, 200));
}

void LoadGenerator::onNotification(Connection &c, std::string_view text, qint64 t)
{
    const qint64 n = numberAfter(text, R"("n":)");
    const qint64 key = numberAfter(text, R"("key":"k)");
    if (n < 0 || key < 0 || key >= m_s.keys || m_rings.empty()) {
        ++m_unexpected;
        return;
    }
    // Which of this subscriber's keys it is, for the order check.
    int j = 0;
    for (; j < m_s.keysPerConnection; ++j) {
        int mine;
        keyOfSubscriber(c.index, j, mine);
        if (mine == key)
            break;
    }
    if (j == m_s.keysPerConnection) {
        ++m_unexpected; // a key it does not listen to
        return;
    }
    qint64 &expected = c.nextExpected[size_t(j)];
    if (expected >= 0 && n < expected) {
        ++m_duplicated;
        return;
    }
    expected = n + 1;

    if (m_measuring)
        ++m_delivered;
    Slot &slot = m_rings[size_t(key)][size_t(n) & ((size_t(1) << m_ringBits) - 1)];
    if (slot.n != n || slot.missing <= 0) {
        ++m_late;
        return;
    }
    if (slot.measured) {
        ++m_received;
        m_latency.record(m_nowUs - t);
        // Where the latency builds up: before the server's notify() or after it. Same clock.
        if (m_s.mode == Mode::Rate) {
            const qint64 notified = numberAfter(text, R"("notified":)");
            if (notified >= 0)
                m_notifyLatency.record(m_nowUs - notified);
        }
    }
    if (--slot.missing == 0) {
        --m_inFlight;
        if (slot.measured)
            --m_measuredInFlight;
    }
}

// Publishes what is due: in window mode until the window is full, in rate mode what the
// schedule asks for by now.
void LoadGenerator::publish(qint64 nowUs)
{
    if (m_s.publishers <= 0)
        return;
    const int firstPublisher = m_s.connections;
    // At most this many per loop turn, so that receiving goes on while catching up.
    int budget = 2000;
    while (budget-- > 0) {
        qint64 scheduledUs = 0;
        if (m_s.mode == Mode::Window) {
            if (m_inFlight >= m_s.window)
                break;
        } else {
            scheduledUs = m_scheduleStartUs + qint64(double(m_scheduled) * 1e6 / m_notifyRate);
            if (scheduledUs > nowUs)
                break;
        }
        const int key = int(m_publishCount % m_s.keys);
        Connection &p = *m_connections[size_t(firstPublisher + m_publishCount % m_s.publishers)];
        ++m_publishCount;
        if (m_s.mode == Mode::Rate) {
            ++m_scheduled;
            if (m_measuring)
                m_sendLag.record(nowUs - scheduledUs);
        }
        if (p.state != State::Ready || m_listenersOfKey[size_t(key)] == 0)
            continue;
        std::vector<Slot> &ring = m_rings[size_t(key)];
        const qint64 n = m_nextN[size_t(key)];
        Slot &slot = ring[size_t(n) & (ring.size() - 1)];
        if (slot.missing > 0) {
            // The ring is full of notifications still in flight: this key waits (rate mode
            // falls behind its schedule, which send_lag_us shows).
            continue;
        }
        m_nextN[size_t(key)] = n + 1;
        slot.n = n;
        slot.publishedUs = nowUs;
        slot.missing = m_listenersOfKey[size_t(key)];
        slot.measured = m_measuring;
        ++m_inFlight;
        if (m_measuring) {
            ++m_notifications;
            ++m_measuredInFlight;
            m_expected += slot.missing;
        }

        std::string &frame = m_scratch;
        frame.clear();
        const auto appendData = [&] {
            frame += R"({"t":)";
            appendNumber(frame, nowUs);
            frame += R"(,"n":)";
            appendNumber(frame, n);
            frame += R"(,"p":")";
            frame += m_padding;
            frame += "\"}";
        };
        switch (m_s.system) {
        case System::Qtnotif:
        case System::QtnotifPrepare:
            frame += R"({"op":"request","id":)";
            appendNumber(frame, p.nextRequestId++);
            frame += R"(,"method":"publish","payload":{)";
            if (m_s.system == System::QtnotifPrepare)
                frame += R"("notifier":"benchp",)";
            frame += R"("key":")";
            frame += keyName(key);
            frame += R"(","data":)";
            appendData();
            frame += "}}";
            break;
        case System::NaiveQt:
        case System::Ws:
            frame += R"({"op":"publish","key":")";
            frame += keyName(key);
            frame += R"(","data":)";
            appendData();
            frame += "}";
            break;
        case System::SocketIo:
            frame += R"(42["publish",{"key":")";
            frame += keyName(key);
            frame += R"(","data":)";
            appendData();
            frame += "}]";
            break;
        }
        sendFrame(p, 0x1, frame);
    }
}

// ---------------------------------------------------------------------------------------------
// A run

int LoadGenerator::run()
{
    // 100 000 connections need as many descriptors: up to the hard limit, or beyond it as
    // root (CAP_SYS_RESOURCE), up to fs.nr_open.
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    const rlim_t needed = rlim_t(m_s.connections + m_s.publishers + 64);
    if (limit.rlim_max < needed) {
        rlimit raised{ needed, needed };
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            limit = raised;
    }
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < needed)
        die(ExitFailed,
            u"%1 connections need %2 file descriptors; the limit is %3 (beyond the hard limit needs CAP_SYS_RESOURCE)"_s
                    .arg(QString::number(m_s.connections + m_s.publishers), QString::number(needed),
                         QString::number(limit.rlim_cur)));
    std::signal(SIGPIPE, SIG_IGN);

    m_epoll = epoll_create1(EPOLL_CLOEXEC);
    const qint64 rssBefore = rssKib(m_s.serverPid);

    // Connect and listen.
    const qint64 serverCpuBeforeConnecting = cpuMicroseconds(m_s.serverPid);
    m_nowUs = m_connectStartUs = m_lastProgressUs = monotonicMicroseconds();
    const int total = m_s.connections + m_s.publishers;
    openConnections();
    while (m_ready < total) {
        loopOnce(m_nowUs + 100'000);
        if (m_unsupported)
            die(ExitUnsupported,
                u"system %1 is not supported by this server: "_s.arg(m_s.systemName)
                        + m_firstError);
        const qint64 closed = m_failedConnections;
        if (m_ready == 0 && m_connectFailures >= std::min(total, 10))
            die(ExitFailed,
                u"cannot connect to %1://%2:%3: "_s.arg(m_s.tls ? u"wss"_s : u"ws"_s, m_s.host)
                                .arg(m_s.port)
                        + m_firstError);
        if (closed > 0 && m_ready + closed >= total && m_opened == total) {
            die(ExitFailed,
                u"%1 of %2 connections failed: "_s.arg(closed).arg(total) + m_firstError);
        }
        if (m_opened == total && m_toRetry.empty()
            && m_nowUs - m_lastProgressUs > ConnectTimeoutUs) {
            int connecting = 0, upgrading = 0, listening = 0;
            for (const auto &c : m_connections) {
                connecting += c->state == State::Connecting;
                upgrading += c->state == State::TlsHandshake || c->state == State::Upgrading
                             || c->state == State::EngineIoOpen
                             || c->state == State::SocketIoConnect;
                listening += c->state == State::Listening;
            }
            die(ExitFailed,
                u"listens not acknowledged in %1 s: %2 of %3 connections ready (%4 connecting, "
                "%5 in their TLS or WebSocket handshake, %6 waiting for listen answers)"_s.arg(
                        QString::number(ConnectTimeoutUs / 1'000'000), QString::number(m_ready),
                        QString::number(total), QString::number(connecting),
                        QString::number(upgrading), QString::number(listening)));
        }
    }
    m_connected = true;
    const double connectSeconds = double(monotonicMicroseconds() - m_connectStartUs) / 1e6;
    const qint64 serverCpuConnected = cpuMicroseconds(m_s.serverPid);
    const qint64 rssConnected = rssKib(m_s.serverPid);
    const qint64 connectErrors = m_connectFailures;

    // Warm up, then measure.
    const auto runFor = [this](double seconds) {
        const qint64 end = monotonicMicroseconds() + qint64(seconds * 1e6);
        while (m_nowUs < end) {
            loopOnce(end);
            if (m_unsupported)
                die(ExitUnsupported,
                    u"system %1 is not supported by this server: "_s.arg(m_s.systemName)
                            + m_firstError);
        }
    };
    if (m_s.mode != Mode::Idle) {
        m_publishing = true;
        m_scheduleStartUs = monotonicMicroseconds();
        runFor(m_s.warmup);
    }
    m_measuring = true;
    const qint64 startUs = monotonicMicroseconds();
    const qint64 serverCpuStart = cpuMicroseconds(m_s.serverPid);
    const std::map<qint64, ThreadCpu> serverThreadsStart = threadCpu(m_s.serverPid);
    const qint64 ownCpuStart = QtNotifBench::processCpuMicroseconds();
    const MachineCpu machineStart = machineCpu();
    const std::map<qint64, qint64> othersStart = otherProcessesCpu(m_s.serverPid);
    const qint64 disconnectsBefore = m_disconnects;
    runFor(m_s.duration);
    m_measuring = false;
    const qint64 endUs = monotonicMicroseconds();
    const qint64 serverCpuEnd = cpuMicroseconds(m_s.serverPid);
    const std::map<qint64, ThreadCpu> serverThreadsEnd = threadCpu(m_s.serverPid);
    const qint64 ownCpuEnd = QtNotifBench::processCpuMicroseconds();
    const MachineCpu machineEnd = machineCpu();
    const std::map<qint64, qint64> othersEnd = otherProcessesCpu(m_s.serverPid);
    const double seconds = double(endUs - startUs) / 1e6;

    // Drain: what was published while measuring gets 5 s to arrive.
    m_publishing = false;
    const qint64 drainEnd = endUs + DrainTimeoutUs;
    while (m_measuredInFlight > 0 && m_nowUs < drainEnd)
        loopOnce(std::min(drainEnd, m_nowUs + 10'000));
    const qint64 rssAfter = rssKib(m_s.serverPid);

    const auto cpuPercent = [seconds](qint64 start, qint64 end) {
        return start < 0 || end < 0 ? -1.0 : double(end - start) / (seconds * 1e6) * 100;
    };
    const double server = cpuPercent(serverCpuStart, serverCpuEnd);
    const double generator = cpuPercent(ownCpuStart, ownCpuEnd);
    QJsonObject result{
        { u"bench"_s, u"peers"_s },
        { u"label"_s, m_s.label },
        { u"system"_s, m_s.systemName },
        { u"mode"_s, m_s.modeName },
        { u"connections"_s, m_s.connections },
        { u"keys"_s, m_s.keys },
        { u"keys_per_connection"_s, m_s.keysPerConnection },
        { u"listeners_per_key"_s,
          double(m_s.connections) * m_s.keysPerConnection / std::max(1, m_s.keys) },
        { u"publishers"_s, m_s.mode == Mode::Idle ? 0 : m_s.publishers },
        { u"payload_bytes"_s, m_s.payload },
        { u"duration_s"_s, seconds },
        { u"connect_seconds"_s, connectSeconds },
        { u"connect_retries"_s, m_connectRetries },
        // What setting up a connection cost the server: its CPU from the first connection
        // opened to the last listen acknowledged, per connection (µs; -1 without a server pid).
        { u"connect_server_cpu_us"_s,
          serverCpuBeforeConnecting >= 0 && serverCpuConnected >= 0
                  ? double(serverCpuConnected - serverCpuBeforeConnecting) / total
                  : -1.0 },
        { u"generator_cpu_percent"_s, generator },
    };
    // The machine's busy time is the server's, the generator's, the other processes' and the
    // kernel's work charged to no process: software interrupts that ran on an idle core (on
    // loopback, TCP's timers and acknowledgements of the benchmark's own connections) and time
    // the hypervisor stole.
    const double machine = cpuPercent(machineStart.busyUs, machineEnd.busyUs);
    const double others = cpuPercent(0, otherProcessesCpuBetween(othersStart, othersEnd));
    const double unattributed = std::max(0.0, machine - server - generator - others);
    result.insert(u"machine_cpu_percent"_s, machine);
    if (machine >= 0 && server >= 0) {
        result.insert(u"other_cpu_percent"_s, others);
        result.insert(u"unattributed_cpu_percent"_s, unattributed);
        result.insert(u"softirq_cpu_percent"_s,
                      cpuPercent(machineStart.softirqUs, machineEnd.softirqUs));
        result.insert(u"steal_cpu_percent"_s, cpuPercent(machineStart.stealUs, machineEnd.stealUs));
    }
    if (m_s.mode == Mode::Window)
        result.insert(u"window"_s, m_s.window);
    if (m_s.mode == Mode::Rate)
        result.insert(u"target_rate"_s, m_s.rate);
    const qint64 lost = std::max<qint64>(0, m_expected - m_received);
    if (m_s.mode != Mode::Idle) {
        result.insert(u"notifications"_s, m_notifications);
        result.insert(u"notify_rate"_s, double(m_notifications) / seconds);
        result.insert(u"delivered"_s, m_delivered);
        result.insert(u"delivery_rate"_s, double(m_delivered) / seconds);
        result.insert(u"expected"_s, m_expected);
        result.insert(u"received"_s, m_received);
        result.insert(u"lost"_s, lost);
        result.insert(u"duplicated"_s, m_duplicated);
        result.insert(u"latency_us"_s, m_latency.toJson());
        if (m_s.mode == Mode::Rate)
            result.insert(u"send_lag_us"_s, m_sendLag.toJson());
        if (m_s.mode == Mode::Rate && m_notifyLatency.count() > 0)
            result.insert(u"notify_latency_us"_s, m_notifyLatency.toJson());
    }
    // Each server thread that ran the whole measurement, the main thread (its id is the pid)
    // first: with worker threads, the busiest one says how far the server could go with a core
    // for each.
    QJsonArray threads;
    double serverUserPercent = 0;
    for (const auto &[tid, end] : serverThreadsEnd) {
        const auto start = serverThreadsStart.find(tid);
        if (start == serverThreadsStart.end())
            continue;
        const double user = cpuPercent(start->second.userUs, end.userUs);
        const double system = cpuPercent(start->second.systemUs, end.systemUs);
        serverUserPercent += user;
        const QJsonObject thread{ { u"name"_s, end.name },
                                  { u"main"_s, tid == m_s.serverPid },
                                  { u"cpu_percent"_s, user + system },
                                  { u"user_percent"_s, user } };
        if (tid == m_s.serverPid)
            threads.prepend(thread);
        else
            threads.append(thread);
    }
    const int totalConnections = m_s.connections + (m_s.mode == Mode::Idle ? 0 : m_s.publishers);
    result.insert(
            u"server"_s,
            QJsonObject{
                    { u"pid"_s, m_s.serverPid },
                    { u"threads"_s, threads },
                    { u"user_percent"_s, threads.isEmpty() ? -1.0 : serverUserPercent },
                    { u"rss_kib_before"_s, rssBefore },
                    { u"rss_kib_connected"_s, rssConnected },
                    { u"rss_kib_after"_s, rssAfter },
                    { u"kib_per_connection"_s,
                      rssBefore < 0 ? -1.0 : double(rssConnected - rssBefore) / totalConnections },
                    { u"cpu_percent"_s, server },
            });
    result.insert(u"errors"_s,
                  QJsonObject{
                          { u"connect"_s, connectErrors },
                          { u"unexpected_frames"_s, m_unexpected },
                          { u"disconnects"_s, m_disconnects },
                          { u"disconnects_measuring"_s, m_disconnects - disconnectsBefore },
                          { u"publish_errors"_s, m_publishErrors },
                          { u"late"_s, m_late },
                          { u"first"_s, m_firstError },
                  });
    QTextStream(stdout) << QJsonDocument(result).toJson(QJsonDocument::Compact) << Qt::endl;

    QTextStream human(stderr);
    human << m_s.systemName << ' ' << m_s.modeName;
    if (!m_s.label.isEmpty())
        human << " (" << m_s.label << ')';
    human << ": " << totalConnections << " connections in "
          << QString::number(connectSeconds, 'f', 2) << " s";
    if (m_s.mode != Mode::Idle) {
        human << ", " << QString::number(double(m_delivered) / seconds, 'f', 0)
              << " deliveries/s, latency p50 "
              << QString::number(m_latency.quantile(0.5) / 1000, 'f', 2) << " ms p99 "
              << QString::number(m_latency.quantile(0.99) / 1000, 'f', 2) << " ms, lost " << lost
              << ", duplicated " << m_duplicated;
    }
    human << ", server CPU " << QString::number(server, 'f', 1) << " %";
    if (threads.size() > 1) {
        human << " (threads";
        for (const QJsonValue &thread : std::as_const(threads))
            human << ' ' << QString::number(thread[u"cpu_percent"_s].toDouble(), 'f', 1);
        human << ')';
    }
    human << ", generator CPU " << QString::number(generator, 'f', 1) << " %, other programs "
          << QString::number(others, 'f', 0) << " %, charged to no process "
          << QString::number(unattributed, 'f', 0) << " %";
    if (rssBefore >= 0)
        human << ", server "
              << QString::number(double(rssConnected - rssBefore) / totalConnections, 'f', 1)
              << " KiB/connection";
    if (m_disconnects || m_unexpected || connectErrors)
        human << "; errors: " << connectErrors << " connect, " << m_disconnects << " disconnects, "
              << m_unexpected << " unexpected (" << m_firstError << ')';
    human << Qt::endl;

    for (auto &c : m_connections) {
        if (c->fd >= 0)
            close(c->fd);
    }
    return 0;
}

// ---------------------------------------------------------------------------------------------
// The command line

Settings parseArguments(const QCoreApplication &app)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(
            u"Drives qtnotif or a peer server (bench/peers/README.md) with WebSocket clients of "
            "its own, over raw sockets; prints one JSON line (bench/README.md)."_s);
    parser.addHelpOption();
    const QCommandLineOption system(u"system"_s,
                                    u"qtnotif, qtnotif-prepare, naive-qt, ws or socketio."_s,
                                    u"name"_s, u"qtnotif"_s);
    const QCommandLineOption url(
            u"url"_s,
            u"The server, ws://127.0.0.1:PORT/ (or wss://: TLS, certificate not verified)."_s,
            u"url"_s);
    const QCommandLineOption serverPid(
            u"server-pid"_s, u"The server's process, for its memory and CPU (/proc)."_s, u"pid"_s);
    const QCommandLineOption connections(u"connections"_s, u"Subscribers (2000)."_s, u"n"_s,
                                         u"2000"_s);
    const QCommandLineOption keys(u"keys"_s, u"Keys (20)."_s, u"k"_s, u"20"_s);
    const QCommandLineOption keysPerConnection(
            u"keys-per-connection"_s,
            u"Keys each subscriber listens to: subscriber i to (i*M + j) mod K (1)."_s, u"m"_s,
            u"1"_s);
    const QCommandLineOption publishers(
            u"publishers"_s, u"Connections that publish round robin over the keys (4)."_s, u"p"_s,
            u"4"_s);
    const QCommandLineOption mode(u"mode"_s, u"window, rate or idle (window)."_s, u"mode"_s,
                                  u"window"_s);
    const QCommandLineOption window(u"window"_s, u"Window mode: notifications in flight (500)."_s,
                                    u"w"_s, u"500"_s);
    const QCommandLineOption rate(u"rate"_s, u"Rate mode: deliveries per second."_s, u"r"_s);
    const QCommandLineOption duration(u"duration"_s, u"Seconds measured (10)."_s, u"s"_s, u"10"_s);
    const QCommandLineOption warmup(u"warmup"_s, u"Seconds before measuring (2)."_s, u"s"_s,
                                    u"2"_s);
    const QCommandLineOption payload(
            u"payload"_s, u"Bytes of the notification text a subscriber receives (100)."_s,
            u"bytes"_s, u"100"_s);
    const QCommandLineOption label(u"label"_s, u"A label for the JSON line."_s, u"text"_s);
    const QCommandLineOption sourceAddresses(
            u"source-addresses"_s,
            u"Bind connections round robin to these loopback addresses, A-B (127.0.0.1-127.0.0.20)."_s,
            u"range"_s);
    const QCommandLineOption connectRate(
            u"connect-rate"_s, u"Connections opened per second at most (unlimited)."_s, u"n"_s);
    parser.addOptions({ system, url, serverPid, connections, keys, keysPerConnection, publishers,
                        mode, window, rate, duration, warmup, payload, label, sourceAddresses,
                        connectRate });
    parser.process(app);

    const auto number = [&parser](const QCommandLineOption &option, double minimum) {
        bool ok = false;
        const double value = parser.value(option).toDouble(&ok);
        if (!ok || value < minimum)
            die(ExitUsage,
                u"--%1: expected a number of at least %2, not \"%3\""_s.arg(
                        option.names().first(), QString::number(minimum), parser.value(option)));
        return value;
    };

    Settings s;
    s.systemName = parser.value(system);
    if (s.systemName == u"qtnotif"_s)
        s.system = System::Qtnotif;
    else if (s.systemName == u"qtnotif-prepare"_s)
        s.system = System::QtnotifPrepare;
    else if (s.systemName == u"naive-qt"_s)
        s.system = System::NaiveQt;
    else if (s.systemName == u"ws"_s)
        s.system = System::Ws;
    else if (s.systemName == u"socketio"_s)
        s.system = System::SocketIo;
    else
        die(ExitUsage, u"--system: unknown system "_s + s.systemName);

    if (!parser.isSet(url))
        die(ExitUsage, u"--url is required"_s);
    const QUrl serverUrl(parser.value(url));
    if ((serverUrl.scheme() != u"ws"_s && serverUrl.scheme() != u"wss"_s) || serverUrl.port() <= 0)
        die(ExitUsage, u"--url: expected ws://HOST:PORT/ or wss://, not "_s + parser.value(url));
    s.tls = serverUrl.scheme() == u"wss"_s;
    s.host = serverUrl.host();
    s.port = quint16(serverUrl.port());
    s.path = s.system == System::SocketIo ? QByteArray("/socket.io/?EIO=4&transport=websocket")
                                          : serverUrl.path(QUrl::FullyEncoded).toUtf8();
    if (s.path.isEmpty())
        s.path = "/";

    if (parser.isSet(serverPid))
        s.serverPid = qint64(number(serverPid, 1));
    s.connections = int(number(connections, 1));
    s.keys = int(number(keys, 1));
    s.keysPerConnection = int(number(keysPerConnection, 1));
    if (s.keysPerConnection > s.keys)
        die(ExitUsage, u"--keys-per-connection cannot exceed --keys"_s);
    s.publishers = int(number(publishers, 0));
    s.modeName = parser.value(mode);
    if (s.modeName == u"window"_s) {
        s.mode = Mode::Window;
    } else if (s.modeName == u"rate"_s) {
        s.mode = Mode::Rate;
        if (!parser.isSet(rate))
            die(ExitUsage, u"--mode rate needs --rate"_s);
        s.rate = number(rate, 1);
    } else if (s.modeName == u"idle"_s) {
        s.mode = Mode::Idle;
        s.publishers = 0;
    } else {
        die(ExitUsage, u"--mode: window, rate or idle, not "_s + s.modeName);
    }
    if (s.mode != Mode::Idle && s.publishers == 0)
        die(ExitUsage, u"--mode window and rate need publishers"_s);
    s.window = int(number(window, 1));
    s.duration = number(duration, 0.1);
    s.warmup = number(warmup, 0);
    s.payload = int(number(payload, 0));
    s.label = parser.value(label);
    if (parser.isSet(connectRate))
        s.connectRate = number(connectRate, 1);
    if (parser.isSet(sourceAddresses)) {
        const QStringList range = parser.value(sourceAddresses).split(u'-');
        in_addr first{}, last{};
        if (range.size() > 2
            || inet_pton(AF_INET, range.first().toLatin1().constData(), &first) != 1
            || inet_pton(AF_INET, range.last().toLatin1().constData(), &last) != 1
            || ntohl(last.s_addr) < ntohl(first.s_addr))
            die(ExitUsage, u"--source-addresses: expected A-B, two IPv4 addresses in order"_s);
        for (uint32_t a = ntohl(first.s_addr); a <= ntohl(last.s_addr); ++a)
            s.sourceAddresses.push_back(in_addr{ htonl(a) });
    }
    return s;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"qtnotif-bench-loadgen"_s);
    const Settings settings = parseArguments(app);
    LoadGenerator generator(settings);
    return generator.run();
}
