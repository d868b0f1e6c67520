"""Latency of a run on the embedded AWS, as a user sees it over HTTP.

For each of --runs runs of an `ec2-stop` experiment (COUNT(2) of 4 instances):
  inject latency:   POST /experiments/{id}/run  ->  every selected instance is `stopped`
  restore latency:  POST /experiments/{id}/stop ->  every selected instance is back to `running`
Prints the median and max of each, and their ratio. Usage: python bench/run_latency.py [--runs 10]

The platform runs as `chaosplane local` in its own process, as a user runs it, so this script's
polling does not compete with the platform for the interpreter.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(check, timeout: float = 60.0) -> float:  # type: ignore[no-untyped-def]
    """Poll until check() is true; return the moment it first was."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        time.sleep(POLL_SECONDS)
    raise TimeoutError("condition not met in time")


def _up(api: str) -> bool:
    try:
        return requests.get(f"{api}/health", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    port, aws_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    platform = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("chaosplane")),
            "local",
            "--no-demo",
            "--port",
            str(port),
            "--aws-port",
            str(aws_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(api))
        ec2 = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        ).client("ec2", endpoint_url=f"http://127.0.0.1:{aws_port}")
        ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=4,
            MaxCount=4,
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "bench"}]}],
        )
        target = requests.post(
            f"{api}/targets",
            json={"name": "bench", "type": "ec2-instances", "selector": "app=bench"},
            timeout=30,
        ).json()
        experiment = requests.post(
            f"{api}/experiments",
            json={
                "name": "bench",
                "type": "ec2-stop",
                "target": target["id"],
                "duration": 3600,
                "selection": "COUNT(2)",
            },
            timeout=30,
        ).json()

        def states() -> list[str]:
            found = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": ["bench"]}])
            return [i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]]

        inject, restore = [], []
        for n in range(args.runs + 1):  # the first run warms the functions up (cold start) and is not counted
            started = time.perf_counter()
            run = requests.post(f"{api}/experiments/{experiment['id']}/run", timeout=30)
            run.raise_for_status()
            stopped_at = wait_for(lambda: states().count("stopped") == 2)
            asked = time.perf_counter()
            requests.post(f"{api}/experiments/{experiment['id']}/stop", timeout=30).raise_for_status()
            restored_at = wait_for(lambda: set(states()) == {"running"})
            result_id = run.json()["result_id"]
            wait_for(
                lambda rid=result_id: (
                    requests.get(f"{api}/results/{rid}", timeout=30).json()["status"] == "stopped"
                )
            )
            if n:
                inject.append(stopped_at - started)
                restore.append(restored_at - asked)
    finally:
        platform.send_signal(signal.SIGTERM)
        platform.wait(timeout=30)

    def row(name: str, values: list[float]) -> str:
        return (
            f"{name:<34} median {statistics.median(values) * 1000:8.0f} ms   max {max(values) * 1000:8.0f} ms"
        )

    print(f"runs: {args.runs} (after one warm-up run) on `chaosplane local`; 2 of 4 instances hit")
    print(row("POST run -> selected stopped", inject))
    print(row("POST stop -> all restored", restore))
    print(f"restore/inject median ratio: {statistics.median(restore) / statistics.median(inject):.2f}")


if __name__ == "__main__":
    main()
