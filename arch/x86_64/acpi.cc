#include "arch/x86_64/acpi.h"

#include <cstring>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "arch/x86_64/aml.h"
#include "arch/x86_64/layout.h"
#include "vmm/status_macros.h"

namespace skiff::x86 {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr char kOemId[] = "SKIFF ";         // 6 bytes
constexpr char kOemTableId[] = "SKIFFVM ";  // 8 bytes
constexpr char kCreatorId[] = "SKIF";       // 4 bytes
constexpr uint32_t kOemRevision = 1;
constexpr uint32_t kCreatorRevision = 1;

// Header offsets common to every system description table.
constexpr uint64_t kLengthOffset = 4;
constexpr uint64_t kChecksumOffset = 9;

// FADT (ACPI 6.x table 5.9).
constexpr uint8_t kFadtRevision = 6;
constexpr uint8_t kFadtMinorVersion = 5;
constexpr uint64_t kFadtSciInt = 46;
constexpr uint64_t kFadtIapcBootArch = 109;
constexpr uint64_t kFadtFlags = 112;
constexpr uint64_t kFadtResetReg = 116;
constexpr uint64_t kFadtResetValue = 128;
constexpr uint64_t kFadtMinorVersionOffset = 131;
constexpr uint64_t kFadtXDsdt = 140;
constexpr uint64_t kFadtSleepControlReg = 244;
constexpr uint64_t kFadtSleepStatusReg = 256;
constexpr uint64_t kFadtHypervisorVendor = 268;
constexpr uint16_t kBootArchVgaNotPresent = 1 << 2;
constexpr uint16_t kBootArchCmosRtcNotPresent = 1 << 5;
constexpr uint32_t kFadtResetRegSup = 1 << 10;
constexpr uint32_t kFadtHwReducedAcpi = 1 << 20;

// Generic Address Structure.
constexpr uint8_t kGasSystemIo = 1;
constexpr uint8_t kGasAccessByte = 1;

// MADT (ACPI 6.x section 5.2.12).
constexpr uint8_t kMadtRevision = 5;
constexpr uint32_t kMadtPcatCompat = 1;
constexpr uint8_t kMadtLocalApic = 0;
constexpr uint8_t kMadtIoApic = 1;
constexpr uint32_t kLocalApicEnabled = 1;
constexpr uint8_t kIoapicId = 0;

constexpr uint8_t kDsdtRevision = 2;  // 2+: AML integers are 64-bit
constexpr uint8_t kXsdtRevision = 1;
constexpr uint8_t kMcfgRevision = 1;
constexpr uint8_t kRsdpRevision = 2;
constexpr uint64_t kRsdpV1Size = 20;  // the part the first checksum covers
constexpr uint64_t kTableAlignment = 8;

void PutLe(Bytes& out, uint64_t offset, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[offset + i] = (value >> (8 * i)) & 0xff;
}
void AppendLe(Bytes& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back((value >> (8 * i)) & 0xff);
}
void PutChars(Bytes& out, uint64_t offset, std::string_view text) {
  std::memcpy(out.data() + offset, text.data(), text.size());
}

// A table header with length and checksum left to FinishTable().
Bytes TableHeader(std::string_view signature, uint8_t revision) {
  Bytes out(kAcpiTableHeaderSize, 0);
  PutChars(out, 0, signature);
  out[8] = revision;
  PutChars(out, 10, kOemId);
  PutChars(out, 16, kOemTableId);
  PutLe(out, 24, kOemRevision, 4);
  PutChars(out, 28, kCreatorId);
  PutLe(out, 32, kCreatorRevision, 4);
  return out;
}

Bytes FinishTable(Bytes table) {
  PutLe(table, kLengthOffset, table.size(), 4);
  table[kChecksumOffset] = 0;
  table[kChecksumOffset] = AcpiChecksum(table);
  return table;
}

// An 8-bit SystemIO register, byte access.
void PutIoGas(Bytes& out, uint64_t offset, uint16_t port) {
  out[offset] = kGasSystemIo;
  out[offset + 1] = 8;  // register bit width
  out[offset + 2] = 0;  // bit offset
  out[offset + 3] = kGasAccessByte;
  PutLe(out, offset + 4, port, 8);
}

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) & ~(alignment - 1);
}

