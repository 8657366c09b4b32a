#!/usr/bin/env bash
# Builds qtnotif and runs every test. Installs what a fresh Debian 12 machine lacks first.
#
#   scripts/test.sh               everything (unit, integration, e2e, install, redis, soak)
#   scripts/test.sh -L unit       only one label (unit, integration, e2e, install, redis, soak);
#                                 any ctest option is passed on
#
# Environment: QTNOTIF_BUILD_DIR (default build/), CMAKE_BUILD_TYPE (default RelWithDebInfo).
# Exits non-zero when anything fails.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

install_packages "${QTNOTIF_PACKAGES[@]}"
configure_and_build -DQTNOTIF_BUILD_TESTS=ON
log "Testing"
ctest --test-dir "$QTNOTIF_BUILD_DIR" --output-on-failure --parallel "$(nproc)" "$@"
