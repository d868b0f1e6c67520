"""A run's progress in its result record, written so that a big run stays small and cheap."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from chaosplane.models import ActionProgress, ExperimentResult, JournalEntry, JournalStatus
from chaosplane.ports import Clock, RunRepository

logger = logging.getLogger(__name__)
JournalMark = tuple[JournalEntry, JournalStatus]

TIMELINE_IDS = 20  # a timeline line names at most this many resources: the result has them all
# A big run writes its progress in batches: one write per resource would rewrite the whole result
# item (every resource's state) each time, and one timeline line per resource would grow it past
# DynamoDB's 400 KB item limit near the policy's 1,000 resources. The journal, not this record, is
# what rollback works from, so a lagging record never leaves a fault behind.
WRITE_EVERY = 25  # resources between two writes of a big run's record...
WRITE_AFTER = timedelta(seconds=5)  # ...or this long, so that live status keeps moving


class Progress:
    """A run's per-resource progress in its result record.

    Each of the first TIMELINE_IDS resources gets a timeline line of its own; past those, one
    line counts them. Lines and states are written in batches (every WRITE_EVERY resources, or
    once WRITE_AFTER has passed since the last write), and what is left goes with the step's own
    last write (`flush(event=..., metrics=...)`): a small run writes its record once per step.
    """

    def __init__(
        self,
        store: RunRepository,
        result: ExperimentResult,
        step: str,
        verb: str,
        total: int,
        clock: Clock,
        journal_marks: Callable[[], list[JournalMark]] | None = None,
    ) -> None:
        self._store, self._result, self._step, self._verb = store, result, step, verb
        self._total, self._clock = total, clock
        # Marks of the step's journal entries (applied, rolled back) go with the same writes.
        self._take_marks = journal_marks or list
        self._marks: list[JournalMark] = []
        self._done = 0
        self._skipped = 0
        self._unwritten = 0
        self._uncounted = 0  # unwritten resources past the first TIMELINE_IDS
        self._lines: list[tuple[str, str]] = []
        self._written_at = clock()

    def done(self, message: str, *, skipped: bool = False, mark: JournalMark | None = None) -> None:
        self._done += 1
        if mark is not None:
            self._marks.append(mark)
        self._skipped += skipped
        self._unwritten += 1
        if self._done <= TIMELINE_IDS:
            self._lines.append((self._step, message))
        else:
            self._uncounted += 1
        if self._unwritten >= WRITE_EVERY or self._clock() - self._written_at >= WRITE_AFTER:
            self.flush()

    def flush(
        self,
        *,
        event: tuple[str, str] | None = None,
        metrics: dict[str, Any] | None = None,
        actions: dict[str, ActionProgress] | None = None,
    ) -> None:
        """Write what is not written yet, and the step's own last line, figures and actions'
        progress, in one write."""
        marks = [*self._marks, *self._take_marks()]
        self._marks = []
        if not self._unwritten and event is None and metrics is None and actions is None and not marks:
            return
        lines = list(self._lines)
        if self._uncounted:
            skipped = f" ({self._skipped} of them skipped)" if self._skipped else ""
            lines.append((self._step, f"{self._done} of {self._total} {self._verb}{skipped}"))
        if event is not None:
            lines.append(event)
        self._store.update_run(
            self._result.id,
            resources=self._result.resources if self._unwritten else None,
            events=lines or None,
            metrics=metrics,
            journal_marks=marks or None,
            actions=actions,
        )
        self._unwritten = self._uncounted = 0
        self._lines = []
        self._written_at = self._clock()

    def flush_quietly(self) -> None:
        """Flush on the way out of a failure: a failed write is logged, the failure stays the error."""
        try:
            self.flush()
        except Exception:
            logger.exception("progress of run %s could not be written", self._result.id)


def catch_up(result: ExperimentResult, journaled: list[JournalEntry]) -> bool:
    """Fill the record from the journal where an earlier attempt ended before writing its batch.

    The journal knows a change was applied (or undone), not the state the resource showed then:
    the record says so instead of leaving the resource looking untouched.
    """
    by_key = {(r.step, r.id): r for r in result.resources}
    changed = False
    for entry in journaled:
        resource = by_key.get((entry.step, entry.resource_id))
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
