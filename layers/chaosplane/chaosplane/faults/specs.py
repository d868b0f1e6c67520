"""The API's experiment body: one variant per registered fault, chosen by `type`.

Why variants: with `type` an enum and `parameters` a dict, the OpenAPI document could not say
which parameters a fault takes, and a client learnt them from a 422. Each variant here types
`parameters` as its fault's own model (parameters.py) and, for an irreversible fault, requires
`allow_irreversible: true`, so the document shows what the server checks.

They are made from the catalogue, not written out: a fault registered there has its variant, and
its parameters have one definition. The API turns the variant it parsed into the flat
`ExperimentSpec` (models.py) that the store, the runs, the client and the CLI use; the wire
format is the same either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, create_model

from chaosplane.faults.base import Fault
from chaosplane.faults.catalogue import FAULTS
from chaosplane.graph import MultiStepExperiment
from chaosplane.models import ExperimentFields, ExperimentSpec
from chaosplane.probes import Probes


def _class_name(fault: Fault[Any, Any]) -> str:
    return "".join(part.capitalize() for part in fault.name.value.split("-")) + "Experiment"


def _takes_nothing_required(parameters: type[BaseModel]) -> bool:
    return not any(field.is_required() for field in parameters.model_fields.values())


def _variant(fault: Fault[Any, Any]) -> type[ExperimentFields]:
    parameters: Any = (
        (fault.parameters, Field(default_factory=fault.parameters))
        if _takes_nothing_required(fault.parameters)
        else (fault.parameters, ...)
    )
    consent: Any = (
        (Literal[True], Field(description="this fault cannot be rolled back: say that you know"))
        if fault.irreversible
        else (bool, Field(default=False, description="only for faults that cannot be rolled back"))
    )
    return create_model(
        _class_name(fault),
        __base__=ExperimentFields,
        __doc__=f"An experiment with {fault.name.value}: {fault.summary}.",
        type=(Literal[fault.name], ...),
        parameters=parameters,
        allow_irreversible=consent,
        probes=(Probes, Field(default_factory=list)),
    )


VARIANTS: tuple[type[ExperimentFields], ...] = tuple(_variant(fault) for fault in FAULTS.values())

MULTI_STEP = "multi-step"


def _kind(body: Any) -> str | None:
    """A body with `actions` is an experiment of many steps; any other is one fault, by `type`."""
    if isinstance(body, dict):
        return MULTI_STEP if body.get("actions") is not None else body.get("type")
    return MULTI_STEP if isinstance(body, MultiStepExperiment) else getattr(body, "type", None)


if TYPE_CHECKING:
    ExperimentBody = ExperimentFields | MultiStepExperiment
else:
    ExperimentBody = Annotated[
        Union[
            (
                *(Annotated[v, Tag(f.value)] for f, v in zip(FAULTS, VARIANTS, strict=True)),
                Annotated[MultiStepExperiment, Tag(MULTI_STEP)],
            )
        ],
        Discriminator(_kind),
    ]
"""What a client sends to create or replace an experiment: one fault by `type`, or many steps."""


def flat(body: ExperimentFields | MultiStepExperiment) -> ExperimentSpec:
    """The experiment the API parsed, as the store and the runs hold it."""
    if isinstance(body, MultiStepExperiment):
        return body.spec()
    return ExperimentSpec.model_validate(body.model_dump(mode="json"))
