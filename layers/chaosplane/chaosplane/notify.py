"""Notifications of run state changes: what to send, to whom, in each provider's format; and sending it.

The run lifecycle puts one event per state change on EventBridge (`RunEvent`, the public "Run
events" contract). The notifier Lambda gets each one and, for the run's team, decides:

- Slack and email: on the statuses the team chose (`notify_on`); "stopping" only when an alarm or
  the emergency stop halted the run (a user who stops a run knows it already).
- PagerDuty (Events API v2): `trigger` when a run fails or is halted by a stop condition or the
  emergency stop; `resolve` when its rollback completes. A final status whose rollback did not
  complete is never resolved: its resources may still be faulted, so the incident stays open
  (and is `critical`). Both share `dedup_key = "chaosplane-<run id>"`, so they pair up.

A notification never affects a run: every channel is tried on its own, failures are logged (never
with a secret) and reported in the result, and nothing here raises to the caller.
Payload builders are pure; the sender and the AWS side are injected.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from aws_lambda_powertools.utilities.parser.envelopes import EventBridgeEnvelope
from pydantic import BaseModel, Field, ValidationError
from urllib3.connectionpool import ConnectionPool
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from chaosplane.egress import guarded_session
from chaosplane.events import RUN_EVENT_SOURCE, RUN_STATE_CHANGE, EventStatus, RunEvent
from chaosplane.models import StopKind
from chaosplane.telemetry import Metric, NoTelemetry, Telemetry, emit_safely

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SLACK_HOST = "hooks.slack.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

logger = logging.getLogger(__name__)
_sending = threading.local()


class _QuietWhileSending(logging.Filter):
    """urllib3 logs the request URL (on retries, at debug), and a Slack webhook URL is a secret.

    While this thread sends a notification, urllib3's own records are dropped; our log lines name
    the channel and a masked destination instead. Other urllib3 users (Kubernetes) are unaffected.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_sending, "active", False)


_QUIET = _QuietWhileSending()
for _name in ("connectionpool", "connection", "poolmanager", "response", "util.retry"):
    logging.getLogger(f"urllib3.{_name}").addFilter(_QUIET)


# -- a team's configuration (what DynamoDB holds: nothing secret) --------------------------------


class NotifyOn(StrEnum):
    """Statuses that notify Slack and email. `stopping` means halted by an alarm or emergency stop."""

    COMPLETED = "completed"
    STOPPED = "stopped"
    FAILED = "failed"
    SKIPPED = "skipped"
    STOPPING = "stopping"


DEFAULT_NOTIFY_ON = (NotifyOn.FAILED, NotifyOn.STOPPED, NotifyOn.SKIPPED, NotifyOn.STOPPING)


class EmailSubscription(BaseModel):
    address: str
    subscription_arn: str


class TeamNotifications(BaseModel):
    """A team's notification settings as stored on its team record.

    `slack` and `pagerduty` hold masked hints (set = configured); the webhook URL and routing key
    live only in the Secrets Manager secret `secret_arn`.
    """

    notify_on: list[NotifyOn] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_ON))
    secret_arn: str | None = None
    slack: str | None = None
    pagerduty: str | None = None
    email: list[EmailSubscription] = Field(default_factory=list)


SLACK_SECRET_KEY = "slack_webhook_url"
PAGERDUTY_SECRET_KEY = "pagerduty_routing_key"


def mask_webhook(url: str) -> str:
    """`hooks.slack.com/…/Ab1z`: enough to recognise a webhook, never enough to use it."""
    parts = urlsplit(url)
    return f"{parts.netloc}/…/{url[-4:]}"


def mask_key(key: str) -> str:
    return f"…{key[-4:]}"


