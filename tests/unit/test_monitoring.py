"""The platform's dashboards and alarms name exactly the metrics its code emits (chaosplane/telemetry.py)."""

from __future__ import annotations

import json
import re
from typing import Any

from chaosplane.local.template import load_template
from chaosplane.telemetry import METRICS, NAMESPACE, Metric
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
GLOBALS = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
GRAFANA = json.loads((ROOT / "infra/grafana/chaosplane-platform.json").read_text())
PACKAGE = ROOT / "layers/chaosplane/chaosplane"
CATALOGUE = {m.value for m in Metric}
SEARCHED = re.compile(r"\{" + NAMESPACE + r"[^}]*\}[^']*MetricName=\"(\w+)\"")


def dashboard() -> dict[str, Any]:
    body = RESOURCES["PlatformDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{[^}]+\}", "X", body))  # the stack's names do not matter here


def dashboard_metrics() -> set[str]:
    named: set[str] = set()
    for widget in dashboard()["widgets"]:
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                named.update(SEARCHED.findall(row[0]["expression"]))
            elif row[0] == NAMESPACE:
                named.add(row[1])
    return named


def alarm_metrics() -> set[str]:
    alarms = [r["Properties"] for r in RESOURCES.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    return {a["MetricName"] for a in alarms if a.get("Namespace") == NAMESPACE}


def grafana_metrics() -> set[str]:
    named: set[str] = set()
    for panel in GRAFANA["panels"]:
        for target in panel["targets"]:
            if target.get("namespace") == NAMESPACE:
                named.add(target["metricName"])
            named.update(SEARCHED.findall(target.get("expression", "")))
    return named


def test_the_dashboard_and_the_alarms_name_every_metric_the_code_emits_and_no_other() -> None:
    referenced = dashboard_metrics() | alarm_metrics()
    assert referenced - CATALOGUE == set(), "referenced, never emitted"
    assert CATALOGUE - referenced == set(), "emitted, never shown nor alarmed on"


def test_grafana_has_the_same_panels_as_the_cloudwatch_dashboard() -> None:
    assert grafana_metrics() == dashboard_metrics()
    titles = [w["properties"]["title"] for w in dashboard()["widgets"]]
    assert [p["title"] for p in GRAFANA["panels"]] == titles


def test_the_dashboard_reads_the_namespace_and_service_the_functions_emit_with() -> None:
    assert GLOBALS["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    service = GLOBALS["POWERTOOLS_SERVICE_NAME"]
    for widget in dashboard()["widgets"]:
        for row in widget["properties"]["metrics"]:
            if not isinstance(row[0], dict) and row[0] == NAMESPACE:
                assert row[2:4] == ["service", service], row


def test_every_metric_in_the_catalogue_is_emitted_somewhere_in_the_code() -> None:
    code = "\n".join(
        path.read_text()
        for path in PACKAGE.rglob("*.py")
        if path.name not in ("telemetry.py", "prometheus.py")
    )
    emitted = {m.value for m in Metric if f"Metric.{m.name}" in code}
    assert emitted == CATALOGUE
    assert set(METRICS) == set(Metric)


def test_the_metrics_are_documented() -> None:
    documented = (ROOT / "docs/metrics.md").read_text()
    for metric, spec in METRICS.items():
        assert f"`{metric.value}`" in documented, metric
        assert spec.description in documented, metric


def test_the_alarms_say_what_to_do_and_whom_they_tell() -> None:
    alarms = {k: r["Properties"] for k, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    for name, alarm in alarms.items():
        description = alarm.get("AlarmDescription", "")
        text = description.get("Fn::Sub", "") if isinstance(description, dict) else description
        assert len(text) > 40, f"{name}: say what to do"
        assert alarm.get("AlarmActions") == [{"Ref": "AlertsTopic"}], name
