"""The public data model: Target, Experiment, ExperimentResult, and what a run records.

Field names are the API contract (the seed's data model, extended). Models that come from a request
(`*Spec`) forbid unknown fields, so a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    StrictBool,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chaosplane.selection import SELECTION_PATTERN, Selection
from chaosplane.selectors import SELECTOR_PATTERN, SelectorError, parse_selector

MAX_DURATION_SECONDS = 12 * 3600  # as AWS FIS: a longer fault is an outage, not an experiment
MAX_RESOURCE_IDS = 100
MAX_STOP_CONDITIONS = 10
MAX_PROBES = 10

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Description = Annotated[str, StringConstraints(max_length=1024)]
# Patterns, not compiled regular expressions: pydantic enforces them and the OpenAPI document
# declares them, so what the schema allows is what the server accepts. None needs a lookaround,
# which JSON Schema's, pydantic's and Python's engines would read differently.
EC2_INSTANCE_ID = r"^i-[0-9a-f]{8,17}$"
_K8S_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_K8S_POD_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"  # a DNS subdomain
_K8S_POD_NAME_LENGTH = 253
_ECS_NAME = r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:service/)?[A-Za-z0-9/_-]{1,255}$"
_RDS_ID = r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$"
_ECS_TASK_ID = r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task/[A-Za-z0-9_-]+/)?[0-9a-f]{32}$"
_LAMBDA_ID = r"^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?[A-Za-z0-9_-]{1,64}$"
_SUBNET_ID = r"^subnet-[0-9a-f]{8,17}$"
MAX_WEBHOOK_HEADERS = 20
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
_ALARM = r"^(arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:[0-9]{12}:alarm:)?[^\x00-\x1f]{1,255}$"


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
# A host name ends in a letter, so it is never read as an IPv4 address.
_HOSTNAME = r"([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?"
# An IPv4 address with no link-local (169.254/16), multicast (224/4 and up) or 0.x first octet.
_IPV4 = (
    rf"((22[0-3]|2[01][0-9]|1[0-57-9][0-9]|16[0-8]|[1-9][0-9]?)\.{_OCTET}"
    rf"|169\.(25[0-35]|2[0-4][0-9]|1[0-9]{{2}}|[1-9]?[0-9]))\.{_OCTET}\.{_OCTET}"
)
WEBHOOK_URL_PATTERN = rf"^https?://({_HOSTNAME}|{_IPV4})(:[0-9]{{1,5}})?([/?][^#\x00-\x20\x7f]*)?$"
"""What check_webhook_url allows, as a pattern the schema declares (and the server enforces
first): a lower-case http(s) scheme, a host name or an IPv4 address (no IPv6 literal), no
credentials, no fragment, no space or control character."""


def check_webhook_url(value: str) -> str:
    """A URL a tenant gave, that the platform may call: the outbound URL policy (egress.py)."""
    from chaosplane.egress import check_url

    return check_url(value)


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
    ASSERTION = "assertion"  # an assert-alarm-state action found an alarm in a state it does not allow
    ABORTED = "aborted"  # the workflow ended without finishing the run (aborted, timed out); recovered


class StopKind(StrEnum):
    """Who or what asked a run to stop."""

    USER = "user"  # POST /experiments/{id}/stop
    ALARM = "alarm"  # a stop condition went into ALARM
    EMERGENCY = "emergency"  # the emergency stop (POST /safety/halt)
    PROBE = "probe"  # a `during` probe with stop_on_failure failed


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

    url: str = Field(min_length=8, max_length=2048, json_schema_extra={"pattern": WEBHOOK_URL_PATTERN})
    method: WebhookMethod = WebhookMethod.POST

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        check_webhook_url(value)  # the reason, for people
        if not re.fullmatch(WEBHOOK_URL_PATTERN, value):
            raise ValueError("must be an http(s) URL with a host name or an IPv4 address, and no spaces")
        return value


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


ENVIRONMENT_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]$"


class Placed(BaseModel):
    """What may be in another account of the team's: an environment, and one of its Regions."""

    environment: str | None = Field(
        default=None,
        pattern=ENVIRONMENT_PATTERN,
        description="the team's environment (another account, PUT /teams/{team}) it is in; "
        "none: the platform's own account",
    )
    region: str | None = Field(
        default=None,
        pattern=REGION_PATTERN,
        description="one of the environment's Regions (its first if none)",
    )

    @model_validator(mode="after")
    def _region_is_an_environment_s(self) -> Self:
        if self.region is not None and self.environment is None:
            raise ValueError("region needs an environment: in the platform's own account, its own Region")
        return self


