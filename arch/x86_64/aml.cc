#include "arch/x86_64/aml.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "vmm/status_macros.h"

namespace skiff::x86::aml {
namespace {

// Opcodes and prefixes (ACPI 6.x section 20.3).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kNotifyOp = 0x86;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kNullName = 0x00;

// Resource descriptor tags (ACPI 6.x section 6.4).
constexpr uint8_t kIrqTag = 0x22;            // small, 2 data bytes
constexpr uint8_t kIoTag = 0x47;             // small, 7 data bytes
constexpr uint8_t kEndTag = 0x79;            // small, 1 data byte
constexpr uint8_t kMemory32FixedTag = 0x86;  // large
constexpr uint8_t kExtendedIrqTag = 0x89;    // large
constexpr uint8_t kDWordAddressTag = 0x87;   // large
constexpr uint8_t kWordAddressTag = 0x88;    // large
constexpr uint8_t kQWordAddressTag = 0x8a;   // large

// Address space descriptor fields (ACPI 6.x table 6.44 and friends).
constexpr uint8_t kAddressSpaceMemory = 0;
constexpr uint8_t kAddressSpaceIo = 1;
constexpr uint8_t kAddressSpaceBus = 2;
// General flags: producer (bit 0 clear), positive decode (bit 1 clear),
// _MIF and _MAF set: a fixed window this bridge decodes.
constexpr uint8_t kProducerFixedWindow = 0x0c;
constexpr uint8_t kMemoryReadWriteNonCacheable = 0x01;
constexpr uint8_t kIoEntireRange = 0x03;

constexpr uint64_t kMaxPkgLength = (uint64_t{1} << 28) - 1;

void Append(Bytes& out, const Bytes& more) {
  out.insert(out.end(), more.begin(), more.end());
}

void AppendLe(Bytes& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back((value >> (8 * i)) & 0xff);
}

// Concatenates `parts`, or returns the first error among them.
Result Join(const std::vector<Result>& parts) {
  Bytes out;
  for (const Result& part : parts) {
    if (!part.ok()) return part.status();
    Append(out, *part);
  }
  return out;
}

// `prefix` PkgLength `body`: the shape of every variable-length object.
Result WithPkgLength(Bytes prefix, const Bytes& body) {
  ASSIGN_OR_RETURN(Bytes length, PkgLength(body.size()));
  Append(prefix, length);
  Append(prefix, body);
  return prefix;
}

// One Word/DWord/QWord address space descriptor: tag, length, resource
// type, flags, then granularity, min, max, translation and length, each
// `width` bytes.
Result AddressSpace(uint8_t tag, int width, uint8_t type, uint8_t type_flags,
                    uint64_t min, uint64_t max) {
  const uint64_t limit =
      width == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1;
  if (min > max || max > limit || (min == 0 && max == limit)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("address space descriptor [0x%X, 0x%X]: need min <= "
                        "max and a length that fits %d bytes",
                        min, max, width));
  }
  Bytes out = {tag};
  AppendLe(out, 3 + 5 * width, 2);
  out.push_back(type);
  out.push_back(kProducerFixedWindow);
  out.push_back(type_flags);
  AppendLe(out, 0, width);  // granularity
  AppendLe(out, min, width);
  AppendLe(out, max, width);
  AppendLe(out, 0, width);  // translation offset
  AppendLe(out, max - min + 1, width);
  return out;
}

bool IsLeadNameChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsLeadNameChar(c) || (c >= '0' && c <= '9'); }

absl::Status AppendNameSeg(std::string_view seg, std::string_view path,
                           Bytes& out) {
  if (seg.empty() || seg.size() > 4 || !IsLeadNameChar(seg[0])) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "AML name \"%s\": segment \"%s\" must be 1-4 characters starting with "
        "A-Z or _",
        path, seg));
  }
  for (char c : seg) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "AML name \"%s\": invalid character '%c' (use A-Z, 0-9, _)", path,
          c));
    }
  }
  for (size_t i = 0; i < 4; ++i) out.push_back(i < seg.size() ? seg[i] : '_');
  return absl::OkStatus();
}

}  // namespace

