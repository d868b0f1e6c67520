"""Notifications: configured through the API, sent by the notifier Lambda that the EventBridge rule
feeds, received by real HTTP servers on loopback (standing in for Slack and PagerDuty)."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chaosplane.auth import Role
from chaosplane.local import lambda_patch
from chaosplane.models import utcnow
from chaosplane.settings import load_settings
from chaosplane.store import NOTIFICATIONS_HOLD, Store
from tests.conftest import TEAM, Platform, wait_until
from tests.integration.test_runs import setup_experiment

RUN = "5b0f1c9e-2f6a-4d4b-9d0e-7c1f6a2b3c4d"
EXPERIMENT = "0d3e7a52-55b1-4a8e-8a9d-3f2c1b0a9e8f"
ROUTING_KEY = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32"
WEBHOOK_PATH = "/services/T0000/B0000/XXXXsecretXXXXwebhookXX"
PD_PATH = "/v2/enqueue"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class LoopbackServer:
    """A real HTTP server on 127.0.0.1 that records every POST and answers scripted statuses."""

    statuses: list[int] = field(default_factory=list)  # answered in order; then 200 (PagerDuty: 202)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> ThreadingHTTPServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                server.received.append(Received(self.path, dict(self.headers), body))
                status = server.statuses.pop(0) if server.statuses else (202 if self.path == PD_PATH else 200)
                reply = b"ok" if self.path != PD_PATH else json.dumps({"status": "success"}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, name="loopback", daemon=True).start()
        return httpd


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the socket is: nothing listens there


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    httpd = server.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def notify(
    platform: Platform, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """The platform, with loopback allowed for webhooks and PagerDuty pointed at the loopback server.

    Settings are read once per cold start: forget them and the loaded handlers, before and after.
    """
    monkeypatch.setenv("NOTIFY_ALLOWED_HOSTS", "hooks.slack.com,127.0.0.1")
    monkeypatch.setenv("PAGERDUTY_EVENTS_URL", loopback.url(PD_PATH))
    load_settings.cache_clear()
    lambda_patch.reset_loaded_handlers()
    store_run(platform)  # the notifier acts only on events of runs the store has
    yield platform
    load_settings.cache_clear()
    lambda_patch.reset_loaded_handlers()


def event(new_status: str, old_status: str | None = "running", **detail: Any) -> dict[str, Any]:
    """A run event exactly as the contract (README: Run events) has it."""
    return {
        "run_id": RUN,
        "experiment_id": EXPERIMENT,
        "experiment_name": "stop <web> & co",
        "team": TEAM,
        "fault": "ec2-stop",
        "trigger": "api",
        "old_status": old_status,
        "new_status": new_status,
        "reason": None,
        "stop_kind": None,
        "rollback_complete": None,
        "time": "2026-11-25T10:00:00.123456Z",
        **detail,
    }


def store_run(platform: Platform, status: str = "failed", unrestored: str | None = None) -> None:
    """RUN as the store has it: TEAM's, `status`, with a journal entry of `unrestored` not rolled back."""
    dynamodb = platform.session.client("dynamodb")
    now = {"S": "2026-11-25T10:00:00.000000+0000"}
    run = {"id": {"S": RUN}, "scope": {"S": TEAM}, "experiment_id": {"S": EXPERIMENT}, "created_at": now}
    run |= {"status": {"S": status}, "fault": {"S": "ec2-stop"}, "target_id": {"S": EXPERIMENT}}
    run |= {"selection": {"S": "ALL"}, "duration": {"N": "60"}}
    dynamodb.put_item(TableName=platform.deployment.tables["ResultsTable"], Item=run)
    if unrestored is not None:
        entry = {
            "result_id": {"S": RUN},
            "key": {"S": f"{unrestored}#ec2-stop"},
            "resource_id": {"S": unrestored},
        }
        entry |= {"kind": {"S": "ec2:instance"}, "action": {"S": "ec2-stop"}, "prior_state": {"S": "{}"}}
        entry |= {"status": {"S": "applied"}, "created_at": now, "updated_at": now}
        dynamodb.put_item(TableName=platform.deployment.tables["JournalTable"], Item=entry)


