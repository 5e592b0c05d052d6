#include "vmm/device_config.h"

#include <arpa/inet.h>

#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "devices/vfio/fsl_mc/fsl_mc_sysfs.h"
#include "devices/vfio/vfio_sysfs.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

// "k=v,k=v" into a map; every key must be in `known` and appear once.
absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(
    std::string_view option, std::string_view text, std::initializer_list<const char*> known) {
  std::map<std::string, std::string> values;
  for (absl::string_view item : absl::StrSplit(absl::string_view(text.data(), text.size()), ',')) {
    if (item.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("%s '%s': empty item", option, text));
    }
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    bool is_known = false;
    for (const char* k : known) is_known |= (kv.first == k);
    if (!is_known) {
      std::string list;
      for (const char* k : known) list += std::string(list.empty() ? "" : ", ") + k;
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: unknown sub-option '%s' (known: %s)", option, kv.first, list));
    }
    if (kv.second.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: '%s' needs a value (%s=...)", option, kv.first, kv.first));
    }
    if (!values.emplace(kv.first, kv.second).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: '%s' given twice", option, kv.first));
    }
  }
  return values;
}

absl::StatusOr<bool> ParseOnOff(std::string_view option, const std::string& key,
                                const std::string& value) {
  if (value == "on" || value == "true" || value == "yes") return true;
  if (value == "off" || value == "false" || value == "no") return false;
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: %s=%s: use on or off", option, key, value));
}

absl::Status CheckIpv4(std::string_view option, const std::string& key, const std::string& value) {
  in_addr addr;
  if (::inet_pton(AF_INET, value.c_str(), &addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s=%s is not an IPv4 address", option, key, value));
  }
  return absl::OkStatus();
}

}  // namespace

const char* TransportName(VirtioTransport transport) {
  return transport == VirtioTransport::kMmio ? "mmio" : "pci";
}

absl::StatusOr<VirtioTransport> ParseTransport(std::string_view text) {
  if (text == "mmio") return VirtioTransport::kMmio;
  if (text == "pci") return VirtioTransport::kPci;
  return absl::InvalidArgumentError(
      absl::StrFormat("transport '%s': use mmio or pci", text));
}

absl::StatusOr<ConsoleDevice> ParseConsole(std::string_view text) {
  if (text == "serial") return ConsoleDevice::kSerial;
  if (text == "virtio") return ConsoleDevice::kVirtio;
  return absl::InvalidArgumentError(
      absl::StrFormat("--console '%s': use serial or virtio", text));
}

absl::StatusOr<DiskConfig> ParseDiskOption(std::string_view text) {
  constexpr std::string_view kOption = "--disk";
  ASSIGN_OR_RETURN(auto values, ParseKeyValues(kOption, text,
                                               {"path", "readonly", "direct", "serial",
                                                "transport"}));
  DiskConfig disk;
  auto path = values.find("path");
  if (path == values.end()) {
    return absl::InvalidArgumentError("--disk: path=FILE is required");
  }
  disk.path = path->second;
  if (values.count("readonly")) {
    ASSIGN_OR_RETURN(disk.readonly, ParseOnOff(kOption, "readonly", values["readonly"]));
  }
  if (values.count("direct")) {
    ASSIGN_OR_RETURN(disk.direct, ParseOnOff(kOption, "direct", values["direct"]));
  }
  if (values.count("serial")) {
    disk.serial = values["serial"];
    if (disk.serial.size() > 20) {  // VIRTIO_BLK_ID_BYTES
      return absl::InvalidArgumentError(
          absl::StrFormat("--disk: serial '%s' is longer than 20 bytes", disk.serial));
    }
  }
  if (values.count("transport")) {
    ASSIGN_OR_RETURN(disk.transport, ParseTransport(values["transport"]));
  }
  return disk;
}

