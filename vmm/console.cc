#include "vmm/console.h"

#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_format.h"
#include "vmm/exit_codes.h"
#include "vmm/log.h"
#include "vmm/seccomp_report.h"

namespace skiff {
namespace {
constexpr uint8_t kEscape = 0x01;         // Ctrl-A
constexpr size_t kMaxPending = 4096;      // typed-ahead bytes we hold
}  // namespace

absl::StatusOr<std::unique_ptr<Console>> Console::Create(int in_fd, int out_fd,
                                                         Shutdown* shutdown) {
  UniqueFd ready(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!ready) {
    return absl::InternalError(
        absl::StrFormat("console input-ready eventfd: %s", std::strerror(errno)));
  }
  return std::make_unique<Console>(in_fd, out_fd, shutdown, std::move(ready));
}

Console::Console(int in_fd, int out_fd, Shutdown* shutdown, UniqueFd ready_event)
    : in_fd_(in_fd), out_fd_(out_fd), shutdown_(shutdown),
      ready_event_(std::move(ready_event)) {
  if (in_fd_ >= 0 && ::isatty(in_fd_) && ::tcgetattr(in_fd_, &saved_termios_) == 0) {
    termios raw = saved_termios_;
    cfmakeraw(&raw);
    // Keep output post-processing so our own log lines still start at
    // column 0; the guest's "\r\n" passes through unchanged.
    raw.c_oflag |= OPOST | ONLCR;
    if (::tcsetattr(in_fd_, TCSANOW, &raw) == 0) {
      raw_mode_ = true;
      // A refused system call ends Skiff from a signal handler, past this
      // destructor; it restores the terminal from this copy.
      SetTerminalToRestoreOnFatalExit(in_fd_, saved_termios_);
    }
  }
}

Console::~Console() {
  if (raw_mode_) {
    ClearTerminalToRestoreOnFatalExit();
    ::tcsetattr(in_fd_, TCSANOW, &saved_termios_);
  }
}

Console::WindowSize Console::window_size() const {
  for (int fd : {out_fd_, in_fd_}) {
    winsize size{};
    if (fd >= 0 && ::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0) {
      return WindowSize{size.ws_col, size.ws_row};
    }
  }
  return WindowSize{};
}

void Console::AddOutputObserver(OutputObserver observer) {
  std::lock_guard lock(output_mutex_);
  output_observers_.push_back(std::move(observer));
}

void Console::Output(std::span<const uint8_t> bytes) {
  std::lock_guard lock(output_mutex_);
  // Observers first: a serial log must keep the output even if stdout,
  // a pipe nobody drains, blocks below.
  for (const OutputObserver& observer : output_observers_) observer(bytes);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(out_fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stdout gone (closed pipe): drop, keep the guest running
    done += static_cast<size_t>(n);
  }
}

void Console::SetInputSink(InputSink sink) {
  {
    std::lock_guard lock(input_mutex_);
    sink_ = std::move(sink);
  }
  InputReady();
}

void Console::InputReady() {
  uint64_t one = 1;
  // Only fails when the counter would overflow, i.e. a wake-up is pending.
  (void)!::write(ready_event_.get(), &one, sizeof(one));
}

absl::Status Console::Attach(EventLoop& loop) {
  absl::Status added = loop.Add(ready_event_.get(), EPOLLIN, [this](uint32_t) {
    uint64_t count;
    (void)!::read(ready_event_.get(), &count, sizeof(count));
    Deliver();
  });
  if (!added.ok()) return added;
  std::lock_guard lock(input_mutex_);
  loop_ = &loop;
  if (in_fd_ >= 0) ResumeStdin();
  return absl::OkStatus();
}

void Console::PauseStdin() {
  if (stdin_state_ != StdinState::kWatched) return;
  (void)loop_->Remove(in_fd_);
  stdin_state_ = StdinState::kPaused;
}

void Console::ResumeStdin() {
  if (stdin_state_ == StdinState::kWatched || stdin_state_ == StdinState::kClosed) return;
  absl::Status added = loop_->Add(in_fd_, EPOLLIN, [this](uint32_t) { OnReadable(); });
  if (!added.ok()) {
    // epoll refuses regular files and /dev/null: there is nothing to type.
    LOG_DEBUG("console", "stdin not watched: %s", added.message());
    stdin_state_ = StdinState::kClosed;
    return;
  }
  stdin_state_ = StdinState::kWatched;
}

void Console::OnReadable() {
  uint8_t buffer[512];
  size_t room;
  {
    std::lock_guard lock(input_mutex_);
    room = kMaxPending - pending_.size();
    if (room == 0) {
      // The guest is not reading. Stop watching stdin (level-triggered epoll
      // would call us again at once) until Deliver makes room.
      PauseStdin();
      return;
    }
  }
  ssize_t n = ::read(in_fd_, buffer, std::min(room, sizeof(buffer)));
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
    // End of input: the guest just sees silence.
    std::lock_guard lock(input_mutex_);
    (void)loop_->Remove(in_fd_);
    stdin_state_ = StdinState::kClosed;
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
  if (sink_ && !pending_.empty()) {
    std::vector<uint8_t> chunk(pending_.begin(), pending_.end());
    size_t taken = std::min(sink_(chunk), chunk.size());
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(taken));
    // Whatever the sink refused waits for its InputReady().
  }
  if (stdin_state_ == StdinState::kPaused && pending_.size() <= kMaxPending / 2) {
    ResumeStdin();
  }
}

}  // namespace skiff
