// What the operator asked for one disk (--disk path=FILE[,readonly=on][,direct=on]).
// Plain data, so the CLI can fill it without pulling in any device code.
#pragma once

#include <string>

namespace skiff::block {

struct DiskOptions {
  std::string path;       // a raw image file or a block device
  bool readonly = false;  // open O_RDONLY; the guest sees VIRTIO_BLK_F_RO
  bool direct = false;    // O_DIRECT: bypass the host page cache
  std::string serial;     // GET_ID answer: up to 20 printable ASCII bytes
};

}  // namespace skiff::block
