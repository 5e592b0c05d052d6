#include "vmm/cpu_placement.h"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

// Decimal digits only (no sign, no spaces), no overflow.
bool ParseDecimal(std::string_view text, uint32_t* value) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

// Splits at every `separator`; empty pieces are kept (and later refused).
std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

absl::StatusOr<uint32_t> ParseCpuNumber(std::string_view text) {
  uint32_t cpu;
  if (!ParseDecimal(text, &cpu)) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s' is not a CPU number", text));
  }
  if (cpu >= kMaxHostCpus) {
    return absl::InvalidArgumentError(
        absl::StrFormat("CPU %u is out of range (at most %u)", cpu, kMaxHostCpus - 1));
  }
  return cpu;
}

// "A" or "A-B" (A <= B), appended to `out`.
absl::Status AppendCpuRange(std::string_view text, std::vector<uint32_t>& out) {
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) {
    ASSIGN_OR_RETURN(uint32_t cpu, ParseCpuNumber(text));
    out.push_back(cpu);
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(uint32_t first, ParseCpuNumber(text.substr(0, dash)));
  ASSIGN_OR_RETURN(uint32_t last, ParseCpuNumber(text.substr(dash + 1)));
  if (first > last) {
    return absl::InvalidArgumentError(absl::StrFormat("CPU range '%s' is reversed", text));
  }
  for (uint32_t cpu = first; cpu <= last; ++cpu) out.push_back(cpu);
  return absl::OkStatus();
}

void SortUnique(std::vector<uint32_t>& cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
}

absl::Status WithPrefix(std::string_view prefix, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(prefix), status.message()));
}

cpu_set_t ToCpuSet(const std::vector<uint32_t>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t cpu : cpus) {
    if (cpu < CPU_SETSIZE) CPU_SET(cpu, &set);
  }
  return set;
}

std::vector<uint32_t> FromCpuSet(const cpu_set_t& set) {
  std::vector<uint32_t> cpus;
  for (uint32_t cpu = 0; cpu < CPU_SETSIZE && cpu < kMaxHostCpus; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

}  // namespace

absl::StatusOr<std::vector<uint32_t>> ParseCpuList(std::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("the CPU list is empty");
  std::vector<uint32_t> cpus;
  for (std::string_view part : Split(text, ',')) {
    RETURN_IF_ERROR(AppendCpuRange(part, cpus));
  }
  SortUnique(cpus);
  return cpus;
}

std::string FormatCpuList(const std::vector<uint32_t>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? absl::StrCat(cpus[i]) : absl::StrCat(cpus[i], "-", cpus[j]);
    i = j + 1;
  }
  return out;
}

absl::StatusOr<CpusOption> ParseCpusOption(std::string_view text) {
  CpusOption option;
  std::string_view count_text = text;
  std::string_view map_text;
  const size_t comma = text.find(',');
  if (comma != std::string_view::npos) {
    count_text = text.substr(0, comma);
    map_text = text.substr(comma + 1);
    constexpr std::string_view kAffinity = "affinity=";
    if (map_text.substr(0, kAffinity.size()) != kAffinity) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--cpus '%s': expected N or N,affinity=VCPU:HOSTCPU,... (e.g. 2,affinity=0:2,1:3)",
          text));
    }
    map_text.remove_prefix(kAffinity.size());
  }
  if (!ParseDecimal(count_text, &option.count)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--cpus '%s': '%s' is not a number", text, count_text));
  }
  if (comma == std::string_view::npos) return option;
  if (map_text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--cpus '%s': affinity= lists no vCPU", text));
  }
  for (std::string_view entry : Split(map_text, ',')) {
    const size_t colon = entry.find(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--cpus affinity: '%s' is not VCPU:HOSTCPU (e.g. 0:2 or 0:2-3)", entry));
    }
    VcpuAffinity pin;
    std::string_view vcpu_text = entry.substr(0, colon);
    if (!ParseDecimal(vcpu_text, &pin.vcpu)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--cpus affinity '%s': '%s' is not a vCPU number", entry, vcpu_text));
    }
    if (pin.vcpu >= option.count) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--cpus affinity '%s': vCPU %u does not exist (the guest has %u: 0-%u)",
                          entry, pin.vcpu, option.count, option.count == 0 ? 0 : option.count - 1));
    }
    absl::Status parsed = AppendCpuRange(entry.substr(colon + 1), pin.host_cpus);
    if (!parsed.ok()) {
      return WithPrefix(absl::StrFormat("--cpus affinity '%s': ", entry), parsed);
    }
    for (const VcpuAffinity& other : option.affinity) {
      if (other.vcpu == pin.vcpu) {
        return absl::InvalidArgumentError(
            absl::StrFormat("--cpus affinity: vCPU %u is listed twice", pin.vcpu));
      }
    }
    option.affinity.push_back(std::move(pin));
  }
  std::sort(option.affinity.begin(), option.affinity.end(),
            [](const VcpuAffinity& a, const VcpuAffinity& b) { return a.vcpu < b.vcpu; });
  return option;
}

