"""How a run ended, from the error names Step Functions caught on the way to Finalize."""

from __future__ import annotations

from chaosplane.errors import ErrorName
from chaosplane.models import FailureKind, RunStatus
from chaosplane.steps import StepError

# Refusals that make a scheduled run `skipped` rather than `failed`: the run never touched anything.
SKIPPABLE = frozenset({ErrorName.PREFLIGHT_FAILED, ErrorName.POLICY_REFUSED, ErrorName.NOTHING_TO_HIT})

_FAILURE_KINDS = {
    ErrorName.PREFLIGHT_FAILED.value: FailureKind.PREFLIGHT,
    ErrorName.POLICY_REFUSED.value: FailureKind.POLICY,
    ErrorName.NOTHING_TO_HIT.value: FailureKind.NOTHING_TO_HIT,
    ErrorName.WORKFLOW_ENDED.value: FailureKind.ABORTED,
    ErrorName.ASSERTION_FAILED.value: FailureKind.ASSERTION,
}


def outcome(error: StepError | None, rollback_error: StepError | None) -> RunStatus:
    """The run's final status from how the workflow got to Finalize."""
    if rollback_error is not None:
        return RunStatus.FAILED
    if error is None:
        return RunStatus.COMPLETED
    return RunStatus.STOPPED if error.is_(ErrorName.HALTED) else RunStatus.FAILED


def failure_kind(error: StepError | None, rollback_error: StepError | None, *, prepared: bool) -> FailureKind:
    """Why a failed run failed (and whether Prepare had finished: an unnamed error before that
    touched nothing, after it came from the fault)."""
    if rollback_error is not None:
        return FailureKind.ROLLBACK
    named = _FAILURE_KINDS.get(error.name) if error is not None else None
    if named is not None:
        return named
    return FailureKind.INJECTION if prepared else FailureKind.PREPARE


def refused_before_start(error: StepError | None, rollback_error: StepError | None) -> bool:
    return error is not None and rollback_error is None and error.name in SKIPPABLE
