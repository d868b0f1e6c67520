"""Multi-step experiments on the embedded AWS: the real handlers and the real state machine run a
graph across EC2, subnets and a wait; FIS templates are imported, run and exported back."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import Platform, wait_until
from tests.integration.test_cloud_faults import (
    acl_of,
    blackhole_acls,
    commands,
    db_instances,
    ecs_tasks,
    managed_instances,
    subnets,
    target,
    task_states,
)
from tests.unit import test_fis

GAME_DAY = {
    # Stop the web tier for 2 s, wait 1 s once it is back, then blackhole the cache subnets for 2 s.
    "stop-web": {"fault": "ec2-stop", "target": "web", "duration": 2},
    "pause": {"fault": "wait", "duration": 1, "start_after": ["stop-web"]},
    "cut-cache": {"fault": "network-blackhole", "target": "cache", "duration": 2, "start_after": ["pause"]},
}


def _at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def _game_day(platform: Platform, actions: dict[str, Any], duration: int = 60) -> tuple[dict, list, dict]:
    """The experiment, the web instances and each cache subnet's original ACL."""
    web = platform.instances(2, {"tier": "web"})
    _, cache = subnets(platform, 2, {"tier": "cache"})
    original = {s: acl_of(platform, s) for s in cache}
    body = {
        "name": "game day",
        "targets": {
            "web": {"target": target(platform, "ec2-instances", selector="tier=web")["id"]},
            "cache": {"target": target(platform, "subnets", selector="tier=cache")["id"]},
        },
        "actions": actions,
        "duration": duration,
    }
    return platform.json("POST", "/experiments", body, expect=201), web, original


def test_a_three_action_experiment_runs_in_order_and_restores_everything(platform: Platform) -> None:
    experiment, web, original = _game_day(platform, GAME_DAY)
    assert set(experiment["actions"]) == set(GAME_DAY) and experiment["type"] == "ec2-stop"

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"], timeout=90)

    assert result["status"] == "completed", result
    actions = result["actions"]
    assert {name: a["status"] for name, a in actions.items()} == dict.fromkeys(GAME_DAY, "completed")
    # The order, from the result's timeline of actions: each starts once the one before has ended.
    assert _at(actions["stop-web"]["end_time"]) <= _at(actions["pause"]["start_time"])
    assert _at(actions["pause"]["end_time"]) <= _at(actions["cut-cache"]["start_time"])
    held = _at(actions["stop-web"]["end_time"]) - _at(actions["stop-web"]["in_force_at"])
    assert held.total_seconds() >= 2
    assert sorted(actions["stop-web"]["resources"]) == sorted(web)
    assert sorted(actions["cut-cache"]["resources"]) == sorted(original)
    assert {r["step"] for r in result["resources"]} == {"stop-web", "cut-cache"}
    # Everything is back: the instances run, the subnets have their own ACLs, ours are gone.
    assert set(platform.states(web).values()) == {"running"}
    assert {s: acl_of(platform, s) for s in original} == original
    assert blackhole_acls(platform) == []
    # The graph finished well before the experiment's 60 s.
    assert (_at(result["end_time"]) - _at(result["start_time"])).total_seconds() < 45


def test_a_halt_mid_graph_restores_everything_latest_first(platform: Platform) -> None:
    actions = {
        "stop-web": {"fault": "ec2-stop", "target": "web"},  # holds until the end
        "pause": {"fault": "wait", "duration": 1},
        "cut-cache": {"fault": "network-blackhole", "target": "cache", "start_after": ["pause"]},
        "never": {"fault": "wait", "duration": 1, "start_after": ["pause", "later"]},
        "later": {"fault": "wait", "duration": 300, "start_after": ["pause"]},
    }
    experiment, web, original = _game_day(platform, actions, duration=600)
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)

    def cut() -> bool:
        progress = platform.json("GET", f"/results/{run['result_id']}")["actions"]
        return progress.get("cut-cache", {}).get("status") == "in_force"

    wait_until(cut, timeout=60)
    assert set(platform.states(web).values()) == {"stopped"}
    assert {s: acl_of(platform, s) for s in original} != original
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    result = platform.wait_for_result(run["result_id"], timeout=60)

    assert result["status"] == "stopped", result
    assert set(platform.states(web).values()) == {"running"}
    assert {s: acl_of(platform, s) for s in original} == original
    assert blackhole_acls(platform) == []
    statuses = {name: a["status"] for name, a in result["actions"].items()}
    assert statuses == {
        "stop-web": "stopped",
        "pause": "completed",
        "cut-cache": "stopped",
        "later": "stopped",
        "never": "cancelled",
    }
    # Reverse order of injection: the subnets (cut last) were restored before the instances.
    undone = [
        e["message"] for e in result["timeline"] if e["step"] == "rollback" and "undone" in e["message"]
    ]
    first_subnet = min(i for i, line in enumerate(undone) if any(s in line for s in original))
    first_instance = min(i for i, line in enumerate(undone) if any(w in line for w in web))
    assert first_subnet < first_instance, undone


