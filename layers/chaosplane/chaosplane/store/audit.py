"""The audit trail: who did what, newest first per team."""

from __future__ import annotations

from chaosplane.models import AuditEntry, Page
from chaosplane.store.base import MAX_PAGE, StoreBase, decode_token, encode_token


class Audit(StoreBase):
    def record_audit(self, entry: AuditEntry) -> None:
        """Append one entry, never over another: the API's role may put audit items, not change them.

        pynamodb retries a throttled or failed write (its max_retry_attempts); what still fails is
        raised, for the API to answer 500 instead of the request's own answer."""
        at_id = f"{entry.at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{entry.request_id}"
        record = self._audit(team=entry.team, at_id=at_id, entry=entry.model_dump(mode="json"))
        record.save(condition=self._audit.at_id.does_not_exist())

    def list_audit(self, limit: int, next_token: str | None, *, team: str) -> Page[AuditEntry]:
        limit = max(1, min(limit, MAX_PAGE))
        start = decode_token(next_token, {"team", "at_id"}, "team", team) if next_token else None
        records = list(
            self._audit.query(team, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start)
        )
        token = None
        if len(records) > limit:
            last = records[limit - 1]
            token = encode_token({"team": {"S": last.team}, "at_id": {"S": last.at_id}})
        return Page[AuditEntry](
            items=[AuditEntry.model_validate(r.entry) for r in records[:limit]], next_token=token
        )
