#include "devices/virtio/pci_interrupt.h"

namespace skiff::virtio {

// What a device holds between one activation and the reset that ends it.
class VirtioPciInterrupt::Activation : public VirtioInterrupt {
 public:
  Activation(std::shared_ptr<VirtioPciInterrupt> owner, uint64_t epoch)
      : owner_(std::move(owner)), epoch_(epoch) {}

  void NotifyQueue(uint16_t queue) override {
    std::lock_guard lock(owner_->activation_mutex_);
    if (Current()) owner_->NotifyQueue(queue);
  }
  void NotifyConfigChange() override {
    std::lock_guard lock(owner_->activation_mutex_);
    if (Current()) owner_->NotifyConfigChange();
  }
  void NeedsReset() override {
    std::lock_guard lock(owner_->activation_mutex_);
    if (Current()) owner_->NeedsReset();
  }
  int QueueIrqFd(uint16_t queue) override {
    std::lock_guard lock(owner_->activation_mutex_);
    return Current() ? owner_->QueueIrqFd(queue) : -1;
  }

 private:
  bool Current() const { return owner_->activation_epoch_ == epoch_; }

  const std::shared_ptr<VirtioPciInterrupt> owner_;
  const uint64_t epoch_;
};

VirtioPciInterrupt::VirtioPciInterrupt(uint16_t num_queues, std::shared_ptr<pci::MsixTable> msix,
                                       std::shared_ptr<IrqLine> intx)
    : msix_(std::move(msix)), intx_(std::move(intx)), queue_vectors_(num_queues) {
  for (auto& vector : queue_vectors_) vector.store(kNoVector);
}

void VirtioPciInterrupt::Signal(uint8_t isr_bit, uint16_t vector) {
  const bool msix = msix_ != nullptr && msix_->enabled();
  // ISR's config bit is set whatever the interrupt mechanism (§4.1.4.5.1);
  // the queue bit only means something for INTx.
  if (msix && isr_bit == kIsrQueue) {
    if (vector != kNoVector) msix_->Trigger(vector);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    isr_ |= isr_bit;
    if (!msix) UpdateLineLocked();
  }
  if (msix && vector != kNoVector) msix_->Trigger(vector);
}

void VirtioPciInterrupt::UpdateLineLocked() {
  const bool assert = isr_ != 0 && !intx_disabled_ && intx_ != nullptr;
  if (assert == line_asserted_) return;
  line_asserted_ = assert;
  intx_->SetLevel(assert);
}

void VirtioPciInterrupt::NotifyQueue(uint16_t queue) {
  if (queue >= queue_vectors_.size()) return;
  Signal(kIsrQueue, queue_vectors_[queue].load());
}

void VirtioPciInterrupt::NotifyConfigChange() {
  config_generation_.fetch_add(1);
  Signal(kIsrConfig, config_vector_.load());
}

void VirtioPciInterrupt::NeedsReset() {
  needs_reset_.store(true);
  Signal(kIsrConfig, config_vector_.load());
}

int VirtioPciInterrupt::QueueIrqFd(uint16_t queue) {
  if (queue >= queue_vectors_.size() || msix_ == nullptr || !msix_->enabled()) return -1;
  const uint16_t vector = queue_vectors_[queue].load();
  if (vector == kNoVector) return -1;
  return msix_->IrqFd(vector);
}

void VirtioPciInterrupt::SetQueueVector(uint16_t queue, uint16_t vector) {
  if (queue < queue_vectors_.size()) queue_vectors_[queue].store(vector);
}

void VirtioPciInterrupt::SetConfigVector(uint16_t vector) { config_vector_.store(vector); }

uint8_t VirtioPciInterrupt::ReadAndClearIsr() {
  std::lock_guard lock(mutex_);
  const uint8_t value = isr_;
  isr_ = 0;
  UpdateLineLocked();
  return value;
}

void VirtioPciInterrupt::SetIntxDisabled(bool disabled) {
  std::lock_guard lock(mutex_);
  intx_disabled_ = disabled;
  UpdateLineLocked();
}

bool VirtioPciInterrupt::intx_pending() const {
  std::lock_guard lock(mutex_);
  return isr_ != 0 && (msix_ == nullptr || !msix_->enabled());
}

std::shared_ptr<VirtioInterrupt> VirtioPciInterrupt::ForActivation() {
  std::lock_guard lock(activation_mutex_);
  return std::make_shared<Activation>(shared_from_this(), activation_epoch_);
}

void VirtioPciInterrupt::Reset() {
  // Waits for a retired handle's call in progress, and turns away the rest.
  std::lock_guard activation(activation_mutex_);
  ++activation_epoch_;
  for (auto& vector : queue_vectors_) vector.store(kNoVector);
  config_vector_.store(kNoVector);
  needs_reset_.store(false);
  std::lock_guard lock(mutex_);
  isr_ = 0;
  UpdateLineLocked();
}

}  // namespace skiff::virtio
