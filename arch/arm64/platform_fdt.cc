#include "arch/arm64/platform_fdt.h"

#include <libfdt.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "arch/arm64/fdt_writer.h"
#include "arch/arm64/layout.h"
#include "boot/arm64_image.h"
#include "devices/pci/intx_router.h"
#include "vmm/status_macros.h"

namespace skiff::arm64 {
namespace {

using fdt::Cells64;
using fdt::FdtWriter;

// include/dt-bindings/interrupt-controller/arm-gic.h and irq.h.
constexpr uint32_t kGicSpi = 0;
constexpr uint32_t kGicPpi = 1;
constexpr uint32_t kIrqLevelHigh = 4;

constexpr size_t kInitialCapacity = 16 * 1024;

// The oldest --dtb version Skiff hands to libfdt (see ValidateFdt).
constexpr uint32_t kMinFdtVersion = 17;

std::string NodeName(const char* name, uint64_t base) {
  return absl::StrFormat("%s@%x", name, base);
}

// GICv2 PPIs carry a CPU target mask in bits 8-15 of the flags cell.
uint32_t PpiFlags(const PlatformDescription& p) {
  if (p.gic == GicKind::kV3) return kIrqLevelHigh;
  const uint32_t cpus = std::min<uint32_t>(p.num_cpus, kGicV2MaxVcpus);
  return kIrqLevelHigh | (((1u << cpus) - 1) << 8);
}

void AddChosen(FdtWriter& w, const PlatformDescription& p) {
  w.BeginNode("chosen");
  if (!p.bootargs.empty()) w.PropertyString("bootargs", p.bootargs);
  // The UART is the console even without console=: earlycon (no argument)
  // and the 8250 driver both follow stdout-path.
  w.PropertyString("stdout-path", "serial0:115200n8");
  if (p.initrd) {
    w.PropertyU64("linux,initrd-start", p.initrd->start);
    w.PropertyU64("linux,initrd-end", p.initrd->end);
  }
  w.EndNode();
  w.BeginNode("aliases");
  w.PropertyString("serial0", "/" + UartNodeName());
  w.EndNode();
}

void AddMemory(FdtWriter& w, const PlatformDescription& p) {
  w.BeginNode(NodeName("memory", kRamBase));
  w.PropertyString("device_type", "memory");
  w.PropertyCells("reg", Cells64({kRamBase, p.ram_size}));
  w.EndNode();
}

void AddCpus(FdtWriter& w, const PlatformDescription& p) {
  w.BeginNode("cpus");
  w.PropertyU32("#address-cells", 1);
  w.PropertyU32("#size-cells", 0);
  for (uint32_t i = 0; i < p.num_cpus; ++i) {
    const uint32_t mpidr = static_cast<uint32_t>(VcpuMpidr(i));
    w.BeginNode(NodeName("cpu", mpidr));
    w.PropertyString("device_type", "cpu");
    w.PropertyString("compatible", "arm,arm-v8");
    w.PropertyString("enable-method", "psci");
    w.PropertyU32("reg", mpidr);
    w.EndNode();
  }
  w.EndNode();
  // KVM implements PSCI in the kernel (KVM_ARM_VCPU_PSCI_0_2): CPU_ON starts
  // the secondaries, SYSTEM_OFF/RESET end the run.
  w.BeginNode("psci");
  w.PropertyStrings("compatible", {"arm,psci-1.0", "arm,psci-0.2"});
  w.PropertyString("method", "hvc");
  w.EndNode();
}

void AddTimer(FdtWriter& w, const PlatformDescription& p) {
  std::vector<uint32_t> cells;
  for (uint32_t ppi : kTimerPpis) {
    cells.insert(cells.end(), {kGicPpi, ppi, PpiFlags(p)});
  }
  w.BeginNode("timer");
  w.PropertyString("compatible", "arm,armv8-timer");
  w.PropertyCells("interrupts", cells);
  w.PropertyEmpty("always-on");
  w.EndNode();
}

void AddGic(FdtWriter& w, const PlatformDescription& p) {
  w.BeginNode(NodeName("interrupt-controller", kGicDistBase));
  w.PropertyU32("phandle", kGicPhandle);
  w.PropertyEmpty("interrupt-controller");
  w.PropertyU32("#interrupt-cells", 3);
  // The MSI frame is a child node addressed like the root.
  w.PropertyU32("#address-cells", 2);
  w.PropertyU32("#size-cells", 2);
  w.PropertyEmpty("ranges");
  if (p.gic == GicKind::kV3) {
    w.PropertyString("compatible", "arm,gic-v3");
    w.PropertyCells("reg", Cells64({kGicDistBase, kGicDistSize, kGicRedistBase,
                                    kGicRedistStride * p.num_cpus}));
    if (p.msi_controller) {
      w.BeginNode(NodeName("msi-controller", kGicItsBase));
      w.PropertyU32("phandle", kMsiPhandle);
      w.PropertyString("compatible", "arm,gic-v3-its");
      w.PropertyEmpty("msi-controller");
      // The one cell is the DeviceID: a PCI function's requester ID.
      w.PropertyU32("#msi-cells", 1);
      w.PropertyCells("reg", Cells64({kGicItsBase, kGicItsSize}));
      w.EndNode();
    }
  } else {
    w.PropertyString("compatible", "arm,cortex-a15-gic");
    w.PropertyCells("reg", Cells64({kGicDistBase, kGicV2DistSize, kGicCpuBase, kGicCpuSize}));
    if (p.msi_controller) {
      w.BeginNode(NodeName("v2m", kGicV2mBase));
      w.PropertyU32("phandle", kMsiPhandle);
      w.PropertyString("compatible", "arm,gic-v2m-frame");
      w.PropertyEmpty("msi-controller");
      w.PropertyCells("reg", Cells64({kGicV2mBase, kGicV2mSize}));
      w.PropertyU32("arm,msi-base-spi", kGicSpiBase + kV2mSpiBase);
      w.PropertyU32("arm,msi-num-spis", kV2mSpiCount);
      w.EndNode();
    }
  }
  w.EndNode();
}

void AddSpi(FdtWriter& w, uint32_t spi) {
  w.PropertyCells("interrupts", {kGicSpi, spi, kIrqLevelHigh});
}

// The power button (the control socket's `shutdown`): a PL061 GPIO
// controller, another AMBA PrimeCell (hence the APB clock), and a
// gpio-keys KEY_POWER on one of its lines, which systemd-logind and acpid
// turn into a poweroff. Kernels without gpio-keys (Debian's cloud kernel)
// still get the GPIO line: userspace can watch it through /dev/gpiochipN,
// and gpio-line-names lets it find the line by name.
void AddPowerKey(FdtWriter& w) {
  w.BeginNode(NodeName("gpio", kGpioBase));
  w.PropertyU32("phandle", kGpioPhandle);
  w.PropertyStrings("compatible", {"arm,pl061", "arm,primecell"});
  w.PropertyCells("reg", Cells64({kGpioBase, kGpioSize}));
  AddSpi(w, kGpioSpi);
  w.PropertyEmpty("gpio-controller");
  // <line flags>
  w.PropertyU32("#gpio-cells", 2);
  std::vector<std::string> names(kGpioLines);
  names[kPowerKeyGpioLine] = "power-button";
  w.PropertyStrings("gpio-line-names", names);
  w.PropertyU32("clocks", kApbClockPhandle);
  w.PropertyString("clock-names", "apb_pclk");
  w.EndNode();

  w.BeginNode("gpio-keys");
  w.PropertyString("compatible", "gpio-keys");
  w.BeginNode("power-button");
  w.PropertyString("label", "Power Button");
  w.PropertyU32("linux,code", kKeyPower);
  constexpr uint32_t kGpioActiveHigh = 0;
  w.PropertyCells("gpios", {kGpioPhandle, kPowerKeyGpioLine, kGpioActiveHigh});
  w.EndNode();
  w.EndNode();
}

void AddPlatformDevices(FdtWriter& w) {
  // The PL031 is an AMBA PrimeCell: Linux's AMBA bus enables its APB clock
  // before reading the ID registers, so the clock must be described.
  w.BeginNode("apb-pclk");
  w.PropertyU32("phandle", kApbClockPhandle);
  w.PropertyString("compatible", "fixed-clock");
  w.PropertyU32("#clock-cells", 0);
  w.PropertyU32("clock-frequency", kApbClockHz);
  w.PropertyString("clock-output-names", "apb_pclk");
  w.EndNode();

  w.BeginNode(UartNodeName());
  w.PropertyString("compatible", "ns16550a");
  w.PropertyCells("reg", Cells64({kUartBase, kUartSize}));
  AddSpi(w, kUartSpi);
  w.PropertyU32("clock-frequency", kUartClockHz);
  // One byte per register, registers at consecutive bytes.
  w.PropertyU32("reg-shift", 0);
  w.PropertyU32("reg-io-width", 1);
  w.EndNode();

  w.BeginNode(NodeName("rtc", kRtcBase));
  w.PropertyStrings("compatible", {"arm,pl031", "arm,primecell"});
  w.PropertyCells("reg", Cells64({kRtcBase, kRtcSize}));
  AddSpi(w, kRtcSpi);
  w.PropertyU32("clocks", kApbClockPhandle);
  w.PropertyString("clock-names", "apb_pclk");
  w.EndNode();

  // No Linux driver: guest userspace writes it through /dev/mem
  // (busybox devmem 0xb020000 32 CODE). Described so tools can find it.
  w.BeginNode(NodeName("exit-device", kExitDeviceBase));
  w.PropertyString("compatible", "skiff,exit-device");
  w.PropertyCells("reg", Cells64({kExitDeviceBase, 4}));
  w.EndNode();

  w.BeginNode(NodeName("pvpanic", kPvpanicBase));
  w.PropertyString("compatible", "qemu,pvpanic-mmio");
  w.PropertyCells("reg", Cells64({kPvpanicBase, 2}));
  w.EndNode();

  AddPowerKey(w);
}

void AddVirtioMmio(FdtWriter& w, const PlatformDescription& p) {
  for (const VirtioMmioNode& dev : p.virtio_mmio) {
    w.BeginNode(NodeName("virtio_mmio", dev.base));
    w.PropertyString("compatible", "virtio,mmio");
    w.PropertyCells("reg", Cells64({dev.base, dev.size}));
    AddSpi(w, dev.spi);
    w.PropertyEmpty("dma-coherent");
    w.EndNode();
  }
}

void AddPci(FdtWriter& w, const PlatformDescription& p) {
  if (!p.pci) return;
  w.BeginNode(NodeName("pcie", kPciEcamBase));
  w.PropertyString("compatible", "pci-host-ecam-generic");
  w.PropertyString("device_type", "pci");
  w.PropertyU32("#address-cells", 3);
  w.PropertyU32("#size-cells", 2);
  w.PropertyU32("#interrupt-cells", 1);
  w.PropertyCells("bus-range", {0, static_cast<uint32_t>(kPciEcamSize >> 20) - 1});
  w.PropertyU32("linux,pci-domain", 0);
  w.PropertyCells("reg", Cells64({kPciEcamBase, kPciEcamSize}));
  // Two non-prefetchable memory windows, identity-mapped (PCI address =
  // CPU address): 32-bit below 4 GiB and 64-bit above. Space code 0x02 is
  // 32-bit memory, 0x03 64-bit (the pci-bus binding's phys.hi ss bits);
  // the prefetchable bit stays clear because the root places every 64-bit
  // BAR, prefetchable or not, in the one high window. Linux reassigns BARs
  // (no linux,pci-probe-only) and puts 64-bit ones above 4 GiB when a
  // window there exists, prefetchable ones included.
  constexpr uint32_t kSpaceMem32 = 0x02000000;
  constexpr uint32_t kSpaceMem64 = 0x03000000;
  struct Window {
    uint32_t space;
    uint64_t base;
    uint64_t size;
  };
  std::vector<uint32_t> ranges;
  for (const Window& win : {Window{kSpaceMem32, kPciMmio32Base, kPciMmio32Size},
                            Window{kSpaceMem64, kPciMmio64Base, kPciMmio64Size}}) {
    ranges.push_back(win.space);
    for (uint32_t c : Cells64({win.base, win.base, win.size})) ranges.push_back(c);
  }
  w.PropertyCells("ranges", ranges);
  // INTx: the slot number's low two bits (devfn bits 11-12 of the
  // unit-address) and the pin pick the line, the swizzle the root uses.
  w.PropertyCells("interrupt-map-mask", {0x3 << 11, 0, 0, 0x7});
  std::vector<uint32_t> map;
  for (uint8_t slot = 0; slot < 4; ++slot) {
    for (uint8_t pin = 1; pin <= 4; ++pin) {
      const uint32_t spi = kPciIntxSpiBase + static_cast<uint32_t>(pci::IntxSwizzle(slot, pin));
      // child unit address (3), child pin (1), parent, parent unit address
      // (the GIC's #address-cells = 2), parent interrupt (3).
      map.insert(map.end(), {static_cast<uint32_t>(slot) << 11, 0, 0, pin, kGicPhandle, 0, 0,
                             kGicSpi, spi, kIrqLevelHigh});
    }
  }
  w.PropertyCells("interrupt-map", map);
  if (p.msi_controller) {
    if (p.gic == GicKind::kV3) {
      // The ITS has #msi-cells = 1, so PCI needs msi-map (requester ID ->
      // DeviceID, here identity): Linux ignores a bare msi-parent for PCI
      // when the controller takes cells.
      w.PropertyCells("msi-map", {0, kMsiPhandle, 0, 0x10000});
    } else {
      w.PropertyU32("msi-parent", kMsiPhandle);
    }
  }
  w.PropertyEmpty("dma-coherent");
  w.EndNode();
}

// fsl-mc containers: the node is written by the fsl-mc code, which knows
// the binding (devices/vfio/fsl_mc/fsl_mc_fdt.h).
void AddFslMc(FdtWriter& w, const PlatformDescription& p) {
  for (const vfio::fsl_mc::FslMcNodeParams& mc : p.fsl_mc) {
    w.Raw([&mc](void* fdt) { return vfio::fsl_mc::WriteFslMcNode(fdt, mc); });
  }
}

absl::StatusOr<std::vector<uint8_t>> BuildOnce(const PlatformDescription& p, size_t capacity) {
  FdtWriter w(capacity);
  w.BeginNode("");
  w.PropertyString("compatible", "skiff,arm64-virt");
  w.PropertyString("model", "Skiff arm64 virtual machine");
  w.PropertyU32("#address-cells", 2);
  w.PropertyU32("#size-cells", 2);
  w.PropertyU32("interrupt-parent", kGicPhandle);
  AddChosen(w, p);
  AddMemory(w, p);
  AddCpus(w, p);
  AddTimer(w, p);
  AddGic(w, p);
  AddPlatformDevices(w);
  AddVirtioMmio(w, p);
  AddPci(w, p);
  AddFslMc(w, p);
  w.EndNode();
  return w.Finish();
}

// Walks the structure block's tokens (devicetree specification 5.4) with
// 64-bit offsets, so that only a block whose every token lies inside it
// and moves forward reaches libfdt. libfdt 1.6.1's fdt_next_tag adds a
// property's 32-bit length to an int offset: a length of 0xfffffff4 wraps
// the offset back onto the same token, and fdt_check_full loops forever
// (found by the dtb fuzz target). The header must have passed
// fdt_check_header, with totalsize within the blob, and be version 17.
absl::Status CheckStructureTokens(std::span<const uint8_t> blob) {
  const void* fdt = blob.data();
  const uint64_t begin = fdt_off_dt_struct(fdt);
  const uint64_t end = begin + fdt_size_dt_struct(fdt);  // version 17 and later
  if (end > fdt_totalsize(fdt)) {
    return absl::InvalidArgumentError("the structure block lies outside the tree");
  }
  auto read_u32 = [&](uint64_t offset) {
    return uint32_t{blob[offset]} << 24 | uint32_t{blob[offset + 1]} << 16 |
           uint32_t{blob[offset + 2]} << 8 | uint32_t{blob[offset + 3]};
  };
  // Tokens are 4-byte aligned from the start of the block.
  auto align = [&](uint64_t offset) { return begin + ((offset - begin + 3) & ~uint64_t{3}); };
  uint64_t at = begin;
  while (true) {
    if (at > end || end - at < 4) {
      return absl::InvalidArgumentError("the structure block ends without FDT_END");
    }
    const uint32_t token = read_u32(at);
    at += 4;
    switch (token) {
      case FDT_BEGIN_NODE: {
        const auto name_end = std::find(blob.begin() + at, blob.begin() + end, 0);
        if (name_end == blob.begin() + end) {
          return absl::InvalidArgumentError("a node name runs past the structure block");
        }
        at = align(static_cast<uint64_t>(name_end - blob.begin()) + 1);
        break;
      }
      case FDT_PROP: {
        if (end - at < 8) return absl::InvalidArgumentError("a property header is cut off");
        const uint32_t length = read_u32(at);
        at += 8;
        if (length > end - at) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "a property of %u bytes at offset %d runs past the structure block", length,
              at - 12));
        }
        at = align(at + length);
        break;
      }
      case FDT_END_NODE:
      case FDT_NOP:
        break;
      case FDT_END:
        return absl::OkStatus();
      default:
        return absl::InvalidArgumentError(
            absl::StrFormat("unknown token 0x%x at offset %d", token, at - 4));
    }
  }
}

}  // namespace

