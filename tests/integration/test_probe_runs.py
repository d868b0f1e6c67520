"""Probes in runs on the embedded AWS: the real handlers and the real state machine ask an HTTP
server on loopback that the test turns unhealthy mid-run, and CloudWatch metric data put into the
embedded AWS; each kind halts a run, a `before` probe refuses one, an `after` probe turns a
completed run's verdict to failed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Platform, real_prometheus, wait_until
from tests.integration.test_cloud_faults import target


class Service:
    """An HTTP endpoint on loopback: healthy (200) until the test says otherwise; its /metrics
    says `shop_errors` in Prometheus's text format."""

    def __init__(self) -> None:
        self.status = 200
        self.url = ""
        self.asked = 0
        self.errors = 0.0


@pytest.fixture
def service() -> Iterator[Service]:
    state = Service()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = f"# TYPE shop_errors gauge\nshop_errors {state.errors}\n".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
            else:
                state.asked += 1
                body = b'{"status": "up"}'
                self.send_response(state.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/health"
    yield state
    server.shutdown()
    server.server_close()


def _experiment(platform: Platform, tag: str, probes: list[dict[str, Any]], duration: int = 60) -> tuple:
    ids = platform.instances(2, {"probe": tag})
    web = target(platform, "ec2-instances", selector=f"probe={tag}")
    body = {"name": tag, "type": "ec2-stop", "target": web["id"], "duration": duration, "probes": probes}
    return platform.json("POST", "/experiments", body, expect=201), ids


def _start(platform: Platform, experiment: dict) -> str:
    return str(platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)["result_id"])


def _in_force(platform: Platform, run_id: str) -> None:
    def held() -> bool:
        result = platform.json("GET", f"/results/{run_id}")
        return any(a["status"] == "in_force" for a in result["actions"].values())

    wait_until(held, timeout=60)


def test_a_probe_that_holds_throughout_gives_a_passed_verdict(platform: Platform, service: Service) -> None:
    platform.loosen_policy()
    probes = [{"name": "shop", "source": "http", "url": service.url, "interval": 1, "mode": "edge"},
              {"name": "serving", "source": "http", "url": service.url, "interval": 1,
               "body_jsonpath": "$.status", "body_equals": "up"}]  # fmt: skip
    experiment, ids = _experiment(platform, "probe-pass", probes, duration=3)
    assert experiment["probes"][0]["tolerance"] == 1  # stored with its defaults
    assert experiment["probes"][1]["body_equals"] == "up"

    result = platform.wait_for_result(_start(platform, experiment), timeout=60)

    assert result["status"] == "completed"
    assert result["verdict"] == "passed" and result["success"] is True
    phases = {n: sorted({e["phase"] for e in r["evaluations"]}) for n, r in result["probe_records"].items()}
    assert phases == {"shop": ["after", "before"], "serving": ["during"]}
    assert len(result["probe_records"]["serving"]["evaluations"]) >= 2  # asked on its interval
    assert platform.states(ids) == {i: "running" for i in ids}


def test_an_http_probe_that_starts_failing_halts_the_run(platform: Platform, service: Service) -> None:
    platform.loosen_policy()
    probe = {"name": "shop", "source": "http", "url": service.url, "interval": 1, "tolerance": 2}
    experiment, ids = _experiment(platform, "probe-halt", [probe], duration=600)
    run_id = _start(platform, experiment)
    _in_force(platform, run_id)

    service.status = 500
    failing_since = datetime.now(UTC)
    result = platform.wait_for_result(run_id, timeout=60)

    assert result["status"] == "stopped" and result["stop_kind"] == "probe"
    assert result["error"] == "probe shop failed: status 500"
    assert result["verdict"] == "failed" and result["success"] is False
    assert platform.states(ids) == {i: "running" for i in ids}  # rolled back
    failed_at = datetime.fromisoformat(result["probe_records"]["shop"]["failed_at"])
    # interval x tolerance, plus the state machine's own turns: well before the 600 s end.
    assert (failed_at - failing_since).total_seconds() < 15


def test_a_steady_state_that_does_not_hold_refuses_the_run(platform: Platform, service: Service) -> None:
    platform.loosen_policy()
    service.status = 503
    probe = {"name": "shop", "source": "http", "url": service.url, "mode": "before", "interval": 1}
    experiment, ids = _experiment(platform, "probe-before", [probe])

    result = platform.wait_for_result(_start(platform, experiment), timeout=60)

    assert result["status"] == "failed" and result["failure_kind"] == "preflight"
    assert "steady state does not hold" in result["error"] and "status 503" in result["error"]
    assert result["resources"] == [] or all(r["after"] is None for r in result["resources"])
    assert platform.states(ids) == {i: "running" for i in ids}
    assert result["verdict"] == "inconclusive"


def test_an_after_probe_that_does_not_recover_turns_a_completed_run_failed(
    platform: Platform, service: Service
) -> None:
    platform.loosen_policy()
    service.status = 500
    probe = {
        "name": "shop",
        "source": "http",
        "url": service.url,
        "mode": "after",
        "interval": 1,
        "settle": 3,
    }
    experiment, _ = _experiment(platform, "probe-after", [probe], duration=1)

    result = platform.wait_for_result(_start(platform, experiment), timeout=60)

    assert result["status"] == "completed"
    assert result["verdict"] == "failed" and result["success"] is False
    record = result["probe_records"]["shop"]
    assert record["failed_in"] == "after" and "not recovered within 3s" in record["evaluations"][-1]["detail"]
    assert any(e["step"] == "settle" and "did not recover" in e["message"] for e in result["timeline"])


