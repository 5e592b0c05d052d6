#!/usr/bin/env python3
"""The verdict of tests/e2e/boot_e2e.py on made-up console output: healthy
boots pass, a wrong exit code or a missing banner fails, and a hang that
hang_watch reported is a FAIL with its stacks, first.  No KVM, no test
host."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import boot_e2e as e2e  # noqa: E402
from hang_watch_test import assert_hang_reported, hung_section  # noqa: E402

BOOT_2CPU = """\
E2E: === boot
0.120000 info boot: VMM start
SKIFF-GUEST: cpus=2 mem_kb=232000 kernel=6.1.0-28-cloud-amd64
SKIFF-GUEST: self-check ok
SKIFF-GUEST: poweroff
9.800000 info vmm: stopped: guest powered off (ACPI S5) (exit code 0)
E2E: SKIFF_RC=0
E2E: teardown-seconds boot=0
"""


class BootVerdictTest(unittest.TestCase):
    def test_a_healthy_boot_passes(self):
        self.assertEqual(e2e.verdict(BOOT_2CPU, 0, "boot-2cpu"), (["PASS: boot-2cpu"], 0))

    def test_wrong_cpus_or_exit_code_fails(self):
        lines, failed = e2e.verdict(BOOT_2CPU, 0, "boot-1cpu")
        self.assertEqual((lines, failed), (["FAIL: guest saw 2 CPUs, expected 1"], 1))
        lines, failed = e2e.verdict(BOOT_2CPU.replace("SKIFF_RC=0", "SKIFF_RC=1"), 0,
                                    "boot-2cpu")
        self.assertEqual((lines, failed), (["FAIL: skiff exited 1, expected 0"], 1))

    def test_a_hang_is_a_fail_with_its_stacks_first(self):
        out = "E2E: === boot\n" + hung_section("boot") + "E2E: SKIFF_RC=137\n"
        lines, failed = e2e.verdict(out, 0, "boot-2cpu")
        assert_hang_reported(self, lines, "boot")
        self.assertEqual(lines[-1], "FAIL: skiff exited 137, expected 0")
        self.assertEqual(failed, 2)
        # Also when the test host gave up (the VMM would not die).
        lines, failed = e2e.verdict("E2E: === boot\n" + hung_section("boot"), 125, "boot-2cpu")
        assert_hang_reported(self, lines, "boot")
        self.assertEqual(failed, 2)

    def test_the_l1_script_parses(self):
        self.assertIn("bounded_boot boot --initramfs /tmp/initrd --cpus 2",
                      e2e.l1_command(2, "256M", "/tmp/initrd", "true && "))


if __name__ == "__main__":
    unittest.main()
