"""The safety system on the embedded AWS: stop conditions, sweeper, policy, protection, lever."""

from __future__ import annotations

import time

from moto.cloudwatch.models import cloudwatch_backends

from chaosplane.auth import Role
from tests.conftest import TEAM, Platform, wait_until
from tests.integration.test_runs import (
    execution_arn,
    journal,
    lose_execution_events,
    runs_again,
    setup_experiment,
    start_and_hold,
)


def sweep(platform: Platform) -> dict:
    """One tick of the every-minute schedule, delivered as EventBridge Scheduler delivers it."""
    from tests.integration.test_runs import invoke_executor

    return invoke_executor(platform, "scheduled", {})


def test_an_alarm_going_off_mid_run_halts_it_through_the_event(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    platform.alarm("checkout-5xx")
    platform.alarm("unrelated")
    _, run = start_and_hold(platform, web, stop_conditions=["checkout-5xx"])

    platform.alarm("unrelated", "ALARM", "not ours")  # returns once the guard has had the event
    held = platform.json("GET", f"/results/{run['result_id']}")
    assert held["status"] == "running" and not [e for e in held["timeline"] if e["step"] == "stop"]

    fired = time.monotonic()
    platform.session.client("cloudwatch").set_alarm_state(
        AlarmName="checkout-5xx", StateValue="ALARM", StateReason="Threshold Crossed: 12 > 1"
    )
    result = platform.wait_for_result(run["result_id"], timeout=20)
    assert time.monotonic() - fired < 10
    assert result["status"] == "stopped"
    assert "checkout-5xx" in result["error"] and "Threshold Crossed" in result["error"]
    assert any("checkout-5xx" in e["message"] for e in result["timeline"] if e["step"] == "stop")
    assert set(platform.states(web).values()) == {"running"}


def test_a_run_does_not_start_while_a_stop_condition_is_in_alarm(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    platform.alarm("latency", state="OK")
    experiment = setup_experiment(platform, stop_conditions=["latency"])
    platform.alarm("latency", state="ALARM", reason="p99 above 2s")
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "failed" and "PreflightFailed" in result["error"]
    assert "latency is in ALARM: p99 above 2s" in result["error"]
    assert result["resources"] == [] and set(platform.states(web).values()) == {"running"}


def test_insufficient_data_refuses_by_default_and_runs_when_the_policy_allows(platform: Platform) -> None:
    platform.instances(1, {"app": "web"})
    platform.alarm("new-alarm", state="INSUFFICIENT_DATA")
    experiment = setup_experiment(platform, stop_conditions=["new-alarm"])
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert "insufficient data" in platform.wait_for_result(run["result_id"])["error"]

    platform.loosen_policy(insufficient_data="allow")
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert platform.wait_for_result(run["result_id"])["status"] == "completed"


def test_an_aborted_execution_is_rolled_back_through_its_status_change_event(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)
    platform.sfn.stop_execution(executionArn=execution_arn(platform, run["result_id"]), error="Crash")
    result = platform.wait_for_result(run["result_id"], timeout=20)
    assert result["status"] == "failed" and "execution aborted" in result["error"]
    wait_until(lambda: set(platform.states(web).values()) == {"running"})
    runs_again(platform, experiment)


def test_the_sweeper_recovers_a_run_whose_execution_event_was_lost(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)
    lose_execution_events(platform)  # the status-change event never arrives
    platform.sfn.stop_execution(executionArn=execution_arn(platform, run["result_id"]), error="Crash")
    time.sleep(0.5)
    assert set(platform.states(web).values()) == {"stopped"}

    report = sweep(platform)
    assert report == {"halted": [], "recovered": [run["result_id"]], "failed": [], "deferred": []}
    assert set(platform.states(web).values()) == {"running"}
    result = platform.json("GET", f"/results/{run['result_id']}")
    assert result["status"] == "failed" and "execution aborted" in result["error"]
    assert {e["status"]["S"] for e in journal(platform, run["result_id"])} == {"rolled_back"}
    nothing_left = {"halted": [], "recovered": [], "failed": [], "deferred": []}
    assert sweep(platform) == nothing_left
    runs_again(platform, experiment)


def test_the_sweeper_halts_a_run_whose_alarm_event_was_missed(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    platform.alarm("errors")
    _, run = start_and_hold(platform, web, stop_conditions=["errors"])
    # The alarm goes off but its event is lost: change the state behind EventBridge's back.
    alarm = cloudwatch_backends["123456789012"]["us-east-1"].alarms["errors"]
    alarm.update_state("Threshold Crossed (event lost)", "{}", "ALARM")
    time.sleep(0.3)
    assert platform.json("GET", f"/results/{run['result_id']}")["status"] == "running"

    assert sweep(platform)["halted"] == [run["result_id"]]
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "stopped" and "errors is in ALARM (sweeper)" in result["error"]
    assert set(platform.states(web).values()) == {"running"}


def test_a_plan_over_policy_is_refused_never_trimmed(platform: Platform) -> None:
    web = platform.instances(4, {"app": "web"}, team="strict")
    strict = platform.token(team="strict")  # the default policy: at most 50% of a target
    target = platform.json(
        "POST",
        "/targets",
        {"name": "web", "type": "ec2-instances", "selector": "app=web"},
        token=strict,
        expect=201,
    )
    body = {"name": "all", "type": "ec2-stop", "target": target["id"], "duration": 60}
    experiment = platform.json("POST", "/experiments", body, token=strict, expect=201)

    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview", token=strict)
    assert preview["verdict"]["allowed"] is False
    assert (
        "would hit 4 of 4 eligible resources (100%); the team's limit is 50%" in preview["verdict"]["reasons"]
    )
    assert {e["reason"] for e in preview["excluded"]} == {"over cap"}

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", token=strict, expect=202)
    result = platform.wait_for_result(run["result_id"], token=strict)
    assert (
        result["status"] == "failed"
        and "PolicyRefused" in result["error"]
        and "limit is 50%" in result["error"]
    )
    assert set(platform.states(web).values()) == {"running"}

    too_long = platform.api("POST", "/experiments", {**body, "duration": 7200}, token=strict)
    assert too_long.status_code == 422 and "over the team's limit of 3600s" in too_long.get_json()["message"]


def test_protected_and_not_opted_in_resources_are_never_selected_and_the_preview_says_why(
    platform: Platform,
) -> None:
    (plain,) = platform.instances(1, {"app": "web"})
    (protected,) = platform.instances(1, {"app": "web", "chaosplane/protected": "true"})
    (allowed,) = platform.instances(1, {"app": "web", "chaosplane/allowed": "true"})
    (stopped,) = platform.instances(1, {"app": "web"})
    platform.ec2.stop_instances(InstanceIds=[stopped])
    experiment = setup_experiment(platform, duration=600)

    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview")
    assert sorted(r["id"] for r in preview["selected"]) == sorted([plain, allowed])
    reasons = {e["id"]: e["reason"] for e in preview["excluded"]}
    assert reasons == {protected: "protected", stopped: "not in a state the fault acts on"}
    assert preview["verdict"] == {"allowed": True, "reasons": []}

    platform.loosen_policy(opt_in=True)
    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview")
    assert [r["id"] for r in preview["selected"]] == [allowed]
    assert {e["id"]: e["reason"] for e in preview["excluded"]}[plain] == "not opted in"

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    wait_until(lambda: platform.states([allowed]) == {allowed: "stopped"})
    result = platform.json("GET", f"/results/{run['result_id']}")
    assert [r["id"] for r in result["resources"]] == [allowed]  # the run did what the preview said
    assert platform.states([plain, protected]) == {plain: "running", protected: "running"}
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    platform.wait_for_result(run["result_id"])


def test_the_emergency_stop_halts_the_team_and_refuses_new_runs_until_released(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    api = platform.instances(1, {"app": "api"})
    first, run_a = start_and_hold(platform, web)
    second = setup_experiment(platform, selector="app=api", duration=600)
    run_b = platform.json("POST", f"/experiments/{second['id']}/run", expect=202)
    wait_until(lambda: platform.states(api) == {api[0]: "stopped"})

    lever = platform.json("POST", "/safety/halt", token=platform.token(subject="oncall"))
    assert sorted(lever["halting"]) == sorted([run_a["result_id"], run_b["result_id"]])
    assert lever["lever"]["engaged_by"] == "oncall" and lever["lever"]["team"] == TEAM
    for run in (run_a, run_b):
        result = platform.wait_for_result(run["result_id"])
        assert result["status"] == "stopped" and "emergency stop engaged by oncall" in result["error"]
    assert set(platform.states(web + api).values()) == {"running"}

    refused = platform.api("POST", f"/experiments/{first['id']}/run")
    assert refused.status_code == 409 and "emergency stop" in refused.get_json()["message"]
    assert platform.json("GET", "/safety")["lever"]["engaged_by"] == "oncall"
    assert platform.api("POST", "/safety/halt", token=platform.token(Role.OPERATOR)).status_code == 403

    platform.json("POST", "/safety/release")
    assert platform.json("GET", "/safety")["lever"] is None
    run = platform.json("POST", f"/experiments/{first['id']}/run", expect=202)
    platform.json("POST", f"/experiments/{first['id']}/stop", expect=202)
    platform.wait_for_result(run["result_id"])


def test_the_platform_wide_lever_is_for_platform_admins_and_stops_every_team(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)
    assert platform.api("POST", "/safety/halt", {"scope": "all"}).status_code == 404  # not a platform admin

    platform_admin = platform.token(team="platform", subject="sre-lead")
    lever = platform.json("POST", "/safety/halt", {"scope": "all"}, token=platform_admin)
    assert lever["halting"] == [run["result_id"]] and lever["lever"]["team"] == "*"
    assert platform.wait_for_result(run["result_id"])["status"] == "stopped"
    refused = platform.api("POST", f"/experiments/{experiment['id']}/run")
    assert (
        refused.status_code == 409
        and "emergency stop is engaged platform-wide" in refused.get_json()["message"]
    )
    assert platform.json("GET", "/safety")["lever"]["team"] == "*"  # every team sees it
    platform.json("POST", "/safety/release", {"scope": "all"}, token=platform_admin)
    assert platform.json("GET", "/safety")["lever"] is None


def test_a_team_runs_at_most_its_limit_at_once(platform: Platform) -> None:
    web = platform.instances(1, {"app": "web"})
    platform.instances(1, {"app": "api"})
    platform.loosen_policy(max_concurrent_runs=1)
    first, run = start_and_hold(platform, web)
    second = setup_experiment(platform, selector="app=api", duration=600)
    refused = platform.api("POST", f"/experiments/{second['id']}/run")
    assert refused.status_code == 409 and "already has 1 runs in progress" in refused.get_json()["message"]
    platform.json("POST", f"/experiments/{first['id']}/stop", expect=202)
    platform.wait_for_result(run["result_id"])
    run = platform.json("POST", f"/experiments/{second['id']}/run", expect=202)
    platform.json("POST", f"/experiments/{second['id']}/stop", expect=202)
    platform.wait_for_result(run["result_id"])


def test_an_instance_its_owner_starts_again_mid_run_is_not_touched_by_rollback(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)
    # The owner needs one back now and starts it: rollback must not stop or restart it (we only
    # ever undo our own change, and only while it is still in the state we left it in).
    platform.ec2.start_instances(InstanceIds=[web[0]])
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "stopped"
    restored = {r["id"]: r["restored"] for r in result["resources"]}
    assert restored[web[0]] == "running" and restored[web[1]] in ("pending", "running")
    assert {e["status"]["S"] for e in journal(platform, run["result_id"])} == {"rolled_back"}


def test_the_lever_halts_fifty_running_runs_with_none_missed(platform: Platform) -> None:
    platform.loosen_policy(max_concurrent_runs=60)
    instances = [platform.instances(1, {"app": f"fleet-{n}"})[0] for n in range(50)]
    runs = []
    for n in range(50):
        experiment = setup_experiment(platform, selector=f"app=fleet-{n}", duration=3600, selection="ALL")
        runs.append(platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)["result_id"])
    wait_until(lambda: set(platform.states(instances).values()) == {"stopped"}, timeout=180)

    lever = platform.json("POST", "/safety/halt", token=platform.token(subject="oncall"))

    assert sorted(lever["halting"]) == sorted(runs)
    results = [platform.wait_for_result(run, timeout=180) for run in runs]
    assert [r["status"] for r in results] == ["stopped"] * 50
    assert all("emergency stop engaged by oncall" in r["error"] for r in results)
    assert set(platform.states(instances).values()) == {"running"}
    platform.json("POST", "/safety/release")
