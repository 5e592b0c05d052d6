// Plays the driver's side of a packed virtqueue (virtio 1.2 §2.8) in fake
// guest memory, the way Linux's virtio_ring.c does: descriptors go in ring
// order with the driver's wrap counter in AVAIL/USED, the first one's flags
// last; buffer IDs come from a free list; used descriptors are read at the
// driver's own position, which then skips as many slots as the buffer's
// chain took.
//
//   FakeGuestMemory mem(0x100000);
//   PackedVirtqueueBuilder vq(mem, 16, 0x1000);
//   uint16_t id = vq.AddChain({{0x8000, 512, false}, {0x9000, 1, true}});
//   auto queue = Virtqueue::Create(vq.config(), 256, {.packed = true}, mem.memory());
//   ... device pops, pushes ...
//   auto used = vq.NextUsed();  // {id, len, flags} or nullopt
//
// Layout from ring_base (16-byte aligned): the descriptor ring, then the
// driver event suppression area, then the device area (4 bytes each), all
// zeroed at construction. Misuse (no room, rings outside RAM) is a test bug
// and aborts with a message.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "devices/virtio/packed_ring.h"
#include "devices/virtio/queue_config.h"
#include "devices/virtio/split_ring.h"
#include "tests/unit/fake_guest_memory.h"

namespace skiff::virtio::testing {

using ::skiff::FakeGuestMemory;

class PackedVirtqueueBuilder {
 public:
  PackedVirtqueueBuilder(FakeGuestMemory& mem, uint16_t size, uint64_t ring_base)
      : mem_(mem),
        size_(size),
        desc_(ring_base),
        driver_(ring_base + kPackedDescSize * size),
        device_(driver_ + kEventSuppressSize),
        free_(size),
        chain_length_(size, 0) {
    if (size == 0 || ring_base % 16 != 0) Fail("size 0 or ring_base not 16-byte aligned");
    Zero(desc_, kPackedDescSize * size + 2 * kEventSuppressSize);
    for (uint16_t id = 0; id < size; ++id)
      free_ids_.push_back(static_cast<uint16_t>(size - 1 - id));
  }

  QueueConfig config() const {
    return QueueConfig{.size = size_,
                       .desc_table = desc_,
                       .avail_ring = driver_,
                       .used_ring = device_,
                       .ready = true};
  }

  struct Buf {
    uint64_t addr;
    uint32_t len;
    bool writable;
  };

  // Makes `bufs` available as one chain of consecutive ring descriptors
  // (wrapping around the ring as needed); returns its buffer ID. The ID goes
  // in every descriptor, as Linux writes it; `id_in_last_only` writes it
  // only where the spec puts it (the last) and garbage elsewhere.
  uint16_t AddChain(const std::vector<Buf>& bufs, bool id_in_last_only = false) {
    if (bufs.empty() || bufs.size() > free_) Fail("AddChain needs 1..free descriptors");
    const uint16_t id = TakeId();
    const uint16_t head = next_avail_;
    uint16_t head_flags = 0;
    for (size_t i = 0; i < bufs.size(); ++i) {
      const bool last = i + 1 == bufs.size();
      const uint16_t flags = static_cast<uint16_t>(
          AvailFlags() | (bufs[i].writable ? kDescFlagWrite : 0) | (last ? 0 : kDescFlagNext));
      const uint16_t written_id = (last || !id_in_last_only) ? id : 0xbeef;
      WriteBody(next_avail_, bufs[i].addr, bufs[i].len, written_id);
      if (i == 0) {
        head_flags = flags;
      } else {
        SetFlags(next_avail_, flags);
      }
      StepAvail();
    }
    // The first descriptor's flags go last: they publish the chain.
    SetFlags(head, head_flags);
    Commit(id, static_cast<uint16_t>(bufs.size()));
    return id;
  }

  // Writes `bufs` as an indirect table at table_gpa and makes one ring
  // descriptor pointing at it available; returns its buffer ID.
  uint16_t AddIndirectChain(uint64_t table_gpa, const std::vector<Buf>& bufs) {
    if (free_ == 0) Fail("AddIndirectChain: ring full");
    for (size_t i = 0; i < bufs.size(); ++i) {
      WriteTableEntry(table_gpa + kPackedDescSize * i, bufs[i].addr, bufs[i].len,
                      bufs[i].writable ? kDescFlagWrite : 0);
    }
    const uint16_t id = TakeId();
    const uint16_t head = next_avail_;
    const uint16_t flags = static_cast<uint16_t>(AvailFlags() | kDescFlagIndirect);
    WriteBody(head, table_gpa, static_cast<uint32_t>(kPackedDescSize * bufs.size()), id);
    StepAvail();
    SetFlags(head, flags);
    Commit(id, 1);
    return id;
  }

  // One raw available descriptor at the driver's position with `flags`
  // (AVAIL/USED added for the current wrap counter), not yet published
  // when `publish` is false. For crafting malformed chains; bookkeeping of
  // IDs and free slots is the test's business.
  void AddRaw(uint64_t addr, uint32_t len, uint16_t id, uint16_t flags, bool publish = true) {
    const uint16_t at = next_avail_;
    WriteBody(at, addr, len, id);
    const uint16_t full = static_cast<uint16_t>(AvailFlags() | flags);
    StepAvail();
    if (publish) SetFlags(at, full);
  }

