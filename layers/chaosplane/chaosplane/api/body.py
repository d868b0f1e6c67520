"""Request bodies as JSON, with a bound on nesting: what the API's resolver parses bodies with.

Why a bound: Python's JSON decoder recurses once per level, so a small body of a few thousand
nested brackets raises RecursionError deep in a request (a 5xx), and every recursive step after it
(validation, serialisation, logging) is exposed too. No request of this API nests more than a
handful of levels, so anything deeper than MAX_DEPTH is refused before it is decoded.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64
_SIGNIFICANT = re.compile(r'[\[\]{}"\\]')


class MalformedBody(ValueError):
    """The body is not JSON the API will decode: the caller's mistake (400), never a server fault."""


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`, counting no bracket inside a string.

    One pass over the characters that matter, so its time is linear in the body whatever it holds
    (a regular expression for strings backtracks quadratically on an unterminated one).
    """
    level = deepest = 0
    in_string = False
    skip = -1  # the position of a character escaped by a backslash
    for found in _SIGNIFICANT.finditer(text):
        at, char = found.start(), found.group()
        if at == skip:
            continue
        if in_string:
            if char == "\\":
                skip = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            level += 1
            deepest = max(deepest, level)
        elif char in "]}":
            level -= 1
    return deepest


def loads(text: str) -> Any:
    """Decode a request body; raise MalformedBody (with a message fit for the caller) otherwise."""
    if depth(text) > MAX_DEPTH:
        raise MalformedBody(f"body is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno}, column {err.colno}"
        raise MalformedBody(f"body is not valid JSON: {err.msg} ({where})") from err
    except RecursionError as err:  # not reachable under the bound; kept so that it is never a 5xx
        raise MalformedBody(f"body is nested deeper than {MAX_DEPTH} levels") from err
