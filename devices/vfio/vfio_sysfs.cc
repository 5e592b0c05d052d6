#include "devices/vfio/vfio_sysfs.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace skiff::vfio {
namespace {

namespace fs = std::filesystem;

bool IsHex(std::string_view s, size_t digits) {
  if (s.size() != digits) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string LinkBasename(const fs::path& link) { return SysfsLinkName(link.string()); }

}  // namespace

std::string SysfsLinkName(const std::string& link) {
  std::error_code ec;
  fs::path target = fs::read_symlink(link, ec);
  if (ec) return "";
  return target.filename().string();
}

std::optional<uint32_t> IommuGroupOf(const std::string& device_dir) {
  const std::string group = SysfsLinkName((fs::path(device_dir) / "iommu_group").string());
  uint32_t number;
  if (group.empty() || !absl::SimpleAtoi(group, &number)) return std::nullopt;
  return number;
}

absl::StatusOr<std::string> ParsePciAddress(std::string_view text) {
  std::string_view bdf = text;
  constexpr std::string_view kPrefix = "/sys/bus/pci/devices/";
  if (bdf.substr(0, kPrefix.size()) == kPrefix) bdf.remove_prefix(kPrefix.size());
  while (!bdf.empty() && bdf.back() == '/') bdf.remove_suffix(1);
  std::string out;
  // [DDDD:]BB:DD.F
  std::string_view domain = "0000";
  if (bdf.size() == 12) {
    domain = bdf.substr(0, 4);
    if (bdf[4] != ':') domain = "";
    bdf.remove_prefix(5);
  }
  if (!IsHex(domain, 4) || bdf.size() != 7 || bdf[2] != ':' || bdf[5] != '.' ||
      !IsHex(bdf.substr(0, 2), 2) || !IsHex(bdf.substr(3, 2), 2) || bdf[6] < '0' || bdf[6] > '7') {
    return absl::InvalidArgumentError(absl::StrFormat(
        "'%s' is not a PCI device address: use /sys/bus/pci/devices/DDDD:BB:DD.F or DDDD:BB:DD.F",
        text));
  }
  const unsigned device =
      static_cast<unsigned>(std::stoul(std::string(bdf.substr(3, 2)), nullptr, 16));
  if (device > 0x1f) {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s': PCI device number 0x%x is above 0x1f", text, device));
  }
  out = absl::StrFormat("%s:%s", domain, bdf);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<ReservedRegion> ReadReservedRegions(const std::string& sysfs_root, uint32_t group) {
  std::vector<ReservedRegion> out;
  std::ifstream file(fs::path(sysfs_root) / "kernel/iommu_groups" / std::to_string(group) /
                     "reserved_regions");
  std::string line;
  // "0x00000000fee00000 0x00000000feefffff msi" (iommu_group_show_resv_regions).
  while (out.size() < 1024 && std::getline(file, line)) {
    std::istringstream fields(line);
    std::string start, last, type;
    if (!(fields >> start >> last >> type)) continue;
    ReservedRegion r;
    if (!absl::SimpleHexAtoi(start, &r.start) || !absl::SimpleHexAtoi(last, &r.last) ||
        r.start > r.last) {
      continue;
    }
    r.type = type;
    out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<HostPciDevice> InspectHostPciDevice(const std::string& sysfs_root,
                                                   const std::string& name) {
  const fs::path dev = fs::path(sysfs_root) / "bus/pci/devices" / name;
  std::error_code ec;
  if (!fs::exists(dev / "config", ec)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("vfio device %s: %s is not a PCI device on this host", name, dev.string()));
  }
  HostPciDevice out;
  out.name = name;
  const std::string driver = LinkBasename(dev / "driver");
  const std::string bind_fix = absl::StrFormat(
      "echo vfio-pci > %s/driver_override; %secho %s > %s/drivers_probe (or echo VENDOR DEVICE "
      "> /sys/bus/pci/drivers/vfio-pci/new_id)",
      dev.string(),
      driver.empty() ? "" : absl::StrFormat("echo %s > %s/driver/unbind; ", name, dev.string()),
      name, (fs::path(sysfs_root) / "bus/pci").string());
  const std::optional<uint32_t> group = IommuGroupOf(dev.string());
  if (!group && driver.empty()) {
    // Device-tree hosts (ARM64 with an SMMU) put a device in its IOMMU
    // group only when a driver probes it: an unbound device there has no
    // group yet, and binding it to vfio-pci is the next step either way.
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio device %s: bound to no driver, not vfio-pci, and in no IOMMU group yet (device-tree "
        "hosts such as ARM64 with an SMMU give it one when a driver binds): %s; if vfio-pci then "
        "refuses it, the host has no IOMMU for it (enable the IOMMU: intel_iommu=on / amd_iommu "
        "on x86; an SMMU described to the ARM64 host kernel)",
        name, bind_fix));
  }
  if (!group) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "vfio device %s: it has no IOMMU group (no IOMMU?): enable the IOMMU (intel_iommu=on / "
        "iommu=pt on the host kernel command line; amd_iommu on AMD; an SMMU on ARM64)",
        name));
  }
  out.group = *group;
  if (driver != "vfio-pci") {
    return absl::FailedPreconditionError(
        absl::StrFormat("vfio device %s: bound to %s, not vfio-pci: %s", name,
                        driver.empty() ? "no driver" : "driver " + driver, bind_fix));
  }
  const fs::path members = fs::path(sysfs_root) / "kernel/iommu_groups" / std::to_string(out.group) / "devices";
  for (const auto& entry : fs::directory_iterator(members, ec)) {
    const std::string member = entry.path().filename().string();
    const fs::path member_dev = fs::path(sysfs_root) / "bus/pci/devices" / member;
    out.group_members.push_back({member, LinkBasename(member_dev / "driver")});
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrFormat("vfio device %s: cannot list IOMMU group %u (%s): %s", name, out.group,
                        members.string(), ec.message()));
  }
  out.reserved_regions = ReadReservedRegions(sysfs_root, out.group);
  std::ifstream reset_method(dev / "reset_method");
  std::string methods;
  if (std::getline(reset_method, methods)) {
    out.reset_method = std::string(absl::StripAsciiWhitespace(methods));
  }
  return out;
}

absl::Status CheckGroupViable(const HostPciDevice& device) {
  std::vector<std::string> blockers;
  for (const GroupMember& m : device.group_members) {
    if (m.driver.empty() || m.driver == "vfio-pci" || m.driver == "pci-stub" ||
        m.driver == "pcieport") {
      continue;
    }
    blockers.push_back(absl::StrFormat("%s (driver %s)", m.name, m.driver));
  }
  if (blockers.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "vfio device %s: IOMMU group %u is not viable: %s %s in the same group; bind every device "
      "of the group to vfio-pci (or unbind it) first",
      device.name, device.group, absl::StrJoin(blockers, ", "),
      blockers.size() == 1 ? "is" : "are"));
}

}  // namespace skiff::vfio
