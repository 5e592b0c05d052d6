# /autorun of the L2 guest in the e2e-vfio test (busybox sh): find the
# passed-through e1000e, bring it up on QEMU's user network (10.0.2.0/24)
# inside the test host, ping the gateway and report the MSI-X counts.
nic=""
for n in /sys/class/net/*; do
    case "$(readlink "$n/device/driver" 2>/dev/null)" in
        */e1000e) nic=${n##*/} ;;
    esac
done
echo "E2E-GUEST: e1000e nic=${nic:-none}"
[ -n "$nic" ] || exit 1
ip link set "$nic" up
ip addr add 10.0.2.15/24 dev "$nic"
i=0
while [ "$(cat /sys/class/net/$nic/carrier 2>/dev/null)" != 1 ] && [ $i -lt 50 ]; do
    sleep 0.2
    i=$((i + 1))
done
echo "E2E-GUEST: carrier=$(cat /sys/class/net/$nic/carrier 2>/dev/null)"
if ping -c 3 -W 3 10.0.2.2 > /tmp/ping.out 2>&1; then
    echo "E2E-GUEST: ping ok"
else
    echo "E2E-GUEST: ping failed"
fi
sed 's/^/E2E-GUEST: ping| /' /tmp/ping.out
# How the kernel set the function's interrupts up: msi_irqs/<irq> holds "msix" or "msi".
modes=$(cat /sys/class/net/$nic/device/msi_irqs/* 2>/dev/null | sort | uniq -c | tr -s ' \n' ' ')
echo "E2E-GUEST: msi modes:${modes:- none}"
grep -E "$nic|e1000e" /proc/interrupts | sed 's/^/E2E-GUEST: irq| /'
echo "E2E-GUEST: stats rx=$(cat /sys/class/net/$nic/statistics/rx_packets) tx=$(cat /sys/class/net/$nic/statistics/tx_packets)"
