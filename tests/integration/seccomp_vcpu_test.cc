// A vCPU thread confined by its seccomp filter (--seccomp on) on the local
// /dev/kvm: KVM_RUN and the exits it brings keep working, a forbidden call
// (a socket, a new process) stops the process with exit code 1 and a line
// naming the thread and the call. In a forked child: a filter is for life.
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/tiny_guest.h"
#include "vmm/exit_codes.h"
#include "vmm/seccomp.h"
#include "vmm/seccomp_report.h"

namespace skiff {
namespace {

using testing::TinyGuest;

// Counts the guest's writes to its port; a vCPU's exit handling runs it.
class PortCounter : public BusDevice {
 public:
  void Read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0;
  }
  void Write(uint64_t, std::span<const uint8_t> data) override {
    if (!data.empty()) last = data[0];
    ++writes;
  }
  std::atomic<int> writes{0};
  std::atomic<uint8_t> last{0};
};

struct ChildResult {
  int exit_code = -1;
  std::string err;
};

// In a forked child: a tiny guest that writes 'K' to port 0x80 and halts,
// run by a vCPU thread that first confines itself; then `after` on that
// thread. The child reports the run on stderr before `after`.
ChildResult RunConfinedGuest(std::function<void()> after) {
  int err[2];
  if (::pipe(err) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(err[1], STDERR_FILENO);
    ::close(err[0]);
    // mov al,'K'; out 0x80,al; hlt
    auto guest = TinyGuest::Create({0xb0, 'K', 0xe6, 0x80, 0xf4}, /*irqchip=*/false);
    if (guest == nullptr) ::_exit(97);
    auto port = std::make_shared<PortCounter>();
    if (!guest->pio().Register(0x80, 1, port, "port 0x80").ok()) ::_exit(96);
    // Set-up done, as in Machine::Run: settle libseccomp first.
    if (!CheckSeccompFilters(SeccompMode::kOn).ok()) ::_exit(95);
    Vcpu::InstallKickHandler();
    std::thread vcpu([&] {
      if (!InstallSeccompFilter(ThreadRole::kVcpu, SeccompMode::kOn).ok()) ::_exit(94);
      ExitBuses buses{&guest->pio(), &guest->mmio()};
      guest->vcpu().RunLoop(buses, guest->shutdown(), nullptr);
      std::string line = "ran: " + guest->shutdown().status().reason + ", port writes " +
                         std::to_string(port->writes.load()) + " last '" +
                         static_cast<char>(port->last.load()) + "'\n";
      (void)!::write(STDERR_FILENO, line.data(), line.size());
      after();
      ::syscall(SYS_exit_group, 0);  // not _exit(): see seccomp_report.cc
    });
    vcpu.join();
    ::_exit(93);
  }
  ::close(err[1]);
  ChildResult result;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(err[0], buffer, sizeof(buffer))) > 0) result.err.append(buffer, n);
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

constexpr char kRan[] = "ran: vCPU 0: guest halted, port writes 1 last 'K'\n";

TEST(SeccompVcpuTest, AConfinedVcpuRunsTheGuest) {
  ChildResult r = RunConfinedGuest([] {});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, kRan);
}

TEST(SeccompVcpuTest, AConfinedVcpuCannotOpenASocket) {
  ChildResult r = RunConfinedGuest([] { (void)::socket(AF_INET, SOCK_STREAM, 0); });
  EXPECT_EQ(r.exit_code, kExitVmmError);
  EXPECT_EQ(r.err,
            std::string(kRan) +
                SeccompViolationMessage(ThreadRole::kVcpu, seccomp_syscall_resolve_name("socket")) +
                "\n");
}

TEST(SeccompVcpuTest, AConfinedVcpuCannotStartAProgram) {
  ChildResult r = RunConfinedGuest([] {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execv("/bin/true", argv);
  });
  EXPECT_EQ(r.exit_code, kExitVmmError);
  EXPECT_NE(r.err.find("the vcpu thread made a system call outside its allow-list: execve ("),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace skiff
