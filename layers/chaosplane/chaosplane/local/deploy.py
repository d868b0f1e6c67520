"""Create every resource of template.yaml in the embedded AWS, by API calls.

Tables, functions (with their environment, CodeUri and handler) and the state machine (with its
DefinitionSubstitutions) all come from the template; there is no second list to keep in step.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from chaosplane.local import lambda_patch
from chaosplane.local.template import ACCOUNT_ID, Names, load_template
from chaosplane.tenancy import STACK_TAG

LOCAL_ROLE = "chaosplane-local"


class TemplateConflict(ValueError):
    """Two functions need different values for one environment variable (see REFERENCE: one process)."""


class RuleFailed(ValueError):
    """A template Rule refuses the parameters, as CloudFormation would before changing anything."""


# What deploy() creates, by type; every other type in template.yaml must be here, with why the
# embedded AWS goes without it. A new type fails the deploy until it is in one list or the other,
# so the template cannot grow a resource that silently does not exist locally.
CREATED = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
        "AWS::SNS::Topic",
        "AWS::IAM::Role",
        "AWS::SQS::Queue",
        "AWS::Scheduler::ScheduleGroup",
        "AWS::Events::EventBus",
        "AWS::Serverless::Function",
        "AWS::Serverless::StateMachine",
        "AWS::Serverless::Api",  # served by chaosplane.local.gateway from Deployment.api()
    }
)
SKIPPED = {
    "AWS::Serverless::LayerVersion": "the package runs from the source tree in this process",
    "AWS::ApiGateway::UsagePlan": "the local gateway throttles from the stage's MethodSettings",
    "AWS::ApiGateway::ApiKey": "the local gateway checks no API keys",
    "AWS::ApiGateway::UsagePlanKey": "the local gateway checks no API keys",
    "AWS::Logs::LogGroup": "the functions run in this process and log to its stderr",
    "AWS::SQS::QueuePolicy": "the embedded AWS enforces no resource policies",
    "AWS::Events::EventBusPolicy": "the embedded AWS enforces no resource policies (test_template reads it)",
    "AWS::IAM::ManagedPolicy": "the embedded AWS enforces no IAM policies (test_template.py reads them)",
    "AWS::SNS::Subscription": "email is not delivered locally",
    "AWS::CloudWatch::Alarm": (
        "the platform's own alarms watch metrics nothing emits locally; an alarm here would also "
        "show among the stop conditions people pick"
    ),
    "AWS::CloudWatch::Dashboard": "nothing local shows CloudWatch dashboards",
    "AWS::ECR::Repository": "the payload image is pulled by EKS nodes, never by the local runtime",
}


def check_rules(names: Names) -> None:
    """Evaluate the template's Rules with the given parameters (Fn::Equals, Fn::Not and the like)."""
    for rule_id, rule in names.template.get("Rules", {}).items():
        if "RuleCondition" in rule and not names.resolve(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions", []):
            if not names.resolve(assertion["Assert"]):
                raise RuleFailed(f"{rule_id}: {assertion.get('AssertDescription', 'assertion failed')}")


@dataclass(frozen=True)
class ApiConfig:
    """How API Gateway fronts the API function, as template.yaml configures it."""

    function: str
    authorizer_function: str | None
    identity_header: str
    authorizer_ttl_seconds: int
    public_routes: frozenset[tuple[str, str]]  # (method, path) with Auth: {Authorizer: NONE}
    gateway_responses: dict[str, dict[str, Any]]
    rate_limit: float  # the stage's MethodSettings "/*" "*": every method without its own
    burst_limit: int
    binary_media_types: tuple[str, ...] = ()  # BinaryMediaTypes, with SAM's "~1" back to "/"
    methods: frozenset[tuple[str, str]] = frozenset()  # (method or ANY, resource path) of every Api event
    method_throttles: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)
    """(method, resource path) -> (rate, burst), from the MethodSettings naming one method."""
    access_log_format: str | None = None  # AccessLogSetting's Format, when access logs are on


