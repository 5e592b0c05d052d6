#include "vmm/cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arch/arch.h"
#include "cxxopts.hpp"
#include "vmm/config_file.h"
#include "vmm/device_config.h"
#include "vmm/duration.h"
#include "vmm/hugepages.h"
#include "vmm/log.h"
#include "vmm/seccomp.h"
#include "vmm/status_macros.h"
#include "vmm/unique_fd.h"

#ifndef SKIFF_VERSION
#define SKIFF_VERSION "unknown"
#endif

namespace skiff {
namespace {

constexpr char kTopHelp[] =
    "Skiff: a small KVM virtual machine monitor for Linux guests.\n"
    "\n"
    "Usage:\n"
    "  skiff run --kernel FILE [options]   boot a guest\n"
    "  skiff run --config FILE [options]   the same, options from a JSON file (docs/config.md)\n"
    "  skiff ctl --api-socket PATH COMMAND talk to a running Skiff (docs/control.md):\n"
    "            status | pause | resume | shutdown | reboot | info\n"
    "  skiff --help | --version\n"
    "\n"
    "Run `skiff run --help` for the options.\n"
    "\n"
    "Exit codes (docs/exit-codes.md):\n"
    "  0      the guest powered off or rebooted, or every --expect pattern was seen\n"
    "  1      Skiff failed at run time\n"
    "  2      usage error (bad option or value)\n"
    "  3      the guest kernel panicked (pvpanic)\n"
    "  4      the guest crashed (triple fault, KVM emulation or entry failure)\n"
    "  5      --timeout expired\n"
    "  6      stopped by a signal, the console escape (Ctrl-A x) or\n"
    "         skiff ctl shutdown --force\n"
    "  7-119  chosen by the guest through the exit device (0 too)\n"
    "  120    an --expect-fail pattern was seen, or the guest ended with 0\n"
    "         before every --expect pattern was seen\n"
    "  odd    isa-debug-exit (QEMU's convention): (value << 1) | 1\n"
    "\n"
    "Choosing the exit code from guest userspace:\n";

// The option table is the single description of `skiff run`: --config keys
// and --dump-config are derived from it (RunOptionSpecs), so an option added
// here needs nothing else. Name arguments by the conventions RunOptionSpecs
// reads: FILE/PATH/DIR/SOCKET for paths, SPEC for "k=v,..." lists, N for
// counts. Flags must be read with as<bool>(), not count(): a config file or
// the command line may say --flag=false.
cxxopts::Options RunOptions() {
  cxxopts::Options options("skiff run", "Boot a Linux guest.");
  options.custom_help("--kernel FILE [options] | --config FILE [options]");
  options.add_options()
      ("kernel", "Linux kernel: x86-64 bzImage, or arm64 Image / Image.gz", cxxopts::value<std::string>(), "FILE")
      ("initramfs", "initramfs (cpio, optionally compressed)", cxxopts::value<std::string>(), "FILE")
      ("cmdline", "kernel command line", cxxopts::value<std::string>()->default_value(""), "STR")
      ("dtb", "arm64: boot this device tree instead of Skiff's own (its /chosen gets the "
              "command line and initramfs)", cxxopts::value<std::string>(), "FILE")
      ("dtb-out", "arm64: also write the device tree the guest gets to FILE (dtc -I dtb "
                  "FILE shows it)", cxxopts::value<std::string>(), "FILE")
      ("cpus", "number of vCPUs (1-255), optionally each pinned to host CPUs: "
               "N,affinity=VCPU:HOSTCPU[,...] (HOSTCPU: one CPU or a range A-B; "
               "e.g. 2,affinity=0:2,1:3)",
       cxxopts::value<std::string>()->default_value("1"), "N[,affinity=...]")
      ("memory", "guest RAM, e.g. 256M or 2G (a bare number is MiB)",
       cxxopts::value<std::string>()->default_value("256M"), "SIZE")
      ("hugepages", "back guest RAM with hugetlbfs pages of SIZE (2M when no SIZE is given, "
                    "or 1G); fails unless enough are free (see docs/nfv.md)",
       cxxopts::value<std::string>()->implicit_value("2M"), "SIZE")
      ("prefault", "allocate and touch all guest RAM at start, so the guest never "
                   "page-faults on first touch")
      ("io-affinity", "pin the I/O thread to these host CPUs (e.g. 0 or 0-1,4)",
       cxxopts::value<std::string>(), "CPULIST")
      ("rt-priority", "run vCPU threads SCHED_FIFO at priority N (1-99; needs CAP_SYS_NICE "
                      "or RLIMIT_RTPRIO)", cxxopts::value<std::string>(), "N")
      ("api-socket", "serve the JSON control protocol (docs/control.md) on a Unix socket at "
                     "PATH; skiff ctl talks to it", cxxopts::value<std::string>(), "PATH")
      ("disk", "virtio-blk disk: path=FILE[,readonly=on][,direct=on][,serial=ID]"
               "[,transport=mmio|pci] (repeatable)", cxxopts::value<std::vector<std::string>>(), "SPEC")
      ("net", "virtio-net on a tap: tap=NAME[,mac=MAC][,ip=IP,mask=MASK][,queues=N]"
              "[,vhost=on][,transport=mmio|pci] (repeatable)",
       cxxopts::value<std::vector<std::string>>(), "SPEC")
      ("device", "pass a host PCI device through with VFIO: vfio=/sys/bus/pci/devices/"
                 "DDDD:BB:DD.F[,rom=on|FILE] (or the bare address; bound to vfio-pci; rom=on shows "
                 "the guest the device's expansion ROM, rom=FILE that image instead; "
                 "repeatable); on ARM64 "
                 "also fsl-mc=dprc.N (a DPAA2 container bound to vfio-fsl-mc)",
       cxxopts::value<std::vector<std::string>>(), "SPEC")
      ("console", "guest console: serial (ttyS0) or virtio (hvc0)",
       cxxopts::value<std::string>()->default_value("serial"), "KIND")
      ("transport", "virtio transport for devices that name none: mmio or pci",
       cxxopts::value<std::string>()->default_value("pci"), "KIND")
      ("seccomp", "confine each thread to its system calls: on (a refused call stops Skiff "
                  "with exit code 1), log (the kernel logs it) or off",
       cxxopts::value<std::string>()->default_value("on"), "MODE")
      ("log-level", "log events of this level and worse: error, warn, info (adds the boot "
                    "timeline) or debug", cxxopts::value<std::string>()->default_value("warn"),
       "LEVEL")
      ("log-file", "append log lines to FILE instead of stderr", cxxopts::value<std::string>(),
       "FILE")
      ("userspace-marker", "the console line (RE2) that marks guest userspace in the info-level "
                           "boot timeline; empty for none",
       cxxopts::value<std::string>()->default_value(kDefaultUserspaceMarker), "REGEX")
      ("kvm-device", "KVM device node", cxxopts::value<std::string>()->default_value("/dev/kvm"), "PATH")
      ("timeout", "stop the guest after DURATION (e.g. 30s, 2m, 500ms) and exit 5",
       cxxopts::value<std::string>(), "DURATION")
      ("expect", "exit 0 once every such pattern (RE2 syntax) has matched a console line "
                 "(repeatable)", cxxopts::value<std::vector<std::string>>(), "REGEX")
      ("expect-fail", "exit 120 as soon as this pattern matches a console line (repeatable)",
       cxxopts::value<std::vector<std::string>>(), "REGEX")
      ("serial-log", "also write the guest console output to FILE", cxxopts::value<std::string>(),
       "FILE")
      ("serial-log-timestamps", "start each --serial-log line with seconds since the run began")
      ("junit", "write a JUnit XML report of the run to FILE", cxxopts::value<std::string>(),
       "FILE")
      ("print-cmdline", "print the guest's kernel command line (Skiff's words, then --cmdline) "
                        "and exit without booting")
      ("config", "read options from a JSON file (docs/config.md); options on the command line "
                 "come after it: theirs win, repeatable ones add to the file's",
       cxxopts::value<std::string>(), "FILE")
      ("dump-config", "print the effective configuration as a --config file and exit without "
                      "booting")
      ("h,help", "show this help");
  return options;
}

// --cpus, --io-affinity, --rt-priority, --hugepages, --prefault (docs/nfv.md).
absl::Status ParsePlacementOptions(const cxxopts::ParseResult& result, VmConfig& config) {
  // The count's range is ValidateConfig's job.
  ASSIGN_OR_RETURN(CpusOption cpus, ParseCpusOption(result["cpus"].as<std::string>()));
  config.cpus = cpus.count;
  config.placement.vcpu_affinity = std::move(cpus.affinity);
  if (result.count("io-affinity")) {
    const std::string text = result["io-affinity"].as<std::string>();
    absl::StatusOr<std::vector<uint32_t>> io = ParseCpuList(text);
    if (!io.ok()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--io-affinity '%s': %s", text, io.status().message()));
    }
    config.placement.io_affinity = *std::move(io);
  }
  if (result.count("rt-priority")) {
    const std::string text = result["rt-priority"].as<std::string>();
    int priority;
    if (!absl::SimpleAtoi(text, &priority)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--rt-priority '%s': not a number (1-99)", text));
    }
    config.placement.rt_priority = priority;
  }
  if (result.count("hugepages")) {
    config.hugepages = true;
    ASSIGN_OR_RETURN(config.hugepage_size,
                     ParseHugepageSize(result["hugepages"].as<std::string>()));
  }
  config.prefault = result["prefault"].as<bool>();
  return absl::OkStatus();
}

// "--hugepages 1G" means "--hugepages=1G": cxxopts would take the size of an
// option whose value is optional for a stray argument.
std::vector<std::string> JoinOptionalValues(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--hugepages" && i + 1 < args.size() && !args[i + 1].empty() &&
        std::isdigit(static_cast<unsigned char>(args[i + 1][0]))) {
      out.push_back(absl::StrCat(args[i], "=", args[i + 1]));
      ++i;
    } else {
      out.push_back(args[i]);
    }
  }
  return out;
}