def put_event(platform: Platform, detail: dict[str, Any]) -> None:
    entries = [
        {
            "Source": "chaosplane",
            "DetailType": "Chaosplane Run State Change",
            "Detail": json.dumps(detail),
            "EventBusName": platform.deployment.event_bus,
        }
    ]
    response = platform.session.client("events").put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0


def invoke_notifier(platform: Platform, detail: dict[str, Any]) -> dict[str, Any]:
    """Invoke the notifier as the rule does, but synchronously, to read what it reports."""
    raw = {
        "version": "0",
        "id": "e1",
        "source": "chaosplane",
        "detail-type": "Chaosplane Run State Change",
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
    response = platform.session.client("lambda").invoke(
        FunctionName=platform.deployment.functions["NotifierFunction"], Payload=json.dumps(raw).encode()
    )
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())  # type: ignore[no-any-return]


def configure(
    platform: Platform, loopback: LoopbackServer, slack: bool = True, pagerduty: bool = True
) -> None:
    if slack:
        platform.json("PUT", "/notifications/slack", {"webhook_url": loopback.url(WEBHOOK_PATH)})
    if pagerduty:
        platform.json("PUT", "/notifications/pagerduty", {"routing_key": ROUTING_KEY})


def received(loopback: LoopbackServer, count: int) -> list[Received]:
    wait_until(lambda: len(loopback.received) >= count, 15)
    return loopback.received[:count]


# -- configuration through the API ---------------------------------------------------------------


def test_a_team_starts_with_no_channels_and_the_default_statuses(notify: Platform) -> None:
    assert notify.json("GET", "/notifications") == {
        "team": TEAM,
        "notify_on": ["failed", "stopped", "skipped", "stopping"],
        "slack": None,
        "pagerduty": None,
        "email": None,
    }


def test_channels_are_set_masked_and_removed(notify: Platform, loopback: LoopbackServer) -> None:
    configure(notify, loopback)
    view = notify.json("PUT", "/notifications", {"notify_on": ["failed", "completed"]})
    assert view["slack"] == {"webhook_url": f"127.0.0.1:{loopback.port}/…/okXX"}
    assert view["pagerduty"] == {"routing_key": "…ey32"}
    assert view["notify_on"] == ["failed", "completed"]
    assert notify.json("GET", "/notifications", token=notify.token(Role.VIEWER)) == view

    secrets = notify.session.client("secretsmanager")
    name = "chaosplane/notifications/test"
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == {
        "slack_webhook_url": loopback.url(WEBHOOK_PATH),
        "pagerduty_routing_key": ROUTING_KEY,
    }

    notify.json("DELETE", "/notifications/slack", expect=204)
    assert json.loads(secrets.get_secret_value(SecretId=name)["SecretString"]) == {
        "pagerduty_routing_key": ROUTING_KEY
    }
    notify.json("DELETE", "/notifications/pagerduty", expect=204)
    view = notify.json("GET", "/notifications")
    assert (view["slack"], view["pagerduty"]) == (None, None)
    assert not secrets.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    # set again at once: the secret was deleted without a recovery window
    configure(notify, loopback, slack=False)
    assert notify.json("GET", "/notifications")["pagerduty"] == {"routing_key": "…ey32"}


