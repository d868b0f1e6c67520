"""The contracts that cross a boundary are defined once; the state machine is held to them here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from chaosplane import errors
from chaosplane.errors import ErrorName
from chaosplane.events import RunEvent
from chaosplane.notify import RunEvent as NotifiersRunEvent
from chaosplane.steps import Advanced, Finalized, Prepared, RolledBack, StepEvent

ASL = json.loads((Path(__file__).resolve().parents[2] / "statemachines" / "experiment.asl.json").read_text())
ANSWERS: dict[str, type[BaseModel]] = {
    "Prepare": Prepared,
    "Advance": Advanced,
    "Rollback": RolledBack,
    "Finalize": Finalized,
}


def states() -> dict[str, Any]:
    return ASL["States"]


def test_every_error_the_state_machine_matches_is_a_named_error_or_the_services_own() -> None:
    matched = {
        name
        for state in states().values()
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for name in rule["ErrorEquals"]
    }
    ours = {name for name in matched if not re.match(r"^(States|Lambda)\.", name)}
    assert ours <= {e.value for e in ErrorName}, ours - {e.value for e in ErrorName}
    assert ErrorName.TRANSIENT.value in ours  # and the retried one is really there


def test_each_error_name_is_the_class_name_lambda_reports() -> None:
    for name in ErrorName:
        if name is not ErrorName.WORKFLOW_ENDED:  # recovery's own name, never raised
            assert issubclass(getattr(errors, name.value), errors.ChaosplaneError)


@pytest.mark.parametrize("state", sorted(ANSWERS))
def test_each_steps_result_selector_reads_fields_its_answer_has(state: str) -> None:
    selector = states()[state]["ResultSelector"]
    read = {path.removeprefix("$.Payload.") for path in selector.values()}
    assert read <= set(ANSWERS[state].model_fields), read - set(ANSWERS[state].model_fields)


def test_each_step_is_invoked_with_what_the_executor_parses() -> None:
    for name, state in states().items():
        if state.get("Type") != "Task":
            continue
        # A key ending in ".$" is a path Step Functions fills in; any other is sent as it is.
        sent = state["Parameters"]["Payload"]
        payload = {
            key.removesuffix(".$"): "x" if key.endswith(".$") else value for key, value in sent.items()
        }
        payload["state"] = {}
        event = StepEvent.model_validate(payload)
        assert event.step.value == name.lower()


def test_the_notifier_reads_the_run_event_the_lifecycle_puts() -> None:
    assert NotifiersRunEvent is RunEvent
