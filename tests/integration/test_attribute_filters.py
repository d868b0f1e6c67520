"""What the families resolve carries the attributes multi-step targets filter on, read from the
real Describe responses (moto's), so a filter by zone or VPC picks the resources it names."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chaosplane.faults.ec2 import Ec2Instances
from chaosplane.faults.network import Subnets
from chaosplane.faults.rds import RdsInstances
from chaosplane.graph import FILTER_PATHS, AttributeFilter, passes
from chaosplane.models import FaultType, Target, TargetType

REGION = "us-east-1"
NOW = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def ec2() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _target(kind: TargetType) -> Target:
    return Target(
        id="t", team="red", name="web", type=kind, selector="tier=web", created_at=NOW, updated_at=NOW
    )


def _web_tier(ec2: Any) -> dict[str, str]:
    """A VPC with a web subnet in each of two zones and one instance in each; subnet id by zone."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for index, zone in enumerate(("us-east-1a", "us-east-1b")):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone)["Subnet"]
        subnets[zone] = subnet["SubnetId"]
        ec2.create_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": "tier", "Value": "web"}])
        ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            SubnetId=subnet["SubnetId"],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "tier", "Value": "web"}]}],
        )
    return subnets


def test_instances_carry_their_zone_vpc_and_subnet(ec2: Any) -> None:
    subnets = _web_tier(ec2)
    resources = Ec2Instances(ec2).resolve(_target(TargetType.EC2_INSTANCES), FaultType.EC2_STOP)

    assert {r.attributes["Placement.AvailabilityZone"] for r in resources} == {"us-east-1a", "us-east-1b"}
    for resource in resources:
        assert set(resource.attributes) <= set(FILTER_PATHS[TargetType.EC2_INSTANCES])
        zone = resource.attributes["Placement.AvailabilityZone"]
        assert resource.attributes["SubnetId"] == subnets[zone]
        assert resource.attributes["InstanceType"] == "t3.micro"
        assert resource.attributes["State.Name"] == "running"
    in_zone_a = [
        r
        for r in resources
        if passes(r, [AttributeFilter(path="Placement.AvailabilityZone", values=["us-east-1a"])])
    ]
    assert [r.attributes["SubnetId"] for r in in_zone_a] == [subnets["us-east-1a"]]


def test_subnets_carry_their_zone_and_vpc(ec2: Any) -> None:
    subnets = _web_tier(ec2)
    resources = Subnets(ec2).resolve(_target(TargetType.SUBNETS), FaultType.NETWORK_BLACKHOLE)

    by_zone = {r.attributes["AvailabilityZone"]: r for r in resources}
    assert {zone: r.id for zone, r in by_zone.items()} == subnets
    assert len({r.attributes["VpcId"] for r in resources}) == 1
    assert by_zone["us-east-1b"].attributes["CidrBlock"] == "10.0.1.0/24"


def test_rds_instances_carry_their_zone_engine_and_class() -> None:
    with mock_aws():
        rds = boto3.client("rds", region_name=REGION)
        for name, zone in (("orders-a", "us-east-1a"), ("orders-b", "us-east-1b")):
            rds.create_db_instance(
                DBInstanceIdentifier=name,
                DBInstanceClass="db.t3.micro",
                Engine="postgres",
                AvailabilityZone=zone,
                MasterUsername="admin",
                MasterUserPassword="not-a-secret-1",
                AllocatedStorage=20,
                Tags=[{"Key": "tier", "Value": "web"}],
            )
        resources = RdsInstances(rds).resolve(_target(TargetType.RDS_INSTANCES), FaultType.RDS_REBOOT)

    by_id = {r.id: r.attributes for r in resources}
    assert by_id["orders-a"]["AvailabilityZone"] == "us-east-1a"
    assert by_id["orders-b"]["AvailabilityZone"] == "us-east-1b"
    assert {a["Engine"] for a in by_id.values()} == {"postgres"}
    assert {a["DBInstanceClass"] for a in by_id.values()} == {"db.t3.micro"}
    assert {a["MultiAZ"] for a in by_id.values()} == {"false"}  # booleans as FIS compares them
    zone_b = AttributeFilter(path="AvailabilityZone", values=["us-east-1b"])
    assert [r.id for r in resources if passes(r, [zone_b])] == ["orders-b"]
