// virtio-blk as a hostile driver sees it: requests whose headers, types,
// sectors, segment lists and buffer layouts come from the input, posted in
// rounds on a real split ring and run by the real device (VirtioBlk over a
// DiskFile on a memfd), exactly as the event loop would run them.
//
// A shadow copy of the disk follows every request the device completes, so
// beyond "no crash" the target checks what the device did:
//  - each posted chain completes once, in order, with a status of OK,
//    IOERR or UNSUPP, a used length of data written + the status byte, no
//    more than the chain's writable bytes;
//  - IN/OUT/GET_ID/FLUSH/unknown types get the status the spec demands
//    (well-formed and in range: OK; misaligned, past the end or on a
//    read-only disk: IOERR; unknown: UNSUPP), and so do discard and
//    write-zeroes segment lists;
//  - a successful read returns the shadow's bytes, a write or write-zeroes
//    changes exactly its sectors; at the end the disk file equals the
//    shadow (discarded ranges excepted), and its size never changes.
#include <endian.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/block/disk_options.h"
#include "devices/virtio/blk.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/virtqueue_builder.h"
#include "vmm/event_loop.h"
#include "vmm/unique_fd.h"

namespace skiff::virtio {
namespace {

using fuzz::FuzzInput;
using testing::VirtqueueBuilder;
using Buf = VirtqueueBuilder::Buf;

constexpr uint64_t kRamSize = 0x40000;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kDataBase = 0x4000;  // buffers and indirect tables from here
constexpr uint64_t kSector = 512;
constexpr int kMaxRounds = 4;
constexpr int kMaxPassesPerRound = 8;  // a round holds at most 256 requests; a pass does 64
constexpr uint64_t Bit(unsigned n) { return 1ull << n; }
constexpr unsigned kRingIndirectDesc = 28;
constexpr unsigned kRingEventIdx = 29;

class FakeInterrupt : public VirtioInterrupt {
 public:
  void NotifyQueue(uint16_t) override {}
  void NotifyConfigChange() override {}
  void NeedsReset() override { needs_reset = true; }
  bool needs_reset = false;
};

// The disk as the model believes it to be; nullopt bytes were discarded
// (their contents are unspecified afterwards).
using Shadow = std::vector<std::optional<uint8_t>>;

struct Posted {
  uint32_t type = 0;
  uint64_t sector = 0;
  std::vector<Buf> bufs;          // in chain order
  std::vector<uint8_t> readable;  // the readable bytes, as posted
  uint64_t writable_bytes = 0;
  bool must_fail = false;  // a chain the device has to refuse
};

// Bump allocation of guest buffers; never reused within one input, so no
// two buffers overlap and the model may trust what it posted.
class Allocator {
 public:
  std::optional<uint64_t> Take(uint64_t bytes, uint64_t align = 1) {
    const uint64_t at = (next_ + align - 1) & ~(align - 1);
    if (bytes > kRamSize || at > kRamSize - bytes) return std::nullopt;
    next_ = at + bytes;
    return at;
  }

 private:
  uint64_t next_ = kDataBase;
};

class Harness {
 public:
  Harness(FuzzInput& in, uint64_t disk_bytes, bool readonly, uint64_t features)
      : in_(in), readonly_(readonly), features_(features), disk_bytes_(disk_bytes) {}

