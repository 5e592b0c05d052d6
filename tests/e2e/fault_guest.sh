# Guest side of tests/e2e/fault_e2e.py (busybox sh in the L2 guest, run as
# /autorun).  fault_e2e.py prepends the settings:
#   TAG                 this run's nonce, part of every block written
#   GOOD, FULL, RAW     the sizes in bytes of the three disks: GOOD on L1's
#                       root, FULL on a full 1 MiB tmpfs (its writes fail
#                       with ENOSPC), RAW the one reset behind the driver's back
#   BLOCK               4 KiB block of GOOD written before the faults
#   A_FIRST, A_COUNT    GOOD's blocks written while its driver is unbound
#   B_COUNT             RAW's blocks written while its status is set to 0
#   MAC, GUEST_IP, HOST_IP, PREFIX   the NIC, pinging its tap
# Results are "SKIFF-E2E: key=value" lines; fault_e2e.py judges them.  The
# script ends by sleeping: L1 stops Skiff with SIGTERM.

say() { echo "SKIFF-E2E: $*"; }
sha() { sha256sum | cut -d' ' -f1; }

disk_with_size() {  # $1 = bytes; prints vdX
    for d in /sys/block/vd*; do
        [ -e "$d/size" ] || continue
        [ $(($(cat "$d/size") * 512)) = "$1" ] && { echo "${d##*/}"; return; }
    done
}

nic_with_mac() {  # $1 = MAC
    for n in /sys/class/net/*; do
        case "$(readlink "$n/device/driver" 2>/dev/null)" in
            */virtio_net) [ "$(cat "$n/address")" = "$1" ] && { echo "${n##*/}"; return; } ;;
        esac
    done
}

# Block N of the run: one line padded to 4 KiB (fault_e2e.py's numbered_block).
block() { printf '%-4095s\n' "skiff-e2e $TAG $1"; }

good=$(disk_with_size "$GOOD")
full=$(disk_with_size "$FULL")
raw=$(disk_with_size "$RAW")
nic=$(nic_with_mac "$MAC")
say "good_disk=${good:-none} full_disk=${full:-none} raw_disk=${raw:-none} nic=${nic:-none}"

# --- A disk whose writes fail -------------------------------------------
block full >/tmp/b
log_lines=$(dmesg | wc -l)
dd if=/tmp/b of=/dev/$full bs=4096 seek=100 count=1 oflag=direct conv=notrunc 2>/dev/null
say "full_direct_rc=$?"
# A buffered write succeeds into the page cache; its fsync must fail.
dd if=/tmp/b of=/dev/$full bs=4096 seek=200 count=1 conv=fsync,notrunc 2>/dev/null
say "full_fsync_rc=$?"
say "full_ioerr_logged=$(dmesg | tail -n +$((log_lines + 1)) | grep -c "I/O error, dev $full")"
echo 3 >/proc/sys/vm/drop_caches
say "full_read_sha256=$(dd if=/dev/$full bs=64k iflag=direct 2>/dev/null | sha)"
# The other disk is unaffected.
block good >/tmp/b
dd if=/tmp/b of=/dev/$good bs=4096 seek=$BLOCK count=1 conv=fsync,notrunc 2>/dev/null
say "good_write_rc=$?"
say "good_readback_sha256=$(dd if=/dev/$good bs=4096 skip=$BLOCK count=1 iflag=direct 2>/dev/null | sha)"

# --- A tap whose peer vanishes ------------------------------------------
ip link set "$nic" up
ip addr add "$GUEST_IP/$PREFIX" dev "$nic"
ping -c 3 -i 0.2 -w 10 "$HOST_IP" >/tmp/ping.out 2>&1
say "net_ping_received=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.out)"
say "tap_down_please=1"
# Keep sending while L1 takes the tap down and deletes it.
ping -c 30 -i 0.2 -w 8 "$HOST_IP" >/tmp/ping.out 2>&1
say "net_after_ping_done=1"
say "after_tap_good_sha256=$(dd if=/dev/$good bs=64k iflag=direct 2>/dev/null | sha)"

