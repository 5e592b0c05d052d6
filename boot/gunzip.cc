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
  // Whole streams inflate into one byte more than allowed: reaching it
  // proves the stream too large without inflating the rest.
  const uint64_t cap = mode == Mode::kPrefix || limit == std::numeric_limits<uint64_t>::max()
                           ? limit
                           : limit + 1;
  std::vector<uint8_t> out;
  // Grow in steps; z.avail_in/avail_out are 32-bit, so feed input in chunks.
  constexpr uint64_t kStep = 4u << 20;
  size_t consumed = 0;
  while (out.size() < cap) {
    if (z.avail_in == 0 && consumed < data.size()) {
      const size_t chunk = std::min<size_t>(data.size() - consumed,
                                            std::numeric_limits<uInt>::max());
      z.next_in = const_cast<Bytef*>(data.data() + consumed);
      z.avail_in = static_cast<uInt>(chunk);
      consumed += chunk;
    }
    const size_t old = out.size();
    const size_t grow = static_cast<size_t>(std::min<uint64_t>(kStep, cap - old));
    out.resize(old + grow);
    z.next_out = out.data() + old;
    z.avail_out = static_cast<uInt>(grow);
    const int r = inflate(&z, Z_NO_FLUSH);
    out.resize(old + grow - z.avail_out);
    if (r == Z_STREAM_END) return out;
    if (r == Z_OK) continue;
    if (r == Z_BUF_ERROR && z.avail_in == 0 && consumed == data.size()) {
      return absl::InvalidArgumentError("gzip: data is truncated");
    }
    if (r == Z_BUF_ERROR) continue;  // output was full; the loop grows it
    return absl::InvalidArgumentError(
        absl::StrFormat("gzip: corrupt data (%s)", z.msg != nullptr ? z.msg : "zlib error"));
  }
  if (mode == Mode::kWhole) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "gzip: decompresses to more than %d bytes (the limit here)", limit));
  }
  return out;
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
