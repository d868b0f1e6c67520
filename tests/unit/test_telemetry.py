"""The platform's metrics as CloudWatch and Prometheus get them (one catalogue, two formats), and
the trace a run event carries on."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from chaosplane.local.prometheus import PrometheusTelemetry, exposition, prometheus_name
from chaosplane.telemetry import METRICS, Metric, emit_safely
from chaosplane.wiring.runs import event_publisher
from chaosplane.wiring.telemetry import EmfTelemetry
from tests.unit.test_notify import run_event


def test_emf_lines_carry_the_service_total_and_the_metrics_own_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "chaosplane")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ChaosplaneStaging")  # the stack's, from Globals
    telemetry = EmfTelemetry()
    telemetry.emit(Metric.RUNS_STARTED, 1, Team="red", Fault="ec2-stop")
    telemetry.emit(Metric.TIME_TO_HALT, 84.5)
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ChaosplaneStaging"
    assert directive["Dimensions"] == [["service"], ["Team", "Fault"]]
    assert directive["Metrics"] == [{"Name": "RunsStarted", "Unit": "Count"}]
    assert (first["service"], first["Team"], first["Fault"], first["RunsStarted"]) == (
        "chaosplane",
        "red",
        "ec2-stop",
        [1.0],
    )
    (directive,) = second["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service"]]
    assert directive["Metrics"] == [{"Name": "TimeToHalt", "Unit": "Milliseconds"}]
    assert second["TimeToHalt"] == [84.5]


def test_prometheus_names_follow_its_conventions_and_every_metric_is_exposed() -> None:
    telemetry = PrometheusTelemetry()
    telemetry.emit(Metric.RUNS_COMPLETED, 1, Team="red", Fault="ec2-stop")
    telemetry.emit(Metric.FAULTS_ACTIVE, 7)
    telemetry.emit(Metric.TIME_TO_HALT, 120)
    text = exposition().decode()
    assert 'chaosplane_runs_completed_total{fault="ec2-stop",team="red"}' in text
    assert "chaosplane_faults_active 7.0" in text
    assert 'chaosplane_time_to_halt_milliseconds_bucket{le="250.0"}' in text
    for metric in METRICS:
        assert f"# TYPE {prometheus_name(metric)} " in text, metric


def test_a_value_with_the_wrong_dimensions_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Metric] = []

    class Sink:
        def emit(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
            seen.append(metric)

    emit_safely(Sink(), Metric.RUNS_STARTED, 1, Team="red")  # no Fault
    assert seen == [] and "RunsStarted takes dimensions" in caplog.text


def test_a_run_event_carries_the_invocations_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    class Events:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            sent.extend(Entries)
            return {"FailedEntryCount": 0}

    publish = event_publisher(SimpleNamespace(events=Events()), "default")  # type: ignore[arg-type]
    event = run_event("pending")
    publish(event)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
    publish(event)
    assert "TraceHeader" not in sent[0]
    assert sent[1]["TraceHeader"] == "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
