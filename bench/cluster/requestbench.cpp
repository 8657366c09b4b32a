#include "requestbench.h"

#include "benchclock.h"
#include "measure.h"

#include <QtNotif/client.h>
#include <QtNotif/clientnotifier.h>

#include <cmath>
#include <utility>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace QtNotifBench {

namespace {

const QString NotifierName = u"bench"_s;
const QString Key = u"counted"_s;
// The asker and the other client listen to Key: every answer counts both.
constexpr int ExpectedCount = 2;
// Two clients connect to a loopback server in milliseconds; this only catches a node that is
// not there.
constexpr auto ConnectTimeout = 30s;
// How long the count may take to reach 2: the other client's listen has to be registered on
// its node first, a few milliseconds after it connected.
constexpr auto SettleTimeout = 10s;
constexpr auto SettleRetry = 10ms;
// The nodes answer "stats" in milliseconds.
constexpr auto StatsTimeout = 5s;

} // namespace

RequestBench::RequestBench(const Options &options, QObject *parent)
    : QObject(parent), m_options(options)
{
    m_timeout.setSingleShot(true);
}

RequestBench::~RequestBench() = default;

void RequestBench::start()
{
    Q_ASSERT(m_phase == Phase::Idle);
    Q_ASSERT(m_options.requests > 0);
    m_phase = Phase::Connecting;
    const auto makeClient = [this](const QUrl &url) {
        auto client = std::make_unique<QtNotif::Client>();
        client->setUrl(url);
        connect(client.get(), &QtNotif::Client::connected, this, &RequestBench::onClientConnected);
        connect(client.get(), &QtNotif::Client::disconnected, this, [this] {
            if (m_phase != Phase::Done)
                ++m_disconnects;
        });
        client->notifier(NotifierName)->listen(Key);
        return client;
    };
    m_asker = makeClient(m_options.askUrl);
    m_other = makeClient(m_options.otherUrl);
    connect(&m_timeout, &QTimer::timeout, this, [this] {
        fail(u"only %1 of 2 clients connected within %2 s"_s.arg(m_connected)
                     .arg(std::chrono::seconds(ConnectTimeout).count()));
    });
    m_timeout.start(ConnectTimeout);
    m_asker->open();
    m_other->open();
}

void RequestBench::onClientConnected()
{
    if (m_phase != Phase::Connecting || ++m_connected < 2)
        return;
    m_timeout.disconnect(this);
    connect(&m_timeout, &QTimer::timeout, this, [this] {
        fail(u"\"count\" did not answer %1 within %2 s (last error: %3)"_s.arg(ExpectedCount)
                     .arg(std::chrono::seconds(SettleTimeout).count())
                     .arg(m_lastError.isEmpty() ? u"none"_s : m_lastError));
    });
    m_timeout.start(SettleTimeout);
    m_phase = Phase::Settling;
    ask();
}

void RequestBench::ask()
{
    m_askedAt = monotonicMicroseconds();
    m_asker->call(u"count"_s, QJsonObject{ { u"key"_s, Key } }, this,
                  [this](const QtNotif::CallReply &reply) {
                      onAnswer(reply.isError(), reply.result(),
                               reply.errorCode() + u": "_s + reply.errorMessage());
                  });
}

void RequestBench::onAnswer(bool isError, const QJsonValue &result, const QString &error)
{
    const qint64 now = monotonicMicroseconds();
    const bool right = !isError && result.toInt(-1) == ExpectedCount;
    if (isError)
        m_lastError = error;
    switch (m_phase) {
    case Phase::Settling:
        if (!right) {
            QTimer::singleShot(SettleRetry, this, [this] {
                if (m_phase == Phase::Settling)
                    ask();
            });
            return;
        }
        m_timeout.stop();
        m_timeout.disconnect(this);
        m_phase = Phase::Warmup;
        m_warmupEnd = now + qint64(m_options.warmup.count()) * 1000;
        ask();
        return;
    case Phase::Warmup:
        ++m_warmupCalls;
        if (now < m_warmupEnd) {
            ask();
            return;
        }
        m_phase = Phase::Measuring;
        m_latencies.reserve(std::size_t(m_options.requests));
        // The stats calls go before the first measured call, not alongside it.
        takeSnapshot(m_before, m_options.cpuPids, m_asker.get(), m_other.get(), this,
                     [this] { ask(); });
        return;
    case Phase::Measuring:
        m_latencies.push_back(qint32(now - m_askedAt));
        if (isError)
            ++m_callErrors;
        else if (!right)
            ++m_wrongCounts;
        if (qsizetype(m_latencies.size()) < m_options.requests)
            ask();
        else
            finishRun();
        return;
    case Phase::Idle:
    case Phase::Connecting:
    case Phase::Done:
        return;
    }
}

void RequestBench::finishRun()
{
    m_phase = Phase::Done;
    connect(&m_timeout, &QTimer::timeout, this,
            [this] { fail(u"a node did not answer \"stats\""_s); });
    m_timeout.start(StatsTimeout);
    takeSnapshot(m_after, m_options.cpuPids, m_asker.get(), m_other.get(), this, [this] {
        m_timeout.stop();
        if (!std::exchange(m_reported, true))
            Q_EMIT finished(result());
    });
}

void RequestBench::fail(const QString &message)
{
    if (std::exchange(m_reported, true))
        return;
    m_phase = Phase::Done;
    m_timeout.stop();
    Q_EMIT failed(message);
}

QJsonObject RequestBench::result() const
{
    const qint64 elapsed = m_after.time - m_before.time;
    const double seconds = double(elapsed) / 1e6;

    const Usage usage = usageBetween(m_before, m_after, m_options.cpuPids);

    std::vector<qint32> latencies = m_latencies;
    QJsonObject result{
        { u"bench"_s, u"cluster_requests"_s },
        { u"label"_s, m_options.label },
        { u"same_node"_s, usage.sameNode },
        { u"mode"_s, u"requests"_s },
        { u"method"_s, u"count"_s },
        { u"requests"_s, qint64(m_latencies.size()) },
        { u"warmup_requests"_s, m_warmupCalls },
        { u"seconds"_s, std::round(seconds * 1000) / 1000 },
        { u"request_rate"_s, std::round(double(m_latencies.size()) / seconds) },
        { u"expected_count"_s, ExpectedCount },
        { u"wrong_counts"_s, m_wrongCounts },
        { u"call_errors"_s, m_callErrors },
        { u"disconnects"_s, m_disconnects },
        { u"latency_us"_s, distribution(latencies) },
        { u"cpu_percent"_s, usage.cpu },
        { u"nodes"_s, usage.nodes },
        { u"clock"_s, u"CLOCK_MONOTONIC"_s },
    };
    if (!m_lastError.isEmpty())
        result.insert(u"last_call_error"_s, m_lastError);
    return result;
}

} // namespace QtNotifBench
