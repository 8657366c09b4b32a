#!/usr/bin/env bash
# ctest bench_peers (label bench): a regression guard, not a measurement.
#
#   tests/bench/peers_guard.sh BUILD_DIR
#
# Runs bench/run.sh peers --short on qtnotif and naive-qt (the window and 50k scenarios, 2 s
# each, under a minute) with the binaries of BUILD_DIR, and fails when qtnotif lost or
# duplicated a notification, or when its window throughput is under
# $QTNOTIF_BENCH_MIN_WINDOW_RATE deliveries per second. The default, 120 000, is about a third
# of what qtnotif did on a 2-core machine busy with other builds (300 000 to 400 000): a server
# that falls under it has regressed, not been unlucky. Set it to 0 to check the losses only.
# The whole output of the run is kept in a temporary directory it names.
set -euo pipefail

[ $# = 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FLOOR=${QTNOTIF_BENCH_MIN_WINDOW_RATE:-120000}
OUT=$(mktemp -d /tmp/qtnotif-bench-guard.XXXXXX)
echo "bench_peers: output in $OUT, floor $FLOOR deliveries/s"

QTNOTIF_BENCH_BUILD_DIR=$1 "$ROOT/bench/run.sh" peers --short --no-build \
    --systems qtnotif,naive-qt --scenarios window,rate50k --out "$OUT" > /dev/null

/usr/bin/python3 - "$OUT/runs.jsonl" "$FLOOR" <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
ours = [r for r in runs if r.get("bench") == "peers" and r.get("system") == "qtnotif"]
failures = []
labels = {r.get("label") for r in ours}
for label in ("window", "rate50k"):
    if label not in labels:
        failures.append(f"no qtnotif {label} run")
for r in ours:
    if r.get("lost", 0) or r.get("duplicated", 0):
        failures.append(f"qtnotif {r['label']}: lost {r['lost']}, duplicated {r['duplicated']}")
    if r.get("label") == "window" and r["delivery_rate"] < float(sys.argv[2]):
        failures.append(f"qtnotif window: {r['delivery_rate']:.0f} deliveries/s, under the "
                        f"floor {sys.argv[2]} (QTNOTIF_BENCH_MIN_WINDOW_RATE)")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
PY
echo "bench_peers: passed"
