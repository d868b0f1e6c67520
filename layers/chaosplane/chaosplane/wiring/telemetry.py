"""Where the platform's metrics go: CloudWatch (Embedded Metric Format) on AWS, a Prometheus
registry on `chaosplane local`, nowhere when switched off (CHAOSPLANE_METRICS=none)."""

from __future__ import annotations

import os
import threading

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from chaosplane.settings import Settings
from chaosplane.telemetry import METRICS, NAMESPACE, Metric, NoTelemetry, Telemetry


class EmfTelemetry:
    """Each value is one EMF log line, printed at once: CloudWatch Logs turns it into a metric.

    Two dimension sets a line: the service alone (what the alarms and the dashboard's totals read)
    and the metric's own dimensions (by team and fault, ...). A line of its own for each value, so
    that a value emitted on any thread, in any function, is never lost in a shared batch.
    """

    def __init__(self, namespace: str | None = None) -> None:
        # template.yaml's Globals set the namespace (POWERTOOLS_METRICS_NAMESPACE), as Powertools reads it.
        self._namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
        self._lock = threading.Lock()  # one line at a time on stdout

    def emit(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
        provider = AmazonCloudWatchEMFProvider(namespace=self._namespace)
        provider.add_metric(name=metric.value, unit=METRICS[metric].unit, value=value)
        if dimensions:
            provider.add_dimensions(**dimensions)
        with self._lock:
            provider.flush_metrics()


def build_telemetry(settings: Settings) -> Telemetry:
    if settings.metrics == "prometheus":
        from chaosplane.local.prometheus import PrometheusTelemetry

        return PrometheusTelemetry()
    if settings.metrics == "none":
        return NoTelemetry()
    return EmfTelemetry()
