#!/usr/bin/env bash
# Builds and runs the qtnotif chat demo. Installs what a fresh Debian 12 machine lacks first.
#
#   scripts/demo.sh                       a chat server on this machine (in-memory, one process)
#                                         and two windows: widgets as alice, QML as bob
#   scripts/demo.sh --headless            the same two users scripted, printing what each
#                                         receives, then exits (the default without a display)
#   scripts/demo.sh --server-only [--host 0.0.0.0] [--port 8080]
#                                         only the server, for windows on other machines
#   scripts/demo.sh --window widgets|qml --user NAME [--url ws://host:8080]
#                                         only one window, joining a server started elsewhere
#
# Environment: QTNOTIF_BUILD_DIR (default build/), CMAKE_BUILD_TYPE (default RelWithDebInfo).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

mode=demo
host=127.0.0.1
port=8080
window=""
user=""
url=""
while [ $# -gt 0 ]; do
    case "$1" in
        --headless) mode=headless ;;
        --server-only) mode=server ;;
        --window) mode=window; window=${2:?--window needs widgets or qml}; shift ;;
        --user) user=${2:?--user needs a name}; shift ;;
        --url) url=${2:?--url needs a ws:// URL}; shift ;;
        --host) host=${2:?--host needs an address}; shift ;;
        --port) port=${2:?--port needs a number}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

has_display() { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }
if [ "$mode" = demo ] && ! has_display; then
    log "No display (neither DISPLAY nor WAYLAND_DISPLAY is set): running --headless instead"
    mode=headless
fi

# The windows need Qt's platform plugins (xcb) besides what the build needs.
install_packages "${QTNOTIF_PACKAGES[@]}" qt6-qpa-plugins
configure_and_build -DQTNOTIF_BUILD_DEMO=ON
demo="$QTNOTIF_BUILD_DIR/demo-app"
server_bin="$demo/server/qtnotif-chat-server"

# start_server PORT: starts the server in the background; sets server_pid and server_url.
start_server() {
    server_output=$(mktemp)
    "$server_bin" --host "$host" --port "$1" >"$server_output" 2>&1 &
    server_pid=$!
    trap 'kill "$server_pid" 2>/dev/null || true; rm -f "$server_output"' EXIT
    for _ in $(seq 100); do
        server_url=$(grep -o 'ws://[^ ]*' "$server_output" || true)
        [ -n "$server_url" ] && return 0
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$server_output" >&2
            echo "the chat server did not start (is port $1 taken? try --port)" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "the chat server did not say where it listens" >&2
    exit 1
}

case "$mode" in
    server)
        log "Chat server on $host:$port (Ctrl+C stops it)"
        exec "$server_bin" --host "$host" --port "$port"
        ;;
    window)
        [ -n "$user" ] || { echo "--window needs --user NAME" >&2; exit 2; }
        case "$window" in
            widgets) exec "$demo/widgets/qtnotif-chat-widgets" --url "${url:-ws://127.0.0.1:8080}" --user "$user" ;;
            qml) exec "$demo/qml/qtnotif-chat-qml" --url "${url:-ws://127.0.0.1:8080}" --user "$user" ;;
            *) echo "--window takes widgets or qml" >&2; exit 2 ;;
        esac
        ;;
    headless)
        start_server 0   # a free port: the script run needs no fixed one
        log "Chat server at $server_url; alice and bob, scripted:"
        "$demo/headless/qtnotif-chat-headless" --url "$server_url"
        ;;
    demo)
        start_server "$port"
        log "Chat server at $server_url: alice in the widgets window, bob in the QML window"
        log "More windows: scripts/demo.sh --window qml --user carol --url $server_url (other machines: start the server with --server-only --host 0.0.0.0)"
        "$demo/widgets/qtnotif-chat-widgets" --url "$server_url" --user alice &
        widgets_pid=$!
        "$demo/qml/qtnotif-chat-qml" --url "$server_url" --user bob &
        qml_pid=$!
        wait "$widgets_pid" "$qml_pid" || true
        ;;
esac
