// An assigned fsl-mc container (FslMcContainer) on the vfio-fsl-mc / MC
// firmware double, driven by a hostile guest through its trapped MC
// portals: raw accesses of any width and offset, whole commands with any
// code, version, token and parameters (and the OPEN tokens the MC handed
// out, so the interesting paths are reachable), a stuck MC, and MC
// interrupts arriving.
//
// Input: [shape] then ops, each [kind] [operands...] (see Step).
//
// Invariants beyond "no crash": interrupt programming (SET_IRQ,
// SET_OBJ_IRQ, GET_IRQ, GET_OBJ_IRQ) never reaches the MC; nothing is ever
// written to a QBMan (dpio) portal through VFIO; every SET_IRQS Skiff
// makes is one vfio-fsl-mc accepts (only -ENOSPC from an exhausted pool
// may fail); a trigger VFIO holds is always one of Skiff's irqfds; a
// GET_OBJ_REG answer the guest reads holds a guest address inside the
// window, never the host's; GET_ATTR never shows the host's ICID; the
// memory slots are the DPIO's three and stay so.
#include <linux/vfio.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>

#include "devices/vfio/fsl_mc/fsl_mc_container.h"
#include "devices/vfio/fsl_mc/mc_command.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/unit/fake_fsl_mc_kernel.h"
#include "tests/unit/pci_test_fakes.h"
#include "vmm/bus.h"

