"""The commands an in-pod fault runs: small POSIX `sh` scripts for the payload image.

Why they look the way they do:

- **Ephemeral containers cannot be removed.** A pod fault adds an ephemeral container to the target pod
  and runs one of these commands in it; once added, the container stays in the pod's spec until the pod
  dies. Nothing outside can take the fault back out, so the payload itself must clean up and exit: at
  its deadline, and at once on SIGTERM/SIGINT (the platform's `stop_command()` sends SIGTERM). The
  payload may be PID 1 of its container, and PID 1 only receives the signals it has a handler for:
  hence the traps, and `sleep & wait` so a trap fires while the script waits instead of after the sleep.
- **The load ends by itself.** stress-ng always runs with `--timeout`, so the stress stops even if the
  platform, the script or the signal never comes; netem is removed by the script at its deadline.
- **Never remove a qdisc we did not create.** netem is added as the interface's root qdisc with our own
  handle (`NETEM_HANDLE`) and only if the root is a kernel default (handle `0:`): the script refuses to
  start over anyone else's traffic shaping. Removal deletes the root qdisc only with our handle (the
  kernel checks the handle in the same call), so it is idempotent and never touches a foreign qdisc.
- **Parameters are positional arguments**, never pasted into the script text, and are validated here
  first: whatever an interface name contains, the shell only ever sees it as `"$1"`.

Each payload writes its PID to the file named by `$CHAOSPLANE_PIDFILE` (default
`/tmp/chaosplane.pid`), which is how `stop_command()`, exec'd into the same container, finds it; the
payload deletes the file once it has cleaned up, which is how the stop command knows it may return.
As PID 1 of its own PID namespace (an ephemeral container without `targetContainerName`), the payload
waits up to 3 s for other processes before it exits: the kernel kills them all when PID 1 exits, and
the stop command's exec would otherwise end killed just as it succeeded.
"""

from __future__ import annotations

import math
import re

PIDFILE_ENV = "CHAOSPLANE_PIDFILE"
DEFAULT_PIDFILE = "/tmp/chaosplane.pid"
NETEM_HANDLE = "c4a0:"
"""The root qdisc handle chaosplane's netem uses ("c4a0" reads "chao"): anything else is not ours."""
PAYLOAD_MARKER = "chaosplane-payload-"
"""Prefix of every payload's `$0`: the stop command signals only a process whose command line has it."""
SHELL = "/bin/sh"
TERMINATION_LOG_ENV = "CHAOSPLANE_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
"""Where a check writes its verdict: the kubelet's default terminationMessagePath, read back by rollback."""
CHECK_TIMEOUT_S = 3
"""How long a check waits for what it killed or removed to be gone before it reports failure."""

MAX_DURATION_S = 43_200  # 12 hours, as AWS FIS
MAX_DELAY_MS = 60_000
MAX_WORKERS = 256
STOP_GRACE_S = 10
"""How long `stop_command()` waits for the payload to clean up and exit before reporting failure."""

# Root qdiscs the kernel attaches by itself (every possible net.core.default_qdisc, and mq on
# multi-queue devices), always with handle 0:. A qdisc someone added has a non-zero handle.
KERNEL_DEFAULT_QDISCS = ("noqueue", "pfifo_fast", "pfifo", "fq_codel", "fq", "mq", "sfq", "cake", "fq_pie")

# Linux's dev_valid_name(): 1-15 bytes, not "." or "..", no "/", ":" or whitespace. We also keep to
# printable ASCII: no pod interface needs more, and it keeps control characters out of logs.
_INTERFACE = re.compile(r"[!-~]{1,15}")
_SIZE = re.compile(r"(?P<number>[0-9]{1,12})(?P<unit>[KMGkmg]?)")
_PERCENT = re.compile(r"(?P<percent>[0-9]{1,3})%")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
_MIN_VM_BYTES = 4 << 10  # stress-ng's own minimum


def _fill(script: str) -> str:
    """Put this module's constants into a script once, at import: constants only, never parameters."""
    values = {
        "@PIDFILE_ENV@": PIDFILE_ENV,
        "@DEFAULT_PIDFILE@": DEFAULT_PIDFILE,
        "@HANDLE@": NETEM_HANDLE,
        "@KERNEL_DEFAULTS@": "|".join(f'"0: {kind}"' for kind in KERNEL_DEFAULT_QDISCS),
        "@MARKER@": PAYLOAD_MARKER,
        "@GRACE@": str(STOP_GRACE_S),
        "@TERMINATION_LOG_ENV@": TERMINATION_LOG_ENV,
        "@DEFAULT_TERMINATION_LOG@": DEFAULT_TERMINATION_LOG,
        "@CHECK_TRIES@": str(CHECK_TIMEOUT_S * 10),
    }
    for placeholder, value in values.items():
        script = script.replace(placeholder, value)
    if "@" in script.replace('"$@"', ""):
        raise RuntimeError("a payload script placeholder was left unfilled")
    return script


