import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from chaosplane.executor import handle
from chaosplane.models import ActionProgress, JournalEntry, JournalStatus, ResourceState, RunStatus
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
    """Each write of the run's record: its timeline lines, and the resources hit so far."""

    def __init__(self) -> None:
        self.writes: list[tuple[list[str], list[str]]] = []
        self.marked: list[list[str]] = []  # the journal entries marked, write by write

    def update_run(
        self,
        result_id: str,
        *,
        resources: list[ResourceState] | None,
        events: list[tuple[str, str]] | None,
        metrics: dict | None = None,
        journal_marks: list[tuple[JournalEntry, JournalStatus]] | None = None,
        actions: dict[str, ActionProgress] | None = None,
    ) -> None:
        self.writes.append(([m for _, m in events or []], [r.id for r in resources or [] if r.after]))
        self.marked.append([f"{entry.resource_id}:{status.value}" for entry, status in journal_marks or []])


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
        applied = (SimpleNamespace(resource_id=resource.id), JournalStatus.APPLIED)
        progress.done(f"hit {resource.id}", mark=applied)  # type: ignore[arg-type]
    progress.flush()
    # ...one write per 25, with every resource so far; the first twenty each have a line, then
    # one line counts them.
    assert store.writes[0][0] == [f"hit i-{n}" for n in range(20)] + ["25 of 100 injected"]
    assert [lines for lines, _ in store.writes[1:]] == [
        ["50 of 100 injected"],
        ["75 of 100 injected"],
        ["100 of 100 injected"],
    ]
    assert [len(hit) for _, hit in store.writes] == [25, 50, 75, 100]
    # Each write carries the journal marks of its batch, once each, in order.
    assert [mark for batch in store.marked for mark in batch] == [f"i-{n}:applied" for n in range(100)]
    assert [len(batch) for batch in store.marked] == [25, 25, 25, 25]
    progress.flush()
    assert len(store.writes) == 4  # nothing new: nothing written


def test_a_small_run_writes_its_record_once_with_the_steps_last_line() -> None:
    resources = [ResourceState(id=f"i-{n}", kind="ec2:instance", before="running") for n in range(2)]
    store = RecordingStore()
    result = SimpleNamespace(id="r-1", resources=resources)
    progress = Progress(store, result, "rollback", "undone", 2, datetime.now)  # type: ignore[arg-type]
    for resource in resources:
        resource.after = "stopped"
        progress.done(f"undid {resource.id}")
    assert store.writes == []
    progress.flush(event=("rollback", "rollback complete"), metrics={"rolled_back": 2})
    assert store.writes == [(["undid i-0", "undid i-1", "rollback complete"], ["i-0", "i-1"])]


def test_a_slow_run_writes_its_progress_every_five_seconds() -> None:
    now = [datetime(2026, 11, 26, tzinfo=UTC)]
    resources = [ResourceState(id=f"i-{n}", kind="ec2:instance", before="running") for n in range(30)]
    store = RecordingStore()
    result = SimpleNamespace(id="r-1", resources=resources)
    progress = Progress(store, result, "rollback", "undone", 30, lambda: now[0])  # type: ignore[arg-type]
    for resource in resources:
        now[0] += timedelta(seconds=2)  # a slow resource: live status must still move
        progress.done(f"undid {resource.id}")
    # A write every third resource (6 s), each with what is new since the last one.
    assert [lines for lines, _ in store.writes[:2]] == [
        ["undid i-0", "undid i-1", "undid i-2"],
        ["undid i-3", "undid i-4", "undid i-5"],
    ]
    assert [lines for lines, _ in store.writes[6:]] == [
        ["undid i-18", "undid i-19", "21 of 30 undone"],
        ["24 of 30 undone"],
        ["27 of 30 undone"],
        ["30 of 30 undone"],
    ]


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
    resources = [ResourceState(id=f"i-{n}", kind="ec2:instance", before="running") for n in range(24)]
    progress = Progress(
        RecordingStore(),
        SimpleNamespace(id="r-1", resources=resources),
        "inject",
        "injected",
        24,
        datetime.now,
    )  # type: ignore[arg-type]
    for resource in resources:
        progress.done(f"hit {resource.id}", skipped=resource.id == "i-23")
    progress._store = FailingStore()  # type: ignore[assignment]
    progress.flush_quietly()  # logged, not raised: the run's own error stays the error
    with pytest.raises(RuntimeError, match="DynamoDB is down"):
        progress.flush()
    progress._store = recorded = RecordingStore()  # type: ignore[assignment]
    progress.flush()  # nothing was lost: the next write says it all
    assert recorded.writes == [
        ([f"hit i-{n}" for n in range(20)] + ["24 of 24 injected (1 of them skipped)"], [])
    ]
