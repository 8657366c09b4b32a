// A real redis-server for tests: started on a free loopback port in a temporary directory of its
// own (no persistence, nothing shared with a system Redis), killed and started again on the same
// port when a test wants an outage, and asked commands synchronously (PUBSUB NUMSUB, ...) over a
// small RESP exchange. The server is stopped when the object is destroyed.
//
//   RedisServer redis;
//   QVERIFY2(redis.start(), qPrintable(redis.errorString()));
//   QTRY_COMPARE(redis.subscriberCount("qtnotif:0:all"), 2);
//
// Lives in the test's thread. A missing redis-server makes start() fail with a message that says
// which package to install: a broker test must fail, not skip, where Redis is missing.
#pragma once

#include <QtCore/QByteArray>
#include <QtCore/QStringList>
#include <QtCore/QFile>
#include <QtCore/QList>
#include <QtCore/QProcess>
#include <QtCore/QRandomGenerator>
#include <QtCore/QStandardPaths>
#include <QtCore/QString>
#include <QtCore/QTemporaryDir>
#include <QtCore/QVariant>
#include <QtNetwork/QHostAddress>
#include <QtNetwork/QTcpServer>
#include <QtNetwork/QTcpSocket>
#include <QtTest/QTest>

#include <algorithm>
#include <chrono>
#include <optional>

#ifdef Q_OS_LINUX
#include <csignal>
#include <sys/prctl.h>
#endif

class RedisServer
{
public:
    RedisServer() = default;
    RedisServer(const RedisServer &) = delete;
    RedisServer &operator=(const RedisServer &) = delete;
    ~RedisServer() { stop(); }

    // Extra redis-server arguments for the next start(): a password (--requirepass) or ACL
    // users (--user), say. password is what ping() authenticates with; command() does not.
    void setArguments(const QStringList &arguments, const QByteArray &password = {})
    {
        m_arguments = arguments;
        m_password = password;
    }

    // Starts redis-server and waits until it answers PING. The first start picks a free loopback
    // port; later ones (after kill() or stop()) reuse it, so that clients find the server where
    // it was. Returns false with errorString() on failure.
    bool start(std::chrono::milliseconds timeout = std::chrono::seconds(10))
    {
        m_error.clear();
        if (isRunning())
            return true;
        const QString program = QStandardPaths::findExecutable(QStringLiteral("redis-server"));
        if (program.isEmpty()) {
            m_error = QStringLiteral("redis-server is not installed (not found in PATH): install "
                                     "the Debian package redis-server (scripts/test.sh does)");
            return false;
        }
        if (!m_dir.isValid()) {
            m_error = QStringLiteral("cannot make a temporary directory: %1")
                              .arg(m_dir.errorString());
            return false;
        }
        if (m_port == 0 && !pickFreePort())
            return false;

        m_process.setProgram(program);
        QStringList arguments;
        const auto option = [&arguments](const char *name, const QString &value) {
            arguments << QString::fromLatin1(name) << value;
        };
        option("--port", QString::number(m_port));
        option("--bind", QStringLiteral("127.0.0.1"));
        // Nothing written to disk, nothing read from a system configuration.
        option("--save", QString());
        option("--appendonly", QStringLiteral("no"));
        option("--dir", m_dir.path());
        option("--daemonize", QStringLiteral("no"));
        option("--loglevel", QStringLiteral("warning"));
        // Lets a test stall the server (DEBUG SLEEP), from loopback only.
        option("--enable-debug-command", QStringLiteral("local"));
        m_process.setArguments(arguments + m_arguments);
        m_process.setWorkingDirectory(m_dir.path());
        m_process.setProcessChannelMode(QProcess::MergedChannels);
        m_process.setStandardOutputFile(logPath(), QIODevice::Append);
#ifdef Q_OS_LINUX
        // A test that crashes or is killed by ctest's timeout must not leave Redis behind.
        m_process.setChildProcessModifier([] { ::prctl(PR_SET_PDEATHSIG, SIGKILL); });
#endif
        m_process.start();
        if (!m_process.waitForStarted()) {
            m_error = QStringLiteral("cannot start %1: %2").arg(program, m_process.errorString());
            return false;
        }
        // Polls with PING until it answers or exits (a port taken meanwhile, say).
        const bool ready = QTest::qWaitFor(
                [this] { return m_process.state() != QProcess::Running || ping(); },
                int(timeout.count()));
        if (!ready || m_process.state() != QProcess::Running) {
            m_error = QStringLiteral(
                              "redis-server on port %1 did not answer PING (%2); its log:\n%3")
                              .arg(m_port)
                              .arg(m_process.state() == QProcess::Running
                                           ? QStringLiteral("timed out")
                                           : QStringLiteral("it exited"),
                                   log());
            stop();
            return false;
        }
        return true;
    }

