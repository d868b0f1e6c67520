"""Canary: fails loudly when a moto upgrade breaks what the local runtime relies on.

The local runtime patches one private moto method and leans on moto's Step Functions engine for
Retry/Catch by error name, `.waitForTaskToken`, `TimeoutSecondsPath` and task failures. Each of
those is checked here on its own, so a failure names what broke instead of a run hanging.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import moto
import moto.awslambda.models
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chaosplane.local import emulation, lambda_patch
from tests.conftest import ROOT, put_alarm, wait_until

HANDLER = """
class Boom(Exception):
    pass

def lambda_handler(event, context):
    if event.get("fail"):
        raise Boom("asked to fail")
    if event.get("token"):
        TOKENS.append(event["token"])
        BY_EXECUTION[event.get("execution")] = event["token"]
        return {"waiting": True}
    return {"echo": event, "function": context.function_name}

TOKENS = []
BY_EXECUTION = {}  # a late invocation of an earlier execution must not be mistaken for this one's
"""


def test_moto_is_the_pinned_version() -> None:
    pin = re.search(r"^moto\[server\]==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert pin is not None, "requirements-dev.txt must pin moto exactly"
    assert moto.__version__ == pin[1], f"moto {moto.__version__} installed, {pin[1]} pinned"


def test_the_patched_method_still_exists_with_the_same_shape() -> None:
    # Read moto's own source: once patched, the class attribute is ours and proves nothing.
    source = inspect.getsource(moto.awslambda.models)
    assert re.search(r"def _invoke_lambda\(self, event: [^)]*\) -> tuple\[str, bool, str\]:", source), (
        "moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) -> (payload, errored, logs) "
        "changed: update chaosplane/local/lambda_patch.py"
    )
    assert "res, errored, logs = self._invoke_lambda(event=body)" in source, (
        "moto's invoke() calls it differently"
    )


@pytest.fixture
def sfn_with_function(tmp_path: Path) -> Iterator[tuple[object, str]]:
    (tmp_path / "app.py").write_text(HANDLER)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        lambda_patch.apply()
        session = boto3.session.Session(region_name="us-east-1")
        role = session.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        arn = session.client("lambda").create_function(
            FunctionName="canary",
            Runtime="python3.13",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )["FunctionArn"]
        lambda_patch.register_code("canary", tmp_path)
        yield session, arn


def run_machine(session: object, definition: dict, payload: dict, name: str) -> tuple[str, str]:
    sfn = session.client("stepfunctions")  # type: ignore[attr-defined]
    machine = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name=f"{name}-1", input=json.dumps(payload))[
        "executionArn"
    ]
    return machine, execution


def finished(session: object, execution: str) -> dict:
    sfn = session.client("stepfunctions")  # type: ignore[attr-defined]
    return wait_until(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d, 60
    )  # generous: on a busy 2-core machine the embedded Step Functions' threads can lag


def test_a_task_runs_the_handler_in_process_and_errors_are_caught_by_class_name(sfn_with_function) -> None:
    session, arn = sfn_with_function
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload.$": "$"},
                "ResultSelector": {"out.$": "$.Payload"},
                "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.caught", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    _, ok = run_machine(session, definition, {"hello": "world"}, "ok")
    output = json.loads(finished(session, ok)["output"])
    assert output == {"out": {"echo": {"hello": "world"}, "function": "canary"}}

    _, failing = run_machine(session, definition, {"fail": True}, "failing")
    caught = json.loads(finished(session, failing)["output"])["caught"]
    assert caught["Error"] == "Boom", "Step Functions must see the exception class name as the error"
    assert "asked to fail" in caught["Cause"]


def test_wait_for_task_token_times_out_after_the_path_and_takes_task_failures(sfn_with_function) -> None:
    session, arn = sfn_with_function
    definition = {
        "StartAt": "Observe",
        "States": {
            "Observe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": arn,
                    "Payload": {"token.$": "$$.Task.Token", "execution.$": "$$.Execution.Name"},
                },
                "TimeoutSecondsPath": "$.duration",
                "Catch": [
                    {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.ended", "Next": "TimedOut"},
                    {"ErrorEquals": ["Halted"], "ResultPath": "$.ended", "Next": "Halted"},
                ],
                "End": True,
            },
            "TimedOut": {"Type": "Pass", "Result": "timeout", "ResultPath": "$.how", "End": True},
            "Halted": {"Type": "Pass", "Result": "halted", "ResultPath": "$.how", "End": True},
        },
    }
    started = time.monotonic()
    _, timing_out = run_machine(session, definition, {"duration": 1}, "timeout")
    assert json.loads(finished(session, timing_out)["output"])["how"] == "timeout"
    assert time.monotonic() - started >= 1

    for module in lambda_patch.environments("canary"):
        module.TOKENS.clear()
    _, halting = run_machine(session, definition, {"duration": 600}, "halt")

    def latest_token() -> str | None:
        tokens = [m.BY_EXECUTION.get("halt-1") for m in lambda_patch.environments("canary")]
        return next((t for t in tokens if t), None)

    token = wait_until(latest_token, 10)
    session.client("stepfunctions").send_task_failure(taskToken=token, error="Halted", cause="stop")
    assert json.loads(finished(session, halting)["output"])["how"] == "halted"


RECORDER = """
EVENTS = []

