#!/usr/bin/env python3
"""End-to-end virtio tests: Skiff (or, for comparison, QEMU) boots Debian's
stock cloud kernel inside the test host (tests/testhost) with virtio disks,
a tap NIC and a virtio console; the guest reports what it sees
(tests/e2e/virtio_guest.sh) and the test host reports the disk image files
after the VMM exited.

Usage: virtio_e2e.py BOOT --transport mmio|pci --skiff PATH [--vmm skiff|qemu]
                     [--arch x86_64|arm64]

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
  multi       --cpus 2; a queues=2 NIC on the machine's transport (run with
              pci) on a tap the VMM creates, a plain NIC with transport=mmio;
              disks with transport=pci and transport=mmio: guest-modules,
              devices-seen, blk-pci, blk-mmio, net-ping-mq, net-mq-channels
              (2 rx/tx queues in the guest, a multi_queue tap in L1),
              net-mq-traffic (a ping from each CPU leaves on that CPU's
              queue pair, whose MSI-X vectors fire), net-ping-mmio,
              vmm-no-warnings (no warn/error line from Skiff), vmm-exit
  smp-blk-net --cpus 2 --memory 256M, a read-write and a read-only disk and a
              NIC on a tap L1 created: guest-modules, devices-seen (2 CPUs),
              guest-memory, blk-readwrite, blk-readonly, net-ping, vmm-exit;
              the e2e-arm64 suite's boot on each transport
  reset       a disk, a NIC and a vhost=on NIC; after the first I/O the
              guest unbinds and rebinds virtio_blk and virtio_net twice
              through sysfs (device reset, then a fresh activation):
              guest-modules, blk-readwrite, net-ping, net-ping-vhost,
              reset-unbind (devices gone, status 0x1), reset-rebind (back,
              status 0xf, no kernel warning), blk-after-reset,
              net-after-reset, vmm-no-warnings, vmm-exit

Every disk and NIC is also checked to sit on the transport asked for (its
parent bus in the guest's sysfs).

--arch arm64 runs in the ARM64 test host (tests/testhost, profile arm64)
with an aarch64 --skiff; the guest is Debian's arm64 cloud kernel with the
same initramfs scripts (images/ builds its arm64 twin).

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
from typing import List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
AUTORUN = os.path.join(ROOT, "images", "make-autorun-cpio.sh")
GUEST_SCRIPT = os.path.join(HERE, "virtio_guest.sh")
sys.path.insert(0, HERE)
import hang_watch  # noqa: E402
import vmspec  # noqa: E402

CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"
# With a virtio console the kernel console moves to hvc0 once virtio_console
# is loaded; ttyS0 stays first so early messages are not lost.
CMDLINE_HVC = "console=ttyS0 console=hvc0 reboot=k panic=-1 quiet"
MASK = "255.255.255.0"
MAC = "52:54:00:e2:e0:01"   # the first NIC of every boot
BLOCK = 37                  # 4 KiB block the guest writes


@dataclasses.dataclass
class DiskRole:
    role: str               # "ro" is the read-only one (virtio_guest.sh)
    size: int               # the sizes tell the disks apart in the guest
    l1_path: str
    readonly: bool = False
    direct: bool = False
    transport: Optional[str] = None   # None: the machine's --transport


@dataclasses.dataclass
class NicRole:
    role: str
    tap: str
    mac: str                # the MACs tell the NICs apart in the guest
    host_ip: str            # each NIC on its own /24
    guest_ip: str
    vmm_creates_tap: bool = False     # ip=,mask= on --net; else L1 creates it first
    queues: int = 1
    vhost: bool = False
    transport: Optional[str] = None


@dataclasses.dataclass
class Boot:
    """One boot.  The roles of its disks and NICs prefix the guest's and
    L1's keys, so they are unique within the boot."""
    checks: List[str]
    disks: List[DiskRole] = dataclasses.field(default_factory=list)
    nics: List[NicRole] = dataclasses.field(default_factory=list)
    cpus: int = 1
    memory_mib: int = 256
    console: str = "serial"
    reset_cycles: int = 0   # driver unbind/bind rounds (virtio_guest.sh)


