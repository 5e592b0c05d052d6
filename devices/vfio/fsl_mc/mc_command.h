// The Management Complex (MC) command portal format, and the few commands
// Skiff parses or rewrites on their way between the guest and the MC.
//
// Sources (Linux, facts only):
//   include/linux/fsl/mc.h            struct mc_cmd_header, enum mc_cmd_status,
//                                     MC_CMD_FLAG_*, struct fsl_mc_command
//   drivers/bus/fsl-mc/fsl-mc-private.h  DPRC/DPMCP/DPMNG command ids and the
//                                     dprc_cmd_set_irq, dprc_cmd_set_obj_irq,
//                                     dprc_rsp_get_attributes,
//                                     dprc_cmd_get_obj_region and
//                                     dprc_rsp_get_obj_region layouts
//   drivers/bus/fsl-mc/dprc.c         dprc_get_obj_region() sends version 1, 2
//                                     or 3 of GET_OBJ_REG by MC API version
//
// A command is 64 bytes: an 8-byte header then 7 little-endian u64
// parameters. Header bytes: 0 src_id, 1 flags_hw (PRI 0x80), 2 status,
// 3 flags_sw (INTR_DIS 0x01), 4-5 token (le16), 6-7 cmd_id (le16) =
// code << 4 | version. The caller writes the parameters, then the header
// with status READY; the MC overwrites the portal with the response.
//
// Everything here reads a 64-byte array the guest (or the MC) filled:
// field offsets are constants inside it, and strings (object types) must
// be NUL-terminated within their 16 bytes or they do not parse.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace skiff::vfio::fsl_mc {

inline constexpr size_t kMcPortalBytes = 64;

// enum mc_cmd_status.
enum McStatus : uint8_t {
  kMcOk = 0x0,
  kMcReady = 0x1,
  kMcAuthErr = 0x3,
  kMcNoPrivilege = 0x4,
  kMcDmaErr = 0x5,
  kMcConfigErr = 0x6,
  kMcTimeout = 0x7,
  kMcNoResource = 0x8,
  kMcNoMemory = 0x9,
  kMcBusy = 0xA,
  kMcUnsupportedOp = 0xB,
  kMcInvalidState = 0xC,
};

// Command codes (cmd_id >> 4).
inline constexpr uint16_t kDprcClose = 0x800;  // also DPMCP/DPNI/... CLOSE
inline constexpr uint16_t kDprcOpen = 0x805;
inline constexpr uint16_t kDpmcpOpen = 0x80B;
inline constexpr uint16_t kDprcGetContId = 0x830;
inline constexpr uint16_t kDpmngGetVersion = 0x831;
inline constexpr uint16_t kDprcGetApiVersion = 0xA05;
inline constexpr uint16_t kDprcGetAttr = 0x004;
inline constexpr uint16_t kDprcSetIrq = 0x010;
inline constexpr uint16_t kDprcGetIrq = 0x011;
inline constexpr uint16_t kDprcSetIrqEnable = 0x012;
inline constexpr uint16_t kDprcSetIrqMask = 0x014;
inline constexpr uint16_t kDprcClearIrqStatus = 0x017;
inline constexpr uint16_t kDprcGetObjCount = 0x159;
inline constexpr uint16_t kDprcGetObj = 0x15A;
inline constexpr uint16_t kDprcGetObjRegion = 0x15E;
inline constexpr uint16_t kDprcSetObjIrq = 0x15F;
inline constexpr uint16_t kDprcGetObjIrq = 0x160;

inline constexpr uint8_t kMcFlagHwPriority = 0x80;
inline constexpr uint8_t kMcFlagSwIntrDisable = 0x01;

// One portal's worth of bytes, with typed little-endian access at fixed
// offsets. Offsets past the array are a programming error (static sizes),
// checked anyway: out-of-range reads give 0 and writes are dropped.
class McCommand {
 public:
  McCommand() { bytes_.fill(0); }
  static McCommand FromBytes(const uint8_t* bytes);  // kMcPortalBytes
  // A command as a driver builds it: header with status READY.
  static McCommand Build(uint16_t code, uint8_t version, uint16_t token);

  std::array<uint8_t, kMcPortalBytes>& bytes() { return bytes_; }
  const std::array<uint8_t, kMcPortalBytes>& bytes() const { return bytes_; }

