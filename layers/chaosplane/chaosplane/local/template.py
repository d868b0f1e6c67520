"""Read template.yaml and work out, for the embedded AWS, what each resource is called.

moto's CloudFormation cannot deploy a SAM template (and what it creates is invisible to the Step
Functions engine), so the local runtime reads the template itself. The intrinsic functions that
template.yaml uses are resolved here: Ref, Fn::GetAtt, Fn::Sub. Anything else fails loudly, so the
template cannot grow a construct that works on AWS and silently breaks locally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form tags (!Ref, !GetAtt, !Sub ...)."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)


class UnsupportedIntrinsic(ValueError):
    pass


class _NoValue:
    """AWS::NoValue: the property or list item is dropped."""


NO_VALUE = _NoValue()


@dataclass
class Names:
    """Physical names and ARNs of the template's resources in the embedded AWS."""

    prefix: str
    region: str
    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    """Parameter values that override the template's defaults (as `sam deploy --parameter-overrides`)."""

    def resource(self, logical_id: str) -> dict[str, Any]:
        return self.template["Resources"][logical_id]

    def physical_name(self, logical_id: str) -> str:
        """The resource's `Name` (a role's `RoleName`) when the template gives one, else
        <prefix>-<logical id>."""
        properties = self.resource(logical_id).get("Properties", {})
        name = properties.get("Name", properties.get("RoleName"))
        return str(self.resolve(name)) if name is not None else f"{self.prefix}-{logical_id}"

    def ref(self, logical_id: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.prefix,
        }
        if logical_id in pseudo:
            return pseudo[logical_id]
        parameters = self.template.get("Parameters", {})
        if logical_id in parameters:
            return self.parameters.get(logical_id, str(parameters[logical_id]["Default"]))
        kind = self.resource(logical_id)["Type"]
        if kind == "AWS::Serverless::StateMachine":
            return self.state_machine_arn(logical_id)
        if kind == "AWS::SNS::Topic":
            return self.topic_arn(logical_id)
        # Tables, functions, APIs: Ref is the name. Secrets: Ref is the ARN on AWS, but every
        # secrets API takes the name too, and the name is known before the secret exists.
        return self.physical_name(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.resource(logical_id)["Type"]
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.physical_name(logical_id)}"
        if kind == "AWS::Serverless::StateMachine" and attribute == "Name":
            return self.physical_name(logical_id)
        if kind == "AWS::Serverless::StateMachine" and attribute == "Arn":
            return self.state_machine_arn(logical_id)
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{self.physical_name(logical_id)}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{ACCOUNT_ID}:role/{self.physical_name(logical_id)}"
        if kind == "AWS::SNS::Topic" and attribute == "TopicName":
            return self.physical_name(logical_id)
        if kind == "AWS::SNS::Topic" and attribute == "TopicArn":
            return self.topic_arn(logical_id)
        if kind == "AWS::ECR::Repository" and attribute == "RepositoryUri":
            # Never created locally (deploy.SKIPPED); the URI is what the functions are told.
            return (
                f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/{self.physical_name(logical_id).lower()}"
            )
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/{self.physical_name(logical_id)}"
        if kind == "AWS::Events::EventBus" and attribute == "Arn":
            return f"arn:aws:events:{self.region}:{ACCOUNT_ID}:event-bus/{self.physical_name(logical_id)}"
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            name = self.resolve(self.resource(logical_id)["Properties"]["LogGroupName"])
            return f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{name}:*"
        raise UnsupportedIntrinsic(f"Fn::GetAtt {logical_id}.{attribute} is not supported locally")

    def state_machine_arn(self, logical_id: str) -> str:
        return f"arn:aws:states:{self.region}:{ACCOUNT_ID}:stateMachine:{self.physical_name(logical_id)}"

    def topic_arn(self, logical_id: str) -> str:
        return f"arn:aws:sns:{self.region}:{ACCOUNT_ID}:{self.physical_name(logical_id)}"

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def active(self, logical_id: str) -> bool:
        """Whether a resource exists with the template's parameter defaults (its Condition holds)."""
        condition = self.resource(logical_id).get("Condition")
        return condition is None or self.condition(condition)

    def resolve(self, value: Any) -> Any:
        """Resolve intrinsic functions in `value`, recursively."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise UnsupportedIntrinsic(f"{key} is not supported by the local runtime")
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, arg: str | list[Any]) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """Resources of one type that exist with the parameter defaults."""
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind and self.active(k)}