aml::Result Com1() {
  return aml::Device(
      "COM1", {aml::Name("_HID", aml::EisaId("PNP0501")),
               aml::Name("_UID", aml::Integer(0)),
               aml::Name("_CRS", aml::ResourceTemplate(
                                     {aml::IoPort(kCom1Port, kCom1Port, 0, 8),
                                      aml::IrqNoFlags(kCom1Irq)}))});
}

// QEMU's pvpanic ISA device, which Linux's pvpanic driver binds by _HID.
aml::Result Pvpanic() {
  return aml::Device(
      "PEVT", {aml::Name("_HID", aml::String("QEMU0001")),
               aml::Name("_CRS", aml::ResourceTemplate({aml::IoPort(
                                     kPvpanicPort, kPvpanicPort, 1, 1)}))});
}

// Skiff's exit device, so the guest's OS knows the register is taken (and
// tests can find it). No driver binds it: userspace writes it via /dev/mem,
// which the kernel allows for MMIO no driver has claimed.
aml::Result ExitDevice() {
  return aml::Device(
      "SKEX", {aml::Name("_HID", aml::String(kExitDeviceHid)),
               aml::Name("_UID", aml::Integer(0)),
               aml::Name("_CRS", aml::ResourceTemplate({aml::Memory32Fixed(
                                     true, static_cast<uint32_t>(kExitDeviceAddress),
                                     kExitDeviceRegisterSize)}))});
}

aml::Result VirtioMmio(size_t index, const AcpiMmioDevice& dev) {
  if (dev.size == 0 || dev.base > UINT32_MAX || dev.size > UINT32_MAX ||
      dev.base + dev.size - 1 > UINT32_MAX) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "virtio-mmio device %d at 0x%X (0x%X bytes): the DSDT can only "
        "describe a non-empty window below 4 GiB",
        index, dev.base, dev.size));
  }
  const uint32_t gsi[] = {dev.gsi};
  return aml::Device(
      absl::StrFormat("VR%02X", index),
      {aml::Name("_HID", aml::String("LNRO0005")),
       aml::Name("_UID", aml::Integer(index)),
       aml::Name("_CRS",
                 aml::ResourceTemplate(
                     {aml::Memory32Fixed(true, static_cast<uint32_t>(dev.base),
                                         static_cast<uint32_t>(dev.size)),
                      aml::ExtendedInterrupt(aml::Trigger::kLevel,
                                             aml::Polarity::kActiveHigh,
                                             /*shared=*/false, gsi)}))});
}

// The PCI Firmware spec's ECAM: 1 MiB of configuration space per bus.
constexpr uint64_t kEcamBytesPerBus = uint64_t{1} << 20;
constexpr uint32_t kPciSlots = 32;
constexpr uint32_t kPciIntxPins = 4;
constexpr uint32_t kIoapicPins = 24;  // KVM's in-kernel I/O APIC

// \_SB.PCI0: the root bridge, its decode windows and INTx routing.
aml::Result PciHostBridge(const PciHostInfo& host) {
  if (host.bus_start > host.bus_end) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PCI host bridge: bus range %d-%d is empty",
                        host.bus_start, host.bus_end));
  }
  if (host.intx_gsi_base + kPciIntxPins > kIoapicPins) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "PCI host bridge: INTx GSIs %d-%d are past the I/O APIC's %d pins",
        host.intx_gsi_base, host.intx_gsi_base + kPciIntxPins - 1,
        kIoapicPins));
  }
  auto last = [](const AcpiWindow& w, uint64_t limit,
                 const char* what) -> absl::StatusOr<uint64_t> {
    uint64_t end;
    if (w.size == 0 || __builtin_add_overflow(w.base, w.size - 1, &end) ||
        end > limit) {
      return absl::InvalidArgumentError(
          absl::StrFormat("PCI host bridge: %s window at 0x%X (0x%X bytes) is "
                          "empty or ends past 0x%X",
                          what, w.base, w.size, limit));
    }
    return end;
  };
  std::vector<aml::Result> resources = {
      aml::WordBusNumber(host.bus_start, host.bus_end)};
  if (host.io) {
    ASSIGN_OR_RETURN(uint64_t end, last(*host.io, 0xffff, "I/O"));
    resources.push_back(aml::WordIo(host.io->base, end));
  }
  ASSIGN_OR_RETURN(uint64_t end32,
                   last(host.mmio32, UINT32_MAX, "32-bit MMIO"));
  resources.push_back(aml::DWordMemory(host.mmio32.base, end32));
  if (host.mmio64) {
    ASSIGN_OR_RETURN(uint64_t end64,
                     last(*host.mmio64, UINT64_MAX, "64-bit MMIO"));
    resources.push_back(aml::QWordMemory(host.mmio64->base, end64));
  }

  // _PRT: one entry per slot and pin, {address (slot, any function), pin,
  // Zero (no link device: the last field is a GSI), GSI}.
  std::vector<aml::Result> routes;
  for (uint32_t slot = 0; slot < kPciSlots; ++slot) {
    for (uint32_t pin = 0; pin < kPciIntxPins; ++pin) {
      routes.push_back(aml::Package(
          {aml::Integer(uint64_t{slot} << 16 | 0xffff), aml::Integer(pin),
           aml::Integer(0),
           aml::Integer(host.intx_gsi_base + (slot + pin) % kPciIntxPins)}));
    }
  }
  return aml::Device(
      "PCI0",
      {aml::Name("_HID", aml::EisaId("PNP0A08")),  // PCI Express root bridge
       aml::Name("_CID", aml::EisaId("PNP0A03")),  // PCI root bridge
       aml::Name("_UID", aml::Integer(0)), aml::Name("_SEG", aml::Integer(0)),
       aml::Name("_BBN", aml::Integer(host.bus_start)),
       aml::Name("_CRS", aml::ResourceTemplate(resources)),
       aml::Name("_PRT", aml::Package(routes))});
}

