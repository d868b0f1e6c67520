"""The DynamoDB items, as module-level pynamodb models, and binding them to the configured tables.

pynamodb takes a table's name at class level, and the tables' names come from settings (the stack
names them). `bind` therefore makes one subclass of each record per Store, with its own `Meta` and
its own index objects (an index belongs to the class it is declared on), so two Stores on two
stacks in one process (the tests, the local runtime) never share a table or a connection. The
attributes are declared once, here, and typed: a record becomes a pydantic model at the edge of
each repository, never further.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, Index
from pynamodb.models import Model

from chaosplane.settings import Settings


class ByScope(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-scope"
        projection = AllProjection()

    scope = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByTarget(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-target"
        projection = AllProjection()

    target = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByExperiment(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-experiment"
        projection = AllProjection()

    experiment_id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class ByActive(GlobalSecondaryIndex[Any]):
    class Meta:
        index_name = "by-active"
        projection = AllProjection()

    active = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute(range_key=True)


class TimelineMap(MapAttribute[str, Any]):
    at = UTCDateTimeAttribute()
    step = UnicodeAttribute()
    message = UnicodeAttribute()


class TargetRecord(Model):
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
    environment = UnicodeAttribute(null=True)  # another account of the team's (tenancy.Environment)
    region = UnicodeAttribute(null=True)
    experiments = NumberAttribute(default=0)  # how many experiments use it: it cannot go from under them
    active_run = UnicodeAttribute(null=True)  # one run per target at a time
    by_scope = ByScope()


class ExperimentRecord(Model):
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
    # A multi-step experiment's graph (models.ExperimentSpec); absent for one fault.
    targets = JSONAttribute(null=True)
    actions = JSONAttribute(null=True)
    probes = JSONAttribute(default=list)  # models.ExperimentSpec.probes
    status = UnicodeAttribute()
    active_run = UnicodeAttribute(null=True)
    # Schedule id -> the schedule as the API shows it; the Scheduler holds the live copy.
    schedules = JSONAttribute(null=True)
    schedules_version = NumberAttribute(null=True)  # optimistic lock for the map above
    by_scope = ByScope()
    by_target = ByTarget()


class ResultRecord(Model):
    id = UnicodeAttribute(hash_key=True)
    scope = UnicodeAttribute()
    experiment_id = UnicodeAttribute()
    experiment_name = UnicodeAttribute(null=True)  # as it was at the start: run events name it
    created_at = UTCDateTimeAttribute()
    status = UnicodeAttribute()
    start_time = UTCDateTimeAttribute(null=True)
    end_time = UTCDateTimeAttribute(null=True)
    success = BooleanAttribute(null=True)
    error = UnicodeAttribute(null=True)
    metrics = JSONAttribute(default=dict)
    resources = JSONAttribute(default=list)
    timeline = ListAttribute(of=TimelineMap, default=list)
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
    plan_id = UnicodeAttribute(null=True)  # the stored plan this run executes (chaosplane/plans.py)
    actions = JSONAttribute(default=dict)  # each action's progress (models.ActionProgress)
    steps = JSONAttribute(null=True)  # a multi-step run's graph as it started; absent for one fault
    probes = JSONAttribute(default=list)  # the experiment's probes as they were at the start
    probe_records = JSONAttribute(default=dict)  # each probe's evaluations (models.ProbeRecord)
    verdict = UnicodeAttribute(null=True)  # set when the run ends
    # Present while the run holds its locks (sparse index: the sweeper and the guard read only these).
    active = UnicodeAttribute(null=True)
    by_experiment = ByExperiment()
    by_active = ByActive()


class JournalRecord(Model):
    result_id = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    resource_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    action = UnicodeAttribute()
    prior_state = JSONAttribute()
    status = UnicodeAttribute()
    fault = UnicodeAttribute(null=True)  # absent in entries written before it was recorded
    step = UnicodeAttribute(null=True)  # the action of a multi-step run that wrote it
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class AuditRecord(Model):
    team = UnicodeAttribute(hash_key=True)
    at_id = UnicodeAttribute(range_key=True)  # ISO time + request id: newest first, never equal
    entry = JSONAttribute()


class TeamRecord(Model):
    team = UnicodeAttribute(hash_key=True)
    policy = JSONAttribute(null=True)
    running = NumberAttribute(default=0)
    halted_by = UnicodeAttribute(null=True)
    halted_at = UTCDateTimeAttribute(null=True)
    # Notification settings (chaosplane/notify.py: TeamNotifications). Never a secret: the
    # webhook URL and routing key live in Secrets Manager; this holds the secret's ARN.
    notifications = JSONAttribute(null=True)
    # Who is changing the notifications (a token) and until when: changes are read-modify-write
    # of this record and of one shared secret, so they take turns (Teams.changing_notifications).
    notifications_changed_by = UnicodeAttribute(null=True)
    notifications_change_until = UTCDateTimeAttribute(null=True)
    # What a platform admin decided for the team (chaosplane/tenancy.py: TeamSettings).
    settings = JSONAttribute(null=True)


class PlanRecord(Model):
    """A plan made by a preview or a Prepare: exactly what a run hits (chaosplane/plans.py)."""

    id = UnicodeAttribute(hash_key=True)
    scope = UnicodeAttribute()
    experiment_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()  # a preview's plan may start a run until then
    # The plan itself, compressed: a plan of 1,000 resources with their tags would not fit in a
    # 400 KB item as JSON, and it is only ever read whole.
    body = BinaryAttribute(legacy_encoding=False)
    ttl = TTLAttribute(null=True)  # DynamoDB deletes it some time after this (never exactly then)


_R = TypeVar("_R", bound=Model)


def _bound(record: type[_R], table: str, settings: Settings) -> type[_R]:
    meta = type(
        "Meta",
        (),
        {"table_name": table, "region": settings.aws_region, "max_pool_connections": settings.connections},
    )
    # Fresh index objects: an index queries the class it was declared on.
    indexes = {name: type(value)() for name, value in vars(record).items() if isinstance(value, Index)}
    return type(record.__name__, (record,), {"Meta": meta, "__module__": __name__, **indexes})


@dataclass(frozen=True)
class Tables:
    targets: type[TargetRecord]
    experiments: type[ExperimentRecord]
    results: type[ResultRecord]
    journal: type[JournalRecord]
    audit: type[AuditRecord]
    teams: type[TeamRecord]
    plans: type[PlanRecord]


def bind(settings: Settings) -> Tables:
    return Tables(
        targets=_bound(TargetRecord, settings.targets_table, settings),
        experiments=_bound(ExperimentRecord, settings.experiments_table, settings),
        results=_bound(ResultRecord, settings.results_table, settings),
        journal=_bound(JournalRecord, settings.journal_table, settings),
        audit=_bound(AuditRecord, settings.audit_table, settings),
        teams=_bound(TeamRecord, settings.teams_table, settings),
        plans=_bound(PlanRecord, settings.plans_table, settings),
    )
