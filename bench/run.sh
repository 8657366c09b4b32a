#!/usr/bin/env bash
# Runs qtnotif's benchmarks on this machine: one JSON line per run on stdout, a line for people
# per run and summary tables at the end on stderr. docs/performance.md explains the method and
# holds the results.
#
#   bench/run.sh cluster [--short] [--runs N] [--duration S] [--no-pin] [--perf] [--out DIR]
#                        [--no-build]
#   bench/run.sh peers [--short] [--systems a,b,c] ...   (bench/run.sh peers --help)
#
# peers: qtnotif against the servers of bench/peers/README.md (a naive QWebSocketServer,
# Node.js ws, Socket.IO) under the same load from qtnotif-bench-loadgen; bench/peers/run.sh
# runs it.
#
# cluster: cross-node delivery through a Redis backplane. Starts a redis-server on a free
# loopback port, node A and node B (qtnotif-bench-server --redis) and a node alone (no
# backplane); runs qtnotif-bench-cluster for each scenario; stops everything it started, also
# when interrupted. The paths a notification takes:
#   single  publishers and subscribers on the node alone: no backplane at all
#   same    publishers and subscribers on node A, which also publishes each notify to Redis
#   cross   publishers on node B, subscribers on node A: every notification crosses Redis
# The scenarios, 100 subscribers and 10 publishers each:
#   window 100      as fast as 100 notifications in flight allow; 10 keys (fan-out 10)
#   window 100 f1   the same over 100 keys (fan-out 1): the per-notification costs show
#   rate 1k/10k/50k fixed rates of deliveries per second, fan-out 10
# and the round trip of a cluster-wide request, listenerCount() through an upstream call
# "count": 2 000 calls one after the other from a client on node A (cross), and on the node
# alone (single), where the answer is ready at once.
#
#   --short      one run of each, 1 s measured (about 35 s in all); by default 3 runs of 4 s
#                (about 5 minutes on a quiet machine)
#   --runs N, --duration S   override either (--duration: the delivery scenarios)
#   --no-pin     let the scheduler place the processes (see "Pinning" below)
#   --perf       then profile the nodes, Redis and the driver during one more cross-node window
#                run, kept out of the results (perf record --call-graph dwarf; perf.data)
#   --out DIR    where logs, runs.jsonl and perf.data go (default: a new /tmp/qtnotif-bench.*)
#   --no-build   use the binaries as they are
# The build directory is $QTNOTIF_BENCH_BUILD_DIR, else build-bench/ at the top of the
# repository, configured as a Release build when it does not exist yet. Each run waits for other
# programs to use less than 15 % of a core, and is run again (twice at most) if they used more
# during it; waiting and running again take 3 minutes at most in all.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${QTNOTIF_BENCH_BUILD_DIR:-$ROOT/build-bench}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'bench/run.sh: %s\n' "$*" >&2; exit 1; }

[ $# -ge 1 ] || usage 1
BENCH=$1
shift
case $BENCH in
    cluster) ;;
    peers) exec "$ROOT/bench/peers/run.sh" "$@" ;;
    -h|--help) usage 0 ;;
    *) die "unknown benchmark \"$BENCH\" (known: cluster, peers)" ;;
esac

RUNS=3
DURATION=4
WARMUP=1
PIN=1
PERF=0
BUILD=1
OUT=
while [ $# -gt 0 ]; do
    case $1 in
        --short) RUNS=1; DURATION=1; WARMUP=0.5 ;;
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --no-pin) PIN=0 ;;
        --perf) PERF=1 ;;
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) usage 0 ;;
        *) die "unknown option $1" ;;
    esac
    shift
done

for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install redis-server)"
done
[ $PERF = 0 ] || command -v perf >/dev/null || die "--perf needs perf (apt-get install linux-perf)"

# Pinning: the driver (one thread, the busiest process) gets a core of its own, so that its CPU
# and the cluster's are told apart; node A, node B and Redis share the others. On 2 cores:
# driver on CPU 1, both nodes and Redis on CPU 0. From 4 cores each gets its own.
CPUS=$(nproc)
if [ $PIN = 1 ] && { [ "$CPUS" -lt 2 ] || ! command -v taskset >/dev/null; }; then
    log "not pinning: needs 2 cores or more and taskset"
    PIN=0
fi
if [ "$CPUS" -ge 4 ]; then
    PIN_A=0 PIN_B=1 PIN_REDIS=2 PIN_DRIVER=3
else
    PIN_A=0-$((CPUS - 2))
    [ "$CPUS" -gt 2 ] || PIN_A=0
    PIN_B=$PIN_A PIN_REDIS=$PIN_A PIN_DRIVER=$((CPUS - 1))
