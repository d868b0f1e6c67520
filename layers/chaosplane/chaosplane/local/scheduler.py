"""EventBridge Scheduler, firing: moto stores schedules and never fires them; this does, as AWS would.

Each `tick(now)` reads the group's schedules from the embedded AWS and starts the target (the state
machine, through Scheduler's universal target) once for every fire time in (last tick, now],
evaluated by `chaosplane.schedules` in the schedule's time zone, within its start and end dates.
A start that fails goes to the schedule's dead-letter queue, as on AWS after its retries. The clock
is injectable: tests move time forward without waiting for it.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chaosplane.models import utcnow
from chaosplane.schedules import parse

logger = logging.getLogger(__name__)
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # a context attribute Scheduler fills in Input


@dataclass(frozen=True)
class Fired:
    schedule: str
    at: datetime
    execution_arn: str | None  # None: the start failed and went to the dead-letter queue


class ScheduleFirer:
    def __init__(
        self, session: boto3.session.Session, group: str, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._scheduler = session.client("scheduler")
        self._stepfunctions = session.client("stepfunctions")
        self._sqs = session.client("sqs")
        self._group = group
        self._clock = clock
        self._evaluated: dict[str, datetime] = {}  # schedule name -> the moment it was evaluated up to
        self._lock = threading.Lock()

    def tick(self, now: datetime | None = None) -> list[Fired]:
        """Fire everything due up to `now` (default: the clock); return what fired, in order."""
        with self._lock:
            now = now or self._clock()
            fired: list[Fired] = []
            for page in self._scheduler.get_paginator("list_schedules").paginate(GroupName=self._group):
                for summary in page["Schedules"]:
                    fired += self._due(summary["Name"], now)
            return sorted(fired, key=lambda f: f.at)

    def _due(self, name: str, now: datetime) -> list[Fired]:
        schedule = self._scheduler.get_schedule(Name=name, GroupName=self._group)
        created = schedule["CreationDate"].astimezone(UTC)
        since = self._evaluated.get(name, created)
        self._evaluated[name] = max(since, now)
        if schedule["State"] != "ENABLED":
            return []  # a paused schedule's fire times pass unfired, as on AWS
        recurrence = parse(
            schedule["ScheduleExpression"],
            schedule.get("ScheduleExpressionTimezone", "UTC"),
            _utc(schedule.get("StartDate")),
            _utc(schedule.get("EndDate")),
            anchor=created,
        )
        return [self._fire(name, schedule["Target"], at) for at in recurrence.between(since, now)]

    def _fire(self, name: str, target: dict[str, Any], at: datetime) -> Fired:
        payload = target.get("Input", "{}").replace(SCHEDULED_TIME, at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        try:
            # Scheduler names each execution with a fresh id (moto, given no name, would use "None").
            started = self._stepfunctions.start_execution(
                stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=payload
            )
            arn = started["executionArn"]
            return Fired(name, at, str(arn))
        except ClientError as err:
            logger.warning("schedule %s could not start its run: %s", name, err)
            queue = target.get("DeadLetterConfig", {}).get("Arn")
            if queue:
                url = self._sqs.get_queue_url(QueueName=queue.rsplit(":", 1)[-1])["QueueUrl"]
                self._sqs.send_message(
                    QueueUrl=url,
                    MessageBody=json.dumps({"schedule": name, "at": at.isoformat(), "error": str(err)}),
                )
            return Fired(name, at, None)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None
