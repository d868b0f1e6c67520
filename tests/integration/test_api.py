"""The REST API through the local gateway and the real API handler, on the embedded AWS."""

from __future__ import annotations

import json
import re

import pytest

from chaosplane.api.body import MAX_DEPTH
from chaosplane.models import TargetType
from tests.conftest import TEAM, Platform

WEB = {"name": "web", "type": "ec2-instances", "selector": "app=web"}


def make_target(platform: Platform, **overrides: object) -> dict:
    return platform.json("POST", "/targets", {**WEB, **overrides}, expect=201)


def make_experiment(platform: Platform, target_id: str, **overrides: object) -> dict:
    body = {"name": "stop web", "type": "ec2-stop", "target": target_id, "duration": 30, **overrides}
    return platform.json("POST", "/experiments", body, expect=201)


def everything(platform: Platform) -> tuple:
    """A snapshot of all stored items, to prove that a rejected request changed nothing."""
    return (
        platform.json("GET", "/targets", limit=100)["items"],
        platform.json("GET", "/experiments", limit=100)["items"],
    )


def test_health(platform: Platform) -> None:
    assert platform.json("GET", "/health") == {"status": "ok"}


def test_target_crud(platform: Platform) -> None:
    created = make_target(platform, description="front end")
    assert created["id"] and created["created_at"] and created["type"] == "ec2-instances"
    assert platform.json("GET", f"/targets/{created['id']}") == created

    replaced = platform.json("PUT", f"/targets/{created['id']}", {**WEB, "selector": "app=web,tier=front"})
    assert replaced["selector"] == "app=web,tier=front"
    assert replaced["created_at"] == created["created_at"]
    assert replaced["updated_at"] > created["updated_at"]

    platform.json("DELETE", f"/targets/{created['id']}", expect=204)
    assert platform.api("GET", f"/targets/{created['id']}").status_code == 404


def test_an_eks_target_is_stored(platform: Platform) -> None:
    body = {
        "name": "pods",
        "type": "eks-pods",
        "cluster": "prod",
        "namespace": "shop",
        "selector": "app in (web,api)",
    }
    created = platform.json("POST", "/targets", body, expect=201)
    assert {k: created[k] for k in body} == body


def test_experiment_crud(platform: Platform) -> None:
    target = make_target(platform)
    platform.alarm("web-5xx")
    missing = {
        "name": "e",
        "type": "ec2-stop",
        "target": target["id"],
        "duration": 5,
        "stop_conditions": ["nope"],
    }
    response = platform.api("POST", "/experiments", missing)
    assert (
        response.status_code == 422
        and "existing CloudWatch alarms of team test: nope" in response.get_json()["message"]
    )
    created = make_experiment(platform, target["id"], selection="COUNT(1)", stop_conditions=["web-5xx"])
    assert created["status"] == "created"
    assert created["parameters"] == {"force": False}
    assert platform.json("GET", f"/experiments/{created['id']}") == created

    body = {"name": "reboot web", "type": "ec2-reboot", "target": target["id"], "duration": 5}
    replaced = platform.json("PUT", f"/experiments/{created['id']}", body)
    assert (replaced["type"], replaced["selection"], replaced["parameters"]) == ("ec2-reboot", "ALL", {})

    platform.json("DELETE", f"/experiments/{created['id']}", expect=204)
    assert platform.api("GET", f"/experiments/{created['id']}").status_code == 404
    assert platform.api("DELETE", f"/experiments/{created['id']}").status_code == 404


