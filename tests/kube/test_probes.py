"""The Kubernetes probe's reader on a real kube-apiserver and kube-controller-manager: a
Deployment's ready replicas as the controllers count them, and pods in CrashLoopBackOff.

No kubelet runs: the test reports the pods' readiness and container states as one would."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s

from chaosplane.probes import KubernetesProbe, observe_kubernetes
from tests.conftest import Platform, wait_until
from tests.kube.cluster import KubeCluster
from tests.kube.test_eks_faults import deployment, eks_platform, grant_executor, pods

__all__ = ["eks_platform"]  # a fixture of this module's tests


def _report(core: k8s.CoreV1Api, namespace: str, pod: str, ready: bool, waiting: str | None = None) -> None:
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    )
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [
            {
                "name": "app",
                "image": "nginx",
                "imageID": "",
                "ready": ready,
                "restartCount": 3 if waiting else 0,
                "state": state,
            }
        ],
    }
    core.patch_namespaced_pod_status(pod, namespace, {"status": status})


def test_ready_replicas_and_crash_loops_are_read_as_the_cluster_has_them(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    admin = kube_cluster.api_client("admin")
    core, apps = k8s.CoreV1Api(admin), k8s.AppsV1Api(admin)
    deployment(admin, kube_namespace, "cart", replicas=2)
    names = wait_until(
        lambda: (
            sorted(pods(core, kube_namespace, "app=cart"))
            if len(pods(core, kube_namespace, "app=cart")) == 2
            else None
        )
    )
    ready = KubernetesProbe.model_validate(
        {
            "name": "cart",
            "source": "kubernetes",
            "cluster": "admin",
            "namespace": kube_namespace,
            "check": "ready-replicas",
            "kind": "Deployment",
            "workload": "cart",
            "min_ready": 2,
        }
    )
    looping = KubernetesProbe.model_validate(
        {
            "name": "loops",
            "source": "kubernetes",
            "cluster": "admin",
            "namespace": kube_namespace,
            "check": "no-crashloop",
            "selector": "app=cart",
        }
    )
    assert observe_kubernetes(ready, apps, core).detail == "0 ready of 2 wanted"

    for name in names:
        _report(core, kube_namespace, name, ready=True)
    wait_until(lambda: observe_kubernetes(ready, apps, core).ok)
    assert observe_kubernetes(looping, apps, core).ok

    _report(core, kube_namespace, names[0], ready=False, waiting="CrashLoopBackOff")
    observed = wait_until(lambda: (o := observe_kubernetes(ready, apps, core)) and not o.ok and o)
    assert observed.detail == "1 ready of 2 wanted"
    crash = observe_kubernetes(looping, apps, core)
    assert not crash.ok and crash.detail == f"in CrashLoopBackOff: {names[0]}"


def test_a_kubernetes_probe_halts_a_run_when_ready_replicas_drop(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    # Given a Deployment with its two replicas ready, watched by a probe as the executor (its RBAC)...
    admin = kube_cluster.api_client("admin")
    core = k8s.CoreV1Api(admin)
    grant_executor(kube_cluster, kube_namespace)
    deployment(admin, kube_namespace, "cart", replicas=2)
    names = wait_until(
        lambda: (found := sorted(pods(core, kube_namespace, "app=cart"))) and len(found) == 2 and found
    )
    for name in names:
        _report(core, kube_namespace, name, ready=True)
    eks_platform.loosen_policy()
    ids = eks_platform.instances(2, {"probe": "kube"})
    target = eks_platform.json(
        "POST", "/targets", {"name": "web", "type": "ec2-instances", "selector": "probe=kube"}, expect=201
    )
    probe = {"name": "carts", "source": "kubernetes", "cluster": "executor", "namespace": kube_namespace,
             "check": "ready-replicas", "kind": "Deployment", "workload": "cart", "min_ready": 2,
             "interval": 1, "mode": "edge"}  # fmt: skip
    during = {**probe, "name": "carts-held", "mode": "during"}
    body = {"name": "kube probed", "type": "ec2-stop", "target": target["id"], "duration": 600,
            "probes": [probe, during]}  # fmt: skip
    experiment = eks_platform.json("POST", "/experiments", body, expect=201)
    started = eks_platform.json("POST", f"/experiments/{experiment['id']}/run", expect=202)
    wait_until(
        lambda: any(
            a["status"] == "in_force"
            for a in eks_platform.json("GET", f"/results/{started['result_id']}")["actions"].values()
        )
    )
    # ...when a replica stops being ready mid-run, the probe halts the run, which rolls back.
    _report(core, kube_namespace, names[0], ready=False)
    wait_until(lambda: eks_platform.json("GET", f"/results/{started['result_id']}")["stop_requested"])
    # ...and once the replica is back, the edge probe's `after` sees the recovery.
    _report(core, kube_namespace, names[0], ready=True)
    result = eks_platform.wait_for_result(started["result_id"], timeout=60)

    assert result["status"] == "stopped" and result["stop_kind"] == "probe"
    assert result["error"] == "probe carts-held failed: 1 ready of 2 wanted"
    assert eks_platform.states(ids) == {i: "running" for i in ids}
    assert result["probe_records"]["carts"]["evaluations"][0]["detail"] == "2 ready of 2 wanted"
    after = [e for e in result["probe_records"]["carts"]["evaluations"] if e["phase"] == "after"]
    assert after[-1]["ok"] and result["verdict"] == "failed"  # recovered, but it did not hold
