"""Probes in runs, on the fakes: a steady state that does not hold refuses the run, a failing
`during` probe halts it as an alarm does, an `after` probe waits for recovery, and every run ends
with a verdict (`success` is `verdict == passed`)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from chaosplane.errors import Halted, PreflightFailed
from chaosplane.models import FailureKind, Phase, RunStatus, StopKind, Target, Verdict
from chaosplane.probes import Observation
from chaosplane.runs import AlarmState, Runs
from chaosplane.steps import StepError
from tests.fakes import FakeClock, FakeInstances, FakeWorkflow, InMemoryStore


@dataclass
class World:
    """What the probes see: per probe name, whether the system looks healthy at a time."""

    clock: FakeClock
    healthy: dict[str, Callable[[datetime], bool]] = field(default_factory=dict)
    asked: list[tuple[str, datetime]] = field(default_factory=list)

    def observe(self, probe: Any) -> Observation:
        now = self.clock()
        self.asked.append((probe.name, now))
        ok = self.healthy.get(probe.name, lambda _: True)(now)
        return Observation(ok, 1.0 if ok else 0.0, "fine" if ok else "status 500")


@dataclass
class Rig:
    store: InMemoryStore
    family: FakeInstances
    clock: FakeClock
    world: World
    workflow: FakeWorkflow
    runs: Runs
    target: Target
    ids: list[str]

    def run(self, *probes: dict[str, Any], duration: int = 60) -> str:
        """Start a single-fault run with `probes`, and drive it as the state machine does."""
        experiment = self.store.add_experiment(self.target, duration=duration, probes=list(probes))
        run_id = self.runs.start(experiment.id, team="red").id
        error: StepError | None = None
        try:
            self.runs.prepare(None, run_id)
            while not (advanced := self.runs.advance(run_id)).finished:
                self.clock.advance(advanced.wake_in)
        except (Halted, PreflightFailed) as err:
            error = StepError.model_validate({"Error": type(err).__name__, "Cause": str(err)})
        self.runs.rollback(run_id)
        while not (settled := self.runs.settle(run_id)).done:
            self.clock.advance(settled.wake_in)
        self.runs.finalize(run_id, error, None)
        return run_id

    def result(self, run_id: str) -> Any:
        return self.store.get_result(run_id, team="red")

    def since_start(self, at: datetime, run_id: str) -> float:
        start = self.result(run_id).actions["ec2-stop"].in_force_at
        return (at - start).total_seconds()


@pytest.fixture
def rig() -> Rig:
    clock = FakeClock()
    store = InMemoryStore(clock)
    family = FakeInstances()
    ids = family.add(2, app="web")
    world = World(clock)
    workflow = FakeWorkflow()
    runs = Runs(
        store,
        lambda fault: family,
        start_workflow=workflow.start,
        send_halt=workflow.halt,
        alarms=lambda names: {n: AlarmState("OK", team="red") for n in names},
        execution_status=lambda name: "RUNNING",
        clock=clock,
        rng=random.Random(1),
        parallel_changes=1,
        publish=workflow.publish,
        probes=world,
    )
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100})
    return Rig(store, family, clock, world, workflow, runs, store.add_target(selector="app=web"), ids)


def http(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "source": "http", "url": "http://127.0.0.1:9/health", **fields}


def test_a_run_without_probes_is_inconclusive_never_a_success(rig: Rig) -> None:
    result = rig.result(rig.run())

    assert result.status is RunStatus.COMPLETED
    assert result.verdict is Verdict.INCONCLUSIVE and result.success is False


def test_probes_that_hold_before_during_and_after_make_a_passed_verdict(rig: Rig) -> None:
    run_id = rig.run(
        http("steady", mode="before"),
        http("serving", interval=10),
        http("recovered", mode="after", settle=30),
        http("edge", mode="edge"),
    )
    result = rig.result(run_id)

    assert result.status is RunStatus.COMPLETED
    assert result.verdict is Verdict.PASSED and result.success is True
    phases = {name: {e.phase for e in r.evaluations} for name, r in result.probe_records.items()}
    assert phases == {
        "steady": {Phase.BEFORE},
        "serving": {Phase.DURING},
        "recovered": {Phase.AFTER},
        "edge": {Phase.BEFORE, Phase.AFTER},
    }
    # During the 60 s fault, asked on its interval: at 0, 10, ... 50 s.
    serving = [rig.since_start(at, run_id) for name, at in rig.world.asked if name == "serving"]
    assert serving == [0, 10, 20, 30, 40, 50]
    assert rig.workflow.events[-1].verdict is Verdict.PASSED
    assert "verdict passed" in result.timeline[-1].message


def test_a_steady_state_that_does_not_hold_refuses_the_run_before_anything_is_touched(rig: Rig) -> None:
    rig.world.healthy["steady"] = lambda _: False
    result = rig.result(rig.run(http("steady", mode="before", tolerance=3, interval=5)))

    assert result.status is RunStatus.FAILED and result.failure_kind is FailureKind.PREFLIGHT
    assert "steady state does not hold" in (result.error or "") and "status 500" in (result.error or "")
    assert set(rig.family.states.values()) == {"running"} and not rig.store.journal(result.id)
    # Asked `tolerance` times, `interval` apart, before the run was refused.
    assert len(result.probe_records["steady"].evaluations) == 3
    assert result.verdict is Verdict.INCONCLUSIVE  # the run tested nothing


def test_a_steady_state_that_comes_back_within_its_tolerance_lets_the_run_go_on(rig: Rig) -> None:
    began = rig.clock()
    rig.world.healthy["steady"] = lambda now: (now - began).total_seconds() >= 5
    result = rig.result(rig.run(http("steady", mode="before", tolerance=2, interval=5)))

    assert result.status is RunStatus.COMPLETED
    assert [e.ok for e in result.probe_records["steady"].evaluations] == [False, True]
    assert result.verdict is Verdict.PASSED


def test_a_failing_during_probe_halts_the_run_within_interval_times_tolerance(rig: Rig) -> None:
    began = rig.clock()
    rig.world.healthy["serving"] = lambda now: (now - began).total_seconds() < 20
    run_id = rig.run(http("serving", interval=5, tolerance=2), duration=300)
    result = rig.result(run_id)

    assert result.status is RunStatus.STOPPED and result.stop_kind is StopKind.PROBE
    assert result.stop_reason == "probe serving failed: status 500"
    assert set(rig.family.states.values()) == {"running"}  # everything rolled back
    assert result.verdict is Verdict.FAILED and result.success is False
    record = result.probe_records["serving"]
    # Failing from 20 s; asked at 20 and 25 s: failed at the second, tolerance 2.
    assert record.failed_in is Phase.DURING
    assert record.failed_at is not None and rig.since_start(record.failed_at, run_id) == 25
    assert any(e.new_status == "stopping" and e.stop_kind is StopKind.PROBE for e in rig.workflow.events)


def test_a_failing_probe_without_stop_on_failure_fails_the_verdict_not_the_run(rig: Rig) -> None:
    rig.world.healthy["latency"] = lambda _: False
    result = rig.result(rig.run(http("latency", stop_on_failure=False, interval=10)))

    assert result.status is RunStatus.COMPLETED
    assert result.verdict is Verdict.FAILED
    # Failed once, then no longer asked: its answer is in.
    assert len(result.probe_records["latency"].evaluations) == 1


def test_an_after_probe_waits_for_recovery_within_its_settle_window(rig: Rig) -> None:
    began = rig.clock()
    rig.world.healthy["recovered"] = lambda now: (now - began).total_seconds() >= 60 + 25
    result = rig.result(rig.run(http("recovered", mode="after", interval=10, settle=60)))

    assert result.status is RunStatus.COMPLETED and result.verdict is Verdict.PASSED
    assert [e.ok for e in result.probe_records["recovered"].evaluations] == [False, False, False, True]


def test_an_after_probe_that_never_recovers_turns_a_completed_run_failed(rig: Rig) -> None:
    rig.world.healthy["recovered"] = lambda _: False
    result = rig.result(rig.run(http("recovered", mode="after", interval=10, settle=30)))

    assert result.status is RunStatus.COMPLETED
    assert result.verdict is Verdict.FAILED and result.success is False
    record = result.probe_records["recovered"]
    assert record.failed_in is Phase.AFTER
    assert "not recovered within 30s" in record.evaluations[-1].detail
    assert any("recovered did not recover" in e.message for e in result.timeline)


def test_a_halted_run_is_inconclusive_when_its_after_probe_is_never_asked(rig: Rig) -> None:
    experiment = rig.store.add_experiment(rig.target, duration=60, probes=[http("recovered", mode="after")])
    run_id = rig.runs.start(experiment.id, team="red").id
    rig.runs.halt(run_id, None)  # before Prepare: nothing is ever started
    rig.runs.rollback(run_id)
    assert rig.runs.settle(run_id).done
    rig.runs.finalize(run_id, StepError.model_validate({"Error": "Halted", "Cause": "stop"}), None)

    assert rig.result(run_id).verdict is Verdict.INCONCLUSIVE


def test_an_alarm_probe_halts_the_run_through_the_alarm_event_and_fails_the_verdict(rig: Rig) -> None:
    probe = {"name": "quiet", "source": "cloudwatch-alarm", "alarm": "shop-5xx", "interval": 30}
    experiment = rig.store.add_experiment(rig.target, duration=600, probes=[probe])
    run_id = rig.runs.start(experiment.id, team="red").id
    # A halting alarm probe is one of the run's stop conditions, as a bare alarm name would be.
    assert rig.result(run_id).stop_conditions == ["shop-5xx"]
    rig.runs.prepare(None, run_id)
    rig.runs.advance(run_id)

    assert rig.runs.on_alarm("shop-5xx", "Threshold Crossed") == [run_id]  # the guard's path
    rig.runs.rollback(run_id)
    rig.runs.finalize(run_id, StepError.model_validate({"Error": "Halted", "Cause": "stop"}), None)

    result = rig.result(run_id)
    assert result.status is RunStatus.STOPPED and result.stop_kind is StopKind.ALARM
    assert result.verdict is Verdict.FAILED
    assert result.probe_records["quiet"].failed_in is Phase.DURING
    assert "shop-5xx went into ALARM" in result.probe_records["quiet"].evaluations[-1].detail


def test_a_run_halted_by_a_bare_stop_condition_fails_its_verdict_too(rig: Rig) -> None:
    experiment = rig.store.add_experiment(rig.target, duration=600, stop_conditions=["shop-5xx"])
    run_id = rig.runs.start(experiment.id, team="red").id
    rig.runs.prepare(None, run_id)
    rig.runs.advance(run_id)
    rig.runs.on_alarm("shop-5xx", "Threshold Crossed")
    rig.runs.rollback(run_id)
    rig.runs.finalize(run_id, StepError.model_validate({"Error": "Halted", "Cause": "stop"}), None)

    assert rig.result(run_id).verdict is Verdict.FAILED  # the steady state broke