class _TargetFields(Placed, _Request):
    """The fields every target has, whatever its type: the shape a target is stored and returned in."""

    name: Name
    description: Description = ""
    type: TargetType

    namespace: str | None = None
    selector: str | None = None
    cluster: str | None = None
    service: str | None = Field(default=None, description="ecs-tasks")
    resource_ids: list[str] | None = None
    webhook: WebhookSpec | None = Field(default=None, description="http-endpoint")


def _matching(pattern: str, message: Callable[[str], str]) -> Any:
    """Enforce `pattern` (which the schema declares) with a message for people, not the pattern.

    `fullmatch`, as JSON Schema reads an anchored pattern: Python's `$` would let a final newline by.
    """

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(message(value))
        return value

    return AfterValidator(check)


def _invalid_selector(value: str) -> str:
    try:
        parse_selector(value)
    except SelectorError as err:
        return f"invalid label selector: {err}"
    return "invalid label selector: separate its parts with spaces only"


Selector = Annotated[
    str,
    Field(
        max_length=1024,
        description="a Kubernetes label selector, e.g. `app=web,env in (dev,staging)`",
        json_schema_extra={"pattern": SELECTOR_PATTERN},
    ),
    _matching(SELECTOR_PATTERN, _invalid_selector),  # the grammar of selectors.py, as one pattern
    AfterValidator(str.strip),
]


def _ids(pattern: str, what: str, max_length: int | None = None) -> Any:
    """A type's resource_ids: each matching its pattern, no duplicates, at most MAX_RESOURCE_IDS."""

    def fit(value: list[str] | None) -> list[str] | None:
        bad = [rid for rid in value or [] if not re.fullmatch(pattern, rid)]
        if bad:
            raise ValueError(f"not {what}: {', '.join(bad)}")
        if value and len(set(value)) != len(value):
            raise ValueError("resource_ids has duplicates")
        return value

    item = Annotated[str, Field(max_length=max_length, json_schema_extra={"pattern": pattern})]
    return Annotated[
        list[item] | None,
        Field(max_length=MAX_RESOURCE_IDS, description=what, json_schema_extra={"uniqueItems": True}),
        AfterValidator(fit),
    ]


def _only(field: str, types: str) -> Any:
    """A field of other target types: absent or null (as a GET returns it), never set."""

    def refuse(value: Any) -> None:
        if value is not None:
            raise ValueError(f"{field} applies to {types} targets only")
        return None

    return Annotated[None, BeforeValidator(refuse)]


_NoNamespace = _only("namespace", "eks-pods")
_NoCluster = _only("cluster", "ecs-tasks and eks-pods")
_NoService = _only("service", "ecs-tasks")
_NoWebhook = _only("webhook", "http-endpoint")
Cluster = Annotated[str, Field(min_length=1, max_length=255, description="the cluster's name")]


_SELECTS: list[JsonValue] = [
    {"required": ["selector"], "properties": {"selector": {"type": "string"}}},
    {"required": ["resource_ids"], "properties": {"resource_ids": {"type": "array", "minItems": 1}}},
]
"""The schema's `anyOf` for a selecting target: a selector, resource ids, or both."""


class _Selecting(_TargetFields):
    """A target that selects among resources of its type: by label selector, by id, or both.

    Either one must be given (an empty target would match every resource of the type: never a
    sane default); the schema says so with `anyOf`, as the validator does.
    """

    model_config = ConfigDict(json_schema_extra={"anyOf": _SELECTS})

    selector: Selector | None = None
    namespace: _NoNamespace = None  # type: ignore[valid-type]
    cluster: _NoCluster = None  # type: ignore[valid-type]
    service: _NoService = None  # type: ignore[valid-type]
    webhook: _NoWebhook = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _selects_something(self) -> Self:
        if not self.selector and not self.resource_ids and not self._selects_by_itself():
            raise ValueError("a target needs a selector, resource_ids, or both")
        return self

    def _selects_by_itself(self) -> bool:
        """Whether another field narrows the target to a set of resources (an ECS service)."""
        return False


class Ec2InstancesTarget(_Selecting):
    type: Literal[TargetType.EC2_INSTANCES]
    resource_ids: _ids(EC2_INSTANCE_ID, "EC2 instance ids") = None  # type: ignore[valid-type]


class RdsInstancesTarget(_Selecting):
    type: Literal[TargetType.RDS_INSTANCES]
    resource_ids: _ids(_RDS_ID, "RDS DB instance identifiers") = None  # type: ignore[valid-type]


