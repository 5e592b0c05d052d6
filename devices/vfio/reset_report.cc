#include "devices/vfio/reset_report.h"

#include "absl/strings/str_format.h"

namespace skiff::vfio {

ResetReport DescribeReset(const std::string& name, const std::string& reset_method,
                          bool vfio_can_reset) {
  if (!vfio_can_reset) {
    return {true, absl::StrFormat(
                      "%s: the host has no reset for it (no FLR, power-management or bus reset): "
                      "the state its previous owner left (DMA rings, receive and transmit units "
                      "left on) reaches this guest until the guest's driver reinitialises it",
                      name)};
  }
  if (reset_method.empty()) {
    return {false, absl::StrFormat("%s: reset by VFIO at start and at exit", name)};
  }
  // A power-management reset is only a D3hot->D0 transition, which a device
  // that advertises No_Soft_Reset=0 promises to act on; say so, since a
  // device that does not keep the promise keeps its previous owner's state.
  const bool pm_only = reset_method == "pm";
  return {false, absl::StrFormat("%s: reset by VFIO at start and at exit (host reset method: %s%s)",
                                 name, reset_method,
                                 pm_only ? "; a D3hot->D0 transition only, which the device "
                                           "itself must act on"
                                         : "")};
}

}  // namespace skiff::vfio
