#!/usr/bin/env python3
"""Summarizes the runs of bench/run.sh peers (runs.jsonl).

    summarize.py runs.jsonl [--plot peers.png]

Prints a Markdown table, system x scenario, with medians over the runs: deliveries/s, latency
p50 and p99 (ms), lost deliveries (summed over the runs), the server's CPU (% of one core), its
memory per connection (KiB, idle runs only: they start from a fresh server), the generator's CPU,
the CPU other programs of the machine took meanwhile (a busy machine skews everything), and the
ratio to qtnotif (on the same event dispatcher for the Qt servers) of the scenario's headline
figure: throughput for window, p99 latency for the rates, KiB per connection for idle.
With idle runs, a table of the connection set-up: how long it took and the server's CPU per
connection (see setup_table()). With worker threads in the server (QTNOTIF_WORKER_THREADS), a
table of each thread's CPU and the rate the server would reach with a core per thread (see
threads_table()).
With --plot, draws the window throughput per system (bars) and the p99 latency per system at
50k and 200k deliveries/s (bars, log scale) with matplotlib.

A Qt server run on Qt's own event dispatcher (QT_NO_GLIB=1, "dispatcher": "unix" in its line)
counts as the system "<system>/unix", on QtNotif::EpollEventDispatcher ("epoll") as
"<system>/epoll"; on GLib's, the system's plain name.
"""

import argparse
import json
import statistics
import sys

SCENARIOS = ["window", "rate50k", "rate200k", "idle"]
SYSTEMS = ["qtnotif", "qtnotif/unix", "qtnotif/epoll", "qtnotif-prepare", "qtnotif-prepare/unix",
           "qtnotif-prepare/epoll", "naive-qt", "naive-qt/unix", "ws", "socketio"]
DISPATCHERS = ("unix", "epoll")  # the suffixes; GLib's runs keep the plain name


def dispatcher_of(system):
    """The dispatcher suffix of a system name ("unix", "epoll"), or "" for GLib's."""
    suffix = system.rpartition("/")[2]
    return suffix if "/" in system and suffix in DISPATCHERS else ""


def ordered_systems(runs):
    """The systems of the runs: those of SYSTEMS in its order, then any other, sorted."""
    systems = [s for s in SYSTEMS if any(k[0] == s for k in runs)]
    return systems + sorted({k[0] for k in runs} - set(systems))


def over_tls(path):
    """Whether the environment line of the run says --tls."""
    with open(path) as lines:
        return any(json.loads(line).get("tls") is True for line in lines
                   if line.startswith('{"bench":"environment"'))


def load(path):
    runs, skipped = {}, {}
    with open(path) as lines:
        for line in lines:
            line = line.strip()
            if not line.startswith("{"):
                continue
            run = json.loads(line)
            if run.get("bench") != "peers":
                continue
            if "skipped" in run:
                skipped[run["system"]] = run["skipped"]
                continue
            system = run["system"]
            if run.get("dispatcher") in DISPATCHERS:
                system += "/" + run["dispatcher"]
            runs.setdefault((system, run["label"]), []).append(run)
    return runs, skipped


def median(runs, get):
    values = [v for v in (get(r) for r in runs) if v is not None and v >= 0]
    return statistics.median(values) if values else None


def figures(runs):
    return {
        "runs": len(runs),
        "rate": median(runs, lambda r: r.get("delivery_rate")),
        "p50": median(runs, lambda r: r.get("latency_us", {}).get("p50", -1000) / 1000),
        "p99": median(runs, lambda r: r.get("latency_us", {}).get("p99", -1000) / 1000),
        "lost": sum(r.get("lost", 0) for r in runs) if "lost" in runs[0] else None,
        "cpu": median(runs, lambda r: r["server"]["cpu_percent"]),
        # Only idle runs start from a fresh server: elsewhere "before" is after earlier runs.
        "kib": median(runs, lambda r: r["server"]["kib_per_connection"])
        if runs[0]["mode"] == "idle" else None,
        "generator": median(runs, lambda r: r.get("generator_cpu_percent")),
        "other": median(runs, lambda r: r.get("other_cpu_percent")),
        "errors": sum(r["errors"]["disconnects"] + r["errors"]["unexpected_frames"] for r in runs),
    }


def headline(scenario, f):
    if scenario == "window":
        return f["rate"], "throughput"
    if scenario == "idle":
        return f["kib"], "KiB/conn"
    return f["p99"], "p99"


def cell(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.{digits}f}"


