#include "devices/vfio/fsl_mc/fsl_mc_container.h"

#include <linux/vfio.h>

#include "absl/strings/str_format.h"
#include "devices/vfio/fsl_mc/mc_portal_device.h"
#include "vmm/log.h"
#include "vmm/status_macros.h"

namespace skiff::vfio::fsl_mc {
namespace {

// Far above any DPAA2 object (a DPIO has 3 regions, every object 0..1
// IRQs) yet small enough that a confused kernel cannot make Skiff loop.
constexpr uint32_t kMaxRegions = 16;
constexpr uint32_t kMaxIrqs = 16;

absl::Status Prefixed(const std::string& prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrFormat("%s: %s", prefix, status.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<FslMcContainer>> FslMcContainer::Open(
    std::shared_ptr<VfioContainer> container, const std::string& sysfs_root,
    const std::string& dprc) {
  ASSIGN_OR_RETURN(HostDprc host, InspectHostDprc(sysfs_root, dprc));
  return Open(std::move(container), host);
}

absl::StatusOr<std::unique_ptr<FslMcContainer>> FslMcContainer::Open(
    std::shared_ptr<VfioContainer> container, const HostDprc& host) {
  const std::string who = "fsl-mc container " + host.name;
  auto group = container->AttachGroup(host.group, who);
  if (!group.ok()) return group.status();
  auto mc = std::make_unique<FslMcContainer>(std::move(container), *std::move(group));
  RETURN_IF_ERROR(mc->OpenObject(host.name));
  for (const HostMcObject& child : host.children) {
    RETURN_IF_ERROR(Prefixed(who, mc->OpenObject(child.name)));
  }
  const McObject& dprc = mc->objects_.front();
  if (!(dprc.info.flags & VFIO_DEVICE_FLAGS_RESET)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: VFIO offers no reset for it (is it really a DPRC?)", who));
  }
  // A clean container before the guest starts (dprc_reset_container,
  // non-recursive); the kernel resets again when the fds close.
  RETURN_IF_ERROR(Prefixed(who + ": reset", mc->container_->kernel().Reset(dprc.fd.get())));
  LOG_INFO("fsl-mc", "%s: opened with %u objects (IOMMU group %u)", host.name, mc->objects_.size(),
           host.group);
  return mc;
}

absl::Status FslMcContainer::OpenObject(const std::string& name) {
  VfioKernel& kernel = container_->kernel();
  McObject o;
  o.name = name;
  if (!SplitObjectName(name, &o.type, &o.id)) {
    return absl::InvalidArgumentError(absl::StrFormat("'%s' is not an fsl-mc object name", name));
  }
  o.kind = KindOfType(o.type);
  if (o.kind == McObjectKind::kDprc && !objects_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("nested container %s is not supported", name));
  }
  auto fd = kernel.GetDeviceFd(group_->fd(), name);
  if (!fd.ok()) return Prefixed("fsl-mc object " + name, fd.status());
  o.fd = *std::move(fd);
  ASSIGN_OR_RETURN(o.info, kernel.GetDeviceInfo(o.fd.get()));
  if (!(o.info.flags & VFIO_DEVICE_FLAGS_FSL_MC)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("fsl-mc object %s: VFIO does not report it as an fsl-mc object (flags "
                        "0x%x)",
                        name, o.info.flags));
  }
  if (o.info.num_regions > kMaxRegions || o.info.num_irqs > kMaxIrqs) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "fsl-mc object %s: %u regions and %u IRQs is more than any DPAA2 object has", name,
        o.info.num_regions, o.info.num_irqs));
  }
  for (uint32_t i = 0; i < o.info.num_regions; ++i) {
    auto region = kernel.GetRegionInfo(o.fd.get(), i);
    if (!region.ok()) {
      return Prefixed(absl::StrFormat("fsl-mc object %s region %u", name, i), region.status());
    }
    o.regions.push_back(*region);
  }
  for (uint32_t i = 0; i < o.info.num_irqs; ++i) {
    auto irq = kernel.GetIrqInfo(o.fd.get(), i);
    if (!irq.ok()) {
      return Prefixed(absl::StrFormat("fsl-mc object %s IRQ %u", name, i), irq.status());
    }
    if (!(irq->flags & VFIO_IRQ_INFO_EVENTFD) || irq->count != 1) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "fsl-mc object %s IRQ %u: flags 0x%x count %u, expected one eventfd-signalled vector",
          name, i, irq->flags, irq->count));
    }
  }
  o.irq_count = o.info.num_irqs;
  objects_.push_back(std::move(o));
  return absl::OkStatus();
}

