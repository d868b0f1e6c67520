"""The stop conditions' metrics around a run: kept with the result when it ends, readable while it runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chaosplane.metrics import MARGIN, READ_AGAIN_UNTIL, SETTLE
from chaosplane.runs import Runs
from chaosplane.settings import load_settings
from chaosplane.store import Store
from chaosplane.wiring.clients import Clients
from chaosplane.wiring.runs import metric_reader
from tests.conftest import TEAM, Platform, wait_until
from tests.integration.test_runs import setup_experiment, start_and_hold


def runs_at(now: datetime) -> Runs:
    """The API's run component with its clock at `now` (the platform's tables and CloudWatch)."""
    return Runs(
        Store(load_settings()),
        lambda _: None,  # type: ignore[arg-type, return-value]
        metrics=metric_reader(Clients(load_settings())),
        clock=lambda: now,
    )


def put_points(platform: Platform, values: list[float]) -> None:
    """One point a minute up to now, on the metric platform.alarm() watches (Shop 5xx)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    platform.session.client("cloudwatch").put_metric_data(
        Namespace="Shop",
        MetricData=[
            {"MetricName": "5xx", "Timestamp": now - timedelta(minutes=len(values) - i), "Value": v}
            for i, v in enumerate(values)
        ],
    )


def with_chart(platform: Platform, result_id: str) -> dict:
    """The finished run's record once its chart is kept (Finalize keeps it just after the run ends)."""
    return wait_until(
        lambda: (r := platform.json("GET", f"/results/{result_id}"))["metrics"].get("stop_conditions") and r
    )


def test_a_finished_run_keeps_its_stop_conditions_metrics(platform: Platform) -> None:
    # Given a stop condition whose metric has points from before the run...
    platform.instances(2, {"app": "web"})
    platform.loosen_policy()
    platform.alarm("checkout-5xx")
    put_points(platform, [0, 1, 0, 2, 0])
    experiment = setup_experiment(platform, stop_conditions=["checkout-5xx"])
    # ...when the run ends...
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert platform.wait_for_result(run["result_id"])["status"] == "completed"
    result = with_chart(platform, run["result_id"])
    # ...then its metrics hold the alarm's series, threshold and the fault window.
    chart = result["metrics"]["stop_conditions"]
    assert chart["fault_start"] and chart["fault_end"] and chart["fault_start"] <= chart["fault_end"]
    (series,) = chart["series"]
    assert series["alarm"] == "checkout-5xx"
    assert series["threshold"] == 1 and series["comparison"] == "GreaterThanThreshold"
    assert sum(series["values"]) == 3 and len(series["timestamps"]) == len(series["values"]) >= 4
    assert series["label"].startswith("Shop 5xx (Sum")


