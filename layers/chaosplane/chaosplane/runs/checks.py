"""Checks a run passes before it may touch anything: stop conditions, the fault's target, consent."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chaosplane.errors import InvalidRequest
from chaosplane.faults import catalogue
from chaosplane.graph import ExperimentGraph, filter_problems
from chaosplane.models import FaultType, Target
from chaosplane.safety import InsufficientData
from chaosplane.tenancy import Boundary, Scope


@dataclass(frozen=True)
class AlarmState:
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str = ""
    team: str | None = None  # the alarm's chaosplane/team tag


AlarmReader = Callable[[list[str]], dict[str, AlarmState]]


def alarms_of(scope: Scope, read: AlarmReader | None) -> AlarmReader | None:
    """`read` as the team sees CloudWatch: within a tag boundary, an alarm not tagged as the team's
    is not found (its state and its metric are another team's; whose it is, is not said)."""
    if read is None or scope.boundary is Boundary.ACCOUNT:
        return read

    def of_the_team(names: list[str]) -> dict[str, AlarmState]:
        return {name: state for name, state in read(names).items() if state.team == scope.team}

    return of_the_team


def unfound_alarms(alarms: list[str], read: AlarmReader | None) -> list[str]:
    """Why a run may not start, for each alarm (name or ARN) `read` does not find."""
    names = list(dict.fromkeys(alarm_name(ref) for ref in alarms))
    if not names:
        return []
    if read is None:
        return ["alarms cannot be checked by this component"]
    found = read(names)
    return [f"alarm {name} does not exist" for name in names if name not in found]


def alarm_name(reference: str) -> str:
    """Stop conditions are alarm names or ARNs; CloudWatch and its events speak names."""
    return reference.split(":alarm:", 1)[-1]


def preflight(
    stop_conditions: list[str], read: AlarmReader | None, insufficient: InsufficientData
) -> tuple[dict[str, AlarmState], list[str]]:
    """The stop conditions' states, and the reasons a run may not start now (none: it may)."""
    names = [alarm_name(ref) for ref in stop_conditions]
    if not names:
        return {}, []
    if read is None:
        return {}, ["stop conditions cannot be checked by this component"]
    states = read(names)
    problems = []
    for name in names:
        found = states.get(name)
        if found is None:
            problems.append(f"stop condition {name} does not exist")
        elif found.state == "ALARM":
            problems.append(f"stop condition {name} is in ALARM: {found.reason}")
        elif found.state == "INSUFFICIENT_DATA" and insufficient is InsufficientData.REFUSE:
            problems.append(f"stop condition {name} has insufficient data (the team's policy refuses that)")
    return states, problems


def check_target_fits(experiment_fault: FaultType, target: Target, *, field: str | None = None) -> None:
    """`field`: the request's field to name in the error (when the request has one)."""

    wanted = catalogue.spec(experiment_fault).target_type
    if target.type is not wanted:
        raise InvalidRequest(
            f"fault {experiment_fault.value} acts on {wanted.value} targets, "
            f"but target {target.id} is {target.type.value}",
            field=field,
        )


def check_irreversible(fault: FaultType, allow_irreversible: bool, *, field: str | None = None) -> None:
    """An irreversible fault (ec2-terminate) only with the experiment's explicit consent."""

    if catalogue.spec(fault).irreversible and not allow_irreversible:
        raise InvalidRequest(
            f"fault {fault.value} is irreversible (rollback cannot undo it); "
            "the experiment must set allow_irreversible: true to use it",
            field=field,
        )


def check_graph_fits(
    graph: ExperimentGraph,
    targets: Mapping[str, Target],
    allow_irreversible: bool,
    *,
    multi_step: bool,
) -> None:
    """Every fault action has the consent it needs and fits its target's type, and every filter
    names an attribute its target's resources carry. `targets`: the graph's targets, by id.

    The fields named are the request's: a single-fault experiment's `target`, or a step target's.
    """
    for _, action in graph.faults():
        assert action.target is not None and isinstance(action.fault, FaultType)
        step = graph.targets[action.target]
        check_irreversible(action.fault, allow_irreversible, field="allow_irreversible")
        where = f"targets.{action.target}.target" if multi_step else "target"
        check_target_fits(action.fault, targets[step.target], field=where)
    for name, step in graph.targets.items():
        if step.target not in targets:  # no fault acts on it
            continue
        problems = filter_problems(targets[step.target].type, step.filters, f"targets.{name}.filters")
        if problems:
            raise InvalidRequest("; ".join(problems), field=f"targets.{name}.filters")
