"""A 10-action experiment on the embedded AWS: how long from `POST run` to its last action injected,
and how many Step Functions state transitions (what Standard Workflows bill) a run takes.

The graph: five `ec2-stop` actions, each on a target of its own (two instances each), and five
waits of --wait seconds in a chain; stop-k starts after wait-(k-1), so the last stop is due
4 x --wait seconds after the start. The overhead is what the platform adds on top of that schedule.
Also runs a single-fault experiment for comparison. Usage: python bench/multi_step.py [--runs 3]

The platform runs as `chaosplane local` in its own process, as a user runs it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Any

from _local import Local, local_platform, wait_for

ACTIONS_PER_RUN = 10
TRANSITION_PRICE = 0.025 / 1000  # USD per state transition, Standard Workflows (us-east-1)


def graph(targets: list[dict[str, Any]], wait: int, hold: int) -> dict[str, Any]:
    actions: dict[str, Any] = {}
    for k, target in enumerate(targets):
        after = [f"wait-{k - 1}"] if k else []
        actions[f"stop-{k}"] = {
            "fault": "ec2-stop",
            "target": target["name"],
            "duration": hold,
            "start_after": after,
        }
        actions[f"wait-{k}"] = {"fault": "wait", "duration": wait, "start_after": after}
    return {
        "name": "ten actions",
        "targets": {t["name"]: {"target": t["id"]} for t in targets},
        "actions": actions,
        "duration": hold + wait * len(targets) + 60,
    }


def transitions(local: Local, execution_name: str) -> Counter[str]:
    sfn = local.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{execution_name}"
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return Counter(
        e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")
    )


def run_once(local: Local, experiment_id: str, last: str) -> tuple[float, str, dict[str, Any]]:
    """Seconds from POST run to `last` in force (None: the run's end), the run id, its result."""
    started = time.perf_counter()
    run = local.http.post(f"{local.api}/experiments/{experiment_id}/run", timeout=30)
    run.raise_for_status()
    result_id = run.json()["result_id"]

    def result() -> dict[str, Any]:
        return local.http.get(f"{local.api}/results/{result_id}", timeout=30).json()  # type: ignore[no-any-return]

    injected_at = wait_for(lambda: result()["actions"].get(last, {}).get("in_force_at"), timeout=300)
    wait_for(lambda: result()["status"] in ("completed", "stopped", "failed"), timeout=600)
    final = result()
    if final["status"] != "completed":
        raise SystemExit(f"run {result_id} ended {final['status']}: {final.get('error')}")
    return injected_at - started, result_id, final


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wait", type=int, default=2, help="seconds each wait holds")
    parser.add_argument("--hold", type=int, default=2, help="seconds each stop holds")
    args = parser.parse_args()

    with local_platform() as local:
        targets = [local.ec2_target(f"tier-{k}", 2) for k in range(5)]
        body = graph(targets, args.wait, args.hold)
        assert len(body["actions"]) == ACTIONS_PER_RUN
        experiment = local.http.post(f"{local.api}/experiments", json=body, timeout=30)
        experiment.raise_for_status()
        single = local.http.post(
            f"{local.api}/experiments",
            json={"name": "one", "type": "ec2-stop", "target": targets[0]["id"], "duration": args.hold},
            timeout=30,
        ).json()

        due = 4 * args.wait  # stop-4 starts after four chained waits
        latencies, counts = [], []
        for n in range(args.runs + 1):  # the first warms the functions up (cold starts): not counted
            seconds, result_id, _ = run_once(local, experiment.json()["id"], "stop-4")
            if n:
                latencies.append(seconds)
                counts.append(transitions(local, result_id))
        _, single_id, _ = run_once(local, single["id"], "ec2-stop")
        one = transitions(local, single_id)

    overheads = [s - due for s in latencies]
    per_run = [sum(c.values()) for c in counts]
    cost = max(per_run) * TRANSITION_PRICE
    median_overhead = statistics.median(overheads)
    print(f"10 actions (5 ec2-stop on 5 targets, 5 waits of {args.wait}s chained), {args.runs} runs")
    print(
        f"  POST run -> last action injected: median {statistics.median(latencies):.2f} s "
        f"(schedule {due} s, overhead median {median_overhead:.2f} s, max {max(overheads):.2f} s)"
    )
    print(f"  state transitions per run: {sorted(set(per_run))} (cost ${cost:.6f} a run)")
    print(f"    by state: {dict(sorted(counts[-1].items()))}")
    print(
        f"  single-fault run for comparison: {sum(one.values())} transitions, "
        f"by state {dict(sorted(one.items()))}"
    )
    print(f"  ratio 10-action / single-fault transitions: {max(per_run) / sum(one.values()):.1f}")


if __name__ == "__main__":
    main()