def test_every_target_of_a_running_graph_is_locked(platform: Platform) -> None:
    experiment, _, _ = _game_day(
        platform,
        {
            "stop-web": {"fault": "ec2-stop", "target": "web", "duration": 300},
            **{"cut-cache": {"fault": "network-blackhole", "target": "cache", "duration": 300}},
        },
        duration=600,
    )
    cache_target = experiment["targets"]["cache"]["target"]
    single = platform.json(
        "POST",
        "/experiments",
        {"name": "cut", "type": "network-blackhole", "target": cache_target, "duration": 60},
        expect=201,
    )
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    refused = platform.api("POST", f"/experiments/{single['id']}/run")
    assert refused.status_code == 409 and cache_target in refused.get_json()["message"]
    # A target in use by a multi-step experiment cannot be deleted from under it.
    assert platform.api("DELETE", f"/targets/{cache_target}").status_code == 409
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    assert platform.wait_for_result(run["result_id"], timeout=60)["status"] == "stopped"


def test_a_graph_that_cannot_run_is_refused_with_the_field_and_nothing_is_created(platform: Platform) -> None:
    web = target(platform, "ec2-instances", selector="tier=web")
    before = platform.json("GET", "/experiments")["items"]
    cases = [
        (
            {
                "a": {"fault": "wait", "duration": 1, "start_after": ["b"]},
                "b": {"fault": "wait", "duration": 1, "start_after": ["a"]},
            },
            "body.actions",
            "start_after makes a cycle",
        ),
        ({"a": {"fault": "ec2-stop", "target": "nope"}}, "body.actions.a.target", "'nope' is not in targets"),
        (
            {
                "a": {"fault": "ec2-stop", "target": "web"},
                "b": {"fault": "wait", "duration": 1, "start_after": ["c"]},
            },
            "body.actions.b.start_after",
            "'c' is not an action",
        ),
        (
            {"a": {"fault": "network-blackhole", "target": "web"}},
            "body.targets.web.target",
            "acts on subnets",
        ),
        ({"a": {"fault": "wait", "duration": 5}}, "body", "at least one action must be a fault"),
        (
            {"a": {"fault": "ec2-stop", "target": "web", "duration": 61}},
            "body.actions.a.duration",
            "longer than",
        ),
    ]
    for actions, field, message in cases:
        body = {"name": "bad", "targets": {"web": {"target": web["id"]}}, "actions": actions, "duration": 60}
        response = platform.api("POST", "/experiments", body)
        assert response.status_code == 422, (actions, response.get_data(as_text=True))
        errors = response.get_json().get("errors") or [
            {"field": "body", "message": response.get_json()["message"]}
        ]
        assert any(e["field"] == field and message in e["message"] for e in errors), (field, errors)
    assert platform.json("GET", "/experiments")["items"] == before


# -- AWS FIS templates -----------------------------------------------------------------------------

