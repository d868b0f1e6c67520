"""Cloud faults end to end on the embedded AWS: the real handlers and the real state machine.

For every fault: exactly the selected resources change; rollback restores the prior state; a
second rollback changes nothing; AccessDenied on inject fails the run and leaves nothing changed;
targets match more resources than one page of the AWS API holds.
"""

from __future__ import annotations

from typing import Any

import pytest
from moto.awslambda.models import LambdaBackend
from moto.core.exceptions import JsonRESTError
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.models.network_acls import NetworkAclBackend
from moto.ecs.models import EC2ContainerServiceBackend
from moto.rds.exceptions import RDSClientError
from moto.rds.models import RDSBackend
from moto.ssm.models import SimpleSystemManagerBackend

from tests.conftest import Platform, owned, wait_until
from tests.integration.test_runs import invoke_executor, journal

PASSWORD = "correct-horse-battery"


# -- helpers -------------------------------------------------------------------------------------


def target(platform: Platform, kind: str, **fields: Any) -> dict:
    return platform.json("POST", "/targets", {"name": kind, "type": kind, **fields}, expect=201)


def experiment(platform: Platform, fault: str, target_id: str, **overrides: Any) -> dict:
    body = {"name": fault, "type": fault, "target": target_id, "duration": 1, **overrides}
    return platform.json("POST", "/experiments", body, expect=201)


def run(platform: Platform, experiment_id: str, timeout: float = 60) -> dict:
    started = platform.json("POST", f"/experiments/{experiment_id}/run", expect=202)
    return platform.wait_for_result(started["result_id"], timeout=timeout)


HELD = 600  # seconds: a run the test stops itself outlasts every check made while it holds


def hold(platform: Platform, experiment_id: str) -> str:
    """Start a run and wait until Observe holds the fault; return the result id."""
    # A short run may end, and roll back, between "observe" appearing and the test's next look.
    assert platform.json("GET", f"/experiments/{experiment_id}")["duration"] >= HELD
    result_id = platform.json("POST", f"/experiments/{experiment_id}/run", expect=202)["result_id"]
    wait_until(
        lambda: any(e["step"] == "observe" for e in platform.json("GET", f"/results/{result_id}")["timeline"])
    )
    return result_id


def stop(platform: Platform, experiment_id: str, result_id: str) -> dict:
    platform.json("POST", f"/experiments/{experiment_id}/stop", expect=202)
    return platform.wait_for_result(result_id, timeout=60)


def rolled_back_again(platform: Platform, result_id: str) -> None:
    """A second rollback, as a retry or recovery would run it, changes nothing."""
    before = journal(platform, result_id)
    assert invoke_executor(platform, "rollback", {"result_id": result_id}) == {"rolled_back": 0}
    assert journal(platform, result_id) == before


def deny(monkeypatch: pytest.MonkeyPatch, owner: type, method: str, error: Exception) -> list[tuple]:
    """Make one AWS action answer AccessDenied (as IAM would); return the attempted calls."""
    calls: list[tuple] = []

    def denied(*args: Any, **kwargs: Any) -> Any:
        calls.append((args[1:], kwargs))
        raise error

    monkeypatch.setattr(owner, method, denied)
    return calls


def spy(monkeypatch: pytest.MonkeyPatch, owner: type, method: str) -> list[tuple]:
    calls: list[tuple] = []
    original = getattr(owner, method)

    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, recorded)
    return calls


def failed_with_access_denied(result: dict, code: str = "AccessDenied") -> None:
    assert result["status"] == "failed" and result["success"] is False, result
    assert "InjectionFailed" in result["error"] and code in result["error"], result["error"]


def preview_count(platform: Platform, experiment_id: str) -> int:
    preview = platform.json("POST", f"/experiments/{experiment_id}/preview")
    listed = preview["selected"] + preview["eligible_not_selected"] + preview["excluded"]
    return len({r["id"] for r in listed})  # one over the policy's cap is listed as selected and excluded


# -- ec2-terminate: irreversible -------------------------------------------------------------------