namespace skiff::vfio::fsl_mc {
namespace {

using fuzz::FuzzInput;

constexpr int kMaxOps = 128;
constexpr FslMcWindow kWindow{0x20000000, 0x1000000};
constexpr FslMcGuestIds kIds{7, 0x1234};
constexpr uint32_t kWidths[] = {8, 4, 2, 1};
constexpr uint16_t kCodes[] = {
    kDprcOpen,          kDpmcpOpen,       kDprcClose,  kDprcGetContId,    kDpmngGetVersion,
    kDprcGetApiVersion, kDprcGetAttr,     kDprcSetIrq, kDprcGetIrq,       kDprcSetObjIrq,
    kDprcGetObjIrq,     kDprcGetObjCount, kDprcGetObj, kDprcGetObjRegion, kDprcSetIrqEnable};
constexpr const char* kTypes[] = {"dprc", "dpni",  "dpio",  "dpmcp",
                                  "dpbp", "dpcon", "dpmac", "dpsw"};

class CheckingKernel : public FakeFslMcKernel {
 public:
  absl::Status SetIrqs(int fd, const VfioIrqSet& set) override {
    absl::Status status = FakeFslMcKernel::SetIrqs(fd, set);
    FUZZ_CHECK(status.ok() || absl::IsResourceExhausted(status), "SET_IRQS refused: %s",
               status.message());
    return status;
  }
};

class Slots : public MemorySlotRegistrar {
 public:
  absl::StatusOr<uint32_t> AddMemorySlot(uint64_t gpa, uint64_t size, void*) override {
    FUZZ_CHECK(gpa >= kWindow.base && gpa + size <= kWindow.base + kWindow.size,
               "slot 0x%x outside the window", gpa);
    ++live;
    return next++;
  }
  absl::Status RemoveMemorySlot(uint32_t) override {
    --live;
    return absl::OkStatus();
  }
  uint32_t next = 0;
  int live = 0;
};

// Remembers every irqfd handed out.
class RecordingMsi : public MsiAllocator {
 public:
  absl::StatusOr<std::unique_ptr<MsiVector>> Allocate() override {
    auto vector = inner.Allocate();
    if (vector.ok()) irqfds.insert((*vector)->irqfd());
    return vector;
  }
  FakeMsiAllocator inner;
  std::set<int> irqfds;
};

struct Harness {
  std::shared_ptr<CheckingKernel> kernel = std::make_shared<CheckingKernel>();
  RecordingMsi msi;
  Slots slots;
  Bus bus{"mmio"};
  std::unique_ptr<FslMcContainer> mc;
  std::vector<uint16_t> tokens;  // what OPENs returned
  FakeFslMcGroup& group() { return kernel->group(12); }
};

uint64_t PortalGpa(Harness& h, bool dpmcp) {
  size_t object = 0;
  for (size_t i = 0; dpmcp && i < h.mc->objects().size(); ++i) {
    if (h.mc->objects()[i].kind == McObjectKind::kDpmcp) object = i;
  }
  return h.mc->layout().Find(object, 0)->gpa;
}

void CheckState(Harness& h) {
  for (uint16_t code : {kDprcSetIrq, kDprcSetObjIrq, kDprcGetIrq, kDprcGetObjIrq}) {
    FUZZ_CHECK(!h.group().mc.Saw(code), "MC saw interrupt command 0x%x", code);
  }
  FUZZ_CHECK(h.group().Find("dpio.7")->portal_writes.empty(), "a QBMan portal got an MC write");
  for (const auto& o : h.group().objects) {
    for (int32_t fd : o->triggers) {
      FUZZ_CHECK(fd == -1 || h.msi.irqfds.count(fd), "%s trigger %d is no irqfd of Skiff's",
                 o->name(), fd);
    }
  }
  FUZZ_CHECK(h.slots.live == 3, "%d memory slots", h.slots.live);
}

void CheckResponse(Harness& h, const McCommand& cmd, const McCommand& rsp) {
  if (rsp.status() != kMcOk) return;
  if (cmd.code() == kDprcGetObjRegion) {
    auto request = ParseGetObjRegion(cmd);
    FUZZ_CHECK(request.has_value(), "GET_OBJ_REG answered for an unparsable request");
    const PlacedRegion* placed = nullptr;
    for (size_t i = 0; i < h.mc->objects().size(); ++i) {
      const McObject& o = h.mc->objects()[i];
      if (o.type == request->obj_type && o.id == request->obj_id) {
        placed = h.mc->layout().Find(i, request->region_index);
      }
    }
    FUZZ_CHECK(placed != nullptr, "GET_OBJ_REG answered for %s.%u region %u", request->obj_type,
               request->obj_id, request->region_index);
    const uint64_t addr = rsp.P64(kObjRegionBaseAddr);
    const uint64_t base = addr != 0                                ? addr
                          : placed->use == RegionUse::kMappedQbman ? h.mc->layout().qbman_base
                                                                   : h.mc->layout().mc_base;
    FUZZ_CHECK(base + rsp.P64(kObjRegionBaseOffset) == placed->gpa,
               "GET_OBJ_REG answered 0x%x + 0x%x, the guest slot is 0x%x", addr,
               rsp.P64(kObjRegionBaseOffset), placed->gpa);
  }
  if (cmd.code() == kDprcGetAttr) {
    FUZZ_CHECK(rsp.P16(kAttrIcid) != h.group().mc.icid, "host ICID reached the guest");
  }
  if (cmd.code() == kDprcOpen || cmd.code() == kDpmcpOpen) h.tokens.push_back(rsp.token());
}

McCommand Submit(Harness& h, uint64_t portal, const McCommand& cmd) {
  for (int word = 7; word >= 0; --word) {
    (void)h.bus.Write(portal + 8 * word,
                      std::span<const uint8_t>(cmd.bytes().data() + 8 * word, 8));
  }
  McCommand rsp;
  for (int word = 0; word < 8; ++word) {
    (void)h.bus.Read(portal + 8 * word, std::span<uint8_t>(rsp.bytes().data() + 8 * word, 8));
  }
  return rsp;
}

void Step(Harness& h, FuzzInput& in) {
  switch (in.Below(5)) {
    case 0: {  // raw write anywhere in the MC-portal sub-window
      const uint32_t width = kWidths[in.Below(4)];
      const uint64_t offset = in.Below(h.mc->layout().mc_size - width + 1);
      const uint64_t value = in.Take<uint64_t>();
      (void)h.bus.Write(h.mc->layout().mc_base + offset,
                        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&value), width));
      break;
    }
    case 1: {  // raw read
      const uint32_t width = kWidths[in.Below(4)];
      const uint64_t offset = in.Below(h.mc->layout().mc_size - width + 1);
      uint8_t buf[8];
      (void)h.bus.Read(h.mc->layout().mc_base + offset, std::span<uint8_t>(buf, width));
      break;
    }
    case 2: {  // a whole command
      const bool dpmcp = in.TakeBool();
      const uint8_t pick = in.Take<uint8_t>();
      const uint16_t code =
          pick < 0xf0 ? kCodes[pick % std::size(kCodes)] : in.Take<uint16_t>() >> 4;
      const uint8_t version = static_cast<uint8_t>(in.Below(4));
      uint16_t token = in.Take<uint16_t>();
      if (!h.tokens.empty() && (token & 0x8000) == 0) token = h.tokens[token % h.tokens.size()];
      McCommand cmd = McCommand::Build(code, version, token);
      auto params = in.TakeBytes(56);
      std::copy(params.begin(), params.end(), cmd.bytes().begin() + 8);
      if (in.TakeBool()) {  // a well-formed object reference
        cmd.SetPString16(24, kTypes[in.Below(std::size(kTypes))]);
        if (code == kDprcOpen) cmd.SetP32(0, 2);
      }
      const McCommand rsp = Submit(h, PortalGpa(h, dpmcp), cmd);
      CheckResponse(h, cmd, rsp);
      break;
    }
    case 3:
      h.group().mc.stuck = in.TakeBool();
      break;
    case 4: {  // the MC raises an interrupt
      auto& objects = h.group().objects;
      objects[in.Below(objects.size())]->Raise(static_cast<uint32_t>(in.Below(2)));
      break;
    }
  }
}

