"""Query parameters shared by every list endpoint, and the path parameters that name a resource."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from chaosplane.faults import specs
from chaosplane.models import TargetSpec
from chaosplane.store import MAX_PAGE

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
NextToken = Annotated[str | None, Query(max_length=2048, description="next_token of the previous page")]

# Targets and experiments are named by the UUIDs the store gives them; any other id is no such
# resource (404), which the document declares, so the format is a fact, not a check.
_UUID = {"format": "uuid"}
TargetId = Annotated[str, Path(description="a target's id", json_schema_extra=_UUID)]
ExperimentId = Annotated[str, Path(description="an experiment's id", json_schema_extra=_UUID)]
ScheduleId = Annotated[
    str, Path(description="a schedule's id", json_schema_extra={"pattern": r"^[0-9a-f]{12}$"})
]

# Tagged unions are not models, so Powertools must be told they are the body.
TargetBody = Annotated[TargetSpec, Body(description="a target, by `type`")]
ExperimentBody = Annotated[
    specs.ExperimentBody, Body(description="an experiment: one fault, by `type`, or steps, with `actions`")
]
FisTemplateBody = Annotated[
    dict[str, Any],
    Body(description="an AWS FIS experiment template (GetExperimentTemplate's answer, or its input)"),
]
