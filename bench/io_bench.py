#!/usr/bin/env python3
"""virtio I/O benchmark: Skiff beside QEMU in ONE test-host run (not a test).

    bench/io_bench.py [--skiff build/skiff] [--rounds 3] [--secs 5]
                      [--only blk|net] [--vmm both|skiff|qemu] [--log FILE]
    bench/io_bench.py --from-log FILE...   # the table again from saved runs (pooled)

Inside the L1 test host (tests/testhost) every configuration boots the same
L2 guest (Debian's cloud kernel, busybox, plus fio and iperf3 with their
shared libraries) and the guest measures (bench/io_guest.sh):

  blk   fio on the raw virtio disk, O_DIRECT, libaio: sequential read and
        write (1 MiB blocks, 8 in flight) in MB/s, 4 KiB random read and
        write (32 in flight) in IOPS.  The disk is a 256 MiB raw file on
        L1's tmpfs, opened buffered by both VMMs (QEMU cache=writeback).
  net   iperf3 against a server on the L1 side of a tap: TCP guest->host
        (tcp_tx), host->guest (tcp_rx) in Mbit/s, 64-byte UDP guest->host
        (udp_tx) in packets per second received by the host.

Configurations (VM command lines rendered by tests/e2e/vmspec.py, so the
two VMMs get the same machine): Skiff virtio-blk over pci and over mmio vs
QEMU virtio-blk-pci; Skiff virtio-net (pci) on tap and with vhost=on vs QEMU
virtio-net-pci on tap and with vhost=on.  All configurations boot once per
round, in turn, so load from elsewhere on the machine spreads over all of
them; the table shows medians over the rounds and Skiff/QEMU ratios.
"""

import argparse
import dataclasses
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
GUEST_SCRIPT = os.path.join(HERE, "io_guest.sh")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tests", "testhost"))
sys.path.insert(0, os.path.join(ROOT, "images"))
import skiffimg  # noqa: E402
import testhost  # noqa: E402
import vmspec  # noqa: E402

GUEST_TOOLS = ["fio", "iperf3"]          # Debian packages of the same names
TAP = "bench0"
HOST_IP, GUEST_IP, MASK = "10.0.2.1", "10.0.2.15", "255.255.255.0"
MAC = "52:54:00:be:4c:01"
DISK = "/bench/disk.img"                 # L1 tmpfs
DISK_MIB = 256
GUEST_MIB = 512                          # fio's libraries take ~85 MB of initramfs
L1_INITRD = "/tmp/initrd"
L1_MIB = 3072
BOOT_TIMEOUT = 300                       # seconds per VMM run, inside L1


@dataclasses.dataclass
class Config:
    name: str
    kind: str            # blk | net
    vmm: str             # skiff | qemu
    transport: str = "pci"
    vhost: bool = False


CONFIGS = [
    Config("skiff-pci", "blk", "skiff", "pci"),
    Config("skiff-mmio", "blk", "skiff", "mmio"),
    Config("qemu-pci", "blk", "qemu", "pci"),
    Config("skiff-tap", "net", "skiff", "pci"),
    Config("skiff-vhost", "net", "skiff", "pci", vhost=True),
    Config("qemu-tap", "net", "qemu", "pci"),
    Config("qemu-vhost", "net", "qemu", "pci", vhost=True),
]

# (test, unit, label) per kind, in table order.
TESTS = {
    "blk": [("seqread", "MB/s", "sequential read"), ("seqwrite", "MB/s", "sequential write"),
            ("randread", "IOPS", "4 KiB random read"), ("randwrite", "IOPS", "4 KiB random write")],
    "net": [("tcp_tx", "Mbit/s", "TCP guest→host"), ("tcp_rx", "Mbit/s", "TCP host→guest"),
            ("udp_tx", "pps", "64-byte UDP guest→host")],
}
# Table columns: (Skiff config, QEMU config it is compared with).
PAIRS = {
    "blk": [("skiff-pci", "qemu-pci"), ("skiff-mmio", "qemu-pci")],
    "net": [("skiff-tap", "qemu-tap"), ("skiff-vhost", "qemu-vhost")],
}


def cmdline(kind, secs):
    c = "console=ttyS0 reboot=k panic=-1 quiet bench.mode=%s bench.secs=%d" % (kind, secs)
    if kind == "net":
        c += " bench.host=%s bench.guest=%s bench.prefix=%d" % (
            HOST_IP, GUEST_IP, vmspec.prefix_len(MASK))
    return c


