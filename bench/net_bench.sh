#!/usr/bin/env bash
# NIC benchmark: a passed-through e1000e (VFIO) against virtio-net, Skiff
# beside QEMU in the same x86_64-vfio test-host run (not a test).
# Usage: bench/net_bench.sh [net_bench.py options]   e.g. --rounds 3 --secs 5
# From a fresh clone: installs the packages (scripts/setup.sh and
# bench/deps-x86_64.txt), builds Skiff, then runs bench/net_bench.py, which
# builds the test host and its guest images on first use. The raw output
# goes to bench/results/net-<date>-<time>.log unless --log is given.
# See docs/benchmarks.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../scripts/setup.sh
source "$ROOT/scripts/setup.sh"
skiff_install_packages
missing=$(grep -v '^\s*#' "$ROOT/bench/deps-x86_64.txt" | awk 'NF' |
  while read -r p; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
  echo "net_bench: installing" $missing >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing >/dev/null
fi
skiff_build
log=()
case " $* " in
  *" --log "* | *" --from-log "* | *" --print-command "*) ;;
  *) log=(--log "$ROOT/bench/results/net-$(date -u +%Y-%m-%d-%H%M).log") ;;
esac
exec python3 "$ROOT/bench/net_bench.py" --skiff "$BUILD_DIR/skiff" "${log[@]}" "$@"