STOP_AND_WAIT = {
    # The FIS user guide's "stop instances, then start them after a duration", with a wait after.
    "description": "Stop the web tier, then wait",
    "targets": {
        "webInstances": {
            "resourceType": "aws:ec2:instance",
            "resourceTags": {"tier": "web"},
            "selectionMode": "ALL",
        }
    },
    "actions": {
        "stopInstances": {
            "actionId": "aws:ec2:stop-instances",
            "parameters": {"startInstancesAfterDuration": "PT2S"},
            "targets": {"Instances": "webInstances"},
        },
        "settle": {
            "actionId": "aws:fis:wait",
            "parameters": {"duration": "PT1S"},
            "startAfter": ["stopInstances"],
        },
    },
    "stopConditions": [{"source": "none"}],
    "roleArn": "arn:aws:iam::123456789012:role/fis",
}


def test_an_fis_template_is_imported_run_to_completion_and_exported_back(platform: Platform) -> None:
    web = platform.instances(2, {"tier": "web"})
    imported = platform.json("POST", "/experiments/import", STOP_AND_WAIT, expect=201, duration=30)
    experiment, created = imported["experiment"], imported["targets"]
    assert set(created) == {"webInstances"} and created["webInstances"]["type"] == "ec2-instances"
    assert experiment["actions"]["settle"]["start_after"] == ["stopInstances"]
    assert any("roleArn" in note for note in imported["notes"])

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"], timeout=60)
    assert result["status"] == "completed", result
    assert sorted(result["actions"]["stopInstances"]["resources"]) == sorted(web)
    assert set(platform.states(web).values()) == {"running"}

    exported = platform.json(
        "GET", f"/experiments/{experiment['id']}/export", format="fis", role_arn=STOP_AND_WAIT["roleArn"]
    )
    assert exported["targets"] == STOP_AND_WAIT["targets"]
    assert (
        exported["actions"]["stopInstances"]["parameters"]
        == STOP_AND_WAIT["actions"]["stopInstances"]["parameters"]
    )
    assert exported["actions"]["settle"]["startAfter"] == ["stopInstances"]
    assert exported["roleArn"] == STOP_AND_WAIT["roleArn"]


def test_a_template_that_does_not_map_names_every_problem_and_creates_nothing(platform: Platform) -> None:
    template = {
        **STOP_AND_WAIT,
        "actions": {
            **STOP_AND_WAIT["actions"],
            "cpu": {
                "actionId": "aws:ec2:api-insufficient-instance-capacity-error",
                "targets": {"Roles": "r"},
            },
            "bad": {"actionId": "aws:fis:wait", "parameters": {"duration": "ten minutes"}},
        },
    }
    targets_before = platform.json("GET", "/targets")["items"]
    response = platform.api("POST", "/experiments/import", template)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    text = " ".join(e["message"] for e in errors)
    assert "aws:ec2:api-insufficient-instance-capacity-error" in text and "duration" in text
    assert any(e["field"].startswith("body.actions.bad") for e in errors), errors
    assert platform.json("GET", "/targets")["items"] == targets_before
    assert platform.json("GET", "/experiments")["items"] == []


# The user guide's examples, as tests/unit/test_fis.py has them, with their minutes made seconds,
# their ARNs naming resources made on the embedded AWS and no stop condition (those alarms are in
# another account): each is imported, run to completion with everything restored, and exported
# back as it came in.
REGION, ACCOUNT = "us-east-1", "123456789012"


def _from_user_guide(example: dict[str, Any], arns: dict[str, str] | None = None) -> dict[str, Any]:
    text = json.dumps(example).replace("PT2M", "PT2S").replace('\\"120\\"', '\\"2\\"')
    for theirs, ours in (arns or {}).items():
        text = text.replace(theirs, ours)
    template = {k: v for k, v in json.loads(text).items() if k not in ("roleArn", "tags")}
    return {**template, "stopConditions": [{"source": "none"}]}


