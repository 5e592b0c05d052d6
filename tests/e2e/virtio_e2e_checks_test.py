#!/usr/bin/env python3
"""Checks of tests/e2e/virtio_e2e.py fed with made-up console output: a
healthy boot passes every check, and each way a device can break makes its
check (and only the checks that depend on it) fail.  No KVM, no test host."""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import virtio_e2e as e2e  # noqa: E402
from hang_watch_test import assert_hang_reported, hung_section  # noqa: E402

TAG = "0123456789ab"
RW, RO, DIRECT = "a" * 64, "b" * 64, "d" * 64
RW_AFTER, DIRECT_AFTER = "c" * 64, "e" * 64
PATTERN = e2e.sha256(e2e.pattern_block(TAG))


def with_rings(out, vhost_keys=()):
    """OUT with the ring layout the guest reports after every device's
    transport: packed (1), except on vhost-net (0)."""
    return re.sub(r"^SKIFF-E2E: (\S+)_transport=.*$",
                  lambda m: "%s\nSKIFF-E2E: %s_packed=%d"
                  % (m.group(0), m.group(1), 0 if m.group(1) in vhost_keys else 1),
                  out, flags=re.M)

BLK_NET = """\
SKIFF-GUEST: modules loaded=13 failed= none
SKIFF-E2E: rw_disk=vda
SKIFF-E2E: rw_transport=pci
SKIFF-E2E: rw_sha256={rw}
SKIFF-E2E: rw_write_rc=0
SKIFF-E2E: rw_readback_sha256={pat}
SKIFF-E2E: direct_disk=vdc
SKIFF-E2E: direct_transport=pci
SKIFF-E2E: direct_sha256={direct}
SKIFF-E2E: direct_write_rc=0
SKIFF-E2E: direct_readback_sha256={pat}
SKIFF-E2E: ro_disk=vdb
SKIFF-E2E: ro_transport=pci
SKIFF-E2E: ro_getro=1
SKIFF-E2E: ro_sha256={ro}
SKIFF-E2E: ro_write_rc=1
SKIFF-E2E: ro_after_sha256={ro}
SKIFF-E2E: net_nic=eth0 net_mac={mac}
SKIFF-E2E: net_transport=pci
SKIFF-E2E: net_ping_rc=0 net_ping_received=3
SKIFF-E2E: done=1
SKIFF-GUEST: poweroff
SKIFF_RC=0
L1-E2E: direct_odirect_seen=1
L1-E2E: rw_file_sha256={rw_after}
L1-E2E: ro_file_sha256={ro}
L1-E2E: rw_block_sha256={pat}
L1-E2E: direct_file_sha256={direct_after}
L1-E2E: direct_block_sha256={pat}
""".format(rw=RW, ro=RO, rw_after=RW_AFTER, direct=DIRECT, direct_after=DIRECT_AFTER,
           pat=PATTERN, mac=e2e.MAC)
BLK_NET = with_rings(BLK_NET)

# The e2e-arm64 boot: two CPUs, 256 MiB, a read-write and a read-only disk
# over virtio-mmio (platform bus) and a NIC.
SMP_BLK_NET = """\
SKIFF-GUEST: modules loaded=11 failed= none
SKIFF-GUEST: virtio disks=vda vdb nics=eth0 console=none
SKIFF-GUEST: cpus=2 mem_kb=233088 kernel=6.1.0-56-cloud-arm64
SKIFF-E2E: rw_disk=vda
SKIFF-E2E: rw_transport=platform
SKIFF-E2E: rw_sha256={rw}
SKIFF-E2E: rw_write_rc=0
SKIFF-E2E: rw_readback_sha256={pat}
SKIFF-E2E: ro_disk=vdb
SKIFF-E2E: ro_transport=platform
SKIFF-E2E: ro_getro=1
SKIFF-E2E: ro_sha256={ro}
SKIFF-E2E: ro_write_rc=1
SKIFF-E2E: ro_after_sha256={ro}
SKIFF-E2E: net_nic=eth0 net_mac={mac}
SKIFF-E2E: net_transport=platform
SKIFF-E2E: net_ping_rc=0 net_ping_received=3
SKIFF-E2E: done=1
SKIFF-GUEST: poweroff
SKIFF_RC=0
L1-E2E: rw_file_sha256={rw_after}
L1-E2E: ro_file_sha256={ro}
L1-E2E: rw_block_sha256={pat}
""".format(rw=RW, ro=RO, rw_after=RW_AFTER, pat=PATTERN, mac=e2e.MAC)
SMP_BLK_NET = with_rings(SMP_BLK_NET)

