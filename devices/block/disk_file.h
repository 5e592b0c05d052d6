// A raw disk image (a regular file or a host block device) behind
// BlockBackend: preadv/pwritev, fdatasync and fallocate on one fd.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "devices/block/block_backend.h"
#include "devices/block/disk_options.h"
#include "vmm/unique_fd.h"

namespace skiff::block {

class DiskFile final : public BlockBackend {
 public:
  // Opens and checks the image, then takes an advisory flock (shared when
  // read-only, exclusive otherwise) so two VMs cannot write one image.
  // Every error is one line naming the file and, where the operator can fix
  // it, how (readonly=on, drop direct=on). A size that is not a multiple of
  // the block size is rounded down with a warning: the tail is never read
  // or written, and refusing would reject images that other tools accept.
  static absl::StatusOr<std::unique_ptr<DiskFile>> Open(const DiskOptions& options);

  uint64_t size() const override { return size_; }
  bool readonly() const override { return readonly_; }
  uint32_t block_size() const override { return block_size_; }
  uint32_t discard_granularity() const override { return discard_granularity_; }
  const std::string& name() const override { return path_; }

  // Not thread-safe: one caller at a time (the device serialises requests).
  absl::Status ReadAt(uint64_t offset, std::span<const iovec> buffers) override;
  absl::Status WriteAt(uint64_t offset, std::span<const iovec> buffers) override;
  absl::Status Flush() override;
  absl::Status Discard(uint64_t offset, uint64_t length) override;
  absl::Status WriteZeroes(uint64_t offset, uint64_t length, bool may_unmap) override;

 private:
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };

  DiskFile(UniqueFd fd, std::string path, uint64_t size, bool readonly, uint32_t block_size,
           uint32_t discard_granularity)
      : fd_(std::move(fd)),
        path_(std::move(path)),
        size_(size),
        readonly_(readonly),
        block_size_(block_size),
        discard_granularity_(discard_granularity) {}

  absl::Status CheckWritable(const char* what) const;
  absl::Status CheckRange(const char* what, uint64_t offset, uint64_t length) const;
  // fallocate(mode | KEEP_SIZE); false with OK status when the host
  // filesystem does not support `mode` (remembered in *supported).
  absl::StatusOr<bool> TryFallocate(int mode, const char* what, uint64_t offset, uint64_t length,
                                    bool* supported);
  // The slow path of WriteZeroes: pwrite from a zeroed, aligned buffer.
  absl::Status WriteZeroBytes(uint64_t offset, uint64_t length);

  UniqueFd fd_;
  std::string path_;
  uint64_t size_;
  bool readonly_;
  uint32_t block_size_;
  uint32_t discard_granularity_;
  bool punch_hole_supported_ = true;  // cleared on the first EOPNOTSUPP
  bool zero_range_supported_ = true;
  std::unique_ptr<uint8_t, FreeDeleter> zero_buffer_;  // kZeroBufferSize bytes, lazily
};

}  // namespace skiff::block
