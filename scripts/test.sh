#!/usr/bin/env bash
# Set up from scratch (packages, build, guest image), then run every test:
# unit, integration (tiny guests on this /dev/kvm), e2e (Linux guests in the
# QEMU test host) and the fuzz corpus replays; then the unit tests and the
# replays again in build-asan/, under ASan + UBSan. Ends with the line CI
# reads: `N passed, N failed, ...`, summed over both builds.
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
  --suite unit --suite integration --suite e2e --suite e2e-vfio --suite fuzz-replay || status=$?

# The sanitizer build compiles the project once more (ccache makes repeats
# cheap); it only runs what needs no KVM.
asan_start=$SECONDS
skiff_build_asan || status=1
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  meson test -C "$ASAN_BUILD_DIR" --no-rebuild --print-errorlogs \
    --suite unit --suite fuzz-replay || status=$?
echo "test.sh: sanitizer build and tests took $((SECONDS - asan_start)) s" >&2

python3 "$ROOT/scripts/count_results.py" "$BUILD_DIR/meson-logs/testlog.junit.xml" \
  "$ASAN_BUILD_DIR/meson-logs/testlog.junit.xml" || status=1
exit $status
