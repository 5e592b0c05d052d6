// The virtio-mmio register window under a hostile driver: a sequence of
// (offset, width, value) reads and writes from the input, mixed with
// well-formed initialisation sequences (so activation is reached often)
// and device-side events (queue and config interrupts, NEEDS_RESET, an
// activation the device refuses, interrupts from a previous activation).
//
// Input: [device shape] then ops, each [kind] [operands...].
//
// Invariants beyond "no crash": those of CheckingVirtioDevice, and after
// every op: MAGIC and VERSION read right; the interrupt line is asserted
// exactly while INTERRUPT_STATUS is non-zero; an active device means
// DRIVER_OK is set and status 0 means the device was reset; an interrupt
// from before the last reset changes nothing.
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <cstdint>
#include <cstring>
#include <memory>

#include "devices/virtio/mmio_transport.h"
#include "tests/fuzz/checking_virtio_device.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/unit/fake_guest_memory.h"
#include "tests/unit/fake_irq_line.h"
#include "vmm/event_loop.h"

namespace skiff::virtio {
namespace {

using fuzz::FuzzInput;
using fuzzing::CheckingVirtioDevice;

constexpr uint64_t kBase = 0xd0000000;
constexpr uint64_t kRamSize = 0x10000;
constexpr int kMaxOps = 256;

// Every register offset of the version-2 layout, legacy ones included.
constexpr uint32_t kRegisters[] = {
    VIRTIO_MMIO_MAGIC_VALUE,
    VIRTIO_MMIO_VERSION,
    VIRTIO_MMIO_DEVICE_ID,
    VIRTIO_MMIO_VENDOR_ID,
    VIRTIO_MMIO_DEVICE_FEATURES,
    VIRTIO_MMIO_DEVICE_FEATURES_SEL,
    VIRTIO_MMIO_DRIVER_FEATURES,
    VIRTIO_MMIO_DRIVER_FEATURES_SEL,
    VIRTIO_MMIO_GUEST_PAGE_SIZE,
    VIRTIO_MMIO_QUEUE_SEL,
    VIRTIO_MMIO_QUEUE_NUM_MAX,
    VIRTIO_MMIO_QUEUE_NUM,
    VIRTIO_MMIO_QUEUE_ALIGN,
    VIRTIO_MMIO_QUEUE_PFN,
    VIRTIO_MMIO_QUEUE_READY,
    VIRTIO_MMIO_QUEUE_NOTIFY,
    VIRTIO_MMIO_INTERRUPT_STATUS,
    VIRTIO_MMIO_INTERRUPT_ACK,
    VIRTIO_MMIO_STATUS,
    VIRTIO_MMIO_QUEUE_DESC_LOW,
    VIRTIO_MMIO_QUEUE_DESC_HIGH,
    VIRTIO_MMIO_QUEUE_AVAIL_LOW,
    VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
    VIRTIO_MMIO_QUEUE_USED_LOW,
    VIRTIO_MMIO_QUEUE_USED_HIGH,
    VIRTIO_MMIO_SHM_SEL,
    VIRTIO_MMIO_SHM_LEN_LOW,
    VIRTIO_MMIO_SHM_LEN_HIGH,
    VIRTIO_MMIO_SHM_BASE_LOW,
    VIRTIO_MMIO_SHM_BASE_HIGH,
    VIRTIO_MMIO_CONFIG_GENERATION,
    VIRTIO_MMIO_CONFIG,
};
constexpr uint8_t kStatuses[] = {
    0,
    VIRTIO_CONFIG_S_ACKNOWLEDGE,
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
    VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK |
        VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FAILED,
    VIRTIO_CONFIG_S_NEEDS_RESET,
};
constexpr size_t kWidths[] = {4, 4, 4, 1, 2, 8, 3};

class Harness {
 public:
  Harness(FuzzInput& in, std::shared_ptr<CheckingVirtioDevice> device,
          std::shared_ptr<MmioTransport> transport, std::shared_ptr<FakeIrqLine> irq)
      : in_(in),
        device_(std::move(device)),
        transport_(std::move(transport)),
        irq_(std::move(irq)) {}