def test_ec2_terminate_is_refused_without_allow_irreversible(platform: Platform) -> None:
    web = platform.instances(2, {"app": "web"})
    t = target(platform, "ec2-instances", selector="app=web")
    body = {"name": "kill", "type": "ec2-terminate", "target": t["id"], "duration": 1}
    refused = platform.api("POST", "/experiments", body)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.get_json()["errors"]] == ["body.allow_irreversible"]
    assert platform.json("GET", "/experiments")["items"] == []

    allowed = experiment(platform, "ec2-terminate", t["id"], allow_irreversible=True, selection="COUNT(1)")
    assert platform.json("POST", f"/experiments/{allowed['id']}/preview")["irreversible"] is True
    replace = platform.api("PUT", f"/experiments/{allowed['id']}", {**body, "allow_irreversible": False})
    assert replace.status_code == 422
    assert platform.json("GET", f"/experiments/{allowed['id']}")["allow_irreversible"] is True

    result = run(platform, allowed["id"])
    assert result["status"] == "completed", result
    assert sorted(platform.states(web).values()) == ["running", "terminated"]
    (hit,) = result["resources"]
    assert platform.states([hit["id"]]) == {hit["id"]: "terminated"} and hit["restored"] == "terminated"
    rolled_back_again(platform, result["id"])


def test_prepare_refuses_an_irreversible_fault_the_experiment_no_longer_allows(platform: Platform) -> None:
    web = platform.instances(1, {"app": "web"})
    t = target(platform, "ec2-instances", selector="app=web")
    e = experiment(platform, "ec2-terminate", t["id"], allow_irreversible=True)
    # Changed behind the API's back (or by an older version of it): Prepare checks again.
    platform.session.client("dynamodb").update_item(
        TableName=platform.deployment.tables["ExperimentsTable"],
        Key={"id": {"S": e["id"]}},
        UpdateExpression="SET allow_irreversible = :f",
        ExpressionAttributeValues={":f": {"BOOL": False}},
    )
    result = run(platform, e["id"])
    assert result["status"] == "failed" and "PolicyRefused" in result["error"]
    assert "irreversible" in result["error"] and result["resources"] == []
    assert platform.states(web) == {web[0]: "running"}


def test_ec2_terminate_access_denied_fails_the_run_and_terminates_nothing(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = platform.instances(2, {"app": "web"})
    t = target(platform, "ec2-instances", selector="app=web")
    e = experiment(platform, "ec2-terminate", t["id"], allow_irreversible=True)
    deny(monkeypatch, InstanceBackend, "terminate_instances", EC2ClientError("UnauthorizedOperation", "no"))
    failed_with_access_denied(run(platform, e["id"]), "UnauthorizedOperation")
    assert set(platform.states(web).values()) == {"running"}


def test_the_preview_says_whether_a_fault_is_irreversible(platform: Platform) -> None:
    platform.instances(1, {"app": "web"})
    t = target(platform, "ec2-instances", selector="app=web")
    e = experiment(platform, "ec2-stop", t["id"])
    assert platform.json("POST", f"/experiments/{e['id']}/preview")["irreversible"] is False


# -- rds-reboot ----------------------------------------------------------------------------------


def db_instances(platform: Platform, count: int, tags: dict[str, str], prefix: str = "db") -> list[str]:
    rds = platform.session.client("rds")
    names = []
    for n in range(count):
        name = f"{prefix}-{n}"
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            AllocatedStorage=20,
            MasterUsername="chaos",
            MasterUserPassword=PASSWORD,
            Tags=[{"Key": k, "Value": v} for k, v in owned(tags).items()],
        )
        names.append(name)
    return names


