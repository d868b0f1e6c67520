"""Probes: their models, tolerance, timeouts, modes and the verdict on fakes; the HTTP and
Prometheus readers against a real HTTP server on loopback that the test controls."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials
from pydantic import TypeAdapter, ValidationError

from chaosplane.probes import (
    Comparison,
    HttpProbe,
    Observation,
    Phase,
    Probe,
    ProbeRecord,
    PrometheusProbe,
    Verdict,
    due,
    evaluate,
    observe_http,
    observe_prometheus,
    parse_probes,
    verdict,
)

PROBE: TypeAdapter[Any] = TypeAdapter(Probe)
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


class Scripted:
    """A reader that answers from a script, one observation (or exception) per call."""

    def __init__(self, *answers: Observation | Exception, delay: float = 0.0) -> None:
        self.answers, self.delay = list(answers), delay

    def observe(self, probe: Any) -> Observation:
        time.sleep(self.delay)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def http_probe(**fields: Any) -> HttpProbe:
    return HttpProbe.model_validate({"name": "shop", "source": "http", "url": "http://127.0.0.1/", **fields})


OK, BAD = Observation(True, 1.0), Observation(False, 9.0, "status 500")


def test_a_probe_fails_only_after_tolerance_failures_in_a_row() -> None:
    probe, record = http_probe(tolerance=3), ProbeRecord(name="shop")
    readers = Scripted(BAD, BAD, OK, BAD, BAD, BAD)
    outcomes = [evaluate(probe, record, readers, Phase.DURING, lambda: T0) for _ in range(6)]
    assert outcomes == [False, False, False, False, False, True]  # the OK broke the first streak
    assert record.failed_in is Phase.DURING and record.failed_at == T0
    assert [e.ok for e in record.evaluations] == [False, False, True, False, False, False]


def test_an_answer_later_than_the_timeout_and_a_reader_that_raises_are_failures() -> None:
    probe = http_probe(timeout=0.1, interval=1)
    record = ProbeRecord(name="shop")
    evaluate(probe, record, Scripted(OK, delay=0.2), Phase.DURING, lambda: T0)
    evaluate(probe, record, Scripted(ConnectionError("refused")), Phase.DURING, lambda: T0)
    assert [(e.ok, e.detail) for e in record.evaluations] == [
        (False, record.evaluations[0].detail),
        (False, "ConnectionError: refused"),
    ]
    assert record.evaluations[0].detail.startswith("answered after 0.")


def test_the_verdict_needs_every_probe_asked_in_each_of_its_phases() -> None:
    edge = http_probe(name="edge", mode="edge")
    during = http_probe(name="during")
    assert verdict([], {}) is Verdict.INCONCLUSIVE  # no probe: a completed run proves nothing
    records = {"edge": ProbeRecord(name="edge"), "during": ProbeRecord(name="during")}
    evaluate(edge, records["edge"], Scripted(OK), Phase.BEFORE, lambda: T0)
    evaluate(during, records["during"], Scripted(OK), Phase.DURING, lambda: T0)
    assert verdict([edge, during], records) is Verdict.INCONCLUSIVE  # edge not asked after
    evaluate(edge, records["edge"], Scripted(OK), Phase.AFTER, lambda: T0)
    assert verdict([edge, during], records) is Verdict.PASSED
    evaluate(during, records["during"], Scripted(BAD), Phase.DURING, lambda: T0)
    assert verdict([edge, during], records) is Verdict.FAILED


def test_probes_are_due_on_their_interval_in_their_own_phases() -> None:
    fast, slow, after = (
        http_probe(name="fast", interval=5),
        http_probe(name="slow", interval=30),
        http_probe(name="after", mode="after"),
    )
    records = {p.name: ProbeRecord(name=p.name) for p in (fast, slow, after)}
    probes = [fast, slow, after]
    assert [p.name for p in due(probes, records, Phase.DURING, T0)] == ["fast", "slow"]
    for probe in (fast, slow):
        evaluate(probe, records[probe.name], Scripted(OK), Phase.DURING, lambda: T0)
    assert due(probes, records, Phase.DURING, T0 + timedelta(seconds=4)) == []
    assert [p.name for p in due(probes, records, Phase.DURING, T0 + timedelta(seconds=5))] == ["fast"]
    assert [p.name for p in due(probes, records, Phase.AFTER, T0)] == ["after"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"source": "http", "url": "http://169.254.169.254/latest/meta-data"}, "metadata service"),
        ({"source": "http", "url": "http://127.0.0.1/", "timeout": 20, "interval": 10}, "timeout"),
        ({"source": "cloudwatch-metric", "comparison": "<", "threshold": 1}, "namespace and metric_name"),
        (
            {
                "source": "cloudwatch-metric",
                "comparison": "<",
                "threshold": 1,
                "expression": "m1",
                "namespace": "Shop",
                "metric_name": "5xx",
            },
            "not both",
        ),
        (
            {"source": "kubernetes", "cluster": "prod", "namespace": "shop", "check": "ready-replicas"},
            "min_ready",
        ),
        (
            {
                "source": "prometheus",
                "url": "http://127.0.0.1:9090",
                "query": "up",
                "comparison": "~",
                "threshold": 1,
            },
            "comparison",
        ),
        ({"source": "http", "url": "http://127.0.0.1/", "body_regex": "("}, "does not compile"),
        ({"source": "http", "url": "http://127.0.0.1/", "body_jsonpath": "$.["}, "does not parse"),
        ({"source": "http", "url": "http://127.0.0.1/", "body_equals": "up"}, "needs body_jsonpath"),
        (
            {"source": "http", "url": "http://127.0.0.1/", "body_jsonpath": "$.a", "body_equals": "x" * 1100},
            "over 1024",
        ),
        ({"source": "smoke", "url": "http://127.0.0.1/"}, "source"),
    ],
)
def test_a_probe_that_cannot_be_asked_is_refused_naming_why(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        PROBE.validate_python({"name": "p", **body})


def test_the_probes_documented_are_probes_the_api_takes() -> None:
    documented = (Path(__file__).parents[2] / "docs/probes.md").read_text()
    examples = re.findall(r"```json\n(.*?)```", documented, re.DOTALL)
    assert len(examples) >= 2
    for example in examples:
        assert parse_probes(json.loads("{" + example + "}")["probes"])  # each is an experiment's field


@pytest.mark.parametrize(
    ("comparison", "value", "holds"),
    [
        ("<", 0.5, True),
        ("<", 1.0, False),
        ("<=", 1.0, True),
        (">", 2, True),
        (">=", 0.9, False),
        ("==", 1, True),
        ("!=", 1, False),
    ],
)
def test_comparisons_hold_value_to_threshold(comparison: str, value: float, holds: bool) -> None:
    assert Comparison(comparison).holds(value, 1.0) is holds


# -- the readers, against a server the test controls ----------------------------------------------


class Server:
    """A loopback HTTP server whose answer the test sets: status, body, delay, headers seen."""

    def __init__(self) -> None:
        self.status, self.body, self.delay, self.location = 200, b"ok", 0.0, ""
        self.seen: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.seen.append((self.path, dict(self.headers)))
                time.sleep(outer.delay)
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.httpd.shutdown()


def test_the_http_reader_checks_status_latency_and_body(server: Server) -> None:
    session = requests.Session()
    probe = http_probe(url=server.url + "/health", max_latency_ms=500, body_regex=r"^ok$")
    assert observe_http(probe, session).ok
    server.body = b"degraded"
    assert observe_http(probe, session).detail == "the body does not match body_regex"
    server.body, server.status = b"ok", 503
    assert observe_http(probe, session).detail == "status 503"
    server.status, server.delay = 200, 0.6
    slow = observe_http(probe, session)
    assert not slow.ok and "over 500 ms" in slow.detail
    server.delay, server.status, server.location = 0, 302, "http://example.invalid/"
    assert observe_http(http_probe(url=server.url), session).detail == "status 302"  # not followed


def test_the_http_reader_holds_every_jsonpath_match_to_body_equals(server: Server) -> None:
    session = requests.Session()
    healthy = {"checks": [{"name": "db", "status": "up"}, {"name": "cache", "status": "up"}], "version": 7}
    server.body = json.dumps(healthy).encode()
    every_check_up = http_probe(url=server.url, body_jsonpath="$.checks[*].status", body_equals="up")
    assert observe_http(every_check_up, session).ok
    assert observe_http(http_probe(url=server.url, body_jsonpath="$.version", body_equals=7), session).ok
    # Without body_equals, the path has to match something (a filter finds the check by name).
    assert observe_http(http_probe(url=server.url, body_jsonpath='$.checks[?name = "db"]'), session).ok

    healthy["checks"][1]["status"] = "down"
    server.body = json.dumps(healthy).encode()
    assert observe_http(every_check_up, session).detail == '$.checks[*].status is "down", not "up"'
    missing = http_probe(url=server.url, body_jsonpath='$.checks[?name = "queue"]')
    assert observe_http(missing, session).detail == '$.checks[?name = "queue"] matches nothing'
    server.body = b"<html>ok</html>"
    assert observe_http(every_check_up, session).detail == "the body is not JSON"


def prometheus(server: Server, **fields: Any) -> PrometheusProbe:
    return PrometheusProbe.model_validate(
        {
            "name": "errors",
            "source": "prometheus",
            "url": server.url,
            "query": "sum(rate(http_5xx[1m]))",
            "comparison": "<",
            "threshold": 0.05,
            **fields,
        }
    )


def answer(server: Server, data: dict[str, Any], status: str = "success") -> None:
    server.body = json.dumps({"status": status, "data": data}).encode()


def test_the_prometheus_reader_holds_one_sample_to_the_threshold(server: Server) -> None:
    session, probe = requests.Session(), prometheus(server)
    answer(server, {"resultType": "vector", "result": [{"metric": {}, "value": [1796000000, "0.01"]}]})
    assert observe_prometheus(probe, session) == Observation(True, 0.01, "0.01 < 0.05")
    path, _ = server.seen[-1]
    assert path == "/api/v1/query?query=sum%28rate%28http_5xx%5B1m%5D%29%29"
    answer(server, {"resultType": "scalar", "result": [1796000000, "0.2"]})
    assert observe_prometheus(probe, session) == Observation(False, 0.2, "0.2 not < 0.05")
    answer(server, {"resultType": "vector", "result": []})
    assert observe_prometheus(probe, session).detail == "the query gave 0 samples, not one"
    server.status, server.body = 400, b'{"status": "error", "error": "parse error"}'
    assert observe_prometheus(probe, session).detail == "Prometheus answered 400"


def test_an_amazon_managed_prometheus_query_is_signed_for_aps(server: Server) -> None:
    answer(server, {"resultType": "scalar", "result": [1796000000, "0"]})
    probe = prometheus(server, sigv4_region="eu-west-1")
    with pytest.raises(RuntimeError, match="needs AWS credentials"):
        observe_prometheus(probe, requests.Session())
    assert observe_prometheus(probe, requests.Session(), Credentials("AKIDEXAMPLE", "secret")).ok
    _, headers = server.seen[-1]
    assert (
        "Credential=AKIDEXAMPLE/" in headers["Authorization"]
        and "/eu-west-1/aps/aws4_request" in headers["Authorization"]
    )
