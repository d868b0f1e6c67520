"""The public data model: Target, Experiment, ExperimentResult, and what a run records.

Field names are the API contract (the seed's data model, extended). Models that come from a request
(`*Spec`) forbid unknown fields, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
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
_ALARM = re.compile(r"^(arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:)?[^\x00-\x1f]{1,255}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class TargetType(StrEnum):
    EC2_INSTANCES = "ec2-instances"
    EKS_PODS = "eks-pods"


class FaultType(StrEnum):
    EC2_STOP = "ec2-stop"
    EC2_REBOOT = "ec2-reboot"
    POD_DELETE = "pod-delete"
    POD_NETWORK_LATENCY = "pod-network-latency"
    POD_NETWORK_LOSS = "pod-network-loss"
    POD_CPU_STRESS = "pod-cpu-stress"
    POD_MEMORY_STRESS = "pod-memory-stress"


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.FAILED)


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


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TargetSpec(_Request):
    """What a client sends to create or replace a target."""

    name: Name
    description: Description = ""
    type: TargetType
    namespace: str | None = Field(default=None, max_length=63, validate_default=True)
    selector: str | None = Field(default=None, max_length=1024)
    cluster: str | None = Field(default=None, max_length=100, validate_default=True)
    resource_ids: list[str] | None = Field(default=None, max_length=MAX_RESOURCE_IDS)

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
        if kind is TargetType.EKS_PODS and not value:
            raise ValueError("an eks-pods target needs a cluster")
        if kind is not None and kind is not TargetType.EKS_PODS and value is not None:
            raise ValueError(f"cluster applies to eks-pods targets only, not {kind.value}")
        return value

    @field_validator("resource_ids")
    @classmethod
    def _ids_fit_type(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if not value:
            return value
        if info.data.get("type") is TargetType.EC2_INSTANCES:
            bad = [rid for rid in value if not _EC2_INSTANCE_ID.match(rid)]
            if bad:
                raise ValueError(f"not EC2 instance ids: {', '.join(bad)}")
        if info.data.get("type") is TargetType.EKS_PODS:
            bad = [rid for rid in value if not _K8S_POD_NAME.match(rid)]
            if bad:
                raise ValueError(f"not Kubernetes pod names: {', '.join(bad)}")
        if len(set(value)) != len(value):
            raise ValueError("resource_ids has duplicates")
        return value

    @model_validator(mode="after")
    def _selects_something(self) -> TargetSpec:
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
        from chaosplane.faults import catalogue  # the catalogue imports these models

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


class TimelineEvent(BaseModel):
    at: datetime
    step: str
    message: str


class ExperimentResult(BaseModel):
    id: str
    team: str
    experiment_id: str
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


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_token: str | None = None
