from __future__ import annotations

from chaosplane.events import RunEvent
from chaosplane.models import ExperimentResult


class FakeWorkflow:
    """The state machine's side of a run as the API sees it: starts, halts, and the events put."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.halted: list[str] = []
        self.events: list[RunEvent] = []
        self.fail_start: Exception | None = None

    def start(self, result: ExperimentResult) -> None:
        if self.fail_start is not None:
            raise self.fail_start
        self.started.append(result.id)

    def halt(self, task_token: str) -> None:
        self.halted.append(task_token)

    def publish(self, event: RunEvent) -> None:
        self.events.append(event)

    def statuses(self, run_id: str) -> list[str]:
        return [f"{e.old_status}->{e.new_status}" for e in self.events if e.run_id == run_id]
