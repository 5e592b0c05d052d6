#!/usr/bin/env python3
"""Checks of tests/e2e/vfio_arm64_e2e.py fed with made-up output (lines as
a real aarch64-vfio run printed them) and pcaps: a healthy run passes every
check, and each way ARM64 passthrough can break fails its check.  No KVM,
no test host."""
import os
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vfio_arm64_e2e as e2e  # noqa: E402
from hang_watch_test import assert_hang_reported, hung_section  # noqa: E402
from vfio_e2e_checks_test import GUEST, GW, frame, pcap  # noqa: E402

GOOD = """\
E2E: e1000e=0000:00:01.0
E2E: bigmem rc=1 lines=1 msg=skiff: --memory: 512 GiB is too large for the arm64 memory map: RAM starts at 0x40000000 and must end at the 64-bit PCI window (0x8000000000), so at most 511 GiB 
E2E: ivshmem=0000:00:02.0 bar2=0x0000008000000000,0x000000803fffffff,0x000000000014220c group=1 members=0000:00:02.0, driver=vfio-pci
E2E: smmu=smmu3.0x0000000009050000  group-before-bind=
E2E: unbound rc=1 msg=skiff: vfio device 0000:00:01.0: bound to no driver, not vfio-pci, and in no IOMMU group yet (...): echo vfio-pci > /sys/bus/pci/devices/0000:00:01.0/driver_override; ...
E2E: bound driver=vfio-pci group=0 node=/dev/vfio/0
E2E: === msix
48.941808 info vfio: 0000:00:01.0 BAR 0: 0x20000 bytes, 1 part(s) (0x20000 bytes) mapped directly
48.981025 info vfio: 0000:00:01.0 BAR 3: 0x4000 bytes, 2 part(s) (0x2000 bytes) mapped directly, MSI-X table and PBA trapped
49.210001 info vfio: 0000:00:02.0 passed through as 00:03.0 (0 MSI-X vectors)
49.220803 info vfio: 0000:00:01.0 passed through as 00:02.0 (5 MSI-X vectors)
E2E-GUEST: ivshmem pci=0000:00:03.0 bar2=0x0000008000000000-0x000000803fffffff
E2E-GUEST: ivshmem dmesg| pci 0000:00:03.0: BAR 2: assigned [mem 0x8000000000-0x803fffffff 64bit pref]
E2E-GUEST: ivshmem read first=0x5EED0001 last=0xCAFEF00D
E2E-GUEST: e1000e nic=eth0
E2E-GUEST: ping ok
E2E-GUEST: ping| 3 packets transmitted, 3 packets received, 0% packet loss
E2E-GUEST: msi modes: 3 msix
E2E-GUEST: irq|  16:         10   ITS-MSI 32768 Edge      eth0-rx-0
E2E-GUEST: irq|  17:         11   ITS-MSI 32769 Edge      eth0-tx-0
E2E-GUEST: irq|  18:          1   ITS-MSI 32770 Edge      eth0
E2E-GUEST: pci=0000:00:02.0
E2E-GUEST: irqchips=ITS-MSI
E2E: SKIFF_RC=0
E2E: === intx
99.133295 info vfio: 0000:00:01.0 passed through as 00:02.0 (5 MSI-X vectors)
E2E-GUEST: e1000e nic=eth0
E2E-GUEST: ping ok
E2E-GUEST: msi modes: none
E2E-GUEST: irq|  15:         16     GICv3  38 Level     eth0
E2E-GUEST: pci=0000:00:02.0
E2E-GUEST: irqchips=GICv3
E2E: SKIFF_RC=0
E2E: === end
E2E: after driver=vfio-pci
"""


def shm(read_back=(~0x5eed0001 & 0xffffffff, ~0xcafef00d & 0xffffffff)):
    """The ivshmem file as the test sees it: the words it wrote, what the
    guest wrote beside them."""
    return types.SimpleNamespace(words=[0x5eed0001, 0xcafef00d], read_back=list(read_back))


