"""The run events contract: one "Chaosplane Run State Change" event per change of a run's status.

Defined once, here: the lifecycle builds a `RunEvent` and puts it on EventBridge; the notifier,
and anyone's own rule, read the same model (README: Run events).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chaosplane.models import StopKind, Verdict

RUN_EVENT_SOURCE = "chaosplane"
RUN_STATE_CHANGE = "Chaosplane Run State Change"
LEVER_ENGAGED = "Chaosplane Emergency Stop"
"""The event that fans an engaged emergency stop out to the executor, which halts the runs."""


class EventStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_final(self) -> bool:
        return self in FINAL


FINAL = frozenset({EventStatus.COMPLETED, EventStatus.STOPPED, EventStatus.FAILED, EventStatus.SKIPPED})
HALTS = frozenset({StopKind.ALARM, StopKind.EMERGENCY, StopKind.PROBE})


class RunEvent(BaseModel):
    """The `detail` of a "Chaosplane Run State Change" event.

    Unknown fields are ignored, so the producer may add fields without breaking a consumer.
    """

    model_config = ConfigDict(extra="ignore")

    run_id: str
    experiment_id: str
    experiment_name: str
    team: str
    fault: str
    trigger: str
    old_status: EventStatus | None = None
    new_status: EventStatus
    reason: str | None = None
    stop_kind: StopKind | None = None
    rollback_complete: bool | None = None
    verdict: Verdict | None = None
    """Did the system under test hold (on the final change only)."""
    time: datetime

    @property
    def halted(self) -> bool:
        """Halted by a stop condition or the emergency stop (not by a user's stop)."""
        return self.stop_kind in HALTS
