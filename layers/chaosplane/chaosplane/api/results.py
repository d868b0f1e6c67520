"""/results and /experiments/{id}/results: what each run did; and the resilience score of an
experiment or a target over its last runs."""

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.params import ExperimentId, Limit, NextToken, TargetId
from chaosplane.auth import Caller
from chaosplane.contracts import StopConditionState
from chaosplane.models import ExperimentResult, Page
from chaosplane.resilience import DEFAULT_WINDOW, MAX_WINDOW, Resilience, experiments_on, newest_runs, score
from chaosplane.runs import Runs
from chaosplane.store import Store

Window = Annotated[int, Query(ge=1, le=MAX_WINDOW, description="how many of the latest runs to score")]


def router(store: Store, runs: Runs, caller: Callable[[], Caller]) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.get("/experiments/<experiment_id>/resilience", tags=["results"])
    def experiment_resilience(experiment_id: ExperimentId, last: Window = DEFAULT_WINDOW) -> Resilience:
        """How often the system held over the experiment's last runs (by their verdicts)."""
        store.get_experiment(experiment_id, team=caller().team)  # 404 for another team's experiment
        return score(newest_runs(store.list_results, experiment_id, last), last)

    @r.get("/targets/<target_id>/resilience", tags=["results"])
    def target_resilience(target_id: TargetId, last: Window = DEFAULT_WINDOW) -> Resilience:
        """How often the system held over the last runs of every experiment acting on the target."""
        team = caller().team
        store.get_target(target_id, team=team)
        on_it = experiments_on(
            lambda limit, token: store.list_experiments(limit, token, team=team), target_id
        )
        return score((run for e in on_it for run in newest_runs(store.list_results, e.id, last)), last)

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
