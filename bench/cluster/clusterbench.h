#pragma once

#include "measure.h"

#include <QtCore/QJsonObject>
#include <QtCore/QList>
#include <QtCore/QObject>
#include <QtCore/QTimer>
#include <QtCore/QUrl>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace QtNotif {
class Client;
}

namespace QtNotifBench {

// One run of the cross-node delivery benchmark, driven over the wire like any application.
//
// Subscriber clients connect to node A (subscribeUrl) and listen to the keys "k0".."k<K-1>" of
// the notifier "bench", subscriber i to key i % K. Publisher clients connect to node B
// (publishUrl; A itself for the same-node baseline) and call "publish" on qtnotif-bench-server,
// which notifies the key; with a Redis backplane the notification crosses to A through Redis.
// Each notification carries its id and the CLOCK_MONOTONIC time (µs) at which the publisher
// called, so every delivery gives a latency, and ids give losses and duplicates.
//
// A run goes: connect every client; probe each key until every subscriber has received a
// notification (so that listens, and A's Redis subscriptions, are in place); warm up; measure
// for the duration; stop publishing and drain (wait until every notification published while
// measuring is delivered, or until deliveries stop coming); ask both nodes for their stats;
// emit finished() with the result. Publishing either keeps a window of notifications in flight
// (the fastest the whole chain goes) or follows a fixed rate of deliveries per second.
//
// Lives in, and drives every client from, the thread that created it.
class ClusterBench : public QObject
{
    Q_OBJECT
public:
    enum class Mode {
        Window, // as fast as a window of notifications in flight allows
        Rate,   // a fixed rate, open loop: the schedule does not wait for deliveries
    };

    struct Options
    {
        QUrl subscribeUrl; // node A
        QUrl publishUrl;   // node B, or node A for the same-node baseline
        QString label;     // names the scenario in the result
        int subscribers = 100;
        int keys = 10;
        int publishers = 10;
        Mode mode = Mode::Window;
        int window = 100;    // notifications in flight (Window)
        double rate = 10000; // deliveries per second over all subscribers (Rate)
        std::chrono::milliseconds warmup{ 1000 };
        std::chrono::milliseconds duration{ 5000 };
        int payloadBytes = 100; // padding in each notification
        // The server's notifier the subscribers listen to and the publishers publish on:
        // "bench" (a SimpleNotifier) or "benchp" (a Notifier with a prepare).
        QString notifier = QStringLiteral("bench");
        // Other processes whose CPU use (from /proc) the result reports, by name.
        QList<std::pair<QString, qint64>> cpuPids;
    };

    explicit ClusterBench(const Options &options, QObject *parent = nullptr);
    ~ClusterBench() override;

    // Starts the run; finished() or failed() follows, once.
    void start();

Q_SIGNALS:
    // The run is over: its settings and measurements as one JSON object (see result()).
    void finished(const QJsonObject &result);
    // The run could not be done (a node unreachable, keys never delivered, ...).
    void failed(const QString &message);

private:
    enum class Phase { Idle, Connecting, Probing, Warmup, Measuring, Draining, Done };

    void onClientConnected();
    void onEvent(int subscriber, const QJsonValue &data);
    void probe();
    void startWarmup();
    void startMeasuring();
    void stopMeasuring();
    void checkDrain();
    void finishRun();
    // Emits finished() with result(), unless the run has already ended.
    void report();
    void fail(const QString &message);

    void publishNext();
    void publish(int key, const QJsonObject &data);
    void topUpWindow();
    void onRateTick();
    QJsonObject result() const;

    Options m_options;
    Phase m_phase = Phase::Idle;
    bool m_reported = false;
    std::vector<std::unique_ptr<QtNotif::Client>> m_subscribers;
    std::vector<std::unique_ptr<QtNotif::Client>> m_publishers;
    QStringList m_keyNames;
    std::vector<int> m_keyListeners; // subscribers per key
    double m_fanout = 0;             // deliveries per notification, on average
    QString m_padding;
    int m_connected = 0;
    int m_disconnects = 0; // connections lost after they were first made
    std::vector<bool> m_probed;
    int m_probedCount = 0;
    std::size_t m_nextPublisher = 0;

    // Notifications, by id (0, 1, ...): how many deliveries each got.
    std::vector<quint16> m_deliveries;
    qint64 m_expectedSent = 0; // deliveries owed for every notification published
    qint64 m_received = 0;     // deliveries received (probes aside)
    qint64 m_unknown = 0;      // events that were neither a probe nor a notification of ours
    qint64 m_callErrors = 0;
    QString m_lastCallError;

    // The measured interval: notifications with ids in [m_firstMeasured, m_endMeasured).
    qint64 m_firstMeasured = 0;
    qint64 m_endMeasured = 0;
    qint64 m_expectedMeasured = 0;
    qint64 m_receivedMeasured = 0;
    qint64 m_receivedWhileMeasuring = 0;   // deliveries of any notification within the interval
    std::vector<qint32> m_latencies;       // µs from the publisher's call to the subscriber
    std::vector<qint32> m_notifyLatencies; // µs from the server's notify to the subscriber
    std::vector<qint32> m_sendLags;        // µs each send came after its schedule (Rate)

    // Rate mode: the schedule's origin and the notifications sent along it.
    qint64 m_rateOrigin = 0;
    qint64 m_rateSent = 0;
    double m_notifyRate = 0; // notifications per second

    qint64 m_drainStart = 0;
    qint64 m_drainProgressAt = 0;
    qint64 m_drainReceived = 0;

    Snapshot m_before;
    Snapshot m_after;

    QTimer m_connectTimeout;
    QTimer m_probeTimer;
    QTimer m_phaseTimer;
    QTimer m_rateTimer;
    QTimer m_drainTimer;
};

} // namespace QtNotifBench
