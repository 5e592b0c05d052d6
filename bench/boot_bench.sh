#!/usr/bin/env bash
# Boot benchmark, Skiff beside QEMU in the same test-host run (not a test).
# Usage: bench/boot_bench.sh [RUNS]   (after scripts/setup.sh has built Skiff)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-3}
python3 "$ROOT/tests/testhost/testhost.py" run --arch x86_64 --with-qemu \
  --skiff "$ROOT/build/skiff" --timeout 900 \
  --put "$ROOT/bench/l1-boot-bench.sh:/bench/l1-boot-bench.sh" -- \
  "RUNS=$RUNS sh /bench/l1-boot-bench.sh" | grep -a '^BENCH'
