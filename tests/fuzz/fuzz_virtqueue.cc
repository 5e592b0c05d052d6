// A virtqueue, split or packed, over guest memory the fuzzer writes: the
// rings (descriptor table and available ring, or the packed descriptor
// ring and driver event area), indirect tables and buffers all come from
// the input, and so does the sequence of device operations (pop, hand
// back, consume, complete, notification changes, the driver rewriting a
// byte, e.g. to make a packed slot available for the next lap).
//
// Input: [flags] [packed: size byte] [ring addresses when flags ask]
//        [16 op bytes] [RAM image].
//
// Invariants beyond "no crash, no hang, no sanitizer report":
//  - every popped chain lies in guest RAM, has no empty buffer, adds up to
//    its byte counts, is no longer than the queue and names a head (split)
//    or buffer ID (packed) < size;
//  - popping again after UndoPop gives the same chain;
//  - ChainReader returns exactly the readable buffers' bytes;
//  - the device writes guest memory only inside the chain's writable
//    buffers and the used ring (split) or the descriptor ring (packed) when
//    completing, the used ring (split) or device event area (packed) when
//    changing notifications, and never more than the writable bytes;
//  - a packed ring's positions stay below its size.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "devices/virtio/packed_ring.h"
#include "devices/virtio/queue.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/unit/fake_guest_memory.h"

namespace skiff::virtio {
namespace {

using fuzz::FuzzInput;

// Guest RAM with a hole, as below and above a machine's MMIO gap.
// Small, because every step compares all of it against a snapshot.
constexpr uint64_t kLowEnd = 0x2000;
constexpr uint64_t kHighBase = 0x3000;
constexpr uint64_t kHighEnd = 0x4000;
constexpr uint16_t kMaxSize = 64;
constexpr size_t kOpBytes = 16;

enum Flags : uint8_t {
  kSizeMask = 0x07,  // size = 1 << (flags & 7), at most kMaxSize
  kIndirect = 0x08,
  kEventIdx = 0x10,
  kRawRings = 0x20,  // ring addresses from the input instead of laid out from 0
  kPacked = 0x40,    // the packed layout; its size (any, 1-64) from the next byte
};

// A byte-for-byte copy of guest RAM, to see what an operation wrote.
struct Snapshot {
  std::vector<uint8_t> low, high;
};

Snapshot Take(FakeGuestMemory& mem) {
  Snapshot s;
  s.low.assign(mem.host(0), mem.host(0) + kLowEnd);
  s.high.assign(mem.host(kHighBase), mem.host(kHighBase) + (kHighEnd - kHighBase));
  return s;
}

struct Range {
  uint64_t begin, end;
};

// Every byte that differs from `before` lies in one of `allowed`.
void CheckWritesWithin(FakeGuestMemory& mem, const Snapshot& before,
                       const std::vector<Range>& allowed, const char* what) {
  auto check = [&](uint64_t base, const std::vector<uint8_t>& old) {
    const uint8_t* now = mem.host(base);
    constexpr uint64_t kChunk = 64;  // memcmp first: byte by byte only where changed
    for (uint64_t i = 0; i < old.size(); ++i) {
      if (i % kChunk == 0 &&
          std::memcmp(now + i, old.data() + i, std::min<uint64_t>(kChunk, old.size() - i)) == 0) {
        i += kChunk - 1;
        continue;
      }
      if (now[i] == old[i]) continue;
      const uint64_t gpa = base + i;
      const bool ok = std::any_of(allowed.begin(), allowed.end(),
                                  [&](const Range& r) { return gpa >= r.begin && gpa < r.end; });
      FUZZ_CHECK(ok, "%s wrote guest byte 0x%x outside the ranges it may write", what, gpa);
    }
  };
  check(0, before.low);
  check(kHighBase, before.high);
}

void CheckChain(const GuestMemory& memory, const DescriptorChain& chain, uint16_t size) {
  FUZZ_CHECK(chain.head < size, "head %u, queue size %u", chain.head, size);
  FUZZ_CHECK(chain.readable.size() + chain.writable.size() <= size,
             "chain of %u buffers in a queue of %u", chain.readable.size() + chain.writable.size(),
             size);
  uint64_t readable = 0, writable = 0;
  for (const Buffer& b : chain.readable) {
    FUZZ_CHECK(b.len > 0, "empty readable buffer");
    FUZZ_CHECK(memory.Contains(b.addr, b.len), "readable 0x%x+0x%x is not RAM", b.addr, b.len);
    readable += b.len;
  }
  for (const Buffer& b : chain.writable) {
    FUZZ_CHECK(b.len > 0, "empty writable buffer");
    FUZZ_CHECK(memory.Contains(b.addr, b.len), "writable 0x%x+0x%x is not RAM", b.addr, b.len);
    writable += b.len;
  }
  FUZZ_CHECK(readable == chain.readable_bytes, "readable %u != %u", readable, chain.readable_bytes);
  FUZZ_CHECK(writable == chain.writable_bytes, "writable %u != %u", writable, chain.writable_bytes);
}

bool SameChain(const DescriptorChain& a, const DescriptorChain& b) {
  auto same = [](const std::vector<Buffer>& x, const std::vector<Buffer>& y) {
    return std::equal(x.begin(), x.end(), y.begin(), y.end(), [](const Buffer& p, const Buffer& q) {
      return p.addr == q.addr && p.len == q.len;
    });
  };
  return a.head == b.head && same(a.readable, b.readable) && same(a.writable, b.writable);
}

class Harness {
 public:
  Harness(FakeGuestMemory& mem, Virtqueue& queue, FuzzInput& ops)
      : mem_(mem), queue_(queue), ops_(ops) {
    const QueueConfig& c = queue.config();
    if (queue.packed()) {
      completion_writes_ = {c.desc_table, c.desc_table + kPackedDescSize * c.size};
      notification_writes_ = {c.used_ring, c.used_ring + kEventSuppressSize};
    } else {
      completion_writes_ = {c.used_ring, c.used_ring + 6 + 8ull * c.size};
      notification_writes_ = completion_writes_;
    }
  }

