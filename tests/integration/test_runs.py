"""Runs end to end on the embedded AWS: the real state machine executing the real handlers."""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
from aws_lambda_powertools import Tracer
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import InstanceBackend

from chaosplane.parallel import CHANGES_AT_ONCE
from tests.conftest import Platform, wait_until


def setup_experiment(platform: Platform, selector: str = "app=web", **overrides: object) -> dict:
    target = platform.json(
        "POST", "/targets", {"name": "web", "type": "ec2-instances", "selector": selector}, expect=201
    )
    body = {"name": "stop web", "type": "ec2-stop", "target": target["id"], "duration": 1, **overrides}
    return platform.json("POST", "/experiments", body, expect=201)


def start_and_hold(platform: Platform, instances: list[str], **overrides: object) -> tuple[dict, dict]:
    """Start a long ec2-stop run and wait until every instance is stopped and Observe holds the fault."""
    experiment = setup_experiment(platform, **{"duration": 600, **overrides})
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    wait_until(lambda: set(platform.states(instances).values()) == {"stopped"})
    wait_until(
        lambda: any(
            e["step"] == "observe" for e in platform.json("GET", f"/results/{run['result_id']}")["timeline"]
        )
    )
    return experiment, run


def runs_again(platform: Platform, experiment: dict) -> None:
    """The experiment was released: it starts again (and is stopped, leaving nothing running)."""
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    assert platform.wait_for_result(run["result_id"])["status"] == "stopped"


def lose_execution_events(platform: Platform) -> None:
    """Detach the recovery rule's target, as if EventBridge lost the execution's status event."""
    rule = platform.deployment.rules["ExecutorFunction.ExecutionEnded"]
    platform.session.client("events").remove_targets(Rule=rule, Ids=["function"])


def execution_arn(platform: Platform, name: str) -> str:
    return platform.deployment.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def invoke_executor(platform: Platform, step: str, state: dict, **extra: str) -> dict:
    """Invoke the executor as the state machine does, or (step "recover-event") as EventBridge does."""
    if step == "scheduled":
        event: dict = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    elif step == "recover-event":
        event = {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {**state, "stateMachineArn": platform.deployment.state_machine_arn},
        }
    else:
        event = {"step": step, "state": state, **extra}
    response = platform.session.client("lambda").invoke(
        FunctionName=platform.deployment.functions["ExecutorFunction"], Payload=json.dumps(event).encode()
    )
    payload = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, payload
    return payload


def journal(platform: Platform, result_id: str) -> list[dict]:
    table = platform.deployment.tables["JournalTable"]
    items = platform.session.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="result_id = :r",
        ExpressionAttributeValues={":r": {"S": result_id}},
        ConsistentRead=True,
    )["Items"]
    return sorted(items, key=lambda item: item["key"]["S"])


def test_a_run_stops_exactly_the_selected_instances_and_starts_them_after_the_duration(
    platform: Platform,
) -> None:
    web = platform.instances(3, {"app": "web"})
    other = platform.instances(1, {"app": "api"})
    already_stopped = platform.instances(1, {"app": "web"})
    platform.ec2.stop_instances(InstanceIds=already_stopped)
    # Held 6 s: long enough for the checks below to see the fault on a busy machine.
    experiment = setup_experiment(platform, selection="COUNT(2)", duration=6)

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert run["status"] == "pending"

    stopped = wait_until(
        lambda: (
            [i for i, s in platform.states(web).items() if s == "stopped"]
            if list(platform.states(web).values()).count("stopped") == 2
            else None
        )
    )
    assert platform.states(other) == {other[0]: "running"}
    assert platform.json("GET", f"/experiments/{experiment['id']}")["status"] == "running"

    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "completed" and result["error"] is None
    # Without a probe, the run says nothing of the system under test: not a success.
    assert result["verdict"] == "inconclusive" and result["success"] is False
    assert sorted(r["id"] for r in result["resources"]) == sorted(stopped)
    for resource in result["resources"]:
        assert resource["before"] == "running" and resource["after"] in ("stopping", "stopped")
        assert resource["restored"] in ("pending", "running")
    assert set(platform.states(web).values()) == {"running"}
    assert platform.states(already_stopped) == {already_stopped[0]: "stopped"}  # never ours to start
    assert [entry["action"]["S"] for entry in journal(platform, run["result_id"])] == [
        "ec2:StopInstances"
    ] * 2
    assert {e["status"]["S"] for e in journal(platform, run["result_id"])} == {"rolled_back"}

    steps = [event["step"] for event in result["timeline"]]
    assert steps[0] == "created" and steps[-1] == "finalize"
    for step in ("prepare", "inject", "observe", "rollback"):
        assert step in steps
    # The plan's line counts what matched and lists what is hit: the selected, never the excluded.
    prepared = [event["message"] for event in result["timeline"] if event["step"] == "prepare"]
    hit = ", ".join(sorted(stopped))
    assert prepared == [f"4 matched, 2 selected (COUNT(2)), 1 excluded; hitting: {hit}"]
    held = result["metrics"]["run_seconds"]
    assert held >= 2, "the fault was held for at least the experiment's duration"
    assert result["metrics"]["resources_restored"] == 2
    assert platform.json("GET", f"/experiments/{experiment['id']}")["status"] == "completed"
    listed = platform.json("GET", f"/experiments/{experiment['id']}/results")
    assert [r["id"] for r in listed["items"]] == [run["result_id"]]


