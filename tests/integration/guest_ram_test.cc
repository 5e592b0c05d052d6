// Guest RAM allocation against the real kernel: hugepage backing, the error
// an operator gets when none are reserved, and transparent-huge-page advice.
#include "vmm/guest_ram.h"

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace skiff {
namespace {

constexpr char kNrHugepages[] = "/proc/sys/vm/nr_hugepages";

long ReadLong(const char* path) {
  std::ifstream in(path);
  long value = -1;
  in >> value;
  return value;
}

bool WriteLong(const char* path, long value) {
  std::ofstream out(path);
  out << value;
  return static_cast<bool>(out);
}

// Reserves `count` 2 MiB pages for the test and restores the old setting.
class HugepageReservation {
 public:
  explicit HugepageReservation(long count) : saved_(ReadLong(kNrHugepages)) {
    ok_ = saved_ >= 0 && WriteLong(kNrHugepages, count) && ReadLong(kNrHugepages) >= count;
  }
  ~HugepageReservation() {
    if (saved_ >= 0) WriteLong(kNrHugepages, saved_);
  }
  bool ok() const { return ok_; }

 private:
  long saved_;
  bool ok_ = false;
};

TEST(GuestRamTest, HugepageBackedRamIsUsableAndComesFromTheHugepagePool) {
  HugepageReservation reservation(16);
  ASSERT_TRUE(reservation.ok()) << "could not reserve hugepages (needs root)";
  GuestRamOptions options;
  options.hugepages = true;
  auto ram = GuestRam::Allocate({{0, 16ull << 20}}, options);
  ASSERT_TRUE(ram.ok()) << ram.status();
  ASSERT_TRUE(ram->memory().WriteObj<uint64_t>(0x100000, 0x1122334455667788).ok());
  EXPECT_EQ(*ram->memory().ReadObj<uint64_t>(0x100000), 0x1122334455667788u);
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  long free_pages = -1;
  while (meminfo >> key) {
    if (key == "HugePages_Free:") {
      meminfo >> free_pages;
      break;
    }
  }
  EXPECT_LT(free_pages, 16) << "guest RAM did not come from the hugepage pool";
}

TEST(GuestRamTest, NoReservedHugepagesIsAClearError) {
  HugepageReservation reservation(0);
  ASSERT_TRUE(reservation.ok());
  GuestRamOptions options;
  options.hugepages = true;
  auto ram = GuestRam::Allocate({{0, 16ull << 20}}, options);
  ASSERT_FALSE(ram.ok());
  EXPECT_NE(std::string(ram.status().message()).find("nr_hugepages"), std::string::npos)
      << ram.status();
}

// The lines of the /proc/self/smaps entry that contains `addr` (empty if
// nothing is mapped there); the first is the header with the permissions.
std::vector<std::string> SmapsEntryOf(const void* addr) {
  const uint64_t target = reinterpret_cast<uint64_t>(addr);
  std::ifstream smaps("/proc/self/smaps");
  std::vector<std::string> entry;
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uint64_t start = 0, end = 0;
    char dash = 0;
    std::istringstream header(line);
    if (header >> std::hex >> start >> dash >> end && dash == '-') {
      if (inside) break;
      inside = start <= target && target < end;
    }
    if (inside) entry.push_back(line);
  }
  return entry;
}

std::string VmFlagsOf(const void* addr) {
  for (const std::string& line : SmapsEntryOf(addr)) {
    if (line.rfind("VmFlags:", 0) == 0) return line + " ";
  }
  return "";
}

// "rw-p", "---p"... for the mapping at `addr`, or "" when unmapped.
std::string PermissionsOf(const void* addr) {
  std::vector<std::string> entry = SmapsEntryOf(addr);
  if (entry.empty()) return "";
  std::istringstream header(entry[0]);
  std::string range, perms;
  header >> range >> perms;
  return perms;
}

TEST(GuestRamTest, RamIsHugepageAlignedAndAdvisedForTransparentHugepages) {
  auto ram = GuestRam::Allocate({{0, 16ull << 20}, {1ull << 32, 6ull << 20}}, {});
  ASSERT_TRUE(ram.ok()) << ram.status();
  for (const GuestMemory::Region& region : ram->memory().regions()) {
    EXPECT_EQ(reinterpret_cast<uint64_t>(region.host) % (2ull << 20), 0u)
        << "region at gpa 0x" << std::hex << region.gpa;
    std::string flags = VmFlagsOf(region.host);
    EXPECT_NE(flags.find(" hg "), std::string::npos) << "no MADV_HUGEPAGE: " << flags;
    EXPECT_EQ(PermissionsOf(region.host), "rw-p");
    EXPECT_EQ(PermissionsOf(region.host + region.size - 1), "rw-p");
    // Inaccessible guard pages on both sides.
    EXPECT_EQ(PermissionsOf(region.host - 1), "---p");
    EXPECT_EQ(PermissionsOf(region.host + region.size), "---p");
  }
  ASSERT_TRUE(ram->memory().WriteObj<uint64_t>((1ull << 32) + 0x1000, 42).ok());
  EXPECT_EQ(*ram->memory().ReadObj<uint64_t>((1ull << 32) + 0x1000), 42u);
}

TEST(GuestRamTest, TransparentHugepagesCanBeTurnedOff) {
  GuestRamOptions options;
  options.transparent_hugepages = false;
  auto ram = GuestRam::Allocate({{0, 4ull << 20}}, options);
  ASSERT_TRUE(ram.ok()) << ram.status();
  std::string flags = VmFlagsOf(ram->memory().regions()[0].host);
  ASSERT_FALSE(flags.empty());
  EXPECT_EQ(flags.find(" hg "), std::string::npos) << flags;
}

TEST(GuestRamTest, HugepagesNeedWholeHugepages) {
  GuestRamOptions options;
  options.hugepages = true;
  EXPECT_FALSE(GuestRam::Allocate({{0, 3ull << 20}}, options).ok());
}

}  // namespace
}  // namespace skiff