def test_a_change_while_another_is_in_progress_is_refused_and_changes_nothing(
    notify: Platform, loopback: LoopbackServer
) -> None:
    # Given a change of the team's channels in progress (held as the API holds it)...
    configure(notify, loopback, pagerduty=False)
    before = notify.json("GET", "/notifications")
    store = Store(load_settings())
    with store.changing_notifications(TEAM):
        # ...a second change is refused with a reason, and changes nothing.
        refused = notify.api("PUT", "/notifications/pagerduty", {"routing_key": ROUTING_KEY})
        assert refused.status_code == 409, refused.get_json()
        assert "in progress" in refused.get_json()["message"]
        assert notify.api("DELETE", "/notifications/slack").status_code == 409
        assert notify.json("GET", "/notifications") == before
    # Once the first is done, the change goes through; a hold left by a crash lapses by itself.
    notify.json("PUT", "/notifications/pagerduty", {"routing_key": ROUTING_KEY})
    late = Store(load_settings(), clock=lambda: utcnow() - NOTIFICATIONS_HOLD - timedelta(seconds=1))
    with late.changing_notifications(TEAM):
        pass
    held = late.changing_notifications(TEAM)
    held.__enter__()  # and never left, as a crash would
    assert notify.api("PUT", "/notifications", {"notify_on": ["failed"]}).status_code == 200


def test_concurrent_changes_of_different_channels_lose_nothing(
    notify: Platform, loopback: LoopbackServer
) -> None:
    # Given four admins changing four different things at once, again and again...
    changes = {
        "slack": ("PUT", "/notifications/slack", {"webhook_url": loopback.url(WEBHOOK_PATH)}),
        "pagerduty": ("PUT", "/notifications/pagerduty", {"routing_key": ROUTING_KEY}),
        "notify_on": ("PUT", "/notifications", {"notify_on": ["failed", "completed"]}),
        "email": ("PUT", "/notifications/email", {"addresses": ["oncall@example.com"]}),
    }
    applied: set[str] = set()
    start = threading.Barrier(len(changes))
    # Each concurrent request needs an execution environment of the API function, and the first
    # load of each is one at a time: load four now, so that the changes below really overlap.
    with ThreadPoolExecutor(max_workers=len(changes)) as pool:
        list(pool.map(lambda _: (start.wait(), notify.json("GET", "/notifications")), changes))

    def change(name: str) -> None:
        method, path, body = changes[name]
        start.wait()
        for _ in range(10):  # each either goes through or is refused as in progress: never lost
            status = notify.api(method, path, body).status_code
            assert status in (200, 409), (name, status)
            if status == 200:
                applied.add(name)
                return

    threads = [threading.Thread(target=change, args=(name,)) for name in changes]
    switch_every = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns far more often: a lost update shows at once
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_every)
    # ...every change that was answered 200 is there, in the record and in the secret.
    view = notify.json("GET", "/notifications")
    there = {
        "slack": view["slack"] is not None,
        "pagerduty": view["pagerduty"] is not None,
        "notify_on": view["notify_on"] == ["failed", "completed"],
        "email": view["email"] == {"addresses": ["oncall@example.com"]},
    }
    assert applied, "no change went through"
    assert {name for name, present in there.items() if present} == applied
    secrets = notify.session.client("secretsmanager")
    if not applied & {"slack", "pagerduty"}:
        # Both secret channels were refused as in progress every time: no secret may have been made.
        with pytest.raises(secrets.exceptions.ResourceNotFoundException):
            secrets.get_secret_value(SecretId="chaosplane/notifications/test")
        return
    secret = json.loads(secrets.get_secret_value(SecretId="chaosplane/notifications/test")["SecretString"])
    assert ("slack_webhook_url" in secret, "pagerduty_routing_key" in secret) == (
        "slack" in applied,
        "pagerduty" in applied,
    )


