"""Team boundaries below the API, black-box over HTTP against the local platform: two teams, and
resources of each, of neither, and of the platform itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chaosplane.egress import Egress, Refused, check_url
from chaosplane.local.template import ACCOUNT_ID
from chaosplane.settings import load_settings
from chaosplane.tenancy import SESSION_TEAM_TAG, Outside
from chaosplane.wiring.clients import Clients
from tests.conftest import Platform, put_alarm, wait_until
from tests.integration.test_cloud_faults import functions, reserved
from tests.unit.test_egress import SSRF as EGRESS_SSRF

EVERYTHING = "!nope"  # matches every resource without a `nope` tag: all of them


def _team(platform: Platform, team: str) -> str:
    platform.loosen_policy(team, max_percent=100, max_resources=100)
    return platform.token(team=team)


def _experiment(platform: Platform, token: str, kind: str, fault: str, **target: Any) -> dict:
    made = platform.json("POST", "/targets", {"name": "all", "type": kind, **target}, token=token, expect=201)
    body = {"name": "all", "type": fault, "target": made["id"], "duration": 2, "selection": "ALL"}
    return platform.json("POST", "/experiments", body, token=token, expect=201)


def test_a_match_everything_target_never_selects_lists_or_touches_another_team_s_resources(
    platform: Platform,
) -> None:
    red = _team(platform, "red")
    reds = platform.instances(2, {"app": "shop"}, team="red")
    blues = platform.instances(2, {"app": "shop"}, team="blue")
    nobodys = platform.instances(1, {"app": "shop"}, team=None)
    experiment = _experiment(platform, red, "ec2-instances", "ec2-stop", selector=EVERYTHING)

    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview", token=red)

    assert sorted(r["id"] for r in preview["selected"]) == sorted(reds)
    assert preview["eligible_not_selected"] == [] and preview["excluded"] == []
    assert preview["outside"] == {Outside.BOUNDARY.value: 3}
    shown = str(preview)
    assert not any(i in shown for i in blues + nobodys) and "blue" not in shown

    run = platform.json(
        "POST", f"/experiments/{experiment['id']}/run", {"plan_id": preview["plan_id"]}, token=red, expect=202
    )
    result = platform.wait_for_result(run["result_id"], token=red, timeout=60)

    assert result["status"] == "completed"
    assert sorted(r["id"] for r in result["resources"]) == sorted(reds)
    assert all(r["after"] in ("stopping", "stopped") for r in result["resources"])  # red's were hit...
    assert platform.states(blues + nobodys) == {i: "running" for i in blues + nobodys}  # ...nothing else
    assert platform.states(reds) == {i: "running" for i in reds}  # and red's are back


def test_another_team_s_resource_ids_are_refused_and_left_alone(platform: Platform) -> None:
    red = _team(platform, "red")
    (blues,) = platform.instances(1, {"app": "shop"}, team="blue")
    experiment = _experiment(platform, red, "ec2-instances", "ec2-stop", resource_ids=[blues])

    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview", token=red)
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", token=red, expect=202)
    result = platform.wait_for_result(run["result_id"], token=red, timeout=60)

    refusal = "1 of the target's resource ids are not the team's to act on"
    assert preview["selected"] == [] and refusal in preview["verdict"]["reasons"]
    assert result["status"] == "failed" and refusal in result["error"]
    assert platform.states([blues]) == {blues: "running"}


def test_the_platform_s_own_functions_are_never_faulted_even_by_an_account_boundary_team(
    platform: Platform,
) -> None:
    red = _team(platform, "red")
    admin = platform.token(team="platform")
    settings = platform.json("PUT", "/teams/red", {"boundary": "account"}, token=admin)
    assert (settings["team"], settings["boundary"], settings["environments"]) == ("red", "account", [])
    functions(platform, ["shop-api"], {"app": "shop"})  # red-tagged; but the account is red's anyway
    own = [f["FunctionName"] for f in platform.session.client("lambda").list_functions()["Functions"]]
    platform_functions = [name for name in own if name.startswith("chaosplane-")]
    assert "chaosplane-ExecutorFunction" in platform_functions
    experiment = _experiment(platform, red, "lambda-functions", "lambda-throttle", selector=EVERYTHING)

    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview", token=red)

    assert [r["id"] for r in preview["selected"]] == ["shop-api"]
    assert preview["outside"] == {Outside.PLATFORM.value: len(platform_functions)}
    run = platform.json(
        "POST", f"/experiments/{experiment['id']}/run", {"plan_id": preview["plan_id"]}, token=red, expect=202
    )
    assert platform.wait_for_result(run["result_id"], token=red, timeout=60)["status"] == "completed"
    assert all(reserved(platform, name) is None for name in platform_functions)


def test_another_team_s_alarm_is_refused_as_a_stop_condition_or_probe_and_nothing_is_saved(
    platform: Platform,
) -> None:
    red = _team(platform, "red")
    platform.instances(1, {"app": "alarmed"}, team="red")
    platform.alarm("red-5xx", team="red")
    platform.alarm("blue-5xx", team="blue")
    platform.alarm("nobody-5xx", team=None)
    made = platform.json(
        "POST",
        "/targets",
        {"name": "a", "type": "ec2-instances", "selector": "app=alarmed"},
        token=red,
        expect=201,
    )
    body = {"name": "a", "type": "ec2-stop", "target": made["id"], "duration": 2}
    before = platform.json("GET", "/experiments", token=red)["items"]
    for foreign in ("blue-5xx", "nobody-5xx"):
        for extra in ({"stop_conditions": [foreign]}, {"probes": [_alarm_probe(foreign)]}):
            refused = platform.api("POST", "/experiments", {**body, **extra}, token=red)
            assert refused.status_code == 422, refused.get_data(as_text=True)
            # Said exactly as for a missing alarm: whose it is, is not told.
            assert f"existing CloudWatch alarms of team red: {foreign}" in refused.get_json()["message"]
    assert platform.json("GET", "/experiments", token=red)["items"] == before
    own = {"stop_conditions": ["red-5xx"], "probes": [_alarm_probe("red-5xx")]}
    platform.json("POST", "/experiments", {**body, **own}, token=red, expect=201)


def _alarm_probe(alarm: str) -> dict[str, Any]:
    return {"name": "quiet", "source": "cloudwatch-alarm", "alarm": alarm, "mode": "before"}


def test_a_team_s_boundary_is_set_by_platform_admins_and_read_by_the_team_s(platform: Platform) -> None:
    red, blue, admin = (
        platform.token(team="red"),
        platform.token(team="blue"),
        platform.token(team="platform"),
    )

    assert platform.json("GET", "/teams/red", token=red) == {  # the default
        "team": "red",
        "boundary": "tag",
        "environments": [],
        "external_id": None,
    }
    assert platform.api("PUT", "/teams/red", {"boundary": "account"}, token=red).status_code == 404
    assert platform.api("GET", "/teams/red", token=blue).status_code == 404
    for bad in [{"boundary": "galaxy"}, {"boundary": "account", "extra": 1}, []]:
        assert platform.api("PUT", "/teams/red", bad, token=admin).status_code == 422
    assert platform.api("PUT", "/teams/*", {"boundary": "account"}, token=admin).status_code == 404
    assert platform.json("GET", "/teams/red", token=admin)["boundary"] == "tag"  # no refusal changed it


def test_a_team_s_session_is_the_team_role_assumed_with_the_team_as_its_session_tag(
    platform: Platform,
) -> None:
    role = platform.deployment.environment["TEAM_FAULT_ROLE_ARN"]
    assert role.endswith(":role/chaosplane-team-faults")  # the name the executor's policy allows
    own = Clients(load_settings())
    as_red = own.assuming(role, session_name="chaosplane-red", tags={SESSION_TEAM_TAG: "red"})

    assert as_red.sts.get_caller_identity()["Arn"].endswith(
        ":assumed-role/chaosplane-team-faults/chaosplane-red"
    )
    assert own.sts.get_caller_identity()["Arn"] != as_red.sts.get_caller_identity()["Arn"]


def _loopback(url: str) -> bool:
    try:
        check_url(url.replace("https://", "http://"), Egress.LOCAL)
    except Refused:
        return False
    return True


# Every notation of an address a tenant's URL must never reach (tests/unit/test_egress.py has the
# rules); the local platform allows loopback, so these are the others, in plain http as it allows.
SSRF = [url.replace("https://", "http://") for url in EGRESS_SSRF if not _loopback(url)]


@pytest.mark.parametrize("url", SSRF)
def test_every_ssrf_notation_is_refused_with_422_and_nothing_is_created(platform: Platform, url: str) -> None:
    hook = {"url": url, "method": "POST"}
    webhook = {"inject": hook, "rollback": hook, "signing_secret": "s" * 32}
    endpoint = platform.api("POST", "/targets", {"name": "t", "type": "http-endpoint", "webhook": webhook})
    web = platform.json(
        "POST", "/targets", {"name": "w", "type": "ec2-instances", "selector": "a=b"}, expect=201
    )
    probe = {"name": "p", "source": "http", "url": url}
    experiment = {"name": "e", "type": "ec2-stop", "target": web["id"], "duration": 60, "probes": [probe]}
    probed = platform.api("POST", "/experiments", experiment)

    assert (endpoint.status_code, probed.status_code) == (422, 422), url
    assert [t["id"] for t in platform.json("GET", "/targets")["items"]] == [web["id"]]
    assert platform.json("GET", "/experiments")["items"] == []


SECOND_ACCOUNT = "222222222222"
STAGING_ROLE = f"arn:aws:iam::{SECOND_ACCOUNT}:role/chaosplane-target-chaosplane"  # infra/target-account.yaml
STAGING = {
    "name": "staging",
    "account_id": SECOND_ACCOUNT,
    "regions": ["eu-west-1"],
    "role_arn": STAGING_ROLE,
}


def _second_account(platform: Platform, external_id: str, region: str = "eu-west-1") -> Any:
    """A session in the second account, as its role gives one (moto keeps each account apart)."""
    import boto3

    found = platform.session.client("sts").assume_role(
        RoleArn=STAGING_ROLE, RoleSessionName="test-setup", ExternalId=external_id
    )["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=found["AccessKeyId"],
        aws_secret_access_key=found["SecretAccessKey"],
        aws_session_token=found["SessionToken"],
        region_name=region,
    )


def _far_instances(ec2: Any) -> list[str]:
    """Two of red's instances (app=far) where `ec2` is: their ids, sorted."""
    tags = [{"Key": "app", "Value": "far"}, {"Key": "chaosplane/team", "Value": "red"}]
    made = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=2,
        MaxCount=2,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return sorted(i["InstanceId"] for i in made["Instances"])


