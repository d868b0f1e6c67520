"""Property-based tests of the blast-radius planner: whatever the inputs, the plan stays safe.

Rounding, documented: PERCENT(n) takes floor(n% of the eligible resources) but at least one, and
the policy's max_percent allows floor(max_percent% of the eligible resources), so a plan is
refused (not trimmed) when the selection rounds above what the policy allows.
"""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from chaosplane.faults.base import Resource
from chaosplane.safety import (
    ALLOWED_LABEL,
    PROTECTED_LABEL,
    SYSTEM_NAMESPACES,
    Exclusion,
    SafetyPolicy,
    plan_run,
)
from chaosplane.selection import Selection

STATES = ["running", "stopped", "pending", "stopping"]


@st.composite
def resources(draw: st.DrawFn) -> list[Resource]:
    count = draw(st.integers(min_value=0, max_value=40))
    found = []
    for n in range(count):
        labels = {}
        if draw(st.booleans()):
            labels[PROTECTED_LABEL] = draw(st.sampled_from(["true", "True", "false", "yes"]))
        if draw(st.booleans()):
            labels[ALLOWED_LABEL] = draw(st.sampled_from(["true", "false"]))
        namespace = draw(st.sampled_from(["", "shop", "kube-system", "payments", "kube-public"]))
        found.append(
            Resource(
                id=f"r-{n:03d}",
                kind="test",
                state=draw(st.sampled_from(STATES)),
                labels=labels,
                detail={"namespace": namespace} if namespace else {},
            )
        )
    return found


selections = st.one_of(
    st.just("ALL"),
    st.integers(min_value=1, max_value=50).map(lambda n: f"COUNT({n})"),
    st.integers(min_value=1, max_value=100).map(lambda n: f"PERCENT({n})"),
)
policies = st.builds(
    SafetyPolicy,
    max_percent=st.integers(min_value=1, max_value=100),
    max_resources=st.integers(min_value=1, max_value=50),
    max_duration=st.integers(min_value=1, max_value=43200),
    opt_in=st.booleans(),
    protected_namespaces=st.lists(st.sampled_from(["shop", "payments"]), max_size=2, unique=True),
)


def is_protected(resource: Resource, policy: SafetyPolicy) -> bool:
    namespace = resource.detail.get("namespace", "")
    return (
        resource.labels.get(PROTECTED_LABEL, "").lower() == "true"
        or namespace in SYSTEM_NAMESPACES
        or namespace in policy.protected_namespaces
        or (policy.opt_in and resource.labels.get(ALLOWED_LABEL) != "true")
    )


@settings(max_examples=300, deadline=None)
@given(resources(), selections, policies, st.integers(min_value=1, max_value=43200), st.integers())
def test_an_allowed_plan_never_exceeds_the_policy_nor_touches_protected_or_ineligible_resources(
    found: list[Resource], selection: str, policy: SafetyPolicy, duration: int, seed: int
) -> None:
    plan = plan_run(
        found, frozenset({"running"}), Selection.parse(selection), duration, policy, random.Random(seed)
    )
    eligible = [r for r in found if r.state == "running" and not is_protected(r, policy)]

    for resource in plan.selected:
        assert not is_protected(resource, policy)
        assert resource.state == "running"
    assert {r.id for r in plan.selected} | {r.id for r in plan.eligible_not_selected} == {
        r.id for r in eligible
    }
    assert len(plan.selected) == Selection.parse(selection).how_many(len(eligible))
    excluded = {e.resource.id for e in plan.excluded if e.reason is not Exclusion.OVER_CAP}
    assert excluded == {r.id for r in found} - {r.id for r in eligible}

    if plan.allowed:
        assert 0 < len(plan.selected) <= policy.max_resources
        assert len(plan.selected) <= math.floor(len(eligible) * policy.max_percent / 100)
        assert duration <= policy.max_duration
    else:
        assert plan.refusals  # refused with its reasons, never trimmed:
        assert len(plan.selected) == Selection.parse(selection).how_many(len(eligible))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=500), st.integers(min_value=1, max_value=100))
def test_percent_rounds_down_but_never_to_zero(eligible: int, percent: int) -> None:
    taken = Selection.parse(f"PERCENT({percent})").how_many(eligible)
    assert taken == max(1, math.floor(eligible * percent / 100))
    assert 1 <= taken <= eligible
