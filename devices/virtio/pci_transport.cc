#include "devices/virtio/pci_transport.h"

#include <linux/virtio_ids.h>
#include <linux/virtio_pci.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "devices/pci/pci_constants.h"
#include "devices/virtio/pci_layout.h"
#include "devices/virtio/status_table.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff::virtio {
namespace {

namespace layout = pci_layout;
using pci::PciConfigSpace;

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

uint64_t Load(std::span<const uint8_t> data) {
  uint64_t value = 0;
  for (size_t i = 0; i < data.size() && i < 8; ++i) value |= uint64_t{data[i]} << (8 * i);
  return value;
}

void Store(uint64_t value, std::span<uint8_t> data) {
  for (size_t i = 0; i < data.size() && i < 8; ++i) data[i] = value >> (8 * i);
}

// The PCI class a driver-agnostic OS would expect for each device type.
uint32_t ClassCodeFor(uint32_t virtio_id) {
  switch (virtio_id) {
    case VIRTIO_ID_NET:
      return 0x020000;  // network, Ethernet
    case VIRTIO_ID_BLOCK:
      return 0x018000;  // mass storage, other
    case VIRTIO_ID_CONSOLE:
      return 0x078000;  // communication, other
    default:
      return 0x00ff00;  // unclassified
  }
}

// The common configuration registers: offset and width of each field.
struct CommonField {
  uint32_t offset;
  uint32_t width;
};
constexpr CommonField kCommonFields[] = {
    {layout::kDeviceFeatureSelect, 4}, {layout::kDeviceFeature, 4},
    {layout::kDriverFeatureSelect, 4}, {layout::kDriverFeature, 4},
    {layout::kMsixConfig, 2},          {layout::kNumQueues, 2},
    {layout::kDeviceStatus, 1},        {layout::kConfigGeneration, 1},
    {layout::kQueueSelect, 2},         {layout::kQueueSize, 2},
    {layout::kQueueMsixVector, 2},     {layout::kQueueEnable, 2},
    {layout::kQueueNotifyOff, 2},      {layout::kQueueDesc, 8},
    {layout::kQueueDriver, 8},         {layout::kQueueDevice, 8},
};

// The field an access hits, if it uses the field's natural width — or one
// 32-bit half of a 64-bit field (§4.1.3.1).
std::optional<CommonField> CommonFieldAt(uint64_t offset, size_t size) {
  for (const CommonField& f : kCommonFields) {
    if (offset < f.offset || offset >= f.offset + f.width) continue;
    if (offset == f.offset && size == f.width) return f;
    if (f.width == 8 && size == 4 && (offset - f.offset) % 4 == 0) return f;
    return std::nullopt;
  }
  return std::nullopt;
}

uint64_t Merge(uint64_t current, uint32_t byte_offset, size_t size, uint64_t value) {
  const uint64_t mask = size >= 8 ? ~uint64_t{0} : ((uint64_t{1} << (8 * size)) - 1);
  const uint32_t shift = 8 * byte_offset;
  return (current & ~(mask << shift)) | ((value & mask) << shift);
}

}  // namespace

absl::StatusOr<std::shared_ptr<VirtioPciTransport>> VirtioPciTransport::Create(
    std::shared_ptr<VirtioDevice> device, VirtioPciEnv env) {
  if (device == nullptr) return absl::InvalidArgumentError("virtio-pci: no device");
  const std::string name = device->name();
  if (device->num_queues() == 0 || device->num_queues() > kVirtioPciMaxQueues) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %d queues; virtio-pci supports 1-%d",
                                                      name, device->num_queues(),
                                                      kVirtioPciMaxQueues));
  }
  if (device->max_queue_size() == 0 || device->max_queue_size() > 32768) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: maximum queue size %d outside 1-32768",
                                                      name, device->max_queue_size()));
  }
  if (!(device->device_features() & (uint64_t{1} << VIRTIO_F_VERSION_1))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: does not offer VIRTIO_F_VERSION_1, which modern virtio-pci needs", name));
  }
  if (device->config_size() > layout::kDeviceMaxSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d bytes of device configuration; at most %d fit", name,
                        device->config_size(), layout::kDeviceMaxSize));
  }
  if (device->device_id() > 0xffff - layout::kDeviceIdBase) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: virtio device ID %d has no PCI device ID", name, device->device_id()));
  }
  auto transport = std::make_shared<VirtioPciTransport>(std::move(device), std::move(env));
  RETURN_IF_ERROR(transport->Init());
  return transport;
}

