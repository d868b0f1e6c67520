"""Results say, for machines, why a run failed (`failure_kind`) or who stopped it (`stop_kind`)."""

from __future__ import annotations

from chaosplane.auth import Role
from tests.conftest import Platform
from tests.integration.test_runs import setup_experiment, start_and_hold


def test_a_plain_stop_is_a_user_stop_and_a_completed_run_has_no_kinds(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert (result["status"], result["stop_kind"], result["failure_kind"]) == ("stopped", "user", None)

    platform.json("PUT", f"/experiments/{experiment['id']}", {**_spec(experiment), "duration": 1})
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert (result["status"], result["stop_kind"], result["failure_kind"]) == ("completed", None, None)


def test_an_alarm_halt_is_an_alarm_stop_and_its_states_are_readable(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    platform.alarm("checkout-5xx")
    _, run = start_and_hold(platform, web, stop_conditions=["checkout-5xx"])
    viewer = platform.token(Role.VIEWER)
    states = platform.json("GET", f"/results/{run['result_id']}/stop-conditions", token=viewer)
    assert states == [{"alarm": "checkout-5xx", "state": "OK", "reason": "test"}]

    platform.session.client("cloudwatch").set_alarm_state(
        AlarmName="checkout-5xx", StateValue="ALARM", StateReason="Threshold Crossed"
    )
    result = platform.wait_for_result(run["result_id"], timeout=20)
    assert (result["status"], result["stop_kind"]) == ("stopped", "alarm")
    states = platform.json("GET", f"/results/{run['result_id']}/stop-conditions", token=viewer)
    assert states[0]["state"] == "ALARM"
    other_team = platform.token(team="other")
    hidden = platform.api("GET", f"/results/{run['result_id']}/stop-conditions", token=other_team)
    assert hidden.status_code == 404


def test_the_emergency_stop_is_an_emergency_stop(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    _, run = start_and_hold(platform, web)
    platform.json("POST", "/safety/halt")
    result = platform.wait_for_result(run["result_id"])
    assert (result["status"], result["stop_kind"]) == ("stopped", "emergency")
    platform.json("POST", "/safety/release")


def test_preflight_and_policy_refusals_are_told_apart_from_other_failures(platform: Platform) -> None:
    platform.instances(4, {"app": "web"}, team="strict")
    platform.alarm("latency", state="OK")
    experiment = setup_experiment(platform, stop_conditions=["latency"], selection="COUNT(1)")
    platform.alarm("latency", state="ALARM", reason="p99 above 2s")
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert (result["status"], result["failure_kind"]) == ("failed", "preflight")

    strict = platform.token(team="strict")  # the default policy: at most 50% of a target
    target = {"name": "web", "type": "ec2-instances", "selector": "app=web"}
    target = platform.json("POST", "/targets", target, token=strict, expect=201)
    over = {"name": "all", "type": "ec2-stop", "target": target["id"], "duration": 60}
    over = platform.json("POST", "/experiments", over, token=strict, expect=201)
    run = platform.json("POST", f"/experiments/{over['id']}/run", token=strict, expect=202)
    result = platform.wait_for_result(run["result_id"], token=strict)
    assert (result["status"], result["failure_kind"]) == ("failed", "policy")

    nothing = setup_experiment(platform, selector="app=nothing")
    run = platform.json("POST", f"/experiments/{nothing['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert (result["status"], result["failure_kind"]) == ("failed", "nothing-to-hit")


def _spec(experiment: dict) -> dict:
    keys = ("name", "description", "type", "target", "parameters", "duration", "selection", "stop_conditions")
    return {k: experiment[k] for k in keys}
