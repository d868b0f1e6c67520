"""The public data model: Target, Experiment, ExperimentResult, and what a run records.

Field names are the API contract (the seed's data model, extended). Models that come from a request
(`*Spec`) forbid unknown fields, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chaosplane.selection import Selection
from chaosplane.selectors import SelectorError, parse_selector

MAX_DURATION_SECONDS = 12 * 3600  # as AWS FIS: a longer fault is an outage, not an experiment
MAX_RESOURCE_IDS = 100
MAX_STOP_CONDITIONS = 10

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Description = Annotated[str, StringConstraints(max_length=1024)]
_EC2_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_K8S_POD_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ECS_NAME = re.compile(r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:service/)?[A-Za-z0-9/_-]{1,255}$")
_RESOURCE_ID_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "ec2-instances": (_EC2_INSTANCE_ID, "EC2 instance ids"),
    "rds-instances": (re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$"), "RDS DB instance identifiers"),
    "rds-clusters": (re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$"), "RDS DB cluster identifiers"),
    "ecs-tasks": (
        re.compile(r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task/[A-Za-z0-9_-]+/)?[0-9a-f]{32}$"),
        "ECS task ids or ARNs",
    ),
    "lambda-functions": (
        re.compile(r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}$"),
        "Lambda function names or ARNs",
    ),
    "subnets": (re.compile(r"^subnet-[0-9a-f]{8,17}$"), "subnet ids"),
    "eks-pods": (_K8S_POD_NAME, "Kubernetes pod names"),
}
MAX_WEBHOOK_HEADERS = 20
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
_ALARM = re.compile(r"^(arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:)?[^\x00-\x1f]{1,255}$")


def check_webhook_url(value: str) -> str:
    """An absolute http(s) URL with a host; no credentials in it, no fragment, no link-local host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials; put them in headers (stored as a secret)")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return value
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        raise ValueError("must not point at a link-local, multicast or unspecified address")
    return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class TargetType(StrEnum):
    EC2_INSTANCES = "ec2-instances"
    EKS_PODS = "eks-pods"
    # Cloud and external targets (faults/rds.py, ecs.py, lambdas.py, network.py, http.py).
    RDS_INSTANCES = "rds-instances"
    RDS_CLUSTERS = "rds-clusters"
    ECS_TASKS = "ecs-tasks"
    LAMBDA_FUNCTIONS = "lambda-functions"
    SUBNETS = "subnets"
    HTTP_ENDPOINT = "http-endpoint"


class FaultType(StrEnum):
    EC2_STOP = "ec2-stop"
    EC2_REBOOT = "ec2-reboot"
    POD_DELETE = "pod-delete"
    POD_NETWORK_LATENCY = "pod-network-latency"
    POD_NETWORK_LOSS = "pod-network-loss"
    POD_CPU_STRESS = "pod-cpu-stress"
    POD_MEMORY_STRESS = "pod-memory-stress"
    # Cloud and external faults.
    EC2_TERMINATE = "ec2-terminate"
    RDS_REBOOT = "rds-reboot"
    RDS_FAILOVER = "rds-failover"
    ECS_STOP_TASK = "ecs-stop-task"
    LAMBDA_THROTTLE = "lambda-throttle"
    SSM_CPU_STRESS = "ssm-cpu-stress"
    SSM_MEMORY_STRESS = "ssm-memory-stress"
    NETWORK_BLACKHOLE = "network-blackhole"
    HTTP_WEBHOOK = "http-webhook"


_CLUSTERED = frozenset({TargetType.EKS_PODS, TargetType.ECS_TASKS})


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    SKIPPED = "skipped"  # a scheduled (or console) run that was refused before it started

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.SKIPPED)


class Trigger(StrEnum):
    """What started a run."""

    API = "api"
    SCHEDULE = "schedule"
    CONSOLE = "console"  # the state machine started by hand (Step Functions console, CLI, SDK)


