// epoll on one I/O thread: device back-ends, console input, timers and
// signals all run here, so vCPU threads never wait on I/O.
#pragma once

#include <sys/epoll.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "vmm/unique_fd.h"

namespace skiff {

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  EventLoop(UniqueFd epoll, UniqueFd wake)
      : epoll_(std::move(epoll)), wake_(std::move(wake)) {}

  // Calls `handler` on the loop thread whenever `fd` is ready for `events`.
  absl::Status Add(int fd, uint32_t events, Handler handler);
  absl::Status Modify(int fd, uint32_t events);
  absl::Status Remove(int fd);

  // Dispatches until Stop(); call on the I/O thread.
  void Run();
  // From any thread.
  void Stop();

 private:
  UniqueFd epoll_;
  UniqueFd wake_;
  std::mutex mutex_;
  std::map<int, std::shared_ptr<Handler>> handlers_;
  bool stopping_ = false;
};

}  // namespace skiff
