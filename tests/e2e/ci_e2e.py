#!/usr/bin/env python3
"""End-to-end tests of Skiff's CI features: Debian's stock cloud kernel in
the test host (tests/testhost) chooses Skiff's exit code, and Skiff watches
its console, times it out and reports the run.

Usage: ci_e2e.py --skiff PATH [--arch x86_64|arm64] [--print-command]

One L1 boot runs Skiff five times on one initramfs; the guest's
/autorun (tests/e2e/ci_guest.sh) does what `skiff.e2e=MODE` on the kernel
command line says. Each check is one `PASS: <check>` or `FAIL: ...` line;
the exit status is 1 if any check failed:

  exit-device     `busybox devmem 0xd8000000 32 7` -> Skiff exits 7, and the
                  guest's ACPI scan found SKIF0001
  isa-debug-exit  `outb 0xf4 5` (tests/e2e/outb.c: Debian's cloud kernel
                  has no /dev/port) -> 11
  expect          --expect on the userspace banner and a line of a guest that
                  then sleeps forever -> 0 right after the second one
  expect-fail     --expect-fail on the kernel's first console line (a verbose
                  boot) -> 120 at once: the kernel prints nothing after it
  timeout         --timeout 8s on a verbose boot -> 5 within 8-12 s;
                  --serial-log (timestamped) and --junit (valid XML, the run
                  and each pattern as test cases) written
  boot-timeline   the expect run also reads a --config file (log-level info,
                  --log-file, a --userspace-marker on the guest's banner):
                  its log file has the four boot milestones in order, with
                  growing times, every line "<s.us> <level> <subsystem>: ..."
The boots that end early keep the added CI time near a minute.

--arch arm64 (suite e2e-arm64) runs in the ARM64 test host with an aarch64
--skiff, three runs:

  exit-device     the guest finds the exit device in the device tree Skiff
                  generated (compatible "skiff,exit-device", its reg read
                  from /proc/device-tree: no address is hard-coded here) and
                  `busybox devmem ADDR 32 7` -> Skiff exits 7
  reboot          `reboot -f` (PSCI SYSTEM_RESET) -> 0, Skiff says reboot
  panic           `echo c > /proc/sysrq-trigger` -> 3 (guest panic), within
                  PANIC_WITHIN_S of the kernel's "Kernel panic - not
                  syncing" line: Skiff's --serial-log timestamps and its
                  --junit run time share one clock

A test-host failure makes every check FAIL, never skip.
"""
import argparse
import base64
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
GUEST_SCRIPT = os.path.join(HERE, "ci_guest.sh")
OUTB_SOURCE = os.path.join(HERE, "outb.c")
sys.path.insert(0, os.path.join(ROOT, "images"))
import skiffimg  # noqa: E402
sys.path.insert(0, HERE)
import hang_watch  # noqa: E402

CMDLINE = "console=ttyS0 reboot=k panic=-1"
QUIET = CMDLINE + " quiet"
# A verbose boot whose first line comes at once (earlycon needs no driver).
VERBOSE = CMDLINE + " earlycon=uart8250,io,0x3f8"
TIMEOUT_S = 8
FIRST_LINE = r"Linux version \S+"  # the kernel's first console line
# The expect run's --config file (docs/config.md): the boot timeline
# (docs/logging.md) into a log file. The kernel is quiet, so the marker is
# the guest's banner rather than the kernel's "Run /init as init process".
LOG_CONFIG = ('{"log-level": "info", "log-file": "/tmp/skiff.log",\n'
              ' "userspace-marker": "^SKIFF-GUEST: cpus="}')
MILESTONES = ["VMM start", "first KVM_RUN", "first guest console output", "guest userspace"]
# name: (guest mode, kernel command line, extra Skiff options)
RUNS = {
    "exit-device": ("exitdev", QUIET, []),
    "isa-debug-exit": ("isa", QUIET, []),
    "expect": ("sleep", QUIET, ["--config", "/tmp/log.json", "--expect", "SKIFF-GUEST: cpus=1 ",
                                "--expect", "SKIFF-E2E: sleep(ing)?$"]),
    "expect-fail": ("sleep", VERBOSE, ["--expect", "never printed", "--expect-fail", FIRST_LINE]),
    "timeout": ("sleep", VERBOSE, ["--timeout", "%ds" % TIMEOUT_S, "--expect", FIRST_LINE,
                                   "--expect", "never printed", "--serial-log",
                                   "/tmp/serial.log", "--serial-log-timestamps",
                                   "--junit", "/tmp/junit.xml"]),
}