    // Kills the server at once (SIGKILL): connections drop as in a crash.
    void kill()
    {
        if (m_process.state() == QProcess::NotRunning)
            return;
        m_process.kill();
        m_process.waitForFinished(5000);
    }

    // Freezes the server (SIGSTOP): connections stay open and nothing is read or answered, as
    // with a Redis stalled by a long command or a swapping machine. resume() thaws it.
    void pause()
    {
        if (isRunning())
            ::kill(pid_t(m_process.processId()), SIGSTOP);
    }
    void resume()
    {
        if (isRunning())
            ::kill(pid_t(m_process.processId()), SIGCONT);
    }

    // Stops the server (SIGTERM, then SIGKILL if it lingers).
    void stop()
    {
        if (m_process.state() == QProcess::NotRunning)
            return;
        m_process.terminate();
        if (!m_process.waitForFinished(5000))
            kill();
    }

    bool isRunning() const
    {
        return m_process.state() == QProcess::Running;
    }
    quint16 port() const
    {
        return m_port;
    }
    // redis://127.0.0.1:<port>/<db>
    QString url(int db = 0) const
    {
        return QStringLiteral("redis://127.0.0.1:%1/%2").arg(m_port).arg(db);
    }
    QString errorString() const
    {
        return m_error;
    }
    // What redis-server wrote (warnings only).
    QString log() const
    {
        QFile file(logPath());
        return file.open(QIODevice::ReadOnly) ? QString::fromLocal8Bit(file.readAll()) : QString();
    }

    // Runs one command on a fresh connection and returns the reply: a simple or bulk string as
    // QByteArray, an integer as qlonglong, an array as QVariantList, nil as a QVariant holding
    // nullptr. An error reply or a failure gives an invalid QVariant and errorString() says why.
    QVariant command(const QList<QByteArray> &args)
    {
        m_error.clear();
        QTcpSocket socket;
        socket.connectToHost(QHostAddress::LocalHost, m_port);
        if (!socket.waitForConnected(2000)) {
            m_error = QStringLiteral("cannot connect to Redis: %1").arg(socket.errorString());
            return {};
        }
        QByteArray request = '*' + QByteArray::number(args.size()) + "\r\n";
        for (const QByteArray &arg : args)
            request += '$' + QByteArray::number(arg.size()) + "\r\n" + arg + "\r\n";
        socket.write(request);
        QByteArray buffer;
        while (true) {
            qsizetype position = 0;
            if (std::optional<QVariant> reply = parse(buffer, position))
                return *reply;
            if (!socket.waitForReadyRead(2000)) {
                m_error = QStringLiteral("no complete reply from Redis to %1: %2")
                                  .arg(QString::fromUtf8(args.value(0)), socket.errorString());
                return {};
            }
            buffer += socket.readAll();
        }
    }

    // Connections subscribed to the channel (PUBSUB NUMSUB); -1 when Redis does not answer.
    int subscriberCount(const QByteArray &channel)
    {
        const QVariantList reply = command({ "PUBSUB", "NUMSUB", channel }).toList();
        return reply.size() == 2 ? reply.at(1).toInt() : -1;
    }

