#!/usr/bin/env bash
# Compares qtnotif with the servers of bench/peers/README.md under the same load from
# qtnotif-bench-loadgen: one JSON line per run on stdout (and in runs.jsonl), a Markdown table on
# stderr, a PNG plot in the output directory. bench/run.sh peers runs this.
#
#   bench/run.sh peers [--short] [--runs N] [--duration S] [--idle-duration S] [--systems a,b,c]
#                      [--scenarios a,b,c] [--idle-connections N] [--dispatchers glib,unix]
#                      [--no-glib] [--no-pin] [--write-delay MS] [--tls] [--out DIR]
#                      [--plot-to FILE] [--no-build]
#
# Systems: qtnotif, qtnotif-prepare, naive-qt, ws, socketio (all by default). Each server runs
# alone, pinned to CPU 1, the generator to CPU 0. A system whose runtime is missing (Node.js for
# ws and socketio, the notifier "benchp" for qtnotif-prepare) is reported as skipped.
# Scenarios, 2 000 subscribers on 20 keys (100 listeners per key), 4 publishers, notifications
# of about 100 bytes:
#   window     500 notifications in flight: as fast as the server goes
#   rate50k    50 000 deliveries per second (500 notifications/s), latency at a set pace
#   rate200k   200 000 deliveries per second
#   idle       --idle-connections connections (10 000) listening to 3 keys each (of 1 000),
#              nothing published: the server's memory per connection and its CPU for
#              heartbeats, on a fresh server
#
#   --short            one run of each, 2 s measured (about 3 minutes for all systems); by
#                      default 3 runs of 10 s, and the tables show medians
#   --runs N, --duration S   override either
#   --idle-duration S  seconds the idle scenario measures (30, 5 with --short): 30 s cover a
#                      heartbeat of every system (qtnotif and Socket.IO 25 s, ws 30 s)
#   --systems LIST     the systems to run, comma-separated
#   --scenarios LIST   the scenarios to run, comma-separated
#   --idle-connections N   100000 for the quarter-core goal: the generator then binds its
#                      connections to 127.0.0.1-127.0.0.N/20000+1, since one source address
#                      has about 28 000 ephemeral ports
#   --dispatchers LIST the event dispatchers the Qt servers (qtnotif, qtnotif-prepare,
#                      naive-qt) run on, each in turn: glib (Debian's Qt default), unix
#                      (QT_NO_GLIB=1: Qt's own; GLib's socket notifiers cost O(n) each time one
#                      is switched, every write that waits, which dominates at set rates with
#                      thousands of connections) and epoll (QtNotif::EpollEventDispatcher, the
#                      server's --epoll; qtnotif's servers only: a turn costs in proportion to the
#                      sockets that are ready). Default glib,unix,epoll; a unix or epoll run is
#                      reported as "<system>/unix" or "<system>/epoll"
#   --no-glib          the same as --dispatchers unix
#   --no-pin           let the scheduler place the processes
#   --write-delay MS   qtnotif's servers let notifications wait up to MS ms to go out
#                      together (Server::setWriteDelay()); 0 by default
#   --tls              every server serves wss:// (TLS in its own process, with an EC P-256
#                      certificate made for the run by openssl) and the generator speaks TLS
#                      (OpenSSL)
#   --out DIR          where logs, runs.jsonl and peers.png go (default: a new
#                      /tmp/qtnotif-peers.*)
#   --plot-to FILE     also copy the plot there (docs/images/performance-peers.png, say)
#   --no-build         use the binaries as they are
# The build directory is $QTNOTIF_BENCH_BUILD_DIR, else build-bench/ at the top of the
# repository (a Release build, configured when missing). The plot needs python3-matplotlib,
# installed with apt-get when missing. Exits non-zero when a run failed (skipped systems are not
# failures).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${QTNOTIF_BENCH_BUILD_DIR:-$ROOT/build-bench}
PEERS=$ROOT/bench/peers

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'bench/run.sh peers: %s\n' "$*" >&2; exit 1; }