VirtioPciTransport::VirtioPciTransport(std::shared_ptr<VirtioDevice> device, VirtioPciEnv env)
    : device_(std::move(device)),
      env_(std::move(env)),
      num_queues_(device_->num_queues()),
      max_queue_size_(device_->max_queue_size()),
      device_features_(device_->device_features()),
      config_(pci::PciIds{
          .vendor_id = layout::kVendorId,
          .device_id = static_cast<uint16_t>(layout::kDeviceIdBase + device_->device_id()),
          .revision_id = layout::kRevision,
          .class_code = ClassCodeFor(device_->device_id()),
          .subsystem_vendor_id = layout::kVendorId,
          .subsystem_id = layout::kSubsystemId,
          .interrupt_pin = env_.intx ? pci::kInterruptPinA : pci::kInterruptPinNone}) {}

absl::Status VirtioPciTransport::Init() {
  for (uint16_t q = 0; q < num_queues_; ++q) {
    UniqueFd fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) {
      return absl::InternalError(
          absl::StrFormat("%s: eventfd for queue %d: %s", name(), q, std::strerror(errno)));
    }
    notify_fds_.push_back(std::move(fd));
  }
  if (env_.msi != nullptr) {
    // One vector per queue plus one for configuration changes: what Linux
    // asks for first, so every queue interrupts on its own.
    auto msix = pci::MsixTable::Create(uint32_t{num_queues_} + 1, *env_.msi, env_.bdf);
    if (!msix.ok()) {
      return absl::Status(msix.status().code(),
                          absl::StrCat(name(), ": MSI-X: ", msix.status().message()));
    }
    msix_ = std::shared_ptr<pci::MsixTable>(*std::move(msix));
  }
  notify_size_ =
      AlignUp(uint64_t{layout::kNotifyOffMultiplier} * num_queues_, layout::kRegionAlign);
  uint64_t end = layout::kNotifyOffset + notify_size_;
  if (msix_) {
    msix_table_offset_ = end;
    msix_pba_offset_ = msix_table_offset_ + AlignUp(msix_->table_size(), layout::kRegionAlign);
    end = msix_pba_offset_ + AlignUp(msix_->pba_size(), layout::kRegionAlign);
  }
  bar_size_ = std::bit_ceil(end);
  interrupt_ = std::make_shared<VirtioPciInterrupt>(num_queues_, msix_, env_.intx);
  queues_.assign(num_queues_, QueueState{.size = max_queue_size_});
  ioevent_registered_.assign(num_queues_, false);

  std::lock_guard lock(mutex_);
  RETURN_IF_ERROR(config_.AddBar(layout::kBar, {pci::BarType::kMemory64, bar_size_, false}));
  return AddCapabilities();
}

