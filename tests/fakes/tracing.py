from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class RecordingTracing:
    """Every annotation put, in order, and every span opened (with its annotations)."""

    annotations: list[dict[str, str]] = field(default_factory=list)
    spans: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def annotate(self, **values: str) -> None:
        self.annotations.append(values)

    @contextmanager
    def span(self, name: str, **annotations: str) -> Iterator[None]:
        self.spans.append((name, annotations))
        yield
