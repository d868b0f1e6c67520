"""The store's reads of two records in one call, on the embedded DynamoDB: the same answers as
two reads, the same 404s, and the same again when DynamoDB cancels the combined read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pynamodb.exceptions import TransactGetError
from pynamodb.transactions import TransactGet

from chaosplane.errors import NotFound
from chaosplane.settings import load_settings
from chaosplane.store import Store
from tests.conftest import TEAM, Platform
from tests.integration.test_runs import setup_experiment


def cancelled(self: TransactGet, *args: Any, **kwargs: Any) -> None:
    # What pynamodb raises when DynamoDB cancels a TransactGetItems (a transaction was writing).
    raise TransactGetError("Failed to get items: TransactionCanceledException")


@pytest.mark.parametrize("combined_read", ["answered", "cancelled"])
def test_two_records_read_together_answer_as_two_reads(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, combined_read: str
) -> None:
    platform.instances(2, {"app": "web"})
    platform.loosen_policy(max_percent=100)
    experiment = setup_experiment(platform)
    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview")
    body = {"plan_id": preview["plan_id"]}
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", body, expect=202)
    platform.wait_for_result(run["result_id"])
    store = Store(load_settings())
    if combined_read == "cancelled":
        monkeypatch.setattr(TransactGet, "_commit", cancelled)

    got, policy = store.experiment_and_policy(experiment["id"], team=TEAM)
    assert (got, policy) == (store.get_experiment(experiment["id"], team=TEAM), store.policy(TEAM))
    assert policy.max_percent == 100  # the team's own, not the defaults
    target, _ = store.target_and_policy(experiment["target"], team=TEAM)
    assert target == store.get_target(experiment["target"], team=TEAM)
    result, plan = store.result_and_plan(run["result_id"], preview["plan_id"])
    assert result == store.get_result(run["result_id"], team=None)
    assert plan == store.get_plan(preview["plan_id"], team=TEAM)

    refused: list[Callable[[], object]] = [
        lambda: store.experiment_and_policy(experiment["id"], team="blue"),  # another team's: 404
        lambda: store.target_and_policy(experiment["target"], team="blue"),
        lambda: store.experiment_and_policy("8a1c6f43-0000-4000-8000-000000000000", team=TEAM),
        lambda: store.target_and_policy("not an id!", team=TEAM),
        lambda: store.result_and_plan(run["result_id"], "8a1c6f43-0000-4000-8000-000000000000"),
    ]
    for read in refused:
        with pytest.raises(NotFound):
            read()
