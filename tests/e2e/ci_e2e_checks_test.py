#!/usr/bin/env python3
"""Checks of tests/e2e/ci_e2e.py fed with made-up L1 output: healthy runs
pass every check, and each way a CI feature can break makes its check (and
only that one) fail.  No KVM, no test host."""
import base64
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ci_e2e as e2e  # noqa: E402
from hang_watch_test import assert_hang_reported, hung_section  # noqa: E402

LINUX = "[    0.000000] Linux version 6.1.0-56-cloud-amd64 (gcc-12) #1 SMP"
JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="skiff" tests="3" failures="2" errors="0" skipped="0" time="8.001">
  <testsuite name="skiff" tests="3" failures="2" errors="0" skipped="0" time="8.001">
    <properties><property name="exit_code" value="5"/></properties>
    <testcase classname="skiff" name="boot vmlinuz" time="8.001">
      <failure type="exit code 5" message="timeout">timeout</failure>
      <system-out>[    0.1] more
SKIFF-E2E: sleeping</system-out>
    </testcase>
    <testcase classname="skiff.expect" name="Linux version \\S+" time="1.000"/>
    <testcase classname="skiff.expect" name="never printed" time="8.001">
      <failure type="expect" message="not seen on the console">not seen</failure>
    </testcase>
  </testsuite>
</testsuites>
"""
SERIAL = "[   1.000000] %s\r\n[   1.100000] [    0.1] more\r\n" % LINUX
LOG = """812.000100 info boot: VMM start
812.004200 info boot: first KVM_RUN: 0.004100 s after VMM start
812.004900 info pci: 00:01.0 virtio-blk
812.500000 info boot: first guest console output: 0.495800 s after first KVM_RUN (0.499900 s after VMM start)
818.000000 info boot: guest userspace: 5.500000 s after first guest console output (5.999900 s after VMM start); console: "SKIFF-GUEST: cpus=1 mem_kb=1"
819.000000 info vmm: stopped: every --expect pattern was seen (2) (exit code 0)
"""


def healthy():
    return {
        "exit-device": {"rc": 7, "out": ["SKIFF-E2E: mode=exitdev", "SKIFF-E2E: acpi_exit_device=1"],
                        "err": ["skiff: guest chose exit code 7 (exit device)"]},
        "isa-debug-exit": {"rc": 11, "out": ["SKIFF-E2E: mode=isa"],
                           "err": ["skiff: guest wrote 0x5 to isa-debug-exit: exit code 11"]},
        "expect": {"rc": 0, "out": ["SKIFF-GUEST: cpus=1 mem_kb=1", "SKIFF-E2E: sleeping"],
                   "err": []},
        "expect-fail": {"rc": 120, "out": [LINUX],
                        "err": ["skiff: the console matched --expect-fail '%s': %s"
                                % (e2e.FIRST_LINE, LINUX)]},
        "timeout": {"rc": 5, "seconds": 9.0, "out": [LINUX, "SKIFF-E2E: sleeping"],
                    "err": ["skiff: timeout: the guest was still running after 8s (--timeout)"]},
    }


PANIC_JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="skiff" tests="1" failures="1" errors="0" skipped="0" time="9.400">
  <testsuite name="skiff" tests="1" failures="1" errors="0" skipped="0" time="9.400">
    <testcase classname="skiff" name="boot vmlinuz" time="9.400"/>
  </testsuite>
</testsuites>
"""
PANIC_SERIAL = ("[   9.000000] SKIFF-E2E: panicking\r\n"
                "[   9.100000] [    8.1] sysrq: Trigger a crash\r\n"
                "[   9.200000] [    8.3] Kernel panic - not syncing: sysrq triggered crash\r\n")


def healthy_arm64():
    return {
        "exit-device": {"rc": 7, "out": ["SKIFF-E2E: mode=exitdt",
                                         "SKIFF-E2E: dt_exit_node=/exit-device@b020000",
                                         "SKIFF-E2E: dt_exit_device=0x000000000b020000"],
                        "err": ["skiff: guest chose exit code 7 (exit device)"]},
        "reboot": {"rc": 0, "out": ["SKIFF-E2E: mode=reboot", "SKIFF-E2E: rebooting"],
                   "err": ["[ 9.1] skiff info machine: guest rebooted (PSCI SYSTEM_RESET)"]},
        "panic": {"rc": 3, "out": ["SKIFF-E2E: panicking",
                                   "[    8.3] Kernel panic - not syncing: sysrq triggered crash"],
                  "err": ["skiff: guest kernel panic"]},
    }


