"""/experiments: what to inject, where, for how long; and starting and stopping runs."""

from collections.abc import Callable

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.params import ExperimentBody, ExperimentId, Limit, NextToken
from chaosplane.auth import Caller
from chaosplane.contracts import RunAccepted, RunRequest
from chaosplane.errors import InvalidRequest, NotFound
from chaosplane.faults.specs import flat
from chaosplane.models import Experiment, ExperimentSpec, Page, Target
from chaosplane.runs import Runs, check_irreversible, check_target_fits
from chaosplane.scheduling import Scheduling
from chaosplane.store import Store


def _existing_target(store: Store, target_id: str, team: str) -> Target:
    try:
        return store.get_target(target_id, team=team)
    except NotFound as err:
        raise InvalidRequest(f"target {target_id!r} does not exist", field="target") from err


def router(
    store: Store, runs: Runs, caller: Callable[[], Caller], scheduling: Scheduling | None = None
) -> APIGatewayRouter:
    r = APIGatewayRouter()

    def check(spec: ExperimentSpec, team: str) -> None:
        check_irreversible(spec.type, spec.allow_irreversible, field="allow_irreversible")
        check_target_fits(spec.type, _existing_target(store, spec.target, team), field="target")
        limit = store.policy(team).max_duration
        if spec.duration > limit:
            raise InvalidRequest(
                f"duration {spec.duration}s is over the team's limit of {limit}s", field="duration"
            )
        missing = runs.missing_alarms(spec.stop_conditions)
        if missing:
            raise InvalidRequest(
                f"stop conditions must be existing CloudWatch alarms: {', '.join(missing)}",
                field="stop_conditions",
            )

    @r.post("/experiments", tags=["experiments"], status_code=201)
    def create_experiment(body: ExperimentBody) -> tuple[Experiment, int]:
        team, spec = caller().team, flat(body)
        check(spec, team)
        return store.create_experiment(spec, team=team), 201

    @r.get("/experiments", tags=["experiments"])
    def list_experiments(limit: Limit = 25, next_token: NextToken = None) -> Page[Experiment]:
        return store.list_experiments(limit, next_token, team=caller().team)

    @r.get("/experiments/<experiment_id>", tags=["experiments"])
    def get_experiment(experiment_id: ExperimentId) -> Experiment:
        return store.get_experiment(experiment_id, team=caller().team)

    @r.put("/experiments/<experiment_id>", tags=["experiments"])
    def replace_experiment(experiment_id: ExperimentId, body: ExperimentBody) -> Experiment:
        team, spec = caller().team, flat(body)
        store.get_experiment(experiment_id, team=team)  # 404 before 422: the experiment must exist first
        check(spec, team)
        return store.replace_experiment(experiment_id, spec, team=team)

    @r.delete("/experiments/<experiment_id>", tags=["experiments"], status_code=204)
    def delete_experiment(experiment_id: ExperimentId) -> tuple[None, int]:
        team = caller().team
        schedules, _ = store.schedules(experiment_id, team=team)
        store.delete_experiment(experiment_id, team=team)
        if scheduling is not None:
            # After the experiment: if this fails midway, what is left fires into a Prepare that
            # finds no experiment, and starts nothing.
            scheduling.delete_all(experiment_id, list(schedules))
        return None, 204

    @r.post("/experiments/<experiment_id>/run", tags=["runs"], status_code=202)
    def run_experiment(
        experiment_id: ExperimentId, request: RunRequest | None = None
    ) -> tuple[RunAccepted, int]:
        plan_id = request.plan_id if request is not None else None
        result = runs.start(experiment_id, team=caller().team, plan_id=plan_id)
        return RunAccepted(result_id=result.id, status=result.status), 202

    @r.post("/experiments/<experiment_id>/stop", tags=["runs"], status_code=202)
    def stop_experiment(experiment_id: ExperimentId) -> tuple[RunAccepted, int]:
        result = runs.stop(experiment_id, team=caller().team)
        return RunAccepted(result_id=result.id, status=result.status), 202

    return r
