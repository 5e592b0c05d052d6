#!/usr/bin/env python3
"""Checks of tests/e2e/fault_e2e.py fed with made-up L1 output: a healthy run
passes every check, and each way Skiff can mishandle a fault makes its check
fail.  No KVM, no test host."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_e2e as e2e  # noqa: E402
from hang_watch_test import assert_hang_reported, hung_section  # noqa: E402

TAG = "cafe01"
ZERO = "f" * 64


def blk(n):
    return e2e.sha256(e2e.numbered_block(TAG, n))


def healthy():
    """key -> value for the guest ('g') and L1 ('l'), as a good run prints."""
    g = {"good_disk": "vda", "full_disk": "vdb", "raw_disk": "vdc", "nic": "eth0",
         "full_direct_rc": 1, "full_fsync_rc": 1, "full_ioerr_logged": 2,
         "full_read_sha256": ZERO, "good_write_rc": 0, "good_readback_sha256": blk("good"),
         "net_ping_received": 3, "tap_down_please": 1, "net_after_ping_done": 1,
         "after_tap_good_sha256": "a" * 64, "a_writer_running_at_unbind": 1,
         "a_unbind_status": "0x00000001", "a_rebound_disk": "vda",
         "b_reset_done": 1, "b_status_after": 0, "b_good_sha256_after": blk("good"),
         "done": 1}
    l1 = {"small_free_kb": 0, "tap_down_rc": 0, "tap_deleted_rc": 0, "sigterm_sent": 1,
          "full_file_sha256": ZERO, "good_block_sha256": blk("good")}
    for i in range(10):
        g["a_acked_%d" % i] = 1
        g["a_read_%d" % i] = blk("a%d" % i)
        l1["a_file_%d" % i] = blk("a%d" % i)
    for i in range(20):
        g["b_acked_%d" % i] = 1
        l1["b_file_%d" % i] = blk("b%d" % i)
    return g, l1


def render(g, l1, rc=6, extra=""):
    lines = ["SKIFF-E2E: %s=%s" % kv for kv in g.items()]
    lines += ["L1-E2E: %s=%s" % kv for kv in l1.items()]
    lines.append("[  2.9] skiff info vmm: seccomp filters installed (--seccomp on)")
    lines.append("[ 60.1] skiff info vmm: stopped: stopped by signal Terminated (exit code 6)")
    lines.append("SKIFF_RC=%d" % rc)
    return "\n".join(lines) + "\n" + extra


def failing(g, l1, **kw):
    c = e2e.Checks(render(g, l1, **kw), kw.get("rc", 6),
                   {"tag": TAG, "good_after_block_sha": "a" * 64})
    return [name for name in e2e.CHECKS if getattr(c, name.replace("-", "_"))()]


CTX = {"tag": TAG, "good_after_block_sha": "a" * 64}


class FaultChecksTest(unittest.TestCase):
    def test_healthy_run_passes(self):
        self.assertEqual(failing(*healthy()), [])
        lines, failed = e2e.verdict(render(*healthy()), 0, CTX)
        self.assertEqual(failed, 0, lines)

    def test_a_hang_is_a_fail_with_its_stacks_first(self):
        g, l1 = healthy()
        lines, failed = e2e.verdict(hung_section("fault") + render(g, l1, rc=137), 0, CTX)
        assert_hang_reported(self, lines, "fault")
        self.assertIn("FAIL: vmm-sigterm-exit: Skiff exited 137", "\n".join(lines))
        self.assertEqual(failed, 2, lines)
        # Unkillable: no exit status; every check fails after the hang.
        lines, failed = e2e.verdict(hung_section("fault"), 0, CTX)
        assert_hang_reported(self, lines, "fault")
        self.assertEqual(failed, 1 + len(e2e.CHECKS))

    def test_a_failed_write_reported_as_success_fails(self):
        g, l1 = healthy()
        g["full_fsync_rc"] = 0
        self.assertEqual(failing(g, l1), ["blk-full-ioerr"])

    def test_a_tmpfs_with_room_left_fails(self):
        g, l1 = healthy()
        l1["small_free_kb"] = 4
        self.assertEqual(failing(g, l1), ["blk-full-ioerr"])

    def test_reads_that_differ_from_the_file_fail(self):
        g, l1 = healthy()
        g["full_read_sha256"] = "0" * 64
        self.assertEqual(failing(g, l1), ["blk-full-reads"])

    def test_an_acknowledged_block_missing_from_the_file_fails(self):
        for prefix, check in (("a", "reset-unbind-write"), ("b", "reset-raw-write")):
            g, l1 = healthy()
            l1["%s_file_3" % prefix] = "0" * 64
            self.assertEqual(failing(g, l1), [check])

    def test_an_unbind_after_the_writer_finished_proves_nothing(self):
        g, l1 = healthy()
        g["a_writer_running_at_unbind"] = 0
        self.assertEqual(failing(g, l1), ["reset-unbind-write"])

    def test_a_raw_reset_after_every_write_proves_nothing(self):
        g, l1 = healthy()
        for i in range(e2e.B_COUNT):
            g["b_acked_%d" % i] = 1
            l1["b_file_%d" % i] = blk("b%d" % i)
        self.assertEqual(failing(g, l1), ["reset-raw-write"])

    def test_a_device_that_ignores_the_reset_fails(self):
        g, l1 = healthy()
        g["b_status_after"] = 15
        self.assertEqual(failing(g, l1), ["reset-raw-write"])

    def test_disk_io_broken_after_the_tap_went_fails(self):
        g, l1 = healthy()
        g["after_tap_good_sha256"] = "0" * 64
        self.assertEqual(failing(g, l1), ["net-tap-vanishes"])

    def test_a_seccomp_refusal_fails(self):
        g, l1 = healthy()
        extra = ("skiff: seccomp: the io thread made a system call outside its allow-list: "
                 "socket (41)\n")
        self.assertIn("vmm-stays-up", failing(g, l1, extra=extra))

    def test_a_guest_that_never_finished_fails(self):
        g, l1 = healthy()
        del g["done"]
        self.assertIn("vmm-stays-up", failing(g, l1))

    def test_a_wrong_exit_code_after_sigterm_fails(self):
        g, l1 = healthy()
        self.assertEqual(failing(g, l1, rc=1), ["vmm-sigterm-exit"])


if __name__ == "__main__":
    unittest.main()