class FailureKind(StrEnum):
    """Why a `failed` run failed, for machines (pipelines, exit codes); `error` says it for people."""

    PREFLIGHT = "preflight"  # a stop condition in ALARM (or without data), or missing RBAC, at the start
    POLICY = "policy"  # the plan was over the team's blast-radius policy
    NOTHING_TO_HIT = "nothing-to-hit"  # no eligible resource matched (or all changed before injection)
    PREPARE = "prepare"  # any other error before anything was touched
    INJECTION = "injection"  # injecting (or holding) the fault failed; whatever was injected was rolled back
    ROLLBACK = "rollback"  # the rollback did not finish: resources may still be faulted
    ABORTED = "aborted"  # the workflow ended without finishing the run (aborted, timed out); recovered


class StopKind(StrEnum):
    """Who or what asked a run to stop."""

    USER = "user"  # POST /experiments/{id}/stop
    ALARM = "alarm"  # a stop condition went into ALARM
    EMERGENCY = "emergency"  # the emergency stop (POST /safety/halt)


class ExperimentStatus(StrEnum):
    """`created` until the first run, then the status of the latest run."""

    CREATED = "created"
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    SKIPPED = "skipped"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookMethod(StrEnum):
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class WebhookCall(_Request):
    """One URL the platform calls (with a signed JSON body) to inject or to roll back."""

    url: str = Field(min_length=8, max_length=2048)
    method: WebhookMethod = WebhookMethod.POST

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return check_webhook_url(value)


class WebhookSpec(_Request):
    """An http-endpoint target's webhook pair.

    `headers` and `signing_secret` are write-only: they go to Secrets Manager, never to DynamoDB,
    never into a response or a log. On replace, leaving them out keeps the stored ones.
    `header_names` and `secret_version` are set by the platform (ignored on input).
    """

    inject: WebhookCall
    rollback: WebhookCall
    timeout_seconds: float = Field(default=5.0, ge=0.1, le=30, description="per attempt (read timeout)")
    retries: StrictInt = Field(default=2, ge=0, le=5, description="extra attempts after a retryable failure")
    headers: dict[str, str] | None = Field(
        default=None, exclude=True, max_length=MAX_WEBHOOK_HEADERS, json_schema_extra={"writeOnly": True}
    )
    signing_secret: str | None = Field(
        default=None, exclude=True, min_length=32, max_length=512, json_schema_extra={"writeOnly": True}
    )
    header_names: list[str] = Field(default_factory=list, description="set by the platform")
    secret_version: str | None = Field(default=None, description="set by the platform")

    @field_validator("headers")
    @classmethod
    def _headers_are_sane(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"not a valid HTTP header name: {name[:64]!r}")
            if name.lower() in _RESERVED_HEADERS or name.lower().startswith("x-chaosplane-"):
                raise ValueError(f"header {name} is set by the platform")
            if any(ch in text for ch in "\r\n\x00") or len(text) > 4096:
                raise ValueError(f"header {name}: value must be one line of at most 4096 characters")
        return value