def _arn(kind: str, resource_id: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/{resource_id}"


def _stop_by_count(platform: Platform) -> tuple[dict, Callable[[], bool]]:
    instances = platform.instances(4, {"env": "prod"})
    template = _from_user_guide(test_fis.STOP_BY_COUNT)
    return template, lambda: set(platform.states(instances).values()) == {"running"}


def _ssm_cpu_stress(platform: Platform) -> tuple[dict, Callable[[], bool]]:
    (instance,) = managed_instances(platform, 1, {"app": "web"})
    their_instance = test_fis.SSM_CPU_STRESS["targets"]["myInstance"]["resourceArns"][0]
    template = _from_user_guide(test_fis.SSM_CPU_STRESS, {their_instance: _arn("instance", instance)})
    return (
        template,
        lambda: [c["DocumentName"] for c in commands(platform, instance)] == ["AWSFIS-Run-CPU-Stress"],
    )


def _ecs_stop_task(platform: Platform) -> tuple[dict, Callable[[], bool]]:
    tasks = ecs_tasks(platform, 3, "service:web", {"app": "web"})
    template = _from_user_guide(test_fis.ECS_STOP_TASK)
    return template, lambda: list(task_states(platform, tasks).values()).count("STOPPED") == 1


def _disrupt_connectivity(platform: Platform) -> tuple[dict, Callable[[], bool]]:
    _, (subnet,) = subnets(platform, 1, {"tier": "cache"})
    original = acl_of(platform, subnet)
    their_subnet = test_fis.DISRUPT_CONNECTIVITY["targets"]["Subnets"]["resourceArns"][0]
    template = _from_user_guide(test_fis.DISRUPT_CONNECTIVITY, {their_subnet: _arn("subnet", subnet)})
    return template, lambda: acl_of(platform, subnet) == original and not blackhole_acls(platform)


def _reboot_db(platform: Platform) -> tuple[dict, Callable[[], bool]]:
    (db,) = db_instances(platform, 1, {"tier": "db"})
    template = {
        "description": "Reboot the database, then wait",
        "targets": {
            "Db": {"resourceType": "aws:rds:db", "resourceTags": {"tier": "db"}, "selectionMode": "ALL"}
        },
        "actions": {
            "RebootDb": {
                "actionId": "aws:rds:reboot-db-instances",
                "parameters": {"forceFailover": "false"},
                "targets": {"DBInstances": "Db"},
            },
            "Settle": {
                "actionId": "aws:fis:wait",
                "parameters": {"duration": "PT1S"},
                "startAfter": ["RebootDb"],
            },
        },
        "stopConditions": [{"source": "none"}],
    }
    rds = platform.session.client("rds")
    return (
        template,
        lambda: (
            rds.describe_db_instances(DBInstanceIdentifier=db)["DBInstances"][0]["DBInstanceStatus"]
            == "available"
        ),
    )


USER_GUIDE = {
    "stop-by-count": _stop_by_count,
    "ssm-cpu-stress": _ssm_cpu_stress,
    "ecs-stop-task": _ecs_stop_task,
    "disrupt-connectivity": _disrupt_connectivity,
    "rds-reboot": _reboot_db,
}


@pytest.mark.parametrize("example", sorted(USER_GUIDE))
def test_a_user_guide_template_runs_to_completion_and_exports_back(platform: Platform, example: str) -> None:
    template, settled = USER_GUIDE[example](platform)
    imported = platform.json("POST", "/experiments/import", template, expect=201, duration=20)
    experiment_id = imported["experiment"]["id"]

    run = platform.json("POST", f"/experiments/{experiment_id}/run", expect=202)
    result = platform.wait_for_result(run["result_id"], timeout=60)

    assert result["status"] == "completed", result
    assert {a["status"] for a in result["actions"].values()} == {"completed"}
    assert result["resources"] and all(r["after"] is not None for r in result["resources"])
    assert settled()
    exported = platform.json("GET", f"/experiments/{experiment_id}/export", format="fis", account=ACCOUNT)
    assert exported["targets"] == template["targets"]
    assert {name: a["actionId"] for name, a in exported["actions"].items()} == {
        name: a["actionId"] for name, a in template["actions"].items()
    }
    for name, action in template["actions"].items():  # what was given comes back (defaults added)
        given, back = action.get("parameters", {}), exported["actions"][name].get("parameters", {})
        for document in (given, back):  # a JSON string: compared as what it says
            if "documentParameters" in document:
                document["documentParameters"] = json.loads(document["documentParameters"]).items()
        assert given.pop("documentParameters", set()) <= back.pop("documentParameters", set()), name
        assert given.items() <= back.items(), (name, given, back)