std::string UartNodeName() { return NodeName("serial", kUartBase); }

absl::StatusOr<std::vector<uint8_t>> BuildPlatformFdt(const PlatformDescription& platform) {
  if (platform.num_cpus == 0 || platform.num_cpus > kMaxVcpus) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%u vCPUs: the arm64 platform holds 1 to %u", platform.num_cpus,
                        kMaxVcpus));
  }
  if (!platform.fsl_mc.empty() &&
      (platform.gic != GicKind::kV3 || !platform.msi_controller)) {
    // The guest's fsl-mc bus takes its MSI domain from an ITS only.
    return absl::FailedPreconditionError(
        "fsl-mc containers need a GICv3 ITS in the guest; this host's vGIC has none");
  }
  // A long command line or many CPUs may need more room: grow and retry.
  for (size_t capacity = kInitialCapacity; capacity <= boot::kArm64DtbMaxSize; capacity *= 2) {
    absl::StatusOr<std::vector<uint8_t>> blob = BuildOnce(platform, capacity);
    if (blob.ok() || !absl::StrContains(blob.status().message(), fdt_strerror(-FDT_ERR_NOSPACE))) {
      return blob;
    }
  }
  return absl::InvalidArgumentError(
      "the device tree would exceed the 2 MiB arm64 kernels accept (is --cmdline that long?)");
}