def test_secrets_are_never_in_dynamodb_responses_or_logs(
    notify: Platform,
    loopback: LoopbackServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Our own code at DEBUG; the rest at INFO (at DEBUG, botocore logs every request body it sends,
    # as it does on AWS: that is why LogLevel DEBUG is not for production).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="chaosplane")
    configure(notify, loopback)
    loopback.statuses = [500]  # a retry, which urllib3 would log with the URL
    invoke_notifier(notify, event("failed", reason="boom", rollback_complete=True))
    dead = notify.api(
        "PUT", "/notifications/slack", {"webhook_url": f"http://127.0.0.1:{_closed_port()}/x/y/zzzz"}
    )
    assert dead.status_code == 200
    invoke_notifier(notify, event("failed", reason="boom", rollback_complete=True))

    dynamodb = notify.session.client("dynamodb")
    stored = "".join(
        json.dumps(dynamodb.scan(TableName=table)["Items"]) for table in notify.deployment.tables.values()
    )
    responses = notify.api("GET", "/notifications").get_data(as_text=True)
    output = capsys.readouterr()
    for secret in (WEBHOOK_PATH, "XXXXsecretXXXXwebhookXX", ROUTING_KEY, "/x/y/zzzz"):
        assert secret not in stored
        assert secret not in responses
        assert secret not in caplog.text
        assert secret not in output.out + output.err
    assert "chaosplane/notifications/test" in stored  # the record holds the secret's ARN
    assert "notification not delivered" in caplog.text  # the failure itself is logged


def test_invalid_requests_are_422_and_change_nothing(notify: Platform, loopback: LoopbackServer) -> None:
    configure(notify, loopback)
    before = notify.json("GET", "/notifications")
    secrets = notify.session.client("secretsmanager")
    secret_before = secrets.get_secret_value(SecretId="chaosplane/notifications/test")["SecretString"]
    bad = [
        ("/notifications/slack", {"webhook_url": "https://evil.example.com/services/T/B/X"}),
        ("/notifications/slack", {"webhook_url": "http://hooks.slack.com/services/T/B/X"}),  # not https
        ("/notifications/slack", {"webhook_url": "https://user:pw@hooks.slack.com/services/T/B/X"}),
        ("/notifications/slack", {"webhook_url": "not a url at all"}),
        ("/notifications/slack", {"webhook_url": "https://hooks.slack.com/services/T/B/X", "x": 1}),
        ("/notifications/pagerduty", {"routing_key": "short"}),
        ("/notifications/pagerduty", {"routing_key": "!" * 32}),
        ("/notifications/email", {"addresses": ["ops@example.com", "not-an-address"]}),
        ("/notifications/email", {"addresses": []}),
        ("/notifications", {"notify_on": ["failed", "exploded"]}),
    ]
    for path, body in bad:
        response = notify.api("PUT", path, body)
        assert response.status_code == 422, (path, body, response.get_data(as_text=True))
        text = response.get_data(as_text=True)
        assert "evil.example.com" not in text and "pw@" not in text  # the input is never echoed
    # a body sent as a form (curl without a JSON Content-Type) is refused unread, and not echoed back
    form = notify.http.open(
        "/notifications/slack",
        method="PUT",
        data=json.dumps({"webhook_url": loopback.url("/services/T/B/formsecret")}),
        headers={
            "Authorization": f"Bearer {notify.token()}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert form.status_code == 415 and "formsecret" not in form.get_data(as_text=True)
    assert notify.json("GET", "/notifications") == before
    assert secrets.get_secret_value(SecretId="chaosplane/notifications/test")["SecretString"] == secret_before
    sns = notify.session.client("sns")
    topic = notify.deployment.topics["NotificationsTopic"]
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


def test_viewers_and_operators_read_only_admins_change(notify: Platform, loopback: LoopbackServer) -> None:
    body = {"webhook_url": loopback.url(WEBHOOK_PATH)}
    for role in (Role.VIEWER, Role.OPERATOR):
        token = notify.token(role)
        assert notify.api("PUT", "/notifications/slack", body, token=token).status_code == 403
        assert notify.api("DELETE", "/notifications/pagerduty", token=token).status_code == 403
        assert notify.api("GET", "/notifications", token=token).status_code == 200
    assert notify.json("GET", "/notifications")["slack"] is None
    # another team sees nothing of ours
    configure(notify, loopback)
    assert notify.json("GET", "/notifications", token=notify.token(team="blue"))["slack"] is None


def test_email_addresses_subscribe_with_a_team_filter_and_unsubscribe(notify: Platform) -> None:
    sns = notify.session.client("sns")
    topic = notify.deployment.topics["NotificationsTopic"]
    view = notify.json(
        "PUT",
        "/notifications/email",
        {"addresses": ["ops@example.com", "OPS@example.com", "sre@example.com"]},
    )
    assert view["email"] == {"addresses": ["ops@example.com", "sre@example.com"]}
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Endpoint"] for s in subscriptions) == ["ops@example.com", "sre@example.com"]
    for subscription in subscriptions:
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])[
            "Attributes"
        ]
        assert json.loads(attributes["FilterPolicy"]) == {"team": [TEAM]}
        assert subscription["Protocol"] == "email"

    notify.json("PUT", "/notifications/email", {"addresses": ["sre@example.com", "dev@example.com"]})
    endpoints = sorted(
        s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    )
    assert endpoints == ["dev@example.com", "sre@example.com"]

    # an address of another team's is refused, and nothing changes
    response = notify.api(
        "PUT", "/notifications/email", {"addresses": ["sre@example.com"]}, token=notify.token(team="blue")
    )
    assert response.status_code == 409
    assert notify.json("GET", "/notifications", token=notify.token(team="blue"))["email"] is None

    notify.json("DELETE", "/notifications/email", expect=204)
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    assert notify.json("GET", "/notifications")["email"] is None


# -- sending ----------------------------------------------------------------------------------------


def test_a_failed_run_posts_block_kit_to_slack(notify: Platform, loopback: LoopbackServer) -> None:
    configure(notify, loopback, pagerduty=False)
    put_event(notify, event("failed", reason="i-0abc: <AccessDenied>", rollback_complete=True))
    (request,) = received(loopback, 1)
    assert request.path == WEBHOOK_PATH
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "text": "Chaos run failed: stop <web> & co (ec2-stop), team test: i-0abc: <AccessDenied>",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": ":x: Chaos run failed"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*stop &lt;web&gt; &amp; co* · `ec2-stop` · team *test*"},
                "fields": [
                    {"type": "mrkdwn", "text": "*Status*\nrunning → failed"},
                    {"type": "mrkdwn", "text": "*Rollback*\ncomplete"},
                    {"type": "mrkdwn", "text": f"*Run*\n`{RUN}`"},
                    {"type": "mrkdwn", "text": "*Started by*\napi"},
                ],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Reason*\ni-0abc: &lt;AccessDenied&gt;"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"Chaosplane · experiment `{EXPERIMENT}` · 2026-11-25T10:00:00.123456Z",
                    }
                ],
            },
        ],
    }


