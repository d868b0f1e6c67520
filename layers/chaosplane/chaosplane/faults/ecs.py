"""ECS tasks: `ecs-stop-task`, selected by cluster (and service) plus task tags or task ids.

Only tasks that belong to a service are eligible: the service's scheduler starts a replacement,
which is the recovery the experiment is about. A standalone task (a batch job, a one-off) would
stay stopped with nothing to bring it back, so it is resolved and shown, never hit. Rollback has
nothing to start; it records what became of the task.
"""

from __future__ import annotations

from typing import Any

from chaosplane.errors import InjectionFailed, NotEligible
from chaosplane.faults.aws import Matcher, acting, attributes, chunks, pages, reading, tags_of
from chaosplane.faults.base import Journal, Resource
from chaosplane.graph import FILTER_PATHS
from chaosplane.models import FaultType, JournalEntry, Target, TargetType

KIND = "ecs:task"
STOP = "ecs:StopTask"
STANDALONE = "RUNNING-standalone"
_DESCRIBE_LIMIT = 100  # DescribeTasks takes at most 100 tasks


def _service_name(service: str) -> str:
    return service.rsplit("/", 1)[-1]


def _state(task: dict[str, Any]) -> str:
    status = str(task.get("lastStatus", "UNKNOWN"))
    if task.get("desiredStatus") == "STOPPED" and status != "STOPPED":
        return "STOPPING"
    if status == "RUNNING" and not str(task.get("group", "")).startswith("service:"):
        return STANDALONE
    return status


class EcsTasks:
    eligible_states = frozenset({"RUNNING"})

    def __init__(self, ecs: Any) -> None:
        self._ecs = ecs

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        cluster = target.cluster
        if cluster is None:
            raise InjectionFailed(f"target {target.id} has no cluster")
        match = Matcher(target)
        if target.resource_ids:
            arns = list(target.resource_ids)  # DescribeTasks takes ids or ARNs
        else:
            kwargs: dict[str, Any] = {"cluster": cluster, "desiredStatus": "RUNNING"}
            if target.service:
                kwargs["serviceName"] = _service_name(target.service)
            arns = [arn for page in pages(self._ecs, "list_tasks", **kwargs) for arn in page["taskArns"]]
        resources = []
        for batch in chunks(arns, _DESCRIBE_LIMIT):
            found = reading(self._ecs.describe_tasks, cluster=cluster, tasks=list(batch), include=["TAGS"])
            for task in found["tasks"]:
                group = str(task.get("group", ""))
                if target.service and group != f"service:{_service_name(target.service)}":
                    continue
                tags = tags_of(task.get("tags"), "key", "value")
                arn = task["taskArn"]
                if not match([arn, arn.rsplit("/", 1)[-1]], tags):
                    continue
                resources.append(
                    Resource(
                        id=arn,
                        kind=KIND,
                        state=_state(task),
                        labels=tags,
                        detail={
                            "cluster": cluster,
                            "group": group,
                            "task_definition": task.get("taskDefinitionArn", ""),
                        },
                        attributes=attributes(task, FILTER_PATHS[TargetType.ECS_TASKS]),
                    )
                )
        return resources

    def stop(self, resource: Resource, journal: Journal) -> str:
        cluster = str(resource.detail.get("cluster") or resource.id.split("/")[-2])
        task = self._task(cluster, resource.id)
        state = "gone" if task is None else _state(task)
        if task is None or state != "RUNNING":
            raise NotEligible(f"{resource.id} is {state} now, not RUNNING in a service")
        entry = journal.before_change(
            resource, STOP, {"state": state, "cluster": cluster, "group": task.get("group", "")}
        )
        response = acting(
            self._ecs.stop_task,
            "stop_task",
            resource.id,
            cluster=cluster,
            task=resource.id,
            reason=f"chaosplane run {journal.run.result_id}",
        )
        journal.applied(entry)
        return _state(response["task"])

    def task_state(self, entry: JournalEntry) -> str:
        # Nothing to start: the service replaces the task. Record what became of the stopped one.
        task = self._task(str(entry.prior_state.get("cluster")), entry.resource_id)
        return "gone" if task is None else _state(task)

    def _task(self, cluster: str, arn: str) -> dict[str, Any] | None:
        found = reading(self._ecs.describe_tasks, cluster=cluster, tasks=[arn], include=["TAGS"])
        tasks: list[dict[str, Any]] = found["tasks"]
        return tasks[0] if tasks else None