  uint8_t status() const { return bytes_[2]; }
  void set_status(uint8_t s) { bytes_[2] = s; }
  uint16_t token() const { return U16(4); }
  void set_token(uint16_t t) { SetU16(4, t); }
  uint16_t cmd_id() const { return U16(6); }
  uint16_t code() const { return cmd_id() >> 4; }
  uint8_t version() const { return cmd_id() & 0xf; }

  // Parameter bytes: `offset` counts from the start of the parameters
  // (byte 8 of the portal), as the kernel's structs do.
  uint8_t P8(size_t offset) const;
  uint16_t P16(size_t offset) const;
  uint32_t P32(size_t offset) const;
  uint64_t P64(size_t offset) const;
  void SetP8(size_t offset, uint8_t v);
  void SetP16(size_t offset, uint16_t v);
  void SetP32(size_t offset, uint32_t v);
  void SetP64(size_t offset, uint64_t v);
  // A NUL-terminated string of at most 15 characters in 16 bytes at
  // `offset`; nullopt when there is no NUL (hostile or garbage).
  std::optional<std::string> PString16(size_t offset) const;
  void SetPString16(size_t offset, const std::string& s);

  // The response to this command the VMM answers itself: the same header
  // with `status`, parameters zeroed.
  McCommand Reply(uint8_t status) const;

 private:
  uint16_t U16(size_t at) const;
  void SetU16(size_t at, uint16_t v);
  uint64_t Get(size_t at, size_t width) const;
  void Put(size_t at, size_t width, uint64_t v);
  std::array<uint8_t, kMcPortalBytes> bytes_;
};

// DPRC_CMDID_SET_IRQ (dprc_cmd_set_irq) and DPRC_CMDID_SET_OBJ_IRQ
// (dprc_cmd_set_obj_irq): irq_val le32 @0, irq_index u8 @4, irq_addr le64
// @8, irq_num le32 @16; SET_OBJ_IRQ adds obj_id le32 @20, obj_type[16] @24.
struct McIrqConfig {
  uint32_t value = 0;  // MSI data (the ITS EventID)
  uint8_t index = 0;
  uint64_t address = 0;  // MSI doorbell (GITS_TRANSLATER)
  uint32_t number = 0;   // user cookie, echoed by GET_(OBJ_)IRQ
  bool operator==(const McIrqConfig&) const = default;
};
McIrqConfig ParseSetIrq(const McCommand& cmd);
struct McObjIrqConfig {
  McIrqConfig irq;
  uint32_t obj_id = 0;
  std::string obj_type;
};
std::optional<McObjIrqConfig> ParseSetObjIrq(const McCommand& cmd);
// GET_(OBJ_)IRQ answers, laid out like the SET commands' fields (the
// kernel no longer calls them; the layout is the SET one, see docs).
void PutIrqConfig(McCommand& rsp, const McIrqConfig& irq);

// DPRC_CMDID_GET_OBJ_REG request: obj_id le32 @0, region_index u8 @6,
// obj_type[16] @24.
struct McObjRegionRequest {
  uint32_t obj_id = 0;
  uint8_t region_index = 0;
  std::string obj_type;
};
std::optional<McObjRegionRequest> ParseGetObjRegion(const McCommand& cmd);
// The response (dprc_rsp_get_obj_region): base_offset le64 @8, size le32
// @16, flags le32 @24, base_addr le64 @32 (V2/V3; read as 0 by old MC).
inline constexpr size_t kObjRegionBaseOffset = 8;
inline constexpr size_t kObjRegionSize = 16;
inline constexpr size_t kObjRegionFlags = 24;
inline constexpr size_t kObjRegionBaseAddr = 32;

// DPRC_CMDID_OPEN request: container_id le32 @0.
inline constexpr size_t kOpenContainerId = 0;
// dprc_rsp_get_attributes: container_id le32 @0, icid le16 @4,
// options le32 @8, portal_id le32 @12.
inline constexpr size_t kAttrContainerId = 0;
inline constexpr size_t kAttrIcid = 4;
inline constexpr size_t kAttrPortalId = 12;

}  // namespace skiff::vfio::fsl_mc
