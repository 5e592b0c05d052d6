// Guest RAM against what VFIO type1 lets Skiff DMA-map: the
// VFIO_IOMMU_GET_INFO reply and its capability chain (decoded
// defensively), the usable IOVA ranges, the DMA mappings left and the
// locked-memory budget — each failure one line, before anything is mapped.
#include <linux/vfio.h>
#include <sys/mman.h>

#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "devices/vfio/dma_checks.h"
#include "devices/vfio/iommu_info.h"
#include "devices/vfio/vfio_container.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_vfio_kernel.h"

namespace skiff::vfio {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kTop48 = (uint64_t{1} << 48) - 1;

// ------------------------------------------------------- reply decoding ---

// A VFIO_IOMMU_GET_INFO reply laid out as the kernel writes it: the fixed
// part, then capabilities on 8-byte boundaries, each header's `next`
// naming the following one.
class Reply {
 public:
  Reply() : bytes_(kIommuInfoSize, 0) {}

  size_t AddIovaRanges(const std::vector<VfioIovaRange>& ranges) {
    const size_t at = StartCap(VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 16 + 16 * ranges.size());
    Put32(at + 8, static_cast<uint32_t>(ranges.size()));
    for (size_t i = 0; i < ranges.size(); ++i) {
      Put64(at + 16 + 16 * i, ranges[i].start);
      Put64(at + 24 + 16 * i, ranges[i].last);
    }
    return at;
  }
  size_t AddDmaAvail(uint32_t avail) {
    const size_t at = StartCap(VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 12);
    Put32(at + 8, avail);
    return at;
  }
  size_t AddMigration() { return StartCap(VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 32); }

  // The finished reply: argsz = its size, CAPS set when there are any.
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out = bytes_;
    vfio_iommu_type1_info info{};
    info.argsz = static_cast<uint32_t>(out.size());
    info.flags = VFIO_IOMMU_INFO_PGSIZES | (first_ ? VFIO_IOMMU_INFO_CAPS : 0);
    info.iova_pgsizes = 0x40201000;
    info.cap_offset = static_cast<uint32_t>(first_);
    std::memcpy(out.data(), &info, sizeof(info));
    return out;
  }
  void Put32(size_t at, uint32_t v) { std::memcpy(bytes_.data() + at, &v, 4); }
  void Put64(size_t at, uint64_t v) { std::memcpy(bytes_.data() + at, &v, 8); }
  // A capability header's `next`.
  void SetNext(size_t cap, uint32_t next) { Put32(cap + 4, next); }
  void SetFirst(size_t first) { first_ = first; }
  void Truncate(size_t size) { bytes_.resize(size); }

 private:
  size_t StartCap(uint16_t id, size_t size) {
    const size_t at = bytes_.size();
    bytes_.resize(at + (size + 7) / 8 * 8, 0);
    vfio_info_cap_header header{id, 1, 0};
    std::memcpy(bytes_.data() + at, &header, sizeof(header));
    if (last_) SetNext(last_, static_cast<uint32_t>(at));
    if (!first_) first_ = at;
    last_ = at;
    return at;
  }
  std::vector<uint8_t> bytes_;
  size_t first_ = 0;
  size_t last_ = 0;
};

std::string DecodeError(const std::vector<uint8_t>& bytes) {
  auto info = DecodeIommuInfo(bytes);
  if (info.ok()) return "(decoded)";
  return std::string(info.status().message());
}

TEST(IommuInfoTest, DecodesRangesAndDmaAvailAndSkipsOtherCapabilities) {
  Reply reply;
  reply.AddMigration();
  // Unsorted on purpose: the decoder sorts.
  reply.AddIovaRanges({{0xfef00000, kTop48}, {0, 0xfedfffff}});
  reply.AddDmaAvail(65535);
  auto info = DecodeIommuInfo(reply.Bytes());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->iova_pgsizes, 0x40201000u);
  ASSERT_TRUE(info->has_iova_ranges);
  EXPECT_THAT(info->iova_ranges,
              ElementsAre(VfioIovaRange{0, 0xfedfffff}, VfioIovaRange{0xfef00000, kTop48}));
  EXPECT_EQ(info->dma_avail, 65535u);
}

