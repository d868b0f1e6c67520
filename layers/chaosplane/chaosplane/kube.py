"""Reaching a Kubernetes cluster: EKS through IAM, any other cluster through a kubeconfig.

EKS authenticates a bearer token that is a presigned STS GetCallerIdentity URL (the scheme of
aws-iam-authenticator), so the executor needs no kubeconfig, no agent and no long-lived secret:
its IAM role is mapped to a Kubernetes group by an EKS access entry (see `infra/kubernetes/`).
Tokens live 15 minutes; a client refreshes its token before every request once it is 14 minutes old.

The Kubernetes client is imported when a cluster is first reached, not with this module: importing
it takes about half a second, and every function that imports the wiring would pay that at cold
start, the guard and the notifier too, which never reach a cluster (tests/unit/test_cold_import.py).
"""

from __future__ import annotations

import base64
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kubernetes import client as k8s

TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_REFRESH_SECONDS = 14 * 60  # EKS accepts a token for 15 minutes; never send one near its end
_PRESIGN_SECONDS = 60  # what aws-iam-authenticator signs for; EKS adds its own 15-minute window


class ClusterAccess(Protocol):
    def client(self, cluster: str) -> k8s.ApiClient:
        """An API client for the named cluster, authenticated, reused across calls."""
        ...


def eks_token(sts: Any, cluster: str) -> str:
    """A bearer token for EKS cluster `cluster`, from the credentials of the `sts` client.

    The cluster name is a signed header, so a token minted for one cluster is useless on another.
    """
    url = sts.meta.endpoint_url.rstrip("/") + "/?Action=GetCallerIdentity&Version=2011-06-15"
    request = {
        "method": "GET",
        "url": url,
        "body": {},
        "headers": {"x-k8s-aws-id": cluster},
        "context": {},
    }
    signed = sts._request_signer.generate_presigned_url(
        request, region_name=sts.meta.region_name, expires_in=_PRESIGN_SECONDS, operation_name=""
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(signed.encode()).decode().rstrip("=")


def _bearer(configuration: k8s.Configuration, token: str) -> None:
    # The classic client reads either key depending on the code path: set both, or requests go
    # out anonymous.
    configuration.api_key = {"authorization": token, "BearerToken": token}
    configuration.api_key_prefix = {"authorization": "Bearer", "BearerToken": "Bearer"}


class EksClusters:
    """EKS clusters by name: endpoint and CA from DescribeCluster, token from STS."""

    def __init__(
        self, eks: Any, sts: Any, clock: Callable[[], float] = time.monotonic, connections: int = 10
    ) -> None:
        self._eks = eks
        self._sts = sts
        self._clock = clock
        self._connections = connections
        self._clients: dict[str, k8s.ApiClient] = {}
        self._lock = threading.Lock()

    def client(self, cluster: str) -> k8s.ApiClient:
        with self._lock:
            if cluster not in self._clients:
                self._clients[cluster] = self._connect(cluster)
            return self._clients[cluster]

    def _connect(self, cluster: str) -> k8s.ApiClient:
        from kubernetes import client as k8s

        described = self._eks.describe_cluster(name=cluster)["cluster"]
        ca = tempfile.NamedTemporaryFile(prefix=f"eks-{cluster}-", suffix=".crt", delete=False)  # noqa: SIM115
        with ca:
            ca.write(base64.b64decode(described["certificateAuthority"]["data"]))
        configuration = k8s.Configuration()
        configuration.host = described["endpoint"]
        configuration.ssl_ca_cert = ca.name
        configuration.connection_pool_maxsize = self._connections  # a run changes pods at once
        minted_at = [self._clock()]
        _bearer(configuration, eks_token(self._sts, cluster))

        def refresh(conf: k8s.Configuration) -> None:
            if self._clock() - minted_at[0] >= TOKEN_REFRESH_SECONDS:
                _bearer(conf, eks_token(self._sts, cluster))
                minted_at[0] = self._clock()

        configuration.refresh_api_key_hook = refresh
        return k8s.ApiClient(configuration)


class KubeconfigClusters:
    """Clusters named by the contexts of a kubeconfig file (local mode, a developer's own cluster)."""

    def __init__(self, path: str, connections: int = 10) -> None:
        self._path = path
        self._connections = connections
        self._clients: dict[str, k8s.ApiClient] = {}
        self._lock = threading.Lock()

    def contexts(self) -> set[str]:
        from kubernetes import config as k8s_config

        found, _ = k8s_config.list_kube_config_contexts(config_file=self._path)
        return {context["name"] for context in found}

    def client(self, cluster: str) -> k8s.ApiClient:
        with self._lock:
            if cluster not in self._clients:
                from kubernetes import client as k8s
                from kubernetes import config as k8s_config

                configuration = k8s.Configuration()
                configuration.connection_pool_maxsize = self._connections  # a run changes pods at once
                self._clients[cluster] = k8s_config.new_client_from_config(
                    config_file=self._path,
                    context=cluster,
                    persist_config=False,
                    client_configuration=configuration,
                )
            return self._clients[cluster]


class Clusters:
    """A kubeconfig context when one has the cluster's name, EKS otherwise."""

    def __init__(self, eks: ClusterAccess | None, kubeconfig: KubeconfigClusters | None) -> None:
        self._eks = eks
        self._kubeconfig = kubeconfig

    def client(self, cluster: str) -> k8s.ApiClient:
        if self._kubeconfig is not None and cluster in self._kubeconfig.contexts():
            return self._kubeconfig.client(cluster)
        if self._eks is None:
            raise LookupError(f"cluster {cluster} is not a context of the configured kubeconfig")
        return self._eks.client(cluster)
