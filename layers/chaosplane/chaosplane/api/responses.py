"""What every operation can answer besides its success, declared in the OpenAPI document.

Why one place: most error statuses do not come from a route's own code but from the gate in front
of it (the authorizer, the throttle, the body-size limit, the JSON parser, the role check), so
they apply to every route alike; declaring them here means a new route cannot forget them. A
route adds what only it can answer (a 404 without a path parameter, say) with its own
`responses=`, and names its success status with `status_code=`.
"""

from __future__ import annotations

import inspect
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Route
from pydantic import BaseModel, Field

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


class FieldError(BaseModel):
    field: str = Field(description="where: `body.<field>`, `query.<name>` or `path.<name>`")
    message: str
    type: str = ""


class Error(BaseModel):
    """Every error the API (and API Gateway in front of it) answers: a message, and for invalid
    input the field-level errors. API Gateway's own answers may add a `reason`."""

    message: str | None
    errors: list[FieldError] | None = None


DESCRIPTIONS = {
    400: "the body is not UTF-8 or not JSON, or is nested deeper than the API accepts",
    401: "no valid token",
    403: "the token's role may not do this",
    404: "no such resource (or another team's)",
    409: "in conflict with the resource's state (running, in use, the emergency stop engaged)",
    413: "the body is larger than the API accepts",
    415: "the body is not sent as `application/json`",
    422: "invalid parameters or body; `errors` names each field",
    429: "throttled; `Retry-After` says when to come back",
    503: "a concurrent change got there first; retry after `Retry-After`",
}


def error(status: int, description: str | None = None) -> dict[str, Any]:
    """One declared error response: the shared Error body."""
    return {
        "description": description or DESCRIPTIONS[status],
        "content": {"application/json": {"model": Error}},
    }


def errors(*statuses: int) -> dict[int, Any]:
    return {status: error(status) for status in statuses}


def statuses_of(route: Route, public: bool) -> list[int]:
    """The error statuses `route` can answer, from what stands in front of it and what it takes."""
    found = [400, 413, 429]  # the gateway's UTF-8 check, the body limit, the throttle: any request
    if not public:
        found += [401, 403, 503]  # the authorizer, the role check, a store conflict
    if "<" in route.path:
        found.append(404)
    if route.method in MUTATING and not public:
        found.append(409)
    if route.method in MUTATING:
        found.append(415)  # a body in any other Content-Type than JSON
    # Any parameter (path, query or body) is validated; the signature says so without building
    # Powertools' dependant, which must be built after `responses` is final (it collects the models).
    if inspect.signature(route.func).parameters:
        found.append(422)
    return sorted(found)


def document(route: Route, public: bool) -> None:
    """Declare `route`'s success response and every error it can answer (before the document is built)."""
    declared: dict[int, Any] = {route.status_code: {"description": "success"}}
    if route.status_code == 204:
        declared[204] = {"description": "done; no body", "content": {}}
    declared.update(errors(*statuses_of(route, public)))
    declared.update(route.responses or {})
    route.responses = declared