  void Step() {
    switch (in_.Below(8)) {
      case 0:
      case 1:
      case 2: {
        // One operand per statement: argument order is unspecified, and the
        // input must mean the same to every compiler.
        const uint64_t offset = Offset();
        const size_t width = kWidths[in_.Below(std::size(kWidths))];
        Write(offset, width, Value());
        break;
      }
      case 3: {
        const uint64_t offset = Offset();
        Read(offset, kWidths[in_.Below(std::size(kWidths))]);
        break;
      }
      case 4:
        Initialise();
        break;
      case 5:
        DeviceEvent();
        break;
      case 6: {
        // Device configuration space, any width, around its end.
        const uint64_t offset = VIRTIO_MMIO_CONFIG + in_.Below(0x20);
        const size_t width = kWidths[in_.Below(std::size(kWidths))];
        if (in_.TakeBool()) {
          Write(offset, width, in_.Take<uint64_t>());
        } else {
          Read(offset, width);
        }
        break;
      }
      default:
        Write(VIRTIO_MMIO_STATUS, 4, kStatuses[in_.Below(std::size(kStatuses))]);
        break;
    }
    CheckState();
  }

 private:
  uint64_t Offset() {
    if (in_.Below(8) == 0) return in_.Below(kVirtioMmioSlotSize);  // anywhere, unaligned too
    return kRegisters[in_.Below(std::size(kRegisters))];
  }
  uint64_t Value() {
    switch (in_.Below(4)) {
      case 0:
        return in_.Take<uint64_t>();
      case 1:
        return kStatuses[in_.Below(std::size(kStatuses))];
      default:
        return in_.Below(0x200);  // selectors, sizes, small addresses
    }
  }

  void Write(uint64_t offset, size_t width, uint64_t value) {
    if (offset + width > kVirtioMmioSlotSize) return;  // the bus never passes these
    uint8_t bytes[8];
    std::memcpy(bytes, &value, sizeof(bytes));
    transport_->Write(offset, std::span<const uint8_t>(bytes, width));
  }
  uint64_t Read(uint64_t offset, size_t width) {
    if (offset + width > kVirtioMmioSlotSize) return 0;
    uint8_t bytes[8] = {};
    transport_->Read(offset, std::span<uint8_t>(bytes, width));
    uint64_t value = 0;
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  }
  uint32_t Reg(uint32_t offset) { return static_cast<uint32_t>(Read(offset, 4)); }

  // A driver doing everything right, with a few values from the input.
  void Initialise() {
    Write(VIRTIO_MMIO_STATUS, 4, 0);
    Write(VIRTIO_MMIO_STATUS, 4, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    Write(VIRTIO_MMIO_STATUS, 4, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    for (uint32_t sel = 0; sel < 2; ++sel) {
      Write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 4, sel);
      const uint32_t offered = Reg(VIRTIO_MMIO_DEVICE_FEATURES);
      Write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, sel);
      Write(VIRTIO_MMIO_DRIVER_FEATURES, 4, offered & ~in_.Take<uint32_t>());
    }
    Write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 4, 1);
    Write(VIRTIO_MMIO_DRIVER_FEATURES, 4, Reg(VIRTIO_MMIO_DEVICE_FEATURES) | 1);  // VERSION_1
    Write(VIRTIO_MMIO_STATUS, 4,
          VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    const uint32_t queues = static_cast<uint32_t>(in_.Below(4));
    for (uint32_t q = 0; q < queues; ++q) {
      Write(VIRTIO_MMIO_QUEUE_SEL, 4, q);
      const uint32_t size = 1u << in_.Below(10);
      const uint64_t base = 0x1000 * (1 + in_.Below(15));
      Write(VIRTIO_MMIO_QUEUE_NUM, 4, size);
      Write(VIRTIO_MMIO_QUEUE_DESC_LOW, 4, base);
      Write(VIRTIO_MMIO_QUEUE_AVAIL_LOW, 4, base + 16 * size);
      Write(VIRTIO_MMIO_QUEUE_USED_LOW, 4, (base + 16 * size + 6 + 2 * size + 3) & ~3ull);
      Write(VIRTIO_MMIO_QUEUE_READY, 4, 1);
    }
    if (in_.Below(4) == 0) device_->FailNextActivation();
    Write(VIRTIO_MMIO_STATUS, 4, Reg(VIRTIO_MMIO_STATUS) | VIRTIO_CONFIG_S_DRIVER_OK);
  }

