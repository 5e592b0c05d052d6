// virtio-net control queue commands (virtio 1.2 §5.1.6.5).
//
// Skiff offers VIRTIO_NET_F_CTRL_VQ only to carry multiqueue's
// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET. Every other class needs a feature Skiff
// does not offer (CTRL_RX, CTRL_MAC_ADDR, CTRL_VLAN, GUEST_ANNOUNCE,
// CTRL_GUEST_OFFLOADS, RSS, NOTF_COAL), so a driver sending one gets
// VIRTIO_NET_ERR, as it would from a device without the feature.
#pragma once

#include <cstdint>
#include <optional>

#include "devices/virtio/queue.h"

namespace skiff::virtio {

struct NetCtrlOutcome {
  uint8_t ack = 0;  // vnet::kCtrlOk or vnet::kCtrlErr
  // VQ_PAIRS_SET accepted: the number of queue pairs the driver now uses.
  std::optional<uint16_t> queue_pairs;
};

// Decodes one command (class, command, data) from the readable part of a
// control chain. `features` are the negotiated ones; `max_queue_pairs` is
// what config space advertises. Short or unknown commands answer ERR.
NetCtrlOutcome HandleNetCtrlCommand(ChainReader& command, uint64_t features,
                                    uint16_t max_queue_pairs);

}  // namespace skiff::virtio
