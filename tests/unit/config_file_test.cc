// --config and --dump-config: the JSON -> argument translation, precedence
// against the command line, errors with lines, and the dump's round trip.
#include "vmm/config_file.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/temp_dir.h"
#include "vmm/cli.h"

namespace skiff {
namespace {

using Args = std::vector<std::string>;
using testing::TempDir;

absl::StatusOr<Args> Translate(const std::string& json, const std::string& base = "/etc/vm") {
  return ConfigFileToArgs(json, "vm.json", base, RunOptionSpecs());
}

std::string Error(const std::string& json) {
  auto args = Translate(json);
  EXPECT_FALSE(args.ok()) << json;
  EXPECT_EQ(args.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(args.status().message());
}

void WriteText(const std::string& path, const std::string& text) {
  testing::WriteFile(path, std::vector<uint8_t>(text.begin(), text.end()));
}

const OptionSpec* Find(const std::vector<OptionSpec>& specs, const std::string& name) {
  for (const OptionSpec& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TEST(RunOptionSpecsTest, DerivedFromTheOptionTable) {
  const std::vector<OptionSpec> specs = RunOptionSpecs();
  ASSERT_NE(Find(specs, "prefault"), nullptr);
  EXPECT_EQ(Find(specs, "prefault")->kind, OptionSpec::Kind::kFlag);
  EXPECT_EQ(Find(specs, "hugepages")->kind, OptionSpec::Kind::kValue);
  EXPECT_EQ(Find(specs, "hugepages")->implicit_value, "2M");
  EXPECT_EQ(Find(specs, "disk")->kind, OptionSpec::Kind::kList);
  EXPECT_EQ(Find(specs, "disk")->value, OptionSpec::Value::kKeyValues);
  EXPECT_EQ(Find(specs, "expect")->kind, OptionSpec::Kind::kList);
  EXPECT_EQ(Find(specs, "expect")->value, OptionSpec::Value::kText);
  EXPECT_EQ(Find(specs, "kernel")->value, OptionSpec::Value::kPath);
  EXPECT_EQ(Find(specs, "log-file")->value, OptionSpec::Value::kPath);
  EXPECT_EQ(Find(specs, "cpus")->kind, OptionSpec::Kind::kValue);
  EXPECT_TRUE(Find(specs, "cpus")->integer);
  EXPECT_EQ(Find(specs, "memory")->default_value, "256M");
  // Actions and the config file itself are no config keys.
  for (const char* action : {"help", "config", "dump-config", "print-cmdline"}) {
    EXPECT_EQ(Find(specs, action), nullptr) << action;
  }
}

TEST(ConfigFileTest, EveryKindOfOption) {
  auto args = Translate(R"({
    "kernel": "bzImage",
    "cmdline": "console=ttyS0 -- init args",
    "cpus": 2,
    "memory": "1G",
    "prefault": true,
    "serial-log-timestamps": false,
    "cmdline": "x"
  })");
  // A key given twice is refused (see JsonLinesTest); one of each:
  ASSERT_FALSE(args.ok());
  args = Translate(R"({
    "kernel": "bzImage",
    "cmdline": "console=ttyS0 -- init args",
    "cpus": 2,
    "memory": "1G",
    "prefault": true,
    "serial-log-timestamps": false,
    "expect": ["login:", "a{1,3}"],
    "expect-fail": [],
    "disk": ["path=root.img,readonly=on", {"path": "/abs/data.img", "serial": "d1",
             "direct": false}],
    "net": [{"tap": "tap0", "queues": 2, "vhost": true}],
    "timeout": "-1s"
  })");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args, (Args{"--kernel",
                         "/etc/vm/bzImage",
                         "--cmdline",
                         "console=ttyS0 -- init args",
                         "--cpus",
                         "2",
                         "--memory",
                         "1G",
                         "--prefault",  // and nothing for false
                         "--expect",
                         "login:",
                         "--expect",
                         "a{1,3}",
                         "--disk",
                         "path=/etc/vm/root.img,readonly=on",
                         "--disk",
                         "path=/abs/data.img,serial=d1,direct=off",
                         "--net",
                         "tap=tap0,queues=2,vhost=on",
                         "--timeout=-1s"}));
}

