#include "devices/block/disk_file.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "vmm/log.h"

namespace skiff::block {
namespace {

// The largest O_DIRECT alignment we accept: the guest's logical block size
// becomes this, and Linux guests handle logical blocks up to a page.
constexpr uint32_t kMaxBlockSize = 4096;
// Zeroes are written from one buffer of this size when fallocate can't.
constexpr size_t kZeroBufferSize = 1 << 20;

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

absl::Status ErrnoError(int err, const std::string& path, const std::string& what) {
  std::string message = absl::StrFormat("disk %s: %s: %s", path, what, std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Moves every byte of `buffers` between the file at `offset` and memory,
// retrying on EINTR and continuing after short transfers.
absl::Status TransferAll(int fd, bool write, uint64_t offset, std::span<const iovec> buffers,
                         const std::string& path) {
  std::vector<iovec> iov(buffers.begin(), buffers.end());
  size_t index = 0;
  for (;;) {
    while (index < iov.size() && iov[index].iov_len == 0) ++index;
    if (index == iov.size()) return absl::OkStatus();
    int count = static_cast<int>(std::min<size_t>(iov.size() - index, IOV_MAX));
    ssize_t n = write ? ::pwritev(fd, &iov[index], count, static_cast<off_t>(offset))
                      : ::preadv(fd, &iov[index], count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path,
                        absl::StrFormat("%s at offset %d", write ? "write" : "read", offset));
    }
    if (n == 0) {
      // Only a file truncated under us gets here: the range was checked.
      return absl::DataLossError(absl::StrFormat("disk %s: %s at offset %d: end of file", path,
                                                 write ? "write" : "read", offset));
    }
    offset += static_cast<uint64_t>(n);
    size_t done = static_cast<size_t>(n);
    while (done > 0) {
      size_t step = std::min(done, iov[index].iov_len);
      iov[index].iov_base = static_cast<uint8_t*>(iov[index].iov_base) + step;
      iov[index].iov_len -= step;
      done -= step;
      if (iov[index].iov_len == 0) ++index;
    }
  }
}

// The O_DIRECT offset/length alignment, or an error when the file can't do
// direct I/O at all.
absl::StatusOr<uint32_t> DirectIoAlignment(int fd, const struct stat& st, const std::string& path) {
  uint32_t alignment = 512;
  if (S_ISBLK(st.st_mode)) {
    int logical = 0;
    if (::ioctl(fd, BLKSSZGET, &logical) == 0 && logical > 0) {
      alignment = static_cast<uint32_t>(logical);
    }
  } else {
    struct statx sx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
        (sx.stx_mask & STATX_DIOALIGN) != 0) {
      if (sx.stx_dio_offset_align == 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "disk %s: the filesystem does not support O_DIRECT; drop direct=on", path));
      }
      alignment = std::max<uint32_t>(alignment, sx.stx_dio_offset_align);
    }
  }
  if (!IsPowerOfTwo(alignment) || alignment > kMaxBlockSize) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "disk %s: O_DIRECT needs %u-byte alignment, more than the %u Skiff supports; drop "
        "direct=on",
        path, alignment, kMaxBlockSize));
  }
  return alignment;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DiskFile>> DiskFile::Open(const DiskOptions& options) {
  const std::string& path = options.path;
  if (path.empty()) return absl::InvalidArgumentError("disk: no path given");

  // stat first for precise messages, and so a FIFO is never opened (it
  // could block); fstat after open re-checks what we actually got.
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) {
    int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(absl::StrFormat("disk %s: no such file", path));
    }
    return ErrnoError(err, path, "cannot stat");
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("disk %s: is a directory, not a disk image", path));
  }
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("disk %s: not a regular file or block device", path));
  }

  int flags = O_CLOEXEC | O_NONBLOCK | (options.readonly ? O_RDONLY : O_RDWR);
  if (options.direct) flags |= O_DIRECT;
  UniqueFd fd(::open(path.c_str(), flags));
  if (!fd) {
    int err = errno;
    if (err == EINVAL && options.direct) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "disk %s: the filesystem does not support O_DIRECT; drop direct=on", path));
    }
    if (!options.readonly && (err == EACCES || err == EPERM || err == EROFS || err == ETXTBSY)) {
      return absl::PermissionDeniedError(absl::StrFormat(
          "disk %s: not writable (open: %s); add readonly=on", path, std::strerror(err)));
    }
    return ErrnoError(err, path, "cannot open");
  }
  // O_NONBLOCK only guarded the open; regular files and block devices
  // ignore it, but leave no surprise behind.
  int status_flags = ::fcntl(fd.get(), F_GETFL);
  if (status_flags < 0 || ::fcntl(fd.get(), F_SETFL, status_flags & ~O_NONBLOCK) < 0) {
    return ErrnoError(errno, path, "fcntl");
  }
  if (::fstat(fd.get(), &st) < 0) return ErrnoError(errno, path, "fstat");
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("disk %s: not a regular file or block device", path));
  }

  // flock, not fcntl locks: it belongs to this open file description, so
  // it survives no fork/close surprises and conflicts even within one
  // process (two --disk options naming the same image).
  if (::flock(fd.get(), (options.readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
    int err = errno;
    if (err == EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrFormat("disk %s: locked by another process (is another VM using it%s?)", path,
                          options.readonly ? " read-write" : ""));
    }
    // Some filesystems (old NFS setups) have no flock: run unprotected.
    LOG_WARN("disk", "disk %s: cannot lock (%s); continuing without a lock", path,
             std::strerror(err));
  }

  uint64_t size = 0;
  if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) < 0) {
      return ErrnoError(errno, path, "BLKGETSIZE64");
    }
  } else {
    size = static_cast<uint64_t>(st.st_size);
  }

  uint32_t block_size = static_cast<uint32_t>(kSectorSize);
  if (options.direct) {
    auto alignment = DirectIoAlignment(fd.get(), st, path);
    if (!alignment.ok()) return alignment.status();
    block_size = *alignment;
  }
  if (size % block_size != 0) {
    uint64_t rounded = size - size % block_size;
    LOG_WARN("disk",
             "disk %s: size %d is not a multiple of %u bytes; the guest sees %d bytes and the "
             "last %d are never read or written",
             path, size, block_size, rounded, size - rounded);
    size = rounded;
  }

  uint32_t granularity = static_cast<uint32_t>(st.st_blksize);
  if (!IsPowerOfTwo(granularity) || granularity < kSectorSize || granularity > (1u << 20)) {
    granularity = 4096;
  }
  granularity = std::max(granularity, block_size);

  return std::unique_ptr<DiskFile>(
      new DiskFile(std::move(fd), path, size, options.readonly, block_size, granularity));
}

