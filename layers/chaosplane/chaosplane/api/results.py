"""/results and /experiments/{id}/results: what each run did."""

from collections.abc import Callable

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.params import Limit, NextToken
from chaosplane.auth import Caller
from chaosplane.models import ExperimentResult, Page
from chaosplane.store import Store


def router(store: Store, caller: Callable[[], Caller]) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.get("/experiments/<experiment_id>/results", tags=["results"])
    def list_results(
        experiment_id: str, limit: Limit = 25, next_token: NextToken = None
    ) -> Page[ExperimentResult]:
        store.get_experiment(experiment_id, team=caller().team)  # 404 for another team's experiment
        return store.list_results(experiment_id, limit, next_token)

    @r.get("/results/<result_id>", tags=["results"])
    def get_result(result_id: str) -> ExperimentResult:
        return store.get_result(result_id, team=caller().team)

    return r