def test_pagerduty_triggers_on_an_alarm_halt_and_resolves_when_rolled_back(
    notify: Platform, loopback: LoopbackServer
) -> None:
    configure(notify, loopback, slack=False)
    store_run(notify, status="stopping")
    put_event(notify, event("stopping", reason="alarm web-5xx is in ALARM", stop_kind="alarm"))
    (trigger,) = received(loopback, 1)
    assert trigger.path == PD_PATH
    assert trigger.body == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": f"chaosplane-{RUN}",
        "payload": {
            "summary": "Chaos run halted by a stop condition: stop <web> & co (ec2-stop), team test: "
            "alarm web-5xx is in ALARM",
            "severity": "warning",
            "source": "chaosplane/test",
            "timestamp": "2026-11-25T10:00:00.123456Z",
            "component": "stop <web> & co",
            "group": "test",
            "class": "ec2-stop",
            "custom_details": {
                "run_id": RUN,
                "experiment_id": EXPERIMENT,
                "status": "stopping",
                "stop_kind": "alarm",
                "rollback_complete": None,
                "reason": "alarm web-5xx is in ALARM",
                "trigger": "api",
            },
        },
        "client": "Chaosplane",
    }
    store_run(notify, status="stopped")
    put_event(
        notify,
        event("stopped", "stopping", reason="alarm web-5xx", stop_kind="alarm", rollback_complete=True),
    )
    resolve = received(loopback, 2)[1]
    assert resolve.body == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": f"chaosplane-{RUN}",
    }