// DPAA2 (and so vfio-fsl-mc) exists only on NXP's ARM64 SoCs.
#if defined(__aarch64__)
constexpr bool kFslMcSupported = true;
#else
constexpr bool kFslMcSupported = false;
#endif

absl::Status ParseDeviceOptions(const cxxopts::ParseResult& result, VmConfig& config) {
  // cxxopts splits vector values at commas; take the raw occurrences instead.
  for (const cxxopts::KeyValue& kv : result.arguments()) {
    if (kv.key() == "disk") {
      ASSIGN_OR_RETURN(DiskConfig disk, ParseDiskOption(kv.value()));
      config.disks.push_back(std::move(disk));
    } else if (kv.key() == "net") {
      ASSIGN_OR_RETURN(NetConfig net, ParseNetOption(kv.value()));
      config.nets.push_back(std::move(net));
    } else if (kv.key() == "device" && IsFslMcDeviceOption(kv.value())) {
      ASSIGN_OR_RETURN(FslMcDeviceConfig device, ParseFslMcDeviceOption(kv.value()));
      if (!kFslMcSupported) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "--device fsl-mc=%s: fsl-mc passthrough needs an ARM64 host/guest", device.dprc));
      }
      for (const FslMcDeviceConfig& other : config.fsl_mc_devices) {
        if (other == device) {
          return absl::InvalidArgumentError(
              absl::StrFormat("--device fsl-mc=%s: given twice", device.dprc));
        }
      }
      config.fsl_mc_devices.push_back(std::move(device));
    } else if (kv.key() == "device") {
      ASSIGN_OR_RETURN(VfioDeviceConfig device, ParseDeviceOption(kv.value()));
      for (const VfioDeviceConfig& other : config.vfio_devices) {
        if (other.address == device.address) {
          return absl::InvalidArgumentError(
              absl::StrFormat("--device vfio=%s: given twice", device.address));
        }
      }
      config.vfio_devices.push_back(std::move(device));
    }
  }
  auto transport = ParseTransport(result["transport"].as<std::string>());
  if (!transport.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", transport.status().message()));
  }
  config.default_transport = *transport;
  ASSIGN_OR_RETURN(config.console, ParseConsole(result["console"].as<std::string>()));
  return absl::OkStatus();
}

