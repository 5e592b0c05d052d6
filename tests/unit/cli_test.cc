#include "vmm/cli.h"

#include "gtest/gtest.h"

namespace skiff {
namespace {

TEST(ParseSizeTest, AcceptsUnitsAndBareMebibytes) {
  EXPECT_EQ(*ParseSize("256M"), 256ull << 20);
  EXPECT_EQ(*ParseSize("1G"), 1ull << 30);
  EXPECT_EQ(*ParseSize("1g"), 1ull << 30);
  EXPECT_EQ(*ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseSize("512K"), 512ull << 10);
  EXPECT_EQ(*ParseSize("1T"), 1ull << 40);
  EXPECT_EQ(*ParseSize("128"), 128ull << 20);
  EXPECT_EQ(*ParseSize("64MB"), 64ull << 20);
}

TEST(ParseSizeTest, RejectsZeroJunkAndOverflow) {
  for (const char* bad : {"0", "0M", "12Q", "", "M", "-1G", "1.5G", "1 G",
                          "99999999999999999999", "20000000000T", "1GG"}) {
    EXPECT_FALSE(ParseSize(bad).ok()) << bad;
  }
}

TEST(ParseCliTest, RunWithEveryOption) {
  auto cmd = ParseCli({"run", "--kernel", "k", "--initramfs", "i", "--cmdline",
                       "console=ttyS0 quiet", "--cpus", "4", "--memory", "1G",
                       "--hugepages"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, CliCommand::Kind::kRun);
  EXPECT_EQ(cmd->config.kernel_path, "k");
  EXPECT_EQ(*cmd->config.initramfs_path, "i");
  EXPECT_EQ(cmd->config.cmdline, "console=ttyS0 quiet");
  EXPECT_EQ(cmd->config.cpus, 4u);
  EXPECT_EQ(cmd->config.memory_bytes, 1ull << 30);
  EXPECT_TRUE(cmd->config.hugepages);
}

TEST(ParseCliTest, Defaults) {
  auto cmd = ParseCli({"run", "--kernel", "k"});
  ASSERT_TRUE(cmd.ok());
  EXPECT_EQ(cmd->config.cpus, 1u);
  EXPECT_EQ(cmd->config.memory_bytes, 256ull << 20);
  EXPECT_FALSE(cmd->config.initramfs_path.has_value());
  EXPECT_FALSE(cmd->config.hugepages);
}

TEST(ParseCliTest, UsageErrors) {
  EXPECT_FALSE(ParseCli({"run"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--cpus", "0"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--cpus", "256"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--cpus", "-1"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--memory", "0"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--memory", "12Q"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--hugepages", "--memory", "3M"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--bogus"}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "stray"}).ok());
  EXPECT_FALSE(ParseCli({"launch"}).ok());
  auto status = ParseCli({"run", "--kernel", "k", "--cpus", "9999"}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("between 1 and 255"), std::string::npos);
}

// cxxopts' std::regex recursed once per character of an argument starting
// with '-': a 38 KB --cmdline=... crashed Skiff (found by fuzzing).
TEST(ParseCliTest, LongArgumentsDoNotCrash) {
  const std::string cmdline(100000, 'x');
  auto cmd = ParseCli({"run", "--kernel", "k", "--cmdline=" + cmdline});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->config.cmdline, cmdline);
  cmd = ParseCli({"run", "--kernel=" + std::string(5000, 'k')});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->config.kernel_path, std::string(5000, 'k'));
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "-" + std::string(100000, 'a')}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--" + std::string(100000, 'a')}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", "--hugepages=-" + std::string(100000, 'a')}).ok());
  EXPECT_FALSE(ParseCli({"run", "--kernel", "k", std::string(100000, 'a')}).ok());
}

TEST(ParseCliTest, HelpAndVersion) {
  EXPECT_EQ(ParseCli({}).value().kind, CliCommand::Kind::kHelp);
  EXPECT_EQ(ParseCli({"--help"}).value().kind, CliCommand::Kind::kHelp);
  EXPECT_EQ(ParseCli({"--version"}).value().kind, CliCommand::Kind::kVersion);
  auto run_help = ParseCli({"run", "--help"});
  ASSERT_TRUE(run_help.ok());
  EXPECT_NE(run_help->text.find("--memory"), std::string::npos);
}

