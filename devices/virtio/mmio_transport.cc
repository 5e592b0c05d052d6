#include "devices/virtio/mmio_transport.h"

#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "vmm/log.h"

namespace skiff::virtio {
namespace {

constexpr char kLog[] = "virtio-mmio";

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kVersion = 2;         // virtio 1.x ("modern") register layout
constexpr uint32_t kNoSharedMemory = 0xffffffff;  // SHM_LEN/BASE: region absent

constexpr uint8_t kAck = VIRTIO_CONFIG_S_ACKNOWLEDGE;
constexpr uint8_t kDriver = VIRTIO_CONFIG_S_DRIVER;
constexpr uint8_t kFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
constexpr uint8_t kDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
constexpr uint8_t kNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
constexpr uint8_t kFailed = VIRTIO_CONFIG_S_FAILED;

constexpr uint64_t Bit(int n) { return uint64_t{1} << n; }
// Features this transport cannot honour, so never offers whatever the device
// says: NOTIFICATION_DATA (bit 38, not in Linux 6.1's UAPI) puts more than
// the queue index in QUEUE_NOTIFY and would defeat the ioeventfd datamatch;
// RING_RESET needs the QueueReset register, which we do not implement.
constexpr uint64_t kUnsupportedFeatures = Bit(38) | Bit(VIRTIO_F_RING_RESET);

// The driver's walk through device initialization (virtio 1.2 §3.1.1), as
// data. Besides these, the driver may add FAILED at any time and write 0 to
// reset; everything else is ignored.
enum class StatusAction { kNone, kCheckFeatures, kActivate };
struct StatusTransition {
  uint8_t from;
  uint8_t to;
  StatusAction action;
};
constexpr StatusTransition kStatusTransitions[] = {
    {0, kAck, StatusAction::kNone},
    {kAck, kAck | kDriver, StatusAction::kNone},
    {kAck | kDriver, kAck | kDriver | kFeaturesOk, StatusAction::kCheckFeatures},
    {kAck | kDriver | kFeaturesOk, kAck | kDriver | kFeaturesOk | kDriverOk,
     StatusAction::kActivate},
};

const StatusTransition* FindTransition(uint8_t from, uint8_t to) {
  for (const StatusTransition& t : kStatusTransitions) {
    if (t.from == from && t.to == to) return &t;
  }
  return nullptr;
}

bool IsPowerOfTwo(uint32_t value) { return value != 0 && (value & (value - 1)) == 0; }

uint32_t LoadLe32(std::span<const uint8_t> data) {
  return uint32_t{data[0]} | uint32_t{data[1]} << 8 | uint32_t{data[2]} << 16 |
         uint32_t{data[3]} << 24;
}

void StoreLe32(uint32_t value, std::span<uint8_t> data) {
  for (int i = 0; i < 4; ++i) data[i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t SetLow(uint64_t old, uint32_t value) { return (old & ~uint64_t{0xffffffff}) | value; }
uint64_t SetHigh(uint64_t old, uint32_t value) {
  return (old & uint64_t{0xffffffff}) | uint64_t{value} << 32;
}

// Control registers take aligned 32-bit accesses only (virtio 1.2 §4.2.2.2).
bool IsRegisterAccess(uint64_t offset, size_t size) {
  return size == 4 && offset % 4 == 0;
}

bool IsConfigWidth(size_t size) { return size == 1 || size == 2 || size == 4 || size == 8; }

uint64_t NotifyAddress(uint64_t base) { return base + VIRTIO_MMIO_QUEUE_NOTIFY; }

void UnregisterIoEvents(IoEventRegistrar* ioevents, uint64_t base,
                        const std::vector<UniqueFd>& fds, size_t count) {
  for (size_t q = 0; q < count; ++q) {
    absl::Status status = ioevents->RemoveMmio(fds[q].get(), NotifyAddress(base), 4, q);
    if (!status.ok()) {
      LOG_WARN(kLog, "queue %u notify at 0x%x: %s", q, NotifyAddress(base),
               status.ToString());
    }
  }
}

}  // namespace

// The VirtioInterrupt handed to the device at activation. It holds the
// transport's State (not the transport), and goes inert when the transport
// is reset, so a device that outlives its activation cannot raise stale
// interrupts.
class MmioTransport::Interrupt : public VirtioInterrupt {
 public:
  Interrupt(std::shared_ptr<State> state, uint64_t epoch)
      : state_(std::move(state)), epoch_(epoch) {}

  void NotifyQueue(uint16_t /*queue*/) override {
    std::lock_guard lock(state_->mutex);
    if (state_->epoch != epoch_) return;
    state_->RaiseLocked(VIRTIO_MMIO_INT_VRING);
  }
  void NotifyConfigChange() override {
    std::lock_guard lock(state_->mutex);
    if (state_->epoch != epoch_) return;
    ++state_->config_generation;
    state_->RaiseLocked(VIRTIO_MMIO_INT_CONFIG);
  }
  void NeedsReset() override {
    std::lock_guard lock(state_->mutex);
    if (state_->epoch != epoch_) return;
    state_->SetNeedsResetLocked();
  }

 private:
  const std::shared_ptr<State> state_;
  const uint64_t epoch_;
};

void MmioTransport::State::RaiseLocked(uint32_t bits) {
  bool was_pending = interrupt_status != 0;
  interrupt_status |= bits;
  if (!was_pending && interrupt_status != 0) irq->SetLevel(true);
}

void MmioTransport::State::AckLocked(uint32_t bits) {
  bool was_pending = interrupt_status != 0;
  interrupt_status &= ~bits;
  if (was_pending && interrupt_status == 0) irq->SetLevel(false);
}

void MmioTransport::State::SetNeedsResetLocked() {
  status |= kNeedsReset;
  RaiseLocked(VIRTIO_MMIO_INT_CONFIG);
}

absl::StatusOr<std::shared_ptr<MmioTransport>> MmioTransport::Create(
    std::shared_ptr<VirtioDevice> device, MmioTransportEnv env) {
  if (device == nullptr) return absl::InvalidArgumentError("virtio-mmio: no device");
  if (env.irq == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("virtio-mmio %s: no interrupt line", device->name()));
  }
  if (env.base_gpa > UINT64_MAX - kVirtioMmioSlotSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtio-mmio %s: base 0x%x overflows", device->name(), env.base_gpa));
  }
  const uint16_t num_queues = device->num_queues();
  std::vector<UniqueFd> fds;
  fds.reserve(num_queues);
  for (uint16_t q = 0; q < num_queues; ++q) {
    UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!fd) {
      return absl::InternalError(absl::StrFormat("virtio-mmio %s: eventfd for queue %u: %s",
                                                 device->name(), q, std::strerror(errno)));
    }
    fds.push_back(std::move(fd));
  }
  if (env.ioevents != nullptr) {
    for (uint16_t q = 0; q < num_queues; ++q) {
      absl::Status status =
          env.ioevents->AddMmio(fds[q].get(), NotifyAddress(env.base_gpa), 4, q);
      if (!status.ok()) {
        UnregisterIoEvents(env.ioevents, env.base_gpa, fds, q);
        return absl::InternalError(absl::StrFormat(
            "virtio-mmio %s: ioeventfd for queue %u at 0x%x: %s", device->name(), q,
            NotifyAddress(env.base_gpa), status.message()));
      }
    }
  }
  const uint64_t offered = device->device_features() & ~kUnsupportedFeatures;
  return std::make_shared<MmioTransport>(Key(), std::move(device), std::move(env),
                                         std::move(fds), offered);
}

MmioTransport::MmioTransport(Key, std::shared_ptr<VirtioDevice> device, MmioTransportEnv env,
                             std::vector<UniqueFd> notify_fds, uint64_t offered_features)
    : device_(std::move(device)),
      env_(std::move(env)),
      notify_fds_(std::move(notify_fds)),
      offered_features_(offered_features),
      max_queue_size_(device_->max_queue_size()),
      name_(device_->name()),
      state_(std::make_shared<State>()) {
  state_->irq = env_.irq;
  state_->queues.resize(notify_fds_.size());
}

MmioTransport::~MmioTransport() {
  {
    std::lock_guard lifecycle(lifecycle_mutex_);
    if (activated_) device_->Reset();
    activated_ = false;
  }
  if (env_.ioevents != nullptr) {
    UnregisterIoEvents(env_.ioevents, env_.base_gpa, notify_fds_, notify_fds_.size());
  }
}

int MmioTransport::notify_fd(uint16_t queue) const {
  return queue < notify_fds_.size() ? notify_fds_[queue].get() : -1;
}

void MmioTransport::Read(uint64_t offset, std::span<uint8_t> data) {
  if (offset >= VIRTIO_MMIO_CONFIG) {
    ReadConfig(offset - VIRTIO_MMIO_CONFIG, data);
    return;
  }
  std::fill(data.begin(), data.end(), 0);
  if (!IsRegisterAccess(offset, data.size())) return;
  StoreLe32(ReadRegister(offset), data);
}

void MmioTransport::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= VIRTIO_MMIO_CONFIG) {
    WriteConfig(offset - VIRTIO_MMIO_CONFIG, data);
    return;
  }
  if (!IsRegisterAccess(offset, data.size())) return;
  WriteRegister(offset, LoadLe32(data));
}

