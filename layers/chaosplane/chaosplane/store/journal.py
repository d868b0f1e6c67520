"""The journal: every change a run makes, written before it is made; rollback works from it alone."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from chaosplane.faults.base import Resource, RunContext
from chaosplane.models import JournalEntry, JournalStatus
from chaosplane.ports import JournalRepository
from chaosplane.store.base import StoreBase, is_condition_failure


class JournalEntries(StoreBase):
    @staticmethod
    def _entry(record: Any) -> JournalEntry:
        return JournalEntry.model_validate(record.attribute_values)

    def journal_before_change(
        self, result_id: str, resource: Resource, action: str, prior_state: dict[str, Any]
    ) -> JournalEntry:
        now = self._clock()
        record = self._journal(
            result_id=result_id,
            key=f"{resource.id}#{action}",
            resource_id=resource.id,
            kind=resource.kind,
            action=action,
            prior_state=prior_state,
            status=JournalStatus.PENDING.value,
            created_at=now,
            updated_at=now,
        )
        try:
            record.save(condition=self._journal.key.does_not_exist())
        except PutError as err:
            if not is_condition_failure(err):
                raise
            # A retried injection: the first entry holds the true prior state; keep it.
            record = self._journal.get(result_id, f"{resource.id}#{action}", consistent_read=True)
        return self._entry(record)

    def journal_set_status(self, entry: JournalEntry, status: JournalStatus) -> None:
        self._journal(result_id=entry.result_id, key=entry.key).update(
            actions=[self._journal.status.set(status.value), self._journal.updated_at.set(self._clock())]
        )

    def journal(self, result_id: str) -> list[JournalEntry]:
        return [self._entry(r) for r in self._journal.query(result_id, consistent_read=True)]


class RunJournal:
    """The `Journal` a fault family writes to during one run."""

    def __init__(self, store: JournalRepository, result_id: str, run: RunContext | None = None) -> None:
        self._store = store
        self._result_id = result_id
        self._run = run

    @property
    def run(self) -> RunContext:
        if self._run is None:
            raise RuntimeError("this journal was opened without its run's context")
        return self._run

    def before_change(self, resource: Resource, action: str, prior_state: dict[str, Any]) -> JournalEntry:
        return self._store.journal_before_change(self._result_id, resource, action, prior_state)

    def applied(self, entry: JournalEntry) -> None:
        self._store.journal_set_status(entry, JournalStatus.APPLIED)