RUNS=3
DURATION=10
WARMUP=2
IDLE_DURATION=30
SYSTEMS=qtnotif,qtnotif-prepare,naive-qt,ws,socketio
SCENARIOS=window,rate50k,rate200k,idle
IDLE_CONNECTIONS=10000
WRITE_DELAY= # ms, for qtnotif's servers (Server::setWriteDelay()); empty: the server's default
TLS=0
PIN=1
DISPATCHERS=glib,unix,epoll
DISPATCHER= # the one the Qt server of the current run uses; empty for the others
BUILD=1
OUT=
PLOT_TO=
while [ $# -gt 0 ]; do
    case $1 in
        --short) RUNS=1; DURATION=2; WARMUP=1; IDLE_DURATION=5 ;;
        --runs) RUNS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --idle-duration) IDLE_DURATION=$2; shift ;;
        --systems) SYSTEMS=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --idle-connections) IDLE_CONNECTIONS=$2; shift ;;
        --no-pin) PIN=0 ;;
        --write-delay) WRITE_DELAY=$2; shift ;;
        --tls) TLS=1 ;;
        --dispatchers) DISPATCHERS=$2; shift ;;
        --no-glib) DISPATCHERS=unix ;;
        --out) OUT=$2; shift ;;
        --plot-to) PLOT_TO=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) usage 0 ;;
        *) die "unknown option $1" ;;
    esac
    shift
done
IFS=, read -r -a SYSTEM_LIST <<< "$SYSTEMS"
IFS=, read -r -a SCENARIO_LIST <<< "$SCENARIOS"
IFS=, read -r -a DISPATCHER_LIST <<< "$DISPATCHERS"
for dispatcher in "${DISPATCHER_LIST[@]}"; do
    case $dispatcher in
        glib|unix|epoll) ;;
        *) die "unknown dispatcher \"$dispatcher\" (known: glib, unix, epoll)" ;;
    esac
done
[ ${#DISPATCHER_LIST[@]} -gt 0 ] || die "--dispatchers needs glib, unix or epoll"
for system in "${SYSTEM_LIST[@]}"; do
    case $system in
        qtnotif|qtnotif-prepare|naive-qt|ws|socketio) ;;
        *) die "unknown system \"$system\" (known: qtnotif, qtnotif-prepare, naive-qt, ws, socketio)" ;;
    esac
done
for scenario in "${SCENARIO_LIST[@]}"; do
    case $scenario in
        window|rate50k|rate200k|idle) ;;
        *) die "unknown scenario \"$scenario\" (known: window, rate50k, rate200k, idle)" ;;
    esac
done

