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

# In any case, with spaces around: the API's schema declares this pattern, so it spells the case
# out and needs no flag, and it holds the bounds (COUNT from 1, PERCENT from 1 to 100) itself.
SELECTION_PATTERN = (
    r"^ *(?:[Aa][Ll][Ll]|[Cc][Oo][Uu][Nn][Tt]\(([1-9][0-9]{0,5})\)"
    r"|[Pp][Ee][Rr][Cc][Ee][Nn][Tt]\(([1-9][0-9]?|100)\)) *$"
)
_PATTERN = re.compile(SELECTION_PATTERN)

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
        match = _PATTERN.fullmatch(text)  # fullmatch: Python's `$` would let a final newline by
        if match is None:
            raise ValueError(
                f"selection must be ALL, COUNT(n) or PERCENT(n) (n from 1, a percentage up to 100), "
                f"not {text!r}"
            )
        if match[1] is not None:
            return cls(SelectionMode.COUNT, int(match[1]))
        if match[2] is not None:
            return cls(SelectionMode.PERCENT, int(match[2]))
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
