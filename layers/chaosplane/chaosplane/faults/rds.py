"""RDS: `rds-reboot` (DB instances) and `rds-failover` (Aurora / Multi-AZ DB clusters).

A reboot undoes itself: rollback records the state the instance ended in. A failover moves the
writer to a reader; rollback records the new writer and fails back to the original one only when
the experiment asks for it (`failback: true`): after a failover the new topology is usually what
an operator wants to keep, and a second failover is a second outage.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chaosplane.errors import InjectionFailed, NotEligible, TransientError
from chaosplane.faults.aws import Matcher, acting, attributes, error_code, pages, reading, tags_of
from chaosplane.faults.base import Journal, Resource
from chaosplane.faults.parameters import RdsFailoverParameters, RdsRebootParameters
from chaosplane.graph import FILTER_PATHS
from chaosplane.models import FaultType, JournalEntry, Target, TargetType

INSTANCE = "rds:db"
CLUSTER = "rds:cluster"
REBOOT = "rds:RebootDBInstance"
FAILOVER = "rds:FailoverDBCluster"
NO_READER = "available-without-reader"


class RdsInstances:
    eligible_states = frozenset({"available"})

    def __init__(self, rds: Any) -> None:
        self._rds = rds

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        match = Matcher(target)
        kwargs: dict[str, Any] = {}
        if target.resource_ids:
            kwargs["Filters"] = [{"Name": "db-instance-id", "Values": list(target.resource_ids)}]
        resources = []
        for page in pages(self._rds, "describe_db_instances", **kwargs):
            for db in page["DBInstances"]:
                tags = tags_of(db.get("TagList"))
                if not match([db["DBInstanceIdentifier"], db.get("DBInstanceArn", "")], tags):
                    continue
                resources.append(
                    Resource(
                        id=db["DBInstanceIdentifier"],
                        kind=INSTANCE,
                        state=db["DBInstanceStatus"],
                        labels=tags,
                        detail={
                            "engine": db.get("Engine", ""),
                            "multi_az": bool(db.get("MultiAZ")),
                            "cluster": db.get("DBClusterIdentifier"),
                        },
                        attributes=attributes(db, FILTER_PATHS[TargetType.RDS_INSTANCES]),
                    )
                )
        return resources

    def reboot(self, resource: Resource, parameters: RdsRebootParameters, journal: Journal) -> str:
        state = self.state(resource.id)
        if state != "available":
            raise NotEligible(f"{resource.id} is {state} now, not available")
        entry = journal.before_change(resource, REBOOT, {"state": state})
        kwargs: dict[str, Any] = {"DBInstanceIdentifier": resource.id}
        if parameters.force_failover:
            kwargs["ForceFailover"] = True
        response = acting(self._rds.reboot_db_instance, "reboot_db_instance", resource.id, **kwargs)
        journal.applied(entry)
        return str(response["DBInstance"].get("DBInstanceStatus", "rebooting"))

    def state(self, identifier: str) -> str:
        """The DB instance's status now ("deleted" for one that no longer exists)."""
        try:
            found = reading(self._rds.describe_db_instances, DBInstanceIdentifier=identifier)
        except ClientError as err:
            if error_code(err) == "DBInstanceNotFound":
                return "deleted"
            raise
        return str(found["DBInstances"][0]["DBInstanceStatus"])


def _writer(cluster: dict[str, Any]) -> str | None:
    return next(
        (m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if m["IsClusterWriter"]), None
    )


def _readers(cluster: dict[str, Any]) -> list[str]:
    return [
        m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []) if not m["IsClusterWriter"]
    ]


def _cluster_state(cluster: dict[str, Any]) -> str:
    status = str(cluster.get("Status", "unknown"))
    # A failover needs somewhere to go: a cluster with no reader is not eligible, and says why.
    return NO_READER if status == "available" and not _readers(cluster) else status


class RdsClusters:
    eligible_states = frozenset({"available"})

    def __init__(self, rds: Any) -> None:
        self._rds = rds

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        match = Matcher(target)
        kwargs: dict[str, Any] = {}
        if target.resource_ids:
            kwargs["Filters"] = [{"Name": "db-cluster-id", "Values": list(target.resource_ids)}]
        resources = []
        for page in pages(self._rds, "describe_db_clusters", **kwargs):
            for cluster in page["DBClusters"]:
                tags = tags_of(cluster.get("TagList"))
                if not match([cluster["DBClusterIdentifier"], cluster.get("DBClusterArn", "")], tags):
                    continue
                resources.append(
                    Resource(
                        id=cluster["DBClusterIdentifier"],
                        kind=CLUSTER,
                        state=_cluster_state(cluster),
                        labels=tags,
                        detail={
                            "engine": cluster.get("Engine", ""),
                            "writer": _writer(cluster),
                            "readers": _readers(cluster),
                        },
                        attributes=attributes(cluster, FILTER_PATHS[TargetType.RDS_CLUSTERS]),
                    )
                )
        return resources

    def failover(self, resource: Resource, parameters: RdsFailoverParameters, journal: Journal) -> str:
        cluster = self._cluster(resource.id)
        state = "deleted" if cluster is None else _cluster_state(cluster)
        if cluster is None or state != "available":
            raise NotEligible(f"{resource.id} is {state} now, not available with a reader")
        writer = _writer(cluster)
        if parameters.target_instance is not None and parameters.target_instance not in _readers(cluster):
            raise InjectionFailed(
                f"target_instance {parameters.target_instance} is not a reader of {resource.id} "
                f"(readers: {', '.join(_readers(cluster))})"
            )
        entry = journal.before_change(
            resource, FAILOVER, {"state": state, "writer": writer, "failback": parameters.failback}
        )
        kwargs: dict[str, Any] = {"DBClusterIdentifier": resource.id}
        if parameters.target_instance is not None:
            kwargs["TargetDBInstanceIdentifier"] = parameters.target_instance
        response = acting(self._rds.failover_db_cluster, "failover_db_cluster", resource.id, **kwargs)
        journal.applied(entry)
        after = response["DBCluster"]
        return f"{after.get('Status', 'failing-over')}, writer {_writer(after) or 'unknown'}"

    def failback(self, entry: JournalEntry) -> str:
        """Record the new writer; fail back to the original one only if the experiment asked to."""
        cluster = self._cluster(entry.resource_id)
        if cluster is None:
            return "deleted"
        status, writer = str(cluster.get("Status")), _writer(cluster)
        original = entry.prior_state.get("writer")
        if not entry.prior_state.get("failback") or writer == original:
            return f"{status}, writer {writer}"  # the new writer stays (or it is back already)
        if status != "available":
            raise TransientError(f"{entry.resource_id} is {status}; failing back once it is available")
        members = {m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])}
        if original not in members:
            return f"{status}, writer {writer} (the original writer {original} is gone)"
        acting(
            self._rds.failover_db_cluster,
            "failover_db_cluster (failback)",
            entry.resource_id,
            DBClusterIdentifier=entry.resource_id,
            TargetDBInstanceIdentifier=original,
        )
        after = self._cluster(entry.resource_id) or {}
        return f"{after.get('Status', 'failing-over')}, failing back to writer {original}"

    def _cluster(self, identifier: str) -> dict[str, Any] | None:
        try:
            found = reading(self._rds.describe_db_clusters, DBClusterIdentifier=identifier)
        except ClientError as err:
            if error_code(err) == "DBClusterNotFoundFault":
                return None
            raise
        clusters: list[dict[str, Any]] = found["DBClusters"]
        return clusters[0] if clusters else None
