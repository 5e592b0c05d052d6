#!/usr/bin/env bash
# Everything Skiff needs on a fresh Debian 12 machine: packages, a build,
# and the default guest image. Idempotent; re-runs take seconds.
# Sourced by demo.sh and test.sh; also runnable on its own.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${SKIFF_BUILD_DIR:-$ROOT/build}

skiff_packages() {
  grep -hv '^\s*#' "$ROOT/scripts/packages.txt" "$ROOT/images/deps-x86_64.txt" | awk 'NF'
}

skiff_install_packages() {
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