def _net(role, n, mac=MAC, **kw):
    """NIC ROLE on tap skiffN, 10.0.(2+N).1 host side, .15 guest side."""
    return NicRole(role, "skiff%d" % n, mac, "10.0.%d.1" % (2 + n), "10.0.%d.15" % (2 + n), **kw)


BOOTS = {
    # Three disks of random bytes (read-write; readonly=on; direct=on, on an
    # ext2 loop mount in L1 since L1's tmpfs root refuses O_DIRECT) and a
    # NIC on a tap L1 created and addressed.
    "blk-net": Boot(
        checks=["guest-modules", "blk-readwrite", "blk-direct", "blk-readonly",
                "blk-readonly-flag", "net-ping", "vmm-exit"],
        disks=[DiskRole("rw", 4 << 20, "/e2e/rw.img"),
               DiskRole("ro", 2 << 20, "/e2e/ro.img", readonly=True),
               DiskRole("direct", 3 << 20, "/mnt/ext2/direct.img", direct=True)],
        nics=[_net("net", 0)]),
    # vhost=on on a tap the VMM creates and addresses (ip=,mask=), and
    # --console virtio.
    "vhost-hvc0": Boot(
        checks=["guest-modules", "net-tap-created", "net-ping-vhost", "console-hvc0",
                "vmm-exit"],
        nics=[_net("net", 0, vmm_creates_tap=True, vhost=True)], console="virtio"),
    # Two vCPUs, two NICs and two disks, each pair on both transports: a
    # queues=2 NIC on the machine's transport on a tap Skiff creates, a plain
    # one with transport=mmio; disks with transport=mmio and transport=pci.
    "multi": Boot(
        checks=["guest-modules", "devices-seen", "blk-pci", "blk-mmio", "net-ping-mq",
                "net-mq-channels", "net-mq-traffic", "net-ping-mmio", "vmm-no-warnings",
                "vmm-exit"],
        disks=[DiskRole("blkpci", 4 << 20, "/e2e/blkpci.img", transport="pci"),
               DiskRole("blkmmio", 3 << 20, "/e2e/blkmmio.img", transport="mmio")],
        nics=[_net("mq", 0, vmm_creates_tap=True, queues=2),
              _net("netmmio", 1, mac="52:54:00:e2:e0:02", transport="mmio")],
        cpus=2),
    # The guest unbinds and rebinds virtio_blk and virtio_net twice (device
    # reset, then a fresh activation) and uses every device again.
    "reset": Boot(
        checks=["guest-modules", "blk-readwrite", "net-ping", "net-ping-vhost",
                "reset-unbind", "reset-rebind", "blk-after-reset", "net-after-reset",
                "vmm-no-warnings", "vmm-exit"],
        disks=[DiskRole("rw", 4 << 20, "/e2e/rw.img")],
        nics=[_net("net", 0), _net("vhost", 1, mac="52:54:00:e2:e0:02",
                                   vmm_creates_tap=True, vhost=True)],
        reset_cycles=2),
    # Two vCPUs and 256 MiB (the guest must see both), a read-write and a
    # read-only disk and a NIC: the ARM64 acceptance boot, run once per
    # transport (e2e-arm64).
    "smp-blk-net": Boot(
        checks=["guest-modules", "devices-seen", "guest-memory", "blk-readwrite",
                "blk-readonly", "net-ping", "vmm-exit"],
        disks=[DiskRole("rw", 4 << 20, "/e2e/rw.img"),
               DiskRole("ro", 2 << 20, "/e2e/ro.img", readonly=True)],
        nics=[_net("net", 0)], cpus=2),
}
# What differs between the test hosts.  Skiff's arm64 UART is a 16550
# (ns16550a in the device tree), so the guest console is ttyS0 on both.
ARCHES = {
    "x86_64": {"testhost": "x86_64", "with_qemu": True},
    "arm64": {"testhost": "arm64", "with_qemu": False},
}
# L1's root is tmpfs, which refuses O_DIRECT: the direct=on image lives on a
# loop-mounted ext2 file system.
L1_EXT2_SETUP = ("truncate -s 16M /tmp/ext2.img && mke2fs -F /tmp/ext2.img >/dev/null 2>&1 && "
                 "mkdir -p /mnt/ext2 && mount -o loop /tmp/ext2.img /mnt/ext2")
