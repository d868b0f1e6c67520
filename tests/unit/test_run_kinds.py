"""Why a run failed, in a form a pipeline can act on: the failure kind from the caught error names."""

import pytest

from chaosplane.models import FailureKind
from chaosplane.runs.outcome import failure_kind
from chaosplane.steps import StepError


@pytest.mark.parametrize(
    ("error", "rollback_error", "prepared", "expected"),
    [
        ({"Error": "PreflightFailed", "Cause": "x"}, None, False, FailureKind.PREFLIGHT),
        ({"Error": "PolicyRefused", "Cause": "x"}, None, False, FailureKind.POLICY),
        ({"Error": "NothingToHit"}, None, False, FailureKind.NOTHING_TO_HIT),
        ({"Error": "NothingToHit"}, None, True, FailureKind.NOTHING_TO_HIT),  # all changed before Inject
        ({"Error": "InvalidRequest"}, None, False, FailureKind.PREPARE),
        ({"Error": "States.Timeout"}, None, False, FailureKind.PREPARE),
        ({"Error": "InjectionFailed"}, None, True, FailureKind.INJECTION),
        ({"Error": "ClientError"}, None, True, FailureKind.INJECTION),
        ({"Error": "WorkflowEnded", "Cause": "execution aborted"}, None, True, FailureKind.ABORTED),
        # A rollback that did not finish outranks whatever came before it: resources may be faulted.
        ({"Error": "InjectionFailed"}, {"Error": "RollbackIncomplete"}, True, FailureKind.ROLLBACK),
        (None, {"Error": "RollbackIncomplete"}, True, FailureKind.ROLLBACK),
    ],
)
def test_failure_kind(
    error: dict | None, rollback_error: dict | None, prepared: bool, expected: FailureKind
) -> None:
    def parsed(error: dict | None) -> StepError | None:
        return None if error is None else StepError.model_validate(error)

    assert failure_kind(parsed(error), parsed(rollback_error), prepared=prepared) is expected
