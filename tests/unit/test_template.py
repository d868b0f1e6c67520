"""template.yaml is valid SAM and CloudFormation, and the local runtime reads it faithfully."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform

from chaosplane.local.template import Names, UnsupportedIntrinsic, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _NoManagedPolicies:
    """samtranslator asks IAM for managed policy ARNs; offline, there are none to look up."""

    def load(self) -> dict[str, str]:
        return {}

    def get(self, name: str) -> None:
        return None


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    completed = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_sam_translator_transforms_the_template_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = load_template(TEMPLATE)
    sam = copy.deepcopy(template)
    # The translator wants uploaded artifacts, as `sam package` would leave them.
    for resource in sam["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if key in props:
                props[key] = f"s3://artifacts/{props[key]}"
    try:
        cfn = transform(sam, {}, _NoManagedPolicies())
    except InvalidDocumentException as err:
        pytest.fail("\n".join(str(cause) for cause in err.causes))
    kinds = {r["Type"] for r in cfn["Resources"].values()}
    assert {
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::StepFunctions::StateMachine",
        "AWS::ApiGateway::RestApi",
        "AWS::DynamoDB::Table",
        "AWS::IAM::Role",
    } <= kinds
    machine = next(r for r in cfn["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    assert "ExecutorFunctionArn" in machine["Properties"]["DefinitionSubstitutions"]


def test_every_table_is_on_demand_encrypted_and_recoverable() -> None:
    tables = [r for r in load_template(TEMPLATE)["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 7
    for table in tables:
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}


def test_the_state_machine_only_uses_substitutions_the_template_defines() -> None:
    template = load_template(TEMPLATE)
    machine = template["Resources"]["ExperimentStateMachine"]["Properties"]
    definition = (ROOT / machine["DefinitionUri"]).read_text()
    for key in machine["DefinitionSubstitutions"]:
        assert "${" + key + "}" in definition
    json.loads(definition.replace("${ExecutorFunctionArn}", "arn"))


def test_every_path_after_prepare_passes_through_rollback() -> None:
    states = json.loads((ROOT / "statemachines/experiment.asl.json").read_text())["States"]

    def successors(name: str) -> set[str]:
        state = states[name]
        nexts = {state["Next"]} if "Next" in state else set()
        nexts |= {c["Next"] for c in state.get("Catch", [])}
        nexts |= {c["Next"] for c in state.get("Choices", [])}
        if "Default" in state:
            nexts.add(state["Default"])
        return nexts

    def paths_avoid_rollback(name: str, seen: frozenset[str]) -> bool:
        if name == "Rollback":
            return False
        nexts = successors(name) - seen
        if not nexts:
            return states[name]["Type"] in ("Succeed", "Fail")
        return any(paths_avoid_rollback(n, seen | {name}) for n in nexts)

    for state in ("Advance", "Due", "Observe"):
        assert not paths_avoid_rollback(state, frozenset()), state
    # Settle (the `after` probes) comes only after Rollback, and every way out of it is Finalize.
    assert {n for n in states if "Settle" in successors(n)} == {"Rollback", "SettleWait"}
    assert successors("Settle") == {"Settled", "Finalize"} and successors("Settled") == {
        "Finalize",
        "SettleWait",
    }


def test_intrinsics_resolve_to_local_names() -> None:
    names = Names(prefix="cp", region="eu-west-1", template=load_template(TEMPLATE))
    assert names.resolve({"Ref": "TargetsTable"}) == "cp-TargetsTable"
    assert names.resolve({"Fn::GetAtt": ["ExecutorFunction", "Arn"]}) == (
        "arn:aws:lambda:eu-west-1:123456789012:function:cp-ExecutorFunction"
    )
    # A resource with a Name is called by it; the functions' STATE_MACHINE_ARN must agree with it.
    machine_arn = names.resolve({"Ref": "ExperimentStateMachine"})
    assert machine_arn == "arn:aws:states:eu-west-1:123456789012:stateMachine:cp-experiment"
    globals_env = names.resolve(names.template["Globals"]["Function"]["Environment"]["Variables"])
    assert globals_env["STATE_MACHINE_ARN"] == machine_arn
    assert names.resolve({"Ref": "LogLevel"}) == "INFO"
    assert (
        names.resolve({"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:x"}) == "arn:aws:ec2:eu-west-1:x"
    )
    with pytest.raises(UnsupportedIntrinsic):
        names.resolve({"Fn::ImportValue": "elsewhere"})


def test_jwks_mode_does_not_deploy_without_its_key_set_issuer_and_audience() -> None:
    rule = load_template(TEMPLATE)["Rules"]["JwksModeNeedsItsIssuer"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "AuthMode"}, "JWKS"]}
    required = {a["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for a in rule["Assertions"]}
    assert required == {"JwksUrl", "JwtIssuer", "JwtAudience"}


def _statements(policies: list) -> list[dict]:
    return [
        s for p in policies if isinstance(p, dict) for s in p.get("PolicyDocument", p).get("Statement", [])
    ]


def _changes(statements: list[dict]) -> set[str]:
    """The fault actions that change a resource, of the services faults act through."""
    services = ("ec2:", "rds:", "ecs:", "lambda:", "ssm:")
    reads = ("Describe", "List", "Get")
    return {
        action
        for s in statements
        if s["Effect"] == "Allow"
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        if action.startswith(services) and not action.split(":", 1)[1].startswith(reads)
    }


def test_a_tag_boundary_team_s_identity_changes_only_what_is_tagged_as_the_team_s() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    role = resources["TeamFaultRole"]["Properties"]
    team = _statements(role["Policies"])
    executor = _statements(resources["ExecutorFunction"]["Properties"]["Policies"])
    # Every fault an account-boundary team's run may make, a tag-boundary team's may make too...
    assert _changes(executor) <= _changes(team)
    # ...each on a resource tagged as the team's (the session's tag), or on one of AWS's that no
    # team owns and that it reaches only through the team's resource (a document, the ACL swap).
    same_team = {"StringEquals": {"aws:ResourceTag/chaosplane/team": "${aws:PrincipalTag/chaosplane:team}"}}
    for statement in team:
        if statement["Effect"] != "Allow" or not _changes([statement]):
            continue
        resources_named = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        arns = " ".join(str(r) for r in resources_named)
        owned_kinds = (":instance/", ":subnet/", ":db:", ":cluster:", ":task/", ":function:")
        if any(kind in arns for kind in owned_kinds):
            assert statement.get("Condition", {}).get("StringEquals") == same_team["StringEquals"], statement
        elif statement["Action"] == ["ec2:CreateNetworkAcl"] and "network-acl" in arns:
            assert "aws:RequestTag/chaosplane/team" in statement["Condition"]["StringEquals"]
        else:  # each resource one no team owns: a document, a VPC, an ACL; "*" only to cancel a command
            for named in map(str, resources_named):
                assert any(k in named for k in (":document/", ":network-acl/", ":vpc/")) or (
                    named == "*" and statement["Action"] == ["ssm:CancelCommand"]
                ), statement
    # Only the executor may take it on, with the team named.
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert "ExecutorFunctionRole-*" in str(trust["Condition"]["ArnLike"]["aws:PrincipalArn"])
    assert trust["Condition"]["StringLike"] == {"aws:RequestTag/chaosplane:team": "?*"}


def test_no_identity_of_the_platform_may_fault_the_platform() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    never = {"Ref": "NeverThePlatformPolicy"}
    assert never in resources["ExecutorFunction"]["Properties"]["Policies"]
    assert never in resources["TeamFaultRole"]["Properties"]["ManagedPolicyArns"]
    denies = resources["NeverThePlatformPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {s["Effect"] for s in denies} == {"Deny"}
    by_stack = next(s for s in denies if "Condition" in s)
    assert by_stack["Condition"]["StringEquals"] == {
        "aws:ResourceTag/aws:cloudformation:stack-name": {"Ref": "AWS::StackName"}
    }
    executor = _statements(resources["ExecutorFunction"]["Properties"]["Policies"])
    assert _changes(executor) - {
        "ec2:StartInstances",
        "ec2:CreateNetworkAcl",
        "ec2:CreateTags",
        "ec2:DeleteNetworkAcl",
        "lambda:DeleteFunctionConcurrency",
        "ssm:CancelCommand",
    } <= set(by_stack["Action"])
    functions = next(s for s in denies if "Condition" not in s)
    assert "function:${AWS::StackName}-*" in str(functions["Resource"])


def test_the_api_may_only_append_to_and_read_the_audit_trail() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    audit = ({"Ref": "AuditTable"}, {"Fn::GetAtt": ["AuditTable", "Arn"]})
    for name, resource in resources.items():
        policies = resource.get("Properties", {}).get("Policies", [])
        templated = [p for p in policies if isinstance(p, dict) and "Statement" not in p]
        tables = [v.get("TableName") for p in templated for v in p.values() if isinstance(v, dict)]
        assert not any(table in audit for table in tables), name
        on_audit = [
            s["Action"]
            for s in _statements(policies)
            if any(
                r in audit for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
            )
        ]
        assert on_audit == ([["dynamodb:PutItem", "dynamodb:Query"]] if name == "ApiFunction" else []), name


def test_run_events_travel_on_the_stack_s_own_bus_which_only_the_platform_may_put_on() -> None:
    resources = load_template(TEMPLATE)["Resources"]
    ours = {"Ref": "RunEventBus"}
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        for event in properties.get("Events", {}).values():
            if event["Type"] == "EventBridgeRule":
                sources = event["Properties"]["Pattern"]["source"]
                # AWS puts its own events (alarms, executions) on the default bus; ours go on ours.
                expected = None if all(s.startswith("aws.") for s in sources) else ours
                assert event["Properties"].get("EventBusName") == expected, (name, sources)
        puts = [s for s in _statements(properties.get("Policies", [])) if "events:PutEvents" in s["Action"]]
        assert all(s["Resource"] == {"Fn::GetAtt": ["RunEventBus", "Arn"]} for s in puts), name
    statement = resources["RunEventBusPolicy"]["Properties"]["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        "*",
        "events:PutEvents",
    )
    allowed = statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert sorted(a["Fn::Sub"].rsplit("}-", 1)[1] for a in allowed) == [
        "ApiFunctionRole-*",
        "ExecutorFunctionRole-*",
        "GuardFunctionRole-*",
    ]


def test_a_target_account_s_role_changes_what_the_team_role_does_and_trusts_only_the_platform() -> None:
    target = load_template(ROOT / "infra" / "target-account.yaml")["Resources"]["TargetRole"]["Properties"]
    team = load_template(TEMPLATE)["Resources"]["TeamFaultRole"]["Properties"]

    def without_region(statements: list[dict]) -> str:
        return json.dumps(statements, sort_keys=True).replace("${AWS::Region}", "*")

    # The same statements, for every Region of the environment: a change only of the team's own.
    changes = [p for p in target["Policies"] if p["PolicyName"] == "within-the-team-s-tag"]
    assert without_region(_statements(changes)) == without_region(_statements(team["Policies"]))
    # Besides, it reads the account's alarms (the team's stop conditions there), and changes none.
    reads = [p for p in target["Policies"] if p not in changes]
    assert {a for s in _statements(reads) for a in s["Action"]} == {
        "cloudwatch:DescribeAlarms",
        "cloudwatch:ListTagsForResource",
        "cloudwatch:GetMetricData",
    }
    (trust,) = target["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["StringEquals"] == {
        "sts:ExternalId": {"Ref": "ExternalId"},
        "aws:RequestTag/chaosplane:team": {"Ref": "Team"},
    }
    trusted = " ".join(a["Fn::Sub"] for a in trust["Condition"]["ArnLike"]["aws:PrincipalArn"])
    assert "ExecutorFunctionRole-*" in trusted and "ApiFunctionRole-*" in trusted
    # And the platform's roles may take it on by its name.
    name = target["RoleName"]["Fn::Sub"].replace("${PlatformStackName}", "${AWS::StackName}")
    resources = load_template(TEMPLATE)["Resources"]
    for function in ("ExecutorFunction", "ApiFunction"):
        assumable = [
            s["Resource"]["Fn::Sub"]
            for s in _statements(resources[function]["Properties"]["Policies"])
            if s["Action"] == ["sts:AssumeRole", "sts:TagSession"]
        ]
        assert f"arn:${{AWS::Partition}}:iam::*:role/{name}" in assumable, function


def test_environments_alarms_may_come_to_the_default_bus_only_from_the_organization_named() -> None:
    template = load_template(TEMPLATE)
    policy = template["Resources"]["EnvironmentAlarmsPolicy"]
    assert policy["Condition"] == "ForwardsFromOrganization"  # nothing is opened by default
    statement = policy["Properties"]["Statement"]
    assert policy["Properties"]["EventBusName"] == "default" and statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"Ref": "EnvironmentsOrganizationId"}}
    }
    assert template["Parameters"]["EnvironmentsOrganizationId"]["Default"] == ""
