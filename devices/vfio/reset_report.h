// What a passed-through function's reset between owners amounts to, said
// once at start-up. VFIO resets the function when Skiff opens it and when
// Skiff lets go, but only with a method the host kernel has for it, and a
// function that cannot be reset (or ignores its reset) hands its previous
// owner's state, DMA rings included, to the next guest (docs/vfio.md,
// "State that survives between guests"). The operator should know which.
#pragma once

#include <string>

namespace skiff::vfio {

struct ResetReport {
  bool warn = false;    // no reset at all: log as a warning
  std::string message;  // one line, naming the device
};

// `reset_method`: the host's <device>/reset_method ("flr pm", "pm", ...;
// empty when the kernel predates the file; HostPciDevice::reset_method).
// `vfio_can_reset`: VFIO_DEVICE_FLAGS_RESET of the opened device. Pure.
ResetReport DescribeReset(const std::string& name, const std::string& reset_method,
                          bool vfio_can_reset);

}  // namespace skiff::vfio