def lambda_handler(event, context):
    EVENTS.append(event)
    return {"ok": True}
"""


class _Recorded:
    """What the recording Lambda received, across all its execution environments."""

    @property
    def EVENTS(self) -> list[dict[str, Any]]:  # the handler module's name for it
        return [event for module in lambda_patch.environments("recorder") for event in module.EVENTS]


@pytest.fixture
def events_to_lambda(tmp_path: Path) -> Iterator[tuple[object, object]]:
    """A rule matching everything, delivering to a recording Lambda, with the emulation applied."""
    (tmp_path / "app.py").write_text(RECORDER)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        lambda_patch.apply()
        emulation.apply()
        session = boto3.session.Session(region_name="us-east-1")
        role = session.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        arn = session.client("lambda").create_function(
            FunctionName="recorder",
            Runtime="python3.13",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )["FunctionArn"]
        lambda_patch.register_code("recorder", tmp_path)
        events = session.client("events")
        pattern = {"source": ["aws.cloudwatch", "aws.states"]}
        events.put_rule(Name="all", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="all", Targets=[{"Id": "recorder", "Arn": arn}])
        lambda_patch.reset_loaded_handlers()
        yield session, _Recorded()


def test_an_alarm_state_change_reaches_a_lambda_target_as_aws_sends_it(events_to_lambda) -> None:
    session, recorder = events_to_lambda
    cloudwatch = session.client("cloudwatch")
    put_alarm(cloudwatch, "canary")
    cloudwatch.set_alarm_state(AlarmName="canary", StateValue="ALARM", StateReason="boom")
    event = wait_until(lambda: recorder.EVENTS and recorder.EVENTS[-1], 10)
    assert event["source"] == "aws.cloudwatch" and event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["detail"]["alarmName"] == "canary"
    assert event["detail"]["state"]["value"] == "ALARM" and event["detail"]["state"]["reason"] == "boom"
    assert event["detail"]["previousState"]["value"] == "OK"  # a new alarm starts OK in moto


def test_an_alarm_forwarded_from_another_account_and_region_keeps_where_it_came_from(
    events_to_lambda,
) -> None:
    session, recorder = events_to_lambda
    found = session.client("sts").assume_role(
        RoleArn="arn:aws:iam::222222222222:role/target", RoleSessionName="canary"
    )["Credentials"]
    elsewhere = boto3.session.Session(
        aws_access_key_id=found["AccessKeyId"],
        aws_secret_access_key=found["SecretAccessKey"],
        aws_session_token=found["SessionToken"],
        region_name="eu-west-1",
    )
    events = elsewhere.client("events")  # infra/target-account.yaml's ForwardAlarms rule
    events.put_rule(Name="forward", EventPattern=json.dumps({"source": ["aws.cloudwatch"]}))
    platform_bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    events.put_targets(Rule="forward", Targets=[{"Id": "platform", "Arn": platform_bus}])
    cloudwatch = elsewhere.client("cloudwatch")
    arn = put_alarm(cloudwatch, "far")
    cloudwatch.set_alarm_state(AlarmName="far", StateValue="ALARM", StateReason="far away")

    event = wait_until(lambda: recorder.EVENTS and recorder.EVENTS[-1], 10)
    assert (event["account"], event["region"], event["resources"]) == ("222222222222", "eu-west-1", [arn])
    assert event["detail"]["alarmName"] == "far" and event["detail"]["state"]["reason"] == "far away"


def test_a_stopped_execution_is_aborted_at_once_and_announced(events_to_lambda) -> None:
    session, recorder = events_to_lambda
    sfn = session.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="waits",
        roleArn="arn:aws:iam::123456789012:role/r",
        definition=json.dumps(
            {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}
        ),
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="x")["executionArn"]
    time.sleep(0.3)
    sfn.stop_execution(executionArn=execution, error="Crash")
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    event = wait_until(lambda: next((e for e in recorder.EVENTS if e["source"] == "aws.states"), None), 10)
    assert event["detail-type"] == "Step Functions Execution Status Change"
    assert event["detail"]["status"] == "ABORTED" and event["detail"]["name"] == "x"
    assert event["detail"]["stateMachineArn"] == machine


# -- the cloud-fault emulation (emulation.py patches 4 to 6) ---------------------------------------


def moto_source(owner: type, function: str) -> str:
    """moto's own source of one method, read from its file (the class attribute may be ours)."""
    match = re.search(rf"\n    def {function}\(.*?(?=\n    def |\Z)", inspect.getsource(owner), re.S)
    assert match is not None, f"moto's {owner.__name__} no longer defines {function}"
    return match[0]


