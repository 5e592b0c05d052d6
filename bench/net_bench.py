#!/usr/bin/env python3
"""NIC benchmark: a passed-through e1000e (VFIO) against virtio-net, Skiff
beside QEMU, in ONE x86_64-vfio test-host run (not a test).

    bench/net_bench.py [--skiff build/skiff] [--rounds 3] [--secs 5]
                       [--configs skiff-vfio,qemu-vfio,...] [--log FILE]
    bench/net_bench.py --from-log FILE...   # the table again from saved runs (pooled)

The x86_64-vfio test host (tests/testhost) has an emulated e1000e on QEMU's
user netdev; L1 binds it to vfio-pci (tests/e2e/vfio_l1.py, as e2e-vfio
does).  Every configuration boots the same L2 guest (Debian's generic
kernel, which has the e1000e driver, with iperf3 and its libraries packed
in) and the guest measures its NIC with bench/io_guest.sh (bench.mode=net):

  tcp_tx / tcp_rx  iperf3 TCP guest->peer / peer->guest, Mbit/s (receiver)
  udp_tx           iperf3 64-byte UDP guest->peer, datagrams/s received
  ping_rate/_rtt   busybox ping -A (one echo in flight), round trips/s, avg us
  <test>_irq       the NIC's interrupts per second in the guest over that
                   test (/proc/interrupts deltas of its vectors)

The peer differs by path and is the same for both VMMs on a path:
  vfio   the e1000e's frames leave L1 through QEMU's user netdev (slirp):
         iperf3 talks to 10.0.2.2:PORT, which slirp connects to
         127.0.0.1:PORT on this machine, where this script runs an iperf3
         server; ping is answered by slirp itself.
  tap    virtio-net on a tap in L1 (10.0.2.1/24), iperf3 server in L1.
See docs/benchmarks.md for what limits each.
"""

import argparse
import dataclasses
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import io_bench  # noqa: E402  (also puts tests/e2e, tests/testhost, images on sys.path)
import vfio_l1  # noqa: E402
import vmspec  # noqa: E402

ROOT = io_bench.ROOT
TAP = "bench0"
TAP_HOST_IP = "10.0.2.1"            # L1's end of the tap
MAC = "52:54:00:be:4c:02"
GUEST_MIB = 256
L1_INITRD = "/tmp/initrd"
L1_MIB = 2048
BOOT_TIMEOUT = 300                  # seconds per VMM run, inside L1
BDF = "@BDF@"                       # the e1000e's address, known only in L1


@dataclasses.dataclass
class Config:
    name: str
    vmm: str            # skiff | qemu
    nic: str            # vfio | tap | vhost
    label: str


CONFIGS = [
    Config("skiff-vfio", "skiff", "vfio", "Skiff VFIO"),
    Config("qemu-vfio", "qemu", "vfio", "QEMU VFIO"),
    Config("skiff-tap", "skiff", "tap", "Skiff virtio tap"),
    Config("skiff-vhost", "skiff", "vhost", "Skiff virtio vhost"),
    Config("qemu-tap", "qemu", "tap", "QEMU virtio tap"),
    Config("qemu-vhost", "qemu", "vhost", "QEMU virtio vhost"),
    # No guest: iperf3 client and server both in L1, over the tap's address
    # (loopback): what L1 alone can push, the ceiling of the virtio peer.
    Config("l1-alone", "none", "l1", "L1 alone (virtio peer)"),
]

# (test, unit, label) in table order.  <test>_ppi: the NIC's packets (both
# directions) per interrupt over the test, from the guest's BENCH-INFO lines.
TESTS = [
    ("tcp_tx", "Mbit/s", "TCP guest→peer"),
    ("tcp_tx_irq", "irq/s", "  NIC interrupts"),
    ("tcp_tx_ppi", "pkt/irq", "  packets per interrupt"),
    ("tcp_rx", "Mbit/s", "TCP peer→guest"),
    ("tcp_rx_irq", "irq/s", "  NIC interrupts"),
    ("tcp_rx_ppi", "pkt/irq", "  packets per interrupt"),
    ("udp_tx", "pps", "64-byte UDP guest→peer"),
    ("udp_tx_irq", "irq/s", "  NIC interrupts"),
    ("udp_tx_ppi", "pkt/irq", "  packets per interrupt"),
    ("ping_rate", "rt/s", "ping -A round trips"),
    ("ping_rtt", "us", "  average round trip"),
    ("ping_irq", "irq/s", "  NIC interrupts"),
]
PPI_RE = re.compile(r"^BENCH-INFO config=(\S+) round=(\S+) test=(\S+) irqs=\d+ packets=\d+ "
                    r"secs=\S+ pkts_per_irq=([\d.]+)", re.M)


