"""Experiment schedules: each one an EventBridge Scheduler schedule that starts the state machine.

The schedule's target is the state machine itself (Scheduler's universal target), with a retry
policy and a dead-letter queue, so a run starts on AWS with no function of ours in between; Prepare
then applies every rule a manual run obeys and records a refused run as `skipped`.

The experiment's record lists its schedules (what the API shows); the Scheduler holds the live
copies. Creating and changing write the record first and the Scheduler second, undoing the record
if the Scheduler refuses; deleting goes the other way round. So a crash between two writes leaves a
listed schedule that does not fire (deleting it again cleans up), never one that fires unlisted;
and should one fire unlisted anyway (an experiment deleted mid-way), Prepare records it as skipped.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from chaosplane.errors import InvalidRequest, NotFound
from chaosplane.models import MAX_SCHEDULES, Schedule, ScheduleSpec, Trigger, utcnow
from chaosplane.schedules import parse
from chaosplane.store import Store

NEXT_RUNS_SHOWN = 3


class ScheduleGateway(Protocol):
    def put(self, schedule: Schedule, *, create: bool) -> None: ...

    def delete(self, experiment_id: str, schedule_id: str) -> None: ...


def scheduler_name(experiment_id: str, schedule_id: str) -> str:
    return f"exp-{experiment_id}-{schedule_id}"  # at most 64 characters, as the Scheduler allows


def run_input(schedule: Schedule) -> dict[str, Any]:
    """What the state machine receives: the same small input a console start uses, plus provenance."""
    return {
        "experiment_id": schedule.experiment_id,
        "trigger": Trigger.SCHEDULE.value,
        "schedule_id": schedule.id,
        "scheduled_time": "<aws.scheduler.scheduled-time>",  # filled in by the Scheduler
    }


class EventBridgeSchedules:
    """The Scheduler side (boto3 `scheduler`)."""

    def __init__(
        self, client: Any, group: str, role_arn: str, dead_letter_arn: str, state_machine_arn: str
    ) -> None:
        self._client = client
        self._group = group
        self._role_arn = role_arn
        self._dead_letter_arn = dead_letter_arn
        self._state_machine_arn = state_machine_arn

    def put(self, schedule: Schedule, *, create: bool) -> None:
        request: dict[str, Any] = {
            "Name": scheduler_name(schedule.experiment_id, schedule.id),
            "GroupName": self._group,
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "State": "ENABLED" if schedule.enabled else "DISABLED",
            "Description": schedule.description or f"Chaosplane experiment {schedule.experiment_id}",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "NONE",
            "Target": {
                "Arn": self._state_machine_arn,
                "RoleArn": self._role_arn,
                "Input": json.dumps(run_input(schedule)),
                # A start that fails (throttled, the machine being updated) is retried for an hour,
                # then parked in the queue, where an operator can see which runs never started.
                "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
                "DeadLetterConfig": {"Arn": self._dead_letter_arn},
            },
        }
        if schedule.start_date is not None:
            request["StartDate"] = schedule.start_date
        if schedule.end_date is not None:
            request["EndDate"] = schedule.end_date
        if create:
            self._client.create_schedule(**request)
        else:
            self._client.update_schedule(**request)

    def delete(self, experiment_id: str, schedule_id: str) -> None:
        # Already gone is fine: deleting is idempotent.
        with contextlib.suppress(self._client.exceptions.ResourceNotFoundException):
            self._client.delete_schedule(
                Name=scheduler_name(experiment_id, schedule_id), GroupName=self._group
            )


class Scheduling:
    def __init__(
        self, store: Store, gateway: ScheduleGateway, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._store = store
        self._gateway = gateway
        self._clock = clock

    def _view(self, experiment_id: str, team: str, schedule_id: str, raw: dict[str, Any]) -> Schedule:
        schedule = Schedule.model_validate(
            {**raw, "id": schedule_id, "experiment_id": experiment_id, "team": team}
        )
        if schedule.enabled:
            recurrence = parse(
                schedule.expression,
                schedule.timezone,
                schedule.start_date,
                schedule.end_date,
                schedule.created_at,
            )
            upcoming: list[datetime] = []
            moment: datetime | None = self._clock()
            while moment is not None and len(upcoming) < NEXT_RUNS_SHOWN:
                moment = recurrence.next_after(moment)
                if moment is not None:
                    upcoming.append(moment)
            schedule.next_runs = upcoming
        return schedule

    def all(self, experiment_id: str, *, team: str) -> list[Schedule]:
        found, _ = self._store.schedules(experiment_id, team=team)
        return sorted(
            (self._view(experiment_id, team, sid, raw) for sid, raw in found.items()),
            key=lambda s: s.created_at,
        )

    def get(self, experiment_id: str, schedule_id: str, *, team: str) -> Schedule:
        found, _ = self._store.schedules(experiment_id, team=team)
        if schedule_id not in found:
            raise NotFound("schedule", schedule_id)
        return self._view(experiment_id, team, schedule_id, found[schedule_id])

    def create(self, experiment_id: str, spec: ScheduleSpec, *, team: str) -> Schedule:
        found, version = self._store.schedules(experiment_id, team=team)
        if len(found) >= MAX_SCHEDULES:
            raise InvalidRequest(f"an experiment has at most {MAX_SCHEDULES} schedules")
        now = self._clock()
        schedule_id = secrets.token_hex(6)
        raw = {**spec.model_dump(mode="json"), "created_at": now.isoformat(), "updated_at": now.isoformat()}
        self._store.save_schedules(experiment_id, team, {**found, schedule_id: raw}, version)
        schedule = self._view(experiment_id, team, schedule_id, raw)
        try:
            self._gateway.put(schedule, create=True)
        except Exception:
            self._forget(experiment_id, team, schedule_id)
            raise
        return schedule

    def replace(self, experiment_id: str, schedule_id: str, spec: ScheduleSpec, *, team: str) -> Schedule:
        found, version = self._store.schedules(experiment_id, team=team)
        if schedule_id not in found:
            raise NotFound("schedule", schedule_id)
        before = found[schedule_id]
        raw = {
            **spec.model_dump(mode="json"),
            "created_at": before["created_at"],
            "updated_at": self._clock().isoformat(),
        }
        self._store.save_schedules(experiment_id, team, {**found, schedule_id: raw}, version)
        schedule = self._view(experiment_id, team, schedule_id, raw)
        try:
            self._gateway.put(schedule, create=False)
        except Exception:
            current, now_version = self._store.schedules(experiment_id, team=team)
            self._store.save_schedules(experiment_id, team, {**current, schedule_id: before}, now_version)
            raise
        return schedule

    def set_enabled(self, experiment_id: str, schedule_id: str, enabled: bool, *, team: str) -> Schedule:
        current = self.get(experiment_id, schedule_id, team=team)
        spec = ScheduleSpec.model_validate(
            {**current.model_dump(include=set(ScheduleSpec.model_fields)), "enabled": enabled}
        )
        return self.replace(experiment_id, schedule_id, spec, team=team)

    def delete(self, experiment_id: str, schedule_id: str, *, team: str) -> None:
        found, _ = self._store.schedules(experiment_id, team=team)
        if schedule_id not in found:
            raise NotFound("schedule", schedule_id)
        # Scheduler first: a crash after it leaves a record of a schedule that no longer fires
        # (deleting it again works), never a schedule that fires with no record.
        self._gateway.delete(experiment_id, schedule_id)
        self._forget(experiment_id, team, schedule_id)

    def delete_all(self, experiment_id: str, schedule_ids: list[str]) -> None:
        """After an experiment is deleted: its schedules go too."""
        for schedule_id in schedule_ids:
            self._gateway.delete(experiment_id, schedule_id)

    def _forget(self, experiment_id: str, team: str, schedule_id: str) -> None:
        current, version = self._store.schedules(experiment_id, team=team)
        current.pop(schedule_id, None)
        self._store.save_schedules(experiment_id, team, current, version)
