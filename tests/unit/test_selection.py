import random
from dataclasses import dataclass

import pytest

from chaosplane.selection import Selection, SelectionMode


@dataclass(frozen=True)
class Item:
    id: str


@pytest.mark.parametrize(
    ("text", "mode", "value"),
    [
        ("ALL", SelectionMode.ALL, None),
        ("count(3)", SelectionMode.COUNT, 3),
        ("PERCENT(25)", SelectionMode.PERCENT, 25),
    ],
)
def test_parse(text: str, mode: SelectionMode, value: int | None) -> None:
    selection = Selection.parse(text)
    assert (selection.mode, selection.value) == (mode, value)
    assert str(selection) == text.upper()


@pytest.mark.parametrize(
    "text", ["", "SOME", "COUNT(0)", "COUNT(-1)", "PERCENT(0)", "PERCENT(101)", "COUNT(x)"]
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Selection.parse(text)


@pytest.mark.parametrize(
    ("text", "matched", "expected"),
    [
        ("ALL", 7, 7),
        ("COUNT(3)", 7, 3),
        ("COUNT(10)", 7, 7),
        ("PERCENT(50)", 7, 3),
        ("PERCENT(10)", 5, 1),  # never rounds a non-empty match down to a silent no-op
        ("PERCENT(100)", 5, 5),
        ("PERCENT(50)", 0, 0),
    ],
)
def test_how_many(text: str, matched: int, expected: int) -> None:
    assert Selection.parse(text).how_many(matched) == expected


def test_choose_picks_distinct_members_and_is_repeatable_with_a_seed() -> None:
    items = [Item(f"i-{n:04d}") for n in range(50)]
    for text in ["COUNT(1)", "COUNT(7)", "PERCENT(30)", "ALL"]:
        selection = Selection.parse(text)
        first = selection.choose(items, random.Random(42))
        again = selection.choose(list(reversed(items)), random.Random(42))
        assert first == again  # input order does not matter; the seed decides
        assert len(first) == selection.how_many(len(items))
        assert len(set(first)) == len(first)
        assert set(first) <= set(items)
        assert first == sorted(first, key=lambda i: i.id)


def test_choose_spreads_over_the_candidates() -> None:
    items = [Item(f"i-{n}") for n in range(10)]
    seen = set()
    rng = random.Random(7)
    for _ in range(200):
        seen.update(Selection.parse("COUNT(1)").choose(items, rng))
    assert seen == set(items)