TEST(IommuInfoTest, NoCapabilitiesMeansNothingIsKnown) {
  auto info = DecodeIommuInfo(Reply().Bytes());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->has_iova_ranges);
  EXPECT_FALSE(info->dma_avail.has_value());
  EXPECT_FALSE(DecodeIommuInfo(std::vector<uint8_t>(16, 0)).ok());  // shorter than the fixed part
}

TEST(IommuInfoTest, BogusCapabilityOffsetsAreErrors) {
  {  // The first capability past the reply.
    Reply reply;
    reply.AddDmaAvail(10);
    reply.SetFirst(4096);
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("at 0x1000 lies outside the 40-byte reply"));
  }
  {  // Into the fixed part.
    Reply reply;
    reply.AddDmaAvail(10);
    reply.SetFirst(8);
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("points back"));
  }
  {  // A `next` past the reply.
    Reply reply;
    const size_t cap = reply.AddDmaAvail(10);
    reply.SetNext(cap, 0xffffffff);
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("past the 40-byte reply"));
  }
}

TEST(IommuInfoTest, LoopsAreErrorsNotHangs) {
  {  // A capability naming itself.
    Reply reply;
    const size_t cap = reply.AddDmaAvail(10);
    reply.SetNext(cap, static_cast<uint32_t>(cap));
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("a loop"));
  }
  {  // The second naming the first.
    Reply reply;
    const size_t first = reply.AddIovaRanges({{0, kTop48}});
    const size_t second = reply.AddDmaAvail(10);
    reply.SetNext(second, static_cast<uint32_t>(first));
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("a loop"));
  }
}

TEST(IommuInfoTest, TruncatedHeadersAndBodiesAreErrors) {
  {  // A header cut by the end of the reply.
    Reply reply;
    const size_t cap = reply.AddDmaAvail(10);
    reply.Truncate(cap + 4);
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("lies outside the 28-byte reply"));
  }
  {  // An IOVA list claiming more ranges than it holds.
    Reply reply;
    const size_t cap = reply.AddIovaRanges({{0, kTop48}});
    reply.Put32(cap + 8, 3);
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("lists 3 ranges but has room for 1"));
  }
  {  // ... or a count that would overflow a 32-bit product.
    Reply reply;
    const size_t cap = reply.AddIovaRanges({{0, kTop48}});
    reply.Put32(cap + 8, 0x10000001);
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("has room for 1"));
  }
  {  // An IOVA list whose next capability starts inside its ranges.
    Reply reply;
    const size_t cap = reply.AddIovaRanges({{0, 0xfff}, {0x2000, kTop48}});
    reply.AddDmaAvail(10);
    reply.SetNext(cap, static_cast<uint32_t>(cap + 24));
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("has room for 0"));
  }
  {  // A DMA-available capability without its count.
    Reply reply;
    reply.AddIovaRanges({{0, kTop48}});
    const size_t cap = reply.AddDmaAvail(10);
    reply.Truncate(cap + 8);
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("cut short"));
  }
  {  // A range that ends before it starts.
    Reply reply;
    reply.AddIovaRanges({{0x2000, 0x1000}});
    EXPECT_THAT(DecodeError(reply.Bytes()), HasSubstr("ends (0x1000) before it starts (0x2000)"));
  }
}

