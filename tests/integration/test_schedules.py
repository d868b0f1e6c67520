"""Schedules and run events on the embedded AWS: the real API, EventBridge Scheduler (moto stores,
`ScheduleFirer` fires, with a clock the tests move) and the real state machine.

Run events are routed by a real EventBridge rule to an SQS queue, and read back in order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chaosplane.auth import Role
from chaosplane.local.scheduler import ScheduleFirer
from chaosplane.scheduling import scheduler_name
from tests.conftest import Platform, wait_until
from tests.integration.test_runs import setup_experiment, start_and_hold


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def firer(platform: Platform) -> ScheduleFirer:
    return ScheduleFirer(platform.session, platform.deployment.environment["SCHEDULE_GROUP"])


def scheduler(platform: Platform) -> Any:
    return platform.session.client("scheduler")


def live_schedules(platform: Platform) -> list[str]:
    group = platform.deployment.environment["SCHEDULE_GROUP"]
    return [s["Name"] for s in scheduler(platform).list_schedules(GroupName=group)["Schedules"]]


def results_of(platform: Platform, experiment_id: str) -> list[dict[str, Any]]:
    return platform.json("GET", f"/experiments/{experiment_id}/results")["items"]  # type: ignore[no-any-return]


def test_a_schedule_is_an_eventbridge_scheduler_schedule_that_starts_the_state_machine(
    platform: Platform,
) -> None:
    platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform)
    body = {
        "expression": "cron(0 9 ? * MON-FRI *)",
        "timezone": "Europe/Paris",
        "description": "weekday game day",
    }

    created = platform.json("POST", f"/experiments/{experiment['id']}/schedules", body, expect=201)

    group = platform.deployment.environment["SCHEDULE_GROUP"]
    live = scheduler(platform).get_schedule(
        Name=scheduler_name(experiment["id"], created["id"]), GroupName=group
    )
    assert live["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert live["ScheduleExpressionTimezone"] == "Europe/Paris" and live["State"] == "ENABLED"
    target = live["Target"]
    assert target["Arn"] == platform.deployment.state_machine_arn  # no function of ours in between
    assert target["RoleArn"] == platform.deployment.environment["SCHEDULER_ROLE_ARN"]
    assert target["DeadLetterConfig"]["Arn"] == platform.deployment.environment["SCHEDULE_DEAD_LETTER_ARN"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert json.loads(target["Input"]) == {
        "experiment_id": experiment["id"],
        "trigger": "schedule",
        "schedule_id": created["id"],
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    assert len(created["next_runs"]) == 3
    for moment in created["next_runs"]:  # 09:00 in Paris on a weekday
        local = datetime.fromisoformat(moment).astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5

    listed = platform.json("GET", f"/experiments/{experiment['id']}/schedules")
    assert [s["id"] for s in listed] == [created["id"]]
    paused = platform.json("POST", f"/experiments/{experiment['id']}/schedules/{created['id']}/pause")
    assert paused["enabled"] is False and paused["next_runs"] == []
    assert scheduler(platform).get_schedule(Name=live["Name"], GroupName=group)["State"] == "DISABLED"
    resumed = platform.json("POST", f"/experiments/{experiment['id']}/schedules/{created['id']}/resume")
    assert resumed["enabled"] is True
    changed = platform.json(
        "PUT", f"/experiments/{experiment['id']}/schedules/{created['id']}", {"expression": "rate(1 hour)"}
    )
    assert changed["expression"] == "rate(1 hour)" and changed["created_at"] == created["created_at"]
    assert (
        scheduler(platform).get_schedule(Name=live["Name"], GroupName=group)["ScheduleExpression"]
        == "rate(1 hour)"
    )

    platform.json("DELETE", f"/experiments/{experiment['id']}/schedules/{created['id']}", expect=204)
    assert live_schedules(platform) == []
    platform.json("GET", f"/experiments/{experiment['id']}/schedules/{created['id']}", expect=404)


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"expression": "0 9 * * 1"}, "expression", "not a schedule expression"),
        ({"expression": "cron(0 9 * * 1)"}, "expression", "EventBridge cron is not Unix cron"),
        (
            {"expression": "cron(0 9 * * MON *)"},
            "expression",
            "exactly one of day-of-month and day-of-week must be ?",
        ),
        ({"expression": "rate(5 minute)"}, "expression", "rate(5 minutes)"),
        ({"expression": "rate(1 day)", "timezone": "Europe/Atlantis"}, "timezone", "unknown time zone"),
        (
            {"expression": "rate(1 day)", "start_date": "2027-01-01T00:00:00"},
            "start_date",
            "time zone offset",
        ),
        (
            {
                "expression": "rate(1 day)",
                "start_date": "2027-02-01T00:00:00Z",
                "end_date": "2027-01-01T00:00:00Z",
            },
            "end_date",
            "end_date must be after start_date",
        ),
        ({"expression": "rate(1 day)", "enabled": "yes"}, "enabled", "enabled"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_problem_and_creates_nothing(
    platform: Platform, body: dict[str, Any], field: str, problem: str
) -> None:
    experiment = setup_experiment(platform)

    response = platform.api("POST", f"/experiments/{experiment['id']}/schedules", body)

    assert response.status_code == 422, response.get_data(as_text=True)
    assert problem in response.get_data(as_text=True)
    assert [e["field"] for e in response.get_json()["errors"]] == [f"body.{field}"]  # beside the field
    assert live_schedules(platform) == []
    assert platform.json("GET", f"/experiments/{experiment['id']}/schedules") == []


def test_viewers_read_schedules_and_only_operators_change_them(platform: Platform) -> None:
    experiment = setup_experiment(platform)
    path = f"/experiments/{experiment['id']}/schedules"
    viewer = platform.token(Role.VIEWER)

    assert platform.api("POST", path, {"expression": "rate(1 day)"}, token=viewer).status_code == 403
    assert platform.json("GET", path, token=viewer) == []
    assert live_schedules(platform) == []
    assert platform.api("GET", path, token=platform.token(team="other")).status_code == 404


def test_a_cron_schedule_fires_at_its_local_time_across_a_daylight_saving_change(platform: Platform) -> None:
    """09:00 Berlin: 08:00 UTC until Saturday 27 March 2027, 07:00 UTC from Sunday the 28th."""
    platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform)
    body = {
        "expression": "cron(0 9 * * ? *)",
        "timezone": "Europe/Berlin",
        "start_date": "2027-03-26T12:00:00Z",
        "end_date": "2027-03-29T12:00:00Z",
    }
    schedule = platform.json("POST", f"/experiments/{experiment['id']}/schedules", body, expect=201)
    clock = firer(platform)

    assert clock.tick(utc(2027, 3, 26, 12)) == []  # nothing before its start date
    fired = []
    # A day at a time, each day's run finished before the next (runs of one experiment never overlap).
    for now in (utc(2027, 3, 27, 12), utc(2027, 3, 28, 12), utc(2027, 4, 30)):  # the last: past its end
        fired += clock.tick(now)
        platform.settle(timeout=60)

    assert [f.at for f in fired] == [utc(2027, 3, 27, 8), utc(2027, 3, 28, 7), utc(2027, 3, 29, 7)]
    assert all(f.execution_arn for f in fired)
    runs = finished_results(platform, experiment["id"], count=3)
    assert {(r["trigger"], r["schedule_id"]) for r in runs} == {("schedule", schedule["id"])}
    assert [r["status"] for r in runs] == ["completed"] * 3, runs


def finished_results(platform: Platform, experiment_id: str, count: int) -> list[dict[str, Any]]:
    def finished() -> list[dict[str, Any]] | None:
        final = ("completed", "stopped", "failed", "skipped")
        found = [r for r in results_of(platform, experiment_id) if r["status"] in final]
        return found if len(found) == count else None

    return wait_until(finished, timeout=60)  # type: ignore[no-any-return]


def test_a_paused_schedule_does_not_fire(platform: Platform) -> None:
    experiment = setup_experiment(platform)
    schedule = platform.json(
        "POST", f"/experiments/{experiment['id']}/schedules", {"expression": "rate(1 hour)"}, expect=201
    )
    platform.json("POST", f"/experiments/{experiment['id']}/schedules/{schedule['id']}/pause")
    clock = firer(platform)
    now = datetime.now(UTC)

    assert clock.tick(now.replace(year=now.year + 1)) == []  # a year of hourly fire times, none fired
    assert results_of(platform, experiment["id"]) == []


def test_the_emergency_stop_makes_a_scheduled_run_skipped_with_its_reason(platform: Platform) -> None:
    instances = platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform)
    platform.json(
        "POST", f"/experiments/{experiment['id']}/schedules", {"expression": "rate(1 hour)"}, expect=201
    )
    platform.json("POST", "/safety/halt", token=platform.token(subject="oncall"))
    now = datetime.now(UTC)

    fired = firer(platform).tick(now + timedelta(hours=1, minutes=1))

    assert len(fired) == 1
    (run,) = wait_until(lambda: results_of(platform, experiment["id"]) or None)
    result = platform.wait_for_result(run["id"])
    assert result["status"] == "skipped" and result["trigger"] == "schedule"
    assert "emergency stop is engaged" in result["error"]
    assert set(platform.states(instances).values()) == {"running"}


def test_a_scheduled_run_refused_by_preflight_is_skipped(platform: Platform) -> None:
    platform.instances(2, {"app": "web"})
    platform.alarm("latency", "OK")
    experiment = setup_experiment(platform, stop_conditions=["latency"])
    platform.json(
        "POST", f"/experiments/{experiment['id']}/schedules", {"expression": "rate(1 hour)"}, expect=201
    )
    platform.alarm("latency", "ALARM")
    now = datetime.now(UTC)

    firer(platform).tick(now + timedelta(hours=1, minutes=1))

    (run,) = wait_until(lambda: results_of(platform, experiment["id"]) or None)
    result = platform.wait_for_result(run["id"])
    assert result["status"] == "skipped" and "latency" in result["error"], result


def test_deleting_an_experiment_deletes_its_schedules(platform: Platform) -> None:
    experiment = setup_experiment(platform)
    for expression in ("rate(1 hour)", "cron(0 3 * * ? *)"):
        platform.json(
            "POST", f"/experiments/{experiment['id']}/schedules", {"expression": expression}, expect=201
        )
    assert len(live_schedules(platform)) == 2

    platform.json("DELETE", f"/experiments/{experiment['id']}", expect=204)

    assert live_schedules(platform) == []


# -- run events ----------------------------------------------------------------------------------


def event_queue(platform: Platform) -> str:
    """A real EventBridge rule, as a user would route Chaosplane's events, into an SQS queue."""
    sqs = platform.session.client("sqs")
    url = sqs.create_queue(QueueName="run-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = platform.session.client("events")
    bus = platform.deployment.event_bus  # the stack's own, not the default bus
    events.put_rule(
        Name="runs-to-queue",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["chaosplane"], "detail-type": ["Chaosplane Run State Change"]}),
    )
    events.put_targets(Rule="runs-to-queue", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return str(url)


def transitions(platform: Platform, url: str, run_id: str, final: str) -> list[tuple[str | None, str]]:
    """The run's state changes as its events arrived, up to the one that made it `final`.

    The last event is put just after the run is recorded final, so it is waited for.
    """
    sqs = platform.session.client("sqs")
    mine: list[dict[str, Any]] = []

    def arrived() -> bool:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            event = json.loads(message["Body"])
            assert event["source"] == "chaosplane" and event["detail-type"] == "Chaosplane Run State Change"
            if event["detail"]["run_id"] == run_id:
                mine.append(event["detail"])
        return any(d["new_status"] == final for d in mine)

    wait_until(arrived)
    assert all(d["team"] == "test" and d["experiment_id"] for d in mine)
    return [(d["old_status"], d["new_status"]) for d in mine]


def test_a_completed_run_emits_pending_running_completed(platform: Platform) -> None:
    url = event_queue(platform)
    platform.instances(2, {"app": "web"})
    experiment = setup_experiment(platform)

    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert platform.wait_for_result(run["result_id"])["status"] == "completed"

    assert transitions(platform, url, run["result_id"], "completed") == [
        (None, "pending"),
        ("pending", "running"),
        ("running", "completed"),
    ]


def test_a_stopped_and_a_failed_run_emit_their_changes_in_order(platform: Platform) -> None:
    url = event_queue(platform)
    instances = platform.instances(2, {"app": "web"})
    experiment, run = start_and_hold(platform, instances)
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    assert platform.wait_for_result(run["result_id"])["status"] == "stopped"

    assert transitions(platform, url, run["result_id"], "stopped") == [
        (None, "pending"),
        ("pending", "running"),
        ("running", "stopping"),
        ("stopping", "stopped"),
    ]

    platform.ec2.stop_instances(InstanceIds=instances)  # nothing left to hit: the run fails at Prepare
    wait_until(lambda: set(platform.states(instances).values()) == {"stopped"})
    failed = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    result = platform.wait_for_result(failed["result_id"])
    assert result["status"] == "failed"
    assert transitions(platform, url, failed["result_id"], "failed") == [
        (None, "pending"),
        ("pending", "failed"),
    ]