@dataclass(frozen=True)
class Schedule:
    """A function's `Type: Schedule` event; moto never fires these, the local runtime does."""

    name: str
    function: str
    every_seconds: float


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|second|seconds)\)$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600}


def rate_seconds(expression: str) -> float:
    match = _RATE.match(expression.strip())
    if match is None:
        raise ValueError(f"the local runtime runs rate(...) schedules only, not {expression!r}")
    return int(match[1]) * _UNIT_SECONDS[match[2].rstrip("s")]


@dataclass
class Deployment:
    names: Names
    tables: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    def api(self) -> ApiConfig:
        """The REST API, its authorizer, public routes, gateway responses and throttling."""
        names = self.names
        ((api_id, api),) = names.of_type("AWS::Serverless::Api").items()
        props = names.resolve(api["Properties"])
        function, public, methods = None, set(), set()
        for logical_id, resource in names.of_type("AWS::Serverless::Function").items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") != "Api" or event["Properties"].get("RestApiId") != {"Ref": api_id}:
                    continue
                function = self.functions[logical_id]
                methods.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
                if event["Properties"].get("Auth", {}).get("Authorizer") == "NONE":
                    public.add((event["Properties"]["Method"].upper(), event["Properties"]["Path"]))
        if function is None:
            raise LookupError(f"no function serves {api_id}")
        auth = props.get("Auth", {})
        authorizer = auth.get("Authorizers", {}).get(auth.get("DefaultAuthorizer", ""), {})
        authorizer_function = None
        if authorizer:
            arn = authorizer["FunctionArn"]
            authorizer_function = arn.rsplit(":", 1)[-1]
        identity = authorizer.get("Identity", {})
        # API Gateway applies a stage's limits to each method on its own; a setting that names one
        # method replaces them for that method. Every caller of a method shares its bucket. A
        # setting's path is "/" and the resource's path with each "/" escaped as "~1".
        settings = props.get("MethodSettings", [{}])
        throttle = next(m for m in settings if m.get("ResourcePath", "/*") == "/*")
        method_throttles = {
            (str(m["HttpMethod"]).upper(), str(m["ResourcePath"])[1:].replace("~1", "/")): (
                float(m.get("ThrottlingRateLimit", throttle.get("ThrottlingRateLimit", 10000))),
                int(m.get("ThrottlingBurstLimit", throttle.get("ThrottlingBurstLimit", 5000))),
            )
            for m in settings
            if m.get("ResourcePath", "/*") != "/*"
        }
        if unknown := {key for key in method_throttles if key not in methods}:
            # API Gateway refuses to deploy a stage whose setting names a method the API lacks.
            raise ValueError(f"MethodSettings name methods the API does not have: {sorted(unknown)}")
        return ApiConfig(
            function=function,
            authorizer_function=authorizer_function,
            identity_header=identity.get("Header", "Authorization"),
            authorizer_ttl_seconds=int(identity.get("ReauthorizeEvery", 300)),
            public_routes=frozenset(public),
            gateway_responses=props.get("GatewayResponses", {}),
            rate_limit=float(throttle.get("ThrottlingRateLimit", 10000)),
            burst_limit=int(throttle.get("ThrottlingBurstLimit", 5000)),
            binary_media_types=tuple(str(t).replace("~1", "/") for t in props.get("BinaryMediaTypes", [])),
            methods=frozenset(methods),
            method_throttles=method_throttles,
            access_log_format=(props.get("AccessLogSetting") or {}).get("Format"),
        )

    @property
    def event_bus(self) -> str:
        """The stack's own bus, where run events and the emergency stop's fan-out go."""
        (logical_id,) = self.names.of_type("AWS::Events::EventBus")
        return self.names.physical_name(logical_id)

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


