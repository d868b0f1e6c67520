"""Where moto stops short of AWS for what Chaosplane relies on, and the small patches that close it.

1. CloudWatch: an alarm that changes state (`set_alarm_state`) emits the "CloudWatch Alarm State
   Change" event to the default EventBridge bus, as AWS does. moto only stores the new state.
2. EventBridge: rules deliver to Lambda targets by invoking the function asynchronously, as AWS
   does. moto raises NotImplementedError for Lambda targets. A rule whose target is another
   account's or Region's bus (an environment's alarms, forwarded to the platform) delivers the
   event as it was, with the account, Region and resources it came from, as AWS does; moto puts a
   new event there, as if the receiving account had sent it.
3. Step Functions: `stop_execution` makes the execution ABORTED at once (moto leaves it RUNNING
   while a task waits), and every execution that ends emits "Step Functions Execution Status
   Change", as AWS does. moto emits nothing.
4. SSM Run Command (the ssm-*-stress faults): a command goes to the instances it names (moto
   sends it to every instance in the region when it has no Targets); one sent with `DurationSeconds`
   stays InProgress until that time has passed, as a stress document does (moto marks every
   command Success at once); `CancelCommand` exists and cancels it (moto has no CancelCommand);
   `DescribeInstanceInformation` lists EC2 instances that have an instance profile as managed
   instances, Online while running (moto has no DescribeInstanceInformation).
5. ECS: a running task stays RUNNING until stopped (moto's state manager moves every task to
   DEACTIVATING the first time it is described).
6. Pagination: ListTasks (ECS), ListFunctions (Lambda), DescribeDBClusters (RDS) and
   DescribeSubnets (EC2) return pages of the requested size with a next token, as AWS does; moto
   returns everything in one page, which would leave the families' pagination untested.
7. DynamoDB: a conditional write is one atomic step, as on AWS (moto checks the condition, then
   writes, and a request on another thread can slip in between: two could take the same lock).

Each patch wraps one moto method, checks at `apply()` that the method still exists, and has a
canary test (tests/integration/test_moto_canary.py) that fails loudly when a moto upgrade breaks it.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.awslambda.responses import LambdaResponse
from moto.cloudwatch.models import CloudWatchBackend
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend
from moto.ec2.models import ec2_backends
from moto.ec2.responses.subnets import Subnets as SubnetsResponse
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.events.models import Rule, events_backends
from moto.moto_api import state_manager
from moto.rds.responses import RDSResponse
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse
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


EVENT_THREAD = "event->"  # the name of every thread delivering an event to a function starts so


def delivering() -> list[str]:
    """The functions an event is being delivered to right now (for tests that must wait for one)."""
    return [
        t.name.removeprefix(EVENT_THREAD) for t in threading.enumerate() if t.name.startswith(EVENT_THREAD)
    ]


def _invoke_async(function_arn: str, event: Any) -> None:
    from moto.awslambda.models import lambda_backends

    arn = parse_arn(function_arn)
    backend = lambda_backends[arn.account][arn.region]
    function = backend.get_function(arn.resource_id.split(":")[0], None)

    def run() -> None:
        function.invoke(json.dumps(event), {"x-amz-invocation-type": "Event"}, {})

    threading.Thread(target=run, name=f"{EVENT_THREAD}{function.function_name}", daemon=True).start()


def _patch_lambda_targets() -> None:
    original = Rule.send_to_targets

    def send_to_targets(self: Rule, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        lambdas = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        for target in lambdas:
            payload = json.loads(target["Input"]) if "Input" in target else original_event
            _invoke_async(target["Arn"], payload)
        buses = [t for t in self.targets if ":event-bus/" in t["Arn"]]
        for target in buses:
            _forward(target["Arn"], original_event)
        others = [t for t in self.targets if t not in lambdas and t not in buses]
        if others:
            view = copy.copy(self)  # the same rule, with only the targets moto can deliver to
            view.targets = others
            original(view, original_event, transform_input)

    Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def _forward(bus_arn: str, event: Any) -> None:
    """The event, unchanged, to the rules of the bus `bus_arn` (of any account and Region)."""
    arn = parse_arn(bus_arn)
    bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
    for rule in list(bus.rules.values()):
        rule.send_to_targets(copy.deepcopy(event))


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


# -- 4. SSM Run Command: long-running commands, CancelCommand, DescribeInstanceInformation ----------

_SSM_ACTIVE = ("Pending", "InProgress", "Delayed")


def _ssm_refresh(command: Any) -> None:
    """A running command whose DurationSeconds has passed has finished (Success)."""
    ends_at = getattr(command, "_chaosplane_ends_at", None)
    if command.status == "InProgress" and ends_at is not None and datetime.now(UTC) >= ends_at:
        _ssm_set_status(command, "Success", command.instance_ids)


def _ssm_set_status(command: Any, status: str, instance_ids: list[str]) -> None:
    for invocation in command.invocations:
        if invocation["InstanceId"] in instance_ids and invocation["Status"] in _SSM_ACTIVE:
            invocation["Status"] = invocation["StatusDetails"] = status
    statuses = {invocation["Status"] for invocation in command.invocations}
    if not statuses & set(_SSM_ACTIVE):
        command.status = command.status_details = status if len(statuses) == 1 else "Success"


def _patch_ssm_commands() -> None:
    original_send = SimpleSystemManagerBackend.send_command
    original_response_object = Command.response_object
    original_get_invocation = Command.get_invocation

    def send_command(self: Any, **kwargs: Any) -> Any:
        asked = list(kwargs.get("instance_ids") or [])
        command: Any = original_send(self, **kwargs)
        if not kwargs.get("targets"):
            # moto adds every instance of the region when Targets is empty: only the ones asked for.
            command.instance_ids = asked
            command.invocations = [i for i in command.invocations if i["InstanceId"] in asked]
            command.completed_count = command.target_count = len(asked)
        duration = (kwargs.get("parameters") or {}).get("DurationSeconds")
        if duration:
            seconds = float(duration[0] if isinstance(duration, list) else duration)
            command._chaosplane_ends_at = datetime.now(UTC) + timedelta(seconds=seconds)
            command.status = command.status_details = "InProgress"
            for invocation in command.invocations:
                invocation["Status"] = invocation["StatusDetails"] = "InProgress"
        return command

    def response_object(self: Any) -> dict[str, Any]:
        _ssm_refresh(self)
        return original_response_object(self)

    def get_invocation(self: Any, instance_id: str, plugin_name: str | None) -> dict[str, Any]:
        _ssm_refresh(self)
        return original_get_invocation(self, instance_id, plugin_name)

    def cancel_command(self: Any, command_id: str, instance_ids: list[str] | None) -> None:
        command = self.get_command_by_id(command_id)  # InvalidCommandId, as AWS
        _ssm_refresh(command)
        _ssm_set_status(command, "Cancelled", instance_ids or command.instance_ids)

    def cancel_command_response(self: Any) -> ActionResult:
        self.ssm_backend.cancel_command(self._get_param("CommandId"), self._get_param("InstanceIds"))
        return ActionResult({})

    def describe_instance_information(self: Any) -> ActionResult:
        wanted: set[str] | None = None
        filters = [(f.get("Key"), f.get("Values")) for f in self._get_param("Filters") or []]
        filters += [
            (f.get("key"), f.get("valueSet")) for f in self._get_param("InstanceInformationFilterList") or []
        ]
        for key, values in filters:
            if key == "InstanceIds":
                wanted = set(values or []) if wanted is None else wanted & set(values or [])
        backend = ec2_backends[self.current_account][self.region]
        managed = [
            {
                "InstanceId": instance.id,
                "PingStatus": "Online" if instance.state == "running" else "ConnectionLost",
                "PlatformType": "Linux",
                "ResourceType": "EC2Instance",
                "AgentVersion": "3.3.0.0",
                "IsLatestVersion": True,
            }
            for reservation in backend.all_reservations()
            for instance in reservation.instances
            if instance.iam_instance_profile
            and instance.state != "terminated"
            and (wanted is None or instance.id in wanted)
        ]
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxResults") or 50)
        result: dict[str, Any] = {"InstanceInformationList": managed[start : start + size]}
        if start + size < len(managed):
            result["NextToken"] = str(start + size)
        return ActionResult(result)

    SimpleSystemManagerBackend.send_command = send_command  # type: ignore[method-assign,assignment]
    SimpleSystemManagerBackend.cancel_command = cancel_command  # type: ignore[attr-defined]
    Command.response_object = response_object  # type: ignore[method-assign]
    Command.get_invocation = get_invocation  # type: ignore[method-assign]
    SimpleSystemManagerResponse.cancel_command = cancel_command_response  # type: ignore[attr-defined]
    SimpleSystemManagerResponse.describe_instance_information = describe_instance_information  # type: ignore[attr-defined]


# -- 5. ECS: running tasks stay running -----------------------------------------------------------


def _patch_ecs_tasks() -> None:
    # "manual" progression with a count never reached: a task changes status only when told to.
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 2**62})


# -- 6. Pagination where moto returns everything in one page ---------------------------------------


def _page(items: list[Any], token: Any, size: Any, default: int) -> tuple[list[Any], str | None]:
    start, count = int(token or 0), int(size or default)
    return items[start : start + count], (str(start + count) if start + count < len(items) else None)


def _paginate(
    owner: type, method: str, items: str, size: str, token: str, next_key: str, default: int
) -> None:
    original = getattr(owner, method)

    def paged(self: Any) -> Any:
        result = original(self)
        asked_size, asked_token = self._get_param(size), self._get_param(token)
        if isinstance(result, str):  # REST-JSON services (Lambda) answer a JSON string
            body = json.loads(result)
            body[items], next_token = _page(body[items], asked_token, asked_size, default)
            if next_token:
                body[next_key] = next_token
            return json.dumps(body)
        body = dict(result.result)
        body[items], next_token = _page(list(body[items]), asked_token, asked_size, default)
        if next_token:
            body[next_key] = next_token
        return ActionResult(body)

    setattr(owner, method, paged)


def _patch_pagination() -> None:
    _paginate(
        EC2ContainerServiceResponse, "list_tasks", "taskArns", "maxResults", "nextToken", "nextToken", 100
    )
    _paginate(LambdaResponse, "list_functions", "Functions", "MaxItems", "Marker", "NextMarker", 50)
    _paginate(RDSResponse, "describe_db_clusters", "DBClusters", "MaxRecords", "Marker", "Marker", 100)
    _paginate(SubnetsResponse, "describe_subnets", "Subnets", "MaxResults", "NextToken", "NextToken", 1000)


# DynamoDB applies each write to an item atomically, condition included; moto checks a condition
# and then writes, with nothing in between to stop a second request on another thread. Every lock
# the platform takes (a run's locks, a schedule's claim, the notifications hold) is a conditional
# write, so on the embedded AWS, with requests on many threads, two could both win. One lock over
# moto's item operations makes each check-and-write one step, as it is on AWS. Every operation also
# hands back a copy taken under the lock, writes as much as reads: moto's answer is its live item
# (UpdateItem's and PutItem's too), turned into JSON by moto's response after the lock is released,
# while a write on another thread may be changing it ("dictionary changed size during iteration" in
# Item.to_json: a GetItem that overlapped an UpdateItem, or the UpdateItem that releases the
# notifications hold overlapping the one that takes it next). On AWS the service is another
# process and answers with bytes; only the embedded one shares its items with its callers.
DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
DYNAMODB_READS = ("get_item", "query", "scan", "batch_get_item", "transact_get_items")
DYNAMODB_ITEM_OPERATIONS = DYNAMODB_WRITES + DYNAMODB_READS
_dynamodb_items = threading.RLock()


def _one_at_a_time(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _dynamodb_items:
            return copy.deepcopy(operation(*args, **kwargs))

    return locked


def _patch_dynamodb_atomic_writes() -> None:
    for name in DYNAMODB_ITEM_OPERATIONS:
        setattr(DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name)))


PATCHED = (
    *((DynamoDBBackend, name) for name in DYNAMODB_ITEM_OPERATIONS),
    (CloudWatchBackend, "set_alarm_state"),
    (Rule, "send_to_targets"),
    (ParserExecution, "stop"),
    (BaseExecutionWorkerCommunication, "terminated"),
    (SimpleSystemManagerBackend, "send_command"),
    (SimpleSystemManagerBackend, "get_command_by_id"),
    (Command, "response_object"),
    (Command, "get_invocation"),
    (EC2ContainerServiceResponse, "list_tasks"),
    (LambdaResponse, "list_functions"),
    (RDSResponse, "describe_db_clusters"),
    (SubnetsResponse, "describe_subnets"),
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
        _patch_ssm_commands()
        _patch_ecs_tasks()
        _patch_pagination()
        _patch_dynamodb_atomic_writes()
        _state["applied"] = True