// Whatever the bytes, decoding ends and stays inside the reply (run under
// ASan/UBSan in the sanitizer build): every 32-bit field of a valid reply
// replaced by values that matter for offsets and counts.
TEST(IommuInfoTest, CorruptedRepliesNeverReadOutside) {
  Reply reply;
  reply.AddMigration();
  reply.AddIovaRanges({{0, 0xfedfffff}, {0xfef00000, kTop48}});
  reply.AddDmaAvail(65535);
  const std::vector<uint8_t> good = reply.Bytes();
  for (size_t at = 0; at + 4 <= good.size(); at += 2) {
    for (uint32_t value : {0u, 1u, 4u, 8u, 23u, 24u, 0x20u, static_cast<uint32_t>(good.size()),
                           static_cast<uint32_t>(good.size() - 4), 0x7fffffffu, 0xffffffffu}) {
      std::vector<uint8_t> bad = good;
      std::memcpy(bad.data() + at, &value, 4);
      auto info = DecodeIommuInfo(bad);
      if (info.ok()) {
        for (const VfioIovaRange& r : info->iova_ranges) EXPECT_LE(r.start, r.last);
      }
    }
  }
}

// A stand-in for the kernel's vfio_iommu_type1_get_info: capabilities are
// copied only when argsz leaves room for them; otherwise argsz says how
// much they need and cap_offset stays 0.
class KernelGetInfo {
 public:
  explicit KernelGetInfo(std::vector<uint8_t> full) : full_(std::move(full)) {}
  absl::Status operator()(std::span<uint8_t> buffer) {
    ++calls;
    vfio_iommu_type1_info in;
    std::memcpy(&in, buffer.data(), sizeof(in));
    if (in.argsz != buffer.size()) return absl::InternalError("argsz is not the buffer's size");
    vfio_iommu_type1_info out;
    std::memcpy(&out, full_.data(), sizeof(out));
    const uint32_t needed = static_cast<uint32_t>(full_.size()) + grow * calls;
    if (in.argsz < needed) {
      out.argsz = needed;
      out.cap_offset = 0;
      std::memcpy(buffer.data(), &out, sizeof(out));
      return absl::OkStatus();
    }
    std::memcpy(buffer.data(), full_.data(), full_.size());
    out.argsz = in.argsz;
    std::memcpy(buffer.data(), &out, sizeof(out));
    return absl::OkStatus();
  }
  int calls = 0;
  uint32_t grow = 0;  // the kernel asks for this much more at every call

 private:
  std::vector<uint8_t> full_;
};

TEST(IommuInfoTest, QueryAsksAgainWithTheSizeTheKernelNames) {
  Reply reply;
  reply.AddIovaRanges({{0, 0xfedfffff}, {0xfef00000, kTop48}});
  reply.AddDmaAvail(65000);
  KernelGetInfo kernel(reply.Bytes());
  auto info = QueryIommuInfo(std::ref(kernel));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(kernel.calls, 2);
  ASSERT_TRUE(info->has_iova_ranges);
  EXPECT_EQ(info->iova_ranges.size(), 2u);
  EXPECT_EQ(info->dma_avail, 65000u);

  KernelGetInfo without_caps(Reply().Bytes());
  info = QueryIommuInfo(std::ref(without_caps));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(without_caps.calls, 1);
  EXPECT_FALSE(info->has_iova_ranges);
}

TEST(IommuInfoTest, QueryRefusesAReplyThatKeepsGrowingOrIsHuge) {
  Reply reply;
  reply.AddDmaAvail(1);
  KernelGetInfo growing(reply.Bytes());
  growing.grow = 8;
  auto info = QueryIommuInfo(std::ref(growing));
  ASSERT_FALSE(info.ok());
  EXPECT_THAT(std::string(info.status().message()), HasSubstr("grew again"));
  EXPECT_EQ(growing.calls, 2);
  KernelGetInfo huge(reply.Bytes());
  huge.grow = 64 << 20;
  info = QueryIommuInfo(std::ref(huge));
  ASSERT_FALSE(info.ok());
  EXPECT_THAT(std::string(info.status().message()), HasSubstr("byte reply (over"));
  EXPECT_EQ(huge.calls, 1);
}

// ------------------------------------------------------------ the checks ---

const std::vector<VfioIovaRange> kX86Usable = {{0, 0xfedfffff}, {0xfef00000, kTop48}};

