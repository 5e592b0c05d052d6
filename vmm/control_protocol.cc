#include "vmm/control_protocol.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace skiff {
namespace {

using json = nlohmann::json;

constexpr std::pair<ControlCommand, std::string_view> kCommands[] = {
    {ControlCommand::kStatus, "status"}, {ControlCommand::kPause, "pause"},
    {ControlCommand::kResume, "resume"}, {ControlCommand::kShutdown, "shutdown"},
    {ControlCommand::kReboot, "reboot"}, {ControlCommand::kInfo, "info"},
};

std::string CommandList() {
  std::vector<std::string> names;
  for (const auto& [command, name] : kCommands) names.emplace_back(name);
  return absl::StrJoin(names, ", ");
}

// Invalid UTF-8 from a client must not make dump() throw.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

json Answer(const ControlRequest& request, bool ok) {
  json answer = json::object();
  answer["ok"] = ok;
  answer["command"] = std::string(ControlCommandName(request.command));
  if (request.id) answer["id"] = *request.id;
  return answer;
}

}  // namespace

std::string_view ControlCommandName(ControlCommand command) {
  for (const auto& [c, name] : kCommands) {
    if (c == command) return name;
  }
  return "?";
}

absl::StatusOr<ControlCommand> ParseControlCommand(std::string_view name) {
  for (const auto& [command, n] : kCommands) {
    if (n == name) return command;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown command '%s' (known: %s)", name.substr(0, 64), CommandList()));
}

absl::StatusOr<ControlRequest> ParseControlRequest(std::string_view line) {
  if (line.size() > kMaxControlLine) {
    return absl::InvalidArgumentError(
        absl::StrFormat("request longer than %u bytes", kMaxControlLine));
  }
  // No exceptions: a parse failure yields a "discarded" value.
  json request = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) {
    return absl::InvalidArgumentError(
        "request is not JSON (send one object per line, e.g. {\"command\": \"status\"})");
  }
  if (!request.is_object()) {
    return absl::InvalidArgumentError("request is not a JSON object");
  }
  ControlRequest parsed;
  if (auto id = request.find("id"); id != request.end()) parsed.id = *id;
  auto command = request.find("command");
  if (command == request.end() || !command->is_string()) {
    return absl::InvalidArgumentError("request has no \"command\" string");
  }
  absl::StatusOr<ControlCommand> which = ParseControlCommand(command->get<std::string>());
  if (!which.ok()) return which.status();
  parsed.command = *which;
  for (const auto& [key, value] : request.items()) {
    if (key == "command" || key == "id") continue;
    if (key == "force" && parsed.command == ControlCommand::kShutdown) {
      if (!value.is_boolean()) {
        return absl::InvalidArgumentError("\"force\" must be true or false");
      }
      parsed.force = value.get<bool>();
      continue;
    }
    return absl::InvalidArgumentError(absl::StrFormat("unknown key \"%s\" for command %s",
                                                      key.substr(0, 64),
                                                      ControlCommandName(parsed.command)));
  }
  return parsed;
}

std::string MakeControlRequest(std::string_view command, bool force) {
  json request = json::object();
  request["command"] = std::string(command);
  if (force) request["force"] = true;
  return Dump(request);
}

std::string ControlErrorLine(std::string_view message) {
  json answer = json::object();
  answer["ok"] = false;
  answer["error"] = std::string(message);
  return Dump(answer);
}

std::string HandleControlLine(std::string_view line, VmControl& vm) {
  absl::StatusOr<ControlRequest> request = ParseControlRequest(line);
  if (!request.ok()) return ControlErrorLine(std::string(request.status().message()));
  absl::Status done = absl::OkStatus();
  json result;
  switch (request->command) {
    case ControlCommand::kStatus:
      result = vm.Status();
      break;
    case ControlCommand::kPause:
      done = vm.Pause();
      if (done.ok()) result = vm.Status();
      break;
    case ControlCommand::kResume:
      done = vm.Resume();
      if (done.ok()) result = vm.Status();
      break;
    case ControlCommand::kShutdown: {
      absl::StatusOr<std::string> requested = vm.Shutdown(request->force);
      done = requested.status();
      if (done.ok()) result = {{"requested", *requested}};
      break;
    }
    case ControlCommand::kReboot:
      done = vm.Reboot();
      if (done.ok()) result = {{"requested", "reset"}};
      break;
    case ControlCommand::kInfo:
      result = vm.Info();
      break;
  }
  json answer = Answer(*request, done.ok());
  if (done.ok()) {
    answer["result"] = std::move(result);
  } else {
    answer["error"] = std::string(done.message());
  }
  return Dump(answer);
}

}  // namespace skiff