def webhook_allowed(url: str, allowed_hosts: frozenset[str]) -> bool:
    """An https URL on an allowed host; plain http only for an allowed loopback host (tests, local)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return False
    if host not in allowed_hosts or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and host in LOOPBACK_HOSTS


# -- what to send ---------------------------------------------------------------------------------


class PagerDutyAction(StrEnum):
    TRIGGER = "trigger"
    RESOLVE = "resolve"


class Severity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"


def chat_worthy(event: RunEvent, notify_on: list[NotifyOn]) -> bool:
    """Whether Slack and email hear about this event."""
    if event.new_status is EventStatus.STOPPING:
        return event.halted and NotifyOn.STOPPING in notify_on
    return event.new_status.is_final and NotifyOn(event.new_status.value) in notify_on


def pagerduty_plan(event: RunEvent) -> list[tuple[PagerDutyAction, Severity | None]]:
    """The PagerDuty events for one run event, in the order they must be sent."""
    final = event.new_status.is_final
    plan: list[tuple[PagerDutyAction, Severity | None]] = []
    if final and event.rollback_complete is False:
        plan.append((PagerDutyAction.TRIGGER, Severity.CRITICAL))  # resources may still be faulted
    elif event.new_status is EventStatus.FAILED:
        plan.append((PagerDutyAction.TRIGGER, Severity.ERROR))
    elif event.new_status is EventStatus.STOPPING and event.halted:
        plan.append((PagerDutyAction.TRIGGER, Severity.WARNING))
    if final and event.rollback_complete is True and (event.new_status is EventStatus.FAILED or event.halted):
        plan.append((PagerDutyAction.RESOLVE, None))
    return plan


def dedup_key(run_id: str) -> str:
    return f"chaosplane-{run_id}"


def _headline(event: RunEvent) -> str:
    status = event.new_status
    if status is EventStatus.STOPPING:
        by = "the emergency stop" if event.stop_kind is StopKind.EMERGENCY else "a stop condition"
        return f"Chaos run halted by {by}"
    if status is EventStatus.FAILED and event.rollback_complete is False:
        return "Chaos run failed; rollback incomplete"
    return f"Chaos run {status.value}"


_EMOJI = {
    EventStatus.STOPPING: ":rotating_light:",
    EventStatus.FAILED: ":x:",
    EventStatus.STOPPED: ":octagonal_sign:",
    EventStatus.COMPLETED: ":white_check_mark:",
    EventStatus.SKIPPED: ":fast_forward:",
}


def _slack_escape(text: str) -> str:
    # Slack's mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting#escaping)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rollback_text(event: RunEvent) -> str:
    if event.rollback_complete is None:
        return "n/a"
    return "complete" if event.rollback_complete else "INCOMPLETE: resources may still be faulted"


def _when(event: RunEvent) -> str:
    return event.time.isoformat().replace("+00:00", "Z")


def slack_message(event: RunEvent) -> dict[str, Any]:
    """An incoming-webhook message: Block Kit `blocks` plus the `text` fallback for notifications."""
    headline = _headline(event)
    name = _slack_escape(event.experiment_name)
    transition = f"{event.old_status.value} → " if event.old_status else ""
    fallback = f"{headline}: {event.experiment_name} ({event.fault}), team {event.team}"
    if event.reason:
        fallback += f": {event.reason}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _clip(f"{_EMOJI.get(event.new_status, '')} {headline}", 150),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"*{name}* · `{event.fault}` · team *{_slack_escape(event.team)}*", 3000),
            },
            "fields": [
                {"type": "mrkdwn", "text": f"*Status*\n{transition}{event.new_status.value}"},
                {"type": "mrkdwn", "text": f"*Rollback*\n{_rollback_text(event)}"},
                {"type": "mrkdwn", "text": f"*Run*\n`{event.run_id}`"},
                {"type": "mrkdwn", "text": f"*Started by*\n{_slack_escape(event.trigger)}"},
            ],
        },
    ]
    if event.reason:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(f"*Reason*\n{_slack_escape(event.reason)}", 3000)},
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Chaosplane · experiment `{event.experiment_id}` · {_when(event)}",
                }
            ],
        }
    )
    return {"text": _clip(fallback, 3000), "blocks": blocks}


def pagerduty_event(
    event: RunEvent, action: PagerDutyAction, severity: Severity | None, routing_key: str
) -> dict[str, Any]:
    """An Events API v2 event (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/)."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action.value,
        "dedup_key": dedup_key(event.run_id),
    }
    if action is PagerDutyAction.TRIGGER:
        summary = f"{_headline(event)}: {event.experiment_name} ({event.fault}), team {event.team}"
        if event.reason:
            summary += f": {event.reason}"
        body["payload"] = {
            "summary": _clip(summary, 1024),
            "severity": (severity or Severity.ERROR).value,
            "source": f"chaosplane/{event.team}",
            "timestamp": _when(event),
            "component": event.experiment_name,
            "group": event.team,
            "class": event.fault,
            "custom_details": {
                "run_id": event.run_id,
                "experiment_id": event.experiment_id,
                "status": event.new_status.value,
                "stop_kind": event.stop_kind.value if event.stop_kind else None,
                "rollback_complete": event.rollback_complete,
                "reason": event.reason,
                "trigger": event.trigger,
            },
        }
        body["client"] = "Chaosplane"
    return body