absl::Status VirtioPciTransport::AddCapabilities() {
  // struct virtio_pci_cap after the ID/next bytes: cap_len, cfg_type, bar,
  // id, padding[2], offset, length; then `extra`.
  auto add = [this](uint8_t type, uint64_t offset, uint64_t length, std::vector<uint8_t> extra = {},
                    bool window = false) -> absl::StatusOr<uint32_t> {
    std::vector<uint8_t> body(layout::kCapSize - 2, 0);
    body.insert(body.end(), extra.begin(), extra.end());
    body[0] = static_cast<uint8_t>(body.size() + 2);
    body[1] = type;
    body[2] = layout::kBar;
    for (int i = 0; i < 4; ++i) {
      body[6 + i] = offset >> (8 * i);
      body[10 + i] = length >> (8 * i);
    }
    std::vector<uint8_t> writable(body.size(), 0);
    if (window) {
      // PCI_CFG: the driver picks bar, offset and length, and moves data.
      writable[layout::kCapBar - 2] = 0xff;
      std::fill(writable.begin() + layout::kCapOffset - 2, writable.end(), 0xff);
    }
    return config_.AddCapability(pci::kCapIdVendor, body, writable);
  };
  const uint32_t multiplier = layout::kNotifyOffMultiplier;
  RETURN_IF_ERROR(
      add(VIRTIO_PCI_CAP_COMMON_CFG, layout::kCommonOffset, layout::kCommonSize).status());
  RETURN_IF_ERROR(
      add(VIRTIO_PCI_CAP_NOTIFY_CFG, layout::kNotifyOffset,
          uint64_t{layout::kNotifyOffMultiplier} * num_queues_,
          {static_cast<uint8_t>(multiplier), static_cast<uint8_t>(multiplier >> 8),
           static_cast<uint8_t>(multiplier >> 16), static_cast<uint8_t>(multiplier >> 24)})
          .status());
  RETURN_IF_ERROR(add(VIRTIO_PCI_CAP_ISR_CFG, layout::kIsrOffset, layout::kIsrSize).status());
  if (device_->config_size() > 0) {
    RETURN_IF_ERROR(
        add(VIRTIO_PCI_CAP_DEVICE_CFG, layout::kDeviceOffset, device_->config_size()).status());
  }
  ASSIGN_OR_RETURN(pci_cfg_cap_, add(VIRTIO_PCI_CAP_PCI_CFG, 0, 0, {0, 0, 0, 0}, true));
  if (msix_) {
    ASSIGN_OR_RETURN(msix_cap_, msix_->AddCapability(config_, layout::kBar, msix_table_offset_,
                                                     msix_pba_offset_));
  }
  return absl::OkStatus();
}

VirtioPciTransport::~VirtioPciTransport() {
  {
    // A device still running stops first, while the notify eventfds it
    // watches are open (they close with this object): otherwise its reset
    // from its own destructor finds them closed.
    std::lock_guard lifecycle(lifecycle_mutex_);
    bool live;
    {
      std::lock_guard lock(mutex_);
      live = (status_ & kStatusDriverOk) != 0;
    }
    if (live) device_->Reset();
  }
  std::lock_guard lock(mutex_);
  UnregisterIoEventsLocked();
}

std::string VirtioPciTransport::name() const { return device_->name(); }

uint8_t VirtioPciTransport::device_status() const {
  std::lock_guard lock(mutex_);
  return status_ | (interrupt_->needs_reset() ? kStatusNeedsReset : 0);
}

int VirtioPciTransport::notify_fd(uint16_t queue) const {
  return queue < notify_fds_.size() ? notify_fds_[queue].get() : -1;
}

// --- Configuration space ---

std::optional<VirtioPciTransport::CfgWindow> VirtioPciTransport::PciCfgWindowLocked() const {
  const uint32_t bar = config_.Read(pci_cfg_cap_ + layout::kCapBar, 1);
  const uint32_t offset = config_.Read(pci_cfg_cap_ + layout::kCapOffset, 4);
  const uint32_t length = config_.Read(pci_cfg_cap_ + layout::kCapLengthField, 4);
  if (bar != layout::kBar || (length != 1 && length != 2 && length != 4) || offset % length != 0 ||
      uint64_t{offset} + length > bar_size_) {
    return std::nullopt;
  }
  return CfgWindow{offset, length};
}