// A motherboard-resources device claiming the ECAM window: Linux uses
// MMCONFIG only if ACPI (PNP0C01/PNP0C02) or e820 reserves it, and checks
// e820 only when port 0xCF8 works.
aml::Result EcamReservation(const EcamInfo& ecam) {
  // MCFG's base is where bus 0 would be; the window starts at start_bus.
  const uint64_t buses = uint64_t{ecam.end_bus} - ecam.start_bus + 1;
  const uint64_t base = ecam.base + ecam.start_bus * kEcamBytesPerBus;
  if (ecam.start_bus > ecam.end_bus ||
      base + buses * kEcamBytesPerBus - 1 > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrFormat("PCI ECAM at 0x%X for buses %d-%d: the DSDT reserves "
                        "windows below 4 GiB only",
                        ecam.base, ecam.start_bus, ecam.end_bus));
  }
  return aml::Device(
      "PRES",
      {aml::Name("_HID", aml::EisaId("PNP0C02")),
       aml::Name("_UID", aml::Integer(1)),
       aml::Name("_CRS",
                 aml::ResourceTemplate({aml::Memory32Fixed(
                     true, static_cast<uint32_t>(base),
                     static_cast<uint32_t>(buses * kEcamBytesPerBus))}))});
}

}  // namespace

uint8_t AcpiChecksum(std::span<const uint8_t> bytes) {
  const uint8_t sum = std::accumulate(bytes.begin(), bytes.end(), uint8_t{0});
  return static_cast<uint8_t>(0x100 - sum);
}

Bytes BuildRsdp(uint64_t xsdt_addr) {
  Bytes out(kRsdpSize, 0);
  PutChars(out, 0, "RSD PTR ");
  PutChars(out, 9, kOemId);
  out[15] = kRsdpRevision;
  // RsdtAddress (16) stays 0: revision-2 OSPMs, Linux included, use the XSDT.
  PutLe(out, 20, kRsdpSize, 4);
  PutLe(out, 24, xsdt_addr, 8);
  out[8] = AcpiChecksum(std::span(out).first(kRsdpV1Size));
  out[32] = AcpiChecksum(out);
  return out;
}

Bytes BuildXsdt(std::span<const uint64_t> table_addrs) {
  Bytes out = TableHeader("XSDT", kXsdtRevision);
  for (uint64_t addr : table_addrs) AppendLe(out, addr, 8);
  return FinishTable(std::move(out));
}

