// The device-status handshake of virtio 1.2 §3.1.1 as a table, shared by
// the transports: a driver write to device_status is accepted only if it
// is one of these steps (or sets FAILED, or writes 0 to reset, which the
// transport handles itself). Anything else is ignored, so a confused or
// hostile driver cannot, say, jump to DRIVER_OK without FEATURES_OK.
#pragma once

#include <linux/virtio_config.h>

#include <cstdint>

namespace skiff::virtio {

inline constexpr uint8_t kStatusAcknowledge = VIRTIO_CONFIG_S_ACKNOWLEDGE;
inline constexpr uint8_t kStatusDriver = VIRTIO_CONFIG_S_DRIVER;
inline constexpr uint8_t kStatusDriverOk = VIRTIO_CONFIG_S_DRIVER_OK;
inline constexpr uint8_t kStatusFeaturesOk = VIRTIO_CONFIG_S_FEATURES_OK;
inline constexpr uint8_t kStatusNeedsReset = VIRTIO_CONFIG_S_NEEDS_RESET;
inline constexpr uint8_t kStatusFailed = VIRTIO_CONFIG_S_FAILED;

struct StatusTransition {
  uint8_t from;
  uint8_t to;
};

inline constexpr StatusTransition kStatusTransitions[] = {
    {0, kStatusAcknowledge},
    {kStatusAcknowledge, kStatusAcknowledge | kStatusDriver},
    {kStatusAcknowledge | kStatusDriver, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk},
    {kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk,
     kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk},
};

// True when the driver may move device_status from `from` to `to` (both
// without DEVICE_NEEDS_RESET, which only the device sets). Rewriting the
// same value and adding FAILED are always allowed.
constexpr bool IsValidStatusTransition(uint8_t from, uint8_t to) {
  if (to == from || to == (from | kStatusFailed)) return true;
  for (const StatusTransition& t : kStatusTransitions) {
    if (t.from == from && t.to == to) return true;
  }
  return false;
}

// FEATURES_OK may be set only for a subset of what the device offered that
// includes VIRTIO_F_VERSION_1 (no legacy interface here).
constexpr bool AcceptableFeatures(uint64_t offered, uint64_t accepted) {
  return (accepted & ~offered) == 0 && (accepted & (uint64_t{1} << VIRTIO_F_VERSION_1)) != 0;
}

}  // namespace skiff::virtio
