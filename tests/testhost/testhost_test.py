#!/usr/bin/env python3
"""Unit tests of the test host's packing of binaries (tests/testhost) and of
images/skiffimg.py's ELF and busybox readers, on made-up ELF files: no QEMU,
no download, no KVM."""
import os
import struct
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import testhost  # noqa: E402
import skiffimg  # noqa: E402  (testhost put images/ on the path)

EM_X86_64, EM_AARCH64 = 62, 183


def make_elf(machine, interp=None, needed=(), extra=b"", runpath=None):
    """A minimal ELF64 little-endian executable: PT_LOAD covering the file,
    optional PT_INTERP, and a PT_DYNAMIC with DT_NEEDED entries whose
    DT_STRTAB is a virtual address inside the PT_LOAD (vaddr = offset +
    0x400000, as a linker would lay it out)."""
    vbase = 0x400000
    phnum = 1 + (interp is not None) + bool(needed)
    ehsize, phentsize = 64, 56
    body_off = ehsize + phnum * phentsize
    body = b""
    interp_off = None
    if interp is not None:
        interp_off = body_off + len(body)
        body += interp.encode() + b"\0"
    strtab_off = body_off + len(body)
    strtab = b"\0"
    offsets = []
    for n in needed:
        offsets.append(len(strtab))
        strtab += n.encode() + b"\0"
    if runpath is not None:
        strtab += runpath.encode() + b"\0"
    body += strtab
    body += b"\0" * ((8 - len(body) % 8) % 8)
    dyn_off = body_off + len(body)
    dyn = b"".join(struct.pack("<qQ", 1, o) for o in offsets)
    if runpath is not None:
        dyn += struct.pack("<qQ", 29, len(strtab) - len(runpath) - 1)
    if needed:
        dyn += struct.pack("<qQ", 5, vbase + strtab_off) + struct.pack("<qQ", 0, 0)
    body += dyn + extra
    total = body_off + len(body)
    phdrs = struct.pack("<IIQQQQQQ", 1, 5, 0, vbase, vbase, total, total, 0x1000)
    if interp is not None:
        n = len(interp) + 1
        phdrs += struct.pack("<IIQQQQQQ", 3, 4, interp_off, vbase + interp_off,
                             vbase + interp_off, n, n, 1)
    if needed:
        phdrs += struct.pack("<IIQQQQQQ", 2, 6, dyn_off, vbase + dyn_off, vbase + dyn_off,
                             len(dyn), len(dyn), 8)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, vbase, ehsize, 0, 0, ehsize,
                               phentsize, phnum, 64, 0, 0)
    return ehdr + phdrs + body


