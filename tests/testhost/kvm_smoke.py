#!/usr/bin/env python3
"""Does the test host have a working KVM?  Boots L1 (tests/testhost,
--arch arm64), runs kvm_smoke_arm64.c there (built here with
aarch64-linux-gnu-gcc -static) and checks it passed: the capabilities Skiff
uses, a VM with a GICv3 and an ITS, one vCPU through
KVM_ARM_PREFERRED_TARGET/KVM_ARM_VCPU_INIT, an MMIO write and read and PSCI
SYSTEM_OFF.  Needs no Skiff: when it fails, the test host is what broke.

Usage: kvm_smoke.py [--arch arm64]
Prints `PASS: testhost-kvm [arm64]` or `FAIL: ...`; exit status 0 or 1.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TESTHOST = os.path.join(HERE, "testhost.py")
# arch -> (program, cross compiler, the Debian packages that bring it)
PROGRAMS = {
    "arm64": ("kvm_smoke_arm64.c", "aarch64-linux-gnu-gcc",
              "gcc-aarch64-linux-gnu libc6-dev-arm64-cross"),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", choices=sorted(PROGRAMS), default="arm64")
    a = ap.parse_args()
    source, cc, packages = PROGRAMS[a.arch]
    label = "testhost-kvm [%s]" % a.arch
    if not shutil.which(cc):
        print("FAIL: %s: %s not found (apt-get install %s; scripts/setup.sh does)"
              % (label, cc, packages))
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "kvm-smoke")
        r = subprocess.run([cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary,
                            os.path.join(HERE, source)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            print("FAIL: %s: %s did not compile %s" % (label, cc, source))
            return 1
        proc = subprocess.run(
            [sys.executable, TESTHOST, "run", "--arch", a.arch, "--timeout", "240",
             "--put", "%s:/usr/local/bin/kvm-smoke" % binary, "--", "kvm-smoke"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    sys.stdout.write(out)
    if "TESTHOST FAILURE" in out or proc.returncode == 125:
        print("FAIL: %s: the test host failed (exit %d)" % (label, proc.returncode))
        return 1
    if proc.returncode != 0 or "KVM-SMOKE: PASS" not in out:
        print("FAIL: %s: the KVM smoke test failed in L1 (exit %d)" % (label, proc.returncode))
        return 1
    print("PASS: %s" % label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