def test_pagerduty_failed_run_triggers_then_resolves_but_never_resolves_an_incomplete_rollback(
    notify: Platform, loopback: LoopbackServer
) -> None:
    configure(notify, loopback, slack=False)
    result = invoke_notifier(notify, event("failed", reason="boom", rollback_complete=True))
    assert [(d["channel"], d["action"], d["ok"]) for d in result["deliveries"]] == [
        ("pagerduty", "trigger", True),
        ("pagerduty", "resolve", True),
    ]
    first, second = received(loopback, 2)
    assert (first.body["event_action"], first.body["payload"]["severity"]) == ("trigger", "error")
    assert second.body["event_action"] == "resolve"

    loopback.received.clear()
    result = invoke_notifier(notify, event("failed", reason="i-1 not restored", rollback_complete=False))
    assert [(d["action"], d["ok"]) for d in result["deliveries"]] == [("trigger", True)]
    (only,) = received(loopback, 1)
    assert only.body["payload"]["severity"] == "critical"
    assert only.body["payload"]["summary"].startswith("Chaos run failed; rollback incomplete")

    # a user's stop and a completed run page nobody
    loopback.received.clear()
    assert invoke_notifier(notify, event("stopping", stop_kind="user"))["deliveries"] == []
    assert invoke_notifier(notify, event("completed", rollback_complete=True))["deliveries"] == []


def test_5xx_is_retried_with_backoff_until_delivered(notify: Platform, loopback: LoopbackServer) -> None:
    configure(notify, loopback, pagerduty=False)
    loopback.statuses = [500, 503]
    result = invoke_notifier(notify, event("failed", rollback_complete=True))
    assert result["deliveries"] == [
        {"channel": "slack", "action": "post", "ok": True, "status": 200, "attempts": 3, "error": None}
    ]
    bodies = [r.body for r in received(loopback, 3)]
    assert bodies[0] == bodies[1] == bodies[2]


def test_a_dead_endpoint_is_reported_and_never_raises(
    notify: Platform, loopback: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    notify.json(
        "PUT", "/notifications/slack", {"webhook_url": f"http://127.0.0.1:{_closed_port()}/services/T/B/dead"}
    )
    notify.json("PUT", "/notifications/pagerduty", {"routing_key": ROUTING_KEY})
    loopback.statuses = [500] * 8  # PagerDuty answers 500 to every attempt
    result = invoke_notifier(notify, event("failed", rollback_complete=False))  # no FunctionError
    assert result["deliveries"] == [
        {
            "channel": "slack",
            "action": "post",
            "ok": False,
            "status": None,
            "attempts": 4,
            "error": "ConnectionError",
        },
        {
            "channel": "pagerduty",
            "action": "trigger",
            "ok": False,
            "status": 500,
            "attempts": 4,
            "error": "HTTP 500",
        },
    ]
    assert "notification not delivered: slack post" in caplog.text
    assert "/services/T/B/dead" not in caplog.text


def test_statuses_the_team_chose_and_email_through_the_topic(
    notify: Platform, loopback: LoopbackServer
) -> None:
    configure(notify, loopback, pagerduty=False)
    notify.json("PUT", "/notifications/email", {"addresses": ["ops@example.com"]})
    # a queue standing in for the email subscriber, with the same filter policy
    sqs, sns = notify.session.client("sqs"), notify.session.client("sns")
    queue = sqs.create_queue(QueueName="mail")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=notify.deployment.topics["NotificationsTopic"],
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": json.dumps({"team": [TEAM]}), "RawMessageDelivery": "true"},
    )

    assert invoke_notifier(notify, event("completed", rollback_complete=True))["deliveries"] == []
    notify.json("PUT", "/notifications", {"notify_on": ["completed"]})
    result = invoke_notifier(notify, event("completed", rollback_complete=True))
    assert [(d["channel"], d["ok"]) for d in result["deliveries"]] == [("slack", True), ("email", True)]
    assert invoke_notifier(notify, event("failed", rollback_complete=True))["deliveries"] == []

    messages = sqs.receive_message(QueueUrl=queue, MessageAttributeNames=["All"], WaitTimeSeconds=1)[
        "Messages"
    ]
    (message,) = messages
    assert message["MessageAttributes"]["team"]["StringValue"] == TEAM
    assert message["Body"].startswith("Chaos run completed.\n\nExperiment: stop <web> & co")