def test_stop_during_observe_restores_the_instances_and_ends_stopped(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)

    asked = time.monotonic()
    stop = platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    assert stop["result_id"] == run["result_id"]
    result = platform.wait_for_result(run["result_id"], timeout=20)
    assert time.monotonic() - asked < 20, "the stop did not wait out the 600 s duration"
    assert result["status"] == "stopped" and result["success"] is False and result["error"] is None
    assert set(platform.states(web).values()) == {"running"}
    assert platform.json("GET", f"/experiments/{experiment['id']}")["status"] == "stopped"
    assert platform.api("POST", f"/experiments/{experiment['id']}/stop").status_code == 409


def test_stop_right_after_run_never_leaves_a_fault(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform, duration=600)
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    result = platform.wait_for_result(run["result_id"], timeout=20)
    assert result["status"] == "stopped"
    assert set(platform.states(web).values()) == {"running"}


def test_a_failing_injection_ends_failed_with_nothing_left_stopped(platform: Platform) -> None:
    web = sorted(platform.instances(3, {"app": "web"}))
    # Stop protection on the last instance (in the executor's order) makes its StopInstances fail
    # after the first two have been stopped: a partial injection, as on real AWS.
    platform.ec2.modify_instance_attribute(InstanceId=web[-1], DisableApiStop={"Value": True})
    experiment = setup_experiment(platform, duration=600)

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])

    assert result["status"] == "failed" and result["success"] is False
    assert "InjectionFailed" in result["error"] and web[-1] in result["error"]
    assert "OperationNotPermitted" in result["error"]
    assert set(platform.states(web).values()) == {"running"}
    entries = journal(platform, run["result_id"])
    assert [
        e["resource_id"]["S"] for e in entries
    ] == web  # journaled before each attempt, even the failed one
    assert {e["status"]["S"] for e in entries} == {"rolled_back"}
    assert platform.json("GET", f"/experiments/{experiment['id']}")["status"] == "failed"
    # The execution itself ends FAILED too (after Finalize), so the console shows the run failed.
    arn = execution_arn(platform, run["result_id"])
    wait_until(lambda: platform.sfn.describe_execution(executionArn=arn)["status"] == "FAILED")


def test_a_crash_between_inject_and_rollback_is_recovered_from_the_journal(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)

    # The workflow dies mid-run, and its status-change event is lost: nothing rolls back by itself.
    lose_execution_events(platform)
    arn = execution_arn(platform, run["result_id"])
    platform.sfn.stop_execution(executionArn=arn, error="Crash", cause="simulated crash")
    time.sleep(0.5)
    assert set(platform.states(web).values()) == {"stopped"}

    # Recovery needs nothing but the result id: rollback works from the journal alone.
    assert invoke_executor(platform, "rollback", {"result_id": run["result_id"]}) == {"rolled_back": 2}
    assert set(platform.states(web).values()) == {"running"}
    after_first = journal(platform, run["result_id"])

    # A second rollback changes nothing: no entry touched, no instance started again.
    platform.ec2.stop_instances(InstanceIds=[web[0]])  # someone else stops it after recovery
    assert invoke_executor(platform, "rollback", {"result_id": run["result_id"]}) == {"rolled_back": 0}
    assert journal(platform, run["result_id"]) == after_first
    assert platform.states([web[0]]) == {web[0]: "stopped"}

    final = invoke_executor(
        platform,
        "finalize",
        {"result_id": run["result_id"], "error": {"Error": "Crash", "Cause": "workflow died"}},
    )
    assert final["status"] == "failed"
    assert platform.json("GET", f"/experiments/{experiment['id']}")["status"] == "failed"
    runs_again(platform, experiment)  # released for the next run


