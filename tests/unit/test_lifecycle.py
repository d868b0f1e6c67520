"""The whole run lifecycle on in-memory fakes: every path of a run, in milliseconds, with a fake clock.

The state machine's order is played by hand here (the embedded-AWS tests run the real ASL); what is
under test is that each step, on its own, does the right thing and leaves the store consistent.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

import pytest

from chaosplane.errors import (
    Conflict,
    ErrorName,
    Halted,
    InjectionFailed,
    InvalidRequest,
    PreflightFailed,
    RollbackIncomplete,
    TransientError,
)
from chaosplane.faults.base import Resource
from chaosplane.models import (
    ActionStatus,
    Experiment,
    FailureKind,
    FaultType,
    JournalStatus,
    RunStatus,
    StopKind,
    Target,
)
from chaosplane.runs import AlarmState, Runs
from chaosplane.steps import StepError
from chaosplane.telemetry import Metric
from chaosplane.tenancy import TEAM_TAG, Boundary, TeamSettings
from tests.fakes import (
    FakeClock,
    FakeInstances,
    FakeWorkflow,
    InMemoryStore,
    RecordingTelemetry,
    RecordingTracing,
)


@dataclass
class World:
    store: InMemoryStore
    family: FakeInstances
    workflow: FakeWorkflow
    clock: FakeClock
    runs: Runs
    target: Target
    alarms: dict[str, AlarmState]
    telemetry: RecordingTelemetry
    tracing: RecordingTracing

    def experiment(self, **fields: object) -> Experiment:
        return self.store.add_experiment(self.target, **fields)

    def states(self) -> dict[str, str]:
        return dict(self.family.states)


@pytest.fixture
def world() -> World:
    clock = FakeClock()
    store = InMemoryStore(clock)
    family = FakeInstances()
    family.add(10)
    workflow = FakeWorkflow()
    alarms: dict[str, AlarmState] = {"latency-high": AlarmState("OK", team="red")}
    telemetry = RecordingTelemetry()
    tracing = RecordingTracing()
    runs = Runs(
        store,
        lambda fault: family,
        start_workflow=workflow.start,
        send_halt=workflow.halt,
        alarms=lambda names: {n: alarms[n] for n in names if n in alarms},
        execution_status=lambda name: "RUNNING",
        clock=clock,
        rng=random.Random(7),
        publish=workflow.publish,
        parallel_changes=1,
        telemetry=telemetry,
        tracing=tracing,
    )
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100, "max_resources": 100})
    return World(store, family, workflow, clock, runs, store.add_target(), alarms, telemetry, tracing)


def error(name: ErrorName | str, cause: str = "") -> StepError:
    return StepError.model_validate({"Error": str(name), "Cause": cause})


def held(world: World, experiment: Experiment, plan_id: str | None = None) -> str:
    """Start a run and take it through Prepare, Advance and into Observe; its id."""
    run = world.runs.start(experiment.id, team="red", plan_id=plan_id)
    world.runs.prepare(None, run.id)
    advanced = world.runs.advance(run.id)
    assert not advanced.finished and advanced.wake_in == experiment.duration
    world.runs.observe(run.id, f"token-{run.id}", advanced.wake_in)
    return run.id


def test_a_run_holds_its_fault_for_the_duration_then_restores_everything(world: World) -> None:
    # Given an experiment that stops 3 of 10 running instances for 10 minutes...
    experiment = world.experiment(selection="COUNT(3)")
    run_id = held(world, experiment)
    stopped = sorted(i for i, s in world.states().items() if s == "stopped")
    assert len(stopped) == 3
    in_force = world.store.get_result(run_id, team="red").actions["ec2-stop"]
    assert in_force.status is ActionStatus.IN_FORCE and in_force.in_force_at == world.clock()
    # ...when its duration passes (Observe times out), Advance says it is finished...
    world.clock.advance(599)
    assert world.runs.advance(run_id).wake_in == 1  # woken early (a retry): hold the rest
    world.clock.advance(1)
    assert world.runs.advance(run_id).finished
    # ...and the workflow rolls back and finalizes...
    assert world.runs.rollback(run_id).rolled_back == 3
    final = world.runs.finalize(run_id, None, None)
    # ...then every instance runs again, the run completed, and every lock is free for the next run.
    assert final.status is RunStatus.COMPLETED
    assert set(world.states().values()) == {"running"}
    result = world.store.get_result(run_id, team="red")
    assert [r.id for r in result.resources] == stopped
    assert all(r.after == "stopped" and r.restored == "running" for r in result.resources)
    assert result.actions["ec2-stop"].status is ActionStatus.COMPLETED
    assert result.actions["ec2-stop"].end_time == world.clock()
    assert result.metrics["run_seconds"] == 600.0
    assert world.workflow.statuses(run_id) == ["None->pending", "pending->running", "running->completed"]
    assert not world.store.locks.active and not world.store.locks.experiment and not world.store.locks.target
    assert world.runs.start(experiment.id, team="red").status is RunStatus.PENDING


def test_a_reboot_run_lasts_its_duration_watching_its_stop_conditions(world: World) -> None:
    # Given an instant fault: the reboot is done when injected...
    experiment = world.experiment(type="ec2-reboot", selection="COUNT(2)", stop_conditions=["latency-high"])
    run = world.runs.start(experiment.id, team="red")
    world.runs.prepare(None, run.id)
    advanced = world.runs.advance(run.id)
    assert len(world.family.reboots) == 2
    # ...yet the run holds for its duration (a wait beside it), so an alarm can still halt it...
    assert not advanced.finished and advanced.wake_in == 600
    actions = world.store.get_result(run.id, team="red").actions
    assert actions["ec2-reboot"].status is ActionStatus.COMPLETED
    assert actions["observe"].status is ActionStatus.IN_FORCE
    world.runs.observe(run.id, f"token-{run.id}", advanced.wake_in)
    assert world.runs.on_alarm("latency-high", "p99 over 2 s") == [run.id]
    assert world.workflow.halted == [f"token-{run.id}"]
    with pytest.raises(Halted):  # the halt's flag refuses another Advance
        world.runs.advance(run.id)
    world.runs.rollback(run.id)
    final = world.runs.finalize(run.id, error(ErrorName.HALTED), None)
    assert final.status is RunStatus.STOPPED
    actions = world.store.get_result(run.id, team="red").actions
    assert {name: p.status for name, p in actions.items()} == {
        "ec2-reboot": ActionStatus.COMPLETED,  # done when injected
        "observe": ActionStatus.STOPPED,  # cut short by the halt
    }


def test_an_unhalted_reboot_run_ends_at_its_duration(world: World) -> None:
    run = world.runs.start(world.experiment(type="ec2-reboot", selection="COUNT(1)").id, team="red")
    world.runs.prepare(None, run.id)
    assert world.runs.advance(run.id).wake_in == 600
    world.clock.advance(300)
    assert world.runs.advance(run.id).wake_in == 300  # woken early: hold the rest
    world.clock.advance(300)
    assert world.runs.advance(run.id).finished
    assert world.runs.rollback(run.id).rolled_back == 1
    assert world.runs.finalize(run.id, None, None).status is RunStatus.COMPLETED
    assert world.store.get_result(run.id, team="red").metrics["run_seconds"] == 600.0


def test_rollback_undoes_each_journal_entry_through_the_fault_that_wrote_it(world: World) -> None:
    # Given a held ec2-stop run whose entries name their fault, one of them written before entries
    # did (no fault), and an entry of another fault (ec2-reboot) on an instance since stopped by
    # its owner
    run_id = held(world, world.experiment(selection="COUNT(2)"))
    stops = world.store.journal(run_id)
    assert [e.fault for e in stops] == [FaultType.EC2_STOP, FaultType.EC2_STOP]
    world.store.entries[(run_id, stops[0].key)].fault = None
    rebooted = next(i for i, s in world.states().items() if s == "running")
    world.store.journal_before_change(
        run_id,
        Resource(rebooted, "ec2:instance", "running"),
        "reboot",
        {"state": "running"},
        FaultType.EC2_REBOOT,
    )
    world.family.states[rebooted] = "stopped"

    # When the run rolls back
    assert world.runs.rollback(run_id).rolled_back == 3

    # Then both stops are undone by ec2-stop (the unnamed one as the run's fault), and the reboot
    # by ec2-reboot, which records the state and starts nothing
    assert all(world.states()[e.resource_id] == "running" for e in stops)
    assert world.states()[rebooted] == "stopped"


def test_a_stop_halts_observe_at_once_and_the_run_ends_stopped(world: World) -> None:
    run_id = held(world, world.experiment(selection="COUNT(2)"))
    world.runs.stop(world.store.results[run_id].experiment_id, team="red")
    # The Observe task got its Halted failure: that is what ends the wait.
    assert world.workflow.halted == [f"token-{run_id}"]
    world.runs.rollback(run_id)
    final = world.runs.finalize(run_id, error(ErrorName.HALTED), None)
    assert final.status is RunStatus.STOPPED
    result = world.store.get_result(run_id, team="red")
    assert result.stop_kind is StopKind.USER
    assert result.actions["ec2-stop"].status is ActionStatus.STOPPED
    assert set(world.states().values()) == {"running"}
    assert world.workflow.statuses(run_id)[-2:] == ["running->stopping", "stopping->stopped"]


def test_a_stop_between_two_holds_is_seen_by_the_next_advance_or_observe(world: World) -> None:
    # Given a held run whose Observe task has just timed out (Step Functions refuses its token,
    # which the halt sender takes as "nothing to halt")...
    run_id = held(world, world.experiment(selection="COUNT(2)"))
    # ...a stop that lands now reaches no waiting task...
    world.runs.stop(world.store.results[run_id].experiment_id, team="red")
    # ...but the next Advance refuses to go on, and so would the next Observe.
    with pytest.raises(Halted):
        world.runs.advance(run_id)
    with pytest.raises(Halted):
        world.runs.observe(run_id, f"token-2-{run_id}", 600)
    world.runs.rollback(run_id)
    assert world.runs.finalize(run_id, error(ErrorName.HALTED), None).status is RunStatus.STOPPED
    assert set(world.states().values()) == {"running"}


def test_an_alarm_halts_only_the_runs_that_name_it(world: World) -> None:
    watched = held(world, world.experiment(selection="COUNT(1)", stop_conditions=["latency-high"]))
    other_target = world.store.add_target(name="other")
    unwatched_experiment = world.store.add_experiment(other_target, selection="COUNT(1)")
    unwatched = held(world, unwatched_experiment)
    assert world.runs.on_alarm("latency-high", "p99 over 2 s") == [watched]
    assert world.workflow.halted == [f"token-{watched}"]
    result = world.store.get_result(watched, team="red")
    assert result.stop_kind is StopKind.ALARM and "p99 over 2 s" in (result.stop_reason or "")
    assert not world.store.get_result(unwatched, team="red").stop_requested


def test_an_alarm_event_slower_than_the_request_leaves_the_run_to_preflight(world: World) -> None:
    # The alarm went into ALARM, and a run naming it was requested before the guard heard of it.
    experiment = world.experiment(selection="COUNT(1)", stop_conditions=["latency-high"])
    changed_at = world.clock()
    world.alarms["latency-high"] = AlarmState("ALARM", team="red")
    world.clock.advance(1)
    late = world.runs.start(experiment.id, team="red")
    # The guard leaves it pending, so that Prepare refuses it, with nothing touched...
    assert world.runs.on_alarm("latency-high", "p99 over 2 s", changed_at) == []
    assert not world.store.get_result(late.id, team="red").stop_requested
    with pytest.raises(PreflightFailed):
        world.runs.prepare(None, late.id)
    assert set(world.states().values()) == {"running"}
    # ...while a run requested before the change is halted, pending or not.
    assert world.runs.finalize(late.id, error(ErrorName.PREFLIGHT_FAILED), None).status is RunStatus.FAILED
    early = world.runs.start(experiment.id, team="red")
    world.clock.advance(1)
    assert world.runs.on_alarm("latency-high", "p99 over 2 s", world.clock() - timedelta(seconds=0.5)) == [
        early.id
    ]


def test_a_stop_before_observe_is_seen_by_inject_and_nothing_more_is_hit(world: World) -> None:
    run = world.runs.start(world.experiment(selection="ALL").id, team="red")
    world.runs.prepare(None, run.id)
    world.runs.halt(run.id, None)
    with pytest.raises(Halted):
        world.runs.advance(run.id)
    assert set(world.states().values()) == {"running"}
    assert world.runs.finalize(run.id, error(ErrorName.HALTED), None).status is RunStatus.STOPPED


def test_a_crashed_run_is_recovered_from_the_journal_alone(world: World) -> None:
    # Given a run whose execution died after Inject (nothing but the journal knows what it did)...
    run_id = held(world, world.experiment(selection="COUNT(4)"))
    assert list(world.states().values()).count("stopped") == 4
    # ...the sweeper sees the execution gone and recovers it.
    world.runs._execution_status = lambda name: "ABORTED"
    report = world.runs.sweep()
    assert report["recovered"] == [run_id]
    assert set(world.states().values()) == {"running"}
    result = world.store.get_result(run_id, team="red")
    assert result.status is RunStatus.FAILED and result.failure_kind is FailureKind.ABORTED
    assert not world.store.locks.active
    # Recovery is idempotent: a second delivery changes nothing and says so.
    again = world.runs.recover(run_id, "execution aborted")
    assert again.rolled_back == 0 and again.status is RunStatus.FAILED


def test_an_inject_that_died_before_its_marks_were_written_is_retried_safely(world: World) -> None:
    # Given an Inject whose function died after its changes, before the progress write that
    # carries the journal's marks (a timeout, an out-of-memory)...
    run = world.runs.start(world.experiment(selection="COUNT(3)").id, team="red")
    world.runs.prepare(None, run.id)
    world.store.update_run = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        world.runs.advance(run.id)
    del world.store.update_run
    assert list(world.states().values()).count("stopped") == 3
    assert {e.status for e in world.store.journal(run.id)} == {JournalStatus.PENDING}
    # ...the retry counts the three as hit (not as changed by someone else), journals nothing twice...
    assert world.runs.advance(run.id).wake_in == 600
    result = world.store.get_result(run.id, team="red")
    assert result.actions["ec2-stop"].status is ActionStatus.IN_FORCE
    assert all(r.after and "earlier attempt" in r.after and not r.detail for r in result.resources)
    assert len(world.store.journal(run.id)) == 3
    # ...and rollback restores every one.
    assert world.runs.rollback(run.id).rolled_back == 3
    assert world.runs.finalize(run.id, None, None).status is RunStatus.COMPLETED
    assert set(world.states().values()) == {"running"}


def crash(*args: object, **kwargs: object) -> None:
    raise SystemExit("the function died")


def test_a_rollback_that_fails_keeps_the_originals_and_succeeds_when_retried(world: World) -> None:
    run_id = held(world, world.experiment(selection="COUNT(2)"))
    throttled = TransientError("Throttling: rate exceeded")
    world.family.rollback_failures = [throttled]
    # The first attempt restores what it can, and fails with every cause kept (Step Functions retries).
    with pytest.raises(TransientError) as first:
        world.runs.rollback(run_id)
    assert isinstance(first.value.__cause__, ExceptionGroup)
    assert first.value.__cause__.exceptions == (throttled,)
    assert list(world.states().values()).count("stopped") == 1
    # The retry restores the rest, and only the rest.
    assert world.runs.rollback(run_id).rolled_back == 1
    assert world.runs.finalize(run_id, None, None).status is RunStatus.COMPLETED
    assert set(world.states().values()) == {"running"}


def test_a_rollback_that_cannot_finish_keeps_the_locks_until_recovery_restores(world: World) -> None:
    experiment = world.experiment(selection="COUNT(1)")
    run_id = held(world, experiment)
    world.family.rollback_failures = [RuntimeError("InsufficientInstanceCapacity")]
    with pytest.raises(RollbackIncomplete) as failed:
        world.runs.rollback(run_id)
    final = world.runs.finalize(run_id, None, error(ErrorName.ROLLBACK_INCOMPLETE, str(failed.value)))
    assert final.status is RunStatus.FAILED
    result = world.store.get_result(run_id, team="red")
    assert result.failure_kind is FailureKind.ROLLBACK and "ROLLBACK INCOMPLETE" in (result.error or "")
    with pytest.raises(Conflict):  # nothing new on resources that may still be faulted
        world.runs.start(experiment.id, team="red")
    assert world.runs.sweep()["recovered"] == [run_id]
    assert set(world.states().values()) == {"running"} and not world.store.locks.active
    assert world.workflow.statuses(run_id)[-1] == "failed->failed"
    assert world.workflow.events[-1].rollback_complete is True


def test_an_access_denied_injection_fails_the_run_and_rolls_back_what_was_done(world: World) -> None:
    run = world.runs.start(world.experiment(selection="ALL").id, team="red")
    world.runs.prepare(None, run.id)
    plan = world.store.get_plan(world.store.results[run.id].plan_id or "", team="red")
    world.family.deny = {plan.selected[3].id}  # the fourth of ten is refused
    with pytest.raises(InjectionFailed, match="AccessDenied"):
        world.runs.advance(run.id)
    # Three were stopped; the refused one was journaled before its call, so rollback looks at it too.
    assert world.runs.rollback(run.id).rolled_back == 4
    final = world.runs.finalize(run.id, error("InjectionFailed", "stop_instances failed: AccessDenied"), None)
    assert final.status is RunStatus.FAILED
    result = world.store.get_result(run.id, team="red")
    assert result.failure_kind is FailureKind.INJECTION and "AccessDenied" in (result.error or "")
    assert result.actions["ec2-stop"].status is ActionStatus.INTERRUPTED
    assert set(world.states().values()) == {"running"}


def test_preflight_refuses_a_run_whose_stop_condition_is_in_alarm(world: World) -> None:
    world.alarms["latency-high"] = AlarmState("ALARM", "p99 over 2 s", team="red")
    run = world.runs.start(world.experiment(stop_conditions=["latency-high"]).id, team="red")
    with pytest.raises(PreflightFailed, match="latency-high is in ALARM"):
        world.runs.prepare(None, run.id)
    final = world.runs.finalize(run.id, error(ErrorName.PREFLIGHT_FAILED), None)
    assert final.status is RunStatus.FAILED
    assert world.store.get_result(run.id, team="red").failure_kind is FailureKind.PREFLIGHT
    assert set(world.states().values()) == {"running"}


@pytest.mark.parametrize("where", ["stop_conditions", "probes"])
def test_another_team_s_alarm_is_not_found_by_a_tag_boundary_team_and_refuses_the_run(
    world: World, where: str
) -> None:
    world.alarms["blue-5xx"] = AlarmState("OK", "under 1%", team="blue")
    world.alarms["untagged"] = AlarmState("OK")
    named = ["blue-5xx", "untagged"]
    if where == "stop_conditions":
        experiment = world.experiment(stop_conditions=named)
    else:
        experiment = world.experiment(
            probes=[{"name": n, "source": "cloudwatch-alarm", "alarm": n, "mode": "before"} for n in named]
        )
    # Whose the alarm is, is not said: to red it looks missing, in the preview and at the start.
    assert world.runs.missing_alarms(named, team="red") == named
    run = world.runs.start(experiment.id, team="red")
    with pytest.raises(PreflightFailed, match=r"blue-5xx does not exist.*untagged does not exist"):
        world.runs.prepare(None, run.id)
    assert world.runs.stop_condition_states(run.id, team="red") == [
        {"alarm": n, "state": "MISSING", "reason": ""} for n in experiment.stop_conditions
    ]
    assert set(world.states().values()) == {"running"}  # nothing was touched
    # A team given the whole account uses any alarm in it.
    world.store.settings["red"] = TeamSettings(boundary=Boundary.ACCOUNT)
    assert world.runs.missing_alarms(named, team="red") == []


# -- one plan: what the preview shows is what the run hits ------------------------------------------


@pytest.mark.parametrize("selection", ["ALL", "COUNT(3)", "PERCENT(40)"])
def test_a_run_from_a_preview_hits_exactly_the_previewed_resources(world: World, selection: str) -> None:
    experiment = world.experiment(selection=selection)
    for _ in range(5):  # sampling differs from preview to preview; each run follows its own preview
        preview = world.runs.preview(experiment.id, team="red")
        shown = [r.id for r in preview.selected]
        run_id = held(world, experiment, plan_id=preview.plan_id)
        hit = sorted(i for i, s in world.states().items() if s == "stopped")
        assert hit == sorted(shown)
        assert [r.id for r in world.store.get_result(run_id, team="red").resources] == shown
        world.runs.rollback(run_id)
        world.runs.finalize(run_id, None, None)


def test_inject_acts_on_the_planned_resource_labels_and_all(world: World) -> None:
    world.family.labels["i-0000"]["owner"] = "payments"
    experiment = world.experiment(selection="ALL")
    preview = world.runs.preview(experiment.id, team="red")
    held(world, experiment, plan_id=preview.plan_id)
    assert world.family.injected_with["i-0000"].labels == {"app": "web", TEAM_TAG: "red", "owner": "payments"}


def test_a_stale_plan_is_refused_naming_each_resource_and_nothing_is_touched(world: World) -> None:
    experiment = world.experiment(selection="COUNT(3)")
    preview = world.runs.preview(experiment.id, team="red")
    first, second, _ = (r.id for r in preview.selected)
    world.family.states[first] = "stopped"  # its owner stopped it
    world.family.labels[second]["chaosplane/protected"] = "true"  # and this one was protected since
    with pytest.raises(Conflict) as refused:
        world.runs.start(experiment.id, team="red", plan_id=preview.plan_id)
    assert f"{first}: it is stopped now (was running)" in str(refused.value)
    assert f"{second}: labelled chaosplane/protected=true" in str(refused.value)
    assert not world.store.results and not world.store.locks.active
    assert world.workflow.started == []


def test_a_plan_expires_and_an_experiment_change_voids_it(world: World) -> None:
    experiment = world.experiment(selection="COUNT(1)")
    preview = world.runs.preview(experiment.id, team="red")
    assert (preview.expires_at - world.clock()).total_seconds() == 15 * 60
    world.clock.advance(15 * 60)
    with pytest.raises(Conflict, match="expired"):
        world.runs.start(experiment.id, team="red", plan_id=preview.plan_id)
    preview = world.runs.preview(experiment.id, team="red")
    world.store.change_experiment(experiment.id, duration=30)
    with pytest.raises(Conflict, match="changed since"):
        world.runs.start(experiment.id, team="red", plan_id=preview.plan_id)
    assert not world.store.results


def test_a_plan_is_its_own_teams_and_its_own_experiments(world: World) -> None:
    experiment = world.experiment(selection="COUNT(1)")
    preview = world.runs.preview(experiment.id, team="red")
    blue_target = world.store.add_target(team="blue")
    blue = world.store.add_experiment(blue_target)
    with pytest.raises(InvalidRequest, match="does not exist") as unknown:
        world.runs.start(blue.id, team="blue", plan_id=preview.plan_id)  # another team's: as if missing
    assert unknown.value.field == "plan_id"
    other = world.store.add_experiment(world.store.add_target(name="db"), selection="COUNT(1)")
    with pytest.raises(Conflict, match="was made for experiment"):
        world.runs.start(other.id, team="red", plan_id=preview.plan_id)


def test_a_resource_that_changes_between_start_and_prepare_fails_the_run_untouched(world: World) -> None:
    experiment = world.experiment(selection="COUNT(2)")
    preview = world.runs.preview(experiment.id, team="red")
    run = world.runs.start(experiment.id, team="red", plan_id=preview.plan_id)
    world.family.states[preview.selected[0].id] = "stopping"
    with pytest.raises(PreflightFailed, match="no longer eligible"):
        world.runs.prepare(None, run.id)
    assert list(world.states().values()).count("stopped") == 0
    assert world.runs.finalize(run.id, error(ErrorName.PREFLIGHT_FAILED), None).status is RunStatus.FAILED
    assert not world.store.locks.active


def test_a_run_without_a_plan_stores_the_plan_it_made(world: World) -> None:
    run_id = held(world, world.experiment(selection="PERCENT(20)"))
    result = world.store.get_result(run_id, team="red")
    plan = world.store.get_plan(result.plan_id or "", team="red")
    assert [r.id for r in plan.selected] == [r.id for r in result.resources]
    assert len(plan.eligible_not_selected) == 8
    # A run's own plan cannot start another run.
    world.runs.rollback(run_id)
    world.runs.finalize(run_id, None, None)
    with pytest.raises(Conflict, match="expired"):
        world.runs.start(result.experiment_id, team="red", plan_id=plan.id)


# -- the platform's own metrics (chaosplane.telemetry) --------------------------------------------


def test_a_run_counts_its_start_and_its_end_and_times_its_steps(world: World) -> None:
    run_id = held(world, world.experiment(selection="COUNT(3)"))
    world.clock.advance(600)
    world.runs.rollback(run_id)
    world.runs.finalize(run_id, None, None)
    t = world.telemetry
    run = {"Team": "red", "Fault": "ec2-stop"}
    assert t.dimensions(Metric.RUNS_STARTED) == [run] and t.dimensions(Metric.RUNS_COMPLETED) == [run]
    assert t.of(Metric.RUNS_STOPPED) == t.of(Metric.RUNS_FAILED) == t.of(Metric.ROLLBACK_INCOMPLETE) == []
    assert (
        t.dimensions(Metric.INJECT_DURATION)
        == t.dimensions(Metric.ROLLBACK_DURATION)
        == [{"Fault": "ec2-stop"}]
    )
    assert t.of(Metric.TIME_TO_HALT) == []  # nobody asked it to stop
    # A rollback run again with nothing left to undo times nothing.
    world.runs.rollback(run_id)
    assert len(t.of(Metric.ROLLBACK_DURATION)) == 1


def test_a_halt_is_timed_from_the_stop_to_everything_restored(world: World) -> None:
    run_id = held(world, world.experiment(selection="COUNT(2)", stop_conditions=["latency-high"]))
    assert world.runs.on_alarm("latency-high", "p99 over 2 s") == [run_id]
    world.clock.advance(0.25)  # the halt reaches Rollback a quarter of a second later
    world.runs.rollback(run_id)
    world.runs.finalize(run_id, error(ErrorName.HALTED), None)
    t = world.telemetry
    assert t.of(Metric.TIME_TO_HALT) == [250.0]
    assert t.of(Metric.GUARD_EVENTS) == [1] and t.of(Metric.GUARD_HALTS) == [1]
    assert t.dimensions(Metric.RUNS_STOPPED) == [{"Team": "red", "Fault": "ec2-stop"}]


def test_the_sweeper_samples_the_faults_in_force_and_its_own_lag(world: World) -> None:
    held(world, world.experiment(selection="COUNT(3)", duration=60))
    world.clock.advance(30)
    world.runs.sweep(scheduled_at=world.clock() - timedelta(seconds=2))
    t = world.telemetry
    assert t.of(Metric.SWEEPER_LAG) == [2000.0]
    assert t.of(Metric.FAULTS_ACTIVE) == [3] and t.of(Metric.FAULTS_OVERDUE) == [0]
    # Long past the run's end (its rollback never came), the same three are overdue.
    world.clock.advance(3600)
    world.runs.sweep()
    assert t.of(Metric.FAULTS_ACTIVE)[-1] == 3 and t.of(Metric.FAULTS_OVERDUE)[-1] == 3
    assert len(t.of(Metric.SWEEPER_LAG)) == 1  # no tick time, no lag sample


def test_a_run_that_ends_with_changes_not_undone_is_counted(world: World) -> None:
    run_id = held(world, world.experiment(selection="COUNT(1)"))
    world.family.rollback_failures = [RollbackIncomplete("instance is gone")] * 3
    with pytest.raises(RollbackIncomplete):
        world.runs.rollback(run_id)
    world.runs.finalize(run_id, None, error(ErrorName.ROLLBACK_INCOMPLETE, "instance is gone"))
    world.runs.finalize(run_id, None, error(ErrorName.ROLLBACK_INCOMPLETE, "instance is gone"))  # a retry
    assert world.telemetry.dimensions(Metric.ROLLBACK_INCOMPLETE) == [{"Team": "red", "Fault": "ec2-stop"}]


def test_a_metric_that_cannot_be_emitted_never_fails_the_run(world: World) -> None:
    def broken(metric: Metric, value: float = 1, **dimensions: str) -> None:
        raise ConnectionError("stdout is gone")

    world.telemetry.emit = broken  # type: ignore[method-assign]
    run_id = held(world, world.experiment(selection="COUNT(1)"))
    world.runs.rollback(run_id)
    assert world.runs.finalize(run_id, None, None).status is RunStatus.COMPLETED


def test_each_step_annotates_its_trace_and_each_change_has_a_span(world: World) -> None:
    run_id = held(world, world.experiment(selection="COUNT(2)"))
    world.runs.rollback(run_id)
    world.runs.finalize(run_id, None, None)
    run = {"run_id": run_id, "team": "red", "fault": "ec2-stop"}
    steps = [a["step"] for a in world.tracing.annotations]
    assert steps == ["prepare", "advance", "observe", "rollback", "finalize"]
    assert all(a == {**run, "step": a["step"]} for a in world.tracing.annotations if a["step"] != "observe")
    hit = sorted(r.id for r in world.store.get_result(run_id, team="red").resources)
    names = [name for name, _ in world.tracing.spans]
    assert names == ["ec2-stop inject"] * 2 + ["ec2-stop rollback"] * 2
    assert sorted(a["resource"] for _, a in world.tracing.spans[:2]) == hit


def test_a_run_injected_before_actions_were_recorded_records_its_action_completed(world: World) -> None:
    # Given an execution started before Advance: its Inject (the old code) recorded no actions...
    run = world.runs.start(world.experiment(selection="COUNT(2)").id, team="red")
    world.runs.prepare(None, run.id)
    world.runs.inject(run.id)
    world.store.results[run.id].actions = {}
    # ...then Observe held the fault for the duration, and it rolled back and finalized.
    world.runs.observe(run.id, f"token-{run.id}", 600)
    world.clock.advance(600)
    world.runs.rollback(run.id)
    assert world.runs.finalize(run.id, None, None).status is RunStatus.COMPLETED
    # The action held its whole duration: completed, not interrupted.
    action = world.store.get_result(run.id, team="red").actions["ec2-stop"]
    assert action.status is ActionStatus.COMPLETED and action.end_time == world.clock()


def test_a_run_whose_frozen_fault_no_longer_validates_still_rolls_back_in_full(world: World) -> None:
    # Given a held run whose recorded parameters a later catalogue refuses (a deploy mid-run)...
    run_id = held(world, world.experiment(selection="COUNT(2)"))
    world.store.results[run_id].parameters = {"retired_parameter": True}
    # ...Rollback still undoes everything and writes its record, actions included.
    assert world.runs.rollback(run_id).rolled_back == 2
    assert set(world.states().values()) == {"running"}
    result = world.store.get_result(run_id, team="red")
    assert result.actions["ec2-stop"].status is ActionStatus.COMPLETED
    assert {e.status for e in world.store.journal(run_id)} == {JournalStatus.ROLLED_BACK}