absl::Status ParseCiOptions(const cxxopts::ParseResult& result, CiOptions& ci) {
  if (result.count("timeout")) {
    const std::string text = result["timeout"].as<std::string>();
    absl::StatusOr<absl::Duration> timeout = ParseDuration(text);
    if (!timeout.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--timeout: ", timeout.status().message()));
    }
    ci.timeout = *timeout;
  }
  // Raw occurrences: cxxopts would split a pattern such as "a{1,3}" at its comma.
  for (const cxxopts::KeyValue& kv : result.arguments()) {
    if (kv.key() == "expect") ci.expect.push_back(kv.value());
    if (kv.key() == "expect-fail") ci.expect_fail.push_back(kv.value());
  }
  if (result.count("serial-log")) ci.serial_log = result["serial-log"].as<std::string>();
  ci.serial_log_timestamps = result["serial-log-timestamps"].as<bool>();
  if (result.count("junit")) ci.junit = result["junit"].as<std::string>();
  return absl::OkStatus();
}

// cxxopts matches every argument that starts with '-' against a std::regex,
// and libstdc++'s regex engine recurses once per character: a 38 KB
// "--cmdline=..." overflowed the 8 MiB main stack (SIGSEGV; found by
// fuzzing). So no such argument longer than this reaches cxxopts: a long
// "--name=value" is passed as "--name" "value" (an option's value is never
// matched), anything else that long is a usage error.
constexpr size_t kMaxDashArgument = 1024;