uint32_t VirtioPciTransport::ReadConfig(uint32_t offset, uint32_t size) {
  if (!PciConfigSpace::ValidAccess(offset, size)) return 0xffffffff;
  const uint32_t data_offset = pci_cfg_cap_ + layout::kPciCfgCapData;
  std::optional<CfgWindow> window;
  {
    std::lock_guard lock(mutex_);
    if (!PciConfigSpace::Overlaps(offset, size, data_offset, data_offset + 4)) {
      uint32_t value = config_.Read(offset, size);
      // Status bit 3 mirrors the INTx state (§4.1.4.5.1).
      if (PciConfigSpace::Overlaps(offset, size, pci::kStatus, pci::kStatus + 1) &&
          interrupt_->intx_pending()) {
        value |= uint32_t{pci::kStatusInterrupt} << (8 * (pci::kStatus - offset));
      }
      return value;
    }
    window = PciCfgWindowLocked();
  }
  if (window) {
    uint8_t bytes[4] = {};
    ReadBar(layout::kBar, window->offset, std::span<uint8_t>(bytes, window->length));
    std::lock_guard lock(mutex_);
    const uint32_t current = config_.Read(data_offset, 4);
    config_.SetRaw(data_offset, 4, Merge(current, 0, window->length, Load(bytes)));
  }
  std::lock_guard lock(mutex_);
  return config_.Read(offset, size);
}

void VirtioPciTransport::WriteConfig(uint32_t offset, uint32_t size, uint32_t value) {
  if (!PciConfigSpace::ValidAccess(offset, size)) return;
  const uint32_t data_offset = pci_cfg_cap_ + layout::kPciCfgCapData;
  std::optional<CfgWindow> window;
  uint8_t bytes[4] = {};
  {
    std::lock_guard lock(mutex_);
    config_.Write(offset, size, value);
    if (msix_ && PciConfigSpace::Overlaps(offset, size, msix_cap_, msix_cap_ + 4)) {
      msix_->SetControl(config_.Read(msix_cap_ + pci::kMsixMessageControl, 2));
    }
    if (PciConfigSpace::Overlaps(offset, size, pci::kCommand, pci::kCommand + 2)) {
      interrupt_->SetIntxDisabled(config_.command() & pci::kCommandIntxDisable);
    }
    if (PciConfigSpace::Overlaps(offset, size, data_offset, data_offset + 4)) {
      window = PciCfgWindowLocked();
      Store(config_.Read(data_offset, 4), bytes);
    }
  }
  // Outside the lock: a BAR write may be a status write that activates or
  // resets the device.
  if (window)
    WriteBar(layout::kBar, window->offset, std::span<const uint8_t>(bytes, window->length));
}

std::optional<pci::BarInfo> VirtioPciTransport::GetBar(int index) const {
  std::lock_guard lock(mutex_);
  return config_.GetBar(index);
}

// --- The BAR ---

void VirtioPciTransport::ReadBar(int index, uint64_t offset, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), 0);
  if (index != layout::kBar || data.empty() || data.size() > 8 || offset >= bar_size_ ||
      data.size() > bar_size_ - offset) {
    return;
  }
  const uint64_t end = offset + data.size();
  if (end <= layout::kCommonOffset + layout::kCommonSize) {
    std::lock_guard lock(mutex_);
    Store(ReadCommonLocked(offset - layout::kCommonOffset, data.size()), data);
  } else if (offset == layout::kIsrOffset) {
    data[0] = interrupt_->ReadAndClearIsr();
  } else if (offset >= layout::kDeviceOffset &&
             end <= layout::kDeviceOffset + layout::kDeviceMaxSize) {
    device_->ReadConfig(offset - layout::kDeviceOffset, data);
  } else if (msix_ && offset >= msix_table_offset_ && offset < msix_pba_offset_) {
    msix_->ReadTable(offset - msix_table_offset_, data);
  } else if (msix_ && offset >= msix_pba_offset_) {
    msix_->ReadPba(offset - msix_pba_offset_, data);
  }
  // Notify addresses and the gaps between regions read as zero.
}

