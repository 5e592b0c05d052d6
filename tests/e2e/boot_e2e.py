#!/usr/bin/env python3
"""End-to-end boot tests: Skiff boots Debian's stock cloud kernel inside the
test host (tests/testhost) and the guest reports what it sees.

Usage: boot_e2e.py SCENARIO --skiff PATH
A test-host failure (no L1, no KVM in L1) makes the test FAIL, never skip.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import hang_watch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
AUTORUN = os.path.join(ROOT, "images", "make-autorun-cpio.sh")
CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"
# Skiff's own --timeout; still there HANG_MARGIN_S later, it is hung:
# hang_watch prints where it is stuck and kills it, before the test host's
# TESTHOST_TIMEOUT_S (which includes L1's boot).
GUEST_LIMIT_S = 150
HANG_MARGIN_S = 20
TESTHOST_TIMEOUT_S = 270

# name: (cpus, memory, autorun script or None, expected skiff exit code)
SCENARIOS = {
    "boot-1cpu": (1, "256M", None, 0),
    "boot-2cpu": (2, "256M", None, 0),
    "reboot-exits-0": (2, "256M", "echo SKIFF-E2E: rebooting\nreboot -f\n", 0),
    "panic-exits-nonzero": (1, "256M", "echo SKIFF-E2E: panicking\necho c > /proc/sysrq-trigger\n", 3),
}


def l1_command(cpus, memory, initrd, prepare=""):
    """The L1 script: one bounded boot (hang_watch), named "boot"."""
    skiff = "skiff run --kernel /guest/vmlinuz --log-level info --timeout %ds" % GUEST_LIMIT_S
    return (hang_watch.shell(GUEST_LIMIT_S + HANG_MARGIN_S, command=skiff) +
            f"{prepare}bounded_boot boot --initramfs {initrd} --cpus {cpus} --memory {memory} "
            f"--cmdline '{CMDLINE}'\n")


def problem(out, returncode, scenario):
    """Why SCENARIO's run failed, or None."""
    cpus, _, autorun, want_rc = SCENARIOS[scenario]
    if returncode != 0 or "TESTHOST FAILURE" in out:
        return f"test host failed (exit {returncode})"
    m = re.search(r"SKIFF_RC=(\d+)", out)
    if not m:
        return "skiff's exit status was not reported"
    rc = int(m.group(1))
    if rc != want_rc:
        return f"skiff exited {rc}, expected {want_rc}"
    if autorun is None:
        banner = re.search(r"SKIFF-GUEST: cpus=(\d+) mem_kb=(\d+)", out)
        if not banner:
            return "the guest never printed its banner (userspace not reached)"
        seen_cpus, mem_kb = int(banner.group(1)), int(banner.group(2))
        if seen_cpus != cpus:
            return f"guest saw {seen_cpus} CPUs, expected {cpus}"
        # MemTotal is RAM minus what the kernel reserves for itself.
        if not 180_000 <= mem_kb <= 262_144:
            return f"guest saw {mem_kb} kB of memory, expected about 256 MiB"
        if "self-check ok" not in out:
            return "guest self-check did not pass"
        if "guest powered off" not in out:
            return "skiff did not report an ACPI power-off"
    elif scenario == "reboot-exits-0":
        if "SKIFF-E2E: rebooting" not in out or "guest rebooted" not in out:
            return "the guest did not reboot through Skiff"
        if "SKIFF-GUEST: poweroff" in out:
            return "the guest powered off instead of rebooting"
    elif scenario == "panic-exits-nonzero":
        if "SKIFF-E2E: panicking" not in out or "pvpanic" not in out:
            return "the panic was not reported through pvpanic"
    return None


def verdict(out, returncode, scenario):
    """([PASS/FAIL line], number failed): a hang first, with where Skiff was
    stuck, then the scenario's own verdict."""
    lines = hang_watch.failures(out)
    why = problem(out, returncode, scenario)
    lines.append(f"FAIL: {why}" if why else f"PASS: {scenario}")
    return lines, len(lines) - (why is None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--skiff", required=True)
    args = parser.parse_args()
    cpus, memory, autorun, _ = SCENARIOS[args.scenario]

    with tempfile.TemporaryDirectory() as tmp:
        puts = []
        initrd = "/guest/initramfs.cpio.gz"
        prepare = ""
        if autorun:
            script = os.path.join(tmp, "autorun.sh")
            with open(script, "w") as f:
                f.write("#!/bin/sh\n" + autorun)
            extra = os.path.join(tmp, "autorun.cpio.gz")
            subprocess.run([AUTORUN, script, extra], check=True)
            puts = ["--put", f"{extra}:/e2e/autorun.cpio.gz"]
            prepare = "cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > /tmp/initrd && "
            initrd = "/tmp/initrd"
        proc = subprocess.run(
            [sys.executable, TESTHOST, "run", "--arch", "x86_64", "--skiff", args.skiff,
             "--timeout", str(TESTHOST_TIMEOUT_S), *puts, "--",
             l1_command(cpus, memory, initrd, prepare)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    sys.stdout.write(out[-4000:])
    lines, failed = verdict(out, proc.returncode, args.scenario)
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