# ARM64: the guest's exit device comes from the device tree; Debian's
# arm64 cloud kernel has no pvpanic driver (CONFIG_PVPANIC is not set), so
# the panic must reach Skiff some other way; the test only asks that it does.
PANIC_WITHIN_S = 1.0
PANIC_LINE = "Kernel panic - not syncing"
ARM64_RUNS = {
    "exit-device": ("exitdt", QUIET, []),
    "reboot": ("reboot", QUIET, ["--log-level", "info"]),
    "panic": ("panic", QUIET, ["--serial-log", "/tmp/panic-serial.log",
                               "--serial-log-timestamps", "--junit", "/tmp/panic-junit.xml"]),
}
RUNS_BY_ARCH = {"x86_64": RUNS, "arm64": ARM64_RUNS}
# Seconds for one Skiff run inside L1 (past it hang_watch reports where
# Skiff is stuck and kills it) and for the whole test host run; ARM64's L1
# is slower (TCG).
RUN_TIMEOUT = {"x86_64": 120, "arm64": 150}
TESTHOST_TIMEOUT = {"x86_64": 300, "arm64": 480}
# The files l1_command() prints (base64) after the runs, by name.
FILES_BY_ARCH = {
    "x86_64": {"junit": "/tmp/junit.xml", "serial": "/tmp/serial.log", "log": "/tmp/skiff.log"},
    "arm64": {"panic_junit": "/tmp/panic-junit.xml", "panic_serial": "/tmp/panic-serial.log"},
}


def quote(word):
    return "'" + word.replace("'", "'\\''") + "'"


def l1_command(arch="x86_64"):
    lines = [hang_watch.shell(RUN_TIMEOUT[arch]),
             "cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > /tmp/initrd",
             "up() { cut -d' ' -f1 /proc/uptime; }",
             "printf '%%s' %s > /tmp/log.json" % quote(LOG_CONFIG)]
    for name, (mode, cmdline, options) in RUNS_BY_ARCH[arch].items():
        argv = ["skiff", "run", "--kernel", "/guest/vmlinuz", "--initramfs", "/tmp/initrd",
                "--memory", "256M", "--cmdline", "%s skiff.e2e=%s" % (cmdline, mode)] + options
        # No exit status if Skiff could not be killed (a wait would block).
        lines += [
            "t0=$(up)",
            "%s > /tmp/out 2> /tmp/err & vmm=$!" % " ".join(map(quote, argv)),
            "vmm_watch %s $vmm /tmp/err" % name,
            "if vmm_settle %s $vmm; then wait $vmm; rc=$?; else rc=unkillable; fi" % name,
            "echo \"CI-E2E: run=%s rc=$rc t0=$t0 t1=$settled_at\"" % name,
            "sed 's/^/CI-E2E-OUT %s: /' /tmp/out; echo" % name,  # the last line may lack \n
            "sed 's/^/CI-E2E-ERR %s: /' /tmp/err" % name,
        ]
    # Binary-safe through the serial console.
    for key, path in FILES_BY_ARCH[arch].items():
        lines.append("echo \"CI-E2E-FILE %s: $(base64 %s 2>/dev/null | tr -d '\\n')\""
                     % (key, path))
    return "\n".join(lines)


def parse(out):
    """run name -> {rc, seconds, out, err}, and file name -> bytes."""
    runs, files = {}, {}
    for line in out.splitlines():
        m = re.search(r"CI-E2E: run=(\S+) rc=(\d+) t0=([\d.]+) t1=([\d.]+)", line)
        if m:
            runs[m.group(1)] = {"rc": int(m.group(2)),
                                "seconds": float(m.group(4)) - float(m.group(3)),
                                "out": "", "err": ""}
            continue
        m = re.search(r"CI-E2E-(OUT|ERR) (\S+): (.*)", line)
        if m and m.group(2) in runs:
            runs[m.group(2)][m.group(1).lower()] += m.group(3) + "\n"
            continue
        m = re.search(r"CI-E2E-FILE (\w+): (\S*)", line)
        if m:
            files[m.group(1)] = base64.b64decode(m.group(2)) if m.group(2) else b""
    return runs, files


