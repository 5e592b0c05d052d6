// FslMcContainer::Execute: the guest's MC commands, forwarded or answered.
// Command ids and layouts: mc_command.h (and its Linux sources).
#include <linux/vfio.h>

#include "absl/strings/str_format.h"
#include "devices/vfio/fsl_mc/fsl_mc_container.h"
#include "vmm/log.h"

namespace skiff::vfio::fsl_mc {

int FslMcContainer::FindObject(const std::string& type, uint32_t id) const {
  for (size_t i = 0; i < objects_.size(); ++i) {
    if (objects_[i].type == type && objects_[i].id == id) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<McCommand> FslMcContainer::Forward(size_t portal, const McCommand& cmd) {
  VfioKernel& kernel = container_->kernel();
  const McObject& o = objects_[portal];
  const uint64_t offset = o.regions[0].offset;
  // vfio-fsl-mc takes exactly 64 bytes at offset 0 of the region; the
  // write returns once the MC left READY, whatever its status.
  auto wrote = kernel.Write(o.fd.get(), offset, cmd.bytes());
  if (!wrote.ok()) return wrote.status();
  if (*wrote != kMcPortalBytes) return absl::DataLossError("short MC portal write");
  McCommand rsp;
  auto read = kernel.Read(o.fd.get(), offset, rsp.bytes());
  if (!read.ok()) return read.status();
  if (*read != kMcPortalBytes) return absl::DataLossError("short MC portal read");
  return rsp;
}

McCommand FslMcContainer::Execute(size_t portal, const McCommand& cmd) {
  std::lock_guard lock(mutex_);
  if (!attached_ || portal >= objects_.size() || objects_[portal].regions.empty() ||
      objects_[portal].kind == McObjectKind::kDpio ||
      objects_[portal].kind == McObjectKind::kOther) {
    return cmd.Reply(kMcInvalidState);
  }
  Portal& state = portals_[portal];
  const bool dprc_token = state.dprc_tokens.count(cmd.token()) > 0;
  switch (cmd.code()) {
    // Interrupt programming stays virtual, whatever the token: forwarded,
    // it would point the container's real MSIs at guest-chosen addresses.
    case kDprcSetIrq:
      if (!dprc_token || cmd.version() != 1) return cmd.Reply(kMcNoPrivilege);
      return SetIrq(cmd, 0, ParseSetIrq(cmd));
    case kDprcGetIrq:
      if (!dprc_token) return cmd.Reply(kMcNoPrivilege);
      return GetIrq(cmd, 0, cmd.P8(4));
    case kDprcSetObjIrq: {
      if (!dprc_token || cmd.version() != 1) return cmd.Reply(kMcNoPrivilege);
      auto set = ParseSetObjIrq(cmd);
      const int object = set ? FindObject(set->obj_type, set->obj_id) : -1;
      if (object < 0) return cmd.Reply(kMcConfigErr);
      return SetIrq(cmd, static_cast<size_t>(object), set->irq);
    }
    case kDprcGetObjIrq: {
      if (!dprc_token) return cmd.Reply(kMcNoPrivilege);
      auto get = ParseSetObjIrq(cmd);  // same obj_id/obj_type/irq_index places
      const int object = get ? FindObject(get->obj_type, get->obj_id) : -1;
      if (object < 0) return cmd.Reply(kMcConfigErr);
      return GetIrq(cmd, static_cast<size_t>(object), get->irq.index);
    }
    default:
      break;
  }
  auto forwarded = Forward(portal, cmd);
  if (!forwarded.ok()) {
    LOG_WARN("fsl-mc", "%s: command 0x%x: %s", objects_[portal].name, cmd.code(),
             forwarded.status().message());
    return cmd.Reply(kMcTimeout);
  }
  McCommand rsp = *std::move(forwarded);
  if (rsp.status() != kMcOk) return rsp;
  switch (cmd.code()) {
    case kDprcOpen:
      // Whatever the version: if the MC opened a DPRC session, its token's
      // GET_ATTR must be rewritten.
      state.dprc_tokens[rsp.token()] = cmd.P32(kOpenContainerId);
      break;
    case kDprcClose:
      state.dprc_tokens.erase(cmd.token());
      break;
    case kDprcGetAttr:
      if (dprc_token) rsp.SetP16(kAttrIcid, env_.ids.icid);
      break;
    case kDprcGetObjRegion:
      // Rewritten whatever the token: the answer carries host addresses.
      return RewriteObjRegion(cmd, std::move(rsp));
    default:
      break;
  }
  return rsp;
}

McCommand FslMcContainer::RewriteObjRegion(const McCommand& cmd, McCommand rsp) {
  auto request = ParseGetObjRegion(cmd);
  const int object = request ? FindObject(request->obj_type, request->obj_id) : -1;
  const PlacedRegion* placed =
      object >= 0 ? layout_.Find(static_cast<size_t>(object), request->region_index) : nullptr;
  if (placed == nullptr) return cmd.Reply(kMcConfigErr);
  // Both ways a guest computes the address land on the slot: V2/V3 with a
  // base_addr use base_addr + base_offset; V1 (base_addr 0 from old MC)
  // translates base_offset through the node's ranges for the region type
  // (drivers/bus/fsl-mc/fsl-mc-bus.c fsl_mc_device_get_mmio_regions).
  const uint64_t base =
      placed->use == RegionUse::kMappedQbman ? layout_.qbman_base : layout_.mc_base;
  rsp.SetP64(kObjRegionBaseOffset, placed->gpa - base);
  rsp.SetP32(kObjRegionSize, static_cast<uint32_t>(placed->size));
  rsp.SetP64(kObjRegionBaseAddr, cmd.version() >= 2 ? base : 0);
  return rsp;
}

McCommand FslMcContainer::SetIrq(const McCommand& cmd, size_t object, const McIrqConfig& irq) {
  McObject& o = objects_[object];
  if (irq.index >= o.irq_count) return cmd.Reply(kMcConfigErr);
  VfioKernel& kernel = container_->kernel();
  Route& route = routes_[{object, irq.index}];
  route.config = irq;
  VfioIrqSet set;
  set.index = irq.index;
  set.action = VFIO_IRQ_SET_ACTION_TRIGGER;
  set.start = 0;
  set.count = 1;
  if (irq.address == 0) {  // no message: stop signalling
    if (route.bound) {
      set.eventfds = {-1};
      absl::Status status = kernel.SetIrqs(o.fd.get(), set);
      if (!status.ok())
        LOG_WARN("fsl-mc", "%s IRQ %u off: %s", o.name, irq.index, status.message());
      route.bound = false;
    }
    return cmd.Reply(kMcOk);
  }
  if (route.vector == nullptr) {
    auto vector = env_.msi->Allocate();
    if (!vector.ok()) {
      LOG_WARN("fsl-mc", "%s IRQ %u: %s", o.name, irq.index, vector.status().message());
      return cmd.Reply(kMcNoResource);
    }
    route.vector = *std::move(vector);
  }
  absl::Status routed = route.vector->SetMessage(irq.address, irq.value, env_.ids.its_device_id);
  if (!routed.ok()) {
    LOG_WARN("fsl-mc", "%s IRQ %u route: %s", o.name, irq.index, routed.message());
    return cmd.Reply(kMcConfigErr);
  }
  if (!route.bound) {
    set.eventfds = {route.vector->irqfd()};
    absl::Status status = kernel.SetIrqs(o.fd.get(), set);
    if (!status.ok()) {
      // -ENOSPC: the container's 256-MSI pool on the host is used up.
      LOG_WARN("fsl-mc", "%s IRQ %u: VFIO_DEVICE_SET_IRQS: %s", o.name, irq.index,
               status.message());
      return cmd.Reply(kMcNoResource);
    }
    route.bound = true;
  }
  return cmd.Reply(kMcOk);
}

McCommand FslMcContainer::GetIrq(const McCommand& cmd, size_t object, uint8_t index) {
  if (index >= objects_[object].irq_count) return cmd.Reply(kMcConfigErr);
  McCommand rsp = cmd.Reply(kMcOk);
  auto it = routes_.find({object, index});
  McIrqConfig irq;
  if (it != routes_.end()) irq = it->second.config;
  irq.index = index;
  PutIrqConfig(rsp, irq);
  return rsp;
}

}  // namespace skiff::vfio::fsl_mc
