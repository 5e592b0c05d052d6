#!/usr/bin/env python3
"""End-to-end virtio tests: Skiff (or, for comparison, QEMU) boots Debian's
stock cloud kernel inside the test host (tests/testhost) with virtio disks,
a tap NIC and a virtio console; the guest reports what it sees
(tests/e2e/virtio_guest.sh) and the test host reports the disk image files
after the VMM exited.

Usage: virtio_e2e.py BOOT --transport mmio|pci --skiff PATH [--vmm skiff|qemu]

BOOT is one boot of the guest that makes several checks, each printed as its
own `PASS: <check> [<transport>]` or `FAIL: ...` line; the exit status is 1
if any check failed:

  blk-net     three disks of random bytes (read-write; readonly=on;
              direct=on, on an ext2 loop mount in L1 since L1's tmpfs root
              refuses O_DIRECT), a NIC on a tap the test host created and
              addressed: guest-modules, blk-readwrite, blk-direct,
              blk-readonly, blk-readonly-flag, net-ping, vmm-exit
  vhost-hvc0  a NIC with vhost=on on a tap the VMM creates and addresses
              (ip=,mask=), and --console virtio:
              guest-modules, net-tap-created, net-ping-vhost, console-hvc0,
              vmm-exit

--vmm qemu boots the same machine with QEMU inside the test host
(tests/e2e/vmspec.py has the mapping); that is how the guest side is checked
without Skiff.  A test-host failure (no L1, no KVM in L1) makes every check
FAIL, never skip.
"""
import argparse
import dataclasses
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
AUTORUN = os.path.join(ROOT, "images", "make-autorun-cpio.sh")
GUEST_SCRIPT = os.path.join(HERE, "virtio_guest.sh")
sys.path.insert(0, HERE)
import vmspec  # noqa: E402

CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"
# With a virtio console the kernel console moves to hvc0 once virtio_console
# is loaded; ttyS0 stays first so early messages are not lost.
CMDLINE_HVC = "console=ttyS0 console=hvc0 reboot=k panic=-1 quiet"
TAP = "skiff0"
HOST_IP, GUEST_IP, MASK = "10.0.2.1", "10.0.2.15", "255.255.255.0"
MAC = "52:54:00:e2:e0:01"
BLOCK = 37                  # 4 KiB block the guest writes


@dataclasses.dataclass
class DiskRole:
    role: str               # "ro" is the read-only one (virtio_guest.sh)
    size: int               # the sizes tell the disks apart in the guest
    l1_path: str
    readonly: bool = False
    direct: bool = False


DISKS = [
    DiskRole("rw", 4 << 20, "/e2e/rw.img"),
    DiskRole("ro", 2 << 20, "/e2e/ro.img", readonly=True),
    DiskRole("direct", 3 << 20, "/mnt/ext2/direct.img", direct=True),
]
# L1's root is tmpfs, which refuses O_DIRECT: the direct=on image lives on a
# loop-mounted ext2 file system.
L1_EXT2_SETUP = ("truncate -s 16M /tmp/ext2.img && mke2fs -F /tmp/ext2.img >/dev/null 2>&1 && "
                 "mkdir -p /mnt/ext2 && mount -o loop /tmp/ext2.img /mnt/ext2")
L1_INITRD = "/tmp/initrd"
VMM_TIMEOUT = 150           # seconds, inside L1 (busybox timeout -s KILL)

BOOTS = {
    "blk-net": ["guest-modules", "blk-readwrite", "blk-direct", "blk-readonly",
                "blk-readonly-flag", "net-ping", "vmm-exit"],
    "vhost-hvc0": ["guest-modules", "net-tap-created", "net-ping-vhost", "console-hvc0",
                   "vmm-exit"],
}