fi
# The command prefix that pins to a CPU list, or nothing. A prefix rather than a function:
# `"${PINNED[@]}" cmd &` leaves $! the pid of cmd itself (taskset execs it), which cleanup and
# the CPU accounting need.
pin() {
    PINNED=()
    [ $PIN = 0 ] || PINNED=(taskset -c "$1")
}

if [ $BUILD = 1 ]; then
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        log "Configuring a Release build in $BUILD_DIR"
        cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
            -DQTNOTIF_BUILD_TESTS=OFF -DQTNOTIF_BUILD_DEMO=OFF >&2
    fi
    log "Building the benchmarks in $BUILD_DIR"
    cmake --build "$BUILD_DIR" --target qtnotif-bench-server qtnotif-bench-cluster >&2
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
[ "$build_type" = Release ] || log "warning: $BUILD_DIR is a \"$build_type\" build, not Release"
SERVER=$BUILD_DIR/bench/server/qtnotif-bench-server
DRIVER=$BUILD_DIR/bench/cluster/qtnotif-bench-cluster
{ [ -x "$SERVER" ] && [ -x "$DRIVER" ]; } || die "no benchmark binaries in $BUILD_DIR/bench"

OUT=${OUT:-$(mktemp -d /tmp/qtnotif-bench.XXXXXX)}
mkdir -p "$OUT"
RESULTS=$OUT/runs.jsonl
: > "$RESULTS"

# Everything started here is stopped by its pid on the way out, never by name.
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (connecting to it fails).
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# start_node <name> <cpus> [server options...]: starts a bench server; sets NODE_URL, NODE_PID.
start_node() {
    local name=$1
    pin "$2"
    shift 2
    "${PINNED[@]}" "$SERVER" "$@" > "$OUT/$name.out" 2> "$OUT/$name.log" &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    for _ in $(seq 100); do
        NODE_URL=$(sed -n 's/^qtnotif bench server listening on //p' "$OUT/$name.out")
        [ -n "$NODE_URL" ] && return 0
        kill -0 "$NODE_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$OUT/$name.log" >&2
    die "node $name did not start"
}

REDIS_PORT=$(free_port) || die "no free loopback port"
log "Starting redis-server on 127.0.0.1:$REDIS_PORT"
pin "$PIN_REDIS"
"${PINNED[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$OUT" > "$OUT/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 50); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
done
[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] || die "redis-server did not start"

REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
start_node nodeA "$PIN_A" --redis "$REDIS_URL"
A_URL=$NODE_URL A_PID=$NODE_PID
start_node nodeB "$PIN_B" --redis "$REDIS_URL"
B_URL=$NODE_URL B_PID=$NODE_PID
start_node single "$PIN_A"
SINGLE_URL=$NODE_URL
log "Node A $A_URL, node B $B_URL, single $SINGLE_URL; results in $OUT"

# What the numbers were measured on, as the first line of the results.
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
qt_version=$(dpkg-query -W -f='${Version}' libqt6core6 2>/dev/null || echo unknown)
redis_version=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
pinning='"none"'
[ $PIN = 0 ] || pinning="{\"nodeA\":\"$PIN_A\",\"nodeB\":\"$PIN_B\",\"redis\":\"$PIN_REDIS\",\"driver\":\"$PIN_DRIVER\"}"
printf '{"bench":"environment","date":"%s","commit":"%s","nproc":%s,"cpu":"%s","kernel":"%s","qt":"%s","redis":"%s","pinning":%s,"runs":%s,"duration_s":%s}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" "$CPUS" "$cpu_model" "$(uname -r)" "$qt_version" \
    "$redis_version" "$pinning" "$RUNS" "$DURATION" | tee -a "$RESULTS"

# driver_args <path> <driver options...>: sets ARGS, the driver's command line for that path.
driver_args() {
    local path=$1 subscribe publish
    shift
    case $path in
        single) subscribe=$SINGLE_URL publish=$SINGLE_URL ;;
        same) subscribe=$A_URL publish=$A_URL ;;
        cross) subscribe=$A_URL publish=$B_URL ;;
    esac
    ARGS=(--subscribe "$subscribe" --publish "$publish" --label "$path"
          --warmup "$WARMUP" --duration "$DURATION" --cpu "redis=$REDIS_PID" "$@")
}

# run_driver <path> <driver options...>: one run, its JSON in $OUT/run.json and the CPU % other
# programs used meanwhile in OTHER.
run_driver() {
    driver_args "$@"
    pin "$PIN_DRIVER"
    if ! "${PINNED[@]}" "$DRIVER" "${ARGS[@]}" > "$OUT/run.json"; then
        log "a $1 run failed (${*:2}); going on"
        return 1
    fi
    OTHER=$(sed -n 's/.*"other":\([0-9.]*\).*/\1/p' "$OUT/run.json")
}

