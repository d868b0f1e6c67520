"""AWS FIS templates: imported into Chaosplane bodies that validate, exported back unchanged, and
refused with every problem named at once.

The templates are written after the AWS FIS user guide's examples (experiment-template-example,
the EKS pod, ECS task and network actions), with their placeholders filled in.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from chaosplane.fis import (
    FisExportError,
    FisImport,
    FisImportError,
    export_template,
    format_duration,
    import_template,
    parse_duration,
)
from chaosplane.graph import ExperimentGraph
from chaosplane.models import TARGET_SPEC

REGION, ACCOUNT = "us-east-1", "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/role-name"
ALARM = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:alarm-name"
SERVICE_ACCOUNT = "myserviceaccount"

# Both stop examples stop their targets and start them again two minutes later.
STOP_AND_RESTART: dict[str, Any] = {
    "actions": {
        "StopInstances": {
            "actionId": "aws:ec2:stop-instances",
            "description": "stop the instances",
            "parameters": {"startInstancesAfterDuration": "PT2M"},
            "targets": {"Instances": "myInstances"},
        }
    },
    "stopConditions": [{"source": "aws:cloudwatch:alarm", "value": ALARM}],
    "roleArn": ROLE,
}

STOP_BY_FILTERS = {
    "tags": {"Name": "StopEC2InstancesWithFilters"},
    "description": "Stop and restart all instances in us-east-1b with the tag env=prod in the specified VPC",
    "targets": {
        "myInstances": {
            "resourceType": "aws:ec2:instance",
            "resourceTags": {"env": "prod"},
            "filters": [
                {"path": "Placement.AvailabilityZone", "values": ["us-east-1b"]},
                {"path": "State.Name", "values": ["running"]},
                {"path": "VpcId", "values": ["vpc-aabbcc11223344556"]},
            ],
            "selectionMode": "ALL",
        }
    },
    **STOP_AND_RESTART,
}

STOP_BY_COUNT = {
    "tags": {"Name": "StopEC2InstancesByCount"},
    "description": "Stop and restart three instances with the specified tag",
    "targets": {
        "myInstances": {
            "resourceType": "aws:ec2:instance",
            "resourceTags": {"env": "prod"},
            "selectionMode": "COUNT(3)",
        }
    },
    **STOP_AND_RESTART,
}

SSM_CPU_STRESS = {
    "tags": {"Name": "CPUStress"},
    "description": "Run a CPU fault injection on the specified instance",
    "targets": {
        "myInstance": {
            "resourceType": "aws:ec2:instance",
            "resourceArns": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"],
            "selectionMode": "ALL",
        }
    },
    "actions": {
        "CPUStress": {
            "actionId": "aws:ssm:send-command",
            "description": "run cpu stress using ssm",
            "parameters": {
                "duration": "PT2M",
                "documentArn": f"arn:aws:ssm:{REGION}::document/AWSFIS-Run-CPU-Stress",
                "documentParameters": '{"DurationSeconds": "120", "InstallDependencies": "True", "CPU": "0"}',
            },
            "targets": {"Instances": "myInstance"},
        }
    },
    "stopConditions": [{"source": "none"}],
    "roleArn": ROLE,
}

EKS_CPU_STRESS = {
    "description": "Stress test CPU of pods in a Kubernetes cluster",
    "targets": {
        "Pods-Target-1": {
            "resourceType": "aws:eks:pod",
            "parameters": {
                "clusterIdentifier": "mycluster",
                "namespace": "default",
                "selectorType": "labelSelector",
                "selectorValue": "app=nginx",
            },
            "selectionMode": "ALL",
        }
    },
    "actions": {
        "EksPod-CPU-stress": {
            "actionId": "aws:eks:pod-cpu-stress",
            "parameters": {
                "kubernetesServiceAccount": SERVICE_ACCOUNT,
                "duration": "PT1M",
                "percent": "80",
                "workers": "2",
            },
            "targets": {"Pods": "Pods-Target-1"},
        }
    },
    "stopConditions": [{"source": "none"}],
    "roleArn": ROLE,
    "tags": {"Name": "EksPodStress"},
}

ECS_STOP_TASK = {
    "description": "Stop one task of the web service",
    "targets": {
        "Tasks": {
            "resourceType": "aws:ecs:task",
            "resourceTags": {"app": "web"},
            "parameters": {"cluster": "prod", "service": "web"},
            "selectionMode": "COUNT(1)",
        }
    },
    "actions": {"StopTask": {"actionId": "aws:ecs:stop-task", "targets": {"Tasks": "Tasks"}}},
    "stopConditions": [{"source": "aws:cloudwatch:alarm", "value": ALARM}],
    "roleArn": ROLE,
}

DISRUPT_CONNECTIVITY = {
    "description": "Cut the cache subnets off for two minutes",
    "targets": {
        "Subnets": {
            "resourceType": "aws:ec2:subnet",
            "resourceArns": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-0a1b2c3d4e5f60718"],
            "selectionMode": "ALL",
        }
    },
    "actions": {
        "Blackhole": {
            "actionId": "aws:network:disrupt-connectivity",
            "parameters": {"duration": "PT2M", "scope": "all"},
            "targets": {"Subnets": "Subnets"},
        }
    },
    "stopConditions": [{"source": "none"}],
    "roleArn": ROLE,
}

# The game day, as GetExperimentTemplate answers it: stop a third of the web tier; after a minute's
# wait, reboot the database with a failover and check its alarm; meanwhile delay and squeeze the
# pods, then delete one and terminate a spare instance (both irreversible).
GAME_DAY = {
    "experimentTemplate": {
        "id": "EXT1a2b3c4d5e6f7",
        "arn": f"arn:aws:fis:{REGION}:{ACCOUNT}:experiment-template/EXT1a2b3c4d5e6f7",
        "description": "Game day",
        "targets": {
            "Web": {
                "resourceType": "aws:ec2:instance",
                "resourceTags": {"tier": "web", "env": "prod"},
                "filters": [{"path": "Placement.AvailabilityZone", "values": ["us-east-1a"]}],
                "selectionMode": "PERCENT(33)",
            },
            "Spare": {
                "resourceType": "aws:ec2:instance",
                "resourceArns": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0fedcba9876543210"],
                "selectionMode": "ALL",
            },
            "Db": {
                "resourceType": "aws:rds:db",
                "resourceArns": [f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-primary"],
                "selectionMode": "ALL",
            },
            "Pods": {
                "resourceType": "aws:eks:pod",
                "parameters": {
                    "clusterIdentifier": "prod",
                    "namespace": "shop",
                    "selectorType": "labelSelector",
                    "selectorValue": "app=cart",
                },
                "selectionMode": "COUNT(2)",
            },
            "OnePod": {
                "resourceType": "aws:eks:pod",
                "parameters": {
                    "clusterIdentifier": "prod",
                    "namespace": "shop",
                    "selectorType": "podName",
                    "selectorValue": "cart-7d9f8b6c5-x2k4q",
                },
                "selectionMode": "ALL",
            },
        },
        "actions": {
            "StopWeb": {
                "actionId": "aws:ec2:stop-instances",
                "parameters": {"startInstancesAfterDuration": "PT5M"},
                "targets": {"Instances": "Web"},
            },
            "Settle": {"actionId": "aws:fis:wait", "parameters": {"duration": "PT1M"}},
            "RebootDb": {
                "actionId": "aws:rds:reboot-db-instances",
                "parameters": {"forceFailover": "true"},
                "targets": {"DBInstances": "Db"},
                "startAfter": ["Settle"],
            },
            "CheckDb": {
                "actionId": "aws:cloudwatch:assert-alarm-state",
                "parameters": {"alarmArns": ALARM, "alarmStates": "OK,INSUFFICIENT_DATA"},
                "startAfter": ["RebootDb"],
            },
            "Latency": {
                "actionId": "aws:eks:pod-network-latency",
                "parameters": {
                    "duration": "PT10M",
                    "delayMilliseconds": "150",
                    "kubernetesServiceAccount": SERVICE_ACCOUNT,
                    "maxErrorsPercent": "0",
                },
                "targets": {"Pods": "Pods"},
            },
            "Loss": {
                "actionId": "aws:eks:pod-network-packet-loss",
                "parameters": {
                    "duration": "PT3M",
                    "lossPercent": "20",
                    "kubernetesServiceAccount": SERVICE_ACCOUNT,
                },
                "targets": {"Pods": "Pods"},
                "startAfter": ["Latency"],
            },
            "Memory": {
                "actionId": "aws:eks:pod-memory-stress",
                "parameters": {"duration": "PT2M", "kubernetesServiceAccount": SERVICE_ACCOUNT},
                "targets": {"Pods": "Pods"},
                "startAfter": ["Settle"],
            },
            "DeletePod": {
                "actionId": "aws:eks:pod-delete",
                "parameters": {"gracePeriodSeconds": "0", "kubernetesServiceAccount": SERVICE_ACCOUNT},
                "targets": {"Pods": "OnePod"},
                "startAfter": ["Loss"],
            },
            "MemoryStressSpare": {
                "actionId": "aws:ssm:send-command",
                "parameters": {
                    "duration": "PT4M",
                    "documentArn": f"arn:aws:ssm:{REGION}::document/AWSFIS-Run-Memory-Stress",
                    "documentParameters": '{"DurationSeconds": "240", "Percent": "70"}',
                },
                "targets": {"Instances": "Spare"},
            },
            "TerminateSpare": {
                "actionId": "aws:ec2:terminate-instances",
                "targets": {"Instances": "Spare"},
                "startAfter": ["MemoryStressSpare"],
            },
        },
        "stopConditions": [{"source": "aws:cloudwatch:alarm", "value": ALARM}],
        "creationTime": "2026-11-30T10:00:00.000000+00:00",
        "lastUpdateTime": "2026-11-30T10:00:00.000000+00:00",
        "roleArn": ROLE,
        "tags": {"Name": "GameDay", "team": "shop"},
        "experimentOptions": {"accountTargeting": "single-account", "emptyTargetResolutionMode": "fail"},
        "targetAccountConfigurationsCount": 0,
        "logConfiguration": {
            "cloudWatchLogsConfiguration": {
                "logGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:fis:*"
            },
            "logSchemaVersion": 2,
        },
    }
}

EXAMPLES = {
    "stop-by-filters": STOP_BY_FILTERS,
    "stop-by-count": STOP_BY_COUNT,
    "ssm-cpu-stress": SSM_CPU_STRESS,
    "eks-cpu-stress": EKS_CPU_STRESS,
    "ecs-stop-task": ECS_STOP_TASK,
    "disrupt-connectivity": DISRUPT_CONNECTIVITY,
    "game-day": GAME_DAY,
}

# What FIS assumes when a parameter is left out, which an export writes out.
FIS_DEFAULTS: dict[str, dict[str, str]] = {
    "aws:rds:reboot-db-instances": {"forceFailover": "false"},
    "aws:network:disrupt-connectivity": {"scope": "all"},
    "aws:eks:pod-network-latency": {
        "delayMilliseconds": "200",
        "jitterMilliseconds": "10",
        "interface": "eth0",
    },
    "aws:eks:pod-network-packet-loss": {"lossPercent": "7", "interface": "eth0"},
    "aws:eks:pod-cpu-stress": {"percent": "100"},
    "aws:eks:pod-memory-stress": {"percent": "80", "workers": "1"},
}
DOCUMENT_DEFAULTS = {
    "AWSFIS-Run-CPU-Stress": {"CPU": "0", "LoadPercent": "100", "InstallDependencies": "True"},
    "AWSFIS-Run-Memory-Stress": {"Workers": "1", "InstallDependencies": "True"},
}
# Accepted and dropped: what configures FIS's own pod, or holds Chaosplane's only behaviour.
IGNORED_PARAMETERS = {"maxErrorsPercent", "sources", "fisPodContainerImage", "fisPodLabels"}


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    """A template as an export writes it: FIS's defaults written out, what Chaosplane ignores left
    out, durations in their shortest spelling, SSM document parameters decoded."""
    template = copy.deepcopy(document.get("experimentTemplate", document))
    out: dict[str, Any] = {
        "description": template["description"],
        "targets": {},
        "actions": {},
        "stopConditions": template.get("stopConditions") or [{"source": "none"}],
        "tags": {"Name": (template.get("tags") or {}).get("Name") or template["description"]},
        "roleArn": template["roleArn"],
    }
    for name, target in template["targets"].items():
        target = {k: v for k, v in target.items() if v}
        target["selectionMode"] = target["selectionMode"].upper()
        out["targets"][name] = target
    for name, action in template["actions"].items():
        action = {k: v for k, v in action.items() if v}
        parameters = {**FIS_DEFAULTS.get(action["actionId"], {}), **action.get("parameters", {})}
        parameters = {k: v for k, v in parameters.items() if k not in IGNORED_PARAMETERS}
        for key in ("duration", "startInstancesAfterDuration"):
            if key in parameters:
                parameters[key] = format_duration(parse_duration(parameters[key]))
        if "documentArn" in parameters:
            document_name = parameters["documentArn"].rsplit("/", 1)[-1]
            parameters["documentParameters"] = {
                **DOCUMENT_DEFAULTS[document_name],
                **json.loads(parameters["documentParameters"]),
            }
        if parameters:
            action["parameters"] = parameters
        out["actions"][name] = action
    return out


def decoded(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    for action in template["actions"].values():
        parameters = action.get("parameters", {})
        if "documentParameters" in parameters:
            parameters["documentParameters"] = json.loads(parameters["documentParameters"])
    return template


def ids_for(imported: FisImport) -> dict[str, str]:
    return {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in imported.targets}


def round_trip(document: dict[str, Any]) -> dict[str, Any]:
    imported = import_template(document, allow_irreversible=True)
    ids = ids_for(imported)
    stored = {ids[name]: {**body, "id": ids[name]} for name, body in imported.targets.items()}
    return export_template(
        imported.experiment(ids),
        stored,
        region=REGION,
        account=ACCOUNT,
        role_arn=ROLE,
        kubernetes_service_account=SERVICE_ACCOUNT,
    )


@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_a_template_from_the_user_guide_imports_into_bodies_that_validate(example: dict[str, Any]) -> None:
    imported = import_template(example, allow_irreversible=True)

    for body in imported.targets.values():
        TARGET_SPEC.validate_python(body)
    experiment = imported.experiment(ids_for(imported))
    graph = ExperimentGraph.model_validate(
        {key: experiment[key] for key in ("targets", "actions", "duration")}
    )
    template = example.get("experimentTemplate", example)
    assert set(graph.targets) == set(template["targets"]) and set(graph.actions) == set(template["actions"])
    assert set(experiment) == {
        "name",
        "description",
        "targets",
        "actions",
        "stop_conditions",
        "duration",
        "allow_irreversible",
    }


@pytest.mark.parametrize("example", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_import_then_export_gives_the_template_back(example: dict[str, Any]) -> None:
    assert decoded(round_trip(example)) == normalized(example)


def test_the_stop_example_maps_field_by_field() -> None:
    imported = import_template(STOP_BY_FILTERS)

    assert imported.targets == {
        "myInstances": {"name": "myInstances", "type": "ec2-instances", "selector": "env=prod"}
    }
    assert imported.experiment({"myInstances": "0e1a7b0c-1111-4222-8333-444455556666"}) == {
        "name": "StopEC2InstancesWithFilters",
        "description": STOP_BY_FILTERS["description"],
        "targets": {
            "myInstances": {
                "target": "0e1a7b0c-1111-4222-8333-444455556666",
                "selection": "ALL",
                "filters": STOP_BY_FILTERS["targets"]["myInstances"]["filters"],
            }
        },
        "actions": {
            "StopInstances": {
                "description": "stop the instances",
                "fault": "ec2-stop",
                "target": "myInstances",
                "parameters": {"force": False},
                "duration": 120,
                "start_after": [],
            }
        },
        "stop_conditions": [ALARM],
        "duration": 300,  # the 2 min chain plus a minute, at least five minutes
        "allow_irreversible": False,
    }
    assert imported.notes == ["roleArn: ignored; Chaosplane acts with its own executor role"]


def test_the_game_day_maps_its_parameters_and_derives_its_duration() -> None:
    imported = import_template(GAME_DAY, allow_irreversible=True)
    actions = imported.body["actions"]

    assert imported.targets["Db"] == {
        "name": "Db",
        "type": "rds-instances",
        "resource_ids": ["orders-primary"],
    }
    assert imported.targets["Pods"] == {
        "name": "Pods",
        "type": "eks-pods",
        "cluster": "prod",
        "namespace": "shop",
        "selector": "app=cart",
    }
    assert imported.targets["OnePod"]["resource_ids"] == ["cart-7d9f8b6c5-x2k4q"]
    assert imported.body["targets"]["Web"]["selection"] == "PERCENT(33)"
    assert actions["RebootDb"]["parameters"] == {"force_failover": True}
    assert actions["CheckDb"] == {
        "description": "",
        "fault": "assert-alarm-state",
        "target": None,
        "parameters": {"alarms": [ALARM], "states": ["OK", "INSUFFICIENT_DATA"]},
        "duration": None,
        "start_after": ["RebootDb"],
    }
    assert actions["Latency"]["parameters"] == {"delay_ms": 150, "jitter_ms": 10, "interface": "eth0"}
    assert actions["Memory"]["parameters"] == {"workers": 1, "size": "80%"}
    assert actions["MemoryStressSpare"]["fault"] == "ssm-memory-stress"
    assert actions["MemoryStressSpare"]["parameters"] == {
        "percent": 70,
        "workers": 1,
        "install_dependencies": True,
    }
    assert actions["MemoryStressSpare"]["duration"] == 240
    # The longest chain is Latency (10 min) then Loss (3 min): 13 min, plus a minute.
    assert imported.body["duration"] == 14 * 60
    assert imported.body["allow_irreversible"] is True
    assert imported.body["name"] == "GameDay"
    assert any(note.startswith("logConfiguration: ignored") for note in imported.notes)


def test_the_duration_can_be_given_and_is_still_checked() -> None:
    assert import_template(STOP_BY_COUNT, duration=900).body["duration"] == 900
    with pytest.raises(FisImportError) as caught:
        import_template(STOP_BY_COUNT, duration=60)
    assert caught.value.problems == [
        "actions.StopInstances.duration: 120s is longer than the experiment (60s)"
    ]


def test_irreversible_actions_need_consent_and_each_is_named() -> None:
    with pytest.raises(FisImportError) as caught:
        import_template(GAME_DAY)

    assert caught.value.problems == [
        "actions.DeletePod.actionId: aws:eks:pod-delete cannot be rolled back; "
        "import it with allow_irreversible to accept that",
        "actions.TerminateSpare.actionId: aws:ec2:terminate-instances cannot be rolled back; "
        "import it with allow_irreversible to accept that",
    ]


BROKEN = {
    "description": "everything wrong at once",
    "targets": {
        "Web": {
            "resourceType": "aws:ec2:instance",
            "resourceTags": {"env": "prod stage"},
            "selectionMode": "SOME(3)",
        },
        "Spot": {"resourceType": "aws:ec2:spot-instance", "selectionMode": "ALL"},
        "Subnets": {
            "resourceType": "aws:ec2:subnet",
            "resourceArns": ["subnet-0a1b2c3d"],
            "selectionMode": "ALL",
        },
        "Pods": {
            "resourceType": "aws:eks:pod",
            "resourceTags": {"app": "cart"},
            "parameters": {
                "clusterIdentifier": "prod",
                "namespace": "shop",
                "selectorType": "deploymentName",
            },
            "selectionMode": "ALL",
        },
        "Tasks": {"resourceType": "aws:ecs:task", "resourceTags": {"app": "web"}, "selectionMode": "ALL"},
    },
    "actions": {
        "Interrupt": {
            "actionId": "aws:ec2:send-spot-instance-interruptions",
            "targets": {"SpotInstances": "Spot"},
        },
        "Stop": {
            "actionId": "aws:ec2:stop-instances",
            "parameters": {"startInstancesAfterDuration": "5 minutes", "foo": "bar"},
            "targets": {"Servers": "Web"},
        },
        "Reboot": {"actionId": "aws:ec2:reboot-instances", "targets": {"Instances": "Subnets"}},
        "Cut": {
            "actionId": "aws:network:disrupt-connectivity",
            "parameters": {"duration": "PT2M", "scope": "availability-zone"},
            "targets": {"Subnets": "Subnets"},
            "startAfter": ["Nowhere"],
        },
        "Script": {
            "actionId": "aws:ssm:send-command",
            "parameters": {"documentArn": f"arn:aws:ssm:{REGION}::document/AWS-RunShellScript"},
            "targets": {"Instances": "Web"},
        },
        "Stress": {
            "actionId": "aws:eks:pod-cpu-stress",
            "parameters": {"duration": "PT1M"},
            "targets": {"Pods": "Pods"},
        },
        "Latency": {
            "actionId": "aws:eks:pod-network-latency",
            "parameters": {"duration": "pt1m", "interface": "eth0,eth1"},
            "targets": {"Pods": "Pods"},
        },
        "Terminate": {"actionId": "aws:ec2:terminate-instances", "targets": {"Instances": "Web"}, "extra": 1},
    },
    "stopConditions": [{"source": "aws:cloudwatch:metric", "value": "x"}],
    "experimentOptions": {"accountTargeting": "multi-account"},
    "experimentReportConfiguration": {"outputs": {}},
    "roleArn": ROLE,
    "name": "not an FIS field",
}


def test_a_template_that_does_not_map_is_refused_with_every_problem_named() -> None:
    with pytest.raises(FisImportError) as caught:
        import_template(BROKEN)

    assert caught.value.problems == [
        "name: unknown key: it does not map to Chaosplane",
        "experimentReportConfiguration: Chaosplane writes no FIS experiment reports",
        "experimentOptions.accountTargeting: multi-account; Chaosplane targets a single account",
        "stopConditions.0.source: aws:cloudwatch:metric is not supported (aws:cloudwatch:alarm or none)",
        "actions.Terminate.extra: unknown key: it does not map to Chaosplane",
        "targets.Web.resourceTags.env: the tag cannot be a label selector (letters, digits, _.:/@+- only)",
        "targets.Web.selectionMode: selection must be ALL, COUNT(n) or PERCENT(n) (n from 1, a percentage "
        "up to 100), not 'SOME(3)'",
        "targets.Spot.resourceType: aws:ec2:spot-instance is not supported (aws:ec2:instance, aws:rds:db, "
        "aws:rds:cluster, aws:ecs:task, aws:ec2:subnet, aws:eks:pod)",
        "targets.Subnets.resourceArns.0: 'subnet-0a1b2c3d' is not the ARN of an aws:ec2:subnet",
        "targets.Pods: aws:eks:pod targets are found by parameters, not tags or ARNs (as FIS)",
        "targets.Pods.parameters.selectorValue: required",
        "targets.Pods.parameters.selectorType: deploymentName is not supported (labelSelector or podName)",
        "targets.Tasks.parameters.cluster: required (Chaosplane's ecs-tasks targets name their cluster)",
        "actions.Interrupt.actionId: aws:ec2:send-spot-instance-interruptions is not supported",
        "actions.Stop.targets.Servers: aws:ec2:stop-instances takes its target as Instances",
        "actions.Stop.targets.Instances: required",
        "actions.Stop.parameters.startInstancesAfterDuration: '5 minutes' is not an ISO-8601 duration of "
        "hours, minutes and seconds, e.g. PT5M",
        "actions.Stop.parameters.foo: unknown key: it does not map to Chaosplane",
        "actions.Reboot.targets.Instances: 'Subnets' is aws:ec2:subnet; aws:ec2:reboot-instances acts on "
        "aws:ec2:instance",
        "actions.Cut.startAfter: 'Nowhere' is not an action",
        "actions.Cut.parameters.scope: Input should be 'all'",
        "actions.Script.parameters.documentArn: only the AWSFIS-Run-CPU-Stress and AWSFIS-Run-Memory-Stress "
        "documents map, not AWS-RunShellScript",
        "actions.Stress.parameters.workers: FIS's 0 (or its default) loads every CPU; Chaosplane needs a "
        "number of workers",
        "actions.Latency.parameters.duration: 'pt1m' is not an ISO-8601 duration of hours, minutes and "
        "seconds, e.g. PT5M",
        "actions.Latency.parameters.interface: Chaosplane delays one interface per action, not a list",
    ]


def test_ecs_tasks_by_cluster_and_service_alone_are_every_task_of_the_service() -> None:
    template = copy.deepcopy(ECS_STOP_TASK)
    del template["targets"]["Tasks"]["resourceTags"]
    imported = import_template(template)
    body = imported.targets["Tasks"]
    assert body["service"] and not body.get("selector") and not body.get("resource_ids")
    TARGET_SPEC.validate_python(body)
    # A whole cluster's tasks, with no service, tags or ARNs, are never a target.
    del template["targets"]["Tasks"]["parameters"]["service"]
    with pytest.raises(FisImportError) as caught:
        import_template(template)
    assert caught.value.problems == [
        "targets.Tasks: Chaosplane's ecs-tasks targets select by resourceTags, resourceArns or a "
        "service, not every task of a cluster"
    ]


def test_a_bad_selection_mode_is_named() -> None:
    template = copy.deepcopy(STOP_BY_COUNT)
    template["targets"]["myInstances"]["selectionMode"] = "SOME(3)"
    with pytest.raises(FisImportError) as caught:
        import_template(template)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith("targets.myInstances.selectionMode: ")


def test_what_chaosplane_runs_differently_from_fis_is_refused_by_the_graph() -> None:
    # FIS leaves instances stopped and goes on; Chaosplane holds them stopped to the experiment's end,
    # so an action after it would never start.
    template = copy.deepcopy(STOP_BY_COUNT)
    del template["actions"]["StopInstances"]["parameters"]
    template["actions"]["Then"] = {
        "actionId": "aws:ec2:reboot-instances",
        "targets": {"Instances": "myInstances"},
        "startAfter": ["StopInstances"],
    }
    with pytest.raises(FisImportError) as caught:
        import_template(template)
    assert caught.value.problems == [
        "actions.Then.start_after: 'StopInstances' holds until the experiment ends, so 'Then' would never "
        "start; give 'StopInstances' a duration"
    ]


def test_a_chain_longer_than_twelve_hours_is_refused() -> None:
    waits = {
        f"W{i}": {
            "actionId": "aws:fis:wait",
            "parameters": {"duration": "PT5H"},
            **({"startAfter": [f"W{i - 1}"]} if i else {}),
        }
        for i in range(3)
    }
    with pytest.raises(FisImportError) as caught:
        import_template({"description": "long", "actions": waits})
    assert caught.value.problems == [
        "actions: W0 -> W1 -> W2 takes 54000s in all, beyond Chaosplane's 43200s (12 h)"
    ]


def test_an_ssm_duration_that_disagrees_with_its_document_is_refused() -> None:
    template = copy.deepcopy(SSM_CPU_STRESS)
    template["actions"]["CPUStress"]["parameters"]["duration"] = "PT5M"
    with pytest.raises(FisImportError) as caught:
        import_template(template)
    assert caught.value.problems == [
        "actions.CPUStress.parameters.duration: 300s differs from documentParameters.DurationSeconds (120s); "
        "Chaosplane holds the stress for one duration"
    ]


def test_a_binding_must_name_every_target() -> None:
    with pytest.raises(KeyError, match="myInstances"):
        import_template(STOP_BY_COUNT).experiment({})


@pytest.mark.parametrize(
    ("text", "seconds"), [("PT2M", 120), ("PT1H30M", 5400), ("PT90S", 90), ("PT12H", 43200), ("PT1M5S", 65)]
)
def test_iso_durations_parse_and_format(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["P1D", "PT", "PT0S", "PT1.5M", "pt2m", "PT2M ", "-PT2M", "120", "PT1M1H"])
def test_iso_durations_are_parsed_strictly(text: str) -> None:
    with pytest.raises(ValueError, match=r"ISO-8601|no time"):
        parse_duration(text)


WEB = "0e1a7b0c-1111-4222-8333-444455556666"
HOOK = "0e1a7b0c-2222-4222-8333-444455556666"
FN = "0e1a7b0c-3333-4222-8333-444455556666"


def stored(target_id: str, **body: Any) -> dict[str, Any]:
    return {"id": target_id, "team": "t", "description": "", **body}


def test_what_fis_cannot_express_is_refused_on_export_with_each_thing_named() -> None:
    experiment = {
        "name": "mixed",
        "targets": {"web": {"target": WEB}, "hook": {"target": HOOK}, "fn": {"target": FN}},
        "actions": {
            "hook": {"fault": "http-webhook", "target": "hook"},
            "throttle": {"fault": "lambda-throttle", "target": "fn"},
            "stop": {"fault": "ec2-stop", "target": "web", "parameters": {"force": True}},
            "latency": {
                "fault": "pod-network-latency",
                "target": "web",
                "parameters": {"delay_ms": 10},
                "duration": 60,
            },
        },
        "stop_conditions": ["web-5xx"],
        "duration": 600,
        "description": "x" * 600,
    }
    targets = {
        WEB: stored(
            WEB,
            name="web",
            type="ec2-instances",
            selector="tier notin (db)",
            resource_ids=["i-0123456789abcdef0"],
        ),
        HOOK: stored(
            HOOK,
            name="hook",
            type="http-endpoint",
            webhook={
                "inject": {"url": "https://example.com/i"},
                "rollback": {"url": "https://example.com/r"},
            },
        ),
        FN: stored(FN, name="fn", type="lambda-functions", resource_ids=["checkout"]),
    }
    with pytest.raises(FisExportError) as caught:
        export_template(experiment, targets)

    assert caught.value.problems == [
        "targets.web: FIS takes resourceTags or resourceArns, not both",
        "targets.hook: http-endpoint targets have no FIS resource type",
        "targets.fn: lambda-functions targets have no FIS resource type",
        "actions.hook: http-webhook has no FIS action",
        "actions.throttle: lambda-throttle has no FIS action",
        "actions.stop.parameters: force: aws:ec2:stop-instances has no forced stop",
        "actions.latency.target: 'web' is ec2-instances; aws:eks:pod-network-latency acts on eks-pods",
        "stop_conditions: alarm 'web-5xx' needs an ARN: export with region= and account=",
        "description: FIS takes at most 512 characters",
    ]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"selector": "tier notin (db)"}, "FIS resourceTags hold key=value equalities only"),
        ({"selector": "tier=web,tier=api"}, "FIS resourceTags hold each key once"),
        ({"resource_ids": ["i-0123456789abcdef0"]}, "needs an ARN: export with region= and account="),
    ],
)
def test_a_target_fis_cannot_select_is_named(body: dict[str, Any], problem: str) -> None:
    experiment = {
        "name": "e",
        "targets": {"web": {"target": WEB}},
        "actions": {"reboot": {"fault": "ec2-reboot", "target": "web"}},
        "duration": 60,
    }
    with pytest.raises(FisExportError) as caught:
        export_template(experiment, {WEB: stored(WEB, name="web", type="ec2-instances", **body)})
    assert len(caught.value.problems) == 1 and problem in caught.value.problems[0]


def test_a_memory_size_fis_cannot_express_is_named() -> None:
    pods = stored(WEB, name="pods", type="eks-pods", cluster="prod", namespace="shop", selector="app=cart")
    experiment = {
        "name": "e",
        "targets": {"pods": {"target": WEB}},
        "actions": {
            "squeeze": {
                "fault": "pod-memory-stress",
                "target": "pods",
                "parameters": {"size": "256M"},
                "duration": 60,
            }
        },
        "duration": 60,
    }
    with pytest.raises(FisExportError) as caught:
        export_template(experiment, {WEB: pods})
    assert caught.value.problems == [
        "actions.squeeze.parameters: size: FIS stresses a percentage of memory, not 256M"
    ]


def test_a_single_fault_experiment_exports_as_its_one_action() -> None:
    experiment = {
        "name": "stop one",
        "target": WEB,
        "type": "ec2-stop",
        "duration": 300,
        "selection": "COUNT(1)",
        "stop_conditions": [ALARM],
    }
    template = export_template(
        experiment, {WEB: stored(WEB, name="web", type="ec2-instances", selector="tier=web")}
    )

    assert template == {
        "description": "stop one",
        "targets": {
            "target": {
                "resourceType": "aws:ec2:instance",
                "resourceTags": {"tier": "web"},
                "selectionMode": "COUNT(1)",
            }
        },
        "actions": {"ec2-stop": {"actionId": "aws:ec2:stop-instances", "targets": {"Instances": "target"}}},
        "stopConditions": [{"source": "aws:cloudwatch:alarm", "value": ALARM}],
        "tags": {"Name": "stop one"},
    }


def test_ecs_tasks_by_arn_take_their_cluster_from_the_arns_and_round_trip() -> None:
    task = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/0123456789abcdef0123456789abcdef"
    template = copy.deepcopy(ECS_STOP_TASK)
    template["targets"]["Tasks"] = {
        "resourceType": "aws:ecs:task",
        "resourceArns": [task],
        "selectionMode": "ALL",
    }

    imported = import_template(template)

    assert imported.targets["Tasks"] == {
        "name": "Tasks",
        "type": "ecs-tasks",
        "cluster": "prod",
        "resource_ids": [task],
    }
    assert decoded(round_trip(template)) == normalized(template)


def test_a_boto3_response_imports_and_what_is_outside_the_template_is_noted() -> None:
    response = copy.deepcopy(GAME_DAY)
    response["ResponseMetadata"] = {"HTTPStatusCode": 200}
    response["experimentTemplate"]["creationTime"] = datetime(2026, 11, 30, 10, tzinfo=UTC)

    imported = import_template(response, allow_irreversible=True)

    assert "ResponseMetadata: ignored (outside experimentTemplate)" in imported.notes
    assert "tags: ignored, but for Name (the experiment's name)" in imported.notes


def test_a_failover_imports_as_held_to_the_end() -> None:
    template = {
        "description": "fail over the orders cluster",
        "targets": {
            "Orders": {
                "resourceType": "aws:rds:cluster",
                "resourceArns": [f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:orders"],
                "selectionMode": "ALL",
            }
        },
        "actions": {
            "Failover": {"actionId": "aws:rds:failover-db-cluster", "targets": {"Clusters": "Orders"}}
        },
        "stopConditions": [{"source": "none"}],
        "roleArn": ROLE,
    }
    imported = import_template(template)

    assert imported.targets["Orders"]["resource_ids"] == ["orders"]
    assert imported.body["actions"]["Failover"]["fault"] == "rds-failover"
    assert imported.body["duration"] == 300  # nothing has a duration: the floor
    assert decoded(round_trip(template)) == normalized(template)


def test_alarm_names_are_exported_as_arns_in_the_given_region_and_account() -> None:
    experiment = {
        "name": "check",
        "targets": {},
        "actions": {
            "check": {"fault": "assert-alarm-state", "parameters": {"alarms": ["web-5xx"], "states": ["OK"]}}
        },
        "stop_conditions": ["web-5xx"],
        "duration": 60,
    }
    template = export_template(experiment, {}, region="eu-west-1", account=ACCOUNT, partition="aws")
    arn = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:web-5xx"

    assert template["actions"]["check"]["parameters"] == {"alarmArns": arn, "alarmStates": "OK"}
    assert template["stopConditions"] == [{"source": "aws:cloudwatch:alarm", "value": arn}]
