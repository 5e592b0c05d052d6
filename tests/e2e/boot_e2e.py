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

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
AUTORUN = os.path.join(ROOT, "images", "make-autorun-cpio.sh")
CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"

# name: (cpus, memory, autorun script or None, expected skiff exit code)
SCENARIOS = {
    "boot-1cpu": (1, "256M", None, 0),
    "boot-2cpu": (2, "256M", None, 0),
    "reboot-exits-0": (2, "256M", "echo SKIFF-E2E: rebooting\nreboot -f\n", 0),
    "panic-exits-nonzero": (1, "256M", "echo SKIFF-E2E: panicking\necho c > /proc/sysrq-trigger\n", 3),
}


def fail(message, output=""):
    if output:
        sys.stdout.write(output[-6000:])
    print(f"FAIL: {message}")
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--skiff", required=True)
    args = parser.parse_args()
    cpus, memory, autorun, want_rc = SCENARIOS[args.scenario]

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
        command = (
            f"{prepare}skiff run --kernel /guest/vmlinuz --initramfs {initrd} "
            f"--cpus {cpus} --memory {memory} --cmdline '{CMDLINE}' --log-level info; "
            "echo SKIFF_RC=$?"
        )
        proc = subprocess.run(
            [sys.executable, TESTHOST, "run", "--arch", "x86_64", "--skiff", args.skiff,
             "--timeout", "240", *puts, "--", command],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout
    sys.stdout.write(out[-4000:])
    if proc.returncode != 0 or "TESTHOST FAILURE" in out:
        fail(f"test host failed (exit {proc.returncode})")
    m = re.search(r"SKIFF_RC=(\d+)", out)
    if not m:
        fail("skiff's exit status was not reported")
    rc = int(m.group(1))
    if rc != want_rc:
        fail(f"skiff exited {rc}, expected {want_rc}")

    if autorun is None:
        banner = re.search(r"SKIFF-GUEST: cpus=(\d+) mem_kb=(\d+)", out)
        if not banner:
            fail("the guest never printed its banner (userspace not reached)")
        seen_cpus, mem_kb = int(banner.group(1)), int(banner.group(2))
        if seen_cpus != cpus:
            fail(f"guest saw {seen_cpus} CPUs, expected {cpus}")
        # MemTotal is RAM minus what the kernel reserves for itself.
        if not 180_000 <= mem_kb <= 262_144:
            fail(f"guest saw {mem_kb} kB of memory, expected about 256 MiB")
        if "self-check ok" not in out:
            fail("guest self-check did not pass")
        if "guest powered off" not in out:
            fail("skiff did not report an ACPI power-off")
    elif args.scenario == "reboot-exits-0":
        if "SKIFF-E2E: rebooting" not in out or "guest rebooted" not in out:
            fail("the guest did not reboot through Skiff")
        if "SKIFF-GUEST: poweroff" in out:
            fail("the guest powered off instead of rebooting")
    elif args.scenario == "panic-exits-nonzero":
        if "SKIFF-E2E: panicking" not in out or "pvpanic" not in out:
            fail("the panic was not reported through pvpanic")
    print(f"PASS: {args.scenario}")


if __name__ == "__main__":
    main()
