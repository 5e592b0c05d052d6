#!/usr/bin/env python3
"""Run a shell command inside the Skiff test host: an L1 Debian cloud kernel
under QEMU TCG whose /dev/kvm is real, so an L2 Linux guest can boot there.

  testhost.py run --arch x86_64 --skiff build/skiff [--put HOST:L1 ...]
                  [--timeout S] [--memory MiB] [--with-qemu] [--verbose]
                  -- 'shell command line'

Exit status: the command's own, or 125 with a line starting
"TESTHOST FAILURE:" when the harness or L1 failed (QEMU missing, L1 did not
boot, no /dev/kvm in L1, timeout).  See README.md beside this file.
Python 3 standard library only.
"""

import argparse
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "images"))
import skiffimg  # noqa: E402

FAIL_RC = 125
# gzip level for cached layers; 0 = plain cpio (faster L1 boot, more disk).
COMPRESS_LEVEL = int(os.environ.get("SKIFF_TESTHOST_GZIP", "0"))

# What --with-qemu packs beside qemu-system-x86_64: SeaBIOS and the option
# ROMs its -M pc / -M microvm machines and NICs load.
X86_QEMU_FIRMWARE = [
    "/usr/share/seabios",
    "/usr/lib/ipxe/qemu/efi-virtio.rom",
    "/usr/lib/ipxe/qemu/efi-e1000.rom",
    "/usr/lib/ipxe/qemu/efi-e1000e.rom",
    "/usr/share/qemu/kvmvapic.bin",
    "/usr/share/qemu/linuxboot.bin",
    "/usr/share/qemu/linuxboot_dma.bin",
    "/usr/share/qemu/multiboot.bin",
    "/usr/share/qemu/multiboot_dma.bin",
    "/usr/share/qemu/pvh.bin",
    "/usr/share/qemu/qboot.rom",
    "/usr/share/qemu/bios-microvm.bin",
    "/usr/share/qemu/sgabios.bin",
]

