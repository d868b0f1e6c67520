import json

import pytest

from chaosplane.executor import handle
from chaosplane.models import RunStatus
from chaosplane.runs import _some, describe_error, outcome


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
    assert outcome(error, rollback_error) is expected


def test_describe_error_reads_the_lambda_error_payload() -> None:
    cause = json.dumps({"errorMessage": "stop_instances on i-1 failed", "errorType": "InjectionFailed"})
    assert describe_error({"Error": "InjectionFailed", "Cause": cause}) == (
        "InjectionFailed: stop_instances on i-1 failed"
    )
    assert describe_error({"Error": "States.Timeout"}) == "States.Timeout"
    assert describe_error({"Error": "X", "Cause": "plain words"}) == "X: plain words"
    assert describe_error(None) is None


def test_the_executor_refuses_an_unknown_step() -> None:
    with pytest.raises(ValueError, match="unknown step 'explode'"):
        handle(runs=None, event={"step": "explode", "state": {}})  # type: ignore[arg-type]


def test_a_timeline_line_names_at_most_twenty_resources() -> None:
    assert _some(["i-1", "i-2"]) == "i-1, i-2"
    many = _some(f"i-{n}" for n in range(1000))
    assert many.startswith("i-0, i-1,") and many.endswith("i-19 and 980 more")
    assert _some(f"i-{n}" for n in range(20)).endswith("i-18, i-19")
