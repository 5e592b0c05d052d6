#!/usr/bin/env python3
"""End-to-end VFIO passthrough (suite e2e-vfio): in the x86_64-vfio test host
(q35, intel-iommu with interrupt remapping, an emulated e1000e on QEMU's user
netdev recorded to a pcap), Skiff passes the e1000e through to an L2 guest
running Debian's generic kernel; the guest's e1000e driver binds, gets MSI-X
interrupts and pings the netdev's gateway 10.0.2.2, and the test finds the
guest's ICMP echo requests in the pcap, outside the test host.

One L1 boot runs every check; each prints PASS/FAIL. A test-host failure
makes the test FAIL, never skip.

Usage: vfio_e2e.py --skiff PATH [--keep DIR]
"""
import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import hang_watch
import vfio_l1

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTHOST = os.path.join(ROOT, "tests", "testhost", "testhost.py")
AUTORUN = os.path.join(ROOT, "images", "make-autorun-cpio.sh")
GUEST_SCRIPT = os.path.join(ROOT, "tests", "e2e", "vfio_guest.sh")
GUEST_IP = vfio_l1.GUEST_IP
GATEWAY = vfio_l1.GATEWAY
CMDLINE = "console=ttyS0 reboot=k panic=-1 quiet"
# A device or container release slower than this fails the teardown check.
TEARDOWN_LIMIT_MS = 60000

# Runs in L1 (busybox sh). Bad input first (device not bound, not a PCI
# device), then bind the e1000e to vfio-pci and boot L2 with it: MSI-X (and
# MSI by hand at the end), then INTx. Each boot is bounded (hang_watch's
# bounded_boot): Skiff's output streams to the console and to a file; if
# Skiff is still there TEARDOWN_LIMIT s (of L1's clock) after it logged its
# stop, or 60 s after its own --timeout, the script says where it is stuck
# (each thread's kernel stack, every CPU's backtrace from L1's kernel log),
# kills it and goes on: a hang is a quick FAIL with a diagnosis, not the
# test host's timeout.
GUEST_LIMIT_S = 400
TEARDOWN_LIMIT_S = 120
SKIFF_RUN = "skiff run --kernel /guest/vmlinuz --initramfs /tmp/initrd --memory 256M"
L1_SCRIPT = hang_watch.shell(
    GUEST_LIMIT_S + 60, TEARDOWN_LIMIT_S,
    command="%s --log-level debug --timeout %ds" % (SKIFF_RUN, GUEST_LIMIT_S)) + r"""
skiff_run() {
    %(skiff_run)s "$@"
}
cat /guest/initramfs.cpio.gz /e2e/autorun.cpio.gz > /tmp/initrd
%(find_e1000e)s
echo "E2E: e1000e=${bdf:-none}"
skiff_run --cmdline '%(cmdline)s' --device vfio=$bdf > /tmp/err1 2>&1
echo "E2E: unbound rc=$? msg=$(head -c 600 /tmp/err1 | tr '\n' ' ')"
skiff_run --cmdline '%(cmdline)s' --device vfio=/sys/bus/pci/devices/0000:00:1e.0 > /tmp/err2 2>&1
echo "E2E: nodevice rc=$? msg=$(head -c 300 /tmp/err2 | tr '\n' ' ')"
%(bind_vfio)s
%(report_binding)s
%(quiesce)s
quiesce_e1000e E2E:
bounded_boot msix --cmdline '%(cmdline)s' --device vfio=/sys/bus/pci/devices/$bdf,rom=on
quiesce_e1000e E2E:
bounded_boot intx --cmdline '%(cmdline)s pci=nomsi' --device vfio=$bdf
echo "E2E: === end"
echo "E2E: after driver=$(basename $(readlink /sys/bus/pci/devices/$bdf/driver))"
dmesg | grep -iE "soft lockup|hung task|blocked for more|BUG:|DMAR:.*fault|vfio" | tail -20 | sed 's/^/E2E: l1-kernel| /'
""" % {"cmdline": CMDLINE, "skiff_run": SKIFF_RUN,
       "find_e1000e": vfio_l1.FIND_E1000E, "bind_vfio": vfio_l1.BIND_VFIO,
       "report_binding": vfio_l1.report_binding("E2E:"), "quiesce": vfio_l1.QUIESCE_E1000E}


def bar_slots(out):
    """The check that Skiff mapped the BARs straight into the guest as KVM
    slots, with the MSI-X table's page trapped (its info log lines)."""
    parts = re.findall(r"vfio: \S+ BAR (\d): [^\n]*?(\d+) part\(s\) \((0x[0-9a-f]+) bytes\) mapped "
                       r"directly(, MSI-X)?", out)
    direct = [p for p in parts if int(p[1]) > 0]
    msix_bar = [p for p in parts if p[3]]
    return ("BARs mapped into the guest as KVM slots, MSI-X table trapped",
            bool(direct) and len(msix_bar) == 1,
            "; ".join("BAR %s: %s part(s) %s%s" % p for p in parts) or "no BAR report")


