"""Fault type -> target type, parameter model, family. Pure data: no AWS client is built here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from chaosplane.faults import ec2, ecs, eks, http, lambdas, network, rds, ssm
from chaosplane.models import FaultType, TargetType


@dataclass(frozen=True)
class FaultSpec:
    target_type: TargetType
    parameters: type[BaseModel]
    summary: str
    irreversible: bool = False
    """Rollback cannot undo it (only report what happened since): needs `allow_irreversible: true`."""


FAULTS: dict[FaultType, FaultSpec] = {
    FaultType.EC2_STOP: FaultSpec(
        TargetType.EC2_INSTANCES, ec2.StopParameters, "stop instances; rollback starts them"
    ),
    FaultType.EC2_REBOOT: FaultSpec(
        TargetType.EC2_INSTANCES, ec2.RebootParameters, "reboot instances; nothing to roll back"
    ),
    FaultType.POD_DELETE: FaultSpec(
        TargetType.EKS_PODS,
        eks.PodDeleteParameters,
        "delete pods; their controller may replace them, which the result records",
        irreversible=True,
    ),
    FaultType.POD_NETWORK_LATENCY: FaultSpec(
        TargetType.EKS_PODS,
        eks.NetworkLatencyParameters,
        "delay the pods' traffic (tc netem in an ephemeral container); rollback ends it",
    ),
    FaultType.POD_NETWORK_LOSS: FaultSpec(
        TargetType.EKS_PODS,
        eks.NetworkLossParameters,
        "drop a share of the pods' packets (tc netem in an ephemeral container); rollback ends it",
    ),
    FaultType.POD_CPU_STRESS: FaultSpec(
        TargetType.EKS_PODS,
        eks.CpuStressParameters,
        "load the pods' CPUs (stress-ng in an ephemeral container); rollback ends it",
    ),
    FaultType.POD_MEMORY_STRESS: FaultSpec(
        TargetType.EKS_PODS,
        eks.MemoryStressParameters,
        "fill the pods' memory (stress-ng in an ephemeral container); rollback ends it",
    ),
    # Cloud and external faults.
    FaultType.EC2_TERMINATE: FaultSpec(
        TargetType.EC2_INSTANCES,
        ec2.TerminateParameters,
        "terminate instances; IRREVERSIBLE",
        irreversible=True,
    ),
    FaultType.RDS_REBOOT: FaultSpec(
        TargetType.RDS_INSTANCES, rds.RebootParameters, "reboot DB instances (optionally with failover)"
    ),
    FaultType.RDS_FAILOVER: FaultSpec(
        TargetType.RDS_CLUSTERS, rds.FailoverParameters, "fail over DB clusters; rollback records the writer"
    ),
    FaultType.ECS_STOP_TASK: FaultSpec(
        TargetType.ECS_TASKS, ecs.StopTaskParameters, "stop service tasks; the service replaces them"
    ),
    FaultType.LAMBDA_THROTTLE: FaultSpec(
        TargetType.LAMBDA_FUNCTIONS,
        lambdas.ThrottleParameters,
        "reserved concurrency 0; rollback restores it",
    ),
    FaultType.SSM_CPU_STRESS: FaultSpec(
        TargetType.EC2_INSTANCES, ssm.CpuStressParameters, "CPU stress via SSM; rollback cancels it"
    ),
    FaultType.SSM_MEMORY_STRESS: FaultSpec(
        TargetType.EC2_INSTANCES, ssm.MemoryStressParameters, "memory stress via SSM; rollback cancels it"
    ),
    FaultType.NETWORK_BLACKHOLE: FaultSpec(
        TargetType.SUBNETS, network.BlackholeParameters, "deny-all network ACL on subnets; rollback restores"
    ),
    FaultType.HTTP_WEBHOOK: FaultSpec(
        TargetType.HTTP_ENDPOINT, http.WebhookParameters, "signed inject webhook; rollback webhook undoes it"
    ),
}


def spec(fault: FaultType) -> FaultSpec:
    return FAULTS[fault]


def parse_parameters(fault: FaultType, raw: dict[str, Any]) -> BaseModel:
    return FAULTS[fault].parameters.model_validate(raw)


def validate_parameters(fault: FaultType, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate `raw` for `fault`, with messages that name the parameter at fault."""
    try:
        return parse_parameters(fault, raw).model_dump(mode="json")
    except ValidationError as err:
        problems = "; ".join(
            f"parameters.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ValueError(f"invalid parameters for {fault.value}: {problems}") from None