def check_rc(run, want, problems):
    if run["rc"] != want:
        problems.append("skiff exited %d, expected %d (stderr: %s)"
                        % (run["rc"], want, run["err"].strip()[-300:]))


def check_exit_device(runs, files):
    p = []
    run = runs["exit-device"]
    check_rc(run, 7, p)
    if "acpi_exit_device=1" not in run["out"]:
        p.append("the guest found no SKIF0001 ACPI device")
    if "guest chose exit code 7 (exit device)" not in run["err"]:
        p.append("stderr does not name the exit device")
    if "still running after devmem" in run["out"]:
        p.append("the guest ran on after writing the exit device")
    return p


def check_isa_debug_exit(runs, files):
    p = []
    run = runs["isa-debug-exit"]
    check_rc(run, 11, p)
    if "isa-debug-exit" not in run["err"]:
        p.append("stderr does not name isa-debug-exit")
    if "still running after isa-debug-exit" in run["out"]:
        p.append("the guest ran on after the port write")
    return p


def check_expect(runs, files):
    p = []
    run = runs["expect"]
    check_rc(run, 0, p)
    if "SKIFF-E2E: sleeping" not in run["out"]:
        p.append("the expected line is not in the output")
    if "SKIFF-GUEST: poweroff" in run["out"]:
        p.append("the guest powered off by itself: nothing shows --expect stopped it")
    if run["err"].strip():
        p.append("a successful run printed on stderr: " + run["err"].strip()[-300:])
    return p


def check_expect_fail(runs, files):
    p = []
    run = runs["expect-fail"]
    check_rc(run, 120, p)
    if "--expect-fail '%s': " % FIRST_LINE not in run["err"] or "Linux version" not in run["err"]:
        p.append("stderr does not quote the fail pattern and line: " + run["err"].strip()[-300:])
    # Skiff stops the vCPU in the exit that completed the line.
    lines = [l for l in run["out"].splitlines() if l.strip()]
    if not lines or "Linux version" not in lines[-1]:
        p.append("the guest printed on after the fail pattern: %r" % lines[-3:])
    return p


def check_timeout(runs, files):
    p = []
    run = runs["timeout"]
    check_rc(run, 5, p)
    if not TIMEOUT_S <= run["seconds"] <= TIMEOUT_S + 5:
        p.append("skiff ran %.1f s with --timeout %ds" % (run["seconds"], TIMEOUT_S))
    if "--timeout" not in run["err"]:
        p.append("stderr does not say it was the timeout: " + run["err"].strip()[-300:])
    serial = files.get("serial", b"").decode("utf-8", "replace")
    # Skiff's stamp, then the kernel's own: "[   1.234567] [    0.000000] Linux version".
    if not re.search(r"^\[ *\d+\.\d{6}\] \[ *\d+\.\d+\] Linux version", serial, re.M):
        p.append("the serial log has no timestamped 'Linux version' line")
    junit = files.get("junit", b"")
    try:
        root = ET.fromstring(junit)
    except ET.ParseError as e:
        return p + ["the JUnit file is not XML (%s): %r" % (e, junit[:200])]
    suite = root.find("testsuite")
    if root.tag != "testsuites" or suite is None:
        return p + ["the JUnit file has no <testsuites><testsuite>"]
    cases = suite.findall("testcase")
    names = [(c.get("classname"), c.get("name")) for c in cases]
    want = [("skiff", "boot vmlinuz"), ("skiff.expect", FIRST_LINE),
            ("skiff.expect", "never printed")]
    if names != want:
        p.append("JUnit test cases %s, expected %s" % (names, want))
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    if failed != ["boot vmlinuz", "never printed"]:
        p.append("JUnit failures %s, expected the run and 'never printed'" % failed)
    if (suite.get("tests"), suite.get("failures"), suite.get("errors")) != ("3", "2", "0"):
        p.append("JUnit counts tests=%s failures=%s errors=%s"
                 % (suite.get("tests"), suite.get("failures"), suite.get("errors")))
    props = {q.get("name"): q.get("value") for q in suite.iter("property")}
    if props.get("exit_code") != "5":
        p.append("JUnit exit_code property %s" % props.get("exit_code"))
    out = cases[0].find("system-out") if cases else None
    # The tail is the last 16 KiB of the console: the last line the guest
    # printed must be in it. (How far the guest got in 8 s depends on the
    # machine's load, so no fixed line is looked for.)
    last = next((l.strip() for l in reversed(run["out"].splitlines()) if l.strip()), "")
    if out is None or not last or last not in (out.text or "").replace("\r", ""):
        p.append("the JUnit console tail lacks the guest's last lines")
    return p