def cmdline(cfg, secs, port):
    peer = vfio_l1.GATEWAY if cfg.nic == "vfio" else TAP_HOST_IP
    return ("console=ttyS0 reboot=k panic=-1 quiet bench.mode=net bench.secs=%d "
            "bench.host=%s bench.guest=%s bench.prefix=%d bench.port=%d bench.driver=%s "
            "bench.ping=1" % (secs, peer, vfio_l1.GUEST_IP, vfio_l1.PREFIX, port,
                              "e1000e" if cfg.nic == "vfio" else "virtio_net"))


def machine(cfg, secs, port):
    spec = vmspec.VmSpec(kernel="/guest/vmlinuz", initramfs=L1_INITRD,
                         cmdline=cmdline(cfg, secs, port), cpus=1, memory_mib=GUEST_MIB,
                         transport="pci", console="serial")
    if cfg.nic == "vfio":
        spec.vfio = ["/sys/bus/pci/devices/" + BDF]
    else:
        spec.nets = [vmspec.Net(TAP, mac=MAC, vhost=cfg.nic == "vhost")]
    return spec


def vmm_command(cfg, secs, port):
    """The VMM's command line for L1's shell, with the e1000e's address
    filled in there ($bdf, found by vfio_l1.FIND_E1000E)."""
    line = vmspec.shell_join(vmspec.vmm_argv(machine(cfg, secs, port), cfg.vmm))
    if cfg.nic == "vfio":
        # shell_join leaves the placeholder unquoted ('@' needs no quoting),
        # so the shell expands $bdf in its place.
        assert "'" not in line.split(BDF)[0].split()[-1], line
        line = line.replace(BDF, "$bdf")
    return line


# The "l1-alone" configuration: iperf3 against itself inside L1.
L1_ALONE = r"""
l1_alone() {{  # round
    echo "BENCH-BOOT config=l1-alone round=$1"
    $IPERF -s -B {host_ip} -p {port} >/dev/null 2>&1 &
    server=$!
    sleep 1
    for t in tcp_tx:  udp_tx:-u_-l_64_-b_0; do
        name=${{t%%:*}}; opts=$(echo "${{t#*:}}" | tr _ ' ')
        $IPERF -c {host_ip} -p {port} -t {secs} --omit 1 -f m $opts >/tmp/l1-iperf.out 2>&1
        grep 'receiver$' /tmp/l1-iperf.out | tail -1 | awk -v n=$name -v r=$1 '{{
            for (i = 1; i <= NF; i++) {{
                if ($i == "Mbits/sec") v = $(i - 1)
                if ($i ~ /^[0-9]+\/[0-9]+$/) lt = $i
            }}
            if (n == "udp_tx") {{ split(lt, a, "/"); split($3, t, "-"); v = (a[2] - a[1]) / (t[2] - t[1]) }}
            printf "BENCH-RESULT config=l1-alone round=%s test=%s value=%.1f unit=%s\n", r, n, v,
                   (n == "udp_tx" ? "pps" : "Mbit/s") }}'
    done
    kill $server; wait $server 2>/dev/null
    echo "BENCH-BOOT-END config=l1-alone round=$1 rc=0 done=1 secs=0"
}}
"""

L1_PROLOGUE = r"""
cat /bench/guest-bench.cpio /guest/initramfs.cpio.gz > {initrd}
{find}
[ -n "$bdf" ] || echo "BENCH-LOG no e1000e in the test host"
{bind}
{report}
# Which resets VFIO can do between guests (docs/vfio.md, the crashes).
echo "BENCH-INFO reset_method=$(cat /sys/bus/pci/devices/$bdf/reset_method 2>&1 | tr ' ' ,)"
{quiesce}
tunctl -t {tap} >/dev/null && ip addr add {host_ip}/{prefix} dev {tap} && ip link set {tap} up \
    || echo "BENCH-LOG tap setup failed"
"""


