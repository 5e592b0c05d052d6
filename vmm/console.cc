#include "vmm/console.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "vmm/exit_codes.h"
#include "vmm/log.h"

namespace skiff {
namespace {
constexpr uint8_t kEscape = 0x01;         // Ctrl-A
constexpr size_t kMaxPending = 4096;      // typed-ahead bytes we hold
constexpr long kRetryNanoseconds = 5'000'000;
}  // namespace

absl::StatusOr<std::unique_ptr<Console>> Console::Create(int in_fd, int out_fd,
                                                         Shutdown* shutdown) {
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer) {
    return absl::InternalError(
        absl::StrFormat("timerfd_create: %s", std::strerror(errno)));
  }
  return std::make_unique<Console>(in_fd, out_fd, shutdown, std::move(timer));
}

Console::Console(int in_fd, int out_fd, Shutdown* shutdown, UniqueFd retry_timer)
    : in_fd_(in_fd), out_fd_(out_fd), shutdown_(shutdown),
      retry_timer_(std::move(retry_timer)) {
  if (in_fd_ >= 0 && ::isatty(in_fd_) && ::tcgetattr(in_fd_, &saved_termios_) == 0) {
    termios raw = saved_termios_;
    cfmakeraw(&raw);
    // Keep output post-processing so our own log lines still start at
    // column 0; the guest's "\r\n" passes through unchanged.
    raw.c_oflag |= OPOST | ONLCR;
    if (::tcsetattr(in_fd_, TCSANOW, &raw) == 0) raw_mode_ = true;
  }
}

Console::~Console() {
  if (raw_mode_) ::tcsetattr(in_fd_, TCSANOW, &saved_termios_);
}

void Console::Output(std::span<const uint8_t> bytes) {
  std::lock_guard lock(output_mutex_);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(out_fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stdout gone (closed pipe): drop, keep the guest running
    done += static_cast<size_t>(n);
  }
}

void Console::SetInputSink(InputSink sink) {
  std::lock_guard lock(input_mutex_);
  sink_ = std::move(sink);
}

absl::Status Console::Attach(EventLoop& loop) {
  if (in_fd_ < 0) return absl::OkStatus();
  absl::Status added = loop.Add(in_fd_, EPOLLIN, [this, &loop](uint32_t) {
    OnReadable(loop);
  });
  if (!added.ok()) {
    // epoll refuses regular files and /dev/null: there is nothing to type.
    LOG_DEBUG("console", "stdin not watched: %s", added.message());
  }
  return loop.Add(retry_timer_.get(), EPOLLIN, [this](uint32_t) {
    uint64_t expirations;
    (void)!::read(retry_timer_.get(), &expirations, sizeof(expirations));
    Deliver();
  });
}

void Console::OnReadable(EventLoop& loop) {
  uint8_t buffer[512];
  size_t room;
  {
    std::lock_guard lock(input_mutex_);
    room = kMaxPending - pending_.size();
  }
  if (room == 0) {
    Deliver();
    return;
  }
  ssize_t n = ::read(in_fd_, buffer, std::min(room, sizeof(buffer)));
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
    (void)loop.Remove(in_fd_);  // end of input: the guest just sees silence
    return;
  }
  if (n > 0) HandleInput(std::span<const uint8_t>(buffer, static_cast<size_t>(n)));
}

void Console::HandleInput(std::span<const uint8_t> bytes) {
  {
    std::lock_guard lock(input_mutex_);
    for (uint8_t b : bytes) {
      if (raw_mode_ || escape_pending_) {
        if (escape_pending_) {
          escape_pending_ = false;
          if (b == 'x' || b == 'X') {
            shutdown_->Request(kExitSignal, "console escape (Ctrl-A x)");
            return;
          }
          if (b != kEscape) continue;  // unknown escape: swallowed
        } else if (b == kEscape) {
          escape_pending_ = true;
          continue;
        }
      }
      if (pending_.size() < kMaxPending) pending_.push_back(b);
    }
  }
  Deliver();
}

void Console::Deliver() {
  std::lock_guard lock(input_mutex_);
  if (!sink_ || pending_.empty()) return;
  std::vector<uint8_t> chunk(pending_.begin(), pending_.end());
  size_t taken = sink_(chunk);
  pending_.erase(pending_.begin(), pending_.begin() + std::min(taken, chunk.size()));
  if (!pending_.empty()) {
    // The receiver is full; try again shortly rather than spinning.
    itimerspec spec{};
    spec.it_value.tv_nsec = kRetryNanoseconds;
    ::timerfd_settime(retry_timer_.get(), 0, &spec, nullptr);
  }
}

}  // namespace skiff