# One row per test-host profile.  Only "x86_64" is implemented; the others
# record what is known (DESIGN.md section 5) so they can be filled in.
PROFILES = {
    "x86_64": {
        "implemented": True,
        "image_arch": "x86_64",           # row in images/skiffimg.py ARCHES
        "qemu": "qemu-system-x86_64",
        "qemu_args": ["-accel", "tcg", "-cpu", "max", "-M", "pc", "-nodefaults",
                      "-serial", "stdio"],
        "cmdline": "console=ttyS0 quiet loglevel=1 panic=-1 reboot=k "
                   "mitigations=off",
        "kvm_modules": ["irqbypass", "kvm", "kvm_amd"],   # required
        "kvm_builtin": False,
        "extra_modules": ["tun", "vhost", "vhost_net", "tap", "macvtap",
                          "bridge", "veth", "loop"],      # optional
        # Host programs packed (with their libraries) into L1; optional.
        # Busybox sh runs its own applet for a bare name, so call these by
        # path: iproute2's `/usr/bin/ip tuntap add T mode tap multi_queue`
        # makes the multi-queue taps busybox cannot.
        "l1_tools": {"/usr/bin/ip": "ip"},
        # What --with-qemu packs to run QEMU inside L1.
        "l1_qemu": "qemu-system-x86_64",
        "apt_qemu": "qemu-system-x86",
        "l1_qemu_firmware": X86_QEMU_FIRMWARE,
    },
    "arm64": {
        "implemented": True,
        "image_arch": "arm64",
        "qemu": "qemu-system-aarch64",
        # virtualization=on gives L1 EL2, so its KVM runs (VHE, GICv3 with
        # an ITS). -cpu max under TCG: the whole machine is emulated, so
        # this profile runs on any host.
        "qemu_args": ["-accel", "tcg", "-cpu", "max",
                      "-M", "virt,virtualization=on,gic-version=3", "-nodefaults",
                      "-serial", "stdio"],
        # rodata=off skips the W+X mapping check (~2.5 s of L1 boot under
        # TCG); cryptomgr.notests the crypto self-tests.
        "cmdline": "console=ttyAMA0 quiet loglevel=1 panic=-1 mitigations=off "
                   "rodata=off cryptomgr.notests",
        "kvm_modules": [],
        "kvm_builtin": True,              # cloud-arm64 has KVM built in (VHE)
        # Each insmod costs ~0.5 s of emulated relocation work: only what
        # the arm64 e2e tests use (taps and vhost-net).
        "extra_modules": ["tun", "vhost", "vhost_net"],
        # The host's iproute2 is an x86 binary: L1 has busybox's ip and
        # tunctl only (no multi-queue taps).
        "l1_tools": {},
        "l1_qemu": None,                  # --with-qemu is x86_64 only
        "l1_qemu_firmware": [],
        "apt_qemu": "qemu-system-arm",
    },
    # VFIO: an emulated IOMMU with interrupt remapping and an e1000e that
    # L1 binds to vfio-pci, so Skiff can pass it through to L2 (DESIGN.md
    # section 5).  The e1000e sits on QEMU's user netdev n0 (gateway
    # 10.0.2.2); --pcap records what crosses it.  L2 gets Debian's generic
    # kernel, which has the e1000e driver the cloud kernel lacks.
    "x86_64-vfio": {
        "implemented": True,
        "image_arch": "x86_64",
        "guest_arch": "x86_64-generic",   # row in skiffimg.ARCHES for L2
        "qemu": "qemu-system-x86_64",
        "apt_qemu": "qemu-system-x86",
        "qemu_args": ["-accel", "tcg", "-cpu", "max", "-nodefaults",
                      "-serial", "stdio",
                      "-M", "q35,kernel-irqchip=split",
                      "-device", "intel-iommu,intremap=on",
                      "-netdev", "user,id=n0", "-device", "e1000e,netdev=n0"],
        "pcap_netdev": "n0",
        # no_timer_check: with interrupt remapping on, a failed IO-APIC
        # timer check is a panic ("timer doesn't work through
        # Interrupt-remapped IO-APIC"), and under TCG on a loaded machine
        # the check's few emulated ticks do fail now and then.
        "cmdline": "console=ttyS0 quiet loglevel=1 panic=-1 reboot=k "
                   "mitigations=off intel_iommu=on no_timer_check",
        "kvm_modules": ["irqbypass", "kvm", "kvm_amd"],
        "kvm_builtin": False,
        "extra_modules": ["vfio", "vfio_iommu_type1", "vfio_virqfd",
                          "vfio_pci_core", "vfio_pci", "tun", "loop",
                          # virtio-net beside the passed-through NIC
                          # (bench/net_bench.py): vhost-net.
                          "vhost", "vhost_net"],
        "l1_tools": {"/usr/bin/ip": "ip"},
        "l1_qemu": "qemu-system-x86_64",
        # QEMU in L1 (bench/net_bench.py compares its vfio-pci with Skiff's).
        "l1_qemu_firmware": X86_QEMU_FIRMWARE,
    },
    # The same on ARM64: QEMU's virt machine with an emulated SMMUv3 (DMA
    # remapping; MSIs are isolated by the GICv3 ITS, so vfio's type1 takes
    # the group without allow_unsafe_interrupts) and the e1000e on n0.  The
    # cloud-arm64 kernel has arm-smmu-v3 and the ITS built in and vfio as
    # modules; the e1000e (L1's 0000:00:01.0) has no L1 driver.  L2 gets
    # Debian's generic arm64 kernel (e1000e).
    "aarch64-vfio": {
        "implemented": True,
        "image_arch": "arm64",
        "guest_arch": "arm64-generic",    # row in skiffimg.ARCHES for L2
        "qemu": "qemu-system-aarch64",
        "apt_qemu": "qemu-system-arm",
        "qemu_args": ["-accel", "tcg", "-cpu", "max",
                      "-M", "virt,virtualization=on,gic-version=3,iommu=smmuv3",
                      "-nodefaults", "-serial", "stdio",
                      "-netdev", "user,id=n0", "-device", "e1000e,netdev=n0"],
        "pcap_netdev": "n0",
        "cmdline": "console=ttyAMA0 quiet loglevel=1 panic=-1 mitigations=off "
                   "rodata=off cryptomgr.notests",
        "kvm_modules": [],
        "kvm_builtin": True,
        # Each insmod costs ~0.5 s under TCG: the vfio stack only.
        "extra_modules": ["vfio", "vfio_iommu_type1", "vfio_virqfd",
                          "vfio_pci_core", "vfio_pci"],
        "l1_tools": {},
        "l1_qemu": None,
        "l1_qemu_firmware": [],
    },
}
# The same with a GICv2 (and its v2m MSI frame) instead of the GICv3 ITS:
# nothing isolates the e1000e's MSIs, so vfio's type1 refuses the group
# unless vfio_iommu_type1.allow_unsafe_interrupts=1 (the error Skiff must
# explain); L1's KVM then gives its guests a GICv2 without MSIs.
PROFILES["aarch64-vfio-gicv2m"] = dict(
    PROFILES["aarch64-vfio"],
    qemu_args=[a.replace("gic-version=3", "gic-version=2")
               for a in PROFILES["aarch64-vfio"]["qemu_args"]])


