#!/usr/bin/env python3
"""Skiff image tools: fetch Debian's cloud kernel, resolve its modules and
write newc cpio archives (gzip'd or plain).  Python 3 standard library only.

Used by images/build-guest.sh, images/make-autorun-cpio.sh and
tests/testhost/testhost.py.  Subcommands:

  skiffimg.py kernel ARCH          print the extracted kernel package root
  skiffimg.py guest ARCH           build (or reuse) the L2 guest image
  skiffimg.py autorun SCRIPT OUT   wrap SCRIPT as /autorun in OUT (gzip'd cpio)

Everything human-readable goes to stderr; stdout carries only the paths
asked for.
"""

import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# One row per architecture.  Everything arch-specific about the *images*
# lives here; tests/testhost/testhost.py keeps its own table for how to run
# the machines and refers to these rows by key.
ARCHES = {
    "x86_64": {
        "deb_arch": "amd64",
        "elf_machine": 62,          # EM_X86_64
        "kernel_meta": "linux-image-cloud-amd64",
        # Debian's vmlinuz is a bzImage: both QEMU and Skiff take it as is.
        "busybox": "/bin/busybox",  # from busybox-static (host arch)
    },
    # Debian's *generic* kernel: it has the NIC drivers the cloud kernel
    # lacks (e1000e), for guests that get a passed-through device (VFIO).
    # Same busybox and guest /init; GUEST_MODULES plus "extra_modules".
    "x86_64-generic": {
        "deb_arch": "amd64",
        "elf_machine": 62,          # EM_X86_64
        "kernel_meta": "linux-image-amd64",
        "busybox": "/bin/busybox",
        "extra_modules": ["e1000e"],
    },
    # Needs `dpkg --add-architecture arm64` and `apt-get update` (scripts/
    # setup.sh does both): the kernel and busybox-static are the arm64
    # packages, downloaded and extracted, never installed.
    "arm64": {
        "deb_arch": "arm64",
        "elf_machine": 183,         # EM_AARCH64
        "kernel_meta": "linux-image-cloud-arm64",
        # Debian's arm64 vmlinuz is a gzip'd Image (Image.gz).
        "busybox": None,            # busybox-static:arm64, see busybox_path()
    },
    # Debian's generic arm64 kernel, for the L2 guest of the aarch64-vfio
    # test host: the cloud kernel has no e1000e driver. Like x86_64-generic.
    "arm64-generic": {
        "deb_arch": "arm64",
        "elf_machine": 183,         # EM_AARCH64
        "kernel_meta": "linux-image-arm64",
        "busybox": None,
        "extra_modules": ["e1000e"],
    },
}

