"""The workflow's steps: Prepare, Advance (and the older Inject), Observe, Rollback, Settle, Finalize.

Each method is one state of `statemachines/experiment.asl.json`. The order and the guarantees
(every path after Prepare passes through Rollback, retries, timeouts) belong to the state machine;
this module makes each step correct on its own, idempotent, and safe to retry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chaosplane.errors import (
    AssertionFailed,
    Conflict,
    ErrorName,
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
from chaosplane.events import EventStatus
from chaosplane.faults import catalogue
from chaosplane.faults.base import FaultFamily, RunContext
from chaosplane.graph import Action, ControlAction, ExperimentGraph
from chaosplane.graph import advance as next_moves
from chaosplane.models import (
    STOP_STEP,
    ActionProgress,
    ActionStatus,
    Evaluation,
    ExperimentResult,
    FaultType,
    JournalEntry,
    JournalStatus,
    Phase,
    ProbeRecord,
    ResourceState,
    RunStatus,
    StopKind,
    Trigger,
    Verdict,
)
from chaosplane.parallel import each_in_order
from chaosplane.plans import RunPlan
from chaosplane.probes import CloudWatchAlarmProbe, check_phase, parse_probes, probe_alarms
from chaosplane.probes import verdict as probe_verdict
from chaosplane.runs.base import RunsBase, named_outside
from chaosplane.runs.checks import (
    check_graph_fits,
    check_irreversible,
    check_target_fits,
    preflight,
    unfound_alarms,
)
from chaosplane.runs.outcome import failure_kind, outcome, refused_before_start
from chaosplane.runs.progress import Progress, catch_up, some
from chaosplane.steps import (
    Advanced,
    Finalized,
    Injected,
    Observing,
    Prepared,
    RolledBack,
    Settled,
    StepError,
)
from chaosplane.store.journal import RunJournal
from chaosplane.telemetry import Metric
from chaosplane.tenancy import Place

logger = logging.getLogger(__name__)
STOP_CHECK_EVERY = timedelta(seconds=1)  # how often a long Inject reads its stop flag


class Lifecycle(RunsBase):
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
                self._announce(created, None, EventStatus.PENDING)
                return created
        try:
            existing = self._store.get_result(execution_name, team=None)
            return None if existing.status is RunStatus.SKIPPED else existing
        except NotFound:
            pass
        skipped = self._store.record_skipped_run(experiment, execution_name, refusal, trigger, schedule_id)
        self._announce(skipped, None, EventStatus.SKIPPED, refusal)
        return None

    def prepare(
        self,
        experiment_id: str | None,
        result_id: str | None,
        execution_name: str | None = None,
        trigger: str | None = None,
        schedule_id: str | None = None,
    ) -> Prepared:
        """Plan the run (or take the plan it was started with), record it, mark the run `running`."""

        if result_id is None:
            # Started outside the API: the Step Functions console or an EventBridge schedule.
            if experiment_id is None or execution_name is None:
                raise InvalidRequest("the run input needs experiment_id (or result_id)")
            how = Trigger.SCHEDULE if trigger == Trigger.SCHEDULE.value else Trigger.CONSOLE
            created = self._create_unattended(experiment_id, execution_name, how, schedule_id)
            if created is None:
                return Prepared(result_id=execution_name, duration=0, skipped=True)
            result_id = created.id
        result = self._store.get_result(result_id, team=None)
        self._trace(result, "prepare")
        if result.status is RunStatus.SKIPPED:
            return Prepared(result_id=result.id, duration=0, skipped=True)
        if result.status is not RunStatus.PENDING:
            return self._prepared(result)  # a retried Prepare: the plan is already recorded
        if result.stop_requested:
            raise Halted("stop requested before the run started")
        graph, multi_step = run_graph(result), result.steps is not None
        if multi_step:
            policy = self._store.policy(result.team)
            targets = self._step_targets(graph, result.team)
        else:  # one read for both, as the halt's path counts calls
            target, policy = self._store.target_and_policy(result.target_id, team=result.team)
            targets = {name: target for name in graph.step_faults()}
        check_graph_fits(graph, {t.id: t for t in targets.values()}, True, multi_step=multi_step)
        faults = [(name, FaultType(action.fault)) for name, action in graph.faults()]
        if any(catalogue.spec(fault).irreversible for _, fault in faults):
            # Checked when the experiment was saved; checked again here, against what it says now.
            experiment = self._store.get_experiment(result.experiment_id, team=result.team)
            try:
                for _, fault in faults:
                    check_irreversible(fault, experiment.allow_irreversible)
            except InvalidRequest as err:
                raise PolicyRefused(str(err)) from err
        scope = self._scope(result.team)
        team_alarms = self._alarms_of(result.team, scope)
        _, problems = preflight(result.stop_conditions, team_alarms, policy.insufficient_data)
        problems += unfound_alarms([*probe_alarms(result.probes), *graph.checked_alarms()], team_alarms)
        problems += self._unplaced_probes(scope, parse_probes(result.probes))
        for name, fault in faults:
            problems += self._access_problems(targets[str(graph.actions[name].target)], fault)
        if problems:
            raise PreflightFailed("; ".join(dict.fromkeys(problems)))
        now = self._clock()
        if result.plan_id is not None:
            # Started from a previewed plan: exactly its resources, or none of them.
            plan = self._store.get_plan(result.plan_id, team=result.team)
            stale, refusals = self._plan_problems(plan, graph, targets, policy, multi_step=multi_step)
            if stale:
                raise PreflightFailed("planned resources are no longer eligible: " + "; ".join(stale))
            if refusals:
                raise PolicyRefused("; ".join(refusals))
        else:
            planned = self._plan_steps(graph, targets, result.duration, policy, multi_step=multi_step)
            for name, fault in graph.step_faults().items():
                step_plan = planned.by_step[name if multi_step else None]
                if not step_plan.selected:
                    if crossing := named_outside(targets[name], step_plan.outside):
                        raise PolicyRefused("; ".join(crossing))  # not "nothing": something not its own
                    where = f"step target {name} ({targets[name].id})" if multi_step else "target"
                    raise NothingToHit(
                        f"{where} {'' if multi_step else targets[name].id + ' '}matched no resource "
                        f"that {fault.value} can act on"
                    )
            if planned.refusals:
                raise PolicyRefused("; ".join(planned.refusals))
            plan = RunPlan.for_run(planned, result, now)
        matched_count = len(plan.selected) + len(plan.eligible_not_selected) + len(plan.excluded)
        summary = (
            f"{matched_count} matched, {len(plan.selected)} selected ({result.selection}), "
            f"{len(plan.excluded)} excluded; hitting: " + some(r.id for r in plan.selected)
        )
        self._store.mark_running(result, plan, plan_is_new=result.plan_id is None, event=("prepare", summary))
        self._announce(result, EventStatus.PENDING, EventStatus.RUNNING)
        return self._prepared(result, plan.id)

    @staticmethod
    def _prepared(result: ExperimentResult, plan_id: str | None = None) -> Prepared:
        return Prepared(
            result_id=result.id, duration=result.duration, skipped=False, plan_id=plan_id or result.plan_id
        )

    def advance(self, result_id: str, plan_id: str | None = None) -> Advanced:
        """Do what the run's graph says is due now (graph.advance), then say when to ask again.

        Rolls back the actions whose duration is over and injects those whose `start_after` have
        completed, until nothing more is due now: the workflow then holds (Observe) for
        `wake_in` seconds, or goes on to Rollback once `finished`. The experiment's clock starts
        when its first action is in force. A single-fault run is the graph of its one action.
        Retried after a crash, it redoes what was not recorded: an action still pending is
        injected again, which the journal makes idempotent.
        """
        result, plan = self._run_and_plan(result_id, plan_id)
        self._trace(result, "advance")
        if result.stop_requested:
            raise Halted("stop requested")
        graph = run_graph(result)
        actions = dict(result.actions)
        probes, records = parse_probes(result.probes), dict(result.probe_records)
        if not any(p.start_time for p in actions.values()):
            steady = self._ask_probes(result, probes, records, Phase.BEFORE)
            if steady is not None:  # a probe is not yet sure of the steady state: ask it again
                return Advanced(finished=False, wake_in=max(1, math.ceil(steady)))
        while True:
            now = self._clock()
            in_force = [p.in_force_at for p in actions.values() if p.in_force_at is not None]
            moves = next_moves(graph, actions, min(in_force, default=now), now)
            if moves.finished:
                return Advanced(finished=True, wake_in=0)
            if not moves.expired and not moves.ready:
                wake_in = moves.wake_in or 0
                probe_due = self._ask_probes(result, probes, records, Phase.DURING)
                if probe_due is not None:
                    wake_in = min(wake_in, probe_due) if wake_in else probe_due
                return Advanced(finished=False, wake_in=max(1, math.ceil(wake_in)))
            ends_at = min(in_force, default=now) + timedelta(seconds=graph.duration)
            for name in moves.expired:
                self._expire(result, name, graph.actions[name], actions)
            for name in moves.ready:
                action, started = graph.actions[name], self._clock()
                if action.fault is ControlAction.WAIT:
                    # Nothing to change: it is in force from now, on record before the hold.
                    actions[name] = ActionProgress(
                        status=ActionStatus.IN_FORCE, start_time=started, in_force_at=started
                    )
                    self._store.update_run(result_id, actions=actions)
                elif action.fault is ControlAction.ASSERT_ALARM_STATE:
                    self._assert_alarm_state(result, name, action, actions)
                else:
                    actions[name] = ActionProgress(status=ActionStatus.PENDING, start_time=started)
                    hold = action.duration or max(1, math.ceil((ends_at - started).total_seconds()))
                    self._inject(result, plan, name, action, hold, actions)

    def _ask_probes(
        self, result: ExperimentResult, probes: list[Any], records: dict[str, ProbeRecord], phase: Phase
    ) -> float | None:
        """Ask the phase's due probes and record their answers; seconds until one is due again
        (None: nothing left to ask). A steady state that does not hold before the faults refuses
        the run; a probe failing during them with `stop_on_failure` halts it, as an alarm does."""
        if not any(phase in p.mode.phases() for p in probes):
            return None
        if self._probes is None:
            raise RuntimeError("this component cannot ask probes")
        failed_before = {name for name, r in records.items() if r.failed_in is not None}
        readers = self._probe_readers(self._probes, result.team, probes)
        check = check_phase(probes, records, readers, phase, self._clock)
        newly = [name for name in check.failed if name not in failed_before]
        lines = [
            ("probe", f"{name} failed {phase.value} the faults: {_last_detail(records[name], phase)}")
            for name in newly
        ]
        if phase is Phase.BEFORE and check.asked and check.wake_in is None and not check.failed:
            lines.append(
                (
                    "probe",
                    "steady state holds: "
                    + ", ".join(p.name for p in probes if Phase.BEFORE in p.mode.phases()),
                )
            )
        if check.asked or lines:
            self._store.update_run(result.id, probe_records=records, events=lines)
        if check.failed and phase is Phase.BEFORE:
            raise PreflightFailed(
                "the steady state does not hold before injecting: "
                + "; ".join(f"probe {n}: {_last_detail(records[n], phase)}" for n in check.failed)
            )
        halting = [p.name for p in probes if p.name in newly and p.stop_on_failure]
        if halting:
            reason = f"probe {halting[0]} failed: {_last_detail(records[halting[0]], phase)}"
            self._store.request_stop(result.id, reason, StopKind.PROBE)
            self._announce(
                result, EventStatus.RUNNING, EventStatus.STOPPING, reason, stop_kind=StopKind.PROBE
            )
            raise Halted(reason)
        return check.wake_in

    def settle(self, result_id: str) -> Settled:
        """After the rollback: ask the `after` probes until each passes or its settle window (from
        the rollback's end) is over. Nothing to ask when nothing was ever started."""
        result = self._store.get_result(result_id, team=None)
        self._trace(result, "settle")
        probes, records = parse_probes(result.probes), dict(result.probe_records)
        started = any(p.start_time for p in result.actions.values())
        if not started or not any(Phase.AFTER in p.mode.phases() for p in probes):
            return Settled(done=True, wake_in=0)
        since = next((e.at for e in reversed(result.timeline) if e.step == "rollback"), None)
        if self._probes is None:
            raise RuntimeError("this component cannot ask probes")
        failed_before = {name for name, r in records.items() if r.failed_in is not None}
        readers = self._probe_readers(self._probes, result.team, probes)
        check = check_phase(probes, records, readers, Phase.AFTER, self._clock, since=since)
        lines = [
            ("settle", f"{name} did not recover: {_last_detail(records[name], Phase.AFTER)}")
            for name in check.failed
            if name not in failed_before
        ]
        if check.wake_in is None:
            recovered = [
                p.name for p in probes if Phase.AFTER in p.mode.phases() and p.name not in check.failed
            ]
            if recovered:
                lines.append(("settle", "recovered: " + ", ".join(recovered)))
        if check.asked or lines:
            self._store.update_run(result.id, probe_records=records, events=lines)
        if check.wake_in is None:
            return Settled(done=True, wake_in=0)
        return Settled(done=False, wake_in=max(1, math.ceil(check.wake_in)))

    def _assert_alarm_state(
        self, result: ExperimentResult, name: str, action: Action, actions: dict[str, ActionProgress]
    ) -> None:
        """Check, once, that every alarm is in a state the action allows; fail the run if not."""
        read = self._alarms_of(result.team)
        if read is None:
            raise RuntimeError("this component cannot read CloudWatch alarms")
        wanted = set(action.parameters["states"])
        names = list(action.parameters["alarms"])
        states = read(names)
        wrong = [
            f"{n} is {states[n].state if n in states else 'MISSING'}"
            for n in names
            if n not in states or states[n].state not in wanted
        ]
        at = self._clock()
        if wrong:
            line = f"{name}: " + "; ".join(wrong) + f" (wanted {' or '.join(sorted(wanted))})"
            self._store.update_run(result.id, events=[("advance", line)])
            raise AssertionFailed(line)
        actions[name] = ActionProgress(
            status=ActionStatus.COMPLETED, start_time=at, in_force_at=at, end_time=at
        )
        self._store.update_run(
            result.id, actions=actions, events=[("advance", f"{name}: {', '.join(names)} as wanted")]
        )

    def _expire(
        self, result: ExperimentResult, name: str, action: Action, actions: dict[str, ActionProgress]
    ) -> None:
        """An action held its duration: undo its own changes (a wait has none), and it completes."""
        progress = None
        if action.fault is not ControlAction.WAIT:
            step = journal_step(result, name)
            journaled = self._store.journal(result.id)
            todo = [e for e in journaled if e.step == step and e.status is not JournalStatus.ROLLED_BACK]
            progress = Progress(self._store, result, "rollback", "undone", len(todo), self._clock)
            self._undo(result, [todo], progress)
        ended = {"status": ActionStatus.COMPLETED, "end_time": self._clock()}
        actions[name] = actions[name].model_copy(update=ended)
        if progress is None:
            self._store.update_run(result.id, actions=actions)
        else:
            progress.flush(
                event=("advance", f"{name}: held its {action.duration}s, rolled back"), actions=actions
            )

    def inject(self, result_id: str, plan_id: str | None = None) -> Injected:
        """Journal, then change, each planned resource not changed yet (the state before Advance,
        for executions started before it: a single-fault run's one action)."""
        result, plan = self._run_and_plan(result_id, plan_id)
        self._trace(result, "inject")
        name = result.fault.value
        action = run_graph(result).actions[name].model_copy(update={"duration": result.duration})
        return self._inject(result, plan, name, action, result.duration, dict(result.actions))

    def _run_and_plan(self, result_id: str, plan_id: str | None) -> tuple[ExperimentResult, RunPlan | None]:
        """The run, and its plan when Prepare named it: then both are read in one call."""
        if plan_id is None:
            return self._store.get_result(result_id, team=None), None
        return self._store.result_and_plan(result_id, plan_id)

    def _inject(
        self,
        result: ExperimentResult,
        plan: RunPlan | None,
        name: str,
        action: Action,
        hold: int,
        actions: dict[str, ActionProgress],
    ) -> Injected:
        """Inject the fault action `name`, to be held `hold` seconds; its progress (in force, or
        completed for an instant fault) goes into `actions` and is written with the step's last
        write."""
        result_id = result.id
        fault_type = FaultType(action.fault)
        if plan is None and result.plan_id is not None:
            plan = self._store.get_plan(result.plan_id, team=None)
        boundary = plan.boundary if plan is not None else None
        place = self._planned_place(result, plan, name)
        fault, family = catalogue.spec(fault_type), self._family(fault_type, result.team, boundary, place)
        parameters = catalogue.parse_parameters(fault_type, action.parameters)
        planned = self._planned_resources(result, name, plan)
        step = journal_step(result, name)
        started = self._clock()
        context = RunContext(result.id, result.experiment_id, hold, started + timedelta(seconds=hold), step)
        journal = RunJournal(self._store, result_id, context, fault_type, step)
        journaled = self._store.journal(result_id)
        if catch_up(result, journaled):
            self._store.update_run(result_id, resources=result.resources)
        mine = [e for e in journaled if e.step == step]
        done = {e.resource_id for e in mine if e.status is not JournalStatus.PENDING}
        # Journaled by an attempt that died before its batch of marks was written: the change
        # was most likely made. Rollback undoes every entry, marked or not.
        unmarked = {e.resource_id for e in mine if e.status is JournalStatus.PENDING}
        hits = [r for r in result.resources if r.step == step]
        todo = [r for r in hits if r.id not in done and "skipped" not in r.detail]
        progress = Progress(
            self._store, result, "inject", "injected", len(todo), self._clock, journal.take_marks
        )

        if result.stop_requested:
            raise Halted("stop requested before injection")
        checked_at = [self._clock()]  # the flag was just read, with the record

        def stop_if_asked() -> None:
            # A stop during Inject is also seen by Observe, at once; this only spares a big run
            # the rest of its changes. One read a second, not one per resource.
            if self._clock() - checked_at[0] < STOP_CHECK_EVERY:
                return
            checked_at[0] = self._clock()
            if self._store.stop_requested(result_id):
                raise Halted("stop requested during injection")

        def inject_one(resource: ResourceState) -> tuple[ResourceState, str, bool]:
            try:
                with self._tracing.span(f"{fault_type.value} inject", resource=resource.id):
                    state = fault.inject(family, planned[resource.id], parameters, journal)
                return resource, state, False
            except NotEligible as err:
                if resource.id in unmarked:
                    return resource, f"changed by an earlier attempt ({err})", False
                # Changed since Prepare (by someone else): not ours to touch, nor ours to restore.
                return resource, str(err), True

        def record(outcome: tuple[ResourceState, str, bool]) -> None:
            resource, state_or_reason, skipped = outcome
            if skipped:
                resource.detail["skipped"] = state_or_reason
                progress.done(f"skipped {resource.id}: {state_or_reason}", skipped=True)
            else:
                resource.after = state_or_reason
                progress.done(f"{fault_type.value} {resource.id}: {resource.before} -> {resource.after}")

        try:  # a retried Inject skips what it has done
            each_in_order(todo, inject_one, record, width=self._parallel_changes, before_each=stop_if_asked)
        except BaseException:
            progress.flush_quietly()  # what was hit is on record before a failure goes to rollback
            raise
        if not any(r.after is not None for r in hits):
            progress.flush()
            raise NothingToHit("every selected resource changed state before it could be injected")
        in_force_at = self._clock()
        elapsed = (in_force_at - started).total_seconds()
        completes = action.completes_when_injected
        actions[name] = actions.get(name, ActionProgress(start_time=started)).model_copy(
            update={
                "status": ActionStatus.COMPLETED if completes else ActionStatus.IN_FORCE,
                "in_force_at": in_force_at,
                "end_time": in_force_at if completes else None,
                "resources": [r.id for r in hits if r.after is not None],
            }
        )
        progress.flush(metrics={**result.metrics, "inject_seconds": round(elapsed, 3)}, actions=actions)
        result.actions = dict(actions)
        self._emit(Metric.INJECT_DURATION, elapsed * 1000, Fault=fault_type.value)
        return Injected(injected=sum(1 for r in hits if r.after is not None))

    def observe(self, result_id: str, task_token: str, duration: int) -> Observing:
        """Register the token `stop` uses to end the wait; the wait itself is the task's timeout."""
        event = ("observe", f"holding the fault for {duration}s")
        self._tracing.annotate(run_id=result_id, step="observe")
        if self._store.register_task_token(result_id, task_token, event):
            raise Halted("stop requested")
        return Observing(observing=result_id)

    def rollback(self, result_id: str) -> RolledBack:
        """Undo every journaled change not yet undone, the last action injected first. Works from
        the journal alone; idempotent."""
        result = self._store.get_result(result_id, team=None)
        self._trace(result, "rollback")
        started = self._clock()
        journaled = self._store.journal(result_id)
        if catch_up(result, journaled):
            self._store.update_run(result_id, resources=result.resources)
        todo = [e for e in journaled if e.status is not JournalStatus.ROLLED_BACK]
        progress = Progress(self._store, result, "rollback", "undone", len(todo), self._clock)
        undone = self._undo(result, reverse_injection_order(todo), progress)
        restored_at = self._clock()
        elapsed = (restored_at - started).total_seconds()
        progress.flush(
            event=("rollback", f"rollback complete: {undone} change(s) undone"),
            metrics={**result.metrics, "rollback_seconds": round(elapsed, 3), "rolled_back": undone},
            actions=ended_actions(action_names(result), result, journaled, restored_at),
        )
        if todo:  # not for a rollback run again with nothing left to undo (recovery, a retry)
            self._emit(Metric.ROLLBACK_DURATION, elapsed * 1000, Fault=result.fault.value)
            stopped_at = next((e.at for e in result.timeline if e.step == STOP_STEP), None)
            if result.stop_requested and stopped_at is not None:
                self._emit(Metric.TIME_TO_HALT, (restored_at - stopped_at).total_seconds() * 1000)
        return RolledBack(rolled_back=undone)

    def _planned_place(self, result: ExperimentResult, plan: RunPlan | None, action: str) -> Place | None:
        """Where the fault action acts, as its plan says (None: the platform's own account)."""
        if plan is None or not plan.places:
            return None
        return plan.place_of(
            journal_step(result, action), self._store.team_settings(result.team).external_id or ""
        )

    def _acted_as(self, result: ExperimentResult) -> RunPlan | None:
        """The run's plan, which says as whom and where its changes were made, so that they are
        undone as the same identity in the same place (read only where either can differ)."""
        if (self._acting_as is None and self._in_place is None) or result.plan_id is None:
            return None
        return self._store.get_plan(result.plan_id, team=None)

    def _undo(self, result: ExperimentResult, groups: list[list[JournalEntry]], progress: Progress) -> int:
        """Undo each group of entries in turn (a group's entries in parallel); the number undone.

        One resource that cannot be restored does not stop the others from being restored: every
        entry is tried, then the run fails with all the errors (transient ones first, so that Step
        Functions retries the whole rollback while any error might still go away). Each error is
        logged with its traceback before it is reduced to a line, and the originals travel as the
        failure's cause (an ExceptionGroup).
        """
        by_key = {(r.step, r.id): r for r in result.resources}
        undone = 0
        transient: list[tuple[str, Exception]] = []
        lasting: list[tuple[str, Exception]] = []
        # Each entry is undone by the fault that wrote it (entries from before that was recorded:
        # the run's fault), through that fault's family, one family per fault for the whole rollback.
        # Each in the place its action acted in (another account, or this one).
        plan = self._acted_as(result) if groups else None
        boundary = plan.boundary if plan is not None and self._acting_as is not None else None
        external_id = ""
        if plan is not None and plan.places:  # the team's settings are read only for a run elsewhere
            external_id = self._store.team_settings(result.team).external_id or ""
        families: dict[tuple[FaultType, str | None], FaultFamily] = {}
        for entry in (e for group in groups for e in group):
            fault, step = entry.fault or result.fault, entry.step
            if (fault, step) not in families:
                place = plan.place_of(step, external_id) if plan is not None else None
                families[fault, step] = self._family(fault, result.team, boundary, place)

        def undo(entry: JournalEntry) -> tuple[JournalEntry, str, Exception | None]:
            """The entry with the state it is left in, or with what went wrong."""
            fault = entry.fault or result.fault
            try:
                with self._tracing.span(f"{fault.value} rollback", resource=entry.resource_id):
                    restored = catalogue.spec(fault).rollback(families[fault, entry.step], entry)
            except Exception as err:
                logger.exception(
                    "rollback of %s %s (run %s) failed", entry.action, entry.resource_id, result.id
                )
                return entry, f"{entry.resource_id}: {type(err).__name__}: {err}", err
            return entry, restored, None

        def record(outcome: tuple[JournalEntry, str, Exception | None]) -> None:
            nonlocal undone
            entry, restored_or_problem, error = outcome
            if error is not None:
                kept = transient if isinstance(error, TransientError) else lasting
                line = f"{entry.resource_id}: {error}" if kept is transient else restored_or_problem
                kept.append((line, error))
                return
            undone += 1
            if (entry.step, entry.resource_id) in by_key:
                by_key[entry.step, entry.resource_id].restored = restored_or_problem
            progress.done(
                f"{entry.action} {entry.resource_id}: undone, now {restored_or_problem}",
                mark=(entry, JournalStatus.ROLLED_BACK),
            )

        try:
            for group in groups:
                each_in_order(group, undo, record, width=self._parallel_changes)
        except BaseException:
            progress.flush_quietly()
            raise
        problems = transient + lasting
        if problems:
            progress.flush()
            causes = ExceptionGroup(f"rollback of run {result.id}", [err for _, err in problems])
            lines = "; ".join(line for line, _ in problems)
            if transient:
                raise TransientError("rollback not finished, will retry: " + lines) from causes
            raise RollbackIncomplete(lines) from causes
        return undone

    def finalize(
        self, result_id: str | None, error: StepError | None, rollback_error: StepError | None
    ) -> Finalized:
        status = outcome(error, rollback_error)
        if result_id is None:
            return Finalized(status=RunStatus.FAILED, error=error.describe() if error else None)
        try:
            result = self._store.get_result(result_id, team=None)
        except NotFound:  # refused before a run was recorded (e.g. its experiment is gone)
            return Finalized(status=RunStatus.FAILED, error=error.describe() if error else None)
        self._trace(result, "finalize")
        if status is RunStatus.COMPLETED and result.stop_requested:
            status = RunStatus.STOPPED  # asked to stop as the fault's time ran out: the request stands
        if (
            status is RunStatus.FAILED
            and refused_before_start(error, rollback_error)
            and result.trigger is Trigger.SCHEDULE
        ):
            status = RunStatus.SKIPPED  # a schedule's refused run touched nothing: it was skipped
        message = error.describe() if error else None
        if rollback_error is not None:
            after = f" (after: {message})" if message else ""
            message = (
                f"ROLLBACK INCOMPLETE, resources may still be faulted: {rollback_error.describe()}{after}"
            )
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
        judged = self._judge(result, status)
        final = self._store.finish_run(
            result,
            status,
            message,
            metrics,
            f"run {status.value}; verdict {judged.value}",
            release=not unrestored,
            failure_kind=kind,
            verdict=judged,
        )
        if not result.status.is_final and (chart := self._final_series(final)) is not None:
            # After the run is final: a halt waits for `stopped`, not for CloudWatch's answer.
            self._store.keep_chart(result_id, chart, before=final.metrics)
        if not result.status.is_final and unrestored:
            self._emit(Metric.ROLLBACK_INCOMPLETE, Team=final.team, Fault=final.fault.value)
        if not result.status.is_final:  # the first Finalize of this run (a retried one says nothing)
            self._announce(
                final,
                EventStatus.STOPPING if result.stop_requested else EventStatus(result.status.value),
                EventStatus(final.status.value),
                final.error,
                stop_kind=(final.stop_kind or StopKind.USER) if final.status is RunStatus.STOPPED else None,
                rollback_complete=not unrestored,
                verdict=final.verdict,
            )
        return Finalized(status=final.status, result_id=result_id)

    def _judge(self, result: ExperimentResult, status: RunStatus) -> Verdict:
        """The verdict, from the probes' records; a halt by an alarm (a stop condition, or an alarm
        probe, halted through its event before Advance asked it) fails it: the steady state broke."""
        probes = parse_probes(result.probes)
        if status is not RunStatus.STOPPED or result.stop_kind is not StopKind.ALARM:
            return probe_verdict(probes, result.probe_records)
        records, at = dict(result.probe_records), result.timeline[-1].at if result.timeline else self._clock()
        for probe in probes:
            fired = isinstance(probe, CloudWatchAlarmProbe) and (
                f"stop condition {probe.alarm} went into ALARM" in (result.stop_reason or "")
            )
            if not fired:
                continue
            record = records.setdefault(probe.name, ProbeRecord(name=probe.name))
            if record.failed_in is None:
                record.evaluations.append(
                    Evaluation(at=at, phase=Phase.DURING, ok=False, detail=result.stop_reason or "ALARM")
                )
                record.failed_in, record.failed_at = Phase.DURING, at
                self._store.update_run(result.id, probe_records=records)
        return Verdict.FAILED

    def _unrestored(self, result_id: str) -> list[JournalEntry]:
        return [e for e in self._store.journal(result_id) if e.status is not JournalStatus.ROLLED_BACK]

    def _workflow_ended(self, reason: str) -> StepError:
        return StepError.model_validate({"Error": ErrorName.WORKFLOW_ENDED.value, "Cause": reason})


def _last_detail(record: ProbeRecord, phase: Phase) -> str:
    last = record.last_in(phase)
    return (last.detail or ("ok" if last.ok else "failed")) if last else "never answered"


def run_graph(result: ExperimentResult) -> ExperimentGraph:
    """The graph a run executes, from what it froze at its start: a single-fault run's one action."""
    if result.steps is not None:
        return ExperimentGraph.model_validate(result.steps)
    return ExperimentGraph.of_one_fault(
        result.fault, result.target_id, result.selection, result.parameters, result.duration
    )


def journal_step(result: ExperimentResult, action: str) -> str | None:
    """The `step` the journal entries (and resources) of `action` carry: the action's name in a
    multi-step run, None for a single-fault run's one action."""
    return action if result.steps is not None else None


def reverse_injection_order(entries: list[JournalEntry]) -> list[list[JournalEntry]]:
    """The entries by action (`step`), the action injected last first: a stop undoes the latest
    fault before those it was layered on, as FIS does."""
    groups: dict[str | None, list[JournalEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.step, []).append(entry)
    return sorted(groups.values(), key=lambda group: min(e.created_at for e in group), reverse=True)


def action_names(result: ExperimentResult) -> list[str]:
    """The run's actions, for Rollback's record: from its graph, or, should what the run froze no
    longer validate (a catalogue changed by a deploy mid-run), from what it recorded, so that
    nothing stops the rollback's last write once every change is undone."""
    try:
        return list(run_graph(result).actions)
    except ValidationError:
        logger.exception(
            "run %s: its graph no longer validates; recording its actions as they are", result.id
        )
        return list(result.actions) or [result.fault.value]


def ended_actions(
    names: Iterable[str], result: ExperimentResult, journaled: list[JournalEntry], at: datetime
) -> dict[str, ActionProgress]:
    """Each action as the run's end leaves it, everything injected now undone: what was in force
    completed (stopped, when the run was), what was being injected interrupted, what never
    started cancelled."""
    touched = {entry.step for entry in journaled}
    ended: dict[str, ActionProgress] = {}
    for name in names:
        progress = result.actions.get(name, ActionProgress())
        if progress.status is ActionStatus.IN_FORCE:
            status = ActionStatus.STOPPED if result.stop_requested else ActionStatus.COMPLETED
            progress = progress.model_copy(update={"status": status, "end_time": at})
        elif progress.status is ActionStatus.PENDING:
            touched_it = journal_step(result, name) in touched
            status = ActionStatus.INTERRUPTED if touched_it else ActionStatus.CANCELLED
            if not result.actions and "inject_seconds" in result.metrics:
                # Injected in full by an Inject from before actions were recorded: it was in force.
                status = ActionStatus.COMPLETED
            progress = progress.model_copy(update={"status": status, "end_time": at})
        ended[name] = progress
    return ended