absl::StatusOr<HostCpus> ReadHostCpus() {
  HostCpus host;
  std::ifstream present("/sys/devices/system/cpu/present");
  std::string line;
  if (!std::getline(present, line)) {
    return absl::InternalError("cannot read /sys/devices/system/cpu/present");
  }
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  absl::StatusOr<std::vector<uint32_t>> cpus = ParseCpuList(line);
  if (!cpus.ok()) {
    return absl::InternalError(
        absl::StrCat("/sys/devices/system/cpu/present: ", cpus.status().message()));
  }
  host.present = *std::move(cpus);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) {
    return absl::InternalError(absl::StrFormat("sched_getaffinity: %s", std::strerror(errno)));
  }
  host.allowed = FromCpuSet(set);
  return host;
}

absl::Status CheckHostCpus(std::string_view option, const std::vector<uint32_t>& wanted,
                           const HostCpus& host) {
  for (uint32_t cpu : wanted) {
    if (!std::binary_search(host.present.begin(), host.present.end(), cpu)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: host CPU %u does not exist (this host has CPUs %s)", option, cpu,
                          FormatCpuList(host.present)));
    }
    if (!std::binary_search(host.allowed.begin(), host.allowed.end(), cpu)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: host CPU %u is not in the set Skiff may run on (%s; see taskset or the "
          "cgroup's cpuset)",
          option, cpu, FormatCpuList(host.allowed)));
    }
  }
  return absl::OkStatus();
}

absl::Status PinThread(pthread_t thread, const std::vector<uint32_t>& cpus, std::string_view what) {
  cpu_set_t set = ToCpuSet(cpus);
  int err = ::pthread_setaffinity_np(thread, sizeof(set), &set);
  if (err != 0) {
    return absl::InternalError(absl::StrFormat("%s: cannot pin to host CPUs %s: %s", what,
                                               FormatCpuList(cpus), std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::Status SetRealtimePriority(pthread_t thread, int priority, std::string_view what) {
  sched_param param{};
  param.sched_priority = priority;
  int err = ::pthread_setschedparam(thread, SCHED_FIFO, &param);
  if (err == EPERM) {
    rlimit limit{};
    ::getrlimit(RLIMIT_RTPRIO, &limit);
    const std::string have = limit.rlim_cur == RLIM_INFINITY
                                 ? std::string("unlimited")
                                 : absl::StrCat(static_cast<uint64_t>(limit.rlim_cur));
    return absl::PermissionDeniedError(absl::StrFormat(
        "--rt-priority %d: not permitted to run %s SCHED_FIFO (needs CAP_SYS_NICE or an "
        "RLIMIT_RTPRIO of at least %d, this process has %s (ulimit -r), and real-time "
        "runtime in its cgroup)",
        priority, what, priority, have));
  }
  if (err != 0) {
    return absl::InternalError(
        absl::StrFormat("--rt-priority %d: %s: %s", priority, what, std::strerror(err)));
  }
  return absl::OkStatus();
}

std::optional<std::vector<uint32_t>> ThreadAffinity(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (tid <= 0 || ::sched_getaffinity(tid, sizeof(set), &set) != 0) return std::nullopt;
  return FromCpuSet(set);
}

}  // namespace skiff
