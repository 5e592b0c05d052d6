// seccomp-bpf confinement per thread role (docs/security.md#seccomp).
//
// Each thread Skiff starts installs the filter of its role once its own
// set-up is done and before it handles any guest input: the vCPU threads
// before their first KVM_RUN, the I/O thread before its first epoll_wait,
// the main thread once it has started the others (a filter is copied to
// threads created after it, so the main thread installs last). Filters are
// per thread (no TSYNC): each role gets exactly its own list.
//
// Modes (--seccomp): on = a call outside the list is trapped, Skiff prints
// which thread made which call and exits 1 (kExitVmmError); log = the
// kernel allows it and logs it (SECCOMP_RET_LOG: the audit log / dmesg);
// off = no filter.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "vmm/seccomp_rules.h"

namespace skiff {

enum class SeccompMode { kOff, kLog, kOn };
enum class ThreadRole { kMain, kVcpu, kIo };

absl::StatusOr<SeccompMode> ParseSeccompMode(std::string_view text);
const char* SeccompModeName(SeccompMode mode);
const char* ThreadRoleName(ThreadRole role);

// The role's whole list: the common rules, then the role's own.
std::vector<seccomp::Rule> SeccompAllowList(ThreadRole role);

// Builds every role's filter without loading it, so that a list libseccomp
// refuses is a set-up error, and settles libseccomp's process-wide state
// before threads build their own filters. Call once, before the threads.
absl::Status CheckSeccompFilters(SeccompMode mode);

// Installs `role`'s filter on the calling thread (no-op for kOff). In mode
// kOn it also installs the SIGSYS handler that reports the refused call.
// Irreversible for this thread and the threads it creates afterwards.
absl::Status InstallSeccompFilter(ThreadRole role, SeccompMode mode);

// The allow-lists as the Markdown docs/security.md carries between its
// "seccomp-lists" markers (one table per role).
std::string SeccompAllowListsMarkdown();

}  // namespace skiff
