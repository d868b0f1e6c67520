"""EKS pod faults end to end: the real API, handlers and state machine on the embedded AWS, against
a real kube-apiserver and kube-controller-manager (`make kube`), reached through a kubeconfig with
static bearer tokens. The executor is the `executor` user, granted `infra/kubernetes/rbac.yaml`.

No kubelet runs, so the tests play its part where a run needs one: they mark pods Running, and
(for in-pod faults) report the ephemeral container running and, after the stop command, ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from chaosplane.errors import NotEligible
from chaosplane.faults import catalogue, eks, payloads
from chaosplane.faults.base import RunContext
from chaosplane.faults.parameters import PodDeleteParameters
from chaosplane.local import lambda_patch
from chaosplane.models import FaultType, Target
from chaosplane.settings import load_settings
from tests.conftest import TEAM, Platform, wait_until
from tests.integration.test_tenancy import STAGING
from tests.kube.cluster import KubeCluster

RBAC = Path(__file__).parents[2] / "infra" / "kubernetes" / "rbac.yaml"
IMAGE = "registry.example/chaosplane-payload:test"


@pytest.fixture
def eks_platform(
    platform: Platform, kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Platform]:
    """The platform, with its handlers reaching the test cluster's contexts by name."""
    monkeypatch.setenv("CHAOSPLANE_KUBECONFIG", str(kube_cluster.kubeconfig_path))
    monkeypatch.setenv("PAYLOAD_IMAGE", IMAGE)
    load_settings.cache_clear()
    lambda_patch.reset_loaded_handlers()  # a cold start with the new settings
    yield platform
    load_settings.cache_clear()
    lambda_patch.reset_loaded_handlers()


@pytest.fixture
def admin(kube_cluster: KubeCluster) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(kube_cluster.api_client("admin"))


def grant_executor(kube_cluster: KubeCluster, namespace: str) -> None:
    """Apply infra/kubernetes/rbac.yaml as a cluster admin would, bound in `namespace`."""
    rbac = k8s.RbacAuthorizationV1Api(kube_cluster.api_client("admin"))
    for document in yaml.safe_load_all(RBAC.read_text()):
        if document["kind"] == "RoleBinding":
            document["metadata"]["namespace"] = namespace
            rbac.create_namespaced_role_binding(namespace, document)
            continue
        create = (
            rbac.create_cluster_role
            if document["kind"] == "ClusterRole"
            else rbac.create_cluster_role_binding
        )
        try:
            create(document)
        except ApiException as err:
            if err.status != 409:  # an earlier test created it
                raise


def pod(name: str, labels: dict[str, str]) -> k8s.V1Pod:
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="nginx")]),
    )


def run_pods(admin: k8s.CoreV1Api, namespace: str, names: list[str]) -> None:
    """What a kubelet would report: the pods are Running."""
    for name in names:
        admin.patch_namespaced_pod_status(name, namespace, {"status": {"phase": "Running"}})


def pods(admin: k8s.CoreV1Api, namespace: str, selector: str = "") -> dict[str, k8s.V1Pod]:
    return {p.metadata.name: p for p in admin.list_namespaced_pod(namespace, label_selector=selector).items}


def deployment(admin_client: k8s.ApiClient, namespace: str, name: str, replicas: int) -> None:
    labels = {"app": name}
    k8s.AppsV1Api(admin_client).create_namespaced_deployment(
        namespace,
        k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name=name),
            spec=k8s.V1DeploymentSpec(
                replicas=replicas,
                selector=k8s.V1LabelSelector(match_labels=labels),
                template=k8s.V1PodTemplateSpec(
                    metadata=k8s.V1ObjectMeta(labels=labels),
                    spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="app", image="nginx")]),
                ),
            ),
        ),
    )