def test_a_team_s_run_faults_instances_in_its_other_account_and_region_and_only_there(
    platform: Platform,
) -> None:
    red, admin = _team(platform, "red"), platform.token(team="platform")
    staging = STAGING
    # A platform admin gives red its staging account; the answer carries the ExternalId to trust.
    view = platform.json("PUT", "/teams/red", {"environments": [staging], "external_id": "mine"}, token=admin)
    external_id = view["external_id"]
    assert view["environments"] == [staging] and external_id and external_id != "mine"
    assert (
        platform.json("PUT", "/teams/red", {"environments": [staging]}, token=admin)["external_id"]
        == external_id
    )
    ec2 = _second_account(platform, external_id).client("ec2")
    far = _far_instances(ec2)
    near = platform.instances(2, {"app": "far"}, team="red")  # the same tags, in the platform's account

    # A target names an environment the team has, and one of its Regions...
    body = {"name": "far", "type": "ec2-instances", "selector": "app=far"}
    for wrong, field in (
        ({"environment": "prod"}, "environment"),
        ({"environment": "staging", "region": "us-west-2"}, "region"),
    ):
        refused = platform.api("POST", "/targets", {**body, **wrong}, token=red)
        assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == f"body.{field}", (
            refused.get_json()
        )
    target = platform.json("POST", "/targets", {**body, "environment": "staging"}, token=red, expect=201)
    experiment = platform.json(
        "POST",
        "/experiments",
        {"name": "far", "type": "ec2-stop", "target": target["id"], "duration": 2, "selection": "ALL"},
        token=red,
        expect=201,
    )
    # ...whose preview is the other account's instances, and none of the platform account's.
    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview", token=red)
    assert sorted(r["id"] for r in preview["selected"]) == far
    run = platform.json(
        "POST", f"/experiments/{experiment['id']}/run", {"plan_id": preview["plan_id"]}, token=red, expect=202
    )
    result = platform.wait_for_result(run["result_id"], token=red)
    assert result["status"] == "completed", result
    assert sorted(r["id"] for r in result["resources"]) == far
    assert {r["restored"] for r in result["resources"]} <= {"pending", "running"}, result["resources"]
    described = ec2.describe_instances(InstanceIds=far)["Reservations"]
    assert {i["State"]["Name"] for r in described for i in r["Instances"]} == {"running"}
    assert set(platform.states(near).values()) == {"running"}


