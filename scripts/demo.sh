#!/usr/bin/env bash
# Install what Skiff needs, build it, prepare the default guest (Debian's
# cloud kernel + a busybox initramfs) and boot it. Interactive when stdin is
# a terminal (a shell in the guest; Ctrl-A x quits), otherwise the guest
# prints its banner and powers off. Extra arguments go to `skiff run`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/setup.sh"

skiff_install_packages
skiff_build
mapfile -t guest < <(skiff_guest_image)
kernel=${guest[0]}
initramfs=${guest[1]}
cmdline="console=ttyS0 reboot=k panic=-1"
[ -t 0 ] && cmdline+=" skiff.shell=1"

if skiff_host_boots_linux; then
  echo "demo: booting the guest directly on this host's /dev/kvm" >&2
  exec "$BUILD_DIR/skiff" run --kernel "$kernel" --initramfs "$initramfs" \
    --cpus 2 --memory 256M --cmdline "$cmdline" "$@"
fi

echo "demo: this host's /dev/kvm is a nested PVM KVM, which cannot boot an" >&2
echo "demo: unmodified Linux kernel; booting inside the QEMU test host instead" >&2
echo "demo: (tests/testhost: an L1 Debian kernel under TCG with real KVM)." >&2
exec python3 "$ROOT/tests/testhost/testhost.py" run --arch x86_64 \
  --skiff "$BUILD_DIR/skiff" --timeout 300 -- \
  "skiff run --kernel /guest/vmlinuz --initramfs /guest/initramfs.cpio.gz --cpus 2 --memory 256M --cmdline 'console=ttyS0 reboot=k panic=-1' $*"
