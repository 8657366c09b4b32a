#!/usr/bin/env bash
# headless_test.sh SERVER HEADLESS: the scripted two-user run of `scripts/demo.sh --headless`,
# against a chat server on a free loopback port. Fails when any scripted step fails, or when the
# server, stopped with SIGTERM at the end, does not exit with status 0 (in a sanitizer build: a
# report, a leak at exit say).
set -euo pipefail
output=$(mktemp)
"$1" --host 127.0.0.1 --port 0 >"$output" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$output"' EXIT
for _ in $(seq 100); do
    url=$(grep -o 'ws://[^ ]*' "$output" || true)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$output"; echo "the chat server did not start" >&2; exit 1; }
"$2" --url "$url"
kill -TERM "$server"
status=0
wait "$server" || status=$?
if [ "$status" -ne 0 ]; then
    cat "$output"
    echo "the chat server exited with status $status" >&2
    exit 1
fi
