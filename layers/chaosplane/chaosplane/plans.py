"""A run's plan as data: made once, stored, shown by the preview and carried out by the run.

The planner (`safety.plan_run`) decides what a run hits; this module gives its answer an identity
and a lifetime. `POST /experiments/{id}/preview` stores the plan it shows and returns its id, and
`POST /experiments/{id}/run {"plan_id": ...}` executes exactly that plan, or refuses with each
resource that is no longer eligible. Every run, previewed or not, executes a stored plan: Inject
reads the resources from it, labels and all, never from the result's lossy summary.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chaosplane.contracts import StopConditionState
from chaosplane.faults.base import Resource
from chaosplane.graph import PlannedWindow
from chaosplane.models import Experiment, ExperimentResult, FaultType, ResourceState, new_id
from chaosplane.safety import Exclusion, Plan, SafetyPolicy, protection, refusals_for
from chaosplane.tenancy import Boundary, Environment, Place

PREVIEW_LIFETIME = timedelta(minutes=15)  # a previewed plan may start a run this long
KEEP_AFTER = timedelta(days=1)  # how long DynamoDB keeps a plan past its use (TTL)


class PlannedPlace(BaseModel):
    """Another account's environment, and the Region in it, that a step target's resources are in."""

    environment: Environment
    region: str


class PlannedResource(BaseModel):
    """A resource as the planner saw it: enough for Inject to act on it without resolving again."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: str
    state: str
    labels: dict[str, str] = Field(default_factory=dict)
    detail: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, str] = Field(default_factory=dict)
    scope_labels: dict[str, str] | None = None
    step: str | None = None
    """The step target of a multi-step run that selected it; None: a single fault's one target."""

    @classmethod
    def of(cls, resource: Resource, step: str | None = None) -> PlannedResource:
        return cls(
            step=step,
            id=resource.id,
            kind=resource.kind,
            state=resource.state,
            labels=dict(resource.labels),
            detail=dict(resource.detail),
            attributes=dict(resource.attributes),
            scope_labels=None if resource.scope_labels is None else dict(resource.scope_labels),
        )

    def resource(self) -> Resource:
        return Resource(
            self.id,
            self.kind,
            self.state,
            labels=dict(self.labels),
            detail=dict(self.detail),
            attributes=dict(self.attributes),
            scope_labels=None if self.scope_labels is None else dict(self.scope_labels),
        )


class LeftAlone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource: PlannedResource
    reason: Exclusion
    detail: str