absl::Status DiskFile::CheckWritable(const char* what) const {
  if (readonly_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("disk %s: %s refused: opened read-only", path_, what));
  }
  return absl::OkStatus();
}

absl::Status DiskFile::CheckRange(const char* what, uint64_t offset, uint64_t length) const {
  if (offset > size_ || length > size_ - offset) {
    return absl::OutOfRangeError(absl::StrFormat(
        "disk %s: %s of %d bytes at %d is past the end (%d)", path_, what, length, offset, size_));
  }
  return absl::OkStatus();
}

absl::Status DiskFile::ReadAt(uint64_t offset, std::span<const iovec> buffers) {
  return TransferAll(fd_.get(), /*write=*/false, offset, buffers, path_);
}

absl::Status DiskFile::WriteAt(uint64_t offset, std::span<const iovec> buffers) {
  if (absl::Status s = CheckWritable("write"); !s.ok()) return s;
  return TransferAll(fd_.get(), /*write=*/true, offset, buffers, path_);
}

absl::Status DiskFile::Flush() {
  // A read-only image has nothing of ours to make durable.
  if (readonly_) return absl::OkStatus();
  while (::fdatasync(fd_.get()) < 0) {
    if (errno != EINTR) return ErrnoError(errno, path_, "fdatasync");
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> DiskFile::TryFallocate(int mode, const char* what, uint64_t offset,
                                            uint64_t length, bool* supported) {
  if (!*supported) return false;
  for (;;) {
    if (::fallocate(fd_.get(), mode | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) == 0) {
      return true;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EOPNOTSUPP || err == ENOSYS) {
      LOG_INFO("disk", "disk %s: the filesystem has no %s; using a slower path", path_, what);
      *supported = false;
      return false;
    }
    return ErrnoError(err, path_, absl::StrFormat("%s at offset %d", what, offset));
  }
}

absl::Status DiskFile::Discard(uint64_t offset, uint64_t length) {
  if (absl::Status s = CheckWritable("discard"); !s.ok()) return s;
  if (absl::Status s = CheckRange("discard", offset, length); !s.ok()) return s;
  if (length == 0) return absl::OkStatus();
  // Discard is a hint: where holes can't be punched, doing nothing is right.
  auto punched =
      TryFallocate(FALLOC_FL_PUNCH_HOLE, "hole punching", offset, length, &punch_hole_supported_);
  return punched.status();
}

absl::Status DiskFile::WriteZeroes(uint64_t offset, uint64_t length, bool may_unmap) {
  if (absl::Status s = CheckWritable("write-zeroes"); !s.ok()) return s;
  if (absl::Status s = CheckRange("write-zeroes", offset, length); !s.ok()) return s;
  if (length == 0) return absl::OkStatus();
  // Punched holes read back as zeroes; without unmap the space stays
  // allocated (ZERO_RANGE) so later writes cannot hit ENOSPC.
  if (may_unmap) {
    auto punched =
        TryFallocate(FALLOC_FL_PUNCH_HOLE, "hole punching", offset, length, &punch_hole_supported_);
    if (!punched.ok()) return punched.status();
    if (*punched) return absl::OkStatus();
  }
  auto zeroed =
      TryFallocate(FALLOC_FL_ZERO_RANGE, "zero ranges", offset, length, &zero_range_supported_);
  if (!zeroed.ok()) return zeroed.status();
  if (*zeroed) return absl::OkStatus();
  return WriteZeroBytes(offset, length);
}

absl::Status DiskFile::WriteZeroBytes(uint64_t offset, uint64_t length) {
  if (!zero_buffer_) {
    // Aligned for O_DIRECT; 4096 covers every alignment Open accepts.
    void* raw = std::aligned_alloc(kMaxBlockSize, kZeroBufferSize);
    if (raw == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("disk %s: no memory for a zero buffer", path_));
    }
    std::memset(raw, 0, kZeroBufferSize);
    zero_buffer_.reset(static_cast<uint8_t*>(raw));
  }
  while (length > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, kZeroBufferSize));
    iovec iov{zero_buffer_.get(), chunk};
    if (absl::Status s = TransferAll(fd_.get(), /*write=*/true, offset, {&iov, 1}, path_);
        !s.ok()) {
      return s;
    }
    offset += chunk;
    length -= chunk;
  }
  return absl::OkStatus();
}

}  // namespace skiff::block
