// Plays the driver's side of a split virtqueue in fake guest memory, so
// device tests can post buffers and inspect what the device returned.
//
//   FakeGuestMemory mem(0x100000);
//   VirtqueueBuilder vq(mem, 16, 0x1000);
//   uint16_t head = vq.AddChain({{0x8000, 512, false}, {0x9000, 1, true}});
//   auto queue = Virtqueue::Create(vq.config(), 256, {}, mem.memory());
//   ... device pops, pushes ...
//   EXPECT_EQ(vq.used_idx(), 1); EXPECT_EQ(vq.used(0).id, head);
//
// Layout from ring_base (which must be 16-byte aligned): the descriptor
// table, then the available ring, then the used ring at the next 4-byte
// boundary. All three are zeroed at construction. AddChain hands out
// descriptor slots round-robin and never reclaims them, so a test may post
// at most `size` descriptors before the device has consumed the oldest.
// Misuse (a chain that does not fit, rings outside RAM) is a test bug and
// aborts with a message.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "devices/virtio/queue_config.h"
#include "devices/virtio/split_ring.h"
#include "tests/unit/fake_guest_memory.h"

namespace skiff::virtio::testing {

using ::skiff::FakeGuestMemory;

class VirtqueueBuilder {
 public:
  // Lays out desc table, avail and used rings in `mem` starting at `ring_base`.
  VirtqueueBuilder(FakeGuestMemory& mem, uint16_t size, uint64_t ring_base)
      : mem_(mem),
        size_(size),
        desc_(ring_base),
        avail_(ring_base + 16ull * size),
        used_((avail_ + 6 + 2ull * size + 3) & ~3ull) {
    if (size == 0 || ring_base % 16 != 0) Fail("size 0 or ring_base not 16-byte aligned");
    Zero(desc_, 16ull * size);
    Zero(avail_, 6 + 2ull * size);
    Zero(used_, 6 + 8ull * size);
  }

  QueueConfig config() const {
    return QueueConfig{.size = size_,
                       .desc_table = desc_,
                       .avail_ring = avail_,
                       .used_ring = used_,
                       .ready = true};
  }

  struct Buf {
    uint64_t addr;
    uint32_t len;
    bool writable;
  };

  // Writes descriptors (free slots), publishes head, returns head.
  uint16_t AddChain(const std::vector<Buf>& bufs) {
    if (bufs.empty() || bufs.size() > size_) Fail("AddChain needs 1..size buffers");
    std::vector<uint16_t> slots;
    for (size_t i = 0; i < bufs.size(); ++i) slots.push_back(NextFreeSlot());
    for (size_t i = 0; i < bufs.size(); ++i) {
      const bool last = i + 1 == bufs.size();
      WriteDescriptor(slots[i], bufs[i].addr, bufs[i].len, FlagsFor(bufs[i], last),
                      last ? 0 : slots[i + 1]);
    }
    PublishHead(slots[0]);
    return slots[0];
  }

  // Writes `bufs` as an indirect table at table_gpa, points one descriptor
  // slot at it (kDescFlagIndirect), publishes it and returns its index.
  uint16_t AddIndirectChain(uint64_t table_gpa, const std::vector<Buf>& bufs) {
    if (bufs.empty()) Fail("AddIndirectChain needs at least one buffer");
    for (size_t i = 0; i < bufs.size(); ++i) {
      const bool last = i + 1 == bufs.size();
      WriteDescriptorAt(table_gpa + 16 * i, bufs[i].addr, bufs[i].len, FlagsFor(bufs[i], last),
                        last ? 0 : static_cast<uint16_t>(i + 1));
    }
    const uint16_t head = NextFreeSlot();
    WriteDescriptor(head, table_gpa, static_cast<uint32_t>(16 * bufs.size()), kDescFlagIndirect, 0);
    PublishHead(head);
    return head;
  }

  // Raw descriptor `index` of the queue's table (index < size).
  void WriteDescriptor(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    if (index >= size_) Fail("WriteDescriptor index past the table");
    WriteDescriptorAt(desc_ + 16ull * index, addr, len, flags, next);
  }

  // Raw descriptor anywhere in guest memory (e.g. in an indirect table).
  void WriteDescriptorAt(uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    Put<uint64_t>(gpa, addr);
    Put<uint32_t>(gpa + 8, len);
    Put<uint16_t>(gpa + 12, flags);
    Put<uint16_t>(gpa + 14, next);
  }

  // Raw push into avail ring + idx++ (head is not checked: tests use it to
  // post bad heads).
  void PublishHead(uint16_t head) {
    const uint16_t idx = avail_idx();
    Put<uint16_t>(avail_ + 4 + 2ull * (idx % size_), head);
    SetAvailIdx(static_cast<uint16_t>(idx + 1));
  }

  void SetAvailIdx(uint16_t idx) { Put<uint16_t>(avail_ + 2, idx); }
  void SetAvailFlags(uint16_t flags) { Put<uint16_t>(avail_, flags); }
  void SetUsedEvent(uint16_t v) { Put<uint16_t>(avail_ + 4 + 2ull * size_, v); }
  uint16_t avail_idx() const { return Get<uint16_t>(avail_ + 2); }

  uint16_t used_idx() const { return Get<uint16_t>(used_ + 2); }
  struct UsedElem {
    uint32_t id;
    uint32_t len;
  };
  // Used ring entry i (taken modulo size, so a raw used idx works).
  UsedElem used(uint16_t i) const {
    const uint64_t elem = used_ + 4 + 8ull * (i % size_);
    return UsedElem{Get<uint32_t>(elem), Get<uint32_t>(elem + 4)};
  }
  uint16_t used_flags() const { return Get<uint16_t>(used_); }
  uint16_t avail_event() const { return Get<uint16_t>(used_ + 4 + 8ull * size_); }

  uint64_t desc_table() const { return desc_; }
  uint64_t avail_ring() const { return avail_; }
  uint64_t used_ring() const { return used_; }

 private:
  [[noreturn]] static void Fail(const char* why) {
    std::fprintf(stderr, "VirtqueueBuilder: %s\n", why);
    std::abort();
  }

  static uint16_t FlagsFor(const Buf& buf, bool last) {
    return static_cast<uint16_t>((buf.writable ? kDescFlagWrite : 0) | (last ? 0 : kDescFlagNext));
  }

  uint16_t NextFreeSlot() {
    const uint16_t slot = next_free_;
    next_free_ = static_cast<uint16_t>((next_free_ + 1) % size_);
    return slot;
  }

  template <typename T>
  void Put(uint64_t gpa, T value) const {
    if (!mem_.memory().WriteObj<T>(gpa, value).ok()) Fail("write outside guest RAM");
  }
  template <typename T>
  T Get(uint64_t gpa) const {
    auto value = mem_.memory().ReadObj<T>(gpa);
    if (!value.ok()) Fail("read outside guest RAM");
    return *value;
  }
  void Zero(uint64_t gpa, uint64_t bytes) const {
    std::vector<uint8_t> zeros(bytes, 0);
    if (!mem_.memory().Write(gpa, zeros).ok()) Fail("rings outside guest RAM");
  }

  FakeGuestMemory& mem_;
  uint16_t size_;
  uint64_t desc_;
  uint64_t avail_;
  uint64_t used_;
  uint16_t next_free_ = 0;
};

}  // namespace skiff::virtio::testing
