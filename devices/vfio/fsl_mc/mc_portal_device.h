// A trapped MC command portal as the guest sees it: 64 bytes of command
// buffer at the start of a (64 B or 64 KiB) region. The guest's driver
// (drivers/bus/fsl-mc/mc-sys.c) writes the 7 parameter words, then the
// header word with status READY, then polls the header until the status
// changes. Writing the byte that holds the status with READY in it submits
// the buffer: the handler runs synchronously on the vCPU thread (the kernel
// side, vfio-fsl-mc's write, also blocks until the MC answers) and its
// response replaces the buffer, so the guest's next poll sees it done.
//
// Linux's 64-bit accesses may be split high word first, low word last
// (io-64-nonatomic-hi-lo.h), so the status byte (byte 2, in the low word)
// is written last either way. Accesses past the 64 bytes read as zero and
// are ignored.
#pragma once

#include <array>
#include <functional>
#include <mutex>

#include "devices/vfio/fsl_mc/mc_command.h"
#include "vmm/bus.h"

namespace skiff::vfio::fsl_mc {

class McPortalDevice : public BusDevice {
 public:
  using Handler = std::function<McCommand(const McCommand&)>;
  explicit McPortalDevice(Handler handler) : handler_(std::move(handler)) { buffer_.fill(0); }

  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  Handler handler_;
  std::mutex mutex_;
  std::array<uint8_t, kMcPortalBytes> buffer_;
};

}  // namespace skiff::vfio::fsl_mc
