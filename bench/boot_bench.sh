#!/usr/bin/env bash
# Boot benchmark, Skiff beside QEMU (not a test).
# Usage (after scripts/setup.sh has built Skiff):
#   bench/boot_bench.sh [RUNS]          full boots inside one test-host run
#   bench/boot_bench.sh native [RUNS]   set-up only (start -> first KVM_RUN)
#                                       on this machine's /dev/kvm
#   BENCH_PREFIX='chrt -f 10' bench/boot_bench.sh native [RUNS]
#                                       the same, each VMM run at a real-time
#                                       priority: on a busy machine, what the
#                                       set-up costs without waiting for a CPU
#
# Both modes time "set-up" the same way for both VMMs, with two small helpers
# built here from the C below:
#   stamp-exec      records CLOCK_MONOTONIC in BENCH_T0_NS, then execs the VMM;
#   kvm-run-stamp.so (LD_PRELOAD) appends to $BENCH_STAMP_FILE the ms from
#                   BENCH_T0_NS to its constructor (shared libraries loaded,
#                   "libs_ms") and to the process's first KVM_RUN ioctl
#                   ("kvm_run_ms"), each with the CPU time the process had
#                   used by then ("..._cpu_ms": on a loaded machine the wall
#                   time also counts waiting for a CPU); with
#                   BENCH_EXIT_AT_KVM_RUN=1 it then exits
#                   the process (the native mode: this machine's nested KVM
#                   cannot run a Linux guest, DESIGN.md section 5).
# The native mode prints one "BENCH-NATIVE" line per run and a summary line
# per VMM (median and min); the test-host mode prints the "BENCH" lines of
# bench/l1-boot-bench.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODE=testhost
if [ "${1:-}" = native ]; then MODE=native; shift; fi
RUNS=${1:-3}

TOOLS=$(mktemp -d "${TMPDIR:-/tmp}/skiff-boot-bench.XXXXXX")
trap 'rm -rf "$TOOLS"' EXIT

cat > "$TOOLS/stamp-exec.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2) { fputs("usage: stamp-exec PROGRAM [ARG...]\n", stderr); return 2; }
  struct timespec ts, cpu;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);  /* spent since fork, not ours */
  char t0[32];
  snprintf(t0, sizeof t0, "%lld", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  setenv("BENCH_T0_NS", t0, 1);
  snprintf(t0, sizeof t0, "%lld", (long long)cpu.tv_sec * 1000000000LL + cpu.tv_nsec);
  setenv("BENCH_CPU0_NS", t0, 1);
  execvp(argv[1], argv + 1);
  perror(argv[1]);
  return 127;
}
EOF
cat > "$TOOLS/kvm-run-stamp.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static atomic_int seen_kvm_run;
static double ms(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
static void stamp(const char *what) {
  const char *t0 = getenv("BENCH_T0_NS"), *cpu0 = getenv("BENCH_CPU0_NS");
  const char *file = getenv("BENCH_STAMP_FILE");
  if (t0 == NULL || cpu0 == NULL || file == NULL) return;
  double wall = ms(CLOCK_MONOTONIC) - atoll(t0) / 1e6;
  double cpu = ms(CLOCK_PROCESS_CPUTIME_ID) - atoll(cpu0) / 1e6;
  char line[96];
  int n = snprintf(line, sizeof line, "%s_ms=%.3f %s_cpu_ms=%.3f\n", what, wall, what, cpu);
  int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) { (void)!write(fd, line, n); close(fd); }
}
__attribute__((constructor)) static void libraries_loaded(void) { stamp("libs"); }
int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  if (request == KVM_RUN && atomic_exchange(&seen_kvm_run, 1) == 0) {
    stamp("kvm_run");
    if (getenv("BENCH_EXIT_AT_KVM_RUN") != NULL) _exit(0);
  }
  return syscall(SYS_ioctl, fd, request, arg);
}
EOF
cc -O2 -static -o "$TOOLS/stamp-exec" "$TOOLS/stamp-exec.c"
cc -O2 -shared -fPIC -o "$TOOLS/kvm-run-stamp.so" "$TOOLS/kvm-run-stamp.c"

if [ "$MODE" = testhost ]; then
  python3 "$ROOT/tests/testhost/testhost.py" run --arch x86_64 --with-qemu \
    --skiff "$ROOT/build/skiff" --timeout 900 \
    --put "$ROOT/bench/l1-boot-bench.sh:/bench/l1-boot-bench.sh" \
    --put "$TOOLS/stamp-exec:/bench/stamp-exec" \
    --put "$TOOLS/kvm-run-stamp.so:/bench/kvm-run-stamp.so" -- \
    "RUNS=$RUNS sh /bench/l1-boot-bench.sh" | grep -a '^BENCH'
  exit 0
fi

# Native: the same kernel, initramfs and machine shape as in the test host.
GUEST=$(python3 "$ROOT/images/skiffimg.py" guest x86_64)
KERNEL=$(sed -n 1p <<<"$GUEST") INITRD=$(sed -n 2p <<<"$GUEST")
CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
export BENCH_EXIT_AT_KVM_RUN=1 LD_PRELOAD="$TOOLS/kvm-run-stamp.so"
one() {  # $1 = name, rest = command; prints one BENCH-NATIVE line
  local name=$1; shift
  export BENCH_STAMP_FILE="$TOOLS/stamp"
  rm -f "$BENCH_STAMP_FILE"
  ${BENCH_PREFIX:-} "$TOOLS/stamp-exec" "$@" </dev/null >"$TOOLS/out" 2>&1 || true
  local stamps
  stamps=$(tr ' ' '\n' < "$BENCH_STAMP_FILE" 2>/dev/null || true)
  grep -q '^kvm_run_ms=' <<<"$stamps" || { echo "BENCH-FAILURE $name: no KVM_RUN:"; tail -3 "$TOOLS/out"; }
  echo "BENCH-NATIVE vmm=$name" $(grep -E '^(libs|kvm_run)_' <<<"$stamps")
}
summary() {  # $1 = name, $2 = field; median and min over the runs
  grep "^BENCH-NATIVE vmm=$1 " "$TOOLS/all" | tr ' ' '\n' | sed -n "s/^$2=//p" |
    grep -v '^-$' | sort -n | awk -v n="$1" -v f="$2" '{ v[NR] = $1 }
      END { if (NR) printf "BENCH-NATIVE-SUMMARY vmm=%s %s median=%.2f min=%.2f runs=%d\n",
                   n, f, (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], NR }'
}
: > "$TOOLS/all"
for i in $(seq "$RUNS"); do
  one skiff "$ROOT/build/skiff" run --kernel "$KERNEL" --initramfs "$INITRD" --cpus 2 \
      --memory 256M --cmdline "$CMDLINE" | tee -a "$TOOLS/all"
  # -arch-capabilities: this machine's nested KVM refuses QEMU's write of
  # MSR 0x10a, which QEMU makes just before its first KVM_RUN.
  one qemu qemu-system-x86_64 -accel kvm -cpu host,-arch-capabilities -M pc -smp 2 -m 256 \
      -display none -nodefaults -serial stdio -no-reboot -kernel "$KERNEL" -initrd "$INITRD" \
      -append "$CMDLINE" | tee -a "$TOOLS/all"
done
for vmm in skiff qemu; do
  for field in libs_ms libs_cpu_ms kvm_run_ms kvm_run_cpu_ms; do summary "$vmm" "$field"; done
done
