"""Notification decisions and payloads (pure), the webhook host check, and the HTTP sender's retries."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chaosplane.notifications import EmailRequest, secret_name
from chaosplane.notify import (
    Delivery,
    EventStatus,
    HttpSender,
    Notifier,
    NotifyOn,
    PagerDutyAction,
    RunEvent,
    Severity,
    StoredRun,
    TeamNotifications,
    chat_worthy,
    email_message,
    pagerduty_plan,
    slack_message,
    webhook_allowed,
)
from chaosplane.telemetry import Metric
from tests.fakes import RecordingTelemetry

T, R = PagerDutyAction.TRIGGER, PagerDutyAction.RESOLVE
DEFAULTS = TeamNotifications().notify_on
SLACK = frozenset({"hooks.slack.com"})


def run_event(new_status: str, **fields: Any) -> RunEvent:
    return RunEvent(
        run_id="r1",
        experiment_id="e1",
        experiment_name="web",
        team="shop",
        fault="ec2-stop",
        trigger="schedule",
        old_status=fields.pop("old_status", "running"),
        new_status=EventStatus(new_status),
        time=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        **fields,
    )


@pytest.mark.parametrize(
    ("status", "fields", "expected"),
    [
        ("pending", {"old_status": None}, []),
        ("running", {}, []),
        ("stopping", {"stop_kind": "user"}, []),
        ("stopping", {"stop_kind": "alarm"}, [(T, Severity.WARNING)]),
        ("stopping", {"stop_kind": "emergency"}, [(T, Severity.WARNING)]),
        ("stopped", {"stop_kind": "user", "rollback_complete": True}, []),
        ("stopped", {"stop_kind": "alarm", "rollback_complete": True}, [(R, None)]),
        ("stopped", {"stop_kind": "emergency", "rollback_complete": True}, [(R, None)]),
        ("failed", {"rollback_complete": True}, [(T, Severity.ERROR), (R, None)]),
        ("failed", {"rollback_complete": None}, [(T, Severity.ERROR)]),
        ("failed", {"rollback_complete": False}, [(T, Severity.CRITICAL)]),  # never resolved
        ("failed", {"stop_kind": "alarm", "rollback_complete": False}, [(T, Severity.CRITICAL)]),
        ("completed", {"rollback_complete": True}, []),
        ("completed", {"rollback_complete": False}, [(T, Severity.CRITICAL)]),
        ("skipped", {"old_status": None, "reason": "lever engaged"}, []),
    ],
)
def test_pagerduty_plan(status: str, fields: dict[str, Any], expected: list[Any]) -> None:
    assert pagerduty_plan(run_event(status, **fields)) == expected


def test_only_final_statuses_and_halts_reach_chat_and_email_as_the_team_chose() -> None:
    assert chat_worthy(run_event("failed"), DEFAULTS)
    assert chat_worthy(run_event("stopped", stop_kind="user"), DEFAULTS)
    assert chat_worthy(run_event("skipped"), DEFAULTS)
    assert chat_worthy(run_event("stopping", stop_kind="alarm"), DEFAULTS)
    assert not chat_worthy(run_event("stopping", stop_kind="user"), DEFAULTS)
    assert not chat_worthy(run_event("completed"), DEFAULTS)
    assert not chat_worthy(run_event("running"), list(NotifyOn))
    assert chat_worthy(run_event("completed"), [NotifyOn.COMPLETED])
    assert not chat_worthy(run_event("stopping", stop_kind="alarm"), [NotifyOn.FAILED])


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.slack.com/services/T/B/X", True),
        ("http://hooks.slack.com/services/T/B/X", False),
        ("https://hooks.slack.com.evil.example/services/T/B/X", False),
        ("https://evil.example/hooks.slack.com/services", False),
        ("https://x@hooks.slack.com/services/T/B/X", False),
        ("https://hooks.slack.com:99999/services", False),
        ("ftp://hooks.slack.com/services/T/B/X", False),
        ("http://127.0.0.1:8080/services/T/B/X", False),  # loopback, but not listed
    ],
)
def test_webhook_hosts(url: str, allowed: bool) -> None:
    assert webhook_allowed(url, SLACK) is allowed


def test_plain_http_only_for_a_listed_loopback_host() -> None:
    hosts = frozenset({"hooks.slack.com", "127.0.0.1", "chat.internal"})
    assert webhook_allowed("http://127.0.0.1:8080/x", hosts)
    assert not webhook_allowed("http://chat.internal/x", hosts)
    assert webhook_allowed("https://chat.internal/x", hosts)


def test_slack_mrkdwn_is_escaped_and_long_reasons_are_clipped() -> None:
    message = slack_message(run_event("failed", reason="<!channel> & " + "x" * 5000, rollback_complete=False))
    reason = message["blocks"][2]["text"]["text"]
    assert reason.startswith("*Reason*\n&lt;!channel&gt; &amp; ") and len(reason) == 3000
    assert message["blocks"][0]["text"]["text"] == ":x: Chaos run failed; rollback incomplete"
    assert "INCOMPLETE" in json.dumps(message["blocks"][1])
    assert len(message["text"]) <= 3000


def test_email_subject_is_one_short_line() -> None:
    message = email_message(run_event("stopping", stop_kind="emergency", reason="lever"))
    assert message.subject == "[Chaosplane] shop: web Chaos run halted by the emergency stop"
    long = run_event("failed").model_copy(update={"experiment_name": "a\nb" * 100})
    assert len(email_message(long).subject) <= 100 and "\n" not in email_message(long).subject


def test_secret_names_escape_teams_reversibly() -> None:
    assert secret_name("stack/notifications", "shop") == "stack/notifications/shop"
    assert secret_name("stack/notifications/", "a b/c=d") == "stack/notifications/a=20b=2Fc=3Dd"
    assert secret_name("p", "=20") != secret_name("p", " ")


def test_email_addresses_are_checked_and_deduplicated() -> None:
    assert EmailRequest(addresses=["A@x.io", "a@x.io", " b@y.co "]).addresses == ["A@x.io", "b@y.co"]
    for bad in ("a", "a@b", "a b@c.io", "a@b..c"):
        with pytest.raises(ValueError):
            EmailRequest(addresses=[bad])


# -- the sender, against a real server --------------------------------------------------------------


class _Scripted(BaseHTTPRequestHandler):
    statuses: list[tuple[int, dict[str, str]]] = []
    hits: list[Any] = []

    def do_POST(self) -> None:
        type(self).hits.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        status, headers = type(self).statuses.pop(0) if type(self).statuses else (200, {})
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Scripted.statuses, _Scripted.hits = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()
    httpd.server_close()


def test_429_and_5xx_are_retried_and_retry_after_is_honoured(server: str) -> None:
    _Scripted.statuses = [(429, {"Retry-After": "0"}), (502, {}), (200, {})]
    delivery = HttpSender(backoff_factor=0.01).post("slack", "post", server, {"a": 1}, "hook")
    assert (delivery.ok, delivery.status, delivery.attempts) == (True, 200, 3)
    assert _Scripted.hits == [{"a": 1}] * 3


def test_no_log_line_carries_the_url_even_at_debug(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 included: it logs URLs when it retries
    _Scripted.statuses = [(503, {}), (200, {})]
    HttpSender(backoff_factor=0.01).post("slack", "post", server + "/T/B/s3cr3t", {}, "hooks/…/cr3t")
    dead = HttpSender(retries=1, backoff_factor=0.01).post(
        "slack", "post", "http://127.0.0.1:9/s3cr3t", {}, "x"
    )
    assert dead.error == "ConnectionError" and dead.attempts == 2
    assert "s3cr3t" not in caplog.text
    assert "notification delivered: slack post to hooks/…/cr3t: status=200 attempts=2" in caplog.text


def test_a_4xx_is_not_retried(server: str) -> None:
    _Scripted.statuses = [(400, {})]
    delivery = HttpSender(backoff_factor=0.01).post("pagerduty", "trigger", server, {}, "key")
    assert (delivery.ok, delivery.status, delivery.attempts, delivery.error) == (False, 400, 1, "HTTP 400")


def _raw(event: RunEvent) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "Chaosplane Run State Change",
        "source": "chaosplane",
        "account": "123456789012",
        "time": "2026-12-01T09:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": event.model_dump(mode="json"),
    }


def test_the_notifier_survives_every_collaborator_failing() -> None:
    def broken(_: str) -> TeamNotifications:
        raise RuntimeError("dynamodb is down")

    telemetry = RecordingTelemetry()
    notifier = Notifier(
        config=broken, secrets=lambda arn: {}, http=HttpSender(), publish_email=None, telemetry=telemetry
    )
    result = notifier.handle(_raw(run_event("failed")))
    assert result["deliveries"] == [
        {
            "channel": "settings",
            "action": "read",
            "ok": False,
            "status": None,
            "attempts": 0,
            "error": "RuntimeError",
        }
    ]
    assert telemetry.dimensions(Metric.NOTIFICATION_FAILURES) == [{"Channel": "settings"}]
    assert notifier.handle({"source": "aws.ec2"}) == {"ignored": "not a Chaosplane run event"}


class _RecordingSender(HttpSender):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, Any]] = []

    def post(self, channel: str, action: str, url: str, payload: Any, shown_as: str) -> Delivery:
        self.sent.append((url, payload))
        return Delivery(channel, action, ok=True, status=202, attempts=1)


def _pagerduty_notifier(sender: HttpSender, stored: dict[str, StoredRun | Exception]) -> Notifier:
    def stored_run(run_id: str) -> StoredRun | None:
        found = stored.get(run_id)
        if isinstance(found, Exception):
            raise found
        return found

    return Notifier(
        config=lambda team: TeamNotifications(secret_arn="arn:secret", pagerduty="…1234", notify_on=[]),
        secrets=lambda arn: {"pagerduty_routing_key": "k" * 32},
        http=sender,
        publish_email=None,
        pagerduty_url="https://pd.example/v2/enqueue",
        stored_run=stored_run,
    )


def test_a_late_stopping_event_does_not_reopen_an_incident_of_a_run_that_ended() -> None:
    sender = _RecordingSender()
    stored: dict[str, StoredRun | Exception] = {"r1": StoredRun(team="shop", final=False, restored=False)}
    notifier = _pagerduty_notifier(sender, stored)
    halted = run_event("stopping", stop_kind="alarm")
    notifier.handle(_raw(halted))
    assert [p["event_action"] for _, p in sender.sent] == ["trigger"]
    stored["r1"] = StoredRun(team="shop", final=True, restored=True)
    notifier.handle(_raw(halted))
    assert len(sender.sent) == 1
    notifier.handle(_raw(run_event("failed", rollback_complete=True)))
    assert [p["event_action"] for _, p in sender.sent] == ["trigger", "trigger", "resolve"]
    assert sender.sent[0][0] == "https://pd.example/v2/enqueue"


def test_an_incident_is_resolved_only_when_the_store_says_the_run_ended_restored() -> None:
    sender = _RecordingSender()
    stored: dict[str, StoredRun | Exception] = {"r1": StoredRun(team="shop", final=True, restored=False)}
    notifier = _pagerduty_notifier(sender, stored)
    claims_restored = run_event("failed", rollback_complete=True)  # what a forged event would say
    notifier.handle(_raw(claims_restored))
    assert [p["event_action"] for _, p in sender.sent] == ["trigger"]  # paged, never resolved
    stored["r1"] = RuntimeError("throttled")  # the store cannot say: still never resolved
    notifier.handle(_raw(claims_restored))
    assert [p["event_action"] for _, p in sender.sent] == ["trigger", "trigger"]
    stored["r1"] = StoredRun(team="shop", final=True, restored=True)  # recovery restored it all
    notifier.handle(_raw(claims_restored))
    assert [p["event_action"] for _, p in sender.sent] == ["trigger", "trigger", "trigger", "resolve"]


@pytest.mark.parametrize("stored", [None, StoredRun(team="other", final=True, restored=True)])
def test_an_event_of_a_run_the_team_has_not_notifies_no_one(stored: StoredRun | None) -> None:
    sender = _RecordingSender()
    notifier = _pagerduty_notifier(sender, {"r1": stored} if stored else {})
    answer = notifier.handle(_raw(run_event("failed", rollback_complete=False)))
    assert answer == {"ignored": "no such run of the team", "run_id": "r1"}
    assert sender.sent == []


def test_an_unreadable_secret_is_reported_and_email_still_goes_out() -> None:
    config = TeamNotifications(
        secret_arn="arn:secret",
        slack="hooks/…/x",
        pagerduty="…1234",
        email=[{"address": "a@b.io", "subscription_arn": "s"}],
    )
    published: list[Any] = []

    def no_secret(arn: str) -> dict[str, str]:
        raise PermissionError("AccessDenied")

    sender = _RecordingSender()
    notifier = Notifier(
        config=lambda t: config, secrets=no_secret, http=sender, publish_email=published.append
    )
    deliveries = notifier.notify(run_event("failed", rollback_complete=False))
    assert [(d.channel, d.ok, d.error) for d in deliveries] == [
        ("secrets", False, "PermissionError"),
        ("email", True, None),
    ]
    assert sender.sent == [] and published[0].subject.startswith("[Chaosplane] shop: web Chaos run failed")
