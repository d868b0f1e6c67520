"""The run lifecycle: plan, inject, observe, roll back, finalize; and start, stop, halt, recover.

- `checks`: what a run passes before it may touch anything;
- `lifecycle`: the workflow's steps, one method per state of the state machine;
- `control`: start and stop, the guard, the emergency stop, the sweeper and recovery;
- `preview`: what a run would hit (a stored plan) and what its stop conditions say;
- `progress`: the run's record written in batches; `outcome`: how a run ended.

Every collaborator is a port (`chaosplane.ports`) or a callable, so the whole lifecycle runs on
in-memory fakes in a unit test.
"""

from __future__ import annotations

from chaosplane.runs.base import ExecutionStatus, Halter, RunEventPublisher, WorkflowStarter
from chaosplane.runs.checks import AlarmReader, AlarmState, check_irreversible, check_target_fits
from chaosplane.runs.control import Control
from chaosplane.runs.preview import Previews

__all__ = [
    "AlarmReader",
    "AlarmState",
    "ExecutionStatus",
    "Halter",
    "RunEventPublisher",
    "Runs",
    "WorkflowStarter",
    "check_irreversible",
    "check_target_fits",
]


class Runs(Control, Previews):
    """Every operation on runs, for the API, the executor, the guard and the sweeper."""