def machine(cfg, secs):
    spec = vmspec.VmSpec(kernel="/guest/vmlinuz", initramfs=L1_INITRD,
                         cmdline=cmdline(cfg.kind, secs), cpus=1, memory_mib=GUEST_MIB,
                         transport=cfg.transport, console="serial")
    if cfg.kind == "blk":
        spec.disks = [vmspec.Disk(DISK)]
    else:
        spec.nets = [vmspec.Net(TAP, mac=MAC, vhost=cfg.vhost)]
    return spec


# ------------------------------------------------------------------ L1 ---

L1_PROLOGUE = r"""
# The plain cpio goes first: the kernel reads an uncompressed archive only at
# a 4-byte aligned offset of the initrd, and the gzip'd guest image's length
# is arbitrary.
cat /bench/guest-bench.cpio /guest/initramfs.cpio.gz > {initrd}
dd if=/dev/zero of={disk} bs=1M count={disk_mib} 2>/dev/null
tunctl -t {tap} >/dev/null && ip addr add {host_ip}/{prefix} dev {tap} && ip link set {tap} up \
    || echo "BENCH-LOG tap setup failed"
"""

# `boot CONFIG ROUND KIND VMM-ARGV...` in L1: runs one VMM (killed after
# {timeout} s), with an iperf3 server on {host_ip}:{port} when KIND is net,
# and prints the guest's BENCH lines tagged with the config and round, then
# "BENCH-BOOT-END ... rc= done= secs=" (parse() reads them).
L1_BOOT = r"""
IPERF="/bench/lib/ld-linux-x86-64.so.2 --library-path /bench/lib /bench/bin/iperf3"
now() {{ cut -d' ' -f1 /proc/uptime; }}
boot() {{  # config round kind argv...
    name=$1; round=$2; kind=$3; shift 3
    echo "BENCH-BOOT config=$name round=$round"
    if [ "$kind" = net ]; then
        $IPERF -s -B {host_ip} -p {port} >/tmp/iperf-server.log 2>&1 &
        server=$!
    fi
    start=$(now)
    timeout -s KILL {timeout} "$@" >/tmp/vmm.out 2>&1
    rc=$?
    end=$(now)
    [ "$kind" = net ] && {{ kill $server; wait $server; }} 2>/dev/null
    tr -d '\r' </tmp/vmm.out | grep -ao 'BENCH-[A-Z]* .*' \
        | sed "s/^\(BENCH-[A-Z]*\) /\1 config=$name round=$round /"
    # Skiff's own warnings and errors (its log lines read "SECONDS.MICROS LEVEL SUBSYSTEM: ...").
    tr -d '\r' </tmp/vmm.out | grep -a -m 10 -E '[0-9]+\.[0-9]{{6}} (warn|error) [a-z0-9-]+: ' \
        | sed "s/^/BENCH-VMMLOG config=$name round=$round: /"
    done=0
    grep -aq BENCH-DONE /tmp/vmm.out && done=1
    echo "BENCH-BOOT-END config=$name round=$round rc=$rc done=$done secs=$(awk "BEGIN {{print $end - $start}}")"
    if [ $rc != 0 ] || [ $done = 0 ] || grep -aq 'BENCH-RESULT.* error=' /tmp/vmm.out; then
        # The first lines of a guest oops, then the end of the VMM's output.
        tr -d '\r' </tmp/vmm.out | grep -a -m 6 -E 'WARNING:|BUG:|Oops|Kernel panic|double fault|general protection' \
            | sed "s/^/BENCH-LOG config=$name round=$round: /"
        tr -d '\r' </tmp/vmm.out | tail -n 30 | sed "s/^/BENCH-LOG config=$name round=$round: /"
    fi
}}
"""


def l1_command(configs, rounds, secs):
    lines = [L1_PROLOGUE.format(initrd=L1_INITRD, disk=DISK, disk_mib=DISK_MIB, tap=TAP,
                                host_ip=HOST_IP, prefix=vmspec.prefix_len(MASK)),
             L1_BOOT.format(host_ip=HOST_IP, port=5201, timeout=BOOT_TIMEOUT)]
    for r in range(1, rounds + 1):
        for cfg in configs:
            spec = machine(cfg, secs)
            lines += vmspec.tap_setup_commands(spec, cfg.vmm)
            lines.append("boot %s %d %s %s" % (cfg.name, r, cfg.kind,
                                               vmspec.shell_join(vmspec.vmm_argv(spec, cfg.vmm))))
    return "\n".join(lines)


# --------------------------------------------------------------- images ---

def guest_cpio(out, tools=GUEST_TOOLS):
    """TOOLS (fio, iperf3, with their libraries, at the host's paths) and
    /autorun, as a plain cpio to put before the guest image."""
    cp = skiffimg.Cpio()
    for tool in tools:
        path = shutil.which(tool)
        if not path:
            sys.exit("io_bench: %s not found; apt-get install $(cat bench/deps-x86_64.txt)" % tool)
        cp.file("usr/bin/" + tool, src=path, mode=0o755)
        for lib in testhost.ldd_libs(path):
            cp.file(lib, src=lib, mode=0o755)
    cp.file("autorun", src=GUEST_SCRIPT, mode=0o755)
    cp.write(out, compress=False)