  // Makes the disk, the device and the queue; false when the input asked
  // for something the device rightly refuses.
  bool SetUp() {
    disk_fd_ = UniqueFd(::memfd_create("fuzz-disk", MFD_CLOEXEC));
    FUZZ_CHECK(disk_fd_, "memfd_create failed");
    std::vector<uint8_t> initial(disk_bytes_);
    for (uint64_t i = 0; i < initial.size(); ++i)
      initial[i] = static_cast<uint8_t>(i * 7 + i / 512);
    FUZZ_CHECK(::pwrite(disk_fd_.get(), initial.data(), initial.size(), 0) ==
                   static_cast<ssize_t>(initial.size()),
               "memfd write failed");
    // The device sees whole sectors only; the tail is never touched.
    capacity_ = disk_bytes_ / kSector;
    shadow_.assign(initial.begin(), initial.end());

    block::DiskOptions options;
    options.path = "/proc/self/fd/" + std::to_string(disk_fd_.get());
    options.readonly = readonly_;
    const std::span<const uint8_t> serial = in_.TakeBytes(in_.Below(24));
    options.serial.assign(serial.begin(), serial.end());
    auto blk = VirtioBlk::Create(options);
    if (!blk.ok()) return false;  // e.g. a serial that is too long or not printable
    blk_ = *blk;
    id_.fill(0);
    std::copy(options.serial.begin(), options.serial.end(), id_.begin());

    auto loop = EventLoop::Create();
    FUZZ_CHECK(loop.ok(), "EventLoop::Create: %s", loop.status().message());
    loop_ = *std::move(loop);
    notify_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));

    queue_size_ = static_cast<uint16_t>(1u << in_.Below(9));
    ring_.emplace(mem_, queue_size_, kRingBase);
    features_ &= blk_->device_features();
    ActivationContext context;
    context.memory = mem_.memory();
    context.features = features_;
    context.queues.push_back(ActivatedQueue{ring_->config(), notify_.get()});
    context.interrupt = interrupt_;
    context.event_loop = loop_.get();
    absl::Status activated = blk_->Activate(std::move(context));
    FUZZ_CHECK(activated.ok(), "activation with offered features failed: %s", activated.message());
    return true;
  }

  // Posts a round of requests, runs the device and checks each completion.
  // False when the device stopped (NEEDS_RESET) or the input ran out.
  bool Round() {
    std::map<uint16_t, Posted> posted;
    std::vector<uint16_t> order;
    uint32_t slots = queue_size_;
    while (!in_.empty() && order.size() < queue_size_ && slots > 0) {
      std::optional<std::pair<uint16_t, Posted>> request = PostRequest(slots);
      if (!request) break;
      order.push_back(request->first);
      posted[request->first] = std::move(request->second);
    }
    if (order.empty()) return false;

    for (int pass = 0; pass < kMaxPassesPerRound; ++pass) {
      blk_->ProcessQueue();
      if (interrupt_->needs_reset || Completed() == order.size()) break;
    }
    // Requests complete in order: check every one the device completed.
    const uint16_t completed = Completed();
    FUZZ_CHECK(completed <= order.size(), "%u completions for %u requests", completed,
               order.size());
    for (uint16_t i = 0; i < completed; ++i) {
      const auto used = ring_->used(used_seen_++);
      FUZZ_CHECK(used.id == order[i], "used entry %u is head %u, posted head %u", i, used.id,
                 order[i]);
      const Posted& p = posted.at(order[i]);
      FUZZ_CHECK(!p.must_fail, "the device completed a chain it had to refuse (head %u)", used.id);
      Check(p, used.len);
    }
    if (interrupt_->needs_reset) {
      // Only for the first chain that deserved it, right after the last
      // completion.
      FUZZ_CHECK(completed < order.size() && posted.at(order[completed]).must_fail,
                 "NEEDS_RESET after %u of %u requests, on a valid chain", completed, order.size());
      return false;
    }
    FUZZ_CHECK(completed == order.size(), "%u of %u requests completed", completed, order.size());
    return true;
  }

  void CheckDisk() {
    struct stat st;
    FUZZ_CHECK(
        ::fstat(disk_fd_.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) == disk_bytes_,
        "the disk file changed size");
    std::vector<uint8_t> now(disk_bytes_);
    FUZZ_CHECK(
        ::pread(disk_fd_.get(), now.data(), now.size(), 0) == static_cast<ssize_t>(now.size()),
        "memfd read failed");
    for (uint64_t i = 0; i < now.size(); ++i) {
      FUZZ_CHECK(!shadow_[i] || *shadow_[i] == now[i], "disk byte %u is 0x%x, expected 0x%x", i,
                 now[i], *shadow_[i]);
    }
  }

