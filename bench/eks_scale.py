"""How pod-delete scales: resolve, select and delete 50% of N pods on a real kube-apiserver.

Starts the test control plane (`make kube` builds it), creates N pods in a namespace (unscheduled, as
no kubelet runs; then reported Running, as a kubelet would), and times the executor's own code path:
`EksPods.resolve` (paged LIST with the label selector), the planner (`plan_run`, as Prepare runs it)
and `EksPods.inject` for each selected pod (a GET to re-check it, then a DELETE with a UID
precondition: what Inject does, ten pods at a time). The executor side runs in a process of its
own, so its peak memory is the executor's alone. The journal is an in-memory one: DynamoDB's part of a
run is measured by run_latency.py.

    .venv/bin/python bench/eks_scale.py --pods 1000 5000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SELECTOR = "app=load,tier in (web,api)"
PERCENT = 50


def executor_side(kubeconfig: str, namespace: str) -> dict[str, Any]:
    """What the executor does for one pod-delete run at PERCENT(50); timed step by step."""
    from chaosplane.faults.eks import EksPods
    from chaosplane.faults.parameters import PodDeleteParameters
    from chaosplane.kube import KubeconfigClusters
    from chaosplane.models import FaultType, Target
    from chaosplane.safety import SafetyPolicy, plan_run
    from chaosplane.selection import Selection

    family = EksPods(KubeconfigClusters(kubeconfig), None)
    target = Target.model_validate(
        {
            "id": "bench",
            "team": "bench",
            "name": "bench",
            "type": "eks-pods",
            "cluster": "executor",
            "namespace": namespace,
            "selector": SELECTOR,
            "created_at": datetime.now(UTC),
            "updated_at": datetime.now(UTC),
        }
    )
    began = time.perf_counter()
    found = family.resolve(target, FaultType.POD_DELETE)
    resolved = time.perf_counter()
    # The policy's caps would refuse a run this big (max 1,000 resources): the bench measures the
    # mechanics, so it plans under a policy without caps.
    policy = SafetyPolicy.model_construct(
        **{**SafetyPolicy().model_dump(), "max_resources": 10**9, "max_percent": 100}
    )
    plan = plan_run(
        found, family.eligible_states, Selection.parse(f"PERCENT({PERCENT})"), 60, policy, random.Random(7)
    )
    planned = time.perf_counter()
    from chaosplane.faults.base import RunContext
    from chaosplane.faults.memory import MemoryJournal
    from chaosplane.parallel import CHANGES_AT_ONCE, each_in_order

    journal = MemoryJournal(RunContext("bench", "bench", 60, datetime.now(UTC)))
    parameters = PodDeleteParameters(grace_period_seconds=0)
    each_in_order(  # as Inject does: CHANGES_AT_ONCE pods at a time
        plan.selected,
        lambda pod: family.delete(pod, parameters, journal),
        lambda _: None,
        width=CHANGES_AT_ONCE,
    )
    deleted = time.perf_counter()
    return {
        "matched": len(found),
        "selected": len(plan.selected),
        "resolve_s": resolved - began,
        "plan_s": planned - resolved,
        "delete_s": deleted - planned,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def create_pods(cluster: Any, namespace: str, count: int) -> None:
    from kubernetes import client as k8s

    def make(index: int) -> None:
        core = k8s.CoreV1Api(api)
        name = f"load-{index:05d}"
        tier = ("web", "api", "db")[index % 3]  # a third do not match the selector
        core.create_namespaced_pod(
            namespace,
            k8s.V1Pod(
                metadata=k8s.V1ObjectMeta(name=name, labels={"app": "load", "tier": tier}),
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="nginx")]),
            ),
        )
        core.patch_namespaced_pod_status(name, namespace, {"status": {"phase": "Running"}})

    api = cluster.api_client("admin")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(make, range(count)))


def wait_for_service_account(cluster: Any, namespace: str) -> None:
    """1.20's admission refuses pods until the namespace's default service account has its token."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    core = k8s.CoreV1Api(cluster.api_client("admin"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if core.read_namespaced_service_account("default", namespace).secrets:
                return
        except ApiException as err:
            if err.status != 404:
                raise
        time.sleep(0.1)
    raise TimeoutError(f"no default service account token in {namespace}")


def grant(cluster: Any, namespace: str) -> None:
    import yaml
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    rbac = k8s.RbacAuthorizationV1Api(cluster.api_client("admin"))
    role, binding = yaml.safe_load_all((ROOT / "infra" / "kubernetes" / "rbac.yaml").read_text())
    try:
        rbac.create_cluster_role(role)
    except ApiException as err:
        if err.status != 409:
            raise
    binding["metadata"]["namespace"] = namespace
    rbac.create_namespaced_role_binding(namespace, binding)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument(
        "--executor-side", nargs=2, metavar=("KUBECONFIG", "NAMESPACE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.executor_side:
        print(json.dumps(executor_side(*args.executor_side)))
        return

    from kubernetes import client as k8s
    from tests.kube.cluster import KubeCluster

    cluster = KubeCluster.start()
    try:
        print(f"control plane up in {cluster.start_seconds:.1f} s; selector {SELECTOR!r}, PERCENT({PERCENT})")
        for count in args.pods:
            namespace = f"bench-{count}"
            k8s.CoreV1Api(cluster.api_client("admin")).create_namespace(
                k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=namespace))
            )
            wait_for_service_account(cluster, namespace)
            grant(cluster, namespace)
            began = time.perf_counter()
            create_pods(cluster, namespace, count)
            print(f"{count} pods created and marked Running in {time.perf_counter() - began:.1f} s (setup)")
            out = subprocess.run(
                [sys.executable, __file__, "--executor-side", str(cluster.kubeconfig_path), namespace],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            total = r["resolve_s"] + r["plan_s"] + r["delete_s"]
            print(
                f"  N={count:>5}: matched {r['matched']}, deleted {r['selected']}  |  "
                f"resolve {r['resolve_s']:.2f} s ({r['matched'] / r['resolve_s']:,.0f} pods/s)  "
                f"plan {r['plan_s'] * 1000:.0f} ms  "
                f"delete {r['delete_s']:.2f} s ({r['selected'] / r['delete_s']:,.0f} pods/s)  |  "
                f"all {total:.2f} s  |  executor peak RSS {r['peak_rss_mb']:.0f} MB"
            )
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