def test_rds_reboot_reboots_exactly_the_selected_instances(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_instances(platform, 3, {"app": "orders"})
    db_instances(platform, 1, {"app": "billing"}, prefix="other")
    reboots = spy(monkeypatch, RDSBackend, "reboot_db_instance")
    t = target(platform, "rds-instances", selector="app=orders")
    e = experiment(platform, "rds-reboot", t["id"], selection="COUNT(2)")

    result = run(platform, e["id"])

    assert result["status"] == "completed", result
    hit = sorted(r["id"] for r in result["resources"])
    assert sorted(call[0][0] for call in reboots) == hit and len(hit) == 2
    assert all(name.startswith("db-") for name in hit)
    assert {r["restored"] for r in result["resources"]} == {"available"}
    assert [e["action"]["S"] for e in journal(platform, result["id"])] == ["rds:RebootDBInstance"] * 2
    rolled_back_again(platform, result["id"])
    assert len(reboots) == 2


def test_rds_reboot_access_denied_fails_the_run(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    db_instances(platform, 1, {"app": "orders"})
    t = target(platform, "rds-instances", selector="app=orders")
    e = experiment(platform, "rds-reboot", t["id"])
    deny(monkeypatch, RDSBackend, "reboot_db_instance", RDSClientError("AccessDenied", "not allowed"))
    failed_with_access_denied(run(platform, e["id"]))
    status = platform.session.client("rds").describe_db_instances(DBInstanceIdentifier="db-0")
    assert status["DBInstances"][0]["DBInstanceStatus"] == "available"


def test_rds_instances_are_resolved_across_pages(platform: Platform) -> None:
    db_instances(platform, 105, {"app": "fleet"})  # DescribeDBInstances: 100 per page
    t = target(platform, "rds-instances", selector="app=fleet")
    e = experiment(platform, "rds-reboot", t["id"])
    assert preview_count(platform, e["id"]) == 105


# -- rds-failover --------------------------------------------------------------------------------


def db_cluster(platform: Platform, name: str, members: int, tags: dict[str, str]) -> list[str]:
    rds = platform.session.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="chaos",
        MasterUserPassword=PASSWORD,
        Tags=[{"Key": k, "Value": v} for k, v in owned(tags).items()],
    )
    for n in range(members):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{n}",
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
        )
    return [f"{name}-{n}" for n in range(members)]


def writer(platform: Platform, cluster: str) -> str:
    found = platform.session.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0]
    return next(m["DBInstanceIdentifier"] for m in found["DBClusterMembers"] if m["IsClusterWriter"])


def test_rds_failover_moves_the_writer_and_rollback_records_the_new_one(platform: Platform) -> None:
    db_cluster(platform, "orders", 2, {"app": "orders"})
    db_cluster(platform, "billing", 2, {"app": "billing"})
    db_cluster(platform, "lonely", 1, {"app": "orders"})  # no reader: nowhere to fail over to
    t = target(platform, "rds-clusters", selector="app=orders")
    e = experiment(platform, "rds-failover", t["id"])
    preview = platform.json("POST", f"/experiments/{e['id']}/preview")
    assert [r["id"] for r in preview["selected"]] == ["orders"]
    assert [(r["id"], r["state"]) for r in preview["excluded"]] == [("lonely", "available-without-reader")]

    result = run(platform, e["id"])

    assert result["status"] == "completed", result
    (hit,) = result["resources"]
    assert writer(platform, "orders") == "orders-1"  # no fail-back unless asked
    assert hit["restored"] == "available, writer orders-1"
    assert writer(platform, "billing") == "billing-0" and writer(platform, "lonely") == "lonely-0"
    rolled_back_again(platform, result["id"])
    assert writer(platform, "orders") == "orders-1"


def test_rds_failover_fails_back_when_asked(platform: Platform) -> None:
    db_cluster(platform, "orders", 3, {"app": "orders"})
    t = target(platform, "rds-clusters", resource_ids=["orders"])
    e = experiment(
        platform,
        "rds-failover",
        t["id"],
        duration=HELD,
        parameters={"failback": True, "target_instance": "orders-2"},
    )
    result_id = hold(platform, e["id"])
    assert writer(platform, "orders") == "orders-2"
    result = stop(platform, e["id"], result_id)
    assert result["status"] == "stopped"
    assert writer(platform, "orders") == "orders-0"
    assert "failing back to writer orders-0" in result["resources"][0]["restored"]
    rolled_back_again(platform, result_id)


