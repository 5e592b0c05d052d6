#!/bin/sh
# Runs inside the test host (L1): boots the default guest N times with Skiff
# and with QEMU (-accel kvm), same kernel, initramfs, vCPUs and memory, and
# prints one line per boot:
#   BENCH vmm=<skiff|qemu> run=<i> rc=<exit code> userspace_s=<t> total_s=<t>
#         kvm_run_ms=<t> kvm_run_cpu_ms=<t> libs_ms=<t> setup_ms=<skiff log>
#         own_rss_kb=<kB> guest_rss_kb=<kB> hwm_kb=<kB>
# Times in s come from /proc/uptime (10 ms resolution); userspace is the moment
# the guest's banner appears on the console.
# kvm_run_ms / libs_ms: from exec to the first KVM_RUN ioctl / to the shared
# libraries being loaded, stamped by bench/boot_bench.sh's helpers
# (/bench/stamp-exec and /bench/kvm-run-stamp.so) the same way for both VMMs;
# kvm_run_cpu_ms is the CPU time the VMM had used by its first KVM_RUN.
# setup_ms: Skiff's own log time stamp of its first KVM_RUN (counted from its
# static initialisation, so without the dynamic loading in libs_ms).
# own_rss_kb: the VMM's resident memory beyond guest RAM, from
# /proc/PID/smaps when the banner appears: the total Rss minus the Rss of the
# anonymous mapping(s) exactly the size of guest RAM (Skiff and QEMU each map
# the 256 MiB in one piece); guest_rss_kb is that guest-RAM Rss. -1 when the
# banner was seen too late to sample (the VMM was already exiting).
# hwm_kb is VmHWM just before exit (guest RAM included).
RUNS=${RUNS:-3}
KERNEL=/guest/vmlinuz
INITRD=/guest/initramfs.cpio.gz
CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"
RAM_MIB=256
BANNER="SKIFF-GUEST: cpus="

now() { cut -d' ' -f1 /proc/uptime; }

# Prints "<own_rss_kb> <guest_rss_kb>" for process $1.
rss_split() {
  awk -v ram_kb=$((RAM_MIB * 1024)) '
    /^[0-9a-f]+-[0-9a-f]+ / { anon = (NF <= 5) }
    /^Size:/ { size = $2 }
    /^Rss:/ { total += $2; if (anon && size == ram_kb) guest += $2 }
    END { printf "%d %d\n", total - guest, guest }' "/proc/$1/smaps" 2>/dev/null
}

measure() {  # $1 = name, rest = command
  name=$1; shift
  out=/tmp/bench-$name.out
  export BENCH_STAMP_FILE=/tmp/bench-$name.stamp
  rm -f "$out" "$BENCH_STAMP_FILE"
  start=$(now)
  LD_PRELOAD=/bench/kvm-run-stamp.so /bench/stamp-exec "$@" > "$out" 2>&1 &
  pid=$!
  userspace=""
  hwm=0
  own=-1
  guest=-1
  while kill -0 "$pid" 2>/dev/null; do
    if [ -z "$userspace" ] && grep -q "$BANNER" "$out" 2>/dev/null; then
      userspace=$(now)
      # A sample taken while the VMM is already exiting (its guest RAM gone)
      # is no sample.
      set -- $(rss_split "$pid")
      [ -n "${1:-}" ] && [ "${2:-0}" -gt 0 ] && { own=$1; guest=$2; }
    fi
    h=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null)
    [ -n "$h" ] && hwm=$h
    sleep 0.01
  done
  wait "$pid"
  rc=$?
  end=$(now)
  [ -z "$userspace" ] && grep -q "$BANNER" "$out" && userspace=$end
  setup=$(sed -n 's/.* info boot: first KVM_RUN: \([0-9.]*\) s after VMM start.*/\1/p' "$out")
  stamps=$(tr ' ' '\n' < "$BENCH_STAMP_FILE" 2>/dev/null)
  kvm_run=$(echo "$stamps" | sed -n 's/^kvm_run_ms=//p')
  kvm_run_cpu=$(echo "$stamps" | sed -n 's/^kvm_run_cpu_ms=//p')
  libs=$(echo "$stamps" | sed -n 's/^libs_ms=//p')
  [ "$rc" -ne 0 ] && { echo "BENCH-FAILURE $name rc=$rc:"; tail -5 "$out" | sed 's/^/BENCH-FAILURE   /'; }
  awk -v n="$name" -v r="$run" -v s="$start" -v u="$userspace" -v e="$end" \
      -v h="$hwm" -v su="$setup" -v rc="$rc" -v kr="${kvm_run:--}" -v kc="${kvm_run_cpu:--}" \
      -v li="${libs:--}" -v own="$own" -v guest="$guest" 'BEGIN {
    printf "BENCH vmm=%s run=%s rc=%s userspace_s=%.2f total_s=%.2f kvm_run_ms=%s kvm_run_cpu_ms=%s libs_ms=%s setup_ms=%s own_rss_kb=%d guest_rss_kb=%d hwm_kb=%d\n",
      n, r, rc, (u == "" ? -1 : u - s), e - s, kr, kc, li,
      (su == "" ? "-" : sprintf("%.1f", su * 1000)), own, guest, h }'
}

run=1
while [ "$run" -le "$RUNS" ]; do
  measure skiff skiff run --kernel $KERNEL --initramfs $INITRD --cpus 2 --memory ${RAM_MIB}M \
      --cmdline "$CMDLINE" --log-level info
  measure qemu qemu-system-x86_64 -accel kvm -cpu host -M pc -smp 2 -m $RAM_MIB -nographic \
      -nodefaults -serial stdio -no-reboot -kernel $KERNEL -initrd $INITRD \
      -append "$CMDLINE"
  run=$((run + 1))
done