absl::StatusOr<std::vector<std::string>> SplitLongOptions(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    if (a.size() <= kMaxDashArgument || a[0] != '-') {
      out.push_back(a);
      continue;
    }
    const size_t equals = a.find('=');
    if (a.rfind("--", 0) == 0 && equals != std::string::npos && equals <= 64 &&
        (a.size() - equals - 1 <= kMaxDashArgument || a[equals + 1] != '-')) {
      out.push_back(a.substr(0, equals));
      out.push_back(a.substr(equals + 1));
      continue;
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "argument '%s...' is too long (%d bytes; see skiff run --help)", a.substr(0, 32),
        a.size()));
  }
  return out;
}

// Options that are actions, or the config file itself: not config keys and
// not part of a dumped configuration.
constexpr std::array<std::string_view, 4> kNotConfigKeys = {"help", "config", "dump-config",
                                                            "print-cmdline"};

std::vector<OptionSpec> SpecsOf(const cxxopts::Options& options) {
  std::vector<OptionSpec> specs;
  for (const std::string& group : options.groups()) {
    for (const cxxopts::HelpOptionDetails& d : options.group_help(group).options) {
      if (d.l.empty()) continue;
      OptionSpec spec;
      spec.name = d.l.front();
      if (std::find(kNotConfigKeys.begin(), kNotConfigKeys.end(), spec.name) !=
          kNotConfigKeys.end()) {
        continue;
      }
      spec.kind = d.is_boolean     ? OptionSpec::Kind::kFlag
                  : d.is_container ? OptionSpec::Kind::kList
                                   : OptionSpec::Kind::kValue;
      const std::string& arg = d.arg_help;
      if (arg == "FILE" || arg == "PATH" || arg == "DIR" || arg == "SOCKET") {
        spec.value = OptionSpec::Value::kPath;
      } else if (arg == "SPEC") {
        spec.value = OptionSpec::Value::kKeyValues;
      }
      spec.integer = arg == "N" || arg.starts_with("N[");
      if (d.has_default) spec.default_value = d.default_value;
      if (d.has_implicit) spec.implicit_value = d.implicit_value;
      specs.push_back(std::move(spec));
    }
  }
  return specs;
}

std::string CurrentDirectory() {
  char buffer[4096];
  return ::getcwd(buffer, sizeof(buffer)) != nullptr ? buffer : "";
}

// A config file is small; a pipe (`--config <(...)`) is fine too.
constexpr size_t kMaxConfigBytes = 1 << 20;

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--config %s: %s", path, std::strerror(errno)));
  }
  std::string text;
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--config %s: %s", path, std::strerror(errno)));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--config %s: larger than %d bytes", path, kMaxConfigBytes));
    }
  }
  return text;
}

// The --config file as arguments, its relative paths made absolute.
absl::StatusOr<std::vector<std::string>> ConfigArgs(const std::string& path,
                                                    const std::vector<OptionSpec>& specs,
                                                    std::map<std::string, int>* key_lines) {
  ASSIGN_OR_RETURN(const std::string text, ReadConfigFile(path));
  const std::string absolute = ResolvePath(CurrentDirectory(), path);
  const std::string base_dir = absolute.substr(0, absolute.rfind('/') + 1);
  ASSIGN_OR_RETURN(std::vector<std::string> args,
                   ConfigFileToArgs(text, path, base_dir, specs, key_lines));
  return SplitLongOptions(args);
}

cxxopts::ParseResult Parse(cxxopts::Options& options, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  argv.push_back("skiff run");
  for (const std::string& a : args) argv.push_back(a.c_str());
  return options.parse(static_cast<int>(argv.size()), argv.data());
}