 private:
  uint16_t Completed() const { return static_cast<uint16_t>(ring_->used_idx() - used_seen_); }

  uint64_t FuzzSector() {
    switch (in_.Below(5)) {
      case 0:
        return 0;
      case 1:
        return capacity_ - in_.Below(4);  // near the end; wraps when tiny
      case 2:
        return in_.Take<uint64_t>();
      default:
        return in_.Below(capacity_ + 2);
    }
  }
  uint32_t FuzzLength() {
    switch (in_.Below(4)) {
      case 0:
        return static_cast<uint32_t>(in_.Below(0x801));  // odd sizes
      case 1:
        return 0;
      default:
        return static_cast<uint32_t>(kSector * in_.Below(9));
    }
  }

  // One request as a chain: header (maybe short, maybe split), data
  // buffers, status. nullopt when guest RAM or the ring is full.
  std::optional<std::pair<uint16_t, Posted>> PostRequest(uint32_t& slots) {
    static constexpr uint32_t kTypes[] = {VIRTIO_BLK_T_IN,      VIRTIO_BLK_T_OUT,
                                          VIRTIO_BLK_T_FLUSH,   VIRTIO_BLK_T_GET_ID,
                                          VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES};
    Posted p;
    const uint8_t kind = in_.Take<uint8_t>();
    p.type = kind < 240 ? kTypes[kind % 6] : in_.Take<uint32_t>();
    p.sector = FuzzSector();
    const uint8_t shape = in_.Take<uint8_t>();

    std::vector<uint8_t> header(16);
    const uint32_t type_le = htole32(p.type);
    const uint64_t sector_le = htole64(p.sector);
    std::memcpy(&header[0], &type_le, 4);
    std::memcpy(&header[8], &sector_le, 8);
    if (shape & 0x01) header.resize(in_.Below(16));  // a short header
    std::vector<std::vector<uint8_t>> readable_parts;
    if ((shape & 0x02) && header.size() > 1) {  // split across two buffers
      const size_t cut = 1 + in_.Below(header.size() - 1);
      readable_parts.emplace_back(header.begin(), header.begin() + cut);
      readable_parts.emplace_back(header.begin() + cut, header.end());
    } else if (!header.empty()) {
      readable_parts.push_back(header);
    }

    std::vector<uint32_t> writable_lengths;
    const uint64_t pieces = in_.Below(4);
    if (p.type == VIRTIO_BLK_T_DISCARD || p.type == VIRTIO_BLK_T_WRITE_ZEROES) {
      std::vector<uint8_t> segments;
      for (uint64_t i = 0; i < pieces + (shape & 0x04 ? 1 : 0); ++i) {
        const uint64_t sector = htole64(FuzzSector());
        const uint32_t count =
            htole32(in_.TakeBool() ? static_cast<uint32_t>(in_.Below(capacity_ + 2))
                                   : in_.Take<uint32_t>());
        const uint32_t flags =
            htole32(in_.Below(8) == 0 ? in_.Take<uint32_t>() : static_cast<uint32_t>(in_.Below(2)));
        const size_t at = segments.size();
        segments.resize(at + 16);
        std::memcpy(&segments[at], &sector, 8);
        std::memcpy(&segments[at + 8], &count, 4);
        std::memcpy(&segments[at + 12], &flags, 4);
      }
      if (shape & 0x08) segments.resize(in_.Below(segments.size() + 1));  // ragged
      if (!segments.empty()) readable_parts.push_back(std::move(segments));
    } else {
      // The data direction follows the type, unless the input flips it.
      const bool out = (p.type == VIRTIO_BLK_T_OUT) != ((shape & 0x10) != 0);
      for (uint64_t i = 0; i < pieces; ++i) {
        const uint32_t len = FuzzLength();
        if (len == 0) continue;
        if (out) {
          std::vector<uint8_t> data(len);
          const auto from_input = in_.TakeBytes(len);
          std::copy(from_input.begin(), from_input.end(), data.begin());
          for (size_t j = from_input.size(); j < len; ++j) data[j] = static_cast<uint8_t>(j ^ 0x3c);
          readable_parts.push_back(std::move(data));
        } else {
          writable_lengths.push_back(len);
        }
      }
    }
    // The status byte: usually one byte; sometimes inside a larger last
    // buffer; sometimes missing (the device must then give up).
    const uint64_t status_shape = in_.Below(8);
    if (status_shape == 0) {
      if (writable_lengths.empty()) {
        // no writable byte at all
      } else {
        writable_lengths.back() += 1;
      }
    } else if (status_shape == 1) {
      writable_lengths.push_back(1 + static_cast<uint32_t>(in_.Below(64)));
    } else {
      writable_lengths.push_back(1);
    }

    for (const auto& part : readable_parts) {
      std::optional<uint64_t> at = alloc_.Take(part.size());
      if (!at) return std::nullopt;
      FUZZ_CHECK(mem_.memory().Write(*at, part).ok(), "harness: buffer outside RAM");
      p.bufs.push_back({*at, static_cast<uint32_t>(part.size()), false});
      p.readable.insert(p.readable.end(), part.begin(), part.end());
    }
    for (uint32_t len : writable_lengths) {
      std::optional<uint64_t> at = alloc_.Take(len);
      if (!at) return std::nullopt;
      // Recognisable junk, so a status or data byte left unwritten shows.
      std::vector<uint8_t> junk(len, 0xee);
      FUZZ_CHECK(mem_.memory().Write(*at, junk).ok(), "harness: buffer outside RAM");
      p.bufs.push_back({*at, len, true});
      p.writable_bytes += len;
    }
    if (p.bufs.empty()) return std::nullopt;
    // The device parses whatever the first 16 readable bytes are (a short
    // header runs into the data); so does the model.
    if (p.readable.size() >= 16) {
      uint32_t type;
      uint64_t sector;
      std::memcpy(&type, &p.readable[0], 4);
      std::memcpy(&sector, &p.readable[8], 8);
      p.type = le32toh(type);
      p.sector = le64toh(sector);
    }

    const bool indirect = (features_ & Bit(kRingIndirectDesc)) && (shape & 0x20);
    uint16_t head;
    // Chains the device must refuse (it then reports NEEDS_RESET): nowhere
    // to put the status, or an indirect table longer than the queue.
    p.must_fail = p.writable_bytes == 0 || (indirect && p.bufs.size() > queue_size_);
    if (indirect) {
      std::optional<uint64_t> table = alloc_.Take(16 * p.bufs.size(), 16);
      if (!table || slots < 1) return std::nullopt;
      head = ring_->AddIndirectChain(*table, p.bufs);
      slots -= 1;
    } else {
      if (p.bufs.size() > slots) return std::nullopt;
      head = ring_->AddChain(p.bufs);
      slots -= static_cast<uint32_t>(p.bufs.size());
    }
    return std::make_pair(head, std::move(p));
  }