# Modules the guest loads, in this order (dependencies are added first
# automatically).  Missing ones are skipped with a note at build time.
GUEST_MODULES = [
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "virtio_mmio", "virtio_blk", "failover", "net_failover",
    "virtio_net", "virtio_console", "pvpanic", "pvpanic_mmio",
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log("skiffimg: error: " + msg)
    sys.exit(1)


def cache_root():
    return os.environ.get("SKIFF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "skiff")


def sha256_file(path, h=None):
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h


def atomic_write(path, data):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- kernel ---

def _run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def _apt_lists_state():
    """Cheap fingerprint of the local apt lists (names, sizes, mtimes)."""
    d = "/var/lib/apt/lists"
    try:
        ents = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError:
        return None
    h = hashlib.sha256()
    for e in ents:
        if e.is_file():
            st = e.stat()
            h.update(("%s %d %d\n" % (e.name, st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


def resolve_kernel_package(arch):
    """Return (package, version) of the real kernel behind the metapackage,
    using only the local apt lists (no network).  apt-cache is slow where
    the pkgcache is disabled (~1 s), so the answer is memoised per state of
    /var/lib/apt/lists."""
    state = _apt_lists_state()
    memo = os.path.join(cache_root(), "kernel", arch + ".apt-resolved")
    if state:
        try:
            with open(memo) as f:
                st, pkg, ver = f.read().split()
            if st == state:
                return pkg, ver
        except (OSError, ValueError):
            pass
    pkg, ver = _resolve_kernel_package_apt(arch)
    if pkg and state:
        atomic_write(memo, ("%s %s %s\n" % (state, pkg, ver)).encode())
    return pkg, ver


def _resolve_kernel_package_apt(arch):
    row = ARCHES[arch]
    meta = row["kernel_meta"]
    qual = _arch_qualifier(arch)
    r = _run(["apt-cache", "depends", meta + qual])
    pkg = None
    for line in r.stdout.splitlines():
        m = re.match(r"\s*Depends:\s*(linux-image-\S+)", line)
        if m:
            pkg = m.group(1).split(":")[0]
            break
    if not pkg:
        return None, None
    r = _run(["apt-cache", "policy", pkg + qual])
    m = re.search(r"Candidate:\s*(\S+)", r.stdout)
    if not m or m.group(1) == "(none)":
        return None, None
    return pkg, m.group(1)


_HOST_DEB_ARCH = None


def _host_deb_arch():
    global _HOST_DEB_ARCH
    if _HOST_DEB_ARCH is None:
        r = _run(["dpkg", "--print-architecture"])
        _HOST_DEB_ARCH = r.stdout.strip() or "amd64"
    return _HOST_DEB_ARCH


def _arch_qualifier(arch):
    """`:arm64` for a foreign architecture's packages, "" for the host's."""
    deb_arch = ARCHES[arch]["deb_arch"]
    return "" if deb_arch == _host_deb_arch() else ":" + deb_arch


def _download_extract(pkg, qual, ver, dest):
    """apt-get download PKG (QUAL: ":arm64" or "") at VER and dpkg-deb -x it
    at DEST, atomically (DEST/.done marks a complete extraction)."""
    base = os.path.dirname(dest)
    os.makedirs(base, exist_ok=True)
    tmpd = tempfile.mkdtemp(prefix=".dl-", dir=base)
    try:
        log("skiffimg: downloading %s%s %s" % (pkg, qual, ver))
        r = subprocess.run(["apt-get", "download", "-q", "%s%s=%s" % (pkg, qual, ver)],
                           cwd=tmpd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        debs = [f for f in os.listdir(tmpd) if f.endswith(".deb")]
        if r.returncode != 0 or not debs:
            hint = ""
            if qual:
                hint = (" (is the architecture added? `dpkg --add-architecture %s && "
                        "apt-get update`, as scripts/setup.sh does)" % qual[1:])
            die("apt-get download %s%s failed: %s%s" % (pkg, qual, r.stderr.strip(), hint))
        _extract_deb(os.path.join(tmpd, debs[0]), tmpd, dest)
    finally:
        shutil.rmtree(tmpd, ignore_errors=True)


def _extract_deb(deb, tmpd, dest):
    ex = os.path.join(tmpd, "root")
    r = _run(["dpkg-deb", "-x", deb, ex])
    if r.returncode != 0:
        die("dpkg-deb -x %s failed: %s" % (deb, r.stderr.strip()))
    open(os.path.join(ex, ".done"), "w").close()
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.rename(ex, dest)


def _candidate_version(pkg):
    """apt-cache policy's candidate version of PKG, or None; memoised per
    state of the apt lists like resolve_kernel_package()."""
    state = _apt_lists_state()
    memo = os.path.join(cache_root(), "debs", pkg.replace(":", "_") + ".apt-candidate")
    if state:
        try:
            with open(memo) as f:
                st, ver = f.read().split()
            if st == state:
                return ver
        except (OSError, ValueError):
            pass
    r = _run(["apt-cache", "policy", pkg])
    m = re.search(r"Candidate:\s*(\S+)", r.stdout)
    if not m or m.group(1) == "(none)":
        return None
    if state:
        atomic_write(memo, ("%s %s\n" % (state, m.group(1))).encode())
    return m.group(1)


def busybox_path(arch):
    """The static busybox of ARCH: the host's /bin/busybox for the host's
    architecture, else busybox-static:<deb_arch> downloaded and extracted
    once (cached by version)."""
    row = ARCHES[arch]
    if row["busybox"]:
        return row["busybox"]
    qual = _arch_qualifier(arch)
    base = os.path.join(cache_root(), "debs")
    ver = _candidate_version("busybox-static" + qual)
    if not ver:
        olds = sorted(d for d in os.listdir(base) if d.startswith("busybox-static%s_" % qual)
                      and os.path.exists(os.path.join(base, d, ".done"))) \
            if os.path.isdir(base) else []
        if olds:
            log("skiffimg: warning: apt-cache cannot resolve busybox-static%s; using cached %s"
                % (qual, olds[-1]))
            return os.path.join(base, olds[-1], "bin", "busybox")
        die("apt-cache cannot resolve busybox-static%s; run `dpkg --add-architecture %s && "
            "apt-get update` (scripts/setup.sh does)" % (qual, row["deb_arch"]))
    dest = os.path.join(base, "busybox-static%s_%s" % (qual, ver.replace(":", "%3a")))
    if not os.path.exists(os.path.join(dest, ".done")):
        _download_extract("busybox-static", qual, ver, dest)
    path = os.path.join(dest, "bin", "busybox")
    if not os.path.isfile(path):
        die("busybox-static%s %s has no bin/busybox" % (qual, ver))
    return path


def kernel_root(arch):
    """Download and extract the cloud kernel package once; return its root
    (containing boot/ and lib/modules/).  Cached by package+version."""
    if arch not in ARCHES:
        die("unknown arch %r (known: %s)" % (arch, ", ".join(ARCHES)))
    base = os.path.join(cache_root(), "kernel", arch)
    # SKIFF_KERNEL_DEB_ARM64=/path/to.deb (and SKIFF_KERNEL_DEB for x86_64).
    deb_override = os.environ.get("SKIFF_KERNEL_DEB_" + arch.upper()) or (
        os.environ.get("SKIFF_KERNEL_DEB") if arch == "x86_64" else None)
    if deb_override:
        key = os.path.basename(deb_override)[:-4]
    else:
        pkg, ver = resolve_kernel_package(arch)
        if not pkg:
            # Offline or apt lists missing: fall back to what is cached.
            olds = sorted(d for d in os.listdir(base)) if os.path.isdir(base) else []
            olds = [d for d in olds if os.path.exists(os.path.join(base, d, ".done"))]
            if olds:
                log("skiffimg: warning: apt-cache cannot resolve %s; using "
                    "cached %s" % (ARCHES[arch]["kernel_meta"], olds[-1]))
                return os.path.join(base, olds[-1])
            die("apt-cache cannot resolve %s; run `apt-get update` first"
                % ARCHES[arch]["kernel_meta"])
        key = "%s_%s" % (pkg, ver.replace(":", "%3a"))
    root = os.path.join(base, key)
    if os.path.exists(os.path.join(root, ".done")):
        return root
    if deb_override:
        os.makedirs(base, exist_ok=True)
        tmpd = tempfile.mkdtemp(prefix=".dl-", dir=base)
        try:
            _extract_deb(deb_override, tmpd, root)
        finally:
            shutil.rmtree(tmpd, ignore_errors=True)
    else:
        _download_extract(pkg, _arch_qualifier(arch), ver, root)
    return root


def kernel_image(root):
    boot = os.path.join(root, "boot")
    for name in sorted(os.listdir(boot)):
        if name.startswith("vmlinuz-") or name.startswith("vmlinux-"):
            return os.path.join(boot, name)
    die("no vmlinuz in %s" % boot)


def kernel_release(root):
    d = os.path.join(root, "lib", "modules")
    rels = sorted(os.listdir(d))
    if not rels:
        die("no lib/modules/<release> in %s" % root)
    return rels[-1]


# --------------------------------------------------------------- modules ---

def _modname(filename):
    n = os.path.basename(filename)
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if n.endswith(ext):
            return n[: -len(ext)].replace("-", "_")
    return None


class ModuleTree:
    """Index of one kernel's modules: name -> file, builtin set, depends."""

    def __init__(self, root):
        self.release = kernel_release(root)
        self.dir = os.path.join(root, "lib", "modules", self.release)
        self.files = {}
        for dp, _, fns in os.walk(self.dir):
            for fn in fns:
                n = _modname(fn)
                if n:
                    self.files[n] = os.path.join(dp, fn)
        self.builtin = set()
        bpath = os.path.join(self.dir, "modules.builtin")
        if os.path.exists(bpath):
            with open(bpath) as f:
                for line in f:
                    n = _modname(line.strip())
                    if n:
                        self.builtin.add(n)
        self._data = {}

    def data(self, name):
        """Uncompressed .ko bytes (busybox insmod wants plain .ko)."""
        if name not in self._data:
            path = self.files[name]
            if path.endswith(".ko.xz"):
                raw = lzma.decompress(open(path, "rb").read())
            elif path.endswith(".ko.gz"):
                raw = gzip.decompress(open(path, "rb").read())
            elif path.endswith(".ko.zst"):
                raw = subprocess.run(["zstd", "-dcq", path], check=True,
                                     stdout=subprocess.PIPE).stdout
            else:
                raw = open(path, "rb").read()
            self._data[name] = raw
        return self._data[name]

    def depends(self, name):
        m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", self.data(name))
        if not m or not m.group(1):
            return []
        return [d.decode().replace("-", "_") for d in m.group(1).split(b",") if d]

    def resolve(self, wanted):
        """Return (load_order, notes).  load_order lists module names with
        dependencies first; builtin modules are dropped, missing ones noted."""
        order, seen, notes = [], set(), []

        def visit(n, chain):
            n = n.replace("-", "_")
            if n in seen:
                return
            seen.add(n)
            if n in self.builtin:
                notes.append("%s is built in" % n)
                return
            if n not in self.files:
                notes.append("%s not found in %s" % (n, self.release))
                return
            for d in self.depends(n):
                visit(d, chain + [n])
            order.append(n)

        for w in wanted:
            visit(w, [])
        return order, notes


# ------------------------------------------------------------------ cpio ---

class Cpio:
    """Minimal newc writer.  Parent directories are emitted automatically;
    all entries are owned by root."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1000
        self.dirs = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0), mtime=0):
        name = name.lstrip("/")
        nb = name.encode() + b"\0"
        self.ino += 1
        fields = [self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, mtime,
                  len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        w = self.buf.write
        w(hdr)
        w(nb)
        w(b"\0" * ((4 - (len(hdr) + len(nb)) % 4) % 4))
        w(data)
        w(b"\0" * ((4 - len(data) % 4) % 4))

    def _parents(self, name):
        parts = name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, name, mode=0o755):
        name = name.strip("/")
        if not name or name in self.dirs:
            return
        self._parents(name)
        self.dirs.add(name)
        self._entry(name, stat.S_IFDIR | mode)

    def file(self, name, data=None, src=None, mode=None):
        if data is None:
            with open(src, "rb") as f:
                data = f.read()
            if mode is None:
                mode = os.stat(src).st_mode & 0o7777
        if isinstance(data, str):
            data = data.encode()
        self._parents(name)
        self._entry(name, stat.S_IFREG | (0o644 if mode is None else mode), data)

    def symlink(self, name, target):
        self._parents(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, mode=0o600):
        self._parents(name)
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def bytes(self):
        out = io.BytesIO(self.buf.getvalue())
        out.seek(0, 2)
        trailer = Cpio()
        trailer.ino = 0
        trailer._entry("TRAILER!!!", 0)
        out.write(trailer.buf.getvalue())
        pad = (512 - out.tell() % 512) % 512
        out.write(b"\0" * pad)
        return out.getvalue()

    def write(self, path, compress=True, level=6):
        raw = self.bytes()
        if compress:
            raw = gzip.compress(raw, compresslevel=level, mtime=0)
        atomic_write(path, raw)


# ------------------------------------------------------------------- ELF ---

class ElfInfo:
    """What packing a binary needs to know: its machine (EM_*), its program
    interpreter (None when static) and its DT_NEEDED libraries."""

    def __init__(self, machine, interp, needed, runpath=()):
        self.machine, self.interp, self.needed = machine, interp, needed
        self.runpath = list(runpath)   # DT_RUNPATH / DT_RPATH directories

    @property
    def static(self):
        return self.interp is None and not self.needed


def elf_info(path):
    """Parse PATH's ELF headers (64-bit little-endian only: x86-64 and
    aarch64); None for anything else."""
    import struct
    with open(path, "rb") as f:
        d = f.read()
    if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
        return None
    machine, = struct.unpack_from("<H", d, 18)
    phoff, = struct.unpack_from("<Q", d, 32)
    phentsize, phnum = struct.unpack_from("<HH", d, 54)
    interp, dynamic, loads = None, None, []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", d, phoff + i * phentsize)
        if p_type == 3:      # PT_INTERP
            interp = d[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
        elif p_type == 2:    # PT_DYNAMIC
            dynamic = (p_offset, p_filesz)
        elif p_type == 1:    # PT_LOAD
            loads.append((p_vaddr, p_offset, p_filesz))
    needed = []
    if dynamic:
        entries, paths, strtab = [], [], None
        for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
            tag, val = struct.unpack_from("<qQ", d, off)
            if tag == 0:
                break
            if tag == 5:     # DT_STRTAB (a virtual address)
                strtab = val
            elif tag == 1:   # DT_NEEDED (an offset in the string table)
                entries.append(val)
            elif tag in (15, 29):  # DT_RPATH, DT_RUNPATH
                paths.append(val)
        base = None
        for vaddr, offset, filesz in loads:
            if strtab is not None and vaddr <= strtab < vaddr + filesz:
                base = strtab - vaddr + offset
        if (entries or paths) and base is None:
            die("%s: DT_STRTAB outside every PT_LOAD" % path)

        def string(offset):
            return d[base + offset:d.index(b"\0", base + offset)].decode()

        needed = [string(e) for e in entries]
        runpath = [p for e in paths for p in string(e).split(":") if p]
        return ElfInfo(machine, interp, needed, runpath)
    return ElfInfo(machine, interp, needed)


def host_elf_machine():
    return elf_info(sys.executable).machine


def busybox_applets(busybox):
    """[(install path, applet)] such as ("usr/bin", "awk").  A busybox of the
    host's architecture is asked (--list-full); a foreign one cannot run
    here, so its applet names are read from the binary (its applet_names
    table: NUL-separated, sorted, starting "[", "[[") and placed where the
    host's busybox puts them, else in bin/."""
    info = elf_info(busybox)
    if info is None:
        die("%s is not a 64-bit ELF binary" % busybox)
    if info.machine == host_elf_machine():
        r = _run([busybox, "--list-full"])
        if r.returncode != 0 or not r.stdout:
            die("%s --list-full failed (is busybox-static installed?)" % busybox)
        return [(os.path.dirname(a.strip("/")), os.path.basename(a))
                for a in r.stdout.split()]
    with open(busybox, "rb") as f:
        d = f.read()
    i = d.find(b"\0[\0[[\0")
    if i < 0:
        die("%s: no applet table found" % busybox)
    names, j = [], i + 1
    while True:
        k = d.index(b"\0", j)
        if k == j:
            break
        names.append(d[j:k].decode("ascii", "replace"))
        j = k + 1
    if len(names) < 50 or names != sorted(names):
        die("%s: the applet table does not look right (%d names)" % (busybox, len(names)))
    where = {}
    if os.path.exists("/bin/busybox"):
        r = _run(["/bin/busybox", "--list-full"])
        for a in r.stdout.split():
            where[os.path.basename(a)] = os.path.dirname(a.strip("/"))
    return [(where.get(n, "bin"), n) for n in names if n != "busybox"]


def add_busybox(cp, busybox):
    """busybox binary at /bin/busybox plus a symlink per applet."""
    cp.file("bin/busybox", src=busybox, mode=0o755)
    for applet in ["%s/%s" % a if a[0] else a[1] for a in busybox_applets(busybox)]:
        applet = applet.strip("/")
        if applet == "bin/busybox":
            continue
        depth = applet.count("/")
        cp.symlink(applet, "../" * depth + "bin/busybox")


def add_base_dirs(cp):
    for d in ("dev", "proc", "sys", "tmp", "run", "etc", "root", "mnt", "var"):
        cp.dir(d)
    cp.chardev("dev/console", 5, 1)
    cp.chardev("dev/null", 1, 3, 0o666)
    cp.chardev("dev/ttyS0", 4, 64)


def add_modules(cp, tree, wanted, dest="lib/modules"):
    """Pack wanted modules (+deps) uncompressed at DEST/<name>.ko and write
    DEST/load-order.  Returns (order, notes)."""
    order, notes = tree.resolve(wanted)
    for n in order:
        cp.file("%s/%s.ko" % (dest, n), data=tree.data(n), mode=0o644)
    cp.file(dest + "/load-order", data="".join(n + "\n" for n in order))
    return order, notes


# ----------------------------------------------------------------- guest ---

def build_guest(arch):
    row = ARCHES[arch]
    busybox = busybox_path(arch)
    out_dir = os.path.join(cache_root(), "guest-" + arch)
    vmlinuz = os.path.join(out_dir, "vmlinuz")
    initrd = os.path.join(out_dir, "initramfs.cpio.gz")
    stamp = os.path.join(out_dir, "stamp")

    root = kernel_root(arch)
    h = hashlib.sha256()
    h.update(os.path.basename(root).encode())
    for f in ("skiffimg.py", "guest-init.sh"):
        sha256_file(os.path.join(HERE, f), h)
    sha256_file(busybox, h)
    key = h.hexdigest()
    if (os.path.exists(vmlinuz) and os.path.exists(initrd)
            and os.path.exists(stamp) and open(stamp).read().strip() == key):
        return vmlinuz, initrd

    t0 = time.time()
    tree = ModuleTree(root)
    cp = Cpio()
    add_base_dirs(cp)
    add_busybox(cp, busybox)
    order, notes = add_modules(cp, tree, GUEST_MODULES + row.get("extra_modules", []))
    for n in notes:
        log("skiffimg: note: " + n)
    cp.file("init", src=os.path.join(HERE, "guest-init.sh"), mode=0o755)
    cp.file("etc/skiff-guest-release",
            data="kernel=%s\nmodules=%s\n" % (tree.release, " ".join(order)))
    os.makedirs(out_dir, exist_ok=True)
    cp.write(initrd, compress=True, level=9)
    shutil.copyfile(kernel_image(root), vmlinuz + ".tmp")
    os.replace(vmlinuz + ".tmp", vmlinuz)
    atomic_write(stamp, (key + "\n").encode())
    log("skiffimg: built guest %s (kernel %s, initramfs %d KiB) in %.1f s"
        % (arch, tree.release, os.path.getsize(initrd) // 1024,
           time.time() - t0))
    return vmlinuz, initrd


def make_autorun(script, out):
    cp = Cpio()
    cp.file("autorun", src=script, mode=0o755)
    cp.write(out, compress=True, level=6)


def main(argv):
    if len(argv) >= 2 and argv[0] == "kernel":
        print(kernel_root(argv[1]))
    elif len(argv) >= 1 and argv[0] == "guest":
        v, i = build_guest(argv[1] if len(argv) > 1 else "x86_64")
        print(v)
        print(i)
    elif len(argv) == 3 and argv[0] == "autorun":
        make_autorun(argv[1], argv[2])
    else:
        log(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