def test_each_journal_entry_names_its_fault_and_an_entry_without_one_is_the_runs(
    platform: Platform,
) -> None:
    # Given a run holding its fault, whose workflow died with its events lost
    web = platform.instances(2, {"app": "web"})
    _, run = start_and_hold(platform, web)
    lose_execution_events(platform)
    platform.sfn.stop_execution(executionArn=execution_arn(platform, run["result_id"]), error="Crash")
    entries = journal(platform, run["result_id"])
    assert [e["fault"]["S"] for e in entries] == ["ec2-stop", "ec2-stop"]

    # ...and one entry as an older executor wrote it, without the fault
    platform.session.client("dynamodb").update_item(
        TableName=platform.deployment.tables["JournalTable"],
        Key={"result_id": entries[0]["result_id"], "key": entries[0]["key"]},
        UpdateExpression="REMOVE fault",
    )

    # When it is rolled back, then both entries are undone by their fault, the old one by the run's
    assert invoke_executor(platform, "rollback", {"result_id": run["result_id"]}) == {"rolled_back": 2}
    assert set(platform.states(web).values()) == {"running"}


def test_a_running_experiment_is_locked(platform: Platform) -> None:
    platform.instances(1, {"app": "web"})
    experiment = setup_experiment(platform, duration=600)
    target_id = experiment["target"]
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)

    assert platform.api("POST", f"/experiments/{experiment['id']}/run").status_code == 409
    body = {k: experiment[k] for k in ("name", "type", "target", "duration")}
    assert platform.api("PUT", f"/experiments/{experiment['id']}", {**body, "duration": 5}).status_code == 409
    assert platform.api("DELETE", f"/experiments/{experiment['id']}").status_code == 409
    replace_target = {"name": "web", "type": "ec2-instances", "selector": "app=other"}
    assert platform.api("PUT", f"/targets/{target_id}", replace_target).status_code == 409
    assert platform.api("DELETE", f"/targets/{target_id}").status_code == 409
    assert platform.json("GET", f"/experiments/{experiment['id']}")["duration"] == 600

    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    platform.wait_for_result(run["result_id"])
    platform.json("PUT", f"/experiments/{experiment['id']}", {**body, "duration": 5})


def test_a_run_can_be_started_from_the_step_functions_console(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform, duration=1)
    platform.sfn.start_execution(
        stateMachineArn=platform.deployment.state_machine_arn,
        name="console-run",
        input=json.dumps({"experiment_id": experiment["id"]}),
    )
    results = wait_until(lambda: platform.json("GET", f"/experiments/{experiment['id']}/results")["items"])
    result = platform.wait_for_result(results[0]["id"])
    assert result["status"] == "completed" and len(result["resources"]) == 2
    assert set(platform.states(web).values()) == {"running"}


def test_a_target_that_matches_nothing_fails_the_run_and_touches_nothing(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform, selector="app=nothing-here")
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "failed" and "NothingToHit" in result["error"]
    assert result["resources"] == []
    assert set(platform.states(web).values()) == {"running"}


def test_a_reboot_is_recorded_and_has_nothing_to_roll_back(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform, type="ec2-reboot")
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "completed"
    assert {r["after"] for r in result["resources"]} == {"rebooting"}
    assert {r["restored"] for r in result["resources"]} == {"running"}
    assert [e["action"]["S"] for e in journal(platform, run["result_id"])] == ["ec2:RebootInstances"] * 2
    assert set(platform.states(web).values()) == {"running"}


# -- what a crash, a race or a stubborn resource does to a run -----------------------------------


