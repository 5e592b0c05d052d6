# /autorun for the arm64 control-socket e2e boot (tests/e2e/control_e2e.py
# --arch arm64): print a tick every 0.2 s (the console stops advancing while
# Skiff has the VM paused) and power off when the power key is pressed.
# Debian's arm64 cloud kernel has no gpio-keys driver (CONFIG_KEYBOARD_GPIO
# is not set), so there is no KEY_POWER input device as on x86: the guest
# watches the key's GPIO line itself (/bin/gpio-wait-edge, from
# tests/e2e/gpio_wait_edge.c), which waits for the PL061's edge interrupt.
# It also prints the device tree's gpio-keys entry for the key, which the
# test compares with the line it found.
key=/proc/device-tree/gpio-keys/power-button
hex() { od -An -tx1 "$1" 2>/dev/null | tr -d ' \n'; }
echo "SKIFF-E2E: dt power key code=$(hex $key/linux,code) gpios=$(hex $key/gpios)"
(n=0; while :; do n=$((n + 1)); echo "SKIFF-TICK $n"; sleep 0.2; done) &
ticker=$!
# Prints the line it watches and "SKIFF-E2E: ready", then blocks.
if ! /bin/gpio-wait-edge power-button; then
    echo "SKIFF-E2E: ready"
    echo "SKIFF-E2E: no power button"
    sleep 1000
fi
kill $ticker
echo "SKIFF-E2E: power button pressed"
