from __future__ import annotations

from dataclasses import dataclass, field

from chaosplane.errors import InjectionFailed, NotEligible
from chaosplane.faults.base import Journal, Resource
from chaosplane.models import FaultType, JournalEntry, Target
from chaosplane.tenancy import TEAM_TAG


@dataclass
class FakeInstances:
    """EC2-like instances in a dictionary, with the EC2 family's change and undo (what the
    catalogue's `ec2-stop` calls): stop on inject, start on rollback, journal first.

    Knobs for the paths that matter: `deny` makes inject fail as an AccessDenied does (after the
    journal entry, as a real call that was refused); `rollback_failures` makes that many rollback
    calls fail first (transient or lasting).
    """

    states: dict[str, str] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    team: str = "red"
    """The team whose chaosplane/team tag `add` puts on the instances (the tests' team)."""
    eligible_states: frozenset[str] = frozenset({"running"})
    deny: set[str] = field(default_factory=set)
    rollback_failures: list[Exception] = field(default_factory=list)
    injected_with: dict[str, Resource] = field(default_factory=dict)
    reboots: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # the order rollback started them again in

    def add(self, count: int, state: str = "running", **labels: str) -> list[str]:
        start = len(self.states)
        ids = [f"i-{start + n:04d}" for n in range(count)]
        for instance in ids:
            self.states[instance] = state
            self.labels[instance] = {"app": "web", TEAM_TAG: self.team, **labels}
        return ids

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        """The instances whose labels hold the target's `key=value` selector (every `app=web`
        instance, for the default target)."""
        key, _, value = (target.selector or "").partition("=")
        return [
            Resource(instance, "ec2:instance", state, labels=dict(self.labels[instance]))
            for instance, state in self.states.items()
            if (not key or self.labels[instance].get(key) == value)
            and (not target.resource_ids or instance in target.resource_ids)
        ]

    def stop(self, resource: Resource, force: bool, journal: Journal) -> str:
        self.injected_with[resource.id] = resource
        now = self.states[resource.id]
        if now not in self.eligible_states:
            raise NotEligible(f"it is {now} now")
        entry = journal.before_change(resource, "stop", {"state": now})
        if resource.id in self.deny:
            raise InjectionFailed(f"stop_instances on {resource.id} failed: AccessDenied")
        self.states[resource.id] = "stopped"
        journal.applied(entry)
        return "stopped"

    def reboot(self, resource: Resource, journal: Journal) -> str:
        """As the EC2 family's: journaled, done at once, nothing to undo (rollback reads the state)."""
        now = self.states[resource.id]
        if now not in self.eligible_states:
            raise NotEligible(f"it is {now} now")
        journal.applied(journal.before_change(resource, "reboot", {"state": now}))
        self.reboots.append(resource.id)
        return "rebooting"

    def state(self, instance_id: str) -> str:
        return self.states[instance_id]

    def start_again(self, entry: JournalEntry) -> str:
        if self.rollback_failures:
            raise self.rollback_failures.pop(0)
        if self.states[entry.resource_id] == "stopped":
            self.states[entry.resource_id] = str(entry.prior_state["state"])
            self.restored.append(entry.resource_id)
        return self.states[entry.resource_id]
