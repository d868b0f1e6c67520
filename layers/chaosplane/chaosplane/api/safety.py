"""/safety: the team's policy and the emergency stop; and /experiments/{id}/preview."""

from collections.abc import Callable

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from chaosplane.api.params import ExperimentId
from chaosplane.api.responses import errors
from chaosplane.auth import Caller
from chaosplane.contracts import LeverRequest, LeverResult
from chaosplane.errors import NotFound
from chaosplane.models import Lever
from chaosplane.plans import Preview
from chaosplane.runs import Runs
from chaosplane.safety import ALL_TEAMS_LEVER, SafetyPolicy
from chaosplane.store import Store


class SafetyState(BaseModel):
    team: str
    lever: Lever | None
    policy: SafetyPolicy


def router(store: Store, runs: Runs, caller: Callable[[], Caller], platform_team: str) -> APIGatewayRouter:
    r = APIGatewayRouter()

    def scope_of(request: LeverRequest) -> str:
        who = caller()
        if request.scope == "all":
            if who.team != platform_team:
                # Said as "not found" so that the platform-wide lever is not even visible to others.
                raise NotFound("lever", "all")
            return ALL_TEAMS_LEVER
        return who.team

    @r.get("/safety", tags=["safety"])
    def get_safety() -> SafetyState:
        team = caller().team
        return SafetyState(team=team, lever=store.lever(team), policy=store.policy(team))

    @r.put("/safety/policy", tags=["safety"])
    def put_policy(policy: SafetyPolicy) -> SafetyPolicy:
        return store.set_policy(caller().team, policy)

    # 404: the platform-wide lever (scope "all") is not found by other teams.
    @r.post("/safety/halt", tags=["safety"], responses=errors(404))
    def halt(request: LeverRequest | None = None) -> LeverResult:
        lever, halting = runs.engage(scope_of(request or LeverRequest()), caller().principal)
        return LeverResult(lever=lever, halting=halting)

    @r.post("/safety/release", tags=["safety"], responses=errors(404))
    def release(request: LeverRequest | None = None) -> LeverResult:
        store.release_lever(scope_of(request or LeverRequest()))
        return LeverResult(lever=store.lever(caller().team))

    @r.post("/experiments/<experiment_id>/preview", tags=["runs"])
    def preview(experiment_id: ExperimentId) -> Preview:
        return runs.preview(experiment_id, team=caller().team)

    return r
