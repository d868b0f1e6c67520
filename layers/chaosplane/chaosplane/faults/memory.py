"""A `Journal` kept in memory: for calling a family directly (benches, tests, a dry run).

It records what a run's journal would, without DynamoDB, so a bench times the family alone. A real
run always journals durably (`store.RunJournal`): only that survives a crash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chaosplane.faults.base import Resource, RunContext
from chaosplane.models import FaultType, JournalEntry, JournalStatus


class MemoryJournal:
    def __init__(self, run: RunContext, fault: FaultType | None = None) -> None:
        self.run = run
        self.fault = fault
        self.entries: list[JournalEntry] = []

    def before_change(self, resource: Resource, action: str, prior_state: dict[str, Any]) -> JournalEntry:
        now = datetime.now(UTC)
        entry = JournalEntry(
            result_id=self.run.result_id,
            key=f"{resource.id}#{action}",
            resource_id=resource.id,
            kind=resource.kind,
            action=action,
            prior_state=prior_state,
            fault=self.fault,
            created_at=now,
            updated_at=now,
        )
        self.entries.append(entry)
        return entry

    def applied(self, entry: JournalEntry) -> None:
        entry.status = JournalStatus.APPLIED