// What each option ended up as, for --dump-config.
std::vector<OptionValues> EffectiveValues(const std::vector<OptionSpec>& specs,
                                          const cxxopts::ParseResult& result) {
  std::vector<OptionValues> out;
  for (const OptionSpec& spec : specs) {
    OptionValues option{&spec, {}};
    if (spec.kind == OptionSpec::Kind::kFlag) {
      option.values.push_back(result[spec.name].as<bool>() ? "true" : "false");
    } else {
      // Raw occurrences: typed values and split lists would not read back.
      for (const cxxopts::KeyValue& kv : result.arguments()) {
        if (kv.key() == spec.name) option.values.push_back(kv.value());
      }
      if (spec.kind == OptionSpec::Kind::kValue && option.values.size() > 1) {
        option.values.erase(option.values.begin(), option.values.end() - 1);
      }
      if (option.values.empty() && spec.default_value) option.values.push_back(*spec.default_value);
    }
    out.push_back(std::move(option));
  }
  return out;
}

// The command for the parsed arguments (cxxopts exceptions pass through).
absl::StatusOr<CliCommand> BuildCommand(const std::vector<OptionSpec>& specs,
                                        const cxxopts::ParseResult& result) {
  CliCommand command;
  if (!result.unmatched().empty()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unexpected argument '%s' (see skiff run --help)", result.unmatched()[0]));
  }
  VmConfig& config = command.config;
  if (!result.count("kernel")) {
    return absl::InvalidArgumentError("--kernel FILE is required (see skiff run --help)");
  }
  config.kernel_path = result["kernel"].as<std::string>();
  if (result.count("initramfs")) {
    config.initramfs_path = result["initramfs"].as<std::string>();
  }
  config.cmdline = result["cmdline"].as<std::string>();
  if (result.count("dtb")) config.dtb_path = result["dtb"].as<std::string>();
  if (result.count("dtb-out")) config.dtb_out_path = result["dtb-out"].as<std::string>();
  RETURN_IF_ERROR(ParsePlacementOptions(result, config));
  auto memory = ParseSize(result["memory"].as<std::string>());
  if (!memory.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--memory: ", memory.status().message()));
  }
  config.memory_bytes = *memory;
  if (result.count("api-socket")) config.api_socket = result["api-socket"].as<std::string>();
  config.kvm_device = result["kvm-device"].as<std::string>();
  ASSIGN_OR_RETURN(config.seccomp, ParseSeccompMode(result["seccomp"].as<std::string>()));
  RETURN_IF_ERROR(ParseDeviceOptions(result, config));
  RETURN_IF_ERROR(ParseCiOptions(result, config.ci));
  std::string level = result["log-level"].as<std::string>();
  if (!ParseLogLevel(level, &config.log_level)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--log-level '%s': use error, warn, info or debug", level));
  }
  if (result.count("log-file")) config.log_file = result["log-file"].as<std::string>();
  config.userspace_marker = result["userspace-marker"].as<std::string>();
  RETURN_IF_ERROR(ValidateConfig(command.config));
  if (result["dump-config"].as<bool>()) {
    command.kind = CliCommand::Kind::kDumpConfig;
    command.text = DumpConfig(EffectiveValues(specs, result), CurrentDirectory());
    return command;
  }
  command.kind = result["print-cmdline"].as<bool>() ? CliCommand::Kind::kPrintCmdline
                                                    : CliCommand::Kind::kRun;
  return command;
}

// A value from the config file that the option refuses gets the option's
// message, as on the command line; say where in the file it was set, when
// the command line did not set it too.
absl::Status NameConfigLine(const absl::Status& error, const cxxopts::ParseResult& cli,
                            const std::string& config_path,
                            const std::map<std::string, int>& key_lines) {
  const std::string message(error.message());
  if (message.rfind("--", 0) != 0 || message.rfind("--config ", 0) == 0) return error;
  size_t end = 2;
  while (end < message.size() && (absl::ascii_isalnum(static_cast<unsigned char>(message[end])) ||
                                  message[end] == '-')) {
    ++end;
  }
  const std::string name = message.substr(2, end - 2);
  auto line = key_lines.find(name);
  if (line == key_lines.end() || cli.count(name) > 0) return error;
  return absl::Status(error.code(), absl::StrFormat("%s (set in --config %s, line %d)", message,
                                                    config_path, line->second));
}

