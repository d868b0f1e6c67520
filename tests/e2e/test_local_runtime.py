"""`chaosplane local` as a user runs it: a subprocess, driven over HTTP and the AWS endpoint only."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests

from tests.conftest import ROOT, real_prometheus, wait_until

pytestmark = pytest.mark.e2e
CLI = Path(sys.executable).with_name("chaosplane")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@dataclass
class Local:
    process: subprocess.Popen[str]
    port: int
    aws_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ec2(self):  # type: ignore[no-untyped-def]
        return boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        ).client("ec2", endpoint_url=f"http://127.0.0.1:{self.aws_port}")

    def states(self, selector_value: str) -> dict[str, str]:
        found = self.ec2().describe_instances(Filters=[{"Name": "tag:app", "Values": [selector_value]}])
        return {i["InstanceId"]: i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]}

    def output(self) -> str:
        return self.log.read_text()

    @property
    def http(self) -> requests.Session:
        """A session that carries the admin token `chaosplane local` printed."""
        token = re.search(r"export TOKEN=(\S+)", self.output())
        assert token is not None, self.output()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token[1]}"
        return session


def start_local(tmp_path: Path, *extra: str) -> Local:
    port, aws_port = free_port(), free_port()
    log = tmp_path / f"local-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen(
        [str(CLI), "local", "--port", str(port), "--aws-port", str(aws_port), *extra],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    local = Local(process, port, aws_port, log)

    def ready() -> bool:
        assert process.poll() is None, f"chaosplane local exited early:\n{local.output()}"
        return "Press Ctrl-C to stop" in local.output()

    wait_until(ready, timeout=60, interval=0.2)
    return local


def shut_down(local: Local, sig: int = signal.SIGTERM) -> int:
    if local.process.poll() is None:
        local.process.send_signal(sig)
    return local.process.wait(timeout=30)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    running = start_local(tmp_path_factory.mktemp("local"))
    yield running
    shut_down(running)


def test_it_prints_where_everything_is(local: Local) -> None:
    out = local.output()
    assert f"API:          {local.url}" in out
    assert f"API docs:     {local.url}/docs" in out
    assert f"AWS endpoint: http://127.0.0.1:{local.aws_port}" in out
    assert requests.get(f"{local.url}/health", timeout=5).json() == {"status": "ok"}
    assert requests.get(f"{local.url}/docs", timeout=5).status_code == 200


def test_the_demo_runs_end_to_end_over_http(local: Local) -> None:
    experiments = local.http.get(f"{local.url}/experiments", timeout=5).json()["items"]
    demo = next(e for e in experiments if e["name"] == "stop-half-of-demo")
    target = local.http.get(f"{local.url}/targets/{demo['target']}", timeout=5).json()
    assert target["selector"] == "app=demo"
    assert set(local.states("demo").values()) == {"running"} and len(local.states("demo")) == 4

    # The demo holds its fault for 20 s; make it 10 s (as a user would, with PUT) to keep this
    # quick, yet long enough for a poll from a busy machine to see both instances stopped at once.
    body = {k: demo[k] for k in ("name", "description", "type", "target", "parameters", "selection")}
    local.http.put(
        f"{local.url}/experiments/{demo['id']}", json={**body, "duration": 10}, timeout=5
    ).raise_for_status()

    run = local.http.post(f"{local.url}/experiments/{demo['id']}/run", timeout=5)
    assert run.status_code == 202
    result_id = run.json()["result_id"]
    wait_until(lambda: list(local.states("demo").values()).count("stopped") == 2, timeout=30)

    def final() -> dict | None:
        result = local.http.get(f"{local.url}/results/{result_id}", timeout=5).json()
        return result if result["status"] in ("completed", "stopped", "failed") else None

    result = wait_until(final, timeout=60)
    assert result["status"] == "completed", result
    assert len(result["resources"]) == 2
    assert set(local.states("demo").values()) == {"running"}


def test_stop_over_http(local: Local) -> None:
    # Hitting every demo instance is over the default policy (50% of a target): say so first.
    local.http.put(f"{local.url}/safety/policy", json={"max_percent": 100}, timeout=5).raise_for_status()
    target = local.http.post(
        f"{local.url}/targets",
        json={"name": "all demo", "type": "ec2-instances", "selector": "app=demo"},
        timeout=5,
    ).json()
    experiment = local.http.post(
        f"{local.url}/experiments",
        json={"name": "long stop", "type": "ec2-stop", "target": target["id"], "duration": 3600},
        timeout=5,
    ).json()
    result_id = local.http.post(f"{local.url}/experiments/{experiment['id']}/run", timeout=5).json()[
        "result_id"
    ]
    wait_until(lambda: set(local.states("demo").values()) == {"stopped"}, timeout=30)
    assert local.http.post(f"{local.url}/experiments/{experiment['id']}/stop", timeout=5).status_code == 202
    result = wait_until(
        lambda: (
            (r := local.http.get(f"{local.url}/results/{result_id}", timeout=5).json())["status"] == "stopped"
            and r
        ),
        timeout=30,
    )
    assert result["error"] is None
    assert set(local.states("demo").values()) == {"running"}


def test_two_instances_on_other_ports_do_not_disturb_each_other(local: Local, tmp_path: Path) -> None:
    second = start_local(tmp_path, "--no-demo")
    try:
        assert second.http.get(f"{second.url}/experiments", timeout=5).json()["items"] == []
        second.http.post(
            f"{second.url}/targets",
            json={"name": "only here", "type": "ec2-instances", "selector": "a=b"},
            timeout=5,
        ).raise_for_status()
        names = [t["name"] for t in local.http.get(f"{local.url}/targets", timeout=5).json()["items"]]
        assert "only here" not in names
        assert second.states("demo") == {}
    finally:
        assert shut_down(second, signal.SIGINT) == 0
    assert "Chaosplane stopped." in second.output()
    assert port_is_free(second.port) and port_is_free(second.aws_port)
    assert requests.get(f"{local.url}/health", timeout=5).status_code == 200


def test_sigterm_stops_cleanly_and_frees_the_ports(tmp_path: Path) -> None:
    running = start_local(tmp_path, "--no-demo")
    # Everything runs in one process (threads): there must be no child process to leave behind.
    children = subprocess.run(["pgrep", "-P", str(running.process.pid)], capture_output=True, text=True)
    assert children.stdout.strip() == "", f"unexpected child processes: {children.stdout}"
    assert shut_down(running, signal.SIGTERM) == 0
    assert "Chaosplane stopped." in running.output()
    assert port_is_free(running.port) and port_is_free(running.aws_port)


def test_a_taken_port_is_a_clear_error(local: Local) -> None:
    completed = subprocess.run(
        [str(CLI), "local", "--port", str(local.port), "--aws-port", str(free_port()), "--no-demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2
    assert f"port {local.port}" in completed.stdout and "in use" in completed.stdout


def test_chaosplane_token_mints_tokens_the_local_platform_accepts(local: Local) -> None:
    minted = subprocess.run(
        [
            str(CLI),
            "token",
            "--role",
            "viewer",
            "--team",
            "demo",
            "--ttl",
            "10m",
            "--aws-port",
            str(local.aws_port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    viewer = {"Authorization": f"Bearer {minted}"}
    names = [
        e["name"] for e in requests.get(f"{local.url}/experiments", headers=viewer, timeout=5).json()["items"]
    ]
    assert "stop-half-of-demo" in names  # same team as the demo
    denied = requests.post(f"{local.url}/targets", json={}, headers=viewer, timeout=5)
    assert denied.status_code == 403
    assert requests.get(f"{local.url}/targets", timeout=5).status_code == 401
    bad_role = subprocess.run(
        [str(CLI), "token", "--role", "root", "--aws-port", str(local.aws_port)],
        capture_output=True,
        text=True,
    )
    assert bad_role.returncode != 0 and "viewer, operator or admin" in bad_role.stderr + bad_role.stdout


def test_a_real_prometheus_scrapes_the_platforms_metrics(local: Local, tmp_path: Path) -> None:
    # Given Debian's Prometheus scraping the local platform's /metrics every second...
    with real_prometheus(tmp_path, [local.url.removeprefix("http://")]) as prometheus:
        scraped_platform(local, prometheus.value)


def scraped_platform(local: Local, value: Callable[[str], float | None]) -> None:
    """...when a run completes, Prometheus's own query sees the platform's counter go up."""
    completed = 'sum(chaosplane_runs_completed_total{fault="ec2-stop"}) or vector(0)'
    before = value(completed)
    assert before is not None
    # ...when a run completes...
    target = local.http.post(
        f"{local.url}/targets",
        json={"name": "one demo", "type": "ec2-instances", "selector": "app=demo"},
        timeout=5,
    ).json()
    body = {
        "name": "scraped",
        "type": "ec2-stop",
        "target": target["id"],
        "duration": 1,
        "selection": "COUNT(1)",
    }
    experiment = local.http.post(f"{local.url}/experiments", json=body, timeout=5).json()
    run = local.http.post(f"{local.url}/experiments/{experiment['id']}/run", timeout=5)
    assert run.status_code == 202, run.text
    result_id = run.json()["result_id"]
    wait_until(
        lambda: local.http.get(f"{local.url}/results/{result_id}", timeout=5).json()["status"] == "completed",
        timeout=60,
    )
    # ...Prometheus's own query sees the counter go up by one, and the sweeper's gauge is there.
    wait_until(lambda: value(completed) == before + 1, timeout=30)
    assert value("chaosplane_faults_active") is not None
    assert value("chaosplane_rollback_duration_milliseconds_count") is not None