VHOST_HVC0 = """\
SKIFF-GUEST: modules loaded=13 failed= none
SKIFF-GUEST: hello from hvc0
SKIFF-E2E: net_nic=eth0 net_mac={mac}
SKIFF-E2E: net_transport=pci
SKIFF-E2E: net_ping_rc=0 net_ping_received=3
SKIFF-E2E: hvc0=present
SKIFF-E2E: hvc0_line={tag}
SKIFF-E2E: done=1
SKIFF-GUEST: poweroff
SKIFF_RC=0
L1-E2E: net_tap_seen=1 vhost_seen=1
""".format(mac=e2e.MAC, tag=TAG)
VHOST_HVC0 = with_rings(VHOST_HVC0, vhost_keys={"net"})

MULTI = """\
SKIFF-GUEST: modules loaded=13 failed= none
SKIFF-GUEST: virtio disks=vda vdb nics=eth0 eth1 console=none
SKIFF-GUEST: cpus=2 mem_kb=222508 kernel=6.1.0-56-cloud-amd64
SKIFF-E2E: blkpci_disk=vda
SKIFF-E2E: blkpci_transport=pci
SKIFF-E2E: blkpci_sha256={rw}
SKIFF-E2E: blkpci_write_rc=0
SKIFF-E2E: blkpci_readback_sha256={pat}
SKIFF-E2E: blkmmio_disk=vdb
SKIFF-E2E: blkmmio_transport=platform
SKIFF-E2E: blkmmio_sha256={direct}
SKIFF-E2E: blkmmio_write_rc=0
SKIFF-E2E: blkmmio_readback_sha256={pat}
SKIFF-E2E: mq_nic=eth0 mq_mac={mac}
SKIFF-E2E: mq_transport=pci
SKIFF-E2E: mq_ping_rc=0 mq_ping_received=3
SKIFF-E2E: mq_rxq=2 mq_txq=2
SKIFF-E2E: mq_q0_ping_rc=0 mq_q0_ping_received=2
SKIFF-E2E: mq_q0_irqs=4
SKIFF-E2E: mq_q1_ping_rc=0 mq_q1_ping_received=2
SKIFF-E2E: mq_q1_irqs=3
SKIFF-E2E: netmmio_nic=eth1 netmmio_mac=52:54:00:e2:e0:02
SKIFF-E2E: netmmio_transport=platform
SKIFF-E2E: netmmio_ping_rc=0 netmmio_ping_received=3
SKIFF-E2E: netmmio_rxq=1 netmmio_txq=1
SKIFF-E2E: done=1
SKIFF-GUEST: poweroff
SKIFF_RC=0
L1-E2E: mq_tap_seen=1 mq_tap_multi_queue=1
L1-E2E: blkpci_file_sha256={rw_after}
L1-E2E: blkpci_block_sha256={pat}
L1-E2E: blkmmio_file_sha256={direct_after}
L1-E2E: blkmmio_block_sha256={pat}
""".format(rw=RW, rw_after=RW_AFTER, direct=DIRECT, direct_after=DIRECT_AFTER, pat=PATTERN,
           mac=e2e.MAC)
MULTI = with_rings(MULTI)

