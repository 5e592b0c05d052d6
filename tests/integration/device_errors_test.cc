// Bad --disk / --net / --console / --transport input: one clear line on
// stderr naming the problem, a non-zero exit code, and no guest started.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/fake_kernel.h"
#include "tests/integration/run_skiff.h"

namespace skiff {
namespace {

using testing::RunSkiff;
using testing::SkiffResult;

class DeviceErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("TMPDIR");
    base_ = std::string(dir ? dir : "/tmp") + "/skiff-dev-err-" + std::to_string(::getpid());
    kernel_ = base_ + "-kernel";
    disk_ = base_ + "-disk.img";
    std::vector<uint8_t> image = testing::FakeBzImage();
    FILE* f = std::fopen(kernel_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(image.data(), 1, image.size(), f);
    std::fclose(f);
    int fd = ::open(disk_.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
    ::close(fd);
  }
  void TearDown() override {
    ::unlink(kernel_.c_str());
    ::unlink(disk_.c_str());
  }

  SkiffResult Run(std::vector<std::string> extra) {
    std::vector<std::string> args = {"run", "--kernel", kernel_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSkiff(args);
  }

  static void ExpectOneLineError(const SkiffResult& r, int code, const std::string& needle) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("skiff: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << "the guest must not start: " << r.out;
  }

  std::string base_, kernel_, disk_;
};

TEST_F(DeviceErrorsTest, DiskFileMissingDirectoryOrNotWritable) {
  ExpectOneLineError(Run({"--disk", "path=/nonexistent/disk.img"}), 2,
                     "disk /nonexistent/disk.img");
  ExpectOneLineError(Run({"--disk", "path=/tmp"}), 2, "is a directory");
  // Refuses O_RDWR even for root, so the test holds when run as root.
  SkiffResult ro = Run({"--disk", "path=/sys/devices/system/cpu/online"});
  EXPECT_NE(ro.exit_code, 0);
  ExpectOneLineError(ro, ro.exit_code, "add readonly=on");
}

TEST_F(DeviceErrorsTest, MalformedSubOptions) {
  ExpectOneLineError(Run({"--disk", "path=" + disk_ + ",cache=none"}), 2,
                     "unknown sub-option 'cache'");
  ExpectOneLineError(Run({"--disk", "readonly=on"}), 2, "path=FILE");
  ExpectOneLineError(Run({"--net", "tap=t0,mac=52:54:00:12:34"}), 2, "mac '52:54:00:12:34'");
  ExpectOneLineError(Run({"--net", "tap=t0,mac=01:00:5e:00:00:01"}), 2, "multicast");
  ExpectOneLineError(Run({"--net", "tap=t0,queues=0"}), 2, "queues=0");
  ExpectOneLineError(Run({"--net", "ifname=t0"}), 2, "unknown sub-option 'ifname'");
  ExpectOneLineError(Run({"--console", "vga"}), 2, "--console 'vga'");
  ExpectOneLineError(Run({"--transport", "ccw"}), 2, "--transport 'ccw'");
}

TEST_F(DeviceErrorsTest, MoreMmioDevicesThanSlots) {
  std::vector<std::string> args;
  for (int i = 0; i < 10; ++i) {
    args.push_back("--disk");
    args.push_back("path=" + disk_ + ",readonly=on,transport=mmio");
  }
  ExpectOneLineError(Run(args), 2, "too many virtio-mmio devices");
}

TEST_F(DeviceErrorsTest, MorePciDevicesThanTheBusHolds) {
  std::vector<std::string> args;
  for (int i = 0; i < 32; ++i) {
    args.push_back("--disk");
    args.push_back("path=" + disk_ + ",readonly=on");
  }
  ExpectOneLineError(Run(args), 2, "PCI bus 0 has room for 31");
}

TEST_F(DeviceErrorsTest, VhostNetMissing) {
  if (::access("/dev/vhost-net", F_OK) == 0) {
    GTEST_SKIP() << "this machine has /dev/vhost-net; the missing-device path is unit-tested";
  }
  SkiffResult r = Run({"--net", "tap=skiffvh" + std::to_string(::getpid() % 10000) + ",vhost=on"});
  EXPECT_NE(r.exit_code, 0);
  ExpectOneLineError(r, r.exit_code, "/dev/vhost-net");
}

TEST_F(DeviceErrorsTest, ALockedImageIsRefused) {
  int fd = ::open(disk_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // another VM holds it
  SkiffResult r = Run({"--disk", "path=" + disk_});
  EXPECT_NE(r.exit_code, 0);
  ExpectOneLineError(r, r.exit_code, disk_);
  ::close(fd);
}

TEST_F(DeviceErrorsTest, MalformedVfioDevice) {
  ExpectOneLineError(Run({"--device", "pci=0000:00:01.0"}), 2, "unknown device kind 'pci'");
  ExpectOneLineError(Run({"--device", "vfio=zz:00.0"}), 2, "not a PCI device address");
  ExpectOneLineError(Run({"--device", "vfio=/dev/vfio/1"}), 2, "not a PCI device address");
  ExpectOneLineError(Run({"--device", "vfio=0000:00:01.0", "--device", "00:01.0"}), 2,
                     "given twice");
}

TEST_F(DeviceErrorsTest, VfioPathThatIsNotAPciDevice) {
  const std::string absent = "/sys/bus/pci/devices/0000:7f:1f.7";
  ASSERT_FALSE(std::filesystem::exists(absent)) << "pick another absent address";
  // --kvm-device points nowhere: the VFIO check must come first.
  ExpectOneLineError(Run({"--kvm-device", "/nonexistent/kvm", "--device", "vfio=" + absent}), 2,
                     "is not a PCI device on this host");
}

// A real device of this host that is not bound to vfio-pci: the message
// depends on what sysfs says (no IOMMU group here means no IOMMU), so the
// expectation is read from sysfs too.
TEST_F(DeviceErrorsTest, VfioHostDeviceNotUsable) {
  namespace fs = std::filesystem;
  std::string device, needle;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/bus/pci/devices", ec)) {
    const fs::path driver = entry.path() / "driver";
    const std::string bound = fs::exists(driver) ? fs::read_symlink(driver).filename().string() : "";
    if (bound == "vfio-pci") continue;
    device = entry.path().filename().string();
    if (!fs::exists(entry.path() / "iommu_group")) {
      needle = "enable the IOMMU (intel_iommu=on / iommu=pt";
    } else if (bound.empty()) {
      needle = "bound to no driver, not vfio-pci: echo vfio-pci > ";
    } else {
      needle = "bound to driver " + bound + ", not vfio-pci: echo vfio-pci > ";
    }
    break;
  }
  ASSERT_FALSE(device.empty()) << "no PCI device on this host outside vfio-pci";
  SkiffResult r = Run({"--kvm-device", "/nonexistent/kvm", "--device", "vfio=" + device});
  EXPECT_NE(r.exit_code, 0);
  ExpectOneLineError(r, r.exit_code, needle);
  EXPECT_NE(r.err.find(device), std::string::npos) << r.err;
}

}  // namespace
}  // namespace skiff
