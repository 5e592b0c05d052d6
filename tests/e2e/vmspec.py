#!/usr/bin/env python3
"""One description of a guest machine, rendered as a Skiff command line or as
the equivalent QEMU command line, so the e2e tests and the benchmarks boot the
same machine with either VMM.  Python 3 standard library only.

    spec = VmSpec(kernel=..., initramfs=..., cmdline=..., transport="pci",
                  disks=[Disk("/e2e/rw.img")],
                  nets=[Net("skiff0", mac="52:54:00:12:34:56")],
                  console="virtio")
    skiff_argv(spec)          # skiff run --kernel ... --disk path=... ...
    qemu_argv(spec)           # qemu-system-x86_64 -accel kvm ... -device virtio-blk-pci ...
    tap_setup_commands(spec, "qemu")   # shell lines to run first (see below)

As a program it takes Skiff's own options and prints either command line,
for shell scripts such as the benchmarks:

    vmspec.py --vmm qemu --kernel K --initramfs I --cmdline "..." \
        --transport pci --disk path=D,readonly=on --net tap=T,vhost=on

Mapping (Skiff option -> QEMU):
  --transport pci   -> -M pc and -device virtio-*-pci,disable-legacy=on (modern
                       virtio-pci with MSI-X, as Skiff offers)
  --transport mmio  -> -M microvm,acpi=on,rtc=on,auto-kernel-cmdline=off,
                       -global virtio-mmio.force-legacy=false (version 2, as
                       Skiff offers) and -device virtio-*-device: virtio-mmio
                       described only in the ACPI DSDT (LNRO0005), as the
                       cloud kernel needs; mixing transports uses microvm
                       with pcie=on
  --disk path=F[,readonly=on][,direct=on]
                    -> -drive file=F,format=raw,if=none[,readonly=on]
                       [,cache=none (O_DIRECT)] + virtio-blk
  --net tap=T[,mac=M][,queues=N][,vhost=on]
                    -> -netdev tap,ifname=T,script=no,downscript=no
                       [,queues=N][,vhost=on] + virtio-net[,mac=M][,mq=on]
  --net ...,ip=IP,mask=MASK
                    -> QEMU cannot address the host side of a tap, so
                       tap_setup_commands() creates and addresses it first
  --console virtio  -> virtio-serial + virtconsole on stdio, the UART on null
                       (everything the guest prints must come through hvc0);
                       --console serial -> -serial stdio
  --device vfio=/sys/bus/pci/devices/BDF
                    -> -device vfio-pci,host=BDF,rombar=0 (the ROM hidden, as
                       Skiff hides it); a passed-through device is on PCI, so
                       QEMU's machine is -M pc
"""

import argparse
import dataclasses
import ipaddress
import shlex
import sys
from typing import List, Optional

TRANSPORTS = ("mmio", "pci")


@dataclasses.dataclass
class Disk:
    path: str
    readonly: bool = False
    direct: bool = False
    transport: Optional[str] = None   # None: the machine's --transport


@dataclasses.dataclass
class Net:
    tap: str
    mac: Optional[str] = None
    ip: Optional[str] = None          # host side of the tap, with mask
    mask: Optional[str] = None
    queues: int = 1
    vhost: bool = False
    transport: Optional[str] = None


@dataclasses.dataclass
class VmSpec:
    kernel: str
    initramfs: str
    cmdline: str
    cpus: int = 1
    memory_mib: int = 256
    transport: str = "mmio"
    disks: List[Disk] = dataclasses.field(default_factory=list)
    nets: List[Net] = dataclasses.field(default_factory=list)
    console: str = "serial"           # serial | virtio
    # Host PCI devices passed through (sysfs paths, bound to vfio-pci).
    vfio: List[str] = dataclasses.field(default_factory=list)

    def transports(self):
        """The transport of every device, in order (passed-through devices
        are PCI functions)."""
        devs = list(self.disks) + list(self.nets)
        used = [d.transport or self.transport for d in devs] + ["pci"] * len(self.vfio)
        if self.console == "virtio":
            used.append(self.transport)
        return used


def _onoff(flag):
    return "on" if flag else "off"


# ----------------------------------------------------------------- Skiff ---