RESET_CYCLE = """\
SKIFF-E2E: reset{c}_unbound=3 reset{c}_disks_left=0 reset{c}_nics_left=0 \
reset{c}_unbound_status=virtio0=0x00000001,virtio1=0x00000001,virtio2=0x00000001
SKIFF-E2E: reset{c}_disks=1 reset{c}_nics=2 \
reset{c}_bound_status=virtio0=0x0000000f,virtio1=0x0000000f,virtio2=0x0000000f
SKIFF-E2E: reset{c}_rw_disk=vda
SKIFF-E2E: reset{c}_rw_sha256={rw_after}
SKIFF-E2E: reset{c}_net_nic=eth0 reset{c}_net_mac={mac}
SKIFF-E2E: reset{c}_net_transport=pci
SKIFF-E2E: reset{c}_net_ping_rc=0 reset{c}_net_ping_received=3
SKIFF-E2E: reset{c}_vhost_nic=eth1 reset{c}_vhost_mac=52:54:00:e2:e0:02
SKIFF-E2E: reset{c}_vhost_transport=pci
SKIFF-E2E: reset{c}_vhost_ping_rc=0 reset{c}_vhost_ping_received=3
SKIFF-E2E: reset{c}_kernel_complaints=0
"""

RESET = """\
SKIFF-GUEST: modules loaded=13 failed= none
SKIFF-E2E: rw_disk=vda
SKIFF-E2E: rw_transport=pci
SKIFF-E2E: rw_sha256={rw}
SKIFF-E2E: rw_write_rc=0
SKIFF-E2E: rw_readback_sha256={pat}
SKIFF-E2E: net_nic=eth0 net_mac={mac}
SKIFF-E2E: net_transport=pci
SKIFF-E2E: net_ping_rc=0 net_ping_received=3
SKIFF-E2E: vhost_nic=eth1 vhost_mac=52:54:00:e2:e0:02
SKIFF-E2E: vhost_transport=pci
SKIFF-E2E: vhost_ping_rc=0 vhost_ping_received=3
{cycles}SKIFF-E2E: done=1
SKIFF-GUEST: poweroff
SKIFF_RC=0
L1-E2E: vhost_tap_seen=1 vhost_seen=1
L1-E2E: rw_file_sha256={rw_after}
L1-E2E: rw_block_sha256={pat}
""".format(rw=RW, rw_after=RW_AFTER, pat=PATTERN, mac=e2e.MAC,
           cycles="".join(RESET_CYCLE.format(c=c, rw_after=RW_AFTER, mac=e2e.MAC)
                          for c in (1, 2)))
RESET = with_rings(RESET, vhost_keys={"vhost", "reset1_vhost", "reset2_vhost"})

CTX = {"tag": TAG, "pattern_sha": PATTERN,
       "rw": {"size": 1, "sha": RW, "after_sha": RW_AFTER},
       "ro": {"size": 2, "sha": RO, "after_sha": RO},
       "direct": {"size": 3, "sha": DIRECT, "after_sha": DIRECT_AFTER}}
MULTI_CTX = {"tag": TAG, "pattern_sha": PATTERN,
             "blkpci": {"size": 4, "sha": RW, "after_sha": RW_AFTER},
             "blkmmio": {"size": 3, "sha": DIRECT, "after_sha": DIRECT_AFTER}}


def failing(boot, out, rc=0, transport="pci", ctx=CTX):
    c = e2e.Checks(out, rc, "skiff", boot, transport)
    return sorted(n for n in e2e.BOOTS[boot].checks if getattr(c, n.replace("-", "_"))(ctx))


