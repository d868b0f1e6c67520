"""The web dashboard in real headless Chromium (Debian's package, driven by Playwright) against
`chaosplane local`. Each step saves a screenshot under build/screenshots/ to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
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
    assert "needs a cluster" in page.locator("#f-cluster-feedback").inner_text()
    assert "namespace" in page.locator("#f-namespace-feedback").inner_text()
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
    tab.shot("13-running")
    page.locator("#stop-button").click()
    page.locator("#run[data-status='stopped']").wait_for(timeout=30_000)
    tab.shot("14-stopped")
    page.locator("#run a", has_text="Result").click()
    page.wait_for_selector("#timeline li")
    assert page.locator("#run tbody tr").count() == 2
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
    demo = next(e for e in local.http.get(f"{local.url}/experiments").json()["items"] if e["target"])
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
    tab.shot("16-result-chart")


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