class RunPlan(BaseModel):
    """What one run hits, what it leaves alone and why, and what the policy said then."""

    model_config = ConfigDict(extra="forbid")

    id: str
    team: str
    experiment_id: str
    # A previewed plan is for the experiment as it was: a change voids it. None: made by a run.
    experiment_updated_at: datetime | None
    target_id: str
    fault: FaultType
    selection: str
    duration: int
    created_at: datetime
    expires_at: datetime
    selected: list[PlannedResource]
    eligible_not_selected: list[PlannedResource]
    excluded: list[LeftAlone]
    refusals: list[str]
    steps: dict[str, str] = Field(default_factory=dict)
    """A multi-step run's fault actions, each with the step target it hits; empty: one fault."""
    outside: dict[str, int] = Field(default_factory=dict)
    """How many resolved resources were not the team's to act on, by why (`tenancy.Outside`):
    counted, never listed."""
    places: dict[str, PlannedPlace] = Field(default_factory=dict)
    """Where each step target's resources are (key "": a single fault's target) when not in the
    platform's account: the environment as it was, so the rollback acts where the run did."""
    boundary: Boundary | None = None
    """The team's boundary when the plan was made: the identity its changes and their rollback
    act with (None: a plan from before boundaries, whose changes the executor made as itself)."""

    @classmethod
    def for_preview(cls, plan: StepPlans, experiment: Experiment, now: datetime) -> RunPlan:
        """A preview's plan: a run may execute it for PREVIEW_LIFETIME, if the experiment stays as it is."""
        return cls._of(
            plan,
            experiment.team,
            experiment.id,
            experiment.updated_at,
            experiment.target,
            experiment.type,
            experiment.selection,
            experiment.duration,
            now,
            now + PREVIEW_LIFETIME,
        )

    @classmethod
    def for_run(cls, plan: StepPlans, run: ExperimentResult, now: datetime) -> RunPlan:
        """The plan a run made for itself, from what it froze at its start; no other run may use it."""
        return cls._of(
            plan,
            run.team,
            run.experiment_id,
            None,
            run.target_id,
            run.fault,
            run.selection,
            run.duration,
            now,
            now,
        )

    @classmethod
    def _of(
        cls,
        plans: StepPlans,
        team: str,
        experiment_id: str,
        experiment_updated_at: datetime | None,
        target_id: str,
        fault: FaultType,
        selection: str,
        duration: int,
        now: datetime,
        expires_at: datetime,
    ) -> RunPlan:
        return cls(
            id=new_id(),
            team=team,
            experiment_id=experiment_id,
            experiment_updated_at=experiment_updated_at,
            target_id=target_id,
            fault=fault,
            selection=selection,
            duration=duration,
            created_at=now,
            expires_at=expires_at,
            selected=[PlannedResource.of(r, step) for step, p in plans.by_step.items() for r in p.selected],
            eligible_not_selected=[
                PlannedResource.of(r, step)
                for step, p in plans.by_step.items()
                for r in p.eligible_not_selected
            ],
            excluded=[
                LeftAlone(resource=PlannedResource.of(e.resource, step), reason=e.reason, detail=e.detail)
                for step, p in plans.by_step.items()
                for e in p.excluded
            ],
            refusals=plans.refusals,
            steps=dict(plans.actions),
            outside=plans.outside,
            places={
                step or "": PlannedPlace(environment=place.environment, region=place.region)
                for step, place in plans.places.items()
            },
            boundary=plans.boundary,
        )

    def resources(self) -> list[ResourceState]:
        """The run's record of what it will hit (the result's `resources`), in the plan's order: a
        multi-step run's, once per fault action, named by the action."""
        if not self.steps:
            return [
                ResourceState(id=r.id, kind=r.kind, before=r.state, detail=dict(r.detail))
                for r in self.selected
            ]
        return [
            ResourceState(id=r.id, kind=r.kind, before=r.state, detail=dict(r.detail), step=action)
            for action, step in self.steps.items()
            for r in self.selected
            if r.step == step
        ]

    def place_of(self, action: str | None, external_id: str) -> Place | None:
        """Where the fault action `action` (None: a single fault's) acts; None: in the platform's
        own account."""
        found = self.places.get(self.steps.get(action, "") if action is not None else "")
        return None if found is None else Place(found.environment, found.region, external_id)

    def of_step(self, step: str | None, target_id: str) -> RunPlan:
        """The part of the plan for one step target, `target_id` (None: a single fault's plan)."""
        if step is None:
            return self
        return self.model_copy(
            update={
                "target_id": target_id,
                "selected": [r for r in self.selected if r.step == step],
                "eligible_not_selected": [r for r in self.eligible_not_selected if r.step == step],
                "excluded": [e for e in self.excluded if e.resource.step == step],
            }
        )

    def of_action(self, action: str) -> dict[str, Resource]:
        """What `action` hits, by id, as planned (labels and detail included); for a single-fault
        run (no steps), everything selected."""
        step = self.steps.get(action)
        return {r.id: r.resource() for r in self.selected if r.step == step}

    def encode(self) -> bytes:
        return zlib.compress(self.model_dump_json().encode(), level=6)

    @classmethod
    def decode(cls, body: bytes) -> RunPlan:
        return cls.model_validate_json(zlib.decompress(body))


