"""Subnets: `network-blackhole` cuts a subnet off by swapping its network ACL association to an
empty ACL the platform creates (a new network ACL denies all traffic, in and out, until rules are
added). Rollback puts the original association back and deletes the platform's ACL.

Every ACL made here is tagged with the run (`chaosplane:run`) and the subnet (`chaosplane:subnet`):
rollback finds its own ACLs by those tags, so one created just before a crash (before its id was
known anywhere) is still found and deleted, and a sweep can list leftovers by the tag alone.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chaosplane.errors import NotEligible, TransientError
from chaosplane.faults.aws import Matcher, acting, attributes, error_code, pages, reading, tags_of, undoing
from chaosplane.faults.base import Journal, Resource
from chaosplane.graph import FILTER_PATHS
from chaosplane.models import FaultType, JournalEntry, Target, TargetType
from chaosplane.tenancy import TEAM_TAG

KIND = "ec2:subnet"
BLACKHOLE = "ec2:ReplaceNetworkAclAssociation"
RUN_TAG = "chaosplane:run"
SUBNET_TAG = "chaosplane:subnet"
SUBNET_PAGE = 200  # DescribeSubnets returns everything in one answer unless asked for pages


class Subnets:
    eligible_states = frozenset({"available"})

    def __init__(self, ec2: Any) -> None:
        self._ec2 = ec2

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        match = Matcher(target)
        filters = match.tag_filters()
        if target.resource_ids:
            filters.append({"Name": "subnet-id", "Values": list(target.resource_ids)})
        resources = []
        paging = {"PageSize": SUBNET_PAGE}
        for page in pages(self._ec2, "describe_subnets", Filters=filters, PaginationConfig=paging):
            for subnet in page["Subnets"]:
                tags = tags_of(subnet.get("Tags"))
                if not match([subnet["SubnetId"]], tags):
                    continue
                resources.append(
                    Resource(
                        id=subnet["SubnetId"],
                        kind=KIND,
                        state=str(subnet.get("State", "available")),
                        labels=tags,
                        detail={
                            "vpc_id": subnet["VpcId"],
                            "cidr": subnet.get("CidrBlock", ""),
                            "availability_zone": subnet.get("AvailabilityZone", ""),
                        },
                        attributes=attributes(subnet, FILTER_PATHS[TargetType.SUBNETS]),
                    )
                )
        return resources

    def blackhole(self, resource: Resource, journal: Journal) -> str:
        subnet = self._subnet(resource.id)
        state = "deleted" if subnet is None else str(subnet.get("State", "available"))
        if subnet is None or state != "available":
            raise NotEligible(f"{resource.id} is {state} now, not available")
        acl, association = self._association(resource.id)
        if acl is None or association is None:
            raise NotEligible(f"{resource.id} has no network ACL association")
        holder = tags_of(acl.get("Tags")).get(RUN_TAG)
        if holder is not None:
            raise NotEligible(f"{resource.id} is already blackholed (by run {holder})")
        entry = journal.before_change(
            resource,
            BLACKHOLE,
            {"state": state, "vpc_id": subnet["VpcId"], "original_acl_id": acl["NetworkAclId"]},
        )
        tags = [
            {"Key": RUN_TAG, "Value": journal.run.result_id},
            {"Key": SUBNET_TAG, "Value": resource.id},
            {"Key": "Name", "Value": f"chaosplane blackhole of {resource.id}"},
        ]
        if team := resource.labels.get(TEAM_TAG):
            # The team's own, as its subnet is: a team's identity may create only ACLs tagged so.
            tags.append({"Key": TEAM_TAG, "Value": team})
        created = acting(
            self._ec2.create_network_acl,
            "create_network_acl",
            resource.id,
            VpcId=subnet["VpcId"],
            TagSpecifications=[{"ResourceType": "network-acl", "Tags": tags}],
        )
        blackhole = created["NetworkAcl"]["NetworkAclId"]
        acting(
            self._ec2.replace_network_acl_association,
            "replace_network_acl_association",
            resource.id,
            AssociationId=association,
            NetworkAclId=blackhole,
        )
        journal.applied(entry)
        return f"blackholed ({blackhole}, was {acl['NetworkAclId']})"

    def restore(self, entry: JournalEntry) -> str:
        ours = self._ours(entry)
        original = str(entry.prior_state.get("original_acl_id"))
        outcome = f"{original} restored"
        acl, association = self._association(entry.resource_id)
        if acl is not None and association is not None and acl["NetworkAclId"] in ours:
            restore_to = original if self._acl_exists(original) else self._default_acl(entry)
            undoing(
                self._ec2.replace_network_acl_association, AssociationId=association, NetworkAclId=restore_to
            )
            outcome = f"{restore_to} restored" + ("" if restore_to == original else " (the original is gone)")
        elif acl is not None:
            # Never swapped (the call failed), or already restored, or changed since by someone else.
            outcome = f"{acl['NetworkAclId']} associated"
        else:
            outcome = "subnet gone"
        for acl_id in ours:
            try:
                undoing(self._ec2.delete_network_acl, NetworkAclId=acl_id)
            except ClientError as err:
                if error_code(err) == "InvalidNetworkAclID.NotFound":
                    continue
                if error_code(err) == "DependencyViolation":
                    raise TransientError(f"{acl_id} is still associated; deleting it again") from err
                raise
        return outcome

    def _ours(self, entry: JournalEntry) -> list[str]:
        filters = [
            {"Name": f"tag:{RUN_TAG}", "Values": [entry.result_id]},
            {"Name": f"tag:{SUBNET_TAG}", "Values": [entry.resource_id]},
        ]
        return [
            acl["NetworkAclId"]
            for page in pages(self._ec2, "describe_network_acls", Filters=filters)
            for acl in page["NetworkAcls"]
        ]

    def _subnet(self, subnet_id: str) -> dict[str, Any] | None:
        try:
            found = reading(self._ec2.describe_subnets, SubnetIds=[subnet_id])
        except ClientError as err:
            if error_code(err) == "InvalidSubnetID.NotFound":
                return None
            raise
        subnets: list[dict[str, Any]] = found["Subnets"]
        return subnets[0] if subnets else None

    def _association(self, subnet_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """The ACL associated with the subnet now, and the id of that association."""
        filters = [{"Name": "association.subnet-id", "Values": [subnet_id]}]
        for acl in reading(self._ec2.describe_network_acls, Filters=filters)["NetworkAcls"]:
            for association in acl.get("Associations", []):
                if association.get("SubnetId") == subnet_id:
                    return acl, str(association["NetworkAclAssociationId"])
        return None, None

    def _acl_exists(self, acl_id: str) -> bool:
        try:
            reading(self._ec2.describe_network_acls, NetworkAclIds=[acl_id])
        except ClientError as err:
            if error_code(err) == "InvalidNetworkAclID.NotFound":
                return False
            raise
        return True

    def _default_acl(self, entry: JournalEntry) -> str:
        filters = [
            {"Name": "vpc-id", "Values": [str(entry.prior_state.get("vpc_id"))]},
            {"Name": "default", "Values": ["true"]},
        ]
        (acl,) = reading(self._ec2.describe_network_acls, Filters=filters)["NetworkAcls"]
        return str(acl["NetworkAclId"])
