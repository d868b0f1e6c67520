"""EKS access and the objects sent to Kubernetes, checked without a cluster.

A 1.20 API server (what the integration tests run) cannot apply ephemeral containers, so the
container we send is validated against the official schema of a current Kubernetes release.
"""

from __future__ import annotations

import base64
import copy
import functools
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import kubernetes_validate
import pytest
from moto import mock_aws
from pydantic import ValidationError

from chaosplane import kube
from chaosplane.faults import catalogue, eks
from chaosplane.kube import TOKEN_PREFIX, TOKEN_REFRESH_SECONDS, EksClusters, eks_token
from chaosplane.models import FaultType

KUBERNETES = "1.37.0"
IN_POD = [
    (FaultType.POD_NETWORK_LATENCY, {"delay_ms": 200, "jitter_ms": 20}),
    (FaultType.POD_NETWORK_LOSS, {"loss_percent": 12.5}),
    (FaultType.POD_CPU_STRESS, {"workers": 2, "load_percent": 90}),
    (FaultType.POD_MEMORY_STRESS, {"workers": 1, "size": "50%"}),
]
# The API rejects these on ephemeral containers, though the schema only says so in prose.
_NOT_FOR_EPHEMERAL = {"ports", "livenessProbe", "readinessProbe", "startupProbe", "resources", "lifecycle"}


def _decode(token: str) -> str:
    body = token.removeprefix(TOKEN_PREFIX)
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _sts() -> Any:
    return boto3.client(
        "sts",
        region_name="eu-west-1",
        endpoint_url="https://sts.eu-west-1.amazonaws.com",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )


def test_an_eks_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() -> None:
    token = eks_token(_sts(), "shop")

    assert token.startswith(TOKEN_PREFIX) and not token.endswith("=")
    url = urlparse(_decode(token))
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc) == ("https", "sts.eu-west-1.amazonaws.com")
    assert query["Action"] == ["GetCallerIdentity"] and query["Version"] == ["2011-06-15"]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    # The cluster name is signed: the same credentials give another signature for another cluster.
    other = parse_qs(urlparse(_decode(eks_token(_sts(), "billing"))).query)
    assert other["X-Amz-Signature"] != query["X-Amz-Signature"]


@mock_aws
def test_an_eks_client_takes_endpoint_and_ca_from_the_cluster_and_refreshes_its_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    minted: list[str] = []

    def counting(sts: Any, cluster: str) -> str:
        minted.append(cluster)
        return f"{eks_token(sts, cluster)}-{len(minted)}"  # tell the mints apart within one second

    monkeypatch.setattr(kube, "eks_token", counting)
    eks_client = boto3.client("eks", region_name="eu-west-1")
    iam_role = "arn:aws:iam::123456789012:role/eks"
    eks_client.create_cluster(name="shop", roleArn=iam_role, resourcesVpcConfig={"subnetIds": []})
    described = eks_client.describe_cluster(name="shop")["cluster"]
    now = [1000.0]
    clusters = EksClusters(eks_client, _sts(), clock=lambda: now[0])

    api = clusters.client("shop")
    conf = api.configuration

    assert conf.host == described["endpoint"]
    assert Path(conf.ssl_ca_cert).read_bytes() == base64.b64decode(described["certificateAuthority"]["data"])
    first = conf.get_api_key_with_prefix("BearerToken")
    assert first.startswith("Bearer " + TOKEN_PREFIX)
    assert "x-k8s-aws-id" in _decode(first.removeprefix("Bearer ").rsplit("-", 1)[0])
    assert clusters.client("shop") is api  # one client per cluster, reused

    now[0] += TOKEN_REFRESH_SECONDS - 1
    assert conf.get_api_key_with_prefix("BearerToken") == first
    now[0] += 2
    assert conf.get_api_key_with_prefix("BearerToken") != first  # minted again before it expires
    assert minted == ["shop", "shop"]


@pytest.mark.parametrize(("fault", "raw"), IN_POD, ids=[f.value for f, _ in IN_POD])
def test_the_ephemeral_container_is_valid_for_current_kubernetes(
    fault: FaultType, raw: dict[str, Any]
) -> None:
    parameters = catalogue.parse_parameters(fault, raw)
    network = fault in (FaultType.POD_NETWORK_LATENCY, FaultType.POD_NETWORK_LOSS)
    container = eks.ephemeral_container(
        eks.container_name("0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"),
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/chaosplane-payload:1",
        eks.payload_command(fault, parameters, 360),
        network,
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}], "ephemeralContainers": [container]},
    }

    kubernetes_validate.validate(pod, KUBERNETES, strict=True)

    assert not _NOT_FOR_EPHEMERAL & set(container)
    assert len(container["name"]) <= 63 and container["name"].startswith(eks.CONTAINER_PREFIX)
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["capabilities"].get("add") == (["NET_ADMIN"] if network else None)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # The payload ends itself when the run's time is up (its arguments follow the script).
    assert any(arg in ("360", "360s") for arg in container["command"][3:])


