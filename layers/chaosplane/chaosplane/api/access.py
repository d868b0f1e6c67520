"""Who may call which route: the minimum role of every route, in this one table.

A route missing from the table is refused (fail closed), and a test fails when the API has a route
this table does not list, so a new endpoint cannot ship without a decision about who may call it.
"""

from __future__ import annotations

from typing import Any

from chaosplane.auth import Caller, Role

PUBLIC = None  # no token needed (API Gateway's Auth: NONE in template.yaml)

ROUTE_ROLES: dict[tuple[str, str], Role | None] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    # The dashboard's static files: the page signs in itself, with a token it sends to the API.
    ("GET", "/ui"): PUBLIC,
    ("GET", "/ui/<name>"): PUBLIC,
    ("GET", "/ui/config.json"): PUBLIC,
    ("GET", "/ui/js/<name>"): PUBLIC,
    ("GET", "/ui/vendor/<name>"): PUBLIC,
    ("GET", "/ui/vendor/fonts/<name>"): PUBLIC,
    ("GET", "/me"): Role.VIEWER,
    ("GET", "/targets"): Role.VIEWER,
    ("GET", "/targets/<target_id>"): Role.VIEWER,
    ("GET", "/targets/<target_id>/resilience"): Role.VIEWER,
    ("POST", "/targets"): Role.OPERATOR,
    ("PUT", "/targets/<target_id>"): Role.OPERATOR,
    ("DELETE", "/targets/<target_id>"): Role.ADMIN,
    ("GET", "/experiments"): Role.VIEWER,
    ("GET", "/experiments/<experiment_id>"): Role.VIEWER,
    ("GET", "/experiments/<experiment_id>/resilience"): Role.VIEWER,
    ("POST", "/experiments"): Role.OPERATOR,
    ("POST", "/experiments/import"): Role.OPERATOR,  # creates targets too: as POST /targets does
    ("GET", "/experiments/<experiment_id>/export"): Role.VIEWER,
    ("PUT", "/experiments/<experiment_id>"): Role.OPERATOR,
    ("DELETE", "/experiments/<experiment_id>"): Role.ADMIN,
    ("POST", "/experiments/<experiment_id>/run"): Role.OPERATOR,
    ("POST", "/experiments/<experiment_id>/stop"): Role.OPERATOR,
    ("GET", "/experiments/<experiment_id>/results"): Role.VIEWER,
    ("GET", "/results/<result_id>"): Role.VIEWER,
    ("GET", "/results/<result_id>/stop-conditions"): Role.VIEWER,
    ("GET", "/results/<result_id>/metrics"): Role.VIEWER,
    ("POST", "/experiments/<experiment_id>/preview"): Role.OPERATOR,
    ("GET", "/experiments/<experiment_id>/schedules"): Role.VIEWER,
    ("GET", "/experiments/<experiment_id>/schedules/<schedule_id>"): Role.VIEWER,
    ("POST", "/experiments/<experiment_id>/schedules"): Role.OPERATOR,
    ("PUT", "/experiments/<experiment_id>/schedules/<schedule_id>"): Role.OPERATOR,
    ("DELETE", "/experiments/<experiment_id>/schedules/<schedule_id>"): Role.OPERATOR,
    ("POST", "/experiments/<experiment_id>/schedules/<schedule_id>/pause"): Role.OPERATOR,
    ("POST", "/experiments/<experiment_id>/schedules/<schedule_id>/resume"): Role.OPERATOR,
    ("GET", "/audit"): Role.ADMIN,
    ("GET", "/safety"): Role.VIEWER,
    ("PUT", "/safety/policy"): Role.ADMIN,
    ("POST", "/safety/halt"): Role.ADMIN,
    ("POST", "/safety/release"): Role.ADMIN,
    # A team's admins read their team's boundary; the platform team's admins set any team's.
    ("GET", "/teams/<team>"): Role.ADMIN,
    ("PUT", "/teams/<team>"): Role.ADMIN,
    # Reading shows masked hints only; changing decides where a team's incidents go: admins.
    ("GET", "/notifications"): Role.VIEWER,
    ("PUT", "/notifications"): Role.ADMIN,
    ("PUT", "/notifications/slack"): Role.ADMIN,
    ("DELETE", "/notifications/slack"): Role.ADMIN,
    ("PUT", "/notifications/pagerduty"): Role.ADMIN,
    ("DELETE", "/notifications/pagerduty"): Role.ADMIN,
    ("PUT", "/notifications/email"): Role.ADMIN,
    ("DELETE", "/notifications/email"): Role.ADMIN,
}

_UNLISTED = object()


class Denied(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def required_role(method: str, rule: str) -> Any:
    return ROUTE_ROLES.get((method, rule), _UNLISTED)


def check(method: str, rule: str, caller: Caller | None) -> None:
    """Raise Denied unless `caller` may call `method rule`."""
    needed = required_role(method, rule)
    if needed is _UNLISTED:
        raise Denied(403, "this route has no access rule")
    if needed is PUBLIC:
        return
    if caller is None:
        # Only reachable when the API is called without the authorizer in front of it.
        raise Denied(401, "no authenticated caller")
    if caller.role < needed:
        raise Denied(403, f"requires the {needed.label} role; you are {caller.role.label}")
