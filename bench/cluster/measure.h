// What the driver's benchmarks share: other processes' CPU time, and distributions.
#pragma once

#include <QtCore/QJsonObject>
#include <QtCore/QList>
#include <QtCore/QString>

#include <functional>
#include <utility>
#include <vector>

namespace QtNotif {
class Client;
}
class QObject;

namespace QtNotifBench {

// CPU time (user and system) of another process, in µs, from /proc/<pid>/stat; -1 when it
// cannot be read.
qint64 processCpuMicroseconds(qint64 pid);
// CPU time (user, system, interrupts, steal) of the whole machine, all cores, in µs, from
// /proc/stat; -1 when it cannot be read.
qint64 machineCpuMicroseconds();
// Count, mean, p50, p90, p99, p999 and max of a sample, in its unit; sorts it. Empty when the
// sample is.
QJsonObject distribution(std::vector<qint32> &sample);
// part in % of whole, with one decimal; 0 when whole is not positive.
double percentOf(qint64 part, qint64 whole);

// Other processes whose CPU use (from /proc) a result reports, by name.
using NamedPids = QList<std::pair<QString, qint64>>;

// A point in time as each measured process sees it.
struct Snapshot
{
    qint64 time = 0;          // µs, CLOCK_MONOTONIC
    qint64 driverCpu = 0;     // µs of this process
    qint64 machineCpu = 0;    // µs of every process, all cores (-1 when unknown)
    QList<qint64> pidCpu;     // µs of each of the named pids, -1 when unreadable
    QJsonObject nodeStats[2]; // "stats" of node A and node B, when they answered
    int nodeAnswers = 0;
};

// Reads this process's, the machine's and the pids' CPU time into snapshot, and asks node A and
// node B for their "stats" through a client of each; done() once both answered.
void takeSnapshot(Snapshot &snapshot, const NamedPids &pids, QtNotif::Client *nodeA,
                  QtNotif::Client *nodeB, QObject *context, std::function<void()> done);

// What the processes used between two snapshots.
struct Usage
{
    // % of one core: "driver", each pid by name, "subscribe_node" (A), "publish_node" (B),
    // "machine" and "other" (the machine minus the processes above).
    QJsonObject cpu;
    // Each node's backplane counters over the interval, by role.
    QJsonObject nodes;
    bool sameNode = false; // A and B are one node: reported once
};
Usage usageBetween(const Snapshot &before, const Snapshot &after, const NamedPids &pids);

} // namespace QtNotifBench