def test_rds_failover_access_denied_leaves_the_writer(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_cluster(platform, "orders", 2, {"app": "orders"})
    t = target(platform, "rds-clusters", selector="app=orders")
    e = experiment(platform, "rds-failover", t["id"])
    deny(monkeypatch, RDSBackend, "failover_db_cluster", RDSClientError("AccessDenied", "not allowed"))
    failed_with_access_denied(run(platform, e["id"]))
    assert writer(platform, "orders") == "orders-0"


def test_rds_clusters_are_resolved_across_pages(platform: Platform) -> None:
    rds = platform.session.client("rds")
    for n in range(103):  # DescribeDBClusters: 100 per page
        rds.create_db_cluster(
            DBClusterIdentifier=f"c{n}",
            Engine="aurora-postgresql",
            MasterUsername="chaos",
            MasterUserPassword=PASSWORD,
            Tags=[{"Key": k, "Value": v} for k, v in owned({"app": "fleet"}).items()],
        )
    t = target(platform, "rds-clusters", selector="app=fleet")
    assert preview_count(platform, experiment(platform, "rds-failover", t["id"])["id"]) == 103


# -- ecs-stop-task -------------------------------------------------------------------------------


def ecs_tasks(
    platform: Platform, count: int, group: str, tags: dict[str, str], cluster: str = "prod"
) -> list[str]:
    ecs = platform.session.client("ecs")
    if not ecs.describe_clusters(clusters=[cluster])["clusters"]:
        ecs.create_cluster(clusterName=cluster)
        ecs.register_task_definition(
            family="web", containerDefinitions=[{"name": "c", "image": "nginx", "memory": 128}]
        )
    arns = []
    while len(arns) < count:
        started = ecs.run_task(
            cluster=cluster,
            taskDefinition="web",
            count=min(10, count - len(arns)),
            group=group,
            launchType="FARGATE",
            tags=[{"key": k, "value": v} for k, v in owned(tags).items()],
        )
        arns += [task["taskArn"] for task in started["tasks"]]
    return arns


def task_states(platform: Platform, arns: list[str], cluster: str = "prod") -> dict[str, str]:
    found = platform.session.client("ecs").describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    return {task["taskArn"]: task["lastStatus"] for task in found}


def test_ecs_stop_task_stops_exactly_the_selected_service_tasks(platform: Platform) -> None:
    web = ecs_tasks(platform, 3, "service:web", {"app": "web"})
    api = ecs_tasks(platform, 2, "service:api", {"app": "web"})  # another service: not in the target
    standalone = ecs_tasks(platform, 1, "family:web", {"app": "web"})
    t = target(platform, "ecs-tasks", cluster="prod", service="web", selector="app=web")
    e = experiment(platform, "ecs-stop-task", t["id"], selection="COUNT(2)")

    result = run(platform, e["id"])

    assert result["status"] == "completed", result
    hit = {r["id"] for r in result["resources"]}
    assert len(hit) == 2 and hit <= set(web)
    states = task_states(platform, web + api + standalone)
    assert {arn for arn, s in states.items() if s == "STOPPED"} == hit
    assert {r["restored"] for r in result["resources"]} == {"STOPPED"}  # the service replaces them
    rolled_back_again(platform, result["id"])

    # Without a service, a standalone task is matched but never eligible: nothing would replace it.
    everything = target(platform, "ecs-tasks", cluster="prod", selector="app=web")
    preview = platform.json(
        "POST", f"/experiments/{experiment(platform, 'ecs-stop-task', everything['id'])['id']}/preview"
    )
    excluded = {r["id"]: r["state"] for r in preview["excluded"]}
    assert excluded[standalone[0]] == "RUNNING-standalone"


def test_ecs_stop_task_access_denied_stops_nothing(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    web = ecs_tasks(platform, 2, "service:web", {"app": "web"})
    t = target(platform, "ecs-tasks", cluster="prod", service="web", selector="app=web")
    e = experiment(platform, "ecs-stop-task", t["id"])
    deny(monkeypatch, EC2ContainerServiceBackend, "stop_task", JsonRESTError("AccessDeniedException", "no"))
    failed_with_access_denied(run(platform, e["id"]), "AccessDeniedException")
    assert set(task_states(platform, web).values()) == {"RUNNING"}


def test_ecs_tasks_are_resolved_across_pages(platform: Platform) -> None:
    ecs_tasks(platform, 130, "service:web", {"app": "web"})  # ListTasks: 100 per page
    t = target(platform, "ecs-tasks", cluster="prod", service="web", selector="app=web")
    assert preview_count(platform, experiment(platform, "ecs-stop-task", t["id"])["id"]) == 130


# -- lambda-throttle -----------------------------------------------------------------------------


def functions(platform: Platform, names: list[str], tags: dict[str, str]) -> None:
    client = platform.session.client("lambda")
    role = platform.session.client("iam").create_role(
        RoleName=f"fn-{names[0]}", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    for name in names:
        client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
            Tags=owned(tags),
        )


def reserved(platform: Platform, name: str) -> int | None:
    return (
        platform.session.client("lambda")
        .get_function_concurrency(FunctionName=name)
        .get("ReservedConcurrentExecutions")
    )


def test_lambda_throttle_sets_zero_and_restores_exactly_what_was_there(platform: Platform) -> None:
    functions(platform, ["orders-a", "orders-b"], {"app": "orders"})
    functions(platform, ["billing"], {"app": "billing"})
    client = platform.session.client("lambda")
    client.put_function_concurrency(FunctionName="orders-b", ReservedConcurrentExecutions=7)
    t = target(platform, "lambda-functions", selector="app=orders")
    e = experiment(platform, "lambda-throttle", t["id"], duration=HELD)

    result_id = hold(platform, e["id"])
    assert (reserved(platform, "orders-a"), reserved(platform, "orders-b")) == (0, 0)
    assert reserved(platform, "billing") is None
    result = stop(platform, e["id"], result_id)

    assert result["status"] == "stopped", result
    assert reserved(platform, "orders-a") is None  # "none" again, not some number
    assert reserved(platform, "orders-b") == 7
    restored = {r["id"]: r["restored"] for r in result["resources"]}
    assert restored == {"orders-a": "reserved concurrency none", "orders-b": "reserved concurrency 7"}
    rolled_back_again(platform, result_id)
    assert (reserved(platform, "orders-a"), reserved(platform, "orders-b")) == (None, 7)


def test_lambda_throttle_leaves_a_function_someone_else_throttled(platform: Platform) -> None:
    functions(platform, ["orders-a"], {"app": "orders"})
    platform.session.client("lambda").put_function_concurrency(
        FunctionName="orders-a", ReservedConcurrentExecutions=0
    )
    t = target(platform, "lambda-functions", resource_ids=["orders-a"])
    result = run(platform, experiment(platform, "lambda-throttle", t["id"])["id"])
    assert result["status"] == "failed" and "NothingToHit" in result["error"]
    assert "already throttled" in result["resources"][0]["detail"]["skipped"]
    assert reserved(platform, "orders-a") == 0  # not "restored" into service by us


def test_lambda_throttle_access_denied_changes_nothing(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    functions(platform, ["orders-a"], {"app": "orders"})
    t = target(platform, "lambda-functions", selector="app=orders")
    e = experiment(platform, "lambda-throttle", t["id"])
    deny(monkeypatch, LambdaBackend, "put_function_concurrency", JsonRESTError("AccessDeniedException", "no"))
    failed_with_access_denied(run(platform, e["id"]), "AccessDeniedException")
    assert reserved(platform, "orders-a") is None


def test_lambda_functions_are_resolved_across_pages(platform: Platform) -> None:
    functions(platform, [f"fn-{n}" for n in range(60)], {"owner": "me", "app": "fleet"})  # 50 per page
    functions(platform, ["lone"], {"owner": "me"})
    t = target(platform, "lambda-functions", selector="owner=me,!app")
    e = experiment(platform, "lambda-throttle", t["id"])
    assert preview_count(platform, e["id"]) == 1  # only the one without app: every page of both APIs
    t = target(platform, "lambda-functions", selector="app=fleet")
    assert preview_count(platform, experiment(platform, "lambda-throttle", t["id"])["id"]) == 60


# -- ssm-cpu-stress, ssm-memory-stress -----------------------------------------------------------


def managed_instances(platform: Platform, count: int, tags: dict[str, str]) -> list[str]:
    """Instances with an instance profile: the embedded SSM counts them as managed and Online."""
    iam = platform.session.client("iam")
    if not iam.list_instance_profiles()["InstanceProfiles"]:
        iam.create_instance_profile(InstanceProfileName="ssm-managed")
    # One at a time: moto attaches the profile to the first instance of a multi-instance launch only.
    return [
        platform.ec2.run_instances(
            ImageId="ami-12c6146b",
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            IamInstanceProfile={"Name": "ssm-managed"},
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in owned(tags).items()]}
            ],
        )["Instances"][0]["InstanceId"]
        for _ in range(count)
    ]


