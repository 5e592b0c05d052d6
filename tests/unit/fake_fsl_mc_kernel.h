// A test double of vfio-fsl-mc and of the MC firmware behind it, on top of
// FakeVfioKernel's container/group model. What it models, and from where
// (Linux; see docs/fsl-mc.md for the list of what only hardware can tell):
//
// drivers/vfio/fsl-mc/vfio_fsl_mc.c
//   GET_INFO: flags FSL_MC, plus RESET only for a DPRC; num_regions and
//     num_irqs from the firmware's object descriptor.
//   GET_REGION_INFO: offset index << 40 (VFIO_FSL_MC_OFFSET_SHIFT), size;
//     -EINVAL at index >= region count; flags READ|WRITE, and MMAP only for
//     a non-DPRC object whose region start and size are page-aligned.
//   GET_IRQ_INFO: -EINVAL at index >= irq count, else EVENTFD, count 1.
//   read/write: only 64 bytes at offset 0 of a region (-EINVAL otherwise);
//     the write hands the command to the MC whatever the object type (so a
//     write to a DPIO region is recorded as a mistake), waits while the
//     status is READY (-ETIMEDOUT after 5 s: `mc.stuck`), and returns 64
//     even when the MC answered an error status.
//   mmap: MAP_SHARED only, region index valid, MMAP flag, region >= a
//     page, page-aligned offset, range inside the region.
//   RESET: dprc_reset_container for a DPRC; -ENOTTY for other objects on
//     kernels before the per-object reset (`per_object_reset` selects).
// drivers/vfio/fsl-mc/vfio_fsl_mc_intr.c, drivers/vfio/vfio_main.c
//   SET_IRQS: vfio_set_irqs_validate_and_prepare (index < irq count,
//     start + count <= irq count, one data type, eventfd array as long as
//     count); MASK/UNMASK -EINVAL; TRIGGER with count 0 + DATA_NONE
//     disables, else start must be 0 and count 1; the container's IRQ pool
//     (FSL_MC_IRQ_POOL_MAX_TOTAL_IRQS = 256, drivers/bus/fsl-mc/
//     fsl-mc-allocator.c) is populated on first use and each object takes
//     its irq_count from it once (-ENOSPC when it runs out); eventfd -1
//     detaches; DATA_NONE/BOOL signals the eventfd.
// drivers/bus/fsl-mc (dprc.c, dpmcp.c, fsl-mc-private.h, mc.h)
//   The MC answers GET_CONT_ID, DPMNG GET_VERSION, GET_API_VERSION
//   (selectable, driving GET_OBJ_REG V1/V2/V3), DPRC/DPMCP OPEN (token in
//   the response header), CLOSE, GET_ATTR, GET_OBJ_COUNT, GET_OBJ,
//   GET_OBJ_REG (host addresses), SET_IRQ_ENABLE/MASK, CLEAR_IRQ_STATUS;
//   AUTH_ERR for a token it did not hand out; every command is logged so
//   tests can check what never reached it.
#pragma once

#include <linux/vfio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "devices/vfio/fsl_mc/mc_command.h"
#include "tests/unit/fake_vfio_kernel.h"

namespace skiff::vfio::fsl_mc {

inline constexpr uint64_t kHostMcPortals = 0x80c000000;
inline constexpr uint64_t kHostQbmanPortals = 0x818000000;

struct FakeMcRegion {
  uint64_t host_addr = 0;
  uint64_t size = 0;
  uint32_t mc_flags = 0;
};

struct FakeMcObject {
  std::string type;
  uint32_t id = 0;
  std::vector<FakeMcRegion> regions;
  uint32_t irq_count = 0;
  std::string name() const { return absl::StrFormat("%s.%u", type, id); }
  bool is_dprc() const { return type == "dprc"; }

  // VFIO state.
  std::vector<int32_t> triggers;  // per IRQ index: the eventfd, -1 none
  bool irqs_allocated = false;
  int resets = 0;
  std::vector<McCommand> portal_writes;  // commands written to its regions
  std::vector<std::pair<uint64_t, uint64_t>> maps;
  std::vector<std::array<uint8_t, kMcPortalBytes>> portal;  // per region

