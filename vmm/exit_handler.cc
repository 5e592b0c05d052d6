#include "vmm/exit_handler.h"

#include <cstring>
#include <span>

#include "absl/strings/str_format.h"
#include "vmm/exit_codes.h"
#include "vmm/log.h"

namespace skiff {
namespace {

#if defined(__x86_64__)
ExitOutcome HandlePortIo(kvm_run& run, const Bus& pio) {
  uint8_t* base = reinterpret_cast<uint8_t*>(&run) + run.io.data_offset;
  const size_t size = run.io.size;
  // String instructions (rep outsb/insb) batch `count` accesses.
  for (uint32_t i = 0; i < run.io.count; ++i) {
    std::span<uint8_t> data(base + i * size, size);
    if (run.io.direction == KVM_EXIT_IO_OUT) {
      if (!pio.Write(run.io.port, data)) {
        LOG_DEBUG("vcpu", "unclaimed port write 0x%x (%u bytes)", run.io.port, size);
      }
    } else if (!pio.Read(run.io.port, data)) {
      // No device answers on an ISA bus: the lines float high.
      std::memset(data.data(), 0xff, size);
    }
  }
  return ExitOutcome::Continue();
}
#endif

ExitOutcome HandleMmio(kvm_run& run, const Bus& mmio) {
  const uint32_t len = run.mmio.len;
  if (len == 0 || len > sizeof(run.mmio.data)) {
    return ExitOutcome::Stop(kExitVmmError,
                             absl::StrFormat("MMIO exit with bad length %u", len));
  }
  std::span<uint8_t> data(run.mmio.data, len);
  if (run.mmio.is_write) {
    if (!mmio.Write(run.mmio.phys_addr, data)) {
      LOG_DEBUG("vcpu", "unclaimed MMIO write 0x%x (%u bytes)", run.mmio.phys_addr, len);
    }
  } else if (!mmio.Read(run.mmio.phys_addr, data)) {
    std::memset(data.data(), 0xff, len);
  }
  return ExitOutcome::Continue();
}

ExitOutcome HandleSystemEvent(const kvm_run& run) {
  switch (run.system_event.type) {
    case KVM_SYSTEM_EVENT_SHUTDOWN:
      return ExitOutcome::Stop(kExitOk, "guest powered off");
    case KVM_SYSTEM_EVENT_RESET:
      return ExitOutcome::Stop(kExitOk, "guest rebooted");
    case KVM_SYSTEM_EVENT_CRASH:
      return ExitOutcome::Stop(kExitGuestCrash, "guest reported a crash");
    default:
      return ExitOutcome::Stop(
          kExitVmmError,
          absl::StrFormat("unknown system event %u", run.system_event.type));
  }
}

std::string InternalErrorReason(const kvm_run& run) {
  std::string reason;
  switch (run.internal.suberror) {
    case KVM_INTERNAL_ERROR_EMULATION:
      reason = "KVM could not emulate an instruction (suberror 1, emulation failure)";
      break;
    case KVM_INTERNAL_ERROR_SIMUL_EX:
      reason = "KVM internal error: exception while delivering an exception (suberror 2)";
      break;
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
      reason = "KVM internal error: failed event delivery (suberror 3)";
      break;
    default:
      reason = absl::StrFormat("KVM internal error (suberror %u)", run.internal.suberror);
  }
#if defined(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
  if (run.internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
      (run.emulation_failure.flags &
       KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
    size_t n = std::min<size_t>(run.emulation_failure.insn_size,
                                sizeof(run.emulation_failure.insn_bytes));
    reason += "; instruction bytes (from KVM):";
    for (size_t i = 0; i < n; ++i) {
      reason += absl::StrFormat(" %02x", run.emulation_failure.insn_bytes[i]);
    }
  }
#endif
  return reason;
}

}  // namespace

ExitOutcome HandleExit(kvm_run& run, const ExitBuses& buses) {
  switch (run.exit_reason) {
#if defined(__x86_64__)
    case KVM_EXIT_IO:
      return HandlePortIo(run, *buses.pio);
#endif
    case KVM_EXIT_MMIO:
      return HandleMmio(run, *buses.mmio);
    case KVM_EXIT_INTR:
      return ExitOutcome::Continue();
    case KVM_EXIT_HLT:
      // Only reachable without an in-kernel irqchip: nothing will wake us.
      return ExitOutcome::Stop(kExitOk, "guest halted");
    case KVM_EXIT_SHUTDOWN:
      // On AMD hosts KVM resets the vCPU before reporting a shutdown, so the
      // registers that follow show the reset state, not the faulting one.
      return ExitOutcome::Stop(
          kExitGuestCrash,
          "guest triple fault (KVM_EXIT_SHUTDOWN; on AMD hosts the registers "
          "below are already reset)",
          true);
    case KVM_EXIT_SYSTEM_EVENT:
      return HandleSystemEvent(run);
    case KVM_EXIT_INTERNAL_ERROR:
      return ExitOutcome::Stop(kExitGuestCrash, InternalErrorReason(run), true);
    case KVM_EXIT_FAIL_ENTRY:
      return ExitOutcome::Stop(
          kExitGuestCrash,
          absl::StrFormat("KVM could not enter the guest (hardware reason 0x%x)",
                          run.fail_entry.hardware_entry_failure_reason),
          true);
    default:
      return ExitOutcome::Stop(
          kExitVmmError,
          absl::StrFormat("unexpected KVM exit reason %u", run.exit_reason), true);
  }
}

}  // namespace skiff
