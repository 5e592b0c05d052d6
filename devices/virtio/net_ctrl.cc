#include "devices/virtio/net_ctrl.h"

#include "devices/virtio/net_abi.h"

namespace skiff::virtio {

NetCtrlOutcome HandleNetCtrlCommand(ChainReader& command, uint64_t features,
                                    uint16_t max_queue_pairs) {
  const NetCtrlOutcome error{vnet::kCtrlErr, std::nullopt};
  auto header = command.ReadObj<vnet::CtrlHeader>();
  if (!header.ok()) return error;
  if (header->class_id != vnet::kCtrlMq || header->command != vnet::kCtrlMqVqPairsSet) {
    return error;
  }
  if (!((features >> vnet::kFMq) & 1)) return error;
  // virtio_net_ctrl_mq.virtqueue_pairs, little-endian like all of virtio 1.x.
  auto pairs = command.ReadObj<uint16_t>();
  if (!pairs.ok()) return error;
  // §5.1.6.5.5: between VQ_PAIRS_MIN and max_virtqueue_pairs.
  if (*pairs < vnet::kCtrlMqVqPairsMin || *pairs > max_queue_pairs) return error;
  return NetCtrlOutcome{vnet::kCtrlOk, *pairs};
}

}  // namespace skiff::virtio