def test_rollback_restores_every_instance_it_can_and_keeps_the_run_locked_until_all_are(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = sorted(platform.instances(3, {"app": "web"}))
    lose_execution_events(platform)  # recovery is driven by hand below, at a chosen moment
    experiment, run = start_and_hold(platform, web)

    # The cloud refuses to start the first instance (as AWS does when capacity runs out).
    original = InstanceBackend.start_instances

    def no_capacity_for_first(self: InstanceBackend, instance_ids: list[str]) -> list:
        if web[0] in instance_ids:
            raise EC2ClientError("InsufficientInstanceCapacity", "no capacity for this instance type")
        return original(self, instance_ids)

    monkeypatch.setattr(InstanceBackend, "start_instances", no_capacity_for_first)
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    result = platform.wait_for_result(run["result_id"], timeout=60)

    assert result["status"] == "failed"
    assert "ROLLBACK INCOMPLETE" in result["error"] and web[0] in result["error"]
    assert platform.states(web) == {web[0]: "stopped", web[1]: "running", web[2]: "running"}
    # Nothing new may start on resources that may still be faulted.
    assert platform.api("POST", f"/experiments/{experiment['id']}/run").status_code == 409

    # Capacity is back; recovery (what the execution-ended rule triggers) finishes the job.
    monkeypatch.setattr(InstanceBackend, "start_instances", original)
    recovered = invoke_executor(platform, "recover-event", {"name": run["result_id"], "status": "FAILED"})
    assert recovered["rolled_back"] == 1
    assert set(platform.states(web).values()) == {"running"}
    runs_again(platform, experiment)


def test_an_aborted_execution_is_recovered_from_the_execution_ended_event(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, web)
    lose_execution_events(platform)  # this test delivers the event itself, twice
    platform.sfn.stop_execution(executionArn=execution_arn(platform, run["result_id"]), error="Crash")
    time.sleep(0.5)
    assert set(platform.states(web).values()) == {"stopped"}

    recovered = invoke_executor(platform, "recover-event", {"name": run["result_id"], "status": "ABORTED"})
    assert recovered == {"rolled_back": 2, "status": "failed", "result_id": run["result_id"]}
    assert set(platform.states(web).values()) == {"running"}
    result = platform.json("GET", f"/results/{run['result_id']}")
    assert "execution aborted" in result["error"]
    # The same event delivered again changes nothing.
    again = invoke_executor(platform, "recover-event", {"name": run["result_id"], "status": "ABORTED"})
    assert again["rolled_back"] == 0
    assert platform.json("GET", f"/results/{run['result_id']}")["timeline"] == result["timeline"]
    runs_again(platform, experiment)


def test_a_retried_console_prepare_finds_its_run_instead_of_making_another(platform: Platform) -> None:
    platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform, duration=600)
    state = {"experiment_id": experiment["id"]}
    first = invoke_executor(platform, "prepare", state, execution_name="console-7")
    again = invoke_executor(platform, "prepare", state, execution_name="console-7")
    assert first == again
    assert first == {"result_id": "console-7", "duration": 600, "skipped": False, "plan_id": first["plan_id"]}
    results = platform.json("GET", f"/experiments/{experiment['id']}/results")["items"]
    assert [r["id"] for r in results] == ["console-7"]
    assert results[0]["plan_id"] == first["plan_id"]
    assert results[0]["status"] == "running"
    invoke_executor(platform, "finalize", {"result_id": "console-7", "error": {"Error": "Test"}})


def test_an_instance_stopped_by_its_owner_after_prepare_is_neither_stopped_nor_started_by_us(
    platform: Platform,
) -> None:
    web = sorted(platform.instances(2, {"app": "web"}))
    experiment = setup_experiment(platform, duration=600)
    prepared = invoke_executor(
        platform, "prepare", {"experiment_id": experiment["id"]}, execution_name="race-1"
    )
    platform.ec2.stop_instances(InstanceIds=[web[0]])  # the owner, between Prepare and Inject

    assert invoke_executor(platform, "inject", {"run": prepared}) == {"injected": 1}
    assert invoke_executor(platform, "rollback", {"run": prepared}) == {"rolled_back": 1}
    assert platform.states(web) == {web[0]: "stopped", web[1]: "running"}
    result = platform.json("GET", "/results/race-1")
    skipped = next(r for r in result["resources"] if r["id"] == web[0])
    assert skipped["after"] is None and "stopped now" in skipped["detail"]["skipped"]
    assert [e["resource_id"]["S"] for e in journal(platform, "race-1")] == [web[1]]