TEST(ParseCliTest, CiOptions) {
  auto cmd = ParseCli({"run", "--kernel", "k", "--timeout", "2m", "--expect", "login:",
                       "--expect", "ok a{1,3}", "--expect-fail", "Kernel panic",
                       "--expect-fail=BUG: x,y", "--serial-log", "/tmp/log",
                       "--serial-log-timestamps", "--junit", "/tmp/j.xml"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, CliCommand::Kind::kRun);
  const CiOptions& ci = cmd->config.ci;
  EXPECT_EQ(ci.timeout, absl::Minutes(2));
  // Whole patterns, in order, commas and all.
  EXPECT_EQ(ci.expect, (std::vector<std::string>{"login:", "ok a{1,3}"}));
  EXPECT_EQ(ci.expect_fail, (std::vector<std::string>{"Kernel panic", "BUG: x,y"}));
  EXPECT_EQ(ci.serial_log, "/tmp/log");
  EXPECT_TRUE(ci.serial_log_timestamps);
  EXPECT_EQ(ci.junit, "/tmp/j.xml");
}

TEST(ParseCliTest, CiDefaultsAreOff) {
  auto cmd = ParseCli({"run", "--kernel", "k"});
  ASSERT_TRUE(cmd.ok());
  const CiOptions& ci = cmd->config.ci;
  EXPECT_FALSE(ci.timeout.has_value());
  EXPECT_TRUE(ci.expect.empty());
  EXPECT_TRUE(ci.expect_fail.empty());
  EXPECT_FALSE(ci.serial_log.has_value());
  EXPECT_FALSE(ci.junit.has_value());
}

TEST(ParseCliTest, CiUsageErrorsNameTheOption) {
  auto message = [](std::vector<std::string> extra) {
    std::vector<std::string> args = {"run", "--kernel", "k"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto cmd = ParseCli(args);
    EXPECT_FALSE(cmd.ok());
    EXPECT_EQ(cmd.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(cmd.status().message());
  };
  EXPECT_NE(message({"--timeout", "0"}).find("--timeout"), std::string::npos);
  EXPECT_NE(message({"--timeout", "soon"}).find("'soon'"), std::string::npos);
  EXPECT_NE(message({"--expect", "(oops"}).find("--expect '(oops'"), std::string::npos);
  EXPECT_NE(message({"--expect-fail", "*"}).find("--expect-fail '*'"), std::string::npos);
  EXPECT_NE(message({"--serial-log-timestamps"}).find("needs --serial-log"), std::string::npos);
  EXPECT_NE(message({"--junit", ""}).find("--junit"), std::string::npos);
}

TEST(ParseCliTest, PrintCmdline) {
  auto cmd = ParseCli({"run", "--kernel", "k", "--cmdline", "quiet", "--print-cmdline"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, CliCommand::Kind::kPrintCmdline);
  EXPECT_EQ(cmd->config.cmdline, "quiet");
  // Still validated as for a run.
  EXPECT_FALSE(ParseCli({"run", "--print-cmdline"}).ok());
}

TEST(ParseCliTest, TopHelpListsExitCodesAndGuestExamples) {
  const std::string help = ParseCli({"--help"}).value().text;
  for (const char* needle : {"0      the guest powered off", "5      --timeout expired",
                             "7-119  chosen by the guest", "120    an --expect-fail",
                             "(value << 1) | 1"}) {
    EXPECT_NE(help.find(needle), std::string::npos) << needle << "\n" << help;
  }
  // The guest-side examples name this architecture's addresses.
#if defined(__x86_64__)
  for (const char* needle : {"busybox devmem 0xd8000000 32 7", "outb(5, 0xf4);", "-> exits 11",
                             "seek=244"}) {
#else
  for (const char* needle : {"busybox devmem 0xb020000 32 7", "no isa-debug-exit"}) {
#endif
    EXPECT_NE(help.find(needle), std::string::npos) << needle << "\n" << help;
  }
}

TEST(ParseCliTest, PlacementAndMemoryOptions) {
  auto cmd = ParseCli({"run", "--kernel", "k", "--cpus", "2,affinity=0:1,1:0", "--io-affinity",
                       "0-1", "--rt-priority", "10", "--hugepages", "1G", "--memory", "2G",
                       "--prefault", "--api-socket", "/tmp/s"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  const VmConfig& c = cmd->config;
  EXPECT_EQ(c.cpus, 2u);
  ASSERT_EQ(c.placement.vcpu_affinity.size(), 2u);
  EXPECT_EQ(c.placement.vcpu_affinity[0], (VcpuAffinity{0, {1}}));
  EXPECT_EQ(c.placement.vcpu_affinity[1], (VcpuAffinity{1, {0}}));
  EXPECT_EQ(*c.placement.io_affinity, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(*c.placement.rt_priority, 10);
  EXPECT_TRUE(c.hugepages);
  EXPECT_EQ(c.hugepage_size, 1ull << 30);
  EXPECT_TRUE(c.prefault);
  EXPECT_EQ(*c.api_socket, "/tmp/s");

  cmd = ParseCli({"run", "--kernel", "k", "--hugepages=1G", "--memory", "1G"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->config.hugepage_size, 1ull << 30);
  cmd = ParseCli({"run", "--kernel", "k", "--hugepages"});  // 2M by default
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_TRUE(cmd->config.hugepages);
  EXPECT_EQ(cmd->config.hugepage_size, 2ull << 20);
  cmd = ParseCli({"run", "--kernel", "k"});
  ASSERT_TRUE(cmd.ok());
  EXPECT_FALSE(cmd->config.prefault);
  EXPECT_FALSE(cmd->config.api_socket.has_value());
  EXPECT_FALSE(cmd->config.placement.rt_priority.has_value());
  EXPECT_TRUE(cmd->config.placement.vcpu_affinity.empty());
}

TEST(ParseCliTest, PlacementUsageErrorsNameTheOption) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"--cpus", "2,affinity=2:0"}, "--cpus affinity '2:0': vCPU 2 does not exist"},
      {{"--cpus", "2,affinity=0:x"}, "--cpus affinity '0:x'"},
      {{"--io-affinity", "1-0"}, "--io-affinity '1-0'"},
      {{"--rt-priority", "0"}, "--rt-priority 0: SCHED_FIFO priorities are 1-99"},
      {{"--rt-priority", "high"}, "--rt-priority 'high': not a number"},
      {{"--hugepages", "3M"}, "--hugepages 3M: a page size is a power of two"},
      {{"--hugepages", "1G"}, "--memory must be a multiple of the hugepage size (1024 MiB)"},
      {{"--api-socket", ""}, "--api-socket: the path is empty"},
  };
  for (const auto& [extra, message] : cases) {
    std::vector<std::string> args = {"run", "--kernel", "k"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto cmd = ParseCli(args);
    ASSERT_FALSE(cmd.ok()) << extra[0] << " " << extra[1];
    EXPECT_NE(std::string(cmd.status().message()).find(message), std::string::npos)
        << cmd.status().message();
  }
}

TEST(ParseCliTest, Ctl) {
  auto cmd = ParseCli({"ctl", "--api-socket", "/run/vm.sock", "pause"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->kind, CliCommand::Kind::kCtl);
  EXPECT_EQ(cmd->api_socket, "/run/vm.sock");
  EXPECT_EQ(cmd->ctl_command, "pause");
  EXPECT_FALSE(cmd->ctl_force);
  cmd = ParseCli({"ctl", "shutdown", "--force", "--api-socket=/s"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  EXPECT_EQ(cmd->api_socket, "/s");
  EXPECT_TRUE(cmd->ctl_force);
  cmd = ParseCli({"ctl", "--help"});
  ASSERT_TRUE(cmd.ok());
  EXPECT_EQ(cmd->kind, CliCommand::Kind::kHelp);
  EXPECT_NE(cmd->text.find("pause"), std::string::npos);
  EXPECT_FALSE(ParseCli({"ctl", "status"}).ok());                           // no socket
  EXPECT_FALSE(ParseCli({"ctl", "--api-socket", "/s"}).ok());               // no command
  EXPECT_FALSE(ParseCli({"ctl", "--api-socket", "/s", "a", "b"}).ok());     // two commands
  EXPECT_FALSE(ParseCli({"ctl", "--api-socket", "/s", "pause", "--force"}).ok());
  EXPECT_FALSE(ParseCli({"ctl", "--api-socket", "/s", "--bogus", "status"}).ok());
}

}  // namespace
}  // namespace skiff