// "--hugepages" alone means 2M pages: in a file, true says that, false
// leaves the option out, and a size is a size.
TEST(ConfigFileTest, OptionalValuesTakeABoolean) {
  auto on = Translate(R"({"hugepages": true})");
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(*on, (Args{"--hugepages=2M"}));
  auto off = Translate(R"({"hugepages": false})");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE(off->empty());
  auto sized = Translate(R"({"hugepages": "1G"})");
  ASSERT_TRUE(sized.ok()) << sized.status();
  EXPECT_EQ(*sized, (Args{"--hugepages=1G"}));
}

TEST(ConfigFileTest, RelativePathsResolveAgainstTheFilesDirectory) {
  auto args = Translate(
      R"({"kernel": "../k", "initramfs": "/boot/i", "serial-log": "out/s.log", "junit": "",
          "disk": ["path=d.img", {"path": "e.img"}], "kvm-device": "/dev/kvm",
          "cmdline": "root=relative/not/a/path"})",
      "/srv/vms/");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(*args, (Args{"--kernel", "/srv/vms/../k", "--initramfs", "/boot/i", "--serial-log",
                         "/srv/vms/out/s.log", "--junit=", "--disk", "path=/srv/vms/d.img",
                         "--disk", "path=/srv/vms/e.img", "--kvm-device", "/dev/kvm", "--cmdline",
                         "root=relative/not/a/path"}));
}

TEST(ConfigFileTest, UnknownKeysNameTheKeyAndLine) {
  EXPECT_EQ(Error("{\n  \"kernel\": \"k\",\n\n  \"dsik\": []\n}"),
            "--config vm.json: line 4: unknown key 'dsik': not a skiff run option (see skiff "
            "run --help)");
  // Actions are not config keys either.
  EXPECT_NE(Error("{\"config\": \"other.json\"}").find("line 1: unknown key 'config'"),
            std::string::npos);
  EXPECT_NE(Error("{\n\"help\": true}").find("line 2: unknown key 'help'"), std::string::npos);
}

TEST(ConfigFileTest, WrongTypesNameTheKeyAndLine) {
  EXPECT_EQ(Error("{\n\"prefault\": \"yes\"}"),
            "--config vm.json: line 2: key 'prefault': must be true or false, not a string");
  EXPECT_EQ(Error("{\"kernel\": \"k\",\n\"cpus\": [2]}"),
            "--config vm.json: line 2: key 'cpus': must be a string or an integer, not an array");
  EXPECT_EQ(Error("{\n\n\"cpus\": 1.5}"),
            "--config vm.json: line 3: key 'cpus': must be a string or an integer, not a "
            "fraction");
  EXPECT_NE(Error("{\n\"expect\": \"login:\"}")
                .find("line 2: key 'expect': must be an array (--expect is repeatable)"),
            std::string::npos);
  EXPECT_EQ(Error("{\"disk\": [\n  \"path=a\",\n  7.5,\n  {}]}"),
            "--config vm.json: line 3: key 'disk', item 2: must be a \"key=value,...\" string "
            "or an object of them, not a fraction");
  EXPECT_EQ(Error("{\"disk\": [\n  {\"path\": \"a\",\n   \"readonly\": null}]}"),
            "--config vm.json: line 2: key 'disk', item 1, member 'readonly': must be a string, "
            "a boolean or an integer, not null");
  EXPECT_NE(Error("{\"disk\": [{\"path\": \"a,b\"}]}").find("cannot contain ','"),
            std::string::npos);
  EXPECT_NE(Error("{\"disk\": [{\"pa=th\": \"a\"}]}").find("cannot be empty or contain"),
            std::string::npos);
  // An object is only for SPEC options.
  EXPECT_NE(Error("{\"kernel\": {\"path\": \"k\"}}")
                .find("key 'kernel': must be a string or an "
                      "integer, not an object"),
            std::string::npos);
  EXPECT_NE(Error("{\"cmdline\": \"a\\u0000b\"}").find("NUL"), std::string::npos);
  EXPECT_NE(Error("{\"cmdline\": null}").find("not null"), std::string::npos);
}

