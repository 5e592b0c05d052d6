// An address-range map from guest port or MMIO addresses to devices.
//
// Registration happens during set-up and refuses nonsense: zero-length,
// overflowing and overlapping ranges are errors. Devices see (offset, data)
// relative to the base they were registered at; they never see absolute
// addresses, so one device class can sit at any base.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace skiff {

// A device reachable through a Bus. Implementations do their own locking:
// several vCPU threads may call them at once.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  // Fills `data` (1..8 bytes) with the value at `offset`. Unimplemented
  // registers should read as all-ones or zero as the hardware would.
  virtual void Read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  absl::Status Register(uint64_t base, uint64_t length,
                        std::shared_ptr<BusDevice> device,
                        std::string device_name);
  absl::Status Unregister(uint64_t base);
  // Drops every registration (at teardown, after the vCPUs stopped).
  void Clear();

  // Returns false when nothing is registered at [address, address+size).
  bool Read(uint64_t address, std::span<uint8_t> data) const;
  bool Write(uint64_t address, std::span<const uint8_t> data) const;

  const std::string& name() const { return name_; }

  // What is registered, by base address (for the control socket's `info`).
  struct Entry {
    uint64_t base;
    uint64_t length;
    std::string device_name;
  };
  std::vector<Entry> Entries() const;

 private:
  struct Range {
    uint64_t length;
    std::shared_ptr<BusDevice> device;
    std::string device_name;
  };
  // Finds the device whose range fully contains [address, address+size).
  const std::pair<const uint64_t, Range>* Find(uint64_t address,
                                               uint64_t size) const;

  // The device covering [address, address+size) and the offset into it.
  std::shared_ptr<BusDevice> Lookup(uint64_t address, uint64_t size,
                                    uint64_t* offset) const;

  std::string name_;
  mutable std::shared_mutex mutex_;
  std::map<uint64_t, Range> ranges_;  // keyed by base
};

}  // namespace skiff