def skiff_argv(spec, skiff="skiff", log_level="info"):
    argv = [skiff, "run", "--kernel", spec.kernel, "--initramfs", spec.initramfs,
            "--cmdline", spec.cmdline, "--cpus", str(spec.cpus),
            "--memory", "%dM" % spec.memory_mib, "--transport", spec.transport]
    for d in spec.disks:
        opt = "path=" + d.path
        if d.readonly:
            opt += ",readonly=on"
        if d.direct:
            opt += ",direct=on"
        if d.transport:
            opt += ",transport=" + d.transport
        argv += ["--disk", opt]
    for n in spec.nets:
        opt = "tap=" + n.tap
        if n.mac:
            opt += ",mac=" + n.mac
        if n.ip:
            opt += ",ip=%s,mask=%s" % (n.ip, n.mask)
        if n.queues != 1:
            opt += ",queues=%d" % n.queues
        if n.vhost:
            opt += ",vhost=on"
        if n.transport:
            opt += ",transport=" + n.transport
        argv += ["--net", opt]
    for path in spec.vfio:
        argv += ["--device", "vfio=" + path]
    argv += ["--console", spec.console]
    if log_level:
        argv += ["--log-level", log_level]
    return argv


# ------------------------------------------------------------------ QEMU ---

def _machine(spec):
    used = spec.transports()
    if used and all(t == "pci" for t in used):
        return ["-M", "pc"]
    pcie = "on" if "pci" in used else "off"
    # auto-kernel-cmdline=off: no virtio_mmio.device= on the command line, so
    # the guest finds the devices through ACPI only (as with Skiff).  rtc=on:
    # without a CMOS clock the guest's rtc_cmos probe stalls its boot ~10 s.
    # force-legacy=false: QEMU's virtio-mmio is version 1 (legacy, no
    # FEATURES_OK) unless told; Skiff offers version 2 only.
    return ["-M", "microvm,acpi=on,rtc=on,auto-kernel-cmdline=off,pcie=%s" % pcie,
            "-global", "virtio-mmio.force-legacy=false"]


def _virtio(kind, transport):
    if transport == "pci":
        return "virtio-%s-pci,disable-legacy=on" % kind
    return "virtio-%s-device" % kind


def qemu_argv(spec, qemu="qemu-system-x86_64"):
    argv = [qemu, "-accel", "kvm", "-cpu", "host"] + _machine(spec) + [
        "-smp", str(spec.cpus), "-m", str(spec.memory_mib), "-nodefaults",
        "-display", "none", "-no-reboot",
        "-kernel", spec.kernel, "-initrd", spec.initramfs, "-append", spec.cmdline]
    if spec.console == "virtio":
        # The virtio console takes stdio; the UART stays but goes nowhere.
        argv += ["-chardev", "stdio,id=con0,signal=off", "-serial", "null",
                 "-device", _virtio("serial", spec.transport),
                 "-device", "virtconsole,chardev=con0"]
    else:
        argv += ["-serial", "stdio"]
    for i, d in enumerate(spec.disks):
        drive = "file=%s,format=raw,if=none,id=disk%d" % (d.path, i)
        if d.readonly:
            drive += ",readonly=on"
        drive += ",cache=none" if d.direct else ",cache=writeback"
        argv += ["-drive", drive,
                 "-device", "%s,drive=disk%d" % (_virtio("blk", d.transport or spec.transport), i)]
    for i, n in enumerate(spec.nets):
        netdev = "tap,id=net%d,ifname=%s,script=no,downscript=no,vhost=%s" % (
            i, n.tap, _onoff(n.vhost))
        dev = "%s,netdev=net%d" % (_virtio("net", n.transport or spec.transport), i)
        if n.queues != 1:
            netdev += ",queues=%d" % n.queues
            dev += ",mq=on"
            if (n.transport or spec.transport) == "pci":
                dev += ",vectors=%d" % (2 * n.queues + 2)
        if n.mac:
            dev += ",mac=" + n.mac
        argv += ["-netdev", netdev, "-device", dev]
    for path in spec.vfio:
        argv += ["-device", "vfio-pci,host=%s,rombar=0" % path.rstrip("/").rsplit("/", 1)[-1]]
    return argv


# ------------------------------------------------------------- host side ---

def prefix_len(mask):
    return ipaddress.IPv4Network("0.0.0.0/" + mask).prefixlen


