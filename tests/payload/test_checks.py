"""The checks rollback runs after a payload has ended, however it ended: each finds what was left,
removes it, and exits 0 only when nothing is. The payload's exit code is never the proof."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from chaosplane.faults.payloads import NETEM_HANDLE, TERMINATION_LOG_ENV, check_command, stress_cpu_command
from tests.payload.conftest import NetnsPair, Payloads, in_shell, wait_until
from tests.payload.test_netem import assert_back_to_default, assert_undelayed, start_netem, wait_for_ours
from tests.payload.test_pid1 import as_pid1, pid1_of


def check_netem(netns: NetnsPair, payloads: Payloads, shell: list[str], log: Path) -> tuple[int, str]:
    log.write_text("")  # the kubelet creates the termination log; the check only writes to one that exists
    env = {**payloads.env, TERMINATION_LOG_ENV: str(log)}
    done = payloads.run(netns.exec(in_shell(check_command("netem"), shell)), env=env)
    assert log.read_text().strip() == done.stdout.strip(), (log.read_text(), done.stdout)
    return done.returncode, done.stdout.strip()


@pytest.mark.netem
@pytest.mark.parametrize("ending", ["deadline", "SIGTERM", "early-exit"])
def test_after_a_payload_that_cleaned_up_the_netem_check_finds_nothing(
    netns: NetnsPair, payloads: Payloads, shell: list[str], ending: str, tmp_path: Path
) -> None:
    if ending == "early-exit":  # refuses to start over someone else's netem, exits 3
        netns.tc("qdisc", "add", "dev", netns.dev, "root", "handle", "1:", "netem", "delay", "10ms")
    theirs = netns.qdisc_details()
    running = start_netem(netns, payloads, shell, duration_s=1 if ending == "deadline" else 30)
    if ending == "SIGTERM":
        wait_for_ours(netns, running)
        running.process.send_signal(signal.SIGTERM)
    code, err, _ = running.finish(timeout=4)
    assert code == (3 if ending == "early-exit" else 0), err

    checked = check_netem(netns, payloads, shell, tmp_path / "termination-log")

    assert checked == (0, f"verified: no qdisc {NETEM_HANDLE} on any interface")
    assert netns.qdisc_details() == theirs  # someone else's netem is not ours to remove


@pytest.mark.netem
def test_after_sigkill_the_qdisc_stays_and_the_check_removes_it(
    netns: NetnsPair, payloads: Payloads, shell: list[str], tmp_path: Path
) -> None:
    running = start_netem(netns, payloads, shell, duration_s=30, delay_ms=100)
    wait_for_ours(netns, running)
    running.process.send_signal(signal.SIGKILL)
    code, _, _ = running.finish(timeout=2)
    assert code == -signal.SIGKILL
    assert netns.root_qdisc().handle == NETEM_HANDLE  # the payload could not clean up
    left = netns.ping(count=3, interval=0.1)
    assert left.received == 3 and min(left.times_ms) >= 90, left

    checked = check_netem(netns, payloads, shell, tmp_path / "termination-log")

    assert checked == (0, f"verified: netem {NETEM_HANDLE} was left on {netns.dev}, removed")
    assert_undelayed(netns, "after SIGKILL and the check")
    payloads.pidfile.unlink()  # SIGKILL left it too; the stop command treats it as stale
    assert_back_to_default(netns, payloads)
    assert check_netem(netns, payloads, shell, tmp_path / "again") == (
        0,
        f"verified: no qdisc {NETEM_HANDLE} on any interface",
    )


def test_after_sigkill_the_stress_check_kills_the_stress_ng_left_in_the_pid_namespace(
    payloads: Payloads, shell: list[str], tmp_path: Path
) -> None:
    """As in a pod that shares its PID namespace: the namespace outlives the payload, and so would
    stress-ng (until its --timeout) once the payload is SIGKILLed. The check runs in that namespace."""
    pod = payloads.start(as_pid1(["sleep", "60"]))  # the pod's PID 1, like its pause container
    pid1 = pid1_of(pod)
    enter = ["nsenter", "--target", str(pid1), "--pid", "--mount"]
    payload = payloads.start(
        [*enter, *in_shell(stress_cpu_command(workers=1, load_percent=50, duration_s=60), shell)]
    )
    wait_until(lambda: [p for p in payloads.processes() if p.comm == "stress-ng-cpu"], timeout=3)
    script = wait_until(
        lambda: [
            p.pid
            for p in payloads.processes()
            if b"chaosplane-payload-" in _cmdline(p.pid) and p.comm != "nsenter"
        ],
        timeout=3,
    )
    os.kill(script[0], signal.SIGKILL)
    payload.process.wait(timeout=2)  # nsenter, once the script is gone (stress-ng holds its pipes)
    assert [p for p in payloads.processes() if p.comm.startswith("stress-ng")]  # left behind

    log = tmp_path / "termination-log"
    log.write_text("")
    done = payloads.run(
        [*enter, *in_shell(check_command("stress-cpu"), shell)],
        env={**payloads.env, TERMINATION_LOG_ENV: str(log)},
    )

    assert done.returncode == 0, done
    assert done.stdout.startswith("verified: stress-ng was left running ("), done.stdout
    assert done.stdout.strip().endswith("), killed") and log.read_text() == done.stdout
    assert not [p for p in payloads.processes() if p.comm.startswith("stress-ng")]
    again = payloads.run([*enter, *in_shell(check_command("stress-cpu"), shell)])
    assert (again.returncode, again.stdout.strip()) == (0, "verified: no stress-ng process left")


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
