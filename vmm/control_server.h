// --api-socket PATH: a Unix stream socket serving the control protocol
// (vmm/control_protocol.h, docs/control.md) on the I/O thread's event loop.
//
// Create() claims the path before any KVM set-up: a path that exists and is
// not a socket is refused, a socket nobody listens on (left by a Skiff that
// died) is replaced, a live one is refused. The socket is made 0600 and
// unlinked again when the server goes away, if it is still ours.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "vmm/control_protocol.h"
#include "vmm/event_loop.h"
#include "vmm/unique_fd.h"

namespace skiff {

class ControlServer {
 public:
  // At most this many clients at once; more are told so and closed.
  static constexpr size_t kMaxClients = 16;
  // A client that does not read its answers is dropped past this backlog.
  static constexpr size_t kMaxPendingOutput = 1 << 20;

  static absl::StatusOr<std::unique_ptr<ControlServer>> Create(const std::string& path);
  ControlServer(std::string path, UniqueFd listener, dev_t dev, ino_t ino);
  ~ControlServer();

  // Serves requests on `loop`'s thread, handled by `vm`; both must outlive
  // the server or Detach().
  absl::Status Attach(EventLoop& loop, VmControl& vm);
  void Detach();

  const std::string& path() const { return path_; }

 private:
  struct Client {
    UniqueFd fd;
    std::string input;
    std::string output;
  };
  void OnAccept();
  void OnClient(int fd, uint32_t events);
  // Sends what it can of `client.output`; false if the client must go.
  bool Flush(Client& client);
  void DropClient(int fd);

  const std::string path_;
  UniqueFd listener_;
  dev_t dev_;
  ino_t ino_;
  EventLoop* loop_ = nullptr;
  VmControl* vm_ = nullptr;
  std::map<int, Client> clients_;  // touched only on the loop thread
};

// The client side (`skiff ctl`): sends one request line to `path` and
// returns the answer line. Errors name the path.
absl::StatusOr<std::string> SendControlRequest(const std::string& path, const std::string& request);

}  // namespace skiff