def icmp_packets(pcap_path):
    """(echo requests GUEST->GATEWAY, echo replies GATEWAY->GUEST) in a
    libpcap file of Ethernet frames."""
    requests = replies = 0
    with open(pcap_path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return None
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        endian = "<"
    elif magic in (0xd4c3b2a1, 0x4d3cb2a1):
        endian = ">"
    else:
        return None
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:  # Ethernet
        return None
    pos = 24
    guest = bytes(int(x) for x in GUEST_IP.split("."))
    gateway = bytes(int(x) for x in GATEWAY.split("."))
    while pos + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 0x0f) * 4
        if frame[23] != 1 or len(frame) < 14 + ihl + 1:
            continue
        src, dst, icmp_type = frame[26:30], frame[30:34], frame[14 + ihl]
        if icmp_type == 8 and src == guest and dst == gateway:
            requests += 1
        elif icmp_type == 0 and src == gateway and dst == guest:
            replies += 1
    return requests, replies


def irq_counts(out):
    """{name: total count} for the guest's e1000e lines of /proc/interrupts."""
    counts = {}
    for line in re.findall(r"E2E-GUEST: irq\| (.*)", out):
        fields = line.split()
        if len(fields) < 3:
            continue
        total = 0
        for f in fields[1:]:
            if f.isdigit():
                total += int(f)
            else:
                break
        counts[fields[-1]] = (total, "MSI" in line)
    return counts


def section(out, name):
    """The output between "E2E: === NAME" and the next marker."""
    m = re.search(r"E2E: === %s\n(.*?)(?=E2E: === )" % re.escape(name), out, re.S)
    return m.group(1) if m else ""


def checks(out, pcap):
    """[(name, ok, detail)] for the run's output and pcap."""
    results = []
    msix_out, intx_out = section(out, "msix"), section(out, "intx")
    m = re.search(r"E2E: unbound rc=(\d+) msg=(.*)", out)
    results.append(("error: device not bound to vfio-pci",
                    bool(m) and m.group(1) != "0" and "vfio-pci" in m.group(2)
                    and "driver_override" in m.group(2),
                    m.group(0) if m else "no report"))
    m = re.search(r"E2E: nodevice rc=(\d+) msg=(.*)", out)
    results.append(("error: not a PCI device",
                    bool(m) and m.group(1) == "2" and "not a PCI device" in m.group(2),
                    m.group(0) if m else "no report"))
    m = re.search(r"E2E: bound driver=(\S+) group=(\d+) node=(\S+)", out)
    results.append(("L1 binds the e1000e to vfio-pci",
                    bool(m) and m.group(1) == "vfio-pci" and m.group(3).startswith("/dev/vfio/"),
                    m.group(0) if m else "no report"))
    # The host's only reset for this function is a D3hot->D0 transition
    # (docs/vfio.md, "State that survives between guests"): Skiff says so.
    m = re.search(r"vfio: (\S+): reset by VFIO at start and at exit \(host reset method: ([^;)]*)",
                  msix_out)
    results.append(("skiff names the host's reset method for the function",
                    bool(m) and m.group(2) == "pm", m.group(0) if m else "no reset line"))
    m = re.search(r"E2E-GUEST: e1000e nic=(\S+)", msix_out)
    results.append(("guest e1000e driver binds", bool(m) and m.group(1) != "none",
                    m.group(0) if m else "guest never reported"))
    counts = irq_counts(msix_out)
    msix = {k: v for k, (v, is_msi) in counts.items() if is_msi}
    rx = sum(v for k, v in msix.items() if "rx" in k)
    tx = sum(v for k, v in msix.items() if "tx" in k)
    results.append(bar_slots(msix_out))
    m = re.search(r"E2E-GUEST: msi modes: *(.*)", msix_out)
    modes = m.group(1).split() if m else []
    results.append(("guest MSI-X rx/tx vectors fire",
                    rx > 0 and tx > 0 and "msix" in modes and "msi" not in modes,
                    "vectors %s, modes %s" % (msix, " ".join(modes))))
    results.append(("guest pings 10.0.2.2", "E2E-GUEST: ping ok" in msix_out,
                    "; ".join(re.findall(r"E2E-GUEST: ping\| (.*)", msix_out)[-2:])))
    icmp = icmp_packets(pcap) if pcap and os.path.exists(pcap) else None
    results.append(("pcap outside the test host holds the guest's echo requests",
                    bool(icmp) and icmp[0] > 0,
                    "requests/replies %s" % (icmp,)))
    m = re.search(r"E2E: SKIFF_RC=(\d+)", msix_out)
    results.append(("skiff exits 0", bool(m) and m.group(1) == "0",
                    m.group(0) if m else "no exit status"))
    # The same device again with the guest's MSI off: legacy INTx through
    # an irqfd with a resample eventfd.
    intx_lines = {k: v for k, (v, is_msi) in irq_counts(intx_out).items() if not is_msi}
    m = re.search(r"E2E: SKIFF_RC=(\d+)", intx_out)
    results.append(("INTx fallback (guest pci=nomsi): ping answered, INTx line counts",
                    "E2E-GUEST: ping ok" in intx_out and sum(intx_lines.values()) > 0
                    and bool(m) and m.group(1) == "0",
                    "lines %s, %s" % (intx_lines, m.group(0) if m else "no exit status")))
    # MSI: the guest programs the function's (emulated) MSI capability by
    # hand and makes the NIC interrupt; the vector must arrive.
    m = re.search(r"E2E-GUEST: msi-by-hand .*vector=(\d+) seen=(.*)", msix_out)
    results.append(("MSI: a message written into the emulated MSI capability is delivered",
                    bool(m) and re.search(r"\.%s No irq handler for vector" % m.group(1),
                                          m.group(2)) is not None,
                    m.group(0) if m else "no report"))
    # The expansion ROM: the msix boot asks for it (rom=on) and the guest
    # reads its signature; the intx boot does not, so the guest sees none.
    on = re.search(r"E2E-GUEST: rom (.*)", msix_out)
    off = re.search(r"E2E-GUEST: rom (.*)", intx_out)
    results.append(("expansion ROM: read by the guest with rom=on (55 aa), absent without",
                    bool(on) and on.group(1) == "file=present sig=55aa"
                    and bool(off) and off.group(1) == "file=absent",
                    "rom=on: %s; default: %s" % (on.group(1) if on else "no report",
                                                 off.group(1) if off else "no report")))
    # Teardown: each boot's devices and container were released, in
    # bounded time, and L1's kernel saw no lockup.
    times, ok = [], True
    for name, text in (("msix", msix_out), ("intx", intx_out)):
        device = re.search(r"vfio: device \S+ released in (\d+) ms", text)
        container = re.search(r"vfio: container released in (\d+) ms", text)
        hung = "E2E: HUNG" in text
        ok = ok and bool(device) and bool(container) and not hung and \
            int(device.group(1)) < TEARDOWN_LIMIT_MS and int(container.group(1)) < TEARDOWN_LIMIT_MS
        times.append("%s: device %s ms, container %s ms%s" % (
            name, device.group(1) if device else "?", container.group(1) if container else "?",
            ", HUNG" if hung else ""))
    results.append(("VFIO teardown finishes in bounded time after every boot", ok,
                    "; ".join(times)))
    bad = [line for line in re.findall(r"E2E: l1-kernel\| (.*)", out)
           if re.search(r"soft lockup|hung task|blocked for more|BUG:|DMAR:.*fault", line)]
    results.append(("L1 kernel: no soft lockup, hung task or DMA remapping fault", not bad,
                    "; ".join(bad[-3:]) or "clean"))
    m = re.search(r"E2E: after driver=(\S+)", out)
    results.append(("device still bound to vfio-pci after exit",
                    bool(m) and m.group(1) == "vfio-pci", m.group(0) if m else "no report"))
    return results


