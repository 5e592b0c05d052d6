"""The passed-through NIC of the x86_64-vfio test host (tests/testhost), for
the scripts that run in its L1: tests/e2e/vfio_e2e.py and
bench/net_bench.py.  Python 3 standard library only.

The profile gives L1 an emulated e1000e on QEMU's user netdev (gateway
10.0.2.2, the guest's usual address 10.0.2.15); L1's cloud kernel has no
driver for it.  FIND_E1000E sets $bdf to its PCI address (empty if there
is none); BIND_VFIO binds that function to vfio-pci, which makes
/dev/vfio/<group> appear.
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