def render_arm64(runs, junit=PANIC_JUNIT, serial=PANIC_SERIAL):
    return render(runs, files={"panic_junit": junit, "panic_serial": serial})


def failing_arm64(out):
    runs, files = e2e.parse(out)
    return sorted(name for name, check in e2e.ARM64_CHECKS.items() if check(runs, files))


def render(runs, junit=JUNIT, serial=SERIAL, log=LOG, files=None):
    lines, t = [], 10.0
    for name, run in runs.items():
        seconds = run.get("seconds", 15.0)
        lines.append("CI-E2E: run=%s rc=%d t0=%.2f t1=%.2f" % (name, run["rc"], t, t + seconds))
        t += seconds
        lines += ["CI-E2E-OUT %s: %s" % (name, l) for l in run["out"]]
        lines += ["CI-E2E-ERR %s: %s" % (name, l) for l in run["err"]]
    for key, text in (files or {"junit": junit, "serial": serial, "log": log}).items():
        lines.append("CI-E2E-FILE %s: %s" % (key, base64.b64encode(text.encode()).decode()))
    return "\n".join(lines) + "\n"


def failing(out):
    runs, files = e2e.parse(out)
    return sorted(name for name, check in e2e.CHECKS.items() if check(runs, files))


class CiChecksTest(unittest.TestCase):
    def test_healthy_runs_pass(self):
        self.assertEqual(failing(render(healthy())), [])
        lines, failed = e2e.verdict(render(healthy()), 0)
        self.assertEqual(failed, 0, lines)
        self.assertEqual(lines[-1], "6 of 6 checks passed")

    def test_a_hang_is_a_fail_with_its_stacks_first(self):
        runs = healthy()
        runs["expect"]["rc"] = 137  # the watchdog killed it
        out = hung_section("expect") + render(runs)
        lines, failed = e2e.verdict(out, 0)
        assert_hang_reported(self, lines, "expect")
        self.assertIn("FAIL: expect: skiff exited 137, expected 0", "\n".join(lines))
        self.assertEqual(failed, 2, lines)
        # It would not die: no exit status for it, and the test host gave up.
        lines, failed = e2e.verdict(hung_section("expect"), 125)
        assert_hang_reported(self, lines, "expect")
        self.assertEqual(failed, 1 + len(e2e.CHECKS))

    def test_exit_device_wrong_code_or_no_acpi_node(self):
        runs = healthy()
        runs["exit-device"]["rc"] = 0
        self.assertEqual(failing(render(runs)), ["exit-device"])
        runs = healthy()
        runs["exit-device"]["out"][1] = "SKIFF-E2E: acpi_exit_device=0"
        self.assertEqual(failing(render(runs)), ["exit-device"])

    def test_isa_debug_exit_ignored(self):
        runs = healthy()
        runs["isa-debug-exit"].update(rc=0, err=[])
        runs["isa-debug-exit"]["out"].append("SKIFF-E2E: still running after isa-debug-exit")
        self.assertEqual(failing(render(runs)), ["isa-debug-exit"])

    def test_expect_never_stopping_the_guest(self):
        runs = healthy()
        runs["expect"]["out"].append("SKIFF-GUEST: poweroff")
        self.assertEqual(failing(render(runs)), ["expect"])

    def test_expect_fail_not_stopping_at_once(self):
        runs = healthy()
        runs["expect-fail"]["out"].append("[    0.000000] Command line: console=ttyS0")
        self.assertEqual(failing(render(runs)), ["expect-fail"])
        runs = healthy()
        runs["expect-fail"]["rc"] = 0
        self.assertEqual(failing(render(runs)), ["expect-fail"])

    def test_timeout_late_or_wrong_code(self):
        runs = healthy()
        runs["timeout"]["seconds"] = 30.0
        self.assertEqual(failing(render(runs)), ["timeout"])
        runs = healthy()
        runs["timeout"]["rc"] = 0
        self.assertEqual(failing(render(runs)), ["timeout"])

    def test_broken_reports(self):
        self.assertEqual(failing(render(healthy(), junit="<testsuites><oops")), ["timeout"])
        self.assertEqual(failing(render(healthy(), junit=JUNIT.replace('failures="2"', 'failures="1"'))),
                         ["timeout"])
        self.assertEqual(failing(render(healthy(), serial=LINUX + "\n")), ["timeout"])
        # The console tail must end with what the guest printed last.
        self.assertEqual(failing(render(healthy(), junit=JUNIT.replace("SKIFF-E2E: sleeping", ""))),
                         ["timeout"])


    def test_boot_timeline(self):
        self.assertEqual(failing(render(healthy(), log="")), ["boot-timeline"])
        no_userspace = "\n".join(LOG.splitlines()[:4]) + "\n"
        self.assertEqual(failing(render(healthy(), log=no_userspace)), ["boot-timeline"])
        swapped = LOG.replace("812.004200 info boot: first KVM_RUN",
                              "813.004200 info boot: first KVM_RUN")
        self.assertEqual(failing(render(healthy(), log=swapped)), ["boot-timeline"])
        old_format = LOG.replace("812.004900 info pci:", "[   0.1] skiff info pci:")
        self.assertEqual(failing(render(healthy(), log=old_format)), ["boot-timeline"])
        instant = LOG.replace("(5.999900 s after VMM start)", "(0.499901 s after VMM start)")
        self.assertEqual(failing(render(healthy(), log=instant)), ["boot-timeline"])