  // False once the ring is found malformed (a device would stop here).
  bool Step() {
    switch (ops_.Take<uint8_t>() % 7) {
      case 0:
      default:
        return PopAndConsume();
      case 1:
        return PopUndoPop();
      case 2:
        return PopAndHold();
      case 3:
        return CompleteHeld();
      case 4:
        return Notifications();
      case 5:
        return DriverWrites();
      case 6:
        return PopAndHandBack();
    }
  }

  // Completes whatever is still held, as a device does at the end of a pass.
  void Finish() { CompleteHeld(); }

 private:
  std::optional<DescriptorChain> Pop() {
    auto chain = queue_.Pop(mem_.memory());
    if (!chain.ok()) {
      malformed_ = true;
      return std::nullopt;
    }
    CheckPositions();
    if (!chain->has_value()) return std::nullopt;
    CheckChain(mem_.memory(), **chain, queue_.size());
    return std::move(**chain);
  }

  bool PopAndConsume() {
    std::optional<DescriptorChain> chain = Pop();
    if (!chain) return !malformed_;
    Consume(*chain);
    return Complete(*chain, written_);
  }

  bool PopUndoPop() {
    std::optional<DescriptorChain> first = Pop();
    if (!first) return !malformed_;
    queue_.UndoPop();
    // Nothing changed guest memory in between: the walk must repeat.
    auto again = queue_.Pop(mem_.memory());
    FUZZ_CHECK(again.ok() && again->has_value(), "a chain handed back did not pop again: %s",
               again.ok() ? "nothing available" : std::string(again.status().message()));
    FUZZ_CHECK(SameChain(*first, **again), "a chain popped twice differs (head %u then %u)",
               first->head, (*again)->head);
    held_.push_back(std::move(*first));
    return true;
  }

  // Like virtio-net receive without room: the next Pop returns it again.
  bool PopAndHandBack() {
    std::optional<DescriptorChain> chain = Pop();
    if (chain) queue_.UndoPop();
    return !malformed_;
  }

  bool PopAndHold() {
    std::optional<DescriptorChain> chain = Pop();
    if (chain) held_.push_back(std::move(*chain));
    return !malformed_;
  }

  bool CompleteHeld() {
    // Out of order, newest first: the spec allows any completion order.
    while (!held_.empty()) {
      DescriptorChain chain = std::move(held_.back());
      held_.pop_back();
      Consume(chain);
      if (!Complete(chain, written_)) return false;
    }
    return true;
  }

  // Reads every readable byte (checked against a direct copy), then fills
  // the writable buffers; nothing else may change.
  void Consume(const DescriptorChain& chain) {
    ChainReader reader(mem_.memory(), chain);
    FUZZ_CHECK(reader.remaining() == chain.readable_bytes, "reader sees %u of %u bytes",
               reader.remaining(), chain.readable_bytes);
    std::vector<uint8_t> got(chain.readable_bytes);
    FUZZ_CHECK(reader.Read(got).ok(), "reading all %u readable bytes failed", got.size());
    std::vector<uint8_t> expected;
    for (const Buffer& b : chain.readable) {
      const uint8_t* host = mem_.host(b.addr);
      expected.insert(expected.end(), host, host + b.len);
    }
    FUZZ_CHECK(got == expected, "ChainReader bytes differ from the buffers'");
    uint8_t extra = 0;
    FUZZ_CHECK(!reader.Read(std::span<uint8_t>(&extra, 1)).ok(), "read past the readable bytes");

    const Snapshot before = Take(mem_);
    ChainWriter writer(mem_.memory(), chain);
    std::vector<uint8_t> fill(chain.writable_bytes, static_cast<uint8_t>(0xa5 ^ chain.head));
    FUZZ_CHECK(writer.Write(fill).ok(), "writing all %u writable bytes failed", fill.size());
    FUZZ_CHECK(!writer.Write(std::span<const uint8_t>(&extra, 1)).ok(),
               "wrote past the writable bytes");
    written_ = writer.written();
    FUZZ_CHECK(written_ == chain.writable_bytes, "written %u of %u", written_,
               chain.writable_bytes);
    std::vector<Range> allowed;
    for (const Buffer& b : chain.writable) allowed.push_back({b.addr, b.addr + b.len});
    CheckWritesWithin(mem_, before, allowed, "ChainWriter");
  }

