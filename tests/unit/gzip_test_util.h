// gzip-compresses bytes for tests (zlib with the gzip wrapper).
#pragma once

#include <zlib.h>

#include <cstdint>
#include <span>
#include <vector>

namespace skiff::testing {

inline std::vector<uint8_t> GzipForTest(std::span<const uint8_t> data) {
  z_stream z{};
  deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::vector<uint8_t> out(deflateBound(&z, data.size()) + 64);
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace skiff::testing
