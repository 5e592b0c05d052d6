#include "arch/arm64/fsl_mc_wiring.h"

#include "absl/strings/str_format.h"
#include "arch/arm64/layout.h"
#include "arch/arm64/platform_fdt.h"
#include "vmm/status_macros.h"

namespace skiff::arm64 {

absl::StatusOr<vfio::fsl_mc::FslMcNodeParams> AttachFslMc(vfio::fsl_mc::FslMcContainer& mc,
                                                          const FslMcWiring& wiring) {
  const std::string what = "--device fsl-mc=" + mc.name();
  if (!wiring.has_its) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: needs a GICv3 ITS for the container's MSIs, and this host's KVM gave the guest a "
        "vGIC without one",
        what));
  }
  vfio::fsl_mc::FslMcEnv env;
  env.msi = wiring.msi;
  env.slots = wiring.slots;
  env.mmio = wiring.mmio;
  env.ids = kFslMcGuestIds;
  env.page_size = wiring.page_size;
  absl::Status attached = mc.Attach({kFslMcBase, kFslMcSize}, env);
  if (!attached.ok()) {
    return absl::Status(attached.code(), absl::StrFormat("%s: %s", what, attached.message()));
  }
  return mc.node_params(kMsiPhandle);
}

}  // namespace skiff::arm64
