#!/usr/bin/env python3
"""End-to-end test of the control socket and thread pinning: Debian's stock
cloud kernel in the test host (tests/testhost), booted by Skiff with
`--cpus 2,affinity=0:1,1:0 --io-affinity 0 --api-socket`; `skiff ctl`
drives it from L1.

Usage: control_e2e.py --skiff PATH [--arch x86_64|arm64] [--print-command]

One L1 boot (2 CPUs), one guest. The guest (tests/e2e/control_guest.sh)
loads the ACPI `button` and `evdev` drivers, prints `SKIFF-TICK n` every
0.2 s and powers off when its power button is pressed. Each check is one
`PASS: <check>` or `FAIL: ...` line; the exit status is 1 if any failed:

  guest-ready     the guest came up and found its ACPI power button (arm64:
                  the GPIO line named power-button, the same line as the
                  device tree's gpio-keys KEY_POWER)
  info-tids       `info` lists two vCPUs and the I/O thread, each a thread
                  of the Skiff process
  vcpu-affinity   vCPU 0's thread has Cpus_allowed_list 1, vCPU 1's 0, in
                  /proc/<pid>/task/<tid>/status (the reverse of the default
                  spread, so it is the option that did it)
  io-affinity     the I/O thread's Cpus_allowed_list is 0
  pause           `pause` answers ok/paused and the console stops advancing
                  (no tick in 2 s), while it advanced before
  status-paused   `status` says paused meanwhile
  resume          `resume` answers ok/running and the ticks go on
  shutdown        `shutdown` presses the power button: the guest sees it,
                  powers off, and Skiff exits 0 within 60 s (arm64: 120 s)
  socket-removed  the socket is gone after Skiff exited

--arch arm64 (suite e2e-arm64) runs the same checks in the ARM64 test host
with an aarch64 --skiff. Debian's arm64 cloud kernel has no gpio-keys
driver, so the guest (tests/e2e/control_guest_arm64.sh) watches the power
key's PL061 GPIO line for its rising edge itself (tests/e2e/gpio_wait_edge.c,
built static with aarch64-linux-gnu-gcc) and then powers off through PSCI.

A test-host failure makes every check FAIL, never skip.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
GUEST_SCRIPT = {"x86_64": os.path.join(HERE, "control_guest.sh"),
                "arm64": os.path.join(HERE, "control_guest_arm64.sh")}
GPIO_WAIT_SOURCE = os.path.join(HERE, "gpio_wait_edge.c")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "images"))
import hang_watch  # noqa: E402
import skiffimg  # noqa: E402
import vmspec  # noqa: E402

SOCKET = "/tmp/api.sock"
# What `shutdown` answers it pressed, by architecture.
BUTTON = {"x86_64": "acpi power button", "arm64": "gpio power key"}
KEY_POWER = 116
# ARM64's L1 is QEMU TCG: the L2 guest boots and powers off more slowly.
READY_WAIT_S = {"x86_64": 120, "arm64": 300}
POWEROFF_WITHIN_S = {"x86_64": 60, "arm64": 120}
TESTHOST_TIMEOUT = {"x86_64": 400, "arm64": 800}
# Skiff's own --timeout; still there HANG_MARGIN_S later it is hung
# (hang_watch prints where it is stuck and kills it). So is a Skiff whose
# guest never says ready, or that outlives its power-off by far.
HANG_MARGIN_S = 20
CHECKS = ["guest-ready", "info-tids", "vcpu-affinity", "io-affinity", "pause",
          "status-paused", "resume", "shutdown", "socket-removed"]


def skiff_timeout(arch):
    return READY_WAIT_S[arch] + 120 + POWEROFF_WITHIN_S[arch]


def skiff_command(arch="x86_64"):
    # reboot=k is x86's keyboard-controller reset; arm64 resets through PSCI.
    cmdline = "console=ttyS0 %spanic=-1 quiet" % ("reboot=k " if arch == "x86_64" else "")
    spec = vmspec.VmSpec(kernel="/guest/vmlinuz", initramfs="/tmp/initrd",
                         cmdline=cmdline, cpus=2, memory_mib=256, transport="pci")
    argv = vmspec.skiff_argv(spec, "skiff", log_level="info")
    # Pinned the reverse of where a scheduler would spread them.
    argv[argv.index("--cpus") + 1] = "2,affinity=0:1,1:0"
    argv += ["--io-affinity", "0", "--api-socket", SOCKET,
             "--timeout", "%ds" % skiff_timeout(arch)]
    return vmspec.shell_join(argv)


def l1_command(arch="x86_64"):
    ctl = "skiff ctl --api-socket %s" % SOCKET
    return "\n".join([
        hang_watch.shell(skiff_timeout(arch) + HANG_MARGIN_S),
        "cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > /tmp/initrd",
        "up() { cut -d' ' -f1 /proc/uptime; }",
        "ticks() { grep -c SKIFF-TICK /tmp/out; }",
        "%s > /tmp/out 2> /tmp/err &" % skiff_command(arch),
        "pid=$!",
        "vmm_watch ctl $pid /tmp/err",
        "i=0; while ! grep -q 'SKIFF-E2E: ready' /tmp/out 2>/dev/null && vmm_running ctl $pid"
        " && [ $i -lt %d ]; do sleep 0.1; i=$((i + 1)); done" % (READY_WAIT_S[arch] * 10),
        "grep -q 'SKIFF-E2E: ready' /tmp/out || ! vmm_running ctl $pid ||"
        " vmm_hung ctl $pid 'the guest did not say ready within %d s'" % READY_WAIT_S[arch],
        "echo \"CTL-E2E pid=$pid\"",
        "echo \"CTL-E2E-ANSWER info $(%s info)\"" % ctl,
        "for t in /proc/$pid/task/*; do echo \"CTL-E2E-TASK ${t##*/}"
        " $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' $t/status)\"; done",
        "sleep 1; before=$(ticks)",
        "echo \"CTL-E2E-ANSWER pause $(%s pause)\"" % ctl,
        "sleep 0.5; a=$(ticks); sleep 2; b=$(ticks)",
        "echo \"CTL-E2E-ANSWER status $(%s status)\"" % ctl,
        "echo \"CTL-E2E-ANSWER resume $(%s resume)\"" % ctl,
        "sleep 2; c=$(ticks)",
        "echo \"CTL-E2E ticks before=$before paused=$a later=$b resumed=$c\"",
        "t0=$(up)",
        "echo \"CTL-E2E-ANSWER shutdown $(%s shutdown)\"" % ctl,
        "i=0; while vmm_running ctl $pid && [ $i -lt %d ]; do sleep 0.1; i=$((i + 1)); done"
        % (POWEROFF_WITHIN_S[arch] * 10 + 100),
        "! vmm_running ctl $pid || vmm_hung ctl $pid 'still running %d s after the shutdown'"
        % (POWEROFF_WITHIN_S[arch] + 10),
        # No exit status if Skiff could not be killed (a wait would block).
        "if vmm_settle ctl $pid; then wait $pid; rc=$?; else rc=unkillable; fi",
        "echo \"CTL-E2E exit rc=$rc t0=$t0 t1=$settled_at\"",
        "[ -e %s ] && echo 'CTL-E2E socket-left' || echo 'CTL-E2E socket-gone'" % SOCKET,
        "grep -v SKIFF-TICK /tmp/out | sed 's/^/CTL-E2E-OUT: /'; echo",
        "sed 's/^/CTL-E2E-ERR: /' /tmp/err",
    ])


def parse(out):
    r = {"answers": {}, "tasks": {}, "out": "", "err": ""}
    for line in out.splitlines():
        m = re.search(r"CTL-E2E-ANSWER (\w+) (.*)", line)
        if m:
            try:
                r["answers"][m.group(1)] = json.loads(m.group(2))
            except ValueError:
                r["answers"][m.group(1)] = {"unparsable": m.group(2)}
            continue
        m = re.search(r"CTL-E2E-TASK (\d+) (\S*)", line)
        if m:
            r["tasks"][int(m.group(1))] = m.group(2)
            continue
        m = re.search(r"CTL-E2E-(OUT|ERR): (.*)", line)
        if m:
            r[m.group(1).lower()] += m.group(2) + "\n"
            continue
        m = re.search(r"CTL-E2E ticks before=(\d+) paused=(\d+) later=(\d+) resumed=(\d+)", line)
        if m:
            r["ticks"] = [int(x) for x in m.groups()]
        m = re.search(r"CTL-E2E exit rc=(\d+) t0=([\d.]+) t1=([\d.]+)", line)
        if m:
            r["rc"] = int(m.group(1))
            r["shutdown_s"] = float(m.group(3)) - float(m.group(2))
        if "CTL-E2E socket-left" in line:
            r["socket_left"] = True
        if "CTL-E2E socket-gone" in line:
            r["socket_left"] = False
    return r


def result_of(r, name):
    answer = r["answers"].get(name, {})
    return answer.get("result", {}) if answer.get("ok") else None


def check_power_key_line(r):
    """arm64: the GPIO line the guest watches is the device tree's KEY_POWER."""
    p = []
    m = re.search(r"power key line gpiochip\d+ (\d+)", r["out"])
    dt = re.search(r"dt power key code=([0-9a-f]*) gpios=([0-9a-f]*)", r["out"])
    if not m:
        p.append("the guest found no GPIO line named power-button")
    if not dt or len(dt.group(1)) != 8 or len(dt.group(2)) != 24:
        p.append("the device tree has no gpio-keys power key: %s" % (dt.group(0) if dt else None))
    elif int(dt.group(1), 16) != KEY_POWER:
        p.append("gpio-keys linux,code is %d, not KEY_POWER" % int(dt.group(1), 16))
    elif m and int(dt.group(2)[8:16], 16) != int(m.group(1)):
        p.append("gpio-keys names line %d, the line named power-button is %s"
                 % (int(dt.group(2)[8:16], 16), m.group(1)))
    return p