uint32_t MmioTransport::ReadRegister(uint64_t offset) {
  switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE:
      return kMagic;
    case VIRTIO_MMIO_VERSION:
      return kVersion;
    case VIRTIO_MMIO_DEVICE_ID:
      return device_->device_id();
    case VIRTIO_MMIO_VENDOR_ID:
      return kVirtioMmioVendorId;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH:
      return kNoSharedMemory;
    default:
      break;
  }
  std::lock_guard lock(state_->mutex);
  State& s = *state_;
  const QueueState* queue = s.queue_sel < s.queues.size() ? &s.queues[s.queue_sel] : nullptr;
  switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES:
      if (s.device_features_sel == 0) return static_cast<uint32_t>(offered_features_);
      if (s.device_features_sel == 1) return static_cast<uint32_t>(offered_features_ >> 32);
      return 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX:
      return queue ? max_queue_size_ : 0;
    case VIRTIO_MMIO_QUEUE_NUM:
      return queue ? queue->num : 0;
    case VIRTIO_MMIO_QUEUE_READY:
      return queue && queue->ready ? 1 : 0;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
      return queue ? static_cast<uint32_t>(queue->desc) : 0;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
      return queue ? static_cast<uint32_t>(queue->desc >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
      return queue ? static_cast<uint32_t>(queue->avail) : 0;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
      return queue ? static_cast<uint32_t>(queue->avail >> 32) : 0;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
      return queue ? static_cast<uint32_t>(queue->used) : 0;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
      return queue ? static_cast<uint32_t>(queue->used >> 32) : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS:
      return s.interrupt_status;
    case VIRTIO_MMIO_STATUS:
      return s.status;
    case VIRTIO_MMIO_CONFIG_GENERATION:
      return s.config_generation;
    default:
      // Write-only registers (selectors, DRIVER_FEATURES, QUEUE_NOTIFY,
      // INTERRUPT_ACK), legacy version-1 registers and holes read zero.
      return 0;
  }
}

