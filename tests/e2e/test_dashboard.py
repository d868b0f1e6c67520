"""The web dashboard in real headless Chromium (Debian's package, driven by Playwright) against
`chaosplane local`. Each step saves a screenshot under build/screenshots/ to look at."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, wait_until
from tests.e2e.test_local_runtime import CLI, Local, shut_down, start_local

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")

SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    running = start_local(tmp_path_factory.mktemp("dashboard"))
    yield running
    shut_down(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make setup` (scripts/system-deps.sh installs it)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Page:
    """One browser tab on the dashboard that fails the test on any console error or page error."""

    def __init__(self, browser: Any, local: Local, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.expected_statuses: set[int] = set()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Say which request failed: a console line names only the status.
        self.page.on(
            "response",
            lambda r: (
                r.status >= 500 and self.errors.append(f"HTTP {r.status} for {r.request.method} {r.url}")
            ),
        )
        self.local = local

    def open(self) -> Any:
        self.page.goto(f"{self.local.url}/ui/")
        return self.page

    def sign_in(self, token: str) -> Any:
        page = self.open()
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#experiments")
        return page

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def expect_refusal(self, status: int) -> None:
        """The browser logs every refused fetch ("status of 422") itself; a test may expect some."""
        self.expected_statuses.add(status)

    def close(self) -> None:
        self.context.close()
        unexpected = [
            e for e in self.errors if not any(f"status of {code}" in e for code in self.expected_statuses)
        ]
        assert unexpected == [], f"console errors: {unexpected}"


@pytest.fixture
def tab(browser: Any, local: Local) -> Iterator[Page]:
    opened = Page(browser, local, DESKTOP)
    yield opened
    opened.close()


def admin_token(local: Local) -> str:
    found = re.search(r"export TOKEN=(\S+)", local.output())
    assert found is not None, local.output()
    return found[1]


def minted(local: Local, role: str) -> str:
    out = subprocess.run(
        [str(CLI), "token", "--role", role, "--team", "demo", "--aws-port", str(local.aws_port)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip().splitlines()[-1]


def test_sign_in_and_see_the_demo_experiment(tab: Page, local: Local) -> None:
    # Given the sign-in page, when an admin pastes the token printed by `chaosplane local`...
    page = tab.open()
    page.wait_for_selector("#signin-form")
    tab.shot("01-sign-in")
    tab.sign_in(admin_token(local))
    # ...then the experiments list shows the demo with its status, and the role in the navbar.
    row = page.locator("#experiments tr[data-experiment='stop-half-of-demo']")
    assert row.count() == 1
    assert row.locator("[data-status]").inner_text() in {"created", "completed", "stopped", "running"}
    assert page.locator("#whoami-role").inner_text() == "admin"
    assert page.evaluate("sessionStorage.getItem('chaosplane.token')") == admin_token(local)
    assert admin_token(local) not in page.url
    tab.shot("02-experiments")
    page.get_by_role("link", name="Targets").click()
    page.wait_for_selector("#targets")
    assert page.locator("#targets tr[data-target]").count() >= 1
    tab.shot("03-targets")


def test_a_bad_token_is_refused_beside_the_field(tab: Page) -> None:
    page = tab.open()
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    feedback = page.locator("#token-feedback")
    feedback.wait_for(state="visible")
    assert "malformed token" in feedback.inner_text()
    tab.expect_refusal(401)
    tab.shot("04-bad-token")


def test_an_admin_engages_and_releases_the_emergency_stop(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    page.get_by_role("link", name="Safety").click()
    page.get_by_role("button", name="Halt every run").click()
    page.locator("#lever-banner").wait_for(state="visible")
    assert "Emergency stop engaged" in page.locator("#lever-banner").inner_text()
    tab.shot("05-lever-engaged")
    page.get_by_role("link", name="Experiments").click()
    page.wait_for_selector("#experiments")
    assert page.locator("#lever-banner").is_visible()  # on every page
    page.locator("#banner-release").click()
    page.locator("#lever-banner").wait_for(state="hidden")
    tab.shot("06-lever-released")


def test_a_viewer_sees_no_mutating_buttons_on_a_phone(browser: Any, local: Local) -> None:
    phone = Page(browser, local, PHONE)
    try:
        page = phone.sign_in(minted(local, "viewer"))
        assert page.locator("#whoami-role").count() == 1
        phone.shot("07-viewer-experiments-phone")
        page.get_by_role("button", name="Toggle navigation").click()
        page.get_by_role("link", name="Targets").click()
        page.wait_for_selector("#targets")
        assert page.locator("#targets button").count() == 0
        page.get_by_role("button", name="Toggle navigation").click()
        page.get_by_role("link", name="Safety").click()
        page.wait_for_selector("#lever-state")
        assert page.locator("#halt, #release").count() == 0
        phone.shot("08-viewer-safety-phone")
    finally:
        phone.close()


def test_create_a_target_with_the_api_errors_beside_their_fields(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    page.goto(f"{local.url}/ui/#/targets/new")
    page.wait_for_selector("#target-form")
    # Given an eks-pods target without cluster and namespace, the API's errors land on those fields.
    page.get_by_label("Name", exact=True).fill("shop-pods")
    page.get_by_label("Type").select_option("eks-pods")
    page.get_by_label("Label selector").fill("app=shop")
    page.get_by_role("button", name="Create target").click()
    page.locator("#f-cluster.is-invalid").wait_for()
    # (eks-pods' variant requires both: pydantic's "Field required", on each field)
    assert "required" in page.locator("#f-cluster-feedback").inner_text().lower()
    assert "required" in page.locator("#f-namespace-feedback").inner_text().lower()
    assert page.locator("#f-selector.is-invalid").count() == 0
    tab.expect_refusal(422)
    tab.shot("09-target-form-errors")
    # When the type is EC2 with a bad id, the id field says so; fixed, the target is created.
    page.get_by_label("Type").select_option("ec2-instances")
    page.get_by_label("Label selector").fill("")
    page.get_by_label("Resource ids").fill("nope")
    page.get_by_role("button", name="Create target").click()
    page.locator("#f-resource_ids.is-invalid").wait_for()
    assert "not EC2 instance ids: nope" in page.locator("#f-resource_ids-feedback").inner_text()
    tab.expect_refusal(422)
    page.get_by_label("Resource ids").fill("")
    page.get_by_label("Label selector").fill("app=shop")
    page.get_by_role("button", name="Create target").click()
    page.locator("#targets tr[data-target='shop-pods']").wait_for()
    tab.shot("10-target-created")


def test_preview_run_with_confirmation_watch_stop_and_read_the_result(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    page.get_by_role("link", name="stop-half-of-demo").click()
    page.locator("#preview-button").click()
    # The preview shows the resolved plan: the demo stops half of its 4 instances.
    page.locator("#preview").wait_for()
    assert "Selected (2)" in page.locator("#preview").inner_text()
    tab.shot("11-preview")
    # Run asks for the experiment's name before it does anything.
    page.locator("#run-button").click()
    assert page.locator("#confirm-run").is_disabled()
    page.locator("#confirm-name").fill("stop-half")
    assert page.locator("#confirm-run").is_disabled()
    page.locator("#confirm-name").fill("stop-half-of-demo")
    tab.shot("12-confirm")
    page.locator("#confirm-run").click()
    page.locator("#run[data-status='running']").wait_for(timeout=30_000)
    page.locator("#run tbody tr").first.wait_for()
    assert "left" in page.locator("#time-left").inner_text()
    # The run's one action is on the time axis, in force: its held bar has begun.
    page.locator("#actions li[data-action='ec2-stop'][data-status='in_force']").wait_for(timeout=30_000)
    assert (
        float(page.locator("#actions li[data-action='ec2-stop'] rect.held").get_attribute("width") or 0) > 0
    )
    tab.shot("13-running")
    page.locator("#stop-button").click()
    page.locator("#run[data-status='stopped']").wait_for(timeout=30_000)
    tab.shot("14-stopped")
    page.locator("#run a", has_text="Result").click()
    page.wait_for_selector("#timeline li")
    assert page.locator("#run tbody tr").count() == 2
    # Stopped: the action was in force when the stop came, then rolled back.
    done = page.locator("#actions li[data-action='ec2-stop']")
    assert done.get_attribute("data-status") == "stopped"
    assert "stopped" in (done.locator("svg").get_attribute("aria-label") or "")
    tab.shot("15-result")


def test_the_result_charts_each_stop_conditions_metric(tab: Page, local: Local) -> None:
    # Given an alarm on a metric with points before the run, and an experiment that watches it...
    from datetime import UTC, datetime, timedelta

    import boto3

    cloudwatch = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    ).client("cloudwatch", endpoint_url=f"http://127.0.0.1:{local.aws_port}")
    cloudwatch.put_metric_alarm(
        AlarmName="demo-5xx", MetricName="5xx", Namespace="Demo", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "chaosplane/team", "Value": "demo"}],
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="demo-5xx", StateValue="OK", StateReason="quiet")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cloudwatch.put_metric_data(
        Namespace="Demo",
        MetricData=[
            {"MetricName": "5xx", "Timestamp": now - timedelta(minutes=8 - i), "Value": v}
            for i, v in enumerate([1, 0, 2, 1, 3, 2, 1, 0])
        ],
    )
    demo = the_demo(local)
    target = demo["target"]
    body = {"name": "watched", "type": "ec2-stop", "target": target, "duration": 2,
            "selection": "COUNT(1)", "stop_conditions": ["demo-5xx"]}  # fmt: skip
    created = local.http.post(f"{local.url}/experiments", json=body, timeout=10)
    assert created.status_code == 201, created.text
    run = local.http.post(f"{local.url}/experiments/{created.json()['id']}/run", json={}, timeout=10).json()
    # ...when the run has ended, its result page draws the metric with the fault window.
    result_url = f"{local.url}/results/{run['result_id']}"
    wait_until(lambda: local.http.get(result_url, timeout=5).json()["status"] == "completed", timeout=60)
    page = tab.sign_in(admin_token(local))
    page.goto(f"{local.url}/ui/#/results/{run['result_id']}")
    chart = page.locator(".metric-chart[data-alarm='demo-5xx'] canvas")
    chart.wait_for()
    page.wait_for_timeout(300)  # one animation frame for Chart.js to draw
    assert chart.bounding_box()["height"] > 100
    # The run has just ended: the minutes after it are still to come, and the page says so.
    assert "still coming in" in page.locator("#metrics-filling").inner_text()
    tab.shot("16-result-chart")


class Shop:
    """An HTTP endpoint on loopback for probes to ask: healthy (200) until the test says otherwise."""

    def __init__(self) -> None:
        self.status = 200
        self.url = ""


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    state = Shop()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/health"
    yield state
    server.shutdown()
    server.server_close()


def a_probed_run(local: Local, shop: Shop) -> dict[str, Any]:
    """A finished run of `probed-shop` (one demo instance stopped for 4 s) whose http probe the
    shop fails mid-run (it goes on: stop_on_failure false), an alarm probe beside it; run once."""
    items = local.http.get(f"{local.url}/experiments", timeout=10).json()["items"]
    found = [e for e in items if e["name"] == "probed-shop"]
    if found:
        results = local.http.get(f"{local.url}/experiments/{found[0]['id']}/results", timeout=10).json()
        return results["items"][0]  # type: ignore[no-any-return]
    import boto3

    cloudwatch = boto3.session.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    ).client("cloudwatch", endpoint_url=f"http://127.0.0.1:{local.aws_port}")
    cloudwatch.put_metric_alarm(
        AlarmName="shop-quiet", MetricName="errors", Namespace="Shop", Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
        Tags=[{"Key": "chaosplane/team", "Value": "demo"}],
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="shop-quiet", StateValue="OK", StateReason="quiet")
    shop.status = 200
    probes = [
        {"name": "shop", "source": "http", "url": shop.url, "interval": 1, "stop_on_failure": False},
        {"name": "quiet", "source": "cloudwatch-alarm", "alarm": "shop-quiet", "interval": 1,
         "stop_on_failure": False},
    ]  # fmt: skip
    body = {"name": "probed-shop", "type": "ec2-stop", "target": the_demo(local)["target"], "duration": 4,
            "selection": "COUNT(1)", "probes": probes}  # fmt: skip
    created = local.http.post(f"{local.url}/experiments", json=body, timeout=10)
    assert created.status_code == 201, created.text
    run = local.http.post(f"{local.url}/experiments/{created.json()['id']}/run", json={}, timeout=10)
    assert run.status_code == 202, run.text
    result_url = f"{local.url}/results/{run.json()['result_id']}"

    def answered_while_held() -> bool:
        result = local.http.get(result_url, timeout=5).json()
        during = result["probe_records"].get("shop", {}).get("evaluations", [])
        return any(e["phase"] == "during" and e["ok"] for e in during)

    wait_until(answered_while_held, timeout=30, interval=0.1)
    shop.status = 500  # mid-run: the next evaluation fails
    final = ("completed", "stopped", "failed", "skipped")
    wait_until(lambda: local.http.get(result_url, timeout=5).json()["status"] in final, timeout=60)
    shop.status = 200
    return local.http.get(result_url, timeout=5).json()  # type: ignore[no-any-return]


def test_the_result_charts_each_probe_with_the_fault_window_and_gives_the_verdict(
    tab: Page, local: Local, shop: Shop
) -> None:
    # Given a run whose http probe the shop fails mid-run, without halting it...
    result = a_probed_run(local, shop)
    assert result["status"] == "completed", result  # stop_on_failure false: the run went on
    assert result["verdict"] == "failed" and result["success"] is False
    record = result["probe_records"]["shop"]
    assert record["failed_in"] == "during"
    assert [e["ok"] for e in record["evaluations"]][-1] is False
    # ...its result page says failed, and charts the probe's latencies over the run.
    page = tab.sign_in(admin_token(local))
    page.goto(f"{local.url}/ui/#/results/{result['id']}")
    verdict = page.locator("#verdict")
    verdict.wait_for()
    assert verdict.get_attribute("data-verdict") == "failed"
    assert verdict.inner_text() == "failed"
    assert "shop" in page.locator("#verdict-reason").inner_text()
    card = page.locator("#probes .probe-chart[data-probe='shop']")
    assert card.get_attribute("data-status") == "failed"
    outcome = card.locator(".probe-outcome").inner_text()
    assert outcome.startswith("Failed during the faults at ") and "status 500" in outcome, outcome
    canvas = card.locator("canvas[role='img']")
    page.wait_for_timeout(300)  # one animation frame for Chart.js to draw
    assert canvas.bounding_box()["height"] > 100
    assert "1 failed" in (canvas.get_attribute("aria-label") or "")
    # The alarm probe has no values: its evaluations are badges, all ok.
    quiet = page.locator("#probes .probe-chart[data-probe='quiet']")
    assert quiet.get_attribute("data-status") == "passed"
    assert quiet.locator("canvas").count() == 0
    assert quiet.locator(".badge[data-ok='true']").count() >= 1
    assert quiet.locator(".badge[data-ok='false']").count() == 0
    assert "did not succeed" not in page.locator("#main").inner_text()
    tab.shot("16b-result-probes")
    # The experiment's page scores it over its last runs: its one run failed, so 0 %.
    page.goto(f"{local.url}/ui/#/experiments/{result['experiment_id']}")
    page.locator("#resilience-score").wait_for()
    assert page.locator("#resilience-score").inner_text() == "0%"
    assert "1 failed" in page.locator("#resilience").inner_text()
    assert page.locator(f"#past-runs a[href='#/results/{result['id']}']").count() == 1
    assert page.locator("#past-runs [data-verdict='failed']").count() == 1
    # The target's page scores every experiment acting on it (the demo has decisive runs only here).
    page.goto(f"{local.url}/ui/#/targets/{result['target_id']}/edit")
    page.locator("#resilience-score").wait_for()
    assert page.locator("#resilience-score").inner_text().endswith("%")


GAME_DAY = {
    "description": "Stop one demo instance, then settle",
    "tags": {"Name": "fis-game-day"},
    "targets": {
        "tier": {
            "resourceType": "aws:ec2:instance",
            "resourceTags": {"app": "demo"},
            "selectionMode": "COUNT(1)",
        }
    },
    "actions": {
        "stop": {
            "actionId": "aws:ec2:stop-instances",
            "parameters": {"startInstancesAfterDuration": "PT3S"},
            "targets": {"Instances": "tier"},
        },
        "settle": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT2S"}, "startAfter": ["stop"]},
    },
    "stopConditions": [{"source": "none"}],
}


def imported_game_day(local: Local) -> dict[str, Any]:
    """The multi-step experiment GAME_DAY imports to, imported through the API unless it is there."""
    items = local.http.get(f"{local.url}/experiments", timeout=10).json()["items"]
    found = [e for e in items if e["name"] == "fis-game-day"]
    if found:
        return found[0]  # type: ignore[no-any-return]
    imported = local.http.post(f"{local.url}/experiments/import?duration=30", json=GAME_DAY, timeout=10)
    assert imported.status_code == 201, imported.text
    return imported.json()["experiment"]  # type: ignore[no-any-return]


def test_a_pasted_fis_template_becomes_an_experiment_shown_planned_and_run_as_its_actions(
    tab: Page, local: Local
) -> None:
    page = tab.sign_in(admin_token(local))
    before = local.http.get(f"{local.url}/experiments", timeout=10).json()["items"]
    page.locator("#import-fis").click()
    page.wait_for_selector("#fis-import")
    # A template with what does not map: each problem is listed, and nothing is created.
    broken = {
        **GAME_DAY,
        "actions": {
            **GAME_DAY["actions"],
            "drain": {
                "actionId": "aws:ec2:send-spot-instance-interruptions",
                "targets": {"SpotInstances": "tier"},
            },
        },
        "targets": {
            "tier": {**GAME_DAY["targets"]["tier"], "parameters": {"availabilityZoneIdentifier": "a"}}
        },
    }
    tab.expect_refusal(422)
    page.get_by_label("FIS experiment template (JSON)").fill(json.dumps(broken))
    page.get_by_role("button", name="Import").click()
    listed = page.locator("#import-problems li")
    listed.first.wait_for()
    problems = listed.all_inner_texts()
    assert any("aws:ec2:send-spot-instance-interruptions" in p for p in problems), problems
    assert any("targets.tier.parameters" in p for p in problems), problems
    assert len(problems) >= 2
    tab.shot("40-import-problems")
    assert local.http.get(f"{local.url}/experiments", timeout=10).json()["items"] == before
    # Not JSON at all: said beside the field, before any request.
    page.get_by_label("FIS experiment template (JSON)").fill("{targets:")
    page.get_by_role("button", name="Import").click()
    assert "not valid JSON" in page.locator("#f-template-feedback").inner_text()
    assert page.locator("#import-problems li").count() == 0

    # The template as it is: the page lands on the experiment, showing its targets and actions in order.
    page.get_by_label("FIS experiment template (JSON)").fill(json.dumps(GAME_DAY))
    page.get_by_label("Duration (seconds, optional)").fill("30")
    page.get_by_role("button", name="Import").click()
    page.wait_for_selector("#step-actions")
    assert page.locator("h1").inner_text() == "fis-game-day"
    assert page.locator("#step-actions li").evaluate_all("items => items.map(i => i.dataset.action)") == [
        "stop",
        "settle",
    ]
    assert "after stop" in page.locator("#step-actions li[data-action='settle']").inner_text()
    assert page.locator("#step-targets tbody tr").count() == 1
    tab.shot("41-imported")

    # The preview: the target's resource, and the planned timeline with settle after stop.
    page.locator("#preview-button").click()
    page.locator("#planned-actions").wait_for()
    assert "1 selected" in page.locator("#preview-steps section[data-step='tier']").inner_text()

    def span(action: str) -> tuple[float, float]:
        rect = page.locator(f"#planned-actions li[data-action='{action}'] rect")
        x, width = (float(rect.get_attribute(a) or 0) for a in ("x", "width"))
        return x, x + width

    assert span("stop")[0] == 0 and span("settle")[0] == pytest.approx(span("stop")[1], abs=0.5)
    assert "3\u20135 s" in page.locator("#planned-actions li[data-action='settle']").inner_text()
    tab.shot("42-planned")

    # Run: live, each action on the time axis; in the end both completed, settle after stop.
    page.locator("#run-button").click()
    page.locator("#confirm-name").fill("fis-game-day")
    page.locator("#confirm-run").click()
    page.locator("#actions li[data-action='stop']").wait_for(timeout=30_000)
    page.locator("#run[data-status='completed']").wait_for(timeout=60_000)
    statuses = page.locator("#actions li").evaluate_all(
        "items => items.map(i => [i.dataset.action, i.dataset.status])"
    )
    assert statuses == [["stop", "completed"], ["settle", "completed"]]
    stop_end = page.locator("#actions li[data-action='stop'] rect.held")
    settle = page.locator("#actions li[data-action='settle'] rect.held")
    stop_until = float(stop_end.get_attribute("x") or 0) + float(stop_end.get_attribute("width") or 0)
    assert float(settle.get_attribute("x") or 0) >= stop_until - 0.5
    tab.shot("43-imported-run")


def test_create_an_experiment_with_errors_beside_their_fields(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    page.locator("#new-experiment").click()
    page.wait_for_selector("#experiment-form")
    page.get_by_label("Name", exact=True).fill("reboot-one")
    page.get_by_label("Fault", exact=True).select_option("ec2-reboot")
    page.get_by_label("Target").select_option(label="demo-web (ec2-instances)")
    page.get_by_label("Duration (seconds)").fill("0")
    page.get_by_label("Selection").fill("HALF")
    page.get_by_role("button", name="Create experiment").click()
    page.locator("#f-duration.is-invalid").wait_for()
    assert page.locator("#f-duration-feedback").inner_text()
    assert page.locator("#f-name.is-invalid").count() == 0
    tab.expect_refusal(422)
    tab.shot("17-experiment-form-errors")
    page.get_by_label("Duration (seconds)").fill("30")
    page.get_by_role("button", name="Create experiment").click()
    page.locator("#f-selection.is-invalid").wait_for()
    tab.expect_refusal(422)
    page.get_by_label("Selection").fill("COUNT(1)")
    page.get_by_role("button", name="Create experiment").click()
    page.locator("h1", has_text="reboot-one").wait_for()
    assert page.locator("#run-button").is_visible()
    tab.shot("18-experiment-created")


def test_a_viewer_sees_an_experiment_without_run_preview_or_edit(browser: Any, local: Local) -> None:
    viewer = Page(browser, local, DESKTOP)
    try:
        page = viewer.sign_in(minted(local, "viewer"))
        assert page.locator("#new-experiment").count() == 0
        page.get_by_role("link", name="stop-half-of-demo").click()
        page.locator("h1", has_text="stop-half-of-demo").wait_for()
        assert page.locator("#run-button, #preview-button, #edit-button, #stop-button").count() == 0
        viewer.shot("19-viewer-experiment")
    finally:
        viewer.close()


def test_keyboard_only_sign_in_and_navigation(tab: Page, local: Local) -> None:
    page = tab.open()
    page.wait_for_selector("#signin-form")
    # The token field has the focus; Tab reaches the button, Enter signs in.
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.insert_text(admin_token(local))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Sign in"
    page.keyboard.press("Enter")
    page.wait_for_selector("#experiments")
    # From the top of a fresh page (still signed in: the tab keeps its session storage): the skip
    # link first, then the brand, then the navigation.
    page.reload()
    page.wait_for_selector("#experiments")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    reached = []
    for _ in range(6):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert {"Experiments", "Targets", "Safety"} <= set(reached)
    # A link in the table is reachable too, and Enter opens it.
    page.locator("#experiments a").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#preview-button")
    tab.shot("20-keyboard")


def the_demo(local: Local) -> dict[str, Any]:
    """The single-fault demo experiment `chaosplane local` creates."""
    items = local.http.get(f"{local.url}/experiments", timeout=10).json()["items"]
    return next(e for e in items if e["name"] == "stop-half-of-demo")  # type: ignore[no-any-return]


def a_result_of(local: Local, experiment: dict[str, Any]) -> dict[str, Any]:
    """A finished result of `experiment`: a run started and stopped at once, unless it has one."""
    url = f"{local.url}/experiments/{experiment['id']}"
    if not local.http.get(f"{url}/results", timeout=10).json()["items"]:
        local.http.post(f"{url}/run", json={}, timeout=10).raise_for_status()
        local.http.post(f"{url}/stop", json={}, timeout=10).raise_for_status()

    def finished() -> dict[str, Any] | None:
        items = local.http.get(f"{url}/results", timeout=10).json()["items"]
        final = [r for r in items if r["status"] in ("completed", "stopped", "failed", "skipped")]
        return final[0] if final else None

    return wait_until(finished, timeout=60)  # type: ignore[no-any-return]


def accept_dialogs(page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_an_http_endpoint_target_with_its_webhook_created_and_edited(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    page.goto(f"{local.url}/ui/#/targets/new")
    page.wait_for_selector("#target-form")
    page.get_by_label("Name", exact=True).fill("payments-api")
    page.get_by_label("Type").select_option("http-endpoint")
    assert page.get_by_label("Label selector").is_hidden()
    # Given a rollback URL that is not http(s), the error lands on that nested field.
    page.get_by_label("Inject URL").fill("https://payments.example.com/chaos/inject")
    page.get_by_label("Rollback URL").fill("ftp://payments.example.com/chaos/rollback")
    page.get_by_label("Headers").fill("Authorization: Bearer s3cret\nX-Team: payments")
    page.get_by_role("button", name="Create target").click()
    page.locator("#f-webhook-rollback-url.is-invalid").wait_for()
    assert page.locator("#f-webhook-rollback-url-feedback").inner_text()
    assert page.locator("#f-webhook-inject-url.is-invalid").count() == 0
    tab.expect_refusal(422)
    tab.shot("21-webhook-target-errors")
    page.get_by_label("Rollback URL").fill("https://payments.example.com/chaos/rollback")
    page.get_by_label("Rollback method").select_option("DELETE")
    page.get_by_role("button", name="Create target").click()
    # Without a signing secret the endpoint could not tell our calls from anyone's: refused there.
    page.locator("#f-webhook-signing_secret.is-invalid").wait_for()
    assert "signing_secret" in page.locator("#f-webhook-signing_secret-feedback").inner_text()
    page.locator("#generate-secret").click()
    secret = page.get_by_label("Signing secret").input_value()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    page.get_by_role("button", name="Create target").click()
    page.locator("#targets tr[data-target='payments-api']").wait_for()
    target = next(
        t for t in local.http.get(f"{local.url}/targets").json()["items"] if t["name"] == "payments-api"
    )
    assert target["webhook"]["rollback"] == {
        "url": "https://payments.example.com/chaos/rollback",
        "method": "DELETE",
    }
    assert sorted(target["webhook"]["header_names"]) == ["Authorization", "X-Team"]
    assert "s3cret" not in str(target) and secret not in str(target)
    # When it is edited, the form shows which headers are stored and keeps them when left empty.
    page.get_by_role("link", name="Edit payments-api").click()
    page.wait_for_selector("#target-form")
    assert page.get_by_label("Type").is_disabled()
    assert page.get_by_label("Inject URL").input_value() == "https://payments.example.com/chaos/inject"
    assert "Stored: Authorization, X-Team" in page.locator("#f-webhook-headers-help").inner_text()
    tab.shot("22-webhook-target-edit")
    page.get_by_label("Description").fill("the payments service's chaos hooks")
    page.get_by_label("Retries").fill("4")
    page.get_by_role("button", name="Save target").click()
    page.locator("#targets tr[data-target='payments-api']", has_text="chaos hooks").wait_for()
    saved = local.http.get(f"{local.url}/targets/{target['id']}").json()
    assert saved["webhook"]["retries"] == 4 and sorted(saved["webhook"]["header_names"]) == [
        "Authorization",
        "X-Team",
    ]


def test_schedules_added_paused_resumed_and_deleted_on_the_experiment_page(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    accept_dialogs(page)
    page.get_by_role("link", name="stop-half-of-demo").click()
    page.locator("#schedule-form").wait_for()
    # A cron with both day fields set is refused beside the expression, as the Scheduler would.
    page.get_by_label("Expression").fill("cron(0 10 * * MON *)")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_role("button", name="Add schedule").click()
    page.locator("#f-expression.is-invalid").wait_for()
    assert page.locator("#f-expression-feedback").inner_text()
    tab.expect_refusal(422)
    page.get_by_label("Expression").fill("cron(0 10 ? * MON-FRI *)")
    page.get_by_role("button", name="Add schedule").click()
    row = page.locator("#schedule-table tr[data-schedule]", has_text="MON-FRI")
    row.wait_for()
    assert "Europe/Paris" in row.inner_text() and row.locator("[data-state='enabled']").count() == 1
    tab.shot("23-schedules")
    row.get_by_role("button", name="Pause cron(0 10 ? * MON-FRI *)").click()
    page.locator("#schedule-table [data-state='paused']").wait_for()
    page.locator("#schedule-table").get_by_role("button", name="Resume cron(0 10 ? * MON-FRI *)").click()
    page.locator("#schedule-table [data-state='enabled']").wait_for()
    page.locator("#schedule-table").get_by_role("button", name="Delete cron(0 10 ? * MON-FRI *)").click()
    page.locator("#schedules", has_text="Runs only on demand.").wait_for()


def test_an_admin_deletes_an_experiment(tab: Page, local: Local) -> None:
    demo = the_demo(local)
    body = {
        "name": "short-lived",
        "type": "ec2-reboot",
        "target": demo["target"],
        "duration": 30,
        "selection": "COUNT(1)",
    }
    created = local.http.post(f"{local.url}/experiments", json=body, timeout=10)
    assert created.status_code == 201, created.text
    page = tab.sign_in(admin_token(local))
    accept_dialogs(page)
    page.get_by_role("link", name="short-lived").click()
    page.locator("#delete-button").click()
    page.wait_for_selector("#experiments")
    page.locator("#toasts", has_text="Deleted short-lived.").wait_for()
    assert page.locator("#experiments tr[data-experiment='short-lived']").count() == 0
    gone = local.http.get(f"{local.url}/experiments/{created.json()['id']}", timeout=10)
    assert gone.status_code == 404


def test_notifications_set_with_errors_beside_the_field(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    accept_dialogs(page)
    page.get_by_role("link", name="Notifications").click()
    page.locator("#email-form").wait_for()
    page.get_by_label("Addresses").fill("oncall@example.com\nnot-an-address")
    page.locator("#email-form").get_by_role("button", name="Save").click()
    page.locator("#f-addresses.is-invalid").wait_for()
    assert "not an email address" in page.locator("#f-addresses-feedback").inner_text()
    tab.expect_refusal(422)
    page.get_by_label("Addresses").fill("oncall@example.com")
    page.locator("#email-form").get_by_role("button", name="Save").click()
    page.locator("#email-current", has_text="oncall@example.com").wait_for()
    page.get_by_label("Routing key").fill("0123456789abcdef0123456789abcdef")
    page.locator("#pagerduty-form").get_by_role("button", name="Save").click()
    page.locator("#pagerduty-current .mono").wait_for()
    assert "0123456789abcdef0123456789abcdef" not in page.locator("#pagerduty-current").inner_text()
    assert "null" not in page.locator("#main").inner_text()  # nothing left out shows as a word
    tab.shot("24-notifications")
    page.locator("#pagerduty-remove").click()
    page.locator("#pagerduty-current", has_text="Not set.").wait_for()


def test_the_audit_trail_is_for_admins(browser: Any, local: Local) -> None:
    admin = Page(browser, local, DESKTOP)
    try:
        page = admin.sign_in(admin_token(local))
        page.get_by_role("link", name="Audit").click()
        page.locator("#audit tbody tr").first.wait_for()
        assert "POST /experiments" in page.locator("#audit").inner_text()
        admin.shot("25-audit")
    finally:
        admin.close()
    viewer = Page(browser, local, DESKTOP)
    try:
        page = viewer.sign_in(minted(local, "viewer"))
        assert page.get_by_role("link", name="Audit").count() == 0
        page.goto(f"{local.url}/ui/#/audit")
        page.locator("#main .alert-danger", has_text="for admins").wait_for()
    finally:
        viewer.close()


def test_after_a_page_change_the_focus_is_on_the_new_pages_heading(tab: Page, local: Local) -> None:
    page = tab.sign_in(admin_token(local))
    page.get_by_role("link", name="Targets").click()
    page.wait_for_selector("#targets")
    assert (
        page.evaluate("document.activeElement.tagName + ' ' + document.activeElement.textContent")
        == "H1 Targets"
    )
    assert page.title() == "Targets · Chaosplane"
    # A form page puts the focus in its first field instead.
    page.locator("#new-target").click()
    page.wait_for_selector("#target-form")
    assert page.evaluate("document.activeElement.id") == "f-name"


AXE = ROOT / "ui" / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2.1 A/AA rules on the page as it is; serious and critical findings."""
    # evaluate() runs through the DevTools protocol, outside the page's Content-Security-Policy.
    page.evaluate(AXE.read_text())
    found = page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}))"
        ".violations.map((v) => ({id: v.id, impact: v.impact,"
        " nodes: v.nodes.map((n) => n.target.join(' '))}))"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['nodes'][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_every_page_passes_an_accessibility_audit(tab: Page, local: Local, shop: Shop) -> None:
    if not AXE.exists():
        pytest.fail("axe-core is missing: run `make ui` (ui/package.json pins it)")
    page = tab.open()
    page.wait_for_selector("#signin-form")
    problems = {"sign-in": axe_violations(page)}
    tab.sign_in(admin_token(local))
    demo = the_demo(local)
    result = a_result_of(local, demo)
    game_day = imported_game_day(local)
    probed = a_probed_run(local, shop)
    pages = {
        "experiments": ("#/experiments", "#experiments"),
        "experiment-new": ("#/experiments/new", "#experiment-form"),
        "result": (f"#/results/{result['id']}", "#timeline li"),
        "probed-result": (f"#/results/{probed['id']}", "#probes .probe-chart canvas"),
        "experiment": (f"#/experiments/{demo['id']}", "#schedules table, #schedules p"),
        "experiment-form": (f"#/experiments/{demo['id']}/edit", "#experiment-form"),
        "fis-import": ("#/experiments/import", "#fis-import"),
        "multi-step-experiment": (f"#/experiments/{game_day['id']}", "#step-actions"),
        "multi-step-form": (f"#/experiments/{game_day['id']}/edit", "#steps-form"),
        "targets": ("#/targets", "#targets"),
        "target-form": ("#/targets/new", "#target-form"),
        "safety": ("#/safety", "#lever-state"),
        "notifications": ("#/notifications", "#email-form"),
        "audit": ("#/audit", "#audit"),
    }
    for name, (hash_, ready) in pages.items():
        page.goto(f"{local.url}/ui/{hash_}")
        page.wait_for_selector(ready)
        problems[name] = axe_violations(page)
    page.goto(f"{local.url}/ui/#/experiments/{game_day['id']}")
    page.locator("#preview-button").click()
    page.wait_for_selector("#planned-actions")
    # The clicked button is hovered and focused, its colours mid-transition: audit the page at rest.
    page.mouse.move(0, 0)
    page.locator("#preview-button").blur()
    page.wait_for_timeout(400)  # Bootstrap's buttons take 0.15 s to change colour
    problems["multi-step-preview"] = axe_violations(page)
    page.goto(f"{local.url}/ui/#/targets/new")
    page.get_by_label("Type").select_option("http-endpoint")  # the webhook's fields
    problems["webhook-target-form"] = axe_violations(page)
    assert {k: v for k, v in problems.items() if v} == {}
    # The audit sees what it should: an unlabelled button is a violation it reports.
    page.evaluate("document.getElementById('main').append(document.createElement('button'))")
    assert any(v.startswith("button-name (critical)") for v in axe_violations(page))


def test_no_page_is_wider_than_a_phone(browser: Any, local: Local, shop: Shop) -> None:
    phone = Page(browser, local, PHONE)
    try:
        page = phone.sign_in(admin_token(local))
        demo = the_demo(local)
        result = a_result_of(local, demo)
        game_day = imported_game_day(local)
        pages = {
            "experiment": (f"#/experiments/{demo['id']}", "#schedules table, #schedules p"),
            "experiment-form": (f"#/experiments/{demo['id']}/edit", "#experiment-form"),
            "fis-import": ("#/experiments/import", "#fis-import"),
            "multi-step-experiment": (f"#/experiments/{game_day['id']}", "#step-actions"),
            "multi-step-form": (f"#/experiments/{game_day['id']}/edit", "#steps-form"),
            "target-form": ("#/targets/new", "#target-form"),
            "notifications": ("#/notifications", "#email-form"),
            "audit": ("#/audit", "#audit"),
        }
        pages["result"] = (f"#/results/{result['id']}", "#timeline li")
        probed = a_probed_run(local, shop)
        pages["probed-result"] = (f"#/results/{probed['id']}", "#probes .probe-chart canvas")
        wider = {}
        for name, (hash_, ready) in pages.items():
            page.goto(f"{local.url}/ui/{hash_}")
            page.wait_for_selector(ready)
            # Wide tables scroll inside their own box; the page itself never scrolls sideways.
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                wider[name] = width
            phone.shot(f"26-phone-{name}")
        assert wider == {}
    finally:
        phone.close()