  bool InRange(uint64_t sector, uint64_t bytes) const {
    const uint64_t sectors = bytes / kSector;
    return sector <= capacity_ && sectors <= capacity_ - sector;
  }

  uint8_t ExpectedSegmentsStatus(const Posted& p, bool write_zeroes) const {
    const bool negotiated =
        features_ & Bit(write_zeroes ? VIRTIO_BLK_F_WRITE_ZEROES : VIRTIO_BLK_F_DISCARD);
    if (!negotiated) return VIRTIO_BLK_S_UNSUPP;
    if (readonly_) return VIRTIO_BLK_S_IOERR;
    const uint64_t bytes = p.readable.size() - 16;
    const uint64_t max_segments = write_zeroes ? 1 : 32;
    if (bytes == 0 || bytes % 16 != 0 || bytes / 16 > max_segments) return VIRTIO_BLK_S_IOERR;
    const uint32_t known_flags = write_zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    for (uint64_t at = 16; at < p.readable.size(); at += 16) {
      uint32_t flags;
      std::memcpy(&flags, &p.readable[at + 12], 4);
      if (le32toh(flags) & ~known_flags) return VIRTIO_BLK_S_UNSUPP;
    }
    const uint64_t max_sectors = write_zeroes ? (64ull << 20) / 512 : 1ull << 22;
    for (uint64_t at = 16; at < p.readable.size(); at += 16) {
      uint64_t sector;
      uint32_t count;
      std::memcpy(&sector, &p.readable[at], 8);
      std::memcpy(&count, &p.readable[at + 8], 4);
      if (le32toh(count) > max_sectors || !InRange(le64toh(sector), le32toh(count) * kSector)) {
        return VIRTIO_BLK_S_IOERR;
      }
    }
    return VIRTIO_BLK_S_OK;
  }