def log(msg):
    print(msg, file=sys.stderr, flush=True)


IVSHMEM_ID = "0x1af4:0x1110"      # ivshmem-plain, vendor:device as sysfs prints them


def ivshmem_args(path):
    """QEMU arguments for an ivshmem-plain device (1af4:1110) whose BAR 2, a
    64-bit prefetchable memory BAR, is the file PATH, shared with this
    side: what L1 (or a guest it passes the device to) writes there lands
    in PATH and the reverse.  PATH's size is the BAR's and must be a power
    of two (ivshmem's rule) of at least 4 KiB."""
    size = os.path.getsize(path)
    if size < 4096 or size & (size - 1):
        raise HarnessError("--ivshmem %s: size %d is not a power of two >= 4096"
                           % (path, size))
    return ["-object", "memory-backend-file,id=ivshmem0,share=on,mem-path=%s,size=%d"
            % (os.path.abspath(path), size),
            "-device", "ivshmem-plain,memdev=ivshmem0"]


class HarnessError(Exception):
    pass


def cache_dir(*parts):
    d = os.path.join(skiffimg.cache_root(), "testhost", *parts)
    os.makedirs(d, exist_ok=True)
    return d


# ---------------------------------------------------------------- layers ---

# Where a foreign (not the host's architecture) dynamic binary's libraries
# are looked up, after its own DT_RUNPATH and the directories in
# $SKIFF_TESTHOST_LIB_PATH (colon-separated): Debian's multiarch directories
# (libfoo:arm64), an arm64 sysroot of extracted packages under the cache,
# and the cross toolchain's (libc6-arm64-cross).
FOREIGN_LIB_DIRS = {
    183: ["/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu",
          os.path.join(skiffimg.cache_root(), "sysroot-arm64", "usr", "lib", "aarch64-linux-gnu"),
          os.path.join(skiffimg.cache_root(), "sysroot-arm64", "lib", "aarch64-linux-gnu"),
          "/usr/aarch64-linux-gnu/lib"],
}


def foreign_libs(binary, info):
    """ldd cannot run a foreign binary: read its PT_INTERP and DT_NEEDED
    (recursively) and find each in FOREIGN_LIB_DIRS.  Returns
    [(host path, L1 path)]; the libraries go to the first directory of
    FOREIGN_LIB_DIRS (the target's own default search path), the interpreter
    to its PT_INTERP path."""
    known = FOREIGN_LIB_DIRS.get(info.machine)
    if not known:
        raise HarnessError("%s: ELF machine %d is not the host's and no library "
                           "directories are known for it" % (binary, info.machine))
    extra = [d for d in os.environ.get("SKIFF_TESTHOST_LIB_PATH", "").split(":") if d]
    dirs = [d.replace("$ORIGIN", os.path.dirname(os.path.abspath(binary)))
            for d in info.runpath] + extra + known

    def find(name):
        for d in dirs:
            p = os.path.join(d, name)
            if os.path.exists(p):
                return p
        raise HarnessError("%s needs %s, found in none of %s (link it statically, "
                           "or install the library's :arm64 package)"
                           % (binary, name, " ".join(dirs)))

    out = []
    if info.interp:
        out.append((find(os.path.basename(info.interp)), info.interp))
    todo, seen = list(info.needed), set()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        path = find(name)
        out.append((path, os.path.join(known[0], name)))
        sub = skiffimg.elf_info(path)
        if sub is None or sub.machine != info.machine:
            raise HarnessError("%s: %s is not a library for ELF machine %d"
                               % (binary, path, info.machine))
        todo += sub.needed
    return out


