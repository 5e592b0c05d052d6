#!/usr/bin/env python3
"""End-to-end VFIO passthrough on ARM64 (suites e2e-vfio and e2e-arm64): in
the aarch64-vfio test host (QEMU virt with a GICv3 + ITS and an emulated
SMMUv3, an e1000e on QEMU's user netdev recorded to a pcap), the aarch64
Skiff passes the e1000e through to an L2 guest running Debian's generic
arm64 kernel. The guest's e1000e driver binds, its MSI-X vectors arrive
through the (KVM-emulated) GICv3 ITS with the DeviceID Skiff gives the
device, it pings the netdev's gateway 10.0.2.2, and the test finds the
guest's ICMP echo requests in the pcap, outside the test host. A second
boot with the guest's MSI off runs the device on INTx, a GIC SPI from the
device tree's interrupt-map.

The MSI-X boot also passes through an ivshmem-plain (1af4:1110) whose BAR 2
is a 1 GiB 64-bit prefetchable BAR backed by a file outside the test host:
too big for the 512 MiB 32-bit window, so the guest must place it in the
64-bit window at 512 GiB. The guest reads the words the test wrote into the
file through the BAR and writes their complements, which the test finds in
the file after the run. L1 also asks for more --memory than the arm64 map
holds: one clear error line.

With --gicv2m the test host has a GICv2 and its v2m MSI frame instead of
the ITS: nothing isolates the device's MSIs, so the host's VFIO refuses the
group and Skiff must explain vfio_iommu_type1.allow_unsafe_interrupts=1;
with that set, the guest (an emulated GICv2, no MSIs) runs the e1000e on
INTx and pings.

One L1 boot runs every check; each prints PASS/FAIL. A missing binary or a
test-host failure makes the test FAIL, never skip.

Usage: vfio_arm64_e2e.py --skiff PATH [--keep DIR] [--no-intx | --gicv2m]
"""
import argparse
import os
import re
import secrets
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hang_watch  # noqa: E402
import vfio_e2e  # noqa: E402  (pcap and /proc/interrupts readers)
import vfio_l1  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
AUTORUN = os.path.join(ROOT, "images", "make-autorun-cpio.sh")
GUEST_SCRIPT = os.path.join(HERE, "vfio_guest.sh")
# Skiff's arm64 UART is a 16550: ttyS0.
CMDLINE = "console=ttyS0 panic=-1 quiet"

# Each boot of L2 is bounded (tests/e2e/hang_watch.py): if Skiff is still
# there TEARDOWN_LIMIT_S after it logged its stop, or 60 s after its own
# --timeout, the script prints where it is stuck and kills it.
GUEST_LIMIT_S = 600
TEARDOWN_LIMIT_S = 120
SKIFF_RUN = "skiff run --kernel /guest/vmlinuz --initramfs /tmp/initrd --memory 256M"


def bounded(skiff_run):
    """hang_watch's functions, bounded_boot running SKIFF_RUN at info level."""
    return hang_watch.shell(GUEST_LIMIT_S + 60, TEARDOWN_LIMIT_S,
                            command="%s --log-level info --timeout %ds"
                            % (skiff_run, GUEST_LIMIT_S))


