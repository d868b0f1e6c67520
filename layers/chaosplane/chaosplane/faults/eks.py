"""EKS pods: `pod-delete`, and in-pod network and stress faults through ephemeral containers.

Nothing is installed on the nodes. `pod-delete` is a plain API call (irreversible: rollback can
only report whether the pod's controller replaced it). The other faults add an ephemeral container
to each selected pod; its payload (`payloads.py`) applies the fault, ends it by itself at the
deadline, and ends it at once on SIGTERM, which rollback sends by exec. Ephemeral containers can
never be removed from a pod, so rollback waits, retrying, until the container has *terminated*.

Its exit code proves nothing about what it left: a payload killed by SIGKILL (137), or one whose
removal failed (4), may leave its netem qdisc on the pod's interfaces, or stress-ng running in a
shared PID namespace. So once the payload has ended, however it ended, rollback adds a fresh *check*
container (`payloads.check_command`) that removes what is left, looks again, and exits 0 only when
nothing is. Only then is the pod restored; otherwise rollback is incomplete, and the next attempt
(Step Functions' retries, then the sweeper) adds another check. A pod that is gone (or replaced
under the same name) counts as done: its network namespace and processes went with it.

Only Running pods that are not terminating are eligible. Every call checks the pod's UID, so a pod
recreated under the same name between Prepare and Inject (StatefulSets do this) is never hit.

The Kubernetes client is imported with this module, which only the wiring's EKS family imports (when
a run first reaches a cluster): the parameter models live in `parameters.py`, so the catalogue, and
every function that imports it, never loads the client (half a second at cold start).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from pydantic import BaseModel

from chaosplane.errors import InjectionFailed, NotEligible, TransientError
from chaosplane.faults import payloads
from chaosplane.faults.base import Journal, Resource
from chaosplane.faults.parameters import (
    PodCpuStressParameters,
    PodDeleteParameters,
    PodMemoryStressParameters,
    PodNetworkLatencyParameters,
    PodNetworkLossParameters,
)
from chaosplane.models import FaultType, JournalEntry, Target

if TYPE_CHECKING:
    from chaosplane.kube import ClusterAccess

KIND = "k8s:pod"
DELETE = "k8s:DeletePod"
EPHEMERAL = "k8s:EphemeralContainer"
RUNNING = "Running"
TERMINATING = "Terminating"
CONTAINER_PREFIX = "chaosplane-"
CHECK_SUFFIX = "-check"
"""A run's check containers in a pod are its payload container's name, this, and 1, 2, ..."""
PAGE_SIZE = 500
# A payload outlives the planned fault window by this much, so that a slow injection of many pods
# never ends the first pods' fault before Observe ends; rollback stops it on time in any case.
PAYLOAD_MARGIN_SECONDS = 60
_TRANSIENT_STATUS = {429, 500, 502, 503, 504}


IN_POD_FAULTS = {
    FaultType.POD_NETWORK_LATENCY,
    FaultType.POD_NETWORK_LOSS,
    FaultType.POD_CPU_STRESS,
    FaultType.POD_MEMORY_STRESS,
}


def payload_command(fault: FaultType, parameters: BaseModel, seconds: int) -> list[str]:
    """The ephemeral container's command for an in-pod fault held `seconds` at most."""
    if isinstance(parameters, PodNetworkLatencyParameters):
        return payloads.netem_command(
            interface=parameters.interface,
            duration_s=seconds,
            delay_ms=parameters.delay_ms,
            jitter_ms=parameters.jitter_ms,
        )
    if isinstance(parameters, PodNetworkLossParameters):
        return payloads.netem_command(
            interface=parameters.interface, duration_s=seconds, loss_percent=parameters.loss_percent
        )
    if isinstance(parameters, PodCpuStressParameters):
        return payloads.stress_cpu_command(
            workers=parameters.workers, load_percent=parameters.load_percent, duration_s=seconds
        )
    if isinstance(parameters, PodMemoryStressParameters):
        return payloads.stress_memory_command(
            workers=parameters.workers, size=parameters.size, duration_s=seconds
        )
    raise InjectionFailed(f"{fault.value} is not an in-pod fault")


