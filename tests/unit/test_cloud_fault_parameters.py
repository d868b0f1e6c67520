"""The cloud faults' parameters and targets, validated without any AWS."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaosplane.faults import catalogue, ssm
from chaosplane.faults.parameters import SsmMemoryStressParameters
from chaosplane.models import TARGET_SPEC, FaultType, check_webhook_url


@pytest.mark.parametrize(
    ("fault", "raw", "expected"),
    [
        (FaultType.EC2_TERMINATE, {}, {}),
        (FaultType.RDS_REBOOT, {}, {"force_failover": False}),
        (FaultType.RDS_FAILOVER, {"failback": True}, {"target_instance": None, "failback": True}),
        (FaultType.ECS_STOP_TASK, {}, {}),
        (FaultType.LAMBDA_THROTTLE, {}, {}),
        (FaultType.SSM_CPU_STRESS, {"cpu": 2}, {"cpu": 2, "load_percent": 100, "install_dependencies": True}),
        (
            FaultType.SSM_MEMORY_STRESS,
            {"percent": 50},
            {"percent": 50, "workers": 1, "install_dependencies": True},
        ),
        (FaultType.NETWORK_BLACKHOLE, {}, {}),
        (FaultType.HTTP_WEBHOOK, {"payload": {"a": [1, {"b": None}]}}, {"payload": {"a": [1, {"b": None}]}}),
    ],
)
def test_parameters_are_validated_and_defaulted(fault: FaultType, raw: dict, expected: dict) -> None:
    assert catalogue.validate_parameters(fault, raw) == expected


@pytest.mark.parametrize(
    ("fault", "raw", "message"),
    [
        (FaultType.EC2_TERMINATE, {"force": True}, "parameters.force"),
        (FaultType.RDS_REBOOT, {"force_failover": "yes"}, "parameters.force_failover"),
        (FaultType.SSM_CPU_STRESS, {"load_percent": 0}, "parameters.load_percent"),
        (FaultType.SSM_MEMORY_STRESS, {}, "parameters.percent"),
        (FaultType.SSM_MEMORY_STRESS, {"percent": 101}, "parameters.percent"),
        (FaultType.HTTP_WEBHOOK, {"payload": "x"}, "parameters.payload"),
    ],
)
def test_bad_parameters_name_the_parameter(fault: FaultType, raw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        catalogue.validate_parameters(fault, raw)


def test_only_terminating_and_deleting_are_irreversible() -> None:
    irreversible = {f for f, spec in catalogue.FAULTS.items() if spec.irreversible}
    assert irreversible == {FaultType.EC2_TERMINATE, FaultType.POD_DELETE}


def test_every_fault_has_a_family_target_type() -> None:
    for fault in FaultType:
        assert fault in catalogue.FAULTS, f"{fault.value} is not registered"


def test_ssm_documents_get_the_run_duration_as_strings() -> None:
    document, parameters = ssm.command_for(
        FaultType.SSM_MEMORY_STRESS, SsmMemoryStressParameters(percent=70, workers=2), 90
    )
    assert document == "AWSFIS-Run-Memory-Stress"
    assert parameters == {
        "DurationSeconds": ["90"],
        "Percent": ["70"],
        "Workers": ["2"],
        "InstallDependencies": ["True"],
    }
    assert len(ssm.marker("0" * 36)) <= 100  # SendCommand's Comment limit


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/x?team=a", "http://127.0.0.1:8080/inject", "http://[::1]:9/x"],
)
def test_webhook_urls_accepted(url: str) -> None:
    assert check_webhook_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x/y",
        "https://u:p@x/y",
        "https:///nohost",
        "https://x/y#frag",
        "http://169.254.169.254/",
        "//x/y",
    ],
)
def test_webhook_urls_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_webhook_url(url)


@pytest.mark.parametrize(
    "body",
    [
        {"type": "ecs-tasks", "cluster": "prod", "service": "web", "selector": "app=web"},
        {"type": "ecs-tasks", "cluster": "prod", "resource_ids": ["0123456789abcdef0123456789abcdef"]},
        {"type": "ecs-tasks", "cluster": "prod", "service": "web"},  # every task of the service
        {"type": "rds-clusters", "resource_ids": ["orders-prod"]},
        {"type": "lambda-functions", "resource_ids": ["arn:aws:lambda:us-east-1:123456789012:function:f"]},
        {"type": "subnets", "resource_ids": ["subnet-0123456789abcdef0"]},
    ],
)
def test_cloud_targets_accepted(body: dict) -> None:
    TARGET_SPEC.validate_python({"name": "t", **body})


@pytest.mark.parametrize(
    "body",
    [
        {"type": "ecs-tasks", "selector": "app=web"},
        {"type": "ecs-tasks", "cluster": "prod"},  # a whole cluster's tasks: never a target
        {"type": "ec2-instances", "service": "web"},
        {"type": "ec2-instances", "selector": "app=web", "service": "web"},
        {"type": "subnets", "resource_ids": ["vpc-0123456789abcdef0"]},
        {"type": "http-endpoint", "selector": "app=web"},
    ],
)
def test_cloud_targets_refused(body: dict) -> None:
    with pytest.raises(ValidationError):
        TARGET_SPEC.validate_python({"name": "t", **body})