def experiment(
    platform: Platform,
    namespace: str,
    selector: str,
    fault: str,
    *,
    cluster: str = "executor",
    selection: str = "ALL",
    parameters: dict[str, Any] | None = None,
    duration: int = 1,
    **where: str,
) -> dict[str, Any]:
    target = platform.json(
        "POST",
        "/targets",
        {
            "name": "pods",
            "type": "eks-pods",
            "cluster": cluster,
            "namespace": namespace,
            "selector": selector,
            **where,
        },
        expect=201,
    )
    body = {
        "name": f"{fault} {selector}",
        "type": fault,
        "allow_irreversible": fault
        == "pod-delete",  # pods are deleted for good; their controller may replace them
        "target": target["id"],
        "selection": selection,
        "duration": duration,
        "parameters": parameters or {},
    }
    return platform.json("POST", "/experiments", body, expect=201)  # type: ignore[no-any-return]


def run(platform: Platform, experiment_id: str, timeout: float = 60) -> dict[str, Any]:
    started = platform.json("POST", f"/experiments/{experiment_id}/run", expect=202)
    return platform.wait_for_result(started["result_id"], timeout=timeout)


def start_and_observe(platform: Platform, experiment_id: str) -> dict[str, Any]:
    """Start a run and wait until it is holding its fault (its Observe step has begun)."""
    started: dict[str, Any] = platform.json("POST", f"/experiments/{experiment_id}/run", expect=202)
    wait_until(
        lambda: any(
            e["step"] == "observe"
            for e in platform.json("GET", f"/results/{started['result_id']}")["timeline"]
        )
    )
    return started


# -- selection -----------------------------------------------------------------------------------


