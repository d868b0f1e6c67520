"""The shapes of a fault and of a fault family.

A `Fault` is one small registered object (`catalogue.py`): its name, the target type it hits, its
parameters, whether rollback can undo it, and how it is injected and rolled back *through* its
family. A family is the resource adapter: it knows one kind of resource (EC2 instances, EKS
pods, ...), resolves targets to resources, says which states are eligible, and makes the AWS or
Kubernetes calls. It never decides *which* resources are hit (that is `selection`) and never
stores anything itself: it writes to the `Journal` it is handed, before every change, so rollback
can work from the journal alone.

Nothing here imports boto3 or kubernetes: the catalogue is built on this module, and the data
model validates experiments through the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from chaosplane.models import FaultType, JournalEntry, Target, TargetType

FamilyT = TypeVar("FamilyT")
ParametersT = TypeVar("ParametersT", bound=BaseModel)


@dataclass(frozen=True)
class Resource:
    """A resource a target resolved to, as seen at resolution time."""

    id: str
    kind: str
    state: str
    labels: Mapping[str, str] = field(default_factory=dict)
    detail: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, str] = field(default_factory=dict)
    """What a multi-step target's `filters` match on, by the Describe API's path
    (`Placement.AvailabilityZone`): the paths of `graph.FILTER_PATHS` for its type."""
    scope_labels: Mapping[str, str] | None = None
    """The labels of what holds the resource, where they and not its own say whose it is (a pod's
    namespace's: `tenancy.owner`); None: its own labels (an AWS resource's tags) say it."""


@dataclass(frozen=True)
class RunContext:
    """The run a change belongs to: for faults that tag, sign or time-limit what they do."""

    result_id: str
    experiment_id: str
    duration: int
    deadline: datetime
    """When the fault should be gone at the latest: a receiver or agent may revert by itself then."""
    step: str | None = None
    """The action of a multi-step run making the change (None: a single-fault run's one fault):
    two actions of one run may act on the same resource, one after the other."""


class Journal(Protocol):
    @property
    def run(self) -> RunContext: ...

    def before_change(self, resource: Resource, action: str, prior_state: dict[str, Any]) -> JournalEntry: ...

    def applied(self, entry: JournalEntry) -> None: ...


class FaultFamily(Protocol):
    """What the run asks of every family; the changes themselves are the family's own methods,
    which its faults call."""

    eligible_states: frozenset[str]
    """States a resource must be in to be hit (e.g. only running instances can be stopped)."""

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        """Every resource the target matches, in any state, in no particular order."""
        ...


@dataclass(frozen=True)
class Fault(Generic[FamilyT, ParametersT]):
    """One fault, done and undone through its family (`FamilyT`, built by the wiring)."""

    name: FaultType
    target_type: TargetType
    parameters: type[ParametersT]
    summary: str
    inject: Callable[[FamilyT, Resource, ParametersT, Journal], str]
    """Change one resource; return its state afterwards. Journal first, then act."""
    rollback: Callable[[FamilyT, JournalEntry], str]
    """Undo one journaled change; return the state the resource is left in. Idempotent."""
    irreversible: bool = False
    """Rollback cannot undo it (only report what happened since): needs `allow_irreversible: true`."""
    instant: bool | Callable[[ParametersT], bool] = False
    """Done once injected, with nothing held (a reboot, a deletion), or a test of the parameters
    that says so (a failover without failback): in a multi-step experiment its action completes
    when injected, so the actions after it may start."""

    def is_instant(self, parameters: ParametersT) -> bool:
        return self.instant(parameters) if callable(self.instant) else self.instant


@runtime_checkable
class AccessChecking(Protocol):
    """A family that can ask, before anything is touched, whether it may inject and roll back."""

    def check_access(self, target: Target, fault: FaultType) -> list[str]:
        """Every permission missing for `fault` on `target`, in words an operator can act on."""
        ...
