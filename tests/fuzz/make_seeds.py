#!/usr/bin/env python3
"""Writes the hand-made seeds of tests/fuzz/corpus/<target>/seed-*.

Each seed is a well-formed input in the byte format its target reads (see
the comment at the top of tests/fuzz/fuzz_<target>.cc), so the fuzzer
starts from the interesting paths instead of finding the formats by
itself. Files not named seed-* (regression inputs from fuzzing) are left
alone. Run after changing a target's input format:

    tests/fuzz/make_seeds.py            # rewrites every target's seeds
"""
import gzip
import os
import struct
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))


class Enc:
    """Mirrors FuzzInput (fuzz_support.h): little-endian fields, and
    Below(n) takes 1, 2, 4 or 8 bytes depending on n."""

    def __init__(self):
        self.out = bytearray()

    def u8(self, v):
        self.out += struct.pack("<B", v)
        return self

    def u16(self, v):
        self.out += struct.pack("<H", v)
        return self

    def u32(self, v):
        self.out += struct.pack("<I", v)
        return self

    def u64(self, v):
        self.out += struct.pack("<Q", v)
        return self

    def below(self, n, v):
        assert 0 <= v < max(n, 1), (n, v)
        if n <= 1:
            return self
        if n <= 0x100:
            return self.u8(v)
        if n <= 0x10000:
            return self.u16(v)
        if n <= 0x100000000:
            return self.u32(v)
        return self.u64(v)

    def raw(self, b):
        self.out += bytes(b)
        return self

    def bytes(self):
        return bytes(self.out)


def write(target, name, data):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- virtqueue -------------------------------------------------------------

def desc(addr, length, flags, nxt):
    return struct.pack("<QIHH", addr, length, flags, nxt)


NEXT, WRITE, INDIRECT = 1, 2, 4


def virtqueue_seeds():
    def image(size, chains, heads, used_event=0, avail_flags=0):
        ram = bytearray(0x2000)
        for index, d in chains.items():
            ram[16 * index:16 * index + 16] = d
        avail = 16 * size
        struct.pack_into("<HH", ram, avail, avail_flags, len(heads))
        for i, h in enumerate(heads):
            struct.pack_into("<H", ram, avail + 4 + 2 * i, h)
        struct.pack_into("<H", ram, avail + 4 + 2 * size, used_event)
        return ram

    # Size 8, INDIRECT + EVENT_IDX: a readable+writable chain, an indirect
    # one, one buffer in the high region.
    ram = image(8, {0: desc(0x800, 16, NEXT, 1), 1: desc(0x900, 64, WRITE, 0),
                    2: desc(0x1000, 32, INDIRECT, 0), 3: desc(0x3000, 100, 0, 0)},
                [0, 2, 3])
    ram[0x1000:0x1020] = desc(0x1100, 8, NEXT, 1) + desc(0x1200, 8, WRITE, 0)
    ops = bytes([0, 1, 2, 3, 4, 6, 0, 5, 0x10, 0, 0x42, 0, 0, 0, 0, 0])
    write("virtqueue", "mixed", bytes([0x18 | 3]) + ops + bytes(ram[:0x1300]) )
    # Size 4, no features: a loop through NEXT (must be refused).
    ram = image(4, {0: desc(0x800, 8, NEXT, 1), 1: desc(0x900, 8, NEXT, 0)}, [0])
    write("virtqueue", "loop", bytes([2]) + bytes(16) + bytes(ram[:0x100]))
    # Size 16, EVENT_IDX: many one-buffer chains, completed out of order.
    chains = {i: desc(0x800 + 0x40 * i, 0x40, WRITE if i % 2 else 0, 0) for i in range(16)}
    ram = image(16, chains, list(range(16)), used_event=3)
    ops = bytes([2, 2, 2, 3, 1, 1, 4, 1, 0, 6, 0, 2, 3, 0, 0, 0])
    write("virtqueue", "batch", bytes([0x10 | 4]) + ops + bytes(ram[:0x800]))
    # Raw ring addresses: a misaligned descriptor table (refused by Create).
    e = Enc().u8(0x20 | 1).below(0x4100, 0x108).below(0x4100, 0x200).below(0x4100, 0x300)
    write("virtqueue", "raw-rings", e.bytes() + bytes(16) + bytes(0x400))


def pdesc(addr, length, buffer_id, flags):
    """A packed ring descriptor (struct pvirtq_desc)."""
    return struct.pack("<QIHH", addr, length, buffer_id, flags)


AVAIL, USED = 1 << 7, 1 << 15
PACKED = 0x40


