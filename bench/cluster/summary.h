#pragma once

#include <QtCore/QJsonObject>
#include <QtCore/QList>
#include <QtCore/QString>

namespace QtNotifBench {

// A Markdown table of benchmark runs (ClusterBench results): runs of one scenario (label,
// mode, window or rate) make one row of medians over the runs, and the worst case of max
// latency and losses. Rows keep the order of the runs.
QString summarizeClusterRuns(const QList<QJsonObject> &runs);
// A Markdown table of request runs (RequestBench results): one row per label, with the medians
// over its runs of their round-trip percentiles (µs), and the worst max.
QString summarizeRequestRuns(const QList<QJsonObject> &runs);

} // namespace QtNotifBench