def check(name, r, arch="x86_64"):
    """Problems found by check `name` (empty: PASS)."""
    p = []
    info = result_of(r, "info") or {}
    vcpus = info.get("vcpus", [])
    if name == "guest-ready":
        if "SKIFF-E2E: ready" not in r["out"]:
            p.append("the guest never said ready")
        if arch == "arm64":
            p += check_power_key_line(r)
        elif not re.search(r"power button device /dev/input/event\d+", r["out"]):
            p.append("the guest found no power button input device")
    elif name == "info-tids":
        if not info:
            p.append("info failed: %s" % r["answers"].get("info"))
        tids = [v.get("tid") for v in vcpus] + [info.get("io_thread", {}).get("tid")]
        if len(vcpus) != 2:
            p.append("info lists %d vCPUs" % len(vcpus))
        for tid in tids:
            if tid not in r["tasks"]:
                p.append("tid %s is not a thread of skiff (threads: %s)"
                         % (tid, sorted(r["tasks"])))
    elif name == "vcpu-affinity":
        want = {0: "1", 1: "0"}
        for v in vcpus:
            got = r["tasks"].get(v.get("tid"))
            if got != want.get(v.get("index")):
                p.append("vCPU %s (tid %s): Cpus_allowed_list %r, expected %r"
                         % (v.get("index"), v.get("tid"), got, want.get(v.get("index"))))
        if len(vcpus) != 2:
            p.append("no vCPUs in info")
    elif name == "io-affinity":
        tid = info.get("io_thread", {}).get("tid")
        if r["tasks"].get(tid) != "0":
            p.append("I/O thread (tid %s): Cpus_allowed_list %r" % (tid, r["tasks"].get(tid)))
    elif name == "pause":
        res = result_of(r, "pause")
        if not res or res.get("state") != "paused":
            p.append("pause answered %s" % r["answers"].get("pause"))
        t = r.get("ticks")
        if not t:
            p.append("no tick counts")
        elif t[0] == 0:
            p.append("the guest printed no tick before the pause")
        elif t[2] != t[1]:
            p.append("the console advanced while paused: %d -> %d ticks" % (t[1], t[2]))
    elif name == "status-paused":
        res = result_of(r, "status")
        if not res or res.get("state") != "paused":
            p.append("status answered %s" % r["answers"].get("status"))
    elif name == "resume":
        res = result_of(r, "resume")
        if not res or res.get("state") != "running":
            p.append("resume answered %s" % r["answers"].get("resume"))
        t = r.get("ticks")
        if t and t[3] <= t[2]:
            p.append("no tick after resume (%d -> %d)" % (t[2], t[3]))
    elif name == "shutdown":
        res = result_of(r, "shutdown")
        if not res or res.get("requested") != BUTTON[arch]:
            p.append("shutdown answered %s" % r["answers"].get("shutdown"))
        if "SKIFF-E2E: power button pressed" not in r["out"]:
            p.append("the guest never saw its power button")
        if r.get("rc") != 0:
            p.append("skiff exited %s, expected 0 (stderr: %s)" % (r.get("rc"), r["err"][-300:]))
        elif r.get("shutdown_s", 999) > POWEROFF_WITHIN_S[arch]:
            p.append("the guest took %.0f s to power off" % r["shutdown_s"])
    elif name == "socket-removed":
        if r.get("socket_left") is not False:
            p.append("the socket is still there after skiff exited")
    return p


