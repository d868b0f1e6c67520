"""AWS FIS experiment templates, imported as Chaosplane targets and a multi-step experiment, and
exported back: a pure translation, with no AWS call (docs/fis.md has the tables).

`import_template` takes what `aws fis get-experiment-template` returns (the whole response or the
object under `experimentTemplate`) or a CreateExperimentTemplate input, and answers a `FisImport`:
the target bodies to create (keyed by FIS target name) and the experiment, whose step targets name
those bodies until `FisImport.experiment` binds them to the ids the API created. Anything that does
not map raises one `FisImportError` that lists every problem, each with its field path, so nothing
is created from half a template.

`export_template` writes a CreateExperimentTemplate input from a stored experiment and its targets;
what FIS cannot express raises one `FisExportError`, listing each thing by name. What maps
round-trips: import, bind, export gives the template back (defaults written out, ignored fields
left out).

The FIS document is a strict pydantic model: unknown keys are problems, as FIS itself would refuse
them, and the parameters of each action are a model of their own. This module imports neither
boto3 nor kubernetes (tests/unit/test_fault_imports.py).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from chaosplane.faults.catalogue import FAULTS, validate_parameters
from chaosplane.graph import ControlAction, ExperimentGraph, StepTarget
from chaosplane.models import (
    MAX_DURATION_SECONDS,
    TARGET_FIELDS,
    TARGET_SPEC,
    Alarm,
    ExperimentSpec,
    FaultType,
    TargetType,
)
from chaosplane.selectors import Operator, SelectorError, parse_selector

MIN_DERIVED_DURATION = 300
"""The least an imported experiment lasts: what holds to the end holds at least this long."""
DURATION_MARGIN = 60
"""Added to the longest chain of durations, so injection times along it do not cut the last short."""

FIS_DESCRIPTION_LENGTH = 512
CPU_DOCUMENT = "AWSFIS-Run-CPU-Stress"
MEMORY_DOCUMENT = "AWSFIS-Run-Memory-Stress"
_DOCUMENT_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+::document/(?P<name>[A-Za-z0-9_.-]+)$")
_ISO_DURATION = re.compile(r"^PT(?:(?P<h>[0-9]{1,3})H)?(?:(?P<m>[0-9]{1,5})M)?(?:(?P<s>[0-9]{1,6})S)?$")
_ALARM: TypeAdapter[str] = TypeAdapter(Alarm)
_PLACEHOLDER = uuid.UUID("5f1a0c1e-0000-4000-8000-000000000000")


class FisImportError(ValueError):
    """A template that does not map: every problem, each naming its field path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class FisExportError(ValueError):
    """An experiment FIS cannot express: every reason, each naming the target or action."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


# -- ISO-8601 durations, as FIS writes them ---------------------------------------------------------


def parse_duration(text: str) -> int:
    """Seconds in an ISO-8601 duration of hours, minutes and seconds (`PT5M`, `PT1H30M`, `PT90S`).

    Strict: no days, no fractions, no sign, no lower case; at least one part, and more than zero.
    """
    match = _ISO_DURATION.fullmatch(text)
    if match is None or not any(match.group("h", "m", "s")):
        raise ValueError(f"{text!r} is not an ISO-8601 duration of hours, minutes and seconds, e.g. PT5M")
    seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)
    if seconds == 0:
        raise ValueError(f"{text!r} is no time at all")
    return seconds


def format_duration(seconds: int) -> str:
    """The ISO-8601 duration FIS writes: `PT2M`, `PT1H30M`, `PT45S`."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}H" if hours else "", f"{minutes}M" if minutes else "", f"{secs}S" if secs else ""]
    return "PT" + "".join(parts)


# -- the FIS document ------------------------------------------------------------------------------


def _seconds(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


def _integer(value: Any) -> Any:
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,9}", value):
            raise ValueError(f"{value!r} is not a whole number")
        return int(value)
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        if value.lower() not in ("true", "false"):
            raise ValueError(f"{value!r} is neither true nor false")
        return value.lower() == "true"
    return value


def _document_boolean(value: Any) -> Any:
    if isinstance(value, str):
        if value not in ("True", "False"):
            raise ValueError(f"{value!r} is neither True nor False")
        return value == "True"
    return value


Seconds = Annotated[int, BeforeValidator(_seconds)]
"""An ISO-8601 duration in the document, seconds once read."""
Whole = Annotated[int, BeforeValidator(_integer)]
"""A whole number, which FIS writes as a string."""
Flag = Annotated[bool, BeforeValidator(_boolean)]
"""true or false, which FIS writes as a string."""
DocumentFlag = Annotated[bool, BeforeValidator(_document_boolean)]
"""True or False, as the AWSFIS- SSM documents spell them."""


def _one_interface(interface: str) -> str:
    if "," in interface:
        raise ValueError("Chaosplane delays one interface per action, not a list")
    return interface


Interface = Annotated[str, AfterValidator(_one_interface)]
"""FIS takes a comma-separated list; Chaosplane one interface."""