def table(runs, skipped):
    systems = ordered_systems(runs)
    out = ["| system | scenario | runs | deliveries/s | p50 ms | p99 ms | lost | server CPU % "
           "| KiB/conn | generator CPU % | other CPU % | errors | vs qtnotif |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for scenario in SCENARIOS:
        for system in systems:
            if (system, scenario) not in runs:
                continue
            # A Qt server on another dispatcher is compared with qtnotif on the same.
            dispatcher = dispatcher_of(system)
            base = runs.get(("qtnotif/" + dispatcher if dispatcher else "qtnotif", scenario))
            base_figures = figures(base) if base else None
            f = figures(runs[(system, scenario)])
            value, what = headline(scenario, f)
            ratio = "–"
            if base_figures and value is not None:
                reference = headline(scenario, base_figures)[0]
                if reference:
                    ratio = f"×{value / reference:.2f} {what}"
            out.append(f"| {system} | {scenario} | {f['runs']} | {cell(f['rate'], 0)} "
                       f"| {cell(f['p50'], 2)} | {cell(f['p99'], 2)} | {cell(f['lost'])} "
                       f"| {cell(f['cpu'])} | {cell(f['kib'])} | {cell(f['generator'])} | {cell(f['other'])} "
                       f"| {cell(f['errors'])} | {ratio} |")
    for system, reason in skipped.items():
        out.append(f"\n{system}: skipped ({reason})")
    return "\n".join(out)


def threads_table(runs):
    """The server's threads, for the runs of a server with worker threads (QTNOTIF_WORKER_THREADS):
    medians of each thread's CPU (% of a core; the main thread first), and the rate the server
    would reach if each thread had a core of its own and the busiest one were the limit. An
    estimate, not a measurement: it leaves out what the threads share (the kernel's socket
    locks, the memory bus) and the generator's own need for a core. Empty without workers."""
    out = []
    for (system, scenario), rs in sorted(runs.items(), key=lambda item: (
            SCENARIOS.index(item[0][1]) if item[0][1] in SCENARIOS else len(SCENARIOS), item[0][0])):
        threads = [r["server"].get("threads", []) for r in rs]
        # Only qtnotif's workers: Node.js has threads of its own that do little.
        workers = min(sum(t["name"].startswith("qtnotif worker") for t in ts) for ts in threads)
        if workers == 0:
            continue
        count = min(len(t) for t in threads)
        per_thread = [median(rs, lambda r, i=i: r["server"]["threads"][i]["cpu_percent"])
                      for i in range(count)]
        busiest = median(rs, lambda r: max(t["cpu_percent"] for t in r["server"]["threads"]))
        rate = median(rs, lambda r: r.get("delivery_rate"))
        capacity = median(rs, lambda r: r["delivery_rate"] * 100 / max(
            t["cpu_percent"] for t in r["server"]["threads"]) if "delivery_rate" in r else None)
        out.append(f"| {system} | {scenario} | {len(rs)} | {workers} | {cell(rate, 0)} "
                   f"| {cell(per_thread[0])} | {' / '.join(cell(v) for v in per_thread[1:])} "
                   f"| {cell(busiest)} | {cell(capacity, 0)} |")
    if not out:
        return ""
    return "\n".join(["| system | scenario | runs | workers | deliveries/s | main thread CPU % "
                      "| other threads CPU % | busiest thread % | deliveries/s, a core per thread |",
                      "|---|---|---|---|---|---|---|---|---|"] + out)


def setup_table(runs):
    """Connection set-up, from the idle runs: medians of the time to open every connection and
    have its listens acknowledged, and of the server's CPU per connection meanwhile
    (connect_server_cpu_us; over wss:// mostly the TLS handshake). Empty without idle runs."""
    out = []
    for system in [s for s in ordered_systems(runs) if (s, "idle") in runs]:
        rs = runs[(system, "idle")]
        cpu = median(rs, lambda r: r.get("connect_server_cpu_us", -1) / 1000)
        out.append(f"| {system} | {len(rs)} | {cell(rs[0].get('connections'))} "
                   f"| {cell(median(rs, lambda r: r.get('connect_seconds')), 2)} "
                   f"| {cell(cpu, 3)} |")
    if not out:
        return ""
    return "\n".join(["| system | runs | connections | set up in s | server CPU ms per connection |",
                      "|---|---|---|---|---|"] + out)


def plot(runs, path, tls):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("no plot: python3-matplotlib is missing", file=sys.stderr)
        return
    systems = [s for s in SYSTEMS if any(k[0] == s for k in runs)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))

    window = [(s, figures(runs[(s, "window")])["rate"]) for s in systems if (s, "window") in runs]
    if window:
        names = [s for s, _ in window]
        left.bar(names, [v / 1000 for _, v in window],
                 color=[{"unix": "#8FA9D6", "epoll": "#2E4A7D"}.get(dispatcher_of(s), "#4C72B0")
                        for s in names])
        for i, (_, v) in enumerate(window):
            left.text(i, v / 1000, f"{v / 1000:.0f}k", ha="center", va="bottom", fontsize=8)
    left.set_title("Throughput, 500 notifications in flight\n(/unix: Qt's own event dispatcher; "
                   "/epoll: EpollEventDispatcher)",
                   fontsize=10)
    left.set_ylabel("deliveries per second (thousands)")
    left.tick_params(axis="x", labelrotation=30)

    width = 0.38
    for offset, scenario, color in ((-width / 2, "rate50k", "#55A868"),
                                    (width / 2, "rate200k", "#C44E52")):
        xs, ys = [], []
        for i, s in enumerate(systems):
            if (s, scenario) in runs:
                p99 = figures(runs[(s, scenario)])["p99"]
                if p99:
                    xs.append(i + offset)
                    ys.append(p99)
        if xs:
            right.bar(xs, ys, width, label=scenario.replace("rate", "") + " deliveries/s",
                      color=color)
    right.set_yscale("log")
    right.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    right.set_xticks(range(len(systems)), systems, rotation=30)
    right.set_title("p99 latency at a set rate")
    right.set_ylabel("ms (log scale)")
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=8)

    for axis in (left, right):
        plt.setp(axis.get_xticklabels(), ha="right", rotation_mode="anchor")
    fig.suptitle("qtnotif and its peers: 2 000 subscribers, 20 keys, ~100-byte notifications"
                 + (", over wss:// (TLS in each server's process)" if tls else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs")
    parser.add_argument("--plot", help="write the plot (PNG) here")
    args = parser.parse_args()
    runs, skipped = load(args.runs)
    print(table(runs, skipped))
    setup = setup_table(runs)
    if setup:
        print("\nConnection set-up (idle runs): from the first connection opened to the last "
              "listen acknowledged\n")
        print(setup)
    threads = threads_table(runs)
    if threads:
        print("\nThe server's threads (the last column an estimate: the rate over the busiest "
              "thread's share of a core)\n")
        print(threads)
    if args.plot and runs:
        plot(runs, args.plot, over_tls(args.runs))


if __name__ == "__main__":
    main()
