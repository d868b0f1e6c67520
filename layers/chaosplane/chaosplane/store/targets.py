"""Targets: what a team registers to be hit, and the count of experiments that use each."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import DeleteError, UpdateError

from chaosplane.errors import Conflict, InvalidRequest
from chaosplane.models import Page, Target, TargetSpec, new_id
from chaosplane.store.base import StoreBase, is_condition_failure


class Targets(StoreBase):
    def _target_record(self, target_id: str, team: str | None) -> Any:
        return self._get(self._targets, "target", target_id, team)

    @classmethod
    def _target(cls, record: Any) -> Target:
        return Target.model_validate(cls._values(record))

    def create_target(self, spec: TargetSpec, *, team: str, target_id: str | None = None) -> Target:
        now = self._clock()
        record = self._targets(
            id=target_id or new_id(),
            scope=team,
            created_at=now,
            updated_at=now,
            experiments=0,
            **spec.model_dump(mode="json"),
        )
        record.save(condition=self._targets.id.does_not_exist())
        return self._target(record)

    def get_target(self, target_id: str, *, team: str | None) -> Target:
        return self._target(self._target_record(target_id, team))

    def list_targets(self, limit: int, next_token: str | None, *, team: str) -> Page[Target]:
        records, token = self._page(self._targets.by_scope.query, team, "scope", limit, next_token, ["id"])
        return Page[Target](items=[self._target(r) for r in records], next_token=token)

    def replace_target(self, target_id: str, spec: TargetSpec, *, team: str) -> Target:
        record = self._target_record(target_id, team)
        if spec.type.value != record.type:
            raise InvalidRequest("a target's type cannot change; create a new target instead", field="type")
        t = self._targets
        values = spec.model_dump(mode="json")
        actions = [
            getattr(t, name).set(value) if value is not None else getattr(t, name).remove()
            for name, value in values.items()
        ]
        actions.append(t.updated_at.set(self._clock()))
        try:
            # A run in progress resolved this target at its start; changing it now would make the
            # record of what the run hit disagree with the target it names.
            record.update(actions=actions, condition=t.id.exists() & t.active_run.does_not_exist())
        except UpdateError as err:
            if is_condition_failure(err):
                raise Conflict("target is in use by a running experiment; wait for the run to end") from err
            raise
        return self._target(record)

    def delete_target(self, target_id: str, *, team: str) -> None:
        self._target_record(target_id, team)
        t = self._targets
        try:
            self._targets(id=target_id).delete(
                condition=(t.experiments.does_not_exist() | (t.experiments == 0))
                & t.active_run.does_not_exist()
            )
        except DeleteError as err:
            if not is_condition_failure(err):
                raise
            # The index has each experiment's first target; a multi-step one's other targets are
            # counted (`experiments`) without being listed.
            users = [e.id for e in self._experiments.by_target.query(target_id)]
            named = f" {', '.join(users)}" if users else " (multi-step ones, as a step target)"
            raise Conflict(f"target is used by experiment(s){named}; delete them first") from err