void MmioTransport::WriteRegister(uint64_t offset, uint32_t value) {
  switch (offset) {
    case VIRTIO_MMIO_STATUS:
      WriteStatus(static_cast<uint8_t>(value));
      return;
    case VIRTIO_MMIO_QUEUE_NOTIFY:
      SignalNotify(value);
      return;
    default:
      break;
  }
  std::lock_guard lock(state_->mutex);
  State& s = *state_;
  switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
      s.device_features_sel = value;
      return;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
      s.driver_features_sel = value;
      return;
    case VIRTIO_MMIO_DRIVER_FEATURES:
      // Features are fixed once the driver has asked for FEATURES_OK.
      if (s.status & (kFeaturesOk | kDriverOk)) return;
      if (s.driver_features_sel == 0) s.driver_features = SetLow(s.driver_features, value);
      if (s.driver_features_sel == 1) s.driver_features = SetHigh(s.driver_features, value);
      return;
    case VIRTIO_MMIO_QUEUE_SEL:
      s.queue_sel = value;  // checked on every use, never trusted as an index
      return;
    case VIRTIO_MMIO_INTERRUPT_ACK:
      s.AckLocked(value & (VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG));
      return;
    default:
      break;
  }
  // Queue configuration: frozen after DRIVER_OK (the device owns the queues
  // then) and, per queue, while that queue is enabled (§4.2.2.3).
  if (s.status & kDriverOk) return;
  if (s.queue_sel >= s.queues.size()) return;
  QueueState& queue = s.queues[s.queue_sel];
  if (offset == VIRTIO_MMIO_QUEUE_READY) {
    if (value <= 1) queue.ready = value == 1;
    return;
  }
  if (queue.ready) return;
  switch (offset) {
    case VIRTIO_MMIO_QUEUE_NUM:
      // Kept as written, even if not a power of two or above QUEUE_NUM_MAX:
      // activation checks it and answers with DEVICE_NEEDS_RESET, which the
      // driver can see, rather than a silently different size.
      queue.num = value;
      return;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
      queue.desc = SetLow(queue.desc, value);
      return;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
      queue.desc = SetHigh(queue.desc, value);
      return;
    case VIRTIO_MMIO_QUEUE_AVAIL_LOW:
      queue.avail = SetLow(queue.avail, value);
      return;
    case VIRTIO_MMIO_QUEUE_AVAIL_HIGH:
      queue.avail = SetHigh(queue.avail, value);
      return;
    case VIRTIO_MMIO_QUEUE_USED_LOW:
      queue.used = SetLow(queue.used, value);
      return;
    case VIRTIO_MMIO_QUEUE_USED_HIGH:
      queue.used = SetHigh(queue.used, value);
      return;
    default:
      // Read-only registers, legacy GUEST_PAGE_SIZE / QUEUE_ALIGN /
      // QUEUE_PFN, SHM_SEL and holes: ignored.
      return;
  }
}