    // The channels with at least one subscriber that match the glob pattern (PUBSUB CHANNELS),
    // sorted.
    QList<QByteArray> activeChannels(const QByteArray &pattern)
    {
        QList<QByteArray> channels;
        const QVariantList reply = command({ "PUBSUB", "CHANNELS", pattern }).toList();
        for (const QVariant &channel : reply)
            channels.append(channel.toByteArray());
        std::sort(channels.begin(), channels.end());
        return channels;
    }

private:
    QString logPath() const
    {
        return m_dir.filePath(QStringLiteral("redis.log"));
    }

    bool pickFreePort()
    {
        // Below the kernel's range of ephemeral ports: while the server is down (kill(), then
        // start()), the nodes' reconnection attempts take ephemeral ports, and one could take
        // this one (or connect to itself on it). Bound then released: redis-server binds it a
        // moment later (SO_REUSEADDR).
        int ephemeralStart = 32768;
        QFile range(QStringLiteral("/proc/sys/net/ipv4/ip_local_port_range"));
        if (range.open(QIODevice::ReadOnly))
            ephemeralStart = range.readAll().simplified().split(' ').value(0).toInt();
        if (ephemeralStart <= 10000)
            ephemeralStart = 32768;
        for (int attempt = 0; attempt < 100; ++attempt) {
            const auto port
                    = quint16(10000 + QRandomGenerator::global()->bounded(ephemeralStart - 10000));
            QTcpServer probe;
            if (probe.listen(QHostAddress::LocalHost, port)) {
                m_port = port;
                return true;
            }
        }
        m_error = QStringLiteral("no free loopback port below %1").arg(ephemeralStart);
        return false;
    }

    bool ping()
    {
        QTcpSocket socket;
        socket.connectToHost(QHostAddress::LocalHost, m_port);
        if (!socket.waitForConnected(200))
            return false;
        if (!m_password.isEmpty())
            socket.write("AUTH " + m_password + "\r\n");
        socket.write("PING\r\n");
        QByteArray answer;
        while (!answer.contains("PONG") && !answer.startsWith('-') && socket.waitForReadyRead(200))
            answer += socket.readAll();
        // "-LOADING ..." while it starts; "+PONG" once it serves (after "+OK" to AUTH).
        return answer.contains("+PONG");
    }

    // One RESP2 reply from data at position; std::nullopt when data holds only part of it.
    std::optional<QVariant> parse(const QByteArray &data, qsizetype &position)
    {
        const qsizetype end = data.indexOf("\r\n", position);
        if (end < 0)
            return std::nullopt;
        const char type = data.at(position);
        const QByteArray line = data.mid(position + 1, end - position - 1);
        position = end + 2;
        switch (type) {
        case '+':
            return QVariant(line);
        case '-':
            m_error = QStringLiteral("Redis error: %1").arg(QString::fromUtf8(line));
            return QVariant();
        case ':':
            return QVariant(line.toLongLong());
        case '$': {
            const qsizetype length = line.toLongLong();
            if (length < 0)
                return QVariant::fromValue(nullptr);
            if (data.size() < position + length + 2)
                return std::nullopt;
            const QByteArray bulk = data.mid(position, length);
            position += length + 2;
            return QVariant(bulk);
        }
        case '*': {
            const qsizetype count = line.toLongLong();
            QVariantList list;
            for (qsizetype i = 0; i < count; ++i) {
                std::optional<QVariant> element = parse(data, position);
                if (!element)
                    return std::nullopt;
                list.append(*element);
            }
            return QVariant(list);
        }
        default:
            m_error = QStringLiteral("not a RESP reply: %1").arg(QString::fromUtf8(data));
            return QVariant();
        }
    }

    QTemporaryDir m_dir;
    QStringList m_arguments;
    QByteArray m_password;
    QProcess m_process;
    quint16 m_port = 0;
    QString m_error;
};