def packed_virtqueue_seeds():
    """Packed rings: flags | PACKED, then Below(64) for size - 1."""
    def image(size, slots, driver_event=(0, 0)):
        ram = bytearray(0x2000)
        for index, d in slots.items():
            ram[16 * index:16 * index + 16] = d
        struct.pack_into("<HH", ram, 16 * size, *driver_event)  # off_wrap, flags
        return ram

    # Size 8, INDIRECT + EVENT_IDX: a readable+writable chain, an indirect
    # table, a buffer in the high region; the driver asks for an interrupt
    # at slot 2 of the first lap.
    ram = image(8, {0: pdesc(0x800, 16, 0, AVAIL | NEXT), 1: pdesc(0x900, 64, 0, AVAIL | WRITE),
                    2: pdesc(0x1000, 32, 1, AVAIL | INDIRECT), 3: pdesc(0x3000, 100, 2, AVAIL)},
                driver_event=(0x8000 | 2, 2))
    ram[0x1000:0x1020] = pdesc(0x1100, 8, 0, 0) + pdesc(0x1200, 8, 0, WRITE)
    ops = bytes([0, 1, 2, 3, 4, 6, 0, 5, 0x10, 0, 0x42, 0, 0, 0, 0, 0])
    write("virtqueue", "packed-mixed", bytes([PACKED | 0x18, 7]) + ops + bytes(ram[:0x1300]))
    # Size 5: a 4-slot chain, completed; the driver rewrites slot 0 (now a
    # used descriptor) as available for lap 2, so the next chain runs from
    # slot 4 across the end of the ring into slot 0.
    ram = image(5, {0: pdesc(0x800, 16, 0, AVAIL | NEXT), 1: pdesc(0x900, 16, 0, AVAIL | NEXT),
                    2: pdesc(0xa00, 16, 0, AVAIL | NEXT), 3: pdesc(0xb00, 64, 0, AVAIL | WRITE),
                    4: pdesc(0xc00, 8, 1, AVAIL | NEXT)})
    # Pop+complete; driver writes 0x02 (WRITE, AVAIL clear) at 0x000e, slot
    # 0's flags low byte (USED is already set); then pop+complete again.
    ops = bytes([0, 5, 0x0e, 0x00, 0x02, 0, 4, 1, 2, 3, 0, 0, 0, 0, 0, 0])
    write("virtqueue", "packed-wrap", bytes([PACKED, 4]) + ops + bytes(ram[:0x1000]))
    # Size 3: a chain whose second descriptor was never made available
    # (must be refused).
    ram = image(3, {0: pdesc(0x800, 8, 0, AVAIL | NEXT), 1: pdesc(0x900, 8, 0, 0)})
    write("virtqueue", "packed-tail", bytes([PACKED, 2]) + bytes(16) + bytes(ram[:0x100]))
    # Raw addresses: a driver area that is not 4-byte aligned (refused).
    e = Enc().u8(PACKED | 0x20).below(64, 15).below(0x4100, 0x100).below(0x4100, 0x202)
    e.below(0x4100, 0x300)
    write("virtqueue", "packed-raw-rings", e.bytes() + bytes(16) + bytes(0x400))


# --- virtio_blk ------------------------------------------------------------

T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13
KIND = {T_IN: 0, T_OUT: 1, T_FLUSH: 2, T_GET_ID: 3, T_DISCARD: 4, T_WRITE_ZEROES: 5}