@dataclass(frozen=True)
class EmailMessage:
    team: str
    subject: str
    body: str


def email_message(event: RunEvent) -> EmailMessage:
    # SNS email subjects: ASCII-friendly, no line breaks, at most 100 characters.
    subject = re.sub(
        r"[\r\n]+", " ", f"[Chaosplane] {event.team}: {event.experiment_name} {_headline(event)}"
    )
    lines = [
        f"{_headline(event)}.",
        "",
        f"Experiment: {event.experiment_name} ({event.experiment_id})",
        f"Fault:      {event.fault}",
        f"Team:       {event.team}",
        f"Run:        {event.run_id}",
        f"Status:     {event.old_status.value + ' -> ' if event.old_status else ''}{event.new_status.value}",
        f"Rollback:   {_rollback_text(event)}",
        f"Started by: {event.trigger}",
        f"Time:       {_when(event)}",
    ]
    if event.reason:
        lines += ["", f"Reason: {event.reason}"]
    return EmailMessage(team=event.team, subject=_clip(subject, 100), body="\n".join(lines) + "\n")


# -- sending --------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """What happened to one notification; the notifier's result lists them."""

    channel: str
    action: str
    ok: bool
    status: int | None = None
    attempts: int = 0
    error: str | None = None


class _Retry(Retry):
    """urllib3's Retry, counting failed attempts and capping a provider's Retry-After."""

    MAX_RETRY_AFTER = 10.0

    def __init__(self, *args: Any, counter: list[int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = counter if counter is not None else [0]

    def new(self, **kwargs: Any) -> Self:
        fresh = super().new(**kwargs)
        fresh.counter = self.counter
        return fresh

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        self.counter[0] += 1
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, self.MAX_RETRY_AFTER)


class HttpSender:
    """POSTs JSON with short timeouts, retrying connection errors, 429 and 5xx with backoff.

    A retried POST may deliver twice (a timeout after the provider acted): acceptable for a
    notification, and PagerDuty deduplicates by `dedup_key`.
    """

    RETRY_STATUSES = (429, 500, 502, 503, 504)

    def __init__(
        self, retries: int = 3, backoff_factor: float = 0.5, timeout: tuple[float, float] = (3.05, 5.0)
    ):
        self.retries = retries
        self.backoff_factor = backoff_factor
        self.timeout = timeout

    def post(
        self, channel: str, action: str, url: str, payload: Mapping[str, Any], shown_as: str
    ) -> Delivery:
        counter = [0]
        retry = _Retry(
            total=self.retries,
            backoff_factor=self.backoff_factor,
            backoff_jitter=self.backoff_factor / 2,
            status_forcelist=self.RETRY_STATUSES,
            allowed_methods=frozenset({"POST"}),
            raise_on_status=False,
            counter=counter,
        )
        _sending.active = True
        try:
            with guarded_session(retries=retry) as session:  # one per send: sessions are not thread-safe
                response = session.post(url, json=payload, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as err:
            # str(err) would carry the URL, i.e. the secret: only the error's kind is logged.
            delivery = Delivery(
                channel, action, ok=False, attempts=max(counter[0], 1), error=type(err).__name__
            )
            logger.warning("notification not delivered: %s", _describe(delivery, shown_as))
            return delivery
        finally:
            _sending.active = False
        history = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
        delivery = Delivery(
            channel, action, ok=200 <= response.status_code < 300, status=response.status_code
        )
        delivery.attempts = len(history) + 1
        if not delivery.ok:
            delivery.error = f"HTTP {response.status_code}"
            logger.warning("notification not delivered: %s", _describe(delivery, shown_as))
        else:
            logger.info("notification delivered: %s", _describe(delivery, shown_as))
        return delivery


def _describe(delivery: Delivery, shown_as: str) -> str:
    return (
        f"{delivery.channel} {delivery.action} to {shown_as}: status={delivery.status} "
        f"attempts={delivery.attempts} error={delivery.error}"
    )


# -- the notifier ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredRun:
    """What the store says of an event's run: the notifier trusts the store, not the event."""

    team: str
    final: bool
    restored: bool  # every change its journal holds is rolled back


@dataclass
class Notifier:
    """Sends the notifications of one run event to its team's channels.

    Collaborators: `config(team)` reads the team's settings; `secrets(arn)` reads its secret;
    `publish_email(message)` publishes to the SNS topic (None: email is not deployed);
    `stored_run(run_id)` reads the run from the store (None: no such run). Without it the event
    is taken at its word, which only the tests of the messages do. An event whose run the store
    does not have for its team is ignored, and an incident is resolved only when the store says
    the run ended with everything restored: an event alone, forged or replayed, can neither page
    a team nor close its incident.
    """

    config: Callable[[str], TeamNotifications]
    secrets: Callable[[str], Mapping[str, str]]
    http: HttpSender
    publish_email: Callable[[EmailMessage], None] | None
    pagerduty_url: str = PAGERDUTY_EVENTS_URL
    allowed_hosts: frozenset[str] = frozenset({SLACK_HOST})
    stored_run: Callable[[str], StoredRun | None] | None = None
    telemetry: Telemetry = field(default_factory=NoTelemetry)

    def handle(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Handle an EventBridge event; never raises (a notification never affects a run)."""
        try:
            if raw.get("source") != RUN_EVENT_SOURCE or raw.get("detail-type") != RUN_STATE_CHANGE:
                return {"ignored": "not a Chaosplane run event"}
            # The whole EventBridge event is checked, then its detail parsed as the one contract.
            event = EventBridgeEnvelope().parse(data=dict(raw), model=RunEvent)
            if event is None:
                return {"ignored": "malformed run event", "fields": ["detail"]}
        except ValidationError as err:
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in err.errors()})
            logger.error("ignoring a malformed run event (fields: %s)", ", ".join(fields))
            return {"ignored": "malformed run event", "fields": fields}
        stored, known = self._stored(event)
        if known and (stored is None or stored.team != event.team):
            logger.warning("ignoring an event of run %s, which team %s has not", event.run_id, event.team)
            return {"ignored": "no such run of the team", "run_id": event.run_id}
        deliveries = self.notify(event, stored if known else None)
        for failed in (d for d in deliveries if not d.ok):
            emit_safely(self.telemetry, Metric.NOTIFICATION_FAILURES, Channel=failed.channel)
        return {
            "run_id": event.run_id,
            "status": event.new_status.value,
            "deliveries": [asdict(d) for d in deliveries],
        }

    def _stored(self, event: RunEvent) -> tuple[StoredRun | None, bool]:
        """The run as stored, and whether the store answered."""
        if self.stored_run is None:
            return None, False
        try:
            return self.stored_run(event.run_id), True
        except Exception as err:
            logger.warning("could not read run %s: %s", event.run_id, type(err).__name__)
            return None, False

    def notify(self, event: RunEvent, stored: StoredRun | None = None) -> list[Delivery]:
        """`stored`: the run as the store has it, None when the store could not say."""
        try:
            config = self.config(event.team)
        except Exception as err:
            logger.error("notification settings of team %s unreadable: %s", event.team, type(err).__name__)
            return [Delivery("settings", "read", ok=False, error=type(err).__name__)]
        chat = chat_worthy(event, config.notify_on)
        plan = pagerduty_plan(event) if config.pagerduty else []
        plan = self._as_stored(event, plan, stored)
        deliveries: list[Delivery] = []
        secret: Mapping[str, str] = {}
        if ((chat and config.slack) or plan) and config.secret_arn:
            try:
                secret = self.secrets(config.secret_arn)
            except Exception as err:
                logger.error("notification secret of team %s unreadable: %s", event.team, type(err).__name__)
                deliveries.append(Delivery("secrets", "read", ok=False, error=type(err).__name__))
        unreadable = bool(deliveries)
        if chat and config.slack:
            if SLACK_SECRET_KEY in secret:
                deliveries.append(self._slack(event, secret[SLACK_SECRET_KEY]))
            elif not unreadable:  # configured, yet the secret has no webhook: say so
                deliveries.append(
                    Delivery("slack", "post", ok=False, error="no webhook in the team's secret")
                )
        for action, severity in plan:
            if PAGERDUTY_SECRET_KEY not in secret:
                if not unreadable:
                    error = "no routing key in the team's secret"
                    deliveries.append(Delivery("pagerduty", action.value, ok=False, error=error))
                continue
            body = pagerduty_event(event, action, severity, secret[PAGERDUTY_SECRET_KEY])
            shown = f"PagerDuty key {mask_key(secret[PAGERDUTY_SECRET_KEY])}"
            deliveries.append(self.http.post("pagerduty", action.value, self.pagerduty_url, body, shown))
        if chat and config.email and self.publish_email is not None:
            deliveries.append(self._email(event))
        return deliveries

    def _as_stored(
        self,
        event: RunEvent,
        plan: list[tuple[PagerDutyAction, Severity | None]],
        stored: StoredRun | None,
    ) -> list[tuple[PagerDutyAction, Severity | None]]:
        """The PagerDuty actions the store bears out.

        A late "stopping" must not reopen an incident the run's final event already closed; and
        an incident is resolved only if the store says the run ended with everything restored.
        When the store could not say: trigger (a page too many beats a page missed), never
        resolve (an incident left open beats faults left unwatched; recovery resolves it later).
        """
        if self.stored_run is None:  # no store to ask (the messages' own tests): as the event says
            return plan
        kept = []
        for action, severity in plan:
            if action is PagerDutyAction.RESOLVE and not (stored and stored.final and stored.restored):
                logger.warning(
                    "run %s: not resolving its incident, the store does not say it ended restored",
                    event.run_id,
                )
                continue
            late = event.new_status is EventStatus.STOPPING and stored is not None and stored.final
            if action is PagerDutyAction.TRIGGER and late:
                logger.info(
                    "run %s already ended: no PagerDuty trigger for its late stopping event", event.run_id
                )
                continue
            kept.append((action, severity))
        return kept

    def _slack(self, event: RunEvent, url: str) -> Delivery:
        if not webhook_allowed(url, self.allowed_hosts):
            logger.error("slack webhook of team %s is on a host no longer allowed", event.team)
            return Delivery("slack", "post", ok=False, error="webhook host not allowed")
        return self.http.post(
            "slack", "post", url, slack_message(event), f"Slack webhook {mask_webhook(url)}"
        )

    def _email(self, event: RunEvent) -> Delivery:
        assert self.publish_email is not None
        try:
            self.publish_email(email_message(event))
        except Exception as err:
            logger.warning("email notification not published for team %s: %s", event.team, type(err).__name__)
            return Delivery("email", "publish", ok=False, attempts=1, error=type(err).__name__)
        logger.info("email notification published for team %s", event.team)
        return Delivery("email", "publish", ok=True, attempts=1)
