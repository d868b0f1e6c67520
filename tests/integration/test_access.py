"""Authentication, roles, teams, throttling and audit, through the real authorizer and handlers."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from werkzeug.test import Client

from chaosplane.api import build_app
from chaosplane.api.access import PUBLIC, ROUTE_ROLES
from chaosplane.auth import Role
from chaosplane.local.gateway import LocalGateway
from chaosplane.settings import load_settings
from chaosplane.store import Store
from chaosplane.wiring.api import build_scheduling
from chaosplane.wiring.runs import build_runs
from tests.conftest import Platform

MISSING = str(uuid.uuid4())


def test_every_route_has_a_minimum_role_and_every_rule_a_route(platform: Platform) -> None:
    settings = load_settings()
    app = build_app(Store(settings), build_runs(settings), scheduling=build_scheduling(settings))
    registered = {(route.method, route.path) for route in app.routes()}  # type: ignore[attr-defined]
    assert registered - set(ROUTE_ROLES) == set(), "routes without an access rule"
    assert set(ROUTE_ROLES) - registered == set(), "access rules for routes that do not exist"


# A file each public route with a path parameter serves (the dashboard's static files).
PUBLIC_EXAMPLES = {
    "/ui": "/ui/",
    "/ui/<name>": "/ui/app.css",
    "/ui/js/<name>": "/ui/js/app.js",
    "/ui/vendor/<name>": "/ui/vendor/bootstrap.min.css",
    "/ui/vendor/fonts/<name>": "/ui/vendor/fonts/bootstrap-icons.woff2",
}


def test_public_routes_need_no_token(platform: Platform) -> None:
    for (method, path), role in ROUTE_ROLES.items():
        if role is PUBLIC:
            assert platform.api(method, PUBLIC_EXAMPLES.get(path, path), token="").status_code == 200, path


def test_no_token_or_a_bad_one_is_401_with_a_short_reason(platform: Platform) -> None:
    cases = [
        ("", "missing bearer token"),
        ("not-a-token", "malformed token"),
        (platform.token(ttl_seconds=-120), "token expired"),
        (platform.token() + "x", "invalid signature"),
    ]
    for token, reason in cases:
        response = platform.api("GET", "/targets", token=token)
        assert response.status_code == 401
        assert response.get_json() == {"message": "Unauthorized", "reason": reason}


def _concrete(path: str) -> str:
    for name in ("target_id", "experiment_id", "result_id"):
        path = path.replace(f"<{name}>", MISSING)
    return path


@pytest.mark.parametrize(
    ("method", "rule", "needed"), [(m, r, n) for (m, r), n in ROUTE_ROLES.items() if n is not PUBLIC]
)
def test_role_by_route_matrix(platform: Platform, method: str, rule: str, needed: Role) -> None:
    for role in Role:
        body = {} if method in ("POST", "PUT") else None
        response = platform.api(method, _concrete(rule), body, token=platform.token(role))
        if role < needed:
            assert response.status_code == 403, (role, response.get_data(as_text=True))
            assert needed.label in response.get_json()["message"]
        else:
            assert response.status_code not in (401, 403), (role, response.get_data(as_text=True))


def test_a_forbidden_request_learns_nothing_from_validation(platform: Platform) -> None:
    response = platform.api("POST", "/targets", {"bogus": True}, token=platform.token(Role.VIEWER))
    assert response.status_code == 403 and "errors" not in response.get_json()


def test_teams_never_see_or_touch_each_others_items(platform: Platform) -> None:
    platform.instances(1, {"app": "web"}, team="blue")
    platform.loosen_policy("blue")
    blue, red = platform.token(team="blue"), platform.token(team="red")
    target = platform.json(
        "POST",
        "/targets",
        {"name": "t", "type": "ec2-instances", "selector": "app=web"},
        token=blue,
        expect=201,
    )
    body = {"name": "e", "type": "ec2-stop", "target": target["id"], "duration": 600}
    experiment = platform.json("POST", "/experiments", body, token=blue, expect=201)
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", token=blue, expect=202)
    assert target["team"] == experiment["team"] == "blue"

    for path in ["/targets", "/experiments", "/audit"]:
        assert platform.json("GET", path, token=red)["items"] == []
    assert platform.json("GET", "/safety", token=red)["policy"]["max_percent"] == 50  # blue's is not red's
    not_found = [
        ("GET", f"/targets/{target['id']}", None),
        ("PUT", f"/targets/{target['id']}", {"name": "x", "type": "ec2-instances", "selector": "a=b"}),
        ("DELETE", f"/targets/{target['id']}", None),
        ("GET", f"/experiments/{experiment['id']}", None),
        ("PUT", f"/experiments/{experiment['id']}", {**body, "duration": 5}),
        ("DELETE", f"/experiments/{experiment['id']}", None),
        ("POST", f"/experiments/{experiment['id']}/run", None),
        ("POST", f"/experiments/{experiment['id']}/stop", None),
        ("GET", f"/experiments/{experiment['id']}/results", None),
        ("GET", f"/results/{run['result_id']}", None),
    ]
    for method, path, payload in not_found:
        response = platform.api(method, path, payload, token=red)
        assert response.status_code == 404, (method, path, response.get_data(as_text=True))
    # Each probe of another team's ids is in red's trail, with the reason it was refused...
    probes = [e for e in platform.json("GET", "/audit", token=red, limit=100)["items"] if e["status"] == 404]
    assert sorted((e["method"], e["path"]) for e in probes) == sorted((m, p) for m, p, _ in not_found)
    assert all("not found" in e["reason"] and e["outcome"] == "rejected" for e in probes), probes
    # ...and nothing of it in blue's.
    assert {e["principal"] for e in platform.json("GET", "/audit", token=blue, limit=100)["items"]} == {
        "tester"
    }
    # Nor can red aim its own experiment at blue's target.
    stolen = platform.api("POST", "/experiments", body, token=red)
    assert stolen.status_code == 422 and "does not exist" in stolen.get_json()["message"]

    # Blue's items are untouched by all of that.
    assert platform.json("GET", f"/experiments/{experiment['id']}", token=blue)["duration"] == 600
    platform.json("POST", f"/experiments/{experiment['id']}/stop", token=blue, expect=202)
    assert platform.wait_for_result(run["result_id"], token=blue)["status"] == "stopped"


def test_mutations_and_denials_are_audited_for_the_team_admins(platform: Platform) -> None:
    operator = platform.token(Role.OPERATOR, subject="olive")
    viewer = platform.token(Role.VIEWER, subject="victor")
    target = platform.json(
        "POST",
        "/targets",
        {"name": "t", "type": "ec2-instances", "selector": "a=b"},
        token=operator,
        expect=201,
    )
    assert platform.api("DELETE", f"/targets/{target['id']}", token=operator).status_code == 403
    assert platform.api("POST", "/targets", {"name": ""}, token=operator).status_code == 422
    assert platform.api("GET", "/audit", token=viewer).status_code == 403
    platform.json("GET", "/targets", token=viewer)  # reads that are allowed are not audited

    entries = platform.json("GET", "/audit")["items"]
    summary = [(e["principal"], e["method"], e["route"], e["status"], e["outcome"]) for e in entries]
    assert summary == [
        ("victor", "GET", "/audit", 403, "denied"),
        ("olive", "POST", "/targets", 422, "rejected"),
        ("olive", "DELETE", "/targets/{target_id}", 403, "denied"),
        ("olive", "POST", "/targets", 201, "allowed"),
        ("tester", "PUT", "/safety/policy", 200, "allowed"),  # the fixture's loosened policy
    ]
    assert entries[2]["resource_id"] == entries[3]["resource_id"] == target["id"]
    assert "requires the admin role" in entries[0]["reason"] and entries[3]["reason"] is None
    assert entries[1]["reason"] == "request is invalid"
    assert {e["team"] for e in entries} == {"test"}
    page = platform.json("GET", "/audit", limit=3)
    assert len(page["items"]) == 3 and page["next_token"]
    rest = platform.json("GET", "/audit", limit=3, next_token=page["next_token"])
    assert [e["request_id"] for e in page["items"] + rest["items"]] == [e["request_id"] for e in entries]
    assert rest["next_token"] is None


def test_a_request_whose_audit_entry_cannot_be_written_is_answered_500_and_logged(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    dynamodb = platform.session.client("dynamodb")
    name = platform.deployment.tables["AuditTable"]
    table = dynamodb.describe_table(TableName=name)["Table"]
    dynamodb.delete_table(TableName=name)  # every write of an entry now fails, retries and all
    try:
        response = platform.api("POST", "/targets", {"name": "t", "type": "ec2-instances", "selector": "a=b"})
    finally:
        dynamodb.create_table(
            TableName=name,
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
    assert response.status_code == 500
    message = response.get_json()["message"]
    assert message.startswith("the audit trail could not record this request") and "check" in message
    # The entry is in the function's log whole, so the change can still be traced.
    (logged,) = [
        r.getMessage() for r in caplog.records if "audit entry could not be written" in r.getMessage()
    ]
    assert '"route":"/targets"' in logged and '"status":201' in logged and '"principal":"tester"' in logged


def test_the_local_gateway_throttles_each_method_for_every_caller_as_api_gateway_does(
    platform: Platform,
) -> None:
    now = [1000.0]
    config = dataclasses.replace(platform.deployment.api(), rate_limit=1.0, burst_limit=3)
    gateway = Client(LocalGateway(platform.session.client("lambda"), config, clock=lambda: now[0]))
    alice = {"Authorization": f"Bearer {platform.token(subject='alice')}"}
    bob = {"Authorization": f"Bearer {platform.token(subject='bob')}"}
    forged = {"Authorization": "Bearer not-a-token"}

    # Unauthenticated requests spend the method's bucket too: API Gateway throttles first...
    assert [gateway.get("/targets", headers=forged).status_code for _ in range(3)] == [401, 401, 401]
    throttled = gateway.get("/targets", headers=alice)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert throttled.get_json() == {"message": "Too Many Requests"}
    # ...and one bucket serves every caller of a method (per-client limits would need usage plans).
    # Every route but a few is the one method ANY /{proxy+}, so it is one bucket for the whole API.
    assert gateway.get("/targets", headers=bob).status_code == 429
    assert gateway.post("/safety/release", headers=alice, json={}).status_code == 429
    # The emergency stop has a bucket of its own, from its MethodSettings, and is still answered.
    assert config.method_throttles[("POST", "/safety/halt")] == (10.0, 20)
    assert gateway.post("/safety/halt", headers=alice, json={}).status_code == 200
    assert gateway.delete("/safety/halt", headers=alice).status_code == 405  # its ANY: the API answers
    now[0] += 2.0  # the stage's rate refills one token a second
    assert gateway.post("/safety/release", headers=alice, json={}).status_code == 200
    assert gateway.get("/targets", headers=alice).status_code == 200
    assert gateway.get("/targets", headers=bob).status_code == 429


def _b64(data: dict) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_the_jwt_attacks_are_refused_by_the_real_authorizer_behind_the_gateway(platform: Platform) -> None:
    import time

    import jwt

    secret = platform.secret()
    now = int(time.time())
    good = {"sub": "mallory", "roles": ["admin"], "team": "test", "iat": now, "exp": now + 600}
    attacks = {
        "alg none": (
            _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(good) + ".",
            "token algorithm not allowed",
        ),
        "other algorithm": (jwt.encode(good, secret, algorithm="HS512"), "token algorithm not allowed"),
        "wrong key": (
            jwt.encode(good, "not-the-secret-not-the-secret-1234", algorithm="HS256"),
            "invalid signature",
        ),
        "expired": (jwt.encode({**good, "exp": now - 120}, secret, algorithm="HS256"), "token expired"),
        "not yet valid": (
            jwt.encode({**good, "nbf": now + 120}, secret, algorithm="HS256"),
            "token not yet valid",
        ),
        "no exp": (
            jwt.encode({k: v for k, v in good.items() if k != "exp"}, secret, algorithm="HS256"),
            "missing claim exp",
        ),
        "no sub": (
            jwt.encode({k: v for k, v in good.items() if k != "sub"}, secret, algorithm="HS256"),
            "missing claim sub",
        ),
        "unknown role": (
            jwt.encode({**good, "roles": ["root"]}, secret, algorithm="HS256"),
            "no chaosplane role in token",
        ),
        "no team": (
            jwt.encode({k: v for k, v in good.items() if k != "team"}, secret, algorithm="HS256"),
            "no team in token",
        ),
        "garbage": ("a.b.c", "malformed token"),
        # `*` is the record of the platform-wide emergency stop: a token of that "team" would hold it.
        "team *": (jwt.encode({**good, "team": "*"}, secret, algorithm="HS256"), "not a team name"),
        "folded role": (
            jwt.encode({**good, "roles": ["adm\u0131n"]}, secret, algorithm="HS256"),
            "no chaosplane role in token",
        ),
    }
    before = platform.json("GET", "/targets")["items"]
    for name, (token, reason) in attacks.items():
        response = platform.api(
            "POST", "/targets", {"name": "x", "type": "ec2-instances", "selector": "a=b"}, token=token
        )
        assert response.status_code == 401, name
        assert response.get_json() == {"message": "Unauthorized", "reason": reason}, name
    assert platform.json("GET", "/targets")["items"] == before  # no attack changed anything


def test_every_request_has_an_access_log_line_in_the_stage_s_format_401s_and_why_included(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    caplog.set_level("INFO", logger="gateway")
    assert platform.deployment.api().access_log_format is not None  # ApiAccessLogs defaults to on
    platform.api("GET", "/targets", token="forged")
    platform.api("GET", "/audit", token=platform.token(Role.VIEWER, subject="val"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway"]
    refused, forbidden = lines[-2:]
    assert refused["status"] == "401" and refused["reason"] == "malformed token"
    assert refused["principal"] == "anonymous" and refused["errorType"] == "ACCESS_DENIED"
    assert refused["resource"] == "/{proxy+}" and refused["path"] == "/v1/targets"
    assert forbidden["status"] == "403" and (forbidden["principal"], forbidden["role"]) == ("val", "viewer")
    assert forbidden["team"] == "test" and forbidden["reason"] == "-"
    assert all(line["requestId"] != "-" and line["latencyMs"] != "-" for line in lines)