L1_INITRD = "/tmp/initrd"
# Seconds for the VMM inside L1 (Skiff's --timeout), and for the whole test
# host run (L1 boot plus the VMM run); ARM64's L1 is slower (TCG). A VMM
# still there HANG_MARGIN_S later (QEMU: at all) is hung: hang_watch
# prints where it is stuck and kills it, well before the test host's limit.
VMM_TIMEOUT = {"x86_64": 150, "arm64": 200}
HANG_MARGIN_S = 20
TESTHOST_TIMEOUT = {"x86_64": 270, "arm64": 340}


def missing_skiff(path, arch):
    """Why a test fails when its --skiff does not exist."""
    how = ("build it with scripts/setup.sh's skiff_build_arm64 (scripts/test.sh does)"
           if arch == "arm64" else "build it with ninja")
    return "no skiff binary at %s: %s" % (path, how)


def pattern_block(tag):
    """The 4 KiB block virtio_guest.sh writes (its make_pattern)."""
    return b"".join(("%-31s\n" % ("skiff-e2e %s %d" % (tag, i))).encode()
                    for i in range(128))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def machine(boot, transport):
    """The VmSpec of BOOT, with L1 paths."""
    b = BOOTS[boot]
    return vmspec.VmSpec(
        kernel="/guest/vmlinuz", initramfs=L1_INITRD,
        cmdline=CMDLINE_HVC if b.console == "virtio" else CMDLINE, cpus=b.cpus,
        memory_mib=b.memory_mib, transport=transport,
        disks=[vmspec.Disk(d.l1_path, readonly=d.readonly, direct=d.direct,
                           transport=d.transport) for d in b.disks],
        nets=[vmspec.Net(n.tap, mac=n.mac, ip=n.host_ip if n.vmm_creates_tap else None,
                         mask=MASK if n.vmm_creates_tap else None, queues=n.queues,
                         vhost=n.vhost, transport=n.transport) for n in b.nics],
        console=b.console)


def guest_settings(boot, tag):
    b = BOOTS[boot]
    nics = " ".join("%s,%s,%s,%s,%d" % (n.role, n.mac, n.guest_ip, n.host_ip,
                                        vmspec.prefix_len(MASK)) for n in b.nics)
    s = {"TAG": tag, "BLOCK": BLOCK,
         "DISKS": "'%s'" % " ".join("%s:%d" % (d.role, d.size) for d in b.disks),
         "NICS": "'%s'" % nics, "WANT_HVC": int(b.console == "virtio"),
         "RESET_CYCLES": b.reset_cycles}
    return "".join("%s=%s\n" % kv for kv in s.items())


def watched_facts(boot):
    """name -> shell test (true once the fact holds) polled in L1 while the
    VMM runs; $vmm is its pid."""
    b = BOOTS[boot]
    facts = {}
    for d in b.disks:
        if d.direct:
            # The direct=on image is open with O_DIRECT (octal 040000 in fdinfo).
            facts["%s_odirect_seen" % d.role] = (
                "for f in /proc/$vmm/fd/*; do "
                "[ \"$(readlink $f)\" = %s ] && "
                "fl=$(sed -n 's/^flags:[[:space:]]*//p' /proc/$vmm/fdinfo/${f##*/}) && "
                "[ $((0$fl & 040000)) != 0 ] && break; false; done" % d.l1_path)
    for n in b.nics:
        if n.vmm_creates_tap:
            # The tap exists and carries the host address.
            facts["%s_tap_seen" % n.role] = ("ip addr show dev %s | grep -q 'inet %s/%d'"
                                             % (n.tap, n.host_ip, vmspec.prefix_len(MASK)))
        if n.queues > 1:
            # iproute2 by path (busybox's ip has no details): a multi_queue tap.
            facts["%s_tap_multi_queue" % n.role] = ("/usr/bin/ip -d link show dev %s | "
                                                    "grep -q multi_queue" % n.tap)
    if any(n.vhost for n in b.nics):
        # vhost-net is in use: its worker thread is named vhost-<owner pid>.
        facts["vhost_seen"] = "grep -q '^vhost-' /proc/[0-9]*/comm"
    return facts