absl::StatusOr<CliCommand> ParseRun(const std::vector<std::string>& raw_args) {
  ASSIGN_OR_RETURN(std::vector<std::string> args,
                   SplitLongOptions(JoinOptionalValues(raw_args)));
  cxxopts::Options options = RunOptions();
  const std::vector<OptionSpec> specs = SpecsOf(options);
  try {
    // The command line alone first, for --help and --config; then the
    // config file's arguments followed by the command line's, so that the
    // command line wins wherever an option takes one value.
    cxxopts::ParseResult cli = Parse(options, args);
    if (cli.count("help")) {
      CliCommand command;
      command.kind = CliCommand::Kind::kHelp;
      command.text = options.help();
      return command;
    }
    if (cli.count("config") > 1) {
      return absl::InvalidArgumentError("--config: give one configuration file");
    }
    std::string config_path;
    std::map<std::string, int> key_lines;
    if (cli.count("config")) {
      config_path = cli["config"].as<std::string>();
      ASSIGN_OR_RETURN(std::vector<std::string> config_args,
                       ConfigArgs(config_path, specs, &key_lines));
      args.insert(args.begin(), config_args.begin(), config_args.end());
    }
    absl::StatusOr<CliCommand> command = BuildCommand(specs, Parse(options, args));
    if (!command.ok() && !key_lines.empty()) {
      return NameConfigLine(command.status(), cli, config_path, key_lines);
    }
    return command;
  } catch (const cxxopts::exceptions::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(e.what(), " (see skiff run --help)"));
  }
}

constexpr char kCtlHelp[] =
    "Usage: skiff ctl --api-socket PATH COMMAND\n"
    "\n"
    "Sends COMMAND to the Skiff that serves PATH (skiff run --api-socket PATH)\n"
    "and prints its JSON answer. Exit status 0 if the command succeeded, 1 if\n"
    "Skiff refused it or could not be reached, 2 on a usage error.\n"
    "\n"
    "Commands (docs/control.md):\n"
    "  status    running or paused, uptime\n"
    "  pause     stop every vCPU (the guest's clock keeps going)\n"
    "  resume    let the vCPUs run again\n"
    "  shutdown  press the guest's power button (an orderly poweroff; x86: ACPI,\n"
    "            arm64: a gpio-keys power key on a PL061 GPIO line);\n"
    "            --force stops the VM at once instead\n"
    "  reboot    hard reset: Skiff ends the run as on a guest reboot (exit 0)\n"
    "  info      devices, memory, vCPUs with their host thread ids and CPUs\n";

absl::StatusOr<CliCommand> ParseCtl(const std::vector<std::string>& args) {
  CliCommand command;
  command.kind = CliCommand::Kind::kCtl;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      command.kind = CliCommand::Kind::kHelp;
      command.text = kCtlHelp;
      return command;
    }
    if (a == "--api-socket" && i + 1 < args.size()) {
      command.api_socket = args[++i];
    } else if (a.rfind("--api-socket=", 0) == 0) {
      command.api_socket = a.substr(std::strlen("--api-socket="));
    } else if (a == "--force") {
      command.ctl_force = true;
    } else if (!a.empty() && a[0] != '-' && command.ctl_command.empty()) {
      command.ctl_command = a;
    } else {
      return absl::InvalidArgumentError(
          absl::StrFormat("ctl: unexpected argument '%s' (see skiff ctl --help)", a));
    }
  }
  if (command.api_socket.empty()) {
    return absl::InvalidArgumentError("ctl: --api-socket PATH is required (see skiff ctl --help)");
  }
  if (command.ctl_command.empty()) {
    return absl::InvalidArgumentError(
        "ctl: no command (status, pause, resume, shutdown, reboot or info)");
  }
  if (command.ctl_force && command.ctl_command != "shutdown") {
    return absl::InvalidArgumentError("ctl: --force goes with shutdown only");
  }
  return command;
}

}  // namespace

absl::StatusOr<CliCommand> ParseCli(const std::vector<std::string>& args) {
  CliCommand command;
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    command.kind = CliCommand::Kind::kHelp;
    command.text = absl::StrCat(kTopHelp, arch::GuestExitExamples());
    return command;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    command.kind = CliCommand::Kind::kVersion;
    command.text = absl::StrCat("skiff ", SKIFF_VERSION, "\n");
    return command;
  }
  if (args[0] == "ctl") {
    return ParseCtl(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  if (args[0] == "run") {
    return ParseRun(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "unknown command '%s' (see skiff --help)", args[0]));
}

std::vector<OptionSpec> RunOptionSpecs() { return SpecsOf(RunOptions()); }

}  // namespace skiff
