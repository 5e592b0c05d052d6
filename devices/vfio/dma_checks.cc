#include "devices/vfio/dma_checks.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace skiff::vfio {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// "/dev/vfio/3", "/dev/vfio/3 and /dev/vfio/7".
std::string DevNames(std::span<const GroupReservations> groups) {
  std::vector<std::string> names;
  for (const GroupReservations& g : groups)
    names.push_back(absl::StrFormat("/dev/vfio/%u", g.group));
  if (names.empty()) return "the container";
  if (names.size() == 1) return names[0];
  const std::string last = names.back();
  names.pop_back();
  return absl::StrJoin(names, ", ") + " and " + last;
}

// The groups whose sysfs reserved regions overlap [first, last], with those
// regions: "/dev/vfio/7 (/sys/kernel/iommu_groups/7/reserved_regions:
// 0xfee00000-0xfeefffff msi)". All groups, unattributed, when none does
// (the hole is the IOMMU's aperture, or sysfs did not say).
std::string Attribute(uint64_t first, uint64_t last, std::span<const GroupReservations> groups) {
  std::vector<std::string> named;
  for (const GroupReservations& g : groups) {
    std::vector<std::string> hits;
    for (const ReservedRegion& r : g.regions) {
      // type1 maps through direct-relaxable regions (USB/GPU RMRRs): not holes.
      if (r.type == "direct-relaxable" || r.last < first || r.start > last) continue;
      hits.push_back(absl::StrFormat("0x%x-0x%x %s", r.start, r.last, r.type));
    }
    if (!hits.empty()) {
      named.push_back(
          absl::StrFormat("/dev/vfio/%u (/sys/kernel/iommu_groups/%u/reserved_regions: %s)",
                          g.group, g.group, absl::StrJoin(hits, ", ")));
    }
  }
  if (named.empty()) return DevNames(groups);
  return absl::StrJoin(named, " and ");
}

absl::Status Outside(uint64_t ram_first, uint64_t ram_last, std::optional<uint64_t> hole_first,
                     std::optional<uint64_t> hole_last, std::span<const GroupReservations> groups) {
  const std::string ram = absl::StrFormat("guest RAM 0x%x-0x%x", ram_first, ram_last);
  constexpr char kWhy[] =
      "VFIO cannot map it for the device's DMA (guest RAM sits at fixed guest-physical addresses, "
      "which are its DMA addresses)";
  if (!hole_first && !hole_last) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s lies outside the IOMMU's usable IOVA ranges: the kernel reports none for %s", ram,
        DevNames(groups)));
  }
  const uint64_t first = hole_first.value_or(0);
  if (!hole_last) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s reaches past 0x%x, the highest IOVA the IOMMU of %s can map (its address width): %s; "
        "give the guest less memory (--memory) so its RAM ends below it",
        ram, first - 1, DevNames(groups), kWhy));
  }
  const uint64_t overlap_first = std::max(first, ram_first);
  const uint64_t overlap_last = std::min(*hole_last, ram_last);
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s overlaps the IOMMU's reserved range 0x%x-0x%x%s of %s: %s; give the guest less memory "
      "(--memory) if that keeps its RAM below the range, or pass through a device whose IOMMU "
      "group does not reserve it",
      ram, first, *hole_last, hole_first ? "" : " (below its lowest usable IOVA)",
      Attribute(overlap_first, overlap_last, groups), kWhy));
}

}  // namespace

std::vector<DmaPiece> DmaPieces(uint64_t gpa, uint64_t size, uint64_t chunk) {
  std::vector<DmaPiece> pieces;
  if (chunk == 0) return pieces;
  for (uint64_t done = 0; done < size;) {
    const uint64_t iova = gpa + done;
    const uint64_t piece = std::min(size - done, chunk - iova % chunk);
    pieces.push_back({iova, piece});
    done += piece;
  }
  return pieces;
}

