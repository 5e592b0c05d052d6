#include "vmm/control_protocol.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace skiff {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

// Records what the protocol asked of the VM; answers as told.
class FakeVm : public VmControl {
 public:
  json Status() override {
    calls.push_back("status");
    return {{"state", paused ? "paused" : "running"}, {"uptime_s", 1.5}};
  }
  absl::Status Pause() override {
    calls.push_back("pause");
    if (!fail.ok()) return fail;
    paused = true;
    return absl::OkStatus();
  }
  absl::Status Resume() override {
    calls.push_back("resume");
    paused = false;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> Shutdown(bool force) override {
    calls.push_back(force ? "shutdown-force" : "shutdown");
    if (!fail.ok()) return fail;
    return std::string(force ? "stop" : "test power button");
  }
  absl::Status Reboot() override {
    calls.push_back("reboot");
    return absl::OkStatus();
  }
  json Info() override {
    calls.push_back("info");
    return {{"vcpus", json::array({{{"index", 0}, {"tid", 42}}})}};
  }

  std::vector<std::string> calls;
  bool paused = false;
  absl::Status fail = absl::OkStatus();
};

json Handle(const std::string& line, FakeVm& vm) {
  std::string answer = HandleControlLine(line, vm);
  EXPECT_EQ(answer.find('\n'), std::string::npos) << "one line per answer";
  json parsed = json::parse(answer, nullptr, false);
  EXPECT_TRUE(parsed.is_object()) << answer;
  return parsed;
}

TEST(ControlProtocolTest, ParsesEveryCommand) {
  for (const char* name : {"status", "pause", "resume", "shutdown", "reboot", "info"}) {
    auto request = ParseControlRequest(std::string("{\"command\":\"") + name + "\"}");
    ASSERT_TRUE(request.ok()) << name << ": " << request.status();
    EXPECT_EQ(ControlCommandName(request->command), name);
    EXPECT_FALSE(request->force);
    EXPECT_FALSE(request->id.has_value());
  }
}

TEST(ControlProtocolTest, ForceAndId) {
  auto request = ParseControlRequest(R"({"command": "shutdown", "force": true, "id": 7})");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->command, ControlCommand::kShutdown);
  EXPECT_TRUE(request->force);
  EXPECT_EQ(*request->id, 7);
  // What `skiff ctl` sends parses back to the same request.
  auto sent = ParseControlRequest(MakeControlRequest("shutdown", true));
  ASSERT_TRUE(sent.ok());
  EXPECT_TRUE(sent->force);
  EXPECT_EQ(MakeControlRequest("pause", false), R"({"command":"pause"})");
}

TEST(ControlProtocolTest, RefusesBadRequestsWithOneLineErrors) {
  const std::pair<std::string, std::string> cases[] = {
      {"status", "not JSON"},
      {"{\"command\": \"status\"", "not JSON"},
      {"[\"status\"]", "not a JSON object"},
      {"{}", "no \"command\""},
      {"{\"command\": 3}", "no \"command\""},
      {"{\"command\": \"halt\"}", "unknown command 'halt'"},
      {"{\"command\": \"pause\", \"force\": true}", "unknown key \"force\" for command pause"},
      {"{\"command\": \"shutdown\", \"force\": \"yes\"}", "\"force\" must be true or false"},
      {"{\"command\": \"status\", \"extra\": 1}", "unknown key \"extra\""},
      {std::string(kMaxControlLine + 1, ' '), "longer than"},
  };
  for (const auto& [line, message] : cases) {
    auto request = ParseControlRequest(line);
    ASSERT_FALSE(request.ok()) << line;
    EXPECT_THAT(std::string(request.status().message()), HasSubstr(message)) << line;
    EXPECT_EQ(std::string(request.status().message()).find('\n'), std::string::npos);
  }
}

TEST(ControlProtocolTest, DispatchesAndAnswers) {
  FakeVm vm;
  json answer = Handle(R"({"command":"pause","id":"a"})", vm);
  EXPECT_EQ(answer["ok"], true);
  EXPECT_EQ(answer["command"], "pause");
  EXPECT_EQ(answer["id"], "a");
  EXPECT_EQ(answer["result"]["state"], "paused");
  answer = Handle(R"({"command":"resume"})", vm);
  EXPECT_EQ(answer["result"]["state"], "running");
  answer = Handle(R"({"command":"info"})", vm);
  EXPECT_EQ(answer["result"]["vcpus"][0]["tid"], 42);
  answer = Handle(R"({"command":"shutdown"})", vm);
  EXPECT_EQ(answer["result"]["requested"], "test power button");  // as the VM says
  answer = Handle(R"({"command":"shutdown","force":true})", vm);
  EXPECT_EQ(answer["result"]["requested"], "stop");
  answer = Handle(R"({"command":"reboot"})", vm);
  EXPECT_EQ(answer["ok"], true);
  EXPECT_THAT(vm.calls, ::testing::ElementsAre("pause", "status", "resume", "status", "info",
                                               "shutdown", "shutdown-force", "reboot"));
}

TEST(ControlProtocolTest, VmErrorsBecomeErrorAnswers) {
  FakeVm vm;
  vm.fail = absl::UnimplementedError("no power button here");
  json answer = Handle(R"({"command":"shutdown"})", vm);
  EXPECT_EQ(answer["ok"], false);
  EXPECT_EQ(answer["error"], "no power button here");
  EXPECT_FALSE(answer.contains("result"));
  answer = Handle(R"({"command":"pause"})", vm);
  EXPECT_EQ(answer["ok"], false);
  EXPECT_FALSE(vm.paused);
  // A request that never reached the VM.
  size_t calls = vm.calls.size();
  answer = Handle("junk \xff\xfe", vm);
  EXPECT_EQ(answer["ok"], false);
  EXPECT_THAT(answer["error"].get<std::string>(), HasSubstr("not JSON"));
  EXPECT_EQ(vm.calls.size(), calls);
}

}  // namespace
}  // namespace skiff