# Runs in L1 (busybox sh). Bad input first (device not bound to vfio-pci),
# then bind the e1000e to vfio-pci and boot L2 with it: MSI-X, then INTx.
# A virtio-pci disk comes first and takes slot 1, so the NIC is 00:02.0:
# its DeviceID (0x10) and INTx SPI (6) are not what a constant would give.
SKIFF_RUN_WITH_DISK = SKIFF_RUN + " --disk path=/tmp/disk.img,transport=pci"
L1_SCRIPT = bounded(SKIFF_RUN_WITH_DISK) + r"""
skiff_run() {
    %(skiff_run)s "$@"
}
cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > /tmp/initrd
dd if=/dev/zero of=/tmp/disk.img bs=1M count=1 2>/dev/null
bdf=""
for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor):$(cat $d/device)" = 0x8086:0x10d3 ] && bdf=${d##*/}
done
echo "E2E: e1000e=${bdf:-none}"
skiff run --kernel /guest/vmlinuz --memory 512G > /tmp/err2 2>&1
echo "E2E: bigmem rc=$? lines=$(wc -l < /tmp/err2) msg=$(head -c 600 /tmp/err2 | tr '\n' ' ')"
# The ivshmem: its 1 GiB BAR 2 goes to the guest beside the NIC (it has no
# L1 driver either). It must sit alone in its IOMMU group.
iv=""
for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor):$(cat $d/device)" = 0x1af4:0x1110 ] && iv=${d##*/}
done
ivdev=""
if [ -n "$iv" ]; then
    echo vfio-pci > /sys/bus/pci/devices/$iv/driver_override
    echo $iv > /sys/bus/pci/drivers_probe
    ivgroup=$(basename "$(readlink /sys/bus/pci/devices/$iv/iommu_group)")
    echo "E2E: ivshmem=$iv bar2=$(sed -n 3p /sys/bus/pci/devices/$iv/resource | tr ' ' ,) group=$ivgroup members=$(ls /sys/kernel/iommu_groups/$ivgroup/devices 2>/dev/null | tr '\n' ,) driver=$(basename "$(readlink /sys/bus/pci/devices/$iv/driver)")"
    ivdev="--device vfio=$iv"
fi
# A device-tree host's SMMU puts the device in an IOMMU group only when a
# driver binds: none yet (Skiff must say to bind it, not "no IOMMU").
echo "E2E: smmu=$(ls /sys/class/iommu 2>/dev/null | tr '\n' ' ') group-before-bind=$(basename "$(readlink /sys/bus/pci/devices/$bdf/iommu_group)")"
skiff_run --cmdline '%(cmdline)s' --device vfio=$bdf > /tmp/err1 2>&1
echo "E2E: unbound rc=$? msg=$(head -c 600 /tmp/err1 | tr '\n' ' ')"
echo vfio-pci > /sys/bus/pci/devices/$bdf/driver_override
echo $bdf > /sys/bus/pci/drivers_probe
group=$(basename $(readlink /sys/bus/pci/devices/$bdf/iommu_group))
echo "E2E: bound driver=$(basename $(readlink /sys/bus/pci/devices/$bdf/driver)) group=$group node=$(ls /dev/vfio/$group 2>&1)"
%(quiesce)s
quiesce_e1000e E2E:
bounded_boot msix --cmdline '%(cmdline)s' --device vfio=/sys/bus/pci/devices/$bdf $ivdev
if [ "%(intx)s" = yes ]; then
    quiesce_e1000e E2E:
    bounded_boot intx --cmdline '%(cmdline)s pci=nomsi' --device vfio=$bdf
fi
echo "E2E: === end"
echo "E2E: after driver=$(basename $(readlink /sys/bus/pci/devices/$bdf/driver))"
"""

# --gicv2m: refused first, then accepted once the operator takes the risk.
L1_SCRIPT_GICV2M = bounded(SKIFF_RUN) + r"""
cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > /tmp/initrd
bdf=""
for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor):$(cat $d/device)" = 0x8086:0x10d3 ] && bdf=${d##*/}
done
echo vfio-pci > /sys/bus/pci/devices/$bdf/driver_override
echo $bdf > /sys/bus/pci/drivers_probe
echo "E2E: bound driver=$(basename $(readlink /sys/bus/pci/devices/$bdf/driver)) msi=$(dmesg | grep -o 'GICv2m: range' | head -1)"
%(skiff_run)s --cmdline '%(cmdline)s' --device vfio=$bdf --log-level info --timeout 600s > /tmp/err 2>&1
echo "E2E: refused rc=$? msg=$(grep -v ' info ' /tmp/err | head -c 900 | tr '\n' ' ')"
echo 1 > /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
bounded_boot unsafe --cmdline '%(cmdline)s' --device vfio=$bdf
echo "E2E: === end"
"""