absl::Status CheckIovaRanges(std::span<const RamRegion> ram, std::span<const VfioIovaRange> usable,
                             std::span<const GroupReservations> groups) {
  for (const RamRegion& r : ram) {
    if (r.size == 0) continue;
    if (r.gpa > kMax - (r.size - 1)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("guest RAM at 0x%x (+0x%x) wraps the address space", r.gpa, r.size));
    }
    const uint64_t last = r.gpa + (r.size - 1);
    // Walk the usable ranges from the RAM's start; the first address no
    // range covers opens the hole, which runs from the end of the range
    // before it to the start of the next (or the top of the address space).
    uint64_t cursor = r.gpa;
    std::optional<uint64_t> before;  // last usable IOVA below the cursor
    bool covered = false;
    for (const VfioIovaRange& u : usable) {
      if (u.last < cursor) {
        before = std::max(before.value_or(0), u.last);
        continue;
      }
      if (u.start > cursor) {
        return Outside(r.gpa, last, before ? std::optional(*before + 1) : std::nullopt, u.start - 1,
                       groups);
      }
      if (u.last >= last) {
        covered = true;
        break;
      }
      cursor = u.last + 1;
      before = u.last;
    }
    if (!covered) {
      if (!before) return Outside(r.gpa, last, std::nullopt, std::nullopt, groups);
      return Outside(r.gpa, last, *before + 1, std::nullopt, groups);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDmaAvail(std::span<const RamRegion> ram, uint64_t chunk, uint32_t avail,
                           std::span<const GroupReservations> groups) {
  uint64_t needed = 0;
  uint64_t bytes = 0;
  for (const RamRegion& r : ram) {
    needed += DmaPieces(r.gpa, r.size, chunk).size();
    bytes += r.size;
  }
  if (needed <= avail) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "guest RAM (%s) is DMA-mapped in %u pieces of at most %s, but the IOMMU container of %s "
      "takes only %u more mappings: raise vfio_iommu_type1.dma_entry_limit (echo N > "
      "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit; it applies to containers opened "
      "after) or give the guest less memory (--memory)",
      FormatBytes(bytes), needed, FormatBytes(chunk), DevNames(groups), avail));
}

absl::Status CheckLockedMemory(uint64_t ram_bytes, const LockedMemoryBudget& budget) {
  if (budget.cap_ipc_lock || !budget.limit) return absl::OkStatus();
  const uint64_t need = budget.locked > kMax - ram_bytes ? kMax : budget.locked + ram_bytes;
  if (need <= *budget.limit) return absl::OkStatus();
  const uint64_t need_kib = need / 1024 + (need % 1024 != 0);
  return absl::ResourceExhaustedError(absl::StrFormat(
      "VFIO pins all %s of guest RAM for DMA and charges it to the locked-memory limit, but "
      "RLIMIT_MEMLOCK is %s%s and Skiff lacks CAP_IPC_LOCK: raise the limit to at least %s "
      "(ulimit -l %u, in KiB, or ulimit -l unlimited; LimitMEMLOCK= for a systemd service, "
      "memlock in /etc/security/limits.conf) or give Skiff CAP_IPC_LOCK",
      FormatBytes(ram_bytes), FormatBytes(*budget.limit),
      budget.locked > 0 ? absl::StrFormat(" (%s of it locked already)", FormatBytes(budget.locked))
                        : "",
      FormatBytes(need), need_kib));
}

std::string LockedMemoryExplanation(const LockedMemoryBudget& budget) {
  if (budget.cap_ipc_lock || !budget.limit) {
    return absl::StrFormat(
        "the host could not pin guest RAM (no locked-memory limit applies: %s), so it is short "
        "of memory",
        budget.cap_ipc_lock ? "Skiff has CAP_IPC_LOCK" : "RLIMIT_MEMLOCK is unlimited");
  }
  return absl::StrFormat(
      "VFIO charges pinned guest RAM to RLIMIT_MEMLOCK, which is %s (%s locked now), and Skiff "
      "lacks CAP_IPC_LOCK: raise the limit to the guest's RAM size or more (ulimit -l, in KiB, or "
      "ulimit -l unlimited) or give Skiff CAP_IPC_LOCK",
      FormatBytes(*budget.limit), FormatBytes(budget.locked));
}

std::string FormatBytes(uint64_t bytes) {
  struct Unit {
    uint64_t size;
    const char* name;
  };
  for (const Unit& u : {Unit{uint64_t{1} << 40, "TiB"}, Unit{uint64_t{1} << 30, "GiB"},
                        Unit{uint64_t{1} << 20, "MiB"}, Unit{uint64_t{1} << 10, "KiB"}}) {
    if (bytes < u.size) continue;
    if (bytes % u.size == 0) return absl::StrFormat("%u %s", bytes / u.size, u.name);
    return absl::StrFormat("%.1f %s", static_cast<double>(bytes) / static_cast<double>(u.size),
                           u.name);
  }
  return absl::StrFormat("%u bytes", bytes);
}

}  // namespace skiff::vfio