  // Test hook: the MC raises IRQ `index` (as the host's handler would
  // signal the eventfd).
  bool Raise(uint32_t index) {
    if (index >= triggers.size() || triggers[index] < 0) return false;
    uint64_t one = 1;
    return ::write(triggers[index], &one, sizeof(one)) == sizeof(one);
  }
};

struct FakeMcFirmware {
  uint32_t container_id = 2;
  uint16_t icid = 0x2a;  // the host's, never to reach the guest
  uint32_t portal_id = 2;
  uint16_t api_major = 6, api_minor = 6;
  bool stuck = false;  // stays READY: -ETIMEDOUT
  uint16_t next_token = 0x100;
  // (portal owner, token) -> object opened: the MC keeps sessions per
  // portal (drivers/bus/fsl-mc/fsl-mc-bus.c: one open per object and
  // portal), so a token means nothing on another portal.
  std::map<std::pair<std::string, uint16_t>, std::string> tokens;
  std::vector<McCommand> log;  // every command the MC saw
  bool Saw(uint16_t code) const {
    for (const McCommand& c : log) {
      if (c.code() == code) return true;
    }
    return false;
  }
};

struct FakeFslMcGroup {
  FakeMcFirmware mc;
  std::vector<std::shared_ptr<FakeMcObject>> objects;  // [0] the DPRC
  uint32_t pool_size = 256;
  bool pool_populated = false;
  uint32_t pool_used = 0;

  std::shared_ptr<FakeMcObject> Find(const std::string& name) const {
    for (const auto& o : objects) {
      if (o->name() == name) return o;
    }
    return nullptr;
  }
  std::shared_ptr<FakeMcObject> Add(const std::string& type, uint32_t id, uint32_t irqs,
                                    std::vector<FakeMcRegion> regions = {}) {
    auto o = std::make_shared<FakeMcObject>();
    o->type = type;
    o->id = id;
    o->irq_count = irqs;
    o->regions = std::move(regions);
    o->triggers.assign(irqs, -1);
    o->portal.resize(o->regions.size());
    for (auto& p : o->portal) p.fill(0);
    objects.push_back(o);
    return o;
  }

  // dprc.2 with dpmcp.5, dpio.7 (3 regions, QBMan >= 5), dpni.3, dpbp.1,
  // dpcon.4, dpmac.6: what a restool-made container for one dpaa2-eth
  // interface holds. `portal_size` 0x10000 is MC API >= 6.6; old firmware
  // says 0x40 (MC) and 0x1000 (QBMan).
  static FakeFslMcGroup Typical(uint64_t mc_portal = 0x10000, uint64_t qbman_portal = 0x10000) {
    FakeFslMcGroup g;
    g.Add("dprc", 2, 1, {{kHostMcPortals + 2 * 0x10000, mc_portal, 0}});
    g.Add("dpbp", 1, 0);
    g.Add("dpcon", 4, 1);
    g.Add("dpio", 7, 1,
          {{kHostQbmanPortals + 0x0, qbman_portal, 0x3},
           {kHostQbmanPortals + 0x1000000, qbman_portal, 0},
           {kHostQbmanPortals + 0x2000000, qbman_portal, 0x3}});
    g.Add("dpmac", 6, 1);
    g.Add("dpmcp", 5, 1, {{kHostMcPortals + 5 * 0x10000, mc_portal, 0}});
    g.Add("dpni", 3, 1);
    return g;
  }
};

class FakeFslMcKernel : public FakeVfioKernel {
 public:
  std::map<uint32_t, FakeFslMcGroup> fsl_groups;  // by IOMMU group number
  uint64_t page_size = 4096;
  bool per_object_reset = true;  // the newer vfio_fsl_mc.c
  std::vector<std::string> set_irqs_log;

  // Adds `g` as IOMMU group `number` (viable unless told).
  void AddGroup(uint32_t number, FakeFslMcGroup g, bool viable = true) {
    groups[number].flags = viable ? VFIO_GROUP_FLAGS_VIABLE : 0;
    fsl_groups[number] = std::move(g);
  }
  FakeFslMcGroup& group(uint32_t number) { return fsl_groups.at(number); }

