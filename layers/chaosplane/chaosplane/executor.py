"""The executor: one Lambda, one entry per state of the run workflow, plus recovery.

Every step gets the whole workflow state (`"state.$": "$"` in the ASL), so a step can find the
result id however the run was started (API, console, schedule) and Finalize can see how the run
got there (an error caught from any earlier state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaosplane.runs import Runs


def _result_id(state: dict[str, Any]) -> str | None:
    run = state.get("run") or {}
    return run.get("result_id") or state.get("result_id")


def _required_result_id(state: dict[str, Any]) -> str:
    result_id = _result_id(state)
    if result_id is None:
        raise ValueError("workflow state has no result_id")
    return result_id


EXECUTION_ENDED = "Step Functions Execution Status Change"
SCHEDULED = "Scheduled Event"


def handle(runs: Runs, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("detail-type") == SCHEDULED:
        return runs.sweep()  # the every-minute fallback (template.yaml: ExecutorFunction Sweep)
    if event.get("detail-type") == EXECUTION_ENDED:
        # EventBridge: a run's execution ended (aborted, timed out, failed). The execution is named
        # after its run, so the journal says what, if anything, is left to roll back.
        detail = event.get("detail") or {}
        return runs.recover(str(detail["name"]), f"execution {detail.get('status', 'ended').lower()}")
    state: dict[str, Any] = event.get("state") or {}
    steps: dict[str, Callable[[], dict[str, Any]]] = {
        "prepare": lambda: runs.prepare(
            state.get("experiment_id"),
            state.get("result_id"),
            event.get("execution_name"),
            trigger=state.get("trigger"),
            schedule_id=state.get("schedule_id"),
        ),
        "inject": lambda: runs.inject(_required_result_id(state)),
        "observe": lambda: runs.observe(_required_result_id(state), event["task_token"]),
        "rollback": lambda: runs.rollback(_required_result_id(state)),
        # Runs are named after their execution: when Prepare failed before recording the run's id
        # in the state (a console or scheduled start), the execution's name still finds it.
        "finalize": lambda: runs.finalize(
            _result_id(state) or event.get("execution_name"), state.get("error"), state.get("rollback_error")
        ),
    }
    step = event.get("step")
    if step not in steps:
        raise ValueError(f"unknown step {step!r}; expected one of {sorted(steps)}")
    return steps[step]()
