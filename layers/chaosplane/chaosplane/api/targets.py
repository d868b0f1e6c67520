"""/targets: what experiments can hit. Every call is confined to the caller's team."""

from collections.abc import Callable

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.params import Limit, NextToken, TargetBody, TargetId
from chaosplane.auth import Caller
from chaosplane.models import Page, Target
from chaosplane.store import Store
from chaosplane.webhooks import Targets


def router(store: Store, caller: Callable[[], Caller], targets: Targets) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.post("/targets", tags=["targets"], status_code=201)
    def create_target(spec: TargetBody) -> tuple[Target, int]:
        return targets.create(spec, team=caller().team), 201

    @r.get("/targets", tags=["targets"])
    def list_targets(limit: Limit = 25, next_token: NextToken = None) -> Page[Target]:
        return store.list_targets(limit, next_token, team=caller().team)

    @r.get("/targets/<target_id>", tags=["targets"])
    def get_target(target_id: TargetId) -> Target:
        return store.get_target(target_id, team=caller().team)

    @r.put("/targets/<target_id>", tags=["targets"])
    def replace_target(target_id: TargetId, spec: TargetBody) -> Target:
        return targets.replace(target_id, spec, team=caller().team)

    @r.delete("/targets/<target_id>", tags=["targets"], status_code=204)
    def delete_target(target_id: TargetId) -> tuple[None, int]:
        targets.delete(target_id, team=caller().team)
        return None, 204

    return r