# --- A driver unbound mid-write ----------------------------------------
# Each block is written with O_DIRECT: dd returning 0 means the device
# acknowledged it; fault_e2e.py checks that every acknowledged block is in
# the image file.
# The device stays open on fd 3 and dd writes through /proc/self/fd/3: once the
# driver is unbound its node is gone, and dd must fail rather than create a
# plain file /dev/vdX (which would hide the node the rebind makes).
writer() {  # $1 = dev, $2 = first block, $3 = count, $4 = key prefix, $5 = block tag prefix
    exec 3<>/dev/$1 || { say "${4}_writer_end=open-failed"; return; }
    i=0
    while [ $i -lt $3 ]; do
        block "$5$i" >/tmp/w$4
        dd if=/tmp/w$4 of=/proc/self/fd/3 bs=4096 seek=$(($2 + i)) count=1 oflag=direct \
            conv=notrunc 2>/dev/null || break
        say "${4}_acked_$i=1"
        i=$((i + 1))
    done
    exec 3<&-
    say "${4}_writer_end=$i"
}
vdev=$(basename "$(readlink -f /sys/block/$good/device)")
writer "$good" "$A_FIRST" "$A_COUNT" a a &
wpid=$!
sleep 0.3
kill -0 $wpid 2>/dev/null && running=1 || running=0
echo "$vdev" >/sys/bus/virtio/drivers/virtio_blk/unbind
say "a_writer_running_at_unbind=$running a_unbind_status=$(cat /sys/bus/virtio/devices/$vdev/status)"
wait $wpid
echo "$vdev" >/sys/bus/virtio/drivers/virtio_blk/bind
good=$(disk_with_size "$GOOD")
say "a_rebound_disk=${good:-none}"
# For the log: what the guest sees of the rebound disk.
ls -l /dev/vd* 2>&1 | sed 's/^/SKIFF-E2E-LOG: a dev: /'
dd if=/dev/$good of=/dev/null bs=4096 count=1 iflag=direct 2>&1 | sed 's/^/SKIFF-E2E-LOG: a dd: /'
dmesg | tail -n 15 | sed 's/^/SKIFF-E2E-LOG: a kernel: /'
i=0
while [ $i -lt "$A_COUNT" ] && [ -n "$good" ]; do
    say "a_read_$i=$(dd if=/dev/$good bs=4096 skip=$(($A_FIRST + i)) count=1 iflag=direct 2>/dev/null | sha)"
    i=$((i + 1))
done

# --- A device reset behind the driver's back ----------------------------
# Status 0 written into the device's common configuration while writes are
# in flight, through the VIRTIO_PCI_CAP_PCI_CFG window in config space (the
# kernel's IO_STRICT_DEVMEM keeps /dev/mem off a BAR a driver claimed): the
# driver never learns, its outstanding requests never complete; Skiff must
# carry on.
cfg=$(readlink -f /sys/block/$raw/device/..)/config
cfg_byte() { od -An -tu1 -j "$1" -N1 "$cfg" | tr -d ' '; }
cfg_u32() { od -An -tu4 -j "$1" -N4 "$cfg" | tr -d ' '; }
put_byte() {  # $1 = offset, $2 = value
    printf "\\$(printf %o "$2")" | dd of="$cfg" bs=1 seek="$1" count=1 conv=notrunc 2>/dev/null
}
put_u32() {  # little-endian
    put_byte "$1" $(($2 & 255)); put_byte $(($1 + 1)) $((($2 >> 8) & 255))
    put_byte $(($1 + 2)) $((($2 >> 16) & 255)); put_byte $(($1 + 3)) $((($2 >> 24) & 255))
}
common=0 window=0
p=$(cfg_byte 52)  # capabilities pointer
while [ -n "$p" ] && [ "$p" != 0 ]; do
    if [ "$(cfg_byte $p)" = 9 ]; then  # vendor-specific: a virtio capability
        case "$(cfg_byte $((p + 3)))" in
            1) common=$p ;;   # VIRTIO_PCI_CAP_COMMON_CFG
            5) window=$p ;;   # VIRTIO_PCI_CAP_PCI_CFG
        esac
    fi
    p=$(cfg_byte $((p + 1)))
done
# Aim the window at device_status (common configuration + 0x14), 1 byte.
status_at=$(($(cfg_u32 $((common + 8))) + 20))
aim_window() {
    put_byte $((window + 4)) "$(cfg_byte $((common + 4)))"
    put_u32 $((window + 8)) $status_at
    put_u32 $((window + 12)) 1
}
say "raw_common_cap=$common raw_window_cap=$window raw_status_before=$(aim_window; cfg_byte $((window + 16)))"
writer "$raw" 0 "$B_COUNT" b b &
sleep 0.3
aim_window
put_byte $((window + 16)) 0
say "b_reset_done=1 b_status_after=$(aim_window; cfg_byte $((window + 16)))"
sleep 2
# The good disk still answers.
say "b_good_sha256_after=$(dd if=/dev/$good bs=4096 skip=$BLOCK count=1 iflag=direct 2>/dev/null | sha)"
say "done=1"
# L1 stops Skiff now (SIGTERM); the stuck writer never returns.
sleep 600
