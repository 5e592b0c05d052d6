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
sleep)
    echo "SKIFF-E2E: sleeping"
    while :; do sleep 1000; done
    ;;
esac
