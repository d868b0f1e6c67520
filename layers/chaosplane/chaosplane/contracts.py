"""The API's requests and answers that are not domain models, defined once for server and client.

The routers in `chaosplane.api` declare them in the OpenAPI document; `chaosplane.client` parses
the answers with the same classes, so the two cannot drift. Nothing here imports an SDK.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chaosplane.models import Experiment, Lever, RunStatus, Target


class RunRequest(BaseModel):
    """Optional: without a body, the run plans anew (and may sample other resources than a preview)."""

    model_config = ConfigDict(extra="forbid")

    plan_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        description="a preview's plan: the run hits exactly its resources, or is refused with 409",
    )


class RunAccepted(BaseModel):
    result_id: str
    status: RunStatus


class LeverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["team", "all"] = "team"


class LeverResult(BaseModel):
    lever: Lever | None = None
    halting: list[str] = Field(
        default_factory=list,
        description="the runs in progress when the lever was engaged: each is being halted "
        "(the sweeper halts, every minute, any run of an engaged team left)",
    )


class StopConditionState(BaseModel):
    alarm: str
    state: str = Field(description="OK, ALARM, INSUFFICIENT_DATA or MISSING")
    reason: str = ""


class FisImported(BaseModel):
    """What `POST /experiments/import` created from an AWS FIS experiment template."""

    experiment: Experiment
    targets: dict[str, Target] = Field(description="the targets created, by the template's target name")
    notes: list[str] = Field(default_factory=list, description="what the import accepted and left out")
