"""Bounded VMM runs inside the test host's L1, and the check that turns a
hang into a failure with its diagnosis.  Python 3 standard library only.

A VMM that stops making progress in L1 (stuck in a KVM ioctl, a lost
wake-up in its teardown) must not leave an e2e test waiting for the test
host's own timeout with nothing recorded.  A watchdog notices it, prints an
"E2E: HUNG" section saying where it is stuck (each thread's state and
kernel stack from /proc/PID/task/*, every CPU's backtrace from sysrq l, the
tail of L1's kernel log), kills it and lets the L1 script go on, so the
test FAILs quickly; failures(out) turns the section into that FAIL.

shell(...) returns busybox sh functions for the top of an L1 script:

  vmm_watch NAME PID LOG    a watchdog on PID, in the background ($watchdog):
                            PID is hung once it has run RUN_LIMIT s without
                            LOG (a file of its log lines, or '') saying it
                            stopped, or TEARDOWN_LIMIT s after it did
  vmm_running NAME PID      PID is there and the watchdog has not reported it
                            hung (the condition for the script's own loops)
  vmm_settle NAME PID       waits until PID has exited or was reported hung,
                            and for the watchdog; fails if PID would not die
                            (then `wait PID` would block: do not call it)
  vmm_hung NAME PID WHY     the script's own verdict: report PID hung now
  bounded_boot NAME ARGS... with shell(command=...): prints "E2E: === NAME",
                            runs COMMAND ARGS with its stdout and stderr
                            streamed to the console and copied to the log
                            file (what the test's checks read is unchanged),
                            watched; then "E2E: SKIFF_RC=N"

COMMAND (and the PID given to vmm_watch) must be the VMM's own process, not
a shell function or pipeline: its threads are what the report shows.
"""
import re

# The VMM's log line that says it has stopped (vmm/machine.cc, info level).
STOP_MARKER = " vmm: stopped:"

_FUNCTIONS = r"""
now() { cut -d. -f1 /proc/uptime; }
alive() { [ -e /proc/$1 ] && ! grep -q '^State:.*Z' /proc/$1/status 2>/dev/null; }
# The E2E: HUNG section of PID, then SIGKILL; "given up on" if it stays.
hang_report() {
    local name=$1 pid=$2 why=$3 task seen i=0
    echo "E2E: HUNG $name: $why"
    for task in /proc/$pid/task/*; do
        echo "E2E: hung| thread ${task##*/} $(cat $task/comm 2>/dev/null) $(grep State: $task/status 2>/dev/null) wchan=$(cat $task/wchan 2>/dev/null)"
        sed 's/^/E2E: hung|     /' $task/stack 2>/dev/null
    done
    seen=$(dmesg | wc -l)
    echo l > %(sysrq)s
    sleep 2
    dmesg | grep -iE -A30 "soft lockup|blocked for more" | tail -60 | sed 's/^/E2E: hung| /'
    dmesg | tail -n +$((seen + 1)) | tail -120 | sed 's/^/E2E: hung| /'
    kill -9 $pid
    while alive $pid && [ $i -lt 20 ]; do sleep 0.5; i=$((i + 1)); done
    alive $pid && echo "E2E: hung| still there 10 s after SIGKILL ($(grep State: /proc/$pid/status 2>/dev/null)): given up on"
    echo "E2E: hung-end $name"
}
vmm_hung() {
    : > /tmp/hang-$1
    hang_report "$@"
}
vmm_running() { alive $2 && [ ! -e /tmp/hang-$1 ]; }
vmm_watch_loop() {
    local name=$1 pid=$2 log=$3 start stopped="" why
    start=$(now)
    while vmm_running $name $pid; do
        sleep %(poll)s
        if [ -z "$stopped" ] && [ -n "$log" ] && grep -q "%(stop_marker)s" $log 2>/dev/null; then
            stopped=$(now)
        fi
        if [ -n "$stopped" ]; then
            [ $(($(now) - stopped)) -ge %(teardown_limit)d ] || continue
            why="still running $(($(now) - stopped)) s after it logged its stop"
        else
            [ $(($(now) - start)) -ge %(run_limit)d ] || continue
            why="still running $(($(now) - start)) s after it started"
        fi
        vmm_running $name $pid || break
        vmm_hung $name $pid "$why (started at $start s, stopped at ${stopped:-never} s of L1 uptime; limits %(run_limit)d s to run, %(teardown_limit)d s to tear down)"
        break
    done
    [ -n "$stopped" ] && echo "E2E: teardown-seconds $name=$(($(now) - stopped))"
}
vmm_watch() {
    rm -f /tmp/hang-$1
    vmm_watch_loop "$@" &
    watchdog=$!
}
vmm_settle() {
    while vmm_running $1 $2; do sleep 0.1; done
    settled_at=$(cut -d' ' -f1 /proc/uptime)
    wait $watchdog
    ! alive $2
}
"""

_BOUNDED_BOOT = r"""
bounded_boot() {
    local name=$1 log pipe pid i=0
    log=%(log)s
    shift
    echo "E2E: === $name"
    rm -f /tmp/pid-$name
    { %(command)s "$@" & echo $! > /tmp/pid-$name; wait $!; echo "E2E: SKIFF_RC=$?"; } 2>&1 |
        tee $log &
    pipe=$!
    while [ ! -s /tmp/pid-$name ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    pid=$(cat /tmp/pid-$name)
    vmm_watch $name $pid $log
    vmm_settle $name $pid && wait $pipe
}
"""


def shell(run_limit, teardown_limit=60, command=None, log="/tmp/$name.log", poll=1,
          sysrq="/proc/sysrq-trigger"):
    """The functions above, as busybox sh text.  RUN_LIMIT and
    TEARDOWN_LIMIT are seconds of L1's clock, polled every POLL s; give
    the VMM its own --timeout below RUN_LIMIT, so a guest that is only
    slow ends with the VMM's own message rather than as a hang.  With
    COMMAND (shell words: the VMM and its fixed options), bounded_boot too,
    copying each run's output to LOG ($name is the run's name)."""
    text = _FUNCTIONS % {"run_limit": run_limit, "teardown_limit": teardown_limit,
                         "poll": poll, "stop_marker": STOP_MARKER, "sysrq": sysrq}
    if command:
        text += _BOUNDED_BOOT % {"command": command, "log": log}
    return text


def hangs(out):
    """[(name, why, [diagnosis lines])] for every E2E: HUNG section of OUT
    (the console: other output may be interleaved)."""
    found, current = [], None
    for line in out.splitlines():
        m = re.search(r"E2E: HUNG (\S+): (.*)", line)
        if m:
            current = (m.group(1), m.group(2).strip(), [])
            found.append(current)
            continue
        m = re.search(r"E2E: hung-end (\S+)", line)
        if m and current is not None and m.group(1) == current[0]:
            current = None
            continue
        m = re.search(r"E2E: hung\| (.*)", line)
        if m and current is not None:
            current[2].append(m.group(1).rstrip())
    return found


def failures(out):
    """One FAIL text per hang in OUT: "FAIL: vmm-hang NAME: WHY" and the
    diagnosis (threads, stacks, kernel log), one indented line each."""
    texts = []
    for name, why, lines in hangs(out):
        texts.append("\n".join(["FAIL: vmm-hang %s: %s" % (name, why)] +
                               ["    " + line for line in lines]))
    return texts