def l1_iperf_puts():
    """iperf3 for L1 (the server): the binary in /bench/bin, its libraries
    and loader in /bench/lib (L1 has no libraries of its own)."""
    path = shutil.which("iperf3")
    puts = ["--put", "%s:/bench/bin/iperf3" % path]
    for lib in testhost.ldd_libs(path):
        puts += ["--put", "%s:/bench/lib/%s" % (os.path.realpath(lib), os.path.basename(lib))]
    return puts


# --------------------------------------------------------------- results ---

LINE_RE = re.compile(r"^(BENCH-[A-Z-]+) (.*)$")


def parse(out, run=""):
    """-> (values {(config, test): {round: float}}, errors [str], boots {config: [secs]}).
    RUN prefixes the round numbers when several runs are pooled."""
    values, errors, boots = {}, [], {}
    for raw in out.splitlines():
        m = LINE_RE.match(raw.strip())
        if not m:
            continue
        kind, rest = m.groups()
        kv = dict(t.split("=", 1) for t in rest.split() if "=" in t)
        kv["round"] = run + kv.get("round", "?")
        cfg = kv.get("config")
        if kind == "BENCH-RESULT" and cfg:
            if "error" in kv:
                errors.append("%s round %s %s: %s" % (cfg, kv.get("round"), kv.get("test"),
                                                      kv["error"]))
            else:
                values.setdefault((cfg, kv["test"]), {})[kv.get("round")] = float(kv["value"])
        elif kind == "BENCH-BOOT-END" and cfg:
            boots.setdefault(cfg, []).append(float(kv.get("secs", "nan")))
            if kv.get("rc") != "0":
                errors.append("%s round %s: VMM exit status %s" % (cfg, kv.get("round"),
                                                                   kv.get("rc")))
            elif kv.get("done") == "0":
                errors.append("%s round %s: the guest did not finish (crash? see its output)"
                              % (cfg, kv.get("round")))
    return values, errors, boots


def fmt(v, unit):
    if v is None:
        return "—"
    if unit in ("IOPS", "pps", "irq/s", "rt/s", "us"):
        return "%.0f" % v
    return "%.1f" % v if v < 1000 else "%.0f" % v


def median(values, cfg, test):
    vs = values.get((cfg, test))
    return statistics.median(vs.values()) if vs else None


def table(values, kinds):
    """Markdown tables: medians and Skiff/QEMU ratios."""
    out = []
    for kind in kinds:
        pairs = PAIRS[kind]
        head = ["test", "unit"]
        for s, q in pairs:
            head += [s, q, "ratio"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + " --- |" * len(head))
        for test, unit, label in TESTS[kind]:
            row = [label, unit]
            for s, q in pairs:
                sv, qv = median(values, s, test), median(values, q, test)
                ratio = "%.2f" % (sv / qv) if sv is not None and qv else "—"
                rounds = [r for r in values.get((s, test), {}) if r in values.get((q, test), {})]
                ahead = sum(values[(s, test)][r] > values[(q, test)][r] for r in rounds)
                if rounds:
                    ratio += " (%d/%d)" % (ahead, len(rounds))
                row += [fmt(sv, unit), fmt(qv, unit), ratio]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def raw_table(values, boots, configs):
    out = []
    for cfg in configs:
        for test, unit, _ in TESTS[cfg.kind]:
            vs = values.get((cfg.name, test), {})
            out.append("%-12s %-10s %-7s %s" % (cfg.name, test, unit, " ".join(
                "r%s=%s" % (r, fmt(v, unit)) for r, v in vs.items()) or "-"))
        b = boots.get(cfg.name, [])
        out.append("%-12s %-10s %-7s %s" % (cfg.name, "vmm-run", "s",
                                           " ".join("%.1f" % v for v in b) or "-"))
    return "\n".join(out)


def round_ratios(values, kinds):
    """Skiff/QEMU per round, to see whether a median ratio holds round by round."""
    out = []
    for kind in kinds:
        for test, _, _ in TESTS[kind]:
            for s, q in PAIRS[kind]:
                sv, qv = values.get((s, test), {}), values.get((q, test), {})
                rs = ["r%s=%.2f" % (r, sv[r] / qv[r]) for r in sv if r in qv and qv[r]]
                out.append("%-24s %-10s %s" % (s + "/" + q, test, " ".join(rs) or "-"))
    return "\n".join(out)