absl::StatusOr<NetConfig> ParseNetOption(std::string_view text) {
  constexpr std::string_view kOption = "--net";
  ASSIGN_OR_RETURN(auto values, ParseKeyValues(kOption, text,
                                               {"tap", "mac", "ip", "mask", "queues", "vhost",
                                                "transport"}));
  NetConfig net;
  auto tap = values.find("tap");
  if (tap == values.end()) {
    return absl::InvalidArgumentError("--net: tap=NAME is required");
  }
  net.tap = tap->second;
  if (net.tap.size() >= 16) {  // IFNAMSIZ, NUL included
    return absl::InvalidArgumentError(
        absl::StrFormat("--net: tap name '%s' is longer than 15 characters", net.tap));
  }
  if (values.count("mac")) {
    auto mac = net::ParseMac(values["mac"]);
    if (!mac.ok()) return absl::InvalidArgumentError(absl::StrCat("--net: ", mac.status().message()));
    net.mac = *mac;
  }
  if (values.count("ip") != values.count("mask")) {
    return absl::InvalidArgumentError("--net: ip= and mask= go together");
  }
  if (values.count("ip")) {
    RETURN_IF_ERROR(CheckIpv4(kOption, "ip", values["ip"]));
    RETURN_IF_ERROR(CheckIpv4(kOption, "mask", values["mask"]));
    net.host_ip = values["ip"];
    net.host_mask = values["mask"];
  }
  if (values.count("queues")) {
    uint32_t queues = 0;
    if (!absl::SimpleAtoi(values["queues"], &queues) || queues < 1 ||
        queues > kMaxNetQueuePairs) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--net: queues=%s: must be between 1 and %u", values["queues"], kMaxNetQueuePairs));
    }
    net.queues = static_cast<uint16_t>(queues);
  }
  if (values.count("vhost")) {
    ASSIGN_OR_RETURN(net.vhost, ParseOnOff(kOption, "vhost", values["vhost"]));
  }
  if (values.count("transport")) {
    ASSIGN_OR_RETURN(net.transport, ParseTransport(values["transport"]));
  }
  return net;
}

absl::StatusOr<VfioDeviceConfig> ParseDeviceOption(std::string_view text) {
  constexpr std::string_view kOption = "--device";
  // "vfio=ADDRESS,rom=on" in any order (a config file's object keeps its
  // own), or the bare address first ("ADDRESS,rom=on"): a sysfs path holds
  // neither ',' nor '='.
  const std::string_view first = text.substr(0, text.find(','));
  std::string_view address = first;
  std::map<std::string, std::string> values;
  if (const size_t eq = first.find('='); eq != std::string_view::npos) {
    const std::string_view kind = first.substr(0, eq);
    if (kind != "vfio" && kind != "rom") {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--device '%s': unknown device kind '%s' (known: vfio, fsl-mc)", text, kind));
    }
    ASSIGN_OR_RETURN(values, ParseKeyValues(kOption, text, {"vfio", "rom"}));
    if (!values.count("vfio")) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--device '%s': vfio=DDDD:BB:DD.F is required", text));
    }
    address = values["vfio"];
  } else if (first.size() < text.size()) {
    ASSIGN_OR_RETURN(values, ParseKeyValues(kOption, text.substr(first.size() + 1), {"rom"}));
  }
  auto parsed = vfio::ParsePciAddress(address);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--device: ", parsed.status().message()));
  }
  VfioDeviceConfig device{*parsed};
  if (values.count("rom")) {
    // on/off, or the file an image comes from (a file called "on" is ./on).
    auto on = ParseOnOff(kOption, "rom", values["rom"]);
    device.rom = on.ok() ? *on : true;
    if (!on.ok()) device.rom_file = values["rom"];
  }
  return device;
}

bool IsFslMcDeviceOption(std::string_view text) { return text.substr(0, 7) == "fsl-mc="; }

absl::StatusOr<FslMcDeviceConfig> ParseFslMcDeviceOption(std::string_view text) {
  if (!IsFslMcDeviceOption(text)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--device '%s': expected fsl-mc=dprc.N", text));
  }
  auto parsed = vfio::fsl_mc::ParseDprcName(text.substr(7));
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--device: ", parsed.status().message()));
  }
  return FslMcDeviceConfig{*parsed};
}

}  // namespace skiff
