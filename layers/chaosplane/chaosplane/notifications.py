"""A team's notification channels, configured through the API.

Where things live: the Slack webhook URL and PagerDuty routing key in one Secrets Manager secret
per team (JSON); everything else (which statuses notify, the secret's ARN, masked hints, email
addresses and their SNS subscriptions) on the team's record in DynamoDB. Email goes through one SNS
topic: each address is subscribed with a filter policy on the `team` message attribute.

Every request is validated in full before anything is written, and nothing here ever puts a
secret in an error message, a log line or a response.
"""

from __future__ import annotations

import logging
import re
from contextlib import AbstractContextManager
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from chaosplane.errors import Conflict, InvalidRequest
from chaosplane.notify import (
    PAGERDUTY_SECRET_KEY,
    SLACK_SECRET_KEY,
    EmailSubscription,
    NotifyOn,
    TeamNotifications,
    mask_key,
    mask_webhook,
    webhook_allowed,
)

logger = logging.getLogger(__name__)
MAX_EMAILS = 20
# Deliberately plain: SNS does the real check (it sends a confirmation), this one catches typos.
# An address's local part in RFC 5322's atoms and dots, spaces around it allowed (and dropped);
# the schema declares the same pattern.
EMAIL_PATTERN = r"^ *[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+ *$"
_EMAIL = re.compile(EMAIL_PATTERN)
_SECRET_NAME_SAFE = re.compile(r"[^A-Za-z0-9_+.@-]")

# -- requests and responses -----------------------------------------------------------------------


class NotifyOnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notify_on: list[NotifyOn] = Field(max_length=len(NotifyOn))


class SlackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook_url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=500)]


class PagerDutyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing_key: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9]{32}$")] = (
        Field(description="the integration key of an Events API v2 integration (32 characters)")
    )


class EmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    addresses: list[
        Annotated[str, StringConstraints(max_length=254), Field(json_schema_extra={"pattern": EMAIL_PATTERN})]
    ] = Field(min_length=1, max_length=MAX_EMAILS)

    @field_validator("addresses")
    @classmethod
    def _valid_and_unique(cls, addresses: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for index, address in enumerate(addresses):
            if not _EMAIL.fullmatch(address):
                raise ValueError(f"item {index} is not an email address")
            address = address.strip(" ")
            seen.setdefault(address.lower(), address)
        return list(seen.values())


class SlackView(BaseModel):
    webhook_url: str  # masked


class PagerDutyView(BaseModel):
    routing_key: str  # masked


class EmailView(BaseModel):
    addresses: list[str]


class NotificationsView(BaseModel):
    """What GET /notifications shows: which channels are set, never a secret."""

    team: str
    notify_on: list[NotifyOn]
    slack: SlackView | None
    pagerduty: PagerDutyView | None
    email: EmailView | None


# -- collaborators --------------------------------------------------------------------------------


class SecretVault(Protocol):
    """The team secrets (Secrets Manager in wiring.py)."""

    def read(self, name: str) -> dict[str, str] | None: ...
    def write(self, name: str, value: dict[str, str]) -> str: ...  # returns the secret's ARN
    def delete(self, name: str) -> None: ...


class EmailSubscriptions(Protocol):
    """Email subscriptions of the notifications topic (SNS in wiring.py)."""

    def team_of(self, address: str) -> str | None:
        """The team an address is already subscribed for; "" if subscribed but unreadable; None if not."""
        ...

    def subscribe(self, address: str, team: str) -> str: ...  # returns the subscription ARN
    def unsubscribe(self, subscription_arn: str) -> None: ...


class SettingsStore(Protocol):
    def notifications(self, team: str) -> TeamNotifications: ...
    def set_notifications(self, team: str, settings: TeamNotifications) -> None: ...
    def changing_notifications(self, team: str) -> AbstractContextManager[None]:
        """Held around every read-modify-write; refuses (Conflict) while another change holds it."""
        ...


def secret_name(prefix: str, team: str) -> str:
    """`<prefix>/<team>`, the team escaped to the characters Secrets Manager allows (reversibly)."""
    escaped = _SECRET_NAME_SAFE.sub(lambda m: "".join(f"={b:02X}" for b in m[0].encode()), team)
    return f"{prefix.rstrip('/')}/{escaped}"


class Notifications:
    """The API's side of notifications: read and change a team's channels."""

    def __init__(
        self,
        store: SettingsStore,
        vault: SecretVault | None,
        subscriptions: EmailSubscriptions | None,
        *,
        secret_prefix: str | None,
        allowed_hosts: frozenset[str],
    ) -> None:
        self._store = store
        self._vault = vault
        self._subscriptions = subscriptions
        self._prefix = secret_prefix
        self._allowed_hosts = allowed_hosts

    def view(self, team: str) -> NotificationsView:
        current = self._store.notifications(team)
        return NotificationsView(
            team=team,
            notify_on=current.notify_on,
            slack=SlackView(webhook_url=current.slack) if current.slack else None,
            pagerduty=PagerDutyView(routing_key=current.pagerduty) if current.pagerduty else None,
            email=EmailView(addresses=[s.address for s in current.email]) if current.email else None,
        )

    def set_notify_on(self, team: str, request: NotifyOnRequest) -> NotificationsView:
        with self._store.changing_notifications(team):
            current = self._store.notifications(team)
            unique = list(dict.fromkeys(request.notify_on))
            self._store.set_notifications(team, current.model_copy(update={"notify_on": unique}))
            return self.view(team)

    # -- secret channels ------------------------------------------------------------------------

    def set_slack(self, team: str, request: SlackRequest) -> NotificationsView:
        if not webhook_allowed(request.webhook_url, self._allowed_hosts):
            hosts = ", ".join(sorted(self._allowed_hosts))
            raise InvalidRequest(
                f"webhook_url must be an https:// Slack incoming webhook URL on {hosts}", field="webhook_url"
            )
        hint = mask_webhook(request.webhook_url)
        return self._set_secret(team, SLACK_SECRET_KEY, request.webhook_url, {"slack": hint})

    def set_pagerduty(self, team: str, request: PagerDutyRequest) -> NotificationsView:
        hint = mask_key(request.routing_key)
        return self._set_secret(team, PAGERDUTY_SECRET_KEY, request.routing_key, {"pagerduty": hint})

    def remove_slack(self, team: str) -> None:
        self._remove_secret(team, SLACK_SECRET_KEY, "slack")

    def remove_pagerduty(self, team: str) -> None:
        self._remove_secret(team, PAGERDUTY_SECRET_KEY, "pagerduty")

    def _vault_and_name(self, team: str) -> tuple[SecretVault, str]:
        if self._vault is None or not self._prefix:
            raise Conflict("notification secrets are not configured on this deployment")
        return self._vault, secret_name(self._prefix, team)

    def _set_secret(self, team: str, key: str, value: str, hint: dict[str, str]) -> NotificationsView:
        with self._store.changing_notifications(team):
            vault, name = self._vault_and_name(team)
            current = self._store.notifications(team)
            secret = {**(vault.read(name) or {}), key: value}
            arn = vault.write(name, secret)  # the secret first: the record never points at a missing one
            self._store.set_notifications(team, current.model_copy(update={**hint, "secret_arn": arn}))
            return self.view(team)

    def _remove_secret(self, team: str, key: str, field: str) -> None:
        with self._store.changing_notifications(team):
            vault, name = self._vault_and_name(team)
            current = self._store.notifications(team)
            secret = vault.read(name) or {}
            secret.pop(key, None)
            remaining = {**current.model_dump(), field: None}
            if not secret:
                remaining["secret_arn"] = None
            # The record first: once it no longer names the channel, nothing sends to it.
            self._store.set_notifications(team, TeamNotifications.model_validate(remaining))
            if secret:
                vault.write(name, secret)
            else:
                vault.delete(name)

    # -- email ----------------------------------------------------------------------------------

    def _email_topic(self) -> EmailSubscriptions:
        if self._subscriptions is None:
            raise Conflict("email notifications are not configured on this deployment")
        return self._subscriptions

    def set_email(self, team: str, request: EmailRequest) -> NotificationsView:
        """Subscribe new addresses, unsubscribe dropped ones, then record the list.

        Each step is idempotent, so a request that fails half-way converges when retried.
        """
        with self._store.changing_notifications(team):
            topic = self._email_topic()
            current = self._store.notifications(team)
            ours = {s.address.lower(): s for s in current.email}
            wanted = {a.lower(): a for a in request.addresses}
            new = [wanted[a] for a in wanted if a not in ours]
            for address in new:  # check every new address before subscribing any
                if topic.team_of(address) not in (None, team):
                    raise Conflict(
                        f"{address} already gets Chaosplane notifications for another team; "
                        "an address can serve one team"
                    )
            added: list[EmailSubscription] = []
            try:
                for address in new:
                    added.append(
                        EmailSubscription(address=address, subscription_arn=topic.subscribe(address, team))
                    )
                for address, subscription in ours.items():
                    if address not in wanted:
                        topic.unsubscribe(subscription.subscription_arn)
            except Exception:
                self._undo(topic, added)
                raise
            kept = [s for a, s in ours.items() if a in wanted]
            self._store.set_notifications(team, current.model_copy(update={"email": kept + added}))
            return self.view(team)

    def remove_email(self, team: str) -> None:
        with self._store.changing_notifications(team):
            topic = self._email_topic()
            current = self._store.notifications(team)
            for subscription in current.email:
                topic.unsubscribe(subscription.subscription_arn)
            self._store.set_notifications(team, current.model_copy(update={"email": []}))

    @staticmethod
    def _undo(topic: EmailSubscriptions, added: list[EmailSubscription]) -> None:
        for subscription in added:
            try:
                topic.unsubscribe(subscription.subscription_arn)
            except Exception as err:
                logger.error(
                    "could not undo a subscription (%s): %s", subscription.address, type(err).__name__
                )
