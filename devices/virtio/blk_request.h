// Executes one virtio-blk request (virtio 1.2 §5.2.6) from a validated
// descriptor chain against a BlockBackend. Separate from the device so the
// parsing of hostile requests is small and testable on its own.
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "devices/block/block_backend.h"
#include "devices/virtio/queue.h"
#include "vmm/guest_memory.h"

namespace skiff::virtio {

// What the device advertises in its configuration space and enforces on
// every request: a guest that honours seg_max and size_max can never hit
// kMaxRequestBytes (254 * 256 KiB < 64 MiB), so the cap only stops hostile
// requests from holding the I/O thread.
struct BlkLimits {
  static constexpr uint32_t kSegMax = 254;  // queue size 256 minus header and status
  static constexpr uint32_t kSizeMax = 256 * 1024;
  static constexpr uint64_t kMaxRequestBytes = 64ull << 20;
  // Discards only free metadata (punched holes), so they may be large.
  static constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per segment
  static constexpr uint32_t kMaxDiscardSeg = 32;
  // Write-zeroes may fall back to writing zeroes: no more than one request.
  static constexpr uint32_t kMaxWriteZeroesSectors = kMaxRequestBytes / 512;
  static constexpr uint32_t kMaxWriteZeroesSeg = 1;
};

inline constexpr size_t kBlkIdBytes = 20;  // VIRTIO_BLK_ID_BYTES

struct BlkCompletion {
  uint8_t status = 0;       // VIRTIO_BLK_S_*
  uint32_t used_len = 0;    // bytes written into the chain, status included
  uint64_t data_bytes = 0;  // moved to or from the back-end (per-pass budget)
};

class BlkRequestHandler {
 public:
  // `features` is what the driver accepted. Without VIRTIO_BLK_F_FLUSH the
  // device is write-through (§5.2.6.4): every write is made durable before
  // its status is written.
  BlkRequestHandler(block::BlockBackend& backend, std::array<uint8_t, kBlkIdBytes> id,
                    uint64_t features);

  // Executes `chain` and writes its status byte (the last writable byte).
  // Bad requests complete with IOERR or UNSUPP; the only error is a chain
  // with no writable byte, which has nowhere for a status: the device must
  // then report NEEDS_RESET.
  absl::StatusOr<BlkCompletion> Execute(const GuestMemory& memory, const DescriptorChain& chain);

 private:
  struct Request;
  uint8_t Dispatch(Request& request);
  uint8_t DoRead(Request& request, uint64_t sector);
  uint8_t DoWrite(Request& request, uint64_t sector);
  uint8_t DoFlush();
  uint8_t DoGetId(Request& request);
  uint8_t DoDiscardOrWriteZeroes(Request& request, bool write_zeroes);
  // True when [sector, sector + bytes/512) lies within the disk.
  bool InRange(uint64_t sector, uint64_t bytes) const;
  // Host failures are logged (the first few at WARN: a guest can repeat them).
  void LogHostError(const absl::Status& status);

  block::BlockBackend& backend_;
  std::array<uint8_t, kBlkIdBytes> id_;
  uint64_t capacity_sectors_;
  bool writethrough_;
  bool discard_negotiated_;
  bool write_zeroes_negotiated_;
  int host_errors_logged_ = 0;
};

}  // namespace skiff::virtio
