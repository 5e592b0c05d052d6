#include "vmm/control_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/temp_dir.h"

namespace skiff {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

class CountingVm : public VmControl {
 public:
  json Status() override { return {{"state", paused ? "paused" : "running"}}; }
  absl::Status Pause() override {
    paused = true;
    return absl::OkStatus();
  }
  absl::Status Resume() override {
    paused = false;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Shutdown(bool) override {
    return absl::UnimplementedError("no button");
  }
  absl::Status Reboot() override { return absl::OkStatus(); }
  json Info() override { return json::object(); }
  std::atomic<bool> paused{false};
};

// A server on its own event loop thread, as in a running Skiff.
class ServedSocket {
 public:
  explicit ServedSocket(const std::string& path) {
    auto loop = EventLoop::Create();
    EXPECT_TRUE(loop.ok());
    loop_ = *std::move(loop);
    auto server = ControlServer::Create(path);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return;
    server_ = *std::move(server);
    EXPECT_TRUE(server_->Attach(*loop_, vm_).ok());
    thread_ = std::thread([this] { loop_->Run(); });
  }
  ~ServedSocket() { Stop(); }
  void Stop() {
    if (thread_.joinable()) {
      loop_->Stop();
      thread_.join();
    }
    server_.reset();
  }
  CountingVm& vm() { return vm_; }

 private:
  CountingVm vm_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
};

json Ask(const std::string& path, const std::string& request) {
  auto answer = SendControlRequest(path, request);
  EXPECT_TRUE(answer.ok()) << answer.status();
  if (!answer.ok()) return json();
  return json::parse(*answer, nullptr, false);
}

TEST(ControlServerTest, AnswersRequestsAndUnlinksOnExit) {
  testing::TempDir temp;
  const std::string path = temp.File("api.sock");
  {
    ServedSocket served(path);
    struct stat st;
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "only the owner may drive the VM";
    json answer = Ask(path, R"({"command":"pause"})");
    EXPECT_EQ(answer["ok"], true);
    EXPECT_EQ(answer["result"]["state"], "paused");
    EXPECT_TRUE(served.vm().paused);
    answer = Ask(path, R"({"command":"resume"})");
    EXPECT_EQ(answer["result"]["state"], "running");
    answer = Ask(path, R"({"command":"shutdown"})");
    EXPECT_EQ(answer["ok"], false);
    EXPECT_EQ(answer["error"], "no button");
    answer = Ask(path, "nonsense");
    EXPECT_EQ(answer["ok"], false);
  }
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "the socket outlived the server";
}

TEST(ControlServerTest, SeveralRequestsOnOneConnection) {
  testing::TempDir temp;
  const std::string path = temp.File("api.sock");
  ServedSocket served(path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, path.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string requests =
      "{\"command\":\"status\",\"id\":1}\n\n{\"command\":\"pause\",\"id\":2}\r\n";
  ASSERT_EQ(::write(fd, requests.data(), requests.size()), static_cast<ssize_t>(requests.size()));
  std::string answers;
  char buffer[4096];
  while (std::count(answers.begin(), answers.end(), '\n') < 2) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    ASSERT_GT(n, 0);
    answers.append(buffer, n);
  }
  ::close(fd);
  const size_t newline = answers.find('\n');
  json first = json::parse(answers.substr(0, newline));
  json second = json::parse(answers.substr(newline + 1, answers.size() - newline - 2));
  EXPECT_EQ(first["id"], 1);
  EXPECT_EQ(first["result"]["state"], "running");
  EXPECT_EQ(second["id"], 2);
  EXPECT_EQ(second["result"]["state"], "paused");
}

TEST(ControlServerTest, OverlongRequestIsRefused) {
  testing::TempDir temp;
  const std::string path = temp.File("api.sock");
  ServedSocket served(path);
  auto answer = SendControlRequest(path, std::string(kMaxControlLine + 10, 'x'));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_THAT(*answer, HasSubstr("longer than"));
}

TEST(ControlServerTest, RefusesAPathThatIsNotASocket) {
  testing::TempDir temp;
  const std::string path = temp.File("file");
  std::ofstream(path) << "keep me";
  auto server = ControlServer::Create(path);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.status().message(),
            "--api-socket " + path + ": exists and is not a socket; refusing to replace it");
  std::ifstream in(path);
  std::string kept;
  std::getline(in, kept);
  EXPECT_EQ(kept, "keep me");
}

TEST(ControlServerTest, ReplacesAStaleSocketButNotALiveOne) {
  testing::TempDir temp;
  const std::string path = temp.File("api.sock");
  {
    // A socket file nobody listens on, as a killed Skiff leaves behind.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ::close(fd);
  }
  ServedSocket served(path);
  EXPECT_EQ(Ask(path, R"({"command":"status"})")["ok"], true);
  auto second = ControlServer::Create(path);
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("another process is serving"));
}

TEST(ControlServerTest, ClientErrorsNameThePath) {
  testing::TempDir temp;
  auto answer = SendControlRequest(temp.File("none.sock"), R"({"command":"status"})");
  ASSERT_FALSE(answer.ok());
  EXPECT_THAT(std::string(answer.status().message()),
              HasSubstr("--api-socket " + temp.File("none.sock") + ": cannot connect"));
  EXPECT_FALSE(ControlServer::Create(std::string(200, 'a')).ok());
}

}  // namespace
}  // namespace skiff