def l1_command(configs, rounds, secs, port, quiesce=True):
    """QUIESCE: stop the e1000e's receive and transmit units in L1 before
    each VFIO boot (vfio_l1.QUIESCE_E1000E); without it each guest inherits
    the previous one's live receive ring (docs/vfio.md)."""
    lines = [L1_PROLOGUE.format(initrd=L1_INITRD, find=vfio_l1.FIND_E1000E,
                                quiesce=vfio_l1.QUIESCE_E1000E,
                                bind=vfio_l1.BIND_VFIO, report=vfio_l1.report_binding("BENCH-INFO"),
                                tap=TAP, host_ip=TAP_HOST_IP, prefix=vfio_l1.PREFIX),
             io_bench.L1_BOOT.format(host_ip=TAP_HOST_IP, port=port, timeout=BOOT_TIMEOUT),
             L1_ALONE.format(host_ip=TAP_HOST_IP, port=port, secs=secs)]
    for r in range(1, rounds + 1):
        for cfg in configs:
            if cfg.nic == "l1":
                lines.append("l1_alone %d" % r)
                continue
            # kind "net" starts L1's iperf3 server on the tap; the VFIO
            # configurations use the one on this machine.
            kind = "vfio" if cfg.nic == "vfio" else "net"
            if kind == "vfio" and quiesce:
                lines.append('quiesce_e1000e "BENCH-INFO config=%s round=%d"' % (cfg.name, r))
            lines.append("boot %s %d %s %s" % (cfg.name, r, kind, vmm_command(cfg, secs, port)))
    return "\n".join(lines)


# --------------------------------------------------------------- results ---

def table(values, configs):
    """Markdown: one row per figure, one column per configuration (medians)."""
    head = ["test", "unit"] + [c.label for c in configs]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for test, unit, label in TESTS:
        row = [label.replace("  ", "↳ "), unit]
        for c in configs:
            vs = values.get((c.name, test))
            row.append(io_bench.fmt(io_bench.median(values, c.name, test), unit)
                       + (" (%d)" % len(vs) if vs else ""))
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def raw_table(values, boots, configs):
    out = []
    for c in configs:
        for test, unit, _ in TESTS:
            vs = values.get((c.name, test), {})
            out.append("%-12s %-11s %-7s %s" % (c.name, test, unit, " ".join(
                "r%s=%s" % (r, io_bench.fmt(v, unit)) for r, v in vs.items()) or "-"))
        b = boots.get(c.name, [])
        out.append("%-12s %-11s %-7s %s" % (c.name, "vmm-run", "s",
                                            " ".join("%.1f" % v for v in b) or "-"))
    return "\n".join(out)


# Skiff's configuration and the QEMU one it is compared with, round by round.
PAIRS = [("skiff-vfio", "qemu-vfio"), ("skiff-tap", "qemu-tap"), ("skiff-vhost", "qemu-vhost")]
LOWER_IS_BETTER = {"ping_rtt"}


def ahead(values, configs):
    """Lines "skiff-x/qemu-x test n/m": the rounds (of m measured by both) in
    which Skiff did better; interrupt figures are left out (neither more
    nor fewer is better in itself)."""
    names = {c.name for c in configs}
    out = []
    for s, q in PAIRS:
        if s not in names or q not in names:
            continue
        for test, _, _ in TESTS:
            if test.endswith(("_irq", "_ppi")):
                continue
            sv, qv = values.get((s, test), {}), values.get((q, test), {})
            rounds = [r for r in sv if r in qv]
            if test in LOWER_IS_BETTER:
                n = sum(sv[r] < qv[r] for r in rounds)
            else:
                n = sum(sv[r] > qv[r] for r in rounds)
            out.append("%-24s %-10s %d/%d" % (s + "/" + q, test, n, len(rounds)))
    return "\n".join(out)