void MmioTransport::WriteStatus(uint8_t value) {
  std::lock_guard lifecycle(lifecycle_mutex_);
  if (value == 0) {
    ResetDevice();
    return;
  }
  ActivationContext context;
  {
    std::lock_guard lock(state_->mutex);
    State& s = *state_;
    // NEEDS_RESET belongs to the device: the driver cannot set or clear it
    // (Linux writes back what it read, so it may echo the bit).
    const uint8_t current = s.status & ~kNeedsReset;
    const uint8_t wanted = value & ~kNeedsReset;
    if (wanted == current) return;
    if (wanted == (current | kFailed)) {
      s.status |= kFailed;
      return;
    }
    const StatusTransition* transition = FindTransition(current, wanted);
    if (transition == nullptr) {
      LOG_DEBUG(kLog, "%s: ignored status 0x%x -> 0x%x", name_, current, wanted);
      return;
    }
    if (transition->action == StatusAction::kCheckFeatures &&
        ((s.driver_features & ~offered_features_) != 0 ||
         (s.driver_features & Bit(VIRTIO_F_VERSION_1)) == 0)) {
      // Refusing leaves FEATURES_OK clear; the driver reads it back and
      // gives up (virtio 1.2 §3.1.1 step 6).
      LOG_DEBUG(kLog, "%s: refused driver features 0x%x (offered 0x%x)", name_,
                s.driver_features, offered_features_);
      return;
    }
    s.status = wanted | (s.status & kNeedsReset);
    if (transition->action != StatusAction::kActivate) return;
    absl::StatusOr<ActivationContext> built = BuildActivationLocked();
    if (!built.ok()) {
      LOG_WARN(kLog, "%s: activation refused: %s", name_, built.status().message());
      s.SetNeedsResetLocked();
      return;
    }
    context = *std::move(built);
  }
  // Outside the state lock: Activate may register handlers whose first
  // completion raises an interrupt on the I/O thread.
  activated_ = true;
  absl::Status status = device_->Activate(std::move(context));
  if (!status.ok()) {
    LOG_WARN(kLog, "%s: activation failed: %s", name_, status.message());
    std::lock_guard lock(state_->mutex);
    state_->SetNeedsResetLocked();
  }
}