def pattern_block(tag):
    """The 4 KiB block virtio_guest.sh writes (its make_pattern)."""
    return b"".join(("%-31s\n" % ("skiff-e2e %s %d" % (tag, i))).encode()
                    for i in range(128))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def machine(boot, transport):
    """The VmSpec of BOOT, with L1 paths."""
    if boot == "blk-net":
        return vmspec.VmSpec(
            kernel="/guest/vmlinuz", initramfs=L1_INITRD, cmdline=CMDLINE, cpus=1,
            memory_mib=256, transport=transport,
            disks=[vmspec.Disk(d.l1_path, readonly=d.readonly, direct=d.direct)
                   for d in DISKS],
            nets=[vmspec.Net(TAP, mac=MAC)], console="serial")
    return vmspec.VmSpec(
        kernel="/guest/vmlinuz", initramfs=L1_INITRD, cmdline=CMDLINE_HVC, cpus=1,
        memory_mib=256, transport=transport,
        nets=[vmspec.Net(TAP, mac=MAC, ip=HOST_IP, mask=MASK, vhost=True)],
        console="virtio")


def guest_settings(boot, tag):
    s = {"TAG": tag, "BLOCK": BLOCK, "GUEST_IP": GUEST_IP, "HOST_IP": HOST_IP,
         "PREFIX": vmspec.prefix_len(MASK), "MAC": MAC, "DISKS": "''", "WANT_HVC": 0}
    if boot == "blk-net":
        s.update(DISKS="'%s'" % " ".join("%s:%d" % (d.role, d.size) for d in DISKS))
    else:
        s.update(WANT_HVC=1)
    return "".join("%s=%s\n" % kv for kv in s.items())


def watched_facts(boot):
    """name -> shell test (true once the fact holds) polled in L1 while the
    VMM runs; $vmm is its pid (busybox timeout execs it in place)."""
    if boot == "vhost-hvc0":
        return {
            # The tap exists and carries the host address.
            "tap_seen": "ip addr show dev %s | grep -q 'inet %s/%d'"
                        % (TAP, HOST_IP, vmspec.prefix_len(MASK)),
            # vhost-net is in use: its worker thread is named vhost-<owner pid>.
            "vhost_seen": "grep -q '^vhost-' /proc/[0-9]*/comm",
        }
    direct = [d for d in DISKS if d.direct][0]
    return {
        # The direct=on image is open with O_DIRECT (octal 040000 in fdinfo).
        "odirect_seen": "for f in /proc/$vmm/fd/*; do "
                        "[ \"$(readlink $f)\" = %s ] && "
                        "fl=$(sed -n 's/^flags:[[:space:]]*//p' /proc/$vmm/fdinfo/${f##*/}) && "
                        "[ $((0$fl & 040000)) != 0 ] && break; false; done" % direct.l1_path,
    }


def l1_command(boot, spec, vmm):
    """The busybox sh command line run in L1."""
    lines = ["cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > %s" % L1_INITRD]
    if boot == "blk-net":
        lines.append("%s && cp /e2e/direct.img /mnt/ext2/ || echo 'L1-E2E: ext2_setup=failed'"
                     % L1_EXT2_SETUP)
        # The tap exists before the VMM starts: Skiff opens it.
        lines.append("tunctl -t %s >/dev/null && ip addr add %s/%d dev %s && "
                     "ip link set %s up || echo 'L1-E2E: tap_setup=failed'"
                     % (TAP, HOST_IP, vmspec.prefix_len(MASK), TAP, TAP))
    lines += vmspec.tap_setup_commands(spec, vmm)
    argv = vmspec.vmm_argv(spec, vmm)
    lines.append("timeout -s KILL %d %s &" % (VMM_TIMEOUT, vmspec.shell_join(argv)))
    lines.append("vmm=$!")
    # Facts only visible while the VMM runs, each a shell test; the results
    # are printed afterwards, not to mix with the guest's console output.
    watch = watched_facts(boot)
    names = " ".join(watch)
    lines.append("for w in %s; do eval $w=0; done; left=%d" % (names, len(watch)))
    tests = "".join("[ $%s = 0 ] && { %s; } >/dev/null 2>&1 && %s=1 && left=$((left - 1)); "
                    % (name, test, name) for name, test in watch.items())
    lines.append("while [ $left != 0 ] && kill -0 $vmm 2>/dev/null; do %ssleep 0.2; done"
                 % tests)
    lines.append("wait $vmm; echo SKIFF_RC=$?")
    lines.append("echo \"L1-E2E:%s\"" % "".join(" %s=$%s" % (n, n) for n in watch))
    if boot == "blk-net":
        for d in DISKS:
            lines.append("echo \"L1-E2E: %s_file_sha256=$(sha256sum < %s | cut -d' ' -f1)\""
                         % (d.role, d.l1_path))
            if d.readonly:
                continue
            block = "dd if=%s bs=4096 skip=%d count=1 2>/dev/null" % (d.l1_path, BLOCK)
            lines.append("echo \"L1-E2E: %s_block_sha256=$(%s | sha256sum | cut -d' ' -f1)\""
                         % (d.role, block))
            lines.append("%s | hexdump -C | head -2 | sed 's/^/L1-E2E-LOG: %s block: /'"
                         % (block, d.role))
    return "\n".join(lines)


