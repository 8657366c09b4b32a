#!/usr/bin/env bash
# The chat demo as a cluster on this machine (docs/cluster.md): Redis, three chat servers joined
# through it, and nginx in front of them. Installs what a fresh Debian 12 machine lacks first.
#
#   scripts/cluster.sh                 runs until Ctrl+C; nginx on ws://127.0.0.1:8080
#   scripts/cluster.sh --headless      the scripted alice and bob through nginx, then exits
#   scripts/cluster.sh --port 9000 --nodes 5
#
# Windows join it with scripts/demo.sh --window widgets|qml --user NAME --url ws://127.0.0.1:8080
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

install_packages "${QTNOTIF_PACKAGES[@]}"
configure_and_build -DQTNOTIF_BUILD_DEMO=ON
exec bash "$QTNOTIF_ROOT/demo-app/cluster/run-cluster.sh" "$QTNOTIF_BUILD_DIR/demo-app" "$@"
