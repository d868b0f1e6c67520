"""Changes at once: Inject and Rollback over N EC2 instances, one at a time against ten at a time.

What bounds a big run on AWS is the round trip of each call (0.1 to 0.5 s for EC2's StopInstances),
not moto's answer in milliseconds, so the bench adds --latency seconds to every EC2 call the family
makes (a botocore `before-send` hook, in this process only). It drives the EC2 family through
`chaosplane.parallel.each_in_order` exactly as `Runs.inject` and `Runs.rollback` do (journal in
memory), at width 1 (how runs worked before) and at --width, alternating, against the instances of
a `chaosplane local`. Prints seconds, resources per second and the ratio of the medians.
Usage: python bench/parallel_changes.py [--instances 100] [--latency 0.2] [--width 10] [--repeat 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _local import local_platform
from chaosplane.faults.base import Resource, RunContext
from chaosplane.faults.ec2 import Ec2Instances
from chaosplane.faults.memory import MemoryJournal
from chaosplane.models import FaultType, Target
from chaosplane.parallel import CHANGES_AT_ONCE, each_in_order

TAG = "parallel"


def with_latency(client: Any, seconds: float) -> Any:
    def wait(**_: Any) -> None:
        time.sleep(seconds)  # then the request goes on as usual (returning None does not answer it)

    client.meta.events.register("before-send.ec2.*", wait)
    return client


def inject_and_roll_back(family: Ec2Instances, resources: list[Resource], width: int) -> tuple[float, float]:
    journal = MemoryJournal(RunContext("bench", "bench", 3600, datetime.now(UTC) + timedelta(hours=1)))
    hit: list[str] = []
    started = time.perf_counter()
    each_in_order(
        resources,
        lambda r: family.stop(r, False, journal),
        hit.append,
        width=width,
    )
    injected = time.perf_counter() - started
    restored: list[str] = []
    started = time.perf_counter()
    each_in_order(list(journal.entries), family.start_again, restored.append, width=width)
    rolled = time.perf_counter() - started
    assert len(hit) == len(resources) == len(restored), (len(hit), len(resources), len(restored))
    return injected, rolled


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added to every EC2 call")
    parser.add_argument("--width", type=int, default=CHANGES_AT_ONCE)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    with local_platform() as local:
        local.ec2_target(TAG, args.instances)
        now = datetime.now(UTC)
        target = Target(
            id="bench",
            team="bench",
            name=TAG,
            type="ec2-instances",
            selector=f"app={TAG}",
            created_at=now,
            updated_at=now,
        )
        family = Ec2Instances(with_latency(local.client("ec2"), args.latency))
        resources = family.resolve(target, FaultType.EC2_STOP)
        assert len(resources) == args.instances, f"resolved {len(resources)} of {args.instances}"
        timings: dict[int, list[tuple[float, float]]] = {1: [], args.width: []}
        for _ in range(args.repeat):
            for width in timings:
                timings[width].append(inject_and_roll_back(family, resources, width))

    print(
        f"{args.instances} EC2 instances on `chaosplane local`, {args.latency:.2f} s added to every EC2 call"
    )
    medians = {}
    for width, runs in timings.items():
        inject = statistics.median(t[0] for t in runs)
        rollback = statistics.median(t[1] for t in runs)
        medians[width] = (inject, rollback)
        print(
            f"width {width:3d}: inject {inject:7.2f} s ({args.instances / inject:6.1f}/s)   "
            f"rollback {rollback:7.2f} s ({args.instances / rollback:6.1f}/s)   median of {len(runs)}"
        )
    (one_inject, one_rollback), (many_inject, many_rollback) = medians[1], medians[args.width]
    print(
        f"width {args.width} against 1: inject {one_inject / many_inject:.1f}x faster, "
        f"rollback {one_rollback / many_rollback:.1f}x faster"
    )
    scale = 1000 / args.instances
    print(
        f"so Inject of 1,000 at this latency: about {one_inject * scale:.0f} s one at a time, "
        f"{many_inject * scale:.0f} s {args.width} at a time (the executor's timeout is 300 s)"
    )


if __name__ == "__main__":
    main()
