"""In-pod rollback, every way a payload can end: restored only once a check container has found
nothing left. The Kubernetes API is an in-memory pod here, and the kubelet is played by the test;
tests/payload/test_checks.py runs the check scripts themselves on a kernel with netem."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client as k8s

from chaosplane.errors import TransientError
from chaosplane.faults import eks, payloads
from chaosplane.models import JournalEntry

NAME = "chaosplane-0123456789abcdef0123"
NETEM = payloads.netem_command(interface="eth0", duration_s=60, delay_ms=100)
STRESS = payloads.stress_cpu_command(workers=1, load_percent=50, duration_s=60)
CLEAN = (0, "verified: no qdisc c4a0: on any interface")


def _state(state: str | int) -> k8s.V1ContainerState:
    if state == "running":
        return k8s.V1ContainerState(running=k8s.V1ContainerStateRunning())
    if state == "waiting":
        return k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="ContainerCreating"))
    return k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=int(state)))


class Pod:
    """One pod and the kubelet's part: the stop command ends the payload with `stop_exit`; each
    check container ends with the next of `checks` (exit code, termination message), or stays
    running when `checks` has run out."""

    def __init__(self, command: list[str], payload: str | int, checks: list[tuple[int, str]]) -> None:
        self.checks = checks
        self.stop_exit = 0
        self.execs: list[list[str]] = []
        self.added: list[dict[str, Any]] = []
        self.pod = k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name="web-1", namespace="shop", uid="uid-1"),
            spec=k8s.V1PodSpec(
                containers=[k8s.V1Container(name="app", image="nginx")],
                ephemeral_containers=[
                    k8s.V1EphemeralContainer(name=NAME, image="payload:1", command=command)
                ],
            ),
            status=k8s.V1PodStatus(ephemeral_container_statuses=[]),
        )
        self._report(NAME, _state(payload))

    def _report(self, name: str, state: k8s.V1ContainerState) -> None:
        statuses = [s for s in self.pod.status.ephemeral_container_statuses if s.name != name]
        statuses.append(
            k8s.V1ContainerStatus(
                name=name, image="payload:1", image_id="", ready=False, restart_count=0, state=state
            )
        )
        self.pod.status.ephemeral_container_statuses = statuses

    # -- PodApi -------------------------------------------------------------------------------------

    def read_pod(self, namespace: str, name: str) -> k8s.V1Pod:
        return copy.deepcopy(self.pod)

    def exec(self, namespace: str, pod: str, container: str, command: list[str]) -> str:
        self.execs.append(command)
        self._report(container, _state(self.stop_exit))
        return ""

    def add_ephemeral_container(self, pod: k8s.V1Pod, container: dict[str, Any]) -> None:
        self.added.append(container)
        self.pod.spec.ephemeral_containers.append(
            k8s.V1EphemeralContainer(
                name=container["name"], image=container["image"], command=container["command"]
            )
        )
        if self.checks:
            code, message = self.checks.pop(0)
            state = k8s.V1ContainerStateTerminated(exit_code=code, message=message)
            self._report(container["name"], k8s.V1ContainerState(terminated=state))
        else:
            self._report(container["name"], _state("running"))

    def finish_check(self, name: str, code: int, message: str) -> None:
        state = k8s.V1ContainerStateTerminated(exit_code=code, message=message)
        self._report(name, k8s.V1ContainerState(terminated=state))


class _Clusters:
    def client(self, name: str) -> Any:
        return None


def rollback(pod: Pod) -> str:
    family = eks.EksPods(
        _Clusters(), "payload:1", pod_api=lambda _: pod, start_timeout=0, sleep=lambda _: None
    )  # type: ignore[arg-type,return-value]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    entry = JournalEntry(
        result_id="r",
        key="k",
        resource_id="web-1",
        kind=eks.KIND,
        action=eks.EPHEMERAL,
        prior_state={"cluster": "c", "namespace": "shop", "uid": "uid-1", "container": NAME},
        created_at=now,
        updated_at=now,
    )
    return family.stop_payload(entry)


def checks_added(pod: Pod) -> list[str]:
    return [c["name"] for c in pod.added]


@pytest.mark.parametrize(
    ("ending", "payload_state", "execs"),
    [
        ("at its deadline", 0, 0),
        ("on SIGTERM from the stop command", "running", 1),
        ("refusing to start", 3, 0),
    ],
)
def test_a_payload_that_cleaned_up_is_restored_once_the_check_finds_nothing(
    ending: str, payload_state: str | int, execs: int
) -> None:
    pod = Pod(NETEM, payload_state, [CLEAN])

    restored = rollback(pod)

    exit_code = 0 if payload_state == "running" else payload_state
    assert restored == f"payload ended (exit {exit_code}); verified: no qdisc c4a0: on any interface"
    assert pod.execs == [payloads.stop_command()] * execs
    (check,) = pod.added
    assert check["name"] == NAME + "-check1" and check["command"] == payloads.check_command("netem")
    assert check["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_ADMIN"]}


def test_after_sigkill_the_check_removes_the_qdisc_left_and_only_that_is_restored() -> None:
    pod = Pod(NETEM, 137, [(0, "verified: netem c4a0: was left on eth0, removed")])

    assert rollback(pod) == "payload ended (exit 137); verified: netem c4a0: was left on eth0, removed"
    assert pod.execs == []


def test_a_failed_check_is_rollback_incomplete_and_the_next_attempt_checks_again() -> None:
    """Exit 4: the payload's own removal failed. The first check cannot remove it either."""
    pod = Pod(NETEM, 4, [(1, "netem c4a0: still on eth0 after removal"), CLEAN])

    with pytest.raises(TransientError, match=r"rollback incomplete .* exited 1: netem c4a0: still on eth0"):
        rollback(pod)
    assert checks_added(pod) == [NAME + "-check1"]

    assert rollback(pod) == "payload ended (exit 4); verified: no qdisc c4a0: on any interface"
    assert checks_added(pod) == [NAME + "-check1", NAME + "-check2"]


def test_a_check_still_running_is_waited_for_not_doubled() -> None:
    pod = Pod(NETEM, 0, [])

    with pytest.raises(TransientError, match=r"waiting for .*-check1 to verify"):
        rollback(pod)
    with pytest.raises(TransientError, match=r"waiting for .*-check1 to verify"):
        rollback(pod)
    assert checks_added(pod) == [NAME + "-check1"]

    pod.finish_check(NAME + "-check1", *CLEAN)
    assert rollback(pod).endswith("verified: no qdisc c4a0: on any interface")
    assert checks_added(pod) == [NAME + "-check1"]


def test_a_payload_still_starting_is_waited_for_before_any_check() -> None:
    pod = Pod(NETEM, "waiting", [CLEAN])

    with pytest.raises(TransientError, match="to end"):
        rollback(pod)
    assert pod.added == [] and pod.execs == []


def test_a_stress_payload_gets_the_stress_check_without_net_admin() -> None:
    pod = Pod(STRESS, "running", [(0, "verified: stress-ng was left running (41 42), killed")])

    assert rollback(pod) == "payload ended (exit 0); verified: stress-ng was left running (41 42), killed"
    (check,) = pod.added
    assert check["command"] == payloads.check_command("stress-cpu")
    assert check["securityContext"]["capabilities"] == {"drop": ["ALL"]}
