// The modern virtio-pci transport (virtio 1.2 §4.1): adapts a VirtioDevice
// to a PCI function the root complex can host.
//
// One 64-bit memory BAR (see pci_layout.h) holds the common configuration,
// ISR status, device configuration, one notify address per queue and the
// MSI-X table and PBA; vendor capabilities point the driver at each, and a
// VIRTIO_PCI_CAP_PCI_CFG window reaches the BAR through config space.
//
// Queue notifications land on KVM ioeventfds (one per queue, no datamatch)
// registered at the notify addresses while the BAR is mapped, and moved
// when the guest moves it; a notify write that still exits to Skiff
// signals the same eventfd. Interrupts go out through VirtioPciInterrupt.
//
// Threads: vCPUs call the config and BAR handlers concurrently; the device
// back-end calls the interrupt from the I/O thread. One mutex guards the
// register state; device_status changes that activate or reset the device
// are serialised by a second one, and neither the state lock nor the root's
// is held across VirtioDevice::Activate/Reset.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/pci/msix_table.h"
#include "devices/pci/pci_config_space.h"
#include "devices/pci/pci_device.h"
#include "devices/pci/pci_root.h"
#include "devices/virtio/pci_interrupt.h"
#include "devices/virtio/virtio_device.h"
#include "vmm/event_loop.h"
#include "vmm/guest_memory.h"
#include "vmm/io_event_registrar.h"
#include "vmm/irq_line.h"
#include "vmm/msi_vector.h"
#include "vmm/unique_fd.h"

namespace skiff::virtio {

struct VirtioPciEnv {
  GuestMemory memory;
  EventLoop* event_loop = nullptr;
  // Null: notify writes always exit to Skiff (tests; no KVM).
  IoEventRegistrar* ioevents = nullptr;
  // Null: no MSI-X capability, INTx only.
  MsiAllocator* msi = nullptr;
  // PciRoot::Slot::intx. Null: no interrupt pin.
  std::shared_ptr<IrqLine> intx = nullptr;
  // PciRoot::Slot::bdf: the requester ID MSI messages carry (GICv3 ITS).
  uint16_t bdf = 0;
};

// The most queues one transport exposes; each costs a notify address, an
// eventfd and an MSI-X vector.
inline constexpr uint16_t kVirtioPciMaxQueues = 1024;

class VirtioPciTransport : public pci::PciDevice {
 public:
  static absl::StatusOr<std::shared_ptr<VirtioPciTransport>> Create(
      std::shared_ptr<VirtioDevice> device, VirtioPciEnv env);

  // PciDevice.
  std::string name() const override;
  uint32_t ReadConfig(uint32_t offset, uint32_t size) override;
  void WriteConfig(uint32_t offset, uint32_t size, uint32_t value) override;
  std::optional<pci::BarInfo> GetBar(int index) const override;
  void ReadBar(int index, uint64_t offset, std::span<uint8_t> data) override;
  void WriteBar(int index, uint64_t offset, std::span<const uint8_t> data) override;
  void BarMapped(int index, std::optional<uint64_t> address) override;

  uint8_t device_status() const;
  uint64_t bar_size() const { return bar_size_; }
  uint32_t msix_vectors() const { return msix_ ? msix_->num_vectors() : 0; }
  // The eventfd a queue's notifications signal (what the device receives
  // as ActivatedQueue::notify_fd).
  int notify_fd(uint16_t queue) const;

  // Layout, public for tests and logs.
  uint64_t msix_table_offset() const { return msix_table_offset_; }
  uint64_t msix_pba_offset() const { return msix_pba_offset_; }

  // Use Create(); public for std::make_shared.
  VirtioPciTransport(std::shared_ptr<VirtioDevice> device, VirtioPciEnv env);
  // Removes the notify ioeventfds: env.ioevents must outlive the transport.
  ~VirtioPciTransport() override;

 private:
  struct QueueState {
    uint16_t size = 0;
    uint16_t msix_vector = kNoVector;
    bool enabled = false;
    uint64_t desc = 0, driver = 0, device = 0;
  };
  // The PCI_CFG capability's window into the BAR, when valid.
  struct CfgWindow {
    uint64_t offset;
    uint32_t length;
  };

  absl::Status Init();
  absl::Status AddCapabilities();
  uint64_t ReadCommonLocked(uint32_t offset, uint32_t size);
  void WriteCommon(uint32_t offset, uint32_t size, uint64_t value);
  void WriteCommonLocked(uint32_t offset, uint32_t size, uint64_t value);
  void WriteStatus(uint8_t value);
  void ResetLocked();
  ActivationContext MakeContextLocked();
  std::optional<CfgWindow> PciCfgWindowLocked() const;
  bool QueueWritableLocked() const;
  void RegisterIoEventsLocked();
  void UnregisterIoEventsLocked();
  void SignalNotify(uint16_t queue);

  const std::shared_ptr<VirtioDevice> device_;
  const VirtioPciEnv env_;
  const uint16_t num_queues_;
  const uint16_t max_queue_size_;
  const uint64_t device_features_;

  // Fixed after Create.
  std::vector<UniqueFd> notify_fds_;
  std::shared_ptr<pci::MsixTable> msix_;
  std::shared_ptr<VirtioPciInterrupt> interrupt_;
  uint64_t bar_size_ = 0;
  uint64_t notify_size_ = 0;
  uint64_t msix_table_offset_ = 0;
  uint64_t msix_pba_offset_ = 0;
  uint32_t msix_cap_ = 0;
  uint32_t pci_cfg_cap_ = 0;

  // Serialises status writes that call device_->Activate/Reset.
  std::mutex lifecycle_mutex_;
  mutable std::mutex mutex_;  // everything below
  pci::PciConfigSpace config_;
  uint8_t status_ = 0;
  uint32_t device_feature_select_ = 0;
  uint32_t driver_feature_select_ = 0;
  uint64_t driver_features_ = 0;
  uint16_t config_vector_ = kNoVector;
  uint16_t queue_select_ = 0;
  std::vector<QueueState> queues_;
  std::optional<uint64_t> bar_address_;  // where the root mapped the BAR
  std::vector<bool> ioevent_registered_;
};

// The usual way to add a virtio device behind PCI: reserves a slot on
// `root`, fills env.intx and env.bdf from it, creates the transport and
// attaches it (BARs assigned from the root's windows, decode on, mapped).
// On error the slot is given back.
absl::StatusOr<std::shared_ptr<VirtioPciTransport>> AddVirtioPciDevice(
    pci::PciRoot& root, std::shared_ptr<VirtioDevice> device, VirtioPciEnv env);

}  // namespace skiff::virtio
