# Guest side of the virtio e2e tests (busybox sh in the L2 guest, run as
# /autorun by images/guest-init.sh).  virtio_e2e.py prepends the settings:
#   DISKS               "role:bytes ...": the sizes tell the disks apart; the
#                       role "ro" is read-only, the others writable
#   BLOCK               4 KiB block index the pattern is written to
#   TAG                 this run's nonce, part of the pattern and the hvc0 line
#   NICS                "role,mac,guest_ip,host_ip,prefix ...": the MACs tell
#                       the NICs apart; each pings its host address
#   WANT_HVC            1: write a line to /dev/hvc0
#   RESET_CYCLES        N: then unbind and rebind the virtio_blk and virtio_net
#                       drivers N times (the device is reset and re-activated)
#                       and read every disk and ping from every NIC again
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

nic_with_mac() {  # $1 = MAC; prints the virtio_net interface with it
    for n in /sys/class/net/*; do
        case "$(readlink "$n/device/driver" 2>/dev/null)" in
            */virtio_net) [ "$(cat "$n/address")" = "$1" ] && { echo "${n##*/}"; return; } ;;
        esac
    done
}

# The bus of the virtio device's parent: pci (virtio-pci) or platform
# (virtio-mmio, from the ACPI DSDT).  $1 = the virtio device's sysfs link.
transport_of() {
    basename "$(readlink -f "$1/../subsystem")"
}

# 1 when the driver negotiated packed virtqueues with the device, else 0:
# bit 34 (VIRTIO_F_RING_PACKED) of the virtio device's features, a string of
# 0s and 1s from bit 0.  $1 = the virtio device's sysfs link.
ring_packed() {
    cut -c35 "$1/features"
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
    say "${1}_transport=$(transport_of /sys/block/$dev/device)"
    say "${1}_packed=$(ring_packed /sys/block/$dev/device)"
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
    say "${1}_transport=$(transport_of /sys/block/$dev/device)"
    say "${1}_packed=$(ring_packed /sys/block/$dev/device)"
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

# Sum of one interrupt's counts over all CPUs; $1 = its name in
# /proc/interrupts (virtio-pci with MSI-X names one vector per queue).
irq_count() {
    awk -v name="$1" '$NF == name { n = 0; for (i = 2; i < NF; i++) if ($i ~ /^[0-9]+$/) n += $i; print n; f = 1 }
        END { if (!f) print -1 }' /proc/interrupts
}

ping_host() {  # $1 = key prefix, $2 = host, $3 = count, [taskset CPU list in $4]
    if [ -n "$4" ]; then
        taskset -c "$4" ping -c "$3" -i 0.2 -w 10 "$2" >/tmp/ping.out 2>&1
    else
        ping -c "$3" -i 0.2 -w 10 "$2" >/tmp/ping.out 2>&1
    fi
    rc=$?
    received=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.out)
    say "${1}_ping_rc=$rc ${1}_ping_received=${received:-0}"
    [ $rc = 0 ] || sed "s/^/SKIFF-E2E-LOG: $1 /" /tmp/ping.out
}

# One NIC: find it by MAC, address it, ping the host end of its tap.
check_nic() {  # $1 = role,mac,guest_ip,host_ip,prefix, $2 = key prefix
    set -- $(echo "$1" | tr , ' ') "$2"
    role=$1 mac=$2 guest=$3 host=$4 prefix=$5
    key=$6$role
    nic=$(nic_with_mac "$mac")
    say "${key}_nic=${nic:-none} ${key}_mac=$(cat /sys/class/net/$nic/address 2>/dev/null)"
    [ -n "$nic" ] || return
    say "${key}_transport=$(transport_of /sys/class/net/$nic/device)"
    say "${key}_packed=$(ring_packed /sys/class/net/$nic/device)"
    ip link set "$nic" up
    ip addr add "$guest/$prefix" dev "$nic"
    ping_host "$key" "$host" 3
    # Multi-queue: one ping per queue pair from the CPU whose transmit queue
    # it is (virtio_net sets XPS so CPU q sends on queue q), and the
    # interrupts of that pair's vectors, to show the pair carried it.
    nq=$(ls -d /sys/class/net/$nic/queues/rx-* 2>/dev/null | wc -l)
    say "${key}_rxq=$nq ${key}_txq=$(ls -d /sys/class/net/$nic/queues/tx-* 2>/dev/null | wc -l)"
    [ "$nq" -gt 1 ] || return
    vdev=$(basename "$(readlink -f /sys/class/net/$nic/device)")
    q=0
    while [ $q -lt "$nq" ]; do
        before=$(($(irq_count $vdev-input.$q) + $(irq_count $vdev-output.$q)))
        ping_host "${key}_q$q" "$host" 2 $q
        after=$(($(irq_count $vdev-input.$q) + $(irq_count $vdev-output.$q)))
        say "${key}_q${q}_irqs=$((after - before))"
        q=$((q + 1))
    done
    grep "$vdev" /proc/interrupts | sed "s/^/SKIFF-E2E-LOG: $key irq: /"
}

