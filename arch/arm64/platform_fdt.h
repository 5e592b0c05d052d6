// The device tree Skiff gives an arm64 guest (docs/arm64.md shows it as
// dtc prints it), and the checks and patching of a tree the operator
// brings with --dtb. Pure functions: a description in, DTB bytes out.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/vfio/fsl_mc/fsl_mc_fdt.h"

namespace skiff::arm64 {

enum class GicKind { kV3, kV2 };

struct VirtioMmioNode {
  uint64_t base = 0;
  uint64_t size = 0;
  uint32_t spi = 0;
};

struct InitrdRange {
  uint64_t start = 0;
  uint64_t end = 0;  // exclusive, as linux,initrd-end
};

struct PlatformDescription {
  uint32_t num_cpus = 1;
  uint64_t ram_size = 0;  // from kRamBase
  GicKind gic = GicKind::kV3;
  // The MSI controller the host gave: an ITS with GICv3, a v2m frame with
  // GICv2. Without one, PCI devices fall back to INTx.
  bool msi_controller = true;
  std::vector<VirtioMmioNode> virtio_mmio;
  bool pci = false;  // a PCIe host bridge exists
  // Assigned fsl-mc containers (--device fsl-mc), each an `fsl,qoriq-mc`
  // node whose msi-map points at the ITS: needs GICv3 with an ITS.
  std::vector<vfio::fsl_mc::FslMcNodeParams> fsl_mc;
  std::string bootargs;
  std::optional<InitrdRange> initrd;
};

// Phandles Skiff's tree uses (fixed: nothing else allocates them).
inline constexpr uint32_t kGicPhandle = 1;
inline constexpr uint32_t kMsiPhandle = 2;
inline constexpr uint32_t kApbClockPhandle = 3;
inline constexpr uint32_t kGpioPhandle = 4;

// include/uapi/linux/input-event-codes.h: what the gpio-keys power key sends.
inline constexpr uint32_t kKeyPower = 116;

// Node paths, for stdout-path and tests.
std::string UartNodeName();  // "serial@b000000"

absl::StatusOr<std::vector<uint8_t>> BuildPlatformFdt(const PlatformDescription& platform);

// A DTB from the operator: the header and the whole structure must be
// sound (fdt_check_header, fdt_check_full) and it must fit the 2 MiB the
// arm64 boot protocol allows. `what` names it in errors ("--dtb FILE").
absl::Status ValidateFdt(std::span<const uint8_t> blob, const std::string& what);

// The operator's tree as the guest gets it: unchanged, except that /chosen
// (made if missing) gets bootargs when `bootargs` is non-empty and
// linux,initrd-start/-end when there is an initrd - only Skiff knows where
// it put the initramfs and which words it added to the command line.
// Checks the blob as ValidateFdt does before libfdt touches it.
absl::StatusOr<std::vector<uint8_t>> PatchUserFdt(std::span<const uint8_t> blob,
                                                  const std::string& bootargs,
                                                  std::optional<InitrdRange> initrd);

}  // namespace skiff::arm64