class SmpBlkNet(unittest.TestCase):
    def failing(self, out, rc=0):
        return failing("smp-blk-net", out, rc, transport="mmio")

    def breaks(self, old, new):
        self.assertIn(old, SMP_BLK_NET)
        return self.failing(SMP_BLK_NET.replace(old, new))

    def test_healthy_boot_passes_everything(self):
        self.assertEqual(self.failing(SMP_BLK_NET), [])

    def test_one_cpu_seen(self):
        self.assertEqual(self.breaks("cpus=2 ", "cpus=1 "), ["devices-seen"])

    def test_memory_seen(self):
        # Far less than given, more than given, or not reported at all.
        self.assertEqual(self.breaks("mem_kb=233088", "mem_kb=120000"), ["guest-memory"])
        self.assertEqual(self.breaks("mem_kb=233088", "mem_kb=300000"), ["guest-memory"])
        self.assertEqual(self.breaks("SKIFF-GUEST: cpus=2 mem_kb=233088 kernel", "x"),
                         ["devices-seen", "guest-memory"])

    def test_wrong_transport(self):
        self.assertEqual(self.breaks("rw_transport=platform", "rw_transport=pci"),
                         ["blk-readwrite"])
        self.assertEqual(self.breaks("net_transport=platform", "net_transport=pci"), ["net-ping"])

    def test_disk_missing(self):
        self.assertEqual(self.breaks("vda vdb nics", "vda nics"), ["devices-seen"])

    def test_write_lost_or_readonly_written(self):
        self.assertEqual(self.breaks("rw_file_sha256=" + RW_AFTER, "rw_file_sha256=" + RW),
                         ["blk-readwrite"])
        self.assertEqual(self.breaks("ro_write_rc=1", "ro_write_rc=0"), ["blk-readonly"])

    def test_no_ping_or_no_exit(self):
        self.assertEqual(self.breaks("net_ping_received=3", "net_ping_received=0"), ["net-ping"])
        self.assertEqual(self.failing(SMP_BLK_NET, rc=3), ["vmm-exit"])


class BlkNet(unittest.TestCase):
    def test_healthy_boot_passes_everything(self):
        self.assertEqual(failing("blk-net", BLK_NET), [])

    def breaks(self, old, new):
        self.assertIn(old, BLK_NET)
        return failing("blk-net", BLK_NET.replace(old, new))

    def test_wrong_disk_contents(self):
        self.assertEqual(self.breaks("rw_sha256=" + RW, "rw_sha256=" + "0" * 64),
                         ["blk-readwrite"])

    def test_write_not_in_file(self):
        self.assertEqual(self.breaks("rw_file_sha256=" + RW_AFTER, "rw_file_sha256=" + RW),
                         ["blk-readwrite"])
        self.assertEqual(self.breaks("rw_block_sha256=" + PATTERN, "rw_block_sha256=x"),
                         ["blk-readwrite"])

    def test_write_failed(self):
        self.assertEqual(self.breaks("rw_write_rc=0", "rw_write_rc=1"), ["blk-readwrite"])
        self.assertEqual(self.breaks("direct_write_rc=0", "direct_write_rc=1"), ["blk-direct"])

    def test_direct_write_not_in_file(self):
        self.assertEqual(self.breaks("direct_file_sha256=" + DIRECT_AFTER,
                                     "direct_file_sha256=" + DIRECT), ["blk-direct"])

    def test_direct_image_not_opened_with_o_direct(self):
        self.assertEqual(self.breaks("direct_odirect_seen=1", "direct_odirect_seen=0"), ["blk-direct"])

    def test_direct_setup_failed_in_l1(self):
        self.assertEqual(failing("blk-net", BLK_NET + "L1-E2E: ext2_setup=failed\n"),
                         ["blk-direct"])

    def test_no_disks(self):
        self.assertEqual(self.breaks("rw_disk=vda", "rw_disk=none"), ["blk-readwrite"])
        self.assertEqual(self.breaks("direct_disk=vdc", "direct_disk=none"), ["blk-direct"])
        self.assertEqual(self.breaks("ro_disk=vdb", "ro_disk=none"), ["blk-readonly"])

    def test_readonly_disk_accepted_a_write(self):
        self.assertEqual(self.breaks("ro_write_rc=1", "ro_write_rc=0"), ["blk-readonly"])

    def test_readonly_file_changed(self):
        self.assertEqual(self.breaks("ro_file_sha256=" + RO, "ro_file_sha256=" + RW),
                         ["blk-readonly"])

    def test_split_rings_from_skiff(self):
        # Skiff offers packed virtqueues; a device the guest drives with
        # split rings means the offer or the negotiation broke.
        self.assertEqual(self.breaks("rw_packed=1", "rw_packed=0"), ["blk-readwrite"])
        self.assertEqual(self.breaks("ro_packed=1", "ro_packed=0"), ["blk-readonly"])
        self.assertEqual(self.breaks("net_packed=1", "net_packed=0"), ["net-ping"])
        self.assertEqual(self.breaks("net_packed=1", ""), ["net-ping"])

    def test_qemu_leaves_packed_rings_off(self):
        c = e2e.Checks(BLK_NET, 0, "qemu", "blk-net", "pci")
        self.assertNotEqual(c.blk_readwrite(CTX), [])
        split = BLK_NET.replace("_packed=1", "_packed=0")
        c = e2e.Checks(split, 0, "qemu", "blk-net", "pci")
        self.assertEqual(c.blk_readwrite(CTX), [])
        self.assertEqual(c.net_ping(CTX), [])

    def test_readonly_flag_missing(self):
        self.assertEqual(self.breaks("ro_getro=1", "ro_getro=0"), ["blk-readonly-flag"])

    def test_ping_lost(self):
        self.assertEqual(self.breaks("net_ping_received=3", "net_ping_received=2"), ["net-ping"])

    def test_wrong_mac(self):
        self.assertEqual(self.breaks(e2e.MAC, "52:54:00:00:00:00"), ["net-ping"])

    def test_module_failed(self):
        self.assertEqual(self.breaks("failed= none", "failed= virtio_mmio"), ["guest-modules"])

    def test_vmm_exit_status_and_poweroff(self):
        self.assertEqual(failing("blk-net", BLK_NET, rc=1), ["vmm-exit"])
        self.assertEqual(self.breaks("SKIFF-GUEST: poweroff", ""), ["vmm-exit"])
        self.assertEqual(self.breaks("done=1", "done=0"), ["vmm-exit"])


