#!/usr/bin/env python3
"""Checks of tests/e2e/vfio_e2e.py fed with made-up output and pcaps: a
healthy run passes every check, and each way passthrough can break fails
its check.  No KVM, no test host."""
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vfio_e2e as e2e  # noqa: E402
from hang_watch_test import assert_hang_reported, hung_section  # noqa: E402

GOOD = """\
E2E: e1000e=0000:00:01.0
E2E: unbound rc=1 msg=skiff: vfio device 0000:00:01.0: bound to no driver, not vfio-pci: echo vfio-pci > /sys/bus/pci/devices/0000:00:01.0/driver_override; ...
E2E: nodevice rc=2 msg=skiff: vfio device 0000:00:1e.0: /sys/bus/pci/devices/0000:00:1e.0 is not a PCI device on this host
E2E: bound driver=vfio-pci group=1 node=/dev/vfio/1
E2E: === msix
[  5.40] skiff info vfio: 0000:00:01.0: reset by VFIO at start and at exit (host reset method: pm; a D3hot->D0 transition only, which the device itself must act on)
[  5.48] skiff info vfio: 0000:00:01.0 BAR 0: 0x20000 bytes, 1 part(s) (0x20000 bytes) mapped directly
[  5.48] skiff info vfio: 0000:00:01.0 BAR 3: 0x4000 bytes, 2 part(s) (0x2000 bytes) mapped directly, MSI-X table and PBA trapped
E2E-GUEST: e1000e nic=eth0
E2E-GUEST: carrier=1
E2E-GUEST: ping ok
E2E-GUEST: ping| 3 packets transmitted, 3 packets received, 0% packet loss
E2E-GUEST: msi modes: 3 msix
E2E-GUEST: irq|  26:          8   PCI-MSI 16384-edge      eth0-rx-0
E2E-GUEST: irq|  27:         11   PCI-MSI 16385-edge      eth0-tx-0
E2E-GUEST: irq|  28:          1   PCI-MSI 16386-edge      eth0
E2E-GUEST: rom file=present sig=55aa
E2E-GUEST: msi-by-hand cap=208 control=129 vector=223 seen=[   31.0] __common_interrupt: 0.223 No irq handler for vector
[ 60.10] skiff info vmm: stopped: guest powered off (ACPI S5) (exit code 0)
[ 60.90] skiff info vfio: device 0000:00:01.0 released in 812 ms (parked vectors unwatched 0 ms, bus mastering off 1 ms, interrupts off 40 ms, BAR slots removed 3 ms, reset 700 ms, irqfds deassigned 60 ms, eventfds closed 0 ms, BAR mmaps unmapped 0 ms, device fd closed 8 ms)
[ 62.90] skiff info vfio: container released in 1990 ms (guest RAM unmapped from the IOMMU 1900 ms, groups closed 90 ms, container closed 0 ms)
E2E: SKIFF_RC=0
E2E: teardown-seconds=3
E2E: === intx
E2E-GUEST: e1000e nic=eth0
E2E-GUEST: ping ok
E2E-GUEST: msi modes: none
E2E-GUEST: irq|  11:         25   IO-APIC  21-fasteoi   eth0
E2E-GUEST: rom file=absent
[ 60.90] skiff info vfio: device 0000:00:01.0 released in 812 ms (parked vectors unwatched 0 ms, bus mastering off 1 ms, interrupts off 40 ms, BAR slots removed 3 ms, reset 700 ms, irqfds deassigned 60 ms, eventfds closed 0 ms, BAR mmaps unmapped 0 ms, device fd closed 8 ms)
[ 62.90] skiff info vfio: container released in 1990 ms (guest RAM unmapped from the IOMMU 1900 ms, groups closed 90 ms, container closed 0 ms)
E2E: SKIFF_RC=0
E2E: teardown-seconds=3
E2E: === end
E2E: after driver=vfio-pci
E2E: l1-kernel| [   20.1] VFIO - User Level meta-driver version: 0.3
"""


def frame(src, dst, icmp_type):
    ip = bytes([0x45, 0, 0, 84, 0, 0, 0x40, 0, 64, 1, 0, 0]) + bytes(src) + bytes(dst)
    return bytes(6) + bytes(6) + b"\x08\x00" + ip + bytes([icmp_type, 0, 0, 0]) + bytes(60)


def pcap(frames):
    out = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
    for f in frames:
        out += struct.pack("<IIII", 0, 0, len(f), len(f)) + f
    return out


GUEST, GW = [10, 0, 2, 15], [10, 0, 2, 2]


