"""A run as a JUnit report: valid for the strictest reader, and saying what happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chaosplane.commands.junit import junit_xml
from chaosplane.models import ExperimentResult, ResourceState, TimelineEvent
from tests.junit_schema import SCHEMA, assert_valid_junit

T0 = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def result(**overrides: object) -> ExperimentResult:
    base: dict = {
        "id": "r-1",
        "team": "demo",
        "experiment_id": "e-1",
        "status": "completed",
        "start_time": T0,
        "end_time": T0 + timedelta(seconds=21.5),
        "fault": "ec2-stop",
        "target_id": "t-1",
        "selection": "ALL",
        "duration": 20,
        "created_at": T0,
        "stop_conditions": ["checkout-5xx", "arn:aws:cloudwatch:us-east-1:123456789012:alarm:latency"],
        "resources": [
            ResourceState(
                id="i-0123456789abcdef0",
                kind="ec2-instance",
                before="running",
                after="stopped",
                restored="running",
            ),
            ResourceState(
                id="i-0123456789abcdef1",
                kind="ec2-instance",
                before="running",
                after="stopped",
                restored="running",
            ),
        ],
        "timeline": [TimelineEvent(at=T0, step="prepare", message="2 selected <&> \x01")],
    }
    return ExperimentResult.model_validate({**base, **overrides})


def cases(root) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    return {c.get("name"): (c[0].tag if len(c) else None) for c in root.findall("testcase")}


def test_a_completed_run_passes_every_case() -> None:
    root = assert_valid_junit(junit_xml(result(), hostname="ci-runner"))
    assert root.tag == "testsuite" and root.get("name") == "chaosplane.ec2-stop.e-1"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "5",
        "0",
        "0",
        "0",
    )
    assert root.get("timestamp") == "2026-11-25T10:00:00" and root.get("time") == "21.500"
    assert set(cases(root).values()) == {None}
    assert {"checkout-5xx stayed out of ALARM", "latency stayed out of ALARM"} <= set(cases(root))
    properties = {p.get("name"): p.get("value") for p in root.find("properties")}
    assert properties["result_id"] == "r-1" and properties["status"] == "completed"
    assert "2 selected <&> ?" in root.find("system-out").text  # escaped, and no control characters


def test_a_run_stopped_by_an_alarm_fails_the_outcome_and_that_alarm() -> None:
    stopped = result(
        status="stopped",
        stop_kind="alarm",
        error="stop condition checkout-5xx went into ALARM: Threshold Crossed",
    )
    root = assert_valid_junit(junit_xml(stopped))
    found = cases(root)
    assert found["run completed"] == "failure" and found["checkout-5xx stayed out of ALARM"] == "failure"
    assert found["latency stayed out of ALARM"] is None
    outcome = next(c for c in root.findall("testcase") if c.get("name") == "run completed")
    assert outcome[0].get("type") == "stopped:alarm" and "Threshold Crossed" in outcome[0].get("message")


@pytest.mark.parametrize(
    ("kind", "expected_type"),
    [("preflight", "refused:preflight"), ("policy", "refused:policy"), ("injection", "failed:injection")],
)
def test_a_failed_run_is_an_error_with_its_kind(kind: str, expected_type: str) -> None:
    failed = result(
        status="failed", failure_kind=kind, error="PreflightFailed: latency is in ALARM", resources=[]
    )
    root = assert_valid_junit(junit_xml(failed))
    outcome = root.find("testcase")
    assert outcome[0].tag == "error" and outcome[0].get("type") == expected_type
    assert root.get("errors") == "1"


def test_resources_not_restored_fail_and_resources_not_hit_are_skipped() -> None:
    failed = result(
        status="failed",
        failure_kind="rollback",
        error="ROLLBACK INCOMPLETE",
        resources=[
            ResourceState(id="i-0123456789abcdef0", kind="ec2-instance", before="running", after="stopped"),
            ResourceState(
                id="i-0123456789abcdef1",
                kind="ec2-instance",
                before="running",
                detail={"skipped": "now stopped"},
            ),
        ],
    )
    root = assert_valid_junit(junit_xml(failed))
    found = cases(root)
    assert found["i-0123456789abcdef0 (ec2-instance) restored"] == "failure"
    assert found["i-0123456789abcdef1 (ec2-instance) restored"] == "skipped"
    assert (root.get("failures"), root.get("errors"), root.get("skipped")) == ("1", "1", "1")


def test_the_schema_is_strict_enough_to_catch_a_bad_report() -> None:
    from lxml import etree

    bad = etree.fromstring(
        b'<testsuite name="x" tests="1" failures="0" errors="0" time="1"><testcase name="a"/></testsuite>'
    )
    assert not SCHEMA.validate(bad)  # no timestamp, hostname, properties, classname, time...


def test_each_probe_is_a_case_failed_with_its_phase_or_skipped_when_not_asked_in_full() -> None:
    def asked(phase: str, *oks: bool) -> list[dict[str, object]]:
        return [
            {
                "at": T0 + timedelta(seconds=i),
                "phase": phase,
                "ok": ok,
                "detail": "status 500" if not ok else "",
            }
            for i, ok in enumerate(oks)
        ]

    probes = [
        {"name": "shop", "source": "http", "mode": "during"},
        {"name": "errors", "source": "prometheus", "mode": "after"},
        {"name": "carts", "source": "kubernetes", "mode": "edge"},
    ]
    records = {
        "shop": {"name": "shop", "evaluations": asked("during", True, False, False),
                 "failed_in": "during", "failed_at": T0 + timedelta(seconds=2)},
        "carts": {"name": "carts", "evaluations": asked("before", True)},  # never asked after
    }  # fmt: skip
    root = assert_valid_junit(junit_xml(result(probes=probes, probe_records=records, verdict="failed")))

    shop = root.find("testcase[@name='shop (http, during) held']")
    assert shop is not None and shop.get("time") == "2.000"
    failure = shop.find("failure")
    assert failure is not None and failure.get("type") == "probe:during"
    assert failure.get("message") == "failed during the faults: status 500"
    assert "FAILED status 500" in (failure.text or "")
    assert cases(root)["errors (prometheus, after) held"] == "skipped"
    assert cases(root)["carts (kubernetes, edge) held"] == "skipped"
    assert root.get("failures") == "1" and root.get("skipped") == "2"
    properties = {p.get("name"): p.get("value") for p in root.find("properties")}
    assert properties["verdict"] == "failed"
