"""The platform's own metrics: one catalogue, one port, emitted by the code paths that know.

Every metric the platform emits is declared once here, with its unit, its dimensions and what it
means. On AWS they go to CloudWatch as Embedded Metric Format log lines (`wiring.telemetry`); on
`chaosplane local` to a Prometheus registry served at `/metrics` (`local.prometheus`). The dashboard,
the alarms in template.yaml and the Grafana dashboard in infra/grafana/ name only these, and a test
holds them to this catalogue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

logger = logging.getLogger(__name__)

NAMESPACE = "Chaosplane"


class Metric(StrEnum):
    RUNS_STARTED = "RunsStarted"
    RUNS_COMPLETED = "RunsCompleted"
    RUNS_STOPPED = "RunsStopped"
    RUNS_FAILED = "RunsFailed"
    RUNS_SKIPPED = "RunsSkipped"
    TIME_TO_HALT = "TimeToHalt"
    INJECT_DURATION = "InjectDuration"
    ROLLBACK_DURATION = "RollbackDuration"
    ROLLBACK_INCOMPLETE = "RollbackIncomplete"
    FAULTS_ACTIVE = "FaultsActive"
    FAULTS_OVERDUE = "FaultsOverdue"
    GUARD_EVENTS = "GuardEvents"
    GUARD_HALTS = "GuardHalts"
    SWEEPER_LAG = "SweeperLag"
    WEBHOOK_FAILURES = "WebhookFailures"
    NOTIFICATION_FAILURES = "NotificationFailures"


class Kind(StrEnum):
    COUNTER = "counter"  # summed per period
    GAUGE = "gauge"  # a level, sampled (by the sweeper, every minute)
    TIMING = "timing"  # milliseconds, read as percentiles


@dataclass(frozen=True)
class MetricSpec:
    kind: Kind
    dimensions: tuple[str, ...]
    description: str

    @property
    def unit(self) -> str:
        return "Milliseconds" if self.kind is Kind.TIMING else "Count"


RUN_DIMENSIONS = ("Team", "Fault")

METRICS: dict[Metric, MetricSpec] = {
    Metric.RUNS_STARTED: MetricSpec(Kind.COUNTER, RUN_DIMENSIONS, "runs created (API, schedule, console)"),
    Metric.RUNS_COMPLETED: MetricSpec(Kind.COUNTER, RUN_DIMENSIONS, "runs that held their fault to the end"),
    Metric.RUNS_STOPPED: MetricSpec(Kind.COUNTER, RUN_DIMENSIONS, "runs halted: a user, an alarm, the lever"),
    Metric.RUNS_FAILED: MetricSpec(Kind.COUNTER, RUN_DIMENSIONS, "runs that failed (refused, injection)"),
    Metric.RUNS_SKIPPED: MetricSpec(Kind.COUNTER, RUN_DIMENSIONS, "scheduled runs refused at start"),
    Metric.TIME_TO_HALT: MetricSpec(
        Kind.TIMING, (), "from the stop (alarm, user, lever) being recorded to every resource restored"
    ),
    Metric.INJECT_DURATION: MetricSpec(Kind.TIMING, ("Fault",), "Inject, every selected resource changed"),
    Metric.ROLLBACK_DURATION: MetricSpec(Kind.TIMING, ("Fault",), "Rollback, every change undone"),
    Metric.ROLLBACK_INCOMPLETE: MetricSpec(
        Kind.COUNTER, RUN_DIMENSIONS, "runs that ended with changes not rolled back (the sweeper retries)"
    ),
    Metric.FAULTS_ACTIVE: MetricSpec(Kind.GAUGE, (), "resources faulted right now, over every run"),
    Metric.FAULTS_OVERDUE: MetricSpec(
        Kind.GAUGE, (), "resources still faulted past their run's end plus a grace period"
    ),
    Metric.GUARD_EVENTS: MetricSpec(Kind.COUNTER, (), "alarm events the guard handled"),
    Metric.GUARD_HALTS: MetricSpec(Kind.COUNTER, (), "runs the guard halted"),
    Metric.SWEEPER_LAG: MetricSpec(
        Kind.TIMING, (), "from the sweep's scheduled time to its start; one sample a sweep"
    ),
    Metric.WEBHOOK_FAILURES: MetricSpec(
        Kind.COUNTER, ("Phase",), "http-endpoint inject or rollback webhooks that failed"
    ),
    Metric.NOTIFICATION_FAILURES: MetricSpec(
        Kind.COUNTER, ("Channel",), "Slack, PagerDuty or email notifications not delivered"
    ),
}


class Telemetry(Protocol):
    def emit(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
        """Record one value of `metric`, with the dimensions its spec names (and no others)."""
        ...


class NoTelemetry:
    def emit(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
        return None


def emit_safely(telemetry: Telemetry, metric: Metric, value: float = 1, **dimensions: str) -> None:
    """Emit, and never fail what emits: a metric lost is logged, a run is never affected."""
    try:
        expected = METRICS[metric].dimensions
        if set(dimensions) != set(expected):
            raise ValueError(f"{metric} takes dimensions {expected}, not {tuple(dimensions)}")
        telemetry.emit(metric, value, **dimensions)
    except Exception:
        logger.exception("metric %s could not be emitted", metric)
