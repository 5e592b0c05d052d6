#include "devices/legacy/i8042.h"

#include <algorithm>
#include <utility>

namespace skiff {
namespace {

// Status register (read at the command port).
constexpr uint8_t kStatusOutputFull = 0x01;  // OBF: a byte waits at 0x60
constexpr uint8_t kStatusSystemFlag = 0x04;  // mirrors command byte bit 2
constexpr uint8_t kStatusLastWasCommand = 0x08;
constexpr uint8_t kStatusNotInhibited = 0x10;  // keyboard not locked
// IBF (0x02) is never set: commands complete before the write returns, so
// the guest's wait-for-input-empty loops (Linux kb_wait) end at once.

// Command byte (controller configuration).
constexpr uint8_t kCmdByteSystemFlag = 0x04;
constexpr uint8_t kCmdByteKeyboardDisabled = 0x10;
constexpr uint8_t kCmdByteAuxDisabled = 0x20;
// As firmware leaves it after POST: keyboard interrupt on, system flag set
// (POST passed), scancode translation on.
constexpr uint8_t kInitialCommandByte = 0x45;

// Output port bits.
constexpr uint8_t kOutputPortReset = 0x01;  // active low: 0 resets the CPU
constexpr uint8_t kOutputPortA20 = 0x02;

// Controller commands.
constexpr uint8_t kReadCommandByte = 0x20;
constexpr uint8_t kWriteCommandByte = 0x60;
constexpr uint8_t kDisableAux = 0xa7;
constexpr uint8_t kEnableAux = 0xa8;
constexpr uint8_t kTestAux = 0xa9;
constexpr uint8_t kSelfTest = 0xaa;
constexpr uint8_t kTestKeyboard = 0xab;
constexpr uint8_t kDisableKeyboard = 0xad;
constexpr uint8_t kEnableKeyboard = 0xae;
constexpr uint8_t kReadOutputPort = 0xd0;
constexpr uint8_t kWriteOutputPort = 0xd1;
constexpr uint8_t kWriteKeyboardBuffer = 0xd2;
constexpr uint8_t kWriteAuxBuffer = 0xd3;
constexpr uint8_t kWriteAux = 0xd4;
// 0xf0-0xff pulse output-port lines low for ~6 us; low-nibble bit 0 clear
// selects the reset line (0xfe is the usual "reset the machine").
constexpr uint8_t kPulseOutputMask = 0xf0;

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceTestPassed = 0x00;
// Aux interface test answer "clock line stuck low": no mouse here.
constexpr uint8_t kInterfaceClockStuckLow = 0x01;

// Forwards a 1-byte port to one register of the controller.
class PortView : public BusDevice {
 public:
  PortView(std::shared_ptr<I8042> controller, uint64_t register_offset)
      : controller_(std::move(controller)), register_(register_offset) {}

  void Read(uint64_t offset, std::span<uint8_t> data) override {
    if (offset != 0) {
      std::fill(data.begin(), data.end(), 0xff);
      return;
    }
    controller_->Read(register_, data);
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset == 0) controller_->Write(register_, data);
  }

 private:
  const std::shared_ptr<I8042> controller_;
  const uint64_t register_;
};

}  // namespace

I8042::I8042(std::function<void()> on_reset)
    : on_reset_(std::move(on_reset)),
      command_byte_(kInitialCommandByte),
      output_port_(kOutputPortReset | kOutputPortA20) {}

std::shared_ptr<BusDevice> I8042::DataPort(std::shared_ptr<I8042> controller) {
  return std::make_shared<PortView>(std::move(controller), kDataOffset);
}

std::shared_ptr<BusDevice> I8042::CommandPort(
    std::shared_ptr<I8042> controller) {
  return std::make_shared<PortView>(std::move(controller), kCommandOffset);
}

void I8042::Read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  if (offset != kDataOffset && offset != kCommandOffset) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  std::fill(data.begin(), data.end(), 0);
  std::lock_guard<std::mutex> lock(mutex_);
  data[0] = offset == kDataOffset ? ReadData() : Status();
}

void I8042::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool reset = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (offset == kDataOffset) {
      reset = WriteData(data[0]);
    } else if (offset == kCommandOffset) {
      reset = WriteCommand(data[0]);
    }
  }
  // Outside the lock: the VMM's shutdown path may take its own locks.
  if (reset && on_reset_) on_reset_();
}

uint8_t I8042::Status() const {
  uint8_t status = kStatusNotInhibited;
  if (output_) status |= kStatusOutputFull;
  if (command_byte_ & kCmdByteSystemFlag) status |= kStatusSystemFlag;
  if (last_write_was_command_) status |= kStatusLastWasCommand;
  return status;
}

uint8_t I8042::ReadData() {
  // Reading empties the buffer; an empty buffer repeats the last byte, as
  // the real latch does. Either way the guest's flush loop terminates.
  if (output_) {
    last_output_ = *output_;
    output_.reset();
  }
  return last_output_;
}

void I8042::Respond(uint8_t value) { output_ = value; }

bool I8042::WriteCommand(uint8_t command) {
  last_write_was_command_ = true;
  pending_command_.reset();  // a new command abandons a half-written one
  switch (command) {
    case kReadCommandByte:
      Respond(command_byte_);
      return false;
    case kReadOutputPort:
      Respond(output_port_);
      return false;
    case kWriteCommandByte:
    case kWriteOutputPort:
    case kWriteKeyboardBuffer:
    case kWriteAuxBuffer:
    case kWriteAux:
      pending_command_ = command;
      return false;
    case kDisableAux:
      command_byte_ |= kCmdByteAuxDisabled;
      return false;
    case kEnableAux:
      command_byte_ &= ~kCmdByteAuxDisabled;
      return false;
    case kTestAux:
      // Linux asks this only after the aux loopback failed; a "stuck clock"
      // answer makes it give up on the mouse port without a timeout.
      Respond(kInterfaceClockStuckLow);
      return false;
    case kSelfTest:
      Respond(kSelfTestPassed);
      return false;
    case kTestKeyboard:
      Respond(kInterfaceTestPassed);
      return false;
    case kDisableKeyboard:
      command_byte_ |= kCmdByteKeyboardDisabled;
      return false;
    case kEnableKeyboard:
      command_byte_ &= ~kCmdByteKeyboardDisabled;
      return false;
  }
  if ((command & kPulseOutputMask) == kPulseOutputMask) {
    return !(command & kOutputPortReset);
  }
  return false;  // unknown commands are ignored, as many chipsets do
}

bool I8042::WriteData(uint8_t value) {
  last_write_was_command_ = false;
  if (!pending_command_) return false;  // for the keyboard: nobody there
  uint8_t command = *pending_command_;
  pending_command_.reset();
  switch (command) {
    case kWriteCommandByte:
      command_byte_ = value;
      return false;
    case kWriteOutputPort:
      output_port_ = value;
      return !(value & kOutputPortReset);
    case kWriteKeyboardBuffer:
      Respond(value);
      return false;
    case kWriteAuxBuffer:
      // With no aux port the byte comes back as keyboard data (status AUXDATA
      // clear). Linux's aux loopback test sees that and fails immediately
      // rather than waiting half a second for a reply.
      Respond(value);
      return false;
    case kWriteAux:
      return false;  // no mouse to send it to
  }
  return false;
}

}  // namespace skiff