LOG_LINE = re.compile(r"^(\d+\.\d{6}) (error|warn|info|debug) ([a-z0-9-]+): (.*)$")


def check_boot_timeline(runs, files):
    p = []
    log = files.get("log", b"").decode("utf-8", "replace")
    if not log:
        return ["the expect run wrote no --log-file"]
    stamps, since_start = [], []
    for line in log.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            p.append("a log line not in the format: %r" % line[:200])
            continue
        if m.group(3) != "boot":
            continue
        for i, name in enumerate(MILESTONES):
            if m.group(4).startswith(name) and len(stamps) == i:
                stamps.append(float(m.group(1)))
                s = re.search(r"([\d.]+) s after VMM start", m.group(4))
                since_start.append(float(s.group(1)) if s else 0.0)
    if len(stamps) != len(MILESTONES):
        missing = MILESTONES[len(stamps)]
        return p + ["the log lacks '%s' (after %s): %r" % (missing, MILESTONES[:len(stamps)],
                                                          log[-600:])]
    if stamps != sorted(stamps) or since_start != sorted(since_start):
        p.append("milestone times out of order: %s, %s" % (stamps, since_start))
    # The userspace milestone came from the guest's banner, after a whole
    # kernel boot: seconds, not microseconds.
    if since_start[3] - since_start[2] < 0.1:
        p.append("userspace only %.6f s after the first console output" %
                 (since_start[3] - since_start[2]))
    if "SKIFF-GUEST: cpus=1" not in log:
        p.append("the userspace milestone does not quote the marker line")
    return p


CHECKS = {
    "exit-device": check_exit_device,
    "isa-debug-exit": check_isa_debug_exit,
    "expect": check_expect,
    "expect-fail": check_expect_fail,
    "timeout": check_timeout,
    "boot-timeline": check_boot_timeline,
}


def check_arm64_exit_device(runs, files):
    p = []
    run = runs["exit-device"]
    check_rc(run, 7, p)
    m = re.search(r"SKIFF-E2E: dt_exit_device=(\S+)", run["out"])
    if not m or m.group(1) == "none":
        p.append("the guest found no skiff,exit-device node in /proc/device-tree")
    if "guest chose exit code 7 (exit device)" not in run["err"]:
        p.append("stderr does not name the exit device")
    if "still running after devmem" in run["out"]:
        p.append("the guest ran on after writing the exit device")
    return p


def check_arm64_reboot(runs, files):
    p = []
    run = runs["reboot"]
    check_rc(run, 0, p)
    if "SKIFF-E2E: rebooting" not in run["out"]:
        p.append("the guest never reached its reboot -f")
    if "still running after reboot" in run["out"] or "SKIFF-GUEST: poweroff" in run["out"]:
        p.append("the guest ran on after reboot -f")
    if not re.search(r"reboot|reset", run["err"], re.I):
        p.append("Skiff's log does not say the guest rebooted: " + run["err"].strip()[-300:])
    return p


def panic_latency(run, files):
    """Seconds from the kernel's panic line to Skiff's exit, on Skiff's own
    clock (--serial-log-timestamps and the --junit run time), or a reason."""
    serial = files.get("panic_serial", b"").decode("utf-8", "replace")
    m = re.search(r"^\[ *(\d+\.\d+)\] .*%s" % re.escape(PANIC_LINE), serial, re.M)
    if not m:
        return None, "the serial log has no timestamped %r line" % PANIC_LINE
    try:
        root = ET.fromstring(files.get("panic_junit", b""))
        total = float(root.find("testsuite").get("time"))
    except (ET.ParseError, AttributeError, TypeError, ValueError) as e:
        return None, "the --junit file gives no run time (%s)" % e
    return total - float(m.group(1)), None