absl::Status ValidateFdt(std::span<const uint8_t> blob, const std::string& what) {
  if (blob.size() < sizeof(fdt_header)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %d bytes is too small for a device tree", what, blob.size()));
  }
  int err = fdt_check_header(blob.data());
  if (err != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: not a valid device tree blob (%s)", what, fdt_strerror(err)));
  }
  if (fdt_totalsize(blob.data()) > blob.size()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: truncated: the header says %u bytes, the file has %d", what,
                        fdt_totalsize(blob.data()), blob.size()));
  }
  if (fdt_totalsize(blob.data()) > boot::kArm64DtbMaxSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %u bytes; arm64 kernels accept a device tree of at most 2 MiB", what,
        fdt_totalsize(blob.data())));
  }
  // fdt_check_header takes versions from 2, but libfdt 1.6.1 checks less
  // of an older tree (found by the dtb fuzz target): before 16,
  // fdt_check_full dereferences a null name (fdt_get_name has no answer
  // for such a root); before 17, property names are checked against
  // totalsize rather than the strings block, which fdt_open_into then
  // cuts them off from. dtc writes version 17.
  if (fdt_version(blob.data()) < kMinFdtVersion) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: device tree version %u; Skiff takes version %u or later (dtc writes 17)", what,
        fdt_version(blob.data()), kMinFdtVersion));
  }
  if (absl::Status tokens = CheckStructureTokens(blob); !tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: corrupt device tree (%s)", what, tokens.message()));
  }
  err = fdt_check_full(blob.data(), blob.size());
  if (err != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: corrupt device tree (%s)", what, fdt_strerror(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> PatchUserFdt(std::span<const uint8_t> blob,
                                                  const std::string& bootargs,
                                                  std::optional<InitrdRange> initrd) {
  // Checked here again, whole (fdt_check_full against the blob's size), not
  // only the header: libfdt's write functions trust the tree, and
  // fdt_open_into on a tree whose reservation map runs off its end
  // memmove()s a negative size (found by the dtb fuzz target).
  RETURN_IF_ERROR(ValidateFdt(blob, "--dtb"));
  const size_t total = fdt_totalsize(blob.data());
  if (bootargs.empty() && !initrd) {
    return std::vector<uint8_t>(blob.begin(), blob.begin() + total);  // as given
  }
  // Room for /chosen, three properties and the command line.
  const size_t capacity = total + bootargs.size() + 1024;
  if (capacity > boot::kArm64DtbMaxSize) {
    return absl::InvalidArgumentError(
        "--dtb: with Skiff's /chosen entries the tree would exceed the 2 MiB arm64 kernels accept");
  }
  std::vector<uint8_t> out(capacity, 0);
  int err = fdt_open_into(blob.data(), out.data(), static_cast<int>(out.size()));
  int chosen = err < 0 ? err : fdt_path_offset(out.data(), "/chosen");
  if (chosen == -FDT_ERR_NOTFOUND) chosen = fdt_add_subnode(out.data(), 0, "chosen");
  err = chosen;
  if (err >= 0 && !bootargs.empty()) {
    err = fdt_setprop_string(out.data(), chosen, "bootargs", bootargs.c_str());
  }
  if (err >= 0 && initrd) {
    err = fdt_setprop_u64(out.data(), chosen, "linux,initrd-start", initrd->start);
    if (err >= 0) err = fdt_setprop_u64(out.data(), chosen, "linux,initrd-end", initrd->end);
  }
  if (err >= 0) err = fdt_pack(out.data());
  if (err < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--dtb: cannot update /chosen: %s", fdt_strerror(err)));
  }
  out.resize(fdt_totalsize(out.data()));
  return out;
}

}  // namespace skiff::arm64