def test_moto_still_lacks_what_the_cloud_fault_patches_add() -> None:
    """When one of these fails, moto does it itself now: drop that patch from emulation.py."""
    from moto.awslambda.responses import LambdaResponse
    from moto.ec2.responses.subnets import Subnets
    from moto.ecs.models import Task
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.rds.responses import RDSResponse
    from moto.ssm.models import Command
    from moto.ssm.responses import SimpleSystemManagerResponse

    ssm = inspect.getsource(SimpleSystemManagerResponse)
    assert "def cancel_command" not in ssm, "moto has CancelCommand: drop the SSM patch"
    assert "def describe_instance_information" not in ssm, "moto has DescribeInstanceInformation"
    assert 'self.status = "Success"' in moto_source(Command, "__init__"), "SSM commands no longer end at once"
    assert "all_reservations(filters=ec2_filters)" in moto_source(Command, "_get_instance_ids_from_targets")
    assert '("RUNNING", "DEACTIVATING")' in inspect.getsource(Task), "ECS task states changed"
    assert "nextToken" not in moto_source(EC2ContainerServiceResponse, "list_tasks"), (
        "moto paginates ListTasks"
    )
    assert "Marker" not in moto_source(LambdaResponse, "list_functions"), "moto paginates ListFunctions"
    assert "Marker" not in moto_source(RDSResponse, "describe_db_clusters"), "moto paginates DB clusters"
    assert "NextToken" not in moto_source(Subnets, "describe_subnets"), "moto paginates DescribeSubnets"


def test_ssm_commands_run_for_their_duration_and_cancel_as_on_aws() -> None:
    with mock_aws():
        emulation.apply()
        session = boto3.session.Session(region_name="us-east-1")
        session.client("iam").create_instance_profile(InstanceProfileName="ssm")
        ec2, ssm = session.client("ec2"), session.client("ssm")
        managed = ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "ssm"}
        )["Instances"][0]["InstanceId"]
        other = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0][
            "InstanceId"
        ]

        info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [managed, other]}])
        assert [(i["InstanceId"], i["PingStatus"]) for i in info["InstanceInformationList"]] == [
            (managed, "Online")
        ]

        long = ssm.send_command(
            InstanceIds=[managed],
            DocumentName="AWSFIS-Run-CPU-Stress",
            Parameters={"DurationSeconds": ["600"]},
        )["Command"]
        assert long["Status"] == "InProgress" and long["InstanceIds"] == [managed]
        assert ssm.list_commands(InstanceId=other)["Commands"] == []
        ssm.cancel_command(CommandId=long["CommandId"], InstanceIds=[managed])
        (listed,) = ssm.list_commands(CommandId=long["CommandId"])["Commands"]
        assert listed["Status"] == "Cancelled"
        invocation = ssm.get_command_invocation(CommandId=long["CommandId"], InstanceId=managed)
        assert invocation["Status"] == "Cancelled"

        short = ssm.send_command(
            InstanceIds=[managed], DocumentName="AWSFIS-Run-CPU-Stress", Parameters={"DurationSeconds": ["1"]}
        )["Command"]
        wait_until(
            lambda: ssm.list_commands(CommandId=short["CommandId"])["Commands"][0]["Status"] == "Success", 5
        )