def parse(out, marker):
    """key=value pairs of every line containing MARKER (later ones win)."""
    kv = {}
    for line in out.splitlines():
        i = line.find(marker)
        if i < 0:
            continue
        for tok in line[i + len(marker):].split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                kv[k] = v
    return kv


class Checks:
    def __init__(self, out, rc, vmm):
        self.out, self.rc, self.vmm = out, rc, vmm
        self.guest = parse(out, "SKIFF-E2E: ")
        self.l1 = parse(out, "L1-E2E: ")

    def expect(self, problems, key, want, source=None):
        got = (self.guest if source is None else source).get(key)
        if str(want) != got:
            problems.append("%s=%s, expected %s" % (key, got, want))

    def guest_modules(self, _):
        m = re.search(r"SKIFF-GUEST: modules loaded=(\d+) failed=(.*)", self.out)
        if not m:
            return ["the guest never reported its modules"]
        if m.group(2).strip() != "none":
            return ["modules failed to load: " + m.group(2).strip()]
        return []

    def vmm_exit(self, _):
        p = []
        if self.rc != 0:
            p.append("the VMM exited %s, expected 0" % self.rc)
        if self.guest.get("done") != "1":
            p.append("the guest script did not finish")
        if "SKIFF-GUEST: poweroff" not in self.out:
            p.append("the guest did not power off")
        return p

    def _writable(self, ctx, role):
        p = []
        if self.guest.get(role + "_disk", "none") == "none":
            return ["the guest found no %d-byte disk" % ctx[role]["size"]]
        self.expect(p, role + "_sha256", ctx[role]["sha"])
        self.expect(p, role + "_write_rc", 0)
        self.expect(p, role + "_readback_sha256", ctx["pattern_sha"])
        self.expect(p, role + "_block_sha256", ctx["pattern_sha"], self.l1)
        self.expect(p, role + "_file_sha256", ctx[role]["after_sha"], self.l1)
        return p

    def blk_readwrite(self, ctx):
        return self._writable(ctx, "rw")

    def blk_direct(self, ctx):
        p = []
        if self.l1.get("ext2_setup") == "failed":
            p.append("L1 could not set up the ext2 loop mount for the direct=on image")
        if self.l1.get("odirect_seen") != "1":
            p.append("the VMM never had the direct=on image open with O_DIRECT")
        return p + self._writable(ctx, "direct")

    def blk_readonly(self, ctx):
        p = []
        if self.guest.get("ro_disk", "none") == "none":
            return ["the guest found no %d-byte disk" % ctx["ro"]["size"]]
        self.expect(p, "ro_sha256", ctx["ro"]["sha"])
        if self.guest.get("ro_write_rc", "0") == "0":
            p.append("writing to the read-only disk succeeded (ro_write_rc=%s)"
                     % self.guest.get("ro_write_rc"))
        self.expect(p, "ro_after_sha256", ctx["ro"]["sha"])
        self.expect(p, "ro_file_sha256", ctx["ro"]["sha"], self.l1)
        return p

    def blk_readonly_flag(self, _):
        # The device offers VIRTIO_BLK_F_RO, so Linux marks the disk read-only.
        p = []
        self.expect(p, "ro_getro", 1)
        return p

    def _ping(self):
        p = []
        if self.guest.get("nic", "none") == "none":
            return ["the guest found no virtio NIC"]
        self.expect(p, "mac", MAC)
        self.expect(p, "ping_received", 3)
        return p

    def net_ping(self, _):
        return self._ping()

    def net_ping_vhost(self, _):
        p = self._ping()
        if self.l1.get("vhost_seen") != "1":
            p.append("no vhost worker thread in L1 while the VMM ran (vhost-net unused)")
        return p

    def net_tap_created(self, _):
        if self.l1.get("tap_seen") != "1":
            return ["tap %s with %s/%d never appeared in L1"
                    % (TAP, HOST_IP, vmspec.prefix_len(MASK))]
        return []

    def console_hvc0(self, ctx):
        p = []
        if "SKIFF-GUEST: hello from hvc0" not in self.out:
            p.append("the init's hvc0 line never reached stdout")
        if self.guest.get("hvc0_line") != ctx["tag"]:
            p.append("hvc0=%s; the line written to /dev/hvc0 never reached stdout"
                     % self.guest.get("hvc0"))
        return p


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("boot", choices=sorted(BOOTS))
    parser.add_argument("--transport", choices=vmspec.TRANSPORTS, required=True)
    parser.add_argument("--vmm", choices=["skiff", "qemu"], default="skiff")
    parser.add_argument("--skiff", default=None,
                        help="skiff binary (required with --vmm skiff)")
    parser.add_argument("--print-command", action="store_true",
                        help="print the L1 command line and exit")
    args = parser.parse_args()
    if args.vmm == "skiff" and not args.skiff:
        parser.error("--skiff is required with --vmm skiff")

    tag = secrets.token_hex(6)
    spec = machine(args.boot, args.transport)
    command = l1_command(args.boot, spec, args.vmm)
    if args.print_command:
        print(command)
        return 0

    ctx = {"tag": tag, "pattern_sha": sha256(pattern_block(tag))}
    with tempfile.TemporaryDirectory() as tmp:
        puts = []
        if args.boot == "blk-net":
            for d in DISKS:
                data = os.urandom(d.size)
                after = bytearray(data)
                if not d.readonly:
                    after[BLOCK * 4096:(BLOCK + 1) * 4096] = pattern_block(tag)
                ctx[d.role] = {"size": d.size, "sha": sha256(data), "after_sha": sha256(after)}
                host = os.path.join(tmp, d.role + ".img")
                with open(host, "wb") as f:
                    f.write(data)
                # Everything goes to /e2e; L1 copies the direct=on one onto ext2.
                puts += ["--put", "%s:/e2e/%s.img" % (host, d.role)]
        script = os.path.join(tmp, "autorun.sh")
        with open(GUEST_SCRIPT) as f:
            body = f.read()
        with open(script, "w") as f:
            f.write("#!/bin/sh\n" + guest_settings(args.boot, tag) + body)
        extra = os.path.join(tmp, "autorun.cpio.gz")
        subprocess.run([AUTORUN, script, extra], check=True)
        puts += ["--put", "%s:/e2e/autorun.cpio.gz" % extra]
        th = [sys.executable, TESTHOST, "run", "--arch", "x86_64",
              "--skiff", args.skiff or "/bin/true", "--timeout", "240"]
        if args.vmm == "qemu":
            th.append("--with-qemu")
        proc = subprocess.run(th + puts + ["--", command], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    sys.stdout.write(out)
    print("----")

    checks = BOOTS[args.boot]
    label = "[%s%s]" % (args.transport, "" if args.vmm == "skiff" else ", qemu")
    failed = 0
    m = re.search(r"SKIFF_RC=(\d+)", out)
    if proc.returncode != 0 or "TESTHOST FAILURE" in out or not m:
        why = ("test host failed (exit %d)" % proc.returncode if proc.returncode != 0
               or "TESTHOST FAILURE" in out else "the VMM's exit status was not reported")
        for name in checks:
            print("FAIL: %s %s: %s" % (name, label, why))
        return 1
    c = Checks(out, int(m.group(1)), args.vmm)
    for name in checks:
        problems = getattr(c, name.replace("-", "_"))(ctx)
        if problems:
            failed += 1
            print("FAIL: %s %s: %s" % (name, label, "; ".join(problems)))
        else:
            print("PASS: %s %s" % (name, label))
    print("%d of %d checks passed" % (len(checks) - failed, len(checks)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
