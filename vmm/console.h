// The guest console as the user sees it: guest output to stdout, stdin to
// the guest. When stdin is a terminal it is put in raw mode (restored on
// every exit path through the destructor) and Ctrl-A x quits; with no
// terminal at all (CI, `< /dev/null`) it works the same minus raw mode.
#pragma once

#include <termios.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "absl/status/statusor.h"
#include "vmm/event_loop.h"
#include "vmm/shutdown.h"
#include "vmm/unique_fd.h"

namespace skiff {

class Console {
 public:
  using InputSink = std::function<size_t(std::span<const uint8_t>)>;

  static absl::StatusOr<std::unique_ptr<Console>> Create(int in_fd, int out_fd,
                                                         Shutdown* shutdown);
  Console(int in_fd, int out_fd, Shutdown* shutdown, UniqueFd retry_timer);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // Guest output; any thread.
  void Output(std::span<const uint8_t> bytes);
  // Where typed bytes go; the sink returns how many it accepted.
  void SetInputSink(InputSink sink);
  // Starts watching stdin on the I/O thread.
  absl::Status Attach(EventLoop& loop);
  bool raw_mode() const { return raw_mode_; }

  // Feeds `bytes` as if typed (escape handling included); for tests and
  // for the I/O thread.
  void HandleInput(std::span<const uint8_t> bytes);

 private:
  void OnReadable(EventLoop& loop);
  void Deliver();

  int in_fd_;
  int out_fd_;
  Shutdown* shutdown_;
  UniqueFd retry_timer_;
  bool raw_mode_ = false;
  termios saved_termios_{};
  std::mutex output_mutex_;
  std::mutex input_mutex_;
  InputSink sink_;
  std::deque<uint8_t> pending_;
  bool escape_pending_ = false;
};

}  // namespace skiff