def test_the_schema_check_is_not_hollow() -> None:
    container = eks.ephemeral_container("chaosplane-x", "img", ["sleep", "1"], network=False)
    broken = copy.deepcopy(container)
    broken["securityContext"]["capabilities"]["add"] = "NET_ADMIN"  # a string, not a list
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    pod["spec"]["ephemeralContainers"] = [broken]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES, strict=True)


@pytest.mark.parametrize(
    ("fault", "raw", "problem"),
    [
        (FaultType.POD_NETWORK_LATENCY, {"delay_ms": 0}, "delay_ms"),
        (FaultType.POD_NETWORK_LATENCY, {"delay_ms": 10, "interface": "eth0; reboot"}, "interface"),
        (FaultType.POD_NETWORK_LATENCY, {"delay_ms": "10"}, "delay_ms"),
        (FaultType.POD_NETWORK_LATENCY, {"delay_ms": 10, "jitter_ms": 11}, "jitter_ms cannot exceed"),
        (FaultType.POD_NETWORK_LOSS, {"loss_percent": 101}, "loss_percent"),
        (FaultType.POD_NETWORK_LOSS, {}, "loss_percent"),
        (FaultType.POD_CPU_STRESS, {"load_percent": 0}, "load_percent"),
        (FaultType.POD_MEMORY_STRESS, {"size": "lots"}, "size"),
        (FaultType.POD_MEMORY_STRESS, {"size": "150%"}, "size"),
        (FaultType.POD_DELETE, {"grace_period_seconds": -1}, "grace_period_seconds"),
        (FaultType.POD_DELETE, {"force": True}, "force"),
    ],
)
def test_bad_parameters_are_refused_by_name(fault: FaultType, raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        catalogue.validate_parameters(fault, raw)
    with pytest.raises(ValidationError):
        catalogue.parse_parameters(fault, raw)


def test_pod_delete_is_the_irreversible_pod_fault() -> None:
    assert catalogue.spec(FaultType.POD_DELETE).irreversible
    assert not any(catalogue.spec(f).irreversible for f, _ in IN_POD)


def test_exec_runs_on_a_client_of_its_own_so_the_shared_one_stays_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # kubernetes' stream() swaps the request method of the client it is given for a websocket one
    # while it runs. Rollback restores several pods at once on one cached client per cluster: were
    # the exec to run on it, the others' GETs and LISTs would go over the websocket meanwhile.
    from kubernetes import client as k8s
    from kubernetes.stream import ws_client
    from kubernetes.stream.stream import _websocket_request

    shared = k8s.ApiClient(k8s.Configuration(host="https://127.0.0.1:6443"))  # never contacted
    plain = shared.request
    shared_was_plain: list[bool] = []
    exec_urls: list[str] = []

    def websocket_call(configuration: Any, *args: Any, **kwargs: Any) -> Any:
        shared_was_plain.append(shared.request == plain)  # what another thread's call would use now
        exec_urls.append(str(args[1]))
        return ws_client.WSResponse(data="stopped", status=200)

    monkeypatch.setattr(eks, "stream", functools.partial(_websocket_request, websocket_call, None))
    assert eks.PodApi(shared).exec("web", "pod-1", "chaos-x", ["/chaos", "stop"]) == "stopped"
    assert shared_was_plain == [True]
    assert shared.request == plain
    assert exec_urls == ["https://127.0.0.1:6443/api/v1/namespaces/web/pods/pod-1/exec"]


def test_each_action_of_a_multi_step_run_has_a_container_name_of_its_own() -> None:
    run = "9b2c1d3e-4f50-4a6b-8c7d-0e1f2a3b4c5d"
    single = eks.container_name(run)
    latency, loss = eks.container_name(run, "latency"), eks.container_name(run, "loss")
    assert single == "chaosplane-9b2c1d3e4f504a6b8c7d"  # a single-fault run's, as before
    assert len({single, latency, loss}) == 3 and latency.startswith(single)
    assert eks.container_name(run, "latency") == latency  # found again by a retried injection
    longest = eks.container_name(run, "x" * 64) + eks.CHECK_SUFFIX + "99"
    assert len(longest) <= 63  # a container name is a DNS label, check containers included