  absl::StatusOr<UniqueFd> OpenGroup(uint32_t number) override {
    auto fd = FakeVfioKernel::OpenGroup(number);
    if (fd.ok()) group_numbers_[fd->get()] = number;
    return fd;
  }
  absl::StatusOr<UniqueFd> GetDeviceFd(int group_fd, const std::string& name) override {
    auto n = group_numbers_.find(group_fd);
    if (n == group_numbers_.end() || !fsl_groups.count(n->second)) {
      return FakeVfioKernel::GetDeviceFd(group_fd, name);
    }
    const Group& g = groups[n->second];
    if (g.container < 0 || !containers[g.container].iommu) {
      return absl::InvalidArgumentError("VFIO_GROUP_GET_DEVICE_FD: EINVAL (no IOMMU set)");
    }
    auto object = fsl_groups[n->second].Find(name);
    if (!object) return absl::NotFoundError("VFIO_GROUP_GET_DEVICE_FD: ENODEV");
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
    devices_[fd.get()] = {n->second, object};
    return fd;
  }
  absl::StatusOr<VfioDeviceInfo> GetDeviceInfo(int fd) override {
    FakeMcObject* o = Obj(fd);
    if (!o) return FakeVfioKernel::GetDeviceInfo(fd);
    return VfioDeviceInfo{VFIO_DEVICE_FLAGS_FSL_MC | (o->is_dprc() ? VFIO_DEVICE_FLAGS_RESET : 0u),
                          static_cast<uint32_t>(o->regions.size()), o->irq_count};
  }
  absl::StatusOr<VfioRegionInfo> GetRegionInfo(int fd, uint32_t index) override {
    FakeMcObject* o = Obj(fd);
    if (!o) return FakeVfioKernel::GetRegionInfo(fd, index);
    if (index >= o->regions.size()) return absl::InvalidArgumentError("EINVAL");
    return VfioRegionInfo{
        index, RegionFlags(*o, index), o->regions[index].size, uint64_t{index} << 40, std::nullopt,
        false};
  }
  absl::StatusOr<VfioIrqInfo> GetIrqInfo(int fd, uint32_t index) override {
    FakeMcObject* o = Obj(fd);
    if (!o) return FakeVfioKernel::GetIrqInfo(fd, index);
    if (index >= o->irq_count) return absl::InvalidArgumentError("EINVAL");
    return VfioIrqInfo{index, VFIO_IRQ_INFO_EVENTFD, 1};
  }
  absl::Status SetIrqs(int fd, const VfioIrqSet& set) override {
    auto it = devices_.find(fd);
    if (it == devices_.end()) return FakeVfioKernel::SetIrqs(fd, set);
    FakeFslMcGroup& g = fsl_groups[it->second.first];
    FakeMcObject& o = *it->second.second;
    set_irqs_log.push_back(absl::StrFormat("%s/%u/%u/%u/%u/%d", o.name(), set.index, set.action,
                                           set.start, set.count,
                                           set.eventfds.empty() ? -2 : set.eventfds[0]));
    // vfio_set_irqs_validate_and_prepare(hdr, irq_count, irq_count).
    if (set.index >= o.irq_count || uint64_t{set.start} + set.count > o.irq_count) {
      return absl::InvalidArgumentError("SET_IRQS: EINVAL (index/start/count)");
    }
    if (!set.eventfds.empty() && set.eventfds.size() != set.count) {
      return absl::InvalidArgumentError("SET_IRQS: EINVAL (payload)");
    }
    if (set.action != VFIO_IRQ_SET_ACTION_TRIGGER) {
      return absl::InvalidArgumentError("SET_IRQS: EINVAL (only TRIGGER)");
    }
    if (set.count == 0 && set.eventfds.empty()) {
      for (auto& t : o.triggers) t = -1;
      return absl::OkStatus();
    }
    if (set.start != 0 || set.count != 1) return absl::InvalidArgumentError("SET_IRQS: EINVAL");
    if (!g.pool_populated) {
      if (g.pool_size == 0 || g.pool_size > 256) return absl::InvalidArgumentError("EINVAL pool");
      g.pool_populated = true;
    }
    if (!o.irqs_allocated) {
      if (g.pool_used + o.irq_count > g.pool_size) {
        return absl::ResourceExhaustedError("SET_IRQS: ENOSPC (IRQ pool exhausted)");
      }
      g.pool_used += o.irq_count;
      o.irqs_allocated = true;
    }
    if (set.eventfds.empty()) {  // DATA_NONE: loopback trigger
      return o.Raise(set.index) ? absl::OkStatus() : absl::InvalidArgumentError("EINVAL");
    }
    o.triggers[set.index] = set.eventfds[0];
    return absl::OkStatus();
  }
  absl::Status Reset(int fd) override {
    FakeMcObject* o = Obj(fd);
    if (!o) return FakeVfioKernel::Reset(fd);
    if (!o->is_dprc() && !per_object_reset) return absl::UnimplementedError("RESET: ENOTTY");
    ++o->resets;
    return absl::OkStatus();
  }
  absl::StatusOr<size_t> Read(int fd, uint64_t offset, std::span<uint8_t> data) override {
    FakeMcObject* o = Obj(fd);
    if (!o) return FakeVfioKernel::Read(fd, offset, data);
    const uint64_t index = offset >> 40;
    if (index >= o->regions.size() || data.size() != 64 || (offset & ((1ull << 40) - 1)) != 0) {
      return absl::InvalidArgumentError("read: EINVAL");
    }
    std::memcpy(data.data(), o->portal[index].data(), 64);
    return data.size();
  }
  absl::StatusOr<size_t> Write(int fd, uint64_t offset, std::span<const uint8_t> data) override {
    auto it = devices_.find(fd);
    if (it == devices_.end()) return FakeVfioKernel::Write(fd, offset, data);
    FakeMcObject& o = *it->second.second;
    const uint64_t index = offset >> 40;
    if (index >= o.regions.size() || data.size() != 64 || (offset & ((1ull << 40) - 1)) != 0) {
      return absl::InvalidArgumentError("write: EINVAL");
    }
    FakeFslMcGroup& g = fsl_groups[it->second.first];
    const McCommand cmd = McCommand::FromBytes(data.data());
    o.portal_writes.push_back(cmd);
    if (g.mc.stuck) {
      o.portal[index] = cmd.bytes();
      return absl::DeadlineExceededError("write: ETIMEDOUT (MC portal stayed READY)");
    }
    o.portal[index] = Firmware(g, o, cmd).bytes();
    return size_t{64};
  }
  absl::StatusOr<Mapping> Map(int fd, uint64_t offset, uint64_t size) override {
    FakeMcObject* o = Obj(fd);
    if (!o) return FakeVfioKernel::Map(fd, offset, size);
    const uint64_t index = offset >> 40;
    const uint64_t at = offset & ((1ull << 40) - 1);
    if (index >= o->regions.size() || !(RegionFlags(*o, index) & VFIO_REGION_INFO_FLAG_MMAP) ||
        o->regions[index].size < page_size || at % page_size != 0 || size % page_size != 0 ||
        size == 0 || at + size > o->regions[index].size) {
      return absl::InvalidArgumentError("mmap: EINVAL");
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return absl::InternalError("mmap");
    o->maps.push_back({at, size});
    return Mapping(p, size);
  }

  FakeMcObject* Obj(int fd) {
    auto it = devices_.find(fd);
    return it == devices_.end() ? nullptr : it->second.second.get();
  }

 private:
  uint32_t RegionFlags(const FakeMcObject& o, uint64_t index) const {
    const FakeMcRegion& r = o.regions[index];
    uint32_t flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    if (!o.is_dprc() && r.host_addr % page_size == 0 && r.size % page_size == 0) {
      flags |= VFIO_REGION_INFO_FLAG_MMAP;
    }
    return flags;
  }

  // The MC firmware's answer to `cmd` arriving on `portal_owner`'s portal.
  static McCommand Firmware(FakeFslMcGroup& g, const FakeMcObject& portal_owner,
                            const McCommand& cmd) {
    FakeMcFirmware& mc = g.mc;
    mc.log.push_back(cmd);
    const std::pair<std::string, uint16_t> session{portal_owner.name(), cmd.token()};
    McCommand rsp = cmd.Reply(kMcOk);
    auto token_is = [&](const std::string& type) {
      auto t = mc.tokens.find(session);
      return t != mc.tokens.end() && t->second.substr(0, type.size() + 1) == type + ".";
    };
    switch (cmd.code()) {
      case kDprcGetContId:
        rsp.SetP32(0, mc.container_id);
        return rsp;
      case kDpmngGetVersion:
        rsp.SetP32(0, 1);
        rsp.SetP32(4, 10);
        rsp.SetP32(8, 32);
        return rsp;
      case kDprcGetApiVersion:
        rsp.SetP16(0, mc.api_major);
        rsp.SetP16(2, mc.api_minor);
        return rsp;
      case kDprcOpen:
      case kDpmcpOpen: {
        const bool dprc = cmd.code() == kDprcOpen;
        const std::string name = absl::StrFormat("%s.%u", dprc ? "dprc" : "dpmcp", cmd.P32(0));
        if (!g.Find(name) || (dprc && cmd.P32(0) != mc.container_id)) {
          return cmd.Reply(kMcConfigErr);
        }
        const uint16_t token = mc.next_token++;
        mc.tokens[{portal_owner.name(), token}] = name;
        rsp.set_token(token);
        return rsp;
      }
      case kDprcClose:
        if (!mc.tokens.erase(session)) return cmd.Reply(kMcAuthErr);
        return rsp;
      default:
        break;
    }
    if (!token_is("dprc")) {
      return cmd.Reply(mc.tokens.count(session) ? kMcUnsupportedOp : kMcAuthErr);
    }
    switch (cmd.code()) {
      case kDprcGetAttr:
        rsp.SetP32(kAttrContainerId, mc.container_id);
        rsp.SetP16(kAttrIcid, mc.icid);
        rsp.SetP32(kAttrPortalId, mc.portal_id);
        return rsp;
      case kDprcGetObjCount:
        rsp.SetP32(4, static_cast<uint32_t>(g.objects.size() - 1));
        return rsp;
      case kDprcGetObj: {
        const uint32_t index = cmd.P32(0);
        if (index + 1 >= g.objects.size()) return cmd.Reply(kMcConfigErr);
        const FakeMcObject& o = *g.objects[index + 1];
        rsp.SetP32(4, o.id);
        rsp.SetP16(8, 0x1957);
        rsp.SetP8(10, static_cast<uint8_t>(o.irq_count));
        rsp.SetP8(11, static_cast<uint8_t>(o.regions.size()));
        rsp.SetP32(12, 0x2);  // FSL_MC_OBJ_STATE_PLUGGED
        rsp.SetP16(16, 4);
        rsp.SetP16(18, 0);
        rsp.SetPString16(24, o.type);
        return rsp;
      }
      case kDprcGetObjRegion: {
        auto type = cmd.PString16(24);
        auto o = type ? g.Find(absl::StrFormat("%s.%u", *type, cmd.P32(0))) : nullptr;
        const uint8_t index = cmd.P8(6);
        if (!o || index >= o->regions.size() || cmd.version() < 1 || cmd.version() > 3) {
          return cmd.Reply(kMcConfigErr);
        }
        const FakeMcRegion& r = o->regions[index];
        const uint64_t base = o->type == "dpio" ? kHostQbmanPortals : kHostMcPortals;
        rsp.SetP64(kObjRegionBaseOffset, r.host_addr - base);
        rsp.SetP32(kObjRegionSize, static_cast<uint32_t>(r.size));
        if (cmd.version() >= 2) {
          rsp.SetP32(kObjRegionFlags, r.mc_flags);
          rsp.SetP64(kObjRegionBaseAddr, base);
        }
        return rsp;
      }
      case kDprcSetIrq:
      case kDprcSetObjIrq:
      case kDprcSetIrqEnable:
      case kDprcSetIrqMask:
      case kDprcClearIrqStatus:
        return rsp;
      default:
        return cmd.Reply(kMcUnsupportedOp);
    }
  }

  std::map<int, uint32_t> group_numbers_;
  std::map<int, std::pair<uint32_t, std::shared_ptr<FakeMcObject>>> devices_;
};

}  // namespace skiff::vfio::fsl_mc
