"""External targets: `http-webhook` calls an inject webhook and, on rollback, a rollback webhook
that the user registered on an `http-endpoint` target (Toxiproxy, a service's own fault hooks...).

Every call carries a JSON body signed with HMAC-SHA256 under a secret only the platform and the
receiver know, with the timestamp inside the signed material so a captured call cannot be
replayed later:

    X-Chaosplane-Timestamp: <unix seconds>
    X-Chaosplane-Signature: sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + raw body)>
    X-Chaosplane-Delivery:  <run id>:<target id>:<phase>   (the same on every retry: an idempotency key)

The receiver recomputes the HMAC over the raw body, compares in constant time, and refuses a
timestamp more than 5 minutes from its clock. The body says when the fault must be gone at the
latest (`deadline`), so a receiver can revert by itself if the rollback call never comes.

Headers and the signing secret live in Secrets Manager (one secret per target, read by version),
never in DynamoDB, never in a response, never in a log.

Each call has a connect and a read timeout; connection errors, timeouts, 429 and 5xx are retried
with exponential backoff, re-signed on each attempt. An inject that still fails fails the run
(which then calls the rollback webhook too: the inject may have half-happened). A rollback that
fails for a retryable reason is a TransientError, so the workflow keeps retrying it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from botocore.exceptions import ClientError

from chaosplane.egress import guarded_session
from chaosplane.errors import ChaosplaneError, InjectionFailed, TransientError
from chaosplane.faults.aws import error_code, reading
from chaosplane.faults.base import Journal, Resource
from chaosplane.faults.parameters import WebhookParameters
from chaosplane.models import FaultType, JournalEntry, Target, utcnow
from chaosplane.telemetry import Metric, NoTelemetry, Telemetry, emit_safely

KIND = "http:endpoint"
INJECT = "http:inject"
REGISTERED = "registered"
SIGNATURE_HEADER = "X-Chaosplane-Signature"
TIMESTAMP_HEADER = "X-Chaosplane-Timestamp"
DELIVERY_HEADER = "X-Chaosplane-Delivery"
ATTEMPT_HEADER = "X-Chaosplane-Attempt"
REPLAY_WINDOW_SECONDS = 300
CONNECT_TIMEOUT_SECONDS = 3.05
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_BACKOFF_SECONDS = 8.0


class WebhookFailed(ChaosplaneError):
    """A webhook answered with a status that retrying will not change (e.g. 400, 401, 404)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, now: float | None = None) -> bool:
    """What a receiver does (README: "Verifying a webhook"); kept here so the recipe is tested."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    return age <= REPLAY_WINDOW_SECONDS and hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class WebhookCredentials:
    signing_secret: str
    headers: Mapping[str, str]


class WebhookSecrets:
    """One Secrets Manager secret per http-endpoint target: {"signing_secret", "headers"}.

    The target's record keeps the secret's version id, so a run always reads the headers that went
    with the URLs it read, even if the target is being replaced at that moment.
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def name(self, target_id: str) -> str:
        return f"{self._prefix}{target_id}"

    def create(self, target_id: str, team: str, credentials: WebhookCredentials) -> str:
        response = self._client.create_secret(
            Name=self.name(target_id),
            Description="Chaosplane http-endpoint target: webhook headers and signing secret",
            SecretString=self._encode(credentials),
            Tags=[
                {"Key": "chaosplane:team", "Value": team},
                {"Key": "chaosplane:target", "Value": target_id},
            ],
        )
        return str(response["VersionId"])

    def update(self, target_id: str, credentials: WebhookCredentials) -> str:
        response = self._client.put_secret_value(
            SecretId=self.name(target_id), SecretString=self._encode(credentials)
        )
        return str(response["VersionId"])

    def read(self, target_id: str, version: str | None = None) -> WebhookCredentials:
        kwargs: dict[str, Any] = {"SecretId": self.name(target_id)}
        if version:
            kwargs["VersionId"] = version
        value = json.loads(reading(self._client.get_secret_value, **kwargs)["SecretString"])
        return WebhookCredentials(value["signing_secret"], dict(value.get("headers") or {}))

    def delete(self, target_id: str, *, at_once: bool = False) -> None:
        kwargs: dict[str, Any] = {"SecretId": self.name(target_id)}
        if at_once:
            kwargs["ForceDeleteWithoutRecovery"] = True
        else:
            kwargs["RecoveryWindowInDays"] = 7
        try:
            self._client.delete_secret(**kwargs)
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise

    @staticmethod
    def _encode(credentials: WebhookCredentials) -> str:
        return json.dumps(
            {"signing_secret": credentials.signing_secret, "headers": dict(credentials.headers)}
        )


