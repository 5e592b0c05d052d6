#!/bin/sh
# Guest side of the I/O benchmark (busybox sh in the L2 guest, run as
# /autorun by images/guest-init.sh; bench/io_bench.py packs it with fio and
# iperf3).  What to run comes from the kernel command line:
#   bench.mode=blk|net   bench.secs=N (seconds per test)
#   bench.host=IP bench.guest=IP bench.prefix=N   (net)
#   bench.driver=D    the NIC to use, by driver (net; virtio_net unless given,
#                     e1000e for the passed-through NIC of bench/net_bench.py)
#   bench.port=N      iperf3's server port (net; 5201 unless given)
#   bench.ping=1      also ping the server as fast as it answers (net)
# Every figure is one "BENCH-RESULT test=<name> value=<number> unit=<unit>"
# line on the console; a failure is a "BENCH-RESULT test=<name> error=<why>"
# line.  io_bench.py collects them.

arg() {  # the value of kernel argument $1
    for w in $(cat /proc/cmdline); do
        case $w in "$1="*) echo "${w#*=}"; return ;; esac
    done
}
MODE=$(arg bench.mode)
SECS=$(arg bench.secs)
SECS=${SECS:-5}

result() { echo "BENCH-RESULT test=$1 value=$2 unit=$3"; }
failed() { echo "BENCH-RESULT test=$1 error=$2"; }

# --- virtio-blk: fio on the whole raw device, O_DIRECT (no guest page cache),
# libaio so several requests are in flight.  --thread: no SysV shared memory.
run_fio() {  # $1 = name, $2 = rw, $3 = block size, $4 = queue depth
    fio --name="$1" --filename="/dev/$DISK" --rw="$2" --bs="$3" --iodepth="$4" \
        --ioengine=libaio --direct=1 --thread --time_based --runtime="$SECS" \
        --ramp_time=1 --minimal >/tmp/fio.out 2>/tmp/fio.err
    rc=$?
    # Terse format v3: field 7/8 read KiB/s and IOPS, 48/49 write KiB/s and IOPS.
    line=$(grep '^3;' /tmp/fio.out | head -1)
    if [ $rc != 0 ] || [ -z "$line" ]; then
        failed "$1" "fio-rc=$rc:$(head -c 200 /tmp/fio.err | tr ' \n' '_ ')"
        return
    fi
    echo "$line" | awk -F';' -v n="$1" -v rw="$2" '{
        kib = (rw ~ /write/) ? $48 : $7; iops = (rw ~ /write/) ? $49 : $8
        if (n ~ /^seq/) printf "BENCH-RESULT test=%s value=%.1f unit=MB/s\n", n, kib * 1024 / 1e6
        else printf "BENCH-RESULT test=%s value=%.0f unit=IOPS\n", n, iops }'
}

bench_blk() {
    DISK=""
    for d in /sys/block/vd*; do [ -e "$d/size" ] && { DISK=${d##*/}; break; }; done
    if [ -z "$DISK" ]; then
        failed blk no-virtio-disk
        return
    fi
    echo "BENCH-INFO disk=$DISK bytes=$(($(cat /sys/block/$DISK/size) * 512))"
    run_fio seqread read 1M 8
    run_fio seqwrite write 1M 8
    run_fio randread randread 4k 32
    run_fio randwrite randwrite 4k 32
}

# --- virtio-net: iperf3 against the server the test host runs on the tap.
iperf_line() {  # the receiver's summary line of the last test
    grep 'receiver$' /tmp/iperf.out | tail -1
}

# Interrupts of the NIC under test, summed over CPUs and vectors: the lines
# of /proc/interrupts named after the interface (e1000e: eth0, eth0-rx-0,
# eth0-tx-0) or its virtio device (virtio0-input.0, virtio0-output.0, ...).
nic_irqs() {
    awk -v a="$NIC" -v b="$VDEV" 'NR == 1 { ncpu = NF; next }
        $NF ~ ("^(" a "|" b ")([-.]|$)") { for (i = 2; i <= ncpu + 1; i++) s += $i }
        END { print s + 0 }' /proc/interrupts
}
nic_packets() {
    echo $(($(cat /sys/class/net/$NIC/statistics/rx_packets) + \
            $(cat /sys/class/net/$NIC/statistics/tx_packets)))
}
now() { cut -d' ' -f1 /proc/uptime; }

# The NIC's interrupts per second over the whole of a test (connection set-up
# included), and packets (both directions) per interrupt.
irq_start() { irq0=$(nic_irqs); pkt0=$(nic_packets); t0=$(now); }
irq_end() {  # $1 = test name
    irq1=$(nic_irqs); pkt1=$(nic_packets); t1=$(now)
    awk -v n="$1" -v i="$((irq1 - irq0))" -v p="$((pkt1 - pkt0))" -v t0="$t0" -v t1="$t1" \
        'BEGIN { d = t1 - t0; if (d <= 0) d = 0.01
                 printf "BENCH-RESULT test=%s_irq value=%.0f unit=irq/s\n", n, i / d
                 printf "BENCH-INFO test=%s irqs=%d packets=%d secs=%.2f pkts_per_irq=%.1f\n",
                        n, i, p, d, (i ? p / i : 0) }'
}

run_iperf() {  # $1 = name, rest = iperf3 options
    name=$1
    shift
    # A server still busy with a test whose guest died (its peer keeps the
    # connection until a timeout) says so at once: wait and ask again.
    tries=0
    while :; do
        irq_start
        iperf3 -c "$HOST_IP" -p "$PORT" -t "$SECS" --omit 1 -f m "$@" >/tmp/iperf.out 2>&1
        rc=$?
        irq_end "$name" >/tmp/irq.out
        grep -q 'server is busy' /tmp/iperf.out && [ $tries -lt 6 ] || break
        tries=$((tries + 1))
        echo "BENCH-INFO test=$name server-busy-retry=$tries"
        sleep 5
    done
    cat /tmp/irq.out
    line=$(iperf_line)
    if [ $rc != 0 ] || [ -z "$line" ]; then
        failed "$name" "iperf3-rc=$rc:$(tail -c 200 /tmp/iperf.out | tr ' \n' '_ ')"
        return
    fi
    case $name in
        udp*)
            # [ 5] 0.00-5.00 sec 1.2 MBytes 2.0 Mbits/sec 0.01 ms 10/20000 (0.05%) receiver
            echo "$line" | awk -v n="$name" '{
                for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) lt = $i
                split(lt, a, "/"); split($3, t, "-")
                printf "BENCH-RESULT test=%s value=%.0f unit=pps\n", n, (a[2] - a[1]) / (t[2] - t[1])
                printf "BENCH-INFO test=%s lost/total=%s\n", n, lt }' ;;
        *)
            echo "$line" | awk -v n="$name" '{
                for (i = 1; i <= NF; i++) if ($i == "Mbits/sec") v = $(i - 1)
                printf "BENCH-RESULT test=%s value=%s unit=Mbit/s\n", n, v }' ;;
    esac
}

