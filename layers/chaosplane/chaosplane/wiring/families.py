"""The fault families, by fault: each family's module is imported when a run first needs it.

A function that never acts on resources (the guard) never asks; the API asks for a preview's
family only; the executor for the families its runs use. So no cold start imports every family,
and none imports the EKS one (and with it the Kubernetes client) before a run reaches a cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaosplane.models import FaultType, TargetType
from chaosplane.settings import Settings
from chaosplane.wiring.clients import Clients
from chaosplane.wiring.telemetry import build_telemetry

if TYPE_CHECKING:
    from chaosplane.faults.base import FaultFamily
    from chaosplane.kube import Clusters
    from chaosplane.tenancy import Place

Families = Callable[[FaultType], "FaultFamily"]


def cluster_access(clients: Clients, settings: Settings) -> Callable[[], Clusters]:
    """The function's one way to the clusters (made on first use): it keeps each cluster's API
    client, for the EKS faults and the Kubernetes probes alike."""
    made: list[Clusters] = []
    lock = threading.Lock()

    def clusters() -> Clusters:
        from chaosplane.kube import Clusters, EksClusters, KubeconfigClusters

        with lock:
            if not made:
                path, connections = settings.kubeconfig, settings.connections
                kubeconfig = KubeconfigClusters(path, connections) if path else None
                on_eks = EksClusters(clients.eks, clients.sts, connections=connections)
                made.append(Clusters(on_eks, kubeconfig))
        return made[0]

    return clusters


def fault_families(
    clients: Clients, settings: Settings, clusters: Callable[[], Clusters] | None = None
) -> Families:
    clusters = clusters or cluster_access(clients, settings)

    def ec2() -> FaultFamily:
        from chaosplane.faults.ec2 import Ec2Instances

        return Ec2Instances(clients.ec2)

    def eks() -> FaultFamily:
        from chaosplane.faults.eks import EksPods

        return EksPods(clusters(), settings.payload_image)

    def rds_instances() -> FaultFamily:
        from chaosplane.faults.rds import RdsInstances

        return RdsInstances(clients.rds)

    def rds_clusters() -> FaultFamily:
        from chaosplane.faults.rds import RdsClusters

        return RdsClusters(clients.rds)

    def ecs() -> FaultFamily:
        from chaosplane.faults.ecs import EcsTasks

        return EcsTasks(clients.ecs)

    def lambdas() -> FaultFamily:
        from chaosplane.faults.lambdas import LambdaFunctions

        return LambdaFunctions(clients.lambda_, clients.tagging)

    def subnets() -> FaultFamily:
        from chaosplane.faults.network import Subnets

        return Subnets(clients.ec2)

    def http() -> FaultFamily:
        from chaosplane.faults.http import HttpEndpoints, WebhookSecrets

        secrets = WebhookSecrets(clients.secretsmanager, settings.webhook_secret_prefix)
        return HttpEndpoints(secrets, telemetry=build_telemetry(settings))

    def ssm() -> FaultFamily:
        from chaosplane.faults.ssm import SsmStress

        return SsmStress(clients.ec2, clients.ssm)

    by_target_type: dict[TargetType, Callable[[], FaultFamily]] = {
        TargetType.EC2_INSTANCES: ec2,
        TargetType.EKS_PODS: eks,
        # Cloud and external families.
        TargetType.RDS_INSTANCES: rds_instances,
        TargetType.RDS_CLUSTERS: rds_clusters,
        TargetType.ECS_TASKS: ecs,
        TargetType.LAMBDA_FUNCTIONS: lambdas,
        TargetType.SUBNETS: subnets,
        TargetType.HTTP_ENDPOINT: http,
    }
    # Faults whose family is not their target type's (SSM stress acts on EC2 instances, via SSM).
    by_fault: dict[FaultType, Callable[[], FaultFamily]] = {
        FaultType.SSM_CPU_STRESS: ssm,
        FaultType.SSM_MEMORY_STRESS: ssm,
    }

    def family(fault: FaultType) -> FaultFamily:
        from chaosplane.faults.catalogue import spec

        if fault in by_fault:
            return by_fault[fault]()
        return by_target_type[spec(fault).target_type]()

    return family


# What acts as the function itself whatever the team's boundary: pods (Kubernetes RBAC and the
# namespace's label hold the boundary there; the cluster knows the function's identity, not a
# team session's) and external endpoints (the team's by registering them).
OWN_IDENTITY = frozenset({TargetType.EKS_PODS, TargetType.HTTP_ENDPOINT})


def team_identities(
    clients: Clients, settings: Settings, clusters: Callable[[], Clusters] | None = None
) -> Callable[[str], Families] | None:
    """The fault families of each team, acting as `TEAM_FAULT_ROLE_ARN` with the team as a session
    tag: an identity that may change only what is tagged as the team's. Each team's clients are
    made once and keep their credentials fresh. None without the role (the API, which only reads)."""
    role = settings.team_fault_role_arn
    if not role:
        return None
    clusters = clusters or cluster_access(clients, settings)
    own = fault_families(clients, settings, clusters)
    made: dict[str, Families] = {}
    lock = threading.Lock()

    def of_team(team: str) -> Families:
        from chaosplane.faults.catalogue import spec
        from chaosplane.tenancy import SESSION_TEAM_TAG

        with lock:
            if team not in made:
                assumed = clients.assuming(
                    role, session_name=f"chaosplane-{team}", tags={SESSION_TEAM_TAG: team}
                )
                as_team = fault_families(assumed, settings, clusters)
                made[team] = lambda fault: (
                    own(fault) if spec(fault).target_type in OWN_IDENTITY else as_team(fault)
                )
            return made[team]

    return of_team


@dataclass(frozen=True)
class Reach:
    """How the platform reaches into one of a team's environments: the clients of the role
    assumed there, and the clusters as that role."""

    clients: Clients
    clusters: Callable[[], Clusters]


def environment_reach(clients: Clients, settings: Settings) -> Callable[[str, Place], Reach]:
    """A team's reach into one of its environments: the environment's role in its account and
    Region, assumed with the team's ExternalId and the team as a session tag, and that role's
    way into the environment's EKS clusters (each maps the role in an access entry). Each (team,
    environment, Region) gets it once; botocore refreshes the credentials shortly before they
    expire, so one assumed session serves every run there: its faults, alarms, metrics and probes."""
    made: dict[tuple[str, ...], Reach] = {}
    lock = threading.Lock()

    def reach(team: str, place: Place) -> Reach:
        from chaosplane.tenancy import SESSION_TEAM_TAG

        key = (team, place.environment.name, place.environment.role_arn, place.region, place.external_id)
        with lock:
            if key not in made:
                assumed = clients.assuming(
                    place.environment.role_arn,
                    session_name=f"chaosplane-{team}-{place.environment.name}",
                    tags={SESSION_TEAM_TAG: team},
                    external_id=place.external_id or None,
                    region=place.region,
                )
                made[key] = Reach(assumed, cluster_access(assumed, settings))
            return made[key]

    return reach


def environment_identities(
    reach: Callable[[str, Place], Reach], settings: Settings
) -> Callable[[str, Place], Families]:
    """The fault families of a team in one of its environments, pods included, all acting as the
    environment's role (made once for each reach)."""
    made: dict[Reach, Families] = {}
    lock = threading.Lock()

    def families(team: str, place: Place) -> Families:
        there = reach(team, place)
        with lock:
            if there not in made:
                made[there] = fault_families(there.clients, settings, there.clusters)
            return made[there]

    return families
