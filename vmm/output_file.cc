#include "vmm/output_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace skiff {

absl::StatusOr<UniqueFd> CreateOutputFile(std::string_view option, const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644));
  if (!fd) {
    const int error = errno;
    absl::StatusCode code =
        error == ENOENT || error == EACCES || error == EROFS || error == EISDIR || error == ENOTDIR
            ? absl::StatusCode::kInvalidArgument
            : absl::StatusCode::kInternal;
    return absl::Status(
        code, absl::StrFormat("%s %s: cannot create it (%s)", option, path, std::strerror(error)));
  }
  return fd;
}

bool WriteAll(int fd, std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace skiff
