#!/usr/bin/env python3
"""Checks of tests/e2e/virtio_e2e.py fed with made-up console output: a
healthy boot passes every check, and each way a device can break makes its
check (and only the checks that depend on it) fail.  No KVM, no test host."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import virtio_e2e as e2e  # noqa: E402

TAG = "0123456789ab"
RW, RO, DIRECT = "a" * 64, "b" * 64, "d" * 64
RW_AFTER, DIRECT_AFTER = "c" * 64, "e" * 64
PATTERN = e2e.sha256(e2e.pattern_block(TAG))

BLK_NET = """\
SKIFF-GUEST: modules loaded=13 failed= none
SKIFF-E2E: rw_disk=vda
SKIFF-E2E: rw_sha256={rw}
SKIFF-E2E: rw_write_rc=0
SKIFF-E2E: rw_readback_sha256={pat}
SKIFF-E2E: direct_disk=vdc
SKIFF-E2E: direct_sha256={direct}
SKIFF-E2E: direct_write_rc=0
SKIFF-E2E: direct_readback_sha256={pat}
SKIFF-E2E: ro_disk=vdb
SKIFF-E2E: ro_getro=1
SKIFF-E2E: ro_sha256={ro}
SKIFF-E2E: ro_write_rc=1
SKIFF-E2E: ro_after_sha256={ro}
SKIFF-E2E: nic=eth0 mac={mac}
SKIFF-E2E: ping_rc=0 ping_received=3
SKIFF-E2E: done=1
SKIFF-GUEST: poweroff
SKIFF_RC=0
L1-E2E: odirect_seen=1
L1-E2E: rw_file_sha256={rw_after}
L1-E2E: ro_file_sha256={ro}
L1-E2E: rw_block_sha256={pat}
L1-E2E: direct_file_sha256={direct_after}
L1-E2E: direct_block_sha256={pat}
""".format(rw=RW, ro=RO, rw_after=RW_AFTER, direct=DIRECT, direct_after=DIRECT_AFTER,
           pat=PATTERN, mac=e2e.MAC)

VHOST_HVC0 = """\
SKIFF-GUEST: modules loaded=13 failed= none
SKIFF-GUEST: hello from hvc0
SKIFF-E2E: nic=eth0 mac={mac}
SKIFF-E2E: ping_rc=0 ping_received=3
SKIFF-E2E: hvc0=present
SKIFF-E2E: hvc0_line={tag}
SKIFF-E2E: done=1
SKIFF-GUEST: poweroff
SKIFF_RC=0
L1-E2E: tap_seen=1 vhost_seen=1
""".format(mac=e2e.MAC, tag=TAG)

CTX = {"tag": TAG, "pattern_sha": PATTERN,
       "rw": {"size": 1, "sha": RW, "after_sha": RW_AFTER},
       "ro": {"size": 2, "sha": RO, "after_sha": RO},
       "direct": {"size": 3, "sha": DIRECT, "after_sha": DIRECT_AFTER}}


def failing(boot, out, rc=0):
    c = e2e.Checks(out, rc, "skiff")
    return sorted(n for n in e2e.BOOTS[boot] if getattr(c, n.replace("-", "_"))(CTX))


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
        self.assertEqual(self.breaks("odirect_seen=1", "odirect_seen=0"), ["blk-direct"])

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

    def test_readonly_flag_missing(self):
        self.assertEqual(self.breaks("ro_getro=1", "ro_getro=0"), ["blk-readonly-flag"])

    def test_ping_lost(self):
        self.assertEqual(self.breaks("ping_received=3", "ping_received=2"), ["net-ping"])

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

    def test_vhost_not_used(self):
        self.assertEqual(self.breaks("vhost_seen=1", "vhost_seen=0"), ["net-ping-vhost"])

    def test_tap_not_created(self):
        self.assertEqual(self.breaks("tap_seen=1", "tap_seen=0"), ["net-tap-created"])

    def test_hvc0_line_missing(self):
        self.assertEqual(self.breaks("SKIFF-E2E: hvc0_line=" + TAG, ""), ["console-hvc0"])
        self.assertEqual(self.breaks("SKIFF-GUEST: hello from hvc0", ""), ["console-hvc0"])


class Pattern(unittest.TestCase):
    def test_pattern_is_one_block_like_the_guest_script(self):
        block = e2e.pattern_block(TAG)
        self.assertEqual(len(block), 4096)
        self.assertTrue(block.startswith(b"skiff-e2e %s 0 " % TAG.encode()))
        with open(e2e.GUEST_SCRIPT) as f:
            self.assertIn("printf '%-31s\\n' \"skiff-e2e $TAG $i\"", f.read())


if __name__ == "__main__":
    unittest.main()
