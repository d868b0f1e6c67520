"""The platform's metrics on `chaosplane local`: a Prometheus registry, served at /metrics.

The embedded AWS runs every function in one process, so one registry holds what all of them
emitted: the same catalogue (chaosplane/telemetry.py) as CloudWatch gets on AWS, in Prometheus's
names: `RunsStarted` is `chaosplane_runs_started_total`, `TimeToHalt` a histogram
`chaosplane_time_to_halt_milliseconds`, `FaultsActive` a gauge `chaosplane_faults_active`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from chaosplane.telemetry import METRICS, Kind, Metric

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication

__all__ = ["PrometheusTelemetry", "current", "exposition", "prometheus_name", "with_metrics"]

# Milliseconds: a halt is tens to hundreds of them, an Inject of a thousand resources minutes.
BUCKETS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000)
_REGISTRY = CollectorRegistry()  # the process's: every function of the embedded AWS shares it
_COLLECTORS: dict[Metric, Any] = {}
_LOCK = threading.Lock()


def prometheus_name(metric: Metric) -> str:
    """The name a Prometheus query uses: snake case, counters in `_total`, timings in their unit."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", metric.value).lower()
    suffix = {Kind.COUNTER: "_total", Kind.GAUGE: "", Kind.TIMING: "_milliseconds"}[METRICS[metric].kind]
    return f"chaosplane_{snake}{suffix}"


def _collector(metric: Metric) -> Any:
    with _LOCK:
        if metric not in _COLLECTORS:
            spec = METRICS[metric]
            labels = [d.lower() for d in spec.dimensions]
            name, help_text = prometheus_name(metric), spec.description
            if spec.kind is Kind.COUNTER:
                made: Any = Counter(name, help_text, labels, registry=_REGISTRY)
            elif spec.kind is Kind.GAUGE:
                made = Gauge(name, help_text, labels, registry=_REGISTRY)
            else:
                made = Histogram(name, help_text, labels, registry=_REGISTRY, buckets=BUCKETS)
            _COLLECTORS[metric] = made
        return _COLLECTORS[metric]


class PrometheusTelemetry:
    def emit(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
        collector = _collector(metric)
        if dimensions:
            collector = collector.labels(**{k.lower(): v for k, v in dimensions.items()})
        kind = METRICS[metric].kind
        if kind is Kind.COUNTER:
            collector.inc(value)
        elif kind is Kind.GAUGE:
            collector.set(value)
        else:
            collector.observe(value)


def exposition() -> bytes:
    """Every metric, in Prometheus's text format: those without labels from the start (at 0),
    those with labels from their first value."""
    for metric in METRICS:
        _collector(metric)
    return generate_latest(_REGISTRY)


def current(metric: Metric, **labels: str) -> float:
    """The registry's value of a counter or gauge (0 before its first value), as a scrape reads it."""
    sample = _REGISTRY.get_sample_value(prometheus_name(metric), {k.lower(): v for k, v in labels.items()})
    return sample or 0.0


METRICS_PATH = "/metrics"


def with_metrics(app: WSGIApplication) -> WSGIApplication:
    """`app`, with GET /metrics answered from the registry, as a scraped service answers it.

    Locally only, and unauthenticated, as a Prometheus target usually is: the gateway listens on
    loopback. On AWS the same metrics are in CloudWatch; the API has no such route.
    """

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == METRICS_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            body = exposition()
            headers = [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))]
            start_response("200 OK", headers)
            return [body]
        return app(environ, start_response)

    return serve