class _Fis(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FisFilter(_Fis):
    path: str
    values: list[str]


class FisTarget(_Fis):
    resourceType: str
    resourceArns: list[str] | None = None
    resourceTags: dict[str, str] | None = None
    filters: list[FisFilter] | None = None
    selectionMode: str
    parameters: dict[str, str] | None = None


class FisAction(_Fis):
    actionId: str
    description: str | None = None
    parameters: dict[str, str] | None = None
    targets: dict[str, str] | None = None
    startAfter: list[str] | None = None


class FisStopCondition(_Fis):
    source: str
    value: str | None = None


class FisExperimentOptions(_Fis):
    accountTargeting: str | None = None
    emptyTargetResolutionMode: str | None = None
    actionsMode: str | None = None


class FisTemplate(_Fis):
    """A CreateExperimentTemplate input, or what GetExperimentTemplate answers under
    `experimentTemplate`. Targets and actions are read one by one (`FisTarget`, `FisAction`), so a
    broken one hides no problem of another."""

    description: str = ""
    targets: dict[str, Any] = Field(default_factory=dict)
    actions: dict[str, Any]
    stopConditions: list[FisStopCondition] = Field(default_factory=list)
    roleArn: str | None = None
    tags: dict[str, str] | None = None
    logConfiguration: dict[str, Any] | None = None
    experimentOptions: FisExperimentOptions | None = None
    clientToken: str | None = None
    experimentReportConfiguration: dict[str, Any] | None = None
    # What GetExperimentTemplate adds (datetimes when boto3 answers, strings in the CLI's JSON).
    id: str | None = None
    arn: str | None = None
    creationTime: Any = None
    lastUpdateTime: Any = None
    targetAccountConfigurationsCount: int | None = None


# -- each action's parameters ----------------------------------------------------------------------


class _Parameters(_Fis):
    """An action's parameters: unknown ones are problems. Fields typed `Ignored` are accepted and
    dropped (docs/fis.md says why); a `Literal` one is accepted with the value Chaosplane has."""


Ignored = str | None


class NoFisParameters(_Parameters):
    pass


class StopInstances(_Parameters):
    startInstancesAfterDuration: Seconds | None = None
    completeIfInstancesTerminated: Literal["false"] | None = None


class RebootDbInstances(_Parameters):
    forceFailover: Flag = False


class SendCommand(_Parameters):
    documentArn: str
    documentParameters: str | None = None
    documentVersion: Literal["$DEFAULT", "$LATEST"] | None = None
    duration: Seconds | None = None


class CpuStressDocument(_Parameters):
    DurationSeconds: Whole
    CPU: Whole = 0
    LoadPercent: Whole = 100
    InstallDependencies: DocumentFlag = True


class MemoryStressDocument(_Parameters):
    DurationSeconds: Whole
    Percent: Whole
    Workers: Whole = 1
    InstallDependencies: DocumentFlag = True


class DisruptConnectivity(_Parameters):
    duration: Seconds
    scope: Literal["all"] = "all"


class Wait(_Parameters):
    duration: Seconds


class AssertAlarmState(_Parameters):
    alarmArns: str
    alarmStates: str


class _Pods(_Parameters):
    kubernetesServiceAccount: Ignored = None
    maxErrorsPercent: Literal["0"] | None = None
    fisPodContainerImage: Ignored = None
    fisPodLabels: Ignored = None
    fisPodAnnotations: Ignored = None
    fisPodSecurityPolicy: Ignored = None


class PodDelete(_Pods):
    gracePeriodSeconds: Whole | None = None


class _PodsFor(_Pods):
    duration: Seconds


class PodNetworkLatency(_PodsFor):
    delayMilliseconds: Whole = 200
    jitterMilliseconds: Whole = 10
    interface: Interface = "eth0"
    sources: Literal["0.0.0.0/0"] | None = None


class PodNetworkPacketLoss(_PodsFor):
    lossPercent: Whole = 7
    interface: Interface = "eth0"
    sources: Literal["0.0.0.0/0"] | None = None


class PodCpuStress(_PodsFor):
    percent: Whole = 100
    workers: Whole | None = None  # FIS's default, 0, loads every CPU: Chaosplane needs a number


class PodMemoryStress(_PodsFor):
    percent: Whole = 80
    workers: Whole = 1


# -- the action table ------------------------------------------------------------------------------

EC2_INSTANCE = "aws:ec2:instance"
RDS_DB = "aws:rds:db"
RDS_CLUSTER = "aws:rds:cluster"
ECS_TASK = "aws:ecs:task"
EC2_SUBNET = "aws:ec2:subnet"
EKS_POD = "aws:eks:pod"

RESOURCE_TYPES: dict[str, TargetType] = {
    EC2_INSTANCE: TargetType.EC2_INSTANCES,
    RDS_DB: TargetType.RDS_INSTANCES,
    RDS_CLUSTER: TargetType.RDS_CLUSTERS,
    ECS_TASK: TargetType.ECS_TASKS,
    EC2_SUBNET: TargetType.SUBNETS,
    EKS_POD: TargetType.EKS_PODS,
}
FIS_RESOURCE_TYPES = {ours: theirs for theirs, ours in RESOURCE_TYPES.items()}

Translated = tuple[dict[str, Any], int | None]
"""An action's Chaosplane parameters and its duration in seconds (None: no duration)."""


@dataclass(frozen=True)
class _Context:
    """What an export needs to write ARNs, and which service account pod actions name."""

    partition: str
    region: str | None
    account: str | None
    service_account: str | None
    experiment_duration: int


@dataclass(frozen=True)
class FisActionMap:
    action_id: str
    kind: FaultType | ControlAction
    key: str | None
    """The key of the action's `targets` in FIS (None: the action takes no target)."""
    resource_type: str | None
    parameters: type[_Parameters]
    to_chaosplane: Callable[[Any], Translated]
    to_fis: Callable[[Mapping[str, Any], int | None, _Context], dict[str, str]]


def _fixed_duration(seconds: int | None) -> dict[str, str]:
    return {} if seconds is None else {"duration": format_duration(seconds)}


def _pods(parameters: dict[str, str], seconds: int | None, context: _Context) -> dict[str, str]:
    account = {"kubernetesServiceAccount": context.service_account} if context.service_account else {}
    return {**_fixed_duration(seconds), **parameters, **account}


def _needs_duration(action_id: str, seconds: int | None) -> int:
    if seconds is None:
        raise ValueError(f"{action_id} needs a duration; give the action one")
    return seconds


def _ec2_stop(parameters: Mapping[str, Any], seconds: int | None, _: _Context) -> dict[str, str]:
    if parameters.get("force"):
        raise ValueError("force: aws:ec2:stop-instances has no forced stop")
    return {} if seconds is None else {"startInstancesAfterDuration": format_duration(seconds)}


def _rds_failover(parameters: Mapping[str, Any], seconds: int | None, _: _Context) -> dict[str, str]:
    if parameters.get("target_instance") or parameters.get("failback"):
        raise ValueError("aws:rds:failover-db-cluster has no target_instance or failback")
    if seconds is not None:
        raise ValueError("duration: aws:rds:failover-db-cluster takes none")
    return {}


def _instant(action_id: str) -> Callable[[Mapping[str, Any], int | None, _Context], dict[str, str]]:
    def to_fis(parameters: Mapping[str, Any], seconds: int | None, _: _Context) -> dict[str, str]:
        if seconds is not None:
            raise ValueError(f"duration: {action_id} takes none")
        return {}

    return to_fis


def _ssm_document(context: _Context, name: str) -> str:
    if context.region is None:
        raise ValueError("documentArn needs a region: export with region=")
    return f"arn:{context.partition}:ssm:{context.region}::document/{name}"


def _ssm_stress(document_name: str) -> Callable[[Mapping[str, Any], int | None, _Context], dict[str, str]]:
    """aws:ssm:send-command with an AWSFIS- stress document, from ssm-cpu-stress or ssm-memory-stress.

    Without an action duration, the stress lasts the experiment (as Chaosplane sends it)."""
    fields = (
        {"CPU": "cpu", "LoadPercent": "load_percent"}
        if document_name == CPU_DOCUMENT
        else {"Percent": "percent", "Workers": "workers"}
    )

    def to_fis(parameters: Mapping[str, Any], seconds: int | None, context: _Context) -> dict[str, str]:
        seconds = seconds or context.experiment_duration
        document = {
            "DurationSeconds": str(seconds),
            **{theirs: str(parameters[ours]) for theirs, ours in fields.items()},
            "InstallDependencies": str(parameters["install_dependencies"]),
        }
        return {
            "documentArn": _ssm_document(context, document_name),
            "documentParameters": json.dumps(document),
            "duration": format_duration(seconds),
        }

    return to_fis


def _send_command(parameters: SendCommand) -> Translated:
    """aws:ssm:send-command with an AWSFIS- stress document: which fault is the document's."""
    match = _DOCUMENT_ARN.fullmatch(parameters.documentArn)
    name = match["name"] if match else None
    model: type[CpuStressDocument | MemoryStressDocument]
    if name == CPU_DOCUMENT:
        model = CpuStressDocument
    elif name == MEMORY_DOCUMENT:
        model = MemoryStressDocument
    else:
        raise _Refused(
            "documentArn", f"only the {CPU_DOCUMENT} and {MEMORY_DOCUMENT} documents map, not {name or '?'}"
        )
    try:
        document = model.model_validate_json(parameters.documentParameters or "{}")
    except ValidationError as err:
        raise _Refused.of(err, "documentParameters") from None
    if parameters.duration is not None and parameters.duration != document.DurationSeconds:
        raise _Refused(
            "duration",
            f"{parameters.duration}s differs from documentParameters.DurationSeconds "
            f"({document.DurationSeconds}s); Chaosplane holds the stress for one duration",
        )
    if isinstance(document, CpuStressDocument):
        ours: dict[str, Any] = {
            "fault": FaultType.SSM_CPU_STRESS,
            "cpu": document.CPU,
            "load_percent": document.LoadPercent,
            "install_dependencies": document.InstallDependencies,
        }
    else:
        ours = {
            "fault": FaultType.SSM_MEMORY_STRESS,
            "percent": document.Percent,
            "workers": document.Workers,
            "install_dependencies": document.InstallDependencies,
        }
    return ours, document.DurationSeconds


def _whole_percent(value: float) -> str:
    if value != int(value):
        raise ValueError(f"loss_percent: FIS takes a whole percentage, not {value}")
    return str(int(value))


def _pod_cpu(parameters: PodCpuStress) -> Translated:
    if not parameters.workers:
        raise _Refused(
            "workers", "FIS's 0 (or its default) loads every CPU; Chaosplane needs a number of workers"
        )
    return {"load_percent": parameters.percent, "workers": parameters.workers}, parameters.duration


ACTIONS: dict[str, FisActionMap] = {
    m.action_id: m
    for m in (
        FisActionMap(
            "aws:ec2:stop-instances",
            FaultType.EC2_STOP,
            "Instances",
            EC2_INSTANCE,
            StopInstances,
            lambda p: ({}, p.startInstancesAfterDuration),
            _ec2_stop,
        ),
        FisActionMap(
            "aws:ec2:reboot-instances",
            FaultType.EC2_REBOOT,
            "Instances",
            EC2_INSTANCE,
            NoFisParameters,
            lambda p: ({}, None),
            _instant("aws:ec2:reboot-instances"),
        ),
        FisActionMap(
            "aws:ec2:terminate-instances",
            FaultType.EC2_TERMINATE,
            "Instances",
            EC2_INSTANCE,
            NoFisParameters,
            lambda p: ({}, None),
            _instant("aws:ec2:terminate-instances"),
        ),
        FisActionMap(
            "aws:rds:reboot-db-instances",
            FaultType.RDS_REBOOT,
            "DBInstances",
            RDS_DB,
            RebootDbInstances,
            lambda p: ({"force_failover": p.forceFailover}, None),
            lambda ours, seconds, context: {
                **_instant("aws:rds:reboot-db-instances")(ours, seconds, context),
                "forceFailover": str(bool(ours["force_failover"])).lower(),
            },
        ),
        FisActionMap(
            "aws:rds:failover-db-cluster",
            FaultType.RDS_FAILOVER,
            "Clusters",
            RDS_CLUSTER,
            NoFisParameters,
            lambda p: ({}, None),
            _rds_failover,
        ),
        FisActionMap(
            "aws:ecs:stop-task",
            FaultType.ECS_STOP_TASK,
            "Tasks",
            ECS_TASK,
            NoFisParameters,
            lambda p: ({}, None),
            _instant("aws:ecs:stop-task"),
        ),
        FisActionMap(
            "aws:ssm:send-command",
            FaultType.SSM_CPU_STRESS,  # or SSM_MEMORY_STRESS: the document decides (_send_command)
            "Instances",
            EC2_INSTANCE,
            SendCommand,
            _send_command,
            _ssm_stress(CPU_DOCUMENT),  # ssm-memory-stress exports through _EXPORTS
        ),
        FisActionMap(
            "aws:network:disrupt-connectivity",
            FaultType.NETWORK_BLACKHOLE,
            "Subnets",
            EC2_SUBNET,
            DisruptConnectivity,
            lambda p: ({}, p.duration),
            lambda ours, seconds, _: {
                "duration": format_duration(_needs_duration("aws:network:disrupt-connectivity", seconds)),
                "scope": "all",
            },
        ),
        FisActionMap(
            "aws:eks:pod-delete",
            FaultType.POD_DELETE,
            "Pods",
            EKS_POD,
            PodDelete,
            lambda p: ({"grace_period_seconds": p.gracePeriodSeconds}, None),
            lambda ours, seconds, context: _pods(
                {
                    **_instant("aws:eks:pod-delete")(ours, seconds, context),
                    **(
                        {}
                        if ours["grace_period_seconds"] is None
                        else {"gracePeriodSeconds": str(ours["grace_period_seconds"])}
                    ),
                },
                None,
                context,
            ),
        ),
        FisActionMap(
            "aws:eks:pod-network-latency",
            FaultType.POD_NETWORK_LATENCY,
            "Pods",
            EKS_POD,
            PodNetworkLatency,
            lambda p: (
                {
                    "delay_ms": p.delayMilliseconds,
                    "jitter_ms": p.jitterMilliseconds,
                    "interface": p.interface,
                },
                p.duration,
            ),
            lambda ours, seconds, context: _pods(
                {
                    "delayMilliseconds": str(ours["delay_ms"]),
                    "jitterMilliseconds": str(ours["jitter_ms"]),
                    "interface": ours["interface"],
                },
                _needs_duration("aws:eks:pod-network-latency", seconds),
                context,
            ),
        ),
        FisActionMap(
            "aws:eks:pod-network-packet-loss",
            FaultType.POD_NETWORK_LOSS,
            "Pods",
            EKS_POD,
            PodNetworkPacketLoss,
            lambda p: ({"loss_percent": p.lossPercent, "interface": p.interface}, p.duration),
            lambda ours, seconds, context: _pods(
                {"lossPercent": _whole_percent(ours["loss_percent"]), "interface": ours["interface"]},
                _needs_duration("aws:eks:pod-network-packet-loss", seconds),
                context,
            ),
        ),
        FisActionMap(
            "aws:eks:pod-cpu-stress",
            FaultType.POD_CPU_STRESS,
            "Pods",
            EKS_POD,
            PodCpuStress,
            _pod_cpu,
            lambda ours, seconds, context: _pods(
                {"percent": str(ours["load_percent"]), "workers": str(ours["workers"])},
                _needs_duration("aws:eks:pod-cpu-stress", seconds),
                context,
            ),
        ),
        FisActionMap(
            "aws:eks:pod-memory-stress",
            FaultType.POD_MEMORY_STRESS,
            "Pods",
            EKS_POD,
            PodMemoryStress,
            lambda p: ({"size": f"{p.percent}%", "workers": p.workers}, p.duration),
            lambda ours, seconds, context: _pods(
                {"percent": _memory_percent(ours["size"]), "workers": str(ours["workers"])},
                _needs_duration("aws:eks:pod-memory-stress", seconds),
                context,
            ),
        ),
        FisActionMap(
            "aws:fis:wait",
            ControlAction.WAIT,
            None,
            None,
            Wait,
            lambda p: ({}, p.duration),
            lambda ours, seconds, _: {"duration": format_duration(_needs_duration("aws:fis:wait", seconds))},
        ),
        FisActionMap(
            "aws:cloudwatch:assert-alarm-state",
            ControlAction.ASSERT_ALARM_STATE,
            None,
            None,
            AssertAlarmState,
            lambda p: (
                {"alarms": _split(p.alarmArns), "states": _split(p.alarmStates)},
                None,
            ),
            lambda ours, seconds, context: {
                "alarmArns": ",".join(_alarm_arn(alarm, context) for alarm in ours["alarms"]),
                "alarmStates": ",".join(ours["states"]),
            },
        ),
    )
}
_EXPORTS: dict[FaultType | ControlAction, FisActionMap] = {m.kind: m for m in ACTIONS.values()}
_EXPORTS[FaultType.SSM_MEMORY_STRESS] = FisActionMap(
    "aws:ssm:send-command",
    FaultType.SSM_MEMORY_STRESS,
    "Instances",
    EC2_INSTANCE,
    SendCommand,
    _send_command,
    _ssm_stress(MEMORY_DOCUMENT),
)


def _memory_percent(size: str) -> str:
    if not size.endswith("%"):
        raise ValueError(f"size: FIS stresses a percentage of memory, not {size}")
    return size.removesuffix("%")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _alarm_arn(alarm: str, context: _Context) -> str:
    if alarm.startswith("arn:"):
        return alarm
    if context.region is None or context.account is None:
        raise ValueError(f"alarm {alarm!r} needs an ARN: export with region= and account=")
    return f"arn:{context.partition}:cloudwatch:{context.region}:{context.account}:alarm:{alarm}"


class _Refused(Exception):
    """A parameter that does not map, raised from inside a translation: its name and the reason."""

    def __init__(self, where: str, why: str) -> None:
        self.problems = [f"{where}: {why}"]
        super().__init__(self.problems[0])

    @classmethod
    def of(cls, err: ValidationError, where: str) -> _Refused:
        refused = cls(where, "")
        refused.problems = _pydantic_problems(err, where)
        return refused


def _pydantic_problems(err: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for error in err.errors():
        loc = ".".join(str(part) for part in ((prefix,) if prefix else ()) + tuple(error["loc"]))
        if error["type"] == "extra_forbidden":
            message = "unknown key: it does not map to Chaosplane"
        elif error["type"] == "missing":
            message = "required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{loc}: {message}" if loc else message)
    return problems


# -- import ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FisImport:
    """What a template imports as: target bodies to create, and the experiment that uses them."""

    targets: dict[str, dict[str, Any]]
    """Chaosplane target bodies (valid for TARGET_SPEC), keyed by FIS target name."""
    body: dict[str, Any]
    """The experiment, its step targets naming the FIS targets (`experiment` binds them)."""
    notes: list[str] = field(default_factory=list)
    """What the import accepted and left out (roleArn, logConfiguration, ...), one line each."""

    def experiment(self, target_ids: Mapping[str, str]) -> dict[str, Any]:
        """The experiment body, each step target bound to the id created for its FIS target."""
        missing = sorted(set(self.targets) - set(target_ids))
        if missing:
            raise KeyError(f"no target id for {', '.join(missing)}")
        body = copy.deepcopy(self.body)
        for step in body["targets"].values():
            step["target"] = target_ids[step["target"]]
        return body


def import_template(
    document: Mapping[str, Any], *, allow_irreversible: bool = False, duration: int | None = None
) -> FisImport:
    """Translate an FIS template (see the module's docstring); raise FisImportError with every problem.

    `allow_irreversible` is the caller's consent to actions that cannot be rolled back (terminating
    instances, deleting pods). `duration` (seconds) overrides the derived experiment duration.
    """
    problems: list[str] = []
    notes: list[str] = []
    raw = document.get("experimentTemplate", document) if isinstance(document, Mapping) else document
    if isinstance(raw, Mapping) and "experimentTemplate" in document and len(document) > 1:
        notes.extend(
            f"{key}: ignored (outside experimentTemplate)" for key in document if key != "experimentTemplate"
        )
    try:
        template = FisTemplate.model_validate(raw)
    except ValidationError as err:
        # Report the broken top-level fields, and read on without them for everything else.
        problems += _pydantic_problems(err)
        broken = {error["loc"][0] for error in err.errors() if error["loc"]}
        try:
            template = FisTemplate.model_validate(
                {k: v for k, v in raw.items() if k not in broken} if isinstance(raw, Mapping) else raw
            )
        except ValidationError:
            raise FisImportError(problems) from None

    _top_level(template, problems, notes)
    targets: dict[str, FisTarget] = {}
    for name, value in template.targets.items():
        try:
            targets[name] = FisTarget.model_validate(value)
        except ValidationError as err:
            problems += _pydantic_problems(err, f"targets.{name}")
    actions: dict[str, FisAction] = {}
    for name, value in template.actions.items():
        try:
            actions[name] = FisAction.model_validate(value)
        except ValidationError as err:
            problems += _pydantic_problems(err, f"actions.{name}")

    bodies: dict[str, dict[str, Any]] = {}
    steps: dict[str, dict[str, Any]] = {}
    for name, target in targets.items():
        translated = _import_target(name, target, problems)
        if translated is not None:
            bodies[name], steps[name] = translated
    step_actions: dict[str, dict[str, Any]] = {}
    for name, action in actions.items():
        translated_action = _import_action(name, action, targets, set(template.actions), problems)
        if translated_action is not None:
            step_actions[name] = translated_action

    irreversible = [
        name
        for name, action in step_actions.items()
        if isinstance(action["fault"], FaultType) and FAULTS[action["fault"]].irreversible
    ]
    if irreversible and not allow_irreversible:
        problems += [
            f"actions.{name}.actionId: {actions[name].actionId} cannot be rolled back; "
            "import it with allow_irreversible to accept that"
            for name in irreversible
        ]
    longest, chain = _longest_chain(step_actions)
    if longest > MAX_DURATION_SECONDS:
        problems.append(
            f"actions: {' -> '.join(chain)} takes {longest}s in all, beyond Chaosplane's "
            f"{MAX_DURATION_SECONDS}s (12 h)"
        )
    if problems:
        raise FisImportError(problems)

    body = {
        "name": _name(template),
        "description": template.description,
        "targets": steps,
        "actions": {
            name: {**action, "fault": action["fault"].value} for name, action in step_actions.items()
        },
        "stop_conditions": [
            c.value for c in template.stopConditions if c.source == "aws:cloudwatch:alarm" and c.value
        ],
        "duration": duration if duration is not None else derived_duration(longest),
        "allow_irreversible": bool(irreversible),
    }
    _check_graph(body, problems)
    if problems:
        raise FisImportError(problems)
    return FisImport(targets=bodies, body=body, notes=notes)


def derived_duration(longest_chain: int) -> int:
    """The experiment's duration from the longest `startAfter` chain of action durations (seconds):
    that plus a minute, at least five minutes, at most 12 h. The experiment still ends when every
    action has completed, as in FIS: the duration bounds it, and is how long an action without a
    duration (which Chaosplane holds until the end) holds."""
    return min(MAX_DURATION_SECONDS, max(MIN_DERIVED_DURATION, longest_chain + DURATION_MARGIN))


def _top_level(template: FisTemplate, problems: list[str], notes: list[str]) -> None:
    if template.roleArn:
        notes.append("roleArn: ignored; Chaosplane acts with its own executor role")
    if template.logConfiguration:
        notes.append("logConfiguration: ignored; Chaosplane records every run in its journal and timeline")
    if template.clientToken:
        notes.append("clientToken: ignored")
    if template.tags and set(template.tags) - {"Name"}:
        notes.append("tags: ignored, but for Name (the experiment's name)")
    if template.experimentReportConfiguration:
        problems.append("experimentReportConfiguration: Chaosplane writes no FIS experiment reports")
    if template.targetAccountConfigurationsCount:
        problems.append("targetAccountConfigurationsCount: Chaosplane targets one account")
    options = template.experimentOptions
    if options is not None:
        if options.accountTargeting not in (None, "single-account"):
            problems.append(
                f"experimentOptions.accountTargeting: {options.accountTargeting}; "
                "Chaosplane targets a single account"
            )
        if options.emptyTargetResolutionMode not in (None, "fail"):
            problems.append(
                f"experimentOptions.emptyTargetResolutionMode: {options.emptyTargetResolutionMode}; "
                "a Chaosplane run whose target matches nothing fails"
            )
        if options.actionsMode not in (None, "run-all"):
            problems.append(
                f"experimentOptions.actionsMode: {options.actionsMode}; Chaosplane runs all actions"
            )
    sources = [c.source for c in template.stopConditions]
    for i, condition in enumerate(template.stopConditions):
        where = f"stopConditions.{i}"
        if condition.source == "none":
            if condition.value or len(sources) > 1:
                problems.append(f"{where}: source none stands alone and has no value")
        elif condition.source != "aws:cloudwatch:alarm":
            problems.append(
                f"{where}.source: {condition.source} is not supported (aws:cloudwatch:alarm or none)"
            )
        elif not condition.value:
            problems.append(f"{where}.value: required (the alarm's ARN)")
        else:
            try:
                _ALARM.validate_python(condition.value)
            except ValidationError as err:
                problems += _pydantic_problems(err, f"{where}.value")


def _name(template: FisTemplate) -> str:
    name = (template.tags or {}).get("Name", "").strip()
    if name:
        return name[:128]
    if template.description.strip():
        return template.description.strip()[:128]
    return f"FIS template {template.id}" if template.id else "imported FIS template"


_ARN = {
    EC2_INSTANCE: re.compile(r"^arn:aws[a-z-]*:ec2:[a-z0-9-]+:[0-9]{12}:instance/(?P<id>i-[0-9a-f]+)$"),
    RDS_DB: re.compile(r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:db:(?P<id>[A-Za-z0-9-]+)$"),
    RDS_CLUSTER: re.compile(r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:[0-9]{12}:cluster:(?P<id>[A-Za-z0-9-]+)$"),
    ECS_TASK: re.compile(
        r"^(?P<id>arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:task/(?P<cluster>[A-Za-z0-9_-]+)/[0-9a-f]+)$"
    ),
    EC2_SUBNET: re.compile(r"^arn:aws[a-z-]*:ec2:[a-z0-9-]+:[0-9]{12}:subnet/(?P<id>subnet-[0-9a-f]+)$"),
}
_ARN_FORM = {
    EC2_INSTANCE: "arn:{partition}:ec2:{region}:{account}:instance/{id}",
    RDS_DB: "arn:{partition}:rds:{region}:{account}:db:{id}",
    RDS_CLUSTER: "arn:{partition}:rds:{region}:{account}:cluster:{id}",
    EC2_SUBNET: "arn:{partition}:ec2:{region}:{account}:subnet/{id}",
}
_TARGET_PARAMETERS = {
    ECS_TASK: {"cluster", "service"},
    EKS_POD: {"clusterIdentifier", "namespace", "selectorType", "selectorValue"},
}


def _import_target(
    name: str, target: FisTarget, problems: list[str]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    where = f"targets.{name}"
    found: list[str] = []
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        found.append(f"{where}: a Chaosplane step name is letters, digits, '_', '.' and '-' (at most 64)")
    kind = RESOURCE_TYPES.get(target.resourceType)
    if kind is None:
        found.append(
            f"{where}.resourceType: {target.resourceType} is not supported ({', '.join(RESOURCE_TYPES)})"
        )
        problems += found
        return None
    body: dict[str, Any] = {"name": name, "type": kind.value}
    if target.resourceTags is not None and target.resourceArns is not None:
        found.append(f"{where}: give resourceTags or resourceArns, not both (as FIS)")
    if target.resourceTags:
        body["selector"] = _selector(target.resourceTags, f"{where}.resourceTags", found)
    if target.resourceArns:
        body["resource_ids"] = _resource_ids(
            target.resourceType, target.resourceArns, f"{where}.resourceArns", found
        )
    parameters = dict(target.parameters or {})
    for key in sorted(set(parameters) - _TARGET_PARAMETERS.get(target.resourceType, set())):
        found.append(f"{where}.parameters.{key}: not supported for {target.resourceType}")
    if target.resourceType == ECS_TASK:
        cluster = parameters.get("cluster") or _cluster_of_tasks(target.resourceArns or [])
        if cluster is None:
            found.append(
                f"{where}.parameters.cluster: required (Chaosplane's ecs-tasks targets name their cluster)"
            )
        body["cluster"] = _last_part(cluster) if cluster else None
        if "service" in parameters:
            body["service"] = parameters["service"]
        if not target.resourceTags and not target.resourceArns and "service" not in parameters:
            found.append(
                f"{where}: Chaosplane's ecs-tasks targets select by resourceTags, resourceArns or a "
                "service, not every task of a cluster"
            )
    if target.resourceType == EKS_POD:
        if target.resourceTags or target.resourceArns:
            found.append(f"{where}: aws:eks:pod targets are found by parameters, not tags or ARNs (as FIS)")
        body.update(_pods_target(parameters, f"{where}.parameters", found))
    if not found:
        try:
            TARGET_SPEC.validate_python(body)
        except ValidationError as err:
            found += [f"{where}: {p}" for p in _target_problems(err)]
    step = {
        "target": name,
        "selection": target.selectionMode,
        "filters": [{"path": f.path, "values": f.values} for f in target.filters or []],
    }
    try:
        StepTarget.model_validate({**step, "target": str(_PLACEHOLDER)})
    except ValidationError as err:
        found += _pydantic_problems(err, where)
    problems += [p.replace(f"{where}.selection:", f"{where}.selectionMode:") for p in found]
    return None if found else (body, step)


def _target_problems(err: ValidationError) -> list[str]:
    """TARGET_SPEC's messages without the union's tag in each path."""
    problems = []
    for error in err.errors():
        loc = [str(part) for part in error["loc"][1:]]
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return problems


def _selector(tags: Mapping[str, str], where: str, found: list[str]) -> str:
    parts = []
    for key, value in tags.items():
        text = f"{key}={value}"
        try:
            requirement = parse_selector(text).requirements
        except SelectorError:
            requirement = ()
        if len(requirement) != 1 or requirement[0].key != key or requirement[0].values != (value,):
            found.append(f"{where}.{key}: the tag cannot be a label selector (letters, digits, _.:/@+- only)")
        parts.append(text)
    return ",".join(parts)


def _resource_ids(resource_type: str, arns: list[str], where: str, found: list[str]) -> list[str]:
    ids = []
    for i, arn in enumerate(arns):
        pattern = _ARN.get(resource_type)
        match = pattern.fullmatch(arn) if pattern else None
        if match is None:
            found.append(f"{where}.{i}: {arn!r} is not the ARN of an {resource_type}")
        else:
            ids.append(match["id"])
    return ids


def _cluster_of_tasks(arns: list[str]) -> str | None:
    clusters = {m["cluster"] for arn in arns if (m := _ARN[ECS_TASK].fullmatch(arn))}
    return clusters.pop() if len(clusters) == 1 else None


def _last_part(cluster: str) -> str:
    """A cluster's name, from its name or ARN (`arn:...:cluster/NAME`)."""
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


def _pods_target(parameters: Mapping[str, str], where: str, found: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("clusterIdentifier", "namespace", "selectorType", "selectorValue"):
        if key not in parameters:
            found.append(f"{where}.{key}: required")
    body["cluster"] = _last_part(parameters.get("clusterIdentifier", ""))
    body["namespace"] = parameters.get("namespace")
    kind, value = parameters.get("selectorType"), parameters.get("selectorValue", "")
    if kind == "labelSelector":
        body["selector"] = value
    elif kind == "podName":
        body["resource_ids"] = [value]
    elif kind is not None:
        found.append(f"{where}.selectorType: {kind} is not supported (labelSelector or podName)")
    return body


def _import_action(
    name: str, action: FisAction, targets: Mapping[str, FisTarget], names: set[str], problems: list[str]
) -> dict[str, Any] | None:
    where = f"actions.{name}"
    found: list[str] = []
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        found.append(f"{where}: a Chaosplane step name is letters, digits, '_', '.' and '-' (at most 64)")
    mapping = ACTIONS.get(action.actionId)
    if mapping is None:
        problems += [*found, f"{where}.actionId: {action.actionId} is not supported"]
        return None
    for before in action.startAfter or []:
        if before not in names:
            found.append(f"{where}.startAfter: {before!r} is not an action")
    step_target = _action_target(mapping, action.targets or {}, targets, f"{where}.targets", found)
    fault: FaultType | ControlAction = mapping.kind
    parameters: dict[str, Any] = {}
    seconds: int | None = None
    try:
        read = mapping.parameters.model_validate(action.parameters or {})
        parameters, seconds = mapping.to_chaosplane(read)
        fault = parameters.pop("fault", fault)
    except ValidationError as err:
        found += _pydantic_problems(err, f"{where}.parameters")
    except _Refused as refused:
        found += [f"{where}.parameters.{p}" for p in refused.problems]
    if not found and isinstance(fault, FaultType):
        try:
            parameters = validate_parameters(fault, parameters)
        except ValueError as err:
            found.append(f"{where}.parameters: {err}")
    if not found and seconds is not None and seconds > MAX_DURATION_SECONDS:
        found.append(f"{where}.parameters: {seconds}s is beyond Chaosplane's 12 h")
    problems += found
    if found:
        return None
    return {
        "description": action.description or "",
        "fault": fault,
        "target": step_target,
        "parameters": parameters,
        "duration": seconds,
        "start_after": list(action.startAfter or []),
    }


def _action_target(
    mapping: FisActionMap,
    given: Mapping[str, str],
    targets: Mapping[str, FisTarget],
    where: str,
    found: list[str],
) -> str | None:
    if mapping.key is None:
        if given:
            found.append(f"{where}: {mapping.action_id} takes no target")
        return None
    for key in sorted(set(given) - {mapping.key}):
        found.append(f"{where}.{key}: {mapping.action_id} takes its target as {mapping.key}")
    name = given.get(mapping.key)
    if name is None:
        found.append(f"{where}.{mapping.key}: required")
        return None
    target = targets.get(name)
    if target is None:
        found.append(f"{where}.{mapping.key}: {name!r} is not a target")
    elif target.resourceType != mapping.resource_type:
        found.append(
            f"{where}.{mapping.key}: {name!r} is {target.resourceType}; "
            f"{mapping.action_id} acts on {mapping.resource_type}"
        )
    return name


def _longest_chain(actions: Mapping[str, Mapping[str, Any]]) -> tuple[int, list[str]]:
    """The longest sum of durations along `start_after` (an action without one counts 0), and its
    actions. Cycles and unknown names are left to the graph's validation."""
    memo: dict[str, tuple[int, list[str]]] = {}

    def finish(name: str, seen: frozenset[str]) -> tuple[int, list[str]]:
        if name in memo:
            return memo[name]
        action = actions[name]
        before = [
            finish(b, seen | {name}) for b in action["start_after"] if b in actions and b not in seen | {name}
        ]
        total, chain = max(before, default=(0, []), key=lambda found: found[0])
        memo[name] = (total + (action["duration"] or 0), [*chain, name])
        return memo[name]

    return max((finish(name, frozenset()) for name in actions), default=(0, []), key=lambda found: found[0])


def _check_graph(body: Mapping[str, Any], problems: list[str]) -> None:
    """The experiment as Chaosplane checks it (cycles, an action after one that holds to the end...)."""
    graph = {
        "targets": {
            name: {**step, "target": str(uuid.uuid5(_PLACEHOLDER, name))}
            for name, step in body["targets"].items()
        },
        "actions": body["actions"],
        "duration": body["duration"],
    }
    try:
        ExperimentGraph.model_validate(graph)
    except ValidationError as err:
        for error in err.errors():
            loc = ".".join(str(part) for part in error["loc"])
            # The graph joins its problems with "; ", each starting with its path.
            for message in re.split(r"; (?=actions\.)", error["msg"].removeprefix("Value error, ")):
                # The graph's own problems name their field already.
                named = not loc or message.startswith(f"{loc}: ") or message.startswith("actions")
                problems.append(message if named else f"{loc}: {message}")


# -- export ---------------------------------------------------------------------------------------


def export_template(
    experiment: Mapping[str, Any],
    targets: Mapping[str, Mapping[str, Any]],
    *,
    region: str | None = None,
    account: str | None = None,
    partition: str = "aws",
    role_arn: str | None = None,
    kubernetes_service_account: str | None = None,
) -> dict[str, Any]:
    """A CreateExperimentTemplate input for `experiment`, whose targets are in `targets` (by id).

    `region` and `account` make ARNs of bare resource ids and alarm names (and `region` the SSM
    documents' ARNs); `role_arn` and `kubernetes_service_account`, which FIS needs and Chaosplane
    does not keep, are written when given. Raises FisExportError with everything FIS cannot express.
    """
    problems: list[str] = []
    try:
        graph = _graph_of(experiment)
    except ValidationError as err:
        raise FisExportError(_pydantic_problems(err)) from None
    context = _Context(partition, region, account, kubernetes_service_account, graph.duration)

    fis_targets: dict[str, dict[str, Any]] = {}
    kinds: dict[str, TargetType] = {}
    for name, step in graph.targets.items():
        stored = targets.get(step.target)
        if stored is None:
            problems.append(f"targets.{name}: target {step.target} was not given")
            continue
        try:
            body = TARGET_SPEC.validate_python({k: v for k, v in stored.items() if k in TARGET_FIELDS})
        except ValidationError as err:
            problems += [f"targets.{name}: {p}" for p in _target_problems(err)]
            continue
        kinds[name] = body.type
        try:
            fis_targets[name] = _export_target(body.model_dump(), step.selection, step.filters, context)
        except ValueError as err:
            problems.append(f"targets.{name}: {err}")

    fis_actions: dict[str, dict[str, Any]] = {}
    for name, action in graph.actions.items():
        mapping = _EXPORTS.get(action.fault)
        if mapping is None:
            problems.append(f"actions.{name}: {action.fault.value} has no FIS action")
            continue
        out: dict[str, Any] = {"actionId": mapping.action_id}
        if action.description:
            out["description"] = action.description
        try:
            parameters = mapping.to_fis(action.parameters, action.duration, context)
        except ValueError as err:
            problems.append(f"actions.{name}.parameters: {err}")
            continue
        if parameters:
            out["parameters"] = parameters
        if mapping.key is not None and action.target is not None:
            wanted = RESOURCE_TYPES[mapping.resource_type or ""]
            if action.target in kinds and kinds[action.target] is not wanted:
                problems.append(
                    f"actions.{name}.target: {action.target!r} is {kinds[action.target].value}; "
                    f"{mapping.action_id} acts on {wanted.value}"
                )
            out["targets"] = {mapping.key: action.target}
        if action.start_after:
            out["startAfter"] = list(action.start_after)
        fis_actions[name] = out

    stop_conditions = []
    for alarm in experiment.get("stop_conditions") or []:
        try:
            stop_conditions.append({"source": "aws:cloudwatch:alarm", "value": _alarm_arn(alarm, context)})
        except ValueError as err:
            problems.append(f"stop_conditions: {err}")
    description = experiment.get("description") or experiment["name"]
    if len(description) > FIS_DESCRIPTION_LENGTH:
        problems.append(f"description: FIS takes at most {FIS_DESCRIPTION_LENGTH} characters")
    if problems:
        raise FisExportError(problems)

    template: dict[str, Any] = {
        "description": description,
        "targets": fis_targets,
        "actions": fis_actions,
        "stopConditions": stop_conditions or [{"source": "none"}],
        "tags": {"Name": experiment["name"]},
    }
    if role_arn:
        template["roleArn"] = role_arn
    return template


def _graph_of(experiment: Mapping[str, Any]) -> ExperimentGraph:
    if "actions" not in experiment:  # a single-fault experiment is the graph of one action
        fields = set(ExperimentSpec.model_fields)
        return ExperimentGraph.single(
            ExperimentSpec.model_validate({k: v for k, v in experiment.items() if k in fields})
        )
    return ExperimentGraph.model_validate(
        {key: experiment[key] for key in ("targets", "actions", "duration") if key in experiment}
    )


def _export_target(
    body: Mapping[str, Any], selection: str, filters: list[Any], context: _Context
) -> dict[str, Any]:
    kind = TargetType(body["type"])
    resource_type = FIS_RESOURCE_TYPES.get(kind)
    if resource_type is None:
        raise ValueError(f"{kind.value} targets have no FIS resource type")
    out: dict[str, Any] = {"resourceType": resource_type}
    selector, ids = body.get("selector"), body.get("resource_ids") or []
    if kind is TargetType.EKS_PODS:
        if selector and ids:
            raise ValueError("FIS finds pods by a label selector or by one pod's name, not both")
        if len(ids) > 1:
            raise ValueError("FIS names one pod (podName); use a label selector for more")
        out["parameters"] = {
            "clusterIdentifier": body["cluster"],
            "namespace": body["namespace"],
            "selectorType": "labelSelector" if selector else "podName",
            "selectorValue": selector or ids[0],
        }
    else:
        if selector and ids:
            raise ValueError("FIS takes resourceTags or resourceArns, not both")
        if selector:
            out["resourceTags"] = _tags(selector)
        if ids:
            out["resourceArns"] = [_resource_arn(resource_type, rid, context) for rid in ids]
        if kind is TargetType.ECS_TASKS:
            parameters = {"cluster": body["cluster"]}
            if body.get("service"):
                parameters["service"] = body["service"]
            if ids and not body.get("service") and _cluster_of_tasks(out["resourceArns"]) == body["cluster"]:
                parameters = {}  # the task ARNs name the cluster already
            if parameters:
                out["parameters"] = parameters
    if filters:
        out["filters"] = [{"path": f.path, "values": list(f.values)} for f in filters]
    out["selectionMode"] = selection
    return out


def _tags(selector: str) -> dict[str, str]:
    """A label selector as FIS resourceTags: equalities only, each key once."""
    tags: dict[str, str] = {}
    for requirement in parse_selector(selector).requirements:
        if requirement.operator not in (Operator.EQUALS, Operator.IN) or len(requirement.values) != 1:
            raise ValueError(f"selector {selector!r}: FIS resourceTags hold key=value equalities only")
        if requirement.key in tags:
            raise ValueError(f"selector {selector!r}: FIS resourceTags hold each key once")
        tags[requirement.key] = requirement.values[0]
    return tags


def _resource_arn(resource_type: str, resource_id: str, context: _Context) -> str:
    if resource_id.startswith("arn:"):
        return resource_id
    form = _ARN_FORM.get(resource_type)
    if form is None:
        raise ValueError(f"resource id {resource_id!r}: FIS needs its ARN; give the ARN as the id")
    if context.region is None or context.account is None:
        raise ValueError(f"resource id {resource_id!r} needs an ARN: export with region= and account=")
    return form.format(
        partition=context.partition, region=context.region, account=context.account, id=resource_id
    )