def commands(platform: Platform, instance_id: str) -> list[dict]:
    return platform.session.client("ssm").list_commands(InstanceId=instance_id)["Commands"]


def test_ssm_cpu_stress_runs_the_managed_document_and_an_early_stop_cancels_it(platform: Platform) -> None:
    web = managed_instances(platform, 2, {"app": "web"})
    unmanaged = platform.instances(1, {"app": "web"})  # no SSM agent: matched, never eligible
    t = target(platform, "ec2-instances", selector="app=web")
    e = experiment(platform, "ssm-cpu-stress", t["id"], duration=HELD, parameters={"load_percent": 80})
    preview = platform.json("POST", f"/experiments/{e['id']}/preview")
    assert [(r["id"], r["state"]) for r in preview["excluded"]] == [(unmanaged[0], "running-ssm-not-managed")]

    result_id = hold(platform, e["id"])
    for instance in web:
        (command,) = commands(platform, instance)
        assert command["DocumentName"] == "AWSFIS-Run-CPU-Stress" and command["Status"] == "InProgress"
        assert command["Parameters"]["DurationSeconds"] == ["600"]  # ends by itself, even if never cancelled
        assert (
            command["Parameters"]["LoadPercent"] == ["80"] and command["Comment"] == f"chaosplane {result_id}"
        )
    assert commands(platform, unmanaged[0]) == []

    result = stop(platform, e["id"], result_id)

    assert result["status"] == "stopped", result
    for instance in web:
        assert [c["Status"] for c in commands(platform, instance)] == ["Cancelled"]
    assert {r["restored"] for r in result["resources"]} == {"stress cancelled"}
    rolled_back_again(platform, result_id)


