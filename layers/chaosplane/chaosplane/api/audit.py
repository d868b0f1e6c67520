"""/audit: the team's trail of mutating and denied requests, newest first (admins only)."""

from collections.abc import Callable

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.params import Limit, NextToken
from chaosplane.auth import Caller
from chaosplane.models import AuditEntry, Page
from chaosplane.store import Store


def router(store: Store, caller: Callable[[], Caller]) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.get("/audit", tags=["audit"])
    def list_audit(limit: Limit = 50, next_token: NextToken = None) -> Page[AuditEntry]:
        return store.list_audit(limit, next_token, team=caller().team)

    return r
