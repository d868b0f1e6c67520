"""Kubernetes label-selector syntax, used for every target type.

For EKS pods the selector is handed to the Kubernetes API as is; for AWS resources it is matched
against tags. One parser and one matcher means a selector means the same thing everywhere, and a
preview can show exactly why a resource was (or was not) picked.

Grammar (as in k8s.io/apimachinery/pkg/labels): comma-separated requirements, each one of
``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``, ``key notin (a,b)``, ``key``, ``!key``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# AWS tag keys may hold ':' '/' '@' '+' (e.g. aws:cloudformation:stack-name); Kubernetes keys are a
# subset. Values are as free, except for the characters the grammar itself needs.
_TOKEN = r"[A-Za-z0-9_.:/@+\-]+"
_VALUE = r"[A-Za-z0-9_.:/@+\-]*"
_REQUIREMENT = re.compile(
    rf"""^\s*(?:
        (?P<not_exists>!)\s*(?P<nkey>{_TOKEN})
      | (?P<key>{_TOKEN})\s*(?:
            (?P<op>==|=|!=)\s*(?P<value>{_VALUE})
          | \s(?P<setop>in|notin)\s*\((?P<values>[^()]*)\)
        )?
    )\s*$""",
    re.VERBOSE,
)
_SET_VALUE = re.compile(rf"^{_VALUE}$")

# The whole grammar as one pattern, for the API's schema (and pydantic, which enforces it): the
# same tokens, with spaces for whitespace and no lookaround, so JSON Schema's, pydantic's and
# Python's regular-expression engines read it alike. A value set needs one non-empty value.
_SET = rf"\( *(?:{_VALUE} *, *)*{_TOKEN}(?: *, *{_VALUE})* *\)"
_ONE = rf" *(?:! *{_TOKEN}|{_TOKEN}(?: *(?:==|=|!=) *{_VALUE}| +(?:in|notin) *{_SET})?) *"
SELECTOR_PATTERN = rf"^{_ONE}(?:,{_ONE})*$"


class SelectorError(ValueError):
    """A selector that does not parse; the message says which part and why."""


class Operator(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case Operator.EQUALS | Operator.IN:
                return present and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                # As in Kubernetes: a resource without the key satisfies `key!=v` and `key notin (...)`.
                return not present or value not in self.values
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    def equalities(self) -> dict[str, tuple[str, ...]]:
        """Requirements a server-side filter can apply (tag:key = any of values)."""
        return {r.key: r.values for r in self.requirements if r.operator in (Operator.EQUALS, Operator.IN)}

    def required_keys(self) -> list[str]:
        return [r.key for r in self.requirements if r.operator is Operator.EXISTS]


def _split_requirements(text: str) -> list[str]:
    """Split on commas that are not inside a `( ... )` value set."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced ')'")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SelectorError("unbalanced '('")
    parts.append("".join(current))
    return parts


def parse_selector(text: str) -> LabelSelector:
    if not text.strip():
        raise SelectorError("selector is empty")
    requirements: list[Requirement] = []
    for part in _split_requirements(text):
        match = _REQUIREMENT.match(part)
        if match is None:
            raise SelectorError(f"cannot parse requirement {part.strip()!r}")
        if match["not_exists"]:
            requirements.append(Requirement(match["nkey"], Operator.DOES_NOT_EXIST))
        elif match["op"]:
            operator = Operator.NOT_EQUALS if match["op"] == "!=" else Operator.EQUALS
            requirements.append(Requirement(match["key"], operator, (match["value"],)))
        elif match["setop"]:
            values = tuple(v.strip() for v in match["values"].split(","))
            bad = [v for v in values if not _SET_VALUE.match(v)]
            if bad or not any(values):
                raise SelectorError(f"invalid value set in {part.strip()!r}")
            operator = Operator.IN if match["setop"] == "in" else Operator.NOT_IN
            requirements.append(Requirement(match["key"], operator, values))
        else:
            requirements.append(Requirement(match["key"], Operator.EXISTS))
    return LabelSelector(tuple(requirements))