# Round trips: busybox ping -A sends the next echo request as soon as the
# reply is in (one in flight), for SECS seconds.
run_ping() {
    irq_start
    ping -A -q -w "$SECS" "$HOST_IP" >/tmp/ping.out 2>&1
    irq_end ping
    # "N packets transmitted, M packets received"; "round-trip min/avg/max = a/b/c ms"
    line=$(grep 'round-trip' /tmp/ping.out)
    got=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.out)
    if [ -z "$line" ] || [ -z "$got" ]; then
        failed ping "$(tail -c 200 /tmp/ping.out | tr ' \n' '_ ')"
        return
    fi
    result ping_rate "$(awk -v n="$got" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')" "rt/s"
    result ping_rtt "$(echo "$line" | awk -F'[/ =]+' '{ printf "%.0f", $(NF - 2) * 1000 }')" "us"
}

bench_net() {
    HOST_IP=$(arg bench.host)
    PORT=$(arg bench.port)
    PORT=${PORT:-5201}
    DRIVER=$(arg bench.driver)
    DRIVER=${DRIVER:-virtio_net}
    NIC=""
    for n in /sys/class/net/*; do
        case "$(readlink "$n/device/driver" 2>/dev/null)" in
            */$DRIVER) NIC=${n##*/}; break ;;
        esac
    done
    if [ -z "$NIC" ]; then
        failed net "no-$DRIVER-nic"
        return
    fi
    # The virtio device (virtio0) names a virtio NIC's interrupts.
    VDEV=$(basename "$(readlink /sys/class/net/$NIC/device)")
    ip link set "$NIC" up
    ip addr add "$(arg bench.guest)/$(arg bench.prefix)" dev "$NIC"
    # A physical-style NIC (e1000e) needs its link to come up first.
    i=0
    while [ "$(cat /sys/class/net/$NIC/carrier 2>/dev/null)" != 1 ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    echo "BENCH-INFO nic=$NIC driver=$DRIVER device=$VDEV carrier=$(cat /sys/class/net/$NIC/carrier)" \
        "modes=$(cat /sys/class/net/$NIC/device/msi_irqs/* 2>/dev/null | sort | uniq -c | tr -s ' \n' ' ')"
    if ! ping -c 1 -w 20 "$HOST_IP" >/dev/null 2>&1; then
        failed net "no-ping-reply-from-$HOST_IP"
        return
    fi
    run_iperf tcp_tx
    run_iperf tcp_rx -R
    # 64-byte UDP payloads as fast as the guest can send them; the figure is
    # what the host side received per second.
    run_iperf udp_tx -u -l 64 -b 0
    [ "$(arg bench.ping)" = 1 ] && run_ping
}

# Guest clock at the start, to tell boot time from benchmark time.
# fio and iperf3 time themselves with the guest clock: it should be kvm-clock
# under both VMMs.
echo "BENCH-INFO guest_uptime_at_start=$(cut -d' ' -f1 /proc/uptime)" \
    "clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
case $MODE in
    blk) bench_blk ;;
    net) bench_net ;;
    *) failed mode "unknown-bench.mode=$MODE" ;;
esac
# Interrupts the devices raised (name, count, kind): MSI-X or not, and
# how well notifications were suppressed.
grep -aE "virtio${NIC:+|$NIC}" /proc/interrupts |
    awk '{ printf "BENCH-INFO irq=%s count=%s type=%s\n", $NF, $2, $3 }'
echo "BENCH-DONE"