def check_arm64_panic(runs, files):
    p = []
    run = runs["panic"]
    check_rc(run, 3, p)
    if "SKIFF-E2E: panicking" not in run["out"]:
        p.append("the guest never reached its sysrq crash")
    if PANIC_LINE not in run["out"]:
        p.append("the guest kernel never printed %r" % PANIC_LINE)
    if "panic" not in run["err"].lower():
        p.append("stderr does not name the panic: " + run["err"].strip()[-300:])
    latency, why = panic_latency(run, files)
    if why:
        p.append(why)
    elif latency > PANIC_WITHIN_S:
        p.append("Skiff exited %.2f s after the panic line (allowed %.1f s)"
                 % (latency, PANIC_WITHIN_S))
    else:
        run["detail"] = "%.2f s after the panic line" % latency
    return p


ARM64_CHECKS = {
    "exit-device": check_arm64_exit_device,
    "reboot": check_arm64_reboot,
    "panic": check_arm64_panic,
}
CHECKS_BY_ARCH = {"x86_64": CHECKS, "arm64": ARM64_CHECKS}


def verdict(out, returncode, arch="x86_64"):
    """([PASS/FAIL line], number failed) of the runs: a hang first, with
    where Skiff was stuck."""
    lines = hang_watch.failures(out)
    failed = len(lines)
    checks = CHECKS_BY_ARCH[arch]
    runs, files = parse(out)
    for name, check in checks.items():
        if returncode != 0 or "TESTHOST FAILURE" in out:
            problems = ["test host failed (exit %d)" % returncode]
        elif name not in runs and name in RUNS_BY_ARCH[arch]:
            problems = ["the run's exit status was not reported"]
        else:
            problems = check(runs, files)
        if problems:
            failed += 1
            lines.append("FAIL: %s: %s" % (name, "; ".join(problems)))
        else:
            detail = runs[name].get("detail") if name in runs else None
            seconds = " (%.1f s%s)" % (runs[name]["seconds"], "; " + detail if detail else "") \
                if name in runs else ""
            lines.append("PASS: %s%s" % (name, seconds))
    passed = sum(line.startswith("PASS: ") for line in lines)
    lines.append("%d of %d checks passed" % (passed, len(checks)))
    return lines, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skiff", required=True)
    parser.add_argument("--arch", choices=sorted(RUNS_BY_ARCH), default="x86_64",
                        help="test-host profile; --skiff must be built for it")
    parser.add_argument("--print-command", action="store_true")
    args = parser.parse_args()
    checks = CHECKS_BY_ARCH[args.arch]
    command = l1_command(args.arch)
    if args.print_command:
        print(command)
        return 0
    if not os.path.isfile(args.skiff):
        how = ("build it with scripts/setup.sh's skiff_build_arm64 (scripts/test.sh does)"
               if args.arch == "arm64" else "build it with ninja")
        for name in checks:
            print("FAIL: %s: no skiff binary at %s: %s" % (name, args.skiff, how))
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        with open(GUEST_SCRIPT) as f:
            body = f.read()
        # /autorun (and on x86 /bin/outb), appended to the guest's initramfs in L1.
        cpio = skiffimg.Cpio()
        cpio.file("autorun", data="#!/bin/sh\n" + body, mode=0o755)
        if args.arch == "x86_64":
            outb = os.path.join(tmp, "outb")
            subprocess.run(["gcc", "-static", "-O2", "-s", "-o", outb, OUTB_SOURCE], check=True)
            cpio.file("bin/outb", src=outb, mode=0o755)
        extra = os.path.join(tmp, "autorun.cpio.gz")
        cpio.write(extra)
        proc = subprocess.run(
            [sys.executable, TESTHOST, "run", "--arch", args.arch, "--skiff", args.skiff,
             "--timeout", str(TESTHOST_TIMEOUT[args.arch]), "--put", "%s:/e2e/autorun.cpio.gz" % extra, "--", command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    sys.stdout.write("\n".join(l for l in out.splitlines() if "CI-E2E-FILE" not in l) + "\n")
    print("----")
    lines, failed = verdict(out, proc.returncode, args.arch)
    print("\n".join(lines))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