def verdict(out, returncode, arch="x86_64"):
    """([PASS/FAIL line], number failed): a hang first, with where Skiff
    was stuck."""
    lines = hang_watch.failures(out)
    failed = len(lines)
    r = parse(out)
    for name in CHECKS:
        if returncode != 0 or "TESTHOST FAILURE" in out:
            problems = ["test host failed (exit %d)" % returncode]
        else:
            problems = check(name, r, arch)
        if problems:
            failed += 1
            lines.append("FAIL: %s: %s" % (name, "; ".join(problems)))
        else:
            lines.append("PASS: %s" % name)
    return lines, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skiff", required=True)
    parser.add_argument("--arch", choices=["x86_64", "arm64"], default="x86_64",
                        help="test-host profile; --skiff must be built for it")
    parser.add_argument("--print-command", action="store_true")
    args = parser.parse_args()
    command = l1_command(args.arch)
    if args.print_command:
        print(command)
        return 0
    if not os.path.isfile(args.skiff):
        for name in CHECKS:
            print("FAIL: %s: no skiff binary at %s" % (name, args.skiff))
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        with open(GUEST_SCRIPT[args.arch]) as f:
            body = f.read()
        cpio = skiffimg.Cpio()
        cpio.file("autorun", data="#!/bin/sh\n" + body, mode=0o755)
        if args.arch == "x86_64":
            tree = skiffimg.ModuleTree(skiffimg.kernel_root("x86_64"))
            skiffimg.add_modules(cpio, tree, ["button", "evdev"], dest="lib/modules-ctl")
        else:
            watcher = os.path.join(tmp, "gpio-wait-edge")
            subprocess.run(["aarch64-linux-gnu-gcc", "-static", "-O2", "-s", "-o", watcher,
                            GPIO_WAIT_SOURCE], check=True)
            cpio.file("bin/gpio-wait-edge", src=watcher, mode=0o755)
        extra = os.path.join(tmp, "autorun.cpio.gz")
        cpio.write(extra)
        proc = subprocess.run(
            [sys.executable, TESTHOST, "run", "--arch", args.arch, "--skiff", args.skiff,
             "--smp", "2", "--timeout", str(TESTHOST_TIMEOUT[args.arch]),
             "--put", "%s:/e2e/autorun.cpio.gz" % extra, "--", command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    sys.stdout.write(out + "\n----\n")
    lines, failed = verdict(out, proc.returncode, args.arch)
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