@dataclass(frozen=True)
class Delivery:
    status: int | None
    attempts: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in _RETRYABLE_STATUS

    def describe(self, url: str) -> str:
        what = f"HTTP {self.status}" if self.status is not None else (self.error or "no answer")
        return f"{url}: {what} after {self.attempts} attempt(s)"


class HttpEndpoints:
    eligible_states = frozenset({REGISTERED})

    def __init__(
        self,
        secrets: WebhookSecrets,
        session: requests.Session | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = utcnow,
        backoff_seconds: float = 0.5,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._secrets = secrets
        self._telemetry = telemetry or NoTelemetry()
        self._http = session or guarded_session()
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff_seconds

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        webhook = target.webhook
        if webhook is None:
            return []
        return [
            Resource(
                id=target.id,
                kind=KIND,
                state=REGISTERED,
                detail={
                    "name": target.name,
                    "inject": webhook.inject.model_dump(mode="json"),
                    "rollback": webhook.rollback.model_dump(mode="json"),
                    "timeout_seconds": webhook.timeout_seconds,
                    "retries": webhook.retries,
                    "secret_version": webhook.secret_version,
                },
            )
        ]

    def call_inject(self, resource: Resource, parameters: WebhookParameters, journal: Journal) -> str:
        detail = resource.detail
        if "inject" not in detail:
            raise InjectionFailed(f"the run's plan has no webhook for {resource.id}")
        run = journal.run
        call = {
            "run_id": run.result_id,
            "experiment_id": run.experiment_id,
            "target_id": resource.id,
            "fault": FaultType.HTTP_WEBHOOK.value,
            "parameters": parameters.payload,
            "deadline": run.deadline.isoformat(),
            "timeout_seconds": detail["timeout_seconds"],
            "retries": detail["retries"],
            "secret_version": detail.get("secret_version"),
        }
        # Everything rollback needs, so it can call the rollback webhook from the journal alone.
        entry = journal.before_change(
            resource, INJECT, {"state": resource.state, **call, "rollback": detail["rollback"]}
        )
        delivery = self._deliver(detail["inject"], "inject", call)
        if not delivery.ok:
            raise InjectionFailed(f"inject webhook failed: {delivery.describe(detail['inject']['url'])}")
        journal.applied(entry)
        return f"injected (HTTP {delivery.status})"

    def call_rollback(self, entry: JournalEntry) -> str:
        prior = dict(entry.prior_state)
        rollback = prior.pop("rollback")
        prior.pop("state", None)
        delivery = self._deliver(rollback, "rollback", prior)
        if delivery.ok:
            return f"rolled back (HTTP {delivery.status})"
        message = f"rollback webhook failed: {delivery.describe(rollback['url'])}"
        if delivery.retryable:
            raise TransientError(message)
        raise WebhookFailed(message)

    def _deliver(self, webhook: Mapping[str, Any], phase: str, call: Mapping[str, Any]) -> Delivery:
        delivery = self._deliver_with_retries(webhook, phase, call)
        if not delivery.ok:
            emit_safely(self._telemetry, Metric.WEBHOOK_FAILURES, Phase=phase)
        return delivery

    def _deliver_with_retries(
        self, webhook: Mapping[str, Any], phase: str, call: Mapping[str, Any]
    ) -> Delivery:
        credentials = self._secrets.read(str(call["target_id"]), call.get("secret_version"))
        body = json.dumps(
            {
                "phase": phase,
                **{
                    k: v for k, v in call.items() if k not in ("timeout_seconds", "retries", "secret_version")
                },
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        timeout = (
            min(CONNECT_TIMEOUT_SECONDS, float(call["timeout_seconds"])),
            float(call["timeout_seconds"]),
        )
        attempts = int(call["retries"]) + 1
        delivery = Delivery(None, 0)
        for attempt in range(1, attempts + 1):
            timestamp = str(int(self._clock().timestamp()))
            headers = {
                **credentials.headers,
                "Content-Type": "application/json",
                "User-Agent": "chaosplane-webhook/1",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(credentials.signing_secret, timestamp, body),
                DELIVERY_HEADER: f"{call['run_id']}:{call['target_id']}:{phase}",
                ATTEMPT_HEADER: str(attempt),
            }
            try:
                response = self._http.request(
                    webhook["method"],
                    webhook["url"],
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                )
                delivery = Delivery(response.status_code, attempt)
            except requests.Timeout:
                delivery = Delivery(None, attempt, "timed out")
            except requests.ConnectionError as err:
                delivery = Delivery(None, attempt, f"connection failed ({type(err).__name__})")
            if delivery.ok or not delivery.retryable or attempt == attempts:
                return delivery
            self._sleep(min(_MAX_BACKOFF_SECONDS, self._backoff * 2 ** (attempt - 1)))
        return delivery
