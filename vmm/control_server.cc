#include "vmm/control_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

absl::StatusOr<sockaddr_un> SocketAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-socket '%s': a socket path must be 1-%u bytes long", path,
                        sizeof(address.sun_path) - 1));
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// Whether something accepts connections at `address`.
bool SomeoneListens(const sockaddr_un& address) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return probe &&
         ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
}

// Checks what is at `path` now; removes a stale socket.
absl::Status ClaimPath(const std::string& path, const sockaddr_un& address) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-socket %s: %s", path, std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--api-socket %s: exists and is not a socket; refusing to replace it", path));
  }
  if (SomeoneListens(address)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-socket %s: another process is serving this socket", path));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--api-socket %s: cannot remove the stale socket: %s", path, std::strerror(errno)));
  }
  LOG_INFO("control", "removed stale socket %s", path);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Create(const std::string& path) {
  ASSIGN_OR_RETURN(sockaddr_un address, SocketAddress(path));
  RETURN_IF_ERROR(ClaimPath(path, address));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    return absl::InternalError(absl::StrFormat("--api-socket: socket: %s", std::strerror(errno)));
  }
  // Only the owner may drive the VM: create the socket 0600 (no window in
  // which a chmod is still to come). Start-up is single-threaded here.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--api-socket %s: bind: %s", path, std::strerror(bind_errno)));
  }
  struct stat st {};
  if (::listen(fd.get(), 8) != 0 || ::lstat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return absl::InternalError(
        absl::StrFormat("--api-socket %s: listen: %s", path, std::strerror(err)));
  }
  LOG_INFO("control", "serving the control socket %s", path);
  return std::make_unique<ControlServer>(path, std::move(fd), st.st_dev, st.st_ino);
}

ControlServer::ControlServer(std::string path, UniqueFd listener, dev_t dev, ino_t ino)
    : path_(std::move(path)), listener_(std::move(listener)), dev_(dev), ino_(ino) {}

ControlServer::~ControlServer() {
  Detach();
  // Unlink only our own socket: someone may have replaced it meanwhile.
  struct stat st;
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    ::unlink(path_.c_str());
  }
}

absl::Status ControlServer::Attach(EventLoop& loop, VmControl& vm) {
  loop_ = &loop;
  vm_ = &vm;
  return loop.Add(listener_.get(), EPOLLIN, [this](uint32_t) { OnAccept(); });
}

void ControlServer::Detach() {
  if (loop_ == nullptr) return;
  for (auto& [fd, client] : clients_) (void)loop_->Remove(fd);
  clients_.clear();
  (void)loop_->Remove(listener_.get());
  loop_ = nullptr;
}

void ControlServer::OnAccept() {
  for (;;) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) return;  // EAGAIN: no more waiting; other errors: try on the next wake
    if (clients_.size() >= kMaxClients) {
      std::string busy = ControlErrorLine("too many control clients") + "\n";
      (void)!::send(fd.get(), busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      continue;
    }
    const int raw = fd.get();
    absl::Status added = loop_->Add(raw, EPOLLIN | EPOLLRDHUP,
                                    [this, raw](uint32_t events) { OnClient(raw, events); });
    if (!added.ok()) {
      LOG_WARN("control", "%s", std::string(added.message()));
      continue;
    }
    clients_[raw].fd = std::move(fd);
  }
}

void ControlServer::OnClient(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& client = it->second;
  if (events & EPOLLOUT) {
    if (!Flush(client)) return DropClient(fd);
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))) return;
  char buffer[4096];
  const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return DropClient(fd);
  if (n < 0) return;
  client.input.append(buffer, static_cast<size_t>(n));
  size_t newline;
  while ((newline = client.input.find('\n')) != std::string::npos) {
    std::string line = client.input.substr(0, newline);
    client.input.erase(0, newline + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    client.output += HandleControlLine(line, *vm_) + "\n";
  }
  if (client.input.size() > kMaxControlLine) {
    client.output +=
        ControlErrorLine(absl::StrFormat("request longer than %u bytes", kMaxControlLine)) + "\n";
    (void)Flush(client);
    return DropClient(fd);
  }
  if (!Flush(client)) DropClient(fd);
}

bool ControlServer::Flush(Client& client) {
  while (!client.output.empty()) {
    const ssize_t n = ::send(client.fd.get(), client.output.data(), client.output.size(),
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return false;
      break;
    }
    client.output.erase(0, static_cast<size_t>(n));
  }
  if (client.output.size() > kMaxPendingOutput) return false;
  const uint32_t want =
      EPOLLIN | EPOLLRDHUP | (client.output.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  return loop_->Modify(client.fd.get(), want).ok();
}

void ControlServer::DropClient(int fd) {
  (void)loop_->Remove(fd);
  clients_.erase(fd);  // closes it
}

absl::StatusOr<std::string> SendControlRequest(const std::string& path,
                                               const std::string& request) {
  ASSIGN_OR_RETURN(sockaddr_un address, SocketAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return absl::UnavailableError(
        absl::StrFormat("--api-socket %s: cannot connect: %s (is skiff run --api-socket running?)",
                        path, std::strerror(errno)));
  }
  const std::string line = request + "\n";
  for (size_t sent = 0; sent < line.size();) {
    const ssize_t n = ::send(fd.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::UnavailableError(
          absl::StrFormat("--api-socket %s: send: %s", path, std::strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  // A pause waits for every vCPU to park (a few seconds at most).
  constexpr int kAnswerTimeoutMs = 15000;
  std::string answer;
  for (;;) {
    const size_t newline = answer.find('\n');
    if (newline != std::string::npos) return answer.substr(0, newline);
    pollfd pfd{fd.get(), POLLIN, 0};
    const int ready = ::poll(&pfd, 1, kAnswerTimeoutMs);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      return absl::DeadlineExceededError(
          absl::StrFormat("--api-socket %s: no answer within %d s", path, kAnswerTimeoutMs / 1000));
    }
    char buffer[4096];
    const ssize_t n = ::recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::UnavailableError(
          absl::StrFormat("--api-socket %s: the connection closed before an answer", path));
    }
    answer.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace skiff
