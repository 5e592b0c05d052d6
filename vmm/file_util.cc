#include "vmm/file_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "vmm/status_macros.h"
#include "vmm/unique_fd.h"

namespace skiff {
namespace {

absl::StatusOr<UniqueFd> OpenRegular(const std::string& path,
                                     const std::string& what, uint64_t* size) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s %s: cannot open: %s", what, path, std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s: not a regular file", what, path));
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

absl::Status ReadFully(int fd, uint8_t* out, uint64_t size,
                       const std::string& what, const std::string& path) {
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, out + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s %s: read failed: %s", what, path,
          n == 0 ? "file shrank while reading" : std::strerror(errno)));
    }
    done += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> RegularFileSize(const std::string& path,
                                         const std::string& what) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(path, what, &size));
  return size;
}

absl::StatusOr<Mapping> MapWholeFile(const std::string& path,
                                     const std::string& what) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(path, what, &size));
  if (size == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("%s %s: file is empty", what, path));
  }
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
  if (addr == MAP_FAILED) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s: cannot map: %s", what, path, std::strerror(errno)));
  }
  return Mapping(addr, size);
}

absl::Status ReadFileIntoGuest(const std::string& path, const std::string& what,
                               const GuestMemory& memory, uint64_t gpa,
                               uint64_t expected_size) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(UniqueFd fd, OpenRegular(path, what, &size));
  if (size != expected_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %s: changed size while loading", what, path));
  }
  if (size == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::span<uint8_t> span, memory.GetSpan(gpa, size));
  return ReadFully(fd.get(), span.data(), size, what, path);
}

}  // namespace skiff
