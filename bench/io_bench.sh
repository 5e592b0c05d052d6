#!/usr/bin/env bash
# virtio I/O benchmark, Skiff beside QEMU in the same test-host run (not a test).
# Usage: bench/io_bench.sh [io_bench.py options]   e.g. --rounds 3 --secs 5
# (after scripts/setup.sh has built Skiff).  Installs fio and iperf3 from
# Debian when they are missing; see docs/benchmarks.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
missing=$(grep -v '^\s*#' "$ROOT/bench/deps-x86_64.txt" | awk 'NF' |
  while read -r p; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "io_bench: installing" $missing >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
fi
exec python3 "$ROOT/bench/io_bench.py" --skiff "$ROOT/build/skiff" "$@"