Bytes BuildFadt(uint64_t dsdt_addr) {
  Bytes out = TableHeader("FACP", kFadtRevision);
  out.resize(kFadtSize, 0);
  // Hardware-reduced: no PM1/GPE blocks, no FACS, no SMI; the SCI number is
  // unused by Linux here but kept at the conventional ISA IRQ 9.
  PutLe(out, kFadtSciInt, kAcpiSciIrq, 2);
  PutLe(out, kFadtIapcBootArch,
        kBootArchVgaNotPresent | kBootArchCmosRtcNotPresent, 2);
  PutLe(out, kFadtFlags, kFadtHwReducedAcpi | kFadtResetRegSup, 4);
  PutIoGas(out, kFadtResetReg, kAcpiResetPort);
  out[kFadtResetValue] = kAcpiResetValue;
  out[kFadtMinorVersionOffset] = kFadtMinorVersion;
  // Only X_DSDT: ACPICA warns when the 32-bit DSDT field is also set.
  PutLe(out, kFadtXDsdt, dsdt_addr, 8);
  PutIoGas(out, kFadtSleepControlReg, kAcpiSleepControlPort);
  PutIoGas(out, kFadtSleepStatusReg, kAcpiSleepStatusPort);
  PutChars(out, kFadtHypervisorVendor, "SKIFF");
  return FinishTable(std::move(out));
}

absl::StatusOr<Bytes> BuildMadt(uint32_t num_cpus) {
  if (num_cpus == 0 || num_cpus > kAcpiMaxCpus) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d vCPUs: the MADT describes 1-%d (8-bit xAPIC IDs; 255 is the "
        "broadcast ID)",
        num_cpus, kAcpiMaxCpus));
  }
  Bytes out = TableHeader("APIC", kMadtRevision);
  AppendLe(out, kLapicAddress, 4);
  // PCAT_COMPAT: KVM's in-kernel irqchip includes the dual 8259s.
  AppendLe(out, kMadtPcatCompat, 4);
  for (uint32_t cpu = 0; cpu < num_cpus; ++cpu) {
    out.push_back(kMadtLocalApic);
    out.push_back(8);    // entry length
    out.push_back(cpu);  // ACPI processor UID
    out.push_back(cpu);  // APIC ID, as KVM assigns vCPU index = APIC ID
    AppendLe(out, kLocalApicEnabled, 4);
  }
  out.push_back(kMadtIoApic);
  out.push_back(12);  // entry length
  out.push_back(kIoapicId);
  out.push_back(0);  // reserved
  AppendLe(out, kIoapicAddress, 4);
  AppendLe(out, 0, 4);  // global system interrupt base
  // No Interrupt Source Overrides: KVM's default GSI routing wires ISA IRQ n
  // to I/O APIC pin n (the in-kernel PIT included), which is exactly what an
  // OS assumes when no override is given.
  return FinishTable(std::move(out));
}

// A power button for a hardware-reduced machine (ACPI 6.x 4.8.2.2.1.2 and
// 5.6.9): no fixed PWRBTN_STS bit exists, so the Generic Event Device
// (ACPI0013) takes an interrupt and its _EVT notifies the control-method
// power button (PNP0C0C) with 0x80 ("button pressed"). Its only event is
// the power button, so _EVT needs no status register.
std::vector<aml::Result> PowerButton() {
  const uint32_t gsi[] = {kAcpiGedIrq};
  return {
      aml::Device("PWRB", {aml::Name("_HID", aml::EisaId("PNP0C0C")),
                           aml::Name("_UID", aml::Integer(0))}),
      aml::Device(
          "GED0",
          {aml::Name("_HID", aml::String("ACPI0013")), aml::Name("_UID", aml::Integer(0)),
           aml::Name("_CRS", aml::ResourceTemplate({aml::ExtendedInterrupt(
                                 aml::Trigger::kEdge, aml::Polarity::kActiveHigh,
                                 /*shared=*/false, gsi)})),
           aml::Method("_EVT", 1, /*serialized=*/true, {aml::Notify("\\_SB.PWRB", 0x80)})}),
  };
}