GIC_SPI_BASE = 32        # INTID of SPI 0
PCI_INTX_SPI_BASE = 4    # arch/arm64/layout.h: INTA-INTD are SPIs 4-7
MSI_HWIRQ_RID_SHIFT = 11  # Linux: PCI/MSI hwirq = requester ID << 11 | vector


def passed_through_slot(text, device=None):
    """Skiff's 'passed through as 00:SS.0' log line for DEVICE (L1's BDF;
    None: the first one): the slot, or None."""
    name = re.escape(device) if device else r"\S+"
    m = re.search(r"vfio: %s passed through as 00:([0-9a-f]{2})\.0" % name, text)
    return int(m.group(1), 16) if m else None


def its_device_ids(text):
    """The requester IDs (hwirq >> 11) of the guest's e1000e ITS-MSI lines."""
    ids = set()
    for line in re.findall(r"E2E-GUEST: irq\| (.*)", text):
        m = re.search(r"ITS-MSI\s+(\d+)", line)
        if m:
            ids.add(int(m.group(1)) >> MSI_HWIRQ_RID_SHIFT)
    return ids


def gic_intids(text):
    """{INTID: count} of the guest's e1000e lines on the GICv3 itself (INTx)."""
    out = {}
    for line in re.findall(r"E2E-GUEST: irq\| (.*)", text):
        m = re.match(r"\s*\d+:\s+((?:\d+\s+)+)GICv3\s+(\d+)\s+Level", line)
        if m:
            out[int(m.group(2))] = sum(int(c) for c in m.group(1).split())
    return out


IVSHMEM_SIZE = 1 << 30            # twice the 32-bit window (arch/arm64/layout.h)
PCI_MMIO64_BASE = 0x8000000000    # the 64-bit window: 512 GiB up to the 40-bit limit
PCI_MMIO64_END = 1 << 40
MAX_RAM_GIB = 511


class Shm:
    """The ivshmem's backing file: random words at the start of its first
    and of its last page, which the guest reads through BAR 2; it writes
    their complements 4 bytes after each."""
    FIRST, LAST = 0, IVSHMEM_SIZE - 4096

    def __init__(self, path):
        self.path = path
        self.words = [secrets.randbits(32) | 1, secrets.randbits(32) | 1]
        with open(path, "wb") as f:
            f.truncate(IVSHMEM_SIZE)
            for offset, word in zip((self.FIRST, self.LAST), self.words):
                f.seek(offset)
                f.write(struct.pack("<II", word, 0))
        self.read_back = None

    def read(self):
        """After the run: the two words the guest should have written."""
        with open(self.path, "rb") as f:
            back = []
            for offset in (self.FIRST, self.LAST):
                f.seek(offset + 4)
                back.append(struct.unpack("<I", f.read(4))[0])
        self.read_back = back


def ivshmem_checks(out, msix_out, shm):
    """[(name, ok, detail)]: the 1 GiB 64-bit BAR passed through."""
    results = []
    m = re.search(r"E2E: ivshmem=(\S+) bar2=(0x[0-9a-f]+),(0x[0-9a-f]+),\S* group=(\d+) "
                  r"members=(\S*) driver=(\S+)", out)
    ok = (bool(m) and int(m.group(3), 16) - int(m.group(2), 16) + 1 == IVSHMEM_SIZE
          and m.group(5) == m.group(1) + "," and m.group(6) == "vfio-pci")
    results.append(("L1: the ivshmem's 1 GiB BAR 2, alone in its IOMMU group, bound to vfio-pci",
                    ok, m.group(0) if m else "no ivshmem report"))
    m = re.search(r"E2E-GUEST: ivshmem pci=\S+ bar2=(0x[0-9a-f]+)-(0x[0-9a-f]+)", msix_out)
    start, end = (int(m.group(1), 16), int(m.group(2), 16)) if m else (0, 0)
    results.append(("guest places the 1 GiB 64-bit BAR in the 64-bit window above 4 GiB",
                    bool(m) and end - start + 1 == IVSHMEM_SIZE and start >= PCI_MMIO64_BASE
                    and end < PCI_MMIO64_END and start % IVSHMEM_SIZE == 0,
                    "%s; %s" % (m.group(0) if m else "guest never reported",
                                "; ".join(re.findall(r"E2E-GUEST: ivshmem dmesg\| (.*)",
                                                     msix_out)))))
    m = re.search(r"E2E-GUEST: ivshmem read first=(0x[0-9A-Fa-f]+) last=(0x[0-9A-Fa-f]+)",
                  msix_out)
    seen = [int(m.group(1), 16), int(m.group(2), 16)] if m else None
    results.append(("guest reads the words written outside the test host through the BAR "
                    "(start and end)", seen == shm.words,
                    "wrote %s, guest read %s" % (["0x%08x" % w for w in shm.words],
                                                 m.group(0) if m else "nothing")))
    want = [~w & 0xffffffff for w in shm.words]
    results.append(("guest's writes through the BAR reach the file outside the test host",
                    shm.read_back == want,
                    "want %s, file holds %s" % (["0x%08x" % w for w in want],
                                                ["0x%08x" % w for w in shm.read_back or []])))
    return results


