"""DynamoDB adapter (pynamodb). Records are mapped to domain models here and nowhere else.

Invariants kept with conditional writes, not with reads-then-writes:
- an experiment has at most one active run (`active_run`), set when the run is created and
  cleared when it is finalized, in the same transactions as the result record;
- an experiment with an active run cannot be changed or deleted;
- a journal entry, once written, keeps the prior state it first recorded (a retried injection
  must not overwrite "running" with "stopped").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chaosplane.errors import ChaosplaneError, Conflict, InvalidRequest, NotFound, RunExists, TransientError
from chaosplane.faults.base import Resource, RunContext
from chaosplane.models import (
    AuditEntry,
    Experiment,
    ExperimentResult,
    ExperimentSpec,
    ExperimentStatus,
    FailureKind,
    JournalEntry,
    JournalStatus,
    Lever,
    Page,
    ResourceState,
    RunStatus,
    StopKind,
    Target,
    TargetSpec,
    Trigger,
    new_id,
    utcnow,
)
from chaosplane.safety import ALL_TEAMS_LEVER, SafetyPolicy
from chaosplane.settings import Settings

if TYPE_CHECKING:  # imported where used: notify brings the HTTP sender, which the guard never needs
    from chaosplane.notify import TeamNotifications

# Every item belongs to a scope, its team; lists are queries on (scope, created_at) so they come
# newest first without a table scan, and a team's list never reads another team's items.
MAX_PAGE = 100
ACTIVE = "yes"
ALL_TEAMS = ALL_TEAMS_LEVER  # the team record that holds the platform-wide emergency stop
# Ids are UUIDs, or Step Functions execution names for runs started outside the API.
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


class LocksMoved(ChaosplaneError):
    """A lock this run held is no longer its own (released by an earlier recovery)."""


NOTIFICATIONS_HOLD = timedelta(seconds=60)  # longer than any change of channels takes (API timeout: 29 s)


def _is_condition_failure(err: Exception) -> bool:
    cause = getattr(err, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def _cancellation_codes(err: TransactWriteError) -> list[str | None]:
    return [reason.code if reason else None for reason in (err.cancellation_reasons or [])]


class _ByScope(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-scope"
        projection = AllProjection()

    scope = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class _ByTarget(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-target"
        projection = AllProjection()

    target = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class _ByExperiment(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-experiment"
        projection = AllProjection()

    experiment_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class _ByActive(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-active"
        projection = AllProjection()

    active = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class _TimelineMap(MapAttribute[str, Any]):
    at = UTCDateTimeAttribute()
    step = UnicodeAttribute()
    message = UnicodeAttribute()


def _bind(settings: Settings) -> tuple[Any, Any, Any, Any, Any, Any]:
    """Build the record classes for the configured tables (pynamodb takes names at class level).

    Typed as Any: mypy cannot see attributes of classes built at run time, and pynamodb's own
    attribute typing stops at the record boundary anyway; records become pydantic models here.
    """

    class TargetRecord(Model):
        class Meta:
            table_name = settings.targets_table
            region = settings.aws_region
            max_pool_connections = settings.connections

        id = UnicodeAttribute(hash_key=True)
        scope = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        updated_at = UTCDateTimeAttribute()
        name = UnicodeAttribute()
        description = UnicodeAttribute(default="")
        type = UnicodeAttribute()
        namespace = UnicodeAttribute(null=True)
        selector = UnicodeAttribute(null=True)
        cluster = UnicodeAttribute(null=True)
        service = UnicodeAttribute(null=True)
        resource_ids = ListAttribute(of=UnicodeAttribute, null=True)
        webhook = JSONAttribute(null=True)  # no secret in it: those live in Secrets Manager
        experiments = NumberAttribute(default=0)  # how many experiments use it: it cannot go from under them
        active_run = UnicodeAttribute(null=True)  # one run per target at a time
        by_scope = _ByScope()

    class ExperimentRecord(Model):
        class Meta:
            table_name = settings.experiments_table
            region = settings.aws_region
            max_pool_connections = settings.connections

        id = UnicodeAttribute(hash_key=True)
        scope = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        updated_at = UTCDateTimeAttribute()
        name = UnicodeAttribute()
        description = UnicodeAttribute(default="")
        type = UnicodeAttribute()
        target = UnicodeAttribute()
        parameters = JSONAttribute(default=dict)
        duration = NumberAttribute()
        selection = UnicodeAttribute()
        stop_conditions = ListAttribute(of=UnicodeAttribute, default=list)
        allow_irreversible = BooleanAttribute(default=False)
        status = UnicodeAttribute()
        active_run = UnicodeAttribute(null=True)
        # Schedule id -> the schedule as the API shows it; the Scheduler holds the live copy.
        schedules = JSONAttribute(null=True)
        schedules_version = NumberAttribute(null=True)  # optimistic lock for the map above
        by_scope = _ByScope()
        by_target = _ByTarget()

    class ResultRecord(Model):
        class Meta:
            table_name = settings.results_table
            region = settings.aws_region
            max_pool_connections = settings.connections

        id = UnicodeAttribute(hash_key=True)
        scope = UnicodeAttribute()
        experiment_id = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        status = UnicodeAttribute()
        start_time = UTCDateTimeAttribute(null=True)
        end_time = UTCDateTimeAttribute(null=True)
        success = BooleanAttribute(null=True)
        error = UnicodeAttribute(null=True)
        metrics = JSONAttribute(default=dict)
        resources = JSONAttribute(default=list)
        timeline = ListAttribute(of=_TimelineMap, default=list)
        fault = UnicodeAttribute()
        target_id = UnicodeAttribute()
        selection = UnicodeAttribute()
        duration = NumberAttribute()
        parameters = JSONAttribute(default=dict)
        stop_requested = BooleanAttribute(default=False)
        stop_reason = UnicodeAttribute(null=True)
        stop_kind = UnicodeAttribute(null=True)
        failure_kind = UnicodeAttribute(null=True)
        stop_conditions = ListAttribute(of=UnicodeAttribute, default=list)
        task_token = UnicodeAttribute(null=True)
        trigger = UnicodeAttribute(null=True)
        schedule_id = UnicodeAttribute(null=True)
        # Present while the run holds its locks (sparse index: the sweeper and the guard read only these).
        active = UnicodeAttribute(null=True)
        by_experiment = _ByExperiment()
        by_active = _ByActive()

    class JournalRecord(Model):
        class Meta:
            table_name = settings.journal_table
            region = settings.aws_region
            max_pool_connections = settings.connections

        result_id = UnicodeAttribute(hash_key=True)
        key = UnicodeAttribute(range_key=True)
        resource_id = UnicodeAttribute()
        kind = UnicodeAttribute()
        action = UnicodeAttribute()
        prior_state = JSONAttribute()
        status = UnicodeAttribute()
        created_at = UTCDateTimeAttribute()
        updated_at = UTCDateTimeAttribute()

    class AuditRecord(Model):
        class Meta:
            table_name = settings.audit_table
            region = settings.aws_region
            max_pool_connections = settings.connections

        team = UnicodeAttribute(hash_key=True)
        at_id = UnicodeAttribute(range_key=True)  # ISO time + request id: newest first, never equal
        entry = JSONAttribute()

    class TeamRecord(Model):
        class Meta:
            table_name = settings.teams_table
            region = settings.aws_region
            max_pool_connections = settings.connections

        team = UnicodeAttribute(hash_key=True)
        policy = JSONAttribute(null=True)
        running = NumberAttribute(default=0)
        halted_by = UnicodeAttribute(null=True)
        halted_at = UTCDateTimeAttribute(null=True)
        # Notification settings (chaosplane/notify.py: TeamNotifications). Never a secret: the
        # webhook URL and routing key live in Secrets Manager; this holds the secret's ARN.
        notifications = JSONAttribute(null=True)
        # Who is changing the notifications (a token) and until when: changes are read-modify-write
        # of this record and of one shared secret, so they take turns (Store.changing_notifications).
        notifications_changed_by = UnicodeAttribute(null=True)
        notifications_change_until = UTCDateTimeAttribute(null=True)

    return TargetRecord, ExperimentRecord, ResultRecord, JournalRecord, AuditRecord, TeamRecord


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def _decode_token(token: str, expected_keys: set[str], scope_field: str, scope: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise InvalidRequest("next_token is not a token this API issued") from err
    if not isinstance(key, dict) or set(key) != expected_keys:
        raise InvalidRequest("next_token is not a token this API issued")
    for value in key.values():
        if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
            raise InvalidRequest("next_token is not a token this API issued")
    if key[scope_field]["S"] != scope:
        raise InvalidRequest("next_token belongs to another listing")
    return key


class Store:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        (
            self._targets,
            self._experiments,
            self._results,
            self._journal,
            self._audit,
            self._teams,
        ) = _bind(settings)
        self._clock = clock
        # One pynamodb Connection, so one botocore client, for all of this store's tables and its
        # transactions: pynamodb makes one per record class, and each transaction made its own,
        # each client loading DynamoDB's service model again (the first event of a cold function
        # paid for several). Its HTTP pool is sized for a run's changes at once (settings.connections).
        records = (self._targets, self._experiments, self._results, self._journal, self._audit, self._teams)
        tables = [record._get_connection() for record in records]
        self._db: Connection = tables[0].connection
        for table in tables[1:]:
            self._db.add_meta_table(table.get_meta_table())
            table.connection = self._db

    # -- paging ---------------------------------------------------------------------------------

    def _page(
        self,
        query: Callable[..., Iterator[Any]],
        hash_value: str,
        hash_name: str,
        limit: int,
        next_token: str | None,
        table_key: list[str],
    ) -> tuple[list[Any], str | None]:
        """Query one page, newest first. Asks for one extra item to know whether a next page exists."""
        limit = max(1, min(limit, MAX_PAGE))
        start = None
        if next_token:
            start = _decode_token(next_token, {*table_key, hash_name, "created_at"}, hash_name, hash_value)
        records = list(query(hash_value, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start))
        if len(records) <= limit:
            return records, None
        last = records[limit - 1]
        key = {name: {"S": str(getattr(last, name))} for name in [*table_key, hash_name]}
        key["created_at"] = {"S": last.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f%z")}
        return records[:limit], _encode_token(key)

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, explain: Callable[[], Exception] | None = None) -> Iterator[TransactWrite]:
        """A DynamoDB transaction whose failed conditions become one domain error.

        Which item's condition failed is worked out by `explain`, which reads the state again:
        the order of DynamoDB's cancellation reasons is not something to build on (moto's differs).
        A conflicting concurrent transaction is transient: the caller may simply retry.
        """
        try:
            with TransactWrite(connection=self._connection()) as tx:
                yield tx
        except TransactWriteError as err:
            codes = _cancellation_codes(err)
            if "ConditionalCheckFailed" in codes and explain is not None:
                raise explain() from err
            if "TransactionConflict" in codes or err.cause_response_code == "TransactionInProgressException":
                raise TransientError("a concurrent change got there first; retry") from err
            raise

    @staticmethod
    def _scoped(record: Any, team: str | None, kind: str, item_id: str) -> Any:
        """Another team's item is reported exactly like a missing one: 404, never 403."""
        if team is not None and record.scope != team:
            raise NotFound(kind, item_id)
        return record

    def _get(self, model: Any, kind: str, item_id: str, team: str | None) -> Any:
        if not _ID.match(item_id):
            raise NotFound(kind, item_id[:80])  # cannot exist; and DynamoDB would refuse the key
        try:
            record = model.get(item_id, consistent_read=True)
        except DoesNotExist:
            raise NotFound(kind, item_id) from None
        return self._scoped(record, team, kind, item_id)

    @staticmethod
    def _values(record: Any) -> dict[str, Any]:
        values = dict(record.attribute_values)
        values["team"] = values.pop("scope")
        return values

    # -- targets --------------------------------------------------------------------------------

    def _target_record(self, target_id: str, team: str | None) -> Any:
        return self._get(self._targets, "target", target_id, team)

    @classmethod
    def _target(cls, record: Any) -> Target:
        return Target.model_validate(cls._values(record))

    def create_target(self, spec: TargetSpec, *, team: str, target_id: str | None = None) -> Target:
        now = self._clock()
        record = self._targets(
            id=target_id or new_id(),
            scope=team,
            created_at=now,
            updated_at=now,
            experiments=0,
            **spec.model_dump(mode="json"),
        )
        record.save(condition=self._targets.id.does_not_exist())
        return self._target(record)

    def get_target(self, target_id: str, *, team: str | None) -> Target:
        return self._target(self._target_record(target_id, team))

    def list_targets(self, limit: int, next_token: str | None, *, team: str) -> Page[Target]:
        records, token = self._page(self._targets.by_scope.query, team, "scope", limit, next_token, ["id"])
        return Page[Target](items=[self._target(r) for r in records], next_token=token)

    def replace_target(self, target_id: str, spec: TargetSpec, *, team: str) -> Target:
        record = self._target_record(target_id, team)
        if spec.type.value != record.type:
            raise InvalidRequest("a target's type cannot change; create a new target instead", field="type")
        t = self._targets
        values = spec.model_dump(mode="json")
        actions = [
            getattr(t, name).set(value) if value is not None else getattr(t, name).remove()
            for name, value in values.items()
        ]
        actions.append(t.updated_at.set(self._clock()))
        try:
            # A run in progress resolved this target at its start; changing it now would make the
            # record of what the run hit disagree with the target it names.
            record.update(actions=actions, condition=t.id.exists() & t.active_run.does_not_exist())
        except UpdateError as err:
            if _is_condition_failure(err):
                raise Conflict("target is in use by a running experiment; wait for the run to end") from err
            raise
        return self._target(record)

    def delete_target(self, target_id: str, *, team: str) -> None:
        self._target_record(target_id, team)
        t = self._targets
        try:
            self._targets(id=target_id).delete(
                condition=(t.experiments.does_not_exist() | (t.experiments == 0))
                & t.active_run.does_not_exist()
            )
        except DeleteError as err:
            if not _is_condition_failure(err):
                raise
            users = [e.id for e in self._experiments.by_target.query(target_id)]
            raise Conflict(f"target is used by experiment(s) {', '.join(users)}; delete them first") from err

    # -- experiments ----------------------------------------------------------------------------

    def _experiment_record(self, experiment_id: str, team: str | None) -> Any:
        return self._get(self._experiments, "experiment", experiment_id, team)

    @classmethod
    def _experiment(cls, record: Any) -> Experiment:
        values = cls._values(record)
        values["duration"] = int(values["duration"])
        return Experiment.model_validate(values)

    def _target_gone(self, target_id: str) -> InvalidRequest:
        return InvalidRequest(f"target {target_id!r} does not exist", field="target")  # experiment writes

    def _target_or(self, target_id: str, team: str, otherwise: Exception) -> Exception:
        try:
            self._target_record(target_id, team)
        except NotFound:
            return self._target_gone(target_id)
        return otherwise

    def _why_not_started(self, result_id: str, experiment: Experiment, team_refused: Exception) -> Exception:
        try:
            self._results.get(result_id, consistent_read=True, attributes_to_get=["id"])
            return RunExists(f"result {result_id} already exists")
        except DoesNotExist:
            pass
        if self._experiment_record(experiment.id, None).active_run:
            return Conflict(f"experiment {experiment.id} is already running")
        if self._target_record(experiment.target, None).active_run:
            return Conflict(
                f"target {experiment.target} is busy with another run (one run per target at a time)"
            )
        return team_refused

    def _why_not_finished(self, result_id: str, locks_moved: Exception) -> Exception:
        record = self._result_record(result_id)
        return RunExists("finalized concurrently") if RunStatus(record.status).is_final else locks_moved

    def create_experiment(self, spec: ExperimentSpec, *, team: str) -> Experiment:
        now = self._clock()
        record = self._experiments(
            id=new_id(),
            scope=team,
            created_at=now,
            updated_at=now,
            status=ExperimentStatus.CREATED.value,
            **spec.model_dump(mode="json"),
        )
        t = self._targets
        # The target must exist (in this team) when the experiment is written, and counts its users
        # so that it cannot be deleted from under them: both in one transaction.
        with self._transaction(lambda: self._target_gone(spec.target)) as tx:
            tx.update(
                t(id=spec.target),
                actions=[t.experiments.add(1)],
                condition=t.id.exists() & (t.scope == team),
            )
            tx.save(record, condition=self._experiments.id.does_not_exist())
        return self._experiment(record)

    def get_experiment(self, experiment_id: str, *, team: str | None) -> Experiment:
        return self._experiment(self._experiment_record(experiment_id, team))

    def active_run_of(self, experiment_id: str, *, team: str | None) -> str | None:
        return self._experiment_record(experiment_id, team).active_run

    def list_experiments(self, limit: int, next_token: str | None, *, team: str) -> Page[Experiment]:
        records, token = self._page(
            self._experiments.by_scope.query, team, "scope", limit, next_token, ["id"]
        )
        return Page[Experiment](items=[self._experiment(r) for r in records], next_token=token)

    def replace_experiment(self, experiment_id: str, spec: ExperimentSpec, *, team: str) -> Experiment:
        record = self._experiment_record(experiment_id, team)
        if record.active_run:
            raise Conflict("experiment is running; stop it or wait for it to end before changing it")
        e, t = self._experiments, self._targets
        values = spec.model_dump(mode="json")
        actions = [getattr(e, name).set(value) for name, value in values.items()]
        actions.append(e.updated_at.set(self._clock()))
        busy = Conflict("experiment started running or was deleted meanwhile")
        same_team_target = t.id.exists() & (t.scope == team)
        if spec.target == record.target:
            with self._transaction(lambda: self._target_or(spec.target, team, busy)) as tx:
                tx.condition_check(t, spec.target, condition=same_team_target)
                tx.update(record, actions=actions, condition=e.id.exists() & e.active_run.does_not_exist())
        else:
            with self._transaction(lambda: self._target_or(spec.target, team, busy)) as tx:
                tx.update(t(id=spec.target), actions=[t.experiments.add(1)], condition=same_team_target)
                tx.update(t(id=record.target), actions=[t.experiments.add(-1)])
                tx.update(record, actions=actions, condition=e.id.exists() & e.active_run.does_not_exist())
        return self.get_experiment(experiment_id, team=team)

    def delete_experiment(self, experiment_id: str, *, team: str) -> None:
        record = self._experiment_record(experiment_id, team)
        e, t = self._experiments, self._targets
        running = Conflict("experiment is running; stop it before deleting it")
        with self._transaction(lambda: running) as tx:
            tx.delete(e(id=experiment_id), condition=e.id.exists() & e.active_run.does_not_exist())
            tx.update(t(id=record.target), actions=[t.experiments.add(-1)])

    # -- runs -----------------------------------------------------------------------------------

    def _result_record(self, result_id: str, team: str | None = None) -> Any:
        return self._get(self._results, "result", result_id, team)

    @classmethod
    def _result(cls, record: Any) -> ExperimentResult:
        values = cls._values(record)
        values["duration"] = int(values["duration"])
        values["timeline"] = [t.attribute_values for t in values.get("timeline") or []]
        values["trigger"] = values.get("trigger") or Trigger.API.value
        return ExperimentResult.model_validate(values)

    def create_run(
        self,
        experiment: Experiment,
        result_id: str | None = None,
        *,
        max_concurrent_runs: int = 5,
        trigger: Trigger = Trigger.API,
        schedule_id: str | None = None,
    ) -> ExperimentResult:
        """Create a `pending` result and lock its experiment and target to it, atomically.

        Fails with Conflict when the experiment or the target already has an active run, so two
        clicks on "run" (or a schedule firing during a manual run, or two experiments on one
        target) never overlap; with RunExists when a run with this id is already recorded.
        """
        now = self._clock()
        record = self._results(
            id=result_id or new_id(),
            scope=experiment.team,
            experiment_id=experiment.id,
            created_at=now,
            status=RunStatus.PENDING.value,
            fault=experiment.type.value,
            target_id=experiment.target,
            selection=experiment.selection,
            duration=experiment.duration,
            parameters=experiment.parameters,
            stop_conditions=experiment.stop_conditions,
            active=ACTIVE,
            trigger=trigger.value,
            schedule_id=schedule_id,
            timeline=[_TimelineMap(at=now, step="created", message=f"run requested ({trigger.value})")],
        )
        e, t, teams = self._experiments, self._targets, self._teams
        lever = self.lever(experiment.team)
        if lever is not None:
            # Said plainly up front; the transaction below still enforces it against a race.
            where = "platform-wide" if lever.team == ALL_TEAMS else f"for team {lever.team}"
            raise Conflict(f"the emergency stop is engaged {where} (by {lever.engaged_by}); no run may start")
        team_refused = LocksMoved("the team may not start another run now")
        try:
            with self._transaction(lambda: self._why_not_started(record.id, experiment, team_refused)) as tx:
                tx.save(record, condition=self._results.id.does_not_exist())
                tx.update(
                    e(id=experiment.id),
                    actions=[e.active_run.set(record.id), e.status.set(RunStatus.PENDING.value)],
                    condition=e.id.exists() & e.active_run.does_not_exist(),
                )
                tx.update(
                    t(id=experiment.target),
                    actions=[t.active_run.set(record.id)],
                    condition=t.id.exists() & t.active_run.does_not_exist(),
                )
                tx.update(
                    teams(team=experiment.team),
                    actions=[teams.running.add(1)],
                    condition=teams.halted_at.does_not_exist()
                    & (teams.running.does_not_exist() | (teams.running < max_concurrent_runs)),
                )
                tx.condition_check(teams, ALL_TEAMS, condition=teams.halted_at.does_not_exist())
        except LocksMoved as err:
            lever = self.lever(experiment.team)
            if lever is not None:
                raise Conflict(f"the emergency stop is engaged ({lever.team}); no run may start") from err
            raise Conflict(
                f"team {experiment.team} already has {max_concurrent_runs} runs in progress (its limit)"
            ) from err
        return self._result(record)

    def record_skipped_run(
        self, experiment: Experiment, result_id: str, reason: str, trigger: Trigger, schedule_id: str | None
    ) -> ExperimentResult:
        """A run that was refused before it could start (locks, emergency stop): final at once.

        It takes no lock and changes nothing else; it exists so that a schedule's refusals are
        visible. Idempotent: a retried Prepare finds the record it wrote.
        """
        now = self._clock()
        record = self._results(
            id=result_id,
            scope=experiment.team,
            experiment_id=experiment.id,
            created_at=now,
            start_time=now,
            end_time=now,
            status=RunStatus.SKIPPED.value,
            success=False,
            error=reason,
            fault=experiment.type.value,
            target_id=experiment.target,
            selection=experiment.selection,
            duration=experiment.duration,
            parameters=experiment.parameters,
            stop_conditions=experiment.stop_conditions,
            trigger=trigger.value,
            schedule_id=schedule_id,
            timeline=[_TimelineMap(at=now, step="skipped", message=reason)],
        )
        try:
            record.save(condition=self._results.id.does_not_exist())
        except PutError as err:
            if not _is_condition_failure(err):
                raise
        return self.get_result(result_id, team=None)

    def schedules(self, experiment_id: str, *, team: str | None) -> tuple[dict[str, dict[str, Any]], int]:
        """An experiment's schedules (id -> schedule) and the version to write them back with."""
        record = self._experiment_record(experiment_id, team)
        return dict(record.schedules or {}), int(record.schedules_version or 0)

    def save_schedules(
        self, experiment_id: str, team: str, schedules: dict[str, dict[str, Any]], version: int
    ) -> None:
        """Write the schedules back if nobody else did since they were read at `version`."""
        e = self._experiments
        unchanged = e.schedules_version == version if version else e.schedules_version.does_not_exist()
        try:
            e(id=experiment_id).update(
                actions=[e.schedules.set(schedules), e.schedules_version.set(version + 1)],
                condition=e.id.exists() & (e.scope == team) & unchanged,
            )
        except UpdateError as err:
            if _is_condition_failure(err):
                raise Conflict(
                    "the experiment's schedules changed meanwhile, or it was deleted; try again"
                ) from err
            raise

    def abandon_run(self, result_id: str, experiment_id: str) -> None:
        """Undo `create_run` when the workflow could not be started: no half-written run remains."""
        record = self._result_record(result_id)
        self.release_run(result_id, experiment_id, record.target_id)
        self._results(id=result_id).delete()
        # The experiment's status goes back to what its latest finished run says.
        latest = next(
            iter(self._results.by_experiment.query(experiment_id, scan_index_forward=False, limit=1)), None
        )
        status = latest.status if latest is not None else ExperimentStatus.CREATED.value
        self._experiments(id=experiment_id).update(actions=[self._experiments.status.set(status)])

    def release_run(self, result_id: str, experiment_id: str, target_id: str) -> None:
        """Free the experiment, the target and the team's run slot (each only if this run holds it)."""
        r, teams = self._results, self._teams
        try:
            record = self._results.get(result_id, consistent_read=True)
        except DoesNotExist:
            record = None
        if record is not None and record.active:
            try:
                with self._transaction(lambda: RunExists("released concurrently")) as tx:
                    tx.update(r(id=result_id), actions=[r.active.remove()], condition=r.active.exists())
                    tx.update(teams(team=record.scope), actions=[teams.running.add(-1)])
            except RunExists:
                pass
        for model, item_id in ((self._experiments, experiment_id), (self._targets, target_id)):
            try:
                model(id=item_id).update(
                    actions=[model.active_run.remove()], condition=model.active_run == result_id
                )
            except UpdateError as err:
                if not _is_condition_failure(err):
                    raise

    def get_result(self, result_id: str, *, team: str | None) -> ExperimentResult:
        return self._result(self._result_record(result_id, team))

    def list_results(self, experiment_id: str, limit: int, next_token: str | None) -> Page[ExperimentResult]:
        records, token = self._page(
            self._results.by_experiment.query, experiment_id, "experiment_id", limit, next_token, ["id"]
        )
        return Page[ExperimentResult](items=[self._result(r) for r in records], next_token=token)

    def update_run(
        self,
        result_id: str,
        *,
        event: tuple[str, str] | None = None,
        status: RunStatus | None = None,
        resources: list[ResourceState] | None = None,
        metrics: dict[str, Any] | None = None,
        start_time: datetime | None = None,
    ) -> None:
        """Change a run's record in one write; timeline events are appended, never rewritten."""
        r = self._results
        actions: list[Any] = []
        if event is not None:
            step, message = event
            actions.append(
                r.timeline.set(
                    r.timeline.append([_TimelineMap(at=self._clock(), step=step, message=message)])
                )
            )
        if status is not None:
            actions.append(r.status.set(status.value))
        if resources is not None:
            actions.append(r.resources.set([res.model_dump(mode="json") for res in resources]))
        if metrics is not None:
            actions.append(r.metrics.set(metrics))
        if start_time is not None:
            actions.append(r.start_time.set(start_time))
        self._results(id=result_id).update(actions=actions, condition=r.id.exists())

    def keep_chart(self, result_id: str, chart: dict[str, Any], *, before: dict[str, Any]) -> None:
        """Keep a finished run's stop-condition chart in its `metrics`, read as `before`.

        Only if `metrics` is still `before`: a recovery that wrote its own figures meanwhile wins,
        and the chart is kept on a later read.
        """
        r = self._results
        final = [s.value for s in RunStatus if s.is_final]
        try:
            self._results(id=result_id).update(
                actions=[r.metrics.set({**before, "stop_conditions": chart})],
                condition=r.status.is_in(*final) & (r.metrics == before),
            )
        except UpdateError as err:
            if not _is_condition_failure(err):
                raise

    def mark_running(self, result_id: str, experiment_id: str) -> None:
        now = self._clock()
        with TransactWrite(connection=self._connection()) as tx:
            tx.update(
                self._results(id=result_id),
                actions=[
                    self._results.status.set(RunStatus.RUNNING.value),
                    self._results.start_time.set(now),
                ],
                condition=self._results.status == RunStatus.PENDING.value,
            )
            tx.update(
                self._experiments(id=experiment_id),
                actions=[self._experiments.status.set(RunStatus.RUNNING.value)],
                condition=self._experiments.active_run == result_id,
            )

    def register_task_token(self, result_id: str, token: str) -> bool:
        """Store the Observe task's token; returns whether a stop was already requested."""
        record = self._results(id=result_id)
        record.update(actions=[self._results.task_token.set(token)], condition=self._results.id.exists())
        return bool(record.stop_requested)

    def request_stop(
        self, result_id: str, reason: str | None = None, kind: StopKind = StopKind.USER
    ) -> str | None:
        """Flag the run to stop; returns the Observe task token if Observe has started.

        `reason` (an alarm, the emergency stop) becomes the run's error; a plain stop has none.
        The first reason given, and the first kind, are kept.
        """
        record = self._results(id=result_id)
        r = self._results
        actions = [r.stop_requested.set(True), r.stop_kind.set(r.stop_kind | kind.value)]
        if reason is not None:
            actions.append(r.stop_reason.set(r.stop_reason | reason))
        try:
            record.update(
                actions=actions,
                condition=self._results.status.is_in(RunStatus.PENDING.value, RunStatus.RUNNING.value),
            )
        except UpdateError as err:
            if _is_condition_failure(err):
                raise Conflict("the run has already ended") from err
            raise
        return record.task_token

    def stop_requested(self, result_id: str) -> bool:
        # Asked before every resource of a run: read the one flag, not the whole (growing) record.
        try:
            record = self._results.get(
                result_id, consistent_read=True, attributes_to_get=[self._results.stop_requested.attr_name]
            )
        except DoesNotExist:
            raise NotFound("result", result_id) from None
        return bool(record.stop_requested)

    def finish_run(
        self,
        result_id: str,
        status: RunStatus,
        error: str | None,
        metrics: dict[str, Any],
        message: str,
        *,
        release: bool,
        failure_kind: FailureKind | None = None,
    ) -> ExperimentResult:
        """Write the run's final state and, when `release`, free its experiment and target.

        A run whose rollback is incomplete ends `failed` but keeps its locks: nobody may start
        another run on resources that may still be faulted until recovery has rolled them back.
        Idempotent: a run already final is left as it is.
        """
        record = self._result_record(result_id)
        if RunStatus(record.status).is_final:
            if release:
                self.release_run(result_id, record.experiment_id, record.target_id)
            return self._result(record)
        now = self._clock()
        r, e = self._results, self._experiments
        result_actions = [
            r.status.set(status.value),
            r.end_time.set(now),
            r.success.set(status is RunStatus.COMPLETED),
            r.metrics.set(metrics),
            r.task_token.remove(),
            r.timeline.set(r.timeline.append([_TimelineMap(at=now, step="finalize", message=message)])),
        ]
        if error is not None:
            result_actions.append(r.error.set(error))
        if failure_kind is not None:
            result_actions.append(r.failure_kind.set(failure_kind.value))
        if record.start_time is None:
            result_actions.append(r.start_time.set(now))
        t, teams = self._targets, self._teams
        if release and record.active:
            # The normal end: the run becomes final and frees its experiment, target and team slot
            # in one transaction, so whoever sees it final can start the next run at once.
            held = LocksMoved("a lock moved on")
            try:
                with self._transaction(lambda: self._why_not_finished(result_id, held)) as tx:
                    tx.update(
                        self._results(id=result_id),
                        actions=[*result_actions, r.active.remove()],
                        condition=(r.status == record.status) & r.active.exists(),
                    )
                    tx.update(
                        e(id=record.experiment_id),
                        actions=[e.status.set(status.value), e.active_run.remove()],
                        condition=e.active_run == result_id,
                    )
                    tx.update(
                        t(id=record.target_id),
                        actions=[t.active_run.remove()],
                        condition=t.active_run == result_id,
                    )
                    tx.update(teams(team=record.scope), actions=[teams.running.add(-1)])
                return self.get_result(result_id, team=None)
            except RunExists:
                return self.get_result(result_id, team=None)  # finalized concurrently: that write stands
            except LocksMoved:
                pass  # released already (an earlier recovery): finish the slow way below
        try:
            with self._transaction(lambda: RunExists("finalized concurrently")) as tx:
                tx.update(
                    self._results(id=result_id), actions=result_actions, condition=r.status == record.status
                )
                tx.update(e(id=record.experiment_id), actions=[e.status.set(status.value)])
        except RunExists:
            return self.get_result(result_id, team=None)
        if release:
            self.release_run(result_id, record.experiment_id, record.target_id)
        return self.get_result(result_id, team=None)

    # -- journal --------------------------------------------------------------------------------

    @staticmethod
    def _entry(record: Any) -> JournalEntry:
        return JournalEntry.model_validate(record.attribute_values)

    def journal_before_change(
        self, result_id: str, resource: Resource, action: str, prior_state: dict[str, Any]
    ) -> JournalEntry:
        now = self._clock()
        record = self._journal(
            result_id=result_id,
            key=f"{resource.id}#{action}",
            resource_id=resource.id,
            kind=resource.kind,
            action=action,
            prior_state=prior_state,
            status=JournalStatus.PENDING.value,
            created_at=now,
            updated_at=now,
        )
        try:
            record.save(condition=self._journal.key.does_not_exist())
        except PutError as err:
            if not _is_condition_failure(err):
                raise
            # A retried injection: the first entry holds the true prior state; keep it.
            record = self._journal.get(result_id, f"{resource.id}#{action}", consistent_read=True)
        return self._entry(record)

    def journal_set_status(self, entry: JournalEntry, status: JournalStatus) -> None:
        self._journal(result_id=entry.result_id, key=entry.key).update(
            actions=[self._journal.status.set(status.value), self._journal.updated_at.set(self._clock())]
        )

    def journal(self, result_id: str) -> list[JournalEntry]:
        return [self._entry(r) for r in self._journal.query(result_id, consistent_read=True)]

    def active_runs(self) -> list[ExperimentResult]:
        """Every run that holds locks: in progress, or ended with faults not yet rolled back."""
        return [self._result(r) for r in self._results.by_active.query(ACTIVE)]

    # -- teams: policy and the emergency stop -----------------------------------------------------

    def policy(self, team: str) -> SafetyPolicy:
        try:
            record = self._teams.get(team, consistent_read=True)
        except DoesNotExist:
            return SafetyPolicy()
        return SafetyPolicy.model_validate(record.policy or {})

    def set_policy(self, team: str, policy: SafetyPolicy) -> SafetyPolicy:
        self._teams(team=team).update(actions=[self._teams.policy.set(policy.model_dump(mode="json"))])
        return policy

    def notifications(self, team: str) -> TeamNotifications:
        from chaosplane.notify import TeamNotifications

        try:
            record = self._teams.get(team, consistent_read=True)
        except DoesNotExist:
            return TeamNotifications()
        return TeamNotifications.model_validate(record.notifications or {})

    def set_notifications(self, team: str, settings: TeamNotifications) -> None:
        t = self._teams
        t(team=team).update(actions=[t.notifications.set(settings.model_dump(mode="json"))])

    @contextmanager
    def changing_notifications(self, team: str) -> Iterator[None]:
        """Hold the team's notifications while changing them; a concurrent change is refused.

        Two admins changing different channels at once would otherwise each write back what they
        read, and one change would be lost without a word. The hold lapses after
        NOTIFICATIONS_HOLD, so a change that crashed half-way never locks the team out for long.
        """
        t, now, token = self._teams, self._clock(), new_id()
        try:
            t(team=team).update(
                actions=[
                    t.notifications_changed_by.set(token),
                    t.notifications_change_until.set(now + NOTIFICATIONS_HOLD),
                ],
                condition=t.notifications_change_until.does_not_exist()
                | (t.notifications_change_until < now),
            )
        except UpdateError as err:
            if _is_condition_failure(err):
                raise Conflict(
                    f"another change to team {team}'s notifications is in progress; try again in a moment"
                ) from err
            raise
        try:
            yield
        finally:
            try:
                t(team=team).update(
                    actions=[t.notifications_changed_by.remove(), t.notifications_change_until.remove()],
                    condition=t.notifications_changed_by == token,
                )
            except UpdateError as err:
                if not _is_condition_failure(err):  # else it lapsed and someone else holds it now
                    raise

    def lever(self, team: str) -> Lever | None:
        """The emergency stop in force for `team`: its own, or the platform-wide one."""
        for scope in (ALL_TEAMS, team):
            try:
                record = self._teams.get(scope, consistent_read=True)
            except DoesNotExist:
                continue
            if record.halted_at is not None:
                return Lever(team=scope, engaged_by=record.halted_by, engaged_at=record.halted_at)
        return None

    def engage_lever(self, scope: str, principal: str) -> Lever:
        now = self._clock()
        t = self._teams
        try:
            t(team=scope).update(
                actions=[t.halted_by.set(principal), t.halted_at.set(now)],
                condition=t.halted_at.does_not_exist(),
            )
        except UpdateError as err:
            if not _is_condition_failure(err):
                raise
        record = self._teams.get(scope, consistent_read=True)
        return Lever(team=scope, engaged_by=record.halted_by, engaged_at=record.halted_at)

    def release_lever(self, scope: str) -> None:
        t = self._teams
        t(team=scope).update(actions=[t.halted_by.remove(), t.halted_at.remove()])

    # -- audit ----------------------------------------------------------------------------------

    def record_audit(self, entry: AuditEntry) -> None:
        at_id = f"{entry.at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{entry.request_id}"
        self._audit(team=entry.team, at_id=at_id, entry=entry.model_dump(mode="json")).save()

    def list_audit(self, limit: int, next_token: str | None, *, team: str) -> Page[AuditEntry]:
        limit = max(1, min(limit, MAX_PAGE))
        start = _decode_token(next_token, {"team", "at_id"}, "team", team) if next_token else None
        records = list(
            self._audit.query(team, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start)
        )
        token = None
        if len(records) > limit:
            last = records[limit - 1]
            token = _encode_token({"team": {"S": last.team}, "at_id": {"S": last.at_id}})
        return Page[AuditEntry](
            items=[AuditEntry.model_validate(r.entry) for r in records[:limit]], next_token=token
        )

    def _connection(self) -> Connection:
        return self._db


class RunJournal:
    """The `Journal` a fault family writes to during one run."""

    def __init__(self, store: Store, result_id: str, run: RunContext | None = None) -> None:
        self._store = store
        self._result_id = result_id
        self._run = run

    @property
    def run(self) -> RunContext:
        if self._run is None:
            raise RuntimeError("this journal was opened without its run's context")
        return self._run

    def before_change(self, resource: Resource, action: str, prior_state: dict[str, Any]) -> JournalEntry:
        return self._store.journal_before_change(self._result_id, resource, action, prior_state)

    def applied(self, entry: JournalEntry) -> None:
        self._store.journal_set_status(entry, JournalStatus.APPLIED)
