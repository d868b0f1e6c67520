"""Create every resource of template.yaml in the embedded AWS, by API calls.

Tables, functions (with their environment, CodeUri and handler) and the state machine (with its
DefinitionSubstitutions) all come from the template; there is no second list to keep in step.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from chaosplane.local import lambda_patch
from chaosplane.local.template import ACCOUNT_ID, Names, load_template

LOCAL_ROLE = "chaosplane-local"


class TemplateConflict(ValueError):
    """Two functions need different values for one environment variable (see REFERENCE: one process)."""


@dataclass
class Deployment:
    names: Names
    tables: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def function_for_api(self) -> str:
        """The function that serves the REST API (the one with Api events)."""
        for logical_id, resource in self.names.of_type("AWS::Serverless::Function").items():
            events = resource.get("Properties", {}).get("Events", {})
            if any(event.get("Type") == "Api" for event in events.values()):
                return self.functions[logical_id]
        raise LookupError("template.yaml has no function with an Api event")

    @property
    def state_machine_arn(self) -> str:
        (arn,) = self.state_machines.values()
        return arn


def _table_request(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in properties:
        request["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if properties.get("SSESpecification", {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    return request


def _placeholder_zip() -> bytes:
    # The code runs from CodeUri in this process (lambda_patch); moto still wants a package.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code is loaded from CodeUri by chaosplane.local.lambda_patch")
    return buffer.getvalue()


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {**a, **b}


def deploy(template_path: Path, session: boto3.session.Session, prefix: str = "chaosplane") -> Deployment:
    root = template_path.parent
    template = load_template(template_path)
    names = Names(prefix=prefix, region=session.region_name or "us-east-1", template=template)
    deployment = Deployment(names=names)

    dynamodb = session.client("dynamodb")
    for logical_id, resource in names.of_type("AWS::DynamoDB::Table").items():
        properties = names.resolve(resource["Properties"])
        name = names.physical_name(logical_id)
        dynamodb.create_table(**_table_request(name, properties))
        if properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        deployment.tables[logical_id] = name

    iam = session.client("iam")
    role_arn = iam.create_role(
        RoleName=f"{prefix}-{LOCAL_ROLE}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]

    globals_ = names.resolve(template.get("Globals", {}).get("Function", {}))
    lambda_client = session.client("lambda")
    for logical_id, resource in names.of_type("AWS::Serverless::Function").items():
        properties = _merged(globals_, names.resolve(resource["Properties"]))
        environment = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **properties.get("Environment", {}).get("Variables", {}),
        }
        for key, value in environment.items():
            if deployment.environment.setdefault(key, str(value)) != str(value):
                raise TemplateConflict(f"{key} differs between functions; move it to Globals")
        name = names.physical_name(logical_id)
        lambda_client.create_function(
            FunctionName=name,
            Runtime=properties["Runtime"],
            Role=role_arn,
            Handler=properties["Handler"],
            Code={"ZipFile": _placeholder_zip()},
            Timeout=int(properties.get("Timeout", 3)),
            MemorySize=int(properties.get("MemorySize", 128)),
            Environment={"Variables": {k: str(v) for k, v in environment.items()}},
        )
        lambda_patch.register_code(name, (root / properties["CodeUri"]).resolve())
        deployment.functions[logical_id] = name

    stepfunctions = session.client("stepfunctions")
    for logical_id, resource in names.of_type("AWS::Serverless::StateMachine").items():
        properties = resource["Properties"]
        substitutions = names.resolve(properties.get("DefinitionSubstitutions", {}))
        definition = (root / properties["DefinitionUri"]).read_text()
        missing = set(re.findall(r"\$\{(\w+)\}", definition)) - set(substitutions)
        if missing:
            raise ValueError(f"{properties['DefinitionUri']} uses undefined substitutions: {missing}")
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", str(value))
        arn = stepfunctions.create_state_machine(
            name=names.physical_name(logical_id),
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-{LOCAL_ROLE}",
            type=properties.get("Type", "STANDARD"),
        )["stateMachineArn"]
        deployment.state_machines[logical_id] = arn
    return deployment
