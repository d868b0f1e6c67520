"""The journal: every change a run makes, written before it is made; rollback works from it alone."""

from __future__ import annotations

import threading
from typing import Any

from pynamodb.exceptions import PutError

from chaosplane.faults.base import Resource, RunContext
from chaosplane.models import FaultType, JournalEntry, JournalStatus
from chaosplane.ports import JournalRepository
from chaosplane.store.base import StoreBase, is_condition_failure


def journal_key(resource_id: str, action: str, step: str | None) -> str:
    """One entry per resource and change, per action of a multi-step run (two actions may make
    the same change to one resource, one after the other)."""
    return f"{resource_id}#{action}" if step is None else f"{step}#{resource_id}#{action}"


class JournalEntries(StoreBase):
    @staticmethod
    def _entry(record: Any) -> JournalEntry:
        return JournalEntry.model_validate(record.attribute_values)

    def journal_before_change(
        self,
        result_id: str,
        resource: Resource,
        action: str,
        prior_state: dict[str, Any],
        fault: FaultType | None = None,
        step: str | None = None,
    ) -> JournalEntry:
        now = self._clock()
        key = journal_key(resource.id, action, step)
        record = self._journal(
            result_id=result_id,
            key=key,
            resource_id=resource.id,
            kind=resource.kind,
            action=action,
            prior_state=prior_state,
            status=JournalStatus.PENDING.value,
            fault=None if fault is None else fault.value,
            step=step,
            created_at=now,
            updated_at=now,
        )
        try:
            record.save(condition=self._journal.key.does_not_exist())
        except PutError as err:
            if not is_condition_failure(err):
                raise
            # A retried injection: the first entry holds the true prior state; keep it.
            record = self._journal.get(result_id, key, consistent_read=True)
        return self._entry(record)

    def journal(self, result_id: str) -> list[JournalEntry]:
        return [self._entry(r) for r in self._journal.query(result_id, consistent_read=True)]


class RunJournal:
    """The `Journal` a fault family writes to during one run; each entry names `fault`, whose
    rollback undoes it.

    An entry is written at once, before its change. That it was applied is only kept here, to go
    with the step's next progress write (`take_marks`): one write for a batch of resources.
    """

    def __init__(
        self,
        store: JournalRepository,
        result_id: str,
        run: RunContext | None = None,
        fault: FaultType | None = None,
        step: str | None = None,
    ) -> None:
        self._store = store
        self._result_id = result_id
        self._run = run
        self._fault = fault
        self._step = step
        self._marks: list[tuple[JournalEntry, JournalStatus]] = []
        self._lock = threading.Lock()  # families apply changes on worker threads

    @property
    def run(self) -> RunContext:
        if self._run is None:
            raise RuntimeError("this journal was opened without its run's context")
        return self._run

    def before_change(self, resource: Resource, action: str, prior_state: dict[str, Any]) -> JournalEntry:
        return self._store.journal_before_change(
            self._result_id, resource, action, prior_state, self._fault, self._step
        )

    def applied(self, entry: JournalEntry) -> None:
        with self._lock:
            self._marks.append((entry, JournalStatus.APPLIED))

    def take_marks(self) -> list[tuple[JournalEntry, JournalStatus]]:
        """The entries applied since the last call, for the progress write that records them."""
        with self._lock:
            marks, self._marks = self._marks, []
        return marks
