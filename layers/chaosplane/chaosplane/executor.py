"""The executor: one Lambda, one entry per state of the run workflow, plus recovery.

Every step gets the whole workflow state (`"state.$": "$"` in the ASL), so a step can find the
result id however the run was started (API, console, schedule) and Finalize can see how the run
got there (an error caught from any earlier state). The contract is `chaosplane.steps`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from chaosplane.events import LEVER_ENGAGED
from chaosplane.runs import Runs
from chaosplane.steps import ExecutionEnded, LeverEngaged, ScheduledTick, Step, StepEvent, WorkflowState

EXECUTION_ENDED = "Step Functions Execution Status Change"
SCHEDULED = "Scheduled Event"


def _required(result_id: str | None) -> str:
    if result_id is None:
        raise ValueError("workflow state has no result_id")
    return result_id


def handle(runs: Runs, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("detail-type") == SCHEDULED:
        # The every-minute fallback (template.yaml: ExecutorFunction Sweep).
        return runs.sweep(ScheduledTick.model_validate(event).time)
    if event.get("detail-type") == LEVER_ENGAGED:
        # An engaged emergency stop, fanned out by the API (Runs.engage).
        lever = LeverEngaged.model_validate(event.get("detail") or {})
        return {"halted": runs.on_lever(lever.scope, lever.engaged_by)}
    if event.get("detail-type") == EXECUTION_ENDED:
        # EventBridge: a run's execution ended (aborted, timed out, failed). The execution is named
        # after its run, so the journal says what, if anything, is left to roll back.
        ended = ExecutionEnded.model_validate(event.get("detail") or {})
        return runs.recover(ended.name, f"execution {ended.status.lower()}").model_dump(mode="json")
    step = event.get("step")
    if step not in {s.value for s in Step}:
        raise ValueError(f"unknown step {step!r}; expected one of {sorted(s.value for s in Step)}")
    parsed = StepEvent.model_validate(event)
    state = parsed.state
    plan_id = state.run.plan_id if state.run else None
    steps: dict[Step, Callable[[], BaseModel]] = {
        Step.PREPARE: lambda: runs.prepare(
            state.experiment_id,
            state.result_id,
            parsed.execution_name,
            trigger=state.trigger,
            schedule_id=state.schedule_id,
        ),
        Step.ADVANCE: lambda: runs.advance(_required(state.run_id), plan_id),
        Step.INJECT: lambda: runs.inject(_required(state.run_id), plan_id),
        Step.OBSERVE: lambda: runs.observe(
            _required(state.run_id), _required_token(parsed), _holding_for(state)
        ),
        Step.ROLLBACK: lambda: runs.rollback(_required(state.run_id)),
        Step.SETTLE: lambda: runs.settle(_required(state.run_id)),
        # Runs are named after their execution: when Prepare failed before recording the run's id
        # in the state (a console or scheduled start), the execution's name still finds it.
        Step.FINALIZE: lambda: runs.finalize(
            state.run_id or parsed.execution_name, state.error, state.rollback_error
        ),
    }
    return steps[parsed.step]().model_dump(mode="json", exclude_none=False)


def _holding_for(state: WorkflowState) -> int:
    """Seconds this Observe holds: until the next Advance (an execution started before Advance
    existed holds for the run's duration)."""
    if state.advance is not None:
        return state.advance.wake_in
    return (state.run.duration or 0) if state.run else 0


def _required_token(event: StepEvent) -> str:
    if event.task_token is None:
        raise ValueError("the observe step needs its task_token")
    return event.task_token