def test_ssm_memory_stress_needs_its_percent_and_ends_by_itself(platform: Platform) -> None:
    (instance,) = managed_instances(platform, 1, {"app": "web"})
    t = target(platform, "ec2-instances", selector="app=web")
    missing = platform.api(
        "POST", "/experiments", {"name": "m", "type": "ssm-memory-stress", "target": t["id"], "duration": 1}
    )
    # Its parameters are required (the document says so: `percent` has no default)...
    assert missing.status_code == 422
    assert [e["field"] for e in missing.get_json()["errors"]] == ["body.parameters"]
    # ...and an empty set of them names what is missing.
    empty = platform.api(
        "POST",
        "/experiments",
        {"name": "m", "type": "ssm-memory-stress", "target": t["id"], "duration": 1, "parameters": {}},
    )
    assert empty.status_code == 422
    assert [e["field"] for e in empty.get_json()["errors"]] == ["body.parameters.percent"]
    e = experiment(platform, "ssm-memory-stress", t["id"], parameters={"percent": 60, "workers": 2})

    result = run(platform, e["id"])

    assert result["status"] == "completed", result
    (command,) = commands(platform, instance)
    assert command["DocumentName"] == "AWSFIS-Run-Memory-Stress"
    assert command["Parameters"]["Percent"] == ["60"] and command["Status"] in ("Success", "Cancelled")


def test_ssm_stress_access_denied_sends_nothing(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    web = managed_instances(platform, 2, {"app": "web"})
    t = target(platform, "ec2-instances", selector="app=web")
    e = experiment(platform, "ssm-cpu-stress", t["id"])
    deny(
        monkeypatch, SimpleSystemManagerBackend, "send_command", JsonRESTError("AccessDeniedException", "no")
    )
    result = run(platform, e["id"])
    failed_with_access_denied(result, "AccessDeniedException")
    assert all(commands(platform, i) == [] for i in web)
    assert {e["status"]["S"] for e in journal(platform, result["id"])} == {"rolled_back"}


def test_ssm_managed_instances_are_resolved_across_pages(platform: Platform) -> None:
    managed_instances(platform, 60, {"app": "fleet"})  # DescribeInstanceInformation: 50 ids per call
    t = target(platform, "ec2-instances", selector="app=fleet")
    preview = platform.json(
        "POST", f"/experiments/{experiment(platform, 'ssm-cpu-stress', t['id'])['id']}/preview"
    )
    assert len(preview["selected"]) + len(preview["eligible_not_selected"]) + len(preview["excluded"]) == 60
    assert not [r for r in preview["excluded"] if r["reason"] == "not in a state the fault acts on"]


# -- network-blackhole ---------------------------------------------------------------------------


def subnets(
    platform: Platform, count: int, tags: dict[str, str], vpc: str | None = None
) -> tuple[str, list[str]]:
    ec2 = platform.ec2
    vpc = vpc or ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    taken = {
        s["CidrBlock"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    }
    free = (f"10.0.{n}.0/24" for n in range(256) if f"10.0.{n}.0/24" not in taken)
    ids = [
        ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=next(free),
            TagSpecifications=[
                {"ResourceType": "subnet", "Tags": [{"Key": k, "Value": v} for k, v in owned(tags).items()]}
            ],
        )["Subnet"]["SubnetId"]
        for _ in range(count)
    ]
    return vpc, ids


def acl_of(platform: Platform, subnet: str) -> str:
    found = platform.ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )
    (acl,) = found["NetworkAcls"]
    return str(acl["NetworkAclId"])


