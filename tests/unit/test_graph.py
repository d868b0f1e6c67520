"""Multi-step experiments as a graph: what validates, and FIS's semantics of what runs when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chaosplane.faults.aws import attributes
from chaosplane.faults.base import Resource
from chaosplane.graph import (
    MAX_AT_ONCE,
    ActionProgress,
    ActionStatus,
    AttributeFilter,
    ExperimentGraph,
    advance,
    filter_problems,
    passes,
)
from chaosplane.models import ExperimentSpec, FaultType, TargetType

WEB = "0e1a7b0c-1111-4222-8333-444455556666"
DB = "0e1a7b0c-2222-4222-8333-444455556666"
CACHE = "0e1a7b0c-3333-4222-8333-444455556666"
START = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def graph(actions: dict[str, dict[str, Any]], duration: int = 600, **targets: str) -> ExperimentGraph:
    return ExperimentGraph.model_validate(
        {
            "targets": {name: {"target": tid} for name, tid in (targets or {"web": WEB}).items()},
            "actions": actions,
            "duration": duration,
        }
    )


def refusal(actions: dict[str, dict[str, Any]], duration: int = 600, **targets: str) -> str:
    with pytest.raises(ValidationError) as caught:
        graph(actions, duration, **targets)
    return str(caught.value)


GAME_DAY = {
    # Stop a third of the web tier for two minutes; 60 s in, fail over the database for a minute;
    # all along, blackhole the cache subnet until the experiment ends.
    "stop-web": {"fault": "ec2-stop", "target": "web", "duration": 120},
    "settle": {"fault": "wait", "duration": 60},
    "failover-db": {"fault": "rds-failover", "target": "db", "duration": 60, "start_after": ["settle"]},
    "blackhole-cache": {"fault": "network-blackhole", "target": "cache"},
}


def simulate(g: ExperimentGraph, inject_takes: float = 1.0) -> list[tuple[float, str, str]]:
    """Run `g` on a fake clock, applying each move as the run would; the events as (seconds, what, action)."""
    progress: dict[str, ActionProgress] = {}
    now, events = START, []
    for _ in range(10 * len(g.actions) + 10):
        moves = advance(g, progress, START, now)
        if moves.finished:
            events.append(((now - START).total_seconds(), "end", "*"))
            return events
        for name in moves.expired:
            events.append(((now - START).total_seconds(), "rollback", name))
            progress[name] = progress[name].model_copy(
                update={"status": ActionStatus.COMPLETED, "end_time": now}
            )
        for name in moves.ready:
            events.append(((now - START).total_seconds(), "inject", name))
            in_force = now + timedelta(seconds=inject_takes)
            done = g.actions[name].completes_when_injected
            progress[name] = ActionProgress(
                status=ActionStatus.COMPLETED if done else ActionStatus.IN_FORCE,
                start_time=now,
                in_force_at=in_force,
                end_time=in_force if done else None,
            )
        if moves.wake_in:
            now += timedelta(seconds=moves.wake_in)
    raise AssertionError(f"never finished: {events}")


def test_a_single_fault_experiment_is_the_graph_of_one_action_held_to_its_end() -> None:
    spec = ExperimentSpec(name="x", target=WEB, type=FaultType.EC2_STOP, duration=300, selection="count(1)")
    g = ExperimentGraph.single(spec)

    assert list(g.actions) == ["ec2-stop"] and g.targets["target"].selection == "COUNT(1)"
    assert g.actions["ec2-stop"].holds_to_the_end
    assert simulate(g) == [(0.0, "inject", "ec2-stop"), (300.0, "end", "*")]


def test_a_single_instant_fault_is_held_by_a_wait_for_the_experiments_duration() -> None:
    spec = ExperimentSpec(name="x", target=WEB, type=FaultType.EC2_REBOOT, duration=300)
    g = ExperimentGraph.single(spec)

    assert list(g.actions) == ["ec2-reboot", "observe"] and g.actions["ec2-reboot"].completes_when_injected
    # The reboot is done when injected; the run still lasts its duration, stop conditions watched.
    assert simulate(g) == [(0.0, "inject", "ec2-reboot"), (0.0, "inject", "observe"), (300.0, "end", "*")]


def test_the_game_day_runs_in_fis_order() -> None:
    g = graph(GAME_DAY, duration=600, web=WEB, db=DB, cache=CACHE)

    assert simulate(g) == [
        (0.0, "inject", "stop-web"),
        (0.0, "inject", "settle"),
        (0.0, "inject", "blackhole-cache"),
        (61.0, "rollback", "settle"),  # waits count from when the action is in force (1 s to inject)
        (61.0, "inject", "failover-db"),
        (121.0, "rollback", "stop-web"),
        (122.0, "rollback", "failover-db"),
        (600.0, "end", "*"),  # the blackhole holds until the experiment's end
    ]


@pytest.mark.parametrize(
    "actions",
    [
        GAME_DAY,
        {
            "reboot": {"fault": "ec2-reboot", "target": "web"},  # instant: done once injected
            "then": {"fault": "wait", "duration": 20, "start_after": ["reboot"]},
            "last": {"fault": "ec2-stop", "target": "web", "duration": 30, "start_after": ["then"]},
            "beside": {"fault": "ec2-stop", "target": "web", "duration": 45},
        },
    ],
    ids=["game-day", "chain-with-an-instant-fault"],
)
def test_the_previews_schedule_is_when_the_run_starts_and_ends_each_action_if_injections_are_immediate(
    actions: dict[str, dict[str, Any]],
) -> None:
    g = graph(actions, duration=600, web=WEB, db=DB, cache=CACHE)
    ran = simulate(g, inject_takes=0)
    injected = {name: at for at, what, name in ran if what == "inject"}
    ended = {name: at for at, what, name in ran if what == "rollback"}
    end_of_run = next(at for at, what, _ in ran if what == "end")

    schedule = g.schedule()

    assert {name: w.start for name, w in schedule.items()} == injected
    for name, window in schedule.items():
        expected = injected[name] if g.actions[name].completes_when_injected else ended.get(name, end_of_run)
        assert window.end == expected, name


def test_an_experiment_of_actions_with_durations_ends_when_the_last_completes() -> None:
    g = graph(
        {
            "a": {"fault": "ec2-stop", "target": "web", "duration": 30},
            "b": {"fault": "ec2-stop", "target": "web", "duration": 30, "start_after": ["a"]},
        },
        duration=3600,
    )
    assert simulate(g, inject_takes=0) == [
        (0.0, "inject", "a"),
        (30.0, "rollback", "a"),
        (30.0, "inject", "b"),
        (60.0, "rollback", "b"),
        (60.0, "end", "*"),
    ]


def test_an_instant_fault_completes_when_injected_so_the_next_starts_at_once() -> None:
    g = graph(
        {
            "reboot": {"fault": "ec2-reboot", "target": "web"},
            "check": {
                "fault": "assert-alarm-state",
                "parameters": {"alarms": ["web-5xx"], "states": ["OK"]},
                "start_after": ["reboot"],
            },
            "then-stop": {"fault": "ec2-stop", "target": "web", "duration": 10, "start_after": ["check"]},
        }
    )
    assert [e[1:] for e in simulate(g, inject_takes=0)] == [
        ("inject", "reboot"),
        ("inject", "check"),
        ("inject", "then-stop"),
        ("rollback", "then-stop"),
        ("end", "*"),
    ]


def test_the_experiment_duration_ends_whatever_is_pending_or_held() -> None:
    g = graph({"long": {"fault": "ec2-stop", "target": "web", "duration": 60}}, duration=60)
    # Its 60 s count from when it is in force (1 s in), so the experiment's end comes first.
    assert simulate(g) == [(0.0, "inject", "long"), (60.0, "end", "*")]


def test_nothing_more_starts_after_a_failed_injection() -> None:
    g = graph(
        {
            "a": {"fault": "ec2-stop", "target": "web", "duration": 10},
            "b": {"fault": "ec2-stop", "target": "web", "start_after": ["a"]},
        }
    )
    failed = {"a": ActionProgress(status=ActionStatus.INTERRUPTED, start_time=START)}
    moves = advance(g, failed, START, START + timedelta(seconds=5))
    assert moves.finished and moves.ready == []


def test_what_could_be_in_force_at_once() -> None:
    chain = {
        "a": {"fault": "ec2-stop", "target": "web", "duration": 5},
        "b": {"fault": "ec2-stop", "target": "web", "duration": 5, "start_after": ["a"]},
        "c": {"fault": "ec2-stop", "target": "web", "duration": 5, "start_after": ["b"]},
    }
    diamond = {
        "a": {"fault": "wait", "duration": 5},
        "b": {"fault": "wait", "duration": 5, "start_after": ["a"]},
        "c": {"fault": "wait", "duration": 5, "start_after": ["a"]},
        "d": {"fault": "wait", "duration": 5, "start_after": ["b", "c"]},
        "e": {"fault": "ec2-stop", "target": "web"},
    }
    assert graph(chain).at_once() == 1
    assert graph(diamond).at_once() == 3  # b and c, beside e which holds to the end
    assert graph(GAME_DAY, web=WEB, db=DB, cache=CACHE).at_once() == 3


def test_limits_above_fis_and_azure() -> None:
    parallel = {f"a{i}": {"fault": "ec2-stop", "target": "web"} for i in range(MAX_AT_ONCE)}
    assert graph(parallel).at_once() == MAX_AT_ONCE
    too_wide = parallel | {"one-more": {"fault": "ec2-stop", "target": "web"}}
    assert "26 could be in force at once; at most 25" in refusal(too_wide)

    # 50 actions in a chain are fine; 51 are not.
    chain = {
        f"a{i}": {"fault": "wait", "duration": 1, "start_after": [f"a{i - 1}"] if i else []}
        for i in range(50)
    }
    assert len(graph(chain, duration=3600).actions) == 50
    longer = chain | {"a50": {"fault": "wait", "duration": 1, "start_after": ["a49"]}}
    assert "at most 50 items" in refusal(longer, duration=3600)

    targets = {f"t{i}": WEB for i in range(26)}
    assert "at most 25 items" in refusal({"a": {"fault": "ec2-stop", "target": "t0"}}, **targets)
    assert "less than or equal to 43200" in refusal(
        {"a": {"fault": "ec2-stop", "target": "web"}}, duration=43201
    )


@pytest.mark.parametrize(
    ("actions", "problem"),
    [
        (
            {
                "a": {"fault": "wait", "duration": 1, "start_after": ["c"]},
                "b": {"fault": "wait", "duration": 1, "start_after": ["a"]},
                "c": {"fault": "wait", "duration": 1, "start_after": ["b"]},
            },
            "start_after makes a cycle: a -> c -> b -> a",
        ),
        (
            {"a": {"fault": "wait", "duration": 1, "start_after": ["nope"]}},
            "actions.a.start_after: 'nope' is not an action",
        ),
        ({"a": {"fault": "wait", "duration": 1, "start_after": ["a"]}}, "an action cannot wait for itself"),
        ({"a": {"fault": "ec2-stop", "target": "db"}}, "actions.a.target: 'db' is not in targets"),
        (
            {
                "a": {"fault": "ec2-stop", "target": "web"},
                "b": {"fault": "ec2-reboot", "target": "web", "start_after": ["a"]},
            },
            "'a' holds until the experiment ends, so 'b' would never start; give 'a' a duration",
        ),
        (
            {"a": {"fault": "ec2-stop", "target": "web", "duration": 601}},
            "actions.a.duration: 601s is longer than the experiment",
        ),
        ({"a": {"fault": "wait"}}, "wait needs a duration"),
        ({"a": {"fault": "wait", "target": "web", "duration": 1}}, "wait takes no target"),
        ({"a": {"fault": "ec2-stop"}}, "ec2-stop needs a target"),
        (
            {"a": {"fault": "ec2-stop", "target": "web", "parameters": {"forse": True}}},
            "parameters.forse: Extra inputs",
        ),
        ({"a": {"fault": "assert-alarm-state", "parameters": {"alarms": []}}}, "alarms"),
        ({"a": {"fault": "teleport", "target": "web"}}, "fault"),
        ({"bad name": {"fault": "wait", "duration": 1}}, "actions.bad name"),
        ({}, "at least 1 item"),
    ],
)
def test_a_graph_that_cannot_run_is_refused_with_the_field(actions: dict[str, Any], problem: str) -> None:
    assert problem in refusal(actions)


def test_filters_match_the_attributes_a_resource_carries_as_fis_does() -> None:
    zone_a = AttributeFilter(path="Placement.AvailabilityZone", values=["us-east-1a"])
    small = AttributeFilter(path="InstanceType", values=["t3.micro", "t3.small"])
    here = Resource(
        "i-1",
        "ec2-instance",
        "running",
        attributes={"Placement.AvailabilityZone": "us-east-1a", "InstanceType": "t3.small"},
    )
    there = Resource(
        "i-2",
        "ec2-instance",
        "running",
        attributes={"Placement.AvailabilityZone": "us-east-1b", "InstanceType": "t3.small"},
    )
    unknown = Resource("i-3", "ec2-instance", "running")

    assert [r.id for r in (here, there, unknown) if passes(r, [zone_a, small])] == ["i-1"]
    assert passes(unknown, [])  # no filter: every resource


def test_a_filter_on_an_attribute_the_type_does_not_carry_is_named() -> None:
    zone = AttributeFilter(path="Placement.AvailabilityZone", values=["us-east-1a"])
    assert filter_problems(TargetType.EC2_INSTANCES, [zone], "targets.web.filters.0") == []
    [problem] = filter_problems(TargetType.SUBNETS, [zone], "targets.cache.filters.0")
    assert problem.startswith(
        "targets.cache.filters.0.path: 'Placement.AvailabilityZone' is not an attribute"
    )
    assert "AvailabilityZone, AvailabilityZoneId" in problem
    [none] = filter_problems(TargetType.EKS_PODS, [zone], "targets.pods.filters.0")
    assert none.endswith("(they take no filters)")


def test_attributes_are_read_at_their_paths_as_text() -> None:
    instance = {
        "Placement": {"AvailabilityZone": "us-east-1a"},
        "EbsOptimized": False,
        "CpuOptions": {"CoreCount": 2},
    }
    found = attributes(
        instance, ["Placement.AvailabilityZone", "EbsOptimized", "CpuOptions.CoreCount", "VpcId", "Placement"]
    )
    assert found == {
        "Placement.AvailabilityZone": "us-east-1a",
        "EbsOptimized": "false",
        "CpuOptions.CoreCount": "2",
    }


def test_a_failover_without_failback_completes_when_injected_and_with_it_holds() -> None:
    then = {"fault": "wait", "duration": 60, "start_after": ["failover"]}
    done = graph({"failover": {"fault": "rds-failover", "target": "db"}, "then": then}, db=DB)
    assert done.actions["failover"].completes_when_injected
    held = {"fault": "rds-failover", "target": "db", "parameters": {"failback": True}}
    assert "'failover' holds until the experiment ends" in refusal({"failover": held, "then": then}, db=DB)
