"""http-endpoint targets against a real HTTP server on loopback that verifies every signature.

The receiver below checks signatures the way docs/http-endpoint.md ("Verifying a webhook") tells
users to, with its own code (not the platform's), so the recipe and the signer are tested against
each other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from chaosplane.faults import catalogue
from chaosplane.faults import http as webhooks
from chaosplane.faults.base import RunContext
from chaosplane.faults.memory import MemoryJournal
from chaosplane.faults.parameters import WebhookParameters
from chaosplane.local.prometheus import current
from chaosplane.models import TARGET_SPEC, FaultType, Target, new_id
from chaosplane.telemetry import Metric
from tests.conftest import Platform, wait_until
from tests.integration.test_runs import invoke_executor, journal

SECRET = "s3cr3t-" + "x" * 40
TOKEN = "Bearer receiver-token-123"


@dataclass
class Received:
    phase: str
    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool


@dataclass
class Receiver:
    """A webhook receiver: verifies, records, and answers as scripted per phase and attempt."""

    secret: str
    url: str = ""
    received: list[Received] = field(default_factory=list)
    # phase -> [(delay seconds, status)] for attempts 1, 2, ...; afterwards (0, 200)
    script: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, headers: dict[str, str], raw: bytes) -> bool:
        timestamp = headers.get("X-Chaosplane-Timestamp", "")
        signature = headers.get("X-Chaosplane-Signature", "")
        expected = (
            "sha256="
            + hmac.new(self.secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
        )
        fresh = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= 300
        return fresh and hmac.compare_digest(expected, signature)

    def answer(self, method: str, headers: dict[str, str], raw: bytes) -> tuple[float, int]:
        body = json.loads(raw)
        verified = self.verify(headers, raw)
        with self.lock:
            self.received.append(Received(body["phase"], method, headers, body, verified))
            attempt = sum(1 for r in self.received if r.phase == body["phase"])
        if not verified:
            return 0.0, 401
        planned = self.script.get(body["phase"], [])
        return planned[attempt - 1] if attempt <= len(planned) else (0.0, 200)

    def phases(self) -> list[str]:
        return [r.phase for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            delay, status = state.answer(self.command, dict(self.headers.items()), raw)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
            except OSError:
                pass  # the caller gave up waiting (a timeout test)

        do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def webhook(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    return {
        "inject": {"url": f"{receiver.url}/toxics/inject"},
        "rollback": {"url": f"{receiver.url}/toxics/rollback", "method": "DELETE"},
        "headers": {"Authorization": TOKEN},
        "signing_secret": SECRET,
        "timeout_seconds": 2,
        "retries": 2,
        **overrides,
    }


def endpoint(platform: Platform, receiver: Receiver, **overrides: Any) -> dict:
    body = {"name": "toxiproxy", "type": "http-endpoint", "webhook": webhook(receiver, **overrides)}
    return platform.json("POST", "/targets", body, expect=201)


def experiment(platform: Platform, target_id: str, **overrides: Any) -> dict:
    body = {"name": "latency", "type": "http-webhook", "target": target_id, "duration": 1, **overrides}
    return platform.json("POST", "/experiments", body, expect=201)


def run(platform: Platform, experiment_id: str) -> dict:
    result_id = platform.json("POST", f"/experiments/{experiment_id}/run", expect=202)["result_id"]
    return platform.wait_for_result(result_id, timeout=90)


def secret_names(platform: Platform) -> list[str]:
    listed = platform.session.client("secretsmanager").list_secrets()["SecretList"]
    return sorted(s["Name"] for s in listed if "/webhooks/" in s["Name"])


# -- registering -----------------------------------------------------------------------------------


def test_webhook_secrets_go_to_secrets_manager_never_to_dynamodb_or_responses(
    platform: Platform, receiver: Receiver
) -> None:
    created = endpoint(platform, receiver)
    fetched = platform.json("GET", f"/targets/{created['id']}")
    listed = platform.json("GET", "/targets")
    for shown in (created, fetched, listed):
        text = json.dumps(shown)
        assert SECRET not in text and "receiver-token" not in text
    assert fetched["webhook"]["header_names"] == ["Authorization"]
    assert "headers" not in fetched["webhook"] and "signing_secret" not in fetched["webhook"]
    items = platform.session.client("dynamodb").scan(TableName=platform.deployment.tables["TargetsTable"])
    assert SECRET not in json.dumps(items) and "receiver-token" not in json.dumps(items)

    name = f"chaosplane/chaosplane/webhooks/{created['id']}"
    assert secret_names(platform) == [name]
    stored = json.loads(
        platform.session.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    )
    assert stored == {"signing_secret": SECRET, "headers": {"Authorization": TOKEN}}

    # Replace without secrets: the stored ones stay. With new headers: a new secret version.
    kept = {
        k: v
        for k, v in webhook(receiver, timeout_seconds=3).items()
        if k not in ("headers", "signing_secret")
    }
    replaced = platform.json(
        "PUT", f"/targets/{created['id']}", {"name": "t", "type": "http-endpoint", "webhook": kept}
    )
    assert replaced["webhook"]["secret_version"] == created["webhook"]["secret_version"]
    assert replaced["webhook"]["timeout_seconds"] == 3 and replaced["webhook"]["header_names"] == [
        "Authorization"
    ]
    rotated = platform.json(
        "PUT",
        f"/targets/{created['id']}",
        {"name": "t", "type": "http-endpoint", "webhook": {**kept, "headers": {"X-Api-Key": "k2"}}},
    )
    assert rotated["webhook"]["secret_version"] != created["webhook"]["secret_version"]
    assert rotated["webhook"]["header_names"] == ["X-Api-Key"]
    stored = json.loads(
        platform.session.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    )
    assert stored == {"signing_secret": SECRET, "headers": {"X-Api-Key": "k2"}}

    platform.json("DELETE", f"/targets/{created['id']}", expect=204)
    assert "DeletedDate" in platform.session.client("secretsmanager").describe_secret(SecretId=name)


@pytest.mark.parametrize(
    "change",
    [
        {"inject": {"url": "ftp://example.com/x"}},
        {"inject": {"url": "https://user:pw@example.com/x"}},
        {"inject": {"url": "http://169.254.169.254/latest/meta-data"}},
        {"rollback": {"url": "https://example.com/x", "method": "GET"}},
        {"signing_secret": "too-short"},
        {"signing_secret": None},
        {"headers": {"X-Evil": "a\r\nInjected: 1"}},
        {"headers": {"X-Chaosplane-Signature": "forged"}},
        {"retries": 9},
    ],
)
def test_a_rejected_webhook_target_creates_nothing(
    platform: Platform, receiver: Receiver, change: dict
) -> None:
    body = {"name": "t", "type": "http-endpoint", "webhook": {**webhook(receiver), **change}}
    response = platform.api("POST", "/targets", body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert SECRET not in response.get_data(as_text=True) and "\r\n" not in response.get_data(as_text=True)
    assert platform.json("GET", "/targets")["items"] == []
    assert secret_names(platform) == []


def test_http_endpoint_targets_take_a_webhook_and_nothing_else(
    platform: Platform, receiver: Receiver
) -> None:
    for body in (
        {"name": "t", "type": "http-endpoint"},
        {"name": "t", "type": "http-endpoint", "webhook": webhook(receiver), "selector": "app=web"},
        {"name": "t", "type": "ec2-instances", "selector": "app=web", "webhook": webhook(receiver)},
    ):
        assert platform.api("POST", "/targets", body).status_code == 422
    assert secret_names(platform) == []


# -- runs ----------------------------------------------------------------------------------------


def test_a_run_calls_inject_then_rollback_signed_and_with_the_users_headers(
    platform: Platform, receiver: Receiver
) -> None:
    target = endpoint(platform, receiver)
    e = experiment(platform, target["id"], parameters={"payload": {"toxic": "latency", "latency_ms": 300}})

    result = run(platform, e["id"])

    assert result["status"] == "completed", result
    assert receiver.phases() == ["inject", "rollback"]
    inject, rollback = receiver.received
    assert inject.verified and rollback.verified
    assert (inject.method, rollback.method) == ("POST", "DELETE")
    assert inject.headers["Authorization"] == TOKEN and rollback.headers["Authorization"] == TOKEN
    assert inject.headers["X-Chaosplane-Delivery"] == f"{result['id']}:{target['id']}:inject"
    for call in (inject, rollback):
        body = call.body
        assert body["run_id"] == result["id"] and body["target_id"] == target["id"]
        assert body["fault"] == "http-webhook" and body["experiment_id"] == e["id"]
        assert body["parameters"] == {"toxic": "latency", "latency_ms": 300}
        deadline = datetime.fromisoformat(body["deadline"])
        assert timedelta(0) < deadline - datetime.fromisoformat(result["start_time"]) < timedelta(seconds=30)
    (resource,) = result["resources"]
    assert resource["after"] == "injected (HTTP 200)" and resource["restored"] == "rolled back (HTTP 200)"
    # No secret in what the run recorded either.
    assert SECRET not in json.dumps(result) and "receiver-token" not in json.dumps(result)

    assert invoke_executor(platform, "rollback", {"result_id": result["id"]}) == {"rolled_back": 0}
    assert receiver.phases() == ["inject", "rollback"]  # a second rollback calls nothing


def test_a_receiver_that_cannot_verify_the_signature_fails_the_run(
    platform: Platform, receiver: Receiver
) -> None:
    target = endpoint(platform, receiver)
    receiver.secret = "a-different-secret-" + "y" * 30  # the receiver was configured with another one
    result = run(platform, experiment(platform, target["id"])["id"])

    assert result["status"] == "failed" and result["success"] is False
    assert "InjectionFailed" in result["error"] and "HTTP 401" in result["error"]
    assert receiver.phases()[0] == "inject" and not any(r.verified for r in receiver.received)
    assert len([p for p in receiver.phases() if p == "inject"]) == 1  # a 401 is not retried


def test_a_slow_inject_is_retried_after_its_timeout_and_resigned(
    platform: Platform, receiver: Receiver
) -> None:
    target = endpoint(platform, receiver, timeout_seconds=0.5, retries=2)
    receiver.script["inject"] = [(1.5, 200), (0.0, 200)]  # the first attempt times out
    result = run(platform, experiment(platform, target["id"])["id"])

    assert result["status"] == "completed", result
    injects = [r for r in receiver.received if r.phase == "inject"]
    assert [r.headers["X-Chaosplane-Attempt"] for r in injects] == ["1", "2"]
    assert all(r.verified for r in injects)
    assert len({r.headers["X-Chaosplane-Delivery"] for r in injects}) == 1  # one idempotency key
    assert receiver.phases()[-1] == "rollback"


def test_an_inject_that_keeps_failing_fails_the_run_and_still_rolls_back(
    platform: Platform, receiver: Receiver
) -> None:
    target = endpoint(platform, receiver, retries=2)
    receiver.script["inject"] = [(0.0, 503)] * 3
    failures = current(Metric.WEBHOOK_FAILURES, Phase="inject")
    rollback_failures = current(Metric.WEBHOOK_FAILURES, Phase="rollback")  # the process's, so far
    result = run(platform, experiment(platform, target["id"])["id"])

    assert result["status"] == "failed"
    assert "HTTP 503 after 3 attempt(s)" in result["error"]
    # One delivery failed (after its three attempts): counted once, as the inject phase's.
    assert current(Metric.WEBHOOK_FAILURES, Phase="inject") == failures + 1
    assert current(Metric.WEBHOOK_FAILURES, Phase="rollback") == rollback_failures
    # The inject may have half-happened on the receiver's side: the rollback webhook is called.
    assert receiver.phases() == ["inject", "inject", "inject", "rollback"]
    assert {e["status"]["S"] for e in journal(platform, result["id"])} == {"rolled_back"}


def test_a_rollback_that_fails_for_now_is_retried_until_it_lands(
    platform: Platform, receiver: Receiver
) -> None:
    target = endpoint(platform, receiver, retries=0)
    receiver.script["rollback"] = [(0.0, 502), (0.0, 200)]
    result = run(platform, experiment(platform, target["id"])["id"])
    assert result["status"] == "completed", result
    assert receiver.phases() == ["inject", "rollback", "rollback"]
    wait_until(lambda: platform.json("GET", f"/results/{result['id']}")["status"] == "completed")


# -- the family on its own: backoff, signature recipe ----------------------------------------------


def test_retries_back_off_exponentially_and_the_signature_recipe_holds(receiver: Receiver) -> None:
    with mock_aws():
        secrets = webhooks.WebhookSecrets(boto3.client("secretsmanager", region_name="us-east-1"), "t/")
        spec = TARGET_SPEC.validate_python(
            {"name": "t", "type": "http-endpoint", "webhook": webhook(receiver, retries=3)}
        )
        target_id = new_id()
        assert spec.webhook is not None and spec.webhook.signing_secret is not None
        version = secrets.create(target_id, "team", webhooks.WebhookCredentials(SECRET, {}))
        sleeps: list[float] = []
        family = webhooks.HttpEndpoints(secrets, requests.Session(), sleep=sleeps.append)
        stored = spec.model_copy(
            update={"webhook": spec.webhook.model_copy(update={"secret_version": version})}
        )
        target = Target.model_validate(
            {
                **stored.model_dump(),
                "id": target_id,
                "team": "team",
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
            }
        )
        (resource,) = family.resolve(target, FaultType.HTTP_WEBHOOK)
        receiver.script["inject"] = [(0.0, 500), (0.0, 429), (0.0, 503), (0.0, 500)]
        run = RunContext("run-1", "exp-1", 60, datetime.now(UTC) + timedelta(seconds=60))
        fault = catalogue.spec(FaultType.HTTP_WEBHOOK)
        with pytest.raises(webhooks.InjectionFailed, match=r"HTTP 500 after 4 attempt\(s\)"):
            fault.inject(family, resource, WebhookParameters(), MemoryJournal(run))
        assert sleeps == [0.5, 1.0, 2.0]
        assert all(r.verified for r in receiver.received)

    body = b'{"phase":"inject"}'
    now = int(time.time())
    good = webhooks.sign(SECRET, str(now), body)
    assert webhooks.verify(SECRET, str(now), body, good)
    assert not webhooks.verify(SECRET, str(now), body + b" ", good)  # tampered body
    assert not webhooks.verify(
        SECRET, str(now - 301), body, webhooks.sign(SECRET, str(now - 301), body)
    )  # replay
    assert not webhooks.verify("other" * 8, str(now), body, good)
