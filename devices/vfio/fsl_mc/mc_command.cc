#include "devices/vfio/fsl_mc/mc_command.h"

#include <cstring>

namespace skiff::vfio::fsl_mc {
namespace {

constexpr size_t kParams = 8;  // the header's size

}  // namespace

McCommand McCommand::FromBytes(const uint8_t* bytes) {
  McCommand cmd;
  std::memcpy(cmd.bytes_.data(), bytes, kMcPortalBytes);
  return cmd;
}

McCommand McCommand::Build(uint16_t code, uint8_t version, uint16_t token) {
  McCommand cmd;
  cmd.set_status(kMcReady);
  cmd.set_token(token);
  cmd.SetU16(6, static_cast<uint16_t>((code << 4) | (version & 0xf)));
  return cmd;
}

uint64_t McCommand::Get(size_t at, size_t width) const {
  if (at > kMcPortalBytes || width > kMcPortalBytes - at) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i) v |= uint64_t{bytes_[at + i]} << (8 * i);
  return v;
}

void McCommand::Put(size_t at, size_t width, uint64_t v) {
  if (at > kMcPortalBytes || width > kMcPortalBytes - at) return;
  for (size_t i = 0; i < width; ++i) bytes_[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

uint16_t McCommand::U16(size_t at) const { return static_cast<uint16_t>(Get(at, 2)); }
void McCommand::SetU16(size_t at, uint16_t v) { Put(at, 2, v); }
uint8_t McCommand::P8(size_t o) const { return static_cast<uint8_t>(Get(kParams + o, 1)); }
uint16_t McCommand::P16(size_t o) const { return static_cast<uint16_t>(Get(kParams + o, 2)); }
uint32_t McCommand::P32(size_t o) const { return static_cast<uint32_t>(Get(kParams + o, 4)); }
uint64_t McCommand::P64(size_t o) const { return Get(kParams + o, 8); }
void McCommand::SetP8(size_t o, uint8_t v) { Put(kParams + o, 1, v); }
void McCommand::SetP16(size_t o, uint16_t v) { Put(kParams + o, 2, v); }
void McCommand::SetP32(size_t o, uint32_t v) { Put(kParams + o, 4, v); }
void McCommand::SetP64(size_t o, uint64_t v) { Put(kParams + o, 8, v); }

std::optional<std::string> McCommand::PString16(size_t offset) const {
  const size_t at = kParams + offset;
  if (at > kMcPortalBytes || 16 > kMcPortalBytes - at) return std::nullopt;
  const char* p = reinterpret_cast<const char*>(bytes_.data() + at);
  const size_t len = strnlen(p, 16);
  if (len == 16) return std::nullopt;
  return std::string(p, len);
}

void McCommand::SetPString16(size_t offset, const std::string& s) {
  const size_t at = kParams + offset;
  if (at > kMcPortalBytes || 16 > kMcPortalBytes - at) return;
  std::memset(bytes_.data() + at, 0, 16);
  std::memcpy(bytes_.data() + at, s.data(), s.size() < 15 ? s.size() : 15);
}

McCommand McCommand::Reply(uint8_t status) const {
  McCommand rsp;
  std::memcpy(rsp.bytes_.data(), bytes_.data(), kParams);
  rsp.set_status(status);
  return rsp;
}

McIrqConfig ParseSetIrq(const McCommand& cmd) {
  McIrqConfig irq;
  irq.value = cmd.P32(0);
  irq.index = cmd.P8(4);
  irq.address = cmd.P64(8);
  irq.number = cmd.P32(16);
  return irq;
}

std::optional<McObjIrqConfig> ParseSetObjIrq(const McCommand& cmd) {
  std::optional<std::string> type = cmd.PString16(24);
  if (!type) return std::nullopt;
  McObjIrqConfig out;
  out.irq = ParseSetIrq(cmd);
  out.obj_id = cmd.P32(20);
  out.obj_type = *std::move(type);
  return out;
}

void PutIrqConfig(McCommand& rsp, const McIrqConfig& irq) {
  rsp.SetP32(0, irq.value);
  rsp.SetP8(4, irq.index);
  rsp.SetP64(8, irq.address);
  rsp.SetP32(16, irq.number);
}

std::optional<McObjRegionRequest> ParseGetObjRegion(const McCommand& cmd) {
  std::optional<std::string> type = cmd.PString16(24);
  if (!type) return std::nullopt;
  McObjRegionRequest out;
  out.obj_id = cmd.P32(0);
  out.region_index = cmd.P8(6);
  out.obj_type = *std::move(type);
  return out;
}

}  // namespace skiff::vfio::fsl_mc
