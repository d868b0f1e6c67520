"""EC2 instances: `ec2-stop` (rolled back by starting what it stopped), `ec2-reboot`, and
`ec2-terminate` (irreversible: the catalogue marks it so, and only an experiment that says
`allow_irreversible: true` may run it).

Only instances that are `running` are eligible: stopping an instance that was already stopped
would make rollback start something nobody wanted running. The others are resolved all the same,
so that a preview can say why they were left out.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from chaosplane.errors import InjectionFailed, NotEligible, TransientError
from chaosplane.faults.base import Journal, Resource
from chaosplane.models import FaultType, JournalEntry, Target
from chaosplane.selectors import parse_selector

KIND = "ec2:instance"
STOP = "ec2:StopInstances"
REBOOT = "ec2:RebootInstances"
TERMINATE = "ec2:TerminateInstances"
_THROTTLING = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "InternalError"}


class StopParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    force: bool = False
    """Stop without a clean OS shutdown (as `aws ec2 stop-instances --force`)."""


class RebootParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TerminateParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _transient(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in _THROTTLING


class Ec2Instances:
    eligible_states = frozenset({"running"})

    def __init__(self, ec2: Any) -> None:
        self._ec2 = ec2

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        live = ["pending", "running", "stopping", "stopped"]
        filters: list[dict[str, Any]] = [{"Name": "instance-state-name", "Values": live}]
        selector = parse_selector(target.selector) if target.selector else None
        if selector is not None:
            # Narrow on the server where the selector allows it; the full selector is applied below.
            filters += [{"Name": f"tag:{k}", "Values": list(v)} for k, v in selector.equalities().items()]
            filters += [{"Name": "tag-key", "Values": [k]} for k in selector.required_keys()]
        if target.resource_ids:
            # A filter, not InstanceIds: one terminated id must not make every run of the target fail.
            filters.append({"Name": "instance-id", "Values": list(target.resource_ids)})
        resources = []
        try:
            for page in self._ec2.get_paginator("describe_instances").paginate(Filters=filters):
                for reservation in page["Reservations"]:
                    for instance in reservation["Instances"]:
                        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                        if selector is not None and not selector.matches(tags):
                            continue
                        resources.append(
                            Resource(
                                id=instance["InstanceId"],
                                kind=KIND,
                                state=instance["State"]["Name"],
                                labels=tags,
                                detail={"instance_type": instance.get("InstanceType", "")},
                            )
                        )
        except ClientError as err:
            if _transient(err):
                raise TransientError(str(err)) from err
            raise
        return resources

    def inject(self, fault: FaultType, resource: Resource, parameters: BaseModel, journal: Journal) -> str:
        # The plan was made at Prepare; look again right before acting, so that an instance stopped
        # by its owner in between is neither stopped "by us" nor started by our rollback.
        state = self._state(resource.id)
        if state != "running":
            raise NotEligible(f"{resource.id} is {state} now, not running")
        if fault is FaultType.EC2_STOP:
            assert isinstance(parameters, StopParameters)
            entry = journal.before_change(resource, STOP, {"state": state})
            response = self._call(
                "stop_instances", resource.id, InstanceIds=[resource.id], Force=parameters.force
            )
            journal.applied(entry)
            return str(response["StoppingInstances"][0]["CurrentState"]["Name"])
        if fault is FaultType.EC2_REBOOT:
            entry = journal.before_change(resource, REBOOT, {"state": state})
            self._call("reboot_instances", resource.id, InstanceIds=[resource.id])
            journal.applied(entry)
            return "rebooting"
        if fault is FaultType.EC2_TERMINATE:
            entry = journal.before_change(resource, TERMINATE, {"state": state})
            response = self._call("terminate_instances", resource.id, InstanceIds=[resource.id])
            journal.applied(entry)
            return str(response["TerminatingInstances"][0]["CurrentState"]["Name"])
        raise InjectionFailed(f"{fault.value} is not an EC2 fault")

    def rollback(self, entry: JournalEntry) -> str:
        state = self._state(entry.resource_id)
        if entry.action in (REBOOT, TERMINATE):
            # A reboot undoes itself; a termination cannot be undone. Record where it ended.
            return state
        if entry.prior_state.get("state") != "running":
            return state  # it was not running before us, so it is not ours to start
        if state in ("running", "pending", "terminated", "shutting-down"):
            # Already back (an earlier rollback, or someone else), or gone: nothing we can or should do.
            return state
        if state == "stopping":
            # StartInstances refuses a stopping instance; Step Functions retries with backoff.
            raise TransientError(f"{entry.resource_id} is still stopping")
        response = self._call("start_instances", entry.resource_id, InstanceIds=[entry.resource_id])
        return str(response["StartingInstances"][0]["CurrentState"]["Name"])

    def state(self, instance_id: str) -> str:
        """The instance's state now ("terminated" for one that no longer exists)."""
        return self._state(instance_id)

    def _state(self, instance_id: str) -> str:
        try:
            response = self._ec2.describe_instances(InstanceIds=[instance_id])
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "InvalidInstanceID.NotFound":
                return "terminated"
            if _transient(err):
                raise TransientError(str(err)) from err
            raise
        return str(response["Reservations"][0]["Instances"][0]["State"]["Name"])

    def _call(self, operation: str, instance_id: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._ec2, operation)(**kwargs)
        except ClientError as err:
            if _transient(err):
                raise TransientError(str(err)) from err
            code = err.response.get("Error", {}).get("Code", "ClientError")
            raise InjectionFailed(f"{operation} on {instance_id} failed: {code}: {err}") from err