absl::StatusOr<Bytes> BuildDsdt(const AcpiConfig& config) {
  if (config.virtio_mmio.size() > 256) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d virtio-mmio devices: the DSDT names at most 256 (VR00-VRFF)",
        config.virtio_mmio.size()));
  }
  std::vector<aml::Result> devices = {Com1(), Pvpanic(), ExitDevice()};
  for (aml::Result& device : PowerButton()) devices.push_back(std::move(device));
  for (size_t i = 0; i < config.virtio_mmio.size(); ++i) {
    devices.push_back(VirtioMmio(i, config.virtio_mmio[i]));
  }
  if (config.pci_host) devices.push_back(PciHostBridge(*config.pci_host));
  if (config.pci_ecam) devices.push_back(EcamReservation(*config.pci_ecam));
  ASSIGN_OR_RETURN(Bytes sb, aml::Scope("\\_SB", devices));
  // Hardware-reduced poweroff: the OS writes SLP_TYP from \_S5 (with SLP_EN)
  // to SLEEP_CONTROL_REG.
  ASSIGN_OR_RETURN(
      Bytes s5,
      aml::Name("_S5", aml::Package({aml::Integer(kAcpiS5SleepType),
                                     aml::Integer(kAcpiS5SleepType)})));
  Bytes out = TableHeader("DSDT", kDsdtRevision);
  out.insert(out.end(), sb.begin(), sb.end());
  out.insert(out.end(), s5.begin(), s5.end());
  return FinishTable(std::move(out));
}

absl::StatusOr<Bytes> BuildMcfg(const EcamInfo& ecam) {
  if (ecam.start_bus > ecam.end_bus || ecam.base % (1 << 20) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "PCI ECAM at 0x%X for buses %d-%d: need a 1 MiB-aligned base and "
        "start bus <= end bus",
        ecam.base, ecam.start_bus, ecam.end_bus));
  }
  Bytes out = TableHeader("MCFG", kMcfgRevision);
  AppendLe(out, 0, 8);  // reserved
  AppendLe(out, ecam.base, 8);
  AppendLe(out, 0, 2);  // PCI segment group
  out.push_back(ecam.start_bus);
  out.push_back(ecam.end_bus);
  AppendLe(out, 0, 4);  // reserved
  return FinishTable(std::move(out));
}

absl::StatusOr<Bytes> BuildAcpiTables(const AcpiConfig& config,
                                      uint64_t base_gpa) {
  if (base_gpa % 16 != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ACPI tables at 0x%X: the RSDP must be 16-byte aligned", base_gpa));
  }
  ASSIGN_OR_RETURN(Bytes madt, BuildMadt(config.num_cpus));
  ASSIGN_OR_RETURN(Bytes dsdt, BuildDsdt(config));
  std::optional<Bytes> mcfg;
  if (config.pci_ecam) {
    ASSIGN_OR_RETURN(mcfg, BuildMcfg(*config.pci_ecam));
  }

  // Lay out RSDP, XSDT, FADT, MADT, [MCFG], DSDT; offsets first, since the
  // pointer tables need the addresses of what follows them.
  const size_t num_xsdt_entries = mcfg ? 3 : 2;
  const uint64_t xsdt_off = AlignUp(kRsdpSize, kTableAlignment);
  const uint64_t fadt_off = AlignUp(
      xsdt_off + kAcpiTableHeaderSize + 8 * num_xsdt_entries, kTableAlignment);
  const uint64_t madt_off = AlignUp(fadt_off + kFadtSize, kTableAlignment);
  uint64_t next = AlignUp(madt_off + madt.size(), kTableAlignment);
  const uint64_t mcfg_off = next;
  if (mcfg) next = AlignUp(next + mcfg->size(), kTableAlignment);
  const uint64_t dsdt_off = next;
  const uint64_t total = dsdt_off + dsdt.size();
  if (total > kAcpiTablesMaxSize) {
    return absl::InvalidArgumentError(
        absl::StrFormat("ACPI tables need %d bytes; the reserved area holds %d",
                        total, kAcpiTablesMaxSize));
  }
  if (base_gpa > UINT64_MAX - total) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ACPI tables at 0x%X overflow the address space", base_gpa));
  }

  std::vector<uint64_t> xsdt_entries = {base_gpa + fadt_off,
                                        base_gpa + madt_off};
  if (mcfg) xsdt_entries.push_back(base_gpa + mcfg_off);

  Bytes blob(total, 0);
  auto place = [&blob](uint64_t offset, const Bytes& table) {
    std::memcpy(blob.data() + offset, table.data(), table.size());
  };
  place(0, BuildRsdp(base_gpa + xsdt_off));
  place(xsdt_off, BuildXsdt(xsdt_entries));
  place(fadt_off, BuildFadt(base_gpa + dsdt_off));
  place(madt_off, madt);
  if (mcfg) place(mcfg_off, *mcfg);
  place(dsdt_off, dsdt);
  return blob;
}

}  // namespace skiff::x86
