// The virtio devices the user asked for, as parsed from --disk, --net,
// --console and --transport. Plain data; the devices validate what only
// they can (files, taps) when the machine is built.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "devices/net/mac_address.h"

namespace skiff {

enum class VirtioTransport { kMmio, kPci };
enum class ConsoleDevice { kSerial, kVirtio };

struct DiskConfig {
  std::string path;
  bool readonly = false;
  bool direct = false;
  std::string serial;  // GET_ID answer; empty: derived from the file name
  std::optional<VirtioTransport> transport;  // unset: --transport
};

using MacAddress = net::MacAddress;

struct NetConfig {
  std::string tap;
  std::optional<MacAddress> mac;  // unset: a random locally administered one
  std::optional<std::string> host_ip;
  std::optional<std::string> host_mask;
  uint16_t queues = 1;  // queue pairs
  bool vhost = false;
  std::optional<VirtioTransport> transport;
};

inline constexpr uint16_t kMaxNetQueuePairs = 16;

// A host device passed through with VFIO (--device vfio=...).
struct VfioDeviceConfig {
  std::string address;  // canonical "DDDD:BB:DD.F"
  bool rom = false;     // rom=on (or rom=FILE): the guest sees an expansion ROM
  std::string rom_file = "";  // rom=FILE: this image instead of the device's own
  bool operator==(const VfioDeviceConfig&) const = default;
};

// An NXP fsl-mc container passed through with vfio-fsl-mc
// (--device fsl-mc=dprc.N). ARM64 only.
struct FslMcDeviceConfig {
  std::string dprc;  // canonical "dprc.N"
  bool operator==(const FslMcDeviceConfig&) const = default;
};

// "path=FILE[,readonly=on][,direct=on][,serial=ID][,transport=mmio|pci]".
absl::StatusOr<DiskConfig> ParseDiskOption(std::string_view text);
// "tap=NAME[,mac=MAC][,ip=IP,mask=MASK][,queues=N][,vhost=on][,transport=mmio|pci]".
absl::StatusOr<NetConfig> ParseNetOption(std::string_view text);
absl::StatusOr<VirtioTransport> ParseTransport(std::string_view text);
// "vfio=/sys/bus/pci/devices/DDDD:BB:DD.F", "vfio=DDDD:BB:DD.F", or either
// without "vfio=" (the bare PCI address or sysfs path); then optionally
// ",rom=on|off|FILE" (default off: the expansion ROM stays hidden; FILE:
// an image served as the ROM instead of the device's).
absl::StatusOr<VfioDeviceConfig> ParseDeviceOption(std::string_view text);
// True for "fsl-mc=...", which ParseFslMcDeviceOption takes.
bool IsFslMcDeviceOption(std::string_view text);
// "fsl-mc=dprc.N" or "fsl-mc=/sys/bus/fsl-mc/devices/dprc.N". Syntax only
// (the platform check is the CLI's).
absl::StatusOr<FslMcDeviceConfig> ParseFslMcDeviceOption(std::string_view text);
absl::StatusOr<ConsoleDevice> ParseConsole(std::string_view text);

const char* TransportName(VirtioTransport transport);

}  // namespace skiff
