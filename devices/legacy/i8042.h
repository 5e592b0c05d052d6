// The PC keyboard controller, reduced to what a keyboard-less guest needs:
// the reset line (Linux `reboot=k` writes command 0xFE to port 0x64) and
// enough of the command set that Linux's i8042 probe finishes quickly
// instead of timing out.
//
// The controller decodes two ports four apart (0x60 data, 0x64
// command/status). As a BusDevice it sees them as offsets kDataOffset and
// kCommandOffset. Do not register it as one 5-byte range — ports 0x61-0x63
// belong to other devices — but as two 1-byte ranges through the views from
// DataPort() and CommandPort():
//
//   auto kbc = std::make_shared<I8042>(on_reset);
//   bus.Register(0x60, 1, I8042::DataPort(kbc), "i8042 data");
//   bus.Register(0x64, 1, I8042::CommandPort(kbc), "i8042 command");
//
// There is no keyboard or mouse behind it and no interrupt line: bytes
// written for the keyboard are dropped, and the auxiliary (mouse) port
// reports itself absent.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "vmm/bus.h"

namespace skiff {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kDataOffset = 0;     // port 0x60
  static constexpr uint64_t kCommandOffset = 4;  // port 0x64

  // `on_reset` runs (without the device lock) each time the guest pulses
  // the reset line; the guest may pulse it several times before it stops.
  explicit I8042(std::function<void()> on_reset);

  // One byte at kDataOffset or kCommandOffset; anything else reads 0xff and
  // ignores writes. Wider accesses use the low byte; upper bytes read zero.
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // 1-byte views of `controller` for registering the two ports separately.
  static std::shared_ptr<BusDevice> DataPort(std::shared_ptr<I8042> controller);
  static std::shared_ptr<BusDevice> CommandPort(
      std::shared_ptr<I8042> controller);

 private:
  // Helpers run with mutex_ held.
  uint8_t Status() const;
  uint8_t ReadData();
  // Each returns true when the guest asked for a reset.
  bool WriteCommand(uint8_t command);
  bool WriteData(uint8_t value);
  void Respond(uint8_t value);

  const std::function<void()> on_reset_;

  std::mutex mutex_;  // guards everything below
  uint8_t command_byte_;
  uint8_t output_port_;
  // The one-byte output buffer; its presence is status bit OBF.
  std::optional<uint8_t> output_;
  uint8_t last_output_ = 0;
  // A command waiting for its parameter byte on the data port.
  std::optional<uint8_t> pending_command_;
  bool last_write_was_command_ = false;
};

}  // namespace skiff
