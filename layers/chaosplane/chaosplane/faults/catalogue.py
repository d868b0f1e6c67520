"""Fault type -> target type, parameter model, family. Pure data: no AWS client is built here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from chaosplane.faults import ec2
from chaosplane.models import FaultType, TargetType


@dataclass(frozen=True)
class FaultSpec:
    target_type: TargetType
    parameters: type[BaseModel]
    summary: str


FAULTS: dict[FaultType, FaultSpec] = {
    FaultType.EC2_STOP: FaultSpec(
        TargetType.EC2_INSTANCES, ec2.StopParameters, "stop instances; rollback starts them"
    ),
    FaultType.EC2_REBOOT: FaultSpec(
        TargetType.EC2_INSTANCES, ec2.RebootParameters, "reboot instances; nothing to roll back"
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