class Arm64ChecksTest(unittest.TestCase):
    def test_healthy_runs_pass(self):
        self.assertEqual(failing_arm64(render_arm64(healthy_arm64())), [])

    def test_the_checks_match_the_runs(self):
        self.assertEqual(list(e2e.ARM64_CHECKS), list(e2e.ARM64_RUNS))
        self.assertIn("skiff.e2e=exitdt", e2e.l1_command("arm64"))

    def test_exit_device_wrong_code_or_no_dt_node(self):
        runs = healthy_arm64()
        runs["exit-device"]["rc"] = 0
        self.assertEqual(failing_arm64(render_arm64(runs)), ["exit-device"])
        runs = healthy_arm64()
        runs["exit-device"]["out"][2] = "SKIFF-E2E: dt_exit_device=none"
        self.assertEqual(failing_arm64(render_arm64(runs)), ["exit-device"])
        runs = healthy_arm64()
        runs["exit-device"]["out"].append("SKIFF-E2E: still running after devmem")
        self.assertEqual(failing_arm64(render_arm64(runs)), ["exit-device"])

    def test_reboot_not_seen_as_reboot(self):
        runs = healthy_arm64()
        runs["reboot"]["rc"] = 1
        self.assertEqual(failing_arm64(render_arm64(runs)), ["reboot"])
        runs = healthy_arm64()
        runs["reboot"]["err"] = ["skiff info machine: guest powered off (PSCI SYSTEM_OFF)"]
        self.assertEqual(failing_arm64(render_arm64(runs)), ["reboot"])
        runs = healthy_arm64()
        runs["reboot"]["out"].append("SKIFF-GUEST: poweroff")
        self.assertEqual(failing_arm64(render_arm64(runs)), ["reboot"])

    def test_panic_missed_or_slow(self):
        # A panic that ends in the kernel's own reboot (panic=-1) exits 0.
        runs = healthy_arm64()
        runs["panic"].update(rc=0, err=[])
        self.assertEqual(failing_arm64(render_arm64(runs)), ["panic"])
        # Skiff noticed 3 s after the panic line.
        slow = PANIC_JUNIT.replace('time="9.400"', 'time="12.200"')
        self.assertEqual(failing_arm64(render_arm64(healthy_arm64(), junit=slow)), ["panic"])
        self.assertEqual(failing_arm64(render_arm64(healthy_arm64(), junit="")), ["panic"])
        no_line = PANIC_SERIAL.replace("Kernel panic", "Kernel oops")
        self.assertEqual(failing_arm64(render_arm64(healthy_arm64(), serial=no_line)), ["panic"])

    def test_panic_latency_on_skiffs_clock(self):
        runs, files = e2e.parse(render_arm64(healthy_arm64()))
        latency, why = e2e.panic_latency(runs["panic"], files)
        self.assertIsNone(why)
        self.assertAlmostEqual(latency, 0.2, places=3)


if __name__ == "__main__":
    unittest.main()
