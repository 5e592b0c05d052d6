#include "devices/vfio/fsl_mc/fsl_mc_sysfs.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "devices/vfio/vfio_sysfs.h"

namespace skiff::vfio::fsl_mc {
namespace {

namespace fs = std::filesystem;

std::string LinkBasename(const fs::path& link) { return SysfsLinkName(link.string()); }

}  // namespace

bool SplitObjectName(std::string_view name, std::string* type, uint32_t* id) {
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot < 3 || dot > 15 || name.substr(0, 2) != "dp") {
    return false;
  }
  for (char c : name.substr(0, dot)) {
    if (!std::islower(static_cast<unsigned char>(c))) return false;
  }
  const std::string_view digits = name.substr(dot + 1);
  if (digits.empty() || digits.size() > 9) return false;
  for (char c : digits) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), id)) return false;
  *type = std::string(name.substr(0, dot));
  return true;
}

absl::StatusOr<std::string> ParseDprcName(std::string_view text) {
  std::string_view name = text;
  constexpr std::string_view kPrefix = "/sys/bus/fsl-mc/devices/";
  if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
  while (!name.empty() && name.back() == '/') name.remove_suffix(1);
  std::string type;
  uint32_t id = 0;
  if (!SplitObjectName(name, &type, &id) || type != "dprc") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "'%s' is not an fsl-mc container: use dprc.N (or /sys/bus/fsl-mc/devices/dprc.N)", text));
  }
  return absl::StrFormat("dprc.%u", id);
}

absl::StatusOr<HostDprc> InspectHostDprc(const std::string& sysfs_root, const std::string& name) {
  HostDprc out;
  out.name = name;
  std::string type;
  if (!SplitObjectName(name, &type, &out.id) || type != "dprc") {
    return absl::InvalidArgumentError(
        absl::StrFormat("'%s' is not an fsl-mc container name (dprc.N)", name));
  }
  const fs::path dev = fs::path(sysfs_root) / "bus/fsl-mc/devices" / name;
  std::error_code ec;
  if (!fs::is_directory(dev, ec)) {
    return absl::NotFoundError(absl::StrFormat(
        "fsl-mc container %s: %s does not exist (the host's containers are listed in "
        "/sys/bus/fsl-mc/devices; create one with restool)",
        name, dev.string()));
  }
  const std::string driver = LinkBasename(dev / "driver");
  // The root container has no portal region to assign and holds the host's
  // own objects (only child containers are assignable); on NXP parts it is
  // dprc.1.
  if (driver != kVfioFslMcDriver && out.id == 1) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "fsl-mc container %s is the host's root container and cannot be assigned: create a child "
        "container with restool (restool dprc create dprc.1) and assign that",
        name));
  }
  if (driver != kVfioFslMcDriver) {
    const std::string unbind =
        driver.empty() ? "" : absl::StrFormat("echo %s > %s/driver/unbind; ", name, dev.string());
    return absl::FailedPreconditionError(
        absl::StrFormat("fsl-mc container %s: bound to %s, not vfio-fsl-mc: %secho vfio-fsl-mc > "
                        "%s/driver_override; echo %s > %s/bus/fsl-mc/drivers/vfio-fsl-mc/bind",
                        name, driver.empty() ? "no driver" : "driver " + driver, unbind,
                        dev.string(), name, sysfs_root));
  }
  const std::optional<uint32_t> group = IommuGroupOf(dev.string());
  if (!group) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "fsl-mc container %s: it has no IOMMU group: the host needs its SMMU enabled for the MC "
        "(arm-smmu driver, iommu-map in the host's fsl-mc node)",
        name));
  }
  out.group = *group;
  std::vector<std::string> nested;
  std::vector<std::string> foreign;
  for (const auto& entry : fs::directory_iterator(dev, ec)) {
    HostMcObject child;
    child.name = entry.path().filename().string();
    if (!SplitObjectName(child.name, &child.type, &child.id)) continue;
    if (!entry.is_directory(ec)) continue;
    if (child.type == "dprc") {
      nested.push_back(child.name);
      continue;
    }
    child.driver = LinkBasename(entry.path() / "driver");
    if (!child.driver.empty() && child.driver != kVfioFslMcDriver) {
      foreign.push_back(absl::StrFormat("%s (driver %s)", child.name, child.driver));
    }
    out.children.push_back(std::move(child));
  }
  if (ec) {
    return absl::FailedPreconditionError(absl::StrFormat("fsl-mc container %s: cannot list %s: %s",
                                                         name, dev.string(), ec.message()));
  }
  if (!nested.empty()) {
    std::sort(nested.begin(), nested.end());
    return absl::FailedPreconditionError(absl::StrFormat(
        "fsl-mc container %s: it holds the nested container %s, which is an IOMMU group of its "
        "own; Skiff assigns flat containers only (move its objects up with restool)",
        name, absl::StrJoin(nested, ", ")));
  }
  if (!foreign.empty()) {
    std::sort(foreign.begin(), foreign.end());
    return absl::FailedPreconditionError(absl::StrFormat(
        "fsl-mc container %s: IOMMU group %u is not viable: %s %s bound to a host driver; unbind "
        "each and bind it to vfio-fsl-mc (echo vfio-fsl-mc > .../driver_override; echo OBJ > "
        "%s/bus/fsl-mc/drivers/vfio-fsl-mc/bind)",
        name, out.group, absl::StrJoin(foreign, ", "), foreign.size() == 1 ? "is" : "are",
        sysfs_root));
  }
  std::sort(out.children.begin(), out.children.end(),
            [](const HostMcObject& a, const HostMcObject& b) {
              return a.type != b.type ? a.type < b.type : a.id < b.id;
            });
  return out;
}

}  // namespace skiff::vfio::fsl_mc