  // What the spec and Skiff's documented limits say this request must get.
  uint8_t ExpectedStatus(const Posted& p) const {
    if (p.readable.size() < 16) return VIRTIO_BLK_S_IOERR;  // no complete header
    const uint64_t in_len = p.writable_bytes - 1;
    switch (p.type) {
      case VIRTIO_BLK_T_IN:
        return in_len % kSector == 0 && InRange(p.sector, in_len) ? VIRTIO_BLK_S_OK
                                                                  : VIRTIO_BLK_S_IOERR;
      case VIRTIO_BLK_T_OUT: {
        const uint64_t len = p.readable.size() - 16;
        if (readonly_) return VIRTIO_BLK_S_IOERR;
        return len % kSector == 0 && InRange(p.sector, len) ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
      }
      case VIRTIO_BLK_T_FLUSH:
      case VIRTIO_BLK_T_GET_ID:
        return VIRTIO_BLK_S_OK;
      case VIRTIO_BLK_T_DISCARD:
        return ExpectedSegmentsStatus(p, /*write_zeroes=*/false);
      case VIRTIO_BLK_T_WRITE_ZEROES:
        return ExpectedSegmentsStatus(p, /*write_zeroes=*/true);
      default:
        return VIRTIO_BLK_S_UNSUPP;
    }
  }

  // The writable bytes of a completed chain, in order.
  std::vector<uint8_t> WritableBytes(const Posted& p) {
    std::vector<uint8_t> bytes;
    for (const Buf& b : p.bufs) {
      if (!b.writable) continue;
      const uint8_t* host = mem_.host(b.addr);
      bytes.insert(bytes.end(), host, host + b.len);
    }
    return bytes;
  }

