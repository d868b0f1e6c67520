import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from chaosplane.executor import handle
from chaosplane.models import JournalEntry, JournalStatus, ResourceState, RunStatus
from chaosplane.runs.outcome import outcome
from chaosplane.runs.progress import Progress, catch_up, some
from chaosplane.steps import StepError


@pytest.mark.parametrize(
    ("error", "rollback_error", "expected"),
    [
        (None, None, RunStatus.COMPLETED),
        ({"Error": "Halted", "Cause": ""}, None, RunStatus.STOPPED),
        ({"Error": "InjectionFailed", "Cause": "x"}, None, RunStatus.FAILED),
        ({"Error": "States.TaskFailed"}, None, RunStatus.FAILED),
        (None, {"Error": "ClientError"}, RunStatus.FAILED),  # a rollback that failed is never a success
        ({"Error": "Halted"}, {"Error": "ClientError"}, RunStatus.FAILED),
    ],
)
def test_outcome(error: dict | None, rollback_error: dict | None, expected: RunStatus) -> None:
    def parsed(error: dict | None) -> StepError | None:
        return None if error is None else StepError.model_validate(error)

    assert outcome(parsed(error), parsed(rollback_error)) is expected


def test_describe_error_reads_the_lambda_error_payload() -> None:
    cause = json.dumps({"errorMessage": "stop_instances on i-1 failed", "errorType": "InjectionFailed"})

    def describe(error: dict) -> str:
        return StepError.model_validate(error).describe()

    assert (
        describe({"Error": "InjectionFailed", "Cause": cause})
        == "InjectionFailed: stop_instances on i-1 failed"
    )
    assert describe({"Error": "States.Timeout"}) == "States.Timeout"
    assert describe({"Error": "X", "Cause": "plain words"}) == "X: plain words"


def test_the_executor_refuses_an_unknown_step() -> None:
    with pytest.raises(ValueError, match="unknown step 'explode'"):
        handle(runs=None, event={"step": "explode", "state": {}})  # type: ignore[arg-type]


def test_a_timeline_line_names_at_most_twenty_resources() -> None:
    assert some(["i-1", "i-2"]) == "i-1, i-2"
    many = some(f"i-{n}" for n in range(1000))
    assert many.startswith("i-0, i-1,") and many.endswith("i-19 and 980 more")
    assert some(f"i-{n}" for n in range(20)).endswith("i-18, i-19")


class RecordingStore:
    def __init__(self) -> None:
        self.writes: list[tuple[str, list[str]]] = []

    def update_run(self, result_id: str, *, resources: list[ResourceState], event: tuple[str, str]) -> None:
        self.writes.append((event[1], [r.id for r in resources if r.after]))


def test_a_big_run_writes_its_progress_in_batches() -> None:
    # Given 100 resources hit one after another, 0.1 s apart...
    now = [datetime(2026, 11, 26, tzinfo=UTC)]
    resources = [ResourceState(id=f"i-{n}", kind="ec2:instance", before="running") for n in range(100)]
    result = SimpleNamespace(id="r-1", resources=resources)
    store = RecordingStore()
    progress = Progress(store, result, "inject", "injected", 100, lambda: now[0])  # type: ignore[arg-type]
    for resource in resources:
        now[0] += timedelta(seconds=0.1)
        resource.after = "stopping"
        progress.done(f"hit {resource.id}")
    progress.flush()
    # ...the first twenty are written one by one, then one write per 25, with every resource so far.
    messages = [message for message, _ in store.writes]
    assert messages == [f"hit i-{n}" for n in range(20)] + [
        "45 of 100 injected",
        "70 of 100 injected",
        "95 of 100 injected",
        "100 of 100 injected",
    ]
    assert [len(hit) for _, hit in store.writes[-4:]] == [45, 70, 95, 100]
    progress.flush()
    assert len(store.writes) == 24  # nothing new: nothing written


def test_a_slow_run_writes_its_progress_every_five_seconds() -> None:
    now = [datetime(2026, 11, 26, tzinfo=UTC)]
    resources = [ResourceState(id=f"i-{n}", kind="ec2:instance", before="running") for n in range(30)]
    store = RecordingStore()
    result = SimpleNamespace(id="r-1", resources=resources)
    progress = Progress(store, result, "rollback", "undone", 30, lambda: now[0])  # type: ignore[arg-type]
    for resource in resources:
        now[0] += timedelta(seconds=2)  # a slow resource: live status must still move
        progress.done(f"undid {resource.id}")
    assert [m for m, _ in store.writes[20:]] == ["23 of 30 undone", "26 of 30 undone", "29 of 30 undone"]


def entry(resource_id: str, status: JournalStatus) -> JournalEntry:
    at = datetime(2026, 11, 26, tzinfo=UTC)
    return JournalEntry(
        result_id="r-1",
        key=resource_id,
        resource_id=resource_id,
        kind="ec2:instance",
        action="ec2:StopInstances",
        prior_state={},
        status=status,
        created_at=at,
        updated_at=at,
    )


def test_a_retry_fills_the_record_from_the_journal_where_a_batch_was_lost() -> None:
    # Given a record that lags its journal: applied, undone and pending changes it never wrote...
    resources = [
        ResourceState(id="i-applied", kind="ec2:instance", before="running"),
        ResourceState(id="i-undone", kind="ec2:instance", before="running", after="stopping"),
        ResourceState(id="i-pending", kind="ec2:instance", before="running"),
        ResourceState(id="i-written", kind="ec2:instance", before="running", after="stopping"),
    ]
    result = SimpleNamespace(resources=resources)
    journal = [
        entry("i-applied", JournalStatus.APPLIED),
        entry("i-undone", JournalStatus.ROLLED_BACK),
        entry("i-pending", JournalStatus.PENDING),
        entry("i-written", JournalStatus.APPLIED),
    ]
    # ...the record then says what the journal knows, and nothing about the pending one.
    assert catch_up(result, journal) is True  # type: ignore[arg-type]
    assert [(r.after, r.restored) for r in resources] == [
        ("ec2:StopInstances applied", None),
        ("stopping", "ec2:StopInstances undone"),
        (None, None),
        ("stopping", None),
    ]
    assert catch_up(result, journal) is False  # type: ignore[arg-type]  # nothing left to fill


class FailingStore:
    def update_run(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("DynamoDB is down")


def test_a_failed_progress_write_on_the_way_out_never_hides_the_failure() -> None:
    resources = [ResourceState(id=f"i-{n}", kind="ec2:instance", before="running") for n in range(25)]
    progress = Progress(
        RecordingStore(),
        SimpleNamespace(id="r-1", resources=resources),
        "inject",
        "injected",
        25,
        datetime.now,
    )  # type: ignore[arg-type]
    for resource in resources:
        progress.done(f"hit {resource.id}", skipped=resource.id == "i-24")
    progress._store = FailingStore()  # type: ignore[assignment]
    progress.flush_quietly()  # logged, not raised: the run's own error stays the error
    with pytest.raises(RuntimeError, match="DynamoDB is down"):
        progress.flush()
    progress._store = recorded = RecordingStore()  # type: ignore[assignment]
    progress.flush()  # nothing was lost: the next write says it all
    assert recorded.writes == [("25 of 25 injected (1 of them skipped)", [])]
