#include "clusterbench.h"

#include "benchclock.h"
#include "measure.h"

#include <QtNotif/client.h>
#include <QtNotif/clientnotifier.h>

#include <QtCore/QJsonArray>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

using namespace Qt::StringLiterals;
using namespace std::chrono_literals;

namespace QtNotifBench {

namespace {

const QString IdField = u"id"_s;
const QString SentField = u"sent"_s;
const QString NotifiedField = u"notified"_s;
const QString PadField = u"pad"_s;
const QString ProbeField = u"probe"_s;

// 30 s: a hundred clients connect to a loopback server in well under a second; this only
// catches a node that is not there.
constexpr auto ConnectTimeout = 30s;
// Every key is probed again this often until each of its subscribers has had a notification.
constexpr auto ProbeInterval = 100ms;
constexpr auto ProbeTimeout = 10s;
// The rate schedule is checked every millisecond (a precise timer), and one tick sends at most
// this many notifications so that deliveries keep being read when the driver falls behind.
constexpr auto RateTick = 1ms;
constexpr int MaxSendsPerTick = 1000;
// Draining ends when every notification measured is delivered, or when no delivery came for
// DrainIdle, or after DrainLimit whatever happens: the rest counts as lost.
constexpr auto DrainCheck = 50ms;
constexpr qint64 DrainIdleUs = 2'000'000;
constexpr qint64 DrainLimitUs = 10'000'000;
// The nodes answer "stats" in milliseconds even under load.
constexpr auto StatsTimeout = 5s;

} // namespace

ClusterBench::ClusterBench(const Options &options, QObject *parent)
    : QObject(parent), m_options(options)
{
    m_connectTimeout.setSingleShot(true);
    m_connectTimeout.setInterval(ConnectTimeout);
    connect(&m_connectTimeout, &QTimer::timeout, this, [this] {
        fail(u"only %1 of %2 clients connected within %3 s"_s.arg(m_connected)
                     .arg(m_options.subscribers + m_options.publishers)
                     .arg(std::chrono::seconds(ConnectTimeout).count()));
    });
    m_probeTimer.setInterval(ProbeInterval);
    connect(&m_probeTimer, &QTimer::timeout, this, &ClusterBench::probe);
    m_phaseTimer.setSingleShot(true);
    m_rateTimer.setInterval(RateTick);
    m_rateTimer.setTimerType(Qt::PreciseTimer);
    connect(&m_rateTimer, &QTimer::timeout, this, &ClusterBench::onRateTick);
    m_drainTimer.setInterval(DrainCheck);
    connect(&m_drainTimer, &QTimer::timeout, this, &ClusterBench::checkDrain);
}

ClusterBench::~ClusterBench() = default;

void ClusterBench::start()
{
    Q_ASSERT(m_phase == Phase::Idle);
    Q_ASSERT(m_options.subscribers > 0 && m_options.keys > 0 && m_options.publishers > 0);
    m_phase = Phase::Connecting;
    m_padding = QString(m_options.payloadBytes, u'x');
    m_keyListeners.assign(std::size_t(m_options.keys), 0);
    for (int k = 0; k < m_options.keys; ++k)
        m_keyNames.append(u"k"_s + QString::number(k));
    m_fanout = double(m_options.subscribers) / double(m_options.keys);
    m_probed.assign(std::size_t(m_options.subscribers), false);

    const auto makeClient = [this](const QUrl &url) {
        auto client = std::make_unique<QtNotif::Client>();
        client->setUrl(url);
        connect(client.get(), &QtNotif::Client::connected, this, &ClusterBench::onClientConnected);
        connect(client.get(), &QtNotif::Client::disconnected, this, [this] {
            if (m_phase != Phase::Done)
                ++m_disconnects;
        });
        return client;
    };
    for (int i = 0; i < m_options.subscribers; ++i) {
        auto client = makeClient(m_options.subscribeUrl);
        const int key = i % m_options.keys;
        ++m_keyListeners[std::size_t(key)];
        QtNotif::ClientNotifier *notifier = client->notifier(m_options.notifier);
        connect(notifier, &QtNotif::ClientNotifier::jsonEvent, this,
                [this, i](const QJsonValue &, const QJsonValue &data, quint64) {
                    onEvent(i, data);
                });
        notifier->listen(m_keyNames.at(key));
        m_subscribers.push_back(std::move(client));
    }
    for (int i = 0; i < m_options.publishers; ++i)
        m_publishers.push_back(makeClient(m_options.publishUrl));
    m_connectTimeout.start();
    for (const auto &client : m_subscribers)
        client->open();
    for (const auto &client : m_publishers)
        client->open();
}

void ClusterBench::onClientConnected()
{
    if (m_phase != Phase::Connecting
        || ++m_connected < m_options.subscribers + m_options.publishers)
        return;
    m_connectTimeout.stop();
    m_phase = Phase::Probing;
    connect(&m_phaseTimer, &QTimer::timeout, this, [this] {
        fail(u"%1 of %2 subscribers got nothing within %3 s of probing"_s
                     .arg(m_options.subscribers - m_probedCount)
                     .arg(m_options.subscribers)
                     .arg(std::chrono::seconds(ProbeTimeout).count()));
    });
    m_phaseTimer.start(ProbeTimeout);
    probe();
    m_probeTimer.start();
}

void ClusterBench::probe()
{
    // One probe per key that still has a subscriber waiting: the listens (and, across nodes,
    // the Redis subscriptions) are in place once every subscriber has received one.
    std::vector<bool> waiting(std::size_t(m_options.keys), false);
    for (int i = 0; i < m_options.subscribers; ++i) {
        if (!m_probed[std::size_t(i)])
            waiting[std::size_t(i % m_options.keys)] = true;
    }
    for (int k = 0; k < m_options.keys; ++k) {
        if (waiting[std::size_t(k)])
            publish(k, QJsonObject{ { ProbeField, true } });
    }
}

void ClusterBench::onEvent(int subscriber, const QJsonValue &data)
{
    const qint64 now = monotonicMicroseconds();
    const QJsonObject notification = data.toObject();
    if (notification.contains(ProbeField)) {
        if (!m_probed[std::size_t(subscriber)]) {
            m_probed[std::size_t(subscriber)] = true;
            if (++m_probedCount == m_options.subscribers && m_phase == Phase::Probing)
                startWarmup();
        }
        return;
    }
    const qint64 id = notification.value(IdField).toInteger(-1);
    if (id < 0 || id >= qint64(m_deliveries.size())) {
        ++m_unknown;
        return;
    }
    ++m_received;
    quint16 &count = m_deliveries[std::size_t(id)];
    count = quint16(std::min<int>(count + 1, std::numeric_limits<quint16>::max()));
    if (m_phase == Phase::Measuring)
        ++m_receivedWhileMeasuring;
    if (id >= m_firstMeasured && id < m_endMeasured) {
        ++m_receivedMeasured;
        m_latencies.push_back(qint32(now - notification.value(SentField).toInteger()));
        m_notifyLatencies.push_back(qint32(now - notification.value(NotifiedField).toInteger()));
    }
    if (m_options.mode == Mode::Window && (m_phase == Phase::Warmup || m_phase == Phase::Measuring))
        topUpWindow();
}

void ClusterBench::startWarmup()
{
    m_probeTimer.stop();
    m_phaseTimer.stop();
    m_phaseTimer.disconnect(this);
    m_phase = Phase::Warmup;
    if (m_options.mode == Mode::Window) {
        topUpWindow();
    } else {
        m_notifyRate = m_options.rate / m_fanout;
        m_rateOrigin = monotonicMicroseconds();
        m_rateSent = 0;
        m_rateTimer.start();
    }
    connect(&m_phaseTimer, &QTimer::timeout, this, &ClusterBench::startMeasuring);
    m_phaseTimer.start(m_options.warmup);
}

void ClusterBench::startMeasuring()
{
    m_phaseTimer.disconnect(this);
    m_phase = Phase::Measuring;
    m_firstMeasured = qint64(m_deliveries.size());
    m_endMeasured = std::numeric_limits<qint64>::max();
    // Room for the expected deliveries, so that the vectors do not grow while measuring.
    const double expected = (m_options.mode == Mode::Window ? 200000.0 : m_options.rate)
                            * double(m_options.duration.count()) / 1000.0;
    m_latencies.reserve(std::size_t(expected * 1.2));
    m_notifyLatencies.reserve(std::size_t(expected * 1.2));
    takeSnapshot(m_before, m_options.cpuPids, m_subscribers.front().get(),
                 m_publishers.front().get(), this, [] {});
    connect(&m_phaseTimer, &QTimer::timeout, this, &ClusterBench::stopMeasuring);
    m_phaseTimer.start(m_options.duration);
}

void ClusterBench::stopMeasuring()
{
    m_phaseTimer.disconnect(this);
    m_rateTimer.stop();
    m_phase = Phase::Draining;
    m_endMeasured = qint64(m_deliveries.size());
    m_expectedMeasured = 0;
    for (qint64 id = m_firstMeasured; id < m_endMeasured; ++id)
        m_expectedMeasured += m_keyListeners[std::size_t(id % m_options.keys)];
    takeSnapshot(m_after, m_options.cpuPids, m_subscribers.front().get(),
                 m_publishers.front().get(), this, [this] {
                     if (m_phase == Phase::Done)
                         report();
                 });
    m_drainStart = m_drainProgressAt = m_after.time;
    m_drainReceived = m_receivedMeasured;
    m_drainTimer.start();
    checkDrain();
}

void ClusterBench::checkDrain()
{
    if (m_phase != Phase::Draining)
        return;
    const qint64 now = monotonicMicroseconds();
    if (m_receivedMeasured != m_drainReceived) {
        m_drainReceived = m_receivedMeasured;
        m_drainProgressAt = now;
    }
    if (m_receivedMeasured >= m_expectedMeasured || now - m_drainProgressAt > DrainIdleUs
        || now - m_drainStart > DrainLimitUs)
        finishRun();
}

void ClusterBench::finishRun()
{
    m_drainTimer.stop();
    m_phase = Phase::Done;
    // The stats asked for at the end of the measured interval may still be on their way.
    if (m_after.nodeAnswers == 2)
        report();
    else
        QTimer::singleShot(StatsTimeout, this,
                           [this] { fail(u"a node did not answer \"stats\""_s); });
}

void ClusterBench::report()
{
    if (std::exchange(m_reported, true))
        return;
    Q_EMIT finished(result());
}

void ClusterBench::fail(const QString &message)
{
    if (std::exchange(m_reported, true))
        return;
    m_phase = Phase::Done;
    m_connectTimeout.stop();
    m_probeTimer.stop();
    m_phaseTimer.stop();
    m_rateTimer.stop();
    m_drainTimer.stop();
    Q_EMIT failed(message);
}

void ClusterBench::publishNext()
{
    const qint64 id = qint64(m_deliveries.size());
    const int key = int(id % m_options.keys);
    m_deliveries.push_back(0);
    m_expectedSent += m_keyListeners[std::size_t(key)];
    publish(key, QJsonObject{ { IdField, id },
                              { SentField, monotonicMicroseconds() },
                              { PadField, m_padding } });
}

void ClusterBench::publish(int key, const QJsonObject &data)
{
    QtNotif::Client *publisher = m_publishers[m_nextPublisher++ % m_publishers.size()].get();
    QJsonObject payload{ { u"key"_s, m_keyNames.at(key) }, { u"data"_s, data } };
    if (m_options.notifier != u"bench"_s)
        payload.insert(u"notifier"_s, m_options.notifier);
    QtNotif::CallReply *reply = publisher->call(u"publish"_s, payload);
    connect(reply, &QtNotif::CallReply::finished, this, [this, reply] {
        if (reply->isError()) {
            ++m_callErrors;
            m_lastCallError = reply->errorCode() + u": "_s + reply->errorMessage();
        }
    });
}

void ClusterBench::topUpWindow()
{
    const auto window = qint64(std::llround(double(m_options.window) * m_fanout));
    while (m_expectedSent - m_received < window)
        publishNext();
}

void ClusterBench::onRateTick()
{
    const qint64 now = monotonicMicroseconds();
    // Notification i is due at origin + i / rate: the first one at once.
    const auto due = qint64(double(now - m_rateOrigin) * m_notifyRate / 1e6) + 1;
    for (int sent = 0; m_rateSent < due && sent < MaxSendsPerTick; ++sent) {
        if (m_phase == Phase::Measuring) {
            const auto scheduled = m_rateOrigin + qint64(double(m_rateSent) * 1e6 / m_notifyRate);
            m_sendLags.push_back(qint32(now - scheduled));
        }
        publishNext();
        ++m_rateSent;
    }
}

QJsonObject ClusterBench::result() const
{
    const qint64 elapsed = m_after.time - m_before.time;
    const double seconds = double(elapsed) / 1e6;
    qint64 lost = 0;
    qint64 duplicated = 0;
    for (qint64 id = m_firstMeasured; id < m_endMeasured; ++id) {
        const int expected = m_keyListeners[std::size_t(id % m_options.keys)];
        const int got = m_deliveries[std::size_t(id)];
        lost += std::max(0, expected - got);
        duplicated += std::max(0, got - expected);
    }

    const Usage usage = usageBetween(m_before, m_after, m_options.cpuPids);

    std::vector<qint32> latencies = m_latencies;
    std::vector<qint32> notifyLatencies = m_notifyLatencies;
    std::vector<qint32> sendLags = m_sendLags;
    const qint64 sent = m_endMeasured - m_firstMeasured;
    QJsonObject result{
        { u"bench"_s, u"cluster"_s },
        { u"label"_s, m_options.label },
        { u"notifier"_s, m_options.notifier },
        { u"same_node"_s, usage.sameNode },
        { u"mode"_s, m_options.mode == Mode::Window ? u"window"_s : u"rate"_s },
        { u"subscribers"_s, m_options.subscribers },
        { u"keys"_s, m_options.keys },
        { u"fanout"_s, m_fanout },
        { u"publishers"_s, m_options.publishers },
        { u"payload_bytes"_s, m_options.payloadBytes },
        { u"seconds"_s, std::round(seconds * 1000) / 1000 },
        { u"notifications"_s, sent },
        { u"notify_rate"_s, std::round(double(sent) / seconds) },
        { u"delivered"_s, m_receivedWhileMeasuring },
        { u"delivery_rate"_s, std::round(double(m_receivedWhileMeasuring) / seconds) },
        { u"expected"_s, m_expectedMeasured },
        { u"received"_s, m_receivedMeasured },
        { u"lost"_s, lost },
        { u"duplicated"_s, duplicated },
        { u"unknown"_s, m_unknown },
        { u"call_errors"_s, m_callErrors },
        { u"disconnects"_s, m_disconnects },
        { u"latency_us"_s, distribution(latencies) },
        { u"notify_latency_us"_s, distribution(notifyLatencies) },
        { u"cpu_percent"_s, usage.cpu },
        { u"nodes"_s, usage.nodes },
        { u"clock"_s, u"CLOCK_MONOTONIC"_s },
    };
    if (m_options.mode == Mode::Window) {
        result.insert(u"window"_s, m_options.window);
    } else {
        result.insert(u"target_rate"_s, m_options.rate);
        result.insert(u"send_lag_us"_s, distribution(sendLags));
    }
    if (!m_lastCallError.isEmpty())
        result.insert(u"last_call_error"_s, m_lastCallError);
    return result;
}

} // namespace QtNotifBench