TEST(ConfigFileTest, SyntaxErrorsSayLineAndColumn) {
  const std::string message = Error("{\n  \"kernel\": \"k\"\n  \"cpus\": 2\n}");
  EXPECT_EQ(message.rfind("--config vm.json: line 3, column ", 0), 0u) << message;
  EXPECT_EQ(Error("[\"--kernel\", \"k\"]"),
            "--config vm.json: line 1: the file must hold a JSON object of skiff run options, "
            "not an array");
}

// --config through ParseCli, with real files.
class ConfigCliTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    WriteText(path, text);
    return path;
  }
  absl::StatusOr<CliCommand> Run(Args args) {
    args.insert(args.begin(), "run");
    return ParseCli(args);
  }
  TempDir dir_;
};

TEST_F(ConfigCliTest, TheFileGivesTheOptions) {
  const std::string config = Write("vm.json", R"({
    "kernel": "bzImage", "initramfs": "initrd", "cmdline": "quiet", "cpus": 2,
    "memory": 512, "console": "virtio", "transport": "mmio", "log-level": "info",
    "log-file": "skiff.log", "userspace-marker": "^ready$", "timeout": "30s",
    "expect": ["login:"], "expect-fail": ["Kernel panic"], "serial-log": "console.log",
    "serial-log-timestamps": true, "junit": "report.xml",
    "disk": [{"path": "root.img", "readonly": true, "transport": "pci"}],
    "net": ["tap=tap0,mac=52:54:00:12:34:56,ip=10.0.0.1,mask=255.255.255.0"]})");
  auto cmd = Run({"--config", config});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, CliCommand::Kind::kRun);
  const VmConfig& c = cmd->config;
  EXPECT_EQ(c.kernel_path, dir_.File("bzImage"));
  EXPECT_EQ(c.initramfs_path, dir_.File("initrd"));
  EXPECT_EQ(c.cmdline, "quiet");
  EXPECT_EQ(c.cpus, 2u);
  EXPECT_EQ(c.memory_bytes, 512ull << 20);
  EXPECT_EQ(c.console, ConsoleDevice::kVirtio);
  EXPECT_EQ(c.default_transport, VirtioTransport::kMmio);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  EXPECT_EQ(c.log_file, dir_.File("skiff.log"));
  EXPECT_EQ(c.userspace_marker, "^ready$");
  EXPECT_EQ(c.ci.timeout, absl::Seconds(30));
  EXPECT_EQ(c.ci.expect, Args{"login:"});
  EXPECT_EQ(c.ci.expect_fail, Args{"Kernel panic"});
  EXPECT_EQ(c.ci.serial_log, dir_.File("console.log"));
  EXPECT_TRUE(c.ci.serial_log_timestamps);
  EXPECT_EQ(c.ci.junit, dir_.File("report.xml"));
  ASSERT_EQ(c.disks.size(), 1u);
  EXPECT_EQ(c.disks[0].path, dir_.File("root.img"));
  EXPECT_TRUE(c.disks[0].readonly);
  EXPECT_EQ(c.disks[0].transport, VirtioTransport::kPci);
  ASSERT_EQ(c.nets.size(), 1u);
  EXPECT_EQ(c.nets[0].tap, "tap0");
  EXPECT_EQ(c.nets[0].host_ip, "10.0.0.1");
}

