#!/usr/bin/env python3
"""Checks of tests/e2e/control_e2e.py fed with made-up L1 output (shaped as
a real run printed it): a healthy run passes every check, and each way the
control socket or pinning can break makes its check fail.  No KVM, no test
host."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import control_e2e as e2e  # noqa: E402
from hang_watch_test import assert_hang_reported, hung_section  # noqa: E402

INFO = {"command": "info", "ok": True, "result": {
    "io_thread": {"affinity": "0", "cpus_allowed": "0", "tid": 132},
    "memory": {"bytes": 268435456}, "pid": 116, "state": "running",
    "vcpus": [{"affinity": "1", "cpus_allowed": "1", "index": 0, "tid": 134},
              {"affinity": "0", "cpus_allowed": "0", "index": 1, "tid": 135}]}}


def answer(command, **result):
    return {"command": command, "ok": True, "result": result}


def healthy():
    return {
        "info": INFO,
        "tasks": {116: "0-1", 132: "0", 134: "1", 135: "0"},
        "pause": answer("pause", state="paused"),
        "status": answer("status", state="paused"),
        "resume": answer("resume", state="running"),
        "ticks": (8, 9, 9, 14),
        "shutdown": answer("shutdown", requested="acpi power button"),
        "exit": "rc=0 t0=77.23 t1=80.41",
        "socket": "socket-gone",
        "out": ["SKIFF-E2E: power button device /dev/input/event0", "SKIFF-E2E: ready",
                "SKIFF-E2E: power button pressed", "SKIFF-GUEST: poweroff"],
    }


def healthy_arm64():
    run = healthy()
    run["shutdown"] = answer("shutdown", requested="gpio power key")
    run["out"] = ["SKIFF-E2E: dt power key code=00000074 gpios=000000040000000300000000",
                  "SKIFF-E2E: power key line gpiochip0 3 (chip b040000.gpio)",
                  "SKIFF-E2E: ready", "SKIFF-E2E: power key edge rising on line 3",
                  "SKIFF-E2E: power button pressed", "SKIFF-GUEST: poweroff"]
    return run


def render(run):
    lines = ["CTL-E2E pid=116"]
    lines.append("CTL-E2E-ANSWER info " + json.dumps(run["info"]))
    lines += ["CTL-E2E-TASK %d %s" % t for t in run["tasks"].items()]
    for name in ("pause", "status", "resume"):
        lines.append("CTL-E2E-ANSWER %s %s" % (name, json.dumps(run[name])))
    lines.append("CTL-E2E ticks before=%d paused=%d later=%d resumed=%d" % run["ticks"])
    lines.append("CTL-E2E-ANSWER shutdown " + json.dumps(run["shutdown"]))
    lines.append("CTL-E2E exit " + run["exit"])
    lines.append("CTL-E2E " + run["socket"])
    lines += ["CTL-E2E-OUT: " + l for l in run["out"]]
    return "\n".join(lines) + "\n"


def failing(run, arch="x86_64"):
    r = e2e.parse(render(run))
    return [name for name in e2e.CHECKS if e2e.check(name, r, arch)]


class ControlE2eChecksTest(unittest.TestCase):
    def test_healthy_verdict(self):
        lines, failed = e2e.verdict(render(healthy()), 0)
        self.assertEqual(failed, 0, lines)

    def test_a_hang_is_a_fail_with_its_stacks_first(self):
        # Never ready: the script reported Skiff hung and killed it.
        run = healthy()
        run["out"] = []
        run["exit"] = "rc=137 t0=77.23 t1=77.41"
        for name in ("info", "pause", "status", "resume", "shutdown"):
            run[name] = {"unparsable": ""}
        lines, failed = e2e.verdict(hung_section("ctl") + render(run), 0)
        assert_hang_reported(self, lines, "ctl")
        self.assertIn("FAIL: guest-ready: the guest never said ready", "\n".join(lines))
        self.assertGreater(failed, 1)
        lines, _ = e2e.verdict(hung_section("ctl"), 125, "arm64")
        assert_hang_reported(self, lines, "ctl")

    def test_healthy_run_passes(self):
        self.assertEqual(failing(healthy()), [])

    def breaks(self, change, *checks):
        run = healthy()
        change(run)
        self.assertEqual(failing(run), list(checks))

    def test_guest_without_power_button(self):
        self.breaks(lambda r: r.update(out=["SKIFF-E2E: power button device none",
                                            "SKIFF-E2E: ready"]),
                    "guest-ready", "shutdown")

    def test_tid_not_a_thread_of_skiff(self):
        self.breaks(lambda r: r["tasks"].pop(135), "info-tids", "vcpu-affinity")

    def test_vcpu_affinity_not_applied(self):
        self.breaks(lambda r: r["tasks"].update({134: "0-1"}), "vcpu-affinity")

    def test_io_affinity_not_applied(self):
        self.breaks(lambda r: r["tasks"].update({132: "0-1"}), "io-affinity")

    def test_console_advanced_while_paused(self):
        self.breaks(lambda r: r.update(ticks=(8, 9, 12, 14)), "pause")

    def test_pause_refused(self):
        self.breaks(lambda r: r.update(pause={"ok": False, "error": "no"}), "pause")

    def test_status_not_paused(self):
        self.breaks(lambda r: r.update(status=answer("status", state="running")),
                    "status-paused")

    def test_no_progress_after_resume(self):
        self.breaks(lambda r: r.update(ticks=(8, 9, 9, 9)), "resume")

    def test_shutdown_not_clean(self):
        self.breaks(lambda r: r.update(exit="rc=6 t0=1 t1=2"), "shutdown")
        self.breaks(lambda r: r.update(exit="rc=0 t0=1 t1=90"), "shutdown")

    def test_socket_left_behind(self):
        self.breaks(lambda r: r.update(socket="socket-left"), "socket-removed")


class ControlE2eArm64ChecksTest(unittest.TestCase):
    def test_healthy_run_passes(self):
        self.assertEqual(failing(healthy_arm64(), "arm64"), [])

    def breaks(self, change, *checks):
        run = healthy_arm64()
        change(run)
        self.assertEqual(failing(run, "arm64"), list(checks))

    def test_x86_button_name_is_wrong_here(self):
        self.breaks(lambda r: r.update(shutdown=answer("shutdown", requested="acpi power button")),
                    "shutdown")

    def test_no_power_key_line(self):
        self.breaks(lambda r: r.update(out=[
            "SKIFF-E2E: dt power key code=00000074 gpios=000000040000000300000000",
            "SKIFF-E2E: power key line none (no GPIO line named power-button)",
            "SKIFF-E2E: ready", "SKIFF-E2E: no power button"]), "guest-ready", "shutdown")

    def test_device_tree_names_another_line(self):
        self.breaks(lambda r: r["out"].__setitem__(
            0, "SKIFF-E2E: dt power key code=00000074 gpios=000000040000000500000000"),
            "guest-ready")

    def test_device_tree_key_is_not_key_power(self):
        self.breaks(lambda r: r["out"].__setitem__(
            0, "SKIFF-E2E: dt power key code=00000074 gpios=".replace("74", "73") +
            "000000040000000300000000"), "guest-ready")

    def test_no_gpio_keys_node(self):
        self.breaks(lambda r: r["out"].__setitem__(0, "SKIFF-E2E: dt power key code= gpios="),
                    "guest-ready")

    def test_slow_poweroff(self):
        self.breaks(lambda r: r.update(exit="rc=0 t0=1 t1=200"), "shutdown")


if __name__ == "__main__":
    unittest.main()
