"""/results and /experiments/{id}/results: what each run did."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.params import ExperimentId, Limit, NextToken
from chaosplane.auth import Caller
from chaosplane.contracts import StopConditionState
from chaosplane.models import ExperimentResult, Page
from chaosplane.runs import Runs
from chaosplane.store import Store


def router(store: Store, runs: Runs, caller: Callable[[], Caller]) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.get("/experiments/<experiment_id>/results", tags=["results"])
    def list_results(
        experiment_id: ExperimentId, limit: Limit = 25, next_token: NextToken = None
    ) -> Page[ExperimentResult]:
        store.get_experiment(experiment_id, team=caller().team)  # 404 for another team's experiment
        return store.list_results(experiment_id, limit, next_token)

    @r.get("/results/<result_id>", tags=["results"])
    def get_result(result_id: str) -> ExperimentResult:
        return store.get_result(result_id, team=caller().team)

    @r.get("/results/<result_id>/stop-conditions", tags=["results"])
    def get_stop_conditions(result_id: str) -> list[StopConditionState]:
        """The run's stop conditions as CloudWatch sees them now (what `chaosplane run --wait` shows)."""
        return [StopConditionState(**s) for s in runs.stop_condition_states(result_id, team=caller().team)]

    @r.get("/results/<result_id>/metrics", tags=["results"])
    def get_metrics(result_id: str) -> dict[str, Any]:
        """The stop conditions' CloudWatch metrics around the run, read now (a finished run keeps
        the ones read when it ended in its `metrics.stop_conditions`)."""
        return runs.metric_series(result_id, team=caller().team)

    return r
