"""Experiments and their schedules' map (the Scheduler holds the live schedules)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from chaosplane.errors import Conflict, InvalidRequest, NotFound
from chaosplane.models import Experiment, ExperimentSpec, ExperimentStatus, Page, new_id
from chaosplane.store.base import is_condition_failure
from chaosplane.store.targets import Targets


class Experiments(Targets):
    def _experiment_record(self, experiment_id: str, team: str | None) -> Any:
        return self._get(self._experiments, "experiment", experiment_id, team)

    @classmethod
    def _experiment(cls, record: Any) -> Experiment:
        values = cls._values(record)
        values["duration"] = int(values["duration"])
        return Experiment.model_validate(values)

    def _target_gone(self, target_id: str) -> InvalidRequest:
        return InvalidRequest(f"target {target_id!r} does not exist", field="target")  # experiment writes

    def _target_or(self, target_ids: list[str], team: str, otherwise: Exception) -> Exception:
        """Why a write that needs `target_ids` was refused: the first one gone, or `otherwise`."""
        for target_id in target_ids:
            try:
                self._target_record(target_id, team)
            except NotFound:
                return self._target_gone(target_id)
        return otherwise

    def _first_gone(self, target_ids: list[str], team: str) -> Exception:
        return self._target_or(target_ids, team, self._target_gone(target_ids[0]))

    def create_experiment(self, spec: ExperimentSpec, *, team: str) -> Experiment:
        now = self._clock()
        record = self._experiments(
            id=new_id(),
            scope=team,
            created_at=now,
            updated_at=now,
            status=ExperimentStatus.CREATED.value,
            **spec.model_dump(mode="json"),
        )
        t = self._targets
        # Each target must exist (in this team) when the experiment is written, and counts its
        # users so that it cannot be deleted from under them: all in one transaction.
        with self._transaction(lambda: self._first_gone(spec.target_ids, team)) as tx:
            for target_id in spec.target_ids:
                tx.update(
                    t(id=target_id),
                    actions=[t.experiments.add(1)],
                    condition=t.id.exists() & (t.scope == team),
                )
            tx.save(record, condition=self._experiments.id.does_not_exist())
        return self._experiment(record)

    def get_experiment(self, experiment_id: str, *, team: str | None) -> Experiment:
        return self._experiment(self._experiment_record(experiment_id, team))

    def active_run_of(self, experiment_id: str, *, team: str | None) -> str | None:
        return self._experiment_record(experiment_id, team).active_run

    def list_experiments(self, limit: int, next_token: str | None, *, team: str) -> Page[Experiment]:
        records, token = self._page(
            self._experiments.by_scope.query, team, "scope", limit, next_token, ["id"]
        )
        return Page[Experiment](items=[self._experiment(r) for r in records], next_token=token)

    def replace_experiment(self, experiment_id: str, spec: ExperimentSpec, *, team: str) -> Experiment:
        record = self._experiment_record(experiment_id, team)
        if record.active_run:
            raise Conflict("experiment is running; stop it or wait for it to end before changing it")
        e, t = self._experiments, self._targets
        values = spec.model_dump(mode="json")
        actions = [
            getattr(e, name).set(value) if value is not None else getattr(e, name).remove()
            for name, value in values.items()
        ]
        actions.append(e.updated_at.set(self._clock()))
        busy = Conflict("experiment started running or was deleted meanwhile")
        same_team_target = t.id.exists() & (t.scope == team)
        before, after = self._experiment(record).target_ids, spec.target_ids
        with self._transaction(lambda: self._target_or(after, team, busy)) as tx:
            for target_id in after:
                if target_id in before:
                    tx.condition_check(t, target_id, condition=same_team_target)
                else:
                    tx.update(t(id=target_id), actions=[t.experiments.add(1)], condition=same_team_target)
            for target_id in before:
                if target_id not in after:
                    tx.update(t(id=target_id), actions=[t.experiments.add(-1)])
            tx.update(record, actions=actions, condition=e.id.exists() & e.active_run.does_not_exist())
        return self.get_experiment(experiment_id, team=team)

    def delete_experiment(self, experiment_id: str, *, team: str) -> None:
        record = self._experiment_record(experiment_id, team)
        e, t = self._experiments, self._targets
        running = Conflict("experiment is running; stop it before deleting it")
        with self._transaction(lambda: running) as tx:
            tx.delete(e(id=experiment_id), condition=e.id.exists() & e.active_run.does_not_exist())
            for target_id in self._experiment(record).target_ids:
                tx.update(t(id=target_id), actions=[t.experiments.add(-1)])

    def schedules(self, experiment_id: str, *, team: str | None) -> tuple[dict[str, dict[str, Any]], int]:
        """An experiment's schedules (id -> schedule) and the version to write them back with."""
        record = self._experiment_record(experiment_id, team)
        return dict(record.schedules or {}), int(record.schedules_version or 0)

    def save_schedules(
        self, experiment_id: str, team: str, schedules: dict[str, dict[str, Any]], version: int
    ) -> None:
        """Write the schedules back if nobody else did since they were read at `version`."""
        e = self._experiments
        unchanged = e.schedules_version == version if version else e.schedules_version.does_not_exist()
        try:
            e(id=experiment_id).update(
                actions=[e.schedules.set(schedules), e.schedules_version.set(version + 1)],
                condition=e.id.exists() & (e.scope == team) & unchanged,
            )
        except UpdateError as err:
            if is_condition_failure(err):
                raise Conflict(
                    "the experiment's schedules changed meanwhile, or it was deleted; try again"
                ) from err
            raise
