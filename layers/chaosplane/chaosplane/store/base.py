"""What every repository of the store shares: the bound tables, paging, transactions, lookups.

Invariants are kept with conditional writes, not with reads-then-writes:
- an experiment has at most one active run (`active_run`), set when the run is created and
  cleared when it is finalized, in the same transactions as the result record;
- an experiment with an active run cannot be changed or deleted;
- a journal entry, once written, keeps the prior state it first recorded (a retried injection
  must not overwrite "running" with "stopped").
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactGetError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from chaosplane.errors import ChaosplaneError, InvalidRequest, NotFound, TransientError
from chaosplane.models import utcnow
from chaosplane.safety import ALL_TEAMS_LEVER
from chaosplane.settings import Settings
from chaosplane.store.records import bind

# Every item belongs to a scope, its team; lists are queries on (scope, created_at) so they come
# newest first without a table scan, and a team's list never reads another team's items.
MAX_PAGE = 100
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit on the items of one TransactWriteItems
ACTIVE = "yes"
ALL_TEAMS = ALL_TEAMS_LEVER  # the team record that holds the platform-wide emergency stop
# Ids are UUIDs, or Step Functions execution names for runs started outside the API.
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


class LocksMoved(ChaosplaneError):
    """A lock this run held is no longer its own (released by an earlier recovery)."""


def is_condition_failure(err: Exception) -> bool:
    cause = getattr(err, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def _cancellation_codes(err: TransactWriteError) -> list[str | None]:
    return [reason.code if reason else None for reason in (err.cancellation_reasons or [])]


def encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def decode_token(token: str, expected_keys: set[str], scope_field: str, scope: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise InvalidRequest("next_token is not a token this API issued") from err
    if not isinstance(key, dict) or set(key) != expected_keys:
        raise InvalidRequest("next_token is not a token this API issued")
    for value in key.values():
        if not isinstance(value, dict) or set(value) != {"S"} or not isinstance(value["S"], str):
            raise InvalidRequest("next_token is not a token this API issued")
    if key[scope_field]["S"] != scope:
        raise InvalidRequest("next_token belongs to another listing")
    return key


class StoreBase:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        tables = bind(settings)
        self._targets = tables.targets
        self._experiments = tables.experiments
        self._results = tables.results
        self._journal = tables.journal
        self._audit = tables.audit
        self._teams = tables.teams
        self._plans = tables.plans
        self._clock = clock
        # One pynamodb Connection, so one botocore client, for all of this store's tables and its
        # transactions: pynamodb makes one per record class, each client loading DynamoDB's
        # service model again (a cold function's first event paid for each table it touched).
        # Its HTTP pool is sized for a run's changes at once (settings.connections), as each was.
        records = (self._targets, self._experiments, self._results, self._journal, self._audit, self._teams)
        connections = [record._get_connection() for record in (*records, self._plans)]
        self._transactions: Connection = connections[0].connection
        for table in connections[1:]:
            self._transactions.add_meta_table(table.get_meta_table())
            table.connection = self._transactions

    # -- paging ---------------------------------------------------------------------------------

    def _page(
        self,
        query: Callable[..., Iterator[Any]],
        hash_value: str,
        hash_name: str,
        limit: int,
        next_token: str | None,
        table_key: list[str],
    ) -> tuple[list[Any], str | None]:
        """Query one page, newest first. Asks for one extra item to know whether a next page exists."""
        limit = max(1, min(limit, MAX_PAGE))
        start = None
        if next_token:
            start = decode_token(next_token, {*table_key, hash_name, "created_at"}, hash_name, hash_value)
        records = list(query(hash_value, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start))
        if len(records) <= limit:
            return records, None
        last = records[limit - 1]
        key = {name: {"S": str(getattr(last, name))} for name in [*table_key, hash_name]}
        key["created_at"] = {"S": last.created_at.strftime("%Y-%m-%dT%H:%M:%S.%f%z")}
        return records[:limit], encode_token(key)

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, explain: Callable[[], Exception] | None = None) -> Iterator[TransactWrite]:
        """A DynamoDB transaction whose failed conditions become one domain error.

        Which item's condition failed is worked out by `explain`, which reads the state again:
        the order of DynamoDB's cancellation reasons is not something to build on (moto's differs).
        A conflicting concurrent transaction is transient: the caller may simply retry.
        """
        try:
            with TransactWrite(connection=self._transactions) as tx:
                yield tx
        except TransactWriteError as err:
            codes = _cancellation_codes(err)
            if "ConditionalCheckFailed" in codes and explain is not None:
                raise explain() from err
            if "TransactionConflict" in codes or err.cause_response_code == "TransactionInProgressException":
                raise TransientError("a concurrent change got there first; retry") from err
            raise

    @staticmethod
    def _scoped(record: Any, team: str | None, kind: str, item_id: str) -> Any:
        """Another team's item is reported exactly like a missing one: 404, never 403."""
        if team is not None and record.scope != team:
            raise NotFound(kind, item_id)
        return record

    def _get(self, model: type[Model], kind: str, item_id: str, team: str | None) -> Any:
        try:
            record = model.get(self._check_id(kind, item_id), consistent_read=True)
        except DoesNotExist:
            raise NotFound(kind, item_id) from None
        return self._scoped(record, team, kind, item_id)

    def _get_together(self, *keys: tuple[type[Model], str]) -> list[Any | None]:
        """Items of several tables in one consistent read (TransactGetItems), in order; None for
        a missing one. Ids are checked by the caller (`_found` reports what is missing).

        A read that collides with a transaction writing one of the items is cancelled by
        DynamoDB; it is then made one item at a time, which is what it saves.
        """
        try:
            with TransactGet(connection=self._transactions) as tx:
                futures = [tx.get(model, item_id) for model, item_id in keys]
        except TransactGetError:
            return [self._get_or_none(model, item_id) for model, item_id in keys]
        records: list[Any | None] = []
        for future in futures:
            try:
                records.append(future.get())
            except DoesNotExist:
                records.append(None)
        return records

    @staticmethod
    def _get_or_none(model: type[Model], item_id: str) -> Any | None:
        try:
            return model.get(item_id, consistent_read=True)
        except DoesNotExist:
            return None

    @classmethod
    def _found(cls, record: Any | None, kind: str, item_id: str, team: str | None) -> Any:
        """`record` as `_get` answers it: NotFound if it is missing or another team's."""
        if record is None:
            raise NotFound(kind, item_id)
        return cls._scoped(record, team, kind, item_id)

    @staticmethod
    def _check_id(kind: str, item_id: str) -> str:
        if not _ID.match(item_id):
            raise NotFound(kind, item_id[:80])  # cannot exist; and DynamoDB would refuse the key
        return item_id

    @staticmethod
    def _values(record: Any) -> dict[str, Any]:
        values = dict(record.attribute_values)
        values["team"] = values.pop("scope")
        return values
