"""`chaosplane local`: the whole platform on this machine, on an embedded AWS.

One process: moto's server on --aws-port (so boto3 and the AWS CLI work against it with
AWS_ENDPOINT_URL), every resource of template.yaml deployed into it, the executor and API functions
running in-process through the Lambda patch, and the API served on --port by the local gateway.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import boto3
import requests
from werkzeug.serving import BaseWSGIServer, make_server

from chaosplane.auth import Role, mint_token
from chaosplane.tenancy import TEAM_TAG

if TYPE_CHECKING:
    from chaosplane.local.scheduler import ScheduleFirer

HOST = "127.0.0.1"
REGION = "us-east-1"
DEMO_TEAM = "demo"
DEMO_TAGS = {"app": "demo", "env": "local", TEAM_TAG: DEMO_TEAM}  # the demo team's own, by its tag
SECRET_LOGICAL_ID = "JwtSecret"


class PortInUse(RuntimeError):
    pass


def _check_free(port: int) -> None:
    """moto's threaded server hangs if its port is taken, so look first and say so plainly."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as err:
            raise PortInUse(f"port {port} on {HOST} is in use ({err.strerror})") from err


@dataclass
class LocalPlatform:
    template: Path
    port: int = 8080
    aws_port: int = 4566
    schedule_every: float | None = None  # override every schedule's rate (the sweeper), in seconds
    parameters: dict[str, str] = field(default_factory=dict)  # template parameter overrides
    kubeconfig: Path | None = None  # clusters named like its contexts are reached through it
    _moto: Any = None
    _gateway: BaseWSGIServer | None = None
    _secret_name: str | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    def start(self) -> None:
        _check_free(self.aws_port)
        _check_free(self.port)
        # moto's server and ours both log every request through werkzeug; the gateway logs its own.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # This process is the embedded AWS: everything in it talks to it, and only to it.
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "MOTO_PORT": str(self.aws_port),  # where moto's Step Functions engine calls Lambda
                "POWERTOOLS_TRACE_DISABLED": "1",
                "POWERTOOLS_METRICS_DISABLED": "1",
                # The platform's metrics go to this process's Prometheus registry, at /metrics.
                "CHAOSPLANE_METRICS": "prometheus",
                # Tenants' URLs may be on loopback here (a developer's servers), and nowhere private.
                "CHAOSPLANE_EGRESS": "local",
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        if self.kubeconfig is not None:
            os.environ["CHAOSPLANE_KUBECONFIG"] = str(self.kubeconfig)

        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        from chaosplane.local import emulation, lambda_patch
        from chaosplane.local.deploy import deploy
        from chaosplane.local.gateway import LocalGateway
        from chaosplane.local.prometheus import with_metrics
        from chaosplane.local.scheduler import ScheduleFirer

        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        lambda_patch.apply()
        emulation.apply()
        self._moto = ThreadedMotoServer(ip_address=HOST, port=self.aws_port, verbose=False)
        self._moto.start()

        session = boto3.session.Session(region_name=REGION)
        deployment = deploy(self.template, session, parameters=self.parameters)
        self._secret_name = deployment.secrets.get(SECRET_LOGICAL_ID)
        os.environ.update(deployment.environment)
        gateway = LocalGateway(session.client("lambda"), deployment.api())
        self._gateway = make_server(HOST, self.port, with_metrics(gateway), threaded=True)
        thread = threading.Thread(target=self._gateway.serve_forever, name="gateway", daemon=True)
        thread.start()
        self._threads.append(thread)
        lambda_client = session.client("lambda")
        for schedule in deployment.schedules:
            every = self.schedule_every or schedule.every_seconds
            ticker = threading.Thread(
                target=self._tick,
                args=(lambda_client, schedule.function, every),
                name=schedule.name,
                daemon=True,
            )
            ticker.start()
            self._threads.append(ticker)
        group = deployment.environment.get("SCHEDULE_GROUP")
        if group:
            firer = ScheduleFirer(session, group)
            thread = threading.Thread(
                target=self._fire_schedules, args=(firer,), name="scheduler", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _fire_schedules(self, firer: ScheduleFirer) -> None:
        """The experiments' EventBridge Scheduler schedules, fired as AWS would (once a second)."""
        while not self._stopping.wait(1.0):
            try:
                firer.tick()
            except Exception:  # the next tick tries again
                logging.getLogger("scheduler").exception("firing experiment schedules failed")

    def _tick(self, lambda_client: Any, function: str, every: float) -> None:
        """What EventBridge Scheduler would do: invoke the function with a scheduled event."""
        while not self._stopping.wait(every):
            # As EventBridge sends it: with the tick's time, from which the sweeper reports its lag.
            tick = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            event = {"source": "aws.events", "detail-type": "Scheduled Event", "time": tick, "detail": {}}
            try:
                lambda_client.invoke(
                    FunctionName=function, InvocationType="Event", Payload=json.dumps(event).encode()
                )
            except Exception:  # the next tick tries again, as a schedule would
                logging.getLogger("scheduler").exception("scheduled invoke of %s failed", function)

    def token(self, role: Role, team: str, ttl_seconds: int = 12 * 3600, subject: str = "local-admin") -> str:
        """A token signed with the embedded stack's own secret (HS256 mode)."""
        if self._secret_name is None:
            raise RuntimeError("template.yaml has no HS256 secret; local tokens need AuthMode HS256")
        secret = (
            boto3.session.Session(region_name=REGION)
            .client("secretsmanager")
            .get_secret_value(SecretId=self._secret_name)["SecretString"]
        )
        return mint_token(secret, subject=subject, role=role, team=team, ttl_seconds=ttl_seconds)

    def seed_demo(self, token: str, instances: int = 4) -> dict[str, Any]:
        """A few instances tagged app=demo, a target that selects them, an experiment that stops half."""
        ec2 = boto3.session.Session(region_name=REGION).client("ec2")
        ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=instances,
            MaxCount=instances,
            InstanceType="t3.micro",
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in DEMO_TAGS.items()]}
            ],
        )
        target = self._post(
            "/targets",
            {
                "name": "demo-web",
                "description": "EC2 instances tagged app=demo",
                "type": "ec2-instances",
                "selector": "app=demo",
            },
            token,
        )
        experiment = self._post(
            "/experiments",
            {
                "name": "stop-half-of-demo",
                "description": "Stop half of the demo instances for 20 seconds, then start them again",
                "type": "ec2-stop",
                "target": target["id"],
                "duration": 20,
                "selection": "PERCENT(50)",
            },
            token,
        )
        return {"target": target, "experiment": experiment}

    def _post(self, path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        response = requests.post(
            f"{self.api_url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self._stopping.set()
        if self._gateway is not None:
            self._gateway.shutdown()
            self._gateway.server_close()
            self._gateway = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for thread in self._threads:
            thread.join(timeout=5)


def serve_until_signalled(platform: LocalPlatform, on_ready: Callable[[], None]) -> None:
    """Start, report, and block until SIGINT or SIGTERM; then stop everything we started."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        platform.start()
        on_ready()
        stopping.wait()
    finally:
        platform.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
