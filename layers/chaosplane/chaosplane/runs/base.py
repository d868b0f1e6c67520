"""What every part of the run lifecycle shares: its collaborators, planning, and run events."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from chaosplane.errors import PreflightFailed
from chaosplane.events import EventStatus, RunEvent
from chaosplane.faults.base import AccessChecking, FaultFamily, Resource
from chaosplane.graph import AttributeFilter, ExperimentGraph, passes
from chaosplane.metrics import MetricReader, series_for
from chaosplane.models import ExperimentResult, FaultType, Placed, StopKind, Target, Verdict, utcnow
from chaosplane.parallel import CHANGES_AT_ONCE
from chaosplane.plans import RunPlan, StepPlans, no_longer_eligible, over_policy
from chaosplane.ports import Clock, RunStore
from chaosplane.probes import CloudWatchAlarmProbe, Readers, TeamReaders
from chaosplane.runs.checks import AlarmReader, AlarmsIn, MetricsIn, alarms_of, metrics_of
from chaosplane.safety import Plan, SafetyPolicy, plan_run
from chaosplane.selection import Selection
from chaosplane.telemetry import Metric, NoTelemetry, Telemetry, emit_safely
from chaosplane.tenancy import Boundary, NoSuchEnvironment, Place, PlatformSelf, Scope, counted
from chaosplane.tracing import NoTracing, Tracing, run_annotations

logger = logging.getLogger(__name__)

# A run's state changes that are counted: created, and each way it ends.
RUN_COUNTERS = {
    EventStatus.PENDING: Metric.RUNS_STARTED,
    EventStatus.COMPLETED: Metric.RUNS_COMPLETED,
    EventStatus.STOPPED: Metric.RUNS_STOPPED,
    EventStatus.FAILED: Metric.RUNS_FAILED,
    EventStatus.SKIPPED: Metric.RUNS_SKIPPED,
}

RunEventPublisher = Callable[[RunEvent], None]
WorkflowStarter = Callable[[ExperimentResult], None]
Halter = Callable[[str], None]  # sends the Observe task's token a Halted failure
ExecutionStatus = Callable[[str], str | None]  # RUNNING, SUCCEEDED, ...; None: no such execution


def named_outside(target: Target, outside: Mapping[str, int]) -> list[str]:
    """The refusal of a target that names resources not the team's to act on. Resolving named ids
    finds only those, so each one outside was named; which ones is not said, nor whose they are."""
    if not target.resource_ids or not outside:
        return []
    return [f"{sum(outside.values())} of the target's resource ids are not the team's to act on"]


class RunsBase:
    """The collaborators, all injected: the store's ports, the fault families, AWS as callables,
    what asks the probes' questions, the clock and the random generator (so that a test drives a
    10-minute run in milliseconds)."""

    def __init__(
        self,
        store: RunStore,
        families: Callable[[FaultType], FaultFamily],
        *,
        start_workflow: WorkflowStarter | None = None,
        send_halt: Halter | None = None,
        alarms: AlarmReader | None = None,
        metrics: MetricReader | None = None,
        execution_status: ExecutionStatus | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        publish: RunEventPublisher | None = None,
        parallel_changes: int = CHANGES_AT_ONCE,
        telemetry: Telemetry | None = None,
        tracing: Tracing | None = None,
        probes: Readers | None = None,
        platform: PlatformSelf | None = None,
        acting_as: Callable[[str], Callable[[FaultType], FaultFamily]] | None = None,
        fan_out: Callable[[str, str], None] | None = None,
        in_place: Callable[[str, Place], Callable[[FaultType], FaultFamily]] | None = None,
        alarms_in: AlarmsIn | None = None,
        metrics_in: MetricsIn | None = None,
        probes_in: Callable[[str, Place], Readers] | None = None,
    ) -> None:
        # Alarms, metrics and probes of a team's environment, read there.
        self._alarms_in = alarms_in
        self._metrics_in = metrics_in
        self._probes_in = probes_in
        self._in_place = in_place  # the families acting in another account (team, environment)
        self._fan_out = fan_out  # puts an engaged emergency stop on the bus, for the executor
        self._store = store
        self._platform = platform or PlatformSelf()
        self._acting_as = acting_as
        self._probes = probes
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
        self._telemetry = telemetry or NoTelemetry()
        self._tracing = tracing or NoTracing()

    def _emit(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
        emit_safely(self._telemetry, metric, value, **dimensions)

    def _trace(self, result: ExperimentResult, step: str) -> None:
        """Annotate this invocation's trace with the run it works on (never fails the run)."""
        try:
            self._tracing.annotate(**run_annotations(result, step))
        except Exception:
            logger.exception("trace of run %s could not be annotated", result.id)

    def _announce(
        self,
        result: ExperimentResult,
        old: EventStatus | None,
        new: EventStatus,
        reason: str | None = None,
        *,
        stop_kind: StopKind | None = None,
        rollback_complete: bool | None = None,
        verdict: Verdict | None = None,
    ) -> None:
        """Put a run state change on EventBridge, and count it. Never fails the run: a lost event
        is only logged."""
        counted = RUN_COUNTERS.get(new)
        if counted is not None and old != new:
            self._emit(counted, Team=result.team, Fault=result.fault.value)
        if self._publish is None:
            return
        name = result.experiment_name
        if name is None:  # a run recorded before runs kept their experiment's name
            try:
                name = self._store.get_experiment(result.experiment_id, team=None).name
            except Exception:
                name = ""  # deleted meanwhile, or the read failed: the event still goes out
        event = RunEvent(
            run_id=result.id,
            experiment_id=result.experiment_id,
            experiment_name=name,
            team=result.team,
            fault=result.fault.value,
            trigger=result.trigger.value,
            old_status=old,
            new_status=new,
            reason=reason,
            stop_kind=stop_kind,
            rollback_complete=rollback_complete,
            verdict=verdict,
            time=self._clock(),
        )
        try:
            self._publish(event)
        except Exception:
            logger.exception("could not publish the run event %s -> %s of run %s", old, new, result.id)

    def _scope(self, team: str) -> Scope:
        settings = self._store.team_settings(team)
        return Scope(team, settings.boundary, self._platform, settings)

    def _alarms_of(self, team: str, scope: Scope | None = None) -> AlarmReader | None:
        """The alarm reader as the team may use it, by name or ARN (chaosplane.runs.checks.alarms_of);
        `scope`, if it was read already."""
        if self._alarms is None:
            return None
        return alarms_of(scope or self._scope(team), self._alarms, self._alarms_in)

    def _metrics_of(self, team: str) -> MetricReader | None:
        """The stop conditions' metric reader as the team may use it, by name or ARN."""
        if self._metrics is None:
            return None
        return metrics_of(self._scope(team), self._metrics, self._metrics_in)

    def _resolve(
        self,
        target: Target,
        fault: FaultType,
        filters: Sequence[AttributeFilter] = (),
        scope: Scope | None = None,
    ) -> tuple[list[Resource], frozenset[str], dict[str, int]]:
        """What `target` matches now that `fault` could act on, filters applied (as FIS's), within
        the team's boundary (`scope`, if it was read already); and how many others it matched, by
        why they are not the team's."""
        scope = scope or self._scope(target.team)
        family = self._family(fault, target.team, scope.boundary, self._place(scope, target))
        matched = [r for r in family.resolve(target, fault) if passes(r, filters)]
        inside, outside = scope.admits(matched)
        return inside, family.eligible_states, counted(outside)

    def _place(self, scope: Scope, placed: Placed) -> Place | None:
        """Where a target or probe is (None: the platform's own account); one naming an
        environment the team no longer has fails the run before it touches anything."""
        try:
            return scope.place(placed.environment, placed.region)
        except NoSuchEnvironment as err:
            raise PreflightFailed(str(err)) from err

    @staticmethod
    def _unplaced_probes(scope: Scope, probes: Sequence[Any]) -> list[str]:
        """Why a run may not start, for each probe naming an environment the team no longer has."""
        problems = []
        for probe in probes:
            name: str = probe.name
            if isinstance(probe, Placed):
                try:
                    scope.place(probe.environment, probe.region)
                except NoSuchEnvironment as err:
                    problems.append(f"probe {name}: {err}")
        return problems

    def _probe_readers(self, readers: Readers, team: str, probes: Sequence[Any]) -> Readers:
        """`readers` as the team's probes need them: alarms as the team sees them, and probes of
        its environments asked there. The team's settings are read only if a probe needs them."""
        placed = any(isinstance(p, Placed) and p.environment is not None for p in probes)
        if not placed and not any(isinstance(p, CloudWatchAlarmProbe) for p in probes):
            return readers
        scope = self._scope(team)

        def elsewhere(probe: Placed) -> Readers:
            place = self._place(scope, probe)
            if place is None or self._probes_in is None:
                raise RuntimeError("this component cannot ask probes in other accounts")
            return self._probes_in(team, place)

        return TeamReaders(readers, self._alarms_of(team, scope), elsewhere)

    def _family(
        self, fault: FaultType, team: str, boundary: Boundary | None, place: Place | None = None
    ) -> FaultFamily:
        """The family of `fault`, acting as the team within its tag boundary (an identity that may
        change only what is tagged as the team's), or as this function (an account boundary, or a
        run planned before boundaries existed); in another account, as that account's role,
        assumed with the team's ExternalId and the team as a session tag."""
        if place is not None:
            if self._in_place is None:
                raise RuntimeError("this component cannot act in other accounts")
            return self._in_place(team, place)(fault)
        if self._acting_as is None or boundary in (None, Boundary.ACCOUNT):
            return self._families(fault)
        return self._acting_as(team)(fault)

    def _plan(
        self,
        target: Target,
        fault: FaultType,
        selection: str,
        duration: int,
        policy: SafetyPolicy,
        filters: Sequence[AttributeFilter] = (),
        scope: Scope | None = None,
    ) -> Plan:
        matched, eligible_states, outside = self._resolve(target, fault, filters, scope)
        plan = plan_run(matched, eligible_states, Selection.parse(selection), duration, policy, self._rng)
        return replace(plan, refusals=plan.refusals + named_outside(target, outside), outside=outside)

    def _step_targets(self, graph: ExperimentGraph, team: str) -> dict[str, Target]:
        """The target of each step a fault acts on, by step name, each read once."""
        ids = {name: graph.targets[name].target for name in graph.step_faults()}
        read = {target_id: self._store.get_target(target_id, team=team) for target_id in set(ids.values())}
        return {name: read[target_id] for name, target_id in ids.items()}

    def _plan_steps(
        self,
        graph: ExperimentGraph,
        targets: Mapping[str, Target],
        duration: int,
        policy: SafetyPolicy,
        *,
        multi_step: bool,
    ) -> StepPlans:
        """The one planning path: the preview stores exactly what a run with its plan carries out.
        Each step target is planned once, and every fault action on it hits what it selected."""
        by_step: dict[str | None, Plan] = {}
        places: dict[str | None, Place] = {}
        scope = self._scope(next(iter(targets.values())).team)  # one team's targets, all of them
        for name, fault in graph.step_faults().items():
            step, key = graph.targets[name], name if multi_step else None
            by_step[key] = self._plan(
                targets[name], fault, step.selection, duration, policy, step.filters, scope
            )
            if (place := self._place(scope, targets[name])) is not None:
                places[key] = place
        actions = {name: str(action.target) for name, action in graph.faults()} if multi_step else {}
        return StepPlans(by_step, actions, scope.boundary, places)

    def _plan_problems(
        self,
        plan: RunPlan,
        graph: ExperimentGraph,
        targets: Mapping[str, Target],
        policy: SafetyPolicy,
        *,
        multi_step: bool,
    ) -> tuple[list[str], list[str]]:
        """Why a stored plan may not run now: the resources no longer eligible, and the policy's
        refusals of its selection as a whole (each a step target's, named, in a multi-step run)."""
        stale: list[str] = []
        refusals: list[str] = []
        scope = self._scope(plan.team)
        for name, fault in graph.step_faults().items():
            part = plan.of_step(name if multi_step else None, targets[name].id)
            target = targets[name]
            matched, eligible_states, outside = self._resolve(
                target, fault, graph.targets[name].filters, scope
            )
            prefix = f"targets.{name}: " if multi_step else ""
            stale += [prefix + why for why in no_longer_eligible(part, matched, eligible_states, policy)]
            refusals += [prefix + why for why in over_policy(part, matched, eligible_states, policy)]
            refusals += [prefix + why for why in named_outside(target, outside)]
        return stale, refusals

    def _access_problems(self, target: Target, fault: FaultType) -> list[str]:
        """What the executor lacks to inject *and roll back* `fault` (families that can tell)."""
        family = self._families(fault)
        return family.check_access(target, fault) if isinstance(family, AccessChecking) else []

    def _planned_resources(
        self, result: ExperimentResult, action: str, plan: RunPlan | None = None
    ) -> dict[str, Resource]:
        """What `action` hits as the run's plan has it (labels and detail included), by id;
        `plan`, if it was read already and is the run's."""
        if result.plan_id is None:  # a run recorded before plans were stored
            return {r.id: Resource(r.id, r.kind, r.before, detail=dict(r.detail)) for r in result.resources}
        if plan is None or plan.id != result.plan_id:
            plan = self._store.get_plan(result.plan_id, team=None)
        return plan.of_action(action)

    def _final_series(self, result: ExperimentResult) -> dict[str, Any] | None:
        """The chart's data kept with a run that just ended, up to its end; a failed read is
        logged, never fails the run."""
        if self._metrics is None or not result.stop_conditions:
            return None
        try:
            read = metrics_of(self._scope(result.team), self._metrics, self._metrics_in)
            return series_for(result, read, result.end_time or self._clock())
        except Exception:
            logger.exception("stop-condition metrics could not be read for %s", result.id)
            return None
