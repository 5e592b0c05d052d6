#!/usr/bin/env python3
"""Writes the hand-made seeds of tests/fuzz/corpus/<target>/seed-*.

Each seed is a well-formed input in the byte format its target reads (see
the comment at the top of tests/fuzz/fuzz_<target>.cc), so the fuzzer
starts from the interesting paths instead of finding the formats by
itself. Files not named seed-* (regression inputs from fuzzing) are left
alone. Run after changing a target's input format:

    tests/fuzz/make_seeds.py            # rewrites every target's seeds
"""
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
        ram = bytearray(0x4000)
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
                    2: desc(0x1000, 32, INDIRECT, 0), 3: desc(0x6000, 100, 0, 0)},
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
    e = Enc().u8(0x20 | 1).below(0x8100, 0x108).below(0x8100, 0x200).below(0x8100, 0x300)
    write("virtqueue", "raw-rings", e.bytes() + bytes(16) + bytes(0x400))


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


def main():
    virtqueue_seeds()
    virtio_blk_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
