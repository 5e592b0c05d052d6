#include "vmm/machine_control.h"

#include <unistd.h>

#include <cmath>

#include "absl/strings/str_format.h"
#include "vmm/cpu_placement.h"
#include "vmm/exit_codes.h"
#include "vmm/hugepages.h"
#include "vmm/log.h"
#include "vmm/machine.h"

namespace skiff {
namespace {

using json = nlohmann::json;

std::string Hex(uint64_t value) { return absl::StrFormat("0x%x", value); }

json Devices(const Bus& bus) {
  json out = json::array();
  for (const Bus::Entry& entry : bus.Entries()) {
    out.push_back({{"name", entry.device_name},
                   {"bus", bus.name()},
                   {"base", Hex(entry.base)},
                   {"size", entry.length}});
  }
  return out;
}

// A thread as `info` shows it: its id and where it may run right now.
json Thread(pid_t tid) {
  json out = {{"tid", tid}};
  if (std::optional<std::vector<uint32_t>> cpus = ThreadAffinity(tid)) {
    out["cpus_allowed"] = FormatCpuList(*cpus);
  }
  return out;
}

}  // namespace

json MachineControl::Status() {
  return {{"state", machine_.paused() ? "paused" : "running"},
          {"uptime_s", std::round(machine_.UptimeSeconds() * 1000) / 1000},
          {"vcpus", machine_.num_cpus()},
          {"pid", ::getpid()}};
}

absl::Status MachineControl::Pause() { return machine_.Pause(); }

absl::Status MachineControl::Resume() { return machine_.Resume(); }

absl::StatusOr<std::string> MachineControl::Shutdown(bool force) {
  if (force) {
    machine_.shutdown().Request(kExitSignal, "stopped over the control socket (shutdown --force)");
    return std::string("stop");
  }
  absl::StatusOr<std::string> pressed = machine_.PressPowerButton();
  if (pressed.ok()) LOG_INFO("control", "pressed the guest's power button (%s)", *pressed);
  return pressed;
}

absl::Status MachineControl::Reboot() {
  // Skiff ends the run on any guest reset (docs/exit-codes.md), so a hard
  // reset from outside ends it the same way: the supervisor starts it anew.
  machine_.shutdown().Request(kExitOk,
                              "reset over the control socket (reboot; Skiff ends the run on a "
                              "reset, as when the guest reboots)");
  return absl::OkStatus();
}

json MachineControl::Info() {
  const VmConfig& config = machine_.config();
  json vcpus = json::array();
  for (const auto& vcpu : machine_.vcpus()) {
    json entry = Thread(vcpu->host_tid());
    entry["index"] = vcpu->index();
    for (const VcpuAffinity& pin : config.placement.vcpu_affinity) {
      if (pin.vcpu == vcpu->index()) entry["affinity"] = FormatCpuList(pin.host_cpus);
    }
    if (config.placement.rt_priority) {
      entry["sched"] = absl::StrFormat("SCHED_FIFO %d", *config.placement.rt_priority);
    }
    vcpus.push_back(std::move(entry));
  }
  json io = Thread(machine_.io_thread_tid());
  if (config.placement.io_affinity) io["affinity"] = FormatCpuList(*config.placement.io_affinity);

  json regions = json::array();
  for (const GuestMemory::Region& region : machine_.memory().regions()) {
    regions.push_back({{"gpa", Hex(region.gpa)}, {"size", region.size}});
  }
  json memory = {
      {"bytes", machine_.memory().TotalSize()},
      {"regions", std::move(regions)},
      {"hugepages", config.hugepages ? json(FormatPageSize(config.hugepage_size)) : json(nullptr)},
      {"prefault", config.prefault}};

  json devices = Devices(machine_.pio_bus());
  for (json& device : Devices(machine_.mmio_bus())) devices.push_back(std::move(device));

  return {{"pid", ::getpid()},
          {"state", machine_.paused() ? "paused" : "running"},
          {"vcpus", std::move(vcpus)},
          {"io_thread", std::move(io)},
          {"memory", std::move(memory)},
          {"devices", std::move(devices)},
          {"kernel", config.kernel_path},
          {"api_socket", config.api_socket.value_or("")}};
}

}  // namespace skiff