def test_a_stop_that_arrives_during_rollback_still_ends_the_run_stopped(platform: Platform) -> None:
    web = platform.instances(1, {"app": "web"})
    experiment = setup_experiment(platform, duration=600)
    prepared = invoke_executor(
        platform, "prepare", {"experiment_id": experiment["id"]}, execution_name="late-stop"
    )
    invoke_executor(platform, "inject", {"run": prepared})
    # Observe timed out (the normal end) and Rollback is running when the stop arrives.
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    invoke_executor(platform, "rollback", {"run": prepared})
    assert invoke_executor(platform, "finalize", {"run": prepared})["status"] == "stopped"
    assert platform.states(web) == {web[0]: "running"}


def test_one_run_per_target_at_a_time(platform: Platform) -> None:
    platform.instances(2, {"app": "web"})
    first = setup_experiment(platform, duration=600)
    second = platform.json(
        "POST",
        "/experiments",
        {"name": "reboot web", "type": "ec2-reboot", "target": first["target"], "duration": 5},
        expect=201,
    )
    run = platform.json("POST", f"/experiments/{first['id']}/run", expect=202)
    busy = platform.api("POST", f"/experiments/{second['id']}/run")
    assert busy.status_code == 409 and "busy" in busy.get_json()["message"]
    assert platform.json("GET", f"/experiments/{second['id']}")["status"] == "created"
    platform.json("POST", f"/experiments/{first['id']}/stop", expect=202)
    platform.wait_for_result(run["result_id"])
    runs_again(platform, second)


def test_a_vanished_instance_id_does_not_fail_the_runs_of_its_target(platform: Platform) -> None:
    (alive,) = platform.instances(1, {"app": "web"})
    target = platform.json(
        "POST",
        "/targets",
        {"name": "pinned", "type": "ec2-instances", "resource_ids": [alive, "i-0123456789abcdef0"]},
        expect=201,
    )
    experiment = platform.json(
        "POST",
        "/experiments",
        {"name": "e", "type": "ec2-stop", "target": target["id"], "duration": 1},
        expect=201,
    )
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "completed" and [r["id"] for r in result["resources"]] == [alive]


def test_a_big_run_records_every_resource_with_a_bounded_timeline(platform: Platform) -> None:
    # Given a run that hits 60 instances...
    instances = platform.instances(60, {"app": "web"})
    experiment = setup_experiment(platform)
    # ...when it runs to the end...
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"], timeout=120)
    # ...then every instance is back and on record, hit and restored...
    assert result["status"] == "completed", result["error"]
    assert set(platform.states(instances).values()) == {"running"}
    assert {r["id"] for r in result["resources"]} == set(instances)
    assert all(r["after"] == "stopping" and r["restored"] for r in result["resources"])
    # ...and the timeline names the first twenty one by one, then counts the rest in a few lines.
    injects = [e["message"] for e in result["timeline"] if e["step"] == "inject"]
    rollbacks = [e["message"] for e in result["timeline"] if e["step"] == "rollback"]
    assert all(m.startswith("ec2-stop i-") for m in injects[:20]) and injects[-1] == "60 of 60 injected"
    assert all(" undone, now " in m for m in rollbacks[:20]) and rollbacks[-2:] == [
        "60 of 60 undone",
        "rollback complete: 60 change(s) undone",
    ]
    assert len(injects) <= 20 + 40 / 5 and len(rollbacks) <= 20 + 40 / 5 + 1  # a line per 5 s at most


# -- many resources at once ----------------------------------------------------------------------


def changes_at_once(platform: Platform) -> int:
    """What the deployed template sets (PARALLEL_CHANGES), which is what the executor reads."""
    return int(platform.deployment.environment["PARALLEL_CHANGES"])


