#include "vmm/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace skiff {

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll || !wake) {
    return absl::InternalError(
        absl::StrFormat("event loop set-up: %s", std::strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake.get();
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) < 0) {
    return absl::InternalError(
        absl::StrFormat("epoll_ctl: %s", std::strerror(errno)));
  }
  return std::make_unique<EventLoop>(std::move(epoll), std::move(wake));
}

absl::Status EventLoop::Add(int fd, uint32_t events, Handler handler) {
  std::lock_guard lock(mutex_);
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) {
    return absl::InternalError(absl::StrFormat("epoll_ctl add fd %d: %s", fd,
                                               std::strerror(errno)));
  }
  handlers_[fd] = std::make_shared<Handler>(std::move(handler));
  return absl::OkStatus();
}

absl::Status EventLoop::Modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) < 0) {
    return absl::InternalError(absl::StrFormat("epoll_ctl mod fd %d: %s", fd,
                                               std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status EventLoop::Remove(int fd) {
  std::lock_guard lock(mutex_);
  handlers_.erase(fd);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) < 0) {
    return absl::InternalError(absl::StrFormat("epoll_ctl del fd %d: %s", fd,
                                               std::strerror(errno)));
  }
  return absl::OkStatus();
}

void EventLoop::Run() {
  constexpr int kMaxEvents = 32;
  epoll_event events[kMaxEvents];
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_.get()) {
        uint64_t value;
        (void)!::read(wake_.get(), &value, sizeof(value));
        continue;
      }
      std::shared_ptr<Handler> handler;
      {
        std::lock_guard lock(mutex_);
        auto it = handlers_.find(fd);
        if (it == handlers_.end()) continue;  // removed meanwhile
        handler = it->second;
      }
      (*handler)(events[i].events);
    }
  }
}

void EventLoop::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

}  // namespace skiff