TEST_F(ConfigCliTest, TheCommandLineWinsAndAddsToLists) {
  const std::string config = Write("vm.json", R"({
    "kernel": "k", "cpus": 2, "prefault": true, "memory": "64M", "serial-log": "s.log",
    "serial-log-timestamps": true,
    "expect": ["from-file"], "disk": ["path=a.img"]})");
  // Before or after --config on the command line makes no difference.
  auto cmd =
      Run({"--cpus", "4", "--config", config, "--prefault=false", "--serial-log-timestamps=false",
           "--expect", "from-cli", "--disk", "path=b.img", "--kernel", "k2"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  const VmConfig& c = cmd->config;
  EXPECT_EQ(c.kernel_path, "k2");  // relative on the command line: as given
  EXPECT_EQ(c.cpus, 4u);
  EXPECT_FALSE(c.prefault);
  EXPECT_FALSE(c.ci.serial_log_timestamps);
  EXPECT_EQ(c.memory_bytes, 64ull << 20);  // from the file
  EXPECT_EQ(c.ci.expect, (Args{"from-file", "from-cli"}));
  ASSERT_EQ(c.disks.size(), 2u);
  EXPECT_EQ(c.disks[0].path, dir_.File("a.img"));
  EXPECT_EQ(c.disks[1].path, "b.img");

  // A flag the file turns off, turned on by the command line.
  const std::string off = Write("off.json", R"({"kernel": "k", "prefault": false})");
  cmd = Run({"--config", off, "--prefault"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_TRUE(cmd->config.prefault);
}

TEST_F(ConfigCliTest, BadInputIsAUsageError) {
  auto message = [&](const std::string& json, Args extra = {}) {
    Args args = {"--config", Write("bad.json", json)};
    args.insert(args.end(), extra.begin(), extra.end());
    auto cmd = Run(args);
    EXPECT_FALSE(cmd.ok()) << json;
    EXPECT_EQ(cmd.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(cmd.status().message());
  };
  const std::string path = dir_.File("bad.json");
  EXPECT_EQ(message("{\"kernel\": \"k\",\n \"bogus\": 1}"),
            "--config " + path +
                ": line 2: unknown key 'bogus': not a skiff run option (see "
                "skiff run --help)");
  EXPECT_EQ(message("{\"kernel\": \"k\",\n \"cpus\": true}"),
            "--config " + path +
                ": line 2: key 'cpus': must be a string or an integer, not a "
                "boolean");
  EXPECT_NE(message("{\"kernel\": \"k\",\n\n \"cpus\" 2}").find(": line 3, column"),
            std::string::npos);
  // The values go through the command line's checks, with its messages.
  EXPECT_NE(message(R"({"kernel": "k", "timeout": "0s"})")
                .find("--timeout: duration '0s' is "
                      "not positive"),
            std::string::npos);
  EXPECT_NE(message(R"({"kernel": "k", "timeout": 0})").find("--timeout"), std::string::npos);
  EXPECT_NE(message(R"({"kernel": "k", "expect": ["(oops"]})").find("--expect '(oops'"),
            std::string::npos);
  EXPECT_NE(message(R"({"kernel": "k", "userspace-marker": "(("})").find("--userspace-marker '(('"),
            std::string::npos);
  EXPECT_EQ(message("{\"kernel\": \"k\",\n \"cpus\": 0}"),
            "--cpus 0: must be between 1 and 255 (set in --config " + path + ", line 2)");
  // Where the command line set the option too, the file is not blamed.
  EXPECT_EQ(message("{\"kernel\": \"k\",\n \"timeout\": \"1s\"}", {"--timeout", "0"}),
            "--timeout: duration '0' is not positive");
  EXPECT_NE(message(R"({"kernel": "k", "disk": [{"readonly": true}]})").find("path=FILE"),
            std::string::npos);
  EXPECT_NE(message(R"({"cpus": 2})").find("--kernel FILE is required"), std::string::npos);
  // Files that are not there or not readable.
  auto missing = Run({"--config", dir_.File("missing.json"), "--kernel", "k"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("No such file"), std::string::npos);
  EXPECT_FALSE(Run({"--config", dir_.path(), "--kernel", "k"}).ok());
  const std::string one = Write("one.json", "{}");
  EXPECT_NE(std::string(Run({"--config", one, "--config", one, "--kernel", "k"}).status().message())
                .find("one configuration file"),
            std::string::npos);
}

TEST_F(ConfigCliTest, DumpConfigPrintsTheEffectiveConfiguration) {
  const std::string config =
      Write("vm.json", R"({"kernel": "k", "cpus": 2, "disk": [{"path": "d.img"}]})");
  auto cmd = Run({"--config", config, "--memory", "1G", "--dump-config", "--expect", "x,y"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, CliCommand::Kind::kDumpConfig);
  auto dumped = nlohmann::json::parse(cmd->text);
  EXPECT_EQ(dumped["kernel"], dir_.File("k"));
  EXPECT_EQ(dumped["cpus"], 2);
  EXPECT_EQ(dumped["memory"], "1G");
  EXPECT_EQ(dumped["disk"],
            nlohmann::json::parse(R"([{"path": ")" + dir_.File("d.img") + R"("}])"));
  EXPECT_EQ(dumped["expect"], nlohmann::json::parse(R"(["x,y"])"));
  // Defaults are shown; unset options and the actions are not.
  EXPECT_EQ(dumped["log-level"], "warn");
  EXPECT_EQ(dumped["prefault"], false);
  EXPECT_FALSE(dumped.contains("initramfs"));
  EXPECT_FALSE(dumped.contains("dump-config"));
  EXPECT_FALSE(dumped.contains("config"));
  // Relative paths from the command line become absolute too.
  cmd = Run({"--kernel", "rel/k", "--dump-config"});
  ASSERT_TRUE(cmd.ok());
  const std::string kernel = nlohmann::json::parse(cmd->text)["kernel"];
  EXPECT_EQ(kernel.front(), '/');
  EXPECT_TRUE(kernel.ends_with("/rel/k")) << kernel;
  // Still validated as for a run.
  EXPECT_FALSE(Run({"--kernel", "k", "--cpus", "0", "--dump-config"}).ok());
  EXPECT_FALSE(Run({"--dump-config"}).ok());
}

// --device vfio=...,rom=FILE: the file resolves like path= (against the
// configuration's directory); rom=on stays a switch.
TEST_F(ConfigCliTest, RomFileOfAVfioDeviceIsAPath) {
  const std::string config = Write("rom.json", R"({"kernel": "k", "device": [
      {"vfio": "0000:00:01.0", "rom": "roms/nic.rom"}, {"vfio": "0000:00:02.0", "rom": true}]})");
  auto cmd = Run({"--config", config});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  ASSERT_EQ(cmd->config.vfio_devices.size(), 2u);
  EXPECT_TRUE(cmd->config.vfio_devices[0].rom);
  EXPECT_EQ(cmd->config.vfio_devices[0].rom_file, dir_.File("roms/nic.rom"));
  EXPECT_TRUE(cmd->config.vfio_devices[1].rom);
  EXPECT_EQ(cmd->config.vfio_devices[1].rom_file, "");
}

// A configuration with a value for every option round-trips through
// --dump-config: the dump, read back as --config, dumps the same text and
// gives the same machine.
TEST_F(ConfigCliTest, DumpRoundTripsEveryOption) {
  const std::string everything = R"({
    "kernel": "bzImage",
    "initramfs": "initrd.gz",
    "cmdline": "console=ttyS0 quiet \"quoted\" -- init-arg",
    "cpus": 3,
    "memory": "96M",
    "prefault": true,
    "hugepages": "2M",
    "io-affinity": "0",
    "rt-priority": 10,
    "api-socket": "run/skiff.sock",
    "dtb": "board.dtb",
    "dtb-out": "out/guest.dtb",
    "seccomp": "log",
    "device": ["vfio=0000:00:01.0,rom=on"],
    "disk": ["path=root.img,readonly=on,serial=root", {"path": "/abs/data.img", "direct": true,
             "transport": "mmio"}],
    "net": [{"tap": "tap0", "mac": "52:54:00:12:34:56", "ip": "10.0.0.1",
             "mask": "255.255.255.0", "queues": 2, "vhost": true, "transport": "pci"}],
    "console": "virtio",
    "transport": "mmio",
    "log-level": "debug",
    "log-file": "logs/skiff.log",
    "userspace-marker": "^SKIFF-GUEST: up$",
    "kvm-device": "/dev/kvm",
    "timeout": "1m30s",
    "expect": ["login:", "a{1,3}"],
    "expect-fail": ["Kernel panic", "BUG: x,y"],
    "serial-log": "console.log",
    "serial-log-timestamps": true,
    "junit": "report.xml"
  })";
  const nlohmann::json parsed = nlohmann::json::parse(everything);
  for (const OptionSpec& spec : RunOptionSpecs()) {
    EXPECT_TRUE(parsed.contains(spec.name))
        << "give --" << spec.name << " a (non-default) value in this test's configuration";
  }

  auto first = Run({"--config", Write("everything.json", everything), "--dump-config"});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->kind, CliCommand::Kind::kDumpConfig);
  // Read back from another directory: the dump holds absolute paths.
  TempDir elsewhere;
  const std::string dump_path = elsewhere.File("dump.json");
  WriteText(dump_path, first->text);
  auto second = Run({"--config", dump_path, "--dump-config"});
  ASSERT_TRUE(second.ok()) << second.status() << "\n" << first->text;
  EXPECT_EQ(second->text, first->text);
  auto run_first = Run({"--config", dir_.File("everything.json")});
  auto run_second = Run({"--config", dump_path});
  ASSERT_TRUE(run_first.ok() && run_second.ok());
  const VmConfig& a = run_first->config;
  const VmConfig& b = run_second->config;
  EXPECT_EQ(a.kernel_path, b.kernel_path);
  EXPECT_EQ(a.kernel_path, dir_.File("bzImage"));
  EXPECT_EQ(a.initramfs_path, b.initramfs_path);
  EXPECT_EQ(a.cmdline, b.cmdline);
  EXPECT_EQ(a.cpus, b.cpus);
  EXPECT_EQ(a.memory_bytes, b.memory_bytes);
  EXPECT_EQ(a.prefault, b.prefault);
  EXPECT_EQ(a.hugepages, b.hugepages);
  EXPECT_EQ(a.hugepage_size, b.hugepage_size);
  EXPECT_EQ(a.placement.io_affinity, b.placement.io_affinity);
  EXPECT_EQ(a.placement.rt_priority, b.placement.rt_priority);
  EXPECT_EQ(a.api_socket, b.api_socket);
  EXPECT_EQ(a.dtb_path, b.dtb_path);
  EXPECT_EQ(a.dtb_out_path, b.dtb_out_path);
  EXPECT_EQ(a.seccomp, b.seccomp);
  EXPECT_EQ(a.vfio_devices, b.vfio_devices);
  EXPECT_EQ(a.vfio_devices.size(), 1u);
  EXPECT_TRUE(a.vfio_devices[0].rom);
  EXPECT_EQ(a.console, b.console);
  EXPECT_EQ(a.default_transport, b.default_transport);
  EXPECT_EQ(a.log_level, b.log_level);
  EXPECT_EQ(a.log_file, b.log_file);
  EXPECT_EQ(a.userspace_marker, b.userspace_marker);
  EXPECT_EQ(a.kvm_device, b.kvm_device);
  EXPECT_EQ(a.ci.timeout, b.ci.timeout);
  EXPECT_EQ(a.ci.expect, b.ci.expect);
  EXPECT_EQ(a.ci.expect_fail, b.ci.expect_fail);
  EXPECT_EQ(a.ci.serial_log, b.ci.serial_log);
  EXPECT_EQ(a.ci.serial_log_timestamps, b.ci.serial_log_timestamps);
  EXPECT_EQ(a.ci.junit, b.ci.junit);
  ASSERT_EQ(b.disks.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a.disks[i].path, b.disks[i].path);
    EXPECT_EQ(a.disks[i].readonly, b.disks[i].readonly);
    EXPECT_EQ(a.disks[i].direct, b.disks[i].direct);
    EXPECT_EQ(a.disks[i].serial, b.disks[i].serial);
    EXPECT_EQ(a.disks[i].transport, b.disks[i].transport);
  }
  EXPECT_EQ(b.disks[0].path, dir_.File("root.img"));
  EXPECT_TRUE(b.disks[1].direct);
  ASSERT_EQ(b.nets.size(), 1u);
  EXPECT_EQ(a.nets[0].tap, b.nets[0].tap);
  EXPECT_EQ(a.nets[0].mac, b.nets[0].mac);
  EXPECT_EQ(a.nets[0].host_ip, b.nets[0].host_ip);
  EXPECT_EQ(a.nets[0].host_mask, b.nets[0].host_mask);
  EXPECT_EQ(a.nets[0].queues, b.nets[0].queues);
  EXPECT_EQ(a.nets[0].vhost, b.nets[0].vhost);
  EXPECT_EQ(a.nets[0].transport, b.nets[0].transport);

  // The dump's own shape: the same schema, in the option table's order.
  const auto dumped = nlohmann::ordered_json::parse(first->text);
  EXPECT_EQ(dumped.begin().key(), "kernel");
  EXPECT_EQ(dumped["cpus"], 3);
  EXPECT_EQ(dumped["net"][0]["vhost"], true);
  EXPECT_EQ(dumped["disk"][0]["readonly"], true);
  EXPECT_EQ(dumped["log-file"], dir_.File("logs/skiff.log"));
}

TEST(DumpConfigTest, ShapesValuesByKind) {
  auto make = [](std::string name, OptionSpec::Kind kind, OptionSpec::Value value) {
    OptionSpec spec;
    spec.name = std::move(name);
    spec.kind = kind;
    spec.value = value;
    return spec;
  };
  const OptionSpec flag = make("flag", OptionSpec::Kind::kFlag, OptionSpec::Value::kText);
  OptionSpec count = make("count", OptionSpec::Kind::kValue, OptionSpec::Value::kText);
  count.integer = true;
  const OptionSpec file = make("file", OptionSpec::Kind::kValue, OptionSpec::Value::kPath);
  const OptionSpec spec = make("spec", OptionSpec::Kind::kList, OptionSpec::Value::kKeyValues);
  const OptionSpec unset = make("unset", OptionSpec::Kind::kValue, OptionSpec::Value::kText);
  const std::string text = DumpConfig({{&flag, {"true"}},
                                       {&count, {"007"}},
                                       {&file, {"a/b"}},
                                       {&spec, {"path=x,ro=on", "2,affinity=0:1,1:2", "a=1,a=2"}},
                                       {&unset, {}}},
                                      "/cwd");
  EXPECT_EQ(text, R"({
  "flag": true,
  "count": "007",
  "file": "/cwd/a/b",
  "spec": [
    {
      "path": "/cwd/x",
      "ro": true
    },
    "2,affinity=0:1,1:2",
    "a=1,a=2"
  ]
}
)");
}

TEST(ResolvePathTest, OnlyRelativePathsMove) {
  EXPECT_EQ(ResolvePath("/etc", "a"), "/etc/a");
  EXPECT_EQ(ResolvePath("/etc/", "a"), "/etc/a");
  EXPECT_EQ(ResolvePath("/etc", "/a"), "/a");
  EXPECT_EQ(ResolvePath("/etc", ""), "");
}

}  // namespace
}  // namespace skiff