void VirtioPciTransport::WriteBar(int index, uint64_t offset, std::span<const uint8_t> data) {
  if (index != layout::kBar || data.empty() || data.size() > 8 || offset >= bar_size_ ||
      data.size() > bar_size_ - offset) {
    return;
  }
  const uint64_t end = offset + data.size();
  if (end <= layout::kCommonOffset + layout::kCommonSize) {
    WriteCommon(offset - layout::kCommonOffset, data.size(), Load(data));
  } else if (offset >= layout::kDeviceOffset &&
             end <= layout::kDeviceOffset + layout::kDeviceMaxSize) {
    device_->WriteConfig(offset - layout::kDeviceOffset, data);
  } else if (offset >= layout::kNotifyOffset &&
             offset <
                 layout::kNotifyOffset + uint64_t{layout::kNotifyOffMultiplier} * num_queues_) {
    // KVM did not take this write (no ioeventfd, or an odd width): forward
    // it to the same eventfd so the back-end sees one kind of kick.
    const uint64_t relative = offset - layout::kNotifyOffset;
    if (relative % layout::kNotifyOffMultiplier == 0) {
      SignalNotify(relative / layout::kNotifyOffMultiplier);
    }
  } else if (msix_ && offset >= msix_table_offset_ && offset < msix_pba_offset_) {
    msix_->WriteTable(offset - msix_table_offset_, data);
  }
  // ISR, the PBA and the gaps are read-only.
}

void VirtioPciTransport::SignalNotify(uint16_t queue) {
  if (queue >= notify_fds_.size()) return;
  const uint64_t one = 1;
  // Nonblocking: a full counter already means "kicked".
  (void)!::write(notify_fds_[queue].get(), &one, sizeof(one));
}

// --- Common configuration ---

uint64_t VirtioPciTransport::ReadCommonLocked(uint32_t offset, uint32_t size) {
  std::optional<CommonField> field = CommonFieldAt(offset, size);
  if (!field) {
    LOG_DEBUG("virtio-pci", "%s: common cfg read of %d bytes at 0x%x ignored", name(), size,
              offset);
    return 0;
  }
  const bool queue_valid = queue_select_ < num_queues_;
  const QueueState* q = queue_valid ? &queues_[queue_select_] : nullptr;
  uint64_t value = 0;
  switch (field->offset) {
    case layout::kDeviceFeatureSelect:
      value = device_feature_select_;
      break;
    case layout::kDeviceFeature:
      value = device_feature_select_ < 2 ? device_features_ >> (32 * device_feature_select_) : 0;
      break;
    case layout::kDriverFeatureSelect:
      value = driver_feature_select_;
      break;
    case layout::kDriverFeature:
      value = driver_feature_select_ < 2 ? driver_features_ >> (32 * driver_feature_select_) : 0;
      break;
    case layout::kMsixConfig:
      value = config_vector_;
      break;
    case layout::kNumQueues:
      value = num_queues_;
      break;
    case layout::kDeviceStatus:
      value = status_ | (interrupt_->needs_reset() ? kStatusNeedsReset : 0);
      break;
    case layout::kConfigGeneration:
      value = interrupt_->config_generation();
      break;
    case layout::kQueueSelect:
      value = queue_select_;
      break;
    // An out-of-range queue_select reads zeros (§4.1.4.3.2 asks for size 0).
    case layout::kQueueSize:
      value = q ? q->size : 0;
      break;
    case layout::kQueueMsixVector:
      value = q ? q->msix_vector : 0;
      break;
    case layout::kQueueEnable:
      value = q ? q->enabled : 0;
      break;
    case layout::kQueueNotifyOff:
      value = q ? queue_select_ : 0;
      break;
    case layout::kQueueDesc:
      value = q ? q->desc : 0;
      break;
    case layout::kQueueDriver:
      value = q ? q->driver : 0;
      break;
    case layout::kQueueDevice:
      value = q ? q->device : 0;
      break;
  }
  value >>= 8 * (offset - field->offset);
  return size >= 8 ? value : value & ((uint64_t{1} << (8 * size)) - 1);
}

bool VirtioPciTransport::QueueWritableLocked() const {
  // Queue set-up freezes once the queue is enabled or the device is live.
  return queue_select_ < num_queues_ && !queues_[queue_select_].enabled &&
         !(status_ & kStatusDriverOk);
}