def test_while_it_runs_the_metrics_are_read_on_demand(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    platform.loosen_policy()
    platform.alarm("checkout-5xx")
    platform.alarm("gone")
    put_points(platform, [4])
    experiment, run = start_and_hold(platform, web, stop_conditions=["checkout-5xx", "gone"])
    platform.session.client("cloudwatch").delete_alarms(AlarmNames=["gone"])  # deleted mid-run
    chart = platform.json("GET", f"/results/{run['result_id']}/metrics")
    assert chart["fault_start"] is not None
    found, missing = chart["series"]
    assert found["values"] == [4.0]
    assert missing == {"alarm": "gone", "timestamps": [], "values": [], "note": "alarm not found"}
    platform.json("POST", f"/experiments/{experiment['id']}/stop", expect=202)
    platform.wait_for_result(run["result_id"])


def test_a_run_without_stop_conditions_has_no_chart(platform: Platform) -> None:
    platform.instances(1, {"app": "web"})
    platform.loosen_policy()
    experiment = setup_experiment(platform)
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    assert "stop_conditions" not in platform.wait_for_result(run["result_id"])["metrics"]


def finished_with_points(platform: Platform) -> tuple[dict, datetime]:
    platform.instances(1, {"app": "web"})
    platform.alarm("checkout-5xx")
    put_points(platform, [2, 5])
    experiment = setup_experiment(platform, stop_conditions=["checkout-5xx"])
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    platform.wait_for_result(run["result_id"])
    result = with_chart(platform, run["result_id"])
    return result, datetime.fromisoformat(result["end_time"])


def test_the_chart_reaches_past_the_run_once_those_minutes_have_passed(platform: Platform) -> None:
    # Given a finished run with a stop condition...
    result, ended = finished_with_points(platform)
    run = {"result_id": result["id"]}
    kept_at_end = result["metrics"]["stop_conditions"]
    assert kept_at_end["complete"] is False
    assert datetime.fromisoformat(kept_at_end["to"]) <= ended
    # ...and the metric's points in the minutes after it...
    after = [ended + timedelta(minutes=m) for m in (2, 6)]
    platform.session.client("cloudwatch").put_metric_data(
        Namespace="Shop", MetricData=[{"MetricName": "5xx", "Timestamp": t, "Value": 7} for t in after]
    )
    # ...when the chart is read once those minutes have passed and settled (the API's code)...
    chart = runs_at(ended + MARGIN + SETTLE).metric_series(run["result_id"], team=TEAM)
    # ...then it runs from before the run to MARGIN past its end, with the points after the run...
    assert chart["complete"] is True
    assert datetime.fromisoformat(chart["to"]) == ended + MARGIN
    (series,) = chart["series"]
    assert series["values"][-2:] == [7.0, 7.0]
    assert all(datetime.fromisoformat(t) > ended for t in series["timestamps"][-2:])
    # ...and the result keeps it in place of the one read when the run ended, for good.
    assert platform.json("GET", f"/results/{run['result_id']}")["metrics"]["stop_conditions"] == chart
    platform.session.client("cloudwatch").put_metric_data(
        Namespace="Shop",
        MetricData=[{"MetricName": "5xx", "Timestamp": ended + timedelta(minutes=4), "Value": 9}],
    )
    assert platform.json("GET", f"/results/{run['result_id']}/metrics") == chart


def test_an_alarm_deleted_after_the_run_never_empties_its_chart(platform: Platform) -> None:
    result, ended = finished_with_points(platform)
    platform.session.client("cloudwatch").delete_alarms(AlarmNames=["checkout-5xx"])
    chart = runs_at(ended + MARGIN + SETTLE).metric_series(result["id"], team=TEAM)
    (series,) = chart["series"]
    assert series["values"][-2:] == [2.0, 5.0] and chart["complete"] is True
    assert platform.json("GET", f"/results/{result['id']}")["metrics"]["stop_conditions"] == chart


def test_an_old_result_keeps_the_chart_it_has_and_is_not_read_again(platform: Platform) -> None:
    # A result from before charts were completed (or never opened in its first hour) is read as kept.
    result, ended = finished_with_points(platform)
    platform.session.client("cloudwatch").put_metric_data(
        Namespace="Shop",
        MetricData=[{"MetricName": "5xx", "Timestamp": ended + timedelta(minutes=3), "Value": 9}],
    )
    chart = runs_at(ended + READ_AGAIN_UNTIL).metric_series(result["id"], team=TEAM)
    assert chart == {**result["metrics"]["stop_conditions"], "complete": True}
    assert 9.0 not in chart["series"][0]["values"]  # not read again


def test_soon_after_the_run_the_chart_is_read_again_and_not_kept(platform: Platform) -> None:
    platform.instances(1, {"app": "web"})
    platform.alarm("checkout-5xx")
    experiment = setup_experiment(platform, stop_conditions=["checkout-5xx"])
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    platform.wait_for_result(run["result_id"])
    result = with_chart(platform, run["result_id"])
    put_points(platform, [3])
    chart = platform.json("GET", f"/results/{run['result_id']}/metrics")
    kept_to = datetime.fromisoformat(result["metrics"]["stop_conditions"]["to"])
    assert chart["complete"] is False and datetime.fromisoformat(chart["to"]) > kept_to
    ended = datetime.fromisoformat(result["end_time"])
    assert datetime.fromisoformat(chart["complete_at"]) == ended + MARGIN + SETTLE  # the page polls until
    assert chart["series"][0]["values"] == [3.0]
    kept = platform.json("GET", f"/results/{run['result_id']}")["metrics"]["stop_conditions"]
    assert kept == result["metrics"]["stop_conditions"]
