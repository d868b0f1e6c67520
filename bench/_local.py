"""What the bench scripts share: start `chaosplane local` as a user would, and poll with deadlines."""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 120.0, every: float = POLL_SECONDS) -> float:
    """Poll until check() is true; return the moment (perf_counter) it first was."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least pct% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def row(name: str, values: list[float]) -> str:
    median, p95, worst = statistics.median(values), percentile(values, 95), max(values)
    return (
        f"{name:<40} median {median * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   max {worst * 1000:7.0f} ms"
    )


@dataclass
class Local:
    api: str
    aws: str
    http: requests.Session

    def ec2_target(self, tag: str, instances: int) -> dict[str, Any]:
        """`instances` running instances tagged app=<tag>, a target selecting them, and a team policy
        that lets a run hit all of them (the default allows at most half of a target)."""
        self.http.put(f"{self.api}/safety/policy", json={"max_percent": 100}, timeout=30).raise_for_status()
        self.client("ec2").run_instances(
            ImageId="ami-12c6146b",
            MinCount=instances,
            MaxCount=instances,
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": tag}]}],
        )
        target = {"name": tag, "type": "ec2-instances", "selector": f"app={tag}"}
        response = self.http.post(f"{self.api}/targets", json=target, timeout=30)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        ).client(service, endpoint_url=self.aws)


@contextmanager
def local_platform(*extra: str) -> Iterator[Local]:
    port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("chaosplane")),
                "local",
                "--no-demo",
                "--port",
                str(port),
                "--aws-port",
                str(aws_port),
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:

            def token() -> str | None:
                log.seek(0)
                found = re.search(r"export TOKEN=(\S+)", log.read())
                return found[1] if found else None

            wait_for(token, timeout=90)
            http = requests.Session()
            http.headers["Authorization"] = f"Bearer {token()}"
            yield Local(api=f"http://127.0.0.1:{port}", aws=f"http://127.0.0.1:{aws_port}", http=http)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