def checks(out, pcap, shm, intx=True):
    """[(name, ok, detail)] for the run's output, pcap and ivshmem file."""
    results = []
    msix_out, intx_out = vfio_e2e.section(out, "msix"), vfio_e2e.section(out, "intx")
    m = re.search(r"E2E: bigmem rc=(\d+) lines=(\d+) msg=(.*)", out)
    results.append(("--memory past the arm64 cap: one clear error line",
                    bool(m) and m.group(1) != "0" and m.group(2) == "1"
                    and "--memory: 512 GiB is too large for the arm64 memory map" in m.group(3)
                    and "at most %d GiB" % MAX_RAM_GIB in m.group(3),
                    m.group(0) if m else "no report"))
    results += ivshmem_checks(out, msix_out, shm)
    m = re.search(r"E2E: e1000e=(\S+)", out)
    nic = m.group(1) if m else None
    m = re.search(r"E2E: unbound rc=(\d+) msg=(.*)", out)
    results.append(("error: device not bound to vfio-pci",
                    bool(m) and m.group(1) != "0" and "vfio-pci" in m.group(2)
                    and "driver_override" in m.group(2),
                    m.group(0) if m else "no report"))
    smmu = re.search(r"E2E: smmu=(.*) group-before-bind=", out)
    m = re.search(r"E2E: bound driver=(\S+) group=(\d+) node=(\S+)", out)
    results.append(("L1 binds the e1000e to vfio-pci, behind the SMMUv3",
                    bool(m) and m.group(1) == "vfio-pci" and m.group(3).startswith("/dev/vfio/")
                    and bool(smmu) and "smmu3" in smmu.group(1),
                    "%s; %s" % (smmu.group(0) if smmu else "no SMMU report",
                                m.group(0) if m else "no bind report")))
    m = re.search(r"E2E-GUEST: e1000e nic=(\S+)", msix_out)
    results.append(("guest e1000e driver binds", bool(m) and m.group(1) != "none",
                    m.group(0) if m else "guest never reported"))
    results.append(vfio_e2e.bar_slots(msix_out))
    counts = vfio_e2e.irq_counts(msix_out)
    msix = {k: v for k, (v, is_msi) in counts.items() if is_msi}
    rx = sum(v for k, v in msix.items() if "rx" in k)
    tx = sum(v for k, v in msix.items() if "tx" in k)
    m = re.search(r"E2E-GUEST: msi modes: *(.*)", msix_out)
    modes = m.group(1).split() if m else []
    m = re.search(r"E2E-GUEST: irqchips=(.*)", msix_out)
    chips = m.group(1).split() if m else []
    results.append(("guest MSI-X rx/tx vectors fire through the GICv3 ITS",
                    rx > 0 and tx > 0 and "msix" in modes and "msi" not in modes
                    and chips == ["ITS-MSI"],
                    "vectors %s, modes %s, irqchips %s" % (msix, " ".join(modes), chips)))
    # The ITS DeviceID KVM matched is the one in Skiff's MSI routes (the
    # function's BDF on Skiff's bus); the guest derived its own from its
    # requester ID through the device tree's msi-map. Interrupts arriving
    # prove they agree; this shows which it was.
    slot = passed_through_slot(msix_out, nic)
    m = re.search(r"E2E-GUEST: pci=0000:00:([0-9a-f]{2})\.0", msix_out)
    guest_slot = int(m.group(1), 16) if m else None
    ids = its_device_ids(msix_out)
    results.append(("ITS DeviceID = requester ID = Skiff's BDF for the device (slot 2)",
                    slot == 2 and guest_slot == slot and ids == {slot << 3},
                    "skiff slot %s, guest slot %s, guest ITS device ids %s"
                    % (slot, guest_slot, sorted(ids))))
    results.append(("guest pings 10.0.2.2", "E2E-GUEST: ping ok" in msix_out,
                    "; ".join(re.findall(r"E2E-GUEST: ping\| (.*)", msix_out)[-2:])))
    icmp = vfio_e2e.icmp_packets(pcap) if pcap and os.path.exists(pcap) else None
    results.append(("pcap outside the test host holds the guest's echo requests",
                    bool(icmp) and icmp[0] > 0, "requests/replies %s" % (icmp,)))
    m = re.search(r"E2E: SKIFF_RC=(\d+)", msix_out)
    results.append(("skiff exits 0", bool(m) and m.group(1) == "0",
                    m.group(0) if m else "no exit status"))
    if intx:
        # The guest's MSI off: INTA of the slot, swizzled onto SPIs 4-7 as
        # the device tree's interrupt-map says, through an irqfd with a
        # resample eventfd.
        slot = passed_through_slot(intx_out, nic)
        lines = gic_intids(intx_out)
        want = None if slot is None else GIC_SPI_BASE + PCI_INTX_SPI_BASE + slot % 4
        m = re.search(r"E2E: SKIFF_RC=(\d+)", intx_out)
        results.append(("INTx fallback (guest pci=nomsi): ping answered on the "
                        "interrupt-map's SPI",
                        "E2E-GUEST: ping ok" in intx_out and want is not None
                        and lines.get(want, 0) > 0 and bool(m) and m.group(1) == "0",
                        "GIC lines %s (want INTID %s), %s"
                        % (lines, want, m.group(0) if m else "no exit status")))
    m = re.search(r"E2E: after driver=(\S+)", out)
    results.append(("device still bound to vfio-pci after exit",
                    bool(m) and m.group(1) == "vfio-pci", m.group(0) if m else "no report"))
    return results


