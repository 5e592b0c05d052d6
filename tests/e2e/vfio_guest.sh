# /autorun of the L2 guest in the e2e-vfio test (busybox sh): read and
# write a passed-through ivshmem's BAR if there is one, find the
# passed-through e1000e, bring it up on QEMU's user network (10.0.2.0/24)
# inside the test host, ping the gateway and report the MSI-X counts.
# Then (unless the guest runs with pci=nomsi) drive the function's MSI
# capability by hand: the driver's own MSI mode cannot be tested on this
# NIC (QEMU's e1000e never raises the self-test interrupt, see
# docs/vfio.md), so the guest programs an MSI message itself and makes
# the NIC interrupt.
# A passed-through ivshmem (1af4:1110; the ARM64 test passes one): BAR 2
# is shared memory, a file outside the test host. Read the words the test
# wrote at the start of its first and of its last page, and write their
# complements 4 bytes after each, for the test to find in the file. (Not
# nearer a page's end: busybox devmem then maps the next page too, which
# may be another device's claimed BAR, and /dev/mem refuses it.)
for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor):$(cat $d/device)" = 0x1af4:0x1110 ] || continue
    set -- $(sed -n 3p $d/resource)
    start=$1
    end=$2
    echo 1 > $d/enable
    echo "E2E-GUEST: ivshmem pci=${d##*/} bar2=$start-$end"
    dmesg | grep -iE "${d##*/}.*BAR 2|exceeds max" | tail -3 | sed 's/^/E2E-GUEST: ivshmem dmesg| /'
    [ $((start)) -ne 0 ] || continue
    last=$((end - 4095))
    first=$(busybox devmem $start 32)
    final=$(busybox devmem $(printf 0x%x $last) 32)
    busybox devmem $(printf 0x%x $((start + 4))) 32 $((~first & 0xffffffff))
    busybox devmem $(printf 0x%x $((last + 4))) 32 $((~final & 0xffffffff))
    echo "E2E-GUEST: ivshmem read first=$first last=$final"
done

nic=""
for n in /sys/class/net/*; do
    case "$(readlink "$n/device/driver" 2>/dev/null)" in
        */e1000e) nic=${n##*/} ;;
    esac
done
echo "E2E-GUEST: e1000e nic=${nic:-none}"
[ -n "$nic" ] || exit 1
dev=$(readlink -f /sys/class/net/$nic/device)
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
dmesg | grep -iE "e1000e|msi" | tail -6 | sed 's/^/E2E-GUEST: dmesg| /'
echo "E2E-GUEST: stats rx=$(cat /sys/class/net/$nic/statistics/rx_packets) tx=$(cat /sys/class/net/$nic/statistics/tx_packets)"
# Where the guest found the NIC (on ARM64 its requester ID, which the ITS
# DeviceID must match) and which interrupt controller delivers its vectors.
echo "E2E-GUEST: pci=$(basename "$dev")"
echo "E2E-GUEST: irqchips=$(grep -E "$nic|e1000e" /proc/interrupts | grep -oE 'GICv3|ITS-MSI|IR-PCI-MSI|PCI-MSI|IO-APIC' | sort -u | tr '\n' ' ')"

# The expansion ROM: Skiff shows it only with rom=on (the msix boot);
# QEMU's e1000e carries one (efi-e1000e.rom), starting 0x55 0xaa. Reading
# the sysfs file maps it (enable bit + memory bit), so it reads through
# Skiff's ROM window.
if [ -e "$dev/rom" ]; then
    echo 1 > "$dev/rom"
    sig=$(head -c 2 "$dev/rom" 2>/dev/null | od -An -tx1 | tr -d ' \n')
    echo 0 > "$dev/rom"
    echo "E2E-GUEST: rom file=present sig=${sig:-none}"
else
    echo "E2E-GUEST: rom file=absent"
fi

grep -qw pci=nomsi /proc/cmdline && exit 0
# The message below is an x86 one (0xfee00000 + APIC ID, vector in the data).
[ "$(uname -m)" = x86_64 ] || exit 0

# MSI by hand. With no driver bound, the guest writes the function's MSI
# capability through sysfs (Skiff emulates it: the message becomes a KVM
# route, VFIO's MSI vector an irqfd on it), enables bus mastering, unmasks
# link-status changes (IMS, 0xd0) and sets one (ICS, 0xc8) in BAR 0. The
# message names a vector no driver owns, so the kernel reports the
# interrupt's arrival: "No irq handler for vector".
VECTOR=223
cfg=$dev/config
rd() { dd if=$cfg bs=1 skip=$1 count=1 2>/dev/null | od -An -tu1 | tr -d ' \n'; }
wr() { printf "$(printf '\\%03o' $2)" | dd of=$cfg bs=1 seek=$1 count=1 conv=notrunc 2>/dev/null; }
echo "${dev##*/}" > $dev/driver/unbind
cap=$(rd 52)
hops=0
while [ -n "$cap" ] && [ "$cap" != 0 ] && [ "$(rd $cap)" != 5 ] && [ $hops -lt 48 ]; do
    cap=$(rd $((cap + 1)))
    hops=$((hops + 1))
done
if [ -z "$cap" ] || [ "$cap" = 0 ] || [ "$(rd $cap)" != 5 ]; then
    echo "E2E-GUEST: msi-by-hand no MSI capability"
    exit 0
fi
data=$((cap + 8))
[ $(($(rd $((cap + 2))) & 0x80)) -ne 0 ] && data=$((cap + 12))  # 64-bit address
wr $((cap + 4)) 0; wr $((cap + 5)) 0; wr $((cap + 6)) 224; wr $((cap + 7)) 254  # 0xfee00000: CPU 0
[ $data -eq $((cap + 12)) ] && for b in 8 9 10 11; do wr $((cap + b)) 0; done
wr $data $VECTOR; wr $((data + 1)) 0                  # fixed delivery, edge
wr $((cap + 2)) 1                                     # MSI enable, one vector
wr 4 $(($(rd 4) | 6)); wr 5 $(($(rd 5) | 4))          # memory + bus master, INTx disabled
bar0=$(head -1 $dev/resource | cut -d' ' -f1)
before=$(dmesg | grep -c "No irq handler for vector")
busybox devmem $(printf 0x%x $((bar0 + 0xd0))) 32 4
busybox devmem $(printf 0x%x $((bar0 + 0xc8))) 32 4
i=0
while [ "$(dmesg | grep -c "No irq handler for vector")" = "$before" ] && [ $i -lt 20 ]; do
    sleep 0.1
    i=$((i + 1))
done
seen=$(dmesg | grep "No irq handler for vector" | tail -1)
echo "E2E-GUEST: msi-by-hand cap=$cap control=$(rd $((cap + 2))) vector=$VECTOR seen=${seen:-none}"
wr $((cap + 2)) 0