def tap_setup_commands(spec, vmm):
    """Shell lines (busybox sh in the test host) to run before the VMM.

    A tap given with ip/mask is created by Skiff itself (that is part of what
    is tested), so for Skiff nothing is done; QEMU cannot address a tap, so
    for QEMU it is created and addressed here.  Multi-queue taps need
    iproute2's `ip tuntap` (packed into the test host when the machine has
    it); single-queue ones use busybox's tunctl."""
    lines = []
    for n in spec.nets:
        if not n.ip or vmm == "skiff":
            continue
        if n.queues != 1:
            # iproute2 by path: busybox sh would run its own `ip` applet.
            lines.append("/usr/bin/ip tuntap add dev %s mode tap multi_queue"
                         % shlex.quote(n.tap))
        else:
            lines.append("tunctl -t %s >/dev/null" % shlex.quote(n.tap))
        lines.append("ip addr add %s/%d dev %s" % (n.ip, prefix_len(n.mask), shlex.quote(n.tap)))
        lines.append("ip link set %s up" % shlex.quote(n.tap))
    return lines


def vmm_argv(spec, vmm, skiff="skiff", qemu="qemu-system-x86_64"):
    if vmm == "skiff":
        return skiff_argv(spec, skiff)
    if vmm == "qemu":
        return qemu_argv(spec, qemu)
    raise ValueError("unknown VMM %r (skiff or qemu)" % vmm)


def shell_join(argv):
    return " ".join(shlex.quote(a) for a in argv)


# ------------------------------------------------------ Skiff's option text ---

def _suboptions(text, allowed):
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise ValueError("%r: expected key=value" % part)
        k, v = part.split("=", 1)
        if k not in allowed:
            raise ValueError("unknown sub-option %r (known: %s)" % (k, ", ".join(allowed)))
        out[k] = v
    return out


def _flag(value, name):
    if value not in ("on", "off"):
        raise ValueError("%s=%s: expected on or off" % (name, value))
    return value == "on"


def parse_disk(text):
    """`path=FILE[,readonly=on][,direct=on][,transport=T]` -> Disk."""
    o = _suboptions(text, ("path", "readonly", "direct", "transport"))
    if "path" not in o:
        raise ValueError("--disk %s: path= is required" % text)
    return Disk(o["path"], readonly=_flag(o.get("readonly", "off"), "readonly"),
                direct=_flag(o.get("direct", "off"), "direct"), transport=o.get("transport"))


def parse_net(text):
    """`tap=NAME[,mac=MAC][,ip=IP,mask=MASK][,queues=N][,vhost=on][,transport=T]` -> Net."""
    o = _suboptions(text, ("tap", "mac", "ip", "mask", "queues", "vhost", "transport"))
    if "tap" not in o:
        raise ValueError("--net %s: tap= is required" % text)
    if ("ip" in o) != ("mask" in o):
        raise ValueError("--net %s: ip= and mask= go together" % text)
    return Net(o["tap"], mac=o.get("mac"), ip=o.get("ip"), mask=o.get("mask"),
               queues=int(o.get("queues", "1")), vhost=_flag(o.get("vhost", "off"), "vhost"),
               transport=o.get("transport"))


def parse_vfio(text):
    """`vfio=/sys/bus/pci/devices/BDF` -> the sysfs path."""
    if not text.startswith("vfio=") or not text[len("vfio="):]:
        raise ValueError("--device %s: expected vfio=/sys/bus/pci/devices/BDF" % text)
    return text[len("vfio="):]


def main(argv):
    ap = argparse.ArgumentParser(
        description="Print the Skiff or QEMU command line of one machine "
                    "(and, first, the shell lines that set up its taps).")
    ap.add_argument("--vmm", choices=["skiff", "qemu"], required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initramfs", required=True)
    ap.add_argument("--cmdline", default="")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--memory", type=int, default=256, help="MiB")
    ap.add_argument("--transport", choices=TRANSPORTS, default="mmio")
    ap.add_argument("--disk", action="append", default=[])
    ap.add_argument("--net", action="append", default=[])
    ap.add_argument("--console", choices=["serial", "virtio"], default="serial")
    ap.add_argument("--device", action="append", default=[],
                    help="vfio=/sys/bus/pci/devices/BDF (passthrough)")
    a = ap.parse_args(argv)
    try:
        spec = VmSpec(a.kernel, a.initramfs, a.cmdline, cpus=a.cpus, memory_mib=a.memory,
                      transport=a.transport, disks=[parse_disk(d) for d in a.disk],
                      nets=[parse_net(n) for n in a.net], console=a.console,
                      vfio=[parse_vfio(d) for d in a.device])
    except ValueError as e:
        ap.error(str(e))
    for line in tap_setup_commands(spec, a.vmm):
        print(line)
    print(shell_join(vmm_argv(spec, a.vmm)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
