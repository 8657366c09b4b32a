#!/usr/bin/env bash
# Takes docs/images/demo.png: the two chat windows mid-conversation, under a virtual X server
# (Xvfb), side by side: alice in the widgets window, bob in the QML window.
#
#   scripts/screenshot.sh [output.png]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

out=${1:-$QTNOTIF_ROOT/docs/images/demo.png}
install_packages "${QTNOTIF_PACKAGES[@]}" qt6-qpa-plugins xvfb xauth imagemagick fonts-dejavu-core
configure_and_build -DQTNOTIF_BUILD_DEMO=ON
demo="$QTNOTIF_BUILD_DIR/demo-app"

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

export DISPLAY=:97
Xvfb "$DISPLAY" -screen 0 1460x520x24 -nolisten tcp &
pids+=($!)
export QT_QPA_PLATFORM=xcb

server_log=$(mktemp)
"$demo/server/qtnotif-chat-server" --port 0 >"$server_log" 2>&1 &
pids+=($!)
url=""
for _ in $(seq 100); do
    url=$(grep -o 'ws://[^ ]*' "$server_log" || true)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$server_log"; exit 1; }

"$demo/widgets/qtnotif-chat-widgets" -geometry 720x520+0+0 --url "$url" --user alice \
    --say "Morning! The nightly build is green again." --say "@bob can you try it on your machine?" &
pids+=($!)
sleep 1.5 # let alice speak first: this is a picture, not a test
"$demo/qml/qtnotif-chat-qml" -geometry 720x520+740+0 --url "$url" --user bob \
    --say "@alice on it, pulling now" --say "Works here too, nice!" &
pids+=($!)
sleep 3 # the windows draw and the messages travel

mkdir -p "$(dirname "$out")"
import -window root "$out"
log "Wrote $out"