def test_a_stop_condition_in_the_team_s_other_account_halts_its_run_there_and_only_that_alarm_does(
    platform: Platform,
) -> None:
    red, admin = _team(platform, "red"), platform.token(team="platform")
    external_id = platform.json("PUT", "/teams/red", {"environments": [STAGING]}, token=admin)["external_id"]
    staging = _second_account(platform, external_id)
    # The target account's side (infra/target-account.yaml): its alarm changes go to the platform.
    events = staging.client("events")
    events.put_rule(
        Name="forward-alarms",
        EventPattern=json.dumps(
            {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}
        ),
    )
    platform_bus = f"arn:aws:events:us-east-1:{ACCOUNT_ID}:event-bus/default"
    events.put_targets(Rule="forward-alarms", Targets=[{"Id": "platform", "Arn": platform_bus}])
    cloudwatch = staging.client("cloudwatch")
    # The platform account's alarm of that name has threshold 1.
    far = put_alarm(cloudwatch, "shop-5xx", team="red", threshold=9)
    put_alarm(cloudwatch, "blue-5xx", team="blue")
    platform.alarm("shop-5xx", team="red")  # the same name in the platform's own account
    ec2 = staging.client("ec2")
    instances = _far_instances(ec2)
    target = platform.json(
        "POST",
        "/targets",
        {"name": "far", "type": "ec2-instances", "selector": "app=far", "environment": "staging"},
        token=red,
        expect=201,
    )
    body = {"name": "far", "type": "ec2-stop", "target": target["id"], "duration": 600, "selection": "ALL"}
    # Another team's alarm there, and an alarm of an account that is none of red's, are refused.
    for foreign in (far.replace("shop-5xx", "blue-5xx"), far.replace(SECOND_ACCOUNT, "333333333333")):
        refused = platform.api("POST", "/experiments", {**body, "stop_conditions": [foreign]}, token=red)
        assert refused.status_code == 422 and foreign in refused.get_json()["message"], refused.get_json()
    # A metric probe there too: quiet in staging, while the platform account's same metric is not.
    errors = {"name": "quiet", "source": "cloudwatch-metric", "namespace": "Shop", "metric_name": "5xx"}
    errors |= {"statistic": "Sum", "comparison": "<", "threshold": 1, "mode": "before"}
    for values, where in (([0.0], cloudwatch), ([5.0], platform.session.client("cloudwatch"))):
        where.put_metric_data(Namespace="Shop", MetricData=[{"MetricName": "5xx", "Values": values}])
    unknown = platform.api(
        "POST", "/experiments", {**body, "probes": [{**errors, "environment": "prod"}]}, token=red
    )
    assert unknown.status_code == 422 and "no environment prod" in unknown.get_json()["message"], (
        unknown.get_json()
    )
    probe = {**errors, "environment": "staging", "region": "eu-west-1"}
    experiment = platform.json(
        "POST", "/experiments", {**body, "stop_conditions": [far], "probes": [probe]}, token=red, expect=201
    )
    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview", token=red)
    assert [(s["alarm"], s["state"]) for s in preview["stop_conditions"]] == [(far, "OK")]

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", token=red, expect=202)
    in_force = f"/results/{run['result_id']}"
    wait_until(
        lambda: any(e["step"] == "observe" for e in platform.json("GET", in_force, token=red)["timeline"])
    )
    # The platform account's alarm of the same name is not this run's stop condition.
    platform.alarm("shop-5xx", "ALARM", team="red")  # returns once the guard has had the event
    held = platform.json("GET", in_force, token=red)
    assert held["status"] == "running" and not [e for e in held["timeline"] if e["step"] == "stop"], held
    # The environment's own alarm halts it, forwarded from its account and Region.
    cloudwatch.set_alarm_state(
        AlarmName="shop-5xx", StateValue="ALARM", StateReason="Threshold Crossed: 12 > 9"
    )
    result = platform.wait_for_result(run["result_id"], timeout=30, token=red)
    assert result["status"] == "stopped" and result["stop_kind"] == "alarm", result
    assert "Threshold Crossed: 12 > 9" in result["error"]
    described = ec2.describe_instances(InstanceIds=instances)["Reservations"]
    assert {i["State"]["Name"] for r in described for i in r["Instances"]} == {"running"}
    states = platform.json("GET", f"/results/{run['result_id']}/stop-conditions", token=red)
    assert [(s["alarm"], s["state"]) for s in states] == [(far, "ALARM")]
    # Its chart is of the environment's alarm, read there.
    (series,) = platform.json("GET", f"/results/{run['result_id']}/metrics", token=red)["series"]
    assert (series["alarm"], series["threshold"], series["state"]) == (far, 9.0, "ALARM"), series
    (asked,) = result["probe_records"]["quiet"]["evaluations"]
    assert (asked["ok"], asked["value"]) == (True, 0.0), result["probe_records"]  # staging's, read there
