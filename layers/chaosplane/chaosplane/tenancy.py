"""Team boundaries below the API: what a team's runs may act on, and what no run ever acts on.

The API keeps each team's records to itself; this module keeps each team's *faults* to what it
owns. By default a team acts only on resources tagged `chaosplane/team=<team>` (for Kubernetes
pods, in namespaces labelled so); a platform admin may give a team a whole account instead
(`boundary: account`). Whatever the boundary, the platform's own resources (its functions, and
anything its stack made) are never acted on: a throttled executor would leave every team's faults
injected.

Resolution applies it (`Scope.admits`), before the planner sees anything: a resource outside the
boundary is never selected and never listed, only counted. The executor's IAM policy carries the
same condition, so a bug here cannot cross it (template.yaml).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaosplane.faults.base import Resource
from chaosplane.models import ENVIRONMENT_PATTERN, REGION_PATTERN

TEAM_TAG = "chaosplane/team"
"""The tag (AWS) or namespace label (Kubernetes) naming the team a resource belongs to."""
STACK_TAG = "aws:cloudformation:stack-name"
"""What CloudFormation tags every resource of a stack with."""
SESSION_TEAM_TAG = "chaosplane:team"
"""The session tag a team's runs act with (IAM compares it to the resource's TEAM_TAG)."""


class Boundary(StrEnum):
    TAG = "tag"
    """Only resources tagged (pods: in namespaces labelled) chaosplane/team=<team>."""
    ACCOUNT = "account"
    """Anything in the account, the platform's own resources excepted."""


ROLE_ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
MAX_ENVIRONMENTS = 20


class Environment(BaseModel):
    """Another AWS account a team's targets may be in, and the role its runs act there as.

    The role is the target account's own (infra/target-account.yaml): it trusts the platform's
    roles only with the team's ExternalId, and is assumed with the team as a session tag."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=ENVIRONMENT_PATTERN, description="what targets call it (`environment`)")
    account_id: str = Field(pattern=r"^[0-9]{12}$")
    regions: list[str] = Field(
        min_length=1, max_length=20, description="where its targets may be; the first is the default"
    )
    role_arn: str = Field(pattern=ROLE_ARN_PATTERN, max_length=600)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        if bad := [r for r in value if not re.fullmatch(REGION_PATTERN, r)]:
            raise ValueError(f"not Region names: {', '.join(bad)}")
        if len(set(value)) != len(value):
            raise ValueError("regions has duplicates")
        return value

    @model_validator(mode="after")
    def _role_is_the_account_s(self) -> Environment:
        if self.role_arn.split(":")[4] != self.account_id:
            raise ValueError(f"role_arn must be a role of account {self.account_id}")
        return self


class TeamSettings(BaseModel):
    """What a platform admin decides for a team (`PUT /teams/{team}`)."""

    model_config = ConfigDict(extra="forbid")

    boundary: Boundary = Field(
        default=Boundary.TAG,
        description=f"tag: only resources tagged {TEAM_TAG}=<team>; account: the whole account",
    )
    environments: list[Environment] = Field(default_factory=list, max_length=MAX_ENVIRONMENTS)
    external_id: str | None = Field(
        default=None,
        description="set by the platform (ignored on input): the ExternalId its roles assume the "
        "environments' roles with; each target account's role requires it",
        json_schema_extra={"readOnly": True},
    )

    @field_validator("environments")
    @classmethod
    def _names_are_unique(cls, value: list[Environment]) -> list[Environment]:
        names = [e.name for e in value]
        if len(set(names)) != len(names):
            raise ValueError("environments have duplicate names")
        return value

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)


class NoSuchEnvironment(ValueError):
    """A target names an environment (or a Region of one) that its team does not have; `field`
    is the target's field at fault."""

    def __init__(self, message: str, field: str = "environment") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Place:
    """Where a target's resources are: another account's environment and one of its Regions
    (None for the platform's own account and Region), and the team's ExternalId."""

    environment: Environment
    region: str
    external_id: str


