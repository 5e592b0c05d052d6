// What the user asked for, validated: the single input to building a VM.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vmm/cpu_placement.h"
#include "vmm/device_config.h"
#include "vmm/log.h"
#include "vmm/seccomp.h"

namespace skiff {

inline constexpr uint32_t kMaxCpus = 255;  // xAPIC IDs, and GIC redistributors
inline constexpr uint64_t kDefaultMemory = 256ull << 20;
// The kernel's last line before it starts init ("Run /init as init
// process", printed at KERN_INFO, so hidden by `quiet`).
inline constexpr char kDefaultUserspaceMarker[] = "Run \\S+ as init process";

// How a run is judged and recorded, for CI (docs/exit-codes.md).
struct CiOptions {
  std::optional<absl::Duration> timeout;  // --timeout: then exit kExitTimeout
  std::vector<std::string> expect;        // --expect: RE2 patterns, all must be seen
  std::vector<std::string> expect_fail;   // --expect-fail: any one fails the run
  std::optional<std::string> serial_log;  // --serial-log FILE
  bool serial_log_timestamps = false;
  std::optional<std::string> junit;  // --junit FILE
};

// Where Skiff's threads run (docs/nfv.md).
struct PlacementOptions {
  std::vector<VcpuAffinity> vcpu_affinity;         // --cpus N,affinity=V:C,...
  std::optional<std::vector<uint32_t>> io_affinity;  // --io-affinity CPULIST
  std::optional<int> rt_priority;                  // --rt-priority: vCPUs SCHED_FIFO
};

struct VmConfig {
  std::string kernel_path;
  std::optional<std::string> initramfs_path;
  std::string cmdline;
  // arm64: boot this device tree instead of Skiff's (--dtb), and/or write
  // the tree the guest gets to a file (--dtb-out).
  std::optional<std::string> dtb_path;
  std::optional<std::string> dtb_out_path;
  uint32_t cpus = 1;
  uint64_t memory_bytes = kDefaultMemory;
  bool hugepages = false;                          // --hugepages[=SIZE]
  uint64_t hugepage_size = 2ull << 20;             // 2M unless --hugepages=1G
  bool prefault = false;                           // --prefault
  PlacementOptions placement;
  std::optional<std::string> api_socket;           // --api-socket PATH
  std::string kvm_device = "/dev/kvm";
  // Per-thread system call filters (vmm/seccomp.h).
  SeccompMode seccomp = SeccompMode::kOn;
  LogLevel log_level = LogLevel::kWarn;
  std::optional<std::string> log_file;  // --log-file: else stderr
  // --userspace-marker: RE2; the boot timeline's "guest userspace" (empty: none).
  std::string userspace_marker = kDefaultUserspaceMarker;
  std::vector<DiskConfig> disks;
  std::vector<NetConfig> nets;
  std::vector<VfioDeviceConfig> vfio_devices;  // --device vfio=...
  std::vector<FslMcDeviceConfig> fsl_mc_devices;  // --device fsl-mc=... (ARM64)
  // Where host PCI devices are looked up (tests point it elsewhere).
  std::string sysfs_root = "/sys";
  ConsoleDevice console = ConsoleDevice::kSerial;
  // For devices whose option names no transport.
  VirtioTransport default_transport = VirtioTransport::kPci;
  CiOptions ci;
};

// "256M", "1G", "512K", "2T", with optional "iB"/"B" ("1GiB"); a bare number
// means MiB, as QEMU's -m. Binary units. Rejects zero, junk and overflow.
absl::StatusOr<uint64_t> ParseSize(std::string_view text);

// Checks cross-field rules that do not need the kernel or KVM.
absl::Status ValidateConfig(const VmConfig& config);
// The CI part of it: patterns compile, flags that need a file have one.
absl::Status ValidateCiOptions(const CiOptions& ci);

}  // namespace skiff
