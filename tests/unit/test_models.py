from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from chaosplane.models import MAX_DURATION_SECONDS, TARGET_SPEC, ExperimentSpec

TARGET_ID = "5b0c8f3e-3a5d-4c55-9a8e-5c9d3f1f8b11"


def errors(model: type[BaseModel] | TypeAdapter[Any], payload: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        if isinstance(model, TypeAdapter):
            model.validate_python(payload)
        else:
            model.model_validate(payload)
    return str(caught.value)


def test_an_ec2_target_needs_a_selector_or_ids() -> None:
    assert "needs a selector, resource_ids" in errors(TARGET_SPEC, {"name": "x", "type": "ec2-instances"})
    assert TARGET_SPEC.validate_python({"name": "x", "type": "ec2-instances", "selector": "app=web"})
    assert TARGET_SPEC.validate_python(
        {"name": "x", "type": "ec2-instances", "resource_ids": ["i-0123456789abcdef0"]}
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"name": "x", "type": "ec2-instances", "selector": "app in (a"}, "invalid label selector"),
        ({"name": "x", "type": "ec2-instances", "resource_ids": ["web-1"]}, "not EC2 instance ids"),
        ({"name": "x", "type": "ec2-instances", "resource_ids": ["i-01234567", "i-01234567"]}, "duplicates"),
        ({"name": "x", "type": "ec2-instances", "selector": "a=b", "cluster": "c"}, "eks-pods targets only"),
        # eks-pods' own fields are required by its variant: the error names the field
        (
            {"name": "x", "type": "eks-pods", "selector": "app=web", "namespace": "shop"},
            "cluster\n  Field required",
        ),
        (
            {"name": "x", "type": "eks-pods", "selector": "app=web", "cluster": "c"},
            "namespace\n  Field required",
        ),
        (
            {"name": "x", "type": "eks-pods", "selector": "a", "cluster": "c", "namespace": "S"},
            "Kubernetes namespace",
        ),
        ({"name": "x", "type": "lambda-things", "selector": "a=b"}, "type"),
        ({"name": "", "type": "ec2-instances", "selector": "a=b"}, "name"),
        ({"name": "x", "type": "ec2-instances", "selector": "a=b", "colour": "red"}, "Extra inputs"),
    ],
)
def test_bad_targets_are_rejected(payload: dict, message: str) -> None:
    assert message in errors(TARGET_SPEC, payload)


def test_an_eks_target_is_accepted_and_kept() -> None:
    spec = TARGET_SPEC.validate_python(
        {
            "name": "web pods",
            "type": "eks-pods",
            "cluster": "prod",
            "namespace": "shop",
            "selector": "app=web",
        }
    )
    assert (spec.cluster, spec.namespace) == ("prod", "shop")


def experiment(**overrides: object) -> dict:
    return {"name": "e", "type": "ec2-stop", "target": TARGET_ID, "duration": 60, **overrides}


def test_experiment_defaults_and_normalisation() -> None:
    spec = ExperimentSpec.model_validate(experiment(selection="percent(50)"))
    assert spec.selection == "PERCENT(50)"
    assert spec.parameters == {"force": False}
    assert spec.stop_conditions == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"duration": 0}, "greater than or equal to 1"),
        ({"duration": MAX_DURATION_SECONDS + 1}, "less than or equal to"),
        ({"duration": "soon"}, "valid integer"),
        ({"selection": "HALF"}, "ALL, COUNT(n) or PERCENT(n)"),
        ({"target": "not-a-uuid"}, "target must be a target id"),
        ({"type": "ec2-melt"}, "type"),
        ({"parameters": {"force": "very"}}, "parameters.force"),
        ({"parameters": {"speed": 3}}, "parameters.speed"),
        ({"type": "ec2-reboot", "parameters": {"force": True}}, "parameters.force"),
        ({"stop_conditions": [f"a{n}" for n in range(11)]}, "at most 10"),
        ({"stop_conditions": ["cpu-high", "cpu-high"]}, "duplicates"),
        ({"owner": "me"}, "Extra inputs"),
    ],
)
def test_bad_experiments_are_rejected_by_field(overrides: dict, message: str) -> None:
    assert message in errors(ExperimentSpec, experiment(**overrides))


def test_stop_conditions_take_names_and_arns() -> None:
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-5xx"
    spec = ExperimentSpec.model_validate(experiment(stop_conditions=["latency-p99", arn]))
    assert spec.stop_conditions == ["latency-p99", arn]