def test_a_preview_selects_running_pods_by_equality_and_set_based_selectors(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    grant_executor(kube_cluster, kube_namespace)
    layout = {
        "web-1": {"app": "web", "tier": "front"},
        "web-2": {"app": "web", "tier": "front"},
        "api-1": {"app": "api", "tier": "back"},
        "db-1": {"app": "api", "tier": "db"},
        "cron-1": {"app": "cron"},
        "web-pending": {"app": "web", "tier": "front"},
        "web-guarded": {"app": "web", "tier": "front", "chaosplane/protected": "true"},
    }
    for name, labels in layout.items():
        admin.create_namespaced_pod(kube_namespace, pod(name, labels))
    run_pods(admin, kube_namespace, [n for n in layout if n != "web-pending"])

    def preview(selector: str) -> dict[str, Any]:
        found = experiment(eks_platform, kube_namespace, selector, "pod-delete")
        return eks_platform.json("POST", f"/experiments/{found['id']}/preview")  # type: ignore[no-any-return]

    equality = preview("app=web")
    assert {r["id"] for r in equality["selected"]} == {"web-1", "web-2"}
    excluded = {r["id"]: r["reason"] for r in equality["excluded"]}
    assert excluded == {"web-pending": "not in a state the fault acts on", "web-guarded": "protected"}
    assert equality["irreversible"] is True and equality["verdict"]["allowed"] is True

    set_based = preview("app in (web,api),tier!=db,!chaosplane/protected")
    assert {r["id"] for r in set_based["selected"]} == {"web-1", "web-2", "api-1"}
    assert {r["id"] for r in set_based["excluded"]} == {"web-pending"}
    assert all(r["kind"] == eks.KIND for r in set_based["selected"])

    assert {r["id"] for r in preview("app notin (web,api)")["selected"]} == {"cron-1"}


def test_pods_in_a_protected_namespace_are_never_selected(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    grant_executor(kube_cluster, kube_namespace)
    admin.create_namespaced_pod(kube_namespace, pod("web-1", {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1"])
    eks_platform.loosen_policy(protected_namespaces=[kube_namespace])
    found = experiment(eks_platform, kube_namespace, "app=web", "pod-delete")

    preview = eks_platform.json("POST", f"/experiments/{found['id']}/preview")
    result = run(eks_platform, found["id"])

    assert preview["selected"] == [] and preview["excluded"][0]["reason"] == "protected"
    assert result["status"] == "failed" and "matched no resource" in result["error"]
    assert "web-1" in pods(admin, kube_namespace)


# -- pod-delete ----------------------------------------------------------------------------------


def test_pod_delete_deletes_exactly_the_selected_pods_and_records_their_replacements(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    grant_executor(kube_cluster, kube_namespace)
    deployment(kube_cluster.api_client("admin"), kube_namespace, "web", replicas=4)
    wait_until(lambda: len(pods(admin, kube_namespace, "app=web")) == 4, timeout=30)
    before = pods(admin, kube_namespace, "app=web")
    run_pods(admin, kube_namespace, list(before))
    found = experiment(
        eks_platform,
        kube_namespace,
        "app=web",
        "pod-delete",
        selection="COUNT(2)",
        parameters={"grace_period_seconds": 0},
    )

    result = run(eks_platform, found["id"])

    assert result["status"] == "completed", result
    hit = {r["id"] for r in result["resources"]}
    assert len(hit) == 2 and hit <= set(before)
    now = pods(admin, kube_namespace, "app=web")
    assert hit.isdisjoint(now)  # exactly those two are gone ...
    assert set(before) - hit <= set(now)  # ... the other two untouched
    wait_until(lambda: len(pods(admin, kube_namespace, "app=web")) == 4, timeout=30)  # the ReplicaSet's work
    for resource in result["resources"]:
        assert resource["after"] == "Deleted"
        assert resource["restored"].startswith("replaced by web-"), resource
        assert resource["restored"].split()[2] not in before
    assert result["metrics"]["resources_injected"] == 2


def test_pods_of_a_cluster_in_the_team_s_other_account_are_faulted_through_that_account(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    admins = eks_platform.token(team="platform")
    eks_platform.json("PUT", f"/teams/{TEAM}", {"environments": [STAGING]}, token=admins)
    grant_executor(kube_cluster, kube_namespace)
    for name in ("web-1", "web-2"):
        admin.create_namespaced_pod(kube_namespace, pod(name, {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1", "web-2"])
    found = experiment(
        eks_platform,
        kube_namespace,
        "app=web",
        "pod-delete",
        parameters={"grace_period_seconds": 0},
        environment="staging",
    )

    result = run(eks_platform, found["id"])

    # The cluster is reached as the environment's role (unit: test_tenancy); locally, through its
    # kubeconfig context, as every cluster is.
    assert result["status"] == "completed", result
    assert sorted(r["id"] for r in result["resources"]) == ["web-1", "web-2"]
    assert pods(admin, kube_namespace, "app=web") == {}


def test_a_pod_replaced_under_its_name_after_planning_is_not_deleted(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    """The UID is checked at Inject: a StatefulSet-style replacement is a different pod."""
    grant_executor(kube_cluster, kube_namespace)
    admin.create_namespaced_pod(kube_namespace, pod("db-0", {"app": "db"}))
    run_pods(admin, kube_namespace, ["db-0"])
    planned = pods(admin, kube_namespace)["db-0"]
    family = eks.EksPods(_ClustersFor(kube_cluster), IMAGE)
    resource = next(r for r in family.resolve(_target(kube_namespace, "app=db"), _fault("pod-delete")))
    admin.delete_namespaced_pod("db-0", kube_namespace, grace_period_seconds=0)
    wait_until(lambda: "db-0" not in pods(admin, kube_namespace), timeout=10)
    admin.create_namespaced_pod(kube_namespace, pod("db-0", {"app": "db"}))
    run_pods(admin, kube_namespace, ["db-0"])

    with pytest.raises(NotEligible, match="replaced"):
        catalogue.spec(_fault("pod-delete")).inject(family, resource, PodDeleteParameters(), _NoJournal())

    assert pods(admin, kube_namespace)["db-0"].metadata.uid != planned.metadata.uid


# -- RBAC ----------------------------------------------------------------------------------------


def test_a_missing_permission_is_named_at_preflight_and_nothing_is_touched(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    # A Role that lets the executor see pods but not delete them.
    rbac = k8s.RbacAuthorizationV1Api(kube_cluster.api_client("admin"))
    rbac.create_namespaced_role(
        kube_namespace,
        {
            "metadata": {"name": "look"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        kube_namespace,
        {
            "metadata": {"name": "look"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "look"},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "chaosplane-executor"}
            ],
        },
    )
    admin.create_namespaced_pod(kube_namespace, pod("web-1", {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1"])
    found = experiment(eks_platform, kube_namespace, "app=web", "pod-delete")

    preview = eks_platform.json("POST", f"/experiments/{found['id']}/preview")
    result = run(eks_platform, found["id"])

    expected = f"the executor may not delete pods in namespace {kube_namespace} of cluster executor"
    assert any(expected in reason for reason in preview["verdict"]["reasons"]), preview["verdict"]
    assert preview["verdict"]["allowed"] is False
    assert result["status"] == "failed" and expected in result["error"], result
    assert result["resources"] == []
    assert "web-1" in pods(admin, kube_namespace)


def test_a_user_with_no_access_at_all_gets_a_clear_error(
    eks_platform: Platform, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    admin.create_namespaced_pod(kube_namespace, pod("web-1", {"app": "web"}))
    found = experiment(eks_platform, kube_namespace, "app=web", "pod-delete", cluster="nobody")

    result = run(eks_platform, found["id"])

    assert result["status"] == "failed"
    assert "forbidden by RBAC" in result["error"] or "may not" in result["error"], result
    assert "web-1" in pods(admin, kube_namespace)


# -- in-pod faults -------------------------------------------------------------------------------


def test_on_a_server_without_ephemeral_containers_the_run_fails_and_leaves_nothing(
    eks_platform: Platform, kube_cluster: KubeCluster, kube_namespace: str, admin: k8s.CoreV1Api
) -> None:
    """1.20 answers the modern PATCH with 200 and changes nothing: a fault that did not start fails."""
    grant_executor(kube_cluster, kube_namespace)
    admin.create_namespaced_pod(kube_namespace, pod("web-1", {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1"])
    found = experiment(
        eks_platform, kube_namespace, "app=web", "pod-network-latency", parameters={"delay_ms": 100}
    )

    result = run(eks_platform, found["id"])

    assert result["status"] == "failed", result
    assert "ephemeral containers need Kubernetes 1.25" in result["error"]
    assert result["resources"][0]["restored"] == "not injected"
    assert not pods(admin, kube_namespace)["web-1"].spec.ephemeral_containers


class _Kubelet:
    """Plays the kubelet for ephemeral containers on a 1.20 server (which has only the alpha API).

    A payload runs until the stop command's exec ends it (or ends at once with `exit_code`); a check
    container ends at once with the next of `checks` (exit code, termination message), by default
    a check that found nothing left."""

    def __init__(self, admin_client: k8s.ApiClient, exit_code: int | None = None) -> None:
        self.admin = k8s.CoreV1Api(admin_client)
        self.exit_code = exit_code  # set: the payload exits at once with it (a refusal)
        self.checks: list[tuple[int, str]] = []
        self.added: list[dict[str, Any]] = []
        self.execs: list[tuple[str, str, list[str]]] = []

    def add(self, api: eks.PodApi, pod: k8s.V1Pod, container: dict[str, Any]) -> None:
        namespace, name = pod.metadata.namespace, pod.metadata.name
        # The alpha subresource takes the whole list: those already there, and the new one.
        there = self.admin.read_namespaced_pod(name, namespace).spec.ephemeral_containers or []
        listed = [self.admin.api_client.sanitize_for_serialization(c) for c in there]
        # 1.20's alpha API forbade securityContext here; current releases take it (the
        # full container is validated against the 1.37 schema in tests/unit/test_eks.py).
        listed.append({k: v for k, v in container.items() if k != "securityContext"})
        # The executor's own identity makes the call, through the alpha subresource.
        api.api_client.call_api(
            f"/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers",
            "PUT",
            body={
                "apiVersion": "v1",
                "kind": "EphemeralContainers",
                "metadata": {"name": name},
                "ephemeralContainers": listed,
            },
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            auth_settings=["BearerToken"],
            response_types_map={200: "object", 201: "object"},
        )
        self.added.append(container)
        state: dict[str, Any] = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
        if eks.CHECK_SUFFIX in container["name"]:
            code, message = self.checks.pop(0) if self.checks else (0, "verified: nothing left")
            state = {"terminated": {"exitCode": code, "reason": "Completed", "message": message}}
        elif self.exit_code is not None:
            state = {"terminated": {"exitCode": self.exit_code, "reason": "Error", "message": "refused"}}
        self._report(namespace, name, container["name"], state)

    def exec(self, api: eks.PodApi, namespace: str, pod: str, container: str, command: list[str]) -> str:
        self.execs.append((pod, container, command))
        self._report(namespace, pod, container, {"terminated": {"exitCode": 0, "reason": "Completed"}})
        return ""

    def _report(self, namespace: str, pod: str, container: str, state: dict[str, Any]) -> None:
        status = {
            "name": container,
            "image": IMAGE,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "state": state,
        }
        # The statuses are one list, replaced whole by a patch: keep the other containers'.
        current = (
            self.admin.read_namespaced_pod_status(pod, namespace).status.ephemeral_container_statuses or []
        )
        others = [self.admin.api_client.sanitize_for_serialization(s) for s in current if s.name != container]
        self.admin.patch_namespaced_pod_status(
            pod, namespace, {"status": {"ephemeralContainerStatuses": [*others, status]}}
        )


@pytest.fixture
def kubelet(kube_cluster: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> _Kubelet:
    fake = _Kubelet(kube_cluster.api_client("admin"))
    monkeypatch.setattr(eks.PodApi, "add_ephemeral_container", lambda api, pod, c: fake.add(api, pod, c))
    monkeypatch.setattr(eks.PodApi, "exec", lambda api, ns, pod, c, cmd: fake.exec(api, ns, pod, c, cmd))
    return fake


def test_an_in_pod_fault_is_started_in_each_selected_pod_and_ended_by_the_stop(
    eks_platform: Platform,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    admin: k8s.CoreV1Api,
    kubelet: _Kubelet,
) -> None:
    grant_executor(kube_cluster, kube_namespace)
    for name in ("web-1", "web-2", "web-3"):
        admin.create_namespaced_pod(kube_namespace, pod(name, {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1", "web-2", "web-3"])
    found = experiment(
        eks_platform,
        kube_namespace,
        "app=web",
        "pod-network-latency",
        selection="COUNT(2)",
        parameters={"delay_ms": 150, "jitter_ms": 10},
        duration=600,
    )
    started = start_and_observe(eks_platform, found["id"])
    live = pods(admin, kube_namespace)
    hit = {n for n, p in live.items() if p.spec.ephemeral_containers}

    eks_platform.json("POST", f"/experiments/{found['id']}/stop", expect=202)
    result = eks_platform.wait_for_result(started["result_id"])

    assert len(hit) == 2 and {r["id"] for r in result["resources"]} == hit
    name = eks.container_name(started["result_id"])
    for pod_name in hit:
        (container,) = live[pod_name].spec.ephemeral_containers
        assert container.name == name and container.image == IMAGE
        assert "150" in container.command and str(600 + eks.PAYLOAD_MARGIN_SECONDS) in container.command
    assert all(sent["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"] for sent in kubelet.added)
    assert result["status"] == "stopped", result
    assert sorted(pod for pod, _, _ in kubelet.execs) == sorted(hit)
    assert all(command == payloads.stop_command() for _, _, command in kubelet.execs)
    # Restored only once a check container, one per pod, found nothing left.
    checks = [sent for sent in kubelet.added if eks.CHECK_SUFFIX in sent["name"]]
    assert sorted(c["name"] for c in checks) == [name + eks.CHECK_SUFFIX + "1"] * 2
    assert all(c["command"] == payloads.check_command("netem") for c in checks)
    assert {r["restored"] for r in result["resources"]} == {"payload ended (exit 0); verified: nothing left"}


def test_a_payload_that_refuses_to_start_fails_the_run(
    eks_platform: Platform,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    admin: k8s.CoreV1Api,
    kubelet: _Kubelet,
) -> None:
    """E.g. netem finds a root qdisc it did not create: it exits non-zero, and the run must fail."""
    kubelet.exit_code = 3
    grant_executor(kube_cluster, kube_namespace)
    admin.create_namespaced_pod(kube_namespace, pod("web-1", {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1"])
    found = experiment(
        eks_platform, kube_namespace, "app=web", "pod-network-loss", parameters={"loss_percent": 30}
    )

    result = run(eks_platform, found["id"])

    assert result["status"] == "failed" and "exited with code 3" in result["error"], result
    # Its exit code is not trusted: the check container proved nothing was left.
    assert result["resources"][0]["restored"] == "payload ended (exit 3); verified: nothing left"
    assert [c["name"] for c in kubelet.added][1:] == [kubelet.added[0]["name"] + eks.CHECK_SUFFIX + "1"]
    assert kubelet.execs == []


def test_a_payload_killed_mid_run_is_restored_only_once_a_check_has_removed_what_it_left(
    eks_platform: Platform,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    admin: k8s.CoreV1Api,
    kubelet: _Kubelet,
) -> None:
    """SIGKILL (exit 137) leaves the qdisc: the first check fails, and rollback tries again until one
    reports it removed. (tests/payload/test_checks.py runs the check itself on a kernel with netem.)"""
    grant_executor(kube_cluster, kube_namespace)
    admin.create_namespaced_pod(kube_namespace, pod("web-1", {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1"])
    found = experiment(
        eks_platform,
        kube_namespace,
        "app=web",
        "pod-network-latency",
        parameters={"delay_ms": 100},
        duration=600,
    )
    started = start_and_observe(eks_platform, found["id"])
    name = kubelet.added[0]["name"]
    kubelet._report(kube_namespace, "web-1", name, {"terminated": {"exitCode": 137, "reason": "Error"}})
    kubelet.checks = [
        (1, "netem c4a0: still on eth0 after removal"),
        (0, "verified: netem c4a0: was left on eth0, removed"),
    ]

    eks_platform.json("POST", f"/experiments/{found['id']}/stop", expect=202)
    result = eks_platform.wait_for_result(started["result_id"], timeout=60)

    assert result["status"] == "stopped", result
    assert [c["name"] for c in kubelet.added] == [
        name,
        name + eks.CHECK_SUFFIX + "1",
        name + eks.CHECK_SUFFIX + "2",
    ]
    assert kubelet.execs == []  # nothing to stop: it had ended
    assert result["resources"][0]["restored"] == (
        "payload ended (exit 137); verified: netem c4a0: was left on eth0, removed"
    )


def test_rollback_counts_a_deleted_pod_as_rolled_back(
    eks_platform: Platform,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    admin: k8s.CoreV1Api,
    kubelet: _Kubelet,
) -> None:
    grant_executor(kube_cluster, kube_namespace)
    admin.create_namespaced_pod(kube_namespace, pod("web-1", {"app": "web"}))
    run_pods(admin, kube_namespace, ["web-1"])
    found = experiment(
        eks_platform, kube_namespace, "app=web", "pod-cpu-stress", parameters={"workers": 1}, duration=600
    )
    started = start_and_observe(eks_platform, found["id"])
    assert kubelet.added
    admin.delete_namespaced_pod("web-1", kube_namespace, grace_period_seconds=0)
    wait_until(lambda: "web-1" not in pods(admin, kube_namespace), timeout=10)

    eks_platform.json("POST", f"/experiments/{found['id']}/stop", expect=202)
    result = eks_platform.wait_for_result(started["result_id"])

    assert result["status"] == "stopped"
    assert result["resources"][0]["restored"] == "pod gone"
    assert kubelet.execs == []


# -- helpers for calling the family directly ------------------------------------------------------


class _ClustersFor:
    def __init__(self, cluster: KubeCluster) -> None:
        self._cluster = cluster

    def client(self, name: str) -> k8s.ApiClient:
        return self._cluster.api_client(name)


class _NoJournal:
    run = RunContext("00000000-0000-0000-0000-000000000000", "e", 1, datetime(2026, 1, 1, tzinfo=UTC))

    def before_change(self, *args: Any) -> Any:
        raise AssertionError("nothing may be journaled for a pod that is not the planned one")

    def applied(self, entry: Any) -> None:
        raise AssertionError("nothing may be applied")


def _target(namespace: str, selector: str) -> Target:
    return Target.model_validate(
        {
            "id": "t",
            "team": "test",
            "name": "t",
            "type": "eks-pods",
            "cluster": "executor",
            "namespace": namespace,
            "selector": selector,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
    )


def _fault(name: str) -> FaultType:
    return FaultType(name)


def test_an_fis_pod_template_runs_latency_then_loss_in_containers_of_their_own(
    eks_platform: Platform,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    admin: k8s.CoreV1Api,
    kubelet: _Kubelet,
) -> None:
    """A multi-step run of two in-pod actions on the same pods, one after the other, imported from
    an FIS template: each has its own ephemeral container, each is stopped when its duration ends."""
    grant_executor(kube_cluster, kube_namespace)
    for name in ("cart-1", "cart-2"):
        admin.create_namespaced_pod(kube_namespace, pod(name, {"app": "cart"}))
    run_pods(admin, kube_namespace, ["cart-1", "cart-2"])
    template = {
        "description": "Delay the cart pods, then drop a fifth of their packets",
        "targets": {
            "Cart": {
                "resourceType": "aws:eks:pod",
                "parameters": {
                    "clusterIdentifier": "executor",
                    "namespace": kube_namespace,
                    "selectorType": "labelSelector",
                    "selectorValue": "app=cart",
                },
                "selectionMode": "ALL",
            }
        },
        "actions": {
            "Latency": {
                "actionId": "aws:eks:pod-network-latency",
                "parameters": {
                    "duration": "PT1S",
                    "delayMilliseconds": "150",
                    "kubernetesServiceAccount": "fis",
                },
                "targets": {"Pods": "Cart"},
            },
            "Loss": {
                "actionId": "aws:eks:pod-network-packet-loss",
                "parameters": {"duration": "PT1S", "lossPercent": "20", "kubernetesServiceAccount": "fis"},
                "targets": {"Pods": "Cart"},
                "startAfter": ["Latency"],
            },
        },
        "stopConditions": [{"source": "none"}],
    }
    imported = eks_platform.json("POST", "/experiments/import", template, expect=201, duration=30)

    result = run(eks_platform, imported["experiment"]["id"])

    assert result["status"] == "completed", result
    latency, loss = (eks.container_name(result["id"], step) for step in ("Latency", "Loss"))
    payloads_added = [c for c in kubelet.added if eks.CHECK_SUFFIX not in c["name"]]
    assert sorted(c["name"] for c in payloads_added) == sorted([latency, loss] * 2)
    assert all("150" in c["command"] for c in payloads_added if c["name"] == latency)
    live = pods(admin, kube_namespace)
    for name in ("cart-1", "cart-2"):
        names = [c.name for c in live[name].spec.ephemeral_containers if eks.CHECK_SUFFIX not in c.name]
        assert names == [latency, loss]  # loss started after latency ended, in a container of its own
    # Each payload was stopped by its own action's rollback: two stops per pod.
    assert sorted((pod_name, container) for pod_name, container, _ in kubelet.execs) == sorted(
        (p, c) for p in ("cart-1", "cart-2") for c in (latency, loss)
    )
    assert {a["status"] for a in result["actions"].values()} == {"completed"}
    assert {r["step"] for r in result["resources"]} == {"Latency", "Loss"}