def test_lists_paginate_newest_first(platform: Platform) -> None:
    ids = [make_target(platform, name=f"t{n}")["id"] for n in range(5)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        query = {"limit": 2} | ({"next_token": token} if token else {})
        page = platform.json("GET", "/targets", **query)
        pages += 1
        seen += [item["id"] for item in page["items"]]
        token = page["next_token"]
        if token is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3  # 2 + 2 + 1, and no empty trailing page


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/targets", {"next_token": "garbage!"}),
        ("/targets", {"next_token": "eyJ4IjogMX0"}),
        # a well-formed token whose values are not DynamoDB strings
        ("/targets", {"next_token": "eyJjcmVhdGVkX2F0IjogIngiLCAiaWQiOiAieCIsICJzY29wZSI6ICJ0ZXN0In0"}),
        ("/targets", {"limit": 0}),
        ("/targets", {"limit": 1000}),
        ("/experiments", {"limit": "many"}),
    ],
)
def test_bad_list_parameters_are_4xx(platform: Platform, path: str, query: dict) -> None:
    response = platform.api("GET", path, **query)
    assert response.status_code in (400, 422)
    assert response.get_json()["message"]


@pytest.mark.parametrize(
    ("body", "raw", "field"),
    [
        (None, "[1, 2]", "body"),
        ({"name": "x", "type": "ec2-instances"}, None, "body"),
        ({"name": "x", "type": "ec2-instances", "selector": "app=web", "owner": "me"}, None, "body.owner"),
        ({"name": 5, "type": "ec2-instances", "selector": "app=web"}, None, "body.name"),
        ({"name": "x", "type": "dynamodb-tables", "selector": "app=web"}, None, "body.type"),
        ({"name": "x", "type": "ec2-instances", "selector": "app in (web"}, None, "body.selector"),
    ],
)
def test_bad_targets_get_field_level_422_and_change_nothing(
    platform: Platform, body: dict | None, raw: str | None, field: str
) -> None:
    make_target(platform)
    before = everything(platform)
    response = platform.api("POST", "/targets", body, raw=raw)
    assert response.status_code == 422, response.get_data(as_text=True)
    problems = response.get_json()["errors"]
    assert any(p["field"].startswith(field) for p in problems), problems
    assert all(p["message"] for p in problems)
    assert everything(platform) == before


def test_bad_experiments_are_rejected_and_change_nothing(platform: Platform) -> None:
    target = make_target(platform)
    eks = platform.json(
        "POST",
        "/targets",
        {"name": "p", "type": "eks-pods", "cluster": "c", "namespace": "n", "selector": "a=b"},
        expect=201,
    )
    before = everything(platform)
    cases = [
        ({"name": "e", "type": "ec2-stop", "target": target["id"], "duration": 0}, "body.duration"),
        (
            {"name": "e", "type": "ec2-stop", "target": target["id"], "duration": 5, "selection": "MOST"},
            "body.selection",
        ),
        (
            {
                "name": "e",
                "type": "ec2-stop",
                "target": target["id"],
                "duration": 5,
                "parameters": {"force": "yes"},
            },
            "body",
        ),
    ]
    for body, field in cases:
        response = platform.api("POST", "/experiments", body)
        assert response.status_code == 422, body
        assert any(p["field"].startswith(field) for p in response.get_json()["errors"]), response.get_json()

    unknown = platform.api(
        "POST",
        "/experiments",
        {"name": "e", "type": "ec2-stop", "target": "5b0c8f3e-3a5d-4c55-9a8e-5c9d3f1f8b11", "duration": 5},
    )
    assert unknown.status_code == 422 and "does not exist" in unknown.get_json()["message"]
    assert [e["field"] for e in unknown.get_json()["errors"]] == ["body.target"]  # a form shows it there

    wrong_type = platform.api(
        "POST", "/experiments", {"name": "e", "type": "ec2-stop", "target": eks["id"], "duration": 5}
    )
    assert wrong_type.status_code == 422
    assert "acts on ec2-instances targets" in wrong_type.get_json()["message"]
    assert [e["field"] for e in wrong_type.get_json()["errors"]] == ["body.target"]
    assert everything(platform) == before


def nested(levels: int) -> object:
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