class VhostHvc0(unittest.TestCase):
    def breaks(self, old, new):
        self.assertIn(old, VHOST_HVC0)
        return failing("vhost-hvc0", VHOST_HVC0.replace(old, new))

    def test_healthy_boot_passes_everything(self):
        self.assertEqual(failing("vhost-hvc0", VHOST_HVC0), [])

    def test_packed_ring_on_vhost(self):
        # Linux's vhost-net has no packed rings: Skiff must not offer them.
        self.assertEqual(self.breaks("net_packed=0", "net_packed=1"), ["net-ping-vhost"])

    def test_vhost_not_used(self):
        self.assertEqual(self.breaks("vhost_seen=1", "vhost_seen=0"), ["net-ping-vhost"])

    def test_tap_not_created(self):
        self.assertEqual(self.breaks("net_tap_seen=1", "net_tap_seen=0"), ["net-tap-created"])

    def test_hvc0_line_missing(self):
        self.assertEqual(self.breaks("SKIFF-E2E: hvc0_line=" + TAG, ""), ["console-hvc0"])
        self.assertEqual(self.breaks("SKIFF-GUEST: hello from hvc0", ""), ["console-hvc0"])


class Multi(unittest.TestCase):
    def breaks(self, old, new, count=1):
        self.assertIn(old, MULTI)
        return failing("multi", MULTI.replace(old, new, count), ctx=MULTI_CTX)

    def test_healthy_boot_passes_everything(self):
        self.assertEqual(failing("multi", MULTI, ctx=MULTI_CTX), [])

    def test_device_or_cpu_missing(self):
        self.assertEqual(self.breaks("nics=eth0 eth1", "nics=eth0"), ["devices-seen"])
        self.assertEqual(self.breaks("disks=vda vdb", "disks=vda"), ["devices-seen"])
        self.assertEqual(self.breaks("cpus=2", "cpus=1"), ["devices-seen"])

    def test_device_on_the_wrong_transport(self):
        self.assertEqual(self.breaks("blkmmio_transport=platform", "blkmmio_transport=pci"),
                         ["blk-mmio"])
        self.assertEqual(self.breaks("blkpci_transport=pci", "blkpci_transport=platform"),
                         ["blk-pci"])
        self.assertEqual(self.breaks("mq_transport=pci", "mq_transport=platform"),
                         ["net-ping-mq"])
        self.assertEqual(self.breaks("netmmio_transport=platform", "netmmio_transport=pci"),
                         ["net-ping-mmio"])

    def test_disk_contents(self):
        self.assertEqual(self.breaks("blkmmio_sha256=" + DIRECT, "blkmmio_sha256=" + RW),
                         ["blk-mmio"])
        self.assertEqual(self.breaks("blkpci_file_sha256=" + RW_AFTER,
                                     "blkpci_file_sha256=" + RW), ["blk-pci"])

    def test_one_nic_cannot_ping(self):
        self.assertEqual(self.breaks("netmmio_ping_received=3", "netmmio_ping_received=0"),
                         ["net-ping-mmio"])
        self.assertEqual(self.breaks("netmmio_nic=eth1", "netmmio_nic=none"),
                         ["net-ping-mmio"])

    def test_single_queue(self):
        self.assertEqual(self.breaks("mq_rxq=2 mq_txq=2", "mq_rxq=1 mq_txq=1"),
                         ["net-mq-channels"])
        self.assertEqual(self.breaks("mq_tap_multi_queue=1", "mq_tap_multi_queue=0"),
                         ["net-mq-channels"])

    def test_vmm_warned(self):
        self.assertEqual(failing("multi", MULTI + "8803.100000 warn virtio: virtio-net (tap "
                                 "skiff0) rx0: chain 0 has no writable bytes; the device needs "
                                 "a reset\n", ctx=MULTI_CTX), ["vmm-no-warnings"])
        self.assertEqual(failing("multi", MULTI + "8800.100000 info boot: VMM start\n",
                                 ctx=MULTI_CTX), [])

    def test_second_queue_pair_dead(self):
        self.assertEqual(self.breaks("mq_q1_ping_received=2", "mq_q1_ping_received=0"),
                         ["net-mq-traffic"])
        self.assertEqual(self.breaks("mq_q1_irqs=3", "mq_q1_irqs=0"), ["net-mq-traffic"])
        self.assertEqual(self.breaks("mq_q1_irqs=3", "mq_q1_irqs=-2"), ["net-mq-traffic"])

    def test_guest_died_early(self):
        out = (MULTI[:MULTI.index("SKIFF-E2E: mq_nic")] + "SKIFF_RC=1\n"
               + MULTI[MULTI.index("L1-E2E:"):])
        self.assertEqual(failing("multi", out, rc=1, ctx=MULTI_CTX),
                         ["net-mq-channels", "net-mq-traffic", "net-ping-mmio", "net-ping-mq",
                          "vmm-exit"])


