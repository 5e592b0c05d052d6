// What a seccomp allow-list is made of: one entry per permitted system call
// (optionally only with certain argument values), with the reason it is
// needed. The lists themselves are data, one file per thread role:
// seccomp_common.cc (every thread), seccomp_main.cc, seccomp_vcpu.cc and
// seccomp_io.cc. A feature that makes a new system call on a running thread
// adds it there; docs/security.md lists the same entries (a unit test
// compares them).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace skiff::seccomp {

// (argument[index] & mask) == value.
struct ArgMatch {
  unsigned index;
  uint64_t mask;
  uint64_t value;
};

struct Rule {
  // The system call's name, resolved for the build's architecture by
  // libseccomp. A name this architecture lacks (open, poll, epoll_wait on
  // arm64) is skipped, so a list can name both the old and the *at forms.
  const char* syscall;
  // All must hold; empty allows any arguments. Several rules for one
  // system call are alternatives.
  std::vector<ArgMatch> args;
  // What the argument condition means, for the log and the docs
  // ("KVM_RUN", "no PROT_EXEC"); empty when args is.
  std::string condition;
  const char* why;
  // 0: allowed. Otherwise the call is not made and fails with this errno
  // (for a call glibc makes on its own and copes without).
  int fail_with = 0;
};

inline Rule Allow(const char* syscall, const char* why) { return Rule{syscall, {}, "", why}; }
inline Rule FailWith(const char* syscall, int error, const char* error_name, const char* why) {
  return Rule{syscall, {}, std::string("fails with ") + error_name, why, error};
}

// The kernel takes ioctl's request as a 32-bit unsigned int and ignores the
// upper half of the register, so only the low 32 bits are compared.
inline Rule AllowIoctl(uint32_t request, const char* request_name, const char* why) {
  return Rule{"ioctl", {ArgMatch{1, 0xffffffffu, request}}, request_name, why};
}

#define SKIFF_SECCOMP_IOCTL(request, why) ::skiff::seccomp::AllowIoctl(request, #request, why)

// Each list, without the common one (seccomp_<role>.cc).
std::vector<Rule> CommonRules();
std::vector<Rule> MainThreadRules();
std::vector<Rule> VcpuThreadRules();
// The vCPU's architecture-specific ioctls (the crash report), which the
// vCPU filter adds to VcpuThreadRules().
std::vector<Rule> VcpuArchRules();
std::vector<Rule> IoThreadRules();
// What a sanitizer build's runtime needs on every thread besides (none in
// a normal build); seccomp_common.cc.
std::vector<Rule> SanitizerRules();

}  // namespace skiff::seccomp