def test_a_cloudwatch_metric_probe_halts_the_run_without_any_alarm(platform: Platform) -> None:
    platform.loosen_policy()
    cloudwatch = platform.session.client("cloudwatch")

    def put(value: float) -> None:
        cloudwatch.put_metric_data(
            Namespace="Shop",
            MetricData=[{"MetricName": "errors", "Timestamp": datetime.now(UTC), "Value": value}],
        )

    put(0)
    probe = {"name": "errors", "source": "cloudwatch-metric", "namespace": "Shop", "metric_name": "errors",
             "statistic": "Maximum", "comparison": "<", "threshold": 5, "interval": 1}  # fmt: skip
    experiment, ids = _experiment(platform, "probe-metric", [probe], duration=600)
    run_id = _start(platform, experiment)
    _in_force(platform, run_id)

    put(50)
    result = platform.wait_for_result(run_id, timeout=60)

    assert result["status"] == "stopped" and result["stop_kind"] == "probe"
    assert "50 not < 5" in result["error"]
    assert platform.states(ids) == {i: "running" for i in ids}


def test_a_prometheus_probe_halts_the_run_when_the_scraped_metric_crosses_its_threshold(
    platform: Platform, service: Service, tmp_path: Path
) -> None:
    platform.loosen_policy()
    exporter = service.url.removeprefix("http://").removesuffix("/health")
    with real_prometheus(tmp_path, [exporter]) as prometheus:
        probe = {"name": "errors", "source": "prometheus", "url": prometheus.url, "query": "max(shop_errors)",
                 "comparison": "<", "threshold": 5, "interval": 1}  # fmt: skip
        experiment, ids = _experiment(platform, "probe-prom", [probe], duration=600)
        run_id = _start(platform, experiment)
        _in_force(platform, run_id)

        service.errors = 50  # the next scrape sees it, the next evaluation after that fails
        result = platform.wait_for_result(run_id, timeout=60)

    assert result["status"] == "stopped" and result["stop_kind"] == "probe"
    assert result["error"] == "probe errors failed: 50 not < 5"
    assert platform.states(ids) == {i: "running" for i in ids}
    answers = result["probe_records"]["errors"]["evaluations"]
    assert answers[0]["ok"] and answers[0]["value"] == 0 and answers[-1]["value"] == 50


@pytest.mark.parametrize(
    ("probe", "field"),
    [
        ({"name": "x", "source": "http", "url": "http://169.254.169.254/latest"}, "url"),
        ({"name": "x", "source": "prometheus", "url": "http://127.0.0.1:9090", "query": "up"}, "comparison"),
        ({"name": "x", "source": "nagios"}, "probes.0"),
        (
            {"name": "x", "source": "http", "url": "http://127.0.0.1/", "timeout": 20, "interval": 5},
            "probes.0",
        ),
    ],
)
def test_a_probe_that_cannot_be_asked_is_a_422_and_nothing_is_created(
    platform: Platform, probe: dict[str, Any], field: str
) -> None:
    web = target(platform, "ec2-instances", selector="probe=never")
    before = platform.json("GET", "/experiments")["items"]
    body = {"name": "bad", "type": "ec2-stop", "target": web["id"], "duration": 60, "probes": [probe]}
    refused = platform.json("POST", "/experiments", body, expect=422)

    assert any(field in e["field"] for e in refused["errors"]), refused
    assert platform.json("GET", "/experiments")["items"] == before
    twice = {**body, "probes": [{"name": "x", "source": "http", "url": "http://127.0.0.1/"}] * 2}
    assert "unique" in str(platform.json("POST", "/experiments", twice, expect=422))


def test_the_resilience_score_counts_the_verdicts_of_the_last_runs(
    platform: Platform, service: Service
) -> None:
    platform.loosen_policy()
    probe = {"name": "shop", "source": "http", "url": service.url, "interval": 1, "stop_on_failure": False}
    experiment, _ = _experiment(platform, "probe-score", [probe], duration=2)
    path = f"/experiments/{experiment['id']}/resilience"
    assert platform.json("GET", path) == {
        "score": None, "last": 10, "runs": 0, "passed": 0, "failed": 0, "inconclusive": 0, "window": [],
    }  # fmt: skip

    first = platform.wait_for_result(_start(platform, experiment), timeout=60)
    service.status = 500
    second = platform.wait_for_result(_start(platform, experiment), timeout=60)
    assert (first["verdict"], second["verdict"]) == ("passed", "failed")
    assert second["status"] == "completed"  # the probe did not stop it; it failed the verdict

    scored = platform.json("GET", path)
    assert (scored["score"], scored["passed"], scored["failed"], scored["runs"]) == (50.0, 1, 1, 2)
    assert [r["result_id"] for r in scored["window"]] == [second["id"], first["id"]]
    assert platform.json("GET", path, last=1)["score"] == 0.0  # the newest run alone
    by_target = platform.json("GET", f"/targets/{experiment['target']}/resilience")
    assert by_target["score"] == 50.0 and by_target["runs"] == 2
    assert "last" in str(platform.json("GET", path, expect=422, last=0))