def checks_gicv2m(out, pcap):
    """[(name, ok, detail)] for a --gicv2m run."""
    results = []
    m = re.search(r"E2E: bound driver=(\S+) msi=(.*)", out)
    results.append(("L1 (GICv2 + v2m, no ITS) binds the e1000e to vfio-pci",
                    bool(m) and m.group(1) == "vfio-pci" and "GICv2m" in m.group(2),
                    m.group(0) if m else "no report"))
    m = re.search(r"E2E: refused rc=(\d+) msg=(.*)", out)
    msg = m.group(2) if m else ""
    results.append(("without interrupt isolation: one clear error naming "
                    "allow_unsafe_interrupts",
                    bool(m) and m.group(1) == "1" and "EPERM" in msg and "GICv2m" in msg
                    and "vfio_iommu_type1.allow_unsafe_interrupts=1" in msg
                    and msg.count("skiff:") == 1,
                    m.group(0) if m else "no report"))
    unsafe = vfio_e2e.section(out, "unsafe")
    m = re.search(r"E2E-GUEST: e1000e nic=(\S+)", unsafe)
    results.append(("allow_unsafe_interrupts=1: guest e1000e driver binds",
                    bool(m) and m.group(1) != "none", m.group(0) if m else "guest never reported"))
    lines = {k: v for k, (v, is_msi) in vfio_e2e.irq_counts(unsafe).items() if not is_msi}
    m = re.search(r"E2E-GUEST: msi modes: *(.*)", unsafe)
    results.append(("guest on INTx (no MSI controller on a GICv2): line counts",
                    bool(m) and m.group(1).strip() == "none" and sum(lines.values()) > 0
                    and "using an emulated GICv2" in unsafe,
                    "lines %s, msi modes %s" % (lines, m.group(1) if m else "?")))
    results.append(("guest pings 10.0.2.2", "E2E-GUEST: ping ok" in unsafe,
                    "; ".join(re.findall(r"E2E-GUEST: ping\| (.*)", unsafe)[-2:])))
    icmp = vfio_e2e.icmp_packets(pcap) if pcap and os.path.exists(pcap) else None
    results.append(("pcap outside the test host holds the guest's echo requests",
                    bool(icmp) and icmp[0] > 0, "requests/replies %s" % (icmp,)))
    m = re.search(r"E2E: SKIFF_RC=(\d+)", unsafe)
    results.append(("skiff exits 0", bool(m) and m.group(1) == "0",
                    m.group(0) if m else "no exit status"))
    return results


