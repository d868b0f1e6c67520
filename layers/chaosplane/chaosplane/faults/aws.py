"""What every AWS fault family does with AWS errors: retry what may pass, fail loudly on the rest.

Throttling and "still changing state" are `TransientError` (Step Functions retries them with
backoff); anything else on inject is `InjectionFailed` naming the call, the resource and the AWS
error code, so an AccessDenied fails the run and says so, never reads as a success.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from chaosplane.errors import InjectionFailed, TransientError
from chaosplane.models import Target
from chaosplane.selectors import LabelSelector, parse_selector

THROTTLING = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServerException",
    }
)
T = TypeVar("T")


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "ClientError"))


def transient(err: ClientError) -> bool:
    return error_code(err) in THROTTLING


def reading(call: Callable[..., T], **kwargs: Any) -> T:
    """A read: throttling is transient; anything else is raised as it is."""
    try:
        return call(**kwargs)
    except ClientError as err:
        if transient(err):
            raise TransientError(str(err)) from err
        raise


undoing = reading
"""A rollback's change: throttling is transient (retried); anything else is raised as it is."""


def pages(client: Any, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every page of a paginated read, however many there are; throttling is transient."""
    try:
        yield from client.get_paginator(operation).paginate(**kwargs)
    except ClientError as err:
        if transient(err):
            raise TransientError(str(err)) from err
        raise


def acting(call: Callable[..., T], what: str, resource_id: str, **kwargs: Any) -> T:
    """A change: throttling is transient; anything else fails the injection, naming the AWS error."""
    try:
        return call(**kwargs)
    except ClientError as err:
        if transient(err):
            raise TransientError(str(err)) from err
        raise InjectionFailed(f"{what} on {resource_id} failed: {error_code(err)}: {err}") from err


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Matcher:
    """A target's selector and resource_ids, applied to one resource (both must match when both are set)."""

    def __init__(self, target: Target) -> None:
        self.selector: LabelSelector | None = parse_selector(target.selector) if target.selector else None
        self.ids: frozenset[str] | None = frozenset(target.resource_ids) if target.resource_ids else None

    def __call__(self, identifiers: Sequence[str], tags: dict[str, str]) -> bool:
        if self.ids is not None and not self.ids.intersection(identifiers):
            return False
        return self.selector is None or self.selector.matches(tags)

    def tag_filters(self) -> list[dict[str, Any]]:
        """EC2-style server-side filters that narrow without changing the answer."""
        if self.selector is None:
            return []
        filters: list[dict[str, Any]] = [
            {"Name": f"tag:{k}", "Values": list(v)} for k, v in self.selector.equalities().items()
        ]
        filters += [{"Name": "tag-key", "Values": [k]} for k in self.selector.required_keys()]
        return filters


def tags_of(items: list[dict[str, str]] | None, key: str = "Key", value: str = "Value") -> dict[str, str]:
    return {t[key]: t[value] for t in items or []}


def attributes(document: Mapping[str, Any], paths: Iterable[str]) -> dict[str, str]:
    """The scalar values of a Describe API's `document` at each dotted path, as text (booleans as
    `true`/`false`): what the filters of a multi-step experiment's targets match, as FIS's do."""
    found: dict[str, str] = {}
    for path in paths:
        value: Any = document
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, bool):
            found[path] = str(value).lower()
        elif isinstance(value, str | int | float):
            found[path] = str(value)
    return found
