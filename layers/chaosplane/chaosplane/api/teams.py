"""/teams/{team}: what a platform admin decides for a team (its boundary), and what the team's
admins may read of it."""

from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.responses import errors
from chaosplane.auth import TEAM_PATTERN, Caller, is_team
from chaosplane.errors import NotFound
from chaosplane.store import Store
from chaosplane.tenancy import TeamSettings

TeamName = Annotated[str, Path(description="a team's name", json_schema_extra={"pattern": TEAM_PATTERN})]


class TeamView(TeamSettings):
    team: str


def router(store: Store, caller: Callable[[], Caller], platform_team: str) -> APIGatewayRouter:
    r = APIGatewayRouter()

    def visible(team: str, *, to_change: bool) -> None:
        """A team's admins read their own; only the platform team's admins change any. The rest is
        said as "not found", as another team's items are."""
        who = caller()
        allowed = who.team == platform_team or (who.team == team and not to_change)
        if not is_team(team) or not allowed:
            raise NotFound("team", team)

    # 404: another team, or a name that is not a team's.
    @r.get("/teams/<team>", tags=["teams"], responses=errors(404))
    def get_team(team: TeamName) -> TeamView:
        visible(team, to_change=False)
        return TeamView(team=team, **store.team_settings(team).model_dump())

    @r.put("/teams/<team>", tags=["teams"], responses=errors(404))
    def put_team(team: TeamName, settings: TeamSettings) -> TeamView:
        """Set a team's boundary and environments (platform admins only). `boundary`: `tag`, only
        resources tagged chaosplane/team=<team>; `account`, everything in the account but the
        platform's own. `environments`: other accounts the team's targets may be in, each with the
        role its runs act there as (assumed with the answer's `external_id`)."""
        visible(team, to_change=True)
        asked = settings.model_copy(update={"external_id": None})  # the platform's, never the caller's
        return TeamView(team=team, **store.set_team_settings(team, asked).model_dump())

    return r
