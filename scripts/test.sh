#!/usr/bin/env bash
# Set up from scratch (packages, build, guest image), then run every test:
# unit, integration (tiny guests on this /dev/kvm) and e2e (Linux guests in
# the QEMU test host). Ends with the line CI reads: `N passed, N failed, ...`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/setup.sh"

skiff_install_packages
skiff_build
skiff_guest_image >/dev/null

if [ ! -e /dev/kvm ]; then
  echo "test.sh: WARNING: this machine has no /dev/kvm: integration and e2e tests will FAIL" >&2
fi

status=0
meson test -C "$BUILD_DIR" --print-errorlogs \
  --suite unit --suite integration --suite e2e || status=$?
python3 "$ROOT/scripts/count_results.py" "$BUILD_DIR/meson-logs/testlog.junit.xml" || status=1
exit $status