  void WriteTableEntry(uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags) {
    Put<uint64_t>(gpa + kPackedDescAddrOffset, addr);
    Put<uint32_t>(gpa + kPackedDescLenOffset, len);
    Put<uint16_t>(gpa + kPackedDescIdOffset, 0);
    Put<uint16_t>(gpa + kPackedDescFlagsOffset, flags);
  }

  struct Used {
    uint16_t id;
    uint32_t len;
    uint16_t flags;
  };
  // The next used descriptor, as Linux's virtqueue_get_buf reads it, or
  // nullopt when the device has not written one there yet. Frees the ID
  // and skips the slots its chain took.
  std::optional<Used> NextUsed() {
    const uint16_t flags = Get<uint16_t>(DescAt(last_used_) + kPackedDescFlagsOffset);
    const bool avail = flags & kPackedDescFlagAvail;
    const bool used = flags & kPackedDescFlagUsed;
    if (avail != used || used != used_wrap_) return std::nullopt;
    Used out{Get<uint16_t>(DescAt(last_used_) + kPackedDescIdOffset),
             Get<uint32_t>(DescAt(last_used_) + kPackedDescLenOffset), flags};
    if (out.id >= size_ || chain_length_[out.id] == 0) Fail("used descriptor names a free ID");
    const uint16_t n = chain_length_[out.id];
    chain_length_[out.id] = 0;
    free_ += n;
    free_ids_.push_back(out.id);
    last_used_ = static_cast<uint16_t>(last_used_ + n);
    if (last_used_ >= size_) {
      last_used_ = static_cast<uint16_t>(last_used_ - size_);
      used_wrap_ = !used_wrap_;
    }
    return out;
  }

  // Driver event suppression (read by the device).
  void SetDriverEvent(uint16_t flags, uint16_t off = 0, bool wrap = false) {
    Put<uint16_t>(driver_, static_cast<uint16_t>(off | (wrap ? 1u << kEventWrapShift : 0)));
    Put<uint16_t>(driver_ + 2, flags);
  }
  // Device event suppression (written by the device).
  uint16_t device_event_flags() const { return Get<uint16_t>(device_ + 2); }
  uint16_t device_event_off_wrap() const { return Get<uint16_t>(device_); }

  uint16_t flags_at(uint16_t index) const {
    return Get<uint16_t>(DescAt(index) + kPackedDescFlagsOffset);
  }
  uint16_t next_avail() const { return next_avail_; }
  bool avail_wrap() const { return avail_wrap_; }
  uint16_t last_used() const { return last_used_; }
  bool used_wrap() const { return used_wrap_; }
  uint16_t free_descriptors() const { return free_; }
  uint64_t desc_ring() const { return desc_; }
  uint64_t driver_area() const { return driver_; }
  uint64_t device_area() const { return device_; }

 private:
  [[noreturn]] static void Fail(const char* why) {
    std::fprintf(stderr, "PackedVirtqueueBuilder: %s\n", why);
    std::abort();
  }

  uint64_t DescAt(uint16_t index) const { return desc_ + kPackedDescSize * index; }
  // §2.8.1: AVAIL = the driver's wrap counter, USED = its inverse.
  uint16_t AvailFlags() const { return avail_wrap_ ? kPackedDescFlagAvail : kPackedDescFlagUsed; }
  void StepAvail() {
    if (++next_avail_ == size_) {
      next_avail_ = 0;
      avail_wrap_ = !avail_wrap_;
    }
  }
  uint16_t TakeId() {
    if (free_ids_.empty()) Fail("no free buffer ID");
    const uint16_t id = free_ids_.back();
    free_ids_.pop_back();
    return id;
  }
  void Commit(uint16_t id, uint16_t descriptors) {
    chain_length_[id] = descriptors;
    free_ -= descriptors;
  }
  void WriteBody(uint16_t index, uint64_t addr, uint32_t len, uint16_t id) {
    Put<uint64_t>(DescAt(index) + kPackedDescAddrOffset, addr);
    Put<uint32_t>(DescAt(index) + kPackedDescLenOffset, len);
    Put<uint16_t>(DescAt(index) + kPackedDescIdOffset, id);
  }
  void SetFlags(uint16_t index, uint16_t flags) {
    Put<uint16_t>(DescAt(index) + kPackedDescFlagsOffset, flags);
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
  uint64_t driver_;
  uint64_t device_;
  uint16_t next_avail_ = 0;
  bool avail_wrap_ = true;  // the driver ring wrap counter starts at 1
  uint16_t last_used_ = 0;
  bool used_wrap_ = true;
  uint16_t free_;                       // ring descriptors not in use
  std::vector<uint16_t> chain_length_;  // per ID: descriptors its chain took; 0 = free
  std::vector<uint16_t> free_ids_;      // a stack; ID 0 first
};

}  // namespace skiff::virtio::testing