# Pinning: the server on CPU 1, the generator on CPU 0, so that neither takes the other's time
# and the server's CPU % is its own.
if [ $PIN = 1 ] && { [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; }; then
    log "not pinning: needs 2 cores or more and taskset"
    PIN=0
fi
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
    log "Building the server, the naive-qt peer and the load generator in $BUILD_DIR"
    cmake --build "$BUILD_DIR" --target qtnotif-bench-server qtnotif-bench-naive-qt \
        qtnotif-bench-loadgen >&2
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
[ "$build_type" = Release ] || log "warning: $BUILD_DIR is a \"$build_type\" build, not Release"
SERVER=$BUILD_DIR/bench/server/qtnotif-bench-server
NAIVE=$BUILD_DIR/bench/peers/naive-qt/qtnotif-bench-naive-qt
LOADGEN=$BUILD_DIR/bench/loadgen/qtnotif-bench-loadgen
for binary in "$SERVER" "$NAIVE" "$LOADGEN"; do
    [ -x "$binary" ] || die "$binary is missing (build it, or drop --no-build)"
done

OUT=${OUT:-$(mktemp -d /tmp/qtnotif-peers.XXXXXX)}
mkdir -p "$OUT"
RESULTS=$OUT/runs.jsonl
: > "$RESULTS"
if [ $TLS = 1 ]; then
    command -v openssl >/dev/null || die "--tls needs openssl (apt-get install openssl)"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$OUT/tls-key.pem" -out "$OUT/tls-certificate.pem" 2> "$OUT/openssl.log" \
        || die "openssl could not make a certificate: see $OUT/openssl.log"
fi

# The server running now: its pid, and the descriptor of the pipe that is its stdin (closing it
# is how it is asked to stop).
SERVER_PID=
SERVER_STDIN=
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    exec {SERVER_STDIN}>&-
    # Polled, not slept: most servers are gone at the first look. SIGTERM after 2 s (a server
    # that does not watch its stdin), SIGKILL after 5 s.
    local waited=0
    while kill -0 "$SERVER_PID" 2>/dev/null && [ $waited -lt 50 ]; do
        [ $waited != 20 ] || kill "$SERVER_PID" 2>/dev/null || true
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        log "the server (pid $SERVER_PID) did not stop on SIGTERM: killing it"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# The Node.js peers: bench/peers/install.sh installs Node.js and their packages.
NODE_READY=
node_ready() {
    if [ -z "$NODE_READY" ]; then
        NODE_READY=no
        if [ -x "$PEERS/install.sh" ]; then
            log "Installing the Node.js peers (bench/peers/install.sh)"
            if "$PEERS/install.sh" > "$OUT/install.log" 2>&1; then
                NODE_READY=yes
            else
                log "bench/peers/install.sh failed: see $OUT/install.log"
            fi
        elif command -v node >/dev/null && [ -d "$PEERS/node_modules" ]; then
            NODE_READY=yes
        fi
    fi
    [ "$NODE_READY" = yes ]
}

# start_server <system>: starts the system's server, pinned; sets URL and SERVER_PID. Returns 1
# (with SKIP_REASON) when the system cannot run here.
start_server() {
    local system=$1 command=()
    local qt_environment=()
    local tls_options=()
    [ "$DISPATCHER" != unix ] || qt_environment=(env QT_NO_GLIB=1)
    [ $TLS = 0 ] || tls_options=(--tls-certificate "$OUT/tls-certificate.pem"
                                 --tls-key "$OUT/tls-key.pem")
    local qtnotif_options=("${tls_options[@]}")
    [ "$DISPATCHER" != epoll ] || qtnotif_options+=(--epoll)
    [ -z "$WRITE_DELAY" ] || qtnotif_options+=(--write-delay "$WRITE_DELAY")
    case $system in
        qtnotif|qtnotif-prepare)
            command=("${qt_environment[@]}" "$SERVER" "${qtnotif_options[@]}") ;;
        naive-qt) command=("${qt_environment[@]}" "$NAIVE" "${tls_options[@]}") ;;
        ws|socketio)
            if [ ! -f "$PEERS/$system/server.js" ]; then
                SKIP_REASON="bench/peers/$system/server.js is missing"
                return 1
            fi
            if ! node_ready; then
                SKIP_REASON="Node.js or the peers' packages are missing (bench/peers/install.sh)"
                return 1
            fi
            command=(node "$PEERS/$system/server.js" "${tls_options[@]}")
            ;;
    esac
    # Up to 100 000 idle connections, 2 004 in the other scenarios: as many descriptors (root
    # may raise the hard limit).
    local files=$(((IDLE_CONNECTIONS > 2004 ? IDLE_CONNECTIONS : 2004) + 1000))
    pin 1
    # Its stdin is the read end of a pipe whose only writer is this script: a FIFO opened
    # read-write first, so that neither open blocks.
    local fifo=$OUT/server-stdin holder reader
    rm -f "$fifo"
    mkfifo "$fifo"
    exec {holder}<>"$fifo"
    exec {reader}<"$fifo"
    exec {SERVER_STDIN}>"$fifo"
    exec {holder}>&-
    rm -f "$fifo"
    (
        exec {SERVER_STDIN}>&-
        ulimit -Hn "$files" 2>/dev/null || true
        ulimit -n "$files" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
        exec "${PINNED[@]}" "${command[@]}" --port 0
    ) <&"$reader" > "$OUT/$system.out" 2>> "$OUT/$system.log" &
    SERVER_PID=$!
    exec {reader}<&-
    URL=
    for _ in $(seq 100); do
        URL=$(sed -n 's/^.*listening on \(wss\{0,1\}:\/\/[^ ]*\).*$/\1/p' "$OUT/$system.out" 2>/dev/null \
              | head -1)
        [ -n "$URL" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$OUT/$system.log" >&2
    stop_server
    die "the $system server did not start"
}

