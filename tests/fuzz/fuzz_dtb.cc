// The operator's --dtb FILE is untrusted input: arm64::ValidateFdt and
// arm64::PatchUserFdt (what Skiff's arm64 SetupPlatform does with it: check
// the blob, then give /chosen the command line and the initramfs range) on
// arbitrary blobs, with a command line and initramfs range from the input.
// With bit 2 of the flags, PatchUserFdt also gets blobs ValidateFdt refused:
// it must not trust its caller to have checked, and must refuse them too.
//
// Input: [flags u8: 1 = bootargs, 2 = initrd, 4 = skip ValidateFdt]
// [bootargs length u16] [initrd start u64] [initrd end u64] [bootargs...]
// [blob...].
//
// Invariants beyond "no crash": a patched tree passes fdt_check_full, is
// exactly its totalsize long and at most 2 MiB; /chosen holds the given
// bootargs (up to a NUL, as a C string) and linux,initrd-start/-end as
// big-endian u64s; every node of the operator's tree is still there (plus
// /chosen when it had none); with nothing to patch the blob comes back as
// it was.
#include <libfdt.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "arch/arm64/platform_fdt.h"
#include "boot/arm64_image.h"
#include "tests/fuzz/fuzz_support.h"

namespace skiff {
namespace {

using fuzz::FuzzInput;

// Nodes in a tree that passed fdt_check_full (the root included).
int CountNodes(const void* fdt) {
  int count = 0;
  for (int node = 0; node >= 0; node = fdt_next_node(fdt, node, nullptr)) ++count;
  return count;
}

std::optional<uint64_t> ChosenU64(const void* fdt, int chosen, const char* name) {
  int len = 0;
  const void* value = fdt_getprop(fdt, chosen, name, &len);
  if (value == nullptr || len != 8) return std::nullopt;
  fdt64_t raw;
  std::memcpy(&raw, value, sizeof(raw));
  return fdt64_to_cpu(raw);
}

void CheckPatched(std::span<const uint8_t> blob, const std::string& bootargs,
                  std::optional<arm64::InitrdRange> initrd, const std::vector<uint8_t>& out) {
  FUZZ_CHECK(out.size() >= sizeof(fdt_header) && fdt_totalsize(out.data()) == out.size(),
             "patched tree of %d bytes, totalsize %d", out.size(),
             out.size() >= sizeof(fdt_header) ? fdt_totalsize(out.data()) : 0);
  FUZZ_CHECK(out.size() <= boot::kArm64DtbMaxSize, "patched tree of %d bytes", out.size());
  const int check = fdt_check_full(out.data(), out.size());
  FUZZ_CHECK(check == 0, "patched tree fails fdt_check_full: %s", fdt_strerror(check));
  if (bootargs.empty() && !initrd) {
    FUZZ_CHECK(out.size() == fdt_totalsize(blob.data()) &&
                   std::memcmp(out.data(), blob.data(), out.size()) == 0,
               "a tree with nothing to patch changed");
    return;
  }
  const int chosen = fdt_path_offset(out.data(), "/chosen");
  FUZZ_CHECK(chosen >= 0, "no /chosen in the patched tree: %s", fdt_strerror(chosen));
  const bool had_chosen = fdt_path_offset(blob.data(), "/chosen") >= 0;
  FUZZ_CHECK(CountNodes(out.data()) == CountNodes(blob.data()) + (had_chosen ? 0 : 1),
             "patched tree has %d nodes, the operator's %d (/chosen %s)", CountNodes(out.data()),
             CountNodes(blob.data()), had_chosen ? "present" : "added");
  if (!bootargs.empty()) {
    const std::string expected(bootargs.c_str());  // what a C string carries
    int len = 0;
    const char* value = static_cast<const char*>(fdt_getprop(out.data(), chosen, "bootargs", &len));
    FUZZ_CHECK(value != nullptr && len == static_cast<int>(expected.size()) + 1 &&
                   std::memcmp(value, expected.c_str(), len) == 0,
               "bootargs is not the %d-byte command line", expected.size());
  }
  if (initrd) {
    FUZZ_CHECK(ChosenU64(out.data(), chosen, "linux,initrd-start") == initrd->start &&
                   ChosenU64(out.data(), chosen, "linux,initrd-end") == initrd->end,
               "initrd range is not 0x%x-0x%x", initrd->start, initrd->end);
  }
}

void FuzzOne(FuzzInput& in) {
  const uint8_t flags = in.Take<uint8_t>();
  const uint16_t bootargs_length = in.Take<uint16_t>();
  const arm64::InitrdRange range{in.Take<uint64_t>(), in.Take<uint64_t>()};
  const std::span<const uint8_t> bootargs_bytes = in.TakeBytes((flags & 1) ? bootargs_length : 0);
  const std::string bootargs(bootargs_bytes.begin(), bootargs_bytes.end());
  const std::optional<arm64::InitrdRange> initrd =
      (flags & 2) ? std::optional<arm64::InitrdRange>(range) : std::nullopt;
  // Skiff maps the file, so the blob starts aligned: a heap copy of exactly
  // its size is the same, and any read past its end is an ASan report.
  const std::span<const uint8_t> rest = in.TakeRest();
  const std::vector<uint8_t> blob(rest.begin(), rest.end());

  const absl::Status valid = arm64::ValidateFdt(blob, "--dtb fuzz.dtb");
  if (!valid.ok()) {
    FUZZ_CHECK(absl::StartsWith(valid.message(), "--dtb fuzz.dtb: "),
               "an error not naming the file: %s", valid.message());
    if ((flags & 4) == 0) return;
    // It checks for itself (a tree that passed only fdt_check_header once
    // made libfdt memmove a negative size).
    FUZZ_CHECK(!arm64::PatchUserFdt(blob, bootargs, initrd).ok(),
               "PatchUserFdt took a tree ValidateFdt refused: %s", valid.message());
    return;
  }
  auto patched = arm64::PatchUserFdt(blob, bootargs, initrd);
  if (!patched.ok()) {
    // Only a tree that would outgrow 2 MiB, or that libfdt cannot extend.
    FUZZ_CHECK(absl::StrContains(patched.status().message(), "--dtb"),
               "an error not naming --dtb: %s", patched.status().message());
    return;
  }
  CheckPatched(blob, bootargs, initrd, *patched);
}

}  // namespace
}  // namespace skiff

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  skiff::fuzz::QuietLogs();
  skiff::fuzz::FuzzInput in(data, size);
  skiff::FuzzOne(in);
  return 0;
}
