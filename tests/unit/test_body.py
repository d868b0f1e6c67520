"""The request body parser: its nesting bound counts brackets as JSON does, never inside strings."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaosplane.api.body import MAX_DEPTH, MalformedBody, depth, loads

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ ab\n'),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\ ab'), inner, max_size=3)
    ),
    max_leaves=20,
)


def nesting(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


@given(JSON)
def test_depth_is_the_nesting_of_the_decoded_value(value: object) -> None:
    text = json.dumps(value)
    assert depth(text) == nesting(value)
    assert loads(text) == value


def test_a_body_deeper_than_the_bound_is_refused_before_it_is_decoded() -> None:
    with pytest.raises(MalformedBody, match="nested deeper"):
        loads("[" * 100_000)  # not even well-formed: the bound is checked first
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


@pytest.mark.parametrize("text", ["{not json", "", " ", '{"a": 1,}', '"unterminated \\"'])
def test_what_is_not_json_is_malformed(text: str) -> None:
    with pytest.raises(MalformedBody, match="not valid JSON"):
        loads(text)