def deploy(
    template_path: Path,
    session: boto3.session.Session,
    prefix: str = "chaosplane",
    parameters: dict[str, str] | None = None,
) -> Deployment:
    root = template_path.parent
    template = load_template(template_path)
    unknown = set(parameters or {}) - set(template.get("Parameters", {}))
    if unknown:
        raise ValueError(f"template.yaml has no parameter {', '.join(sorted(unknown))}")
    names = Names(
        prefix=prefix,
        region=session.region_name or "us-east-1",
        template=template,
        parameters=dict(parameters or {}),
    )
    unsupported = {r["Type"] for r in template["Resources"].values()} - CREATED - set(SKIPPED)
    if unsupported:
        raise ValueError(
            f"the local runtime neither creates nor knowingly skips {', '.join(sorted(unsupported))}: "
            "add each to chaosplane.local.deploy CREATED (and create it) or SKIPPED (and say why)"
        )
    check_rules(names)
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
        if properties.get("TimeToLiveSpecification", {}).get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification=properties["TimeToLiveSpecification"]
            )
        deployment.tables[logical_id] = name

    secrets_manager = session.client("secretsmanager")
    for logical_id, resource in names.of_type("AWS::SecretsManager::Secret").items():
        properties = names.resolve(resource.get("Properties", {}))
        name = names.physical_name(logical_id)
        length = int(properties.get("GenerateSecretString", {}).get("PasswordLength", 32))
        secrets_manager.create_secret(
            Name=name,
            Description=properties.get("Description", ""),
            SecretString=secrets.token_hex(length // 2),
        )
        deployment.secrets[logical_id] = name

    sns = session.client("sns")
    for logical_id, resource in names.of_type("AWS::SNS::Topic").items():
        properties = names.resolve(resource.get("Properties", {}))
        attributes = {k: str(properties[k]) for k in ("DisplayName", "KmsMasterKeyId") if k in properties}
        arn = sns.create_topic(Name=names.physical_name(logical_id), Attributes=attributes)["TopicArn"]
        if arn != names.topic_arn(logical_id):
            raise ValueError(f"{logical_id} was created as {arn}, not {names.topic_arn(logical_id)}")
        deployment.topics[logical_id] = arn

    iam = session.client("iam")
    for logical_id, resource in names.of_type("AWS::IAM::Role").items():
        properties = names.resolve(resource["Properties"])
        iam.create_role(
            RoleName=names.physical_name(logical_id),
            AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]),
        )
    sqs = session.client("sqs")
    for logical_id in names.of_type("AWS::SQS::Queue"):
        sqs.create_queue(QueueName=names.physical_name(logical_id))
    scheduler = session.client("scheduler")
    for logical_id in names.of_type("AWS::Scheduler::ScheduleGroup"):
        scheduler.create_schedule_group(Name=names.physical_name(logical_id))
    role_arn = iam.create_role(
        RoleName=f"{prefix}-{LOCAL_ROLE}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]

    globals_ = names.resolve(template.get("Globals", {}).get("Function", {}))
    lambda_client = session.client("lambda")
    for logical_id, resource in names.of_type("AWS::Serverless::Function").items():
        properties = {**globals_, **names.resolve(resource["Properties"])}
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
            Tags={STACK_TAG: names.prefix},  # as CloudFormation tags what a stack makes
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

    # Events of the functions: EventBridge rules are created in the embedded EventBridge (the
    # emulation delivers them to Lambda); schedules are kept for the local runtime to fire.
    events = session.client("events")
    for logical_id in names.of_type("AWS::Events::EventBus"):
        events.create_event_bus(Name=names.physical_name(logical_id))
    for logical_id, resource in names.of_type("AWS::Serverless::Function").items():
        function_arn = names.get_att(logical_id, "Arn")
        for event_id, event in resource.get("Properties", {}).get("Events", {}).items():
            properties = names.resolve(event.get("Properties", {}))
            rule = f"{prefix}-{logical_id}-{event_id}"
            if event["Type"] == "EventBridgeRule":
                bus = properties.get("EventBusName", "default")
                pattern = json.dumps(properties["Pattern"])
                events.put_rule(Name=rule, EventPattern=pattern, State="ENABLED", EventBusName=bus)
                target = {"Id": "function", "Arn": function_arn}
                events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])
                deployment.rules[f"{logical_id}.{event_id}"] = rule
            elif event["Type"] == "Schedule":
                deployment.schedules.append(
                    Schedule(rule, deployment.functions[logical_id], rate_seconds(properties["Schedule"]))
                )
    return deployment