absl::StatusOr<ActivationContext> MmioTransport::BuildActivationLocked() {
  State& s = *state_;
  ActivationContext context;
  context.memory = env_.memory;
  context.features = s.driver_features;
  context.event_loop = env_.event_loop;
  context.queues.resize(s.queues.size());
  for (size_t q = 0; q < s.queues.size(); ++q) {
    const QueueState& queue = s.queues[q];
    ActivatedQueue& out = context.queues[q];
    out.notify_fd = notify_fds_[q].get();
    if (!queue.ready) continue;  // handed over as all-zero, not ready
    // Packed rings may have any size (virtio 1.2 §2.8); split ones need a
    // power of two (§2.7). The device's Virtqueue checks again.
    const bool packed = (s.driver_features & Bit(VIRTIO_F_RING_PACKED)) != 0;
    if (queue.num == 0 || queue.num > max_queue_size_ || (!packed && !IsPowerOfTwo(queue.num))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("queue %u: size %u is not %s in [1, %u]", q, queue.num,
                          packed ? "a packed ring size" : "a power of two", max_queue_size_));
    }
    out.config.size = static_cast<uint16_t>(queue.num);
    out.config.desc_table = queue.desc;
    out.config.avail_ring = queue.avail;
    out.config.used_ring = queue.used;
    out.config.ready = true;
  }
  ++s.epoch;  // interrupts from any earlier activation stay inert
  context.interrupt = std::make_shared<Interrupt>(state_, s.epoch);
  return context;
}

void MmioTransport::ResetDevice() {
  // The device stops first (it may wait for back-end work that raises an
  // interrupt, hence no state lock here); then nothing it did survives.
  device_->Reset();
  activated_ = false;
  std::lock_guard lock(state_->mutex);
  State& s = *state_;
  ++s.epoch;
  s.status = 0;
  s.device_features_sel = 0;
  s.driver_features_sel = 0;
  s.driver_features = 0;
  s.queue_sel = 0;
  std::fill(s.queues.begin(), s.queues.end(), QueueState{});
  s.AckLocked(~uint32_t{0});
  DrainNotifyFds();
}

void MmioTransport::DrainNotifyFds() {
  for (const UniqueFd& fd : notify_fds_) {
    uint64_t count;
    // Nonblocking: EAGAIN when nothing is pending, which is fine.
    [[maybe_unused]] ssize_t n = ::read(fd.get(), &count, sizeof(count));
  }
}

void MmioTransport::SignalNotify(uint32_t queue) {
  // With ioeventfds, KVM consumes every valid kick; what still reaches us is
  // a kick with no registrar, or a bogus queue index, which is dropped.
  if (queue >= notify_fds_.size()) return;
  uint64_t one = 1;
  if (::write(notify_fds_[queue].get(), &one, sizeof(one)) < 0 && errno != EAGAIN) {
    LOG_WARN(kLog, "%s: queue %u notify: %s", name_, queue, std::strerror(errno));
  }
}

void MmioTransport::ReadConfig(uint64_t offset, std::span<uint8_t> data) {
  const uint64_t size = device_->config_size();
  if (IsConfigWidth(data.size()) && offset <= size && data.size() <= size - offset) {
    device_->ReadConfig(static_cast<uint32_t>(offset), data);
    return;
  }
  std::fill(data.begin(), data.end(), 0);
}

void MmioTransport::WriteConfig(uint64_t offset, std::span<const uint8_t> data) {
  const uint64_t size = device_->config_size();
  if (IsConfigWidth(data.size()) && offset <= size && data.size() <= size - offset) {
    device_->WriteConfig(static_cast<uint32_t>(offset), data);
  }
}

std::string VirtioMmioCmdlineArg(uint64_t base, uint64_t size, uint32_t irq) {
  // Linux parses the size with memparse(), so use its largest exact suffix.
  std::string size_text;
  if (size != 0 && size % (uint64_t{1} << 30) == 0) {
    size_text = absl::StrFormat("%uG", size >> 30);
  } else if (size != 0 && size % (uint64_t{1} << 20) == 0) {
    size_text = absl::StrFormat("%uM", size >> 20);
  } else if (size != 0 && size % (uint64_t{1} << 10) == 0) {
    size_text = absl::StrFormat("%uK", size >> 10);
  } else {
    size_text = absl::StrFormat("%u", size);
  }
  return absl::StrFormat("virtio_mmio.device=%s@0x%x:%u", size_text, base, irq);
}

}  // namespace skiff::virtio
