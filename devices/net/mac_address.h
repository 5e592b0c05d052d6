// Ethernet MAC addresses as the user writes them ("52:54:00:12:34:56") and
// as the guest sees them in virtio-net's configuration space.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace skiff::net {

using MacAddress = std::array<uint8_t, 6>;

// Six two-digit hex groups separated by ':' (or all by '-'). Refuses
// malformed text, multicast/broadcast addresses (bit 0 of the first octet:
// a NIC address must be unicast) and the all-zero address.
absl::StatusOr<MacAddress> ParseMac(std::string_view text);

// A random unicast, locally administered address (bit 1 of the first octet
// set), for NICs the user gave no address: it cannot clash with a vendor's.
MacAddress RandomMac();

std::string FormatMac(const MacAddress& mac);

}  // namespace skiff::net
