"""Shared fixtures: an embedded AWS in this process with template.yaml deployed into it."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from werkzeug.test import Client

from chaosplane.auth import Role, mint_token
from chaosplane.local import emulation, lambda_patch
from chaosplane.local.deploy import Deployment, deploy
from chaosplane.local.gateway import LocalGateway
from chaosplane.tenancy import TEAM_TAG

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
REGION = "us-east-1"
TEAM = "test"
_DEFAULT = object()


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a test reach a real AWS account."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "ChaosplaneTest",
        "CHAOSPLANE_METRICS": "prometheus",  # as on `chaosplane local`: the process's registry
        "CHAOSPLANE_EGRESS": "local",  # as on `chaosplane local`: the tests' servers are on loopback
    }.items():
        monkeypatch.setenv(key, value)


def owned(tags: dict[str, str], team: str = TEAM) -> dict[str, str]:
    """`tags` with the team's chaosplane/team tag: what the team's runs may act on."""
    return {TEAM_TAG: team, **tags}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RealPrometheus:
    url: str

    def value(self, promql: str) -> float | None:
        """The query's first sample; None while Prometheus is not up or has no answer."""
        try:
            answer = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5).json()
        except (requests.ConnectionError, ValueError):
            return None
        found = answer["data"]["result"]
        return float(found[0]["value"][1]) if found else None


@contextmanager
def real_prometheus(directory: Path, scraped: list[str]) -> Iterator[RealPrometheus]:
    """Debian's Prometheus on loopback scraping `scraped` (host:port) every second, once it has
    scraped them all."""
    port = free_port()
    config = directory / "prometheus.yml"
    targets = ", ".join(f"'{t}'" for t in scraped)
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs:\n  - {{job_name: scraped, static_configs: [{{targets: [{targets}]}}]}}\n"
    )
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    prometheus = RealPrometheus(f"http://127.0.0.1:{port}")
    try:
        wait_until(lambda: prometheus.value('sum(up{job="scraped"})') == len(scraped), timeout=60)
        yield prometheus
    finally:
        process.terminate()
        process.wait(timeout=30)


def put_alarm(cloudwatch: Any, name: str, *, team: str | None = None, threshold: float = 1) -> str:
    """An alarm on the Shop 5xx metric above `threshold`, tagged as `team`'s if given; its ARN."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="5xx",
        Namespace="Shop",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": TEAM_TAG, "Value": team}] if team else [],
    )
    return str(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["AlarmArn"])


def wait_until(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail with a clear message at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@dataclass
class Platform:
    """The deployed platform: the API through the local gateway, and AWS clients to look behind it."""

    deployment: Deployment
    session: boto3.session.Session
    http: Client

    def secret(self) -> str:
        name = self.deployment.secrets["JwtSecret"]
        return str(self.session.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])

    def token(self, role: Role = Role.ADMIN, team: str = TEAM, subject: str = "tester", **kwargs: Any) -> str:
        return mint_token(self.secret(), subject=subject, role=role, team=team, **kwargs)

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: str | None = None,
        token: Any = _DEFAULT,
        accept: str = "application/json",
        **query: Any,
    ) -> Any:
        """Call the API through the local gateway; as an admin of TEAM unless `token` says otherwise."""
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        headers = {"Content-Type": "application/json", "Accept": accept}
        bearer = self.token() if token is _DEFAULT else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return self.http.open(path, method=method, data=data, query_string=query or None, headers=headers)

    def json(
        self, method: str, path: str, body: Any = None, expect: int = 200, token: Any = _DEFAULT, **query: Any
    ) -> Any:
        response = self.api(method, path, body, token=token, **query)
        assert response.status_code == expect, (response.status_code, response.get_data(as_text=True))
        return response.get_json(silent=True)

    def loosen_policy(self, team: str = TEAM, **overrides: Any) -> None:
        """Most tests hit all of a handful of instances: far over the conservative default policy."""
        policy = {"max_percent": 100, "max_resources": 100, "max_duration": 43200, **overrides}
        self.json("PUT", "/safety/policy", policy, token=self.token(team=team))

    def settle(self, timeout: float = 20.0) -> None:
        """Let executions finish their last state before the embedded AWS is torn down."""
        deadline = time.monotonic() + timeout
        sfn = self.sfn
        while time.monotonic() < deadline:
            running = sfn.list_executions(
                stateMachineArn=self.deployment.state_machine_arn, statusFilter="RUNNING"
            )["executions"]
            if not running:
                return
            time.sleep(0.1)

    def alarm(self, name: str, state: str = "OK", reason: str = "test", team: str | None = TEAM) -> None:
        """A CloudWatch alarm to use as a stop condition, in the given state, the `team`'s own."""
        cloudwatch = self.session.client("cloudwatch")
        put_alarm(cloudwatch, name, team=team)
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)
        # The state change goes to the guard as an event, on a thread of its own: let it be handled
        # now, as it would have been by the time anything else happens, not at some racing moment.
        wait_until(lambda: not emulation.delivering(), timeout=30)

    @property
    def ec2(self) -> Any:
        return self.session.client("ec2")

    @property
    def sfn(self) -> Any:
        return self.session.client("stepfunctions")

    def instances(self, count: int, tags: dict[str, str], team: str | None = TEAM) -> list[str]:
        """`count` running instances with `tags`, the `team`'s own by its tag (None: nobody's)."""
        tags = owned(tags, team) if team is not None else tags
        reservation = self.ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=count,
            MaxCount=count,
            InstanceType="t3.micro",
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )
        return [i["InstanceId"] for i in reservation["Instances"]]

    def states(self, instance_ids: list[str]) -> dict[str, str]:
        found = self.ec2.describe_instances(InstanceIds=instance_ids)
        return {i["InstanceId"]: i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]}

    def wait_for_result(self, result_id: str, timeout: float = 30.0, token: Any = _DEFAULT) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            result = self.json("GET", f"/results/{result_id}", token=token)
            return result if result["status"] in ("completed", "stopped", "failed", "skipped") else None

        return wait_until(final, timeout)  # type: ignore[no-any-return]


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        lambda_patch.apply()
        emulation.apply()
        session = boto3.session.Session(region_name=REGION)
        deployment = deploy(TEMPLATE, session)
        # Each test deploys a new signing secret, which functions read once and keep: a cold start.
        lambda_patch.reset_loaded_handlers()
        for key, value in deployment.environment.items():
            monkeypatch.setenv(key, value)
        gateway = LocalGateway(session.client("lambda"), deployment.api())
        platform = Platform(deployment, session, Client(gateway))
        platform.loosen_policy()
        yield platform
        platform.settle()
