// The control socket and thread placement end to end through the skiff
// binary, with tiny guests on this machine's /dev/kvm: `skiff ctl` pauses
// (the guest's serial output stops), resumes (it goes on), answers status
// and info (vCPU thread ids), shuts down and resets; --cpus affinity= and
// --io-affinity show in /proc/<pid>/task/<tid>/status; --rt-priority runs
// vCPUs SCHED_FIFO or says in one line why it may not; --prefault makes
// guest RAM resident; and bad input (a non-socket path, a CPU that does not
// exist, too few hugepages) is one line and exit 2 (or 1).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/fake_kernel.h"
#include "tests/integration/run_skiff.h"
#include "vmm/cpu_placement.h"

namespace skiff {
namespace {

using json = nlohmann::json;
using testing::RunSkiff;
using testing::SkiffResult;
using Code = std::vector<uint8_t>;
using namespace std::chrono_literals;

// Prints '.' on COM1 about every millisecond, forever: a console that
// advances while the guest runs.
const Code kTicker = {
    0x66, 0xba, 0xf8, 0x03,        // mov dx, 0x3f8
    0xb0, 0x2e,                    // L: mov al, '.'
    0xee,                          // out dx, al
    0xb9, 0x00, 0x00, 0x10, 0x00,  // mov ecx, 0x100000
    0xff, 0xc9,                    // D: dec ecx
    0x75, 0xfc,                    // jnz D
    0xeb, 0xf2,                    // jmp L
};
const Code kHaltForever = {0xf4, 0xeb, 0xfd};

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/skiff-ctl-test-" + std::to_string(::getpid()) +
         "-" + name;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

off_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// One line of /proc/<pid>/task/<tid>/status, e.g. "Cpus_allowed_list".
std::string TaskStatus(pid_t pid, pid_t tid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      size_t value = line.find_first_not_of(" \t", key.size() + 1);
      return value == std::string::npos ? "" : line.substr(value);
    }
  }
  return "";
}

// Scheduling policy of a thread: field 41 of /proc/<pid>/task/<tid>/stat.
int TaskPolicy(pid_t pid, pid_t tid) {
  std::string stat =
      ReadText("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  for (int i = 3; i <= 41 && fields >> field; ++i) {
    if (i == 41) return std::stoi(field);
  }
  return -1;
}

