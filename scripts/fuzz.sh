#!/usr/bin/env bash
# Builds one libFuzzer target with clang (ASan + UBSan, coverage on every
# Skiff object) in build-fuzz/ and runs it for SECONDS, starting from its
# checked-in corpus. New interesting inputs go to build-fuzz/corpus/TARGET
# (not the checked-in seeds); crashes to build-fuzz/crashes/TARGET.
#
#   scripts/fuzz.sh TARGET SECONDS [extra libFuzzer flags...]
#   scripts/fuzz.sh list
#
# Targets: tests/fuzz/fuzz_TARGET.cc. A crash reproduces with
#   build-fuzz/tests/fuzz/fuzz_TARGET CRASH_FILE
# and, once fixed, belongs in tests/fuzz/corpus/TARGET/ as a regression seed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SKIFF_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}

targets() {
  (cd "$ROOT/tests/fuzz" && ls fuzz_*.cc | sed 's/^fuzz_//; s/\.cc$//')
}

if [ "${1:-}" = "list" ]; then
  targets
  exit 0
fi
if [ $# -lt 2 ]; then
  echo "usage: $0 TARGET SECONDS [libFuzzer flags...] | $0 list" >&2
  exit 2
fi
target=$1
seconds=$2
shift 2
if ! targets | grep -qx "$target"; then
  echo "fuzz.sh: no target '$target'; one of: $(targets | tr '\n' ' ')" >&2
  exit 2
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  # Not -Dwerror: clang warns about things g++ does not, and this build
  # only exists to fuzz.
  CC="ccache clang" CXX="ccache clang++" \
    meson setup "$BUILD" "$ROOT" -Dsanitize=true -Dfuzzing=true -Dbuildtype=debugoptimized >&2
fi
ninja -C "$BUILD" "tests/fuzz/fuzz_$target" >&2

corpus=$BUILD/corpus/$target
crashes=$BUILD/crashes/$target
mkdir -p "$corpus" "$crashes"
# Leaks: every target frees what it makes; a leak report is a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$crashes"
exec "$BUILD/tests/fuzz/fuzz_$target" \
  -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$crashes/" "$@" "$corpus" "$ROOT/tests/fuzz/corpus/$target"