@dataclass(frozen=True)
class StepPlans:
    """What the planner said for each step target a run hits (the key None: a single fault's
    target), and which step target each fault action hits (empty: one fault)."""

    by_step: Mapping[str | None, Plan]
    actions: Mapping[str, str] = field(default_factory=dict)
    boundary: Boundary | None = None
    places: Mapping[str | None, Place] = field(default_factory=dict)

    @property
    def selected(self) -> int:
        return sum(len(p.selected) for p in self.by_step.values())

    @property
    def outside(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for p in self.by_step.values():
            for reason, count in p.outside.items():
                total[reason] = total.get(reason, 0) + count
        return total

    @property
    def refusals(self) -> list[str]:
        return [
            refusal if step is None else f"targets.{step}: {refusal}"
            for step, p in self.by_step.items()
            for refusal in p.refusals
        ]


def refusal_to_start(plan: RunPlan, experiment: Experiment, now: datetime) -> str | None:
    """Why a run may not start from `plan` at all: it expired, or it was made for another experiment
    or for the experiment as it was before a change."""
    if plan.experiment_id != experiment.id:
        return f"plan {plan.id} was made for experiment {plan.experiment_id}, not {experiment.id}"
    if now >= plan.expires_at:
        return f"plan {plan.id} expired at {plan.expires_at.isoformat()}; preview again"
    if plan.experiment_updated_at is not None and experiment.updated_at != plan.experiment_updated_at:
        return f"experiment {experiment.id} changed since plan {plan.id} was made; preview again"
    return None


def no_longer_eligible(
    plan: RunPlan, matched: Sequence[Resource], eligible_states: frozenset[str], policy: SafetyPolicy
) -> list[str]:
    """Each planned resource that may not be hit now, with why (none: the plan stands as it is).

    The plan's own selection stands: nothing is sampled again. A resource is still eligible when
    the target still matches it, it is in a state the fault acts on, and the policy does not
    protect it.
    """
    current: Mapping[str, Resource] = {r.id: r for r in matched}
    reasons = []
    for planned in plan.selected:
        found = current.get(planned.id)
        if found is None:
            reasons.append(f"{planned.id}: no longer matched by target {plan.target_id}")
        elif (protected := protection(found, policy)) is not None:
            reasons.append(f"{planned.id}: {protected[1]}")
        elif found.state not in eligible_states:
            reasons.append(f"{planned.id}: it is {found.state} now (was {planned.state})")
    return reasons


def over_policy(
    plan: RunPlan, matched: Sequence[Resource], eligible_states: frozenset[str], policy: SafetyPolicy
) -> list[str]:
    """Why the plan's selection, as a whole, is over the team's policy as it is now (none: it is not)."""
    eligible = sum(1 for r in matched if protection(r, policy) is None and r.state in eligible_states)
    return refusals_for(len(plan.selected), eligible, plan.duration, policy)


# -- what the preview answers (POST /experiments/{id}/preview): the stored plan, shown -------------


class ShownResource(BaseModel):
    id: str
    kind: str
    state: str
    labels: dict[str, str] = Field(default_factory=dict)
    step: str | None = Field(default=None, description="the step target (multi-step experiments)")

    @classmethod
    def of(cls, resource: PlannedResource) -> ShownResource:
        return cls(
            id=resource.id,
            kind=resource.kind,
            state=resource.state,
            labels=dict(resource.labels),
            step=resource.step,
        )


class ShownExclusion(ShownResource):
    reason: Exclusion
    detail: str = Field(description="why, in words")


class Verdict(BaseModel):
    allowed: bool
    reasons: list[str] = Field(default_factory=list, description="why a run would be refused now")


class Preview(BaseModel):
    """Exactly what a run would hit now; `POST /experiments/{id}/run {"plan_id"}` hits just that."""

    plan_id: str
    expires_at: datetime = Field(description="a run may execute this plan until then")
    experiment_id: str
    fault: FaultType
    irreversible: bool
    selection: str
    selected: list[ShownResource]
    eligible_not_selected: list[ShownResource]
    excluded: list[ShownExclusion]
    stop_conditions: list[StopConditionState]
    policy: SafetyPolicy
    verdict: Verdict
    steps: dict[str, str] = Field(
        default_factory=dict, description="each fault action and the step target it hits (multi-step)"
    )
    schedule: dict[str, PlannedWindow] = Field(
        default_factory=dict,
        description="when each action would start and end (seconds from the start), injecting at once",
    )
    outside: dict[str, int] = Field(
        default_factory=dict,
        description="resources the target matched that are not the team's to act on, counted by why "
        "(outside the team's boundary; the platform's own): never listed",
    )

    @classmethod
    def of(
        cls,
        plan: RunPlan,
        *,
        schedule: dict[str, PlannedWindow],
        irreversible: bool,
        stop_conditions: list[StopConditionState],
        policy: SafetyPolicy,
        refusals: list[str],
    ) -> Preview:
        return cls(
            plan_id=plan.id,
            expires_at=plan.expires_at,
            experiment_id=plan.experiment_id,
            fault=plan.fault,
            irreversible=irreversible,
            selection=plan.selection,
            selected=[ShownResource.of(r) for r in plan.selected],
            eligible_not_selected=[ShownResource.of(r) for r in plan.eligible_not_selected],
            excluded=[
                ShownExclusion(**ShownResource.of(e.resource).model_dump(), reason=e.reason, detail=e.detail)
                for e in plan.excluded
            ],
            stop_conditions=stop_conditions,
            policy=policy,
            verdict=Verdict(allowed=not refusals, reasons=refusals),
            steps=dict(plan.steps),
            schedule=schedule,
            outside=dict(plan.outside),
        )
