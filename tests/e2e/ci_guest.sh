# /autorun for the CI e2e boots (tests/e2e/ci_e2e.py): what the guest does
# is chosen by `skiff.e2e=MODE` on the kernel command line, so one initramfs
# serves every boot.
mode=$(sed -n 's/.*skiff\.e2e=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "SKIFF-E2E: mode=$mode"
case "$mode" in
exitdev)
    # The DSDT's exit device, as the kernel's ACPI scan found it.
    acpi=0
    for d in /sys/bus/acpi/devices/SKIF0001:*; do [ -e "$d" ] && acpi=1; done
    echo "SKIFF-E2E: acpi_exit_device=$acpi"
    busybox devmem 0xd8000000 32 7
    echo "SKIFF-E2E: still running after devmem"
    ;;
isa)
    # out 0xf4, 5: isa-debug-exit. Debian's cloud kernel has no /dev/port,
    # so a tiny static helper (tests/e2e/outb.c) makes the access.
    /bin/outb 0xf4 5
    echo "SKIFF-E2E: still running after isa-debug-exit (outb rc=$?)"
    ;;
exitdt)
    # ARM64: the exit device as the device tree Skiff generated describes
    # it (compatible "skiff,exit-device"); its address is the node's reg,
    # #address-cells (of the parent) big-endian 32-bit cells.
    addr=""
    # Nodes at the top and one level down (a bus); a process per node is
    # slow in a nested guest, so one grep -a each.
    for c in /proc/device-tree/*/compatible /proc/device-tree/*/*/compatible; do
        grep -qa 'skiff,exit-device' "$c" 2>/dev/null || continue
        node=${c%/compatible}
        cells=$((0x$(od -An -tx1 "${node%/*}/#address-cells" | tr -d ' \n')))
        addr=0x$(od -An -tx1 -N$((cells * 4)) "$node/reg" | tr -d ' \n')
        echo "SKIFF-E2E: dt_exit_node=${node#/proc/device-tree/}"
    done
    echo "SKIFF-E2E: dt_exit_device=${addr:-none}"
    [ -n "$addr" ] && busybox devmem "$addr" 32 7
    echo "SKIFF-E2E: still running after devmem"
    ;;
reboot)
    echo "SKIFF-E2E: rebooting"
    reboot -f
    sleep 5
    echo "SKIFF-E2E: still running after reboot"
    ;;
panic)
    echo "SKIFF-E2E: panicking"
    echo c >/proc/sysrq-trigger
    sleep 5
    echo "SKIFF-E2E: still running after the sysrq crash"
    ;;
sleep)
    echo "SKIFF-E2E: sleeping"
    while :; do sleep 1000; done
    ;;
esac