def report(outs, configs):
    """OUTS: the raw output of one run or more (pooled; rounds become A1, B1...)."""
    values, errors, boots = {}, [], {}
    for i, out in enumerate(outs):
        v, e, b = parse(out, chr(ord("A") + i) if len(outs) > 1 else "")
        for k, rounds in v.items():
            values.setdefault(k, {}).update(rounds)
        errors += e
        for k, secs in b.items():
            boots.setdefault(k, []).extend(secs)
    out = "\n".join(outs)
    kinds = [k for k in ("blk", "net") if any(c.kind == k for c in configs)]
    print("\nPer round (config, test, unit, value of each round rN; vmm-run: seconds per boot):")
    print(raw_table(values, boots, configs))
    print("\nSkiff/QEMU round by round:")
    print(round_ratios(values, kinds))
    print("\nMedians (ratio = Skiff / QEMU, above 1 is better for Skiff; (n/m): Skiff ahead "
          "in n of m rounds):\n")
    print(table(values, kinds))
    vmmlogs = [line for line in out.splitlines() if line.startswith("BENCH-VMMLOG")]
    if vmmlogs:
        print("Skiff warnings and errors:")
        print("\n".join(vmmlogs))
    logs = [line for line in out.splitlines() if line.startswith("BENCH-LOG")]
    if logs:
        print("VMM output of the boots with problems:")
        print("\n".join(logs))
    if errors:
        print("\nProblems (a failed measurement is left out of the medians):")
        for e in errors:
            print("  " + e)
    return 1 if errors else 0


# ------------------------------------------------------------------ main ---

def host_load():
    with open("/proc/loadavg") as f:
        return "/".join(f.read().split()[:3])


def finish_run(name, rc, t0, load_before, out, log_path, report, configs):
    """Ends a benchmark run: its summary line after the test host's output,
    all of it saved to LOG_PATH (if given), then REPORT's tables. The exit
    status is REPORT's, or 1 if the test host failed."""
    summary = run_summary(name, rc, t0, load_before)
    text = "".join(out) + summary
    if log_path:
        with open(log_path, "w") as f:
            f.write(text)
    sys.stdout.write(summary)
    return report([text], configs) or (1 if rc else 0)


def run_summary(name, rc, t0, load_before):
    """The closing line of a benchmark run. Other work on the machine slows
    the TCG-run L1 down, so it says how busy the machine was."""
    return ("%s: %s test host exit %d after %.0f s; host load average %s before, "
            "%s after (%d CPUs)\n" % (name, time.strftime("%Y-%m-%d %H:%M %Z"), rc,
                                       time.time() - t0, load_before, host_load(),
                                       os.cpu_count()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skiff", default=os.path.join(ROOT, "build", "skiff"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--only", choices=["blk", "net"])
    ap.add_argument("--vmm", choices=["both", "skiff", "qemu"], default="both")
    ap.add_argument("--log", help="also write the raw test-host output here")
    ap.add_argument("--from-log", nargs="+", metavar="FILE",
                    help="print the table of saved runs (several: pooled) and exit")
    ap.add_argument("--timeout", type=int, default=1800, help="whole test-host run, s")
    ap.add_argument("--print-command", action="store_true")
    a = ap.parse_args()

    configs = [c for c in CONFIGS if (a.only in (None, c.kind))
               and (a.vmm == "both" or a.vmm == c.vmm)]
    if a.from_log:
        outs = []
        for path in a.from_log:
            with open(path, errors="replace") as f:
                outs.append(f.read())
        return report(outs, configs)
    command = l1_command(configs, a.rounds, a.secs)
    if a.print_command:
        print(command)
        return 0
    skiff = a.skiff if any(c.vmm == "skiff" for c in configs) else "/bin/true"
    with tempfile.TemporaryDirectory() as tmp:
        cpio = os.path.join(tmp, "guest-bench.cpio")
        guest_cpio(cpio)
        th = [sys.executable, TESTHOST, "run", "--arch", "x86_64", "--skiff", skiff,
              "--timeout", str(a.timeout), "--memory", str(L1_MIB),
              "--put", "%s:/bench/guest-bench.cpio" % cpio] + l1_iperf_puts()
        if any(c.vmm == "qemu" for c in configs):
            th.append("--with-qemu")
        t0 = time.time()
        load_before = host_load()
        proc = subprocess.Popen(th + ["--", command], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith(("BENCH-BOOT", "BENCH-RESULT", "BENCH-LOG", "testhost:",
                                "TESTHOST")):
                sys.stdout.write(line)
                sys.stdout.flush()
        proc.wait()
    return finish_run("io_bench", proc.returncode, t0, load_before, out, a.log, report, configs)


if __name__ == "__main__":
    sys.exit(main())
