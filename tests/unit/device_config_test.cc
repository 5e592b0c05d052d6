#include "vmm/device_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "vmm/cli.h"

namespace skiff {
namespace {

using ::testing::HasSubstr;

TEST(ParseDiskOptionTest, AllSubOptions) {
  auto disk = ParseDiskOption("path=/tmp/d.img,readonly=on,direct=on,serial=abc,transport=mmio");
  ASSERT_TRUE(disk.ok()) << disk.status();
  EXPECT_EQ(disk->path, "/tmp/d.img");
  EXPECT_TRUE(disk->readonly);
  EXPECT_TRUE(disk->direct);
  EXPECT_EQ(disk->serial, "abc");
  EXPECT_EQ(disk->transport, VirtioTransport::kMmio);
}

TEST(ParseDiskOptionTest, Defaults) {
  auto disk = ParseDiskOption("path=d.img");
  ASSERT_TRUE(disk.ok());
  EXPECT_FALSE(disk->readonly);
  EXPECT_FALSE(disk->direct);
  EXPECT_FALSE(disk->transport.has_value());
}

TEST(ParseDiskOptionTest, RejectsBadInput) {
  EXPECT_THAT(ParseDiskOption("readonly=on").status().message(), HasSubstr("path=FILE"));
  EXPECT_THAT(ParseDiskOption("path=a,color=red").status().message(),
              HasSubstr("unknown sub-option 'color'"));
  EXPECT_THAT(ParseDiskOption("path=a,readonly=maybe").status().message(),
              HasSubstr("use on or off"));
  EXPECT_THAT(ParseDiskOption("path=a,path=b").status().message(), HasSubstr("twice"));
  EXPECT_THAT(ParseDiskOption("path=").status().message(), HasSubstr("needs a value"));
  EXPECT_THAT(ParseDiskOption("path=a,,readonly=on").status().message(), HasSubstr("empty"));
  EXPECT_THAT(ParseDiskOption("path=a,transport=isa").status().message(),
              HasSubstr("use mmio or pci"));
  EXPECT_THAT(ParseDiskOption("path=a,serial=123456789012345678901").status().message(),
              HasSubstr("20 bytes"));
}

TEST(ParseNetOptionTest, AllSubOptions) {
  auto net = ParseNetOption(
      "tap=tap0,mac=52:54:00:12:34:56,ip=10.0.2.1,mask=255.255.255.0,queues=2,vhost=on,"
      "transport=pci");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->tap, "tap0");
  EXPECT_EQ(*net->mac, (MacAddress{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}));
  EXPECT_EQ(*net->host_ip, "10.0.2.1");
  EXPECT_EQ(*net->host_mask, "255.255.255.0");
  EXPECT_EQ(net->queues, 2);
  EXPECT_TRUE(net->vhost);
  EXPECT_EQ(net->transport, VirtioTransport::kPci);
}

TEST(ParseNetOptionTest, RejectsBadInput) {
  EXPECT_THAT(ParseNetOption("mac=52:54:00:12:34:56").status().message(), HasSubstr("tap=NAME"));
  EXPECT_THAT(ParseNetOption("tap=t,mac=52:54:00:12:34").status().message(),
              HasSubstr("expected six hex pairs"));
  EXPECT_THAT(ParseNetOption("tap=t,mac=01:54:00:12:34:56").status().message(),
              HasSubstr("multicast"));
  EXPECT_THAT(ParseNetOption("tap=t,mac=zz:54:00:12:34:56").status().message(),
              HasSubstr("expected six hex pairs"));
  EXPECT_THAT(ParseNetOption("tap=t,ip=10.0.2.1").status().message(), HasSubstr("together"));
  EXPECT_THAT(ParseNetOption("tap=t,ip=10.0.2.300,mask=255.0.0.0").status().message(),
              HasSubstr("not an IPv4"));
  EXPECT_THAT(ParseNetOption("tap=t,queues=0").status().message(), HasSubstr("between 1"));
  EXPECT_THAT(ParseNetOption("tap=t,queues=99").status().message(), HasSubstr("between 1"));
  EXPECT_THAT(ParseNetOption("tap=averyveryverylongname").status().message(),
              HasSubstr("15 characters"));
  EXPECT_THAT(ParseNetOption("tap=t,speed=10G").status().message(),
              HasSubstr("unknown sub-option 'speed'"));
}

TEST(ParseCliDevicesTest, RepeatableDevicesKeepTheirCommas) {
  auto cmd = ParseCli({"run", "--kernel", "k", "--disk", "path=a.img,readonly=on", "--disk",
                       "path=b.img,transport=mmio", "--net", "tap=t0,mac=02:00:00:00:00:01",
                       "--console", "virtio", "--transport", "mmio"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  const VmConfig& config = cmd->config;
  ASSERT_EQ(config.disks.size(), 2u);
  EXPECT_EQ(config.disks[0].path, "a.img");
  EXPECT_TRUE(config.disks[0].readonly);
  EXPECT_EQ(config.disks[1].path, "b.img");
  EXPECT_EQ(config.disks[1].transport, VirtioTransport::kMmio);
  ASSERT_EQ(config.nets.size(), 1u);
  EXPECT_EQ(config.nets[0].tap, "t0");
  EXPECT_EQ(config.console, ConsoleDevice::kVirtio);
  EXPECT_EQ(config.default_transport, VirtioTransport::kMmio);
}

TEST(ParseCliDevicesTest, DefaultsToSerialConsoleAndPci) {
  auto cmd = ParseCli({"run", "--kernel", "k"});
  ASSERT_TRUE(cmd.ok());
  EXPECT_EQ(cmd->config.console, ConsoleDevice::kSerial);
  EXPECT_EQ(cmd->config.default_transport, VirtioTransport::kPci);
  EXPECT_TRUE(cmd->config.disks.empty());
}

TEST(ParseCliDevicesTest, BadValuesAreUsageErrors) {
  EXPECT_THAT(ParseCli({"run", "--kernel", "k", "--console", "vga"}).status().message(),
              HasSubstr("--console 'vga'"));
  EXPECT_THAT(ParseCli({"run", "--kernel", "k", "--transport", "isa"}).status().message(),
              HasSubstr("--transport 'isa'"));
  EXPECT_THAT(ParseCli({"run", "--kernel", "k", "--disk", "file=x"}).status().message(),
              HasSubstr("unknown sub-option 'file'"));
}

TEST(ParseDeviceOptionTest, RomIsOffUnlessAsked) {
  auto device = ParseDeviceOption("vfio=/sys/bus/pci/devices/0000:03:00.0");
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->address, "0000:03:00.0");
  EXPECT_FALSE(device->rom);
  for (const char* text : {"vfio=/sys/bus/pci/devices/0000:03:00.0,rom=on",
                           "0000:03:00.0,rom=on", "rom=yes,vfio=0000:03:00.0"}) {
    device = ParseDeviceOption(text);
    ASSERT_TRUE(device.ok()) << text << ": " << device.status();
    EXPECT_EQ(device->address, "0000:03:00.0") << text;
    EXPECT_TRUE(device->rom) << text;
  }
  device = ParseDeviceOption("vfio=0000:03:00.0,rom=off");
  ASSERT_TRUE(device.ok());
  EXPECT_FALSE(device->rom);
  EXPECT_EQ(device->rom_file, "");
}

TEST(ParseDeviceOptionTest, RomFromAFile) {
  auto device = ParseDeviceOption("vfio=0000:03:00.0,rom=/srv/roms/efi-e1000e.rom");
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_TRUE(device->rom);
  EXPECT_EQ(device->rom_file, "/srv/roms/efi-e1000e.rom");
  device = ParseDeviceOption("vfio=0000:03:00.0,rom=./on");  // a file called "on"
  ASSERT_TRUE(device.ok());
  EXPECT_EQ(device->rom_file, "./on");
}

TEST(ParseDeviceOptionTest, BadRomValuesAreOneClearError) {
  EXPECT_THAT(ParseDeviceOption("vfio=0000:03:00.0,rom").status().message(),
              HasSubstr("'rom' needs a value"));
  EXPECT_THAT(ParseDeviceOption("vfio=0000:03:00.0,rom=on,rom=off").status().message(),
              HasSubstr("'rom' given twice"));
  EXPECT_THAT(ParseDeviceOption("vfio=0000:03:00.0,romfile=x.rom").status().message(),
              HasSubstr("unknown sub-option 'romfile' (known: vfio, rom)"));
  EXPECT_THAT(ParseDeviceOption("0000:03:00.0,bar=1").status().message(),
              HasSubstr("unknown sub-option 'bar' (known: rom)"));
  EXPECT_THAT(ParseDeviceOption("rom=on").status().message(), HasSubstr("vfio=DDDD:BB:DD.F is required"));
  EXPECT_THAT(ParseDeviceOption("usb=1,rom=on").status().message(),
              HasSubstr("unknown device kind 'usb'"));
  EXPECT_FALSE(ParseDeviceOption("vfio=0000:03:00.0,").ok());
}

TEST(ParseCliDevicesTest, VfioDeviceWithRomKeepsItsSubOption) {
  auto cmd = ParseCli({"run", "--kernel", "k", "--device", "vfio=0000:03:00.0,rom=on", "--device",
                       "0000:04:00.0"});
  ASSERT_TRUE(cmd.ok()) << cmd.status();
  ASSERT_EQ(cmd->config.vfio_devices.size(), 2u);
  EXPECT_TRUE(cmd->config.vfio_devices[0].rom);
  EXPECT_FALSE(cmd->config.vfio_devices[1].rom);
  // One device twice is refused whatever its sub-options say.
  EXPECT_THAT(ParseCli({"run", "--kernel", "k", "--device", "vfio=0000:03:00.0,rom=on",
                        "--device", "vfio=0000:03:00.0"})
                  .status()
                  .message(),
              HasSubstr("given twice"));
}

}  // namespace
}  // namespace skiff
