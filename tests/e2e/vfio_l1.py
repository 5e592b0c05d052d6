"""The passed-through NIC of the x86_64-vfio test host (tests/testhost), for
the scripts that run in its L1: tests/e2e/vfio_e2e.py and
bench/net_bench.py.  Python 3 standard library only.

The profile gives L1 an emulated e1000e on QEMU's user netdev (gateway
10.0.2.2, the guest's usual address 10.0.2.15); L1's cloud kernel has no
driver for it.  FIND_E1000E sets $bdf to its PCI address (empty if there
is none); BIND_VFIO binds that function to vfio-pci, which makes
/dev/vfio/<group> appear.  QUIESCE_E1000E defines `quiesce_e1000e PREFIX`,
which stops the function's receive and transmit units between guests
(why: docs/vfio.md, "State that survives between guests").
"""

E1000E_ID = "0x8086:0x10d3"       # vendor:device as sysfs prints them
GATEWAY = "10.0.2.2"              # QEMU's user netdev (slirp) itself
GUEST_IP = "10.0.2.15"
PREFIX = 24

FIND_E1000E = r"""bdf=""
for d in /sys/bus/pci/devices/*; do
    [ "$(cat $d/vendor):$(cat $d/device)" = %s ] && bdf=${d##*/}
done""" % E1000E_ID

BIND_VFIO = r"""echo vfio-pci > /sys/bus/pci/devices/$bdf/driver_override
echo $bdf > /sys/bus/pci/drivers_probe"""


def report_binding(prefix):
    """Shell lines printing "PREFIX bound driver=D group=G node=/dev/vfio/G"
    for $bdf: its driver, IOMMU group and group device node."""
    dev = "/sys/bus/pci/devices/$bdf"
    return ('group=$(basename $(readlink %s/iommu_group))\n'
            'echo "%s bound driver=$(basename $(readlink %s/driver)) group=$group '
            'node=$(ls /dev/vfio/$group 2>&1)"' % (dev, prefix, dev))


# QEMU 7.2's e1000e model acts on no reset VFIO can do between owners: its
# only one is a D3hot->D0 transition (reset_method=pm), which the model
# ignores, and its software reset (CTRL.RST) keeps the rings too (measured
# in the x86_64-vfio test host, docs/vfio.md).  A guest powering off leaves
# the receiver enabled on its own ring, so the next guest's driver, once it
# turns bus mastering on, has the device write late frames through the
# previous guest's descriptors into its own memory.  Real 82574s reset on
# D3hot->D0; here L1 (the host's administrator) stops the units itself,
# through BAR 0, before each guest: RCTL and TCTL (0x100, 0x400) zeroed,
# every interrupt cause masked (IMC, 0xd8).  It prints what it found.
QUIESCE_E1000E = r"""quiesce_e1000e() {
    qdev=/sys/bus/pci/devices/$bdf
    qcmd=$(dd if=$qdev/config bs=1 skip=4 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "$(printf '\\%03o' $((qcmd | 2)))" | dd of=$qdev/config bs=1 seek=4 count=1 conv=notrunc 2>/dev/null
    qbar=$(head -1 $qdev/resource | cut -d' ' -f1)
    qreg() { busybox devmem $(printf 0x%x $((qbar + $1))) 32 $2; }
    echo "$1 e1000e before boot: rctl=$(qreg 0x100) tctl=$(qreg 0x400) rdba=$(qreg 0x2804)$(qreg 0x2800 | cut -c3-)"
    qreg 0x100 0; qreg 0x400 0; qreg 0xd8 0xffffffff
    printf "$(printf '\\%03o' $qcmd)" | dd of=$qdev/config bs=1 seek=4 count=1 conv=notrunc 2>/dev/null
}"""
