#include "vmm/config.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "vmm/console_matcher.h"

namespace skiff {

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  std::string_view digits = text;
  size_t i = 0;
  while (i < digits.size() && std::isdigit(static_cast<unsigned char>(digits[i]))) ++i;
  std::string_view number = digits.substr(0, i);
  std::string suffix = absl::AsciiStrToUpper(std::string(digits.substr(i)));
  uint64_t value;
  if (number.empty() || !absl::SimpleAtoi(std::string(number), &value)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not a size (use e.g. 256M or 1G)", text));
  }
  if (suffix.size() > 1 && (suffix.ends_with("IB") || suffix.ends_with("B"))) {
    suffix = suffix.substr(0, suffix.ends_with("IB") ? suffix.size() - 2
                                                      : suffix.size() - 1);
  }
  int shift;
  if (suffix.empty() || suffix == "M") {
    shift = 20;
  } else if (suffix == "K") {
    shift = 10;
  } else if (suffix == "G") {
    shift = 30;
  } else if (suffix == "T") {
    shift = 40;
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "'%s' has an unknown size unit (use K, M, G or T)", text));
  }
  if (value == 0) {
    return absl::InvalidArgumentError(absl::StrFormat("size '%s' is zero", text));
  }
  if (value > (UINT64_MAX >> shift)) {
    return absl::InvalidArgumentError(absl::StrFormat("size '%s' is too large", text));
  }
  return value << shift;
}

absl::Status ValidateCiOptions(const CiOptions& ci) {
  if (ci.timeout && *ci.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must be positive");
  }
  for (const std::string& pattern : ci.expect) {
    absl::Status valid = ValidateConsolePattern("--expect", pattern);
    if (!valid.ok()) return valid;
  }
  for (const std::string& pattern : ci.expect_fail) {
    absl::Status valid = ValidateConsolePattern("--expect-fail", pattern);
    if (!valid.ok()) return valid;
  }
  if (ci.serial_log_timestamps && !ci.serial_log) {
    return absl::InvalidArgumentError("--serial-log-timestamps needs --serial-log FILE");
  }
  if (ci.serial_log && ci.serial_log->empty()) {
    return absl::InvalidArgumentError("--serial-log: the file name is empty");
  }
  if (ci.junit && ci.junit->empty()) {
    return absl::InvalidArgumentError("--junit: the file name is empty");
  }
  return absl::OkStatus();
}

absl::Status ValidateConfig(const VmConfig& config) {
  if (config.kernel_path.empty()) {
    return absl::InvalidArgumentError("--kernel is required");
  }
  if (config.cpus < 1 || config.cpus > kMaxCpus) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--cpus %u: must be between 1 and %u", config.cpus, kMaxCpus));
  }
  if (config.dtb_path && config.dtb_path->empty()) {
    return absl::InvalidArgumentError("--dtb: the file name is empty");
  }
  if (config.dtb_out_path && config.dtb_out_path->empty()) {
    return absl::InvalidArgumentError("--dtb-out: the file name is empty");
  }
  if (config.memory_bytes % 4096 != 0) {
    return absl::InvalidArgumentError("--memory must be a multiple of 4 KiB");
  }
  if (config.hugepages && config.memory_bytes % config.hugepage_size != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--memory must be a multiple of the hugepage size (%u MiB) with --hugepages",
        config.hugepage_size >> 20));
  }
  for (const VcpuAffinity& pin : config.placement.vcpu_affinity) {
    if (pin.vcpu >= config.cpus) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--cpus affinity: vCPU %u does not exist (the guest has %u)", pin.vcpu, config.cpus));
    }
  }
  if (const std::optional<int>& rt = config.placement.rt_priority;
      rt && (*rt < kMinRtPriority || *rt > kMaxRtPriority)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--rt-priority %d: SCHED_FIFO priorities are %d-%d", *rt, kMinRtPriority,
        kMaxRtPriority));
  }
  if (config.api_socket && config.api_socket->empty()) {
    return absl::InvalidArgumentError("--api-socket: the path is empty");
  }
  if (config.log_file && config.log_file->empty()) {
    return absl::InvalidArgumentError("--log-file: the file name is empty");
  }
  if (!config.userspace_marker.empty()) {
    absl::Status valid = ValidateConsolePattern("--userspace-marker", config.userspace_marker);
    if (!valid.ok()) return valid;
  }
  return ValidateCiOptions(config.ci);
}

}  // namespace skiff
