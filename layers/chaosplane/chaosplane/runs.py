"""The run lifecycle: plan, inject, observe, roll back, finalize.

Each method is one step of `statemachines/experiment.asl.json` (or one API action). The order and
the guarantees (every path after Prepare passes through Rollback, retries, timeouts) belong to the
state machine; this module makes each step correct on its own, idempotent, and safe to retry.
Side effects come in as arguments: the store, the fault families, the clock, the random generator,
and how to start or halt a workflow.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chaosplane.errors import (
    Conflict,
    Halted,
    InvalidRequest,
    NotEligible,
    NotFound,
    NothingToHit,
    PolicyRefused,
    PreflightFailed,
    RollbackIncomplete,
    RunExists,
    TransientError,
)
from chaosplane.faults.base import AccessChecking, FaultFamily, Resource, RunContext
from chaosplane.metrics import READ_AGAIN_UNTIL, MetricReader, loses_points, series_for
from chaosplane.models import (
    ExperimentResult,
    FailureKind,
    FaultType,
    JournalEntry,
    JournalStatus,
    ResourceState,
    RunStatus,
    StopKind,
    Target,
    Trigger,
    utcnow,
)
from chaosplane.parallel import CHANGES_AT_ONCE, each_in_order
from chaosplane.safety import ALL_TEAMS_LEVER, InsufficientData, Plan, SafetyPolicy, plan_run
from chaosplane.selection import Selection
from chaosplane.store import RunJournal, Store

# The fault catalogue is imported by the functions that use it, not here: it imports every fault
# family (the EKS one, the Kubernetes client), which the guard, halting runs, never needs.
HALTED = "Halted"
# Refusals that make a scheduled run `skipped` rather than `failed`: the run never touched anything.
_SKIPPABLE = {"PreflightFailed", "PolicyRefused", "NothingToHit"}
logger = logging.getLogger(__name__)
RunEventPublisher = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AlarmState:
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str = ""


AlarmReader = Callable[[list[str]], dict[str, AlarmState]]
ExecutionStatus = Callable[[str], str | None]  # RUNNING, SUCCEEDED, ...; None: no such execution
PENDING_GRACE = timedelta(minutes=5)  # a pending run with no execution after this never will have one


def alarm_name(reference: str) -> str:
    """Stop conditions are alarm names or ARNs; CloudWatch and its events speak names."""
    return reference.split(":alarm:", 1)[-1]


def preflight(
    stop_conditions: list[str], read: AlarmReader | None, insufficient: InsufficientData
) -> tuple[dict[str, AlarmState], list[str]]:
    """The stop conditions' states, and the reasons a run may not start now (none: it may)."""
    names = [alarm_name(ref) for ref in stop_conditions]
    if not names:
        return {}, []
    if read is None:
        return {}, ["stop conditions cannot be checked by this component"]
    states = read(names)
    problems = []
    for name in names:
        found = states.get(name)
        if found is None:
            problems.append(f"stop condition {name} does not exist")
        elif found.state == "ALARM":
            problems.append(f"stop condition {name} is in ALARM: {found.reason}")
        elif found.state == "INSUFFICIENT_DATA" and insufficient is InsufficientData.REFUSE:
            problems.append(f"stop condition {name} has insufficient data (the team's policy refuses that)")
    return states, problems


TIMELINE_IDS = 20  # a timeline line names at most this many resources: the result has them all
# A big run writes its progress in batches: one write per resource would rewrite the whole result
# item (every resource's state) each time, and one timeline line per resource would grow it past
# DynamoDB's 400 KB item limit near the policy's 1,000 resources. The journal, not this record, is
# what rollback works from, so a lagging record never leaves a fault behind.
WRITE_EVERY = 25  # resources between two writes of a big run's record...
WRITE_AFTER = timedelta(seconds=5)  # ...or this long, so that live status keeps moving