class TargetSpec(_Request):
    """What a client sends to create or replace a target."""

    name: Name
    description: Description = ""
    type: TargetType
    namespace: str | None = Field(default=None, max_length=63, validate_default=True)
    selector: str | None = Field(default=None, max_length=1024)
    cluster: str | None = Field(default=None, max_length=255, validate_default=True)
    service: str | None = Field(default=None, max_length=255, validate_default=True, description="ecs-tasks")
    resource_ids: list[str] | None = Field(default=None, max_length=MAX_RESOURCE_IDS)
    webhook: WebhookSpec | None = Field(default=None, validate_default=True, description="http-endpoint")

    @field_validator("selector")
    @classmethod
    def _selector_parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_selector(value)
        except SelectorError as err:
            raise ValueError(f"invalid label selector: {err}") from err
        return value.strip()

    @field_validator("namespace")
    @classmethod
    def _namespace_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") is TargetType.EKS_PODS and (not value or not _K8S_NAME.match(value)):
            raise ValueError("an eks-pods target needs a valid Kubernetes namespace")
        return value

    @field_validator("cluster")
    @classmethod
    def _cluster_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind in _CLUSTERED and not value:
            raise ValueError(f"an {kind.value} target needs a cluster")
        if kind is not None and kind not in _CLUSTERED and value is not None:
            raise ValueError(f"cluster applies to ecs-tasks and eks-pods targets only, not {kind.value}")
        return value

    @field_validator("service")
    @classmethod
    def _service_fits_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if value is not None and kind is not None and kind is not TargetType.ECS_TASKS:
            raise ValueError(f"service applies to ecs-tasks targets only, not {kind.value}")
        if value is not None and not _ECS_NAME.match(value):
            raise ValueError("service must be an ECS service name or ARN")
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook_fits_type(cls, value: WebhookSpec | None, info: ValidationInfo) -> WebhookSpec | None:
        kind = info.data.get("type")
        if kind is TargetType.HTTP_ENDPOINT and value is None:
            raise ValueError("an http-endpoint target needs a webhook (inject and rollback)")
        if kind is not None and kind is not TargetType.HTTP_ENDPOINT and value is not None:
            raise ValueError(f"webhook applies to http-endpoint targets only, not {kind.value}")
        return value

    @field_validator("resource_ids")
    @classmethod
    def _ids_fit_type(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if not value:
            return value
        kind = info.data.get("type")
        if kind in _RESOURCE_ID_PATTERNS:
            pattern, what = _RESOURCE_ID_PATTERNS[kind]
            bad = [rid for rid in value if not pattern.match(rid)]
            if bad:
                raise ValueError(f"not {what}: {', '.join(bad)}")
        if len(set(value)) != len(value):
            raise ValueError("resource_ids has duplicates")
        return value

    @model_validator(mode="after")
    def _selects_something(self) -> TargetSpec:
        if self.type is TargetType.HTTP_ENDPOINT:
            # The endpoint is the one resource: there is nothing to select among.
            if self.selector or self.resource_ids:
                raise ValueError("an http-endpoint target takes no selector or resource_ids")
            return self
        if not self.selector and not self.resource_ids:
            # An empty target would match every resource of the type: never a sane default.
            raise ValueError("a target needs a selector, resource_ids, or both")
        return self


class Target(TargetSpec):
    model_config = ConfigDict(extra="ignore")

    id: str
    team: str
    created_at: datetime
    updated_at: datetime


class ExperimentSpec(_Request):
    """What a client sends to create or replace an experiment."""

    name: Name
    description: Description = ""
    type: FaultType
    target: str = Field(description="id of the target to hit")
    parameters: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    duration: StrictInt = Field(ge=1, le=MAX_DURATION_SECONDS, description="seconds the fault is held")
    selection: str = Field(default="ALL", description="ALL, COUNT(n) or PERCENT(n)")
    stop_conditions: list[str] = Field(default_factory=list, max_length=MAX_STOP_CONDITIONS)
    allow_irreversible: bool = Field(
        default=False, description="required for faults that cannot be rolled back (ec2-terminate)"
    )

    @field_validator("target")
    @classmethod
    def _target_is_uuid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError as err:
            raise ValueError("target must be a target id (UUID)") from err

    @field_validator("selection")
    @classmethod
    def _selection_parses(cls, value: str) -> str:
        return str(Selection.parse(value))

    @field_validator("stop_conditions")
    @classmethod
    def _alarms(cls, value: list[str]) -> list[str]:
        bad = [alarm for alarm in value if not _ALARM.match(alarm)]
        if bad:
            raise ValueError(f"not CloudWatch alarm names or ARNs: {bad}")
        if len(set(value)) != len(value):
            raise ValueError("stop_conditions has duplicates")
        return value

    @field_validator("parameters")
    @classmethod
    def _parameters_fit_fault(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # The catalogue imports this module for FaultType; it imports no family and no SDK.
        from chaosplane.faults import catalogue

        fault = info.data.get("type")
        return value if fault is None else catalogue.validate_parameters(fault, value)


class Experiment(ExperimentSpec):
    model_config = ConfigDict(extra="ignore")

    id: str
    team: str
    status: ExperimentStatus = ExperimentStatus.CREATED
    created_at: datetime
    updated_at: datetime


class ResourceState(BaseModel):
    """One resource a run hit: what it was before, after injection, and after rollback."""

    id: str
    kind: str
    before: str
    after: str | None = None
    restored: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


STOP_STEP = "stop"  # the timeline line a stop request writes, the moment a halt starts from


class TimelineEvent(BaseModel):
    at: datetime
    step: str
    message: str


class ExperimentResult(BaseModel):
    id: str
    team: str
    experiment_id: str
    experiment_name: str | None = None  # the experiment's name when the run started
    status: RunStatus
    start_time: datetime | None = None
    end_time: datetime | None = None
    success: bool | None = None
    error: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    resources: list[ResourceState] = Field(default_factory=list)
    timeline: list[TimelineEvent] = Field(default_factory=list)
    # What the run was asked to do, frozen at start so later edits of the experiment cannot change it.
    fault: FaultType
    target_id: str
    selection: str
    duration: int
    parameters: dict[str, Any] = Field(default_factory=dict)
    stop_requested: bool = False
    stop_reason: str | None = None
    stop_kind: StopKind | None = None  # set when a stop was requested (the first request's kind)
    failure_kind: FailureKind | None = None  # set when the run ended `failed`
    stop_conditions: list[str] = Field(default_factory=list)
    trigger: Trigger = Trigger.API
    schedule_id: str | None = None
    plan_id: str | None = None  # the stored plan the run executes (POST /experiments/{id}/preview)
    created_at: datetime


class JournalStatus(StrEnum):
    PENDING = "pending"  # written before the change; the change may or may not have happened
    APPLIED = "applied"  # the change is known to have happened
    ROLLED_BACK = "rolled_back"


class JournalEntry(BaseModel):
    """A durable note written *before* a resource is changed: enough to undo it with nothing else."""

    result_id: str
    key: str
    resource_id: str
    kind: str
    action: str
    prior_state: dict[str, Any]
    status: JournalStatus = JournalStatus.PENDING
    fault: FaultType | None = None
    """The fault that wrote it, whose rollback undoes it (None in entries written before it was
    recorded: those belong to their run's fault)."""
    created_at: datetime
    updated_at: datetime


class Lever(BaseModel):
    """An engaged emergency stop: for one team, or for every team ("*")."""

    team: str
    engaged_by: str
    engaged_at: datetime


class AuditOutcome(StrEnum):
    ALLOWED = "allowed"  # the request did what it asked
    DENIED = "denied"  # the caller's role may not do this
    REJECTED = "rejected"  # invalid, not found, or in conflict: nothing changed
    FAILED = "failed"  # a server fault


class AuditEntry(BaseModel):
    """One mutating (or denied) request: who, which team, when, what, on what, and how it ended."""

    at: datetime
    team: str
    principal: str
    role: str
    method: str
    route: str
    path: str
    resource_id: str | None = None
    status: int
    outcome: AuditOutcome
    request_id: str


MAX_SCHEDULES = 10  # per experiment


class ScheduleSpec(_Request):
    """When an experiment runs by itself: an EventBridge Scheduler schedule."""

    expression: str = Field(
        max_length=256, description="cron(m h dom mon dow year), rate(n unit) or at(yyyy-mm-ddThh:mm:ss)"
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone of the expression")
    start_date: datetime | None = None
    end_date: datetime | None = None
    enabled: StrictBool = True
    description: Description = ""

    @field_validator("start_date", "end_date")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone offset, e.g. 2026-12-01T09:00:00Z")
        return value

    # The translation to APScheduler lives in chaosplane.schedules; its ExpressionError is a
    # ValueError, so each problem is reported on the field it is about.
    @field_validator("expression")
    @classmethod
    def _valid_expression(cls, value: str) -> str:
        from chaosplane.schedules import parse

        parse(value)  # the syntax: no time zone makes a wrong expression right
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from chaosplane.schedules import time_zone

        time_zone(value)
        return value

    @field_validator("end_date")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start_date")
        if value is not None and start is not None and value <= start:
            raise ValueError("end_date must be after start_date")
        return value


class Schedule(ScheduleSpec):
    model_config = ConfigDict(extra="ignore")

    id: str
    experiment_id: str
    team: str
    created_at: datetime
    updated_at: datetime
    next_runs: list[datetime] = Field(default_factory=list, description="the next fire times (UTC)")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_token: str | None = None
