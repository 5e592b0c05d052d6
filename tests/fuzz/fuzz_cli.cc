// The operator-facing parsers: the whole command line (ParseCli, with the
// input split into arguments at NUL bytes), --config files (JSON), sizes,
// --disk and --net option strings, transports, consoles and MAC addresses. Operators are not
// attackers, but a VMM launched by orchestration often passes through
// strings from elsewhere, and a parser must never crash on them.
//
// Input: [which parser] [text...].
//
// Invariants beyond "no crash": what a parser accepts is valid — a run
// command passes ValidateConfig; a config file becomes "--name" arguments
// for known options that ParseCli takes without a crash; a size is non-zero and reads back from its
// canonical spelling; a disk has a path and a serial of at most 20 bytes;
// a net option has a tap name of 1-15 bytes, 1-16 queue pairs and
// ip/mask together; a MAC is unicast, non-zero, and formats back to text
// that parses to the same address.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "devices/net/mac_address.h"
#include "tests/fuzz/fuzz_support.h"
#include "vmm/cli.h"
#include "vmm/config.h"
#include "vmm/config_file.h"
#include "vmm/device_config.h"

namespace skiff {
namespace {

void FuzzCommandLine(std::string_view text, bool prepend_run) {
  std::vector<std::string> args;
  if (prepend_run) args.push_back("run");
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find('\0', start);
    args.emplace_back(text.substr(start, end == std::string_view::npos ? text.npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  // --config would read whatever file the input names (a FIFO, /dev/stdin):
  // configuration files have their own mode below.
  for (const std::string& a : args) {
    if (a.find("--config") != std::string::npos) return;
  }
  auto command = ParseCli(args);
  if (!command.ok()) {
    FUZZ_CHECK(!command.status().message().empty(), "an error without a message");
    return;
  }
  if (command->kind == CliCommand::Kind::kRun) {
    absl::Status valid = ValidateConfig(command->config);
    FUZZ_CHECK(valid.ok(), "ParseCli accepted a config ValidateConfig refuses: %s",
               valid.message());
  } else {
    FUZZ_CHECK(!command->text.empty(), "help or version without text");
  }
}

void FuzzConfigFile(std::string_view text) {
  const std::vector<OptionSpec> specs = RunOptionSpecs();
  auto args = ConfigFileToArgs(text, "fuzz.json", "/base", specs);
  if (!args.ok()) {
    FUZZ_CHECK(absl::StartsWith(args.status().message(), "--config fuzz.json: line "),
               "a config error without its line: %s", args.status().message());
    return;
  }
  for (const std::string& a : *args) {
    if (!absl::StartsWith(a, "--")) continue;  // a value
    const std::string name = a.substr(2, a.find('=') - 2);
    bool known = false;
    for (const OptionSpec& spec : specs) known |= spec.name == name;
    FUZZ_CHECK(known, "a config file gave the unknown option '%s'", a);
  }
  std::vector<std::string> run = {"run"};
  run.insert(run.end(), args->begin(), args->end());
  auto command = ParseCli(run);
  if (command.ok() && command->kind == CliCommand::Kind::kRun) {
    FUZZ_CHECK(ValidateConfig(command->config).ok(), "an invalid config accepted");
  }
}

void FuzzSize(std::string_view text) {
  auto size = ParseSize(text);
  if (!size.ok()) return;
  FUZZ_CHECK(*size > 0, "ParseSize('%s') accepted zero", text);
  // The same amount, spelled the canonical way, parses to the same value.
  std::string canonical;
  if (*size % (1ull << 30) == 0) {
    canonical = absl::StrCat(*size >> 30, "G");
  } else if (*size % (1ull << 20) == 0) {
    canonical = absl::StrCat(*size >> 20, "M");
  } else if (*size % 1024 == 0) {
    canonical = absl::StrCat(*size >> 10, "K");
  }
  if (canonical.empty()) return;
  auto again = ParseSize(canonical);
  FUZZ_CHECK(again.ok() && *again == *size, "ParseSize('%s') = %u but '%s' does not read back",
             text, *size, canonical);
}

void FuzzDisk(std::string_view text) {
  auto disk = ParseDiskOption(text);
  if (!disk.ok()) return;
  FUZZ_CHECK(!disk->path.empty(), "a disk without a path");
  FUZZ_CHECK(disk->serial.size() <= 20, "serial of %u bytes accepted", disk->serial.size());
}

void FuzzNet(std::string_view text) {
  auto net = ParseNetOption(text);
  if (!net.ok()) return;
  FUZZ_CHECK(!net->tap.empty() && net->tap.size() <= 15, "tap name of %u bytes accepted",
             net->tap.size());
  FUZZ_CHECK(net->queues >= 1 && net->queues <= kMaxNetQueuePairs, "queues=%u accepted",
             net->queues);
  FUZZ_CHECK(net->host_ip.has_value() == net->host_mask.has_value(), "ip without mask");
  if (net->mac) {
    FUZZ_CHECK(((*net->mac)[0] & 1) == 0, "a multicast MAC accepted");
  }
}

void FuzzMac(std::string_view text) {
  auto mac = net::ParseMac(text);
  if (!mac.ok()) return;
  FUZZ_CHECK(((*mac)[0] & 1) == 0 && *mac != net::MacAddress{}, "ParseMac('%s') accepted %s", text,
             net::FormatMac(*mac));
  auto again = net::ParseMac(net::FormatMac(*mac));
  FUZZ_CHECK(again.ok() && *again == *mac, "'%s' does not parse back", net::FormatMac(*mac));
}

}  // namespace
}  // namespace skiff

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skiff::fuzz::QuietLogs();
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 8) {
    case 0:
      skiff::FuzzCommandLine(text, /*prepend_run=*/true);
      break;
    case 1:
      skiff::FuzzCommandLine(text, /*prepend_run=*/false);
      break;
    case 2:
      skiff::FuzzSize(text);
      break;
    case 3:
      skiff::FuzzDisk(text);
      break;
    case 4:
      skiff::FuzzNet(text);
      break;
    case 5:
      skiff::FuzzMac(text);
      break;
    case 7:
      skiff::FuzzConfigFile(text);
      break;
    default:
      (void)skiff::ParseTransport(text);
      (void)skiff::ParseConsole(text);
      break;
  }
  return 0;
}