# profile <path> <driver options...>: one more run, profiled with perf while it measures; kept
# out of the results, since profiling slows it down. It measures 4 s at least, so that perf
# stops before the driver does.
profile() {
    local duration
    duration=$(awk -v d="$DURATION" 'BEGIN { print (d > 4 ? d : 4) }')
    driver_args "$@" --duration "$duration"
    pin "$PIN_DRIVER"
    "${PINNED[@]}" "$DRIVER" "${ARGS[@]}" > "$OUT/profiled-run.json" &
    local driver=$!
    PIDS+=("$driver")
    # Measuring starts after connecting and probing (well under 0.5 s) and warming up.
    sleep "$(awk -v w="$WARMUP" 'BEGIN { print w + 1.5 }')"
    perf record --call-graph dwarf,16384 -F 499 -o "$OUT/perf.data" \
        -p "$A_PID,$B_PID,$REDIS_PID,$driver" -- sleep "$(awk -v d="$duration" 'BEGIN { print d - 1.5 }')" \
        > "$OUT/perf.log" 2>&1 || log "perf record failed: see $OUT/perf.log"
    wait "$driver" || log "the profiled run failed"
}

# The CPU the whole machine uses, in % of one core, over half a second (from /proc/stat).
# Between runs the processes started here are idle: this is other programs.
machine_busy() {
    local a b
    read -r -a a < /proc/stat
    sleep 0.5
    read -r -a b < /proc/stat
    echo $(( (b[1] + b[2] + b[3] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[6] - a[7] - a[8])
             * 200 / $(getconf CLK_TCK) ))
}

# Waits (a minute at most) until other programs use less than BUSY_LIMIT % of a core. Waiting
# and running runs again share a budget of PATIENCE seconds per invocation, which bounds how long
# a busy machine can stretch it; once spent, runs go ahead as they are (their "other" says how
# skewed they are).
BUSY_LIMIT=15
PATIENCE=180
PATIENCE_SPENT=0
wait_quiet() {
    local busy start=$SECONDS
    for _ in $(seq 120); do
        if [ $PATIENCE_SPENT -ge $PATIENCE ]; then
            [ "${IMPATIENT:-}" ] || log "waited ${PATIENCE} s in all for a quiet machine:" \
                "running the rest as it is"
            IMPATIENT=1
            return 0
        fi
        busy=$(machine_busy)
        if [ "$busy" -lt $BUSY_LIMIT ]; then
            PATIENCE_SPENT=$((PATIENCE_SPENT + SECONDS - start))
            return 0
        fi
        [ "${QUIET_WAITING:-}" ] || log "other programs use ${busy}% of a core: waiting for them"
        QUIET_WAITING=1
        PATIENCE_SPENT=$((PATIENCE_SPENT + SECONDS - start))
        start=$SECONDS
    done
    log "still ${busy}% busy after a minute: running anyway"
}

# run <path> <driver options...>: run_driver once the machine is quiet, and again (twice at
# most, within PATIENCE) when other programs used more than BUSY_LIMIT % of a core during the
# run anyway, since that skews every number of the run.
run() {
    local attempt start
    for attempt in 1 2 3; do
        wait_quiet
        QUIET_WAITING=
        start=$SECONDS
        run_driver "$@" || return 0
        if [ $attempt -lt 3 ] && [ $PATIENCE_SPENT -lt $PATIENCE ] \
            && awk -v o="${OTHER:-0}" -v l=$BUSY_LIMIT 'BEGIN { exit !(o > l) }'; then
            log "other programs used ${OTHER}% of a core during that run: running it again"
            PATIENCE_SPENT=$((PATIENCE_SPENT + SECONDS - start))
            continue
        fi
        tee -a "$RESULTS" < "$OUT/run.json"
        return 0
    done
}

for round in $(seq "$RUNS"); do
    log "Round $round of $RUNS"
    for path in single same cross; do
        run $path --mode window --keys 10
        run $path --mode window --keys 100
        for rate in 1000 10000 50000; do
            run $path --mode rate --rate $rate --keys 10
        done
    done
    for path in single cross; do
        run $path --mode requests --requests 2000
    done
done

if [ $PERF = 1 ]; then
    log "One more cross-node window run, profiled (not in the results)"
    wait_quiet
    profile cross --mode window --keys 10
fi

log "Summary: medians over the runs; max ms is the worst run's (results in $RESULTS)"
"$DRIVER" --summarize "$RESULTS" >&2
if [ -f "$OUT/perf.data" ]; then
    log "CPU profile of the profiled cross-node window run ($OUT/perf.data): node A is pid" \
        "$A_PID, node B $B_PID, Redis $REDIS_PID"
    perf report -i "$OUT/perf.data" --no-children --sort pid,dso -g none --stdio 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -20 >&2 || true
fi
