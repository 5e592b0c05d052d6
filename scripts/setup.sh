#!/usr/bin/env bash
# Everything Skiff needs on a fresh Debian 12 machine: packages, a build,
# and the default guest image. Idempotent; re-runs take seconds.
# Sourced by demo.sh and test.sh; also runnable on its own.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${SKIFF_BUILD_DIR:-$ROOT/build}
ASAN_BUILD_DIR=${SKIFF_ASAN_BUILD_DIR:-$ROOT/build-asan}

skiff_packages() {
  grep -hv '^\s*#' "$ROOT/scripts/packages.txt" "$ROOT/images/deps-x86_64.txt" \
    "$ROOT/images/deps-arm64.txt" | awk 'NF'
}

# The ARM64 test host's kernel and busybox are arm64 packages that
# images/skiffimg.py downloads (never installs): apt must know the
# architecture and have its package lists.
skiff_add_arm64_architecture() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "setup: dpkg --add-architecture arm64" >&2
    $sudo dpkg --add-architecture arm64
  fi
  if ! ls /var/lib/apt/lists/*_binary-arm64_Packages* >/dev/null 2>&1; then
    $sudo apt-get update -qq
  fi
}

skiff_install_packages() {
  skiff_add_arm64_architecture
  local missing=()
  for p in $(skiff_packages); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

skiff_build() {
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" "$ROOT" -Dwerror=true >&2
  fi
  ninja -C "$BUILD_DIR" >&2
}

# The fuzz targets' corpus replay binaries (one per tests/fuzz/fuzz_*.cc).
skiff_fuzz_replay_targets() {
  local f
  for f in "$ROOT"/tests/fuzz/fuzz_*.cc; do
    f=$(basename "$f" .cc)
    echo "tests/fuzz/fuzz_replay_${f#fuzz_}"
  done
}

# Everything under AddressSanitizer + UndefinedBehaviorSanitizer (-Dsanitize=
# true), but only what test.sh runs there: the unit tests and the corpus
# replays. Unoptimised (-O0): the sanitizers check the same, and g++ then
# compiles the project about 4x faster than at -O2.
skiff_build_asan() {
  if [ ! -f "$ASAN_BUILD_DIR/build.ninja" ]; then
    meson setup "$ASAN_BUILD_DIR" "$ROOT" -Dwerror=true -Dsanitize=true -Dbuildtype=debug >&2
  fi
  # ccache (when installed, Meson uses it) may reuse objects compiled in
  # another checkout (CI clones afresh): hash paths relative to the root.
  # shellcheck disable=SC2046
  CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1 \
    ninja -C "$ASAN_BUILD_DIR" tests/unit/unit_tests $(skiff_fuzz_replay_targets) >&2
}

skiff_guest_image() {
  # Prints two lines: the guest kernel and initramfs paths.
  "$ROOT/images/build-guest.sh" x86_64
}

# Can this host's /dev/kvm boot Linux directly? Nested PVM hosts cannot
# (DESIGN.md §5); the demo then uses the test host.
skiff_host_boots_linux() {
  [ -e /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  skiff_install_packages
  skiff_build
  skiff_guest_image
fi
