"""Tracing as the run lifecycle sees it: annotations on the current trace, and a span per fault call.

On AWS the adapter is Powertools' Tracer (X-Ray, `wiring.tracing`); the annotations `run_id`,
`team`, `fault` and `step` make every trace of a run findable by any of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from chaosplane.models import ExperimentResult


class Tracing(Protocol):
    def annotate(self, **values: str) -> None:
        """Annotate the current segment (or span): indexed, so traces can be searched by them."""
        ...

    def span(self, name: str, **annotations: str) -> AbstractContextManager[None]:
        """A subsegment around one call (a fault's change of one resource), annotated."""
        ...


class NoTracing:
    def annotate(self, **values: str) -> None:
        return None

    @contextmanager
    def span(self, name: str, **annotations: str) -> Iterator[None]:
        yield


def run_annotations(result: ExperimentResult, step: str) -> dict[str, str]:
    return {"run_id": result.id, "team": result.team, "fault": result.fault.value, "step": step}