class Files(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def write(self, name, data, mode=0o755):
        path = os.path.join(self.tmp.name, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path


class ElfInfoTest(Files):
    def test_static(self):
        info = skiffimg.elf_info(self.write("s", make_elf(EM_AARCH64)))
        self.assertEqual((info.machine, info.interp, info.needed, info.static),
                         (EM_AARCH64, None, [], True))

    def test_dynamic(self):
        info = skiffimg.elf_info(self.write("d", make_elf(
            EM_AARCH64, "/lib/ld-linux-aarch64.so.1", ["libfdt.so.1", "libc.so.6"])))
        self.assertEqual(info.interp, "/lib/ld-linux-aarch64.so.1")
        self.assertEqual(info.needed, ["libfdt.so.1", "libc.so.6"])
        self.assertFalse(info.static)

    def test_runpath(self):
        info = skiffimg.elf_info(self.write("r", make_elf(
            EM_AARCH64, None, ["libfdt.so.1"], runpath="/opt/a:$ORIGIN/lib")))
        self.assertEqual(info.needed, ["libfdt.so.1"])
        self.assertEqual(info.runpath, ["/opt/a", "$ORIGIN/lib"])

    def test_not_elf(self):
        self.assertIsNone(skiffimg.elf_info(self.write("t", b"#!/bin/sh\necho hi\n")))

    def test_host_python_is_host_machine(self):
        self.assertEqual(skiffimg.elf_info(sys.executable).machine, skiffimg.host_elf_machine())


class ForeignLibsTest(Files):
    def setUp(self):
        super().setUp()
        self.libdir = os.path.join(self.tmp.name, "usr/lib/aarch64-linux-gnu")
        saved = testhost.FOREIGN_LIB_DIRS
        testhost.FOREIGN_LIB_DIRS = {EM_AARCH64: [self.libdir]}
        self.addCleanup(setattr, testhost, "FOREIGN_LIB_DIRS", saved)

    def test_resolves_interpreter_and_libraries_recursively(self):
        self.write("usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", make_elf(EM_AARCH64))
        self.write("usr/lib/aarch64-linux-gnu/libc.so.6", make_elf(EM_AARCH64))
        self.write("usr/lib/aarch64-linux-gnu/libfdt.so.1",
                   make_elf(EM_AARCH64, needed=["libc.so.6"]))
        binary = self.write("skiff", make_elf(EM_AARCH64, "/lib/ld-linux-aarch64.so.1",
                                              ["libfdt.so.1"]))
        pairs = testhost.foreign_libs(binary, skiffimg.elf_info(binary))
        dests = [d for _, d in pairs]
        self.assertEqual(dests, ["/lib/ld-linux-aarch64.so.1",
                                 os.path.join(self.libdir, "libfdt.so.1"),
                                 os.path.join(self.libdir, "libc.so.6")])

    def test_runpath_and_extra_directories_come_first(self):
        self.write("usr/lib/aarch64-linux-gnu/libfdt.so.1", make_elf(EM_AARCH64))
        self.write("sysroot/lib/libfdt.so.1", make_elf(EM_AARCH64))
        self.write("bin/lib/libre2.so.9", make_elf(EM_AARCH64))
        self.write("usr/lib/aarch64-linux-gnu/libre2.so.9", make_elf(EM_AARCH64))
        binary = self.write("bin/skiff", make_elf(EM_AARCH64, None, ["libfdt.so.1", "libre2.so.9"],
                                                  runpath="$ORIGIN/lib"))
        os.environ["SKIFF_TESTHOST_LIB_PATH"] = os.path.join(self.tmp.name, "sysroot/lib")
        self.addCleanup(os.environ.pop, "SKIFF_TESTHOST_LIB_PATH")
        pairs = testhost.foreign_libs(binary, skiffimg.elf_info(binary))
        self.assertEqual([s for s, _ in pairs],
                         [os.path.join(self.tmp.name, "sysroot/lib/libfdt.so.1"),
                          os.path.join(self.tmp.name, "bin/lib/libre2.so.9")])
        # Wherever found, they sit in L1's default library directory.
        self.assertEqual([d for _, d in pairs],
                         [os.path.join(self.libdir, "libfdt.so.1"),
                          os.path.join(self.libdir, "libre2.so.9")])

    def test_missing_library_is_named(self):
        binary = self.write("skiff", make_elf(EM_AARCH64, None, ["libabsl_strings.so"]))
        with self.assertRaisesRegex(testhost.HarnessError, "libabsl_strings.so"):
            testhost.foreign_libs(binary, skiffimg.elf_info(binary))

    def test_library_of_the_wrong_machine(self):
        self.write("usr/lib/aarch64-linux-gnu/libc.so.6", make_elf(EM_X86_64))
        binary = self.write("skiff", make_elf(EM_AARCH64, None, ["libc.so.6"]))
        with self.assertRaisesRegex(testhost.HarnessError, "not a library for ELF machine 183"):
            testhost.foreign_libs(binary, skiffimg.elf_info(binary))


class AddBinaryTest(Files):
    def test_wrong_architecture_is_refused(self):
        binary = self.write("skiff", make_elf(EM_X86_64))
        with self.assertRaisesRegex(testhost.HarnessError, "ELF machine 62.*runs 183"):
            testhost.add_binary(testhost.Layer("t"), binary, "/usr/local/bin/skiff", EM_AARCH64)

    def test_static_foreign_binary_alone(self):
        binary = self.write("skiff", make_elf(EM_AARCH64))
        layer = testhost.Layer("t")
        self.assertEqual(testhost.add_binary(layer, binary, "/usr/local/bin/skiff", EM_AARCH64),
                         [])
        self.assertEqual([i[1] for i in layer.items], ["/usr/local/bin/skiff"])

    def test_not_an_elf_file(self):
        script = self.write("skiff", b"#!/bin/sh\n")
        with self.assertRaisesRegex(testhost.HarnessError, "not a 64-bit"):
            testhost.add_binary(testhost.Layer("t"), script, "/usr/local/bin/skiff", EM_AARCH64)


class BusyboxAppletsTest(Files):
    def test_foreign_busybox_applets_from_its_table(self):
        names = sorted(["[", "[[", "ash", "cat", "ip", "mount", "sh", "tunctl", "zcat"] +
                       ["applet%02d" % i for i in range(50)])
        table = b"junk\0" + b"\0".join(n.encode() for n in names) + b"\0\0more"
        busybox = self.write("busybox", make_elf(EM_AARCH64, extra=table))
        applets = skiffimg.busybox_applets(busybox)
        self.assertEqual(sorted(n for _, n in applets), names)
        where = dict((n, d) for d, n in applets)
        self.assertEqual(where["applet07"], "bin")  # unknown to the host: bin/
        if os.path.exists("/bin/busybox"):
            # Placed where the host's busybox puts them.
            self.assertEqual(where["mount"], "bin")
            self.assertEqual(where["tunctl"], "sbin")

    def test_foreign_binary_without_a_table(self):
        busybox = self.write("busybox", make_elf(EM_AARCH64, extra=b"no applets here"))
        with self.assertRaises(SystemExit):
            skiffimg.busybox_applets(busybox)

    def test_unsorted_table_is_refused(self):
        names = ["[", "[["] + ["b%02d" % i for i in range(60)] + ["a"]
        table = b"\0" + b"\0".join(n.encode() for n in names) + b"\0\0"
        busybox = self.write("busybox", make_elf(EM_AARCH64, extra=table))
        with self.assertRaises(SystemExit):
            skiffimg.busybox_applets(busybox)


class ProfilesTest(unittest.TestCase):
    def test_every_implemented_profile_is_complete(self):
        keys = {"image_arch", "qemu", "qemu_args", "cmdline", "kvm_modules", "kvm_builtin",
                "extra_modules", "l1_qemu", "l1_qemu_firmware", "apt_qemu"}
        for name, p in testhost.PROFILES.items():
            if p["implemented"]:
                self.assertLessEqual(keys, set(p), name)
                self.assertIn(p["image_arch"], skiffimg.ARCHES)
                self.assertIn("elf_machine", skiffimg.ARCHES[p["image_arch"]])

    def test_arm64_profile(self):
        p = testhost.PROFILES["arm64"]
        self.assertTrue(p["implemented"])
        self.assertEqual(p["qemu"], "qemu-system-aarch64")
        self.assertIn("virt,virtualization=on,gic-version=3", p["qemu_args"])
        self.assertTrue(p["kvm_builtin"])
        self.assertEqual(skiffimg.ARCHES["arm64"]["elf_machine"], EM_AARCH64)

    def test_vfio_profiles_pair_l1_and_guest_rows(self):
        # L1 runs the cloud kernel of the machine's architecture; L2 gets the
        # generic kernel of the same architecture (it has e1000e), and the
        # netdev the e1000e sits on can be recorded.
        for name, l1, guest in (("x86_64-vfio", "x86_64", "x86_64-generic"),
                                ("aarch64-vfio", "arm64", "arm64-generic")):
            p = testhost.PROFILES[name]
            self.assertTrue(p["implemented"], name)
            self.assertEqual(p["image_arch"], l1, name)
            self.assertEqual(p["guest_arch"], guest, name)
            self.assertEqual(skiffimg.ARCHES[guest]["deb_arch"], skiffimg.ARCHES[l1]["deb_arch"])
            self.assertEqual(skiffimg.ARCHES[guest]["elf_machine"],
                             skiffimg.ARCHES[l1]["elf_machine"])
            self.assertIn("e1000e", skiffimg.ARCHES[guest]["extra_modules"])
            self.assertIn("e1000e,netdev=%s" % p["pcap_netdev"], p["qemu_args"])
            self.assertIn("vfio_pci", p["extra_modules"])
        p = testhost.PROFILES["aarch64-vfio"]
        self.assertIn("virt,virtualization=on,gic-version=3,iommu=smmuv3", p["qemu_args"])
        self.assertTrue(p["kvm_builtin"])
        self.assertEqual(skiffimg.ARCHES["arm64-generic"]["kernel_meta"], "linux-image-arm64")


class IvshmemArgsTest(Files):
    def test_file_becomes_a_shared_backend_of_an_ivshmem_plain(self):
        path = os.path.join(self.tmp.name, "shm")
        with open(path, "wb") as f:
            f.truncate(1 << 30)
        args = testhost.ivshmem_args(path)
        self.assertEqual(args, [
            "-object", "memory-backend-file,id=ivshmem0,share=on,mem-path=%s,size=%d"
            % (path, 1 << 30),
            "-device", "ivshmem-plain,memdev=ivshmem0"])

    def test_size_must_be_a_power_of_two(self):
        path = os.path.join(self.tmp.name, "shm")
        for size in (0, 3 << 20, 2048):
            with open(path, "wb") as f:
                f.truncate(size)
            with self.assertRaises(testhost.HarnessError):
                testhost.ivshmem_args(path)


if __name__ == "__main__":
    unittest.main()