  bool Complete(const DescriptorChain& chain, uint32_t written) {
    // The rings passed Create and RAM never moves: these cannot fail.
    const Snapshot before = Take(mem_);
    absl::Status pushed = queue_.PushUsed(mem_.memory(), chain.head, written);
    FUZZ_CHECK(pushed.ok(), "PushUsed: %s", pushed.message());
    auto notify = queue_.ShouldNotify(mem_.memory());
    FUZZ_CHECK(notify.ok(), "ShouldNotify: %s", notify.status().message());
    CheckWritesWithin(mem_, before, {completion_writes_}, "PushUsed/ShouldNotify");
    CheckPositions();
    return true;
  }

  // Packed positions index the descriptor ring: they must stay inside it.
  void CheckPositions() {
    if (!queue_.packed()) return;
    FUZZ_CHECK(queue_.next_avail() < queue_.size() && queue_.next_used() < queue_.size(),
               "packed positions %u/%u in a ring of %u", queue_.next_avail(), queue_.next_used(),
               queue_.size());
  }

  bool Notifications() {
    const Snapshot before = Take(mem_);
    absl::Status s = queue_.SetNotification(mem_.memory(), ops_.TakeBool());
    FUZZ_CHECK(s.ok(), "SetNotification: %s", s.message());
    CheckWritesWithin(mem_, before, {notification_writes_}, "SetNotification");
    auto count = queue_.AvailableCount(mem_.memory());
    if (count.ok())
      FUZZ_CHECK(*count <= queue_.size(), "%u available in a queue of %u", *count, queue_.size());
    return true;
  }

  // The driver changes one byte of RAM between two device steps.
  bool DriverWrites() {
    const uint64_t gpa = ops_.Below(kHighEnd);
    const uint8_t value = ops_.Take<uint8_t>();
    if (mem_.memory().Contains(gpa, 1)) *mem_.host(gpa) = value;
    return true;
  }

  FakeGuestMemory& mem_;
  Virtqueue& queue_;
  FuzzInput& ops_;
  Range completion_writes_;    // what PushUsed and ShouldNotify may write
  Range notification_writes_;  // what SetNotification may write
  std::vector<DescriptorChain> held_;
  uint32_t written_ = 0;
  bool malformed_ = false;
};

}  // namespace
}  // namespace skiff::virtio

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace skiff::virtio;
  skiff::fuzz::QuietLogs();
  FuzzInput input(data, size);
  const uint8_t flags = input.Take<uint8_t>();
  const bool packed = (flags & kPacked) != 0;
  // Split rings need a power of two; packed ones take any size.
  const uint16_t queue_size =
      packed ? static_cast<uint16_t>(1 + input.Below(kMaxSize))
             : static_cast<uint16_t>(std::min<unsigned>(1u << (flags & kSizeMask), kMaxSize));
  QueueConfig config{.size = queue_size, .ready = true};
  if (flags & kRawRings) {
    config.desc_table = input.Below(kHighEnd + 0x100);
    config.avail_ring = input.Below(kHighEnd + 0x100);
    config.used_ring = input.Below(kHighEnd + 0x100);
  } else if (packed) {
    config.desc_table = 0;
    config.avail_ring = kPackedDescSize * queue_size;           // driver event suppression
    config.used_ring = config.avail_ring + kEventSuppressSize;  // device event suppression
  } else {
    config.desc_table = 0;
    config.avail_ring = 16ull * queue_size;
    config.used_ring = (config.avail_ring + 6 + 2ull * queue_size + 3) & ~3ull;
  }
  // Past its 16 bytes the op stream reads zeroes: pop, consume, complete.
  const std::span<const uint8_t> op_bytes = input.TakeBytes(kOpBytes);
  FuzzInput ops(op_bytes.data(), op_bytes.size());

  auto mem = skiff::FakeGuestMemory::WithRegions({{0, kLowEnd}, {kHighBase, kHighEnd - kHighBase}});
  std::span<const uint8_t> image = input.TakeRest();
  const size_t low = std::min<size_t>(image.size(), kLowEnd);
  std::memcpy(mem.host(0), image.data(), low);
  const size_t high = std::min<size_t>(image.size() - low, kHighEnd - kHighBase);
  std::memcpy(mem.host(kHighBase), image.data() + low, high);

  const QueueFeatures features{.indirect = (flags & kIndirect) != 0,
                               .event_idx = (flags & kEventIdx) != 0,
                               .packed = packed};
  auto queue = Virtqueue::Create(config, kMaxSize, features, mem.memory());
  if (!queue.ok()) return 0;
  Harness harness(mem, *queue, ops);
  // A bounded number of steps: more pops than the ring can legally hold.
  for (int step = 0; step < 2 * queue_size + 4; ++step) {
    if (!harness.Step()) return 0;
  }
  harness.Finish();
  return 0;
}
