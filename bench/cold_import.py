"""Cold import: what each Lambda's module-level code costs before its first event, against its budget.

Each figure comes from a fresh interpreter, as a cold start gets: the time to run the function's
app.py the way Lambda does, which builds its collaborators (no AWS call is made; the environment is
the stack's shape with dummy values, and LAMBDA_TASK_ROOT, so that X-Ray's SDK takes its Lambda
path as it does in the stack, where tracing is active). Besides the time, each line says which
heavy modules the function imported and how many AWS clients it made (none is wanted: each client
is made by the first event that needs it, see chaosplane/wiring/clients.py).

Budgets (issue 14): the guard, which halts runs and whose init delays a halt by all of it, and the
authorizer, in front of every request, under 400 ms; the API and the executor under 1 s. Lambda at
512 MB has less CPU than a developer's machine, so the figures here are a floor for Lambda's.

Figures only: timing depends on the machine and its load (the fastest run is the least disturbed),
so no test asserts them. tests/unit/test_cold_import.py asserts what is deterministic: which
modules each function imports (MUST_NOT_IMPORT below) and that it makes no client.

    .venv/bin/python bench/cold_import.py [--runs 7] [--only guard authorizer]
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
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
BUDGETS_MS = {"guard": 400, "authorizer": 400, "api": 1000, "executor": 1000}
# What a function's cold start must not import. Nobody before reaching a cluster: the Kubernetes
# client (about half a second) nor the EKS family. The guard only halts runs, the authorizer only
# verifies tokens, the notifier only sends: none of them needs a fault family. (The catalogue is
# SDK-free data, about 10 ms: the run lifecycle imports it; the families come with their first use.)
_NO_CLUSTER = ("kubernetes", "chaosplane.kube", "chaosplane.faults.eks")
_FAMILIES = (
    "chaosplane.faults.ec2",
    "chaosplane.faults.http",
    "chaosplane.faults.rds",
    "chaosplane.faults.ssm",
)
_NO_FAULTS = (*_NO_CLUSTER, *_FAMILIES)
MUST_NOT_IMPORT: dict[str, tuple[str, ...]] = {
    "api": (*_NO_CLUSTER, *(f for f in _FAMILIES if f != "chaosplane.faults.http")),  # webhook secrets
    "executor": (*_NO_CLUSTER, *_FAMILIES),
    "guard": (*_NO_FAULTS, "chaosplane.api", "chaosplane.notify", "boto3", "requests"),
    "notifier": (*_NO_FAULTS, "chaosplane.runs", "chaosplane.api", "boto3"),
    "authorizer": (*_NO_FAULTS, "chaosplane.store", "chaosplane.runs", "pynamodb", "boto3"),
}
# Shown in the bench's last column when imported.
HEAVY = ("kubernetes", "chaosplane.faults.ec2", "aws_xray_sdk", "boto3", "pynamodb", "requests")
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
    # As in Lambda: X-Ray's SDK then uses its Lambda sampler. Outside Lambda it builds two X-Ray
    # clients for a sampler Lambda never uses, a quarter of a second that no function pays there.
    "LAMBDA_TASK_ROOT": str(ROOT),
}
# Runs one function's app.py as Lambda loads a handler; prints the time, the modules it imported
# and the AWS clients it made (by service). Shared with tests/unit/test_cold_import.py.
CHILD = """
import gc, importlib.util, json, sys, time
what = sys.argv[1]
spec = importlib.util.spec_from_file_location("app_" + what.split("/")[-2], what)
module = importlib.util.module_from_spec(spec)
start = time.perf_counter()
spec.loader.exec_module(module)
seconds = time.perf_counter() - start
clients = []
if "botocore.client" in sys.modules:  # after the clock: this import must not count
    from botocore.client import BaseClient
    clients = sorted(o.meta.service_model.service_name for o in gc.get_objects() if isinstance(o, BaseClient))
print(json.dumps({"seconds": seconds, "modules": sorted(sys.modules), "clients": clients}))
"""


def function_name(handler: Path) -> str:
    return handler.parent.name


def child_environment() -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHAOSPLANE_", "POWERTOOLS_"))
    }
    return {**environment, **ENVIRONMENT}


def cold_start(handler: Path) -> dict[str, object]:
    """One cold start of the function, in a fresh interpreter: seconds, modules, clients."""
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(handler)],
        capture_output=True,
        text=True,
        env=child_environment(),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {handler} failed:\n{completed.stderr}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def imported(modules: list[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (packages or modules) are among `modules`."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per function (median)")
    parser.add_argument("--only", nargs="*", help="function names (default: all)")
    args = parser.parse_args()

    handlers = [h for h in HANDLERS if not args.only or function_name(h) in args.only]
    print(f"{args.runs} fresh processes each: median (and fastest) cold import; {sys.executable}")
    print(
        f"{'function':<11} {'median':>8} {'fastest':>8} {'budget':>7}  {'':<5} {'clients':>7}  "
        "heavy modules imported"
    )
    over = []
    for handler in handlers:
        name = function_name(handler)
        runs = [cold_start(handler) for _ in range(args.runs)]
        seconds = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
        median, fastest = statistics.median(seconds) * 1000, min(seconds) * 1000
        budget = BUDGETS_MS.get(name)
        verdict = "" if budget is None else ("ok" if median < budget else "OVER")
        if verdict == "OVER":
            over.append(name)
        clients = len(runs[0]["clients"])  # type: ignore[arg-type]
        heavy = ", ".join(imported(runs[0]["modules"], HEAVY)) or "-"  # type: ignore[arg-type]
        shown = f"{budget} ms" if budget else "-"
        print(f"{name:<11} {median:5.0f} ms {fastest:5.0f} ms {shown:>7}  {verdict:<5} {clients:>7}  {heavy}")
    if over:
        print(f"over budget (median): {', '.join(over)}; on a busy machine, compare the fastest runs too")


if __name__ == "__main__":
    main()
