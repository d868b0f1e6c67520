"""The sweeper with a budget: one run whose rollback hangs or keeps failing cannot stop the others
from being swept; and the emergency stop, which the sweeper keeps enforcing."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chaosplane.egress import Egress, guarded_session
from chaosplane.faults.http import HttpEndpoints, WebhookCredentials
from chaosplane.models import FaultType, JournalEntry, RunStatus
from chaosplane.runs import Runs
from tests.conftest import wait_until
from tests.fakes.clock import FakeClock
from tests.fakes.families import FakeInstances
from tests.fakes.store import InMemoryStore
from tests.fakes.workflow import FakeWorkflow


@dataclass
class Stuck(FakeInstances):
    """Instances whose rollback hangs (a webhook that never answers, or drips) or fails, by app."""

    hang: set[str] = field(default_factory=set)
    fail: set[str] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)

    def start_again(self, entry: JournalEntry) -> str:
        app = self.labels[entry.resource_id]["app"]
        if app in self.hang:
            self.released.wait(timeout=30)
        if app in self.fail:
            raise RuntimeError(f"{app}'s rollback failed")
        return super().start_again(entry)


@dataclass
class Fleet:
    store: InMemoryStore
    family: Stuck
    clock: FakeClock
    runs: Runs
    workflow: FakeWorkflow

    def hold(self, app: str) -> str:
        """A run of its own experiment and target, holding one instance of `app` stopped."""
        self.family.add(1, app=app)
        target = self.store.add_target(selector=f"app={app}")
        experiment = self.store.add_experiment(target, selection="ALL")
        run = self.runs.start(experiment.id, team="red")
        self.runs.prepare(None, run.id)
        self.runs.advance(run.id)
        return run.id

    def status(self, run_id: str) -> RunStatus:
        return self.store.get_result(run_id, team="red").status


@pytest.fixture
def fleet() -> Fleet:
    clock = FakeClock()
    store = InMemoryStore(clock)
    family = Stuck()
    workflow = FakeWorkflow()
    runs = Runs(
        store,
        lambda fault: family,
        start_workflow=workflow.start,
        execution_status=lambda name: "RUNNING",
        clock=clock,
        rng=random.Random(3),
        sweep_budget=0.5,
    )
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100, "max_resources": 100})
    return Fleet(store, family, clock, runs, workflow)


def test_a_hung_and_a_failing_rollback_do_not_keep_a_healthy_run_from_being_swept(fleet: Fleet) -> None:
    hung, failing, healthy = fleet.hold("hung"), fleet.hold("failing"), fleet.hold("healthy")
    fleet.family.hang, fleet.family.fail = {"hung"}, {"failing"}
    fleet.runs._execution_status = lambda name: "ABORTED"  # every execution died: recover them all

    try:
        report = fleet.runs.sweep()

        # The healthy run is recovered within the budget; the others are reported, not waited for.
        assert report["recovered"] == [healthy] and fleet.status(healthy) is RunStatus.FAILED
        failed = dict(f.split(": ", 1) for f in report["failed"])
        assert (
            failed[failing].startswith("RollbackIncomplete")
            and "failing's rollback failed" in failed[failing]
        )
        assert failed[hung] == "over the sweep's budget of 0.5s"
        # The next sweep leaves both alone: one is still being swept, the other backs off...
        assert sorted(fleet.runs.sweep()["deferred"]) == sorted([hung, failing])
        # ...until its minute is up; it fails again and waits two.
        fleet.clock.advance(61)
        assert any(f.startswith(failing) for f in fleet.runs.sweep()["failed"])
        fleet.clock.advance(61)
        assert failing in fleet.runs.sweep()["deferred"]
        fleet.family.fail.clear()
        fleet.clock.advance(61)
        assert failing in fleet.runs.sweep()["recovered"]
    finally:
        fleet.family.released.set()  # the hung rollback answers at last
    wait_until(lambda: fleet.status(hung) is RunStatus.FAILED, timeout=10)
    assert set(fleet.family.states.values()) == {"running"}  # nothing left faulted


def test_the_emergency_stop_returns_at_once_and_the_sweeper_halts_what_the_fan_out_missed(
    fleet: Fleet,
) -> None:
    fanned: list[tuple[str, str]] = []
    fleet.runs._fan_out = lambda scope, by: fanned.append((scope, by))  # an event, lost on its way
    runs = [fleet.hold(f"app{n}") for n in range(5)]

    lever, halting = fleet.runs.engage("red", "oncall")

    assert lever.team == "red" and sorted(halting) == sorted(runs) and fanned == [("red", "oncall")]
    assert not any(fleet.store.get_result(r, team="red").stop_requested for r in runs)  # not in the request
    report = fleet.runs.sweep()
    assert sorted(report["halted"]) == sorted(runs)
    assert all(fleet.store.get_result(r, team="red").stop_requested for r in runs)


def test_a_fanned_out_stop_halts_only_runs_of_a_lever_engaged_in_the_store(fleet: Fleet) -> None:
    run = fleet.hold("web")
    assert fleet.runs.on_lever("red", "mallory") == []  # a forged event: no lever is engaged
    assert not fleet.store.get_result(run, team="red").stop_requested
    fleet.store.engage_lever("red", "oncall")
    assert fleet.runs.on_lever("red", "mallory") == [run]
    assert "engaged by oncall" in (fleet.store.get_result(run, team="red").stop_reason or "")


class Receiver:
    """A real webhook receiver on loopback: every inject is answered at once; a rollback, by its
    path, never answered (`hang`), dripped a byte each 0.2 s (`drip`), or answered 200 (`ok`)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.rollbacks: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/rollback/"):
                    outer.rollbacks.append(kind)
                if self.path.startswith("/rollback/hang"):
                    outer.released.wait(timeout=30)
                    return
                if self.path.startswith("/rollback/drip"):
                    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                        if outer.released.wait(timeout=0.2):
                            return
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:  # cut by the platform: as it should be
                            return
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