for d in $DISKS; do  # role:bytes; the role "ro" is the read-only disk
    role=${d%%:*}
    if [ "$role" = ro ]; then
        check_ro "$role" "${d#*:}"
    else
        check_rw "$role" "${d#*:}"
    fi
done

for n in $NICS; do
    check_nic "$n" ""
done

if [ "$WANT_HVC" = 1 ]; then
    if [ -c /dev/hvc0 ]; then
        say "hvc0=present"
        echo "SKIFF-E2E: hvc0_line=$TAG" >/dev/hvc0
    else
        say "hvc0=absent"
    fi
fi

# The status register of every virtio device we unbound, e.g.
# "virtio1=0x00000001,virtio2=0x00000001".
statuses() {
    s=""
    for x in $1; do
        s="$s,${x#*:}=$(cat /sys/bus/virtio/devices/${x#*:}/status 2>/dev/null)"
    done
    echo "${s#,}"
}

count_disks() { ls -d /sys/block/vd* 2>/dev/null | wc -l; }
count_nics() {
    n=0
    for i in /sys/class/net/*; do
        case "$(readlink "$i/device/driver" 2>/dev/null)" in */virtio_net) n=$((n + 1)) ;; esac
    done
    echo $n
}

# Unbind: the driver's remove resets the device (status 0), the core then
# sets ACKNOWLEDGE again (1).  Bind: a fresh probe negotiates and activates
# the queues again (ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK = 0xf).
reset_cycle() {  # $1 = cycle number
    p=reset$1
    devs=""
    for drv in virtio_blk virtio_net; do
        for d in /sys/bus/virtio/drivers/$drv/virtio*; do
            [ -e "$d" ] && devs="$devs $drv:${d##*/}"
        done
    done
    log_lines=$(dmesg | wc -l)
    for x in $devs; do
        echo "${x#*:}" >/sys/bus/virtio/drivers/${x%%:*}/unbind
    done
    say "${p}_unbound=$(echo $devs | wc -w) ${p}_disks_left=$(count_disks)" \
        "${p}_nics_left=$(count_nics) ${p}_unbound_status=$(statuses "$devs")"
    for x in $devs; do
        echo "${x#*:}" >/sys/bus/virtio/drivers/${x%%:*}/bind
    done
    say "${p}_disks=$(count_disks) ${p}_nics=$(count_nics)" \
        "${p}_bound_status=$(statuses "$devs")"
    for d in $DISKS; do
        role=${d%%:*}
        dev=$(disk_with_size "${d#*:}")
        say "${p}_${role}_disk=${dev:-none}"
        [ -n "$dev" ] || continue
        # Big direct reads: every request is a nested exit, and the page
        # cache must not answer.
        say "${p}_${role}_sha256=$(dd if=/dev/$dev bs=1M iflag=direct 2>/dev/null | sha)"
    done
    for n in $NICS; do
        check_nic "$n" "${p}_"
    done
    # Kernel complaints during the cycle (e.g. virtio core's WARN when the
    # status is not 0 after the driver's reset).
    dmesg | tail -n +$((log_lines + 1)) | grep -e WARNING -e BUG -e 'virtio.*\(fail\|error\)' \
        >/tmp/complaints
    say "${p}_kernel_complaints=$(wc -l </tmp/complaints)"
    sed "s/^/SKIFF-E2E-LOG: $p kernel: /" /tmp/complaints
}

c=1
while [ $c -le "${RESET_CYCLES:-0}" ]; do
    reset_cycle $c
    c=$((c + 1))
done

say "done=1"
