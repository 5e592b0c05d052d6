// Where a block device's sectors live. The virtio-blk device speaks only to
// this interface, so tests can put a fake with injected failures (or a sync
// hook) behind a real device, and other back-ends (io_uring, qcow2...) can
// slot in later without touching request parsing.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"

namespace skiff::block {

inline constexpr uint64_t kSectorSize = 512;

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  // Bytes the guest may address: fixed, a multiple of block_size().
  virtual uint64_t size() const = 0;
  virtual bool readonly() const = 0;
  // The guest's logical block size: 512, or more when O_DIRECT needs it.
  virtual uint32_t block_size() const = 0;
  // The granularity at which discards free space (e.g. the filesystem block).
  virtual uint32_t discard_granularity() const = 0;
  // For logs and errors: the image path.
  virtual const std::string& name() const = 0;

  // Fills every byte of `buffers` from [offset, offset + total). The caller
  // has checked the range against size(). Any failure (including end of
  // file) is an error; some buffers may have been filled.
  virtual absl::Status ReadAt(uint64_t offset, std::span<const iovec> buffers) = 0;
  // Writes every byte of `buffers` at `offset`.
  virtual absl::Status WriteAt(uint64_t offset, std::span<const iovec> buffers) = 0;
  // Makes every completed write durable (fdatasync).
  virtual absl::Status Flush() = 0;
  // A hint that the range is no longer needed; the contents read back
  // afterwards are unspecified. OK when the back-end cannot discard.
  virtual absl::Status Discard(uint64_t offset, uint64_t length) = 0;
  // Afterwards the range reads as zeroes; `may_unmap` lets the back-end
  // free the space instead of writing it.
  virtual absl::Status WriteZeroes(uint64_t offset, uint64_t length, bool may_unmap) = 0;
};

}  // namespace skiff::block
