#!/usr/bin/env python3
"""Fault injection, end to end: Skiff boots the stock cloud kernel in the
test host (virtio-pci, seccomp on, as by default) and the guest meets the
faults issue 6 names, one after the other in one boot (tests/e2e/
fault_guest.sh); every check is printed as `PASS: <check>` or `FAIL: ...`.

  blk-full-ioerr      a disk image on a full 1 MiB tmpfs in L1 (a sparse 8 MiB
                      file): an O_DIRECT write fails in the guest, a buffered
                      write's fsync fails, the kernel logs I/O errors
  blk-full-reads      that disk still reads, and reads what the file holds
  blk-good-unharmed   the other disk writes, syncs and reads back meanwhile
  net-tap-vanishes    the guest pings its tap, then L1 takes the tap down and
                      deletes it while the guest sends; the guest's disk
                      I/O goes on afterwards
  reset-unbind-write  the disk's driver is unbound while a writer is
                      mid-stream: every block the device acknowledged is in
                      the image file after Skiff exits, and reads back
  reset-raw-write     status 0 written to another disk's virtio-pci common
                      configuration (through the PCI_CFG capability's window
                      in config space) while writes are in flight, no driver
                      involved: the device reads 0 afterwards, every
                      acknowledged block is in the file, the rest of the
                      machine works
  vmm-stays-up        Skiff ran through all of it: the guest reached its
                      end, no seccomp refusal, no crash
  vmm-sigterm-exit    asked to stop with SIGTERM, Skiff exits 6 (stopped by
                      a signal) having logged why

Usage: fault_e2e.py --skiff PATH [--print-command]
The unit tests cover what needs no Linux guest (tests/unit: a driver that
never acknowledges interrupts, a reset racing a write, an interrupt kept
past a reset).  A test-host failure makes every check FAIL, never skip.
"""
import argparse
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hang_watch  # noqa: E402
import vmspec  # noqa: E402
import virtio_e2e  # noqa: E402  (test-host paths, the 4 KiB pattern, output parsing)

GOOD = 4 << 20               # bytes; the sizes tell the disks apart in the guest
FULL = 8 << 20
RAW = 5 << 20
BLOCK = 37
A_FIRST, A_COUNT = 512, 48   # GOOD's blocks written around the unbind
B_COUNT = 64                 # RAW's blocks written around the raw reset
TAP, HOST_IP, GUEST_IP, MASK = "skiff0", "10.0.2.1", "10.0.2.15", "255.255.255.0"
MAC = virtio_e2e.MAC
# Seconds inside L1: Skiff's own --timeout; still there HANG_MARGIN_S later,
# or TEARDOWN_LIMIT_S after it logged its stop (the SIGTERM), it is hung:
# hang_watch prints where it is stuck and kills it, before the test host's
# TESTHOST_TIMEOUT (which includes L1's boot).
VMM_TIMEOUT = 200
HANG_MARGIN_S = 20
TEARDOWN_LIMIT_S = 60
TESTHOST_TIMEOUT = 340
CHECKS = ["blk-full-ioerr", "blk-full-reads", "blk-good-unharmed", "net-tap-vanishes",
          "reset-unbind-write", "reset-raw-write", "vmm-stays-up", "vmm-sigterm-exit"]


def numbered_block(tag, n):
    """fault_guest.sh's `block N`: one line padded to 4 KiB."""
    return ("%-4095s\n" % ("skiff-e2e %s %s" % (tag, n))).encode()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def machine():
    return vmspec.VmSpec(
        kernel="/guest/vmlinuz", initramfs=virtio_e2e.L1_INITRD, cmdline=virtio_e2e.CMDLINE,
        transport="pci",
        disks=[vmspec.Disk("/e2e/good.img"), vmspec.Disk("/mnt/small/full.img"),
               vmspec.Disk("/e2e/raw.img")],
        nets=[vmspec.Net(TAP, mac=MAC)])


def guest_settings(tag):
    s = {"TAG": tag, "GOOD": GOOD, "FULL": FULL, "RAW": RAW, "BLOCK": BLOCK,
         "A_FIRST": A_FIRST, "A_COUNT": A_COUNT, "B_COUNT": B_COUNT, "MAC": MAC,
         "GUEST_IP": GUEST_IP, "HOST_IP": HOST_IP, "PREFIX": vmspec.prefix_len(MASK)}
    return "".join("%s=%s\n" % kv for kv in s.items())