class VfioArm64ChecksTest(unittest.TestCase):
    def failing(self, out, frames=None, intx=True, shm_file=None):
        frames = [frame(GUEST, GW, 8), frame(GW, GUEST, 0)] * 3 if frames is None else frames
        with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as f:
            f.write(pcap(frames))
        try:
            results = e2e.checks(out, f.name, shm_file or shm(), intx)
        finally:
            os.unlink(f.name)
        return sorted(name for name, ok, _ in results if not ok)

    def test_healthy_run_passes_everything(self):
        self.assertEqual(self.failing(GOOD), [])
        no_intx = GOOD[:GOOD.index("E2E: === intx")] + GOOD[GOOD.index("E2E: === end"):]
        self.assertEqual(self.failing(no_intx, intx=False), [])

    def test_ivshmem_bar_below_4gib_or_unassigned_fails(self):
        name = "guest places the 1 GiB 64-bit BAR in the 64-bit window above 4 GiB"
        # Squeezed below 4 GiB (it cannot fit the 512 MiB window: no BAR at all).
        out = GOOD.replace("bar2=0x0000008000000000-0x000000803fffffff",
                           "bar2=0x0000000000000000-0x0000000000000000")
        out = out.replace("E2E-GUEST: ivshmem read first=0x5EED0001 last=0xCAFEF00D\n", "")
        self.assertEqual(self.failing(out, shm_file=shm((0, 0))), sorted([
            name,
            "guest reads the words written outside the test host through the BAR "
            "(start and end)",
            "guest's writes through the BAR reach the file outside the test host"]))
        out = GOOD.replace("bar2=0x0000008000000000-0x000000803fffffff",
                           "bar2=0x0000000040000000-0x000000007fffffff")
        self.assertEqual(self.failing(out), [name])

    def test_ivshmem_data_not_crossing_fails(self):
        out = GOOD.replace("last=0xCAFEF00D", "last=0xFFFFFFFF")
        self.assertEqual(self.failing(out), [
            "guest reads the words written outside the test host through the BAR "
            "(start and end)"])
        self.assertEqual(self.failing(GOOD, shm_file=shm((~0x5eed0001 & 0xffffffff, 0))),
                         ["guest's writes through the BAR reach the file outside the test host"])

    def test_ivshmem_sharing_its_group_fails(self):
        out = GOOD.replace("members=0000:00:02.0,", "members=0000:00:01.0,0000:00:02.0,")
        self.assertEqual(self.failing(out), [
            "L1: the ivshmem's 1 GiB BAR 2, alone in its IOMMU group, bound to vfio-pci"])

    def test_memory_past_the_cap_without_a_clear_line_fails(self):
        name = "--memory past the arm64 cap: one clear error line"
        self.assertEqual(self.failing(GOOD.replace("bigmem rc=1 lines=1", "bigmem rc=1 lines=3")),
                         [name])
        self.assertEqual(self.failing(GOOD.replace("bigmem rc=1", "bigmem rc=0")), [name])
        self.assertEqual(self.failing(GOOD.replace("at most 511 GiB", "at most 1023 GiB")), [name])

    def test_a_hang_is_a_fail_with_its_stacks_even_if_the_host_failed(self):
        hung = GOOD.replace("E2E: SKIFF_RC=0\nE2E: === intx", hung_section("msix") + "E2E: === intx")
        for returncode in (0, 125):
            lines, failed = e2e.verdict(hung, "/nonexistent.pcap", returncode, shm=shm())
            assert_hang_reported(self, lines, "msix")
            self.assertGreaterEqual(failed, 2)
        lines, failed = e2e.verdict(GICV2M.replace("E2E: SKIFF_RC=0\n", hung_section("unsafe")),
                                    "/nonexistent.pcap", 0, gicv2m=True)
        assert_hang_reported(self, lines, "unsafe")

    def test_devid_mismatch_fails(self):
        name = "ITS DeviceID = requester ID = Skiff's BDF for the device (slot 2)"
        # The guest's ITS used another DeviceID than Skiff's BDF (00:02.0).
        out = GOOD.replace("ITS-MSI 32768", "ITS-MSI 16384")
        self.assertEqual(self.failing(out), [name])
        out = GOOD.replace("passed through as 00:02.0", "passed through as 00:04.0", 1)
        self.assertIn(name, self.failing(out))
        # Everything at slot 1 agrees but proves less: the disk did not come first.
        out = (GOOD.replace("00:02.0", "00:01.0").replace("ITS-MSI 3276", "ITS-MSI 1638")
               .replace("GICv3  38", "GICv3  37"))
        self.assertEqual(self.failing(out), [name])

    def test_msix_not_through_the_its_fails(self):
        out = GOOD.replace("E2E-GUEST: irqchips=ITS-MSI", "E2E-GUEST: irqchips=GICv2m-MSI", 1)
        self.assertEqual(self.failing(out),
                         ["guest MSI-X rx/tx vectors fire through the GICv3 ITS"])
        out = GOOD.replace("10   ITS-MSI 32768", "0   ITS-MSI 32768")
        self.assertEqual(self.failing(out),
                         ["guest MSI-X rx/tx vectors fire through the GICv3 ITS"])

    def test_intx_on_another_spi_or_silent_fails(self):
        name = "INTx fallback (guest pci=nomsi): ping answered on the interrupt-map's SPI"
        self.assertEqual(self.failing(GOOD.replace("GICv3  38 Level", "GICv3  37 Level")), [name])
        self.assertEqual(self.failing(GOOD.replace("16     GICv3", "0     GICv3")), [name])

    def test_no_echo_request_in_pcap_fails(self):
        self.assertEqual(self.failing(GOOD, [frame(GW, GUEST, 0)]),
                         ["pcap outside the test host holds the guest's echo requests"])

    def test_unbound_error_without_the_fix_fails(self):
        out = GOOD.replace("echo vfio-pci > /sys/bus/pci/devices/0000:00:01.0/driver_override",
                           "enable the IOMMU")
        self.assertEqual(self.failing(out), ["error: device not bound to vfio-pci"])

    def test_missing_reports_fail(self):
        out = GOOD.replace("E2E: SKIFF_RC=0\nE2E: === intx", "E2E: SKIFF_RC=1\nE2E: === intx")
        self.assertEqual(self.failing(out), ["skiff exits 0"])
        out = GOOD.replace("E2E: bound driver=vfio-pci", "E2E: bound driver=none")
        self.assertEqual(self.failing(out), ["L1 binds the e1000e to vfio-pci, behind the SMMUv3"])
        out = GOOD.replace("smmu=smmu3.0x0000000009050000", "smmu=")
        self.assertEqual(self.failing(out), ["L1 binds the e1000e to vfio-pci, behind the SMMUv3"])