def report(outs, configs):
    """OUTS: the raw output of one run or more (pooled; rounds become A1, B1...)."""
    values, errors, boots = {}, [], {}
    for i, out in enumerate(outs):
        run = chr(ord("A") + i) if len(outs) > 1 else ""
        v, e, b = io_bench.parse(out, run)
        for cfg, rnd, test, ppi in PPI_RE.findall(out):
            v.setdefault((cfg, test + "_ppi"), {})[run + rnd] = float(ppi)
        for k, rounds in v.items():
            values.setdefault(k, {}).update(rounds)
        errors += e
        for k, secs in b.items():
            boots.setdefault(k, []).extend(secs)
    out = "\n".join(outs)
    print("\nPer round (config, test, unit, value of each round rN; vmm-run: seconds per boot):")
    print(raw_table(values, boots, configs))
    print("\nSkiff ahead of QEMU in n of m rounds:")
    print(ahead(values, configs))
    print("\nMedians (in brackets: rounds measured):\n")
    print(table(values, configs))
    print()
    for prefix, what in (("BENCH-VMMLOG", "Skiff warnings and errors:"),
                         ("BENCH-LOG", "L1 notes and the VMM output of boots with problems:")):
        lines = [line for line in out.splitlines() if line.startswith(prefix)]
        if lines:
            print(what)
            print("\n".join(lines))
    if errors:
        print("\nProblems (a failed measurement is left out of the medians):")
        for e in errors:
            print("  " + e)
    return 1 if errors else 0


# ------------------------------------------------------------------ main ---

def free_port():
    """A TCP port free on this machine's loopback now (slirp connects the
    guest's 10.0.2.2:PORT to 127.0.0.1:PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skiff", default=os.path.join(ROOT, "build", "skiff"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--configs", default=",".join(c.name for c in CONFIGS),
                    help="comma-separated, from: %(default)s")
    ap.add_argument("--log", help="also write the raw test-host output here")
    ap.add_argument("--from-log", nargs="+", metavar="FILE",
                    help="print the table of saved runs (several: pooled) and exit")
    ap.add_argument("--timeout", type=int, default=3000, help="whole test-host run, s")
    ap.add_argument("--print-command", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="show L1's console (testhost -v)")
    ap.add_argument("--no-quiesce", action="store_true",
                    help="leave the e1000e as the previous guest left it (the crashes in docs/vfio.md)")
    a = ap.parse_args()

    names = a.configs.split(",")
    unknown = [n for n in names if n not in {c.name for c in CONFIGS}]
    if unknown:
        ap.error("unknown configuration(s) %s" % ", ".join(unknown))
    configs = [c for c in CONFIGS if c.name in names]
    if a.from_log:
        outs = []
        for path in a.from_log:
            with open(path, errors="replace") as f:
                outs.append(f.read())
        return report(outs, configs)
    port = free_port()
    command = l1_command(configs, a.rounds, a.secs, port, quiesce=not a.no_quiesce)
    if a.print_command:
        print(command)
        return 0
    skiff = a.skiff if any(c.vmm == "skiff" for c in configs) else "/bin/true"
    server = None
    if any(c.nic == "vfio" for c in configs):
        # The passed-through NIC's peer, behind slirp; one test at a time.
        # The timeouts end a test whose guest died mid-way (slirp keeps its
        # end of the connection open), so the next guest finds it free.
        server = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port),
                                   "--rcv-timeout", "10000", "--snd-timeout", "10000"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cpio = os.path.join(tmp, "guest-bench.cpio")
            io_bench.guest_cpio(cpio, tools=["iperf3"])
            th = [sys.executable, io_bench.TESTHOST, "run", "--arch", "x86_64-vfio",
                  "--skiff", skiff, "--timeout", str(a.timeout), "--memory", str(L1_MIB),
                  "--put", "%s:/bench/guest-bench.cpio" % cpio,
                  # On a loaded machine L1's boot-time check of the timer
                  # through the interrupt-remapped IO-APIC can time out
                  # under TCG, and the kernel panics ("timer doesn't work
                  # through Interrupt-remapped IO-APIC"): skip the check.
                  "--append", "no_timer_check"] + io_bench.l1_iperf_puts()
            if any(c.vmm == "qemu" for c in configs):
                th.append("--with-qemu")
            if a.verbose:
                th.append("--verbose")
            t0 = time.time()
            load_before = io_bench.host_load()
            proc = subprocess.Popen(th + ["--", command], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace")
            out = []
            for line in proc.stdout:
                out.append(line)
                if line.startswith(("BENCH-BOOT", "BENCH-RESULT", "BENCH-LOG", "BENCH-INFO",
                                    "testhost:", "TESTHOST", "L1|")):
                    sys.stdout.write(line)
                    sys.stdout.flush()
            proc.wait()
    finally:
        if server:
            server.terminate()
            server.wait()
    return io_bench.finish_run("net_bench", proc.returncode, t0, load_before, out, a.log, report,
                               configs)


if __name__ == "__main__":
    sys.exit(main())
