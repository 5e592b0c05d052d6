// An ARM PrimeCell PL031 real-time clock: the arm64 guest's wall clock at
// boot (Linux's rtc-pl031, then RTC_HCTOSYS). Only what that needs:
//
//   0x000 RTCDR   seconds counter (read)      0x00c RTCCR  control, bit 0 = started
//   0x004 RTCMR   match value (kept)          0x010 RTCIMSC interrupt mask (kept)
//   0x008 RTCLR   load: sets the counter      0x014/0x018 raw/masked status: 0
//   0x01c RTCICR  interrupt clear (ignored)   0xfe0-0xffc PrimeCell ID registers
//
// The counter is the host's wall clock plus an offset a guest write to
// RTCLR sets, so it keeps running while the guest is paused. The match
// (alarm) interrupt is not implemented: the status registers read 0, and the
// driver works without it. Registers are 32-bit; other accesses read 0 and
// are ignored. The ID registers let Linux's AMBA bus identify the part.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/bus.h"

namespace skiff {

class Pl031 : public BusDevice {
 public:
  static constexpr uint64_t kRegisterSize = 0x1000;
  // Seconds since the epoch; the host clock unless a test injects one.
  using Clock = std::function<int64_t()>;

  explicit Pl031(Clock clock = nullptr);

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  uint32_t ReadRegister(uint64_t offset);
  int64_t Now() const;

  const Clock clock_;
  std::mutex mutex_;  // vCPUs may touch it at once
  int64_t offset_ = 0;  // counter = now + offset_
  uint32_t match_ = 0;
  uint32_t mask_ = 0;
};

}  // namespace skiff
