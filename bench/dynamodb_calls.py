"""DynamoDB calls of one run: how many each step makes, for a run that stops 2 EC2 instances.

Runs the platform in this process on the embedded AWS (as the integration tests do: the same
handlers, the same state machine, from template.yaml), starts a run of `ec2-stop` on 2 instances
for 1 s through the HTTP API, waits for it to complete, and counts every DynamoDB call any function
made, by the function and the lifecycle step that made it (read off the call stack, so the script
works on any version of the code). Calls are counts, not times: the figure is the same on a busy
machine. Usage: python bench/dynamodb_calls.py [--instances 2] [--stop-conditions 1]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STEPS = (
    "start",
    "preview",
    "prepare",
    "advance",
    "inject",
    "observe",
    "rollback",
    "finalize",
    "recover",
    "on_alarm",
    "sweep",
)


def where(stack: list[traceback.FrameSummary]) -> str:
    function = next(
        (f.filename.split("/functions/")[1].split("/")[0] for f in stack if "/functions/" in f.filename),
        "executor:changes",  # a change's journal writes, on a worker thread (chaosplane.parallel)
    )
    step = next((f.name for f in stack if "/chaosplane/runs" in f.filename and f.name in STEPS), "")
    return f"{function}:{step}" if step else function


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--stop-conditions", type=int, default=1, help="alarms the experiment watches")
    args = parser.parse_args()

    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)

    import boto3
    import botocore.client
    from moto import mock_aws
    from werkzeug.test import Client

    from chaosplane.auth import Role, mint_token
    from chaosplane.local import emulation, lambda_patch
    from chaosplane.local.deploy import deploy
    from chaosplane.local.gateway import LocalGateway

    calls: collections.Counter[str] = collections.Counter()
    counting = [False]
    original = botocore.client.BaseClient._make_api_call

    def counted(self: Any, operation: str, params: Any) -> Any:
        if counting[0] and self.meta.service_model.service_name == "dynamodb":
            calls[f"{where(traceback.extract_stack())} {operation}"] += 1
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = counted  # type: ignore[method-assign]
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        lambda_patch.apply()
        emulation.apply()
        session = boto3.session.Session(region_name="us-east-1")
        deployment = deploy(ROOT / "template.yaml", session)
        os.environ.update(deployment.environment)
        gateway = Client(LocalGateway(session.client("lambda"), deployment.api()))
        secret = session.client("secretsmanager").get_secret_value(SecretId=deployment.secrets["JwtSecret"])
        token = mint_token(secret["SecretString"], subject="bench", role=Role.ADMIN, team="bench")
        headers = {"Authorization": f"Bearer {token}"}

        def api(method: str, path: str, body: Any = None) -> Any:
            response = gateway.open(path, method=method, json=body, headers=headers)
            assert response.status_code < 300, (path, response.status_code, response.get_data(as_text=True))
            return response.get_json() if response.status_code != 204 else None

        ec2 = session.client("ec2")
        ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=args.instances,
            MaxCount=args.instances,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "bench"}]}],
        )
        alarms = [f"bench-{n}" for n in range(args.stop_conditions)]
        cloudwatch = session.client("cloudwatch")
        for name in alarms:
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                MetricName="5xx",
                Namespace="Bench",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanThreshold",
            )
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="bench")
        api("PUT", "/safety/policy", {"max_percent": 100, "max_resources": 100})
        target = api("POST", "/targets", {"name": "bench", "type": "ec2-instances", "selector": "app=bench"})
        experiment = api(
            "POST",
            "/experiments",
            {
                "name": "bench",
                "type": "ec2-stop",
                "target": target["id"],
                "duration": 1,
                "stop_conditions": alarms,
            },
        )
        counting[0] = True
        run = api("POST", f"/experiments/{experiment['id']}/run")
        deadline = time.monotonic() + 60
        while api("GET", f"/results/{run['result_id']}")["status"] not in ("completed", "failed", "stopped"):
            if time.monotonic() > deadline:
                sys.exit("the run did not end within 60 s")
            time.sleep(0.05)
        time.sleep(1)  # the last run event's notifier invocation
        counting[0] = False
        status = api("GET", f"/results/{run['result_id']}")["status"]

    polls = sum(n for key, n in calls.items() if key.startswith("api") and "start" not in key)
    total = sum(calls.values())
    print(
        f"one run of ec2-stop on {args.instances} instances, "
        f"{args.stop_conditions} stop condition(s): {status}"
    )
    by_place: collections.Counter[str] = collections.Counter()
    for key, n in calls.items():
        by_place[key.split(" ")[0]] += n
    for place, n in sorted(by_place.items()):
        if not (place.startswith("api") and place != "api:start"):
            print(
                f"  {place:24s} {n:3d}   "
                + ", ".join(
                    f"{k.split(' ')[1]} {v}" for k, v in sorted(calls.items()) if k.split(" ")[0] == place
                )
            )
    print(
        f"DynamoDB calls of the run: {total - polls} (the API start, every step, the notifier; "
        f"not counting the {polls} of this script's own polling reads)"
    )


if __name__ == "__main__":
    main()
