// Where Skiff's threads run on the host (edge/NFV use, docs/nfv.md):
// --cpus N,affinity=V:C,... pins vCPU threads, --io-affinity pins the I/O
// thread, --rt-priority runs vCPU threads SCHED_FIFO. Parsing and checks are
// pure functions over text and a HostCpus snapshot, so they are unit-tested
// without touching the host.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff {

// Host CPU numbers the kernel's cpu_set_t can name.
inline constexpr uint32_t kMaxHostCpus = 1024;
inline constexpr int kMinRtPriority = 1;  // SCHED_FIFO's range on Linux
inline constexpr int kMaxRtPriority = 99;

// One vCPU's host CPUs.
struct VcpuAffinity {
  uint32_t vcpu = 0;
  std::vector<uint32_t> host_cpus;  // sorted, unique, non-empty
  bool operator==(const VcpuAffinity&) const = default;
};

// --cpus: the count and, optionally, the vCPU -> host CPU map.
struct CpusOption {
  uint32_t count = 1;
  std::vector<VcpuAffinity> affinity;  // sorted by vCPU; unlisted vCPUs float
};

// A Linux CPU list, as in /sys and `taskset -c`: "3", "0-3", "0-1,4,6-7".
// Sorted and unique; empty text, junk, reversed ranges and CPUs at or above
// kMaxHostCpus are errors (the message does not name the option).
absl::StatusOr<std::vector<uint32_t>> ParseCpuList(std::string_view text);
// The reverse, with ranges folded: {0,1,2,5} -> "0-2,5".
std::string FormatCpuList(const std::vector<uint32_t>& cpus);

// "N" or "N,affinity=V:C[,V:C...]", where C is one host CPU or a range A-B.
// vCPU indexes must be below N and listed once. Errors name --cpus.
absl::StatusOr<CpusOption> ParseCpusOption(std::string_view text);

// The host CPUs that exist (/sys/devices/system/cpu/present) and those this
// process may run on (sched_getaffinity: taskset, cgroup cpusets).
struct HostCpus {
  std::vector<uint32_t> present;
  std::vector<uint32_t> allowed;
};
absl::StatusOr<HostCpus> ReadHostCpus();

// Fails (InvalidArgument, naming `option`) if a CPU in `wanted` does not
// exist or is outside the set Skiff may run on.
absl::Status CheckHostCpus(std::string_view option, const std::vector<uint32_t>& wanted,
                           const HostCpus& host);

// Pins `thread` to `cpus` (sched_setaffinity on its tid, via pthread).
// `what` names the thread in errors ("vCPU 1").
absl::Status PinThread(pthread_t thread, const std::vector<uint32_t>& cpus, std::string_view what);
// SCHED_FIFO at `priority` for `thread`; EPERM becomes a one-line error
// saying which privilege is missing.
absl::Status SetRealtimePriority(pthread_t thread, int priority, std::string_view what);

// The CPUs `tid` may run on (for `info`), or nullopt if it is gone.
std::optional<std::vector<uint32_t>> ThreadAffinity(pid_t tid);

}  // namespace skiff
