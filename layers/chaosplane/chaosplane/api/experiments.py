"""/experiments: what to inject, where, for how long; and starting and stopping runs."""

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane import fis
from chaosplane.api.params import ExperimentBody, ExperimentId, FisTemplateBody, Limit, NextToken
from chaosplane.auth import Caller
from chaosplane.contracts import FisImported, RunAccepted, RunRequest
from chaosplane.errors import InvalidRequest, NotFound
from chaosplane.faults.specs import flat
from chaosplane.graph import ExperimentGraph, MultiStepExperiment
from chaosplane.models import (
    MAX_DURATION_SECONDS,
    TARGET_SPEC,
    Experiment,
    ExperimentSpec,
    Page,
    Placed,
    Target,
    new_id,
    utcnow,
)
from chaosplane.probes import parse_probes, probe_alarms
from chaosplane.runs import Runs
from chaosplane.runs.checks import check_graph_fits
from chaosplane.scheduling import Scheduling
from chaosplane.store import Store
from chaosplane.tenancy import NoSuchEnvironment, Scope


def _existing_target(store: Store, target_id: str, team: str, field: str = "target") -> Target:
    try:
        return store.get_target(target_id, team=team)
    except NotFound as err:
        raise InvalidRequest(f"target {target_id!r} does not exist", field=field) from err


def router(
    store: Store,
    runs: Runs,
    caller: Callable[[], Caller],
    scheduling: Scheduling | None = None,
    region: str | None = None,
) -> APIGatewayRouter:
    r = APIGatewayRouter()

    def check(spec: ExperimentSpec, team: str, new_targets: Mapping[str, Target] | None = None) -> None:
        """What the body's model cannot know: its targets are the team's and fit, its duration is
        in the team's limit, its alarms exist. `new_targets`: targets about to be created with it."""
        graph, multi_step = ExperimentGraph.of(spec), spec.actions is not None
        targets = {
            step.target: (new_targets or {}).get(step.target)
            or _existing_target(
                store, step.target, team, f"targets.{name}.target" if multi_step else "target"
            )
            for name, step in graph.targets.items()
        }
        check_graph_fits(graph, targets, spec.allow_irreversible, multi_step=multi_step)
        limit = store.policy(team).max_duration
        if spec.duration > limit:
            raise InvalidRequest(
                f"duration {spec.duration}s is over the team's limit of {limit}s", field="duration"
            )
        # Within a tag boundary, only alarms tagged as the team's: another team's looks missing.
        for alarms, field, what in (
            (spec.stop_conditions, "stop_conditions", "stop conditions must be existing CloudWatch alarms"),
            (probe_alarms(spec.probes), "probes", "alarm probes must name existing CloudWatch alarms"),
            (graph.checked_alarms(), "actions", "assert-alarm-state must name existing CloudWatch alarms"),
        ):
            if missing := runs.missing_alarms(alarms, team=team):
                raise InvalidRequest(f"{what} of team {team}: {', '.join(missing)}", field=field)
        # A probe in another account names one of the team's environments, and one of its Regions.
        placed = [p for p in parse_probes(spec.probes) if isinstance(p, Placed) and p.environment]
        if placed:
            scope = Scope(team, settings=store.team_settings(team))
            for probe in placed:
                try:
                    scope.place(probe.environment, probe.region)
                except NoSuchEnvironment as err:
                    raise InvalidRequest(f"probe {probe.name}: {err}", field="probes") from err

    @r.post("/experiments", tags=["experiments"], status_code=201)
    def create_experiment(body: ExperimentBody) -> tuple[Experiment, int]:
        team, spec = caller().team, flat(body)
        check(spec, team)
        return store.create_experiment(spec, team=team), 201

    @r.post("/experiments/import", tags=["experiments"], status_code=201)
    def import_experiment(
        template: FisTemplateBody,
        allow_irreversible: Annotated[
            bool, Query(description="consent to actions that cannot be rolled back (terminate, delete)")
        ] = False,
        duration: Annotated[
            int | None,
            Query(ge=1, le=MAX_DURATION_SECONDS, description="seconds; default: from the longest chain"),
        ] = None,
    ) -> tuple[FisImported, int]:
        """An AWS FIS experiment template, as `aws fis get-experiment-template` answers it or as a
        CreateExperimentTemplate input: its targets and the experiment, created together or not at all."""
        team = caller().team
        try:
            imported = fis.import_template(template, allow_irreversible=allow_irreversible, duration=duration)
        except fis.FisImportError as err:
            raise InvalidRequest(
                f"the template does not map: {len(err.problems)} problem(s)", problems=err.problems
            ) from err
        # Everything is checked against the targets as they will be, before anything is written.
        now = utcnow()
        targets = {
            name: Target(
                **TARGET_SPEC.validate_python(body).model_dump(),
                id=new_id(),
                team=team,
                created_at=now,
                updated_at=now,
            )
            for name, body in imported.targets.items()
        }
        body = imported.experiment({name: t.id for name, t in targets.items()})
        spec = flat(MultiStepExperiment.model_validate(body))
        check(spec, team, {t.id: t for t in targets.values()})
        created: list[Target] = []
        try:
            for name, target in targets.items():
                created.append(
                    store.create_target(
                        TARGET_SPEC.validate_python(imported.targets[name]), team=team, target_id=target.id
                    )
                )
            experiment = store.create_experiment(spec, team=team)
        except Exception:
            for target in created:  # nothing is left of an import that failed half-way
                store.delete_target(target.id, team=team)
            raise
        by_name = dict(zip(targets, created, strict=True))
        return FisImported(experiment=experiment, targets=by_name, notes=imported.notes), 201

    @r.get("/experiments/<experiment_id>/export", tags=["experiments"])
    def export_experiment(
        experiment_id: ExperimentId,
        format: Annotated[Literal["fis"], Query(description="the document to write: an AWS FIS template")],
        account: Annotated[
            str | None, Query(pattern=r"^[0-9]{12}$", description="the account, for ARNs of bare ids")
        ] = None,
        role_arn: Annotated[
            str | None, Query(max_length=2048, description="the roleArn FIS runs the experiment as")
        ] = None,
    ) -> dict[str, Any]:
        """The experiment as an AWS FIS CreateExperimentTemplate input (`aws fis
        create-experiment-template --cli-input-json`); 422 names what FIS cannot express."""
        team = caller().team
        experiment = store.get_experiment(experiment_id, team=team)
        targets = {
            target_id: store.get_target(target_id, team=team).model_dump(mode="json")
            for target_id in experiment.target_ids
        }
        try:
            return fis.export_template(
                experiment.model_dump(mode="json", exclude_none=True),
                targets,
                region=region,
                account=account,
                role_arn=role_arn,
            )
        except fis.FisExportError as err:
            raise InvalidRequest(
                f"FIS cannot express this experiment: {len(err.problems)} problem(s)", problems=err.problems
            ) from err

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