class Outside(StrEnum):
    """Why a resolved resource is not the team's to act on. The preview counts them by reason."""

    PLATFORM = "the platform's own"
    BOUNDARY = "outside the team's boundary"


@dataclass(frozen=True)
class PlatformSelf:
    """How the platform knows its own resources: its stack's tag, its functions' name prefix
    (CloudFormation names them `<stack>-<LogicalId>-<suffix>`), and ids or ARNs named outright."""

    stack_name: str = ""
    ids: frozenset[str] = frozenset()
    # Where the platform is: an alarm named without an ARN is this account's, in this Region
    # ("": not known, as in tests that build runs without a deployment).
    account_id: str = ""
    region: str = ""

    def is_home(self, account: str, region: str) -> bool:
        """Whether an ARN's account and Region are the platform's own."""
        return (not self.account_id or account == self.account_id) and (
            not self.region or region == self.region
        )

    def owns(self, resource: Resource) -> bool:
        if self.stack_name and resource.labels.get(STACK_TAG) == self.stack_name:
            return True
        names = {resource.id, str(resource.detail.get("arn", ""))} - {""}
        if names & self.ids:
            return True
        return (
            bool(self.stack_name)
            and resource.kind == "lambda:function"
            and (resource.id.startswith(self.stack_name + "-"))
        )


@dataclass(frozen=True)
class Scope:
    """What one team's runs may act on."""

    team: str
    boundary: Boundary = Boundary.TAG
    platform: PlatformSelf = field(default_factory=PlatformSelf)
    settings: TeamSettings = field(default_factory=TeamSettings)

    def place(self, environment: str | None, region: str | None) -> Place | None:
        """Where a target of the team's is (None: the platform's own account); a target naming an
        environment the team no longer has is refused, never run in the platform's account."""
        if environment is None:
            return None
        found = self.settings.environment(environment)
        if found is None:
            raise NoSuchEnvironment(
                f"team {self.team} has no environment {environment} (PUT /teams/{self.team})"
            )
        region = region or found.regions[0]
        if region not in found.regions:
            raise NoSuchEnvironment(f"region {region} is not one of environment {environment}'s", "region")
        return Place(found, region, self.settings.external_id or "")

    def place_of(self, account: str, region: str) -> Place | None:
        """The team's environment in `account` that has `region` (None: none of its environments
        is there), as for an alarm ARN of that account and Region."""
        for environment in self.settings.environments:
            if environment.account_id == account and region in environment.regions:
                return Place(environment, region, self.settings.external_id or "")
        return None

    def outside(self, resource: Resource) -> Outside | None:
        """Why `resource` is not this team's to act on (None: it is)."""
        if self.platform.owns(resource):
            return Outside.PLATFORM
        if self.boundary is Boundary.ACCOUNT or resource.kind in UNBOUNDED_KINDS:
            return None
        return None if owner(resource) == self.team else Outside.BOUNDARY

    def admits(self, resources: Iterable[Resource]) -> tuple[list[Resource], Counter[Outside]]:
        """The resources this team may act on, and how many others there were, by why."""
        inside: list[Resource] = []
        left: Counter[Outside] = Counter()
        for resource in resources:
            reason = self.outside(resource)
            if reason is None:
                inside.append(resource)
            else:
                left[reason] += 1
        return inside, left


UNBOUNDED_KINDS = frozenset({"http:endpoint"})
"""Kinds no tag can own: an external endpoint a team registers is the team's by registering it
(the outbound URL policy keeps it off the platform's own network)."""


def owner(resource: Resource) -> str | None:
    """The team a resource belongs to: its `chaosplane/team` tag, or for what lives in a namespace
    (a pod), the namespace's label; a pod's own labels are the workload's to set, not a grant."""
    if resource.scope_labels is not None:
        return resource.scope_labels.get(TEAM_TAG)
    return resource.labels.get(TEAM_TAG)


def counted(outside: Mapping[Outside, int]) -> dict[str, int]:
    """What a preview says of the resources it does not list: how many, by why."""
    return {reason.value: count for reason, count in outside.items() if count}
