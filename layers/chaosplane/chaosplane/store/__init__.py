"""The DynamoDB adapter (pynamodb), one repository per aggregate; records become domain models here.

`Store` is every repository over one stack's tables. The domain never sees it: it depends on the
ports in `chaosplane.ports`, which `Store` satisfies and the in-memory fakes of the tests do too.
"""

from __future__ import annotations

from chaosplane.store.audit import Audit
from chaosplane.store.base import MAX_PAGE, LocksMoved
from chaosplane.store.journal import JournalEntries, RunJournal
from chaosplane.store.plans import Plans
from chaosplane.store.results import Results
from chaosplane.store.teams import NOTIFICATIONS_HOLD

__all__ = ["MAX_PAGE", "NOTIFICATIONS_HOLD", "LocksMoved", "RunJournal", "Store"]


class Store(Results, JournalEntries, Audit, Plans):
    """Targets, experiments, runs, the journal, teams, the audit trail and plans, on one stack."""