def ephemeral_container(name: str, image: str, command: list[str], network: bool) -> dict[str, Any]:
    """The ephemeral container, as the API takes it (validated against the official schema in tests).

    Root, because tc needs it; NET_ADMIN only for network faults. No privilege escalation beyond that.
    """
    capabilities: dict[str, Any] = {"drop": ["ALL"]}
    if network:
        capabilities["add"] = ["NET_ADMIN"]
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "stdin": False,
        "tty": False,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": False,
            "capabilities": capabilities,
        },
    }


def container_name(result_id: str, step: str | None = None) -> str:
    # One container per run (and action of a multi-step run) and pod: an ephemeral container can
    # never be removed, so a later action on the same pod needs a name of its own. The journal
    # keeps the name, so rollback needs nothing else.
    name = CONTAINER_PREFIX + result_id.replace("-", "")[:20]
    return name if step is None else f"{name}-{hashlib.sha256(step.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Access:
    """A permission a fault needs: the verb on the resource (and subresource) in a namespace."""

    verb: str
    resource: str
    subresource: str = ""

    def __str__(self) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {what}"


# Rollback's permissions are checked with the injection's: never start what cannot be undone.
NEEDS: dict[Literal["delete", "in-pod"], list[Access]] = {
    "delete": [Access("list", "pods"), Access("get", "pods"), Access("delete", "pods")],
    "in-pod": [
        Access("list", "pods"),
        Access("get", "pods"),
        Access("patch", "pods", "ephemeralcontainers"),
        # Rollback execs into the container. The client opens a websocket, which servers authorize
        # as `get` (older) or `create` (newer): both are needed to be sure of stopping the fault.
        Access("get", "pods", "exec"),
        Access("create", "pods", "exec"),
    ],
}


