# /autorun for the control-socket e2e boot (tests/e2e/control_e2e.py):
# load the ACPI power button and evdev drivers, print a tick every 0.2 s
# (the console stops advancing while Skiff has the VM paused), and power off
# when the power button is pressed.
for m in $(cat /lib/modules-ctl/load-order); do
    insmod /lib/modules-ctl/$m.ko || echo "SKIFF-E2E: insmod $m failed"
done
# The power button's input device (ACPI PNP0C0C via the `button` driver).
event=""
for i in 0 1 2 3 4 5 6 7 8 9; do
    for d in /sys/class/input/input*; do
        [ "$(cat $d/name 2>/dev/null)" = "Power Button" ] || continue
        for e in $d/event*; do [ -e "$e" ] && event=/dev/input/${e##*/}; done
    done
    [ -n "$event" ] && [ -c "$event" ] && break
    sleep 0.2
done
echo "SKIFF-E2E: power button device ${event:-none}"
(n=0; while :; do n=$((n + 1)); echo "SKIFF-TICK $n"; sleep 0.2; done) &
ticker=$!
echo "SKIFF-E2E: ready"
[ -n "$event" ] || { echo "SKIFF-E2E: no power button"; sleep 1000; }
# One input_event (24 bytes on 64-bit) arrives when the button is pressed.
dd if="$event" of=/dev/null bs=24 count=1 2>/dev/null
kill $ticker
echo "SKIFF-E2E: power button pressed"