_PRELUDE = r"""
set -u
pidfile=${@PIDFILE_ENV@:-@DEFAULT_PIDFILE@}
say() { printf '%s: %s\n' "$0" "$*" >&2; }
write_pidfile() {
    # Written whole, then renamed: a stop command never reads a half-written file.
    printf '%s\n' "$$" > "$pidfile.$$" && mv -f "$pidfile.$$" "$pidfile" && return 0
    rm -f "$pidfile.$$"
    say "cannot write the pid file $pidfile: a stop command could not find this payload; not starting"
    return 1
}
pidfile_owner() {
    owner=
    { read -r owner < "$pidfile"; } 2>/dev/null
    printf '%s\n' "$owner"
}
alive() {
    # Exists and is not a zombie (a zombie has done all it will do).
    stat=
    { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
    state=${stat##*) }
    [ "${state%% *}" != Z ]
}
others_alive() {
    for stat in /proc/[0-9]*/stat; do
        other=${stat#/proc/}
        other=${other%/stat}
        if [ "$other" != "$$" ] && alive "$other"; then return 0; fi
    done
    return 1
}
leave() {
    # Cleaned up: let go of the pid file, which tells a waiting stop command that we are done.
    if [ "$(pidfile_owner)" = "$$" ]; then rm -f "$pidfile"; fi
    # As PID 1 of the container's own PID namespace, our exit makes the kernel kill every process
    # left in it, the stop command exec'd into the container included, whose exec would then look
    # failed. So PID 1 waits (briefly) for the others to finish first.
    if [ "$$" = 1 ]; then
        tries=30
        while [ "$tries" -gt 0 ] && others_alive; do tries=$((tries - 1)); sleep 0.1; done
    fi
    exit "$1"
}
"""

_NETEM = _fill(
    _PRELUDE
    + r"""
iface=$1 duration=$2 delay=$3 jitter=$4 loss=$5
handle=@HANDLE@
for n in "$duration" "$delay" "$jitter"; do
    case $n in ''|*[!0-9]*) say "not a whole number: $n"; exit 2 ;; esac
done
case $loss in ''|*[!0-9.]*) say "not a percentage: $loss"; exit 2 ;; esac

root_qdisc() {
    # "<kind> <handle>" of the root qdisc, e.g. "noqueue 0:"; fails if the device cannot be read.
    out=$(tc qdisc show dev "$iface" root) || return 1
    set -f
    set -- $out  # unquoted on purpose: "qdisc <kind> <handle> root ..."
    set +f
    [ "$#" -ge 3 ] && [ "$1" = qdisc ] || return 1
    printf '%s %s\n' "$2" "$3"
}

remove() {
    # Only a root qdisc with our handle, and the kernel re-checks the handle: never anyone else's.
    current=$(root_qdisc) || return 0
    case $current in
        *" $handle")
            if ! tc qdisc del dev "$iface" root handle "$handle"; then
                say "could not remove netem from $iface"
                return 1
            fi ;;
    esac
}

finish() {
    trap '' TERM INT HUP
    status=0
    remove || status=4
    leave "$status"
}

on_signal() {
    trap '' TERM INT HUP
    if [ -n "${!:-}" ]; then kill "$!" 2>/dev/null; fi
    say "stopping early"
    finish
}

current=$(root_qdisc) || { say "cannot read the root qdisc of $iface"; exit 2; }
kind=${current% *} found=${current#* }
if [ "$found" = "$handle" ]; then
    say "$iface already has chaosplane's netem ($handle), running or left behind: not starting"
    exit 3
fi
case "$found $kind" in
    @KERNEL_DEFAULTS@) ;;
    *) say "$iface has a root qdisc chaosplane did not create ($kind $found): leaving it alone, not starting"
       exit 3 ;;
esac

trap on_signal TERM INT HUP
write_pidfile || exit 2
set -- netem
if [ "$delay" -gt 0 ]; then set -- "$@" delay "${delay}ms" "${jitter}ms"; fi
if [ "$loss" != 0 ]; then set -- "$@" loss "${loss}%"; fi
if ! tc qdisc add dev "$iface" root handle "$handle" "$@"; then
    say "could not add netem to $iface"
    leave 2
fi
say "$* on $iface for ${duration}s"
# The timer holds none of our output: should it ever outlive us (a signal racing its start), it
# keeps no pipe open behind us and does nothing but end by itself.
sleep "$duration" </dev/null >/dev/null 2>&1 &
wait "$!"
finish
"""
)