  void DeviceEvent() {
    const uint8_t kind = in_.Take<uint8_t>();
    const uint16_t queue = static_cast<uint16_t>(in_.Below(4));
    const bool stale = in_.TakeBool();
    const uint32_t status_before = Reg(VIRTIO_MMIO_STATUS);
    const uint32_t interrupts_before = Reg(VIRTIO_MMIO_INTERRUPT_STATUS);
    device_->Interrupt(kind, queue, stale);
    if (stale) {
      FUZZ_CHECK(Reg(VIRTIO_MMIO_STATUS) == status_before &&
                     Reg(VIRTIO_MMIO_INTERRUPT_STATUS) == interrupts_before,
                 "an interrupt from before the last reset changed the transport");
    }
  }

  void CheckState() {
    FUZZ_CHECK(Reg(VIRTIO_MMIO_MAGIC_VALUE) == 0x74726976, "magic value changed");
    FUZZ_CHECK(Reg(VIRTIO_MMIO_VERSION) == 2, "version changed");
    const uint32_t interrupts = Reg(VIRTIO_MMIO_INTERRUPT_STATUS);
    FUZZ_CHECK((interrupts & ~3u) == 0, "interrupt status 0x%x has undefined bits", interrupts);
    FUZZ_CHECK(irq_->level() == (interrupts != 0), "irq line %d with interrupt status 0x%x",
               irq_->level(), interrupts);
    const uint32_t status = Reg(VIRTIO_MMIO_STATUS);
    if (device_->active()) {
      FUZZ_CHECK(status & VIRTIO_CONFIG_S_DRIVER_OK, "device active with status 0x%x", status);
    }
    if (status == 0) FUZZ_CHECK(!device_->active(), "status 0 but the device was not reset");
  }

  FuzzInput& in_;
  std::shared_ptr<CheckingVirtioDevice> device_;
  std::shared_ptr<MmioTransport> transport_;
  std::shared_ptr<FakeIrqLine> irq_;
};

}  // namespace
}  // namespace skiff::virtio

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace skiff::virtio;
  skiff::fuzz::QuietLogs();
  FuzzInput in(data, size);
  CheckingVirtioDevice::Options options = CheckingVirtioDevice::Options::Fuzzed(in, 10);
  auto device = std::make_shared<CheckingVirtioDevice>(options);

  skiff::FakeGuestMemory mem(kRamSize);
  auto loop = skiff::EventLoop::Create();
  FUZZ_CHECK(loop.ok(), "EventLoop::Create: %s", loop.status().message());
  auto irq = std::make_shared<skiff::FakeIrqLine>();
  MmioTransportEnv env;
  env.base_gpa = kBase;
  env.memory = mem.memory();
  env.event_loop = loop->get();
  env.irq = irq;
  auto transport = MmioTransport::Create(device, std::move(env));
  FUZZ_CHECK(transport.ok(), "MmioTransport::Create: %s", transport.status().message());

  Harness harness(in, device, *transport, irq);
  for (int op = 0; op < kMaxOps && !in.empty(); ++op) harness.Step();
  return 0;
}
