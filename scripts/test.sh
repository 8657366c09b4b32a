#!/usr/bin/env bash
# Builds qtnotif and runs every test. Installs what a fresh Debian 12 machine lacks first.
#
#   scripts/test.sh               everything (unit, integration, e2e, install, redis, soak, fuzz)
#                                 but the label bench
#   scripts/test.sh -L unit       only one label (unit, integration, e2e, install, redis, soak,
#                                 fuzz); any ctest option is passed on
#   scripts/test.sh -LE fuzz      everything but the minute of fuzzing
#   scripts/test.sh -L bench      the benchmark's regression guard (tests/bench), which the
#                                 others leave out: it loads both cores for a minute
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
# The label bench runs only when asked for (-L bench). ctest ANDs several -LE options, so a
# caller's -LE is widened to leave bench out as well rather than added to.
ctest_args=()
label_chosen=0
while [ $# -gt 0 ]; do
    case $1 in
        -L|--label-regex) label_chosen=1; ctest_args+=("$1" "$2"); shift ;;
        -LE|--label-exclude) label_chosen=1; ctest_args+=("$1" "bench|$2"); shift ;;
        *) ctest_args+=("$1") ;;
    esac
    shift
done
[ $label_chosen = 1 ] || ctest_args+=(-LE bench)
ctest --test-dir "$QTNOTIF_BUILD_DIR" --output-on-failure --parallel "$(nproc)" "${ctest_args[@]}"
