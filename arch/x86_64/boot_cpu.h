// Puts a vCPU into the state the Linux 64-bit boot protocol requires:
// long mode, identity-mapped paging, flat segments, RSI = boot_params.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "vmm/guest_memory.h"

namespace skiff::x86 {

// Identity-maps the first 4 GiB with 2 MiB pages (PML4, PDPT, 4 PDs) and
// writes the boot GDT and an empty IDT, at the addresses in layout.h.
absl::Status WriteBootTables(const GuestMemory& memory);

// Long-mode segments, CR0/CR3/CR4/EFER for the boot vCPU.
absl::Status SetLongModeSregs(int vcpu_fd);
absl::Status SetBootRegs(int vcpu_fd, uint64_t entry, uint64_t boot_params);
// x87/SSE reset state (FCW 0x37f, MXCSR 0x1f80).
absl::Status SetBootFpu(int vcpu_fd);
// LINT0 as ExtINT (the PIC's virtual-wire path), LINT1 as NMI, as firmware
// leaves them for Linux.
absl::Status SetLocalInterrupts(int vcpu_fd);

// Descriptor for the boot GDT entry at `index` (1..4 used), exposed for tests.
uint64_t BootGdtEntry(int index);

}  // namespace skiff::x86