def ldd_libs(binary):
    """Absolute paths of the shared libraries (and interpreter) BINARY needs."""
    r = subprocess.run(["ldd", binary], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if "not a dynamic executable" in r.stdout or "statically linked" in r.stdout:
        return []
    if r.returncode != 0:
        raise HarnessError("ldd %s failed: %s" % (binary, r.stdout.strip()))
    libs = []
    for line in r.stdout.splitlines():
        if "not found" in line:
            raise HarnessError("ldd %s: %s" % (binary, line.strip()))
        m = re.search(r"(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


class Layer:
    """A cached cpio layer: a list of (kind, dest, source) entries whose
    content hash names the output file."""

    def __init__(self, name):
        self.name = name
        self.items = []
        self.h = hashlib.sha256()

    def file(self, dest, src=None, data=None, mode=None):
        if src is not None:
            src = os.path.realpath(src)
            st = os.stat(src)
            mode = st.st_mode & 0o7777 if mode is None else mode
            self.h.update(("F %s %o " % (dest, mode)).encode())
            skiffimg.sha256_file(src, self.h)
        else:
            if isinstance(data, str):
                data = data.encode()
            self.h.update(("D %s %o %d " % (dest, mode or 0o644, len(data))).encode())
            self.h.update(data)
        self.items.append(("file", dest, src, data, mode))

    def tree(self, dest, src):
        """A file or a directory (recursively) from the host."""
        if os.path.isdir(src):
            for dp, dns, fns in os.walk(src, followlinks=True):
                dns.sort()
                for fn in sorted(fns):
                    p = os.path.join(dp, fn)
                    rel = os.path.relpath(p, src)
                    if os.path.exists(p):
                        self.file(os.path.join(dest, rel), src=p)
        else:
            self.file(dest, src=src)

    def key(self):
        return self.h.hexdigest()[:24]

    def fill(self, cp):
        for kind, dest, src, data, mode in self.items:
            if src is not None:
                cp.file(dest, src=src, mode=mode)
            else:
                cp.file(dest, data=data, mode=mode)

    def build(self, extra=None, level=COMPRESS_LEVEL):
        """Write (or reuse) the layer; EXTRA(cp) may add more entries and
        must be covered by the key (callers hash what it adds).  LEVEL 0
        writes a plain cpio: L1 unpacks that much faster under TCG than
        gzip (measured: 33 MB gzip'd took 1.9 s of L1 boot)."""
        path = os.path.join(cache_dir("layers"), "%s-%s.cpio%s" % (
            self.name, self.key(), ".gz" if level else ""))
        if os.path.exists(path):
            os.utime(path)
            return path
        cp = skiffimg.Cpio()
        if extra:
            extra(cp)
        self.fill(cp)
        cp.write(path, compress=bool(level), level=level)
        prune_layers()
        return path


def prune_layers(keep=24, min_age=3600):
    """Keep the KEEP most recently used layers; never delete one used in the
    last MIN_AGE seconds (another run may be about to read it).  Also drop
    per-run files that a killed harness left behind."""
    now = time.time()
    for sub, k in (("layers", keep), ("runs", 0)):
        d = cache_dir(sub)
        files = []
        for f in os.listdir(d):
            try:
                files.append((os.path.getmtime(os.path.join(d, f)), f))
            except OSError:
                pass
        files.sort()
        for mtime, f in files[: max(0, len(files) - k)]:
            if now - mtime > (min_age if sub == "layers" else 86400):
                try:
                    os.unlink(os.path.join(d, f))
                except OSError:
                    pass


def add_binary(layer, binary, dest, elf_machine=None):
    """BINARY at DEST plus every library it needs, at the same paths (ldd's
    answer for a host binary; see foreign_libs() for another architecture's).
    ELF_MACHINE: the machine L1 runs; a binary for another one is refused."""
    info = skiffimg.elf_info(binary)
    if info is None:
        raise HarnessError("%s is not a 64-bit little-endian ELF binary" % binary)
    if elf_machine is not None and info.machine != elf_machine:
        raise HarnessError("%s is built for ELF machine %d, but this test host runs %d "
                           "(x86-64 is 62, aarch64 183): wrong build directory?"
                           % (binary, info.machine, elf_machine))
    layer.file(dest, src=binary, mode=0o755)
    if info.machine == skiffimg.host_elf_machine():
        pairs = [(lib, lib) for lib in ldd_libs(binary)]
    else:
        pairs = foreign_libs(binary, info)
    dirs = []
    for src, lib in pairs:
        layer.file(lib, src=src, mode=0o755)
        d = os.path.dirname(lib)
        if d not in dirs:
            dirs.append(d)
    return dirs


def base_layer(profile):
    """busybox, /init, L1 modules and the L2 guest image."""
    arch = profile["image_arch"]
    row = skiffimg.ARCHES[arch]
    busybox = skiffimg.busybox_path(arch)
    vmlinuz, initrd = skiffimg.build_guest(profile.get("guest_arch", arch))
    root = skiffimg.kernel_root(arch)
    layer = Layer("base-" + profile.get("guest_arch", arch))
    layer.file("init", src=os.path.join(HERE, "l1-init.sh"), mode=0o755)
    layer.file("guest/vmlinuz", src=vmlinuz, mode=0o644)
    layer.file("guest/initramfs.cpio.gz", src=initrd, mode=0o644)
    ld_dirs = []
    for dest, name in profile.get("l1_tools", {}).items():
        path = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        if not path:
            log("testhost: note: %s not found on this machine; L1 has busybox's" % name)
            continue
        ld_dirs += [d for d in add_binary(layer, path, dest, row["elf_machine"])
                    if d not in ld_dirs]
    wanted = profile["kvm_modules"] + profile["extra_modules"]
    layer.h.update(("kernel=%s modules=%s " % (os.path.basename(root),
                                              ",".join(wanted))).encode())
    skiffimg.sha256_file(busybox, layer.h)
    skiffimg.sha256_file(os.path.join(HERE, "..", "..", "images",
                                      "skiffimg.py"), layer.h)

    def extra(cp):
        skiffimg.add_base_dirs(cp)
        skiffimg.add_busybox(cp, busybox)
        tree = skiffimg.ModuleTree(root)
        order, notes = skiffimg.add_modules(cp, tree, wanted)
        for n in notes:
            log("testhost: note: " + n)
        # the kernel's own kernel image, for reference
        cp.file("guest/l1-kernel-release", data=tree.release + "\n")

    return layer.build(extra), ld_dirs


def qemu_layer(profile):
    layer = Layer("qemu-" + profile["image_arch"])
    if not profile["l1_qemu"]:
        raise HarnessError("--with-qemu is not available in the %s test host "
                           "(it packs the host's QEMU binary)" % profile["image_arch"])
    qemu = shutil.which(profile["l1_qemu"])
    if not qemu:
        raise HarnessError("--with-qemu: %s not found on this machine "
                           "(apt-get install %s)" % (profile["l1_qemu"], profile["apt_qemu"]))
    dirs = add_binary(layer, qemu, "/usr/bin/" + profile["l1_qemu"],
                      skiffimg.ARCHES[profile["image_arch"]]["elf_machine"])
    for fw in profile["l1_qemu_firmware"]:
        if os.path.exists(fw):
            layer.tree(fw, fw)
        else:
            log("testhost: note: firmware %s missing on this machine" % fw)
    return layer.build(), dirs


def skiff_layer(skiff, profile):
    arch = profile["image_arch"]
    layer = Layer("skiff-" + arch)
    if not os.path.isfile(skiff):
        raise HarnessError("--skiff %s: no such file" % skiff)
    dirs = add_binary(layer, skiff, "/usr/local/bin/skiff",
                      skiffimg.ARCHES[arch]["elf_machine"])
    return layer.build(), dirs


def run_layer(profile, command, puts, nonce, ld_dirs, printk):
    cp = skiffimg.Cpio()
    env = [
        "TESTHOST_NONCE=%s" % nonce,
        "TESTHOST_PRINTK=%d" % printk,
        "TESTHOST_NEED_KVM=%s" % ("1" if profile["kvm_modules"]
                                  or profile["kvm_builtin"] else ""),
        "TESTHOST_LD_PATH=%s" % ":".join(ld_dirs),
    ]
    cp.file("testhost/env", data="".join(e + "\n" for e in env))
    cp.file("testhost/cmd", data=command + "\n")
    for spec in puts:
        if ":" not in spec:
            raise HarnessError("--put %s: expected HOSTPATH:L1PATH" % spec)
        src, dest = spec.rsplit(":", 1)
        if not os.path.exists(src):
            raise HarnessError("--put %s: no such file" % src)
        if not dest.startswith("/"):
            raise HarnessError("--put %s: L1PATH must be absolute" % spec)
        l = Layer("put")
        l.tree(dest, src)
        l.fill(cp)
    path = os.path.join(cache_dir("runs"), "run-%d-%s.cpio" % (os.getpid(), nonce))
    cp.write(path, compress=False)
    return path


# ------------------------------------------------------------------- run ---

BEGIN_RE = re.compile(rb"@@TESTHOST-BEGIN (\w+) uptime=([\d.]+)")
END_RE = re.compile(rb"@@TESTHOST-END (\w+) rc=(\d+) uptime=([\d.]+)")
FAIL_RE = re.compile(rb"TESTHOST FAILURE:.*")


def fail(msg, tail=None):
    if tail:
        log("testhost: last L1 console lines:")
        for line in tail[-30:]:
            log("  | " + line.decode("utf-8", "replace"))
    sys.stderr.flush()
    print("TESTHOST FAILURE: " + msg, flush=True)
    return FAIL_RC


def cmd_run(a):
    t_start = time.time()
    profile = PROFILES.get(a.arch)
    if profile is None:
        return fail("unknown --arch %s (known: %s)" % (a.arch, ", ".join(PROFILES)))
    if not profile["implemented"]:
        return fail("test-host profile %s is not implemented yet" % a.arch)
    command = " ".join(a.command)
    if not command.strip():
        return fail("no command given (put it after --)")
    qemu = shutil.which(profile["qemu"])
    if not qemu:
        return fail("%s not found (apt-get install %s; scripts/setup.sh does)"
                    % (profile["qemu"], profile["apt_qemu"]))

    nonce = secrets.token_hex(8)
    try:
        layers = []
        base, ld_dirs = base_layer(profile)
        layers.append(base)
        if a.with_qemu:
            ql, qdirs = qemu_layer(profile)
            layers.append(ql)
            ld_dirs += [d for d in qdirs if d not in ld_dirs]
        if a.skiff:
            sl, sdirs = skiff_layer(a.skiff, profile)
            layers.append(sl)
            ld_dirs += [d for d in sdirs if d not in ld_dirs]
        layers.append(run_layer(profile, command, a.put, nonce, ld_dirs,
                                7 if a.verbose else 1))
        initrd = layers[-1][:-len(".cpio")] + ".all.cpio"
        with open(initrd, "wb") as out:
            for l in layers:
                with open(l, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        os.unlink(layers[-1])
    except (HarnessError, OSError) as e:
        return fail(str(e))
    except SystemExit:
        return fail("building the images failed (see above)")

    kernel = skiffimg.kernel_image(skiffimg.kernel_root(profile["image_arch"]))
    extra = []
    if a.pcap:
        if not profile.get("pcap_netdev"):
            return fail("--pcap: profile %s has no netdev to record" % a.arch)
        extra = ["-object", "filter-dump,id=pcap0,netdev=%s,file=%s"
                 % (profile["pcap_netdev"], os.path.abspath(a.pcap))]
    if a.ivshmem:
        try:
            extra += ivshmem_args(a.ivshmem)
        except (HarnessError, OSError) as e:
            os.unlink(initrd)
            return fail(str(e))
    argv = [qemu] + profile["qemu_args"] + extra + [
        "-smp", str(a.smp), "-m", str(a.memory), "-nographic", "-no-reboot",
        "-kernel", kernel, "-initrd", initrd,
        "-append", profile["cmdline"] + (" " + a.append if a.append else ""),
    ]
    t_prep = time.time()
    if a.verbose:
        log("testhost: " + " ".join(argv))
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as e:
        os.unlink(initrd)
        return fail("cannot start %s: %s" % (qemu, e))

    timed_out = threading.Event()

    def on_timeout():
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    timer = threading.Timer(a.timeout, on_timeout)
    timer.daemon = True
    timer.start()

    state = "boot"        # boot -> cmd -> done
    tail = []             # console lines outside the command (L1 noise)
    rc = None
    l1_boot = l1_cmd = None
    failure = None
    out = sys.stdout.buffer
    try:
        for raw in proc.stdout:
            line = raw.replace(b"\r", b"")
            body = line.rstrip(b"\n")
            if state == "boot":
                m = BEGIN_RE.search(body)
                if m and m.group(1).decode() == nonce:
                    state = "cmd"
                    l1_boot = float(m.group(2))
                    t_begin = time.time()
                    continue
                fm = FAIL_RE.search(body)
                if fm:
                    failure = fm.group(0).decode("utf-8", "replace")
                tail.append(body)
                if a.verbose:
                    log("L1| " + body.decode("utf-8", "replace"))
                tail = tail[-200:]
            elif state == "cmd":
                m = END_RE.search(body)
                if m and m.group(1).decode() == nonce:
                    prefix = body[: m.start()]
                    if prefix:
                        out.write(prefix)
                        out.flush()
                    rc = int(m.group(2))
                    l1_cmd = float(m.group(3)) - l1_boot
                    state = "done"
                    # L1 powers off now; don't wait long for it.
                    grace = threading.Timer(15, on_timeout)
                    grace.daemon = True
                    grace.start()
                    continue
                out.write(line)
                out.flush()
            else:
                tail.append(body)
        proc.wait()
    finally:
        timer.cancel()
        try:
            os.unlink(initrd)
        except OSError:
            pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()

    t_end = time.time()
    if rc is not None:
        log("testhost: rc=%d; prep %.1fs, L1 boot %.1fs (L1 uptime %.1fs), "
            "command %.1fs (L1 clock %.1fs), total %.1fs"
            % (rc, t_prep - t_start, t_begin - t_prep, l1_boot,
               t_end - t_begin, l1_cmd, t_end - t_start))
        return rc
    if failure:
        return fail(failure[len("TESTHOST FAILURE: "):], tail)
    if timed_out.is_set():
        where = "before the command started (L1 boot)" if state == "boot" \
            else "while the command ran"
        return fail("timeout after %ds %s" % (a.timeout, where),
                    tail if state == "boot" else None)
    if state == "boot":
        return fail("L1 did not reach the command (QEMU exit status %s)"
                    % proc.returncode, tail)
    return fail("L1 stopped before the command finished (QEMU exit status %s; "
                "L1 kernel panic or reset?)" % proc.returncode, tail)


def main(argv):
    ap = argparse.ArgumentParser(
        prog="testhost.py",
        description="Run a command inside the KVM-capable L1 test host.")
    sub = ap.add_subparsers(dest="op", required=True)
    r = sub.add_parser("run", help="boot L1, run COMMAND, exit with its status")
    r.add_argument("--arch", default="x86_64",
                   help="test-host profile: %s" % ", ".join(PROFILES))
    r.add_argument("--skiff", default=None,
                   help="skiff binary to pack (at /usr/local/bin/skiff); built for the "
                        "profile's architecture, statically linked or with its libraries "
                        "findable (see README.md)")
    r.add_argument("--put", action="append", default=[],
                   metavar="HOSTPATH:L1PATH", help="extra file or directory")
    r.add_argument("--timeout", type=int, default=600, help="seconds (600)")
    r.add_argument("--memory", type=int, default=2048, help="L1 MiB (2048)")
    r.add_argument("--smp", type=int, default=2, help="L1 vCPUs (2)")
    r.add_argument("--with-qemu", action="store_true",
                   help="also pack qemu-system-* and its firmware into L1")
    r.add_argument("--append", default="", help="extra L1 kernel arguments")
    r.add_argument("--pcap", metavar="FILE",
                   help="record the profile's QEMU netdev to FILE (x86_64-vfio, aarch64-vfio)")
    r.add_argument("--ivshmem", metavar="FILE",
                   help="add an ivshmem-plain device (%s) whose 64-bit BAR 2 is FILE "
                        "(size a power of two), shared with this side" % IVSHMEM_ID)
    r.add_argument("--verbose", "-v", action="store_true",
                   help="show the L1 console and kernel messages on stderr")
    r.add_argument("command", nargs=argparse.REMAINDER,
                   help="-- 'shell command line'")
    a = ap.parse_args(argv)
    if a.command and a.command[0] == "--":
        a.command = a.command[1:]
    return cmd_run(a)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