class Blk:
    """Encodes requests the way fuzz_virtio_blk.cc's PostRequest reads them."""

    def __init__(self, sectors, readonly=False, accepted=0x3f, serial=b"fuzzdisk",
                 queue_log2=6):
        self.capacity = sectors
        self.e = Enc().u8(1 if readonly else 0).below(64, sectors - 1).u8(accepted)
        self.e.below(24, len(serial)).raw(serial).below(9, queue_log2)

    def sector(self, s):
        # mode 4: Below(capacity + 2); mode 1: capacity - Below(4); mode 2: raw.
        if s <= self.capacity + 1:
            self.e.below(5, 4).below(self.capacity + 2, s)
        else:
            self.e.below(5, 2).u64(s)

    def request(self, rtype, sector=0, shape=0, data=(), lengths=(), status=2, segments=(),
                short=None, cut=None):
        self.e.u8(KIND[rtype])
        self.sector(sector)
        self.e.u8(shape)
        header = 16
        if shape & 0x01:
            header = short
            self.e.below(16, short)
        if shape & 0x02 and header > 1:
            self.e.below(header - 1, cut - 1)
        if rtype in (T_DISCARD, T_WRITE_ZEROES):
            self.e.below(4, len(segments) - (1 if shape & 0x04 else 0))
            for s, count, flags in segments:
                self.sector(s)
                self.e.u8(1).below(self.capacity + 2, count)
                self.e.below(8, 1).below(2, flags)
        else:
            pieces = data if rtype == T_OUT else lengths
            self.e.below(4, len(pieces))
            for piece in pieces:
                n = len(piece) if rtype == T_OUT else piece
                if n % 512 == 0 and n // 512 < 9:
                    self.e.below(4, 2).below(9, n // 512)
                else:
                    self.e.below(4, 0).below(0x801, n)
                if rtype == T_OUT:
                    self.e.raw(piece)
        self.e.below(8, status)
        return self

    def bytes(self):
        return self.e.bytes()


def virtio_blk_seeds():
    data = bytes((i * 13 + 5) & 0xff for i in range(1024))
    b = Blk(16)
    b.request(T_OUT, 2, data=[data])
    b.request(T_IN, 2, lengths=[1024])
    b.request(T_FLUSH)
    b.request(T_GET_ID, lengths=[20])
    b.request(T_DISCARD, segments=[(4, 2, 0)])
    b.request(T_WRITE_ZEROES, segments=[(1, 1, 1)])
    b.request(T_IN, 0, lengths=[512, 512, 512])
    b.request(T_IN, 16, lengths=[512])          # past the end: IOERR
    b.request(T_OUT, 15, data=[data])           # runs past the end: IOERR
    b.request(T_IN, 3, lengths=[100])           # not whole sectors: IOERR
    write("virtio_blk", "rw-mix", b.bytes())

    b = Blk(8, readonly=True, serial=b"ro")
    b.request(T_IN, 0, lengths=[4096])
    b.request(T_OUT, 0, data=[data[:512]])      # read-only: IOERR
    b.request(T_DISCARD, segments=[(0, 1, 0)])  # not offered: UNSUPP
    write("virtio_blk", "readonly", b.bytes())

    b = Blk(32, accepted=0x08 | 0x02, queue_log2=3)  # INDIRECT + DISCARD, no FLUSH
    b.request(T_OUT, 1, shape=0x20 | 0x02, cut=5, data=[data, data[:512]])  # indirect, split header
    b.request(T_IN, 1, shape=0x20, lengths=[1536])
    b.request(T_DISCARD, shape=0x04, segments=[(0, 1, 0), (31, 1, 0), (40, 1, 0)])
    b.request(T_WRITE_ZEROES, segments=[(0, 1, 0)])  # not negotiated: UNSUPP
    write("virtio_blk", "indirect", b.bytes())

    b = Blk(4)
    b.request(T_IN, 0, shape=0x01, short=10, lengths=[512])  # a 10-byte header: IOERR
    b.request(T_IN, 0, lengths=[512], status=0)  # no separate status byte: the last data byte
    b.request(T_IN, 0, lengths=[], status=0)     # no writable byte at all: NEEDS_RESET
    write("virtio_blk", "bad-shapes", b.bytes())


# --- virtio_mmio -----------------------------------------------------------

class Mmio:
    """Ops as fuzz_virtio_mmio.cc's Harness::Step reads them."""

    def __init__(self, features=0x30000000, queues=2, max_log2=8, config=12):
        self.e = Enc().u32(features).below(4, queues - 1).below(10, max_log2).below(0x20, config)

    def write(self, offset, value, width_index=0):  # raw offset, value via Below(0x200) or u64
        self.e.below(8, 0).below(8, 0).below(0x1000, offset).below(7, width_index)
        if value < 0x200:
            self.e.below(4, 2).below(0x200, value)
        else:
            self.e.below(4, 0).u64(value)
        return self

    def read(self, offset, width_index=0):
        self.e.below(8, 3).below(8, 0).below(0x1000, offset).below(7, width_index)
        return self

    def init(self, queues, fail=False, masks=(0, 0)):
        self.e.below(8, 4).u32(masks[0]).u32(masks[1]).below(4, len(queues))
        for size_log2, page in queues:
            self.e.below(10, size_log2).below(15, page)
        self.e.below(4, 0 if fail else 1)
        return self

    def event(self, kind, queue=0, stale=False):
        self.e.below(8, 5).u8(kind).below(4, queue).u8(1 if stale else 0)
        return self

    def config(self, offset, width_index, value=None):
        self.e.below(8, 6).below(0x20, offset).below(7, width_index)
        if value is None:
            self.e.u8(0)
        else:
            self.e.u8(1).u64(value)
        return self

    def status(self, index):
        self.e.below(8, 7).below(7, index)
        return self

    def bytes(self):
        return self.e.bytes()


def virtio_mmio_seeds():
    m = Mmio()
    m.init([(4, 0), (4, 2)])
    m.event(0, 0).event(1).read(0x60).write(0x64, 3).event(2).read(0x70)
    m.status(0).event(0, 0, stale=True).config(4, 0).config(10, 6, 0x1122334455667788)
    m.init([(3, 4)], fail=True).status(0).init([(9, 1)])  # size 512 > max 256: refused
    write("virtio_mmio", "lifecycle", m.bytes())
    m = Mmio(features=0x12345678, queues=4, max_log2=2, config=3)
    for offset in (0x34, 0x30, 0x38, 0x44, 0x80, 0x84, 0x90, 0x94, 0xa0, 0xa4, 0xfc, 0x100):
        m.write(0x30, 3).read(offset).write(offset, 0xffffffff)
    m.write(0x70, 1).write(0x70, 3).write(0x24, 1).read(0x10).write(0x70, 0x0b).write(0x70, 0x0f)
    m.write(0x50, 1).write(0x50, 7).write(0x51, 1, width_index=3).status(4).status(6).status(5)
    write("virtio_mmio", "registers", m.bytes())


# --- virtio_pci ------------------------------------------------------------

class Pci:
    """Ops as fuzz_virtio_pci.cc's Harness::Step reads them."""

    def __init__(self, features=0x30000000, queues=2, max_log2=7, config=8, msix=True):
        self.e = Enc().u32(features).below(4, queues - 1).below(9, max_log2)
        self.e.below(0x20, config).below(4, 1 if msix else 0)

    def value(self, v):
        if v < 0x200:
            self.e.below(4, 2).below(0x200, v)
        else:
            self.e.below(4, 0).u64(v)

    def config_write(self, offset, value, width_index=0):
        self.e.below(10, 0).below(4, 0).below(4096, offset).below(6, width_index)
        self.value(value)
        self.e.below(16, 1)  # the device's own slot
        return self

    def config_read(self, offset, width_index=0):
        self.e.below(10, 2).below(4, 0).below(4096, offset).below(6, width_index).below(16, 1)
        return self

    def bar_write(self, offset, value, width_index=0):  # offset anywhere in the BAR
        self.e.below(10, 3).below(6, 5).u32(offset).below(6, width_index)
        self.value(value)
        return self

    def bar_read(self, offset, width_index=0):
        self.e.below(10, 5).below(6, 5).u32(offset).below(6, width_index)
        return self

    def init(self, queues, msix=True, fail=False, masks=(0, 0), config_vector=0):
        self.e.below(10, 6).u8(1 if msix else 0).u32(masks[0]).u32(masks[1])
        self.e.below(4, config_vector).u8(len(queues))
        for size_log2, page, vector in queues:
            self.e.below(9, size_log2).below(15, page).below(4, vector)
        self.e.below(4, 0 if fail else 1)
        return self

    def event(self, kind, queue=0, stale=False):
        self.e.below(10, 7).u8(kind).u8(queue).u8(1 if stale else 0)
        return self

    def move_bar(self, address_offset):
        self.e.below(10, 8).below(4, 0).u32(address_offset)
        return self

    def size_bar(self, half):
        self.e.below(10, 8).below(4, 1).below(2, half)
        return self

    def command(self, value):
        self.e.below(10, 8).below(4, 3).below(8, value)
        return self

    def msix(self, entry, field, value):
        self.e.below(10, 9).u8(entry).below(4, field).u32(value)
        return self

    def bytes(self):
        return self.e.bytes()


def virtio_pci_seeds():
    p = Pci()
    p.init([(4, 0, 0), (4, 2, 1)])
    p.event(0, 0).event(0, 1).event(1).bar_read(0x1000, 3)
    p.msix(0, 0, 0xfee00000).msix(0, 2, 0x4041).msix(0, 3, 0).event(0, 0)
    p.move_bar(0x123000).event(0, 0).size_bar(0).config_read(0x10).size_bar(1)
    p.command(0).command(2).bar_write(0x14, 0).event(0, 0, stale=True)
    p.init([(3, 1, 3)], fail=True).init([(8, 3, 0), (2, 5, 2)], msix=False)
    write("virtio_pci", "lifecycle", p.bytes())
    p = Pci(features=0xffffffff, queues=4, max_log2=3, config=0x1f, msix=False)
    for offset in (0x00, 0x04, 0x06, 0x0c, 0x10, 0x34, 0x3c, 0x40, 0x50, 0x60, 0x70, 0x80,
                   0x100, 0xffc):
        p.config_read(offset).config_write(offset, 0xffffffff).config_read(offset, 2)
    for offset in (0x0, 0x12, 0x14, 0x16, 0x18, 0x1c, 0x20, 0x2000, 0x201f, 0x3000, 0x3004):
        p.bar_write(offset, 1, width_index=2).bar_read(offset, width_index=4)
    write("virtio_pci", "registers", p.bytes())


# --- cli -------------------------------------------------------------------

# A --config file with every kind of value (docs/config.md).
CONFIG_SEED = b"""{
  // a comment
  "kernel": "bzImage", "cpus": 2, "memory": "1G", "hugepages": true,
  "disk": ["path=root.img,readonly=on", {"path": "/d.img", "direct": false, "serial": "x"}],
  "net": [{"tap": "tap0", "queues": 2}], "expect": ["login:", "a{1,3}"],
  "timeout": "30s", "log-file": "skiff.log"
}
"""


def cli_seeds():
    def args(*a):
        return b"\0".join(x.encode() for x in a)
    write("cli", "run", bytes([0]) + args(
        "--kernel", "vmlinuz", "--initramfs=initrd.img", "--cmdline", "console=ttyS0",
        "--cpus", "2", "--memory", "1G", "--disk", "path=a.img,readonly=on,serial=abc",
        "--disk=path=b.img,direct=on,transport=mmio", "--net",
        "tap=tap0,mac=52:54:00:12:34:56,ip=10.0.2.1,mask=255.255.255.0,queues=2,vhost=on",
        "--console", "virtio", "--transport", "pci", "--log-level", "debug", "--hugepages"))
    write("cli", "top", bytes([1]) + args("--version"))
    write("cli", "bad", bytes([0]) + args("--kernel", "k", "--cpus", "999", "--memory=0x10"))
    write("cli", "size", bytes([2]) + b"2GiB")
    write("cli", "size-bare", bytes([2]) + b"18446744073709551615")
    write("cli", "disk", bytes([3]) + b"path=/dev/vdb,readonly=off,direct=on,serial=SKIFF-0001")
    write("cli", "net", bytes([4]) + b"tap=skiff0,mac=02-00-00-00-00-01,queues=16,transport=mmio")
    write("cli", "mac", bytes([5]) + b"52:54:00:ab:cd:ef")
    write("cli", "transport", bytes([6]) + b"mmio")
    write("cli", "config", bytes([7]) + CONFIG_SEED)


# --- bzimage ---------------------------------------------------------------

def bzimage_seeds():
    def image(setup_sects=1, version=0x020f, relocatable=1, align=0x200000, payload=2048,
              header_len=0x6a, init_size=0x800000, pref=0x1000000, initrd_max=0x7fffffff,
              cmdline_size=2047, xload=0x3):
        f = bytearray(512 * (setup_sects + 1) + payload)
        f[0x1f1] = setup_sects
        struct.pack_into("<I", f, 0x1f4, payload // 16)
        struct.pack_into("<H", f, 0x1fe, 0xaa55)
        f[0x201] = header_len
        f[0x202:0x206] = b"HdrS"
        struct.pack_into("<H", f, 0x206, version)
        f[0x211] = 0x01  # LOADED_HIGH
        struct.pack_into("<I", f, 0x22c, initrd_max)
        struct.pack_into("<I", f, 0x230, align)
        f[0x234] = relocatable
        struct.pack_into("<H", f, 0x236, xload)
        struct.pack_into("<I", f, 0x238, cmdline_size)
        struct.pack_into("<Q", f, 0x258, pref)
        struct.pack_into("<I", f, 0x260, init_size)
        for i in range(512 * (setup_sects + 1), len(f)):
            f[i] = (i * 31) & 0xff
        return bytes(f)

    # steer: ram selector, initrd size u32, cmdline length u16, +1 bit
    def steer(ram, initrd, cmdline, plus=0):
        return Enc().below(7, ram).u32(initrd).u16(cmdline).below(2, plus).bytes()

    write("bzimage", "modern", steer(3, 0x200000, 100) + image())
    write("bzimage", "fixed", steer(1, 0x10000, 0xffff, 1) + image(relocatable=0, setup_sects=0,
                                                                 pref=0x100000))
    write("bzimage", "big-initrd", steer(4, 0xfffff000, 10) + image(initrd_max=0x37ffffff))
    write("bzimage", "old-protocol", steer(0, 0, 0) + image(version=0x020b))
    write("bzimage", "truncated", steer(2, 0, 0) + image()[:0x300])


# --- virtio_net ------------------------------------------------------------

class Net:
    """Ops as fuzz_virtio_net.cc's Harness::Step reads them."""

    def __init__(self, pairs=1, features=(1 << 64) - 1, shape=0x44, mq=False):
        self.usable = pairs if mq else 1
        self.pairs = pairs
        self.queues = 2 if pairs == 1 else 2 * pairs + 1
        self.e = Enc().below(2, pairs - 1).u64(features).u8(0).u8(shape)
        self.ready()

    def ready(self):
        for _ in range(self.queues):
            self.e.below(16, 1)

    def op(self, kind, pair=0):
        self.e.below(self.usable, pair).below(12, kind)
        return self.e

    def tx(self, pieces, pair=0, bad=False):
        self.op(0, pair).below(4, len(pieces) - 1).below(32, 0 if bad else 1)
        for piece in pieces:
            n = len(piece)
            if n == 12:
                self.e.below(4, 1)
            elif n <= 0x800:
                self.e.below(4, 2).below(0x800, n - 1)
            else:
                self.e.below(4, 3).below(0x11000, n - 1)
                continue  # large buffers are a pattern, not input
            self.e.raw(piece)
        return self

    def rx(self, sizes, pair=0, bad=False):
        self.op(2, pair).below(4, len(sizes) - 1).below(32, 0 if bad else 1)
        for n in sizes:
            if n == 12:
                self.e.below(4, 1)
            elif n % 0x1000 == 0:
                self.e.below(4, 3).below(17, n // 0x1000 - 1)
            else:
                self.e.below(4, 2).below(0x800, n - 1)
        return self

    def frame(self, data, pair=0):
        assert len(data) >= 12
        self.op(4, pair).below(4, 1 if len(data) < 12 + 0x600 else 2)
        if len(data) < 12 + 0x600:
            self.e.below(0x600, len(data) - 12)
        else:
            self.e.below(68 * 1024 - 12 + 1, len(data) - 12)
        self.e.raw(data if len(data) <= 0x800 else data[:12])
        return self

    def runt(self, n, pair=0):
        self.op(4, pair).below(4, 0).below(14, n).raw(bytes(range(n)))
        return self

    def ctrl(self, pairs=None, extra=b"", ack=1):
        self.op(8)
        if pairs is None:
            self.e.below(4, 0)
        else:
            self.e.below(4, 1).below(self.pairs + 2, pairs)
        self.e.below(8, len(extra)).raw(extra)
        if ack == 1:
            self.e.below(8, 1)
        else:
            self.e.below(8, 0).below(3, ack)
        return self

    def kick(self, kind, pair=0):  # 5 tx, 6 rx, 7 tap readable, 11 everything
        self.op(kind, pair)
        return self

    def reset(self):
        self.op(10)
        self.ready()
        return self

    def bytes(self):
        return self.e.bytes()


def net_frame(n, seed):
    hdr = bytes([1, 0, 54, 0, 0, 0, 34, 0, 16, 0, 0xee, 0xee])
    return hdr + bytes((seed + 7 * i) & 0xff for i in range(n))


def virtio_net_seeds():
    n = Net()
    n.tx([net_frame(60, 1)]).tx([net_frame(0, 2), bytes(range(200))]).kick(5)
    n.rx([2048]).rx([12, 1500]).frame(net_frame(100, 3)).kick(7).frame(net_frame(3000, 4))
    n.kick(7).rx([0x1000]).kick(6).runt(5).kick(7).tx([bytes(8)]).kick(5)
    n.tx([net_frame(40, 5)], bad=True).kick(5).reset().tx([net_frame(70, 6)]).kick(11)
    write("virtio_net", "mergeable", n.bytes())
    n = Net(features=((1 << 64) - 1) & ~(1 << 15))  # no MRG_RXBUF
    n.rx([100]).frame(net_frame(500, 7)).kick(7).rx([1600]).kick(6).frame(net_frame(20, 8))
    n.kick(7).tx([bytes(0x10010)]).kick(5)  # oversize: dropped
    write("virtio_net", "plain", n.bytes())
    n = Net(pairs=2, mq=True, shape=0x33)
    n.ctrl(pairs=2).rx([2048], pair=1).frame(net_frame(64, 10), pair=1).kick(7, pair=1)
    n.tx([net_frame(64, 11)], pair=1).kick(5, pair=1).ctrl(pairs=3).ctrl(extra=b"\x01\x02")
    n.ctrl(pairs=1, ack=0).ctrl(pairs=1).kick(11)
    write("virtio_net", "multiqueue", n.bytes())


# --- vfio_config -----------------------------------------------------------

class Vfio:
    """Ops as fuzz_vfio_config.cc's Run reads them (the e1000e-like double)."""
    BAR_SIZES = {0: 0x20000, 1: 0x20000, 2: 0x20, 3: 0x4000}
    WIDTHS = [4, 4, 2, 1, 8, 3]

    def __init__(self, shape=0):
        self.e = Enc().below(3, shape)

    def cfg_write(self, offset, value, width_index=0):
        self.e.below(7, 0).below(4096 + 8, offset).below(6, width_index).u32(value)
        return self

    def cfg_read(self, offset, width_index=0):
        self.e.below(7, 1).below(4096 + 8, offset).below(6, width_index)
        return self

    def bar(self, write, bar, offset, value=0, width_index=0, size=None):
        size = size or self.BAR_SIZES[bar]
        self.e.below(7, 2 if write else 3).below(6, bar).below(6, width_index).u64(value)
        self.e.below(size - self.WIDTHS[width_index] + 1, offset)
        return self

    def map(self, bar, on=True, slot=0):
        self.e.below(7, 4).below(6, bar).u8(1 if on else 0).below(16, slot)
        return self

    def fire(self, vector):
        self.e.below(7, 5).below(40, vector)
        return self

    def rom(self, offset, width=4, mapped=False, far=False):
        """A ROM read; `mapped`: the ROM decodes now (then it goes through the bus)."""
        self.e.below(7, 6).below(8, width - 1)
        if far:
            self.e.u8(1).u64(offset)
        else:
            self.e.u8(0).below(0x40000 + 8, offset)
        if mapped:
            self.e.u8(1)
        return self

    def bytes(self):
        return self.e.bytes()


def vfio_config_seeds():
    v = Vfio()
    v.cfg_write(0x04, 0x0006, 2).cfg_write(0x10, 0xffffffff).cfg_read(0x10)
    v.cfg_write(0x10, 0xc0000000).map(0).map(3, slot=2)
    v.cfg_write(0xa2, 0xc000, 2).bar(True, 3, 0, 0xfee00000).bar(True, 3, 8, 0x41)
    v.bar(True, 3, 12, 0).cfg_write(0xa2, 0x8000, 2).fire(0).bar(True, 3, 12, 1).fire(0)
    v.bar(False, 3, 0x2000, width_index=4).bar(True, 3, 12, 0).bar(True, 0, 0x100, 0x1234)
    v.bar(False, 2, 4, width_index=3).cfg_write(0x04, 0, 2).cfg_write(0xa2, 0, 2)
    write("vfio_config", "msix", v.bytes())
    v = Vfio()
    v.cfg_write(0xd4, 0xfee01000).cfg_write(0xd8, 0).cfg_write(0xdc, 0x51, 2)
    v.cfg_write(0xd2, 0x0001, 2).fire(5).cfg_read(0xd0).cfg_write(0xd2, 0x0071, 2)
    v.cfg_write(0xd2, 0, 2).cfg_write(0x00, 0xffffffff).cfg_write(0x30, 0xffffffff)
    v.cfg_write(0x3c, 0x0b, 3).cfg_read(0x3c, 3)
    write("vfio_config", "msi-header", v.bytes())
    v = Vfio(shape=1)
    v.cfg_write(0x04, 0x0002, 2).cfg_write(0x10, 0xffffffff).cfg_write(0x14, 0xffffffff)
    v.cfg_read(0x10).cfg_read(0x14).cfg_write(0x10, 0).cfg_write(0x14, 1).map(0, slot=3)
    v.bar(True, 0, 0x800, 7, size=0x100000).map(0, on=False)
    write("vfio_config", "bar64", v.bytes())
    v = Vfio(shape=2)
    v.cfg_write(0x04, 0x0002, 2).map(0).map(3).cfg_write(0xa2, 0x8000, 2)
    v.bar(True, 3, 0x10, 0xfee00000).bar(True, 3, 0x1c, 0).fire(1).cfg_write(0x04, 0, 2)
    write("vfio_config", "sparse", v.bytes())
    # The expansion ROM (exposed in the target): sizing, enabled in the
    # window and read through the bus (the image ends at 0x9000), moved
    # outside the window, disabled and read directly.
    v = Vfio()
    v.cfg_write(0x04, 0x0002, 2).cfg_write(0x30, 0xffffffff).cfg_read(0x30)
    v.cfg_write(0x30, 0xc0100001).rom(0, mapped=True).rom(0x8ffe, mapped=True)
    v.rom(0x3fffc, width=8, mapped=True).rom(0x3fffe, mapped=True)
    v.cfg_write(0x30, 0x80000001).rom(0x10).rom(~0 & 0xffffffffffffffff, width=2, far=True)
    v.cfg_write(0x30, 0xc0100001).cfg_write(0x04, 0, 2).rom(4).cfg_write(0x31, 0xff, 3)
    write("vfio_config", "rom", v.bytes())


# --- fsl_mc_portal ---------------------------------------------------------

class FslMc:
    """Ops as fuzz_fsl_mc_portal.cc's Step reads them."""
    CODES = [0x805, 0x80B, 0x800, 0x830, 0x831, 0xA05, 0x004, 0x010, 0x011, 0x15F,
             0x160, 0x159, 0x15A, 0x15E, 0x012]
    TYPES = ["dprc", "dpni", "dpio", "dpmcp", "dpbp", "dpcon", "dpmac", "dpsw"]
    WIDTHS = [8, 4, 2, 1]
    MC_SIZE = 0x20000  # two 64 KiB portal slots

    def __init__(self, shape=0):
        self.e = Enc().below(4, shape)

    def cmd(self, code, version=1, token=0, params=b"", obj_type=None, dpmcp=False):
        self.e.below(5, 2).u8(1 if dpmcp else 0).u8(self.CODES.index(code))
        self.e.below(4, version).u16(token)
        self.e.raw(params.ljust(56, b"\0"))
        if obj_type is None:
            self.e.u8(0)
        else:
            self.e.u8(1).below(8, self.TYPES.index(obj_type))
        return self

    def raw_write(self, offset, value, width_index=0):
        self.e.below(5, 0).below(4, width_index)
        self.e.below(self.MC_SIZE - self.WIDTHS[width_index] + 1, offset).u64(value)
        return self

    def raw_read(self, offset, width_index=0):
        self.e.below(5, 1).below(4, width_index)
        self.e.below(self.MC_SIZE - self.WIDTHS[width_index] + 1, offset)
        return self

    def stuck(self, on):
        self.e.below(5, 3).u8(1 if on else 0)
        return self

    def raise_irq(self, obj, index=0):
        self.e.below(5, 4).below(7, obj).below(2, index)
        return self

    def bytes(self):
        return bytes(self.e.out)


def fsl_mc_portal_seeds():
    open_dprc = struct.pack("<I", 2)
    set_obj_irq = struct.pack("<IB3xQII", 0x21, 0, 0x08090040, 5, 3)
    get_obj_reg = struct.pack("<I2xB", 7, 1)
    f = FslMc()
    f.cmd(0x830).cmd(0x831).cmd(0xA05).cmd(0x805, token=0x8000, params=open_dprc)
    f.cmd(0x004).cmd(0x159).cmd(0x15A, params=struct.pack("<I", 2))
    f.cmd(0x15E, version=2, params=get_obj_reg, obj_type="dpio")
    f.cmd(0x15E, version=1, params=struct.pack("<I", 5), obj_type="dpmcp")
    f.cmd(0x15F, params=set_obj_irq, obj_type="dpni").raise_irq(6)
    f.cmd(0x160, params=set_obj_irq, obj_type="dpni").cmd(0x800)
    write("fsl_mc_portal", "probe", f.bytes())
    f = FslMc(shape=3)
    f.cmd(0x805, token=0x8000, params=open_dprc, dpmcp=True)
    f.cmd(0x010, params=struct.pack("<IB3xQ", 0x20, 0, 0x08090040), dpmcp=True)
    f.cmd(0x15F, params=set_obj_irq, obj_type="dpni", dpmcp=True)
    f.cmd(0x15F, params=struct.pack("<IB3xQII", 1, 0, 0x08090040, 0, 7), obj_type="dpio",
          dpmcp=True)
    f.cmd(0x15F, params=set_obj_irq, token=0x8123).stuck(True).cmd(0x830).stuck(False)
    f.raw_write(0x4, 0x015e0000, 1).raw_write(0x0, 0x00010000, 1).raw_read(0x2, 3)
    f.raw_write(0x10040, 0xffffffffffffffff).raw_read(0xfff8)
    write("fsl_mc_portal", "irqs-dpmcp", f.bytes())

# --- arm64_image -----------------------------------------------------------

def arm64_image(text_offset=0, image_size=1 << 20, flags=(1 << 1) | (1 << 3), payload=4096):
    """An arm64 Image as a 6.x kernel writes it (Documentation/arch/arm64/
    booting.rst): a branch, text_offset, image_size, flags, the "ARM\\x64"
    magic at 56, then code (a pattern here)."""
    f = bytearray(64 + payload)
    struct.pack_into("<I", f, 0, 0x14000010)  # code0: b +64
    struct.pack_into("<QQQ", f, 8, text_offset, image_size, flags)
    f[56:60] = b"ARM\x64"
    for i in range(64, len(f)):
        f[i] = (i * 37) & 0xff
    return bytes(f)


def arm64_image_seeds():
    # steer: ram selector (7 sizes), inflate bound selector (3), initrd
    # present bit, initrd size u32, one pad byte.
    def steer(ram, bound, initrd=None):
        e = Enc().below(7, ram).below(3, bound)
        return e.u8(initrd is not None).u32(initrd or 0).u8(0).bytes()

    def gz(data):
        return gzip.compress(data, mtime=0)

    write("arm64_image", "image", steer(2, 2, 0x100000) + arm64_image())
    write("arm64_image", "image-gz", steer(0, 1, 0x4000) + gz(arm64_image()))
    write("arm64_image", "legacy", steer(1, 0) + arm64_image(text_offset=0x12345678, image_size=0,
                                                              flags=0))
    # 1 MiB of zeros after the header: under 2 KiB of gzip, refused by the
    # 64 KiB bound (and accepted by 8 MiB).
    bomb = gz(arm64_image(payload=1 << 20)[:64] + bytes(1 << 20))
    write("arm64_image", "gz-bomb", steer(3, 0) + bomb)
    write("arm64_image", "gz-big-bound", steer(3, 2, 0x200000) + bomb)
    # 33 GiB of RAM: the 4 GiB initramfs is limited by the 32 GiB window.
    write("arm64_image", "initrd-window", steer(5, 2, 0xffffffff) +
          arm64_image(text_offset=0x80000, image_size=64 << 20))
    write("arm64_image", "truncated-gz", steer(2, 1) + gz(arm64_image())[:40])


# --- dtb -------------------------------------------------------------------

class Fdt:
    """A flattened device tree (devicetree specification v0.4 ch. 5),
    version 17: header, empty reservation map, structure, strings."""

    def __init__(self):
        self.struct = bytearray()
        self.strings = bytearray()

    def _pad(self):
        while len(self.struct) % 4:
            self.struct.append(0)

    def begin(self, name):
        self.struct += struct.pack(">I", 1) + name.encode() + b"\0"
        self._pad()
        return self

    def prop(self, name, value):
        if isinstance(value, str):
            value = value.encode() + b"\0"
        off = self.strings.find(name.encode() + b"\0")
        if off < 0:
            off = len(self.strings)
            self.strings += name.encode() + b"\0"
        self.struct += struct.pack(">III", 3, len(value), off) + value
        self._pad()
        return self

    def end(self):
        self.struct += struct.pack(">I", 2)
        return self

    def blob(self):
        body = bytes(self.struct) + struct.pack(">I", 9)
        rsvmap_off = 40
        struct_off = rsvmap_off + 16
        strings_off = struct_off + len(body)
        total = strings_off + len(self.strings)
        header = struct.pack(">10I", 0xd00dfeed, total, struct_off, strings_off, rsvmap_off,
                             17, 16, 0, len(self.strings), len(body))
        return header + bytes(16) + body + bytes(self.strings)


def dtb_tree(chosen):
    t = Fdt().begin("")
    t.prop("#address-cells", struct.pack(">I", 2)).prop("#size-cells", struct.pack(">I", 2))
    t.prop("compatible", "linux,dummy-virt")
    if chosen:
        t.begin("chosen").prop("bootargs", "console=ttyS0").prop("stdout-path", "/pl011@9000000")
        t.end()
    t.begin("memory@40000000").prop("device_type", "memory")
    t.prop("reg", struct.pack(">4I", 0, 0x40000000, 0, 0x4000000)).end()
    return t.end().blob()


def dtb_seeds():
    # flags: 1 bootargs, 2 initrd, 4 patch even what ValidateFdt refused.
    def steer(flags, bootargs=b"", initrd=(0, 0)):
        return Enc().u8(flags).u16(len(bootargs)).u64(initrd[0]).u64(initrd[1]).raw(
            bootargs).bytes()

    cmdline = b"console=ttyAMA0 root=/dev/vda rw"
    initrd = (0x48000000, 0x48123456)
    write("dtb", "no-chosen", steer(3, cmdline, initrd) + dtb_tree(chosen=False))
    write("dtb", "chosen", steer(3, cmdline, initrd) + dtb_tree(chosen=True))
    write("dtb", "bootargs-only", steer(1, cmdline) + dtb_tree(chosen=True))
    write("dtb", "as-is", steer(0) + dtb_tree(chosen=False))
    write("dtb", "truncated", steer(7, cmdline, initrd) + dtb_tree(chosen=True)[:100])


# --- iommu_info --------------------------------------------------------------

def iommu_info_seeds():
    """VFIO_IOMMU_GET_INFO replies as Linux 6.1 writes them: the 24-byte
    vfio_iommu_type1_info, then capabilities back to back (6.1 does not
    align them: the 12-byte DMA-available one leaves the next at an odd
    multiple of 4), each header's next naming the following one."""

    def cap(cap_id, body):
        return [cap_id, body]

    def reply(caps, flags=3):
        offsets, at = [], 24
        for _, body in caps:
            offsets.append(at)
            at += 8 + len(body)
        out = bytearray(struct.pack("<IIQII", at, flags, 0x40201000, 24 if caps else 0, 0))
        for i, (cap_id, body) in enumerate(caps):
            nxt = offsets[i + 1] if i + 1 < len(offsets) else 0
            out += struct.pack("<HHI", cap_id, 1, nxt) + body
        return out

    def ranges(*pairs):
        return struct.pack("<II", len(pairs), 0) + b"".join(struct.pack("<QQ", *p) for p in pairs)

    migration = cap(2, struct.pack("<IIQQ", 0, 0, 0x1000, 0x8000000)[:24])
    avail = cap(3, struct.pack("<I", 65535))
    x86 = cap(1, ranges((0, 0xfedfffff), (0xfef00000, 0x7fffffffff)))
    smmu = cap(1, ranges((0, 0x7ffffff), (0x8100000, 0xffffffffffff)))
    write("iommu_info", "linux61-x86", bytes(reply([migration, avail, x86])))
    write("iommu_info", "smmu", bytes(reply([avail, smmu])))
    loop = reply([avail, x86])
    struct.pack_into("<I", loop, 24 + 4, 24)  # the first capability names itself
    write("iommu_info", "loop", bytes(loop))
    write("iommu_info", "truncated", bytes(reply([migration, avail, x86])[:70]))
    write("iommu_info", "no-caps", struct.pack("<IIQII", 24, 1, 0x1000, 0, 0))


def main():
    virtqueue_seeds()
    packed_virtqueue_seeds()
    virtio_blk_seeds()
    virtio_net_seeds()
    virtio_mmio_seeds()
    virtio_pci_seeds()
    cli_seeds()
    bzimage_seeds()
    vfio_config_seeds()
    iommu_info_seeds()
    fsl_mc_portal_seeds()
    arm64_image_seeds()
    dtb_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
