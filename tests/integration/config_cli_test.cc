// --config, --dump-config and --log-file through the skiff binary, where no
// guest is needed: a dump reads back as the same configuration, and bad
// configuration files, regexes, timeouts and log files are one-line usage
// errors naming what is wrong.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/run_skiff.h"

namespace skiff {
namespace {

using testing::RunSkiff;
using testing::SkiffResult;

class ConfigCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp") + "/skiff-config-test-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_ + "/other");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  static void ExpectUsageError(const SkiffResult& r, const std::vector<std::string>& needles) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("skiff: ", 0), 0u) << r.err;
    for (const std::string& needle : needles) {
      EXPECT_NE(r.err.find(needle), std::string::npos) << needle << " in " << r.err;
    }
    EXPECT_TRUE(r.out.empty()) << r.out;
  }

  std::string dir_;
};

TEST_F(ConfigCliTest, DumpReadsBackAsTheSameConfiguration) {
  const std::string config = Write("vm.json", R"({
    // relative paths: against this file's directory
    "kernel": "bzImage",
    "cpus": 2,
    "disk": [{"path": "root.img", "readonly": true}],
    "expect": ["login:"]
  })");
  SkiffResult first = RunSkiff(
      {"run", "--config", config, "--memory", "1G", "--expect", "a{1,3}", "--dump-config"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_TRUE(first.err.empty()) << first.err;
  EXPECT_NE(first.out.find("\"kernel\": \"" + dir_ + "/bzImage\""), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("\"memory\": \"1G\""), std::string::npos) << first.out;
  EXPECT_NE(first.out.find("\"expect\": [\n    \"login:\",\n    \"a{1,3}\"\n  ]"),
            std::string::npos)
      << first.out;

  const std::string dump = Write("other/dump.json", first.out);
  SkiffResult second = RunSkiff({"run", "--config", dump, "--dump-config"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.out, first.out);
}

TEST_F(ConfigCliTest, BadConfigurationsNameTheKeyAndLine) {
  ExpectUsageError(RunSkiff({"run", "--config",
                             Write("a.json",
                                   "{\n \"kernel\": \"k\",\n \"dsik\": "
                                   "[]\n}")}),
                   {"a.json: line 3: unknown key 'dsik'"});
  ExpectUsageError(RunSkiff({"run", "--config",
                             Write("b.json",
                                   "{\n \"kernel\": \"k\"\n \"cpus\": "
                                   "2\n}")}),
                   {"b.json: line 3, column 7: syntax error while parsing object"});
  ExpectUsageError(
      RunSkiff({"run", "--config", Write("c.json", "{\"kernel\": \"k\",\n\n \"prefault\": 1}")}),
      {"c.json: line 3: key 'prefault': must be true or false, not a number"});
  ExpectUsageError(RunSkiff({"run", "--config", dir_ + "/missing.json"}),
                   {"--config " + dir_ + "/missing.json: No such file or directory"});
}

TEST_F(ConfigCliTest, BadValuesInAConfigurationAreTheCommandLinesErrors) {
  ExpectUsageError(
      RunSkiff({"run", "--config", Write("r.json", R"({"kernel": "k", "expect": ["(oops"]})")}),
      {"--expect '(oops'"});
  ExpectUsageError(
      RunSkiff({"run", "--config", Write("t.json", R"({"kernel": "k", "timeout": "0s"})")}),
      {"--timeout: duration '0s' is not positive"});
  ExpectUsageError(RunSkiff({"run", "--kernel", "k", "--timeout", "0"}), {"--timeout"});
  ExpectUsageError(RunSkiff({"run", "--kernel", "k", "--expect-fail", "a)"}), {"--expect-fail"});
  ExpectUsageError(RunSkiff({"run", "--kernel", "k", "--userspace-marker", "(("}),
                   {"--userspace-marker '(('"});
}

TEST_F(ConfigCliTest, AnUnwritableLogFileIsAUsageError) {
  // Checked before the kernel is even read.
  ExpectUsageError(RunSkiff({"run", "--kernel", dir_ + "/no-kernel", "--log-file",
                             dir_ + "/no-such-dir/skiff.log"}),
                   {"--log-file " + dir_ + "/no-such-dir/skiff.log: No such file or directory"});
}

}  // namespace
}  // namespace skiff