def test_ecs_tasks_stay_running_and_lists_come_in_pages() -> None:
    with mock_aws():
        emulation.apply()
        session = boto3.session.Session(region_name="us-east-1")
        ecs = session.client("ecs")
        ecs.create_cluster(clusterName="c")
        ecs.register_task_definition(
            family="f", containerDefinitions=[{"name": "c", "image": "x", "memory": 64}]
        )
        arns = [
            t["taskArn"]
            for t in ecs.run_task(cluster="c", taskDefinition="f", count=5, launchType="FARGATE")["tasks"]
        ]
        for _ in range(3):
            assert {t["lastStatus"] for t in ecs.describe_tasks(cluster="c", tasks=arns)["tasks"]} == {
                "RUNNING"
            }
        first = ecs.list_tasks(cluster="c", maxResults=2)
        assert len(first["taskArns"]) == 2 and first["nextToken"]
        paged = [
            a
            for p in ecs.get_paginator("list_tasks").paginate(cluster="c", PaginationConfig={"PageSize": 2})
            for a in p["taskArns"]
        ]
        assert sorted(paged) == sorted(arns)

        ec2 = session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        for n in range(7):
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{n}.0/24")
        page = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}], MaxResults=5)
        assert len(page["Subnets"]) == 5 and page["NextToken"]

        rds = session.client("rds")
        for n in range(3):
            rds.create_db_cluster(
                DBClusterIdentifier=f"c{n}",
                Engine="aurora-postgresql",
                MasterUsername="u",
                MasterUserPassword="password1",
            )
        page = rds.describe_db_clusters(MaxRecords=2)
        assert len(page["DBClusters"]) == 2 and page["Marker"]
        assert len(rds.describe_db_clusters(MaxRecords=2, Marker=page["Marker"])["DBClusters"]) == 1

        lam = session.client("lambda")
        role = session.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        for n in range(3):
            lam.create_function(
                FunctionName=f"f{n}",
                Runtime="python3.13",
                Role=role,
                Handler="a.b",
                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
            )
        page = lam.list_functions(MaxItems=2)
        assert len(page["Functions"]) == 2 and page["NextMarker"]
        assert len(lam.list_functions(MaxItems=2, Marker=page["NextMarker"])["Functions"]) == 1


def test_an_application_event_from_put_events_reaches_a_lambda_target(events_to_lambda) -> None:
    """The run events (source chaosplane) reach the notifier the same way."""
    session, recorder = events_to_lambda
    events = session.client("events")
    arn = session.client("lambda").get_function(FunctionName="recorder")["Configuration"]["FunctionArn"]
    pattern = {"source": ["chaosplane"], "detail-type": ["Chaosplane Run State Change"]}
    events.put_rule(Name="runs", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="runs", Targets=[{"Id": "recorder", "Arn": arn}])
    entry = {"Source": "chaosplane", "DetailType": "Chaosplane Run State Change", "Detail": '{"run_id": "r"}'}
    events.put_events(Entries=[entry, {**entry, "DetailType": "Something Else"}])
    event = wait_until(lambda: next((e for e in recorder.EVENTS if e["source"] == "chaosplane"), None), 10)
    assert event["detail-type"] == "Chaosplane Run State Change" and event["detail"] == {"run_id": "r"}
    time.sleep(0.2)
    assert [e["detail-type"] for e in recorder.EVENTS if e["source"] == "chaosplane"] == [
        "Chaosplane Run State Change"
    ]


def test_a_conditional_write_is_one_step_so_only_one_of_many_claims_wins() -> None:
    # Given eight threads claiming each of 30 keys at once with "only if nobody has it" (how every
    # lock of the platform is taken)...
    with mock_aws():
        emulation.apply()
        dynamodb = boto3.session.Session(region_name="us-east-1").client("dynamodb")
        dynamodb.create_table(
            TableName="locks",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        keys = [f"lock-{n}" for n in range(30)]
        claimants = 8
        start = threading.Barrier(claimants)
        won: list[tuple[str, int]] = []

        def claim(who: int) -> None:
            start.wait()
            for key in keys:
                try:
                    dynamodb.update_item(
                        TableName="locks",
                        Key={"id": {"S": key}},
                        UpdateExpression="SET holder = :who",
                        ConditionExpression="attribute_not_exists(holder)",
                        ExpressionAttributeValues={":who": {"N": str(who)}},
                    )
                    won.append((key, who))
                except (
                    ClientError
                ) as err:  # by code: botocore builds client.exceptions lazily, per thread race
                    if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise

        switch_every = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # threads take turns far more often: a torn check-and-write shows
        try:
            with ThreadPoolExecutor(max_workers=claimants) as pool:
                list(pool.map(claim, range(claimants)))
        finally:
            sys.setswitchinterval(switch_every)
        # ...each key has exactly one winner, and it is the holder DynamoDB kept.
        assert sorted(key for key, _ in won) == sorted(keys)
        for key, who in won:
            item = dynamodb.get_item(TableName="locks", Key={"id": {"S": key}})["Item"]
            assert item["holder"] == {"N": str(who)}