// A skiff run in the background: stdout and stderr to files.
class BackgroundSkiff {
 public:
  BackgroundSkiff(const Code& code, std::vector<std::string> extra,
                  bool without_sys_nice = false)
      : kernel_(TempPath("kernel")), out_(TempPath("out")), err_(TempPath("err")),
        socket_(TempPath("api.sock")) {
    std::vector<uint8_t> image = testing::FakeBzImageRunning(code);
    std::ofstream(kernel_, std::ios::binary)
        .write(reinterpret_cast<const char*>(image.data()), image.size());
    std::vector<std::string> args = {testing::SkiffBinary(), "run", "--kernel", kernel_,
                                     "--memory", "64M", "--timeout", "60s",
                                     "--api-socket", socket_};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int in = ::open("/dev/null", O_RDONLY);
      int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(in, 0);
      ::dup2(out, 1);
      ::dup2(err, 2);
      if (without_sys_nice) {
        // Even root then may not ask for SCHED_FIFO: no CAP_SYS_NICE after
        // exec, and no RLIMIT_RTPRIO.
        ::prctl(PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0);
        rlimit none{0, 0};
        ::setrlimit(RLIMIT_RTPRIO, &none);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~BackgroundSkiff() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (const std::string& path : {kernel_, out_, err_, socket_}) ::unlink(path.c_str());
  }

  // Waits for the socket to appear; false if skiff ended first.
  bool WaitForSocket() {
    for (int i = 0; i < 500; ++i) {
      if (FileSize(socket_) >= 0) return true;
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return false;
      }
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  SkiffResult Ctl(const std::vector<std::string>& command) {
    std::vector<std::string> args = {"ctl", "--api-socket", socket_};
    args.insert(args.end(), command.begin(), command.end());
    return RunSkiff(args);
  }
  json Ask(const std::vector<std::string>& command) {
    SkiffResult r = Ctl(command);
    EXPECT_EQ(r.exit_code, 0) << command[0] << ": " << r.out << r.err;
    json answer = json::parse(r.out, nullptr, false);
    EXPECT_TRUE(answer.is_object()) << r.out;
    return answer;
  }

  // Waits up to `timeout` for skiff to end; its exit code, or -1.
  int Wait(std::chrono::milliseconds timeout = 20000ms) {
    if (exit_code_ >= 0) return exit_code_;
    for (auto end = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(10ms)) {
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
    }
    return -1;
  }

  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  std::string err() const { return ReadText(err_); }
  off_t output_size() const { return FileSize(out_); }

 private:
  std::string kernel_, out_, err_, socket_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// How long a running guest may go without printing before a test says it
// is not running. The ticker prints about every millisecond, but on a loaded
// machine (load average 10 on two cores) its vCPU thread can wait seconds
// for a CPU: the bound is for a guest that never prints, not a timing.
constexpr std::chrono::milliseconds kGuestPrintsWithin = 20000ms;

// Each thread of `pid`: "tid comm state wchan", for failure messages (a
// vCPU thread parked at the gate sleeps in a futex; one starved is R).
std::string ThreadStates(pid_t pid) {
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task/";
  std::string states;
  std::error_code ignored;
  for (const auto& task : std::filesystem::directory_iterator(task_dir, ignored)) {
    const std::string tid = task.path().filename();
    const std::string comm = ReadText(task_dir + tid + "/comm");
    states += tid + " " + comm.substr(0, comm.find('\n')) + " " +
              TaskStatus(pid, std::stoi(tid), "State") + " " + ReadText(task_dir + tid + "/wchan") +
              "\n";
  }
  return states;
}

// Waits until the guest's output grows past `size`.
bool OutputGrows(const BackgroundSkiff& vm, off_t size, std::chrono::milliseconds within) {
  for (auto end = std::chrono::steady_clock::now() + within;
       std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(10ms)) {
    if (vm.output_size() > size) return true;
  }
  return false;
}

TEST(ControlSocketTest, PauseStopsTheGuestAndResumeRestartsIt) {
  BackgroundSkiff vm(kTicker, {"--cpus", "2"});
  ASSERT_TRUE(vm.WaitForSocket()) << vm.err();
  ASSERT_TRUE(OutputGrows(vm, 0, kGuestPrintsWithin)) << "the guest never printed: " << vm.err();

  json status = vm.Ask({"status"});
  EXPECT_EQ(status["ok"], true);
  EXPECT_EQ(status["result"]["state"], "running");
  EXPECT_EQ(status["result"]["vcpus"], 2);
  EXPECT_GE(status["result"]["uptime_s"].get<double>(), 0.0);

  json paused = vm.Ask({"pause"});
  EXPECT_EQ(paused["result"]["state"], "paused");
  std::this_thread::sleep_for(100ms);  // output already on its way
  const off_t at_pause = vm.output_size();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(vm.output_size(), at_pause) << "the guest ran while paused";
  EXPECT_EQ(vm.Ask({"status"})["result"]["state"], "paused");
  // The power button needs a running guest.
  SkiffResult refused = vm.Ctl({"shutdown"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("the VM is paused"), std::string::npos) << refused.err;

  EXPECT_EQ(vm.Ask({"resume"})["result"]["state"], "running");
  EXPECT_TRUE(OutputGrows(vm, at_pause, kGuestPrintsWithin))
      << "the guest did not resume; skiff's threads:\n"
      << ThreadStates(vm.pid()) << vm.err();

  json info = vm.Ask({"info"});
  ASSERT_EQ(info["result"]["vcpus"].size(), 2u) << info.dump();
  for (const json& vcpu : info["result"]["vcpus"]) {
    const pid_t tid = vcpu["tid"].get<pid_t>();
    EXPECT_GT(tid, 0);
    EXPECT_FALSE(TaskStatus(vm.pid(), tid, "Cpus_allowed_list").empty())
        << "tid " << tid << " is not a thread of skiff";
  }
  EXPECT_GT(info["result"]["io_thread"]["tid"].get<pid_t>(), 0);
  EXPECT_EQ(info["result"]["memory"]["bytes"], 64 << 20);
  const std::string devices = info["result"]["devices"].dump();
  EXPECT_NE(devices.find("COM1"), std::string::npos) << devices;
  EXPECT_NE(devices.find("exit device"), std::string::npos) << devices;

  // The tiny guest has no ACPI: the press is delivered and ignored.
  EXPECT_EQ(vm.Ask({"shutdown"})["result"]["requested"], "acpi power button");
  json stop = vm.Ask({"shutdown", "--force"});
  EXPECT_EQ(stop["result"]["requested"], "stop");
  EXPECT_EQ(vm.Wait(), 6) << vm.err();
  EXPECT_NE(vm.err().find("stopped over the control socket"), std::string::npos) << vm.err();
  EXPECT_LT(FileSize(vm.socket()), 0) << "the socket outlived skiff";
}

TEST(ControlSocketTest, RebootEndsTheRunLikeAGuestReset) {
  BackgroundSkiff vm(kHaltForever, {});
  ASSERT_TRUE(vm.WaitForSocket()) << vm.err();
  EXPECT_EQ(vm.Ask({"reboot"})["result"]["requested"], "reset");
  EXPECT_EQ(vm.Wait(), 0) << vm.err();
}

TEST(ControlSocketTest, CtlErrors) {
  SkiffResult none = RunSkiff({"ctl", "--api-socket", TempPath("none.sock"), "status"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("cannot connect"), std::string::npos) << none.err;
  BackgroundSkiff vm(kHaltForever, {});
  ASSERT_TRUE(vm.WaitForSocket()) << vm.err();
  SkiffResult unknown = vm.Ctl({"halt"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.out.find("\"ok\":false"), std::string::npos) << unknown.out;
  EXPECT_NE(unknown.err.find("unknown command 'halt'"), std::string::npos) << unknown.err;
  EXPECT_EQ(RunSkiff({"ctl", "status"}).exit_code, 2);
}

TEST(ControlSocketTest, RefusesAPathThatIsNotASocket) {
  const std::string path = TempPath("not-a-socket");
  std::ofstream(path) << "data";
  std::vector<uint8_t> image = testing::FakeBzImageRunning(kHaltForever);
  const std::string kernel = TempPath("kernel-ns");
  std::ofstream(kernel, std::ios::binary)
      .write(reinterpret_cast<const char*>(image.data()), image.size());
  SkiffResult r = RunSkiff({"run", "--kernel", kernel, "--api-socket", path});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "skiff: --api-socket " + path +
                       ": exists and is not a socket; refusing to replace it\n");
  EXPECT_EQ(ReadText(path), "data");
  ::unlink(path.c_str());
  ::unlink(kernel.c_str());
}

// Two host CPUs Skiff may use (the same one twice on a one-CPU host).
std::pair<uint32_t, uint32_t> TwoAllowedCpus() {
  auto host = ReadHostCpus();
  EXPECT_TRUE(host.ok());
  if (!host.ok() || host->allowed.empty()) return {0, 0};
  return {host->allowed.front(), host->allowed.back()};
}

TEST(PlacementTest, PinnedThreadsShowTheirAffinity) {
  const auto [a, b] = TwoAllowedCpus();
  // vCPU 0 on the last allowed CPU, vCPU 1 on the first: not the default.
  const std::string affinity = "2,affinity=0:" + std::to_string(b) + ",1:" + std::to_string(a);
  BackgroundSkiff vm(kTicker, {"--cpus", affinity, "--io-affinity", std::to_string(b)});
  ASSERT_TRUE(vm.WaitForSocket()) << vm.err();
  ASSERT_TRUE(OutputGrows(vm, 0, kGuestPrintsWithin)) << vm.err();
  json info = vm.Ask({"info"});
  ASSERT_EQ(info["result"]["vcpus"].size(), 2u) << info.dump();
  const json& v0 = info["result"]["vcpus"][0];
  const json& v1 = info["result"]["vcpus"][1];
  EXPECT_EQ(TaskStatus(vm.pid(), v0["tid"].get<pid_t>(), "Cpus_allowed_list"), std::to_string(b));
  EXPECT_EQ(TaskStatus(vm.pid(), v1["tid"].get<pid_t>(), "Cpus_allowed_list"), std::to_string(a));
  EXPECT_EQ(v0["cpus_allowed"], std::to_string(b));
  EXPECT_EQ(v0["affinity"], std::to_string(b));
  const pid_t io = info["result"]["io_thread"]["tid"].get<pid_t>();
  EXPECT_EQ(TaskStatus(vm.pid(), io, "Cpus_allowed_list"), std::to_string(b));
  (void)vm.Ask({"shutdown", "--force"});
  EXPECT_EQ(vm.Wait(), 6) << vm.err();
}

TEST(PlacementTest, AffinityToAMissingCpuIsAUsageError) {
  std::vector<uint8_t> image = testing::FakeBzImageRunning(kHaltForever);
  const std::string kernel = TempPath("kernel-aff");
  std::ofstream(kernel, std::ios::binary)
      .write(reinterpret_cast<const char*>(image.data()), image.size());
  SkiffResult r = RunSkiff({"run", "--kernel", kernel, "--cpus", "1,affinity=0:1023"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--cpus affinity 0:1023: host CPU 1023 does not exist"), std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = RunSkiff({"run", "--kernel", kernel, "--io-affinity", "1023"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--io-affinity: host CPU 1023 does not exist"), std::string::npos) << r.err;
  ::unlink(kernel.c_str());
}

TEST(PlacementTest, RtPriorityRunsVcpusFifo) {
  BackgroundSkiff vm(kTicker, {"--cpus", "2", "--rt-priority", "5"});
  // (Run as root or with CAP_SYS_NICE: the test host and CI do.)
  ASSERT_TRUE(vm.WaitForSocket()) << vm.err();
  ASSERT_TRUE(OutputGrows(vm, 0, kGuestPrintsWithin)) << vm.err();
  json info = vm.Ask({"info"});
  for (const json& vcpu : info["result"]["vcpus"]) {
    EXPECT_EQ(TaskPolicy(vm.pid(), vcpu["tid"].get<pid_t>()), 1) << "not SCHED_FIFO";
    EXPECT_EQ(vcpu["sched"], "SCHED_FIFO 5");
  }
  EXPECT_NE(TaskPolicy(vm.pid(), info["result"]["io_thread"]["tid"].get<pid_t>()), 1);
  (void)vm.Ask({"shutdown", "--force"});
  EXPECT_EQ(vm.Wait(), 6) << vm.err();
}

TEST(PlacementTest, RtPriorityWithoutPrivilegeIsOneLine) {
  BackgroundSkiff vm(kTicker, {"--rt-priority", "5"}, /*without_sys_nice=*/true);
  EXPECT_EQ(vm.Wait(), 1) << vm.err();
  const std::string err = vm.err();  // read once: err() reads the file anew
  EXPECT_NE(err.find("--rt-priority 5: not permitted to run vCPU 0 SCHED_FIFO (needs "
                          "CAP_SYS_NICE or an RLIMIT_RTPRIO of at least 5, this process has 0"),
            std::string::npos)
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_EQ(vm.output_size(), 0) << "the guest ran before the error";
}

// Resident guest RAM, read from /proc/<pid>/status (kB).
long RssKb(pid_t pid) {
  std::string value = TaskStatus(pid, pid, "VmRSS");
  return value.empty() ? -1 : std::stol(value);
}

TEST(MemoryTest, PrefaultMakesGuestRamResident) {
  BackgroundSkiff lazy(kHaltForever, {});
  ASSERT_TRUE(lazy.WaitForSocket()) << lazy.err();
  const long lazy_kb = RssKb(lazy.pid());
  (void)lazy.Ask({"shutdown", "--force"});
  lazy.Wait();
  BackgroundSkiff eager(kHaltForever, {"--prefault"});
  ASSERT_TRUE(eager.WaitForSocket()) << eager.err();
  EXPECT_EQ(eager.Ask({"info"})["result"]["memory"]["prefault"], true);
  const long eager_kb = RssKb(eager.pid());
  (void)eager.Ask({"shutdown", "--force"});
  eager.Wait();
  EXPECT_LT(lazy_kb, 48 * 1024) << "64 MiB guest, untouched";
  EXPECT_GE(eager_kb, 64 * 1024) << "64 MiB guest, prefaulted";
}

TEST(MemoryTest, TooFewHugepagesIsOneLineNamingTheSize) {
  std::ifstream free_file("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
  long free_pages = -1;
  free_file >> free_pages;
  std::vector<uint8_t> image = testing::FakeBzImageRunning(kHaltForever);
  const std::string kernel = TempPath("kernel-huge");
  std::ofstream(kernel, std::ios::binary)
      .write(reinterpret_cast<const char*>(image.data()), image.size());
  // More 2M pages than this host has free (or any page size it lacks).
  const long pages = std::max(free_pages + 1, 32L);
  const std::string memory = std::to_string(2 * pages) + "M";
  SkiffResult r = RunSkiff({"run", "--kernel", kernel, "--memory", memory, "--hugepages"});
  ::unlink(kernel.c_str());
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  if (free_pages < 0) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--hugepages 2M: this host has no 2M hugepages"), std::string::npos);
  } else {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find("--hugepages 2M: guest RAM needs " + std::to_string(pages) +
                         " free 2M pages but the host has " + std::to_string(free_pages)),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"),
              std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace skiff
