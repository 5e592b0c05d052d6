// ChainReader and ChainWriter (declared in queue.h): byte streams over a
// validated chain's readable or writable buffers.
//
// Both keep a cursor (buffer index, offset into it). Every operation first
// checks that enough bytes remain, then works on a copy of the cursor and
// commits it only when the whole operation succeeded, so a failure never
// consumes part of the chain.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "devices/virtio/queue.h"
#include "vmm/status_macros.h"

namespace skiff::virtio {
namespace {

uint64_t TotalBytes(const std::vector<Buffer>& buffers) {
  uint64_t total = 0;
  for (const Buffer& buffer : buffers) total += buffer.len;
  return total;
}

// written() is what goes in the used ring's 32-bit len. Chains from Pop
// never hold 4 GiB of writable buffers; a hand-built one might, and then an
// underestimate is what the spec allows (§2.7.8), a wrapped count is not.
uint32_t AddSaturating(uint32_t total, uint64_t bytes) {
  const uint64_t sum = uint64_t{total} + bytes;
  return sum > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(sum);
}

struct Cursor {
  size_t index = 0;     // buffer
  uint32_t offset = 0;  // bytes into it
};

// Moves `cursor` over `bytes` bytes (the caller checked they remain),
// calling visit(gpa, done, length) for each contiguous piece, where `done`
// counts the bytes visited before this piece.
template <typename Visit>
absl::Status Advance(const std::vector<Buffer>& buffers, Cursor& cursor, uint64_t bytes,
                     Visit visit) {
  uint64_t done = 0;
  while (done < bytes) {
    if (cursor.index >= buffers.size()) {
      return absl::InternalError("virtqueue chain: cursor ran past the last buffer");
    }
    const Buffer& buffer = buffers[cursor.index];
    if (cursor.offset >= buffer.len) {
      ++cursor.index;
      cursor.offset = 0;
      continue;
    }
    const uint32_t piece =
        static_cast<uint32_t>(std::min<uint64_t>(buffer.len - cursor.offset, bytes - done));
    uint64_t gpa;
    // Chains from Pop cannot overflow here; hand-built ones might.
    if (__builtin_add_overflow(buffer.addr, uint64_t{cursor.offset}, &gpa)) {
      return absl::OutOfRangeError(absl::StrFormat("virtqueue chain: buffer 0x%x+0x%x overflows",
                                                   buffer.addr, cursor.offset));
    }
    RETURN_IF_ERROR(visit(gpa, done, piece));
    done += piece;
    cursor.offset += piece;
  }
  return absl::OkStatus();
}

absl::Status NotEnough(const char* what, uint64_t wanted, uint64_t remaining) {
  return absl::OutOfRangeError(absl::StrFormat(
      "virtqueue chain: %u bytes wanted but only %u %s bytes remain", wanted, remaining, what));
}

absl::StatusOr<std::vector<std::span<uint8_t>>> Spans(const GuestMemory& memory,
                                                      const std::vector<Buffer>& buffers,
                                                      Cursor cursor, uint64_t bytes) {
  std::vector<std::span<uint8_t>> spans;
  RETURN_IF_ERROR(
      Advance(buffers, cursor, bytes, [&](uint64_t gpa, uint64_t, uint32_t length) -> absl::Status {
        ASSIGN_OR_RETURN(std::span<uint8_t> span, memory.GetSpan(gpa, length));
        spans.push_back(span);
        return absl::OkStatus();
      }));
  return spans;
}

}  // namespace

ChainReader::ChainReader(const GuestMemory& memory, const DescriptorChain& chain)
    : memory_(memory), buffers_(chain.readable), remaining_(TotalBytes(chain.readable)) {}

absl::Status ChainReader::Read(std::span<uint8_t> out) {
  if (out.size() > remaining_) return NotEnough("readable", out.size(), remaining_);
  Cursor cursor{index_, offset_};
  RETURN_IF_ERROR(
      Advance(buffers_, cursor, out.size(), [&](uint64_t gpa, uint64_t done, uint32_t length) {
        return memory_.Read(gpa, out.subspan(done, length));
      }));
  index_ = cursor.index;
  offset_ = cursor.offset;
  remaining_ -= out.size();
  return absl::OkStatus();
}

absl::Status ChainReader::Skip(uint64_t bytes) {
  if (bytes > remaining_) return NotEnough("readable", bytes, remaining_);
  Cursor cursor{index_, offset_};
  RETURN_IF_ERROR(Advance(buffers_, cursor, bytes,
                          [](uint64_t, uint64_t, uint32_t) { return absl::OkStatus(); }));
  index_ = cursor.index;
  offset_ = cursor.offset;
  remaining_ -= bytes;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::span<uint8_t>>> ChainReader::RemainingSpans(
    uint64_t max_bytes) const {
  return Spans(memory_, buffers_, Cursor{index_, offset_}, std::min(max_bytes, remaining_));
}

ChainWriter::ChainWriter(const GuestMemory& memory, const DescriptorChain& chain)
    : memory_(memory), buffers_(chain.writable), remaining_(TotalBytes(chain.writable)) {}

absl::Status ChainWriter::Write(std::span<const uint8_t> in) {
  if (in.size() > remaining_) return NotEnough("writable", in.size(), remaining_);
  Cursor cursor{index_, offset_};
  RETURN_IF_ERROR(
      Advance(buffers_, cursor, in.size(), [&](uint64_t gpa, uint64_t done, uint32_t length) {
        return memory_.Write(gpa, in.subspan(done, length));
      }));
  index_ = cursor.index;
  offset_ = cursor.offset;
  remaining_ -= in.size();
  written_ = AddSaturating(written_, in.size());
  return absl::OkStatus();
}

absl::Status ChainWriter::Skip(uint64_t bytes) {
  if (bytes > remaining_) return NotEnough("writable", bytes, remaining_);
  Cursor cursor{index_, offset_};
  RETURN_IF_ERROR(Advance(buffers_, cursor, bytes,
                          [](uint64_t, uint64_t, uint32_t) { return absl::OkStatus(); }));
  index_ = cursor.index;
  offset_ = cursor.offset;
  remaining_ -= bytes;
  written_ = AddSaturating(written_, bytes);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::span<uint8_t>>> ChainWriter::RemainingSpans(
    uint64_t max_bytes) const {
  return Spans(memory_, buffers_, Cursor{index_, offset_}, std::min(max_bytes, remaining_));
}

}  // namespace skiff::virtio