class _Secrets:
    def read(self, target_id: str, version: str | None = None) -> WebhookCredentials:
        return WebhookCredentials("s" * 32, {})


def test_a_rollback_webhook_that_hangs_and_one_that_drips_cannot_hold_up_a_healthy_run(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSPLANE_EGRESS", "local")  # the receiver is on loopback
    receiver = Receiver()
    webhooks = HttpEndpoints(_Secrets(), guarded_session(Egress.LOCAL), sleep=lambda s: None)
    instances = fleet.family
    fleet.runs._families = lambda fault: webhooks if fault is FaultType.HTTP_WEBHOOK else instances
    fleet.runs._sweep_budget = 20.0  # the calls' own limits must end them well before this

    def hold_webhook(kind: str) -> str:
        hook = {
            "inject": {"url": f"{receiver.url}/inject/{kind}"},
            "rollback": {"url": f"{receiver.url}/rollback/{kind}"},
            "timeout_seconds": 0.5,
            "retries": 0,
        }
        target = fleet.store.add_target(name=kind, type="http-endpoint", webhook=hook, selector=None)
        experiment = fleet.store.add_experiment(target, type="http-webhook", selection="ALL")
        run = fleet.runs.start(experiment.id, team="red")
        fleet.runs.prepare(None, run.id)
        fleet.runs.advance(run.id)
        return run.id

    hanging, dripping, healthy = hold_webhook("hang"), hold_webhook("drip"), fleet.hold("healthy")
    fleet.runs._execution_status = lambda name: "ABORTED"  # every execution died: recover them all
    try:
        report = fleet.runs.sweep()
    finally:
        receiver.released.set()
        receiver.httpd.shutdown()
    # The healthy run is recovered in the same sweep; the two webhooks' rollbacks were each cut by
    # their own limits (a read timeout, the answer's deadline), not by the sweep's budget.
    assert report["recovered"] == [healthy] and fleet.status(healthy) is RunStatus.FAILED
    assert instances.states == {next(iter(instances.states)): "running"}
    failed = dict(f.split(": ", 1) for f in report["failed"])
    assert set(failed) == {hanging, dripping}, report
    assert "rollback/hang: timed out after 1 attempt" in failed[hanging]  # its 0.5 s read timeout
    assert "rollback/drip: connection failed" in failed[dripping]  # cut at its 1 s deadline
    assert sorted(receiver.rollbacks) == ["drip", "hang"]