GICV2M = """\
E2E: bound driver=vfio-pci msi=GICv2m: range
E2E: refused rc=1 msg=skiff: vfio device 0000:00:01.0: VFIO_SET_IOMMU: EPERM: this host's IOMMU does not remap (isolate) the device's interrupts, so VFIO refuses it; enable interrupt remapping (x86: ...; ARM64: an SMMU with a GICv3 ITS - a GICv2m cannot tell devices apart), or accept the risk with vfio_iommu_type1.allow_unsafe_interrupts=1 (...)
E2E: === unsafe
26.800626 warn gic: host has no GICv3 for guests (...): using an emulated GICv2 (at most 8 vCPUs; no MSIs, PCI devices use INTx)
E2E-GUEST: e1000e nic=eth0
E2E-GUEST: ping ok
E2E-GUEST: ping| 3 packets transmitted, 3 packets received, 0% packet loss
E2E-GUEST: msi modes: none
E2E-GUEST: irq|  15:         18 GIC-0  37 Level     eth0
E2E: SKIFF_RC=0
E2E: === end
"""


class VfioArm64Gicv2mChecksTest(unittest.TestCase):
    def failing(self, out, frames=None):
        frames = [frame(GUEST, GW, 8), frame(GW, GUEST, 0)] * 3 if frames is None else frames
        with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as f:
            f.write(pcap(frames))
        try:
            results = e2e.checks_gicv2m(out, f.name)
        finally:
            os.unlink(f.name)
        return sorted(name for name, ok, _ in results if not ok)

    def test_healthy_run_passes_everything(self):
        self.assertEqual(self.failing(GICV2M), [])

    def test_error_without_the_way_out_fails(self):
        name = "without interrupt isolation: one clear error naming allow_unsafe_interrupts"
        for bad in (GICV2M.replace("vfio_iommu_type1.allow_unsafe_interrupts=1", "nothing"),
                    GICV2M.replace(" - a GICv2m cannot", " - it cannot"),
                    GICV2M.replace("refused rc=1", "refused rc=0")):
            self.assertEqual(self.failing(bad), [name])

    def test_no_intx_or_no_ping_fails(self):
        self.assertEqual(self.failing(GICV2M.replace("18 GIC-0", "0 GIC-0")),
                         ["guest on INTx (no MSI controller on a GICv2): line counts"])
        self.assertEqual(self.failing(GICV2M.replace("ping ok", "ping failed")),
                         ["guest pings 10.0.2.2"])


if __name__ == "__main__":
    unittest.main()