_STRESS = _fill(
    _PRELUDE
    + r"""
on_signal() {
    trap '' TERM INT HUP
    # $! is stress-ng as soon as it is started, even before the line after it has run.
    if [ -n "${!:-}" ]; then
        kill -TERM "$!" 2>/dev/null
        wait "$!"
    fi
    say "stopped early"
    leave 0
}

trap on_signal TERM INT HUP
write_pidfile || exit 2
stress-ng "$@" &
wait "$!"
status=$?
trap '' TERM INT HUP
leave "$status"
"""
)

_STOP = _fill(
    _PRELUDE
    + r"""
if [ ! -e "$pidfile" ]; then say "no pid file $pidfile: no payload to stop"; exit 0; fi
pid=
{ read -r pid < "$pidfile"; } 2>/dev/null
case $pid in ''|*[!0-9]*) say "pid file $pidfile does not hold a pid: '$pid'"; exit 1 ;; esac
if ! alive "$pid"; then say "payload $pid has already exited"; exit 0; fi
cmdline=$(tr '\000' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || cmdline=
case $cmdline in
    *@MARKER@*) ;;
    *) say "process $pid is not a chaosplane payload (stale pid file): leaving it alone"; exit 0 ;;
esac
kill -TERM "$pid" 2>/dev/null || exit 0
# Done when the payload has let go of its pid file (it has cleaned up) or is gone.
tries=$((@GRACE@ * 10))
while alive "$pid" && [ "$(pidfile_owner)" = "$pid" ]; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then say "payload $pid still running @GRACE@s after SIGTERM"; exit 1; fi
    sleep 0.1
done
say "payload $pid stopped"
"""
)

# The checks run after a payload has ended, however it ended (its deadline, a signal, SIGKILL, an early
# exit), in a fresh container of the same pod: the payload's exit code proves nothing about what it
# left. Each finds what a payload of its kind leaves behind, removes it, looks again, and says what it
# saw: exit 0 only when nothing is left. The verdict goes to the termination log, which the kubelet
# copies into the container's status for rollback to read.
_CHECK_PRELUDE = r"""
set -u
verdict() {
    printf '%s\n' "$1"
    log=${@TERMINATION_LOG_ENV@:-@DEFAULT_TERMINATION_LOG@}
    if [ -f "$log" ] && [ -w "$log" ]; then printf '%s\n' "$1" > "$log"; fi
    exit "$2"
}
"""

_CHECK_NETEM = _fill(
    _CHECK_PRELUDE
    + r"""
handle=@HANDLE@
ours() {
    # The interfaces whose root qdisc has our handle; fails if the qdiscs cannot be read.
    found=
    for path in /sys/class/net/*; do
        [ -e "$path" ] || continue
        dev=${path##*/}
        out=$(tc qdisc show dev "$dev" root) || return 1
        set -f
        set -- $out  # "qdisc <kind> <handle> root ..."
        set +f
        if [ "$#" -ge 3 ] && [ "$3" = "$handle" ]; then found="$found $dev"; fi
    done
    printf '%s\n' "${found# }"
}
left=$(ours) || verdict "cannot read the qdiscs: rollback not verified" 1
if [ -z "$left" ]; then verdict "verified: no qdisc $handle on any interface" 0; fi
for dev in $left; do tc qdisc del dev "$dev" root handle "$handle" || true; done
still=$(ours) || verdict "cannot read the qdiscs after removing netem from $left" 1
if [ -n "$still" ]; then verdict "netem $handle still on $still after removal" 1; fi
verdict "verified: netem $handle was left on $left, removed" 0
"""
)

_CHECK_STRESS = _fill(
    _CHECK_PRELUDE
    + r"""
stressors() {
    # stress-ng and its workers (they rename themselves stress-ng-cpu, stress-ng-vm, ...), not zombies.
    found=
    for stat in /proc/[0-9]*/stat; do
        line=
        { read -r line < "$stat"; } 2>/dev/null || continue
        comm=${line#*(}
        comm=${comm%)*}
        state=${line##*) }
        case "${state%% *} $comm" in
            Z*) ;;
            *" stress-ng"*) pid=${stat#/proc/}; found="$found ${pid%/stat}" ;;
        esac
    done
    printf '%s\n' "${found# }"
}
left=$(stressors)
if [ -z "$left" ]; then verdict "verified: no stress-ng process left" 0; fi
kill -KILL $left 2>/dev/null
tries=@CHECK_TRIES@
while [ -n "$(stressors)" ]; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then verdict "stress-ng still running after SIGKILL: $(stressors)" 1; fi
    sleep 0.1
done
verdict "verified: stress-ng was left running ($left), killed" 0
"""
)