DEEP_ARRAYS = "[" * 5000 + "]" * 5000  # 10 KB: made Python's JSON decoder raise RecursionError (a 502)
DEEP_OBJECTS = '{"a": ' * 5000 + "1" + "}" * 5000
JUST_TOO_DEEP = json.dumps({"name": "x", "description": nested(MAX_DEPTH)})  # MAX_DEPTH + 1 levels


def state(platform: Platform) -> tuple:
    """`everything`, and the team's safety state and notification settings."""
    return (*everything(platform), platform.json("GET", "/safety"), platform.json("GET", "/notifications"))


def test_bodies_that_are_not_json_or_nest_too_deep_are_400_on_every_operation_taking_one(
    platform: Platform,
) -> None:
    # Given a target, an experiment and a schedule to name in paths
    target = make_target(platform)
    experiment = make_experiment(platform, target["id"])
    schedule = platform.json(
        "POST", f"/experiments/{experiment['id']}/schedules", {"expression": "rate(1 day)"}, expect=201
    )
    ids = {"target_id": target["id"], "experiment_id": experiment["id"], "schedule_id": schedule["id"]}
    ids["team"] = TEAM
    operations = [
        (method.upper(), path.format(**ids))
        for path, methods in platform.json("GET", "/openapi.json")["paths"].items()
        for method, operation in methods.items()
        if "requestBody" in operation
    ]
    assert len(operations) >= 13, operations  # every create and replace, the settings, halt, release
    before = state(platform)
    for method, path in operations:
        for raw in ["{not json", '{"name": "x",}', DEEP_ARRAYS, DEEP_OBJECTS, JUST_TOO_DEEP]:
            # When the body is malformed or too deep
            response = platform.api(method, path, raw=raw)
            # Then the answer is a 400 in the usual error shape, naming the body
            assert response.status_code == 400, (method, path, raw[:20], response.get_data(as_text=True))
            answer = response.get_json()
            assert answer["message"] and [e["field"] for e in answer["errors"]] == ["body"], answer
    # And nothing changed (no halt engaged, no channel set, nothing created or replaced)
    assert state(platform) == before


def test_a_body_as_deep_as_the_bound_is_parsed_and_validated(platform: Platform) -> None:
    deep_enough = json.dumps({**WEB, "description": nested(MAX_DEPTH - 1)})  # MAX_DEPTH levels in all
    response = platform.api("POST", "/targets", raw=deep_enough)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert [e["field"] for e in response.get_json()["errors"]] == ["body.description"]


def test_a_known_path_asked_with_a_method_it_lacks_is_405_naming_the_ones_it_has(platform: Platform) -> None:
    paths = platform.json("GET", "/openapi.json")["paths"]
    for index, (path, methods) in enumerate(paths.items()):
        declared = sorted(m.upper() for m in methods)
        url = re.sub(r"\{\w+\}", "5b0c8f3e-3a5d-4c55-9a8e-5c9d3f1f8b11", path)
        # A caller per path: the local gateway's burst limit is not what this test is about.
        token = platform.token(subject=f"walker-{index}")
        for method in sorted({"GET", "POST", "PUT", "DELETE", "PATCH", "TRACE"} - set(declared)):
            response = platform.api(method, url, {}, token=token)
            assert response.status_code == 405, (method, path, response.get_data(as_text=True))
            assert sorted(response.headers["Allow"].split(", ")) == declared, (method, path)
            assert response.get_json()["message"] == f"{method} is not allowed on {url}"
    assert platform.api("PATCH", "/no/such/route").status_code == 404  # an unknown path stays 404


def test_oversize_bodies_are_413(platform: Platform) -> None:
    before = everything(platform)
    response = platform.api("POST", "/targets", {**WEB, "description": "x" * 70_000})
    assert response.status_code == 413
    assert everything(platform) == before