TEST(IovaRangeCheckTest, RamInsideTheUsableRangesPasses) {
  // x86 guest RAM below the MMIO hole and above 4 GiB.
  const std::vector<RamRegion> x86_ram = {{0, 3 * kGiB}, {4 * kGiB, 2 * kGiB}};
  EXPECT_TRUE(CheckIovaRanges(x86_ram, kX86Usable, {}).ok());
  // arm64: RAM from 1 GiB, the SMMU's MSI doorbell at 0x08000000 below it.
  const std::vector<VfioIovaRange> smmu = {{0, 0x7ffffff}, {0x8100000, kTop48}};
  EXPECT_TRUE(CheckIovaRanges(std::vector<RamRegion>{{kGiB, 8 * kGiB}}, smmu, {}).ok());
  // Adjacent ranges cover RAM that crosses from one to the next.
  const std::vector<VfioIovaRange> split = {{0, 0xffffff}, {0x1000000, 0x1ffffff}};
  EXPECT_TRUE(CheckIovaRanges(std::vector<RamRegion>{{0x800000, 0x1000000}}, split, {}).ok());
}

TEST(IovaRangeCheckTest, HoleInTheMiddleNamesRamHoleAndGroup) {
  const std::vector<RamRegion> ram = {{0, 4 * kGiB}};
  const std::vector<GroupReservations> groups = {{5, {}}};
  absl::Status status = CheckIovaRanges(ram, kX86Usable, groups);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("guest RAM 0x0-0xffffffff overlaps the IOMMU's reserved range "
                        "0xfee00000-0xfeefffff of /dev/vfio/5: "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("--memory"));
}

// With several groups, sysfs names the one whose reserved region makes the
// hole (and its kind); relaxable regions are not holes.
TEST(IovaRangeCheckTest, SysfsNamesTheGroupBehindTheHole) {
  const std::vector<VfioIovaRange> usable = {{0, 0x7fffffff}, {0x90000000, kTop48}};
  const std::vector<GroupReservations> groups = {
      {3, {{0x80000000, 0x8fffffff, "direct-relaxable"}}},
      {7, {{0x80000000, 0x8fffffff, "direct"}, {0xfee00000, 0xfeefffff, "msi"}}}};
  absl::Status status = CheckIovaRanges(std::vector<RamRegion>{{0, 3 * kGiB}}, usable, groups);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("overlaps the IOMMU's reserved range 0x80000000-0x8fffffff of "
                                 "/dev/vfio/7 (/sys/kernel/iommu_groups/7/reserved_regions: "
                                 "0x80000000-0x8fffffff direct)"));
  EXPECT_THAT(message, Not(HasSubstr("/dev/vfio/3")));
  EXPECT_THAT(message, Not(HasSubstr("msi")));  // not where the RAM is
  // Without sysfs' word, every group of the container is named.
  status = CheckIovaRanges(std::vector<RamRegion>{{0, 3 * kGiB}}, usable,
                           std::vector<GroupReservations>{{3, {}}, {7, {}}});
  EXPECT_THAT(std::string(status.message()), HasSubstr("of /dev/vfio/3 and /dev/vfio/7"));
}

TEST(IovaRangeCheckTest, RamBeyondTheApertureOrBelowIt) {
  // A 39-bit IOMMU and RAM crossing 512 GiB.
  const std::vector<VfioIovaRange> narrow = {{0, (uint64_t{1} << 39) - 1}};
  const std::vector<GroupReservations> groups = {{2, {}}};
  absl::Status status = CheckIovaRanges(
      std::vector<RamRegion>{{0, kGiB}, {(uint64_t{1} << 39) - kGiB, 2 * kGiB}}, narrow, groups);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("guest RAM 0x7fc0000000-0x803fffffff reaches past 0x7fffffffff, the "
                        "highest IOVA the IOMMU of /dev/vfio/2 can map"));
  // An aperture that does not start at 0.
  status = CheckIovaRanges(std::vector<RamRegion>{{0, kGiB}},
                           std::vector<VfioIovaRange>{{0x100000, kTop48}}, groups);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("overlaps the IOMMU's reserved range 0x0-0xfffff (below its lowest "
                        "usable IOVA) of /dev/vfio/2"));
  // No range at all.
  status = CheckIovaRanges(std::vector<RamRegion>{{0, kGiB}}, {}, groups);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("reports none for /dev/vfio/2"));
}

