#!/usr/bin/env bash
# run-cluster.sh DEMO_BUILD_DIR [--headless] [--port PORT] [--nodes N]
#
# The chat demo as a cluster on this machine: a redis-server, N chat servers (3 by default)
# joined through it, and nginx balancing clients over them round robin, without sticky
# sessions (docs/cluster.md). Everything listens on 127.0.0.1; Redis and the servers on free
# ports, nginx on PORT (8080 by default; 0 picks a free one).
#   --headless   runs the scripted alice and bob through nginx, then stops the chat servers
#                (SIGTERM) and exits with their outcome: failure when a chat server does not
#                exit with status 0 either (in a sanitizer build: a report, a leak at exit say)
#   (default)    keeps running until Ctrl+C; open windows with
#                scripts/demo.sh --window widgets --user alice --url ws://127.0.0.1:PORT
#
# scripts/cluster.sh builds the demo and runs this; tests run it on their build.
set -euo pipefail

demo=${1:?usage: run-cluster.sh DEMO_BUILD_DIR [--headless] [--port PORT] [--nodes N]}
shift
headless=false
port=8080
nodes=3
while [ $# -gt 0 ]; do
    case "$1" in
        --headless) headless=true ;;
        --port) port=${2:?--port needs a number}; shift ;;
        --nodes) nodes=${2:?--nodes needs a number}; shift ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
    shift
done
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d -t qtnotif-cluster.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# A port nobody on 127.0.0.1 listens on (bash's /dev/tcp connects when someone does), below
# the kernel's range of ephemeral ports, which outgoing connections (the servers' links to
# Redis, say) take without listening.
ephemeral_start=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
    local candidate
    while :; do
        candidate=$((10000 + RANDOM % (ephemeral_start - 10000)))
        (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null || { echo "$candidate"; return; }
    done
}

# wait_for FILE PATTERN WHAT: waits up to 10 s for PATTERN in FILE.
wait_for() {
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$1" >&2
    echo "$3 did not start" >&2
    exit 1
}

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "$work/redis.log" "Ready to accept connections" "redis-server"
say "Redis on 127.0.0.1:$redis_port"

upstreams=""
node_pids=()
for n in $(seq "$nodes"); do
    "$demo/server/qtnotif-chat-server" --host 127.0.0.1 --port 0 \
        --backplane "redis://127.0.0.1:$redis_port/0" >"$work/node$n.log" 2>&1 &
    pids+=($!)
    node_pids+=($!)
    wait_for "$work/node$n.log" "ws://" "chat server $n"
    wait_for "$work/node$n.log" "online:" "chat server $n's link to Redis"
    node_url=$(grep -o 'ws://[^ ]*' "$work/node$n.log")
    say "Chat server $n at $node_url"
    upstreams+="        server ${node_url#ws://};\n"
done

[ "$port" != 0 ] || port=$(free_port)
sed -e "s|listen 127.0.0.1:8080;|listen 127.0.0.1:$port;|" \
    -e "/server 127.0.0.1:900[0-9];/d" \
    -e "s|upstream qtnotif {|upstream qtnotif {\n$upstreams|" \
    "$here/nginx.conf" >"$work/nginx.conf"
nginx -p "$work" -c "$work/nginx.conf" -e "$work/error.log" >"$work/nginx.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/nginx.log" "$work/error.log" >&2; exit 1; }
    sleep 0.1
done
url="ws://127.0.0.1:$port"
say "nginx at $url, round robin over $nodes chat servers"

if $headless; then
    status=0
    "$demo/headless/qtnotif-chat-headless" --url "$url" || status=$?
    for n in $(seq "$nodes"); do
        # Which server each scripted user landed on: they are meant to be apart.
        grep -h "logged in as" "$work/node$n.log" | sed "s/^/[server $n] /" || true
    done
    for n in $(seq "$nodes"); do
        pid=${node_pids[$((n - 1))]}
        kill -TERM "$pid" 2>/dev/null || true
        node_status=0
        wait "$pid" || node_status=$?
        if [ "$node_status" -ne 0 ]; then
            cat "$work/node$n.log" >&2
            echo "chat server $n exited with status $node_status" >&2
            status=1
        fi
    done
    exit $status
fi
say "Windows: scripts/demo.sh --window widgets --user alice --url $url (Ctrl+C stops the cluster)"
wait "${pids[0]}"
