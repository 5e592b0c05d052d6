#include "devices/virtio/blk_request.h"

#include <endian.h>
#include <linux/virtio_blk.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "vmm/log.h"

namespace skiff::virtio {
namespace {

using block::kSectorSize;

constexpr size_t kHeaderBytes = 16;   // struct virtio_blk_outhdr
constexpr size_t kSegmentBytes = 16;  // struct virtio_blk_discard_write_zeroes
// After this many host I/O errors, further ones are logged at debug level:
// a guest can repeat a failing request as fast as it likes.
constexpr int kHostErrorsLoggedLoudly = 8;

uint32_t LoadLe32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return le32toh(v);
}
uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return le64toh(v);
}

std::vector<iovec> ToIovecs(const std::vector<std::span<uint8_t>>& spans) {
  std::vector<iovec> iov;
  iov.reserve(spans.size());
  for (const auto& span : spans) iov.push_back(iovec{span.data(), span.size()});
  return iov;
}

}  // namespace

struct BlkRequestHandler::Request {
  ChainReader reader;
  ChainWriter writer;
  uint64_t in_len = 0;        // writable bytes before the status byte
  uint32_t data_written = 0;  // of those, how many the device filled
  uint64_t data_bytes = 0;
};

BlkRequestHandler::BlkRequestHandler(block::BlockBackend& backend,
                                     std::array<uint8_t, kBlkIdBytes> id, uint64_t features)
    : backend_(backend),
      id_(id),
      capacity_sectors_(backend.size() / kSectorSize),
      writethrough_((features & (1ull << VIRTIO_BLK_F_FLUSH)) == 0),
      discard_negotiated_((features & (1ull << VIRTIO_BLK_F_DISCARD)) != 0),
      write_zeroes_negotiated_((features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)) != 0) {}

absl::StatusOr<BlkCompletion> BlkRequestHandler::Execute(const GuestMemory& memory,
                                                         const DescriptorChain& chain) {
  if (chain.writable_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request (head %u) has no writable byte for its status", chain.head));
  }
  Request request{ChainReader(memory, chain), ChainWriter(memory, chain),
                  chain.writable_bytes - 1u};
  uint8_t status = Dispatch(request);

  // The status is the last writable byte, wherever the data ended.
  absl::Status s = request.writer.Skip(request.in_len - request.data_written);
  if (s.ok()) s = request.writer.Write(std::span<const uint8_t>(&status, 1));
  if (!s.ok()) return s;  // the queue validated the chain: only a bug gets here
  return BlkCompletion{status, request.data_written + 1u, request.data_bytes};
}

uint8_t BlkRequestHandler::Dispatch(Request& request) {
  std::array<uint8_t, kHeaderBytes> header;
  if (request.reader.remaining() < kHeaderBytes || !request.reader.Read(header).ok()) {
    LOG_DEBUG("virtio-blk", "%s: request header shorter than 16 bytes", backend_.name());
    return VIRTIO_BLK_S_IOERR;
  }
  uint32_t type = LoadLe32(&header[0]);
  uint64_t sector = LoadLe64(&header[8]);  // header[4..8) is the unused ioprio
  switch (type) {
    case VIRTIO_BLK_T_IN:
      return DoRead(request, sector);
    case VIRTIO_BLK_T_OUT:
      return DoWrite(request, sector);
    case VIRTIO_BLK_T_FLUSH:
      return DoFlush();
    case VIRTIO_BLK_T_GET_ID:
      return DoGetId(request);
    case VIRTIO_BLK_T_DISCARD:
      if (!discard_negotiated_) return VIRTIO_BLK_S_UNSUPP;
      return DoDiscardOrWriteZeroes(request, /*write_zeroes=*/false);
    case VIRTIO_BLK_T_WRITE_ZEROES:
      if (!write_zeroes_negotiated_) return VIRTIO_BLK_S_UNSUPP;
      return DoDiscardOrWriteZeroes(request, /*write_zeroes=*/true);
    default:
      LOG_DEBUG("virtio-blk", "%s: unsupported request type %u", backend_.name(), type);
      return VIRTIO_BLK_S_UNSUPP;
  }
}

bool BlkRequestHandler::InRange(uint64_t sector, uint64_t bytes) const {
  uint64_t sectors = bytes / kSectorSize;
  if (sector > capacity_sectors_ || sectors > capacity_sectors_ - sector) return false;
  // O_DIRECT back-ends may need more than 512-byte alignment; the guest was
  // told blk_size, so a misaligned request is its error, not the host's.
  uint64_t block = backend_.block_size();
  return (sector * kSectorSize) % block == 0 && bytes % block == 0;
}

uint8_t BlkRequestHandler::DoRead(Request& request, uint64_t sector) {
  uint64_t len = request.in_len;
  if (len % kSectorSize != 0 || len > BlkLimits::kMaxRequestBytes || !InRange(sector, len)) {
    LOG_DEBUG("virtio-blk", "%s: bad read of %d bytes at sector %d", backend_.name(), len, sector);
    return VIRTIO_BLK_S_IOERR;
  }
  if (len == 0) return VIRTIO_BLK_S_OK;
  auto spans = request.writer.RemainingSpans(len);
  if (!spans.ok()) return VIRTIO_BLK_S_IOERR;
  std::vector<iovec> iov = ToIovecs(*spans);
  if (absl::Status s = backend_.ReadAt(sector * kSectorSize, iov); !s.ok()) {
    LogHostError(s);
    return VIRTIO_BLK_S_IOERR;
  }
  if (!request.writer.Skip(len).ok()) return VIRTIO_BLK_S_IOERR;
  request.data_written = static_cast<uint32_t>(len);
  request.data_bytes = len;
  return VIRTIO_BLK_S_OK;
}

