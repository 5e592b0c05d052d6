// The guest console as the user sees it: guest output to stdout, stdin to
// the guest. When stdin is a terminal it is put in raw mode (restored on
// every exit path through the destructor) and Ctrl-A x quits; with no
// terminal at all (CI, `< /dev/null`) it works the same minus raw mode.
//
// Typed input flows stdin -> a bounded pending buffer -> the input sink (the
// UART or virtio-console). Nothing polls: a sink that takes fewer bytes than
// offered calls InputReady() once it has room, and stdin is not read while
// the pending buffer is full, so a guest that never reads costs no CPU.
#pragma once

#include <termios.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

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
  // `ready_event` is a non-blocking eventfd (see InputReady).
  Console(int in_fd, int out_fd, Shutdown* shutdown, UniqueFd ready_event);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  using OutputObserver = std::function<void(std::span<const uint8_t>)>;

  // Guest output; any thread. Observers see it first, then stdout.
  void Output(std::span<const uint8_t> bytes);
  // Adds a watcher of guest output (serial log, --expect matching), called
  // in order, one call at a time, with the output lock held: it must not
  // call back into the Console. Add observers before the guest runs.
  void AddOutputObserver(OutputObserver observer);
  // Where typed bytes go; the sink returns how many leading bytes it took.
  // It is called with the console's input lock held, so it must not call
  // back into the Console other than InputReady(). A sink that takes fewer
  // bytes than offered must arrange for InputReady() to be called when it
  // has room again: the rest stays pending until then. Input already
  // pending is offered to a new sink.
  void SetInputSink(InputSink sink);
  // The input sink has room again; any thread, any lock held. Delivery is
  // retried on the I/O thread (after Attach).
  void InputReady();
  // Starts watching stdin and input-ready signals on the I/O thread. `loop`
  // must outlive the Console's use of it.
  absl::Status Attach(EventLoop& loop);
  bool raw_mode() const { return raw_mode_; }

  struct WindowSize {
    uint16_t cols = 80;
    uint16_t rows = 24;
  };
  // The terminal's size (stdout's, else stdin's), or 80x24 when neither is
  // a terminal that knows its size.
  WindowSize window_size() const;

  // Feeds `bytes` as if typed (escape handling included); for tests and
  // for the I/O thread.
  void HandleInput(std::span<const uint8_t> bytes);

 private:
  // What we do with stdin on the loop.
  enum class StdinState { kUnwatched, kWatched, kPaused, kClosed };

  void OnReadable();
  void Deliver();
  // With input_mutex_ held.
  void PauseStdin();
  void ResumeStdin();

  int in_fd_;
  int out_fd_;
  Shutdown* shutdown_;
  UniqueFd ready_event_;
  bool raw_mode_ = false;
  termios saved_termios_{};
  std::mutex output_mutex_;
  std::vector<OutputObserver> output_observers_;  // guarded by output_mutex_
  std::mutex input_mutex_;
  InputSink sink_;
  std::deque<uint8_t> pending_;
  bool escape_pending_ = false;
  EventLoop* loop_ = nullptr;
  StdinState stdin_state_ = StdinState::kUnwatched;
};

}  // namespace skiff
