"""Notifications: the notifier (run events to Slack, PagerDuty, email) and the API's settings service.

Secrets Manager holds the teams' channels; SNS carries email. Both clients are made on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chaosplane.errors import NotFound
from chaosplane.models import JournalStatus
from chaosplane.notifications import Notifications
from chaosplane.notify import EmailMessage, HttpSender, Notifier, StoredRun
from chaosplane.settings import Settings, load_settings
from chaosplane.store import Store
from chaosplane.wiring.clients import Clients
from chaosplane.wiring.telemetry import build_telemetry


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class SecretsManagerVault:
    """The teams' notification secrets: one JSON secret per team."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, name: str) -> dict[str, str] | None:
        try:
            value = self._client.get_secret_value(SecretId=name)["SecretString"]
        except ClientError as err:
            if _code(err) == "ResourceNotFoundException":
                return None
            raise
        return {str(k): str(v) for k, v in json.loads(value).items()}

    def write(self, name: str, value: dict[str, str]) -> str:
        text = json.dumps(value)
        try:
            return str(self._client.put_secret_value(SecretId=name, SecretString=text)["ARN"])
        except ClientError as err:
            if _code(err) != "ResourceNotFoundException":
                raise
        created = self._client.create_secret(
            Name=name, SecretString=text, Description="Chaosplane notification channels of one team"
        )
        return str(created["ARN"])

    def delete(self, name: str) -> None:
        # Without a recovery window, so that the team can set a channel again at once.
        try:
            self._client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as err:
            if _code(err) != "ResourceNotFoundException":
                raise


class SnsEmailSubscriptions:
    """Email subscriptions of the notifications topic, one filter policy on `team` each."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def team_of(self, address: str) -> str | None:
        pages = self._client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=self._topic_arn)
        for page in pages:
            for subscription in page.get("Subscriptions", []):
                if subscription["Protocol"] != "email" or subscription["Endpoint"].lower() != address.lower():
                    continue
                arn = subscription["SubscriptionArn"]
                if not arn.startswith("arn:"):
                    return ""  # pending confirmation: its attributes cannot be read
                attributes = self._client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
                teams = json.loads(attributes.get("FilterPolicy") or "{}").get("team") or [""]
                return str(teams[0])
        return None

    def subscribe(self, address: str, team: str) -> str:
        response = self._client.subscribe(
            TopicArn=self._topic_arn,
            Protocol="email",
            Endpoint=address,
            Attributes={
                "FilterPolicy": json.dumps({"team": [team]}),
                "FilterPolicyScope": "MessageAttributes",
            },
            ReturnSubscriptionArn=True,  # the real ARN even while pending: needed to unsubscribe
        )
        return str(response["SubscriptionArn"])

    def unsubscribe(self, subscription_arn: str) -> None:
        try:
            self._client.unsubscribe(SubscriptionArn=subscription_arn)
        except ClientError as err:
            if _code(err) not in ("NotFound", "NotFoundException"):
                raise


def email_publisher(client: Any, topic_arn: str) -> Callable[[EmailMessage], None]:
    def publish(message: EmailMessage) -> None:
        client.publish(
            TopicArn=topic_arn,
            Subject=message.subject,
            Message=message.body,
            MessageAttributes={"team": {"DataType": "String", "StringValue": message.team}},
        )

    return publish


def build_notifications(
    store: Store, settings: Settings | None = None, *, clients: Clients | None = None
) -> Notifications:
    """The API's notification settings service."""
    settings = settings or load_settings()
    clients = clients or Clients(settings)
    topic = settings.notifications_topic_arn
    return Notifications(
        store,
        SecretsManagerVault(clients.lazy("secretsmanager")),
        SnsEmailSubscriptions(clients.lazy("sns"), topic) if topic else None,
        secret_prefix=settings.notifications_secret_prefix,
        allowed_hosts=settings.allowed_webhook_hosts,
    )


def build_notifier(settings: Settings | None = None) -> Notifier:
    settings = settings or load_settings()
    clients = Clients(settings)
    store = Store(settings)
    topic = settings.notifications_topic_arn

    def read_secret(arn: str) -> dict[str, str]:
        value = clients.secretsmanager.get_secret_value(SecretId=arn)["SecretString"]
        return {str(k): str(v) for k, v in json.loads(value).items()}

    def stored_run(run_id: str) -> StoredRun | None:
        try:
            result = store.get_result(run_id, team=None)
        except NotFound:
            return None
        restored = all(entry.status is JournalStatus.ROLLED_BACK for entry in store.journal(run_id))
        return StoredRun(team=result.team, final=result.status.is_final, restored=restored)

    return Notifier(
        config=store.notifications,
        secrets=read_secret,
        http=HttpSender(),
        publish_email=email_publisher(clients.lazy("sns"), topic) if topic else None,
        pagerduty_url=settings.pagerduty_events_url,
        allowed_hosts=settings.allowed_webhook_hosts,
        stored_run=stored_run,
        telemetry=build_telemetry(settings),
    )