TEST(DmaAvailCheckTest, CountsThePiecesGuestRamIsMappedIn) {
  constexpr uint64_t kChunk = VfioContainer::kDmaChunk;
  EXPECT_THAT(DmaPieces(kChunk / 2, 2 * kChunk, kChunk),
              ElementsAre(DmaPiece{kChunk / 2, kChunk / 2}, DmaPiece{kChunk, kChunk},
                          DmaPiece{2 * kChunk, kChunk / 2}));
  // 256 MiB at 0 and 64 MiB at 4 GiB: 8 + 2 pieces.
  const std::vector<RamRegion> ram = {{0, 256 * kMiB}, {4 * kGiB, 64 * kMiB}};
  const std::vector<GroupReservations> groups = {{4, {}}};
  EXPECT_TRUE(CheckDmaAvail(ram, kChunk, 10, groups).ok());
  absl::Status status = CheckDmaAvail(ram, kChunk, 9, groups);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("guest RAM (320 MiB) is DMA-mapped in 10 pieces of at most 32 MiB, but "
                        "the IOMMU container of /dev/vfio/4 takes only 9 more mappings"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("vfio_iommu_type1.dma_entry_limit"));
}

TEST(LockedMemoryCheckTest, LimitBelowGuestRamWithoutCapIpcLockFails) {
  LockedMemoryBudget budget;
  budget.limit = 8 * kMiB;
  absl::Status status = CheckLockedMemory(256 * kMiB, budget);
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("VFIO pins all 256 MiB of guest RAM"));
  EXPECT_THAT(message, HasSubstr("RLIMIT_MEMLOCK is 8 MiB and Skiff lacks CAP_IPC_LOCK"));
  EXPECT_THAT(message, HasSubstr("ulimit -l 262144"));
  EXPECT_THAT(message, HasSubstr("give Skiff CAP_IPC_LOCK"));
  // Memory locked already counts against the same limit.
  budget.limit = 256 * kMiB;
  EXPECT_TRUE(CheckLockedMemory(256 * kMiB, budget).ok());
  budget.locked = 64 * 1024;
  status = CheckLockedMemory(256 * kMiB, budget);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("(64 KiB of it locked already)"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("ulimit -l 262208"));
  // CAP_IPC_LOCK or no limit: nothing is charged against a limit.
  budget.cap_ipc_lock = true;
  EXPECT_TRUE(CheckLockedMemory(256 * kMiB, budget).ok());
  EXPECT_TRUE(CheckLockedMemory(256 * kMiB, LockedMemoryBudget{}).ok());
}

TEST(LockedMemoryCheckTest, MapDmaEnomemExplanationNamesTheLimitAndTheFix) {
  LockedMemoryBudget budget;
  budget.limit = 8 * kMiB;
  const std::string limited = LockedMemoryExplanation(budget);
  EXPECT_THAT(limited, HasSubstr("RLIMIT_MEMLOCK, which is 8 MiB"));
  EXPECT_THAT(limited, HasSubstr("ulimit -l"));
  EXPECT_THAT(limited, HasSubstr("CAP_IPC_LOCK"));
  budget.cap_ipc_lock = true;
  EXPECT_THAT(LockedMemoryExplanation(budget), HasSubstr("short of memory"));
}

TEST(FormatBytesTest, PicksTheLargestUnit) {
  EXPECT_EQ(FormatBytes(512), "512 bytes");
  EXPECT_EQ(FormatBytes(64 * 1024), "64 KiB");
  EXPECT_EQ(FormatBytes(3 * kGiB / 2), "1.5 GiB");
  EXPECT_EQ(FormatBytes(4 * kGiB), "4 GiB");
}

// ----------------------------------------------- the container, end to end ---

class ContainerDmaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_ = std::make_shared<FakeVfioKernel>();
    kernel_->groups[6].devices = {std::make_shared<FakePciFunction>(FakePciFunction::E1000e())};
    auto container = VfioContainer::Open(kernel_);
    ASSERT_TRUE(container.ok()) << container.status();
    container_ = *container;
    HostPciDevice host{"0000:00:01.0", 6, {{"0000:00:01.0", "vfio-pci"}}, {}};
    ASSERT_TRUE(container_->OpenDevice(host).ok());
    // 128 MiB of guest RAM at 0 (never touched: PROT_NONE).
    host_ = ::mmap(nullptr, kRam, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ASSERT_NE(host_, MAP_FAILED);
    auto memory = GuestMemory::Create({{0, kRam, static_cast<uint8_t*>(host_)}});
    ASSERT_TRUE(memory.ok());
    memory_ = *memory;
  }
  void TearDown() override {
    container_.reset();
    if (host_ != MAP_FAILED) ::munmap(host_, kRam);
  }
  size_t Mapped() const { return kernel_->containers.at(container_->fd()).dma.size(); }

  static constexpr uint64_t kRam = 128 * kMiB;  // 4 pieces
  std::shared_ptr<FakeVfioKernel> kernel_;
  std::shared_ptr<VfioContainer> container_;
  void* host_ = MAP_FAILED;
  GuestMemory memory_;
};

TEST_F(ContainerDmaTest, EverythingFitsAndIsMapped) {
  ASSERT_TRUE(container_->MapGuestMemory(memory_).ok());
  EXPECT_EQ(Mapped(), 4u);
  EXPECT_GE(kernel_->iommu_info_calls, 1);
}

// A reserved range inside guest RAM (past its first pieces): refused before
// any piece is mapped, with the hole named (the kernel's own refusal would
// only come after three pieces, as a bare EINVAL).
TEST_F(ContainerDmaTest, RamOverlappingAReservedRangeIsRefusedBeforeAnyMap) {
  kernel_->iova_ranges = {{0, 0x6dfffff}, {0x6f00000, kTop48}};
  absl::Status status = container_->MapGuestMemory(memory_);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("guest RAM 0x0-0x7ffffff overlaps the IOMMU's reserved range "
                        "0x6e00000-0x6efffff of /dev/vfio/6"));
  EXPECT_EQ(kernel_->map_dma_calls, 0);
  EXPECT_EQ(Mapped(), 0u);
}

TEST_F(ContainerDmaTest, TooFewDmaMappingsLeftIsRefusedBeforeAnyMap) {
  kernel_->dma_entry_limit = 3;
  absl::Status status = container_->MapGuestMemory(memory_);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("4 pieces"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("takes only 3 more mappings"));
  EXPECT_EQ(kernel_->map_dma_calls, 0);
}

TEST_F(ContainerDmaTest, MemlockBelowGuestRamIsRefusedBeforeAnyMap) {
  kernel_->memlock.limit = 64 * kMiB;
  absl::Status status = container_->MapGuestMemory(memory_);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("RLIMIT_MEMLOCK is 64 MiB"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("ulimit -l 131072"));
  EXPECT_EQ(kernel_->map_dma_calls, 0);
  // With CAP_IPC_LOCK the same limit does not apply.
  kernel_->memlock.cap_ipc_lock = true;
  ASSERT_TRUE(container_->MapGuestMemory(memory_).ok());
  EXPECT_EQ(Mapped(), 4u);
}

// A kernel that does not report the capabilities (before 5.4 / 5.10):
// nothing to check against, and mapping goes ahead.
TEST_F(ContainerDmaTest, KernelWithoutCapabilitiesIsNotChecked) {
  kernel_->report_iova_ranges = false;
  kernel_->dma_entry_limit.reset();
  ASSERT_TRUE(container_->MapGuestMemory(memory_).ok());
  EXPECT_EQ(Mapped(), 4u);
}

}  // namespace
}  // namespace skiff::vfio