def test_a_malformed_or_foreign_event_is_ignored(notify: Platform) -> None:
    assert invoke_notifier(notify, {"run_id": RUN})["ignored"] == "malformed run event"


# -- fed by real runs ----------------------------------------------------------------------------


def test_real_runs_feed_the_notifier_and_a_dead_endpoint_never_touches_a_run(
    notify: Platform, loopback: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    """No hand-made events here: the runs' own events, through the rule, to the notifier."""
    caplog.set_level(logging.INFO)
    notify.json(
        "PUT", "/notifications/slack", {"webhook_url": f"http://127.0.0.1:{_closed_port()}/services/T/B/dead"}
    )
    notify.json("PUT", "/notifications/pagerduty", {"routing_key": ROUTING_KEY})
    notify.json(
        "PUT", "/notifications", {"notify_on": ["failed", "stopped", "skipped", "stopping", "completed"]}
    )
    instances = notify.instances(2, {"app": "web"})
    experiment = setup_experiment(notify)

    completed = notify.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert notify.wait_for_result(completed["result_id"])["status"] == "completed"
    wait_until(lambda: "notification not delivered: slack post" in caplog.text, 30)
    assert set(notify.states(instances).values()) == {"running"}

    notify.ec2.stop_instances(InstanceIds=instances)  # nothing left to hit: this run fails
    failed = notify.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert notify.wait_for_result(failed["result_id"])["status"] == "failed"
    trigger, resolve = (r.body for r in received(loopback, 2))
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == f"chaosplane-{failed['result_id']}"
    assert trigger["routing_key"] == ROUTING_KEY


def test_a_forged_event_can_neither_resolve_an_incident_nor_page_for_another_team(
    notify: Platform, loopback: LoopbackServer
) -> None:
    configure(notify, loopback, slack=False)
    # The run ended with i-0abc still stopped; an event claims its rollback completed...
    store_run(notify, status="failed", unrestored="i-0abc")
    result = invoke_notifier(notify, event("failed", reason="boom", rollback_complete=True))
    # ...the incident is triggered, and stays open: the store says what is restored, not the event.
    assert [(d["channel"], d["action"]) for d in result["deliveries"]] == [("pagerduty", "trigger")]
    (trigger,) = received(loopback, 1)
    assert trigger.body["event_action"] == "trigger"
    # An event naming the run under another team's name pages nobody.
    assert invoke_notifier(notify, event("failed", team="other", rollback_complete=False)) == {
        "ignored": "no such run of the team",
        "run_id": RUN,
    }


def test_run_events_reach_the_notifier_and_the_executor_only_from_the_stack_s_own_bus(
    notify: Platform,
) -> None:
    events = notify.session.client("events")
    for function in ("NotifierFunction", "ExecutorFunction"):
        arn = notify.session.client("lambda").get_function(
            FunctionName=notify.deployment.functions[function]
        )["Configuration"]["FunctionArn"]
        on_ours = events.list_rule_names_by_target(TargetArn=arn, EventBusName=notify.deployment.event_bus)
        on_default = events.list_rule_names_by_target(TargetArn=arn)["RuleNames"]
        patterns = [
            json.loads(events.describe_rule(Name=rule)["EventPattern"]) for rule in on_default
        ]  # what the default bus still brings: only AWS's own events (alarms, executions)
        assert all(p["source"][0].startswith("aws.") for p in patterns), (function, patterns)
        assert on_ours["RuleNames"], function  # the run events and the lever's fan-out
