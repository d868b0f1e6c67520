"""Powertools' Tracer (X-Ray) behind the lifecycle's tracing port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Tracer


class PowertoolsTracing:
    def __init__(self, tracer: Tracer | None = None) -> None:
        # Powertools' Tracer shares one configuration per process, the handler's: this one only
        # annotates and opens spans (which libraries are traced is the handler's choice).
        self._tracer = tracer or Tracer(auto_patch=False)

    def annotate(self, **values: str) -> None:
        for key, value in values.items():
            self._tracer.put_annotation(key=key, value=value)

    @contextmanager
    def span(self, name: str, **annotations: str) -> Iterator[None]:
        if self._tracer.disabled:  # tracing off (locally, in tests): no subsegment to open
            self.annotate(**annotations)
            yield
            return
        with self._tracer.provider.in_subsegment(name=name):
            self.annotate(**annotations)
            yield
