#!/usr/bin/env bash
# Runs a fuzzer: fuzz/fuzz_frames.cpp over the frame decoder and the server's dispatch, or
# (--target websocket) fuzz/fuzz_websocket.cpp over the server's WebSocket layer.
# docs/fuzzing.md says what they check and how to read what they find.
#
#   scripts/fuzz.sh                  builds the fuzzers if needed, then fuzzes frames for 60 s
#   scripts/fuzz.sh --target websocket   the WebSocket layer's readers instead
#   scripts/fuzz.sh --time 3600      an hour; --jobs N runs N fuzzing processes side by side
#   scripts/fuzz.sh CRASH-FILE...    runs the fuzzer once on each file (a crash-*, leak-* or
#                                    timeout-* it left in build/fuzz/artifacts/): reproduces it
#   scripts/fuzz.sh -- -runs=1000    arguments after -- go to libFuzzer as they are
#
# Options: --no-build uses the fuzzer already built (the ctest tests fuzz_* do);
# --fresh starts from the seed corpus alone, forgetting what earlier runs found.
# The seed corpus fuzz/corpus/ (fuzz/corpus-websocket/) is only read; what the fuzzer adds
# goes to build/fuzz/work-corpus/ (build/fuzz/websocket-work-corpus/). Environment:
# QTNOTIF_BUILD_DIR (default build/).
# Exits non-zero when the fuzzer finds a crash, a leak, undefined behaviour or a broken check.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

time=60
target=frames
jobs=1
build=1
fresh=0
inputs=()
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --time) time=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --fresh) fresh=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) inputs+=("$1"); shift ;;
    esac
done

if [ "$build" -eq 1 ]; then
    install_packages "${QTNOTIF_PACKAGES[@]}"
    log "Configuring in $QTNOTIF_BUILD_DIR"
    cmake -S "$QTNOTIF_ROOT" -B "$QTNOTIF_BUILD_DIR" -G Ninja \
        -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" -DQTNOTIF_BUILD_TESTS=ON
    log "Building the fuzzer"
    cmake --build "$QTNOTIF_BUILD_DIR" --target qtnotif_fuzzer
fi

case $target in
frames) seeds=$QTNOTIF_ROOT/fuzz/corpus; work=$QTNOTIF_BUILD_DIR/fuzz/work-corpus
        dictionary=(-dict="$QTNOTIF_ROOT/fuzz/frames.dict") ;;
websocket) seeds=$QTNOTIF_ROOT/fuzz/corpus-websocket
           work=$QTNOTIF_BUILD_DIR/fuzz/websocket-work-corpus; dictionary=() ;;
*) echo "unknown target $target (frames or websocket)" >&2; exit 2 ;;
esac
fuzzer=$QTNOTIF_BUILD_DIR/fuzz-build/fuzz/fuzz_$target
if [ ! -x "$fuzzer" ]; then
    echo "no fuzzer at $fuzzer: build it (scripts/fuzz.sh without --no-build), with" \
        "clang-14 and libfuzzer-14-dev installed" >&2
    exit 1
fi

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Reproducing: the inputs once each, nothing else, with AddressSanitizer's full stacks.
if [ ${#inputs[@]} -gt 0 ]; then
    exec "$fuzzer" "${inputs[@]}" "${extra[@]}"
fi
# Fuzzing: an input frees what it allocates within milliseconds, so a 16 MiB quarantine still
# catches its use-after-free, and 8 frames tell where freed memory came from. AddressSanitizer's
# defaults (256 MiB, 30 frames) halve the executions per second, and the process passed 1 GiB
# within ten minutes of fuzzing with them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:malloc_context_size=8}

artifacts=$QTNOTIF_BUILD_DIR/fuzz/artifacts
[ "$fresh" -eq 0 ] || rm -rf "$work"
mkdir -p "$work" "$artifacts"
options=(
    -max_total_time="$time"
    -max_len=4096   # a few dozen frames and commands: sequences, without slow inputs
    -timeout=10     # one input takes milliseconds; seconds mean a hang
    -rss_limit_mb=3072
    "${dictionary[@]}"
    -artifact_prefix="$artifacts/"
    -print_final_stats=1
)
if [ "$jobs" -gt 1 ]; then
    options+=(-fork="$jobs")
fi
log "Fuzzing for ${time} s; new inputs in $work, findings in $artifacts"
# The first directory receives new inputs; the seed corpus after it is only read.
cd "$artifacts"
exec "$fuzzer" "${options[@]}" "${extra[@]}" "$work" "$seeds"
