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

// One run of the cluster request benchmark: how long a cluster-wide query takes, as a client
// sees it.
//
// The asking client connects to node A (askUrl) and a second client to node B (otherUrl; A
// itself, or a node alone, for the baseline); both listen to one key of the notifier "bench".
// The asker calls "count" on qtnotif-bench-server, whose handler answers
// listenerCount(key): with a backplane, a request to every node through Redis, answered once
// each has replied; without one, at once. So every answer must be 2, and each round trip is
// the client's call, the handler, the cluster request and the reply.
//
// A run goes: connect both clients; call "count" until it answers 2 (both listens in place);
// warm up for a while with calls one after the other; measure the given number of calls, one
// after the other (each waits for the previous answer); ask both nodes for their stats; emit
// finished() with the result.
//
// Lives in, and drives its clients from, the thread that created it.
class RequestBench : public QObject
{
    Q_OBJECT
public:
    struct Options
    {
        QUrl askUrl;   // node A, where the asking client connects
        QUrl otherUrl; // node B, or node A (or the lone node) for the baseline
        QString label; // names the scenario in the result
        int requests = 2000;
        std::chrono::milliseconds warmup{ 1000 };
        // Other processes whose CPU use (from /proc) the result reports, by name.
        QList<std::pair<QString, qint64>> cpuPids;
    };

    explicit RequestBench(const Options &options, QObject *parent = nullptr);
    ~RequestBench() override;

    // Starts the run; finished() or failed() follows, once.
    void start();

Q_SIGNALS:
    // The run is over: its settings and measurements as one JSON object (see result()).
    void finished(const QJsonObject &result);
    // The run could not be done (a node unreachable, the count never right, ...).
    void failed(const QString &message);

private:
    enum class Phase { Idle, Connecting, Settling, Warmup, Measuring, Done };

    void onClientConnected();
    // Calls "count" once; onAnswer() follows.
    void ask();
    void onAnswer(bool isError, const QJsonValue &result, const QString &error);
    void finishRun();
    void fail(const QString &message);
    QJsonObject result() const;

    Options m_options;
    Phase m_phase = Phase::Idle;
    bool m_reported = false;
    std::unique_ptr<QtNotif::Client> m_asker;
    std::unique_ptr<QtNotif::Client> m_other;
    int m_connected = 0;
    int m_disconnects = 0; // connections lost after they were first made

    qint64 m_askedAt = 0;   // µs, when the pending call was made
    qint64 m_warmupEnd = 0; // µs
    qint64 m_warmupCalls = 0;
    qint64 m_wrongCounts = 0; // measured answers other than ExpectedCount
    qint64 m_callErrors = 0;  // measured calls that failed
    QString m_lastError;
    std::vector<qint32> m_latencies; // µs, each measured call's round trip

    Snapshot m_before;
    Snapshot m_after;

    QTimer m_timeout;
};

} // namespace QtNotifBench