Result PkgLength(uint64_t body_size) {
  for (int n = 1; n <= 4; ++n) {
    const uint64_t total = body_size + n;
    // One byte holds 6 bits; each further byte adds 8 to a 4-bit nibble.
    const uint64_t limit = n == 1 ? 63 : (uint64_t{1} << (4 + 8 * (n - 1))) - 1;
    if (body_size > kMaxPkgLength || total > limit) continue;
    if (n == 1) return Bytes{static_cast<uint8_t>(total)};
    Bytes out = {static_cast<uint8_t>(((n - 1) << 6) | (total & 0x0f))};
    for (int i = 1; i < n; ++i)
      out.push_back((total >> (4 + 8 * (i - 1))) & 0xff);
    return out;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "AML object of %d bytes exceeds the largest PkgLength (%d)", body_size,
      kMaxPkgLength));
}

Result NameString(std::string_view path) {
  Bytes out;
  std::string_view rest = path;
  if (!rest.empty() && rest[0] == '\\') {
    out.push_back('\\');
    rest.remove_prefix(1);
  } else {
    while (!rest.empty() && rest[0] == '^') {
      out.push_back('^');
      rest.remove_prefix(1);
    }
  }
  if (rest.empty()) {
    if (out.empty()) return absl::InvalidArgumentError("AML name is empty");
    out.push_back(kNullName);  // "\" alone names the root
    return out;
  }
  std::vector<std::string_view> segs;
  for (size_t dot; (dot = rest.find('.')) != std::string_view::npos;) {
    segs.push_back(rest.substr(0, dot));
    rest.remove_prefix(dot + 1);
  }
  segs.push_back(rest);
  if (segs.size() > 255) {
    return absl::InvalidArgumentError(
        absl::StrFormat("AML name \"%s\" has too many segments", path));
  }
  if (segs.size() == 2) out.push_back(kDualNamePrefix);
  if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (std::string_view seg : segs)
    RETURN_IF_ERROR(AppendNameSeg(seg, path, out));
  return out;
}

Bytes Integer(uint64_t value) {
  if (value == 0) return {kZeroOp};
  if (value == 1) return {kOneOp};
  Bytes out;
  if (value <= 0xff) {
    out.push_back(kBytePrefix);
    AppendLe(out, value, 1);
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    AppendLe(out, value, 2);
  } else if (value <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    AppendLe(out, value, 4);
  } else {
    out.push_back(kQWordPrefix);
    AppendLe(out, value, 8);
  }
  return out;
}

Result String(std::string_view text) {
  Bytes out = {kStringPrefix};
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "AML string \"%s\" has a non-printable character", text));
    }
    out.push_back(static_cast<uint8_t>(c));
  }
  out.push_back(0);
  return out;
}

Result EisaId(std::string_view id) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bool valid = id.size() == 7;
  for (size_t i = 0; valid && i < 3; ++i) valid = id[i] >= 'A' && id[i] <= 'Z';
  for (size_t i = 3; valid && i < 7; ++i) valid = hex(id[i]) >= 0;
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "EISA ID \"%s\" must be three letters A-Z and four hex digits", id));
  }
  // Three 5-bit letters ('A' = 1) then a 16-bit product number, stored
  // most significant byte first.
  uint32_t value = 0;
  for (size_t i = 0; i < 3; ++i) value = (value << 5) | (id[i] - 0x40);
  for (size_t i = 3; i < 7; ++i) value = (value << 4) | hex(id[i]);
  Bytes out = {kDWordPrefix};
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back((value >> shift) & 0xff);
  return out;
}

Result Buffer(std::span<const uint8_t> data) {
  Bytes body = Integer(data.size());
  body.insert(body.end(), data.begin(), data.end());
  return WithPkgLength({kBufferOp}, body);
}

Result Package(const std::vector<Result>& elements) {
  if (elements.size() > 255) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "AML Package of %d elements exceeds 255", elements.size()));
  }
  ASSIGN_OR_RETURN(Bytes joined, Join(elements));
  Bytes body = {static_cast<uint8_t>(elements.size())};
  Append(body, joined);
  return WithPkgLength({kPackageOp}, body);
}

Result Name(std::string_view name, const Result& value) {
  ASSIGN_OR_RETURN(Bytes out, NameString(name));
  out.insert(out.begin(), kNameOp);
  if (!value.ok()) return value.status();
  Append(out, *value);
  return out;
}

Result Scope(std::string_view name, const std::vector<Result>& body) {
  ASSIGN_OR_RETURN(Bytes encoded, NameString(name));
  ASSIGN_OR_RETURN(Bytes joined, Join(body));
  Append(encoded, joined);
  return WithPkgLength({kScopeOp}, encoded);
}