def l1_command(boot, spec, vmm, arch="x86_64"):
    """The busybox sh command line run in L1."""
    b = BOOTS[boot]
    lines = [hang_watch.shell(VMM_TIMEOUT[arch] + HANG_MARGIN_S),
             "cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > %s" % L1_INITRD]
    direct = [d for d in b.disks if d.direct]
    if direct:
        # Every image arrives in /e2e; the direct=on ones are copied onto ext2.
        lines.append(L1_EXT2_SETUP + "".join(" && cp /e2e/%s.img %s" % (d.role, d.l1_path)
                                             for d in direct)
                     + " || echo 'L1-E2E: ext2_setup=failed'")
    for n in b.nics:
        if n.vmm_creates_tap:
            continue
        # The tap exists before the VMM starts: Skiff opens it.
        lines.append("tunctl -t %s >/dev/null && ip addr add %s/%d dev %s && "
                     "ip link set %s up || echo 'L1-E2E: %s_tap_setup=failed'"
                     % (n.tap, n.host_ip, vmspec.prefix_len(MASK), n.tap, n.tap, n.role))
    lines += vmspec.tap_setup_commands(spec, vmm)
    argv = vmspec.vmm_argv(spec, vmm)
    if vmm == "skiff":
        argv += ["--timeout", "%ds" % VMM_TIMEOUT[arch]]
    # The VMM's output goes straight to the console, as the checks read it;
    # the watchdog has no log to read, only the time limit.
    lines.append("%s &" % vmspec.shell_join(argv))
    lines.append("vmm=$!")
    lines.append("vmm_watch %s $vmm ''" % boot)
    # Facts only visible while the VMM runs, each a shell test; the results
    # are printed afterwards, not to mix with the guest's console output.
    watch = watched_facts(boot)
    names = " ".join(watch)
    lines.append("for w in %s; do eval $w=0; done; left=%d" % (names, len(watch)))
    tests = "".join("[ $%s = 0 ] && { %s; } >/dev/null 2>&1 && %s=1 && left=$((left - 1)); "
                    % (name, test, name) for name, test in watch.items())
    lines.append("while [ $left != 0 ] && vmm_running %s $vmm; do %ssleep 0.2; done"
                 % (boot, tests))
    # No exit status if the VMM could not be killed (a wait would block).
    lines.append("vmm_settle %s $vmm && { wait $vmm; echo SKIFF_RC=$?; }" % boot)
    lines.append("echo \"L1-E2E:%s\"" % "".join(" %s=$%s" % (n, n) for n in watch))
    for d in b.disks:
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


# What the guest calls each transport's bus (virtio_guest.sh transport_of).
GUEST_BUS = {"pci": "pci", "mmio": "platform"}


