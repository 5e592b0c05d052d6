#include "boot/gunzip.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_format.h"

namespace skiff::boot {
namespace {

// zlib's z_stream with inflateEnd guaranteed (RAII).
class Inflater {
 public:
  Inflater() = default;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  ~Inflater() {
    if (ready_) inflateEnd(&stream_);
  }
  absl::Status Init() {
    // 16 + MAX_WBITS: expect a gzip wrapper (header and CRC-32 trailer).
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) {
      return absl::InternalError("gzip: zlib inflateInit2 failed");
    }
    ready_ = true;
    return absl::OkStatus();
  }
  z_stream& stream() { return stream_; }

 private:
  z_stream stream_{};
  bool ready_ = false;
};

enum class Mode { kWhole, kPrefix };

absl::StatusOr<std::vector<uint8_t>> Inflate(std::span<const uint8_t> data, uint64_t limit,
                                             Mode mode) {
  if (!IsGzip(data)) return absl::InvalidArgumentError("not gzip data (no 1f 8b 08 magic)");
  Inflater inflater;
  if (absl::Status s = inflater.Init(); !s.ok()) return s;
  z_stream& z = inflater.stream();
  std::vector<uint8_t> out;
  // Grow in steps; z.avail_in/avail_out are 32-bit, so feed input in chunks.
  constexpr uint64_t kStep = 4u << 20;
  size_t consumed = 0;
  while (true) {
    const bool full = out.size() >= limit;
    if (full && mode == Mode::kPrefix) return out;
    if (z.avail_in == 0 && consumed < data.size()) {
      const size_t chunk = std::min<size_t>(data.size() - consumed,
                                            std::numeric_limits<uInt>::max());
      z.next_in = const_cast<Bytef*>(data.data() + consumed);
      z.avail_in = static_cast<uInt>(chunk);
      consumed += chunk;
    }
    const size_t old = out.size();
    // A whole stream that has filled `limit` bytes inflates into one spare
    // byte: getting it proves the stream too large, without inflating the
    // rest or growing the buffer past the limit.
    uint8_t past_limit = 0;
    size_t room = 1;
    if (full) {
      z.next_out = &past_limit;
    } else {
      room = static_cast<size_t>(std::min<uint64_t>(kStep, limit - old));
      if (out.capacity() < old + room) {
        // Double, as resize() would, but never past the limit: left to
        // resize(), a stream of just under 512 MiB would get a 1 GiB buffer.
        out.reserve(static_cast<size_t>(
            std::min<uint64_t>(limit, std::max<uint64_t>(2 * out.capacity(), old + room))));
      }
      out.resize(old + room);
      z.next_out = out.data() + old;
    }
    z.avail_out = static_cast<uInt>(room);
    const int r = inflate(&z, Z_NO_FLUSH);
    if (full && z.avail_out == 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "gzip: decompresses to more than %d bytes (the limit here)", limit));
    }
    if (!full) out.resize(old + room - z.avail_out);
    if (r == Z_STREAM_END) return out;
    if (r == Z_OK) continue;
    if (r == Z_BUF_ERROR && z.avail_in == 0 && consumed == data.size()) {
      return absl::InvalidArgumentError("gzip: data is truncated");
    }
    if (r == Z_BUF_ERROR) continue;  // output was full; the loop grows it
    return absl::InvalidArgumentError(
        absl::StrFormat("gzip: corrupt data (%s)", z.msg != nullptr ? z.msg : "zlib error"));
  }
}

}  // namespace

bool IsGzip(std::span<const uint8_t> data) {
  return data.size() >= 3 && data[0] == 0x1f && data[1] == 0x8b && data[2] == 0x08;
}

absl::StatusOr<std::vector<uint8_t>> Gunzip(std::span<const uint8_t> data, uint64_t max_size) {
  return Inflate(data, max_size, Mode::kWhole);
}

absl::StatusOr<std::vector<uint8_t>> GunzipPrefix(std::span<const uint8_t> data, uint64_t size) {
  return Inflate(data, size, Mode::kPrefix);
}

}  // namespace skiff::boot
