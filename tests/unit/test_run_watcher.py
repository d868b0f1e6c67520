"""`run --wait`'s watcher with a fake client: blips, the deadline, interrupts; no clock waits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chaosplane.client import Conflict, ConnectionFailed
from chaosplane.commands.context import ExitCode
from chaosplane.commands.runs import Display, Watcher
from chaosplane.models import ExperimentResult

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def result(status: str, **extra: Any) -> ExperimentResult:
    fields = {"id": "r", "team": "t", "experiment_id": "e", "status": status, "fault": "ec2-stop"}
    fields.update({"target_id": "x", "selection": "ALL", "duration": 60, "created_at": T0, "start_time": T0})
    return ExperimentResult.model_validate({**fields, **extra})


class FakeClient:
    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.stops = 0

    def get_result(self, _: str) -> ExperimentResult:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    def stop_experiment(self, _: str) -> None:
        self.stops += 1
        if self.stops > 1:
            raise Conflict(409, "not running")

    def stop_condition_states(self, _: str) -> list:
        return []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def watcher(client: FakeClient, clock: Clock, timeout: float | None = None, **kwargs: Any) -> Watcher:
    options: dict[str, Any] = {"interval": 1.0, "timeout": timeout, "display": Display(live=False)}
    options.update(
        {"ask": lambda: False, "interactive": False, "clock": clock, "sleep": clock.sleep, **kwargs}
    )
    return Watcher(client, "r", "e", **options)  # type: ignore[arg-type]


def test_a_network_blip_while_polling_is_ridden_out() -> None:
    blip = ConnectionFailed("cannot reach the API: Connection refused")
    client = FakeClient(result("running"), blip, blip, result("completed"))
    assert watcher(client, Clock()).watch().status.value == "completed"  # type: ignore[union-attr]


def test_a_lasting_outage_gives_up() -> None:
    client = FakeClient(ConnectionFailed("down"))
    with pytest.raises(ConnectionFailed):
        watcher(client, Clock()).watch()


def test_past_the_deadline_the_run_is_stopped_and_its_end_awaited() -> None:
    clock = Clock()
    client = FakeClient(*[result("running")] * 5, result("stopped", stop_kind="user"))
    found = watcher(client, clock, timeout=3).watch()
    assert client.stops == 1 and found.status.value == "stopped"  # type: ignore[union-attr]


def test_a_run_that_does_not_end_after_the_stop_gives_up_after_the_grace() -> None:
    clock = Clock()
    client = FakeClient(result("running"))
    assert watcher(client, clock, timeout=3).watch() is ExitCode.FAILED
    assert client.stops == 1 and clock.now >= 60


def test_an_interrupt_in_a_pipeline_stops_the_run_and_a_second_one_leaves() -> None:
    clock = Clock()
    client = FakeClient(result("running"), KeyboardInterrupt(), result("running"), KeyboardInterrupt())
    assert watcher(client, clock).watch() is ExitCode.INTERRUPTED
    assert client.stops == 1


def test_on_a_terminal_answering_no_keeps_watching() -> None:
    client = FakeClient(result("running"), KeyboardInterrupt(), result("completed"))
    asked: list[bool] = []
    found = watcher(client, Clock(), interactive=True, ask=lambda: asked.append(True) or False).watch()
    assert asked == [True] and client.stops == 0 and found.status.value == "completed"  # type: ignore[union-attr]
