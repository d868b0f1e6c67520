"""EC2 instances, the family behind `ec2-stop` (rolled back by starting what it stopped),
`ec2-reboot`, and `ec2-terminate` (irreversible: the catalogue marks it so, and only an experiment
that says `allow_irreversible: true` may run it).

Only instances that are `running` are eligible: stopping an instance that was already stopped
would make rollback start something nobody wanted running. The others are resolved all the same,
so that a preview can say why they were left out.

The family to copy for a new AWS one: matching and every AWS error go through `faults/aws.py`,
each change is journaled before it is made, and each fault in `catalogue.py` is one call here.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chaosplane.errors import NotEligible, TransientError
from chaosplane.faults.aws import Matcher, acting, attributes, error_code, pages, reading, tags_of
from chaosplane.faults.base import Journal, Resource
from chaosplane.graph import FILTER_PATHS
from chaosplane.models import FaultType, JournalEntry, Target, TargetType

KIND = "ec2:instance"
STOP = "ec2:StopInstances"
REBOOT = "ec2:RebootInstances"
TERMINATE = "ec2:TerminateInstances"
_LIVE = ["pending", "running", "stopping", "stopped"]


class Ec2Instances:
    eligible_states = frozenset({"running"})

    def __init__(self, ec2: Any) -> None:
        self._ec2 = ec2

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        match = Matcher(target)
        # Narrow on the server where the selector allows it; `match` applies the full selector.
        filters = [{"Name": "instance-state-name", "Values": _LIVE}, *match.tag_filters()]
        if target.resource_ids:
            # A filter, not InstanceIds: one terminated id must not make every run of the target fail.
            filters.append({"Name": "instance-id", "Values": list(target.resource_ids)})
        resources = []
        for page in pages(self._ec2, "describe_instances", Filters=filters):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = tags_of(instance.get("Tags"))
                    if not match([instance["InstanceId"]], tags):
                        continue
                    resources.append(
                        Resource(
                            id=instance["InstanceId"],
                            kind=KIND,
                            state=instance["State"]["Name"],
                            labels=tags,
                            detail={"instance_type": instance.get("InstanceType", "")},
                            attributes=attributes(instance, FILTER_PATHS[TargetType.EC2_INSTANCES]),
                        )
                    )
        return resources

    # -- the changes (one per fault) ------------------------------------------------------------

    def stop(self, resource: Resource, force: bool, journal: Journal) -> str:
        response = self._change(resource, STOP, "stop_instances", journal, Force=force)
        return str(response["StoppingInstances"][0]["CurrentState"]["Name"])

    def reboot(self, resource: Resource, journal: Journal) -> str:
        self._change(resource, REBOOT, "reboot_instances", journal)
        return "rebooting"

    def terminate(self, resource: Resource, journal: Journal) -> str:
        response = self._change(resource, TERMINATE, "terminate_instances", journal)
        return str(response["TerminatingInstances"][0]["CurrentState"]["Name"])

    def _change(
        self, resource: Resource, action: str, operation: str, journal: Journal, **kwargs: Any
    ) -> dict[str, Any]:
        # The plan was made at Prepare; look again right before acting, so that an instance stopped
        # by its owner in between is neither stopped "by us" nor started by our rollback.
        state = self.state(resource.id)
        if state != "running":
            raise NotEligible(f"{resource.id} is {state} now, not running")
        entry = journal.before_change(resource, action, {"state": state})
        call = getattr(self._ec2, operation)
        response: dict[str, Any] = acting(call, operation, resource.id, InstanceIds=[resource.id], **kwargs)
        journal.applied(entry)
        return response

    # -- rollback -------------------------------------------------------------------------------

    def start_again(self, entry: JournalEntry) -> str:
        """`ec2-stop`'s rollback: start the instance if we stopped it and it is still stopped."""
        state = self.state(entry.resource_id)
        if entry.prior_state.get("state") != "running":
            return state  # it was not running before us, so it is not ours to start
        if state in ("running", "pending", "terminated", "shutting-down"):
            # Already back (an earlier rollback, or someone else), or gone: nothing we can or should do.
            return state
        if state == "stopping":
            # StartInstances refuses a stopping instance; Step Functions retries with backoff.
            raise TransientError(f"{entry.resource_id} is still stopping")
        response = acting(
            self._ec2.start_instances, "start_instances", entry.resource_id, InstanceIds=[entry.resource_id]
        )
        return str(response["StartingInstances"][0]["CurrentState"]["Name"])

    def state(self, instance_id: str) -> str:
        """The instance's state now ("terminated" for one that no longer exists)."""
        try:
            response = reading(self._ec2.describe_instances, InstanceIds=[instance_id])
        except ClientError as err:
            if error_code(err) == "InvalidInstanceID.NotFound":
                return "terminated"
            raise
        return str(response["Reservations"][0]["Instances"][0]["State"]["Name"])