class Checks:
    def __init__(self, out, rc, vmm, boot, transport):
        self.out, self.rc, self.vmm = out, rc, vmm
        self.boot, self.transport = BOOTS[boot], transport
        self.guest = parse(out, "SKIFF-E2E: ")
        self.l1 = parse(out, "L1-E2E: ")

    def expect(self, problems, key, want, source=None):
        got = (self.guest if source is None else source).get(key)
        if str(want) != got:
            problems.append("%s=%s, expected %s" % (key, got, want))

    def _disk(self, role):
        return [d for d in self.boot.disks if d.role == role][0]

    def _nic(self, role):
        return [n for n in self.boot.nics if n.role == role][0]

    def _bus(self, device):
        return GUEST_BUS[device.transport or self.transport]

    def _ring(self, p, key, vhost=False):
        """Skiff offers packed virtqueues (but not on vhost-net, which lacks
        them) and Linux takes them; QEMU leaves them off by default."""
        want = 1 if self.vmm == "skiff" and not vhost else 0
        self.expect(p, key + "_packed", want)

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

    def guest_memory(self, _):
        # MemTotal is RAM less what the kernel keeps for itself (its image,
        # page tables, reserved regions): between 70% and 100% of it.
        m = re.search(r"SKIFF-GUEST: cpus=\d+ mem_kb=(\d+)", self.out)
        if not m:
            return ["the guest never reported its memory"]
        mem_kb, given_kb = int(m.group(1)), self.boot.memory_mib * 1024
        if not 0.7 * given_kb <= mem_kb <= given_kb:
            return ["the guest saw MemTotal %d kB with %d MiB given" % (mem_kb,
                                                                        self.boot.memory_mib)]
        return []

    def vmm_no_warnings(self, _):
        # Skiff logs a device error (NEEDS_RESET, a refused activation, a
        # failed tap ioctl) as a warn or error line; a healthy run has none.
        # QEMU's output has no such lines.
        bad = [l.strip() for l in self.out.splitlines()
               if re.search(r"\b\d+\.\d{6} (warn|error) [\w-]+: ", l)]
        return ["the VMM logged: " + " | ".join(bad[:3])] if bad else []

    def devices_seen(self, _):
        # guest-init.sh's summary lines.
        m = re.search(r"SKIFF-GUEST: virtio disks=(.*) nics=(.*) console=", self.out)
        c = re.search(r"SKIFF-GUEST: cpus=(\d+)", self.out)
        if not m or not c:
            return ["the guest never reported its CPUs and virtio devices"]
        p = []
        disks = [d for d in m.group(1).split() if d != "none"]
        nics = [n for n in m.group(2).split() if n != "none"]
        if len(disks) != len(self.boot.disks):
            p.append("disks=%s, expected %d" % (m.group(1), len(self.boot.disks)))
        if len(nics) != len(self.boot.nics):
            p.append("nics=%s, expected %d" % (m.group(2), len(self.boot.nics)))
        if int(c.group(1)) != self.boot.cpus:
            p.append("cpus=%s, expected %d" % (c.group(1), self.boot.cpus))
        return p

    def _writable(self, ctx, role):
        p = []
        if self.guest.get(role + "_disk", "none") == "none":
            return ["the guest found no %d-byte disk" % ctx[role]["size"]]
        self.expect(p, role + "_transport", self._bus(self._disk(role)))
        self._ring(p, role)
        self.expect(p, role + "_sha256", ctx[role]["sha"])
        self.expect(p, role + "_write_rc", 0)
        self.expect(p, role + "_readback_sha256", ctx["pattern_sha"])
        self.expect(p, role + "_block_sha256", ctx["pattern_sha"], self.l1)
        self.expect(p, role + "_file_sha256", ctx[role]["after_sha"], self.l1)
        return p

    def blk_readwrite(self, ctx):
        return self._writable(ctx, "rw")

    def blk_pci(self, ctx):
        return self._writable(ctx, "blkpci")

    def blk_mmio(self, ctx):
        return self._writable(ctx, "blkmmio")

    def blk_direct(self, ctx):
        p = []
        if self.l1.get("ext2_setup") == "failed":
            p.append("L1 could not set up the ext2 loop mount for the direct=on image")
        if self.l1.get("direct_odirect_seen") != "1":
            p.append("the VMM never had the direct=on image open with O_DIRECT")
        return p + self._writable(ctx, "direct")

    def blk_readonly(self, ctx):
        p = []
        if self.guest.get("ro_disk", "none") == "none":
            return ["the guest found no %d-byte disk" % ctx["ro"]["size"]]
        self.expect(p, "ro_transport", self._bus(self._disk("ro")))
        self._ring(p, "ro")
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

    def _ping(self, role, prefix=""):
        """The NIC of ROLE was found, on its transport, and pinged its tap."""
        nic, key = self._nic(role), prefix + role
        p = []
        if self.l1.get(role + "_tap_setup") == "failed":
            p.append("L1 could not create and address tap %s" % nic.tap)
        if self.guest.get(key + "_nic", "none") == "none":
            return p + ["the guest found no virtio NIC with MAC %s" % nic.mac]
        self.expect(p, key + "_mac", nic.mac)
        self.expect(p, key + "_transport", self._bus(nic))
        self._ring(p, key, nic.vhost)
        self.expect(p, key + "_ping_received", 3)
        return p

    def net_ping(self, _):
        return self._ping("net")

    def net_ping_mq(self, _):
        return self._ping("mq")

    def net_ping_mmio(self, _):
        return self._ping("netmmio")

    def net_ping_vhost(self, _):
        p = self._ping([n for n in self.boot.nics if n.vhost][0].role)
        if self.l1.get("vhost_seen") != "1":
            p.append("no vhost worker thread in L1 while the VMM ran (vhost-net unused)")
        return p

    def net_tap_created(self, _):
        p = []
        for n in self.boot.nics:
            if n.vmm_creates_tap and self.l1.get(n.role + "_tap_seen") != "1":
                p.append("tap %s with %s/%d never appeared in L1"
                         % (n.tap, n.host_ip, vmspec.prefix_len(MASK)))
        return p

    def net_mq_channels(self, _):
        # The guest's queue count is min(max_virtqueue_pairs, CPUs): one
        # rx-N and tx-N directory per queue pair in use.
        n = self._nic("mq")
        p = []
        self.expect(p, "mq_rxq", n.queues)
        self.expect(p, "mq_txq", n.queues)
        if self.l1.get("mq_tap_multi_queue") != "1":
            p.append("tap %s was never a multi_queue tap in L1" % n.tap)
        return p

    def net_mq_traffic(self, _):
        # A ping sent from CPU q leaves on queue pair q (XPS); its interrupts
        # (virtio-pci MSI-X, one vector per queue) show the pair carried it.
        p = []
        for q in range(self._nic("mq").queues):
            self.expect(p, "mq_q%d_ping_received" % q, 2)
            irqs = self.guest.get("mq_q%d_irqs" % q)
            if not (irqs or "").isdigit() or int(irqs) == 0:
                p.append("mq_q%d_irqs=%s: queue pair %d raised no interrupt" % (q, irqs, q))
        return p

    def _cycles(self):
        return ["reset%d_" % c for c in range(1, self.boot.reset_cycles + 1)]

    def reset_unbind(self, _):
        # Unbinding resets the device (status 0); virtio core then sets
        # ACKNOWLEDGE again, so every unbound device reads 1.
        p = []
        devices = len(self.boot.disks) + len(self.boot.nics)
        for c in self._cycles():
            self.expect(p, c + "unbound", devices)
            self.expect(p, c + "disks_left", 0)
            self.expect(p, c + "nics_left", 0)
            status = self.guest.get(c + "unbound_status", "")
            values = [kv.split("=", 1)[-1] for kv in status.split(",") if kv]
            if len(values) != devices or any(v != "0x00000001" for v in values):
                p.append("%sunbound_status=%s, expected %d x 0x00000001" % (c, status, devices))
        return p

    def reset_rebind(self, _):
        # Rebinding probes again: ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK.
        p = []
        devices = len(self.boot.disks) + len(self.boot.nics)
        for c in self._cycles():
            self.expect(p, c + "disks", len(self.boot.disks))
            self.expect(p, c + "nics", len(self.boot.nics))
            status = self.guest.get(c + "bound_status", "")
            values = [kv.split("=", 1)[-1] for kv in status.split(",") if kv]
            if len(values) != devices or any(v != "0x0000000f" for v in values):
                p.append("%sbound_status=%s, expected %d x 0x0000000f" % (c, status, devices))
            self.expect(p, c + "kernel_complaints", 0)
        return p

    def blk_after_reset(self, ctx):
        # The whole disk, read again after each reset: the host's bytes with
        # the pattern written before the first reset.
        p = []
        for c in self._cycles():
            for d in self.boot.disks:
                if self.guest.get(c + d.role + "_disk", "none") == "none":
                    p.append("%s: the guest found no %d-byte disk" % (c[:-1], d.size))
                    continue
                self.expect(p, c + d.role + "_sha256", ctx[d.role]["after_sha"])
        return p

    def net_after_reset(self, _):
        p = []
        for c in self._cycles():
            for n in self.boot.nics:
                p += self._ping(n.role, c)
        return p

    def console_hvc0(self, ctx):
        p = []
        if "SKIFF-GUEST: hello from hvc0" not in self.out:
            p.append("the init's hvc0 line never reached stdout")
        if self.guest.get("hvc0_line") != ctx["tag"]:
            p.append("hvc0=%s; the line written to /dev/hvc0 never reached stdout"
                     % self.guest.get("hvc0"))
        return p


