// qtnotif-bench-cluster: one run of the cross-node delivery benchmark (see ClusterBench) or of
// the cluster request benchmark (--mode requests, see RequestBench), or a summary of earlier
// runs.
//   qtnotif-bench-cluster --subscribe ws://A --publish ws://B [--mode window|rate] ...
//   qtnotif-bench-cluster --subscribe ws://A --publish ws://B --mode requests [--requests N]
//   qtnotif-bench-cluster --summarize runs.jsonl
// A run prints its result as one JSON line on stdout and one line for people on stderr.
// bench/run.sh cluster starts Redis and the nodes and runs every scenario.
#include "clusterbench.h"
#include "requestbench.h"
#include "summary.h"

#include <QtCore/QCommandLineParser>
#include <QtCore/QCoreApplication>
#include <QtCore/QFile>
#include <QtCore/QJsonDocument>
#include <QtCore/QTextStream>

using namespace Qt::StringLiterals;

namespace {

int fail(const QString &message)
{
    QTextStream(stderr) << "qtnotif-bench-cluster: " << message << Qt::endl;
    return 1;
}

QString describe(const QJsonObject &result)
{
    const QJsonObject latency = result.value(u"latency_us"_s).toObject();
    const QJsonObject cpu = result.value(u"cpu_percent"_s).toObject();
    QString cpuText;
    for (auto it = cpu.constBegin(); it != cpu.constEnd(); ++it)
        cpuText += u" %1 %2%"_s.arg(it.key()).arg(it.value().toDouble());
    return u"%1 %2: %3 deliveries/s (%4 notifications/s), latency p50 %5 p99 %6 max %7 µs, "
           "lost %8 of %9; CPU%10"_s
                   .arg(result.value(u"label"_s).toString(), result.value(u"mode"_s).toString())
                   .arg(result.value(u"delivery_rate"_s).toDouble())
                   .arg(result.value(u"notify_rate"_s).toDouble())
                   .arg(latency.value(u"p50"_s).toInteger())
                   .arg(latency.value(u"p99"_s).toInteger())
                   .arg(latency.value(u"max"_s).toInteger())
                   .arg(result.value(u"lost"_s).toInteger())
                   .arg(result.value(u"expected"_s).toInteger())
                   .arg(cpuText);
}

QString describeRequests(const QJsonObject &result)
{
    const QJsonObject latency = result.value(u"latency_us"_s).toObject();
    return u"%1 requests: %2 \"count\" calls, round trip p50 %3 p99 %4 max %5 µs, %6 wrong, "
           "%7 errors"_s.arg(result.value(u"label"_s).toString())
                   .arg(result.value(u"requests"_s).toInteger())
                   .arg(latency.value(u"p50"_s).toInteger())
                   .arg(latency.value(u"p99"_s).toInteger())
                   .arg(latency.value(u"max"_s).toInteger())
                   .arg(result.value(u"wrong_counts"_s).toInteger())
                   .arg(result.value(u"call_errors"_s).toInteger());
}

int summarize(const QStringList &files)
{
    QList<QJsonObject> runs;
    QList<QJsonObject> requestRuns;
    for (const QString &name : files) {
        QFile file(name);
        if (!file.open(QIODevice::ReadOnly | QIODevice::Text))
            return fail(u"cannot read %1: %2"_s.arg(name, file.errorString()));
        while (!file.atEnd()) {
            const QJsonObject run = QJsonDocument::fromJson(file.readLine()).object();
            if (run.value(u"bench"_s) == u"cluster"_s)
                runs.append(run);
            else if (run.value(u"bench"_s) == u"cluster_requests"_s)
                requestRuns.append(run);
        }
    }
    QTextStream out(stdout);
    if (!runs.isEmpty())
        out << QtNotifBench::summarizeClusterRuns(runs);
    if (!runs.isEmpty() && !requestRuns.isEmpty())
        out << '\n';
    if (!requestRuns.isEmpty())
        out << QtNotifBench::summarizeRequestRuns(requestRuns);
    return 0;
}

} // namespace

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(u"qtnotif-bench-cluster"_s);

    const QtNotifBench::ClusterBench::Options defaults;
    QCommandLineParser parser;
    parser.setApplicationDescription(
            u"Cross-node delivery benchmark: subscribers on node A, publishers on node B, both "
            "qtnotif-bench-server. With --mode requests, the round trip of cluster-wide "
            "\"count\" calls from a client on A instead. Prints one JSON line per run."_s);
    parser.addHelpOption();
    const QCommandLineOption subscribeOption(
            u"subscribe"_s,
            u"Node A, where the subscribers (requests: the asking client) connect."_s, u"url"_s);
    const QCommandLineOption publishOption(
            u"publish"_s,
            u"Node B, where the publishers (requests: a second listener) connect (A: same-node "
            "baseline)."_s,
            u"url"_s);
    const QCommandLineOption labelOption(u"label"_s, u"Names the scenario in the result."_s,
                                         u"text"_s);
    const QCommandLineOption subscribersOption(
            u"subscribers"_s, u"Subscriber clients (%1)."_s.arg(defaults.subscribers), u"n"_s,
            QString::number(defaults.subscribers));
    const QCommandLineOption keysOption(
            u"keys"_s, u"Keys; subscriber i listens to key i % keys (%1)."_s.arg(defaults.keys),
            u"n"_s, QString::number(defaults.keys));
    const QCommandLineOption publishersOption(u"publishers"_s,
                                              u"Publisher clients (%1)."_s.arg(defaults.publishers),
                                              u"n"_s, QString::number(defaults.publishers));
    const QCommandLineOption modeOption(
            u"mode"_s,
            u"window: as fast as the window allows; rate: --rate deliveries/s; requests: "
            "--requests \"count\" calls one after the other, from a client on A."_s,
            u"mode"_s, u"window"_s);
    const QtNotifBench::RequestBench::Options requestDefaults;
    const QCommandLineOption requestsOption(
            u"requests"_s,
            u"Calls measured, requests mode (%1); after --warmup seconds of calls."_s.arg(
                    requestDefaults.requests),
            u"n"_s, QString::number(requestDefaults.requests));
    const QCommandLineOption windowOption(
            u"window"_s, u"Notifications in flight, window mode (%1)."_s.arg(defaults.window),
            u"n"_s, QString::number(defaults.window));
    const QCommandLineOption rateOption(
            u"rate"_s, u"Deliveries per second, rate mode (%1)."_s.arg(defaults.rate), u"n"_s,
            QString::number(defaults.rate));
    const QCommandLineOption warmupOption(u"warmup"_s,
                                          u"Seconds of traffic before measuring (%1)."_s.arg(
                                                  double(defaults.warmup.count()) / 1000),
                                          u"s"_s,
                                          QString::number(double(defaults.warmup.count()) / 1000));
    const QCommandLineOption durationOption(
            u"duration"_s,
            u"Seconds measured, window and rate modes (%1)."_s.arg(double(defaults.duration.count())
                                                                   / 1000),
            u"s"_s, QString::number(double(defaults.duration.count()) / 1000));
    const QCommandLineOption payloadOption(
            u"payload"_s,
            u"Bytes of padding in each notification (%1)."_s.arg(defaults.payloadBytes), u"bytes"_s,
            QString::number(defaults.payloadBytes));
    const QCommandLineOption notifierOption(
            u"notifier"_s,
            u"The server's notifier: bench (a SimpleNotifier) or benchp (a Notifier with a "
            u"prepare) (%1)."_s.arg(defaults.notifier),
            u"name"_s, defaults.notifier);
    const QCommandLineOption cpuOption(
            u"cpu"_s, u"Report the CPU use of this process too (repeatable)."_s, u"name=pid"_s);
    const QCommandLineOption summarizeOption(
            u"summarize"_s, u"Print a Markdown table of the runs in these JSON-lines files."_s);
    parser.addOptions({ subscribeOption, publishOption, labelOption, subscribersOption, keysOption,
                        publishersOption, modeOption, windowOption, rateOption, requestsOption,
                        warmupOption, durationOption, payloadOption, notifierOption, cpuOption,
                        summarizeOption });
    parser.process(app);

    if (parser.isSet(summarizeOption))
        return summarize(parser.positionalArguments());

    QtNotifBench::ClusterBench::Options options;
    options.subscribeUrl = QUrl(parser.value(subscribeOption));
    options.publishUrl = QUrl(parser.value(publishOption));
    if (!options.subscribeUrl.isValid() || options.subscribeUrl.isEmpty())
        return fail(u"--subscribe: give node A's ws:// URL"_s);
    if (!options.publishUrl.isValid() || options.publishUrl.isEmpty())
        return fail(u"--publish: give node B's ws:// URL (or A's)"_s);
    options.label = parser.value(labelOption);
    const auto positive = [&parser](const QCommandLineOption &option, auto *value) {
        bool ok = false;
        const double number = parser.value(option).toDouble(&ok);
        if (!ok || number <= 0)
            return false;
        *value = std::remove_pointer_t<decltype(value)>(number);
        return true;
    };
    if (!positive(subscribersOption, &options.subscribers) || !positive(keysOption, &options.keys)
        || !positive(publishersOption, &options.publishers)
        || !positive(windowOption, &options.window) || !positive(rateOption, &options.rate))
        return fail(u"--subscribers, --keys, --publishers, --window and --rate must be positive"_s);
    if (options.keys > options.subscribers)
        return fail(u"--keys: at most one key per subscriber"_s);
    double warmup = 0;
    double duration = 0;
    if (!positive(warmupOption, &warmup) || !positive(durationOption, &duration))
        return fail(u"--warmup and --duration must be positive"_s);
    options.warmup = std::chrono::milliseconds(qint64(warmup * 1000));
    options.duration = std::chrono::milliseconds(qint64(duration * 1000));
    bool payloadOk = false;
    options.payloadBytes = parser.value(payloadOption).toInt(&payloadOk);
    if (!payloadOk || options.payloadBytes < 0)
        return fail(u"--payload must be 0 or more"_s);
    options.notifier = parser.value(notifierOption);
    if (options.notifier != u"bench" && options.notifier != u"benchp")
        return fail(u"--notifier: bench or benchp"_s);
    for (const QString &entry : parser.values(cpuOption)) {
        const qsizetype equals = entry.indexOf(u'=');
        bool ok = false;
        const qint64 pid = entry.mid(equals + 1).toLongLong(&ok);
        if (equals <= 0 || !ok)
            return fail(u"--cpu: name=pid, not "_s + entry);
        options.cpuPids.append({ entry.left(equals), pid });
    }
    const QString mode = parser.value(modeOption);
    if (mode == u"requests") {
        QtNotifBench::RequestBench::Options requestOptions;
        requestOptions.askUrl = options.subscribeUrl;
        requestOptions.otherUrl = options.publishUrl;
        requestOptions.label = options.label;
        requestOptions.warmup = options.warmup;
        requestOptions.cpuPids = options.cpuPids;
        if (!positive(requestsOption, &requestOptions.requests))
            return fail(u"--requests must be positive"_s);
        QtNotifBench::RequestBench bench(requestOptions);
        QObject::connect(
                &bench, &QtNotifBench::RequestBench::finished, &app, [](const QJsonObject &result) {
                    QTextStream(stdout)
                            << QJsonDocument(result).toJson(QJsonDocument::Compact) << Qt::endl;
                    QTextStream(stderr) << describeRequests(result) << Qt::endl;
                    QCoreApplication::exit(0);
                });
        QObject::connect(&bench, &QtNotifBench::RequestBench::failed, &app,
                         [](const QString &message) { QCoreApplication::exit(fail(message)); });
        bench.start();
        return app.exec();
    }
    if (mode == u"window")
        options.mode = QtNotifBench::ClusterBench::Mode::Window;
    else if (mode == u"rate")
        options.mode = QtNotifBench::ClusterBench::Mode::Rate;
    else
        return fail(u"--mode: window, rate or requests"_s);

    QtNotifBench::ClusterBench bench(options);
    QObject::connect(&bench, &QtNotifBench::ClusterBench::finished, &app,
                     [](const QJsonObject &result) {
                         QTextStream(stdout) << QJsonDocument(result).toJson(QJsonDocument::Compact)
                                             << Qt::endl;
                         QTextStream(stderr) << describe(result) << Qt::endl;
                         QCoreApplication::exit(0);
                     });
    QObject::connect(&bench, &QtNotifBench::ClusterBench::failed, &app,
                     [](const QString &message) { QCoreApplication::exit(fail(message)); });
    bench.start();
    return app.exec();
}