def l1_command(spec):
    prefix = vmspec.prefix_len(MASK)
    argv = vmspec.skiff_argv(spec) + ["--timeout", "%ds" % VMM_TIMEOUT]
    lines = [
        hang_watch.shell(VMM_TIMEOUT + HANG_MARGIN_S, TEARDOWN_LIMIT_S),
        "cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > %s" % virtio_e2e.L1_INITRD,
        # FULL's image: sparse, on a tmpfs with no page left.
        "mkdir -p /mnt/small && mount -t tmpfs -o size=1m small /mnt/small && "
        "truncate -s %d /mnt/small/full.img && "
        "{ dd if=/dev/zero of=/mnt/small/filler bs=4k 2>/dev/null; true; } "
        "|| echo 'L1-E2E: small_setup=failed'" % FULL,
        "echo \"L1-E2E: small_free_kb=$(df -k /mnt/small | awk 'NR==2 {print $4}')\" >/tmp/l1.out",
        "tunctl -t %s >/dev/null && ip addr add %s/%d dev %s && ip link set %s up "
        "|| echo 'L1-E2E: tap_setup=failed' >>/tmp/l1.out" % (TAP, HOST_IP, prefix, TAP, TAP),
        "%s >/tmp/vmm.out 2>&1 &" % vmspec.shell_join(argv),
        "vmm=$!",
        "vmm_watch fault $vmm /tmp/vmm.out",
        # Act on the guest's cues while Skiff runs.
        "down=0",
        "while vmm_running fault $vmm; do"
        " if [ $down = 0 ] && grep -q 'SKIFF-E2E: tap_down_please=1' /tmp/vmm.out; then"
        "  ip link set %s down; echo \"L1-E2E: tap_down_rc=$?\" >>/tmp/l1.out;"
        "  { /usr/bin/ip link delete %s 2>/dev/null || ip link delete %s; };"
        "  echo \"L1-E2E: tap_deleted_rc=$?\" >>/tmp/l1.out; down=1;"
        " fi;"
        " if grep -q 'SKIFF-E2E: done=1' /tmp/vmm.out; then"
        "  echo 'L1-E2E: sigterm_sent=1' >>/tmp/l1.out; kill -TERM $vmm; break;"
        " fi;"
        " sleep 0.2;"
        "done" % (TAP, TAP, TAP),
        # No exit status if Skiff could not be killed (a wait would block).
        "vmm_settle fault $vmm && { wait $vmm; echo SKIFF_RC=$?; }",
        "cat /tmp/vmm.out /tmp/l1.out",
        "echo \"L1-E2E: full_file_sha256=$(sha256sum < /mnt/small/full.img | cut -d' ' -f1)\"",
        "echo \"L1-E2E: good_block_sha256=$(dd if=/e2e/good.img bs=4096 skip=%d count=1 "
        "2>/dev/null | sha256sum | cut -d' ' -f1)\"" % BLOCK,
        "i=0; while [ $i -lt %d ]; do echo \"L1-E2E: a_file_$i=$(dd if=/e2e/good.img bs=4096 "
        "skip=$((%d + i)) count=1 2>/dev/null | sha256sum | cut -d' ' -f1)\"; i=$((i + 1)); done"
        % (A_COUNT, A_FIRST),
        "i=0; while [ $i -lt %d ]; do echo \"L1-E2E: b_file_$i=$(dd if=/e2e/raw.img bs=4096 "
        "skip=$i count=1 2>/dev/null | sha256sum | cut -d' ' -f1)\"; i=$((i + 1)); done"
        % B_COUNT,
    ]
    return "\n".join(lines)


