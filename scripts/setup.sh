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
    # -Darm64_skiff: what the e2e-arm64 suite runs (skiff_build_arm64 below).
    meson setup "$BUILD_DIR" "$ROOT" -Dwerror=true -Darm64_skiff="$ARM64_BUILD_DIR/skiff" >&2
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

# ARM64 cross build (cross/aarch64-linux-gnu.ini): Debian's cross compiler,
# the arm64 libraries through multiarch, qemu-user to run the unit tests.
ARM64_BUILD_DIR=${SKIFF_ARM64_BUILD_DIR:-$ROOT/build-arm64}
# libfdt-dev cannot be installed for two architectures at once (it is not
# Multi-Arch: same; installing the arm64 one removes the amd64 one), so the
# arm64 copy is unpacked here instead of installed.
ARM64_SYSROOT=${SKIFF_ARM64_SYSROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/skiff/sysroot-arm64}

skiff_arm64_packages() {
  echo g++-aarch64-linux-gnu qemu-user-static
  local p
  for p in libabsl-dev libre2-dev libgtest-dev libgmock-dev zlib1g-dev libseccomp-dev libfdt1; do
    echo "$p:arm64"
  done
}

skiff_install_arm64_packages() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "setup: adding the arm64 architecture (multiarch)" >&2
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
  fi
  local missing=()
  for p in $(skiff_arm64_packages); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >&2
  fi
  if [ ! -f "$ARM64_SYSROOT/usr/lib/aarch64-linux-gnu/libfdt.a" ]; then
    local tmp
    tmp=$(mktemp -d)
    echo "setup: unpacking libfdt-dev:arm64 into $ARM64_SYSROOT" >&2
    # (apt may warn that it downloads unsandboxed as root: harmless.)
    (cd "$tmp" && apt-get download -qq libfdt-dev:arm64 >&2)
    mkdir -p "$ARM64_SYSROOT"
    dpkg-deb -x "$tmp"/libfdt-dev_*_arm64.deb "$ARM64_SYSROOT"
    # Only the static library: the .so link points at a file not unpacked.
    rm -f "$ARM64_SYSROOT/usr/lib/aarch64-linux-gnu/libfdt.so"
    rm -rf "$tmp"
  fi
}

skiff_build_arm64() {
  if [ ! -f "$ARM64_BUILD_DIR/build.ninja" ]; then
    meson setup "$ARM64_BUILD_DIR" "$ROOT" -Dwerror=true \
      --cross-file "$ROOT/cross/aarch64-linux-gnu.ini" \
      -Dfdt_libdir="$ARM64_SYSROOT/usr/lib/aarch64-linux-gnu" >&2
  fi
  # skiff and the unit tests only: the integration tests and fuzz replays
  # need this machine's /dev/kvm or add nothing arm64-specific.
  CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1 \
    ninja -C "$ARM64_BUILD_DIR" skiff tests/unit/unit_tests >&2
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
