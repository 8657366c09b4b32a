#include "measure.h"

#include "benchclock.h"

#include <QtNotif/callreply.h>
#include <QtNotif/client.h>

#include <QtCore/QFile>
#include <QtCore/QList>

#include <algorithm>
#include <cmath>
#include <unistd.h>

using namespace Qt::StringLiterals;

namespace QtNotifBench {

qint64 processCpuMicroseconds(qint64 pid)
{
    QFile file(u"/proc/%1/stat"_s.arg(pid));
    if (!file.open(QIODevice::ReadOnly))
        return -1;
    const QByteArray stat = file.readAll();
    // The command name, in parentheses, may contain spaces: fields are counted after it.
    const qsizetype end = stat.lastIndexOf(')');
    if (end < 0)
        return -1;
    const QList<QByteArray> fields = stat.mid(end + 2).split(' ');
    // Fields 14 and 15 of proc(5), utime and stime, are the 12th and 13th after the name.
    if (fields.size() < 13)
        return -1;
    const qint64 ticks = fields.at(11).toLongLong() + fields.at(12).toLongLong();
    return ticks * 1000000 / sysconf(_SC_CLK_TCK);
}

qint64 machineCpuMicroseconds()
{
    QFile file(u"/proc/stat"_s);
    if (!file.open(QIODevice::ReadOnly))
        return -1;
    const QList<QByteArray> fields = file.readLine().simplified().split(' ');
    // "cpu user nice system idle iowait irq softirq steal ...": all but idle and iowait.
    if (fields.size() < 9 || fields.at(0) != "cpu")
        return -1;
    qint64 ticks = 0;
    for (int i : { 1, 2, 3, 6, 7, 8 })
        ticks += fields.at(i).toLongLong();
    return ticks * 1000000 / sysconf(_SC_CLK_TCK);
}

QJsonObject distribution(std::vector<qint32> &sample)
{
    if (sample.empty())
        return QJsonObject();
    std::sort(sample.begin(), sample.end());
    const auto at = [&sample](double quantile) {
        const auto index = std::size_t(quantile * double(sample.size()));
        return sample[std::min(index, sample.size() - 1)];
    };
    double sum = 0;
    for (qint32 value : sample)
        sum += value;
    return QJsonObject{ { u"count"_s, qint64(sample.size()) },
                        { u"mean"_s, std::round(sum / double(sample.size())) },
                        { u"p50"_s, at(0.50) },
                        { u"p90"_s, at(0.90) },
                        { u"p99"_s, at(0.99) },
                        { u"p999"_s, at(0.999) },
                        { u"max"_s, sample.back() } };
}

double percentOf(qint64 part, qint64 whole)
{
    return whole > 0 ? std::round(1000.0 * double(part) / double(whole)) / 10.0 : 0.0;
}

void takeSnapshot(Snapshot &snapshot, const NamedPids &pids, QtNotif::Client *nodeA,
                  QtNotif::Client *nodeB, QObject *context, std::function<void()> done)
{
    snapshot.time = monotonicMicroseconds();
    snapshot.driverCpu = processCpuMicroseconds();
    snapshot.machineCpu = machineCpuMicroseconds();
    for (const auto &[name, pid] : pids)
        snapshot.pidCpu.append(processCpuMicroseconds(pid));
    QtNotif::Client *const askers[2] = { nodeA, nodeB };
    for (int node = 0; node < 2; ++node) {
        askers[node]->call(u"stats"_s, QJsonValue(), context,
                           [&snapshot, node, done](const QtNotif::CallReply &reply) {
                               snapshot.nodeStats[node] = reply.result().toObject();
                               if (++snapshot.nodeAnswers == 2)
                                   done();
                           });
    }
}

Usage usageBetween(const Snapshot &before, const Snapshot &after, const NamedPids &pids)
{
    // Each process by its own clock and counters. "other" is the rest of the machine: another
    // program busy meanwhile skews the run.
    Usage usage;
    const qint64 elapsed = after.time - before.time;
    usage.cpu.insert(u"driver"_s, percentOf(after.driverCpu - before.driverCpu, elapsed));
    double ours = double(after.driverCpu - before.driverCpu) / double(elapsed);
    for (qsizetype i = 0; i < pids.size(); ++i) {
        const qint64 from = before.pidCpu.value(i, -1);
        const qint64 to = after.pidCpu.value(i, -1);
        if (from >= 0 && to >= 0) {
            usage.cpu.insert(pids.at(i).first, percentOf(to - from, elapsed));
            ours += double(to - from) / double(elapsed);
        }
    }
    const QString roles[2] = { u"subscribe_node"_s, u"publish_node"_s };
    usage.sameNode = before.nodeStats[0].value(u"node"_s) == before.nodeStats[1].value(u"node"_s);
    for (int node = 0; node < (usage.sameNode ? 1 : 2); ++node) {
        const QJsonObject from = before.nodeStats[node];
        const QJsonObject to = after.nodeStats[node];
        const QJsonObject planeBefore = from.value(u"backplane"_s).toObject();
        const QJsonObject planeAfter = to.value(u"backplane"_s).toObject();
        const auto delta = [&planeBefore, &planeAfter](const QString &name) {
            return planeAfter.value(name).toInteger() - planeBefore.value(name).toInteger();
        };
        const qint64 nodeElapsed
                = to.value(u"time"_s).toInteger() - from.value(u"time"_s).toInteger();
        const qint64 nodeCpu = to.value(u"cpu"_s).toInteger() - from.value(u"cpu"_s).toInteger();
        usage.cpu.insert(roles[node], percentOf(nodeCpu, nodeElapsed));
        if (nodeElapsed > 0)
            ours += double(nodeCpu) / double(nodeElapsed);
        usage.nodes.insert(roles[node],
                           QJsonObject{ { u"node"_s, to.value(u"node"_s) },
                                        { u"backplane"_s, planeAfter.value(u"url"_s) },
                                        { u"status"_s, planeAfter.value(u"status"_s) },
                                        { u"published"_s, delta(u"published"_s) },
                                        { u"dropped"_s, delta(u"dropped"_s) },
                                        { u"received"_s, delta(u"received"_s) },
                                        { u"channels"_s, planeAfter.value(u"channels"_s) } });
    }
    if (before.machineCpu >= 0 && after.machineCpu >= 0) {
        const double machine = double(after.machineCpu - before.machineCpu) / double(elapsed);
        usage.cpu.insert(u"machine"_s, std::round(machine * 1000) / 10);
        usage.cpu.insert(u"other"_s, std::round(std::max(0.0, machine - ours) * 1000) / 10);
    }
    return usage;
}

} // namespace QtNotifBench
