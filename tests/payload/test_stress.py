"""The stress payloads, run for real: they load the machine, end at their timeout, and leave nothing."""

from __future__ import annotations

import signal
import time

import pytest

from chaosplane.faults.payloads import stop_command, stress_cpu_command, stress_memory_command
from tests.payload.conftest import CLOCK_TICKS, Payloads, Proc, Running, in_shell, wait_until

MIB = 1024


def workers(payloads: Payloads, comm: str) -> list[Proc]:
    return [proc for proc in payloads.processes() if proc.comm == comm]


def start_cpu(payloads: Payloads, shell: list[str], duration_s: int) -> Running:
    running = payloads.start(
        in_shell(stress_cpu_command(workers=1, load_percent=80, duration_s=duration_s), shell)
    )
    wait_until(lambda: workers(payloads, "stress-ng-cpu"), timeout=3)
    return running


def start_memory(payloads: Payloads, shell: list[str], duration_s: int) -> Running:
    command = stress_memory_command(workers=1, size="64M", duration_s=duration_s)
    running = payloads.start(in_shell(command, shell))
    wait_until(lambda: workers(payloads, "stress-ng-vm"), timeout=3)
    return running


def nothing_left(payloads: Payloads) -> None:
    wait_until(lambda: not payloads.processes(), timeout=2)
    assert not payloads.pidfile.exists()


def cpu_seconds_per_second(payloads: Payloads, interval: float) -> float:
    """CPU time (user + system) the payload's processes used over `interval` of wall-clock time."""
    before = {proc.pid: proc.cpu_ticks for proc in payloads.processes()}
    start = time.monotonic()
    time.sleep(interval)
    after = {proc.pid: proc.cpu_ticks for proc in payloads.processes()}
    elapsed = time.monotonic() - start
    used = sum(after[pid] - before[pid] for pid in before.keys() & after.keys())
    return used / CLOCK_TICKS / elapsed


def test_cpu_stress_burns_cpu_and_ends_at_its_timeout(payloads: Payloads) -> None:
    running = start_cpu(payloads, ["dash"], duration_s=3)

    # One worker at 80 %: about 0.8 CPU-seconds a second; an idle process shows 0.
    assert cpu_seconds_per_second(payloads, interval=1.0) > 0.3

    code, err, elapsed = running.finish(timeout=3 + 3)
    assert code == 0, err
    assert 3 <= elapsed < 3 + 3
    nothing_left(payloads)


def test_memory_stress_holds_the_size_asked_and_ends_at_its_timeout(payloads: Payloads) -> None:
    running = start_memory(payloads, ["dash"], duration_s=3)

    def held_kib() -> int:
        held = max(proc.rss_kib for proc in workers(payloads, "stress-ng-vm"))
        return held if held >= 0.9 * 64 * MIB else 0

    assert wait_until(held_kib, timeout=2.5) < 1.25 * 64 * MIB

    code, err, elapsed = running.finish(timeout=3 + 3)
    assert code == 0, err
    assert 3 <= elapsed < 3 + 3
    nothing_left(payloads)


STARTERS = {"cpu": start_cpu, "memory": start_memory}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("kind", STARTERS)
def test_a_signal_ends_the_stress_at_once(
    payloads: Payloads, shell: list[str], kind: str, signum: signal.Signals
) -> None:
    running = STARTERS[kind](payloads, shell, 30)

    signalled = time.monotonic()
    running.process.send_signal(signum)
    code, err, _ = running.finish(timeout=5)

    assert code == 0, err
    assert time.monotonic() - signalled < 2
    nothing_left(payloads)


def test_the_stop_command_ends_the_stress_and_a_second_stop_is_a_no_op(
    payloads: Payloads, shell: list[str]
) -> None:
    running = start_cpu(payloads, shell, duration_s=30)

    stopped = payloads.run(in_shell(stop_command(), shell))

    assert stopped.returncode == 0, stopped.stderr
    assert running.finish(timeout=1)[0] == 0
    nothing_left(payloads)
    assert payloads.run(in_shell(stop_command(), shell)).returncode == 0
