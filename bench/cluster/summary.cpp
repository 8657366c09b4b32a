#include "summary.h"

#include <QtCore/QJsonArray>

#include <algorithm>

using namespace Qt::StringLiterals;

namespace QtNotifBench {

namespace {

double median(QList<double> values)
{
    if (values.isEmpty())
        return 0;
    std::sort(values.begin(), values.end());
    const qsizetype middle = values.size() / 2;
    return values.size() % 2 ? values.at(middle) : (values.at(middle - 1) + values.at(middle)) / 2;
}

QString scenarioOf(const QJsonObject &run)
{
    QString scenario = run.value(u"label"_s).toString() + u", "_s;
    if (run.value(u"mode"_s).toString() == u"window")
        scenario += u"window %1"_s.arg(run.value(u"window"_s).toInteger());
    else
        scenario += u"rate %1/s"_s.arg(run.value(u"target_rate"_s).toDouble());
    return scenario + u", fan-out %1"_s.arg(run.value(u"fanout"_s).toDouble());
}

// Microseconds as milliseconds with two decimals.
QString ms(double microseconds)
{
    return QString::number(microseconds / 1000.0, 'f', 2);
}

QString cpuText(const QList<QJsonObject> &runs, const QString &process)
{
    QList<double> values;
    for (const QJsonObject &run : runs) {
        const QJsonValue value = run.value(u"cpu_percent"_s).toObject().value(process);
        if (value.isDouble())
            values.append(value.toDouble());
    }
    return values.isEmpty() ? u"-"_s : QString::number(median(values), 'f', 0);
}

// The runs grouped by groupOf(run), the groups in the order their first run came.
template<typename GroupOf>
QList<QList<QJsonObject>> groupInOrder(const QList<QJsonObject> &runs, GroupOf groupOf)
{
    QStringList order;
    QHash<QString, QList<QJsonObject>> groups;
    for (const QJsonObject &run : runs) {
        const QString group = groupOf(run);
        if (!groups.contains(group))
            order.append(group);
        groups[group].append(run);
    }
    QList<QList<QJsonObject>> ordered;
    for (const QString &group : std::as_const(order))
        ordered.append(groups.value(group));
    return ordered;
}

// The latency percentiles of a group of runs: each run's, and the worst maximum.
struct Latencies
{
    QList<double> p50, p90, p99;
    double worst = 0;

    void add(const QJsonObject &run)
    {
        const QJsonObject latency = run.value(u"latency_us"_s).toObject();
        p50.append(latency.value(u"p50"_s).toDouble());
        p90.append(latency.value(u"p90"_s).toDouble());
        p99.append(latency.value(u"p99"_s).toDouble());
        worst = std::max(worst, latency.value(u"max"_s).toDouble());
    }
};

// The "CPU % A / B / Redis / driver" column of a group of runs.
QString cpuColumn(const QList<QJsonObject> &group)
{
    // The publishing node is the subscribing one in the same-node runs.
    const bool sameNode = group.first().value(u"same_node"_s).toBool();
    return cpuText(group, u"subscribe_node"_s) + u" / "_s
           + (sameNode ? u"(A)"_s : cpuText(group, u"publish_node"_s)) + u" / "_s
           + cpuText(group, u"redis"_s) + u" / "_s + cpuText(group, u"driver"_s);
}

} // namespace

QString summarizeClusterRuns(const QList<QJsonObject> &runs)
{
    QString table = u"| scenario | runs | deliveries/s | p50 ms | p90 ms | p99 ms | max ms | lost "
                    "| CPU % A / B / Redis / driver | other CPU % |\n"
                    "|---|---|---|---|---|---|---|---|---|---|\n"_s;
    for (const QList<QJsonObject> &group : groupInOrder(runs, scenarioOf)) {
        QList<double> rates;
        Latencies latencies;
        qint64 lost = 0;
        qint64 expected = 0;
        for (const QJsonObject &run : group) {
            rates.append(run.value(u"delivery_rate"_s).toDouble());
            latencies.add(run);
            lost += run.value(u"lost"_s).toInteger();
            expected += run.value(u"expected"_s).toInteger();
        }
        const auto [low, high] = std::minmax_element(rates.cbegin(), rates.cend());
        const QString rate = group.size() > 1 ? u"%1 (%2–%3)"_s.arg(median(rates), 0, 'f', 0)
                                                        .arg(*low, 0, 'f', 0)
                                                        .arg(*high, 0, 'f', 0)
                                              : QString::number(rates.first(), 'f', 0);
        table += u"| %1 | %2 | %3 | %4 | %5 | %6 | %7 | %8 of %9 | %10 | %11 |\n"_s.arg(
                scenarioOf(group.first()), QString::number(group.size()), rate,
                ms(median(latencies.p50)), ms(median(latencies.p90)), ms(median(latencies.p99)),
                ms(latencies.worst), QString::number(lost), QString::number(expected),
                cpuColumn(group), cpuText(group, u"other"_s));
    }
    return table;
}

QString summarizeRequestRuns(const QList<QJsonObject> &runs)
{
    QString table = u"| requests | runs | calls | p50 µs | p90 µs | p99 µs | max µs | wrong | "
                    "CPU % A / B / Redis / driver | other CPU % |\n"
                    "|---|---|---|---|---|---|---|---|---|---|\n"_s;
    const auto labelOf = [](const QJsonObject &run) { return run.value(u"label"_s).toString(); };
    for (const QList<QJsonObject> &group : groupInOrder(runs, labelOf)) {
        Latencies latencies;
        qint64 calls = 0;
        qint64 wrong = 0;
        for (const QJsonObject &run : group) {
            latencies.add(run);
            calls += run.value(u"requests"_s).toInteger();
            wrong += run.value(u"wrong_counts"_s).toInteger()
                     + run.value(u"call_errors"_s).toInteger();
        }
        table += u"| %1, count | %2 | %3 | %4 | %5 | %6 | %7 | %8 | %9 | %10 |\n"_s.arg(
                labelOf(group.first()), QString::number(group.size()), QString::number(calls),
                QString::number(median(latencies.p50), 'f', 0),
                QString::number(median(latencies.p90), 'f', 0),
                QString::number(median(latencies.p99), 'f', 0),
                QString::number(latencies.worst, 'f', 0), QString::number(wrong), cpuColumn(group),
                cpuText(group, u"other"_s));
    }
    return table;
}

} // namespace QtNotifBench
