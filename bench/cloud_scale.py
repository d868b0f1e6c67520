"""Cloud scale: resolve, inject and roll back over --instances (default 1,000) EC2 instances.

On `chaosplane local` (moto's threaded server, as a user runs it), two views:
  family:     the EC2 family itself, from this process, against the embedded AWS endpoint:
              resolve (paginated DescribeInstances + selector) --repeat times, then ec2-stop inject
              on every instance (journal in memory) and rollback of every entry, ten at a time,
              as the executor does (bench/parallel_changes.py compares one at a time).
  end to end: through the API and the state machine: POST preview over every instance (resolve +
              plan), then a run of ec2-stop that resolves every instance and hits --run-instances of
              them (COUNT(n)): POST run -> those stopped, POST stop -> all running again and the run
              recorded `stopped`, and the size of its result record. (A run records its first
              resources one by one, then in batches: the record's writes stay few and small.)
Prints seconds and resources per second for each.
Usage: python bench/cloud_scale.py [--instances 1000] [--repeat 3] [--run-instances 100] [--family-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

from _local import Local, local_platform, wait_for
from chaosplane.faults.base import RunContext
from chaosplane.faults.ec2 import Ec2Instances
from chaosplane.faults.memory import MemoryJournal
from chaosplane.models import FaultType, Target
from chaosplane.parallel import CHANGES_AT_ONCE, each_in_order

TAG = "scale"


def line(what: str, count: int, seconds: float) -> str:
    return f"{what:<52} {count:5d} in {seconds:7.2f} s   {count / seconds:8.0f} resources/s"


def launch(local: Local, count: int) -> None:
    ec2 = local.client("ec2")
    for start in range(0, count, 250):
        ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=min(250, count - start),
            MaxCount=min(250, count - start),
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": TAG}]}],
        )


def states(local: Local) -> list[str]:
    found = local.client("ec2").describe_instances(Filters=[{"Name": "tag:app", "Values": [TAG]}])
    return [i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]]


def count_in(local: Local, state: str) -> int:
    """How many instances are in `state`: asked narrowly, so that polling does not load the
    embedded AWS with 1,000 instances' worth of XML every time (that would slow the run it times)."""
    filters = [{"Name": "tag:app", "Values": [TAG]}, {"Name": "instance-state-name", "Values": [state]}]
    found = local.client("ec2").describe_instances(Filters=filters)
    return sum(len(r["Instances"]) for r in found["Reservations"])


def family_view(local: Local, count: int, repeat: int) -> list[str]:
    family = Ec2Instances(local.client("ec2"))
    now = datetime.now(UTC)
    target = Target(
        id="bench",
        team="bench",
        name="scale",
        type="ec2-instances",
        selector=f"app={TAG}",
        created_at=now,
        updated_at=now,
    )
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        resources = family.resolve(target, FaultType.EC2_STOP)
        timings.append(time.perf_counter() - started)
    assert len(resources) == count, f"resolved {len(resources)} of {count}"
    now = datetime.now(UTC)
    journal = MemoryJournal(RunContext("bench", "bench", 3600, now + timedelta(hours=1)))
    started = time.perf_counter()
    each_in_order(
        resources,
        lambda r: family.stop(r, False, journal),
        lambda _: None,
        width=CHANGES_AT_ONCE,
    )
    injected = time.perf_counter() - started
    assert set(states(local)) == {"stopped"}
    started = time.perf_counter()
    each_in_order(list(journal.entries), family.start_again, lambda _: None, width=CHANGES_AT_ONCE)
    rolled = time.perf_counter() - started
    assert set(states(local)) == {"running"}
    return [
        line(f"family: resolve (median of {repeat})", count, statistics.median(timings)),
        line(f"family: inject ec2-stop, {CHANGES_AT_ONCE} at a time", count, injected),
        line(f"family: rollback, {CHANGES_AT_ONCE} at a time", count, rolled),
    ]


def end_to_end_view(local: Local, count: int, hit: int) -> list[str]:
    api, http = local.api, local.http
    policy = {"max_percent": 100, "max_resources": 1000, "max_duration": 43200}
    http.put(f"{api}/safety/policy", json=policy, timeout=30).raise_for_status()
    target = http.post(
        f"{api}/targets", json={"name": TAG, "type": "ec2-instances", "selector": f"app={TAG}"}, timeout=30
    ).json()
    experiment = http.post(
        f"{api}/experiments",
        json={
            "name": TAG,
            "type": "ec2-stop",
            "target": target["id"],
            "duration": 3600,
            "selection": f"COUNT({hit})",
        },
        timeout=30,
    ).json()
    started = time.perf_counter()
    preview = http.post(f"{api}/experiments/{experiment['id']}/preview", timeout=120).json()
    previewed = time.perf_counter() - started
    listed = len(preview["selected"]) + len(preview["eligible_not_selected"])
    assert listed == count and preview["verdict"]["allowed"], preview["verdict"]

    started = time.perf_counter()
    run = http.post(f"{api}/experiments/{experiment['id']}/run", timeout=30)
    run.raise_for_status()
    stopped_at = wait_for(lambda: count_in(local, "stopped") == hit, timeout=1800, every=0.5)
    asked = time.perf_counter()
    http.post(f"{api}/experiments/{experiment['id']}/stop", timeout=30).raise_for_status()
    restored_at = wait_for(lambda: count_in(local, "stopped") == 0, timeout=1800, every=0.5)
    result_id = run.json()["result_id"]
    ended_at = wait_for(
        lambda: http.get(f"{api}/results/{result_id}", timeout=30).json()["status"] == "stopped",
        timeout=1800,
        every=0.5,
    )
    record = http.get(f"{api}/results/{result_id}", timeout=30).json()
    recorded = sum(1 for r in record["resources"] if r["restored"] is not None)
    size = len(json.dumps(record).encode())
    return [
        f"result record: {size / 1024:.0f} KB as JSON (DynamoDB's item limit: 400 KB), "
        f"{len(record['timeline'])} timeline lines, {recorded} of {hit} resources recorded restored",
        line("end to end: POST preview (resolve + plan)", count, previewed),
        line(f"end to end: POST run -> the {hit} selected stopped", hit, stopped_at - started),
        line("end to end: POST stop -> every instance running", hit, restored_at - asked),
        line("end to end: POST stop -> run recorded stopped", hit, ended_at - asked),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run-instances", type=int, default=100, help="instances a full run hits")
    parser.add_argument("--family-only", action="store_true")
    args = parser.parse_args()

    with local_platform() as local:
        launch(local, args.instances)
        lines = family_view(local, args.instances, args.repeat)
        if not args.family_only:
            lines += end_to_end_view(local, args.instances, min(args.run_instances, args.instances))
    print(f"{args.instances} EC2 instances on `chaosplane local` (moto's threaded server)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