FslMcContainer::~FslMcContainer() {
  VfioKernel& kernel = container_->kernel();
  for (auto& [key, route] : routes_) {
    if (!route.bound) continue;
    VfioIrqSet off;
    off.index = key.second;
    off.action = VFIO_IRQ_SET_ACTION_TRIGGER;
    absl::Status status = kernel.SetIrqs(objects_[key.first].fd.get(), off);
    if (!status.ok()) LOG_WARN("fsl-mc", "%s: %s", objects_[key.first].name, status.message());
  }
  routes_.clear();
  if (env_.mmio != nullptr) {
    for (uint64_t base : portal_bases_) (void)env_.mmio->Unregister(base);
  }
  if (env_.slots != nullptr) {
    for (uint32_t slot : slots_) (void)env_.slots->RemoveMemorySlot(slot);
  }
  maps_.clear();
  // Children first, the DPRC last: closing the DPRC resets the container.
  while (!objects_.empty()) objects_.pop_back();
}

absl::Status FslMcContainer::Attach(FslMcWindow window, const FslMcEnv& env) {
  if (attached_) return absl::FailedPreconditionError(name() + ": attached twice");
  if (env.msi == nullptr || env.slots == nullptr || env.mmio == nullptr) {
    return absl::InvalidArgumentError(name() + ": Attach needs MSI, memory slots and a bus");
  }
  std::vector<McObjectShape> shapes;
  for (const McObject& o : objects_) {
    McObjectShape s{o.name, o.kind, {}};
    for (const VfioRegionInfo& r : o.regions) s.regions.push_back({r.size, r.flags});
    shapes.push_back(std::move(s));
  }
  ASSIGN_OR_RETURN(layout_, PlanFslMcLayout(shapes, window, env.page_size));
  env_ = env;
  attached_ = true;
  VfioKernel& kernel = container_->kernel();
  for (const PlacedRegion& p : layout_.regions) {
    const McObject& o = objects_[p.object];
    const VfioRegionInfo& r = o.regions[p.index];
    if (p.use == RegionUse::kMappedQbman) {
      auto map = kernel.Map(o.fd.get(), r.offset, r.size);
      if (!map.ok()) {
        return Prefixed(absl::StrFormat("fsl-mc object %s region %u: mmap", o.name, p.index),
                        map.status());
      }
      maps_.push_back(*std::move(map));
      auto slot = env.slots->AddMemorySlot(p.gpa, r.size, maps_.back().data());
      if (!slot.ok()) {
        return Prefixed(absl::StrFormat("fsl-mc object %s region %u", o.name, p.index),
                        slot.status());
      }
      slots_.push_back(*slot);
    } else {
      const size_t portal = p.object;
      auto device = std::make_shared<McPortalDevice>(
          [this, portal](const McCommand& cmd) { return Execute(portal, cmd); });
      RETURN_IF_ERROR(env.mmio->Register(p.gpa, p.size, std::move(device),
                                         absl::StrFormat("fsl-mc %s portal", o.name)));
      portal_bases_.push_back(p.gpa);
    }
  }
  LOG_INFO("fsl-mc", "%s: MC portals at 0x%x (+0x%x), QBMan portals at 0x%x (+0x%x)", name(),
           layout_.mc_base, layout_.mc_size, layout_.qbman_base, layout_.qbman_size);
  return absl::OkStatus();
}

uint64_t FslMcContainer::root_portal_gpa() const {
  const PlacedRegion* p = layout_.Find(0, 0);
  return p ? p->gpa : 0;
}

uint64_t FslMcContainer::root_portal_size() const {
  const PlacedRegion* p = layout_.Find(0, 0);
  return p ? p->size : 0;
}

FslMcNodeParams FslMcContainer::node_params(uint32_t its_phandle) const {
  FslMcNodeParams p;
  p.root_portal_gpa = root_portal_gpa();
  p.root_portal_size = root_portal_size();
  p.mc_base = layout_.mc_base;
  p.mc_size = layout_.mc_size;
  p.qbman_base = layout_.qbman_base;
  p.qbman_size = layout_.qbman_size;
  p.icid = env_.ids.icid;
  p.its_phandle = its_phandle;
  p.its_device_id = env_.ids.its_device_id;
  return p;
}

}  // namespace skiff::vfio::fsl_mc