class Reset(unittest.TestCase):
    def breaks(self, old, new, count=1):
        self.assertIn(old, RESET)
        return failing("reset", RESET.replace(old, new, count))

    def test_healthy_boot_passes_everything(self):
        self.assertEqual(failing("reset", RESET), [])

    def test_device_not_reset(self):
        self.assertEqual(self.breaks("virtio1=0x00000001", "virtio1=0x0000000f"),
                         ["reset-unbind"])
        self.assertEqual(self.breaks("reset2_disks_left=0", "reset2_disks_left=1"),
                         ["reset-unbind"])

    def test_device_not_back(self):
        self.assertEqual(self.breaks("virtio2=0x0000000f", "virtio2=0x0000008f"),
                         ["reset-rebind"])
        self.assertEqual(self.breaks("reset2_nics=2", "reset2_nics=1"), ["reset-rebind"])
        self.assertEqual(self.breaks("reset1_kernel_complaints=0", "reset1_kernel_complaints=1"),
                         ["reset-rebind"])

    def test_io_after_reset(self):
        self.assertEqual(self.breaks("reset2_rw_sha256=" + RW_AFTER, "reset2_rw_sha256=" + RW),
                         ["blk-after-reset"])
        self.assertEqual(self.breaks("reset1_rw_disk=vda", "reset1_rw_disk=none"),
                         ["blk-after-reset"])
        self.assertEqual(self.breaks("reset2_vhost_ping_received=3",
                                     "reset2_vhost_ping_received=0"), ["net-after-reset"])

    def test_activation_refused(self):
        self.assertEqual(failing("reset", RESET + "8809.000000 error virtio: virtio-blk "
                                 "(/e2e/rw.img): activation refused: queue 0 not ready\n"),
                         ["vmm-no-warnings"])

    def test_hung_in_the_first_reset(self):
        # The VMM was killed (timeout -s KILL); L1 still reports the files.
        out = (RESET[:RESET.index("SKIFF-E2E: reset1_unbound")] + "SKIFF_RC=137\n"
               + RESET[RESET.index("L1-E2E:"):])
        self.assertEqual(failing("reset", out, rc=137),
                         ["blk-after-reset", "net-after-reset", "reset-rebind", "reset-unbind",
                          "vmm-exit"])

    def test_hung_vmm_is_a_fail_with_its_stacks(self):
        # The watchdog reported the VMM hung in its start-up and killed it:
        # the hang comes first, with its stack, and the guest's checks fail.
        out = hung_section("reset") + "SKIFF_RC=137\n" + RESET[RESET.index("L1-E2E:"):]
        lines, failed = e2e.verdict(out, 0, "skiff", "reset", "pci", "x86_64", CTX)
        assert_hang_reported(self, lines, "reset")
        self.assertIn("FAIL: vmm-exit [pci]: the VMM exited 137, expected 0", "\n".join(lines))
        self.assertEqual(failed, 1 + len(e2e.BOOTS["reset"].checks) - 1, lines)
        # It could not be killed: no exit status, the hang is still first.
        out = hung_section("reset") + RESET[RESET.index("L1-E2E:"):]
        lines, failed = e2e.verdict(out, 0, "skiff", "reset", "pci", "x86_64", CTX)
        assert_hang_reported(self, lines, "reset")
        self.assertIn("the VMM's exit status was not reported", lines[1])
        # And when the test host gave up too.
        lines, _ = e2e.verdict(out, 125, "skiff", "reset", "pci", "x86_64", CTX)
        assert_hang_reported(self, lines, "reset")

    def test_healthy_verdict(self):
        lines, failed = e2e.verdict(RESET, 0, "skiff", "reset", "pci", "x86_64", CTX)
        self.assertEqual(failed, 0, lines)
        self.assertEqual(lines[-1], "10 of 10 checks passed")

    def test_transport_comes_from_the_machine(self):
        # The same output from an mmio machine: every device is on the wrong bus.
        self.assertEqual(failing("reset", RESET, transport="mmio"),
                         ["blk-readwrite", "net-after-reset", "net-ping", "net-ping-vhost"])


class Boots(unittest.TestCase):
    def test_roles_are_unique_within_a_boot(self):
        # The roles prefix the keys: a disk and a NIC of one role would mix.
        for name, boot in e2e.BOOTS.items():
            roles = [d.role for d in boot.disks] + [n.role for n in boot.nics]
            self.assertEqual(len(roles), len(set(roles)), name)

    def test_every_check_exists(self):
        c = e2e.Checks("", 0, "skiff", "blk-net", "pci")
        for boot in e2e.BOOTS.values():
            for name in boot.checks:
                self.assertTrue(callable(getattr(c, name.replace("-", "_"), None)), name)


class Pattern(unittest.TestCase):
    def test_pattern_is_one_block_like_the_guest_script(self):
        block = e2e.pattern_block(TAG)
        self.assertEqual(len(block), 4096)
        self.assertTrue(block.startswith(b"skiff-e2e %s 0 " % TAG.encode()))
        with open(e2e.GUEST_SCRIPT) as f:
            self.assertIn("printf '%-31s\\n' \"skiff-e2e $TAG $i\"", f.read())


if __name__ == "__main__":
    unittest.main()
