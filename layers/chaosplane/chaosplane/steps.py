"""The workflow's contract: what each step of `statemachines/experiment.asl.json` takes and returns.

One definition for both sides. The state machine passes the whole workflow state to every step
(`"state.$": "$"`) and picks fields out of each answer with a ResultSelector; the executor parses
the first into `StepEvent` and answers with the models below. A unit test holds the ASL's
ResultSelectors to these fields.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from chaosplane.errors import ErrorName
from chaosplane.models import RunStatus


class StepError(BaseModel):
    """An error Step Functions caught (`Catch` with `ResultPath: "$.error"`)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(default="Error", alias="Error")
    cause: str | None = Field(default=None, alias="Cause")

    def is_(self, name: ErrorName) -> bool:
        return self.name == name.value

    def describe(self) -> str:
        """A readable message: Lambda's errorMessage out of its JSON cause, when it is one."""
        cause = self.cause
        if cause:
            try:
                parsed = json.loads(cause)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                cause = parsed.get("errorMessage", cause)
        return f"{self.name}: {cause}" if cause else self.name


class Prepared(BaseModel):
    result_id: str
    duration: int
    skipped: bool
    plan_id: str | None = None  # so that Inject reads the run and its plan in one call


class PlannedRun(BaseModel):
    """What Prepare recorded in the state (`$.run`)."""

    model_config = ConfigDict(extra="ignore")

    result_id: str | None = None
    duration: int | None = None
    skipped: bool | None = None
    plan_id: str | None = None


class Advanced(BaseModel):
    """What Advance did, and when the workflow should ask it again (`$.advance`)."""

    finished: bool
    """Nothing more to start or to hold for a time: on to Rollback (the experiment's end)."""
    wake_in: int = Field(ge=0)
    """Whole seconds Observe holds before the next Advance (0 once finished)."""


class WorkflowState(BaseModel):
    """The execution's state as each step sees it: the start input plus what earlier steps added."""

    model_config = ConfigDict(extra="ignore")

    experiment_id: str | None = None
    result_id: str | None = None  # set by the API; a console or scheduled start has none
    trigger: str | None = None
    schedule_id: str | None = None
    run: PlannedRun | None = None
    advance: Advanced | None = None
    error: StepError | None = None
    rollback_error: StepError | None = None

    @property
    def run_id(self) -> str | None:
        return (self.run.result_id if self.run else None) or self.result_id


class Step(StrEnum):
    PREPARE = "prepare"
    ADVANCE = "advance"
    INJECT = "inject"  # the state before Advance: executions started before it still call it
    OBSERVE = "observe"
    ROLLBACK = "rollback"
    SETTLE = "settle"
    FINALIZE = "finalize"


class StepEvent(BaseModel):
    """One invocation of the executor by the state machine."""

    model_config = ConfigDict(extra="ignore")

    step: Step
    state: WorkflowState = Field(default_factory=WorkflowState)
    execution_name: str | None = None
    task_token: str | None = None


class Injected(BaseModel):
    injected: int


class Observing(BaseModel):
    observing: str


class RolledBack(BaseModel):
    rolled_back: int


class Settled(BaseModel):
    """What Settle did after the rollback (`$.settle`)."""

    done: bool
    """Every `after` probe has passed or run out of time: on to Finalize."""
    wake_in: int = Field(ge=0)
    """Whole seconds to wait before asking again (0 once done)."""


class Finalized(BaseModel):
    status: RunStatus
    result_id: str | None = None
    error: str | None = None


class Recovered(BaseModel):
    rolled_back: int
    status: RunStatus
    result_id: str


class ExecutionEnded(BaseModel):
    """The detail of "Step Functions Execution Status Change" (ABORTED, TIMED_OUT, FAILED): the
    execution is named after its run."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)
    status: str = "ENDED"


class LeverEngaged(BaseModel):
    """The detail of "Chaosplane Emergency Stop": whose lever, engaged by whom."""

    model_config = ConfigDict(extra="ignore")

    scope: str = Field(min_length=1, max_length=64)
    engaged_by: str = Field(min_length=1, max_length=256)


class ScheduledTick(BaseModel):
    """EventBridge's scheduled event, which runs the sweeper: only its time matters."""

    model_config = ConfigDict(extra="ignore")

    time: datetime | None = None
