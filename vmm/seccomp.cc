#include "vmm/seccomp.h"

#include <seccomp.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "vmm/seccomp_report.h"
#include "vmm/status_macros.h"

namespace skiff {
namespace {

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

absl::Status LibseccompError(ThreadRole role, const std::string& what, int rc) {
  return absl::InternalError(absl::StrFormat("seccomp filter for the %s thread: %s: %s",
                                             ThreadRoleName(role), what, std::strerror(-rc)));
}

absl::Status AddRule(ThreadRole role, scmp_filter_ctx ctx, const seccomp::Rule& rule) {
  const int nr = seccomp_syscall_resolve_name(rule.syscall);
  if (nr == __NR_SCMP_ERROR) {
    return absl::InternalError(absl::StrFormat(
        "seccomp filter for the %s thread: libseccomp does not know the system call '%s'",
        ThreadRoleName(role), rule.syscall));
  }
  if (nr < 0) return absl::OkStatus();  // not on this architecture (e.g. open on arm64)
  std::vector<scmp_arg_cmp> cmps;
  for (const seccomp::ArgMatch& m : rule.args) {
    cmps.push_back(scmp_arg_cmp{m.index, SCMP_CMP_MASKED_EQ, m.mask, m.value});
  }
  const uint32_t action = rule.fail_with == 0 ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(rule.fail_with);
  const int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(cmps.size()),
                                        cmps.data());
  if (rc < 0) {
    return LibseccompError(role, absl::StrCat("allowing ", rule.syscall, " ", rule.condition), rc);
  }
  return absl::OkStatus();
}

std::vector<seccomp::Rule> RoleRules(ThreadRole role) {
  switch (role) {
    case ThreadRole::kMain:
      return seccomp::MainThreadRules();
    case ThreadRole::kVcpu: {
      std::vector<seccomp::Rule> rules = seccomp::VcpuThreadRules();
      std::vector<seccomp::Rule> arch = seccomp::VcpuArchRules();
      rules.insert(rules.end(), arch.begin(), arch.end());
      return rules;
    }
    case ThreadRole::kIo:
      return seccomp::IoThreadRules();
  }
  return {};
}

absl::StatusOr<Filter> BuildFilter(ThreadRole role, SeccompMode mode) {
  // kOn traps rather than kills, so that Skiff can say which call it was
  // (a killed process leaves only an audit record most users never see).
  const uint32_t refuse = mode == SeccompMode::kOn ? SCMP_ACT_TRAP : SCMP_ACT_LOG;
  Filter filter(seccomp_init(refuse));
  if (!filter) {
    return absl::InternalError(absl::StrFormat(
        "seccomp filter for the %s thread: seccomp_init failed", ThreadRoleName(role)));
  }
  // A system call of another ABI (i386's int 0x80, x32) never belongs.
  if (int rc = seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
      rc < 0) {
    return LibseccompError(role, "bad-architecture action", rc);
  }
  for (const seccomp::Rule& rule : SeccompAllowList(role)) {
    RETURN_IF_ERROR(AddRule(role, filter.get(), rule));
  }
  return filter;
}

}  // namespace

absl::StatusOr<SeccompMode> ParseSeccompMode(std::string_view text) {
  for (SeccompMode mode : {SeccompMode::kOff, SeccompMode::kLog, SeccompMode::kOn}) {
    if (text == SeccompModeName(mode)) return mode;
  }
  return absl::InvalidArgumentError(absl::StrFormat("--seccomp '%s': use on, log or off", text));
}

const char* SeccompModeName(SeccompMode mode) {
  switch (mode) {
    case SeccompMode::kOff:
      return "off";
    case SeccompMode::kLog:
      return "log";
    case SeccompMode::kOn:
      return "on";
  }
  return "?";
}

const char* ThreadRoleName(ThreadRole role) {
  switch (role) {
    case ThreadRole::kMain:
      return "main";
    case ThreadRole::kVcpu:
      return "vcpu";
    case ThreadRole::kIo:
      return "io";
  }
  return "?";
}

std::vector<seccomp::Rule> SeccompAllowList(ThreadRole role) {
  std::vector<seccomp::Rule> rules = seccomp::CommonRules();
  std::vector<seccomp::Rule> own = RoleRules(role);
  rules.insert(rules.end(), own.begin(), own.end());
  std::vector<seccomp::Rule> sanitizer = seccomp::SanitizerRules();
  rules.insert(rules.end(), sanitizer.begin(), sanitizer.end());
  return rules;
}

absl::Status InstallSeccompFilter(ThreadRole role, SeccompMode mode) {
  if (mode == SeccompMode::kOff) return absl::OkStatus();
  ASSIGN_OR_RETURN(Filter filter, BuildFilter(role, mode));
  if (mode == SeccompMode::kOn) RETURN_IF_ERROR(PrepareSeccompReport(role));
  if (int rc = seccomp_load(filter.get()); rc < 0) return LibseccompError(role, "loading", rc);
  return absl::OkStatus();
}

absl::Status CheckSeccompFilters(SeccompMode mode) {
  if (mode == SeccompMode::kOff) return absl::OkStatus();
  for (ThreadRole role : {ThreadRole::kMain, ThreadRole::kVcpu, ThreadRole::kIo}) {
    RETURN_IF_ERROR(BuildFilter(role, mode).status());
  }
  // libseccomp's process-wide state (the kernel API level it detected, the
  // report's name table) is settled here, before threads build their own.
  (void)seccomp_api_get();
  PrepareSeccompNames();
  return absl::OkStatus();
}

std::string SeccompAllowListsMarkdown() {
  std::string out;
  auto table = [](const std::string& title, const std::vector<seccomp::Rule>& rules) {
    std::string text = absl::StrCat("#### ", title, "\n\n",
                                    "| system call | only when | why |\n| --- | --- | --- |\n");
    for (const seccomp::Rule& rule : rules) {
      absl::StrAppend(&text, "| `", rule.syscall, "` | ",
                      rule.condition.empty() ? "" : absl::StrCat("`", rule.condition, "`"), " | ",
                      rule.why, " |\n");
    }
    return text;
  };
  absl::StrAppend(&out, table("Every thread (seccomp_common.cc)", seccomp::CommonRules()), "\n");
  absl::StrAppend(&out, table("Main thread (seccomp_main.cc)", seccomp::MainThreadRules()), "\n");
  absl::StrAppend(&out, table("vCPU threads (seccomp_vcpu.cc)", seccomp::VcpuThreadRules()), "\n");
  absl::StrAppend(&out, table("I/O thread (seccomp_io.cc)", seccomp::IoThreadRules()));
  return out;
}

}  // namespace skiff
