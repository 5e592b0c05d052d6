#include "devices/vfio/fsl_mc/mc_portal_device.h"

#include <cstring>

namespace skiff::vfio::fsl_mc {
namespace {

constexpr uint64_t kStatusByte = 2;

}  // namespace

void McPortalDevice::Read(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset >= kMcPortalBytes || data.size() > kMcPortalBytes - offset) return;
  std::lock_guard lock(mutex_);
  std::memcpy(data.data(), buffer_.data() + offset, data.size());
}

void McPortalDevice::Write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= kMcPortalBytes || data.size() > kMcPortalBytes - offset) return;
  std::lock_guard lock(mutex_);
  std::memcpy(buffer_.data() + offset, data.data(), data.size());
  const bool wrote_status = offset <= kStatusByte && kStatusByte < offset + data.size();
  if (!wrote_status || buffer_[kStatusByte] != kMcReady) return;
  // Held across the command so a second vCPU polling this portal reads
  // either the command or the whole response, never half of each.
  const McCommand response = handler_(McCommand::FromBytes(buffer_.data()));
  buffer_ = response.bytes();
  // A response still READY would look like a new submission to the guest;
  // the MC never answers READY, so neither does a forwarded command.
  if (buffer_[kStatusByte] == kMcReady) buffer_[kStatusByte] = kMcTimeout;
}

}  // namespace skiff::vfio::fsl_mc
