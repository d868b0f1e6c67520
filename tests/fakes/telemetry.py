from __future__ import annotations

from dataclasses import dataclass, field

from chaosplane.telemetry import METRICS, Metric


@dataclass
class RecordingTelemetry:
    """Every value emitted, in order; a value with dimensions its metric does not declare fails."""

    values: list[tuple[Metric, float, dict[str, str]]] = field(default_factory=list)

    def emit(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
        assert set(dimensions) == set(METRICS[metric].dimensions), (metric, dimensions)
        self.values.append((metric, value, dimensions))

    def of(self, metric: Metric) -> list[float]:
        return [value for m, value, _ in self.values if m is metric]

    def dimensions(self, metric: Metric) -> list[dict[str, str]]:
        return [dims for m, _, dims in self.values if m is metric]