def blackhole_acls(platform: Platform) -> list[dict]:
    return platform.ec2.describe_network_acls(Filters=[{"Name": "tag-key", "Values": ["chaosplane:run"]}])[
        "NetworkAcls"
    ]


def test_network_blackhole_swaps_to_a_deny_all_acl_and_restores_the_original(platform: Platform) -> None:
    vpc, (first, second) = subnets(platform, 2, {"tier": "app"})
    _, (other,) = subnets(platform, 1, {"tier": "db"}, vpc=vpc)
    original = {s: acl_of(platform, s) for s in (first, second, other)}
    t = target(platform, "subnets", selector="tier=app")
    e = experiment(platform, "network-blackhole", t["id"], duration=HELD)

    result_id = hold(platform, e["id"])
    ours_first, ours_second = acl_of(platform, first), acl_of(platform, second)
    made = {a["NetworkAclId"]: a for a in blackhole_acls(platform)}
    assert set(made) == {ours_first, ours_second} and ours_first != ours_second
    for acl in made.values():
        assert not [entry for entry in acl["Entries"] if entry["RuleAction"] == "allow"]  # denies everything
        assert {"Key": "chaosplane:run", "Value": result_id} in acl["Tags"]
    assert acl_of(platform, other) == original[other]

    result = stop(platform, e["id"], result_id)

    assert result["status"] == "stopped", result
    assert {s: acl_of(platform, s) for s in original} == original
    assert blackhole_acls(platform) == []  # the platform's ACLs are deleted
    rolled_back_again(platform, result_id)
    assert {s: acl_of(platform, s) for s in original} == original


def test_network_blackhole_access_denied_leaves_the_subnet_and_no_acl(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (subnet,) = subnets(platform, 1, {"tier": "app"})
    original = acl_of(platform, subnet)
    t = target(platform, "subnets", resource_ids=[subnet])
    e = experiment(platform, "network-blackhole", t["id"])
    # The ACL gets created, then the swap is refused: rollback must find the ACL by its tags and delete it.
    deny(
        monkeypatch,
        NetworkAclBackend,
        "replace_network_acl_association",
        EC2ClientError("UnauthorizedOperation", "You are not authorized to perform this operation."),
    )
    failed_with_access_denied(run(platform, e["id"]), "UnauthorizedOperation")
    assert acl_of(platform, subnet) == original
    assert blackhole_acls(platform) == []


def test_subnets_are_resolved_across_pages(platform: Platform) -> None:
    subnets(platform, 230, {"tier": "fleet"})  # DescribeSubnets: 200 per page
    t = target(platform, "subnets", selector="tier=fleet")
    assert preview_count(platform, experiment(platform, "network-blackhole", t["id"])["id"]) == 230


# -- targets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "ecs-tasks", "selector": "app=web"}, "cluster"),
        ({"type": "rds-instances", "selector": "app=web", "cluster": "prod"}, "cluster"),
        ({"type": "rds-instances", "selector": "app=web", "service": "web"}, "service"),
        ({"type": "subnets", "resource_ids": ["sg-12345678"]}, "resource_ids"),
        ({"type": "lambda-functions", "resource_ids": ["bad name!"]}, "resource_ids"),
        ({"type": "ecs-tasks", "cluster": "prod", "resource_ids": ["not-a-task"]}, "resource_ids"),
    ],
)
def test_cloud_targets_are_validated(platform: Platform, body: dict, field: str) -> None:
    response = platform.api("POST", "/targets", {"name": "t", **body})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert any(field in p["field"] or field in p["message"] for p in response.get_json()["errors"])
    assert platform.json("GET", "/targets")["items"] == []


def test_a_fault_needs_its_own_target_type(platform: Platform) -> None:
    t = target(platform, "subnets", selector="tier=app")
    body = {"name": "x", "type": "lambda-throttle", "target": t["id"], "duration": 1}
    response = platform.api("POST", "/experiments", body)
    assert response.status_code == 422 and "lambda-functions" in response.get_json()["message"]
