#include "devices/pci/intx_router.h"

#include <mutex>

namespace skiff::pci {

// One root line and how many of its inputs are asserted.
class IntxRouter::SharedLine {
 public:
  explicit SharedLine(std::shared_ptr<IrqLine> output) : output_(std::move(output)) {}

  void Change(bool asserted) {
    std::lock_guard lock(mutex_);
    if (asserted) {
      if (asserted_inputs_++ == 0) output_->SetLevel(true);
    } else if (asserted_inputs_ > 0 && --asserted_inputs_ == 0) {
      output_->SetLevel(false);
    }
  }
  void Pulse() { output_->Pulse(); }

 private:
  std::mutex mutex_;
  int asserted_inputs_ = 0;
  const std::shared_ptr<IrqLine> output_;
};

// One device's pin: remembers its own level so that repeated SetLevel
// calls count once.
class IntxRouter::Input : public IrqLine {
 public:
  explicit Input(std::shared_ptr<SharedLine> line) : line_(std::move(line)) {}

  void SetLevel(bool asserted) override {
    std::lock_guard lock(mutex_);
    if (asserted == asserted_) return;
    asserted_ = asserted;
    line_->Change(asserted);
  }
  void Pulse() override { line_->Pulse(); }

 private:
  std::mutex mutex_;
  bool asserted_ = false;
  const std::shared_ptr<SharedLine> line_;
};

IntxRouter::IntxRouter(std::array<std::shared_ptr<IrqLine>, kIntxLines> lines) {
  for (int i = 0; i < kIntxLines; ++i) {
    if (lines[i] != nullptr) lines_[i] = std::make_shared<SharedLine>(std::move(lines[i]));
  }
}

std::shared_ptr<IrqLine> IntxRouter::LineFor(uint8_t slot, uint8_t pin) {
  if (pin < 1 || pin > kIntxLines) return nullptr;
  std::shared_ptr<SharedLine> line = lines_[IntxSwizzle(slot, pin)];
  if (line == nullptr) return nullptr;
  return std::make_shared<Input>(std::move(line));
}

}  // namespace skiff::pci