def verdict(out, returncode, vmm, boot, transport, arch, ctx):
    """([PASS/FAIL line], number failed) of a boot: a hang first, with where
    the VMM was stuck; without the VMM's exit status every check fails."""
    lines = hang_watch.failures(out)
    failed = len(lines)
    checks = BOOTS[boot].checks
    label = "[%s%s%s]" % (transport, "" if vmm == "skiff" else ", qemu",
                          "" if arch == "x86_64" else ", " + arch)
    m = re.search(r"SKIFF_RC=(\d+)", out)
    if returncode != 0 or "TESTHOST FAILURE" in out or not m:
        why = ("test host failed (exit %d)" % returncode if returncode != 0
               or "TESTHOST FAILURE" in out else "the VMM's exit status was not reported")
        return lines + ["FAIL: %s %s: %s" % (name, label, why) for name in checks], \
            failed + len(checks)
    c = Checks(out, int(m.group(1)), vmm, boot, transport)
    passed = 0
    for name in checks:
        problems = getattr(c, name.replace("-", "_"))(ctx)
        if problems:
            failed += 1
            lines.append("FAIL: %s %s: %s" % (name, label, "; ".join(problems)))
        else:
            passed += 1
            lines.append("PASS: %s %s" % (name, label))
    lines.append("%d of %d checks passed" % (passed, len(checks)))
    return lines, failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("boot", choices=sorted(BOOTS))
    parser.add_argument("--transport", choices=vmspec.TRANSPORTS, required=True)
    parser.add_argument("--vmm", choices=["skiff", "qemu"], default="skiff")
    parser.add_argument("--arch", choices=sorted(ARCHES), default="x86_64",
                        help="test-host profile; --skiff must be built for it")
    parser.add_argument("--skiff", default=None,
                        help="skiff binary (required with --vmm skiff)")
    parser.add_argument("--print-command", action="store_true",
                        help="print the L1 command line and exit")
    args = parser.parse_args()
    if args.vmm == "skiff" and not args.skiff:
        parser.error("--skiff is required with --vmm skiff")
    if args.vmm == "qemu" and not ARCHES[args.arch]["with_qemu"]:
        parser.error("--vmm qemu is not available in the %s test host" % args.arch)

    tag = secrets.token_hex(6)
    spec = machine(args.boot, args.transport)
    command = l1_command(args.boot, spec, args.vmm, args.arch)
    if args.print_command:
        print(command)
        return 0
    if args.skiff and not os.path.isfile(args.skiff):
        for name in BOOTS[args.boot].checks:
            print("FAIL: %s [%s, %s]: %s" % (name, args.transport, args.arch,
                                             missing_skiff(args.skiff, args.arch)))
        return 1

    ctx = {"tag": tag, "pattern_sha": sha256(pattern_block(tag))}
    with tempfile.TemporaryDirectory() as tmp:
        puts = []
        for d in BOOTS[args.boot].disks:
            data = os.urandom(d.size)
            after = bytearray(data)
            if not d.readonly:
                after[BLOCK * 4096:(BLOCK + 1) * 4096] = pattern_block(tag)
            ctx[d.role] = {"size": d.size, "sha": sha256(data), "after_sha": sha256(after)}
            host = os.path.join(tmp, d.role + ".img")
            with open(host, "wb") as f:
                f.write(data)
            # Everything goes to /e2e; L1 copies the direct=on ones onto ext2.
            puts += ["--put", "%s:/e2e/%s.img" % (host, d.role)]
        script = os.path.join(tmp, "autorun.sh")
        with open(GUEST_SCRIPT) as f:
            body = f.read()
        with open(script, "w") as f:
            f.write("#!/bin/sh\n" + guest_settings(args.boot, tag) + body)
        extra = os.path.join(tmp, "autorun.cpio.gz")
        subprocess.run([AUTORUN, script, extra], check=True)
        puts += ["--put", "%s:/e2e/autorun.cpio.gz" % extra]
        th = [sys.executable, TESTHOST, "run", "--arch", ARCHES[args.arch]["testhost"],
              "--timeout", str(TESTHOST_TIMEOUT[args.arch])]
        if args.skiff:
            th += ["--skiff", args.skiff]
        if args.vmm == "qemu":
            th.append("--with-qemu")
        proc = subprocess.run(th + puts + ["--", command], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
    out = proc.stdout
    sys.stdout.write(out)
    print("----")

    lines, failed = verdict(out, proc.returncode, args.vmm, args.boot, args.transport,
                            args.arch, ctx)
    print("\n".join(lines))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