void VirtioPciTransport::WriteCommon(uint32_t offset, uint32_t size, uint64_t value) {
  if (offset == layout::kDeviceStatus && size == 1) {
    WriteStatus(static_cast<uint8_t>(value));
    return;
  }
  std::lock_guard lock(mutex_);
  WriteCommonLocked(offset, size, value);
}

void VirtioPciTransport::WriteCommonLocked(uint32_t offset, uint32_t size, uint64_t value) {
  std::optional<CommonField> field = CommonFieldAt(offset, size);
  if (!field) {
    LOG_DEBUG("virtio-pci", "%s: common cfg write of %d bytes at 0x%x ignored", name(), size,
              offset);
    return;
  }
  const uint32_t byte = offset - field->offset;
  auto vector_or_none = [this](uint64_t v) -> uint16_t {
    // A vector past the table cannot be used: the driver reads back
    // NO_VECTOR and knows (§4.1.5.1.2).
    return msix_ && v < msix_->num_vectors() ? static_cast<uint16_t>(v) : kNoVector;
  };
  QueueState* q = QueueWritableLocked() ? &queues_[queue_select_] : nullptr;
  switch (field->offset) {
    case layout::kDeviceFeatureSelect:
      device_feature_select_ = value;
      break;
    case layout::kDriverFeatureSelect:
      driver_feature_select_ = value;
      break;
    case layout::kDriverFeature:
      if (status_ & (kStatusFeaturesOk | kStatusDriverOk)) break;  // negotiated
      if (driver_feature_select_ < 2) {
        driver_features_ = Merge(driver_features_, 4 * driver_feature_select_, 4, value);
      }
      break;
    case layout::kMsixConfig:
      config_vector_ = vector_or_none(value);
      interrupt_->SetConfigVector(config_vector_);
      break;
    case layout::kQueueSelect:
      queue_select_ = value;
      break;
    case layout::kQueueSize:
      if (q && value >= 1 && value <= max_queue_size_) q->size = value;
      break;
    case layout::kQueueMsixVector:
      if (q) {
        q->msix_vector = vector_or_none(value);
        interrupt_->SetQueueVector(queue_select_, q->msix_vector);
      }
      break;
    case layout::kQueueEnable:
      if (q && value == 1) q->enabled = true;  // 0 is not the driver's to write
      break;
    case layout::kQueueDesc:
      if (q) q->desc = Merge(q->desc, byte, size, value);
      break;
    case layout::kQueueDriver:
      if (q) q->driver = Merge(q->driver, byte, size, value);
      break;
    case layout::kQueueDevice:
      if (q) q->device = Merge(q->device, byte, size, value);
      break;
    default:
      break;  // read-only
  }
}

void VirtioPciTransport::WriteStatus(uint8_t value) {
  std::lock_guard lifecycle(lifecycle_mutex_);
  value &= ~kStatusNeedsReset;  // the device's bit, not the driver's
  if (value == 0) {
    device_->Reset();
    std::lock_guard lock(mutex_);
    ResetLocked();
    return;
  }
  std::optional<ActivationContext> context;
  {
    std::lock_guard lock(mutex_);
    const uint8_t from = status_;
    if (!IsValidStatusTransition(from, value)) {
      LOG_WARN("virtio-pci", "%s: device_status 0x%02x -> 0x%02x is not a valid step; ignored",
               name(), from, value);
      return;
    }
    const uint8_t added = value & ~from;
    if ((added & kStatusFeaturesOk) && !AcceptableFeatures(device_features_, driver_features_)) {
      LOG_WARN("virtio-pci",
               "%s: driver features 0x%x are not a VERSION_1 subset of 0x%x; FEATURES_OK refused",
               name(), driver_features_, device_features_);
      return;
    }
    status_ = value;
    if (added & kStatusDriverOk) context = MakeContextLocked();
  }
  if (context) {
    absl::Status status = device_->Activate(*std::move(context));
    if (!status.ok()) {
      LOG_WARN("virtio-pci", "%s: activation failed: %s", name(), status.message());
      interrupt_->NeedsReset();
    }
  }
}

