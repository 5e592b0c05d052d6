#!/bin/sh
# Runs inside the test host (L1): boots the default guest N times with Skiff
# and with QEMU (-accel kvm), same kernel, initramfs, vCPUs and memory, and
# prints one line per boot:
#   BENCH vmm=<skiff|qemu> run=<i> userspace_s=<t> total_s=<t> hwm_kb=<peak RSS> setup_ms=<skiff only>
# Times come from /proc/uptime (10 ms resolution); userspace is the moment the
# guest's banner appears on the console; hwm is the VMM's VmHWM just before exit.
RUNS=${RUNS:-3}
KERNEL=/guest/vmlinuz
INITRD=/guest/initramfs.cpio.gz
CMDLINE="console=ttyS0 reboot=k panic=-1 quiet"

now() { cut -d' ' -f1 /proc/uptime; }

measure() {  # $1 = name, rest = command
  name=$1; shift
  out=/tmp/bench-$name.out
  rm -f "$out"
  start=$(now)
  "$@" > "$out" 2>&1 &
  pid=$!
  userspace=""
  hwm=0
  while kill -0 "$pid" 2>/dev/null; do
    if [ -z "$userspace" ] && grep -q "SKIFF-GUEST: cpus=" "$out" 2>/dev/null; then
      userspace=$(now)
    fi
    h=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null)
    [ -n "$h" ] && hwm=$h
    sleep 0.01
  done
  wait "$pid"
  rc=$?
  end=$(now)
  [ -z "$userspace" ] && grep -q "SKIFF-GUEST: cpus=" "$out" && userspace=$end
  setup=$(sed -n 's/^\[ *\([0-9.]*\)\] skiff info vcpu: first KVM_RUN.*/\1/p' "$out")
  [ "$rc" -ne 0 ] && { echo "BENCH-FAILURE $name rc=$rc:"; tail -5 "$out" | sed 's/^/BENCH-FAILURE   /'; }
  awk -v n="$name" -v r="$run" -v s="$start" -v u="$userspace" -v e="$end" \
      -v h="$hwm" -v su="$setup" -v rc="$rc" 'BEGIN {
    printf "BENCH vmm=%s run=%s rc=%s userspace_s=%.2f total_s=%.2f hwm_kb=%d setup_ms=%s\n",
      n, r, rc, (u == "" ? -1 : u - s), e - s, h, (su == "" ? "-" : sprintf("%.1f", su * 1000)) }'
}

run=1
while [ "$run" -le "$RUNS" ]; do
  measure skiff skiff run --kernel $KERNEL --initramfs $INITRD --cpus 2 --memory 256M \
      --cmdline "$CMDLINE" --log-level info
  measure qemu qemu-system-x86_64 -accel kvm -cpu host -M pc -smp 2 -m 256 -nographic \
      -nodefaults -serial stdio -no-reboot -kernel $KERNEL -initrd $INITRD \
      -append "$CMDLINE"
  run=$((run + 1))
done