# scenario_args <scenario>: sets ARGS, the generator's options for it.
scenario_args() {
    local common=(--connections 2000 --keys 20 --keys-per-connection 1 --publishers 4
                  --payload 100 --duration "$DURATION" --warmup "$WARMUP")
    case $1 in
        window) ARGS=("${common[@]}" --mode window --window 500) ;;
        rate50k) ARGS=("${common[@]}" --mode rate --rate 50000) ;;
        rate200k) ARGS=("${common[@]}" --mode rate --rate 200000) ;;
        idle)
            ARGS=(--mode idle --connections "$IDLE_CONNECTIONS" --keys 1000
                  --keys-per-connection 3 --duration "$IDLE_DURATION")
            # About 28 000 ephemeral ports per source address: one address per 20 000.
            if [ "$IDLE_CONNECTIONS" -gt 20000 ]; then
                ARGS+=(--source-addresses "127.0.0.1-127.0.0.$((IDLE_CONNECTIONS / 20000 + 1))")
            fi
            ;;
    esac
}

# run_scenario <system> <scenario>: one run; 0 done, 3 the system is not supported, 1 failed.
run_scenario() {
    local system=$1 scenario=$2 status=0
    scenario_args "$scenario"
    pin 0
    "${PINNED[@]}" "$LOADGEN" --system "$system" --url "$URL" --server-pid "$SERVER_PID" \
        --label "$scenario" "${ARGS[@]}" > "$OUT/run.json" 2>> "$OUT/loadgen.log" \
        {SERVER_STDIN}>&- || status=$?
    tail -1 "$OUT/loadgen.log" >&2
    if [ $status = 0 ]; then
        # The Qt servers' lines say which event dispatcher ran them.
        if [ -n "$DISPATCHER" ]; then
            sed "s/^{/{\"dispatcher\":\"$DISPATCHER\",/" "$OUT/run.json" | tee -a "$RESULTS"
        else
            tee -a "$RESULTS" < "$OUT/run.json"
        fi
    fi
    return $status
}

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
qt_version=$(dpkg-query -W -f='${Version}' libqt6core6 2>/dev/null || echo unknown)
commit=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
printf '{"bench":"environment","date":"%s","commit":"%s","nproc":%s,"cpu":"%s","kernel":"%s","qt":"%s","qt_dispatcher":"%s","node":"%s","pinning":%s,"write_delay_ms":%s,"tls":%s,"runs":%s,"duration_s":%s}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$commit" "$(nproc)" "$cpu_model" "$(uname -r)" \
    "$qt_version" "$DISPATCHERS" \
    "$(node --version 2>/dev/null || echo none)" \
    "$([ $PIN = 1 ] && echo '{"server":"1","generator":"0"}' || echo '"none"')" "${WRITE_DELAY:-0}" \
    "$([ $TLS = 1 ] && echo true || echo false)" "$RUNS" \
    "$DURATION" | tee -a "$RESULTS"
log "Results in $OUT"

FAILED=()
SKIPPED=()
# skip <system> <reason>: records a system that cannot run here.
skip() {
    log "$1: skipped ($2)"
    SKIPPED+=("$1")
    printf '{"bench":"peers","system":"%s","skipped":"%s"}\n' "$1" "$2" | tee -a "$RESULTS"
}

