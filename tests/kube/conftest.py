"""Fixtures on a real Kubernetes control plane (cluster.py): one cluster a session, one namespace a test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chaosplane.tenancy import TEAM_TAG
from tests.conftest import TEAM
from tests.kube.cluster import KubeCluster


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """etcd + kube-apiserver + kube-controller-manager, started once for the session (needs `make kube`)."""
    cluster = KubeCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    """A fresh namespace, deleted after the test; pods can be created in it at once.

    It waits for the `default` service account's token secret: until the controller manager has made it,
    1.20's ServiceAccount admission refuses pods.
    """
    name = f"t-{uuid.uuid4().hex[:10]}"
    with kube_cluster.api_client("admin") as api:
        core = client.CoreV1Api(api)
        # The tests' team's own: its runs act only on pods in namespaces labelled with it.
        labels = {TEAM_TAG: TEAM}
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        deadline = time.monotonic() + 30
        while True:
            try:
                if core.read_namespaced_service_account("default", name).secrets:
                    break
            except ApiException as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise AssertionError(f"namespace {name}: no token for the default service account in 30 s")
            time.sleep(0.05)
        try:
            yield name
        finally:
            core.delete_namespace(name, propagation_policy="Background")
