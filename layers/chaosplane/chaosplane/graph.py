"""Multi-step experiments: named targets and named actions, run as a graph with FIS's semantics.

An experiment of many steps names its **targets** (a Chaosplane target with its own selection and
attribute filters) and its **actions** (a fault on one of those targets, or a control action:
`wait`, `assert-alarm-state`), each with an optional duration and `start_after`, the names of the
actions it waits for. The semantics, as AWS FIS's:

- an action starts when every action in its `start_after` has completed;
- an action with a duration holds its fault that long from when it is in force, then rolls back its
  own changes, and completes; a `wait` is the same with nothing to hold;
- an action without a duration holds until the experiment ends, unless its fault is instant (a
  reboot, a deletion, a failover without failback: `Fault.instant`), which completes once
  injected, as does an alarm check;
- the experiment ends when every action has completed, or at its `duration`;
- a stop, a halt or a failed injection rolls back everything still injected, in reverse order of
  injection (the journal's order), and starts nothing more.

Today's single-fault experiment is the graph of one action (`ExperimentGraph.single`), so both
forms run through the same code. This module knows no AWS: `advance` is a pure function of the
graph, what has happened so far and the time, which the run's Advance step asks what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from chaosplane.faults.base import Resource
from chaosplane.faults.catalogue import FAULTS, validate_parameters
from chaosplane.models import (
    MAX_DURATION_SECONDS,
    MAX_STOP_CONDITIONS,
    ActionProgress,
    ActionStatus,
    Alarm,
    Description,
    ExperimentSpec,
    FaultType,
    Name,
    SelectionText,
    StopConditions,
    TargetId,
    TargetType,
)
from chaosplane.probes import Probes

MAX_ACTIONS = 50  # FIS allows 20 per template, Azure Chaos Studio 9
MAX_AT_ONCE = 25  # actions that may be in force together (FIS: 10)
MAX_TARGETS = 25
MAX_FILTERS = 10
STEP_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
StepName = Annotated[str, StringConstraints(pattern=STEP_NAME)]
"""A target's or an action's name within its experiment (FIS allows the same characters)."""


class ControlAction(StrEnum):
    """Actions that change nothing: they shape the graph or check it."""

    WAIT = "wait"
    ASSERT_ALARM_STATE = "assert-alarm-state"


ActionKind = FaultType | ControlAction
OBSERVE = "observe"  # the wait that holds a single-fault run with an instant fault for its duration


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class AssertAlarmStateParameters(BaseModel):
    """Fail the run unless every alarm is in one of `states` (FIS aws:cloudwatch:assert-alarm-state)."""

    model_config = ConfigDict(extra="forbid")

    alarms: list[Alarm] = Field(min_length=1, max_length=MAX_STOP_CONDITIONS)
    states: list[AlarmState] = Field(min_length=1, max_length=len(AlarmState))


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttributeFilter(_Step):
    """Keep only resources whose attribute at `path` (as the service's Describe API spells it, e.g.
    `Placement.AvailabilityZone`) is one of `values`: FIS's target `filters`."""

    path: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*){0,7}$")]
    values: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=50
    )


FILTER_PATHS: dict[TargetType, tuple[str, ...]] = {
    # Spelt as each service's Describe API nests them (FIS's filter paths); ECS's API is camelCase.
    TargetType.EC2_INSTANCES: (
        "Placement.AvailabilityZone",
        "Placement.GroupName",
        "VpcId",
        "SubnetId",
        "InstanceType",
        "Architecture",
        "ImageId",
        "State.Name",
    ),
    TargetType.SUBNETS: ("AvailabilityZone", "AvailabilityZoneId", "VpcId", "CidrBlock"),
    TargetType.RDS_INSTANCES: (
        "AvailabilityZone",
        "Engine",
        "DBInstanceClass",
        "DBClusterIdentifier",
        "MultiAZ",
        "DBSubnetGroup.VpcId",
    ),
    TargetType.RDS_CLUSTERS: ("Engine", "EngineMode", "MultiAZ"),
    TargetType.ECS_TASKS: ("availabilityZone", "launchType", "group", "taskDefinitionArn"),
}
"""The attributes each target type's resources carry (`Resource.attributes`) for filters to match."""


class StepTarget(_Step):
    target: TargetId
    selection: SelectionText = "ALL"
    filters: list[AttributeFilter] = Field(default_factory=list, max_length=MAX_FILTERS)


def filter_problems(target_type: TargetType, filters: Iterable[AttributeFilter], field: str) -> list[str]:
    """Why `filters` cannot apply to resources of `target_type`: a path they do not carry."""
    known = FILTER_PATHS.get(target_type, ())
    return [
        f"{field}.path: {f.path!r} is not an attribute of {target_type.value} resources"
        + (f" (one of {', '.join(known)})" if known else " (they take no filters)")
        for f in filters
        if f.path not in known
    ]


