// Helpers shared by the fsl-mc tests (fsl_mc_test.cc, the device's own, and
// arm64_fsl_mc_wiring_test.cc, the ARM64 machine's): a fake sysfs tree of
// an fsl-mc container and a memory-slot registrar that records.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "vmm/memory_slot_registrar.h"

namespace skiff::vfio::fsl_mc {

// <root>/bus/fsl-mc/devices/<dprc> with driver and IOMMU-group (`group`)
// links and a directory per child (with its own driver link when given).
inline void MakeFslMcSysfs(const std::string& root, const std::string& dprc,
                           const std::string& driver, bool with_group, uint32_t group,
                           const std::map<std::string, std::string>& children) {
  namespace fs = std::filesystem;
  const fs::path dev = fs::path(root) / "bus/fsl-mc/devices" / dprc;
  fs::create_directories(dev);
  fs::create_directories(fs::path(root) / "bus/fsl-mc/drivers" / driver);
  if (!driver.empty()) fs::create_directory_symlink("../../drivers/" + driver, dev / "driver");
  if (with_group) {
    fs::create_directories(fs::path(root) / "kernel/iommu_groups" / std::to_string(group));
    fs::create_directory_symlink("../../../kernel/iommu_groups/" + std::to_string(group),
                                 dev / "iommu_group");
  }
  for (const auto& [name, child_driver] : children) {
    fs::create_directories(dev / name);
    if (!child_driver.empty()) {
      fs::create_directory_symlink("../../../drivers/" + child_driver, dev / name / "driver");
    }
  }
  std::ofstream(dev / "driver_override") << "vfio-fsl-mc\n";
}

// The children of FakeFslMcGroup::Typical(), as sysfs lists them.
inline std::map<std::string, std::string> TypicalFslMcChildren() {
  return {{"dpbp.1", "vfio-fsl-mc"},  {"dpcon.4", "vfio-fsl-mc"}, {"dpio.7", "vfio-fsl-mc"},
          {"dpmac.6", "vfio-fsl-mc"}, {"dpmcp.5", "vfio-fsl-mc"}, {"dpni.3", ""}};
}

class RecordingSlots : public MemorySlotRegistrar {
 public:
  struct Slot {
    uint64_t gpa, size;
    void* host;
  };
  absl::StatusOr<uint32_t> AddMemorySlot(uint64_t gpa, uint64_t size, void* host) override {
    slots[next] = {gpa, size, host};
    return next++;
  }
  absl::Status RemoveMemorySlot(uint32_t slot) override {
    if (!slots.erase(slot)) return absl::NotFoundError("no slot");
    ++removed;
    return absl::OkStatus();
  }
  std::map<uint32_t, Slot> slots;
  uint32_t next = 0;
  int removed = 0;
};

}  // namespace skiff::vfio::fsl_mc
