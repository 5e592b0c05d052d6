# Guest side of the virtio e2e tests (busybox sh in the L2 guest, run as
# /autorun by images/guest-init.sh).  virtio_e2e.py prepends the settings:
#   DISKS               "role:bytes ...": the sizes tell the disks apart; the
#                       role "ro" is read-only, the others writable
#   BLOCK               4 KiB block index the pattern is written to
#   TAG                 this run's nonce, part of the pattern and the hvc0 line
#   GUEST_IP HOST_IP PREFIX MAC   network (empty GUEST_IP: no network check)
#   WANT_HVC            1: write a line to /dev/hvc0
# Every result is a "SKIFF-E2E: key=value ..." line on the console; the
# checks themselves are made by virtio_e2e.py, which knows what to expect.

say() { echo "SKIFF-E2E: $*"; }

# The 4 KiB pattern: 128 lines of 32 bytes (virtio_e2e.py builds the same).
make_pattern() {
    i=0
    while [ $i -lt 128 ]; do
        printf '%-31s\n' "skiff-e2e $TAG $i"
        i=$((i + 1))
    done
}

disk_with_size() {  # $1 = bytes; prints vdX
    for d in /sys/block/vd*; do
        [ -e "$d/size" ] || continue
        [ $(($(cat "$d/size") * 512)) = "$1" ] && { echo "${d##*/}"; return; }
    done
}

sha() { sha256sum | cut -d' ' -f1; }

for d in /sys/block/vd*; do
    [ -e "$d/size" ] || continue
    say "disk=${d##*/} bytes=$(($(cat "$d/size") * 512)) ro=$(cat "$d/ro")"
done

# Writable disk: checksum, write the pattern, read it back from the device.
check_rw() {  # $1 = role, $2 = bytes
    dev=$(disk_with_size "$2")
    say "${1}_disk=${dev:-none}"
    [ -n "$dev" ] || return
    say "${1}_sha256=$(dd if=/dev/$dev bs=64k 2>/dev/null | sha)"
    make_pattern >/tmp/pattern
    dd if=/tmp/pattern of=/dev/$dev bs=4096 seek=$BLOCK count=1 conv=fsync,notrunc \
        2>/tmp/dd.err
    say "${1}_write_rc=$?"
    # Read the block back from the device, not from the page cache.
    sync
    echo 3 >/proc/sys/vm/drop_caches
    say "${1}_readback_sha256=$(dd if=/dev/$dev bs=4096 skip=$BLOCK count=1 \
        iflag=direct 2>/dev/null | sha)"
}

# Read-only disk: checksum, a write must fail, the contents stay.
check_ro() {  # $1 = role, $2 = bytes
    dev=$(disk_with_size "$2")
    say "${1}_disk=${dev:-none}"
    [ -n "$dev" ] || return
    say "${1}_getro=$(blockdev --getro /dev/$dev)"
    say "${1}_sha256=$(dd if=/dev/$dev bs=64k 2>/dev/null | sha)"
    make_pattern >/tmp/pattern
    dd if=/tmp/pattern of=/dev/$dev bs=4096 seek=$BLOCK count=1 conv=fsync,notrunc \
        2>/tmp/dd.err
    say "${1}_write_rc=$?"
    sync
    echo 3 >/proc/sys/vm/drop_caches
    say "${1}_after_sha256=$(dd if=/dev/$dev bs=64k iflag=direct 2>/dev/null | sha)"
}

for d in $DISKS; do  # role:bytes; the role "ro" is the read-only disk
    role=${d%%:*}
    if [ "$role" = ro ]; then
        check_ro "$role" "${d#*:}"
    else
        check_rw "$role" "${d#*:}"
    fi
done

if [ -n "$GUEST_IP" ]; then
    nic=""
    for n in /sys/class/net/*; do
        case "$(readlink "$n/device/driver" 2>/dev/null)" in
            */virtio_net) nic=${n##*/}; break ;;
        esac
    done
    say "nic=${nic:-none} mac=$(cat /sys/class/net/$nic/address 2>/dev/null)"
    if [ -n "$nic" ]; then
        ip link set "$nic" up
        ip addr add "$GUEST_IP/$PREFIX" dev "$nic"
        ping -c 3 -w 30 "$HOST_IP" >/tmp/ping.out 2>&1
        rc=$?
        received=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.out)
        say "ping_rc=$rc ping_received=${received:-0}"
        [ $rc = 0 ] || sed 's/^/SKIFF-E2E-LOG: /' /tmp/ping.out
    fi
fi

if [ "$WANT_HVC" = 1 ]; then
    if [ -c /dev/hvc0 ]; then
        say "hvc0=present"
        echo "SKIFF-E2E: hvc0_line=$TAG" >/dev/hvc0
    else
        say "hvc0=absent"
    fi
fi

say "done=1"
