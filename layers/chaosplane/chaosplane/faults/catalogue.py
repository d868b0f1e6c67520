"""The fault catalogue: every fault, one registered `Fault` (base.py) each.

A fault says what it is called, which target type it hits, its parameters (`parameters.py`),
whether rollback can undo it, and how it is injected and rolled back through its family. The run
looks the fault up here (for a rollback, the fault that wrote the journal entry), asks the wiring
for the family, and hands the family to the fault. The API, the run and the OpenAPI document pick
every fault up from here.

This module imports neither boto3 nor kubernetes (tests/unit/test_fault_imports.py): the data
model validates experiments through it, so the CLI and the client can too without the SDKs. The
families' types are imported for mypy only; at run time the wiring builds them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from chaosplane.faults.base import FamilyT, Fault, ParametersT
from chaosplane.faults.parameters import (
    Ec2StopParameters,
    NoParameters,
    PodCpuStressParameters,
    PodDeleteParameters,
    PodMemoryStressParameters,
    PodNetworkLatencyParameters,
    PodNetworkLossParameters,
    RdsFailoverParameters,
    RdsRebootParameters,
    SsmCpuStressParameters,
    SsmMemoryStressParameters,
    WebhookParameters,
)
from chaosplane.models import FaultType, TargetType

if TYPE_CHECKING:
    from chaosplane.faults.ec2 import Ec2Instances
    from chaosplane.faults.ecs import EcsTasks
    from chaosplane.faults.eks import EksPods
    from chaosplane.faults.http import HttpEndpoints
    from chaosplane.faults.lambdas import LambdaFunctions
    from chaosplane.faults.network import Subnets
    from chaosplane.faults.rds import RdsClusters, RdsInstances
    from chaosplane.faults.ssm import SsmStress

FAULTS: dict[FaultType, Fault[Any, Any]] = {}


def register(fault: Fault[FamilyT, ParametersT]) -> Fault[FamilyT, ParametersT]:
    if fault.name in FAULTS:
        raise ValueError(f"{fault.name.value} is registered twice")
    FAULTS[fault.name] = fault
    return fault


# -- EC2 instances -------------------------------------------------------------------------------

EC2_STOP: Fault[Ec2Instances, Ec2StopParameters] = register(
    Fault(
        FaultType.EC2_STOP,
        TargetType.EC2_INSTANCES,
        Ec2StopParameters,
        "stop instances; rollback starts them",
        inject=lambda ec2, resource, parameters, journal: ec2.stop(resource, parameters.force, journal),
        rollback=lambda ec2, entry: ec2.start_again(entry),
    )
)
EC2_REBOOT: Fault[Ec2Instances, NoParameters] = register(
    Fault(
        FaultType.EC2_REBOOT,
        TargetType.EC2_INSTANCES,
        NoParameters,
        "reboot instances; nothing to roll back",
        inject=lambda ec2, resource, _, journal: ec2.reboot(resource, journal),
        rollback=lambda ec2, entry: ec2.state(entry.resource_id),  # a reboot undoes itself
        instant=True,
    )
)
EC2_TERMINATE: Fault[Ec2Instances, NoParameters] = register(
    Fault(
        FaultType.EC2_TERMINATE,
        TargetType.EC2_INSTANCES,
        NoParameters,
        "terminate instances; IRREVERSIBLE",
        inject=lambda ec2, resource, _, journal: ec2.terminate(resource, journal),
        rollback=lambda ec2, entry: ec2.state(entry.resource_id),  # cannot be undone: where it ended
        irreversible=True,
        instant=True,
    )
)

# -- SSM Run Command on EC2 instances ------------------------------------------------------------

SSM_CPU_STRESS: Fault[SsmStress, SsmCpuStressParameters] = register(
    Fault(
        FaultType.SSM_CPU_STRESS,
        TargetType.EC2_INSTANCES,
        SsmCpuStressParameters,
        "CPU stress via SSM; rollback cancels it",
        inject=lambda ssm, resource, parameters, journal: ssm.stress(
            FaultType.SSM_CPU_STRESS, resource, parameters, journal
        ),
        rollback=lambda ssm, entry: ssm.cancel(entry),
    )
)
SSM_MEMORY_STRESS: Fault[SsmStress, SsmMemoryStressParameters] = register(
    Fault(
        FaultType.SSM_MEMORY_STRESS,
        TargetType.EC2_INSTANCES,
        SsmMemoryStressParameters,
        "memory stress via SSM; rollback cancels it",
        inject=lambda ssm, resource, parameters, journal: ssm.stress(
            FaultType.SSM_MEMORY_STRESS, resource, parameters, journal
        ),
        rollback=lambda ssm, entry: ssm.cancel(entry),
    )
)

# -- RDS, ECS, Lambda, subnets -------------------------------------------------------------------

RDS_REBOOT: Fault[RdsInstances, RdsRebootParameters] = register(
    Fault(
        FaultType.RDS_REBOOT,
        TargetType.RDS_INSTANCES,
        RdsRebootParameters,
        "reboot DB instances (optionally with failover)",
        inject=lambda rds, resource, parameters, journal: rds.reboot(resource, parameters, journal),
        rollback=lambda rds, entry: rds.state(entry.resource_id),  # a reboot undoes itself
        instant=True,
    )
)
RDS_FAILOVER: Fault[RdsClusters, RdsFailoverParameters] = register(
    Fault(
        FaultType.RDS_FAILOVER,
        TargetType.RDS_CLUSTERS,
        RdsFailoverParameters,
        "fail over DB clusters; rollback records the writer",
        inject=lambda rds, resource, parameters, journal: rds.failover(resource, parameters, journal),
        rollback=lambda rds, entry: rds.failback(entry),
        instant=lambda parameters: not parameters.failback,  # a failback is held until the rollback
    )
)
ECS_STOP_TASK: Fault[EcsTasks, NoParameters] = register(
    Fault(
        FaultType.ECS_STOP_TASK,
        TargetType.ECS_TASKS,
        NoParameters,
        "stop service tasks; the service replaces them",
        inject=lambda ecs, resource, _, journal: ecs.stop(resource, journal),
        rollback=lambda ecs, entry: ecs.task_state(entry),
        instant=True,
    )
)
LAMBDA_THROTTLE: Fault[LambdaFunctions, NoParameters] = register(
    Fault(
        FaultType.LAMBDA_THROTTLE,
        TargetType.LAMBDA_FUNCTIONS,
        NoParameters,
        "reserved concurrency 0; rollback restores it",
        inject=lambda functions, resource, _, journal: functions.throttle(resource, journal),
        rollback=lambda functions, entry: functions.restore(entry),
    )
)
NETWORK_BLACKHOLE: Fault[Subnets, NoParameters] = register(
    Fault(
        FaultType.NETWORK_BLACKHOLE,
        TargetType.SUBNETS,
        NoParameters,
        "deny-all network ACL on subnets; rollback restores",
        inject=lambda subnets, resource, _, journal: subnets.blackhole(resource, journal),
        rollback=lambda subnets, entry: subnets.restore(entry),
    )
)

# -- http-endpoint -------------------------------------------------------------------------------

HTTP_WEBHOOK: Fault[HttpEndpoints, WebhookParameters] = register(
    Fault(
        FaultType.HTTP_WEBHOOK,
        TargetType.HTTP_ENDPOINT,
        WebhookParameters,
        "signed inject webhook; rollback webhook undoes it",
        inject=lambda endpoints, resource, parameters, journal: endpoints.call_inject(
            resource, parameters, journal
        ),
        rollback=lambda endpoints, entry: endpoints.call_rollback(entry),
    )
)

# -- EKS pods ------------------------------------------------------------------------------------

POD_DELETE: Fault[EksPods, PodDeleteParameters] = register(
    Fault(
        FaultType.POD_DELETE,
        TargetType.EKS_PODS,
        PodDeleteParameters,
        "delete pods; their controller may replace them, which the result records",
        inject=lambda pods, resource, parameters, journal: pods.delete(resource, parameters, journal),
        rollback=lambda pods, entry: pods.replacement(entry),
        irreversible=True,
        instant=True,
    )
)


def _in_pod(fault: FaultType, parameters: type[BaseModel], summary: str) -> Fault[EksPods, BaseModel]:
    """An in-pod fault: a payload in an ephemeral container, which rollback stops."""
    return register(
        Fault(
            fault,
            TargetType.EKS_PODS,
            parameters,
            summary,
            inject=lambda pods, resource, chosen, journal: pods.add_payload(fault, resource, chosen, journal),
            rollback=lambda pods, entry: pods.stop_payload(entry),
        )
    )


POD_NETWORK_LATENCY = _in_pod(
    FaultType.POD_NETWORK_LATENCY,
    PodNetworkLatencyParameters,
    "delay the pods' traffic (tc netem in an ephemeral container); rollback ends it",
)
POD_NETWORK_LOSS = _in_pod(
    FaultType.POD_NETWORK_LOSS,
    PodNetworkLossParameters,
    "drop a share of the pods' packets (tc netem in an ephemeral container); rollback ends it",
)
POD_CPU_STRESS = _in_pod(
    FaultType.POD_CPU_STRESS,
    PodCpuStressParameters,
    "load the pods' CPUs (stress-ng in an ephemeral container); rollback ends it",
)
POD_MEMORY_STRESS = _in_pod(
    FaultType.POD_MEMORY_STRESS,
    PodMemoryStressParameters,
    "fill the pods' memory (stress-ng in an ephemeral container); rollback ends it",
)


def spec(fault: FaultType) -> Fault[Any, Any]:
    """The registered fault: its target type, parameters and summary, and how it is done and undone."""
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
