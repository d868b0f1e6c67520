"""In its container the payload is PID 1, which gets only the signals it handles, and the stop command
is exec'd into the same PID namespace: both run here as they would there (`unshare`, `nsenter`)."""

from __future__ import annotations

from pathlib import Path

from chaosplane.faults.payloads import NETEM_HANDLE, netem_command, stop_command, stress_cpu_command
from tests.payload.conftest import NetnsPair, Payloads, Running, in_shell, wait_until


def as_pid1(command: list[str]) -> list[str]:
    return ["unshare", "--pid", "--fork", "--mount-proc", *command]


def pid1_of(running: Running) -> int:
    """The host's PID for the payload that is PID 1 in its own namespace (unshare's only child)."""
    children = Path(f"/proc/{running.process.pid}/task/{running.process.pid}/children")
    return int(wait_until(lambda: children.read_text().split(), timeout=3)[0])


def stop_inside(payloads: Payloads, shell: list[str], pid1: int) -> None:
    """Exec'd into the payload's namespaces: when PID 1 exits, the kernel kills what is left there."""
    stopped = payloads.run(
        ["nsenter", "--target", str(pid1), "--pid", "--mount", *in_shell(stop_command(), shell)]
    )
    assert stopped.returncode == 0, stopped.stderr


def test_netem_as_pid1_is_stopped_by_the_stop_command(
    netns: NetnsPair, payloads: Payloads, shell: list[str]
) -> None:
    command = netem_command(interface=netns.dev, duration_s=30, delay_ms=100)
    running = payloads.start(netns.exec(as_pid1(in_shell(command, shell))))
    pid1 = pid1_of(running)
    wait_until(lambda: netns.root_qdisc().handle == NETEM_HANDLE, timeout=3)
    assert payloads.pidfile.read_text().strip() == "1"

    stop_inside(payloads, shell, pid1)

    assert running.finish(timeout=1)[0] == 0
    assert netns.root_qdisc().kind == "noqueue"


def test_stress_as_pid1_is_stopped_by_the_stop_command(payloads: Payloads, shell: list[str]) -> None:
    command = stress_cpu_command(workers=1, load_percent=50, duration_s=30)
    running = payloads.start(as_pid1(in_shell(command, shell)))
    pid1 = pid1_of(running)
    wait_until(lambda: [p for p in payloads.processes() if p.comm == "stress-ng-cpu"], timeout=3)

    stop_inside(payloads, shell, pid1)

    assert running.finish(timeout=1)[0] == 0
    wait_until(lambda: not payloads.processes(), timeout=2)