# bench_system <system>: every scenario of the system (on $DISPATCHER for a Qt server).
bench_system() {
    local system=$1 name=$1 busy=() idle=0 skipped=0 round scenario status
    [ -z "$DISPATCHER" ] || [ "$DISPATCHER" = glib ] || name=$system/$DISPATCHER
    for scenario in "${SCENARIO_LIST[@]}"; do
        if [ "$scenario" = idle ]; then idle=1; else busy+=("$scenario"); fi
    done
    if [ ${#busy[@]} -gt 0 ]; then
        if ! start_server "$system"; then
            skip "$name" "$SKIP_REASON"
            return
        fi
        log "$name: $URL (pid $SERVER_PID)"
        for round in $(seq "$RUNS"); do
            for scenario in "${busy[@]}"; do
                status=0
                run_scenario "$system" "$scenario" || status=$?
                if [ $status = 3 ]; then
                    skip "$name" "$(tail -1 "$OUT/loadgen.log" | sed 's/^qtnotif-bench-loadgen: //' | tr -d '"\\')"
                    skipped=1
                    break 2
                elif [ $status != 0 ]; then
                    log "$name $scenario (round $round) failed: see $OUT/loadgen.log"
                    FAILED+=("$name:$scenario")
                fi
            done
        done
        stop_server
    fi
    if [ $idle = 1 ] && [ $skipped = 0 ]; then
        for round in $(seq "$RUNS"); do
            # A fresh server each time: its memory before the connections is its memory alone.
            if ! start_server "$system"; then
                skip "$name" "$SKIP_REASON"
                break
            fi
            status=0
            run_scenario "$system" idle || status=$?
            stop_server
            if [ $status = 3 ]; then
                skip "$name" "$(tail -1 "$OUT/loadgen.log" | sed 's/^qtnotif-bench-loadgen: //' | tr -d '"\\')"
                break
            elif [ $status != 0 ]; then
                log "$name idle (round $round) failed: see $OUT/loadgen.log"
                FAILED+=("$name:idle")
            fi
        done
    fi
}

for system in "${SYSTEM_LIST[@]}"; do
    case $system in
        qtnotif|qtnotif-prepare|naive-qt)
            for DISPATCHER in "${DISPATCHER_LIST[@]}"; do
                # A plain Qt server stays on Qt's own dispatchers.
                [ "$system/$DISPATCHER" = naive-qt/epoll ] || bench_system "$system"
            done
            ;;
        *) DISPATCHER= bench_system "$system" ;;
    esac
done

# The table and the plot: python3-matplotlib from Debian (/usr/bin/python3, whatever python3
# comes first in PATH).
PYTHON=/usr/bin/python3
if ! dpkg-query -W -f='${Status}' python3-matplotlib 2>/dev/null | grep -q 'install ok installed'; then
    log "Installing python3-matplotlib for the plot"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends python3-matplotlib; } > "$OUT/apt.log" 2>&1 \
        || log "could not install python3-matplotlib (see $OUT/apt.log): no plot"
fi
log "Summary: medians over the runs (results in $RESULTS)"
plot_args=(--plot "$OUT/peers.png")
"$PYTHON" "$PEERS/summarize.py" "$RESULTS" "${plot_args[@]}" >&2 \
    || log "the summary failed"
if [ -n "$PLOT_TO" ] && [ -f "$OUT/peers.png" ] && ! [ "$OUT/peers.png" -ef "$PLOT_TO" ]; then
    cp "$OUT/peers.png" "$PLOT_TO"
    log "plot copied to $PLOT_TO"
fi
[ ${#SKIPPED[@]} = 0 ] || log "skipped: ${SKIPPED[*]}"
if [ ${#FAILED[@]} -gt 0 ]; then
    log "failed: ${FAILED[*]}"
    exit 1
fi