uint8_t BlkRequestHandler::DoWrite(Request& request, uint64_t sector) {
  // §5.2.6.3: with VIRTIO_BLK_F_RO offered, IOERR and no data written.
  if (backend_.readonly()) return VIRTIO_BLK_S_IOERR;
  uint64_t len = request.reader.remaining();
  if (len % kSectorSize != 0 || len > BlkLimits::kMaxRequestBytes || !InRange(sector, len)) {
    LOG_DEBUG("virtio-blk", "%s: bad write of %d bytes at sector %d", backend_.name(), len, sector);
    return VIRTIO_BLK_S_IOERR;
  }
  if (len == 0) return VIRTIO_BLK_S_OK;
  auto spans = request.reader.RemainingSpans(len);
  if (!spans.ok()) return VIRTIO_BLK_S_IOERR;
  std::vector<iovec> iov = ToIovecs(*spans);
  if (absl::Status s = backend_.WriteAt(sector * kSectorSize, iov); !s.ok()) {
    LogHostError(s);
    return VIRTIO_BLK_S_IOERR;
  }
  request.data_bytes = len;
  return writethrough_ ? DoFlush() : VIRTIO_BLK_S_OK;
}

uint8_t BlkRequestHandler::DoFlush() {
  // Runs before the status byte is written: once the driver sees OK, every
  // write it completed earlier is on stable storage.
  if (absl::Status s = backend_.Flush(); !s.ok()) {
    LogHostError(s);
    return VIRTIO_BLK_S_IOERR;
  }
  return VIRTIO_BLK_S_OK;
}

uint8_t BlkRequestHandler::DoGetId(Request& request) {
  // The driver gives exactly 20 bytes; a shorter buffer gets what fits.
  size_t n = static_cast<size_t>(std::min<uint64_t>(request.in_len, kBlkIdBytes));
  if (!request.writer.Write(std::span<const uint8_t>(id_.data(), n)).ok()) {
    return VIRTIO_BLK_S_IOERR;
  }
  request.data_written = static_cast<uint32_t>(n);
  return VIRTIO_BLK_S_OK;
}

uint8_t BlkRequestHandler::DoDiscardOrWriteZeroes(Request& request, bool write_zeroes) {
  if (backend_.readonly()) return VIRTIO_BLK_S_IOERR;
  const uint32_t max_segments =
      write_zeroes ? BlkLimits::kMaxWriteZeroesSeg : BlkLimits::kMaxDiscardSeg;
  const uint32_t max_sectors =
      write_zeroes ? BlkLimits::kMaxWriteZeroesSectors : BlkLimits::kMaxDiscardSectors;
  const char* what = write_zeroes ? "write-zeroes" : "discard";

  uint64_t bytes = request.reader.remaining();
  if (bytes == 0 || bytes % kSegmentBytes != 0 || bytes / kSegmentBytes > max_segments) {
    LOG_DEBUG("virtio-blk", "%s: %s with %d bytes of segments", backend_.name(), what, bytes);
    return VIRTIO_BLK_S_IOERR;
  }
  struct Segment {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
  };
  size_t count = static_cast<size_t>(bytes / kSegmentBytes);
  std::array<Segment, std::max(BlkLimits::kMaxDiscardSeg, BlkLimits::kMaxWriteZeroesSeg)> segments;
  // Everything is read and checked before anything is changed.
  for (size_t i = 0; i < count; ++i) {
    std::array<uint8_t, kSegmentBytes> raw;
    if (!request.reader.Read(raw).ok()) return VIRTIO_BLK_S_IOERR;
    segments[i] = Segment{LoadLe64(&raw[0]), LoadLe32(&raw[8]), LoadLe32(&raw[12])};
  }
  // §5.2.6.3: unknown flags, or unmap on a discard, are UNSUPP.
  for (size_t i = 0; i < count; ++i) {
    uint32_t known = write_zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
    if ((segments[i].flags & ~known) != 0) return VIRTIO_BLK_S_UNSUPP;
  }
  for (size_t i = 0; i < count; ++i) {
    const Segment& seg = segments[i];
    if (seg.num_sectors > max_sectors || !InRange(seg.sector, seg.num_sectors * kSectorSize)) {
      LOG_DEBUG("virtio-blk", "%s: bad %s of %u sectors at sector %d", backend_.name(), what,
                seg.num_sectors, seg.sector);
      return VIRTIO_BLK_S_IOERR;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    const Segment& seg = segments[i];
    uint64_t offset = seg.sector * kSectorSize;
    uint64_t length = seg.num_sectors * kSectorSize;
    absl::Status s =
        write_zeroes ? backend_.WriteZeroes(offset, length,
                                            (seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) != 0)
                     : backend_.Discard(offset, length);
    if (!s.ok()) {
      LogHostError(s);
      return VIRTIO_BLK_S_IOERR;
    }
    if (write_zeroes) request.data_bytes += length;
  }
  return (writethrough_ && write_zeroes) ? DoFlush() : VIRTIO_BLK_S_OK;
}

void BlkRequestHandler::LogHostError(const absl::Status& status) {
  if (host_errors_logged_ < kHostErrorsLoggedLoudly) {
    ++host_errors_logged_;
    LOG_WARN(
        "virtio-blk", "%s (the guest sees IOERR)%s", status.message(),
        host_errors_logged_ == kHostErrorsLoggedLoudly ? "; further errors at debug level" : "");
  } else {
    LOG_DEBUG("virtio-blk", "%s", status.message());
  }
}

}  // namespace skiff::virtio
