"""Every fault's parameters: strict pydantic models, apart from the families that act on them.

This module imports pydantic and nothing else: the data model, the CLI and the client validate an
experiment's parameters through the catalogue without loading boto3 or the Kubernetes client
(tests/unit/test_fault_imports.py), and no family has to be imported to check a request.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

_INTERFACE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")
_SIZE = re.compile(r"^([1-9][0-9]{0,5}[KMG]|([1-9][0-9]?|100)%)$")


class Strict(BaseModel):
    """Unknown fields are errors and nothing is coerced: a typo in an experiment never runs silently."""

    model_config = ConfigDict(extra="forbid", strict=True)


class NoParameters(Strict):
    """A fault that takes none (ec2-reboot, ec2-terminate, ecs-stop-task, lambda-throttle, ...)."""


# -- EC2 -----------------------------------------------------------------------------------------


class Ec2StopParameters(Strict):
    force: bool = False
    """Stop without a clean OS shutdown (as `aws ec2 stop-instances --force`)."""


# -- RDS -----------------------------------------------------------------------------------------


class RdsRebootParameters(Strict):
    force_failover: bool = False
    """Reboot with a failover to the standby (Multi-AZ instances only; AWS refuses it otherwise)."""


class RdsFailoverParameters(Strict):
    target_instance: str | None = Field(default=None, min_length=1, max_length=63)
    """The reader to promote; AWS picks one when unset."""
    failback: bool = False
    """On rollback, fail over again to the original writer."""


# -- SSM -----------------------------------------------------------------------------------------


class SsmCpuStressParameters(Strict):
    cpu: int = Field(default=0, ge=0, le=1024, description="CPU stressors; 0 = one per CPU")
    load_percent: int = Field(default=100, ge=1, le=100)
    install_dependencies: bool = True


class SsmMemoryStressParameters(Strict):
    percent: int = Field(ge=1, le=100, description="of the instance's memory")
    workers: int = Field(default=1, ge=1, le=64)
    install_dependencies: bool = True


# -- http-endpoint -------------------------------------------------------------------------------


class WebhookParameters(Strict):
    payload: dict[str, JsonValue] = Field(
        default_factory=dict, description="handed to both webhooks as `parameters`, as is"
    )


# -- EKS pods ------------------------------------------------------------------------------------


class PodDeleteParameters(Strict):
    grace_period_seconds: int | None = Field(default=None, ge=0, le=3600)
    """None: the pod's own terminationGracePeriodSeconds; 0: kill at once."""


def _interface_name(value: str) -> str:
    if not _INTERFACE.match(value):
        raise ValueError("not a network interface name")
    return value


Interface = Annotated[str, AfterValidator(_interface_name)]


class PodNetworkLatencyParameters(Strict):
    delay_ms: int = Field(ge=1, le=60_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)
    interface: Interface = "eth0"

    @model_validator(mode="after")
    def _jitter_within_delay(self) -> PodNetworkLatencyParameters:
        if self.jitter_ms > self.delay_ms:
            raise ValueError("jitter_ms cannot exceed delay_ms (a packet cannot leave before it was sent)")
        return self


class PodNetworkLossParameters(Strict):
    loss_percent: float = Field(gt=0, le=100)
    interface: Interface = "eth0"


class PodCpuStressParameters(Strict):
    workers: int = Field(default=1, ge=1, le=64)
    load_percent: int = Field(default=80, ge=1, le=100)


class PodMemoryStressParameters(Strict):
    workers: int = Field(default=1, ge=1, le=16)
    size: str = Field(
        default="256M", description="in all, shared by the workers: 64M, 1G, or a share of memory like 50%"
    )

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _SIZE.match(value):
            raise ValueError("size is a number with K, M or G, or a percentage such as 50%")
        return value
