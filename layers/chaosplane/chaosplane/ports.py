"""The ports the run lifecycle depends on: small Protocols, so the domain never sees an adapter.

`chaosplane.store.Store` (pynamodb) and the boto3 adapters in `chaosplane.wiring` implement them
on AWS; the in-memory fakes beside the tests (`tests/fakes.py`) implement them in a dictionary, so
the whole lifecycle runs in a unit test in milliseconds, with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from chaosplane.faults.base import Resource
from chaosplane.models import (
    ActionProgress,
    Experiment,
    ExperimentResult,
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
    Trigger,
    Verdict,
)
from chaosplane.plans import RunPlan
from chaosplane.safety import SafetyPolicy
from chaosplane.tenancy import TeamSettings

Clock = Callable[[], datetime]


class TargetReader(Protocol):
    def get_target(self, target_id: str, *, team: str | None) -> Target: ...

    def target_and_policy(self, target_id: str, *, team: str) -> tuple[Target, SafetyPolicy]:
        """The team's target and the team's policy, in one read."""
        ...


class ExperimentReader(Protocol):
    def get_experiment(self, experiment_id: str, *, team: str | None) -> Experiment: ...

    def experiment_and_policy(self, experiment_id: str, *, team: str) -> tuple[Experiment, SafetyPolicy]:
        """The team's experiment and the team's policy, in one read."""
        ...

    def active_run_of(self, experiment_id: str, *, team: str | None) -> str | None: ...

    def schedules(self, experiment_id: str, *, team: str | None) -> tuple[dict[str, dict[str, Any]], int]: ...


class TeamReader(Protocol):
    def policy(self, team: str) -> SafetyPolicy: ...

    def policy_and_lever(self, team: str) -> tuple[SafetyPolicy, Lever | None]: ...

    def lever(self, team: str) -> Lever | None:
        """The emergency stop in force for `team`: its own, or the platform-wide one."""
        ...

    def engage_lever(self, scope: str, principal: str) -> Lever:
        """Engage the emergency stop of `scope` (a team, or every team); engaged already: as it is."""
        ...

    def team_settings(self, team: str) -> TeamSettings:
        """What a platform admin decided for the team: its boundary (the defaults with no record)."""
        ...


class RunRepository(Protocol):
    """Runs (results) and the locks they hold on their experiment, target and team."""

    def create_run(
        self,
        experiment: Experiment,
        result_id: str | None = None,
        *,
        max_concurrent_runs: int = 5,
        trigger: Trigger = Trigger.API,
        schedule_id: str | None = None,
        plan_id: str | None = None,
    ) -> ExperimentResult: ...

    def record_skipped_run(
        self, experiment: Experiment, result_id: str, reason: str, trigger: Trigger, schedule_id: str | None
    ) -> ExperimentResult: ...

    def abandon_run(self, result_id: str, experiment_id: str) -> None: ...

    def get_result(self, result_id: str, *, team: str | None) -> ExperimentResult: ...

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
    ) -> None: ...

    def keep_chart(self, result_id: str, chart: dict[str, Any], *, before: dict[str, Any]) -> None: ...

    def mark_running(
        self, result: ExperimentResult, plan: RunPlan, *, plan_is_new: bool, event: tuple[str, str]
    ) -> None: ...

    def register_task_token(self, result_id: str, token: str, event: tuple[str, str]) -> bool: ...

    def request_stop(
        self, result_id: str, reason: str | None = None, kind: StopKind = StopKind.USER
    ) -> str | None: ...

    def stop_requested(self, result_id: str) -> bool: ...

    def finish_run(
        self,
        result: ExperimentResult,
        status: RunStatus,
        error: str | None,
        metrics: dict[str, Any],
        message: str,
        *,
        release: bool,
        failure_kind: FailureKind | None = None,
        verdict: Verdict = Verdict.INCONCLUSIVE,
    ) -> ExperimentResult: ...

    def active_runs(self) -> list[ExperimentResult]: ...


class JournalRepository(Protocol):
    def journal_before_change(
        self,
        result_id: str,
        resource: Resource,
        action: str,
        prior_state: dict[str, Any],
        fault: FaultType | None = None,
        step: str | None = None,
    ) -> JournalEntry: ...

    def journal(self, result_id: str) -> list[JournalEntry]: ...


class PlanRepository(Protocol):
    def save_plan(self, plan: RunPlan) -> None: ...

    def get_plan(self, plan_id: str, *, team: str | None) -> RunPlan: ...

    def result_and_plan(self, result_id: str, plan_id: str) -> tuple[ExperimentResult, RunPlan]:
        """A run and its plan, in one read."""
        ...


class RunStore(
    TargetReader, ExperimentReader, TeamReader, RunRepository, JournalRepository, PlanRepository, Protocol
):
    """Everything the run lifecycle reads and writes."""