class RdsClustersTarget(_Selecting):
    type: Literal[TargetType.RDS_CLUSTERS]
    resource_ids: _ids(_RDS_ID, "RDS DB cluster identifiers") = None  # type: ignore[valid-type]


class LambdaFunctionsTarget(_Selecting):
    type: Literal[TargetType.LAMBDA_FUNCTIONS]
    resource_ids: _ids(_LAMBDA_ID, "Lambda function names or ARNs") = None  # type: ignore[valid-type]


class SubnetsTarget(_Selecting):
    type: Literal[TargetType.SUBNETS]
    resource_ids: _ids(_SUBNET_ID, "subnet ids") = None  # type: ignore[valid-type]


class EksPodsTarget(_Selecting):
    type: Literal[TargetType.EKS_PODS]
    namespace: Annotated[
        str,
        Field(description="a Kubernetes namespace", json_schema_extra={"pattern": _K8S_NAME}),
        _matching(_K8S_NAME, lambda _: "an eks-pods target needs a valid Kubernetes namespace"),
    ]
    cluster: Cluster
    resource_ids: _ids(_K8S_POD_NAME, "Kubernetes pod names", _K8S_POD_NAME_LENGTH) = None  # type: ignore[valid-type]


class EcsTasksTarget(_Selecting):
    """A service's tasks, or a cluster's by selector or id: `service` alone selects every task of
    the service (as FIS's `aws:ecs:task` target with cluster and service parameters)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [*_SELECTS, {"required": ["service"], "properties": {"service": {"type": "string"}}}]
        }
    )

    type: Literal[TargetType.ECS_TASKS]
    cluster: Cluster
    service: (
        Annotated[
            str,
            Field(description="only this ECS service's tasks", json_schema_extra={"pattern": _ECS_NAME}),
            _matching(_ECS_NAME, lambda _: "service must be an ECS service name or ARN"),
        ]
        | None
    ) = None
    resource_ids: _ids(_ECS_TASK_ID, "ECS task ids or ARNs") = None  # type: ignore[valid-type]

    def _selects_by_itself(self) -> bool:
        return bool(self.service)


class HttpEndpointTarget(_TargetFields):
    """The endpoint is the one resource: there is nothing to select among."""

    type: Literal[TargetType.HTTP_ENDPOINT]
    webhook: WebhookSpec
    environment: _only("environment", "AWS (non http-endpoint)") = None  # type: ignore[valid-type]
    region: _only("region", "AWS (non http-endpoint)") = None  # type: ignore[valid-type]
    namespace: _NoNamespace = None  # type: ignore[valid-type]
    selector: _only("selector", "selecting (non http-endpoint)") = None  # type: ignore[valid-type]
    cluster: _NoCluster = None  # type: ignore[valid-type]
    service: _NoService = None  # type: ignore[valid-type]
    resource_ids: _only("resource_ids", "selecting (non http-endpoint)") = None  # type: ignore[valid-type]


TargetSpec = Annotated[
    Ec2InstancesTarget
    | EksPodsTarget
    | RdsInstancesTarget
    | RdsClustersTarget
    | EcsTasksTarget
    | LambdaFunctionsTarget
    | SubnetsTarget
    | HttpEndpointTarget,
    Discriminator("type"),
]
"""What a client sends to create or replace a target: one variant per type, chosen by `type`, so
the OpenAPI document shows each type's fields and rules."""

TARGET_SPEC: TypeAdapter[TargetSpec] = TypeAdapter(TargetSpec)
TARGET_FIELDS = frozenset(_TargetFields.model_fields)
"""The fields of a target that a client sets (every variant has them all)."""


class Target(_TargetFields):
    model_config = ConfigDict(extra="ignore")

    id: str
    team: str
    created_at: datetime
    updated_at: datetime


UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _uuid_text(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(UUID_PATTERN, value):
        raise ValueError("target must be a target id (UUID)")
    return value


TargetId = Annotated[
    str,
    Field(
        description="id of the target to hit", json_schema_extra={"format": "uuid", "pattern": UUID_PATTERN}
    ),
    BeforeValidator(_uuid_text),
    AfterValidator(lambda value: str(uuid.UUID(value))),  # one spelling of each id
]
SelectionText = Annotated[
    str,
    Field(
        description="ALL, COUNT(n) or PERCENT(n), in any case",
        json_schema_extra={"pattern": SELECTION_PATTERN},  # Selection.parse holds to it, with its message
    ),
    AfterValidator(lambda value: str(Selection.parse(value))),
]
Alarm = Annotated[
    str,
    Field(json_schema_extra={"pattern": _ALARM}),
    _matching(_ALARM, lambda value: f"not a CloudWatch alarm name or ARN: {value[:64]!r}"),
]


def _no_duplicates(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("stop_conditions has duplicates")
    return value


StopConditions = Annotated[
    list[Alarm],
    Field(
        max_length=MAX_STOP_CONDITIONS,
        description="CloudWatch alarm names or ARNs",
        json_schema_extra={"uniqueItems": True},
    ),
    AfterValidator(_no_duplicates),
]
"""An experiment's stop conditions (one fault's or many steps')."""


class ExperimentFields(_Request):
    """The fields every experiment has, whatever its fault (faults/specs.py adds `type` and
    `parameters` per fault, for the API's request body)."""

    name: Name
    description: Description = ""
    target: TargetId
    duration: StrictInt = Field(ge=1, le=MAX_DURATION_SECONDS, description="seconds the fault is held")
    selection: SelectionText = "ALL"
    stop_conditions: StopConditions = Field(default_factory=list)
    allow_irreversible: bool = Field(
        default=False, description="required for faults that cannot be rolled back (ec2-terminate)"
    )


class ExperimentSpec(ExperimentFields):
    """An experiment as the client, the CLI and the store hold it: any fault, its parameters as a
    dict checked against the fault's parameters model (the API's body is per fault: faults/specs.py)."""

    type: FaultType
    parameters: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("parameters")
    @classmethod
    def _parameters_fit_fault(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # The catalogue imports this module for FaultType; it imports no family and no SDK.
        from chaosplane.faults import catalogue

        fault = info.data.get("type")
        return value if fault is None else catalogue.validate_parameters(fault, value)

    # A multi-step experiment's graph (chaosplane.graph checks it: the API's body is
    # graph.MultiStepExperiment). Its `type`, `target`, `selection` and `parameters` are then those
    # of its first fault action, which lists, events and metrics show.
    targets: dict[str, dict[str, Any]] | None = Field(
        default=None, description="a multi-step experiment's named targets; none for one fault"
    )
    actions: dict[str, dict[str, Any]] | None = Field(
        default=None, description="a multi-step experiment's named actions; none for one fault"
    )

    probes: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_PROBES,
        description="steady-state probes (chaosplane.probes.Probe: the API's body types them)",
    )

    @field_validator("probes")
    @classmethod
    def _probes_are_probes(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from chaosplane.probes import canonical_probes  # it imports this module

        return canonical_probes(value)

    @property
    def target_ids(self) -> list[str]:
        """Every target the experiment acts on, each once: a run locks them all."""
        return _target_ids(self.target, self.targets)

    @property
    def halting_alarms(self) -> list[str]:
        """The alarms whose ALARM halts a run: the stop conditions, and the alarm probes that stop
        on failure while faults are held (halted through the same alarm event)."""
        from chaosplane.probes import halting_alarms

        return list(dict.fromkeys([*self.stop_conditions, *halting_alarms(self.probes)]))

    def request_body(self) -> dict[str, Any]:
        """The experiment as the API's body takes it (to PUT it back): one fault's fields, or the
        steps' (`type`, `target` and the rest are then derived, not sent)."""
        values = self.model_dump(mode="json", include=set(ExperimentSpec.model_fields))
        if self.actions is None:
            return {k: v for k, v in values.items() if k not in ("targets", "actions")}
        steps = (
            "name",
            "description",
            "targets",
            "actions",
            "duration",
            "stop_conditions",
            "probes",
            "allow_irreversible",
        )
        return {k: values[k] for k in steps}

    def frozen_steps(self) -> dict[str, Any] | None:
        """What a run of it keeps of its graph (ExperimentResult.steps); None for one fault."""
        if self.actions is None:
            return None
        return {"targets": self.targets or {}, "actions": self.actions, "duration": self.duration}


def _target_ids(primary: str, steps: dict[str, dict[str, Any]] | None) -> list[str]:
    return list(dict.fromkeys([primary, *(step["target"] for step in (steps or {}).values())]))


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
    step: str | None = None
    """The action of a multi-step run that hit it; None: the run's one fault."""


class ActionStatus(StrEnum):
    PENDING = "pending"  # not started
    IN_FORCE = "in_force"  # injected, holding
    COMPLETED = "completed"  # held its duration and rolled back, or done when injected
    STOPPED = "stopped"  # in force when the run was stopped or halted, then rolled back
    CANCELLED = "cancelled"  # never started: the run ended first
    INTERRUPTED = "interrupted"  # its injection was cut short (a stop, a halt, a failure), then undone


class ActionProgress(BaseModel):
    """What has happened to one action so far."""

    status: ActionStatus = ActionStatus.PENDING
    start_time: datetime | None = None
    in_force_at: datetime | None = None  # when its injection finished: its duration counts from here
    end_time: datetime | None = None
    resources: list[str] = Field(default_factory=list, description="the ids of what it hit")

    @model_validator(mode="after")
    def _in_force_since(self) -> Self:
        if self.status == ActionStatus.IN_FORCE and self.in_force_at is None:
            raise ValueError("an action in force needs in_force_at")
        return self


STOP_STEP = "stop"  # the timeline line a stop request writes, the moment a halt starts from


class TimelineEvent(BaseModel):
    at: datetime
    step: str
    message: str


MAX_KEPT_EVALUATIONS = 200  # per probe and run: the result item stays small


class Phase(StrEnum):
    """When in a run a probe is asked."""

    BEFORE = "before"
    DURING = "during"
    AFTER = "after"


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


class Evaluation(BaseModel):
    at: datetime
    phase: Phase
    ok: bool
    value: float | None = None
    detail: str = ""


class ProbeRecord(BaseModel):
    """A probe's evaluations in one run, and whether it failed (and when)."""

    name: str
    evaluations: list[Evaluation] = Field(default_factory=list)
    failed_in: Phase | None = None
    failed_at: datetime | None = None

    def streak(self, phase: Phase) -> int:
        """Failed evaluations in a row, the latest last, in `phase`."""
        count = 0
        for evaluation in reversed([e for e in self.evaluations if e.phase is phase]):
            if evaluation.ok:
                break
            count += 1
        return count

    def passed_in(self, phase: Phase) -> bool:
        """Its latest evaluation in `phase` passed."""
        latest = [e for e in self.evaluations if e.phase is phase][-1:]
        return bool(latest) and latest[0].ok

    def last_in(self, phase: Phase) -> Evaluation | None:
        return next((e for e in reversed(self.evaluations) if e.phase is phase), None)


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
    actions: dict[str, ActionProgress] = Field(default_factory=dict)
    """Each action's progress (a single-fault run has one, named after its fault)."""
    steps: dict[str, Any] | None = None
    """A multi-step run's graph as it was at the start (targets, actions, duration); None: one fault."""
    probes: list[dict[str, Any]] = Field(default_factory=list)
    """The experiment's probes as they were at the start (chaosplane.probes.Probe)."""
    probe_records: dict[str, ProbeRecord] = Field(default_factory=dict)
    """Each probe's evaluations so far, by name."""
    verdict: Verdict | None = None
    """Did the system under test hold? Set when the run ends; `success` is `verdict == passed`."""
    created_at: datetime

    @property
    def target_ids(self) -> list[str]:
        """Every target the run holds a lock on."""
        return _target_ids(self.target_id, (self.steps or {}).get("targets"))


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
    step: str | None = None
    """The action of a multi-step run that wrote it, whose own rollback (at the end of its
    duration) undoes it; None: the run's one fault."""
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
    """One mutating or denied request, or one naming a resource the team has not: who, which team,
    when, what, on what, and how it ended."""

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
    reason: str | None = Field(
        default=None, description="why it was denied, rejected or failed: the answer's message"
    )


MAX_SCHEDULES = 10  # per experiment
_CRON_FIELD = r"[0-9A-Za-z*?,/#-]+"
SCHEDULE_PATTERN = (
    rf"^(cron\({_CRON_FIELD}( {_CRON_FIELD}){{5}}\)"
    r"|rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]{1,4}) (minutes|hours|days))\)"
    r"|at\([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\))$"
)
"""The expressions' syntax, which the schema declares; the ranges of cron's fields, its day rule
and at()'s calendar are checked by schedules.parse, as EventBridge Scheduler does."""


class ScheduleSpec(_Request):
    """When an experiment runs by itself: an EventBridge Scheduler schedule."""

    expression: str = Field(
        max_length=256,
        description="cron(m h dom mon dow year), rate(n unit) or at(yyyy-mm-ddThh:mm:ss)",
        json_schema_extra={"pattern": SCHEDULE_PATTERN},
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
        if not re.fullmatch(SCHEDULE_PATTERN, value):  # what parse allows besides: spaces around, 0-padding
            raise ValueError("write the expression without spaces around it or leading zeros in rate()")
        return value

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
