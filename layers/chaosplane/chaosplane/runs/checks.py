"""Checks a run passes before it may touch anything: stop conditions, the fault's target, consent."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from chaosplane.errors import InvalidRequest
from chaosplane.faults import catalogue
from chaosplane.graph import ExperimentGraph, filter_problems
from chaosplane.metrics import MetricReader
from chaosplane.models import FaultType, Target
from chaosplane.safety import InsufficientData
from chaosplane.tenancy import Boundary, Place, PlatformSelf, Scope

logger = logging.getLogger(__name__)
_R = TypeVar("_R")
_A = TypeVar("_A")


@dataclass(frozen=True)
class AlarmState:
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str = ""
    team: str | None = None  # the alarm's chaosplane/team tag


AlarmReader = Callable[[list[str]], dict[str, AlarmState]]
"""Alarms' states by name, in one account and Region (CloudWatch's view); or, as a team sees them
(`alarms_of`), by the reference the team wrote: a name (the platform's account and Region) or
an ARN (there, if that is the platform's or one of the team's environments)."""
AlarmsIn = Callable[[str, Place], AlarmReader]
"""The alarm reader of a team's environment: the environment's role, in one of its Regions."""


@dataclass(frozen=True)
class AlarmRef:
    """Where a stop condition's alarm is: its name, and the account and Region of an ARN (None
    for a bare name: the platform's own)."""

    name: str
    account: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, reference: str) -> AlarmRef:
        head, arn, name = reference.partition(":alarm:")
        parts = head.split(":")  # arn, partition, cloudwatch, region, account
        if arn and len(parts) == 5 and parts[0] == "arn":
            return cls(name, parts[4], parts[3])
        return cls(reference)

    def is_at(self, name: str, account: str | None, region: str | None, platform: PlatformSelf) -> bool:
        """Whether this is the alarm `name` of `account` and `region` (an event's; None: not said)."""
        if name != self.name:
            return False
        if self.account is None:  # a bare name: the platform's account and Region
            return account is None or platform.is_home(account, region or "")
        return account in (None, self.account) and region in (None, self.region)


def by_place(scope: Scope, references: list[str]) -> list[tuple[Place | None, dict[str, str]]]:
    """The references (names or ARNs) grouped by where the team reads them, each group's by
    reference to alarm name: None for the platform's account and Region, or one of the team's
    environments. An ARN of anywhere else is in no group: the team has no alarm there."""
    groups: dict[tuple[str, str] | None, tuple[Place | None, dict[str, str]]] = {}
    for reference in dict.fromkeys(references):
        where = AlarmRef.of(reference)
        place: Place | None = None
        arn = (where.account, where.region or "") if where.account is not None else None
        if arn is not None and not scope.platform.is_home(*arn):
            place = scope.place_of(*arn)
            if place is None:
                continue
        key = (place.environment.name, place.region) if place is not None else None
        groups.setdefault(key, (place, {}))[1][reference] = where.name
    return list(groups.values())


def _read_where_each_is(
    scope: Scope,
    references: list[str],
    home: _R,
    elsewhere: Callable[[str, Place], _R] | None,
    ask: Callable[[_R, list[str]], _A],
    what: str,
) -> list[tuple[dict[str, str], _A]]:
    """`ask` each place's reader (`home`: the platform's own; `elsewhere`: an environment's, None
    if this component reads no other account) about its alarms, by name; each answer with its
    references' names. An environment that cannot be read (its role not assumed, or denied) is
    logged and left out: the other places' answers still count."""
    answers = []
    for place, names in by_place(scope, references):
        if place is not None and elsewhere is None:
            continue
        try:  # assuming an environment's role may fail too, as much as reading there
            reader = home if place is None or elsewhere is None else elsewhere(scope.team, place)
            answers.append((names, ask(reader, list(dict.fromkeys(names.values())))))
        except Exception:
            if place is None:
                raise  # the platform's own CloudWatch: the caller's failure to handle
            where = f"{place.environment.name}/{place.region}"
            logger.exception("%s of %s in %s cannot be read", what, scope.team, where)
    return answers


def alarms_of(scope: Scope, read: AlarmReader | None, read_in: AlarmsIn | None = None) -> AlarmReader | None:
    """`read` as the team sees CloudWatch, by reference: its environments' alarms read there
    (`read_in`), and, within a tag boundary, an alarm not tagged as the team's not found (its
    state and its metric are another team's; whose it is, is not said). The alarms of an
    environment that cannot be read are not found, so the sweeper still checks the others and a
    run is refused cleanly."""
    if read is None:
        return None

    def of_the_team(references: list[str]) -> dict[str, AlarmState]:
        found: dict[str, AlarmState] = {}
        answers = _read_where_each_is(scope, references, read, read_in, lambda r, n: r(n), "alarms")
        for names, states in answers:
            for reference, name in names.items():
                state = states.get(name)
                if state is not None and (scope.boundary is Boundary.ACCOUNT or state.team == scope.team):
                    found[reference] = state
        return found

    return of_the_team


MetricsIn = Callable[[str, Place], MetricReader]
"""The metric reader of a team's environment, as `AlarmsIn` is its alarm reader."""


def metrics_of(scope: Scope, read: MetricReader, read_in: MetricsIn | None = None) -> MetricReader:
    """`read` over the team's stop conditions by reference (as `alarms_of`), each series named by
    its reference; an alarm the team has no way to read is a series with no points and a note."""

    def of_the_team(references: list[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}

        def ask(reader: MetricReader, names: list[str]) -> list[dict[str, Any]]:
            return reader(names, start, end)

        for names, got in _read_where_each_is(scope, references, read, read_in, ask, "metrics"):
            series = {s["alarm"]: s for s in got}
            for reference, name in names.items():
                if name in series:
                    found[reference] = {**series[name], "alarm": reference}
        unread = {"timestamps": [], "values": [], "note": "alarm not found"}
        return [found.get(ref) or {"alarm": ref, **unread} for ref in dict.fromkeys(references)]

    return of_the_team


def unfound_alarms(alarms: list[str], read: AlarmReader | None) -> list[str]:
    """Why a run may not start, for each alarm (name or ARN) the team's `read` does not find."""
    references = list(dict.fromkeys(alarms))
    if not references:
        return []
    if read is None:
        return ["alarms cannot be checked by this component"]
    found = read(references)
    return [f"alarm {ref} does not exist" for ref in references if ref not in found]


def preflight(
    stop_conditions: list[str], read: AlarmReader | None, insufficient: InsufficientData
) -> tuple[dict[str, AlarmState], list[str]]:
    """The stop conditions' states as the team's `read` finds them, by reference, and the reasons
    a run may not start now (none: it may)."""
    references = list(stop_conditions)
    if not references:
        return {}, []
    if read is None:
        return {}, ["stop conditions cannot be checked by this component"]
    states = read(references)
    problems = []
    for name in references:
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
