#!/usr/bin/env bash
# Installs what the Node.js peers need, and nothing when it is there already (then it prints
# nothing): Node.js and npm from Debian when `node` or `npm` is missing, then the pinned packages
# of package-lock.json into bench/peers/node_modules/ (npm ci) when that folder is missing or
# older than the lock file. Runs as root, as the project's scripts do.
#
#   bench/peers/install.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/peers/install.sh: installing ${missing[*]} from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d "$HERE/node_modules" ] || [ "$HERE/package-lock.json" -nt "$HERE/node_modules" ]; then
    echo "bench/peers/install.sh: npm ci in bench/peers" >&2
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2)
    # npm ci leaves the folder newer than the lock file; touch it all the same, so that an
    # unchanged lock file is never installed twice.
    touch "$HERE/node_modules"
fi
