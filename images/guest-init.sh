#!/bin/sh
# /init of the Skiff L2 guest initramfs (busybox sh).  Built by
# images/build-guest.sh; see tests/testhost/README.md.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TERM=${TERM:-vt100}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null

# Modules: dependencies first (load-order is computed at build time).
failed=""
loaded=0
if [ -f /lib/modules/load-order ]; then
    for m in $(cat /lib/modules/load-order); do
        if insmod /lib/modules/$m.ko 2>/tmp/insmod.err; then
            loaded=$((loaded + 1))
        else
            failed="$failed $m"
            echo "SKIFF-GUEST: insmod $m failed: $(cat /tmp/insmod.err)"
        fi
    done
fi
rm -f /tmp/insmod.err

# A multiport virtio console (QEMU's virtio-serial) adds its ports from a
# workqueue after the driver probed: give hvc0 a moment to appear.
for d in /sys/bus/virtio/devices/*; do
    [ "$(cat "$d/device" 2>/dev/null)" = 0x0003 ] && want_hvc=1
done
i=0
while [ -n "$want_hvc" ] && [ ! -c /dev/hvc0 ] && [ $i -lt 30 ]; do
    sleep 0.1
    i=$((i + 1))
done

# The kernel opened /dev/console for us before any module was loaded. With
# console=hvc0 the virtio console only exists now (virtio_console is a
# module), so that open failed or fell back to another console: reopen it.
# Test the open in a subshell first, since a failed `exec` redirection
# would end this shell.
if (: </dev/console >/dev/console) 2>/dev/null; then
    exec </dev/console >/dev/console 2>&1
elif ! [ -e /proc/self/fd/1 ] && (: >/dev/ttyS0) 2>/dev/null; then
    exec </dev/ttyS0 >/dev/ttyS0 2>&1
fi
echo "SKIFF-GUEST: modules loaded=$loaded failed=${failed:- none}"

# What the virtio drivers found (one line, for tests and humans).
disks=$(echo $(cd /sys/block 2>/dev/null && ls -d vd* 2>/dev/null))
nics=""
for n in /sys/class/net/*; do
    case "$(readlink "$n/device/driver" 2>/dev/null)" in
        */virtio_net) nics="$nics ${n##*/}" ;;
    esac
done
nics=$(echo $nics)
hvc=""
[ -c /dev/hvc0 ] && hvc=hvc0
echo "SKIFF-GUEST: virtio disks=${disks:-none} nics=${nics:-none} console=${hvc:-none}"
# A virtio console says hello on its own port, whatever the kernel console is.
[ -n "$hvc" ] && echo "SKIFF-GUEST: hello from hvc0" >/dev/hvc0

mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)
echo "SKIFF-GUEST: cpus=$(nproc) mem_kb=$mem_kb kernel=$(uname -r)"

# Short self-check.
why=""
[ -e /proc/self/stat ] || why="$why /proc-not-mounted"
[ -d /sys/devices/system/cpu ] || why="$why /sys-not-mounted"
[ -c /dev/null ] || why="$why no-/dev/null"
online=$(cat /sys/devices/system/cpu/online 2>/dev/null)
[ -n "$online" ] || why="$why no-cpu-online-list"
ncpu=$(grep -c '^processor' /proc/cpuinfo)
[ "$ncpu" = "$(nproc)" ] || why="$why cpuinfo=$ncpu!=nproc=$(nproc)"
echo hello > /tmp/.selfcheck && [ "$(cat /tmp/.selfcheck)" = hello ] \
    || why="$why rootfs-not-writable"
rm -f /tmp/.selfcheck
if [ -z "$why" ]; then
    echo "SKIFF-GUEST: self-check ok (cpus-online=$online)"
else
    echo "SKIFF-GUEST: self-check FAILED:$why"
fi

if [ -f /autorun ]; then
    echo "SKIFF-GUEST: running /autorun"
    sh /autorun
    echo "SKIFF-GUEST: autorun exit=$?"
elif grep -qw 'skiff.shell=1' /proc/cmdline; then
    echo "SKIFF-GUEST: shell (exit to power off)"
    setsid cttyhack sh -l
fi
echo "SKIFF-GUEST: poweroff"
poweroff -f
# Without an ACPI power-off path the kernel returns here: init exits, the
# kernel panics and panic=-1 plus reboot=k reset the machine.
sleep 1
exit 0
