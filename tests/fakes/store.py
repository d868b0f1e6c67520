from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chaosplane.errors import Conflict, NotFound, RunExists
from chaosplane.faults.base import Resource
from chaosplane.graph import MultiStepExperiment
from chaosplane.models import (
    TARGET_SPEC,
    ActionProgress,
    Experiment,
    ExperimentResult,
    ExperimentSpec,
    FailureKind,
    FaultType,
    JournalEntry,
    JournalStatus,
    Lever,
    ProbeRecord,
    ResourceState,
    RunStatus,
    StopKind,
    Target,
    TimelineEvent,
    Trigger,
    Verdict,
    new_id,
    utcnow,
)
from chaosplane.plans import RunPlan
from chaosplane.safety import ALL_TEAMS_LEVER, SafetyPolicy
from chaosplane.store.journal import journal_key
from chaosplane.tenancy import TeamSettings


@dataclass
class _Locks:
    experiment: dict[str, str] = field(default_factory=dict)  # experiment id -> run id
    target: dict[str, str] = field(default_factory=dict)  # target id -> run id
    running: dict[str, int] = field(default_factory=dict)  # team -> runs holding a slot
    active: set[str] = field(default_factory=set)  # runs that hold their locks


class InMemoryStore:
    """`chaosplane.ports.RunStore` in dictionaries (see the package's docstring)."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self._clock = clock
        self.targets: dict[str, Target] = {}
        self.experiments: dict[str, Experiment] = {}
        self.results: dict[str, ExperimentResult] = {}
        self.entries: dict[tuple[str, str], JournalEntry] = {}
        self.plans: dict[str, RunPlan] = {}
        self.policies: dict[str, SafetyPolicy] = {}
        self.settings: dict[str, TeamSettings] = {}
        self.levers: dict[str, Lever] = {}
        self.task_tokens: dict[str, str] = {}
        self.schedule_maps: dict[str, dict[str, dict[str, Any]]] = {}
        self.locks = _Locks()
        self.calls: list[str] = []

    # -- set-up, as the API would --------------------------------------------------------------

    def add_target(self, team: str = "red", **fields: Any) -> Target:
        spec = TARGET_SPEC.validate_python(
            {"name": "web", "type": "ec2-instances", "selector": "app=web", **fields}
        )
        now = self._clock()
        target = Target(**spec.model_dump(), id=new_id(), team=team, created_at=now, updated_at=now)
        self.targets[target.id] = target
        return target

    def add_experiment(self, target: Target, **fields: Any) -> Experiment:
        body = {"name": "stop web", "type": "ec2-stop", "target": target.id, "duration": 600, **fields}
        spec = ExperimentSpec.model_validate(body)
        now = self._clock()
        experiment = Experiment(
            **spec.model_dump(),
            id=new_id(),
            team=target.team,
            status="created",
            created_at=now,
            updated_at=now,
        )
        self.experiments[experiment.id] = experiment
        return experiment

    def add_multi_step(self, team: str = "red", **body: Any) -> Experiment:
        """A multi-step experiment, checked as the API's body is (graph.MultiStepExperiment)."""
        spec = MultiStepExperiment.model_validate({"name": "game day", **body}).spec()
        now = self._clock()
        experiment = Experiment(
            **spec.model_dump(), id=new_id(), team=team, status="created", created_at=now, updated_at=now
        )
        self.experiments[experiment.id] = experiment
        return experiment

    def change_experiment(self, experiment_id: str, **fields: Any) -> None:
        old = self.experiments[experiment_id]
        self.experiments[experiment_id] = old.model_copy(update={**fields, "updated_at": self._clock()})

    # -- reads -------------------------------------------------------------------------------------

    @staticmethod
    def _scoped(item: Any, kind: str, item_id: str, team: str | None) -> Any:
        if item is None or (team is not None and item.team != team):
            raise NotFound(kind, item_id)
        return item.model_copy(deep=True)

    def get_target(self, target_id: str, *, team: str | None) -> Target:
        self.calls.append("get_target")
        return self._scoped(self.targets.get(target_id), "target", target_id, team)

    def get_experiment(self, experiment_id: str, *, team: str | None) -> Experiment:
        self.calls.append("get_experiment")
        return self._scoped(self.experiments.get(experiment_id), "experiment", experiment_id, team)

    def target_and_policy(self, target_id: str, *, team: str) -> tuple[Target, SafetyPolicy]:
        return self.get_target(target_id, team=team), self.policy(team)

    def experiment_and_policy(self, experiment_id: str, *, team: str) -> tuple[Experiment, SafetyPolicy]:
        return self.get_experiment(experiment_id, team=team), self.policy(team)

    def active_run_of(self, experiment_id: str, *, team: str | None) -> str | None:
        self.get_experiment(experiment_id, team=team)
        return self.locks.experiment.get(experiment_id)

    def schedules(self, experiment_id: str, *, team: str | None) -> tuple[dict[str, dict[str, Any]], int]:
        self.get_experiment(experiment_id, team=team)
        return dict(self.schedule_maps.get(experiment_id, {})), 0

    def policy(self, team: str) -> SafetyPolicy:
        return self.policies.get(team, SafetyPolicy())

    def lever(self, team: str) -> Lever | None:
        return self.levers.get(ALL_TEAMS_LEVER) or self.levers.get(team)

    def policy_and_lever(self, team: str) -> tuple[SafetyPolicy, Lever | None]:
        return self.policy(team), self.lever(team)

    def engage_lever(self, scope: str, principal: str) -> Lever:
        engaged = Lever(team=scope, engaged_by=principal, engaged_at=self._clock())
        return self.levers.setdefault(scope, engaged)

    def team_settings(self, team: str) -> TeamSettings:
        return self.settings.get(team, TeamSettings())

    # -- runs ----------------------------------------------------------------------------------------

    def _event(self, step: str, message: str) -> TimelineEvent:
        return TimelineEvent(at=self._clock(), step=step, message=message)

    def create_run(
        self,
        experiment: Experiment,
        result_id: str | None = None,
        *,
        max_concurrent_runs: int = 5,
        trigger: Trigger = Trigger.API,
        schedule_id: str | None = None,
        plan_id: str | None = None,
    ) -> ExperimentResult:
        self.calls.append("create_run")
        run_id = result_id or new_id()
        if run_id in self.results:
            raise RunExists(f"result {run_id} already exists")
        if self.lever(experiment.team) is not None:
            raise Conflict("the emergency stop is engaged; no run may start")
        if experiment.id in self.locks.experiment:
            raise Conflict(f"experiment {experiment.id} is already running")
        for target_id in experiment.target_ids:
            if target_id in self.locks.target:
                raise Conflict(f"target {target_id} is busy with another run")
        if self.locks.running.get(experiment.team, 0) >= max_concurrent_runs:
            raise Conflict(f"team {experiment.team} already has {max_concurrent_runs} runs in progress")
        now = self._clock()
        result = ExperimentResult(
            id=run_id,
            team=experiment.team,
            experiment_id=experiment.id,
            experiment_name=experiment.name,
            status=RunStatus.PENDING,
            fault=experiment.type,
            target_id=experiment.target,
            selection=experiment.selection,
            duration=experiment.duration,
            parameters=experiment.parameters,
            stop_conditions=experiment.halting_alarms,
            probes=experiment.probes,
            trigger=trigger,
            schedule_id=schedule_id,
            plan_id=plan_id,
            steps=experiment.frozen_steps(),
            created_at=now,
            timeline=[self._event("created", f"run requested ({trigger.value})")],
        )
        self.results[run_id] = result
        self.locks.experiment[experiment.id] = run_id
        for target_id in experiment.target_ids:
            self.locks.target[target_id] = run_id
        self.locks.running[experiment.team] = self.locks.running.get(experiment.team, 0) + 1
        self.locks.active.add(run_id)
        return result.model_copy(deep=True)

    def record_skipped_run(
        self, experiment: Experiment, result_id: str, reason: str, trigger: Trigger, schedule_id: str | None
    ) -> ExperimentResult:
        now = self._clock()
        self.results.setdefault(
            result_id,
            ExperimentResult(
                id=result_id,
                team=experiment.team,
                experiment_id=experiment.id,
                status=RunStatus.SKIPPED,
                success=False,
                error=reason,
                start_time=now,
                end_time=now,
                fault=experiment.type,
                target_id=experiment.target,
                selection=experiment.selection,
                duration=experiment.duration,
                trigger=trigger,
                schedule_id=schedule_id,
                steps=experiment.frozen_steps(),
                created_at=now,
                timeline=[self._event("skipped", reason)],
            ),
        )
        return self.get_result(result_id, team=None)

    def _release(self, run_id: str) -> None:
        result = self.results[run_id]
        if run_id in self.locks.active:
            self.locks.active.discard(run_id)
            self.locks.running[result.team] -= 1
        held = [(self.locks.experiment, result.experiment_id)]
        held += [(self.locks.target, target_id) for target_id in result.target_ids]
        for locks, key in held:
            if locks.get(key) == run_id:
                del locks[key]

    def abandon_run(self, result_id: str, experiment_id: str) -> None:
        self._release(result_id)
        del self.results[result_id]

    def get_result(self, result_id: str, *, team: str | None) -> ExperimentResult:
        self.calls.append("get_result")
        return self._scoped(self.results.get(result_id), "result", result_id, team)

    def _live(self, result_id: str) -> ExperimentResult:
        if result_id not in self.results:
            raise NotFound("result", result_id)
        return self.results[result_id]

    def update_run(
        self,
        result_id: str,
        *,
        event: tuple[str, str] | None = None,
        status: RunStatus | None = None,
        resources: list[ResourceState] | None = None,
        metrics: dict[str, Any] | None = None,
        start_time: datetime | None = None,
        events: list[tuple[str, str]] | None = None,
        journal_marks: list[tuple[JournalEntry, JournalStatus]] | None = None,
        actions: dict[str, ActionProgress] | None = None,
        probe_records: dict[str, ProbeRecord] | None = None,
    ) -> None:
        self.calls.append("update_run")
        result = self._live(result_id)
        for entry, mark in journal_marks or []:
            self.entries[(entry.result_id, entry.key)].status = mark
        for line in [*(events or []), *([event] if event is not None else [])]:
            result.timeline.append(self._event(*line))
        if status is not None:
            result.status = status
        if resources is not None:
            result.resources = [r.model_copy(deep=True) for r in resources]
        if metrics is not None:
            result.metrics = dict(metrics)
        if start_time is not None:
            result.start_time = start_time
        if actions is not None:
            result.actions = {name: p.model_copy() for name, p in actions.items()}
        if probe_records is not None:
            result.probe_records = {name: p.model_copy(deep=True) for name, p in probe_records.items()}

    def keep_chart(self, result_id: str, chart: dict[str, Any], *, before: dict[str, Any]) -> None:
        result = self._live(result_id)
        if result.status.is_final and result.metrics == before:
            result.metrics = {**before, "stop_conditions": chart}

    def mark_running(
        self, result: ExperimentResult, plan: RunPlan, *, plan_is_new: bool, event: tuple[str, str]
    ) -> None:
        self.calls.append("mark_running")
        live = self._live(result.id)
        if live.status is not RunStatus.PENDING:
            raise Conflict("not pending")
        if plan_is_new:
            self.save_plan(plan)
        elif plan.id not in self.plans:
            raise NotFound("plan", plan.id)
        live.status, live.start_time, live.plan_id = RunStatus.RUNNING, self._clock(), plan.id
        live.resources = plan.resources()
        live.timeline.append(self._event(*event))

    def register_task_token(self, result_id: str, token: str, event: tuple[str, str]) -> bool:
        self.calls.append("register_task_token")
        live = self._live(result_id)
        self.task_tokens[result_id] = token
        live.timeline.append(self._event(*event))
        return live.stop_requested

    def request_stop(
        self, result_id: str, reason: str | None = None, kind: StopKind = StopKind.USER
    ) -> str | None:
        self.calls.append("request_stop")
        result = self._live(result_id)
        if result.status not in (RunStatus.PENDING, RunStatus.RUNNING):
            raise Conflict("the run has already ended")
        result.stop_requested = True
        result.stop_kind = result.stop_kind or kind
        result.stop_reason = result.stop_reason or reason
        result.timeline.append(self._event("stop", f"{reason or 'stop requested'}; rolling back"))
        return self.task_tokens.get(result_id)

    def stop_requested(self, result_id: str) -> bool:
        self.calls.append("stop_requested")
        return self._live(result_id).stop_requested

    def finish_run(
        self,
        current: ExperimentResult,
        status: RunStatus,
        error: str | None,
        metrics: dict[str, Any],
        message: str,
        *,
        release: bool,
        failure_kind: FailureKind | None = None,
        verdict: Verdict = Verdict.INCONCLUSIVE,
    ) -> ExperimentResult:
        self.calls.append("finish_run")
        result_id = current.id
        result = self._live(result_id)
        if not result.status.is_final:
            now = self._clock()
            result.status, result.end_time, result.success = status, now, verdict is Verdict.PASSED
            result.verdict = verdict
            result.metrics = dict(metrics)
            result.error = error if error is not None else result.error
            result.failure_kind = failure_kind
            result.start_time = result.start_time or now
            result.timeline.append(self._event("finalize", message))
            self.task_tokens.pop(result_id, None)
            experiment = self.experiments.get(result.experiment_id)
            if experiment is not None:
                self.experiments[experiment.id] = experiment.model_copy(update={"status": status.value})
        if release:
            self._release(result_id)
        return self.get_result(result_id, team=None)

    def active_runs(self) -> list[ExperimentResult]:
        self.calls.append("active_runs")
        return [self.get_result(run_id, team=None) for run_id in sorted(self.locks.active)]

    # -- the journal -------------------------------------------------------------------------------------

    def journal_before_change(
        self,
        result_id: str,
        resource: Resource,
        action: str,
        prior_state: dict[str, Any],
        fault: FaultType | None = None,
        step: str | None = None,
    ) -> JournalEntry:
        self.calls.append("journal_before_change")
        key = journal_key(resource.id, action, step)
        now = self._clock()
        entry = self.entries.setdefault(
            (result_id, key),
            JournalEntry(
                result_id=result_id,
                key=key,
                resource_id=resource.id,
                kind=resource.kind,
                action=action,
                prior_state=dict(prior_state),
                fault=fault,
                step=step,
                created_at=now,
                updated_at=now,
            ),
        )
        return entry.model_copy(deep=True)

    def journal(self, result_id: str) -> list[JournalEntry]:
        self.calls.append("journal")
        return [e.model_copy(deep=True) for (run, _), e in sorted(self.entries.items()) if run == result_id]

    # -- plans ----------------------------------------------------------------------------------------------

    def save_plan(self, plan: RunPlan) -> None:
        self.calls.append("save_plan")
        if plan.id in self.plans:
            raise Conflict(f"plan {plan.id} exists")
        self.plans[plan.id] = RunPlan.decode(plan.encode())  # what a read gives back: the stored bytes

    def get_plan(self, plan_id: str, *, team: str | None) -> RunPlan:
        self.calls.append("get_plan")
        return self._scoped(self.plans.get(plan_id), "plan", plan_id, team)

    def result_and_plan(self, result_id: str, plan_id: str) -> tuple[ExperimentResult, RunPlan]:
        result = self.get_result(result_id, team=None)
        return result, self.get_plan(plan_id, team=result.team)
