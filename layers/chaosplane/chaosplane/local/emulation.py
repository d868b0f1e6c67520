"""Where moto stops short of AWS for what Chaosplane relies on, and the small patches that close it.

1. CloudWatch: an alarm that changes state (`set_alarm_state`) emits the "CloudWatch Alarm State
   Change" event to the default EventBridge bus, as AWS does. moto only stores the new state.
2. EventBridge: rules deliver to Lambda targets by invoking the function asynchronously, as AWS
   does. moto raises NotImplementedError for Lambda targets.
3. Step Functions: `stop_execution` makes the execution ABORTED at once (moto leaves it RUNNING
   while a task waits), and every execution that ends emits "Step Functions Execution Status
   Change", as AWS does. moto emits nothing.

Each patch wraps one moto method, checks at `apply()` that the method still exists, and has a
canary test (tests/integration/test_moto_canary.py) that fails loudly when a moto upgrade breaks it.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import CloudWatchBackend
from moto.events.models import Rule, events_backends
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.backend.execution import Execution as ParserExecution
from moto.utilities.arns import parse_arn

ALARM_EVENT = "CloudWatch Alarm State Change"
EXECUTION_EVENT = "Step Functions Execution Status Change"
_applied = threading.Lock()
_state = {"applied": False}


def _alarm_event(
    backend: CloudWatchBackend, alarm: Any, previous: str, previous_reason: str
) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return {
        "Source": "aws.cloudwatch",
        "DetailType": ALARM_EVENT,
        "Resources": [alarm.alarm_arn],
        "EventBusName": "default",
        "Detail": json.dumps(
            {
                "alarmName": alarm.name,
                "state": {"value": alarm.state_value, "reason": alarm.state_reason or "", "timestamp": now},
                "previousState": {"value": previous, "reason": previous_reason or ""},
                "configuration": {"description": getattr(alarm, "description", "") or ""},
            }
        ),
    }


def _patch_alarm_events() -> None:
    original = CloudWatchBackend.set_alarm_state

    def set_alarm_state(
        self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str
    ) -> None:
        alarm = self.alarms.get(alarm_name)
        previous = alarm.state_value if alarm is not None else None
        previous_reason = alarm.state_reason if alarm is not None else ""
        original(self, alarm_name, reason, reason_data, state_value)
        if alarm is not None and previous != state_value:
            events_backends[self.account_id][self.region_name].put_events(
                [_alarm_event(self, alarm, str(previous), previous_reason)]
            )

    CloudWatchBackend.set_alarm_state = set_alarm_state  # type: ignore[method-assign]


def _invoke_async(function_arn: str, event: Any) -> None:
    from moto.awslambda.models import lambda_backends

    arn = parse_arn(function_arn)
    backend = lambda_backends[arn.account][arn.region]
    function = backend.get_function(arn.resource_id.split(":")[0], None)

    def run() -> None:
        function.invoke(json.dumps(event), {"x-amz-invocation-type": "Event"}, {})

    threading.Thread(target=run, name=f"event->{function.function_name}", daemon=True).start()


def _patch_lambda_targets() -> None:
    original = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        lambdas = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        for target in lambdas:
            payload = json.loads(target["Input"]) if "Input" in target else original_event
            _invoke_async(target["Arn"], payload)
        others = [t for t in self.targets if t not in lambdas]
        if others:
            view = copy.copy(self)  # the same rule, with only the targets moto can deliver to
            view.targets = others
            original(view, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def _execution_event(execution: Any) -> dict[str, Any]:
    def when(moment: Any) -> int | None:
        return int(moment.timestamp() * 1000) if moment is not None else None

    return {
        "Source": "aws.states",
        "DetailType": EXECUTION_EVENT,
        "Resources": [execution.exec_arn],
        "EventBusName": "default",
        "Detail": json.dumps(
            {
                "executionArn": execution.exec_arn,
                "stateMachineArn": execution.state_machine_arn,
                "name": execution.name,
                "status": execution.exec_status.value,
                "startDate": when(execution.start_date),
                "stopDate": when(execution.stop_date),
                "input": json.dumps(execution.input_data),
            }
        ),
    }


def _emit_execution_status(execution: Any) -> None:
    status = execution.exec_status.value if execution.exec_status is not None else None
    if status is None or status == "RUNNING" or getattr(execution, "_chaosplane_emitted", None) == status:
        return
    execution._chaosplane_emitted = status
    events_backends[execution.account_id][execution.region_name].put_events([_execution_event(execution)])


def _patch_execution_events() -> None:
    original_stop = ParserExecution.stop
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        original_stop(self, stop_date, error, cause)
        if self.exec_status is ExecutionStatus.RUNNING:
            # AWS reports ABORTED as soon as StopExecution returns, even if a task is still waiting.
            self.exec_status = ExecutionStatus.ABORTED
            self.stop_date = stop_date
            self.error, self.cause = error, cause
        _emit_execution_status(self)

    def terminated(self: Any) -> None:
        aborted = self.execution.exec_status is ExecutionStatus.ABORTED
        original_terminated(self)
        if aborted:
            self.execution.exec_status = ExecutionStatus.ABORTED  # what StopExecution said stands
        _emit_execution_status(self.execution)

    ParserExecution.stop = stop  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]


PATCHED = (
    (CloudWatchBackend, "set_alarm_state"),
    (Rule, "send_to_targets"),
    (ParserExecution, "stop"),
    (BaseExecutionWorkerCommunication, "terminated"),
)


def apply() -> None:
    for owner, name in PATCHED:
        if not callable(getattr(owner, name, None)):
            raise RuntimeError(
                f"moto's {owner.__name__}.{name} is gone: chaosplane's local emulation needs it"
            )
    with _applied:
        if _state["applied"]:
            return
        _patch_alarm_events()
        _patch_lambda_targets()
        _patch_execution_events()
        _state["applied"] = True