def test_unknown_ids_and_routes_are_404(platform: Platform) -> None:
    for path in [
        "/targets/nope",
        "/experiments/5b0c8f3e-3a5d-4c55-9a8e-5c9d3f1f8b11",
        "/results/x",
        "/experiments/x/results",
        "/no/such/route",
    ]:
        response = platform.api("GET", path)
        assert response.status_code == 404, path
        assert response.get_json()["message"]
    assert platform.api("POST", "/experiments/nope/run").status_code == 404
    assert platform.api("PUT", "/targets/nope", WEB).status_code == 404


def test_a_target_in_use_cannot_be_deleted_and_its_type_cannot_change(platform: Platform) -> None:
    target = make_target(platform)
    experiment = make_experiment(platform, target["id"])
    response = platform.api("DELETE", f"/targets/{target['id']}")
    assert response.status_code == 409 and experiment["id"] in response.get_json()["message"]
    changed = platform.api(
        "PUT",
        f"/targets/{target['id']}",
        {"name": "p", "type": "eks-pods", "cluster": "c", "namespace": "n", "selector": "a=b"},
    )
    assert changed.status_code == 422
    assert platform.json("GET", f"/targets/{target['id']}") == target


def test_openapi_and_docs_are_served_without_external_urls(platform: Platform) -> None:
    spec = platform.json("GET", "/openapi.json")
    assert spec["openapi"].startswith("3.")
    for path in [
        "/targets",
        "/targets/{target_id}",
        "/experiments",
        "/experiments/{experiment_id}/run",
        "/experiments/{experiment_id}/stop",
        "/experiments/{experiment_id}/results",
        "/results/{result_id}",
    ]:
        assert path in spec["paths"], path
    # Target and experiment bodies are unions tagged by `type`: each type's fields are in the document
    schemas = spec["components"]["schemas"]
    body = spec["paths"]["/targets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["propertyName"] == "type" and len(body["oneOf"]) == len(TargetType)
    assert set(schemas["EksPodsTarget"]["required"]) >= {"namespace", "cluster"}
    assert schemas["Ec2StopExperiment"]["properties"]["parameters"]["$ref"].endswith("/Ec2StopParameters")
    assert schemas["Ec2TerminateExperiment"]["properties"]["allow_irreversible"]["const"] is True
    assert spec["paths"]["/targets/{target_id}"]["get"]["parameters"][0]["schema"]["format"] == "uuid"
    docs = platform.api("GET", "/docs")
    assert docs.status_code == 200 and "swagger" in docs.get_data(as_text=True).lower()
    html = docs.get_data(as_text=True)
    for marker in ('src="http', "src='http", 'href="http', "unpkg.com", "cdn.jsdelivr"):
        assert marker not in html


def test_odd_ids_and_types_are_4xx_never_5xx(platform: Platform) -> None:
    target = make_target(platform)
    for path in [f"/targets/{'x' * 3000}", "/results/%F0%9F%92%A5", "/experiments/a%20b"]:
        assert platform.api("GET", path).status_code == 404, path
    for duration in [True, "5", 5.5, 10**20]:
        body = {"name": "e", "type": "ec2-stop", "target": target["id"], "duration": duration}
        assert platform.api("POST", "/experiments", body).status_code == 422, duration


def test_a_target_is_deletable_once_no_experiment_uses_it(platform: Platform) -> None:
    first, second = make_target(platform, name="first"), make_target(platform, name="second")
    experiment = make_experiment(platform, first["id"])
    body = {k: experiment[k] for k in ("name", "type", "duration")}
    platform.json("PUT", f"/experiments/{experiment['id']}", {**body, "target": second["id"]})
    platform.json("DELETE", f"/targets/{first['id']}", expect=204)  # the experiment moved away
    assert platform.api("DELETE", f"/targets/{second['id']}").status_code == 409
    platform.json("DELETE", f"/experiments/{experiment['id']}", expect=204)
    platform.json("DELETE", f"/targets/{second['id']}", expect=204)