class PodApi:
    """The Kubernetes calls the family makes, in one place (tests replace what a 1.20 server lacks)."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client
        self.core = k8s.CoreV1Api(api_client)
        self.authz = k8s.AuthorizationV1Api(api_client)

    def list_pods(self, namespace: str, selector: str | None) -> Iterator[k8s.V1Pod]:
        token: str | None = None
        while True:
            page = self.core.list_namespaced_pod(
                namespace, label_selector=selector or "", limit=PAGE_SIZE, _continue=token
            )
            yield from page.items
            token = page.metadata._continue
            if not token:
                return

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The namespace's labels, which say whose its pods are (`tenancy.owner`). An executor not
        allowed to read namespaces sees none: its pods are then no team's but an account's."""
        try:
            found = self.core.read_namespace(namespace)
        except ApiException as err:
            if err.status in (403, 404):
                return {}
            raise
        return dict(found.metadata.labels or {})

    def read_pod(self, namespace: str, name: str) -> k8s.V1Pod | None:
        try:
            return self.core.read_namespaced_pod(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def delete_pod(self, namespace: str, name: str, uid: str, grace: int | None) -> None:
        options = k8s.V1DeleteOptions(grace_period_seconds=grace, preconditions=k8s.V1Preconditions(uid=uid))
        self.core.delete_namespaced_pod(name, namespace, body=options)

    def add_ephemeral_container(self, pod: k8s.V1Pod, container: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_ephemeralcontainers(
            pod.metadata.name,
            pod.metadata.namespace,
            {"spec": {"ephemeralContainers": [container]}},
        )

    def exec(self, namespace: str, pod: str, container: str, command: list[str]) -> str:
        # stream() swaps the client's request method for a websocket one while it runs. Pods are
        # restored several at once, so on the shared client other threads' calls would go over
        # the websocket (and two overlapping execs could leave it swapped): exec on a client of its own.
        with k8s.ApiClient(self.api_client.configuration) as own:
            return str(
                stream(
                    k8s.CoreV1Api(own).connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    container=container,
                    command=command,
                    stderr=True,
                    stdin=False,
                    stdout=True,
                    tty=False,
                    _request_timeout=30,
                )
            )

    def allowed(self, namespace: str, access: Access) -> bool:
        review = self.authz.create_self_subject_access_review(
            k8s.V1SelfSubjectAccessReview(
                spec=k8s.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=k8s.V1ResourceAttributes(
                        namespace=namespace,
                        verb=access.verb,
                        resource=access.resource,
                        subresource=access.subresource or None,
                    )
                )
            )
        )
        return bool(review.status.allowed)


def pod_state(pod: k8s.V1Pod) -> str:
    if pod.metadata.deletion_timestamp is not None:
        return TERMINATING
    return str(pod.status.phase if pod.status and pod.status.phase else "Unknown")


def _ephemeral_status(pod: k8s.V1Pod, name: str) -> k8s.V1ContainerStatus | None:
    for status in (pod.status.ephemeral_container_statuses if pod.status else None) or []:
        if status.name == name:
            return status
    return None


def _terminated(pod: k8s.V1Pod, name: str) -> k8s.V1ContainerStateTerminated | None:
    status = _ephemeral_status(pod, name)
    if status is not None and status.state is not None:
        return status.state.terminated
    return None


def _check_names(pod: k8s.V1Pod, name: str) -> list[str]:
    """This run's check containers in the pod, oldest first."""
    prefix = name + CHECK_SUFFIX
    numbered = [
        c.name
        for c in pod.spec.ephemeral_containers or []
        if c.name.startswith(prefix) and c.name[len(prefix) :].isdigit()
    ]
    return sorted(numbered, key=lambda n: int(n[len(prefix) :]))


def _spec_of(pod: k8s.V1Pod, name: str) -> k8s.V1EphemeralContainer | None:
    return next((c for c in pod.spec.ephemeral_containers or [] if c.name == name), None)


def _failed_check(pod: k8s.V1Pod, name: str) -> bool:
    done = _terminated(pod, name)
    return done is not None and done.exit_code != 0


def _in_spec(pod: k8s.V1Pod, name: str) -> bool:
    return any(c.name == name for c in (pod.spec.ephemeral_containers or []))


def _running_ours(pod: k8s.V1Pod) -> list[str]:
    """Chaosplane containers in the pod that have not terminated (another run's fault)."""
    busy = []
    for container in pod.spec.ephemeral_containers or []:
        if container.name.startswith(CONTAINER_PREFIX):
            status = _ephemeral_status(pod, container.name)
            if status is None or status.state is None or status.state.terminated is None:
                busy.append(container.name)
    return busy


def _controller(pod: k8s.V1Pod) -> dict[str, str] | None:
    for owner in pod.metadata.owner_references or []:
        if owner.controller:
            return {"kind": owner.kind, "name": owner.name, "uid": owner.uid}
    return None


def _server_says(err: ApiException) -> str:
    """The API server's own explanation (its Status message), else the HTTP reason."""
    try:
        return str(json.loads(err.body)["message"])
    except (TypeError, ValueError, KeyError):
        return str(err.reason)


def _api_error(err: ApiException, what: str) -> Exception:
    if err.status in _TRANSIENT_STATUS:
        return TransientError(f"{what}: HTTP {err.status}: {_server_says(err)}")
    if err.status == 403:
        return InjectionFailed(f"{what}: forbidden by RBAC ({_server_says(err)}); see infra/kubernetes/")
    return InjectionFailed(f"{what}: HTTP {err.status}: {_server_says(err)}")


class EksPods:
    eligible_states = frozenset({RUNNING})

    def __init__(
        self,
        clusters: ClusterAccess,
        payload_image: str | None,
        *,
        pod_api: Callable[[k8s.ApiClient], PodApi] = PodApi,
        start_timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clusters = clusters
        self._image = payload_image
        self._pod_api = pod_api
        self._start_timeout = start_timeout
        self._sleep = sleep
        self._apis: dict[str, PodApi] = {}
        self._claimed: set[str] = set()  # replacement pods already credited to a deleted pod
        self._lock = threading.Lock()  # a run changes (and restores) several pods at once

    def _api(self, cluster: str) -> PodApi:
        with self._lock:
            if cluster not in self._apis:
                self._apis[cluster] = self._pod_api(self._clusters.client(cluster))
            return self._apis[cluster]

    # -- resolve and check ----------------------------------------------------------------------

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        assert target.cluster is not None and target.namespace is not None  # the model guarantees both
        api = self._api(target.cluster)
        names = set(target.resource_ids or [])
        resources = []
        try:
            namespace_labels = api.namespace_labels(target.namespace)
            for pod in api.list_pods(target.namespace, target.selector):
                if names and pod.metadata.name not in names:
                    continue
                resources.append(
                    Resource(
                        id=pod.metadata.name,
                        kind=KIND,
                        state=pod_state(pod),
                        labels=dict(pod.metadata.labels or {}),
                        scope_labels=namespace_labels,
                        detail={
                            "cluster": target.cluster,
                            "namespace": target.namespace,
                            "uid": pod.metadata.uid,
                            "node": (pod.spec.node_name if pod.spec else None) or "",
                        },
                    )
                )
        except ApiException as err:
            raise _api_error(err, f"listing pods in {target.namespace}") from err
        return resources

    def check_access(self, target: Target, fault: FaultType) -> list[str]:
        """Every permission the fault and its rollback need, asked of the API server before anything."""

        assert target.cluster is not None and target.namespace is not None
        problems = []
        if fault in IN_POD_FAULTS and not self._image:
            problems.append(
                f"{fault.value} needs the payload image: set the PayloadImage parameter (infra/payload-image)"
            )
        needs = NEEDS["in-pod" if fault in IN_POD_FAULTS else "delete"]
        try:
            api = self._api(target.cluster)
            missing = [str(a) for a in needs if not api.allowed(target.namespace, a)]
        except ApiException as err:
            raise _api_error(err, f"checking permissions on cluster {target.cluster}") from err
        if missing:
            problems.append(
                f"the executor may not {', '.join(missing)} in namespace {target.namespace} "
                f"of cluster {target.cluster} (RBAC: infra/kubernetes/rbac.yaml)"
            )
        return problems

    # -- inject ---------------------------------------------------------------------------------

    def _live(self, resource: Resource) -> tuple[PodApi, k8s.V1Pod]:
        """The pod as it is now, if it is still the one planned and still eligible (with its API)."""
        api = self._api(str(resource.detail["cluster"]))

        namespace = str(resource.detail["namespace"])
        try:
            pod = api.read_pod(namespace, resource.id)
        except ApiException as err:
            raise _api_error(err, f"reading pod {namespace}/{resource.id}") from err
        if pod is None:
            raise NotEligible(f"pod {resource.id} is gone")
        if pod.metadata.uid != resource.detail.get("uid"):
            raise NotEligible(f"pod {resource.id} was replaced by another pod of the same name")
        state = pod_state(pod)
        if state != RUNNING:
            raise NotEligible(f"pod {resource.id} is {state} now, not Running")
        return api, pod

    def delete(self, resource: Resource, parameters: PodDeleteParameters, journal: Journal) -> str:
        """`pod-delete`: delete the pod planned (its UID as a precondition), journaled first."""
        api, pod = self._live(resource)
        prior = {
            "cluster": resource.detail["cluster"],
            "namespace": pod.metadata.namespace,
            "uid": pod.metadata.uid,
            "phase": pod_state(pod),
            "controller": _controller(pod),
        }
        entry = journal.before_change(resource, DELETE, prior)
        try:
            api.delete_pod(
                pod.metadata.namespace, pod.metadata.name, pod.metadata.uid, parameters.grace_period_seconds
            )
        except ApiException as err:
            if err.status in (404, 409):  # gone, or the UID precondition failed: not the pod we planned
                raise NotEligible(f"pod {resource.id} went away before it could be deleted") from err
            raise _api_error(err, f"deleting pod {resource.id}") from err
        journal.applied(entry)
        return "Deleted"

    def add_payload(
        self, fault: FaultType, resource: Resource, parameters: BaseModel, journal: Journal
    ) -> str:
        """An in-pod fault: its payload in an ephemeral container, injected once the payload runs."""
        api, pod = self._live(resource)
        if not self._image:
            raise InjectionFailed(f"{fault.value} needs the payload image (PayloadImage parameter)")
        busy = _running_ours(pod)
        if busy:
            raise NotEligible(f"pod {resource.id} is already under a chaosplane fault ({', '.join(busy)})")
        name = container_name(journal.run.result_id, journal.run.step)
        seconds = journal.run.duration + PAYLOAD_MARGIN_SECONDS
        network = fault in (FaultType.POD_NETWORK_LATENCY, FaultType.POD_NETWORK_LOSS)
        container = ephemeral_container(
            name, self._image, payload_command(fault, parameters, seconds), network
        )
        prior = {
            "cluster": resource.detail["cluster"],
            "namespace": pod.metadata.namespace,
            "uid": pod.metadata.uid,
            "container": name,
        }
        entry = journal.before_change(resource, EPHEMERAL, prior)
        try:
            api.add_ephemeral_container(pod, container)
        except ApiException as err:
            raise _api_error(err, f"adding ephemeral container to {resource.id}") from err
        self._await_start(api, pod.metadata.namespace, resource.id, name)
        journal.applied(entry)
        return f"{fault.value} in {name}"

    def _await_start(self, api: PodApi, namespace: str, pod_name: str, name: str) -> None:
        """A fault counts as injected once its payload runs; one that never starts fails the run."""
        deadline = time.monotonic() + self._start_timeout
        while True:
            pod = api.read_pod(namespace, pod_name)
            if pod is None:
                raise NotEligible(f"pod {pod_name} is gone")
            if not _in_spec(pod, name):
                # A server without ephemeral containers (before 1.25, or the feature off) answers 200
                # and changes nothing.
                raise InjectionFailed(
                    f"the API server did not add ephemeral container {name} to {pod_name}: "
                    "ephemeral containers need Kubernetes 1.25 or later"
                )
            status = _ephemeral_status(pod, name)
            state = status.state if status is not None else None
            if state is not None and state.running is not None:
                return
            if state is not None and state.terminated is not None:
                if state.terminated.exit_code == 0:
                    return  # already done (a very short fault): rollback will find it ended
                raise InjectionFailed(
                    f"payload in {pod_name} exited with code {state.terminated.exit_code}: "
                    f"{(state.terminated.message or state.terminated.reason or '').strip()}"
                )
            if time.monotonic() >= deadline:
                why = state.waiting.reason if state is not None and state.waiting is not None else "no status"
                raise InjectionFailed(
                    f"payload in {pod_name} did not start within {self._start_timeout:.0f}s ({why})"
                )
            self._sleep(0.5)

    # -- rollback -------------------------------------------------------------------------------

    def _where(self, entry: JournalEntry) -> tuple[PodApi, str]:
        """The API of the journaled pod's cluster, and its namespace."""
        return self._api(str(entry.prior_state["cluster"])), str(entry.prior_state["namespace"])

    def stop_payload(self, entry: JournalEntry) -> str:
        """An in-pod fault's rollback: stop the payload, wait (retrying) until it has ended, then prove
        with a check container that it left nothing behind."""
        prior = entry.prior_state
        api, namespace = self._where(entry)
        name = str(prior["container"])
        try:
            pod = api.read_pod(namespace, entry.resource_id)
            if pod is None or pod.metadata.uid != prior["uid"]:
                return "pod gone"  # its network namespace and processes went with it
            if not _in_spec(pod, name):
                return "not injected"  # the add was journaled but never reached the server
            status = _ephemeral_status(pod, name)
            if status is not None and status.state is not None and status.state.running is not None:
                # The stop command returns once the payload has cleaned up (or gives up after its
                # grace); the kubelet reports the container ended a moment later.
                api.exec(namespace, entry.resource_id, name, payloads.stop_command())
                pod = api.read_pod(namespace, entry.resource_id)
                if pod is None or pod.metadata.uid != prior["uid"]:
                    return "pod gone"
            ended = _terminated(pod, name)
            if ended is not None:
                return self._verify(api, pod, name, ended.exit_code)
        except ApiException as err:
            raise TransientError(
                f"stopping the payload in {entry.resource_id}: HTTP {err.status}: {_server_says(err)}"
            ) from err
        # Not ended yet, or not started (an image still pulling): Step Functions retries, and the
        # sweeper after it, until the kubelet reports the container ended; a late start is stopped
        # by the next attempt, and ends itself after the run's duration in any case.
        raise TransientError(f"waiting for {name} in pod {entry.resource_id} to end")

    def _verify(self, api: PodApi, pod: k8s.V1Pod, name: str, exit_code: int) -> str:
        """The payload has ended: restored only once a check container has found nothing left.

        The newest check is waited for (up to the start timeout); one that failed, or none yet, gets
        a fresh check. Anything short of a check that exited 0 is rollback incomplete: retried."""
        namespace, pod_name = pod.metadata.namespace, pod.metadata.name
        payload = _spec_of(pod, name)
        kind = payloads.payload_kind(list(payload.command or [])) if payload is not None else None
        if payload is None or kind is None:
            raise InjectionFailed(f"container {name} in pod {pod_name} does not run a chaosplane payload")
        checks = _check_names(pod, name)
        latest = checks[-1] if checks else None
        if latest is None or _failed_check(pod, latest):
            latest = f"{name}{CHECK_SUFFIX}{len(checks) + 1}"
            network = kind == "netem"
            check = ephemeral_container(latest, payload.image, payloads.check_command(kind), network)
            api.add_ephemeral_container(pod, check)
        deadline = time.monotonic() + self._start_timeout
        while True:
            current = api.read_pod(namespace, pod_name)
            if current is None or current.metadata.uid != pod.metadata.uid:
                return "pod gone"
            done = _terminated(current, latest)
            if done is not None:
                said = (done.message or done.reason or "").strip()
                if done.exit_code == 0:
                    return f"payload ended (exit {exit_code}); {said or 'verified by ' + latest}"
                raise TransientError(
                    f"rollback incomplete in pod {pod_name}: payload ended (exit {exit_code}), "
                    f"but {latest} exited {done.exit_code}: {said or 'no message'}"
                )
            if time.monotonic() >= deadline:
                raise TransientError(
                    f"rollback incomplete in pod {pod_name}: payload ended (exit {exit_code}), "
                    f"waiting for {latest} to verify that nothing is left"
                )
            self._sleep(0.5)

    def replacement(self, entry: JournalEntry) -> str:
        """Pod deletion cannot be undone; report whether the pod's controller replaced it."""
        api, namespace = self._where(entry)
        controller = entry.prior_state.get("controller")
        if not controller:
            return "not replaced (no controller)"
        try:
            candidates = sorted(
                (
                    pod
                    for pod in api.list_pods(namespace, None)
                    if pod.metadata.uid != entry.prior_state["uid"]
                    and pod.metadata.deletion_timestamp is None
                    and _controller(pod) == controller
                    and _created_after(pod, entry.created_at)
                ),
                key=lambda pod: pod.metadata.creation_timestamp,
            )
        except ApiException as err:
            raise TransientError(
                f"listing pods in {namespace}: HTTP {err.status}: {_server_says(err)}"
            ) from err
        with self._lock:  # two deleted pods restored at once never claim the same replacement
            replacement = next((pod for pod in candidates if pod.metadata.uid not in self._claimed), None)
            if replacement is None:
                return f"not replaced by {controller['kind']} {controller['name']} yet"
            self._claimed.add(replacement.metadata.uid)
        return f"replaced by {replacement.metadata.name} ({pod_state(replacement)})"


def _created_after(pod: k8s.V1Pod, moment: datetime) -> bool:
    created = pod.metadata.creation_timestamp
    # Kubernetes timestamps have whole seconds: compare at that resolution.
    return created is not None and created.timestamp() >= int(moment.timestamp())
