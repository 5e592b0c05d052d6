#!/bin/sh
# Build (or reuse) the Skiff L2 guest image: Debian's cloud kernel and a
# small busybox initramfs.  Usage: images/build-guest.sh [x86_64]
# Cache: ${SKIFF_CACHE:-$HOME/.cache/skiff}/guest-<arch>/ keyed by the kernel
# package version and these scripts.  Prints the vmlinuz and initramfs paths.
set -e
exec python3 "$(dirname "$0")/skiffimg.py" guest "${1:-x86_64}"