def _whole(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _interface(name: str) -> str:
    if not isinstance(name, str) or not _INTERFACE.fullmatch(name) or name in (".", "..") or "/" in name:
        raise ValueError(f"not a valid network interface name: {name!r}")
    if ":" in name:
        raise ValueError(f"not a valid network interface name (':' is an alias, not a device): {name!r}")
    return name


def _percent_text(name: str, value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not 0 <= value <= 100:
        raise ValueError(f"{name} must be between 0 and 100, got {value}")
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _vm_size(size: str) -> str:
    if not isinstance(size, str):
        raise ValueError(f"size must be a string such as '256M', '1G' or '50%', got {size!r}")
    if match := _PERCENT.fullmatch(size):
        if not 1 <= int(match["percent"]) <= 100:
            raise ValueError(f"size as a percentage of memory must be 1% to 100%, got {size!r}")
        return size
    if match := _SIZE.fullmatch(size):
        if int(match["number"]) * _UNITS[match["unit"].upper()] < _MIN_VM_BYTES:
            raise ValueError(f"size must be at least 4K, got {size!r}")
        return size
    raise ValueError(f"size must be bytes with an optional K, M or G suffix, or a percentage: {size!r}")


def _script(name: str, script: str, *args: str) -> list[str]:
    return [SHELL, "-c", script, PAYLOAD_MARKER + name, *args]


def netem_command(
    *, interface: str, duration_s: int, delay_ms: int = 0, jitter_ms: int = 0, loss_percent: float = 0
) -> list[str]:
    """Delay and/or drop the interface's egress traffic for `duration_s` seconds, then put it back."""
    interface = _interface(interface)
    duration_s = _whole("duration_s", duration_s, 1, MAX_DURATION_S)
    delay_ms = _whole("delay_ms", delay_ms, 0, MAX_DELAY_MS)
    jitter_ms = _whole("jitter_ms", jitter_ms, 0, MAX_DELAY_MS)
    loss = _percent_text("loss_percent", loss_percent)
    if jitter_ms > delay_ms:
        raise ValueError(f"jitter_ms ({jitter_ms}) must not exceed delay_ms ({delay_ms})")
    if delay_ms == 0 and loss == "0":
        raise ValueError("nothing to inject: give delay_ms and/or loss_percent")
    return _script("netem", _NETEM, interface, str(duration_s), str(delay_ms), str(jitter_ms), loss)


def stress_cpu_command(*, workers: int, load_percent: int, duration_s: int) -> list[str]:
    """Load `workers` CPUs at `load_percent` each; stress-ng's --timeout ends it even if we are gone."""
    workers = _whole("workers", workers, 1, MAX_WORKERS)
    load_percent = _whole("load_percent", load_percent, 1, 100)
    duration_s = _whole("duration_s", duration_s, 1, MAX_DURATION_S)
    args = ["--cpu", str(workers), "--cpu-load", str(load_percent), "--timeout", f"{duration_s}s"]
    return _script("stress-cpu", _STRESS, *args)


def stress_memory_command(*, workers: int, size: str, duration_s: int) -> list[str]:
    """Hold `size` of memory (stress-ng 0.15 shares --vm-bytes among the workers: it is the total)."""
    workers = _whole("workers", workers, 1, MAX_WORKERS)
    size = _vm_size(size)
    duration_s = _whole("duration_s", duration_s, 1, MAX_DURATION_S)
    args = ["--vm", str(workers), "--vm-bytes", size, "--vm-keep", "--timeout", f"{duration_s}s"]
    return _script("stress-memory", _STRESS, *args)


def stop_command() -> list[str]:
    """Exec'd into the payload's container: SIGTERM the payload, wait until it has cleaned up.

    Exit 0 when the payload is gone (also when it was gone already, or never wrote a pid file), so the
    platform can repeat it; non-zero only if the payload is still running after `STOP_GRACE_S`.
    """
    return [SHELL, "-c", _STOP, "chaosplane-stop"]


def check_command(payload: str) -> list[str]:
    """Run after a payload has ended, in a fresh container of its pod: remove what the payload left
    behind and prove it gone. Exit 0 only when nothing is left; the verdict is the termination message.

    `payload` is the payload's kind: "netem", "stress-cpu" or "stress-memory".
    """
    if payload == "netem":
        return [SHELL, "-c", _CHECK_NETEM, "chaosplane-check-netem"]
    if payload in ("stress-cpu", "stress-memory"):
        return [SHELL, "-c", _CHECK_STRESS, "chaosplane-check-stress"]
    raise ValueError(f"no check for a payload of kind {payload!r}")


def payload_kind(command: list[str]) -> str | None:
    """The kind of payload a container's command runs ("netem", ...), or None if it is not a payload."""
    if len(command) >= 4 and command[0] == SHELL and command[3].startswith(PAYLOAD_MARKER):
        return command[3].removeprefix(PAYLOAD_MARKER)
    return None
