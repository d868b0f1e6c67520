"""Time to halt: from a stop condition entering ALARM to every resource restored and the run `stopped`.

Two paths, measured separately on `chaosplane local`, each over --runs runs (at least 20):
  event path:   set_alarm_state(ALARM) -> EventBridge rule -> guard Lambda -> Halted -> Rollback
  sweeper path: the alarm event is lost (the guard rule has no target); the scheduled sweeper
                notices the alarm on its next tick. On AWS it ticks every 60 s; here --sweep-every
                (default 5 s) sets the tick, so its figures are "tick wait + halt".
Two ends of a halt, both on the platform's own record and the same clock as the moment the alarm
was set: *restored*, when Rollback recorded every resource undone ("rollback complete"), and
*finalized*, when Finalize recorded the run `stopped` (the script checks the instances run again).
Prints median and p95 of each per path. Usage: python bench/time_to_halt.py [--runs 20] [--sweep-every 5]

With --probe http, a third path instead: an HTTP probe (--interval, --tolerance) against a server
on loopback that the script turns to 500 mid-run; from that moment to every resource restored.
The goal is p95 under interval x tolerance + 1 s (the probe needs `tolerance` failed answers
`interval` apart, and its first may come up to an interval after the endpoint fails).
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from _local import Local, local_platform, percentile, row, wait_for

ALARM = "bench-5xx"
POLL = 0.05


class Endpoint:
    """The service a probe watches: 200 until `failing`."""

    def __init__(self) -> None:
        self.failing = False
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(500 if state.failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"


def measure_probe(
    local: Local, runs: int, interval: float, tolerance: int
) -> tuple[list[float], list[float]]:
    api, http, ec2 = local.api, local.http, local.client("ec2")
    endpoint = Endpoint()
    target = local.ec2_target("probe-halt", 2)
    probe = {
        "name": "shop",
        "source": "http",
        "url": endpoint.url,
        "interval": interval,
        "tolerance": tolerance,
    }
    body = {
        "name": "probe halt",
        "type": "ec2-stop",
        "target": target["id"],
        "duration": 3600,
        "probes": [probe],
    }
    experiment = http.post(f"{api}/experiments", json=body, timeout=30).json()

    def states() -> set[str]:
        found = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": ["probe-halt"]}])
        return {i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]}

    restored: list[float] = []
    finalized: list[float] = []
    for n in range(runs + 1):  # one warm-up run, not counted
        endpoint.failing = False
        result_id = http.post(f"{api}/experiments/{experiment['id']}/run", timeout=30).json()["result_id"]
        wait_for(lambda: states() == {"stopped"})
        wait_observing(local, result_id)
        time.sleep(interval * (n % 4) / 4)  # fail at different points of the probe's interval
        failed = time.time()
        endpoint.failing = True
        result = wait_for_final(local, result_id)
        if result["status"] != "stopped" or result["stop_kind"] != "probe" or states() != {"running"}:
            raise AssertionError(f"run {result_id} did not halt on its probe: {result['status']}")
        if n:
            restored.append(_at(result["timeline"], "rollback", "rollback complete") - failed)
            finalized.append(_at(result["timeline"], "finalize") - failed)
    endpoint.server.shutdown()
    return restored, finalized


def wait_observing(local: Local, result_id: str) -> None:
    """Until the run holds its fault (its Observe step has begun)."""
    wait_for(
        lambda: any(
            e["step"] == "observe"
            for e in local.http.get(f"{local.api}/results/{result_id}", timeout=30).json()["timeline"]
        )
    )


def wait_for_final(local: Local, result_id: str) -> Any:
    final = ("completed", "stopped", "failed")
    wait_for(
        lambda: local.http.get(f"{local.api}/results/{result_id}", timeout=30).json()["status"] in final,
        every=POLL,
    )
    return local.http.get(f"{local.api}/results/{result_id}", timeout=30).json()


def _at(timeline: list[dict[str, str]], step: str, starting: str = "") -> float:
    found = next(e["at"] for e in timeline if e["step"] == step and e["message"].startswith(starting))
    return datetime.fromisoformat(found.replace("Z", "+00:00")).timestamp()


def measure(local: Local, runs: int, lose_events: bool) -> tuple[list[float], list[float]]:
    api, http = local.api, local.http
    ec2, cloudwatch, dynamodb = local.client("ec2"), local.client("cloudwatch"), local.client("dynamodb")
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        MetricName="5xx",
        Namespace="Bench",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="bench")
    if lose_events:
        local.client("events").remove_targets(Rule="chaosplane-GuardFunction-AlarmFired", Ids=["function"])
    target = local.ec2_target("halt", 2)
    experiment = http.post(
        f"{api}/experiments",
        json={
            "name": "halt",
            "type": "ec2-stop",
            "target": target["id"],
            "duration": 3600,
            "stop_conditions": [ALARM],
        },
        timeout=30,
    ).json()

    def status_of(result_id: str) -> str:
        item = dynamodb.get_item(
            TableName="chaosplane-ResultsTable", Key={"id": {"S": result_id}}, ConsistentRead=True
        )["Item"]
        return str(item["status"]["S"])

    def states() -> set[str]:
        found = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": ["halt"]}])
        return {i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]}

    restored: list[float] = []
    finalized: list[float] = []
    for n in range(runs + 1):  # one warm-up run, not counted
        result_id = http.post(f"{api}/experiments/{experiment['id']}/run", timeout=30).json()["result_id"]
        wait_for(lambda: states() == {"stopped"})
        wait_observing(local, result_id)
        fired = time.time()
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed")
        # The end is when the run became `stopped`: the time its Finalize step recorded, after every
        # resource was restored (checked below). Reading the platform's own record, rather than the
        # moment a poll happens to notice, keeps the client's polling and its HTTP retries out of
        # the figure; the poll here only learns that the run is done, every 50 ms.
        wait_for(lambda rid=result_id: status_of(rid) == "stopped", every=POLL)
        timeline = http.get(f"{api}/results/{result_id}", timeout=30).json()["timeline"]

        if states() != {"running"}:
            raise AssertionError(f"run {result_id} ended stopped with instances not restored")
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="recovered")
        if n:
            restored.append(_at(timeline, "rollback", "rollback complete") - fired)
            finalized.append(_at(timeline, "finalize") - fired)
    return restored, finalized


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sweep-every", type=float, default=5.0)
    parser.add_argument("--probe", choices=["http"], help="measure a probe's halt instead of an alarm's")
    parser.add_argument("--interval", type=float, default=1.0, help="the probe's interval (s)")
    parser.add_argument("--tolerance", type=int, default=2, help="the probe's tolerance")
    args = parser.parse_args()

    if args.probe:
        with local_platform("--schedule-every", "3600") as local:
            restored, finalized = measure_probe(local, args.runs, args.interval, args.tolerance)
        goal = args.interval * args.tolerance + 1
        print(f"runs: {args.runs} (after one warm-up run) on `chaosplane local`; 2 instances stopped;")
        print(f"an http probe every {args.interval:g} s, tolerance {args.tolerance}: goal p95 < {goal:g} s")
        print(row("endpoint fails -> every resource restored", restored))
        print(row("endpoint fails -> run finalized stopped", finalized))
        print(f"p95 restored / goal: {percentile(restored, 95) / goal:.2f}")
        return
    with local_platform("--schedule-every", "3600") as local:  # no sweeper tick during the event path
        event_path = measure(local, args.runs, lose_events=False)
    with local_platform("--schedule-every", str(args.sweep_every)) as local:
        sweeper_path = measure(local, args.runs, lose_events=True)

    print(f"runs: {args.runs} per path (after one warm-up run) on `chaosplane local`; 2 instances stopped")
    print(row("event path: ALARM -> every resource restored", event_path[0]))
    print(row("event path: ALARM -> run finalized stopped", event_path[1]))
    print(row(f"sweeper path (tick {args.sweep_every:g} s): restored", sweeper_path[0]))
    print(row(f"sweeper path (tick {args.sweep_every:g} s): finalized", sweeper_path[1]))
    print("on AWS the sweeper ticks every 60 s: its path is bounded by 60 s plus the halt itself")


if __name__ == "__main__":
    main()
