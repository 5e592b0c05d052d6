#!/usr/bin/env python3
"""tests/e2e/hang_watch.py: its shell functions run here under busybox sh
(L1's shell) on stand-in VMMs (sleep, sh), with tiny limits and sysrq
pointed at a scratch file, and its check fed with made-up console output.
No KVM, no test host; a few seconds."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hang_watch  # noqa: E402

SHELL = [shutil.which("busybox"), "sh"] if shutil.which("busybox") else ["sh"]

# A made-up report, as L1's console shows it, with a guest line mixed in.
HUNG_OUTPUT = """\
E2E: === msix
skiff: 0.100000 info vmm: VMM start
E2E: HUNG msix: still running 460 s after it started (started at 31 s, stopped at never s of L1 uptime; limits 460 s to run, 120 s to tear down)
E2E: hung| thread 812 skiff State:\tD (disk sleep) wchan=kvm_vm_ioctl
E2E: hung|     [<0>] synchronize_srcu_expedited+0x12a/0x160
E2E: hung|     [<0>] kvm_set_memslot+0x2f1/0x5a0 [kvm]
SKIFF-GUEST: still printing
E2E: hung| thread 815 vcpu0 State:\tS (sleeping) wchan=futex_wait_queue
E2E: hung| [  512.000001] sysrq: Show backtrace of all active CPUs
E2E: hung-end msix
E2E: hung| not part of the section
"""




def hung_section(name):
    """A made-up E2E: HUNG section for run NAME (for the tests' checks)."""
    return ("E2E: HUNG %s: still running 170 s after it started\n"
            "E2E: hung| thread 812 skiff State:\tD (disk sleep) wchan=kvm_vm_ioctl\n"
            "E2E: hung|     [<0>] kvm_set_memslot+0x2f1/0x5a0 [kvm]\n"
            "E2E: hung-end %s\n" % (name, name))


def assert_hang_reported(test, lines, name):
    """LINES (a test's printed verdict) start with NAME's hang, as a FAIL
    followed by its stack."""
    text = "\n".join(lines)
    test.assertTrue(text.startswith("FAIL: vmm-hang %s: still running 170 s" % name), text)
    test.assertIn("\n        [<0>] kvm_set_memslot+0x2f1/0x5a0 [kvm]", text)


class FailuresTest(unittest.TestCase):
    def test_a_hung_section_is_a_fail_with_its_stacks(self):
        texts = hang_watch.failures(HUNG_OUTPUT)
        self.assertEqual(len(texts), 1)
        lines = texts[0].splitlines()
        self.assertTrue(lines[0].startswith("FAIL: vmm-hang msix: still running 460 s"), lines[0])
        self.assertIn("    thread 812 skiff State:\tD (disk sleep) wchan=kvm_vm_ioctl", lines)
        self.assertIn("        [<0>] kvm_set_memslot+0x2f1/0x5a0 [kvm]", lines)
        self.assertIn("    [  512.000001] sysrq: Show backtrace of all active CPUs", lines)
        self.assertNotIn("SKIFF-GUEST", texts[0])
        self.assertNotIn("not part of the section", texts[0])

    def test_no_section_no_failure(self):
        self.assertEqual(hang_watch.failures("E2E: === msix\nE2E: SKIFF_RC=0\n"), [])

    def test_every_hang_is_reported(self):
        out = HUNG_OUTPUT + "E2E: HUNG intx: still running 130 s after it logged its stop\n"
        self.assertEqual([n for n, _, _ in hang_watch.hangs(out)], ["msix", "intx"])
        self.assertEqual(len(hang_watch.failures(out)), 2)


class ShellTest(unittest.TestCase):
    """The functions in a real busybox sh."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.sysrq = os.path.join(self.tmp, "sysrq")
        # Unique names: /tmp/hang-NAME and /tmp/pid-NAME are shared.
        self.name = "hwtest%d" % os.getpid()

    def tearDown(self):
        shutil.rmtree(self.tmp)
        for f in ("/tmp/hang-" + self.name, "/tmp/pid-" + self.name):
            if os.path.exists(f):
                os.unlink(f)

    def run_shell(self, script, run_limit=2, teardown_limit=2, command=None):
        text = hang_watch.shell(run_limit, teardown_limit, command=command,
                                log=os.path.join(self.tmp, "$name.log"), poll=0.2,
                                sysrq=self.sysrq)
        start = time.monotonic()
        proc = subprocess.run(SHELL + ["-c", text + script.replace("NAME", self.name)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=60)
        return proc.stdout, time.monotonic() - start

    def test_a_vmm_past_its_limit_is_reported_killed_and_settled(self):
        out, seconds = self.run_shell(
            "sleep 30 & vmm=$!\nvmm_watch NAME $vmm ''\n"
            "while vmm_running NAME $vmm; do sleep 0.1; done\n"
            "vmm_settle NAME $vmm && { wait $vmm; echo RC=$?; }\n")
        self.assertLess(seconds, 15, out)
        self.assertIn("E2E: HUNG %s: still running" % self.name, out)
        self.assertRegex(out, r"E2E: hung\| thread \d+ sleep State:")
        self.assertIn("RC=137", out)  # SIGKILLed, and reaped
        with open(self.sysrq) as f:
            self.assertEqual(f.read(), "l\n")
        texts = hang_watch.failures(out)
        self.assertEqual(len(texts), 1, out)
        self.assertRegex(texts[0], r"\n    thread \d+ sleep State:")

    def test_a_vmm_that_ends_in_time_is_left_alone(self):
        out, _ = self.run_shell(
            "sh -c 'sleep 0.5; exit 3' & vmm=$!\nvmm_watch NAME $vmm ''\n"
            "vmm_settle NAME $vmm && { wait $vmm; echo RC=$?; }\n")
        self.assertNotIn("HUNG", out)
        self.assertIn("RC=3", out)
        self.assertFalse(os.path.exists(self.sysrq))

    def test_the_teardown_limit_counts_from_the_logged_stop(self):
        log = os.path.join(self.tmp, "vmm.log")
        out, _ = self.run_shell(
            "sh -c 'echo \"0.1 info vmm: stopped: guest powered off\" > %s; sleep 30' & "
            "vmm=$!\nvmm_watch NAME $vmm %s\nvmm_settle NAME $vmm; echo SETTLED=$?\n"
            % (log, log), run_limit=60)
        self.assertRegex(out, r"E2E: HUNG %s: still running \d+ s after it logged its stop"
                         % self.name)
        self.assertIn("SETTLED=0", out)

    def test_the_scripts_own_verdict_stops_the_watchdog(self):
        out, _ = self.run_shell(
            "sleep 30 & vmm=$!\nvmm_watch NAME $vmm ''\n"
            "vmm_hung NAME $vmm 'the guest never said ready'\nvmm_settle NAME $vmm\n"
            "echo SETTLED=$?\n", run_limit=60)
        self.assertEqual(out.count("E2E: HUNG"), 1, out)
        self.assertIn("E2E: HUNG %s: the guest never said ready" % self.name, out)
        self.assertIn("SETTLED=0", out)

    def test_bounded_boot_streams_and_copies_the_output(self):
        command = "sh -c 'echo to-stdout; echo to-stderr >&2; exit 5' sh"
        out, _ = self.run_shell("bounded_boot NAME --cmdline x\n", command=command)
        self.assertIn("E2E: === %s\n" % self.name, out)
        for line in ("to-stdout", "to-stderr", "E2E: SKIFF_RC=5"):
            self.assertIn(line, out)
        with open(os.path.join(self.tmp, self.name + ".log")) as f:
            log = f.read()
        self.assertIn("to-stderr", log)
        self.assertIn("E2E: SKIFF_RC=5", log)
        self.assertNotIn("HUNG", out)

    def test_bounded_boot_of_a_hung_vmm(self):
        out, seconds = self.run_shell("bounded_boot NAME 30\necho after\n", command="sleep")
        self.assertLess(seconds, 15, out)
        self.assertIn("E2E: HUNG %s: still running" % self.name, out)
        self.assertRegex(out, r"E2E: hung\| thread \d+ sleep ")
        self.assertIn("E2E: SKIFF_RC=137", out)
        self.assertTrue(out.rstrip().endswith("after"), out)


if __name__ == "__main__":
    unittest.main()