class Checks:
    def __init__(self, out, rc, ctx):
        self.out, self.rc, self.ctx = out, rc, ctx
        self.guest = virtio_e2e.parse(out, "SKIFF-E2E: ")
        self.l1 = virtio_e2e.parse(out, "L1-E2E: ")

    def want(self, problems, key, value, source=None):
        got = (self.guest if source is None else source).get(key)
        if str(value) != got:
            problems.append("%s=%s, expected %s" % (key, got, value))

    def blk_full_ioerr(self):
        p = []
        if self.l1.get("small_setup") == "failed" or self.l1.get("small_free_kb") != "0":
            p.append("L1 could not fill the small tmpfs (free=%s KiB)"
                     % self.l1.get("small_free_kb"))
        if self.guest.get("full_disk", "none") == "none":
            return p + ["the guest found no %d-byte disk" % FULL]
        for key in ("full_direct_rc", "full_fsync_rc"):
            if self.guest.get(key, "0") == "0":
                p.append("%s=%s: the write reached the guest as a success"
                         % (key, self.guest.get(key)))
        if int(self.guest.get("full_ioerr_logged", "0")) < 1:
            p.append("the guest kernel logged no I/O error for the full disk")
        return p

    def blk_full_reads(self):
        p = []
        self.want(p, "full_read_sha256", self.l1.get("full_file_sha256"))
        return p

    def blk_good_unharmed(self):
        p = []
        pattern = sha256(numbered_block(self.ctx["tag"], "good"))
        self.want(p, "good_write_rc", 0)
        self.want(p, "good_readback_sha256", pattern)
        self.want(p, "good_block_sha256", pattern, self.l1)
        self.want(p, "b_good_sha256_after", pattern)
        return p

    def net_tap_vanishes(self):
        p = []
        if self.l1.get("tap_setup") == "failed":
            p.append("L1 could not create tap %s" % TAP)
        self.want(p, "net_ping_received", 3)
        self.want(p, "tap_down_rc", 0, self.l1)
        self.want(p, "tap_deleted_rc", 0, self.l1)
        self.want(p, "net_after_ping_done", 1)
        self.want(p, "after_tap_good_sha256", self.ctx["good_after_block_sha"])
        return p

    def _acked_in_file(self, prefix, count, p):
        acked = [i for i in range(count) if self.guest.get("%s_acked_%d" % (prefix, i)) == "1"]
        if not acked:
            p.append("no %s write was acknowledged before the fault" % prefix)
        for i in acked:
            want = sha256(numbered_block(self.ctx["tag"], "%s%d" % (prefix, i)))
            if self.l1.get("%s_file_%d" % (prefix, i)) != want:
                p.append("block %s%d was acknowledged but is not in the file" % (prefix, i))
        return acked

    def reset_unbind_write(self):
        p = []
        self.want(p, "a_writer_running_at_unbind", 1)
        acked = self._acked_in_file("a", A_COUNT, p)
        if self.guest.get("a_rebound_disk", "none") == "none":
            p.append("the disk did not come back after the rebind")
        for i in acked:
            want = sha256(numbered_block(self.ctx["tag"], "a%d" % i))
            self.want(p, "a_read_%d" % i, want)
        return p

    def reset_raw_write(self):
        p = []
        self.want(p, "b_reset_done", 1)
        self.want(p, "b_status_after", 0)  # od prints it in decimal
        acked = self._acked_in_file("b", B_COUNT, p)
        if len(acked) == B_COUNT:
            p.append("every write finished before the reset: it was not mid-request")
        return p

    def vmm_stays_up(self):
        p = []
        self.want(p, "done", 1)
        if self.guest.get("nic", "none") == "none" or self.guest.get("raw_disk", "none") == "none":
            p.append("the guest is missing devices: %s"
                     % " ".join("%s=%s" % (k, self.guest.get(k))
                                for k in ("good_disk", "full_disk", "raw_disk", "nic")))
        bad = [l.strip() for l in self.out.splitlines()
               if "skiff: seccomp:" in l or "Segmentation" in l or "AddressSanitizer" in l]
        if bad:
            p.append("Skiff said: " + " | ".join(bad[:3]))
        return p

    def vmm_sigterm_exit(self):
        p = []
        self.want(p, "sigterm_sent", 1, self.l1)
        if self.rc != 6:
            p.append("Skiff exited %d, expected 6 (stopped by a signal)" % self.rc)
        if "stopped by signal" not in self.out:
            p.append("Skiff did not say it was stopped by the signal")
        return p


def verdict(out, returncode, ctx):
    """([PASS/FAIL line], number failed) of the run: a hang first, with
    where Skiff was stuck; without Skiff's exit status every check fails."""
    lines = hang_watch.failures(out)
    failed = len(lines)
    m = re.search(r"SKIFF_RC=(\d+)", out)
    if returncode != 0 or "TESTHOST FAILURE" in out or not m:
        why = ("test host failed (exit %d)" % returncode if returncode != 0
               or "TESTHOST FAILURE" in out else "Skiff's exit status was not reported")
        return lines + ["FAIL: %s: %s" % (name, why) for name in CHECKS], failed + len(CHECKS)
    c = Checks(out, int(m.group(1)), ctx)
    passed = 0
    for name in CHECKS:
        problems = getattr(c, name.replace("-", "_"))()
        if problems:
            failed += 1
            lines.append("FAIL: %s: %s" % (name, "; ".join(problems)))
        else:
            passed += 1
            lines.append("PASS: %s" % name)
    lines.append("%d of %d checks passed" % (passed, len(CHECKS)))
    return lines, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skiff", required=True)
    parser.add_argument("--print-command", action="store_true")
    args = parser.parse_args()
    tag = secrets.token_hex(6)
    spec = machine()
    command = l1_command(spec)
    if args.print_command:
        print(command)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        images = {"good": os.urandom(GOOD), "raw": os.urandom(RAW)}
        puts = []
        for name, data in images.items():
            path = os.path.join(tmp, name + ".img")
            with open(path, "wb") as f:
                f.write(data)
            puts += ["--put", "%s:/e2e/%s.img" % (path, name)]
        # GOOD as the guest reads it once it has written its block.
        good = bytearray(images["good"])
        good[BLOCK * 4096:(BLOCK + 1) * 4096] = numbered_block(tag, "good")
        ctx = {"tag": tag, "good_after_block_sha": sha256(bytes(good))}
        script = os.path.join(tmp, "autorun.sh")
        with open(os.path.join(HERE, "fault_guest.sh")) as f:
            body = f.read()
        with open(script, "w") as f:
            f.write("#!/bin/sh\n" + guest_settings(tag) + body)
        extra = os.path.join(tmp, "autorun.cpio.gz")
        subprocess.run([virtio_e2e.AUTORUN, script, extra], check=True)
        puts += ["--put", "%s:/e2e/autorun.cpio.gz" % extra]
        th = [sys.executable, virtio_e2e.TESTHOST, "run", "--arch", "x86_64",
              "--skiff", args.skiff, "--timeout", str(TESTHOST_TIMEOUT)]
        proc = subprocess.run(th + puts + ["--", command], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    sys.stdout.write(out)
    print("----")
    lines, failed = verdict(out, proc.returncode, ctx)
    print("\n".join(lines))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
