"""A run's progress in its result record, written so that a big run stays small and cheap."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from chaosplane.models import ExperimentResult, JournalEntry, JournalStatus
from chaosplane.ports import RunRepository

logger = logging.getLogger(__name__)

TIMELINE_IDS = 20  # a timeline line names at most this many resources: the result has them all
# A big run writes its progress in batches: one write per resource would rewrite the whole result
# item (every resource's state) each time, and one timeline line per resource would grow it past
# DynamoDB's 400 KB item limit near the policy's 1,000 resources. The journal, not this record, is
# what rollback works from, so a lagging record never leaves a fault behind.
WRITE_EVERY = 25  # resources between two writes of a big run's record...
WRITE_AFTER = timedelta(seconds=5)  # ...or this long, so that live status keeps moving


class Progress:
    """A run's per-resource progress in its result record: each of the first TIMELINE_IDS resources
    on its own timeline line, at once; past those, in batches with one line that counts them."""

    def __init__(
        self,
        store: RunRepository,
        result: ExperimentResult,
        step: str,
        verb: str,
        total: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._store, self._result, self._step, self._verb = store, result, step, verb
        self._total, self._clock = total, clock
        self._done = 0
        self._skipped = 0
        self._unwritten = 0
        self._written_at = clock()

    def done(self, message: str, *, skipped: bool = False) -> None:
        self._done += 1
        self._skipped += skipped
        if self._done <= TIMELINE_IDS:
            self._write((self._step, message))
            return
        self._unwritten += 1
        if self._unwritten >= WRITE_EVERY or self._clock() - self._written_at >= WRITE_AFTER:
            self.flush()

    def flush(self) -> None:
        if self._unwritten:
            skipped = f" ({self._skipped} of them skipped)" if self._skipped else ""
            self._write((self._step, f"{self._done} of {self._total} {self._verb}{skipped}"))

    def flush_quietly(self) -> None:
        """Flush on the way out of a failure: a failed write is logged, the failure stays the error."""
        try:
            self.flush()
        except Exception:
            logger.exception("progress of run %s could not be written", self._result.id)

    def _write(self, event: tuple[str, str]) -> None:
        self._store.update_run(self._result.id, resources=self._result.resources, event=event)
        self._unwritten = 0
        self._written_at = self._clock()


def catch_up(result: ExperimentResult, journaled: list[JournalEntry]) -> bool:
    """Fill the record from the journal where an earlier attempt ended before writing its batch.

    The journal knows a change was applied (or undone), not the state the resource showed then:
    the record says so instead of leaving the resource looking untouched.
    """
    by_id = {r.id: r for r in result.resources}
    changed = False
    for entry in journaled:
        resource = by_id.get(entry.resource_id)
        if resource is None or entry.status is JournalStatus.PENDING:
            continue
        if resource.after is None:
            resource.after, changed = f"{entry.action} applied", True
        if entry.status is JournalStatus.ROLLED_BACK and resource.restored is None:
            resource.restored, changed = f"{entry.action} undone", True
    return changed


def some(ids: Iterable[str]) -> str:
    """The ids joined by commas; for a big run the first twenty "and 980 more" (the item stays small)."""
    listed = list(ids)
    head = ", ".join(listed[:TIMELINE_IDS])
    return head if len(listed) <= TIMELINE_IDS else f"{head} and {len(listed) - TIMELINE_IDS} more"