def verdict(out, pcap, returncode, gicv2m=False, intx=True, shm=None):
    """([PASS/FAIL line], number failed) of a run: a hang first, with where
    Skiff was stuck; a test-host failure fails the run without its checks."""
    lines = hang_watch.failures(out)
    failed = len(lines)
    if returncode != 0 or "TESTHOST FAILURE" in out:
        return lines + [f"FAIL: test host failed (exit {returncode})"], failed + 1
    for name, ok, detail in (checks_gicv2m(out, pcap) if gicv2m
                             else checks(out, pcap, shm, intx)):
        lines.append(f"{'PASS' if ok else 'FAIL'}: {name} ({detail})")
        failed += not ok
    return lines, failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skiff", required=True, help="the aarch64 skiff")
    parser.add_argument("--keep", help="copy the pcap and the output here")
    parser.add_argument("--no-intx", action="store_true",
                        help="skip the second (INTx) boot")
    parser.add_argument("--gicv2m", action="store_true",
                        help="the test host without an ITS (profile aarch64-vfio-gicv2m)")
    args = parser.parse_args()
    if not os.path.isfile(args.skiff):
        print(f"FAIL: {args.skiff} does not exist (build it with scripts/setup.sh's "
              "skiff_build_arm64; scripts/test.sh does)")
        return 1
    intx = not args.no_intx
    with tempfile.TemporaryDirectory() as tmp:
        extra = os.path.join(tmp, "autorun.cpio.gz")
        subprocess.run([AUTORUN, GUEST_SCRIPT, extra], check=True)
        pcap = os.path.join(tmp, "n0.pcap")
        shm = None
        testhost_args = []
        if args.gicv2m:
            l1 = L1_SCRIPT_GICV2M % {"cmdline": CMDLINE, "skiff_run": SKIFF_RUN}
            profile = "aarch64-vfio-gicv2m"
        else:
            l1 = L1_SCRIPT % {"cmdline": CMDLINE, "intx": "yes" if intx else "no",
                              "skiff_run": SKIFF_RUN_WITH_DISK,
                              "quiesce": vfio_l1.QUIESCE_E1000E}
            profile = "aarch64-vfio"
            shm = Shm(os.path.join(tmp, "ivshmem"))
            testhost_args = ["--ivshmem", shm.path]
        proc = subprocess.run(
            [sys.executable, TESTHOST, "run", "--arch", profile, "--skiff", args.skiff,
             "--timeout", "1700", "--pcap", pcap, "--put", f"{extra}:/e2e/autorun.cpio.gz"]
            + testhost_args + ["--", l1],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if shm:
            shm.read()
        out = proc.stdout.decode("utf-8", "replace")
        sys.stdout.write(out[-12000:])
        if args.keep:
            vfio_e2e.keep_run(args.keep, out, pcap)
        lines, failed = verdict(out, pcap, proc.returncode, args.gicv2m, intx, shm)
        print("\n".join(lines))
    print(f"vfio arm64 e2e: {failed} check(s) failed" if failed
          else "vfio arm64 e2e: all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
