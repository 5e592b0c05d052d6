#!/bin/sh
# /init of the test host's L1 initramfs (busybox sh).  Packed by
# tests/testhost/testhost.py; the per-run layer supplies /testhost/env and
# /testhost/cmd.  Everything the harness parses starts with "@@TESTHOST-"
# plus the run's nonce, or with "TESTHOST FAILURE:".
export PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin HOME=/root TMPDIR=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /dev/net /tmp /run
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm 2>/dev/null

. /testhost/env

fail() {
    echo "TESTHOST FAILURE: $*"
    echo "@@TESTHOST-ABORT $TESTHOST_NONCE"
    poweroff -f
    sleep 5
    exit 1
}

[ -f /testhost/cmd ] || fail "L1 initramfs has no /testhost/cmd (per-run layer missing)"

# Keep L1 kernel messages off the console while the command runs.
echo "${TESTHOST_PRINTK:-1}" > /proc/sys/kernel/printk

# Modules: the harness wrote them in dependency order.  Optional ones (tun,
# vhost, bridge...) may be missing; a failure is reported, not fatal.
errs=""
for m in $(cat /lib/modules/load-order 2>/dev/null); do
    if ! insmod /lib/modules/$m.ko 2>/tmp/.insmod; then
        errs="$errs $m:$(tr '\n' ' ' </tmp/.insmod)"
    fi
done
rm -f /tmp/.insmod
[ -n "$errs" ] && echo "testhost: insmod failures:$errs"

if [ -n "$TESTHOST_NEED_KVM" ] && [ ! -c /dev/kvm ]; then
    svm=$(grep -cw svm /proc/cpuinfo)
    vmx=$(grep -cw vmx /proc/cpuinfo)
    # arm64: KVM is built in and says why it is off (no EL2, no GIC...).
    kvmlog=$(dmesg | grep -i kvm | tail -3 | tr '\n' ' ')
    fail "no /dev/kvm in L1 (cpus with svm=$svm vmx=$vmx; insmod errors:${errs:- none}; kernel: ${kvmlog:-nothing about kvm})"
fi

ip link set lo up 2>/dev/null
[ -n "$TESTHOST_LD_PATH" ] && export LD_LIBRARY_PATH="$TESTHOST_LD_PATH"
export SKIFF=/usr/local/bin/skiff GUEST_KERNEL=/guest/vmlinuz \
    GUEST_INITRD=/guest/initramfs.cpio.gz

cd /root
echo "@@TESTHOST-BEGIN $TESTHOST_NONCE uptime=$(cut -d' ' -f1 /proc/uptime)"
sh -c "$(cat /testhost/cmd)" </dev/null
rc=$?
echo "@@TESTHOST-END $TESTHOST_NONCE rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
sleep 5
