// A small encoder for ACPI Machine Language (ACPI 6.x chapter 20) and the
// resource descriptors that go inside _CRS buffers (chapter 6.4): just what
// Skiff's DSDT needs.
//
// Every builder returns absl::StatusOr<Bytes>, and every container takes its
// children as StatusOr too, so a table reads like the ASL it encodes and the
// first error (a bad name, an oversized package) surfaces at the top:
//
//   aml::Device("COM1", {aml::Name("_HID", aml::EisaId("PNP0501")),
//                        aml::Name("_UID", aml::Integer(0))})
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace skiff::x86::aml {

using Bytes = std::vector<uint8_t>;
using Result = absl::StatusOr<Bytes>;

// The PkgLength prefix for `body_size` bytes that follow it. The encoded
// value counts the PkgLength bytes themselves, so the encoding is 1 byte up
// to a total of 63, then 2 (< 2^12), 3 (< 2^20) or 4 bytes (< 2^28).
Result PkgLength(uint64_t body_size);

// A NameString: optional '\' (root) or '^' (parent) prefixes, then one or
// more '.'-separated segments of 1-4 characters [A-Z0-9_] (not starting with
// a digit), each padded with '_' to 4 — "_SB", "\\_SB.COM1".
Result NameString(std::string_view path);

// The shortest encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord constant.
Bytes Integer(uint64_t value);
// A String object: printable ASCII, NUL-terminated.
Result String(std::string_view text);
// A compressed EISA ID ("PNP0501": three letters, four hex digits) as a
// DWord constant.
Result EisaId(std::string_view id);
// A Buffer object holding `data`.
Result Buffer(std::span<const uint8_t> data);
// A Package of up to 255 elements.
Result Package(const std::vector<Result>& elements);

Result Name(std::string_view name, const Result& value);
Result Scope(std::string_view name, const std::vector<Result>& body);
Result Device(std::string_view name, const std::vector<Result>& body);

// Method(name, arg_count, Serialized|NotSerialized){body}: SyncLevel 0.
Result Method(std::string_view name, uint8_t arg_count, bool serialized,
              const std::vector<Result>& body);
// Notify(object, value): `object` a NameString path.
Result Notify(std::string_view object, uint64_t value);

// Resource descriptors, for ResourceTemplate().
// IO(Decode16, min, max, alignment, length).
Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
// IRQNoFlags(){irq}: an ISA interrupt, edge-triggered active-high.
Result IrqNoFlags(uint8_t irq);
// Memory32Fixed(ReadWrite or ReadOnly, base, length).
Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length);
enum class Trigger { kLevel, kEdge };
enum class Polarity { kActiveHigh, kActiveLow };
// Interrupt(ResourceConsumer, trigger, polarity, Exclusive/Shared){gsis...}.
Result ExtendedInterrupt(Trigger trigger, Polarity polarity, bool shared,
                         std::span<const uint32_t> gsis);
// Address space descriptors for a bridge's decode windows (ACPI 6.x
// §6.4.3.5.1-3): ResourceProducer, MinFixed, MaxFixed, PosDecode, zero
// granularity and translation, covering [min, max] (min <= max, and the
// length max - min + 1 must fit the descriptor's width).
// WordBusNumber(...): a bus number range.
Result WordBusNumber(uint16_t min, uint16_t max);
// WordIO(..., EntireRange, ...): an I/O port window.
Result WordIo(uint16_t min, uint16_t max);
// DWordMemory(..., NonCacheable, ReadWrite, ...): a 32-bit MMIO window.
Result DWordMemory(uint32_t min, uint32_t max);
// QWordMemory(..., NonCacheable, ReadWrite, ...): a 64-bit MMIO window.
Result QWordMemory(uint64_t min, uint64_t max);
// The End Tag closing every resource template (checksum 0 = "valid").
Bytes EndTag();
// ResourceTemplate(){descriptors}: a Buffer of the descriptors + End Tag.
Result ResourceTemplate(const std::vector<Result>& descriptors);

}  // namespace skiff::x86::aml