class VfioChecksTest(unittest.TestCase):
    def run_checks(self, out, frames):
        with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as f:
            f.write(pcap(frames))
        try:
            return {name: ok for name, ok, _ in e2e.checks(out, f.name)}
        finally:
            os.unlink(f.name)

    def good_frames(self):
        return [frame(GUEST, GW, 8), frame(GW, GUEST, 0)] * 3

    def test_reset_method_missing_or_other_fails(self):
        name = "skiff names the host's reset method for the function"
        line = [l for l in GOOD.splitlines() if "reset by VFIO" in l][0]
        self.assertIn(name, self.failing(GOOD.replace(line + "\n", "")))
        self.assertIn(name, self.failing(GOOD.replace("method: pm;", "method: flr;")))
        self.assertNotIn(name, self.failing(GOOD))

    def test_healthy_run_passes_everything(self):
        results = self.run_checks(GOOD, self.good_frames())
        self.assertTrue(all(results.values()), results)

    def failing(self, out, frames=None):
        results = self.run_checks(out, self.good_frames() if frames is None else frames)
        return sorted(name for name, ok in results.items() if not ok)

    def test_no_echo_request_in_pcap_fails(self):
        self.assertEqual(self.failing(GOOD, [frame(GW, GUEST, 0)]),
                         ["pcap outside the test host holds the guest's echo requests"])
        self.assertEqual(self.failing(GOOD, [frame([10, 0, 2, 16], GW, 8)]),
                         ["pcap outside the test host holds the guest's echo requests"])

    def test_msi_instead_of_msix_fails(self):
        out = GOOD.replace("msi modes: 3 msix", "msi modes: 1 msi")
        self.assertEqual(self.failing(out), ["guest MSI-X rx/tx vectors fire"])

    def test_silent_tx_vector_fails(self):
        out = GOOD.replace("11   PCI-MSI 16385-edge", "0   PCI-MSI 16385-edge")
        self.assertEqual(self.failing(out), ["guest MSI-X rx/tx vectors fire"])

    def test_ping_failure_fails(self):
        out = GOOD.replace("E2E-GUEST: ping ok\nE2E-GUEST: ping| 3", "E2E-GUEST: ping failed\nE2E-GUEST: ping| 3", 1)
        self.assertEqual(self.failing(out), ["guest pings 10.0.2.2"])

    def test_intx_without_interrupts_fails(self):
        out = GOOD.replace("25   IO-APIC", "0   IO-APIC")
        self.assertEqual(self.failing(out),
                         ["INTx fallback (guest pci=nomsi): ping answered, INTx line counts"])

    def test_undelivered_msi_fails(self):
        out = GOOD.replace("seen=[   31.0] __common_interrupt: 0.223 No irq handler for vector",
                           "seen=none")
        self.assertEqual(self.failing(out),
                         ["MSI: a message written into the emulated MSI capability is delivered"])
        # An interrupt on some other vector is not ours.
        out = GOOD.replace("0.223 No irq", "0.34 No irq")
        self.assertEqual(self.failing(out),
                         ["MSI: a message written into the emulated MSI capability is delivered"])

    def test_hung_or_slow_teardown_fails(self):
        name = "VFIO teardown finishes in bounded time after every boot"
        intx = GOOD.index("E2E: === intx")
        hung = GOOD[:intx] + GOOD[intx:].replace(
            "E2E: SKIFF_RC=0", "E2E: HUNG intx: skiff still running\nE2E: SKIFF_RC=hung", 1)
        self.assertIn(name, self.failing(hung))
        self.assertIn("INTx fallback (guest pci=nomsi): ping answered, INTx line counts",
                      self.failing(hung))
        slow = GOOD.replace("container released in 1990 ms", "container released in 61000 ms", 1)
        self.assertEqual(self.failing(slow), [name])
        unlogged = GOOD.replace("skiff info vfio: device 0000:00:01.0 released", "x", 1)
        self.assertEqual(self.failing(unlogged), [name])

    def test_a_hang_is_a_fail_with_its_stacks_first(self):
        with tempfile.NamedTemporaryFile(suffix=".pcap", delete=False) as f:
            f.write(pcap(self.good_frames()))
        try:
            intx = GOOD.index("E2E: === intx")
            hung = GOOD[:intx] + GOOD[intx:].replace("E2E: SKIFF_RC=0\n", hung_section("intx"), 1)
            lines, failed = e2e.verdict(hung, f.name, 0)
            assert_hang_reported(self, lines, "intx")
            self.assertGreaterEqual(failed, 2)  # the hang and the INTx boot's checks
            lines, failed = e2e.verdict(GOOD, f.name, 0)
            self.assertEqual(failed, 0, lines)
        finally:
            os.unlink(f.name)

    def test_l1_soft_lockup_fails(self):
        out = GOOD + "E2E: l1-kernel| [  95.2] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [skiff:130]\n"
        self.assertEqual(self.failing(out),
                         ["L1 kernel: no soft lockup, hung task or DMA remapping fault"])

    def test_error_messages_are_checked(self):
        out = GOOD.replace("nodevice rc=2", "nodevice rc=1")
        self.assertEqual(self.failing(out), ["error: not a PCI device"])
        out = GOOD.replace("driver_override", "something")
        self.assertEqual(self.failing(out), ["error: device not bound to vfio-pci"])

    def test_no_direct_bar_fails(self):
        out = GOOD.replace("1 part(s) (0x20000", "0 part(s) (0x0").replace("2 part(s) (0x2000", "0 part(s) (0x0")
        self.assertEqual(self.failing(out),
                         ["BARs mapped into the guest as KVM slots, MSI-X table trapped"])

    def test_rom_shown_only_when_asked(self):
        name = "expansion ROM: read by the guest with rom=on (55 aa), absent without"
        self.assertEqual(self.failing(GOOD.replace("sig=55aa", "sig=ffff")), [name])
        self.assertEqual(self.failing(GOOD.replace("rom file=present sig=55aa", "rom file=absent")),
                         [name])
        self.assertEqual(self.failing(GOOD.replace("rom file=absent", "rom file=present sig=55aa")),
                         [name])

    def test_missing_guest_fails_its_checks(self):
        out = GOOD.split("E2E: === msix")[0] + "E2E: === msix\nE2E: SKIFF_RC=1\nE2E: === end\n"
        failed = self.failing(out)
        self.assertIn("guest e1000e driver binds", failed)
        self.assertIn("skiff exits 0", failed)


if __name__ == "__main__":
    unittest.main()
