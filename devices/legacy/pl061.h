// An ARM PrimeCell PL061 GPIO controller: eight lines and one combined
// interrupt, the part Linux's gpio-pl061 drives. Skiff wires one input line
// to its power key (arch/arm64/power_key.h); the guest sees a GPIO edge.
//
// Registers (PL061 TRM, DDI 0190), each 8 bits in a 32-bit word:
//
//   0x000-0x3fc GPIODATA  address bits [9:2] mask which lines a read returns
//                         or a write changes (only output lines change pins)
//   0x400 GPIODIR   1 = output             0x414 GPIORIS  raw interrupt status
//   0x404 GPIOIS    1 = level, 0 = edge    0x418 GPIOMIS  RIS & IE
//   0x408 GPIOIBE   1 = both edges         0x41c GPIOIC   write 1: clear an edge
//   0x40c GPIOIEV   1 = rising/high        0x420 GPIOAFSEL kept, no effect
//   0x410 GPIOIE    1 = interrupt enabled  0xfe0-0xffc PeriphID0-3, PCellID0-3
//
// The interrupt output is a level: high while any GPIOMIS bit is set.
// Accesses of 1, 2 or 4 bytes within one register word work (the driver
// uses readb/writeb, the AMBA bus readl); anything else reads 0 and is
// ignored, as are writes to read-only and unassigned offsets.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "vmm/bus.h"
#include "vmm/irq_line.h"

namespace skiff {

class Pl061 : public BusDevice {
 public:
  static constexpr uint64_t kRegisterSize = 0x1000;
  static constexpr uint32_t kLines = 8;

  explicit Pl061(std::shared_ptr<IrqLine> irq);

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  // What drives input line `line` from outside (a button); lines >= kLines
  // are ignored. A change can latch an edge interrupt or move a level one.
  void SetInput(uint32_t line, bool high);

 private:
  uint8_t ReadRegister(uint64_t offset);
  void WriteRegister(uint64_t offset, uint8_t value);
  // The pins as the guest sees them: outputs from the data latch, inputs
  // from outside.
  uint8_t Pins() const;
  // GPIORIS: latched edges of edge lines, current matches of level lines.
  uint8_t RawStatus() const;
  // Latches edges between `before` and the pins now, then drives the
  // interrupt output. Call with mutex_ held after anything that can change
  // the pins, the interrupt configuration or the status.
  void Update(uint8_t before);

  const std::shared_ptr<IrqLine> irq_;
  std::mutex mutex_;    // vCPUs and the I/O thread
  uint8_t data_ = 0;    // output latch (GPIODATA writes)
  uint8_t inputs_ = 0;  // levels driven from outside
  uint8_t dir_ = 0;
  uint8_t is_ = 0;
  uint8_t ibe_ = 0;
  uint8_t iev_ = 0;
  uint8_t ie_ = 0;
  uint8_t afsel_ = 0;
  uint8_t edges_ = 0;  // latched edge interrupts (GPIORIS of edge lines)
  bool irq_level_ = false;
};

}  // namespace skiff
