"""The blast-radius policy and the plan a run will carry out: what it hits, what it leaves, and why.

One function, `plan_run`, decides. The preview shows its answer and the run executes the same
answer, so what a user saw is what happens. A plan over policy is refused with its reasons, never
trimmed: a run that silently hits less than asked is as surprising as one that hits more.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from chaosplane.faults.base import Resource
from chaosplane.models import MAX_DURATION_SECONDS
from chaosplane.selection import Selection

PROTECTED_LABEL = "chaosplane/protected"
ALLOWED_LABEL = "chaosplane/allowed"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
ALL_TEAMS_LEVER = "*"  # the emergency stop for every team (platform admins only)


class InsufficientData(StrEnum):
    REFUSE = "refuse"
    ALLOW = "allow"


class SafetyPolicy(BaseModel):
    """A team's limits. The defaults are deliberately conservative; admins loosen them knowingly."""

    model_config = ConfigDict(extra="forbid")

    max_percent: StrictInt = Field(
        default=50, ge=1, le=100, description="of a target's eligible resources, per run"
    )
    max_resources: StrictInt = Field(default=10, ge=1, le=1000, description="resources hit by one run")
    max_duration: StrictInt = Field(default=3600, ge=1, le=MAX_DURATION_SECONDS, description="seconds")
    max_concurrent_runs: StrictInt = Field(default=5, ge=1, le=100, description="runs of the team at once")
    opt_in: StrictBool = Field(default=False, description=f"only resources labelled {ALLOWED_LABEL}=true")
    protected_namespaces: list[str] = Field(default_factory=list, max_length=100)
    insufficient_data: InsufficientData = InsufficientData.REFUSE


class Exclusion(StrEnum):
    PROTECTED = "protected"
    NOT_OPTED_IN = "not opted in"
    NOT_ELIGIBLE = "not in a state the fault acts on"
    OVER_CAP = "over cap"


@dataclass(frozen=True)
class Excluded:
    resource: Resource
    reason: Exclusion
    detail: str


@dataclass(frozen=True)
class Plan:
    selected: list[Resource]
    eligible_not_selected: list[Resource]
    excluded: list[Excluded]
    refusals: list[str] = field(default_factory=list)
    outside: Mapping[str, int] = field(default_factory=dict)
    """Resources resolved but not the team's to act on, counted by why (`tenancy.Outside`)."""

    @property
    def allowed(self) -> bool:
        return not self.refusals


def _truthy(labels: Mapping[str, str], key: str) -> bool:
    return labels.get(key, "").strip().lower() == "true"


def protection(resource: Resource, policy: SafetyPolicy) -> tuple[Exclusion, str] | None:
    """Why a resource may never be hit under this policy, if it may not."""
    if _truthy(resource.labels, PROTECTED_LABEL):
        return Exclusion.PROTECTED, f"labelled {PROTECTED_LABEL}=true"
    namespace = str(resource.detail.get("namespace", ""))
    if namespace and (namespace in SYSTEM_NAMESPACES or namespace in policy.protected_namespaces):
        return Exclusion.PROTECTED, f"in protected namespace {namespace}"
    if policy.opt_in and not _truthy(resource.labels, ALLOWED_LABEL):
        return Exclusion.NOT_OPTED_IN, f"team is opt-in and it is not labelled {ALLOWED_LABEL}=true"
    return None


def plan_run(
    matched: Sequence[Resource],
    eligible_states: frozenset[str],
    selection: Selection,
    duration: int,
    policy: SafetyPolicy,
    rng: random.Random,
) -> Plan:
    excluded: list[Excluded] = []
    eligible: list[Resource] = []
    for resource in sorted(matched, key=lambda r: r.id):
        reason = protection(resource, policy)
        if reason is not None:
            excluded.append(Excluded(resource, *reason))
        elif resource.state not in eligible_states:
            excluded.append(Excluded(resource, Exclusion.NOT_ELIGIBLE, f"it is {resource.state}"))
        else:
            eligible.append(resource)
    selected = selection.choose(eligible, rng)
    chosen = {r.id for r in selected}
    not_selected = [r for r in eligible if r.id not in chosen]

    refusals = refusals_for(len(selected), len(eligible), duration, policy)
    if refusals and selected:
        # Show which of the selected ones are beyond the caps, so the preview explains the refusal.
        allowed_by_percent = math.floor(len(eligible) * policy.max_percent / 100)
        cap = max(0, min(policy.max_resources, allowed_by_percent))
        excluded += [Excluded(r, Exclusion.OVER_CAP, "beyond the team's limits") for r in selected[cap:]]
    return Plan(selected=selected, eligible_not_selected=not_selected, excluded=excluded, refusals=refusals)


def refusals_for(selected: int, eligible: int, duration: int, policy: SafetyPolicy) -> list[str]:
    """Why hitting `selected` of `eligible` resources for `duration` is over `policy` (none: it is not)."""
    refusals = []
    if not selected:
        refusals.append("no eligible resource to hit")
    if duration > policy.max_duration:
        refusals.append(f"duration {duration}s is over the team's limit of {policy.max_duration}s")
    if selected > policy.max_resources:
        refusals.append(f"would hit {selected} resources; the team's limit is {policy.max_resources} per run")
    allowed_by_percent = math.floor(eligible * policy.max_percent / 100)
    if selected and selected > allowed_by_percent:
        share = round(100 * selected / eligible)
        refusals.append(
            f"would hit {selected} of {eligible} eligible resources ({share}%); "
            f"the team's limit is {policy.max_percent}%"
        )
    return refusals
