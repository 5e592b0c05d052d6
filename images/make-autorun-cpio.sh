#!/bin/sh
# Wrap SCRIPT as /autorun (mode 0755) in a gzip'd newc cpio, to append to the
# guest initramfs:  cat initramfs.cpio.gz OUT.cpio.gz > combined.cpio.gz
# Usage: images/make-autorun-cpio.sh SCRIPT OUT.cpio.gz
set -e
if [ $# -ne 2 ]; then
    echo "usage: $0 SCRIPT OUT.cpio.gz" >&2
    exit 2
fi
exec python3 "$(dirname "$0")/skiffimg.py" autorun "$1" "$2"