class _Progress:
    """A run's per-resource progress in its result record: each of the first TIMELINE_IDS resources
    on its own timeline line, at once; past those, in batches with one line that counts them."""

    def __init__(
        self,
        store: Store,
        result: ExperimentResult,
        step: str,
        verb: str,
        total: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._store, self._result, self._step, self._verb = store, result, step, verb
        self._total, self._clock = total, clock
        self._done = 0
        self._skipped = 0
        self._unwritten = 0
        self._written_at = clock()

    def done(self, message: str, *, skipped: bool = False) -> None:
        self._done += 1
        self._skipped += skipped
        if self._done <= TIMELINE_IDS:
            self._write((self._step, message))
            return
        self._unwritten += 1
        if self._unwritten >= WRITE_EVERY or self._clock() - self._written_at >= WRITE_AFTER:
            self.flush()

    def flush(self) -> None:
        if self._unwritten:
            skipped = f" ({self._skipped} of them skipped)" if self._skipped else ""
            self._write((self._step, f"{self._done} of {self._total} {self._verb}{skipped}"))

    def flush_quietly(self) -> None:
        """Flush on the way out of a failure: a failed write is logged, the failure stays the error."""
        try:
            self.flush()
        except Exception:
            logger.exception("progress of run %s could not be written", self._result.id)

    def _write(self, event: tuple[str, str]) -> None:
        self._store.update_run(self._result.id, resources=self._result.resources, event=event)
        self._unwritten = 0
        self._written_at = self._clock()


def _catch_up(result: ExperimentResult, journaled: list[JournalEntry]) -> bool:
    """Fill the record from the journal where an earlier attempt ended before writing its batch.

    The journal knows a change was applied (or undone), not the state the resource showed then:
    the record says so instead of leaving the resource looking untouched.
    """
    by_id = {r.id: r for r in result.resources}
    changed = False
    for entry in journaled:
        resource = by_id.get(entry.resource_id)
        if resource is None or entry.status is JournalStatus.PENDING:
            continue
        if resource.after is None:
            resource.after, changed = f"{entry.action} applied", True
        if entry.status is JournalStatus.ROLLED_BACK and resource.restored is None:
            resource.restored, changed = f"{entry.action} undone", True
    return changed


def _some(ids: Iterable[str]) -> str:
    """The ids joined by commas; for a big run the first twenty "and 980 more" (the item stays small)."""
    listed = list(ids)
    head = ", ".join(listed[:TIMELINE_IDS])
    return head if len(listed) <= TIMELINE_IDS else f"{head} and {len(listed) - TIMELINE_IDS} more"


def check_target_fits(experiment_fault: FaultType, target: Target, *, field: str | None = None) -> None:
    """`field`: the request's field to name in the error (when the request has one)."""
    from chaosplane.faults import catalogue

    wanted = catalogue.spec(experiment_fault).target_type
    if target.type is not wanted:
        raise InvalidRequest(
            f"fault {experiment_fault.value} acts on {wanted.value} targets, "
            f"but target {target.id} is {target.type.value}",
            field=field,
        )


def check_irreversible(fault: FaultType, allow_irreversible: bool, *, field: str | None = None) -> None:
    """An irreversible fault (ec2-terminate) only with the experiment's explicit consent."""
    from chaosplane.faults import catalogue

    if catalogue.spec(fault).irreversible and not allow_irreversible:
        raise InvalidRequest(
            f"fault {fault.value} is irreversible (rollback cannot undo it); "
            "the experiment must set allow_irreversible: true to use it",
            field=field,
        )


def outcome(error: dict[str, Any] | None, rollback_error: dict[str, Any] | None) -> RunStatus:
    """The run's final status from how the workflow got to Finalize."""
    if rollback_error is not None:
        return RunStatus.FAILED
    if error is None:
        return RunStatus.COMPLETED
    return RunStatus.STOPPED if error.get("Error") == HALTED else RunStatus.FAILED


_FAILURE_KINDS = {
    PreflightFailed.__name__: FailureKind.PREFLIGHT,
    PolicyRefused.__name__: FailureKind.POLICY,
    NothingToHit.__name__: FailureKind.NOTHING_TO_HIT,
    "WorkflowEnded": FailureKind.ABORTED,
}


def failure_kind(
    error: dict[str, Any] | None, rollback_error: dict[str, Any] | None, *, prepared: bool
) -> FailureKind:
    """Why a failed run failed, from the error names Step Functions caught (and whether Prepare
    had finished: an unnamed error before that touched nothing, after it came from the fault)."""
    if rollback_error is not None:
        return FailureKind.ROLLBACK
    named = _FAILURE_KINDS.get(str((error or {}).get("Error")))
    if named is not None:
        return named
    return FailureKind.INJECTION if prepared else FailureKind.PREPARE


def describe_error(error: dict[str, Any] | None) -> str | None:
    """A readable message from a Step Functions error object ({"Error", "Cause"})."""
    if error is None:
        return None
    name = str(error.get("Error", "Error"))
    cause = error.get("Cause")
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
            cause = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
        except ValueError:
            pass
    return f"{name}: {cause}" if cause else name


class Runs:
    def __init__(
        self,
        store: Store,
        families: Callable[[FaultType], FaultFamily],
        *,
        start_workflow: Callable[[ExperimentResult], None] | None = None,
        send_halt: Callable[[str], None] | None = None,
        alarms: AlarmReader | None = None,
        metrics: MetricReader | None = None,
        execution_status: ExecutionStatus | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        publish: RunEventPublisher | None = None,
        parallel_changes: int = CHANGES_AT_ONCE,
    ) -> None:
        self._store = store
        self._parallel_changes = parallel_changes
        self._families = families
        self._start_workflow = start_workflow
        self._send_halt = send_halt
        self._alarms = alarms
        self._metrics = metrics
        self._execution_status = execution_status
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._publish = publish

    def _announce(
        self,
        result: ExperimentResult,
        old: str | None,
        new: str,
        reason: str | None = None,
        *,
        stop_kind: str | None = None,
        rollback_complete: bool | None = None,
    ) -> None:
        """Put a run state change on EventBridge. Never fails the run: a lost event is only logged."""
        if self._publish is None:
            return
        try:
            name = self._store.get_experiment(result.experiment_id, team=None).name
        except Exception:
            name = ""  # deleted meanwhile, or the read failed: the event still goes out
        detail = {
            "run_id": result.id,
            "experiment_id": result.experiment_id,
            "experiment_name": name,
            "team": result.team,
            "fault": result.fault.value,
            "trigger": result.trigger.value,
            "old_status": old,
            "new_status": new,
            "reason": reason,
            "stop_kind": stop_kind,
            "rollback_complete": rollback_complete,
            "time": self._clock().isoformat(),
        }
        try:
            self._publish(detail)
        except Exception:
            logger.exception("could not publish the run event %s -> %s of run %s", old, new, result.id)

    # -- API side -------------------------------------------------------------------------------

    def start(self, experiment_id: str, *, team: str) -> ExperimentResult:
        """Create the run and start its workflow; if the start fails, nothing is left behind."""
        if self._start_workflow is None:
            raise RuntimeError("this component cannot start runs (no state machine configured)")
        experiment = self._store.get_experiment(experiment_id, team=team)
        check_target_fits(experiment.type, self._store.get_target(experiment.target, team=team))
        policy = self._store.policy(team)
        result = self._store.create_run(experiment, max_concurrent_runs=policy.max_concurrent_runs)
        try:
            self._start_workflow(result)
        except Exception:
            self._store.abandon_run(result.id, experiment.id)
            raise
        self._announce(result, None, RunStatus.PENDING.value)
        return result

    def stop(self, experiment_id: str, *, team: str) -> ExperimentResult:
        result_id = self._store.active_run_of(experiment_id, team=team)
        if result_id is None:
            raise Conflict(f"experiment {experiment_id} is not running")
        self.halt(result_id, None)
        return self._store.get_result(result_id, team=team)

    def halt(self, result_id: str, reason: str | None, kind: StopKind = StopKind.USER) -> None:
        """Stop a run now: it goes to rollback at once and ends `stopped` (with `reason`, if any)."""
        before = self._store.get_result(result_id, team=None)
        token = self._store.request_stop(result_id, reason, kind)
        if not before.stop_requested:
            self._announce(before, before.status.value, "stopping", reason, stop_kind=kind.value)
        self._store.update_run(result_id, event=("stop", f"{reason or 'stop requested'}; rolling back"))
        if token is not None and self._send_halt is not None:
            self._send_halt(token)
        # Without a token, Observe has not started: Inject and Observe check the flag themselves.

    def _plan(
        self, target: Target, fault: FaultType, selection: str, duration: int, policy: SafetyPolicy
    ) -> Plan:
        """The one planning path: the preview shows exactly what Prepare will carry out."""
        family = self._families(fault)
        return plan_run(
            family.resolve(target, fault),
            family.eligible_states,
            Selection.parse(selection),
            duration,
            policy,
            self._rng,
        )

    def _access_problems(self, target: Target, fault: FaultType) -> list[str]:
        """What the executor lacks to inject *and roll back* `fault` (families that can tell)."""
        family = self._families(fault)
        return family.check_access(target, fault) if isinstance(family, AccessChecking) else []

    def stop_condition_states(self, result_id: str, *, team: str) -> list[dict[str, str]]:
        """The current state of a run's stop conditions, for people and pipelines watching it."""
        result = self._store.get_result(result_id, team=team)
        names = [alarm_name(ref) for ref in result.stop_conditions]
        states = self._alarms(names) if names and self._alarms is not None else {}
        return [
            {
                "alarm": name,
                "state": states[name].state if name in states else "MISSING",
                "reason": states[name].reason if name in states else "",
            }
            for name in names
        ]

    def metric_series(self, result_id: str, *, team: str) -> dict[str, Any]:
        """The stop conditions' metrics around the run (the result page's chart).

        Read now, unless the run kept a complete chart. The chart kept when a run ends stops at
        its end; the first read once the minutes after it have passed is kept in its place.
        """
        result = self._store.get_result(result_id, team=team)
        kept = result.metrics.get("stop_conditions")
        if isinstance(kept, dict) and kept.get("complete"):
            return kept
        now = self._clock()
        if isinstance(kept, dict) and result.end_time and now >= result.end_time + READ_AGAIN_UNTIL:
            return {**kept, "complete": True}  # too late to read again: what was kept is what there is
        if self._metrics is None:
            raise RuntimeError("this component cannot read CloudWatch metrics")
        chart = series_for(result, self._metrics, now)
        if chart["complete"] and result.stop_conditions:
            if isinstance(kept, dict) and loses_points(kept, chart):
                chart = {**kept, "complete": True}  # an alarm deleted since: keep the points we had
            self._store.keep_chart(result_id, chart, before=result.metrics)
        return chart

    def _final_series(self, result: ExperimentResult) -> dict[str, Any] | None:
        """The chart's data kept with the result; a failed read is logged, never fails the run."""
        if self._metrics is None or not result.stop_conditions:
            return None
        try:
            return series_for(result, self._metrics, self._clock())
        except Exception:
            logger.exception("stop-condition metrics could not be read for %s", result.id)
            return None

    def missing_alarms(self, stop_conditions: list[str]) -> list[str]:
        names = [alarm_name(ref) for ref in stop_conditions]
        if not names:
            return []
        if self._alarms is None:
            raise RuntimeError("this component cannot read CloudWatch alarms")
        found = self._alarms(names)
        return [name for name in names if name not in found]

    def preview(self, experiment_id: str, *, team: str) -> dict[str, Any]:
        """Exactly what a run would do now, computed by the code a run uses."""
        from chaosplane.faults import catalogue

        experiment = self._store.get_experiment(experiment_id, team=team)
        target = self._store.get_target(experiment.target, team=team)
        check_target_fits(experiment.type, target)
        policy = self._store.policy(team)
        plan = self._plan(target, experiment.type, experiment.selection, experiment.duration, policy)
        states, problems = preflight(experiment.stop_conditions, self._alarms, policy.insufficient_data)
        problems += self._access_problems(target, experiment.type)
        lever = self._store.lever(team)
        refusals = (
            plan.refusals + problems + ([f"the emergency stop is engaged ({lever.team})"] if lever else [])
        )

        def listed(resource: Resource) -> dict[str, Any]:
            return {
                "id": resource.id,
                "kind": resource.kind,
                "state": resource.state,
                "labels": dict(resource.labels),
            }

        return {
            "experiment_id": experiment.id,
            "fault": experiment.type.value,
            "irreversible": catalogue.spec(experiment.type).irreversible,
            "selection": experiment.selection,
            "selected": [listed(r) for r in plan.selected],
            "eligible_not_selected": [listed(r) for r in plan.eligible_not_selected],
            "excluded": [
                {**listed(e.resource), "reason": e.reason.value, "detail": e.detail} for e in plan.excluded
            ],
            "stop_conditions": [
                {
                    "alarm": alarm_name(ref),
                    "state": states[alarm_name(ref)].state if alarm_name(ref) in states else "MISSING",
                }
                for ref in experiment.stop_conditions
            ],
            "policy": policy.model_dump(mode="json"),
            "verdict": {"allowed": not refusals, "reasons": refusals},
        }

    # -- workflow side --------------------------------------------------------------------------

    def _create_unattended(
        self, experiment_id: str, execution_name: str, trigger: Trigger, schedule_id: str | None
    ) -> ExperimentResult | None:
        """The run of an execution started outside the API; None if it had to be skipped.

        Named after the execution, so that a retried Prepare finds it instead of making a second.
        A refusal (the experiment or target busy, the team at its limit, the emergency stop) is
        recorded as a `skipped` run with its reason: a schedule's misses must be visible.
        """
        experiment = self._store.get_experiment(experiment_id, team=None)
        check_target_fits(experiment.type, self._store.get_target(experiment.target, team=None))
        refusal = None
        if trigger is Trigger.SCHEDULE:
            schedules, _ = self._store.schedules(experiment_id, team=None)
            registered = schedules.get(schedule_id or "")
            if registered is None:
                refusal = f"schedule {schedule_id} is not registered on experiment {experiment_id}"
            elif not registered.get("enabled", True):
                refusal = f"schedule {schedule_id} is paused"
        if refusal is None:
            try:
                policy = self._store.policy(experiment.team)
                created = self._store.create_run(
                    experiment,
                    result_id=execution_name,
                    max_concurrent_runs=policy.max_concurrent_runs,
                    trigger=trigger,
                    schedule_id=schedule_id,
                )
            except RunExists:
                return self._store.get_result(execution_name, team=None)
            except Conflict as err:
                refusal = str(err)
            else:
                self._announce(created, None, RunStatus.PENDING.value)
                return created
        try:
            existing = self._store.get_result(execution_name, team=None)
            return None if existing.status is RunStatus.SKIPPED else existing
        except NotFound:
            pass
        skipped = self._store.record_skipped_run(experiment, execution_name, refusal, trigger, schedule_id)
        self._announce(skipped, None, RunStatus.SKIPPED.value, refusal)
        return None

    def prepare(
        self,
        experiment_id: str | None,
        result_id: str | None,
        execution_name: str | None = None,
        trigger: str | None = None,
        schedule_id: str | None = None,
    ) -> dict[str, Any]:
        """Resolve and select the resources, record the plan, mark the run `running`."""
        from chaosplane.faults import catalogue

        if result_id is None:
            # Started outside the API: the Step Functions console or an EventBridge schedule.
            if experiment_id is None or execution_name is None:
                raise InvalidRequest("the run input needs experiment_id (or result_id)")
            how = Trigger.SCHEDULE if trigger == Trigger.SCHEDULE.value else Trigger.CONSOLE
            created = self._create_unattended(experiment_id, execution_name, how, schedule_id)
            if created is None:
                return {"result_id": execution_name, "duration": 0, "skipped": True}
            result_id = created.id
        result = self._store.get_result(result_id, team=None)
        if result.status is RunStatus.SKIPPED:
            return {"result_id": result.id, "duration": 0, "skipped": True}
        if result.status is not RunStatus.PENDING:
            return self._run_state(result)  # a retried Prepare: the plan is already recorded
        if result.stop_requested:
            raise Halted("stop requested before the run started")
        target = self._store.get_target(result.target_id, team=result.team)
        check_target_fits(result.fault, target)
        if catalogue.spec(result.fault).irreversible:
            # Checked when the experiment was saved; checked again here, against what it says now.
            experiment = self._store.get_experiment(result.experiment_id, team=result.team)
            try:
                check_irreversible(result.fault, experiment.allow_irreversible)
            except InvalidRequest as err:
                raise PolicyRefused(str(err)) from err
        policy = self._store.policy(result.team)
        _, problems = preflight(result.stop_conditions, self._alarms, policy.insufficient_data)
        problems += self._access_problems(target, result.fault)
        if problems:
            raise PreflightFailed("; ".join(problems))
        plan = self._plan(target, result.fault, result.selection, result.duration, policy)
        if not plan.selected:
            raise NothingToHit(f"target {target.id} matched no resource that {result.fault.value} can act on")
        if not plan.allowed:
            raise PolicyRefused("; ".join(plan.refusals))
        resources = [
            ResourceState(id=r.id, kind=r.kind, before=r.state, detail=dict(r.detail)) for r in plan.selected
        ]
        matched = len(plan.selected) + len(plan.eligible_not_selected) + len(plan.excluded)
        self._store.update_run(
            result.id,
            resources=resources,
            event=(
                "prepare",
                f"{matched} matched, {len(plan.selected)} selected ({result.selection}), "
                f"{len(plan.excluded)} excluded; hitting: " + _some(r.id for r in plan.selected),
            ),
        )
        self._store.mark_running(result.id, result.experiment_id)
        self._announce(result, RunStatus.PENDING.value, RunStatus.RUNNING.value)
        return self._run_state(result)

    @staticmethod
    def _run_state(result: ExperimentResult) -> dict[str, Any]:
        return {"result_id": result.id, "duration": result.duration, "skipped": False}

    def inject(self, result_id: str) -> dict[str, Any]:
        from chaosplane.faults import catalogue

        result = self._store.get_result(result_id, team=None)
        family = self._families(result.fault)
        parameters = catalogue.parse_parameters(result.fault, result.parameters)
        started = self._clock()
        context = RunContext(
            result.id, result.experiment_id, result.duration, started + timedelta(seconds=result.duration)
        )
        journal = RunJournal(self._store, result_id, context)
        journaled = self._store.journal(result_id)
        if _catch_up(result, journaled):
            self._store.update_run(result_id, resources=result.resources)
        done = {e.resource_id for e in journaled if e.status is not JournalStatus.PENDING}
        todo = [r for r in result.resources if r.id not in done and "skipped" not in r.detail]
        progress = _Progress(self._store, result, "inject", "injected", len(todo), self._clock)

        def stop_if_asked() -> None:
            if self._store.stop_requested(result_id):
                raise Halted("stop requested during injection")

        def inject_one(resource: ResourceState) -> tuple[ResourceState, str, bool]:
            planned = Resource(resource.id, resource.kind, resource.before, detail=dict(resource.detail))
            try:
                return resource, family.inject(result.fault, planned, parameters, journal), False
            except NotEligible as err:
                # Changed since Prepare (by someone else): not ours to touch, nor ours to restore.
                return resource, str(err), True

        def record(outcome: tuple[ResourceState, str, bool]) -> None:
            resource, state_or_reason, skipped = outcome
            if skipped:
                resource.detail["skipped"] = state_or_reason
                progress.done(f"skipped {resource.id}: {state_or_reason}", skipped=True)
            else:
                resource.after = state_or_reason
                progress.done(f"{result.fault.value} {resource.id}: {resource.before} -> {resource.after}")

        try:  # a retried Inject skips what it has done
            each_in_order(todo, inject_one, record, width=self._parallel_changes, before_each=stop_if_asked)
        except BaseException:
            progress.flush_quietly()  # what was hit is on record before a failure goes to rollback
            raise
        progress.flush()
        if not any(r.after is not None for r in result.resources):
            raise NothingToHit("every selected resource changed state before it could be injected")
        elapsed = (self._clock() - started).total_seconds()
        self._store.update_run(result_id, metrics={**result.metrics, "inject_seconds": round(elapsed, 3)})
        return {"injected": sum(1 for r in result.resources if r.after is not None)}

    def observe(self, result_id: str, task_token: str) -> dict[str, Any]:
        """Register the token `stop` uses to end the wait; the wait itself is the task's timeout."""
        if self._store.register_task_token(result_id, task_token):
            raise Halted("stop requested")
        result = self._store.get_result(result_id, team=None)
        self._store.update_run(result_id, event=("observe", f"holding the fault for {result.duration}s"))
        return {"observing": result_id}

    def rollback(self, result_id: str) -> dict[str, Any]:
        """Undo every journaled change not yet undone. Works from the journal alone; idempotent.

        One resource that cannot be restored does not stop the others from being restored: every
        entry is tried, then the run fails with all the errors (transient ones first, so that Step
        Functions retries the whole rollback while any error might still go away).
        """
        result = self._store.get_result(result_id, team=None)
        family = self._families(result.fault)
        by_id = {r.id: r for r in result.resources}
        started = self._clock()
        undone = 0
        transient: list[str] = []
        lasting: list[str] = []
        journaled = self._store.journal(result_id)
        if _catch_up(result, journaled):
            self._store.update_run(result_id, resources=result.resources)
        todo = [e for e in journaled if e.status is not JournalStatus.ROLLED_BACK]
        progress = _Progress(self._store, result, "rollback", "undone", len(todo), self._clock)

        def undo(entry: JournalEntry) -> tuple[JournalEntry, str, list[str] | None]:
            """The entry with the state it is left in, or with what went wrong and its list."""
            try:
                restored = family.rollback(entry)
            except TransientError as err:
                return entry, f"{entry.resource_id}: {err}", transient
            except Exception as err:
                return entry, f"{entry.resource_id}: {type(err).__name__}: {err}", lasting
            self._store.journal_set_status(entry, JournalStatus.ROLLED_BACK)
            return entry, restored, None

        def record(outcome: tuple[JournalEntry, str, list[str] | None]) -> None:
            nonlocal undone
            entry, restored_or_problem, problems = outcome
            if problems is not None:
                problems.append(restored_or_problem)
                return
            undone += 1
            if entry.resource_id in by_id:
                by_id[entry.resource_id].restored = restored_or_problem
            progress.done(f"{entry.action} {entry.resource_id}: undone, now {restored_or_problem}")

        try:
            each_in_order(todo, undo, record, width=self._parallel_changes)
        except BaseException:
            progress.flush_quietly()
            raise
        progress.flush()
        if transient:
            raise TransientError("rollback not finished, will retry: " + "; ".join(transient + lasting))
        if lasting:
            raise RollbackIncomplete("; ".join(lasting))
        elapsed = (self._clock() - started).total_seconds()
        self._store.update_run(
            result_id,
            event=("rollback", f"rollback complete: {undone} change(s) undone"),
            metrics={**result.metrics, "rollback_seconds": round(elapsed, 3), "rolled_back": undone},
        )
        return {"rolled_back": undone}

    def finalize(
        self, result_id: str | None, error: dict[str, Any] | None, rollback_error: dict[str, Any] | None
    ) -> dict[str, Any]:
        status = outcome(error, rollback_error)
        if result_id is None:
            return {"status": RunStatus.FAILED.value, "error": describe_error(error)}
        try:
            result = self._store.get_result(result_id, team=None)
        except NotFound:  # refused before a run was recorded (e.g. its experiment is gone)
            return {"status": RunStatus.FAILED.value, "error": describe_error(error)}
        if status is RunStatus.COMPLETED and result.stop_requested:
            status = RunStatus.STOPPED  # asked to stop as the fault's time ran out: the request stands
        refused_before_start = (
            error is not None and error.get("Error") in _SKIPPABLE and rollback_error is None
        )
        if status is RunStatus.FAILED and refused_before_start and result.trigger is Trigger.SCHEDULE:
            status = RunStatus.SKIPPED  # a schedule's refused run touched nothing: it was skipped
        message = describe_error(error)
        if rollback_error is not None:
            after = f" (after: {message})" if message else ""
            why = describe_error(rollback_error)
            message = f"ROLLBACK INCOMPLETE, resources may still be faulted: {why}{after}"
        if status is RunStatus.STOPPED:
            message = result.stop_reason  # an alarm or the emergency stop; a plain stop has none
        kind = None
        if status is RunStatus.FAILED:
            kind = failure_kind(error, rollback_error, prepared=result.status is not RunStatus.PENDING)
        unrestored = self._unrestored(result_id)
        metrics = {
            **result.metrics,
            "resources_selected": len(result.resources),
            "resources_injected": sum(1 for r in result.resources if r.after is not None),
            "resources_restored": sum(1 for r in result.resources if r.restored is not None),
        }
        if result.start_time is not None:
            metrics["run_seconds"] = round((self._clock() - result.start_time).total_seconds(), 3)
        if not result.status.is_final and (chart := self._final_series(result)) is not None:
            metrics["stop_conditions"] = chart
        final = self._store.finish_run(
            result_id,
            status,
            message,
            metrics,
            f"run {status.value}",
            release=not unrestored,
            failure_kind=kind,
        )
        if not result.status.is_final:  # the first Finalize of this run (a retried one says nothing)
            self._announce(
                final,
                "stopping" if result.stop_requested else result.status.value,
                final.status.value,
                final.error,
                stop_kind=(final.stop_kind or StopKind.USER).value
                if final.status is RunStatus.STOPPED
                else None,
                rollback_complete=not unrestored,
            )
        return {"status": final.status.value, "result_id": result_id}

    def _unrestored(self, result_id: str) -> list[JournalEntry]:
        return [e for e in self._store.journal(result_id) if e.status is not JournalStatus.ROLLED_BACK]

    def recover(self, result_id: str, reason: str) -> dict[str, Any]:
        """Finish a run whose workflow ended without finishing it (aborted, timed out, crashed).

        Rolls back whatever the journal still holds, then finalizes the run (if it is not final
        yet) or releases its locks (if Finalize ran while the rollback was incomplete).
        Safe to call for any run, any number of times.
        """
        result = self._store.get_result(result_id, team=None)
        if result.status.is_final and not self._unrestored(result_id):
            self._store.finish_run(result_id, result.status, None, result.metrics, "", release=True)
            return {"rolled_back": 0, "status": result.status.value, "result_id": result_id}
        rolled = self.rollback(result_id)
        final = self.finalize(result_id, {"Error": "WorkflowEnded", "Cause": reason}, None)
        if result.status.is_final:
            # It ended with its rollback incomplete; now everything is restored: say so, so that
            # whoever was paged about resources left faulted hears that they no longer are.
            self._announce(
                result,
                result.status.value,
                result.status.value,
                "rollback completed by recovery",
                rollback_complete=True,
            )
        return {**rolled, **final}

    # -- safety: the guard, the sweeper, the emergency stop ---------------------------------------

    def on_alarm(self, alarm: str, reason: str) -> list[str]:
        """An alarm went into ALARM: halt every run in progress that names it as a stop condition."""
        halted = []
        for run in self._store.active_runs():
            if run.status.is_final or alarm not in {alarm_name(ref) for ref in run.stop_conditions}:
                continue
            try:
                self.halt(run.id, f"stop condition {alarm} went into ALARM: {reason}", StopKind.ALARM)
                halted.append(run.id)
            except Conflict:
                pass  # it ended meanwhile
        return halted

    def halt_all(self, team: str, engaged_by: str) -> list[str]:
        """The emergency stop: halt every run in progress of `team` (or of every team)."""
        halted = []
        for run in self._store.active_runs():
            if run.status.is_final or (team != ALL_TEAMS_LEVER and run.team != team):
                continue
            try:
                self.halt(run.id, f"emergency stop engaged by {engaged_by}", StopKind.EMERGENCY)
                halted.append(run.id)
            except Conflict:
                pass
        return halted

    def sweep(self) -> dict[str, list[str]]:
        """The fallback for every event that might be missed, run every minute.

        - a run in progress whose stop condition is in ALARM is halted (a missed alarm event);
        - a run whose execution is gone (aborted, timed out, crashed, never started) is recovered;
        - a run that ended with changes not rolled back is rolled back again.
        """
        report: dict[str, list[str]] = {"halted": [], "recovered": [], "failed": []}
        for run in self._store.active_runs():
            try:
                if run.status.is_final:
                    self.recover(run.id, "run ended with changes not rolled back")
                    report["recovered"].append(run.id)
                    continue
                status = self._execution_status(run.id) if self._execution_status else "RUNNING"
                if status is None and self._clock() - run.created_at < PENDING_GRACE:
                    continue  # just created; its execution is being started
                if status != "RUNNING":
                    self.recover(run.id, f"execution {(status or 'missing').lower()}")
                    report["recovered"].append(run.id)
                    continue
                if run.status is RunStatus.RUNNING and not run.stop_requested:
                    states, _ = preflight(run.stop_conditions, self._alarms, InsufficientData.ALLOW)
                    firing = [name for name, st in states.items() if st.state == "ALARM"]
                    if firing:
                        reason = states[firing[0]].reason
                        why = f"stop condition {firing[0]} is in ALARM (sweeper): {reason}"
                        self.halt(run.id, why, StopKind.ALARM)
                        report["halted"].append(run.id)
            except Exception as err:  # one stuck run must not stop the sweep of the others
                report["failed"].append(f"{run.id}: {type(err).__name__}: {err}")
        return report
