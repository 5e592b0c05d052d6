// An NXP fsl-mc (DPAA2) container (DPRC) assigned to the guest through
// vfio-fsl-mc, with every object in it.
//
// Open() opens the container's IOMMU group in Skiff's VFIO container (one
// group: the DPRC and all its children, drivers/iommu/iommu.c), then the
// DPRC's device fd and one per child object, and reads what VFIO says of
// each (VFIO_DEVICE_FLAGS_FSL_MC, regions at index << 40, IRQs, each of
// count 1 and eventfd-only: drivers/vfio/fsl-mc/vfio_fsl_mc.c).
//
// Attach() lays the regions out in the guest window the machine gives
// (fsl_mc_layout.h): QBMan portals become KVM memory slots over the VFIO
// mmap; MC command portals become trapped McPortalDevices on the MMIO bus,
// whose commands Execute() forwards to the MC through vfio-fsl-mc (pwrite
// of the 64-byte command, which waits for the MC, then pread of the
// response) — except the few that must stay virtual:
//   * DPRC SET_IRQ / SET_OBJ_IRQ: the guest's MSI (ITS doorbell, EventID)
//     becomes an MSI route with KVM_MSI_VALID_DEVID (DeviceID = the guest
//     ICID through the node's msi-map), an irqfd on it, and
//     VFIO_DEVICE_SET_IRQS(TRIGGER, eventfd) on that object, so the MC's
//     interrupt reaches the guest with no Skiff hop. Never forwarded: the
//     host kernel owns the real MSI programming.
//   * DPRC GET_IRQ / GET_OBJ_IRQ: answered from what the guest set.
//   * DPRC GET_ATTR: the ICID the guest sees is the virtual one.
//   * DPRC GET_OBJ_REG: the region's address and size are the guest's.
// Everything from the guest is hostile: tokens, object ids, types and IRQ
// indexes are checked against the container; unknown ones get an MC error
// status, never a host access outside the container's own portal.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/vfio/fsl_mc/fsl_mc_fdt.h"
#include "devices/vfio/fsl_mc/fsl_mc_layout.h"
#include "devices/vfio/fsl_mc/fsl_mc_sysfs.h"
#include "devices/vfio/fsl_mc/mc_command.h"
#include "devices/vfio/vfio_container.h"
#include "devices/vfio/vfio_kernel.h"
#include "vmm/bus.h"
#include "vmm/mapping.h"
#include "vmm/memory_slot_registrar.h"
#include "vmm/msi_vector.h"
#include "vmm/unique_fd.h"

namespace skiff::vfio::fsl_mc {

// How the guest names the container's interrupts. The guest learns its
// ICID only from DPRC GET_ATTR; the ITS DeviceID is what the node's msi-map
// turns that ICID into (KVM's vITS has 16 DeviceID bits, so it must stay
// below 0x10000 and clear of PCI requester IDs).
struct FslMcGuestIds {
  uint16_t icid = 1;
  uint32_t its_device_id = 0x1000;
};

struct FslMcEnv {
  MsiAllocator* msi = nullptr;           // GSI + MSI route + irqfd per interrupt
  MemorySlotRegistrar* slots = nullptr;  // QBMan portals
  Bus* mmio = nullptr;                   // trapped MC portals
  FslMcGuestIds ids;
  uint64_t page_size = 4096;  // the host's
};

struct McObject {
  std::string name;  // "dpni.3"
  std::string type;  // "dpni"
  uint32_t id = 0;
  McObjectKind kind = McObjectKind::kOther;
  UniqueFd fd;
  VfioDeviceInfo info;
  std::vector<VfioRegionInfo> regions;
  uint32_t irq_count = 0;
};

class FslMcContainer {
 public:
  // Opens `host` (from InspectHostDprc) through `container`.
  static absl::StatusOr<std::unique_ptr<FslMcContainer>> Open(
      std::shared_ptr<VfioContainer> container, const HostDprc& host);
  // Inspects <sysfs_root>/bus/fsl-mc/devices/<dprc> first, then Open().
  static absl::StatusOr<std::unique_ptr<FslMcContainer>> Open(
      std::shared_ptr<VfioContainer> container, const std::string& sysfs_root,
      const std::string& dprc);

  FslMcContainer(std::shared_ptr<VfioContainer> container, std::shared_ptr<VfioGroup> group)
      : container_(std::move(container)), group_(std::move(group)) {}
  // Disables the interrupts, removes the slots and portals, closes the
  // children, then the DPRC (the kernel resets each object on close).
  ~FslMcContainer();
  FslMcContainer(const FslMcContainer&) = delete;
  FslMcContainer& operator=(const FslMcContainer&) = delete;

  // Places the regions in `window`, maps the QBMan portals and registers
  // the MC portals. Once. `env`'s pointers must outlive the container.
  absl::Status Attach(FslMcWindow window, const FslMcEnv& env);

  // One guest command arriving on the trapped portal of objects()[portal]
  // (the DPRC or a DPMCP); returns the response the guest reads back.
  McCommand Execute(size_t portal, const McCommand& cmd);

  const std::vector<McObject>& objects() const { return objects_; }
  const std::string& name() const { return objects_.front().name; }
  const std::shared_ptr<VfioGroup>& group() const { return group_; }
  // Valid after Attach.
  const FslMcLayout& layout() const { return layout_; }
  const FslMcGuestIds& guest_ids() const { return env_.ids; }
  // The guest's root portal (the node's reg): the DPRC's slot.
  uint64_t root_portal_gpa() const;
  uint64_t root_portal_size() const;
  // What WriteFslMcNode needs, after Attach; `its_phandle` is the guest
  // ITS node's.
  FslMcNodeParams node_params(uint32_t its_phandle) const;

 private:
  struct Route {
    McIrqConfig config;
    std::unique_ptr<MsiVector> vector;
    bool bound = false;  // VFIO has the irqfd as this IRQ's trigger
  };
  struct Portal {
    std::map<uint16_t, uint32_t> dprc_tokens;  // token -> container id opened
  };

  absl::Status OpenObject(const std::string& name);
  absl::StatusOr<McCommand> Forward(size_t portal, const McCommand& cmd);
  McCommand SetIrq(const McCommand& cmd, size_t object, const McIrqConfig& irq);
  McCommand GetIrq(const McCommand& cmd, size_t object, uint8_t index);
  McCommand RewriteObjRegion(const McCommand& cmd, McCommand rsp);
  // The container's object of `type` and `id`, or -1.
  int FindObject(const std::string& type, uint32_t id) const;

  std::shared_ptr<VfioContainer> container_;
  std::shared_ptr<VfioGroup> group_;
  std::vector<McObject> objects_;  // [0] is the DPRC
  bool attached_ = false;
  FslMcEnv env_;
  FslMcLayout layout_;
  std::vector<Mapping> maps_;
  std::vector<uint32_t> slots_;
  std::vector<uint64_t> portal_bases_;

  // Serializes every portal command and SET_IRQS: vfio-fsl-mc's write and
  // read are two calls on one MC portal, and the host kernel programs the
  // MSI of SET_IRQS through the DPRC's portal too.
  std::mutex mutex_;
  std::map<size_t, Portal> portals_;
  std::map<std::pair<size_t, uint8_t>, Route> routes_;
};

}  // namespace skiff::vfio::fsl_mc
