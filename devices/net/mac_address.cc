#include "devices/net/mac_address.h"

#include <sys/random.h>

#include <random>

#include "absl/strings/str_format.h"

namespace skiff::net {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::Status Malformed(std::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrFormat("mac '%s': expected six hex pairs like 52:54:00:12:34:56", text));
}

}  // namespace

absl::StatusOr<MacAddress> ParseMac(std::string_view text) {
  // "xx:xx:xx:xx:xx:xx" is exactly 17 characters.
  if (text.size() != 17) return Malformed(text);
  const char separator = text[2];
  if (separator != ':' && separator != '-') return Malformed(text);
  MacAddress mac{};
  for (size_t i = 0; i < mac.size(); ++i) {
    const size_t at = i * 3;
    int high = HexValue(text[at]);
    int low = HexValue(text[at + 1]);
    if (high < 0 || low < 0) return Malformed(text);
    if (i + 1 < mac.size() && text[at + 2] != separator) return Malformed(text);
    mac[i] = static_cast<uint8_t>(high << 4 | low);
  }
  if (mac[0] & 0x01) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mac '%s': multicast address (lowest bit of the first octet set); a NIC "
                        "needs a unicast address such as 52:54:00:12:34:56",
                        text));
  }
  if (mac == MacAddress{}) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mac '%s': the all-zero address is not a valid NIC address", text));
  }
  return mac;
}

MacAddress RandomMac() {
  MacAddress mac{};
  if (::getrandom(mac.data(), mac.size(), 0) != static_cast<ssize_t>(mac.size())) {
    // getrandom cannot fail for 6 bytes once the pool is ready; fall back
    // to the C++ device rather than hand out a fixed address.
    std::random_device device;
    for (uint8_t& byte : mac) byte = static_cast<uint8_t>(device());
  }
  mac[0] = static_cast<uint8_t>((mac[0] & ~0x01) | 0x02);  // unicast, local
  return mac;
}

std::string FormatMac(const MacAddress& mac) {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                         mac[5]);
}

}  // namespace skiff::net
