#!/usr/bin/env bash
# Builds qtnotif and runs every test. Installs what a fresh Debian 12 machine lacks first.
#
#   scripts/test.sh               everything (unit, integration, e2e, install, redis, soak, fuzz)
#   scripts/test.sh -L unit       only one label (unit, integration, e2e, install, redis, soak,
#                                 fuzz); any ctest option is passed on
#   scripts/test.sh -LE fuzz      everything but the minute of fuzzing
#   scripts/test.sh --sanitize    the same tests built with AddressSanitizer, LeakSanitizer and
#                                 UndefinedBehaviorSanitizer (QTNOTIF_SANITIZE), in build-asan/;
#                                 a report fails the test. All but tst_install and tst_readme,
#                                 which run none of our code (tests/CMakeLists.txt), and the
#                                 fuzzer, which has sanitizers of its own. CI runs both.
#
# The label fuzz runs the fuzzer for 60 s; scripts/fuzz.sh --time 3600 runs it longer
# (docs/fuzzing.md).
#
# Environment: QTNOTIF_BUILD_DIR (default build/, or build-asan/ with --sanitize),
# CMAKE_BUILD_TYPE (default RelWithDebInfo).
# Exits non-zero when anything fails.
set -euo pipefail

cmake_options=(-DQTNOTIF_BUILD_TESTS=ON)
if [ "${1:-}" = --sanitize ]; then
    shift
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    QTNOTIF_BUILD_DIR=${QTNOTIF_BUILD_DIR:-$root/build-asan}
    # No test runs the examples or the benchmarks: they are not built. The fuzzer is built with
    # the sanitizers in any case, and ran in the plain build.
    cmake_options+=(-DQTNOTIF_SANITIZE=ON -DQTNOTIF_BUILD_EXAMPLES=OFF -DQTNOTIF_BUILD_BENCH=OFF
                    -DQTNOTIF_BUILD_FUZZ=OFF)
fi
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

install_packages "${QTNOTIF_PACKAGES[@]}"
configure_and_build "${cmake_options[@]}"
log "Testing"
ctest --test-dir "$QTNOTIF_BUILD_DIR" --output-on-failure --parallel "$(nproc)" "$@"
