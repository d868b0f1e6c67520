"""The real control plane does what the Kubernetes tests rely on: controllers, RBAC, selectors, kubeconfig."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.kube.cluster import (
    ADMIN,
    BINARIES,
    EXECUTOR,
    NOBODY,
    KubeBinariesMissing,
    KubeCluster,
    KubeStartError,
)

DEADLINE = 30.0


def eventually(check: Callable[[], Any], timeout: float = DEADLINE, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status of a client call: 200 when it succeeds, else the ApiException's status."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def pending_pod(name: str, labels: dict[str, str]) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
    )


def bind_pod_lister(admin: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-lister"),
            rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list", "get"])],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="executor-lists-pods"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-lister"),
            subjects=[
                client.RbacV1Subject(kind="User", name=EXECUTOR.name, api_group="rbac.authorization.k8s.io")
            ],
        ),
    )


def test_deployment_replica_set_replaces_a_deleted_pod(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    with kube_cluster.api_client("admin") as admin:
        apps, core = client.AppsV1Api(admin), client.CoreV1Api(admin)
        labels = {"app": "web"}
        apps.create_namespaced_deployment(
            kube_namespace,
            client.V1Deployment(
                metadata=client.V1ObjectMeta(name="web"),
                spec=client.V1DeploymentSpec(
                    replicas=2,
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=client.V1PodSpec(
                            containers=[client.V1Container(name="web", image="nginx:1.25")]
                        ),
                    ),
                ),
            ),
        )

        def pods() -> set[str]:
            listed = core.list_namespaced_pod(kube_namespace, label_selector="app=web").items
            return {p.metadata.name for p in listed if p.metadata.deletion_timestamp is None}

        def two_pods(without: str = "") -> set[str] | None:
            names = pods()
            return names if len(names) == 2 and without not in names else None

        first = eventually(two_pods)
        victim = sorted(first)[0]
        owner = core.read_namespaced_pod(victim, kube_namespace).metadata.owner_references[0]
        assert owner.kind == "ReplicaSet"
        core.delete_namespaced_pod(victim, kube_namespace)

        after = eventually(lambda: two_pods(without=victim))
        assert len(after & first) == 1  # one survivor, one replacement
        assert core.read_namespaced_pod(sorted(after - first)[0], kube_namespace).status.phase == "Pending"


def test_nobody_is_forbidden_to_list_pods(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    with kube_cluster.api_client("nobody") as nobody:
        core = client.CoreV1Api(nobody)
        assert status_of(lambda: core.list_namespaced_pod(kube_namespace)) == 403
        assert status_of(lambda: core.list_pod_for_all_namespaces()) == 403


def test_anonymous_requests_are_refused(kube_cluster: KubeCluster) -> None:
    """A client that lost its token gets 401 instead of quietly passing as system:anonymous."""
    configuration = client.Configuration(host=kube_cluster.server)
    configuration.ssl_ca_cert = str(kube_cluster.ca_file)
    with client.ApiClient(configuration) as anonymous:
        assert status_of(lambda: client.CoreV1Api(anonymous).list_namespace()) == 401


def test_executor_lists_pods_once_a_role_is_bound(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    with kube_cluster.api_client("admin") as admin, kube_cluster.api_client("executor") as executor:
        core = client.CoreV1Api(executor)
        assert status_of(lambda: core.list_namespaced_pod(kube_namespace)) == 403
        client.CoreV1Api(admin).create_namespaced_pod(kube_namespace, pending_pod("target", {"app": "a"}))
        bind_pod_lister(admin, kube_namespace)

        listed = eventually(lambda: status_of(lambda: core.list_namespaced_pod(kube_namespace)) == 200)
        assert listed
        assert [p.metadata.name for p in core.list_namespaced_pod(kube_namespace).items] == ["target"]
        # only what the Role grants, only in that namespace
        assert status_of(lambda: core.delete_namespaced_pod("target", kube_namespace)) == 403
        assert status_of(lambda: core.list_namespaced_pod("default")) == 403


def test_self_subject_access_review_for_the_executor(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    def allowed(api: client.ApiClient, verb: str) -> bool:
        review = client.AuthorizationV1Api(api).create_self_subject_access_review(
            client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(
                        namespace=kube_namespace, verb=verb, resource="pods"
                    )
                )
            )
        )
        return bool(review.status.allowed)

    with kube_cluster.api_client("admin") as admin, kube_cluster.api_client("executor") as executor:
        assert allowed(admin, "delete")
        assert not allowed(executor, "list")
        bind_pod_lister(admin, kube_namespace)
        assert eventually(lambda: allowed(executor, "list"))
        assert not allowed(executor, "delete")


def test_set_based_label_selector(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    pods = {
        "a-web": {"app": "a", "tier": "web"},
        "b-db": {"app": "b", "tier": "db"},
        "b-cache": {"app": "b", "tier": "cache"},
        "c-web": {"app": "c", "tier": "web"},
        "a-untiered": {"app": "a"},
        "unlabelled": {},
    }
    with kube_cluster.api_client("admin") as admin:
        core = client.CoreV1Api(admin)
        for name, labels in pods.items():
            core.create_namespaced_pod(kube_namespace, pending_pod(name, labels))

        def names(selector: str) -> set[str]:
            return {
                p.metadata.name
                for p in core.list_namespaced_pod(kube_namespace, label_selector=selector).items
            }

        assert names("app in (a,b),tier!=db") == {"a-web", "b-cache", "a-untiered"}
        assert names("app notin (a),tier") == {"b-db", "b-cache", "c-web"}
        assert names("!tier") == {"a-untiered", "unlabelled"}


@pytest.mark.parametrize("context", [ADMIN.context, EXECUTOR.context, NOBODY.context])
def test_kubeconfig_contexts_authenticate_as_their_user(
    kube_cluster: KubeCluster, kube_namespace: str, context: str
) -> None:
    """Each context of the kubeconfig file, loaded by the client's own loader or built from the token, is
    its user: admin may delete pods, the others may only review themselves (which proves they are not
    anonymous: anonymous requests get 401)."""
    loaded = config.new_client_from_config(config_file=str(kube_cluster.kubeconfig_path), context=context)
    configuration = client.Configuration(host=kube_cluster.server)
    configuration.ssl_ca_cert = str(kube_cluster.ca_file)
    token = kube_cluster.token(context)
    configuration.api_key = {"authorization": token, "BearerToken": token}
    configuration.api_key_prefix = {"authorization": "Bearer", "BearerToken": "Bearer"}
    built = client.ApiClient(configuration)
    for api in (loaded, built):
        with api:
            review = client.AuthorizationV1Api(api).create_self_subject_access_review(
                client.V1SelfSubjectAccessReview(
                    spec=client.V1SelfSubjectAccessReviewSpec(
                        resource_attributes=client.V1ResourceAttributes(
                            namespace=kube_namespace, verb="delete", resource="pods"
                        )
                    )
                )
            )
            assert review.status.allowed is (context == "admin")


def test_missing_binaries_say_to_run_make_kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOSPLANE_KUBE_CACHE", str(tmp_path))
    with pytest.raises(KubeBinariesMissing, match="run `make kube`"):
        KubeCluster.start()


def test_a_component_that_dies_at_start_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    for name in BINARIES:
        fake = tmp_path / "bin" / name
        fake.write_text(f"#!/bin/sh\necho '{name}: no such flag' >&2\nexit 3\n")
        fake.chmod(0o755)
    monkeypatch.setenv("CHAOSPLANE_KUBE_CACHE", str(tmp_path))
    with pytest.raises(KubeStartError, match=r"(?s)etcd exited before .*exited with 3.*etcd: no such flag"):
        KubeCluster.start(timeout=10)