Result Device(std::string_view name, const std::vector<Result>& body) {
  ASSIGN_OR_RETURN(Bytes encoded, NameString(name));
  ASSIGN_OR_RETURN(Bytes joined, Join(body));
  Append(encoded, joined);
  return WithPkgLength({kExtOpPrefix, kDeviceOp}, encoded);
}

Bytes IoPort(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out = {kIoTag, 0x01};  // information bit 0: decodes 16 address bits
  AppendLe(out, min, 2);
  AppendLe(out, max, 2);
  out.push_back(alignment);
  out.push_back(length);
  return out;
}

Result IrqNoFlags(uint8_t irq) {
  if (irq > 15) {
    return absl::InvalidArgumentError(
        absl::StrFormat("IRQ descriptor: ISA IRQ %d out of range 0-15", irq));
  }
  Bytes out = {kIrqTag};
  AppendLe(out, uint16_t{1} << irq, 2);
  return out;
}

Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length) {
  Bytes out = {kMemory32FixedTag};
  AppendLe(out, 9, 2);  // data bytes after the length field
  out.push_back(read_write ? 0x01 : 0x00);
  AppendLe(out, base, 4);
  AppendLe(out, length, 4);
  return out;
}

Result ExtendedInterrupt(Trigger trigger, Polarity polarity, bool shared,
                         std::span<const uint32_t> gsis) {
  if (gsis.empty() || gsis.size() > 255) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Interrupt descriptor needs 1-255 interrupts, got %d", gsis.size()));
  }
  uint8_t flags = 0x01;  // bit 0: ResourceConsumer
  if (trigger == Trigger::kEdge) flags |= 0x02;
  if (polarity == Polarity::kActiveLow) flags |= 0x04;
  if (shared) flags |= 0x08;
  Bytes out = {kExtendedIrqTag};
  AppendLe(out, 2 + 4 * gsis.size(), 2);  // flags, count, the table
  out.push_back(flags);
  out.push_back(static_cast<uint8_t>(gsis.size()));
  for (uint32_t gsi : gsis) AppendLe(out, gsi, 4);
  return out;
}

Result WordBusNumber(uint16_t min, uint16_t max) {
  return AddressSpace(kWordAddressTag, 2, kAddressSpaceBus, 0, min, max);
}

Result WordIo(uint16_t min, uint16_t max) {
  return AddressSpace(kWordAddressTag, 2, kAddressSpaceIo, kIoEntireRange, min,
                      max);
}

Result DWordMemory(uint32_t min, uint32_t max) {
  return AddressSpace(kDWordAddressTag, 4, kAddressSpaceMemory,
                      kMemoryReadWriteNonCacheable, min, max);
}

Result QWordMemory(uint64_t min, uint64_t max) {
  return AddressSpace(kQWordAddressTag, 8, kAddressSpaceMemory,
                      kMemoryReadWriteNonCacheable, min, max);
}

Bytes EndTag() { return {kEndTag, 0x00}; }

Result ResourceTemplate(const std::vector<Result>& descriptors) {
  ASSIGN_OR_RETURN(Bytes data, Join(descriptors));
  Append(data, EndTag());
  return Buffer(data);
}

Result Method(std::string_view name, uint8_t arg_count, bool serialized,
              const std::vector<Result>& body) {
  if (arg_count > 7) {
    return absl::InvalidArgumentError(
        absl::StrFormat("AML method %s: %u arguments (at most 7)", name, arg_count));
  }
  ASSIGN_OR_RETURN(Bytes encoded, NameString(name));
  // MethodFlags: ArgCount in bits 0-2, SerializeFlag in bit 3, SyncLevel 0.
  encoded.push_back(static_cast<uint8_t>(arg_count | (serialized ? 0x08 : 0)));
  ASSIGN_OR_RETURN(Bytes terms, Join(body));
  Append(encoded, terms);
  return WithPkgLength({kMethodOp}, encoded);
}

Result Notify(std::string_view object, uint64_t value) {
  ASSIGN_OR_RETURN(Bytes target, NameString(object));
  Bytes out = {kNotifyOp};
  Append(out, target);
  Append(out, Integer(value));
  return out;
}

}  // namespace skiff::x86::aml
