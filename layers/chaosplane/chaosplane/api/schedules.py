"""/experiments/{id}/schedules: when an experiment runs by itself (EventBridge Scheduler)."""

from collections.abc import Callable

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.api.params import ExperimentId, ScheduleId
from chaosplane.auth import Caller
from chaosplane.models import Schedule, ScheduleSpec
from chaosplane.scheduling import Scheduling


def router(scheduling: Scheduling, caller: Callable[[], Caller]) -> APIGatewayRouter:
    r = APIGatewayRouter()
    base = "/experiments/<experiment_id>/schedules"

    @r.post(base, tags=["schedules"], status_code=201)
    def create_schedule(experiment_id: ExperimentId, spec: ScheduleSpec) -> tuple[Schedule, int]:
        return scheduling.create(experiment_id, spec, team=caller().team), 201

    @r.get(base, tags=["schedules"])
    def list_schedules(experiment_id: ExperimentId) -> list[Schedule]:
        return scheduling.all(experiment_id, team=caller().team)

    @r.get(base + "/<schedule_id>", tags=["schedules"])
    def get_schedule(experiment_id: ExperimentId, schedule_id: ScheduleId) -> Schedule:
        return scheduling.get(experiment_id, schedule_id, team=caller().team)

    @r.put(base + "/<schedule_id>", tags=["schedules"])
    def replace_schedule(
        experiment_id: ExperimentId, schedule_id: ScheduleId, spec: ScheduleSpec
    ) -> Schedule:
        return scheduling.replace(experiment_id, schedule_id, spec, team=caller().team)

    @r.delete(base + "/<schedule_id>", tags=["schedules"], status_code=204)
    def delete_schedule(experiment_id: ExperimentId, schedule_id: ScheduleId) -> tuple[None, int]:
        scheduling.delete(experiment_id, schedule_id, team=caller().team)
        return None, 204

    @r.post(base + "/<schedule_id>/pause", tags=["schedules"])
    def pause_schedule(experiment_id: ExperimentId, schedule_id: ScheduleId) -> Schedule:
        return scheduling.set_enabled(experiment_id, schedule_id, False, team=caller().team)

    @r.post(base + "/<schedule_id>/resume", tags=["schedules"])
    def resume_schedule(experiment_id: ExperimentId, schedule_id: ScheduleId) -> Schedule:
        return scheduling.set_enabled(experiment_id, schedule_id, True, team=caller().team)

    return r
