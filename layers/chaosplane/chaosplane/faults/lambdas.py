"""Lambda functions: `lambda-throttle` sets reserved concurrency to 0, so every invocation is
throttled. Rollback puts back exactly what was there: the old reserved concurrency, or none.

A function whose reserved concurrency is already 0 is left alone (someone else throttled it; our
rollback must not "restore" it into service). A function whose concurrency changed again after
we throttled it is left as its new owner set it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chaosplane.errors import NotEligible
from chaosplane.faults.aws import Matcher, acting, error_code, pages, reading, tags_of, undoing
from chaosplane.faults.base import Journal, Resource
from chaosplane.models import FaultType, JournalEntry, Target

KIND = "lambda:function"
THROTTLE = "lambda:PutFunctionConcurrency"
_NOT_FOUND = "ResourceNotFoundException"


def _name(identifier: str) -> str:
    return identifier.split(":function:", 1)[-1].split(":", 1)[0]


def _concurrency_text(value: int | None) -> str:
    return "none" if value is None else str(value)


class LambdaFunctions:
    eligible_states = frozenset({"Active"})

    def __init__(self, lambda_: Any, tagging: Any) -> None:
        self._lambda = lambda_
        self._tagging = tagging

    def resolve(self, target: Target, fault: FaultType) -> list[Resource]:
        match = Matcher(target)
        resources = []
        for function, tags in self._candidates(target):
            name, arn = function["FunctionName"], function["FunctionArn"]
            if match([name, arn], tags):
                resources.append(
                    Resource(
                        id=name,
                        kind=KIND,
                        state=str(function.get("State") or "Active"),
                        labels=tags,
                        detail={"arn": arn, "runtime": function.get("Runtime", "")},
                    )
                )
        return resources

    def _candidates(self, target: Target) -> list[tuple[dict[str, Any], dict[str, str]]]:
        if target.resource_ids:
            found = []
            for identifier in target.resource_ids:
                try:
                    response = reading(self._lambda.get_function, FunctionName=identifier)
                except ClientError as err:
                    if error_code(err) == _NOT_FOUND:
                        continue  # a deleted function must not fail every run of its target
                    raise
                found.append((response["Configuration"], dict(response.get("Tags") or {})))
            return found
        # ListFunctions carries no tags; the tagging API gives them all in a few pages. A function
        # it does not list has no tags.
        tags_by_arn: dict[str, dict[str, str]] = {}
        for page in pages(self._tagging, "get_resources", ResourceTypeFilters=["lambda:function"]):
            for mapping in page["ResourceTagMappingList"]:
                tags_by_arn[mapping["ResourceARN"]] = tags_of(mapping.get("Tags"))
        return [
            (function, tags_by_arn.get(function["FunctionArn"], {}))
            for page in pages(self._lambda, "list_functions")
            for function in page["Functions"]
        ]

    def throttle(self, resource: Resource, journal: Journal) -> str:
        exists, current = self._reserved(resource.id)
        if not exists:
            raise NotEligible(f"{resource.id} no longer exists")
        if current == 0:
            raise NotEligible(f"{resource.id} is already throttled (reserved concurrency 0)")
        entry = journal.before_change(
            resource, THROTTLE, {"state": resource.state, "reserved_concurrency": current}
        )
        acting(
            self._lambda.put_function_concurrency,
            "put_function_concurrency",
            resource.id,
            FunctionName=resource.id,
            ReservedConcurrentExecutions=0,
        )
        journal.applied(entry)
        return "throttled (reserved concurrency 0)"

    def restore(self, entry: JournalEntry) -> str:
        prior = entry.prior_state.get("reserved_concurrency")
        exists, current = self._reserved(entry.resource_id)
        if not exists:
            return "deleted"
        if current != 0:
            # Never throttled by us (the call failed), already restored, or changed since by its owner.
            return f"reserved concurrency {_concurrency_text(current)}"
        if prior is None:
            undoing(self._lambda.delete_function_concurrency, FunctionName=entry.resource_id)
        else:
            undoing(
                self._lambda.put_function_concurrency,
                FunctionName=entry.resource_id,
                ReservedConcurrentExecutions=int(prior),
            )
        return f"reserved concurrency {_concurrency_text(prior)}"

    def _reserved(self, name: str) -> tuple[bool, int | None]:
        """Whether the function exists, and its reserved concurrency (None: unreserved)."""
        try:
            response = reading(self._lambda.get_function_concurrency, FunctionName=_name(name))
        except ClientError as err:
            if error_code(err) == _NOT_FOUND:
                return False, None
            raise
        value = response.get("ReservedConcurrentExecutions")
        return True, None if value is None else int(value)