ActivationContext VirtioPciTransport::MakeContextLocked() {
  ActivationContext context;
  context.memory = env_.memory;
  context.features = driver_features_;
  // Its own handle: a reset retires it (see VirtioPciInterrupt).
  context.interrupt = interrupt_->ForActivation();
  context.event_loop = env_.event_loop;
  for (uint16_t i = 0; i < num_queues_; ++i) {
    const QueueState& q = queues_[i];
    ActivatedQueue queue;
    queue.config.size = q.size;
    queue.config.desc_table = q.desc;
    queue.config.avail_ring = q.driver;
    queue.config.used_ring = q.device;
    queue.config.ready = q.enabled;
    queue.notify_fd = notify_fds_[i].get();
    context.queues.push_back(queue);
  }
  return context;
}

void VirtioPciTransport::ResetLocked() {
  status_ = 0;
  device_feature_select_ = 0;
  driver_feature_select_ = 0;
  driver_features_ = 0;
  config_vector_ = kNoVector;
  queue_select_ = 0;
  queues_.assign(num_queues_, QueueState{.size = max_queue_size_});
  interrupt_->Reset();
  // Kicks from before the reset must not reach the next activation.
  for (const UniqueFd& fd : notify_fds_) {
    uint64_t count;
    (void)!::read(fd.get(), &count, sizeof(count));
  }
}

// --- Notify ioeventfds follow the BAR ---

void VirtioPciTransport::BarMapped(int index, std::optional<uint64_t> address) {
  if (index != layout::kBar) return;
  std::lock_guard lock(mutex_);
  UnregisterIoEventsLocked();
  bar_address_ = address;
  RegisterIoEventsLocked();
}

void VirtioPciTransport::RegisterIoEventsLocked() {
  if (env_.ioevents == nullptr || !bar_address_) return;
  int failed = 0;
  absl::Status first_error;
  for (uint16_t q = 0; q < num_queues_; ++q) {
    const uint64_t gpa =
        *bar_address_ + layout::kNotifyOffset + uint64_t{layout::kNotifyOffMultiplier} * q;
    absl::Status status =
        env_.ioevents->AddMmio(notify_fds_[q].get(), gpa, layout::kNotifyWriteSize, std::nullopt);
    ioevent_registered_[q] = status.ok();
    if (!status.ok() && failed++ == 0) first_error = status;
  }
  if (failed > 0) {
    // Still correct, just slower: those notifies exit and WriteBar signals.
    LOG_WARN("virtio-pci", "%s: %d of %d notify ioeventfds not registered: %s", name(), failed,
             num_queues_, first_error.message());
  }
}

void VirtioPciTransport::UnregisterIoEventsLocked() {
  if (env_.ioevents == nullptr || !bar_address_) return;
  for (uint16_t q = 0; q < num_queues_; ++q) {
    if (!ioevent_registered_[q]) continue;
    const uint64_t gpa =
        *bar_address_ + layout::kNotifyOffset + uint64_t{layout::kNotifyOffMultiplier} * q;
    absl::Status status = env_.ioevents->RemoveMmio(notify_fds_[q].get(), gpa,
                                                    layout::kNotifyWriteSize, std::nullopt);
    if (!status.ok()) LOG_WARN("virtio-pci", "%s: queue %d: %s", name(), q, status.message());
    ioevent_registered_[q] = false;
  }
}

absl::StatusOr<std::shared_ptr<VirtioPciTransport>> AddVirtioPciDevice(
    pci::PciRoot& root, std::shared_ptr<VirtioDevice> device, VirtioPciEnv env) {
  ASSIGN_OR_RETURN(pci::PciRoot::Slot slot, root.ReserveSlot());
  env.intx = slot.intx;
  env.bdf = slot.bdf;
  auto transport = VirtioPciTransport::Create(std::move(device), std::move(env));
  if (!transport.ok()) {
    root.ReleaseSlot(slot);
    return transport.status();
  }
  absl::Status status = root.Attach(slot, *transport);
  if (!status.ok()) {
    root.ReleaseSlot(slot);
    return status;
  }
  return transport;
}

}  // namespace skiff::virtio