void Run(FuzzInput& in) {
  Harness h;
  const uint8_t shape = static_cast<uint8_t>(in.Below(4));
  h.kernel->AddGroup(12, FakeFslMcGroup::Typical(shape & 1 ? 0x40 : 0x10000, 0x10000));
  h.kernel->group(12).pool_size = shape & 2 ? 2 : 256;
  h.kernel->group(12).mc.api_minor = shape & 1 ? 2 : 6;
  HostDprc host{"dprc.2", 2, 12, {}};
  for (const char* name : {"dpbp.1", "dpcon.4", "dpio.7", "dpmac.6", "dpmcp.5", "dpni.3"}) {
    HostMcObject child;
    child.name = name;
    FUZZ_CHECK(SplitObjectName(name, &child.type, &child.id), "%s", name);
    host.children.push_back(child);
  }
  auto container = VfioContainer::Open(h.kernel);
  FUZZ_CHECK(container.ok(), "%s", container.status().message());
  auto mc = FslMcContainer::Open(*container, host);
  FUZZ_CHECK(mc.ok(), "%s", mc.status().message());
  h.mc = *std::move(mc);
  FslMcEnv env;
  env.msi = &h.msi;
  env.slots = &h.slots;
  env.mmio = &h.bus;
  env.ids = kIds;
  absl::Status attached = h.mc->Attach(kWindow, env);
  FUZZ_CHECK(attached.ok(), "%s", attached.message());
  for (int op = 0; op < kMaxOps && !in.empty(); ++op) {
    Step(h, in);
    CheckState(h);
  }
  h.mc.reset();
  for (const auto& o : h.group().objects) {
    for (int32_t fd : o->triggers) FUZZ_CHECK(fd == -1, "%s keeps a trigger", o->name());
  }
  FUZZ_CHECK(h.slots.live == 0, "%d slots left", h.slots.live);
}

}  // namespace
}  // namespace skiff::vfio::fsl_mc

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skiff::fuzz::QuietLogs();
  skiff::fuzz::FuzzInput in(data, size);
  skiff::vfio::fsl_mc::Run(in);
  return 0;
}