def verdict(out, pcap, returncode):
    """([PASS/FAIL line], number failed) of a run: a hang first, with where
    Skiff was stuck."""
    lines = hang_watch.failures(out)
    failed = len(lines)
    for name, ok, detail in checks(out, pcap):
        lines.append(f"{'PASS' if ok else 'FAIL'}: {name} ({detail})")
        failed += not ok
    if returncode != 0 or "TESTHOST FAILURE" in out:
        lines.append(f"FAIL: test host failed (exit {returncode})")
        failed += 1
    return lines, failed


def keep_run(directory, out, pcap):
    """--keep: the run's output and its pcap (when there is one) into DIRECTORY."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "output.txt"), "w") as f:
        f.write(out)
    if os.path.exists(pcap):
        shutil.copyfile(pcap, os.path.join(directory, "n0.pcap"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--skiff", required=True)
    parser.add_argument("--keep", help="copy the pcap and the output here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        extra = os.path.join(tmp, "autorun.cpio.gz")
        subprocess.run([AUTORUN, GUEST_SCRIPT, extra], check=True)
        pcap = os.path.join(tmp, "n0.pcap")
        # Streamed as it comes, so a run that hangs (or that meson kills)
        # still shows how far it got.
        proc = subprocess.Popen(
            [sys.executable, TESTHOST, "run", "--arch", "x86_64-vfio", "--skiff", args.skiff,
             "--timeout", "1500", "--pcap", pcap, "--put", f"{extra}:/e2e/autorun.cpio.gz",
             "--", L1_SCRIPT],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        chunks = []
        for line in proc.stdout:
            chunks.append(line)
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
        proc.wait()
        # A console may carry stray bytes (a serial line being torn down).
        out = b"".join(chunks).decode("utf-8", "replace")
        if args.keep:
            keep_run(args.keep, out, pcap)
        lines, failed = verdict(out, pcap, proc.returncode)
        print("\n".join(lines))
    print(f"vfio e2e: {failed} check(s) failed" if failed else "vfio e2e: all checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