  void Check(const Posted& p, uint32_t used_len) {
    const std::vector<uint8_t> written = WritableBytes(p);
    const uint8_t status = written.back();
    const uint8_t expected = ExpectedStatus(p);
    FUZZ_CHECK(status == expected, "request type %u sector %u: status %u, expected %u", p.type,
               p.sector, status, expected);
    const uint64_t in_len = p.writable_bytes - 1;
    uint64_t data_written = 0;
    if (status == VIRTIO_BLK_S_OK && p.type == VIRTIO_BLK_T_IN) data_written = in_len;
    if (status == VIRTIO_BLK_S_OK && p.type == VIRTIO_BLK_T_GET_ID) {
      data_written = std::min<uint64_t>(in_len, kBlkIdBytes);
    }
    FUZZ_CHECK(used_len == data_written + 1, "used length %u, expected %u", used_len,
               data_written + 1);
    FUZZ_CHECK(used_len <= p.writable_bytes, "used length %u past %u writable bytes", used_len,
               p.writable_bytes);
    if (status != VIRTIO_BLK_S_OK) return;

    const uint64_t offset = p.sector * kSector;
    switch (p.type) {
      case VIRTIO_BLK_T_IN:
        for (uint64_t i = 0; i < in_len; ++i) {
          const auto& known = shadow_[offset + i];
          FUZZ_CHECK(!known || *known == written[i],
                     "read of sector %u: byte %u is 0x%x, disk has 0x%x", p.sector, i, written[i],
                     *known);
        }
        break;
      case VIRTIO_BLK_T_OUT:
        for (uint64_t i = 16; i < p.readable.size(); ++i) shadow_[offset + i - 16] = p.readable[i];
        break;
      case VIRTIO_BLK_T_GET_ID:
        FUZZ_CHECK(std::equal(written.begin(), written.begin() + data_written, id_.begin()),
                   "GET_ID returned something other than the serial");
        break;
      case VIRTIO_BLK_T_DISCARD:
      case VIRTIO_BLK_T_WRITE_ZEROES:
        for (uint64_t at = 16; at < p.readable.size(); at += 16) {
          uint64_t sector;
          uint32_t count;
          std::memcpy(&sector, &p.readable[at], 8);
          std::memcpy(&count, &p.readable[at + 8], 4);
          const uint64_t begin = le64toh(sector) * kSector;
          const uint64_t end = begin + uint64_t{le32toh(count)} * kSector;
          for (uint64_t i = begin; i < end; ++i) {
            if (p.type == VIRTIO_BLK_T_DISCARD) {
              shadow_[i].reset();
            } else {
              shadow_[i] = 0;
            }
          }
        }
        break;
      default:
        break;
    }
  }

  FuzzInput& in_;
  const bool readonly_;
  uint64_t features_;
  const uint64_t disk_bytes_;
  uint64_t capacity_ = 0;
  UniqueFd disk_fd_;
  Shadow shadow_;
  std::array<uint8_t, kBlkIdBytes> id_{};
  FakeGuestMemory mem_{kRamSize};
  Allocator alloc_;
  std::unique_ptr<EventLoop> loop_;  // outlives blk_, which unregisters on reset
  UniqueFd notify_;
  std::shared_ptr<FakeInterrupt> interrupt_ = std::make_shared<FakeInterrupt>();
  std::shared_ptr<VirtioBlk> blk_;
  std::optional<VirtqueueBuilder> ring_;
  uint16_t queue_size_ = 1;
  uint16_t used_seen_ = 0;
};

}  // namespace
}  // namespace skiff::virtio

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace skiff::virtio;
  skiff::fuzz::QuietLogs();
  FuzzInput in(data, size);
  const uint8_t setup = in.Take<uint8_t>();
  const bool readonly = setup & 0x01;
  // 1-64 sectors, sometimes with a ragged tail the device must never touch.
  const uint64_t disk_bytes = 512 * (1 + in.Below(64)) + ((setup & 0x02) ? in.Below(512) : 0);
  // Which optional features the driver accepts; the harness keeps only
  // those the device offered.
  uint64_t features = Bit(VIRTIO_F_VERSION_1);
  const uint8_t accepted = in.Take<uint8_t>();
  if (accepted & 0x01) features |= Bit(VIRTIO_BLK_F_FLUSH);
  if (accepted & 0x02) features |= Bit(VIRTIO_BLK_F_DISCARD);
  if (accepted & 0x04) features |= Bit(VIRTIO_BLK_F_WRITE_ZEROES);
  if (accepted & 0x08) features |= Bit(kRingIndirectDesc);
  if (accepted & 0x10) features |= Bit(kRingEventIdx);
  if (accepted & 0x20) features |= Bit(VIRTIO_BLK_F_SEG_MAX) | Bit(VIRTIO_BLK_F_BLK_SIZE);

  Harness harness(in, disk_bytes, readonly, features);
  if (!harness.SetUp()) return 0;
  for (int round = 0; round < kMaxRounds; ++round) {
    if (!harness.Round()) break;
  }
  harness.CheckDisk();
  return 0;
}
