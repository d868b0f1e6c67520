"""Cold import: what each Lambda's module-level code costs before its first event.

Each figure comes from a fresh interpreter, as a cold start gets: the time to import the module (for a
function, to run its app.py the way Lambda does, which builds its collaborators: no AWS call is made,
the environment is the stack's shape with dummy values). Then, in the same process, the time that
importing the Kubernetes client (kubernetes.client, .config, .stream) adds on top: what a run that
talks to a cluster pays on first use, and what every cold start paid while the client was imported
with the package. "kubernetes at import" says whether the module pulled it in by itself.

Figures only: timing depends on the machine and its load (the fastest run is the least disturbed), so
nothing here is asserted; tests/unit/test_cold_import.py keeps kubernetes out of cold starts.

    .venv/bin/python bench/cold_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["chaosplane.faults.catalogue", "chaosplane.wiring"]
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
KUBERNETES = "kubernetes.client, kubernetes.config, kubernetes.stream"
# Every setting the functions read at cold start (template.yaml's Globals and the authorizer's own).
ENVIRONMENT = {
    "TARGETS_TABLE": "Targets",
    "EXPERIMENTS_TABLE": "Experiments",
    "RESULTS_TABLE": "Results",
    "JOURNAL_TABLE": "Journal",
    "AUDIT_TABLE": "Audit",
    "TEAMS_TABLE": "Teams",
    "PLANS_TABLE": "Plans",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:chaosplane-experiment",
    "WEBHOOK_SECRET_PREFIX": "chaosplane/bench/webhooks/",
    "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:chaosplane-notifications",
    "NOTIFICATIONS_SECRET_PREFIX": "chaosplane/notifications",
    "AUTH_MODE": "HS256",
    "JWT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "1",  # X-Ray's SDK is the same cost before and after: leave it out
}
CHILD = f"""
import importlib.util, json, sys, time
what = sys.argv[1]
start = time.perf_counter()
if what.endswith(".py"):
    spec = importlib.util.spec_from_file_location("app", what)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
else:
    importlib.import_module(what)
imported = time.perf_counter()
already = "kubernetes" in sys.modules
import {KUBERNETES}
print(json.dumps({{"import": imported - start, "kubernetes": already,
                  "kubernetes_on_top": time.perf_counter() - imported}}))
"""
KUBERNETES_ALONE = f"""
import json, time
start = time.perf_counter()
import {KUBERNETES}
print(json.dumps({{"import": time.perf_counter() - start}}))
"""


def child_environment() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHAOSPLANE_"))}
    return {**environment, **ENVIRONMENT}


def measure(code: str, *args: str) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=child_environment(),
        cwd=ROOT,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"importing {args or 'kubernetes'} failed:\n{completed.stderr}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per module (median)")
    args = parser.parse_args()

    alone = statistics.median(measure(KUBERNETES_ALONE)["import"] for _ in range(args.runs))
    print(f"{args.runs} fresh processes each: median (and fastest) import; {sys.executable}")
    print(f"{'module':<30} {'import':>16}  {'kubernetes at import':<21} {'kubernetes on top':>17}")
    for what in [*MODULES, *(str(path.relative_to(ROOT)) for path in HANDLERS)]:
        runs = [measure(CHILD, what) for _ in range(args.runs)]
        imported = statistics.median(r["import"] for r in runs)
        fastest = min(r["import"] for r in runs)
        on_top = statistics.median(r["kubernetes_on_top"] for r in runs)
        loaded = sum(bool(r["kubernetes"]) for r in runs)
        share = on_top / (imported + on_top)
        print(
            f"{what:<30} {imported * 1000:6.0f} ms ({fastest * 1000:4.0f})  {'yes' if loaded else 'no':<21} "
            f"{on_top * 1000:7.0f} ms ({share:4.0%})"
        )
    print(f"{KUBERNETES} alone, in a fresh process: {alone * 1000:.0f} ms")


if __name__ == "__main__":
    main()