def passes(resource: Resource, filters: Iterable[AttributeFilter]) -> bool:
    """Every filter holds: the resource's attribute at its path is one of its values (FIS's rule)."""
    return all(resource.attributes.get(f.path) in f.values for f in filters)


class Action(_Step):
    description: Description = ""
    fault: ActionKind = Field(description="a fault of the catalogue, `wait` or `assert-alarm-state`")
    target: StepName | None = Field(default=None, description="a name in the experiment's `targets`")
    parameters: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    duration: StrictInt | None = Field(
        default=None,
        ge=1,
        le=MAX_DURATION_SECONDS,
        description="seconds the fault is held, then rolled back; none: until the experiment ends",
    )
    start_after: list[StepName] = Field(
        default_factory=list,
        max_length=MAX_ACTIONS,
        description="the actions that must complete before this one starts",
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("parameters")
    @classmethod
    def _parameters_fit(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        kind = info.data.get("fault")
        if isinstance(kind, FaultType):
            return validate_parameters(kind, value)
        if kind == ControlAction.ASSERT_ALARM_STATE:
            return AssertAlarmStateParameters.model_validate(value).model_dump(mode="json")
        if kind == ControlAction.WAIT and value:
            raise ValueError("wait takes no parameters (its duration is how long it waits)")
        return value

    @field_validator("start_after")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("start_after has duplicates")
        return value

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if isinstance(self.fault, FaultType):
            if self.target is None:
                raise ValueError(f"{self.fault.value} needs a target")
        elif self.target is not None:
            raise ValueError(f"{self.fault.value} takes no target")
        if self.fault == ControlAction.WAIT and self.duration is None:
            raise ValueError("wait needs a duration")
        if self.fault == ControlAction.ASSERT_ALARM_STATE and self.duration is not None:
            raise ValueError("assert-alarm-state checks once: it takes no duration")
        return self

    @property
    def completes_when_injected(self) -> bool:
        """An instant fault or an alarm check: nothing is held, so nothing waits for a duration."""
        if self.fault == ControlAction.ASSERT_ALARM_STATE:
            return True
        if not isinstance(self.fault, FaultType) or self.duration is not None:
            return False
        fault = FAULTS[self.fault]
        return fault.is_instant(fault.parameters.model_validate(self.parameters))

    @property
    def holds_to_the_end(self) -> bool:
        return self.duration is None and not self.completes_when_injected


class PlannedWindow(BaseModel):
    """An action's planned start and end, in seconds from the experiment's start."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ExperimentGraph(_Step):
    """The targets and actions of an experiment, checked as a graph."""

    targets: dict[StepName, StepTarget] = Field(default_factory=dict, max_length=MAX_TARGETS)
    actions: dict[StepName, Action] = Field(min_length=1, max_length=MAX_ACTIONS)
    duration: StrictInt = Field(
        ge=1, le=MAX_DURATION_SECONDS, description="seconds: the experiment ends then at the latest"
    )

    @model_validator(mode="after")
    def _a_graph_that_can_run(self) -> Self:
        # Each problem is an error at its own field (`body.actions.b.start_after`), its message
        # naming the field too, as it reads on its own in a list of problems.
        problems: list[tuple[tuple[str, ...], str]] = []
        for name, action in self.actions.items():
            if action.target is not None and action.target not in self.targets:
                problems.append(((name, "target"), f"{action.target!r} is not in targets"))
            for before in action.start_after:
                if before not in self.actions:
                    problems.append(((name, "start_after"), f"{before!r} is not an action"))
                elif before == name:
                    problems.append(((name, "start_after"), "an action cannot wait for itself"))
                elif self.actions[before].holds_to_the_end:
                    problems.append(
                        (
                            (name, "start_after"),
                            f"{before!r} holds until the experiment ends, so {name!r} would never "
                            f"start; give {before!r} a duration",
                        )
                    )
            if action.duration is not None and action.duration > self.duration:
                problems.append(
                    (
                        (name, "duration"),
                        f"{action.duration}s is longer than the experiment ({self.duration}s)",
                    )
                )
        if problems:
            raise _field_errors(
                [(("actions", *where), f"actions.{'.'.join(where)}: {why}") for where, why in problems]
            )
        cycle = _cycle({name: action.start_after for name, action in self.actions.items()})
        if cycle:
            raise _field_errors([(("actions",), f"actions: start_after makes a cycle: {' -> '.join(cycle)}")])
        width = self.at_once()
        if width > MAX_AT_ONCE:
            raise _field_errors(
                [(("actions",), f"actions: {width} could be in force at once; at most {MAX_AT_ONCE}")]
            )
        return self

    @classmethod
    def of(cls, spec: ExperimentSpec) -> ExperimentGraph:
        """The graph of a stored experiment: its own, or the one action of a single fault."""
        if spec.actions is None:
            return cls.single(spec)
        return cls.model_validate(
            {"targets": spec.targets or {}, "actions": spec.actions, "duration": spec.duration}
        )

    @classmethod
    def single(cls, spec: ExperimentSpec) -> ExperimentGraph:
        """A single-fault experiment as the graph of one action, named after its fault, on a target
        named `target`, held for the experiment's duration."""
        return cls.of_one_fault(spec.type, spec.target, spec.selection, spec.parameters, spec.duration)

    @classmethod
    def of_one_fault(
        cls, fault: FaultType, target_id: str, selection: str, parameters: dict[str, Any], duration: int
    ) -> ExperimentGraph:
        """The one action, held to the experiment's end; an instant fault (a reboot) with a wait
        beside it for the duration, named `observe`: a single-fault run lasts its duration
        whatever the fault, its stop conditions watched all along."""
        action = Action(fault=fault, target="target", parameters=parameters)
        actions = {fault.value: action}
        if action.completes_when_injected:
            actions[OBSERVE] = Action(fault=ControlAction.WAIT, duration=duration)
        return cls(
            targets={"target": StepTarget(target=target_id, selection=selection)},
            actions=actions,
            duration=duration,
        )

    def faults(self) -> list[tuple[str, Action]]:
        """The fault actions (not the controls), in `order()`."""
        return [
            (name, self.actions[name])
            for name in self.order()
            if isinstance(self.actions[name].fault, FaultType)
        ]

    def step_faults(self) -> dict[str, FaultType]:
        """Each step target a fault acts on, with the first fault (in `order()`) that does: the one
        whose eligible states the target is planned with. Every action on a step target hits the
        same resources, as in FIS, which resolves a target once per experiment."""
        firsts: dict[str, FaultType] = {}
        for _, action in self.faults():
            assert action.target is not None and isinstance(action.fault, FaultType)
            firsts.setdefault(action.target, action.fault)
        return firsts

    def checked_alarms(self) -> list[str]:
        """The alarms its assert-alarm-state actions read, each once."""
        names = [
            alarm
            for action in self.actions.values()
            if action.fault == ControlAction.ASSERT_ALARM_STATE
            for alarm in action.parameters["alarms"]
        ]
        return list(dict.fromkeys(names))

    def order(self) -> list[str]:
        """Every action after those it starts after; among ready ones, in the order they were given."""
        done: list[str] = []
        while len(done) < len(self.actions):
            done += [
                name
                for name, action in self.actions.items()
                if name not in done and all(before in done for before in action.start_after)
            ][:1]
        return done

    def schedule(self) -> dict[str, PlannedWindow]:
        """When each action would start and end, in seconds from the first in force, were every
        injection and rollback immediate: a preview's timeline. A run takes a little longer."""
        windows: dict[str, PlannedWindow] = {}
        for name in self.order():
            action = self.actions[name]
            start = max((windows[before].end for before in action.start_after), default=0)
            if action.completes_when_injected:
                end = start
            elif action.duration is None:
                end = self.duration
            else:
                end = start + action.duration
            windows[name] = PlannedWindow(start=min(start, self.duration), end=min(end, self.duration))
        return windows

    def at_once(self) -> int:
        """The most actions that can be in force together, whatever each injection takes.

        Two actions can overlap unless one starts after the other (directly or through others;
        `start_after` never names an action that holds to the end, so a predecessor is always done).
        That is the largest antichain of the order, by Dilworth's theorem the number of actions less
        a maximum matching of "comes before".
        """
        after = self._successors()
        match: dict[str, str] = {}

        def augment(name: str, seen: set[str]) -> bool:
            for later in after[name]:
                if later in seen:
                    continue
                seen.add(later)
                if later not in match or augment(match[later], seen):
                    match[later] = name
                    return True
            return False

        matched = sum(augment(name, set()) for name in self.actions)
        return len(self.actions) - matched

    def _successors(self) -> dict[str, set[str]]:
        """For each action, every action that starts after it, directly or not."""
        later: dict[str, set[str]] = {name: set() for name in self.actions}
        for name in reversed(self.order()):
            for before in self.actions[name].start_after:
                later[before] |= {name} | later[name]
        return later


class MultiStepExperiment(ExperimentGraph):
    """The API's body for an experiment of many steps: named targets and actions, as AWS FIS has them.

    What `POST /experiments` takes when the body has `actions`; the store keeps it as an
    `ExperimentSpec` (`spec()`) whose single-fault fields are its first fault action's.
    """

    name: Name
    description: Description = ""
    stop_conditions: StopConditions = Field(default_factory=list)
    probes: Probes = Field(default_factory=list)
    allow_irreversible: bool = Field(
        default=False, description="required when an action cannot be rolled back (ec2-terminate)"
    )

    @model_validator(mode="after")
    def _injects_something(self) -> Self:
        if not self.faults():
            raise ValueError(
                "actions: at least one action must be a fault (not only wait or assert-alarm-state)"
            )
        return self

    def spec(self) -> ExperimentSpec:
        _, first = self.faults()[0]
        assert first.target is not None and isinstance(first.fault, FaultType)
        step = self.targets[first.target]
        return ExperimentSpec(
            name=self.name,
            description=self.description,
            target=step.target,
            duration=self.duration,
            selection=step.selection,
            stop_conditions=self.stop_conditions,
            probes=[p.model_dump(mode="json") for p in self.probes],
            allow_irreversible=self.allow_irreversible,
            type=first.fault,
            parameters=first.parameters,
            targets={k: v.model_dump(mode="json") for k, v in self.targets.items()},
            actions={k: v.model_dump(mode="json", exclude_defaults=True) for k, v in self.actions.items()},
        )


def _field_errors(problems: list[tuple[tuple[str, ...], str]]) -> ValidationError:
    """One validation error per problem, each at its field (pydantic nests them under the body)."""
    return ValidationError.from_exception_data(
        "ExperimentGraph",
        [
            InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
            for loc, message in problems
        ],
    )


def _cycle(edges: Mapping[str, Iterable[str]]) -> list[str]:
    """A cycle of `start_after`, as the names along it (first repeated last), or [] if none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: explored
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for before in edges.get(name, ()):
            if state.get(before) == 1:
                return [*path[path.index(before) :], before]
            if before not in state and (found := visit(before)):
                return found
        state[name] = 2
        path.pop()
        return []

    for name in edges:
        if name not in state and (found := visit(name)):
            return found
    return []


# -- the semantics: what to do next ---------------------------------------------------------------


@dataclass(frozen=True)
class Moves:
    """What the run should do now, in this order: roll back `expired`, then start `ready`."""

    expired: list[str]
    """In force for their duration: roll back their own changes, then they complete."""
    ready: list[str]
    """Every action they start after has completed: inject them (in this order)."""
    finished: bool
    """Nothing more to start and nothing held for a duration: the experiment's end (global rollback)."""
    wake_in: float | None
    """Seconds until the next thing to do, when nothing is to be done now; None when finished."""


def advance(
    graph: ExperimentGraph,
    progress: Mapping[str, ActionProgress],
    started_at: datetime,
    now: datetime,
) -> Moves:
    """The next moves of a run of `graph` started at `started_at`, given each action's `progress`.

    Pure: the Advance step applies the moves (injecting, rolling back, recording), then asks again.
    The end of the experiment's `duration` finishes it, whatever is still pending or in force.
    """
    ends_at = started_at + timedelta(seconds=graph.duration)
    if now >= ends_at:
        return Moves(expired=[], ready=[], finished=True, wake_in=None)

    def status(name: str) -> ActionStatus:
        return progress[name].status if name in progress else ActionStatus.PENDING

    expired, due = [], [ends_at]
    for name, action in graph.actions.items():
        state = progress.get(name)
        if state is None or state.status != ActionStatus.IN_FORCE or action.duration is None:
            continue
        assert state.in_force_at is not None, f"{name} is in force without a time"
        until = state.in_force_at + timedelta(seconds=action.duration)
        if now >= until:
            expired.append(name)
        else:
            due.append(until)

    completed = {name for name in graph.actions if status(name) == ActionStatus.COMPLETED} | set(expired)
    ready = [
        name
        for name in graph.order()
        if status(name) == ActionStatus.PENDING
        and all(b in completed for b in graph.actions[name].start_after)
    ]
    if expired or ready:
        return Moves(expired=expired, ready=ready, finished=False, wake_in=0.0)

    if not any(status(name) == ActionStatus.IN_FORCE for name in graph.actions):
        # Nothing is held and nothing can start: every action is done, or what is left waits on
        # one that will never complete (its injection failed, which ends the run anyway).
        return Moves(expired=[], ready=[], finished=True, wake_in=None)
    return Moves(expired=[], ready=[], finished=False, wake_in=(min(due) - now).total_seconds())
