#!/usr/bin/env bash
# Set up from scratch (packages, build, guest image), then run every test:
# unit, integration (tiny guests on this /dev/kvm), e2e (Linux guests in the
# QEMU test host), e2e-vfio (an e1000e passed through with VFIO in the
# x86_64-vfio test host), e2e-arm64 (the cross-built aarch64 skiff in the
# ARM64 test host) and the fuzz corpus replays; then the unit tests and the replays
# again in build-asan/, under ASan + UBSan; then the arm64 unit tests under
# qemu-user. Ends with the line CI reads: `N passed, N failed, ...`, summed
# over the three builds.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/setup.sh"

skiff_install_packages
skiff_build
skiff_guest_image >/dev/null

# The aarch64 skiff for e2e-arm64 ($ARM64_BUILD_DIR/skiff, which the build's
# -Darm64_skiff option names). If it does not build, its tests FAIL.
arm64_status=0
arm64_start=$SECONDS
{ skiff_install_arm64_packages && skiff_build_arm64; } || arm64_status=$?
echo "test.sh: the arm64 cross build took $((SECONDS - arm64_start)) s" >&2

if [ ! -e /dev/kvm ]; then
  echo "test.sh: WARNING: this machine has no /dev/kvm: integration and e2e tests will FAIL" >&2
fi
# e2e-vfio's L2 guest runs Debian's generic kernel (linux-image-amd64: the
# cloud kernel has no e1000e driver); the test host would build it too, but
# a machine that cannot get it should say so before the suite fails on it.
if ! "$ROOT/images/build-guest.sh" x86_64-generic >/dev/null; then
  echo "test.sh: WARNING: the x86_64-generic guest image (linux-image-amd64) cannot be" \
    "built: e2e-vfio will FAIL" >&2
fi

status=$arm64_status
e2e_start=$SECONDS
meson test -C "$BUILD_DIR" --print-errorlogs \
  --suite unit --suite integration --suite e2e --suite e2e-vfio --suite e2e-arm64 \
  --suite fuzz-replay || status=$?
echo "test.sh: unit, integration, e2e, e2e-vfio, e2e-arm64 and fuzz-replay took" \
  "$((SECONDS - e2e_start)) s" >&2

# The sanitizer build compiles the project once more (ccache makes repeats
# cheap); it only runs what needs no KVM.
asan_start=$SECONDS
skiff_build_asan || status=1
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  meson test -C "$ASAN_BUILD_DIR" --no-rebuild --print-errorlogs \
    --suite unit --suite fuzz-replay || status=$?
echo "test.sh: sanitizer build and tests took $((SECONDS - asan_start)) s" >&2

# ARM64 unit tests (built with the arm64 skiff above), run here under
# qemu-aarch64-static (the cross file's exe_wrapper).
arm64_start=$SECONDS
meson test -C "$ARM64_BUILD_DIR" --no-rebuild --print-errorlogs --suite unit || status=$?
echo "test.sh: arm64 unit tests took $((SECONDS - arm64_start)) s" >&2

python3 "$ROOT/scripts/count_results.py" "$BUILD_DIR/meson-logs/testlog.junit.xml" \
  "$ASAN_BUILD_DIR/meson-logs/testlog.junit.xml" \
  "$ARM64_BUILD_DIR/meson-logs/testlog.junit.xml" || status=1
exit $status