def test_a_run_stops_ten_instances_at_once_and_records_them_in_plan_order(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 30 instances, and an EC2 that answers StopInstances only once ten calls wait together
    # (a run stopping one instance after another would leave the first call waiting in vain)...
    assert changes_at_once(platform) == CHANGES_AT_ONCE == 10
    web = platform.instances(30, {"app": "web"})
    together = threading.Barrier(CHANGES_AT_ONCE, timeout=30)
    original = InstanceBackend.stop_instances

    def stop_ten_together(self: InstanceBackend, instance_ids: list[str]) -> list:
        together.wait()
        return original(self, instance_ids)

    monkeypatch.setattr(InstanceBackend, "stop_instances", stop_ten_together)
    experiment = setup_experiment(platform)
    result_id = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)["result_id"]
    result = platform.wait_for_result(result_id, timeout=120)
    # ...the run stopped all 30, ten at a time, and started them again.
    assert result["status"] == "completed", result.get("error")
    assert [r["after"] for r in result["resources"]] == ["stopping"] * 30
    assert set(platform.states(web).values()) == {"running"}
    # The record lists them in the plan's order, whichever call ended first.
    injected = [e["message"] for e in result["timeline"] if e["step"] == "inject"]
    planned = [r["id"] for r in result["resources"]]
    assert injected[:20] == [f"ec2-stop {i}: running -> stopping" for i in planned[:20]]
    assert injected[-1] == "30 of 30 injected"


def test_a_failed_stop_starts_no_more_and_every_stopped_instance_starts_again(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 40 instances and an EC2 whose first five StopInstances calls wait until all five have
    # arrived, and which then denies the third of them...
    web = platform.instances(40, {"app": "web"})
    arrived = itertools.count()
    five_arrived = threading.Event()
    original = InstanceBackend.stop_instances

    def deny_one_of_the_first_five(self: InstanceBackend, instance_ids: list[str]) -> list:
        n = next(arrived)
        if n == 4:
            five_arrived.set()
        if n < 5:
            assert five_arrived.wait(30), "five stops never ran at once"
        if n == 2:
            raise EC2ClientError("UnauthorizedOperation", "You are not authorized to perform this operation.")
        return original(self, instance_ids)

    monkeypatch.setattr(InstanceBackend, "stop_instances", deny_one_of_the_first_five)
    experiment = setup_experiment(platform)
    result_id = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)["result_id"]
    result = platform.wait_for_result(result_id, timeout=120)
    # ...the run fails with the denial, and starts few stops after it (at most ten run at once, and
    # none starts once the denial is seen), far short of all forty.
    assert result["status"] == "failed" and "UnauthorizedOperation" in result["error"], result
    journaled = journal(platform, result_id)
    assert 5 <= len(journaled) <= 2 * CHANGES_AT_ONCE
    # The stops running alongside the denied one finished and are on record; every journaled change
    # was undone, and every instance runs again.
    hit = {r["id"] for r in result["resources"] if r["after"] is not None}
    assert len(hit) == len(journaled) - 1  # all but the denied one
    assert {item["status"]["S"] for item in journaled} == {"rolled_back"}
    assert set(platform.states(web).values()) == {"running"}


def test_every_function_annotates_its_trace_with_the_run(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Powertools' Tracer is disabled here (no X-Ray daemon); its put_annotation is still what each
    # function calls, so recording it shows what a trace on AWS would carry.
    put: list[tuple[int, str, object]] = []

    def record(self: Tracer, key: str, value: object) -> None:
        put.append((threading.get_ident(), key, value))

    monkeypatch.setattr(Tracer, "put_annotation", record)
    platform.instances(2, {"app": "web"})
    platform.loosen_policy(max_percent=100)
    experiment = setup_experiment(platform, selection="ALL")
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "completed"
    platform.settle()
    # One group of annotations from each `run_id` on, per thread (functions run on threads here).
    groups: list[dict[str, object]] = []
    current: dict[int, dict[str, object]] = {}
    for thread, key, value in put:
        if key == "run_id":
            current[thread] = {}
            groups.append(current[thread])
        if thread in current:
            current[thread][key] = value
    ours = [g for g in groups if g.get("run_id") == result["id"]]
    assert {"prepare", "advance", "observe", "rollback", "finalize", "notify"} <= {
        g.get("step") for g in ours
    }
    for group in (g for g in ours if g.get("step") in ("prepare", "advance", "rollback", "finalize")):
        assert (group["team"], group["fault"]) == ("test", "ec2-stop"), group
    # Each change of a resource is a span, annotated with the resource.
    assert {value for _, key, value in put if key == "resource"} == {r["id"] for r in result["resources"]}
