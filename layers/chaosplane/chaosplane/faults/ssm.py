"""CPU and memory stress on EC2 instances through SSM Run Command (`ssm-cpu-stress`,
`ssm-memory-stress`), with AWS's managed FIS documents.

The command is sent with `DurationSeconds` set to the experiment's duration, so the load ends by
itself even if nothing ever cancels it; rollback cancels it at once (an early stop) and confirms
the cancellation. Only running instances whose SSM agent is online are eligible.

The journal entry is written before SendCommand, when the command id is not known yet; it holds
a marker (the run id, sent as the command's Comment) by which rollback finds every command this
run sent to the instance, including one whose id was lost in a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from chaosplane.errors import InjectionFailed, NotEligible, TransientError
from chaosplane.faults.aws import acting, chunks, pages, undoing
from chaosplane.faults.base import Journal, Resource
from chaosplane.faults.ec2 import Ec2Instances
from chaosplane.faults.parameters import SsmCpuStressParameters, SsmMemoryStressParameters
from chaosplane.models import FaultType, JournalEntry, Target

SEND = "ssm:SendCommand"
CPU_DOCUMENT = "AWSFIS-Run-CPU-Stress"
MEMORY_DOCUMENT = "AWSFIS-Run-Memory-Stress"
ACTIVE = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
_INFO_FILTER_LIMIT = 50  # DescribeInstanceInformation: at most 50 instance ids per filter


def command_for(fault: FaultType, parameters: BaseModel, duration: int) -> tuple[str, dict[str, list[str]]]:
    """The managed document and its parameters (SSM takes every parameter as a list of strings)."""
    seconds = str(duration)
    if fault is FaultType.SSM_CPU_STRESS:
        assert isinstance(parameters, SsmCpuStressParameters)
        return CPU_DOCUMENT, {
            "DurationSeconds": [seconds],
            "CPU": [str(parameters.cpu)],
            "LoadPercent": [str(parameters.load_percent)],
            "InstallDependencies": [str(parameters.install_dependencies)],
        }
    if fault is FaultType.SSM_MEMORY_STRESS:
        assert isinstance(parameters, SsmMemoryStressParameters)
        return MEMORY_DOCUMENT, {
            "DurationSeconds": [seconds],
            "Percent": [str(parameters.percent)],
            "Workers": [str(parameters.workers)],
            "InstallDependencies": [str(parameters.install_dependencies)],
        }
    raise InjectionFailed(f"{fault.value} is not an SSM fault")


def marker(result_id: str) -> str:
    return f"chaosplane {result_id}"  # SendCommand's Comment: at most 100 characters


class SsmStress:
    eligible_states = frozenset({"running"})

    def __init__(
        self, ec2: Any, ssm: Any, sleep: Callable[[float], None] = time.sleep, confirm_tries: int = 5
    ) -> None:
        self._instances = Ec2Instances(ec2)
        self._ssm = ssm
        self._sleep = sleep
        self._confirm_tries = confirm_tries

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        resources = self._instances.resolve(target, fault)
        running = [r.id for r in resources if r.state == "running"]
        pings = self._ping_status(running)
        return [
            r
            if r.state != "running" or pings.get(r.id) == "Online"
            else Resource(r.id, r.kind, _without_agent(pings.get(r.id)), r.labels, r.detail, r.attributes)
            for r in resources
        ]

    def _ping_status(self, instance_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for batch in chunks(instance_ids, _INFO_FILTER_LIMIT):
            filters = [{"Key": "InstanceIds", "Values": list(batch)}]
            for page in pages(self._ssm, "describe_instance_information", Filters=filters):
                for info in page["InstanceInformationList"]:
                    found[info["InstanceId"]] = str(info.get("PingStatus", "Unknown"))
        return found

    def stress(self, fault: FaultType, resource: Resource, parameters: BaseModel, journal: Journal) -> str:
        document, document_parameters = command_for(fault, parameters, journal.run.duration)
        state = self._instances.state(resource.id)
        if state == "running":
            ping = self._ping_status([resource.id]).get(resource.id)
            state = "running" if ping == "Online" else _without_agent(ping)
        if state != "running":
            raise NotEligible(f"{resource.id} is {state} now, not running with an online SSM agent")
        comment = marker(journal.run.result_id)
        entry = journal.before_change(
            resource, SEND, {"state": state, "document": document, "comment": comment}
        )
        response = acting(
            self._ssm.send_command,
            "send_command",
            resource.id,
            InstanceIds=[resource.id],
            DocumentName=document,
            Parameters=document_parameters,
            Comment=comment,
        )
        journal.applied(entry)
        return f"stressed ({document}, command {response['Command']['CommandId']})"

    def cancel(self, entry: JournalEntry) -> str:
        mine = self._commands(entry)
        if not mine:
            return "no command was sent"  # SendCommand failed or never ran: nothing to cancel
        for command in mine:
            if command["Status"] in ACTIVE - {"Cancelling"}:
                undoing(
                    self._ssm.cancel_command, CommandId=command["CommandId"], InstanceIds=[entry.resource_id]
                )
        for attempt in range(self._confirm_tries):
            mine = self._commands(entry)
            if not any(c["Status"] in ACTIVE for c in mine):
                return ", ".join(sorted({f"stress {c['Status'].lower()}" for c in mine}))
            if attempt + 1 < self._confirm_tries:
                self._sleep(0.5)
        busy = ", ".join(f"{c['CommandId']} {c['Status']}" for c in mine if c["Status"] in ACTIVE)
        raise TransientError(f"cancellation of {busy} on {entry.resource_id} not confirmed yet")

    def _commands(self, entry: JournalEntry) -> list[dict[str, Any]]:
        comment = entry.prior_state.get("comment")
        return [
            command
            for page in pages(self._ssm, "list_commands", InstanceId=entry.resource_id)
            for command in page["Commands"]
            if command.get("Comment") == comment
        ]


def _without_agent(ping: str | None) -> str:
    return "running-ssm-not-managed" if ping is None else f"running-ssm-{ping.lower()}"
