"""Blast radius: the one place that decides which of the matched resources a run hits.

`ALL`, `COUNT(n)` and `PERCENT(n)` have the meaning they have in AWS FIS, so FIS templates import
as they are. Sampling takes an injected random generator, so a preview and a test can be repeated.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

_PATTERN = re.compile(r"^(ALL|COUNT\((\d{1,6})\)|PERCENT\((\d{1,3})\))$")

T = TypeVar("T")


class SelectionMode(StrEnum):
    ALL = "ALL"
    COUNT = "COUNT"
    PERCENT = "PERCENT"


@dataclass(frozen=True)
class Selection:
    mode: SelectionMode
    value: int | None = None

    @classmethod
    def parse(cls, text: str) -> Selection:
        match = _PATTERN.match(text.strip().upper())
        if match is None:
            raise ValueError(f"selection must be ALL, COUNT(n) or PERCENT(n), not {text!r}")
        if match[2] is not None:
            count = int(match[2])
            if count < 1:
                raise ValueError("COUNT(n) needs n >= 1")
            return cls(SelectionMode.COUNT, count)
        if match[3] is not None:
            percent = int(match[3])
            if not 1 <= percent <= 100:
                raise ValueError("PERCENT(n) needs 1 <= n <= 100")
            return cls(SelectionMode.PERCENT, percent)
        return cls(SelectionMode.ALL)

    def __str__(self) -> str:
        return self.mode.value if self.value is None else f"{self.mode.value}({self.value})"

    def how_many(self, matched: int) -> int:
        """How many of `matched` resources this selection takes.

        PERCENT rounds down but never to zero when anything matched: asking for 10% of 5 instances
        means "one of them", not "none", which would make the run a silent no-op.
        """
        match self.mode:
            case SelectionMode.ALL:
                return matched
            case SelectionMode.COUNT:
                return min(matched, self.value or 0)
            case SelectionMode.PERCENT:
                if matched == 0:
                    return 0
                return max(1, math.floor(matched * (self.value or 0) / 100))

    def choose(self, candidates: Sequence[T], rng: random.Random, key: str = "id") -> list[T]:
        """Pick the resources to hit, in a stable order (sorted by `key`)."""
        ordered = sorted(candidates, key=lambda c: str(getattr(c, key)))
        wanted = self.how_many(len(ordered))
        if wanted >= len(ordered):
            return ordered
        chosen = rng.sample(ordered, wanted)
        return sorted(chosen, key=lambda c: str(getattr(c, key)))
