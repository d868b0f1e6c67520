"""Latency of a run on the embedded AWS, as a user sees it over HTTP.

For each of --runs runs of an `ec2-stop` experiment (COUNT(2) of 4 instances):
  inject latency:   POST /experiments/{id}/run  ->  every selected instance is `stopped`
  restore latency:  POST /experiments/{id}/stop ->  every selected instance is back to `running`
Prints the median, p95 and max of each, and the ratio of the medians.
Usage: python bench/run_latency.py [--runs 10]

The platform runs as `chaosplane local` in its own process, as a user runs it, so this script's
polling does not compete with the platform for the interpreter.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _local import local_platform, row, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    with local_platform() as local:
        api, http, ec2 = local.api, local.http, local.client("ec2")
        target = local.ec2_target("bench", 4)
        experiment = http.post(
            f"{api}/experiments",
            json={
                "name": "bench",
                "type": "ec2-stop",
                "target": target["id"],
                "duration": 3600,
                "selection": "COUNT(2)",
            },
            timeout=30,
        ).json()

        def states() -> list[str]:
            found = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": ["bench"]}])
            return [i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]]

        inject, restore = [], []
        for n in range(args.runs + 1):  # the first run warms the functions up (cold start) and is not counted
            started = time.perf_counter()
            run = http.post(f"{api}/experiments/{experiment['id']}/run", timeout=30)
            run.raise_for_status()
            stopped_at = wait_for(lambda: states().count("stopped") == 2)
            asked = time.perf_counter()
            http.post(f"{api}/experiments/{experiment['id']}/stop", timeout=30).raise_for_status()
            restored_at = wait_for(lambda: set(states()) == {"running"})
            result_id = run.json()["result_id"]
            wait_for(
                lambda rid=result_id: (
                    http.get(f"{api}/results/{rid}", timeout=30).json()["status"] == "stopped"
                )
            )
            if n:
                inject.append(stopped_at - started)
                restore.append(restored_at - asked)

    print(f"runs: {args.runs} (after one warm-up run) on `chaosplane local`; 2 of 4 instances hit")
    print(row("POST run -> selected stopped", inject))
    print(row("POST stop -> all restored", restore))
    print(f"restore/inject median ratio: {statistics.median(restore) / statistics.median(inject):.2f}")


if __name__ == "__main__":
    main()
