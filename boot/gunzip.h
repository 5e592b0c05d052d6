// gzip decompression with a hard bound on the output, for Image.gz kernels
// (an arm64 bootloader decompresses the kernel; Documentation/arch/arm64/
// booting.rst §3). The file is untrusted: a small file may claim or inflate
// to anything, so output beyond `max_size` is an error, never an allocation.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::boot {

// True when `data` starts with the gzip magic (1f 8b) and method deflate.
bool IsGzip(std::span<const uint8_t> data);

// The whole decompressed stream (the first gzip member). Fails when it is
// corrupt, truncated, or longer than `max_size` bytes. Never allocates more
// than `max_size` bytes for the output (peak memory is about max_size: a
// 600 MiB stream refused at 512 MiB peaks at 519 MiB resident).
absl::StatusOr<std::vector<uint8_t>> Gunzip(std::span<const uint8_t> data, uint64_t max_size);

// At most the first `size` decompressed bytes (fewer if the stream is
// shorter), without inflating the rest.
absl::StatusOr<std::vector<uint8_t>> GunzipPrefix(std::span<const uint8_t> data, uint64_t size);

}  // namespace skiff::boot
