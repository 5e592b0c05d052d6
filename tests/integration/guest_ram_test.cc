// Guest RAM allocation against the real kernel: hugepage backing, and the
// error an operator gets when none are reserved.
#include "vmm/guest_ram.h"

#include <cstdio>
#include <fstream>
#include <string>

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

TEST(GuestRamTest, HugepagesNeedWholeHugepages) {
  GuestRamOptions options;
  options.hugepages = true;
  EXPECT_FALSE(GuestRam::Allocate({{0, 3ull << 20}}, options).ok());
}

}  // namespace
}  // namespace skiff
