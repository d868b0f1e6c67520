"""Plans: what a preview showed, or a Prepare chose, kept for the run that carries it out."""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import UpdateError

from chaosplane.errors import NotFound
from chaosplane.plans import KEEP_AFTER, RunPlan
from chaosplane.store.base import StoreBase, is_condition_failure


class Plans(StoreBase):
    def save_plan(self, plan: RunPlan) -> None:
        self._plans(
            id=plan.id,
            scope=plan.team,
            experiment_id=plan.experiment_id,
            created_at=plan.created_at,
            expires_at=plan.expires_at,
            body=plan.encode(),
            ttl=plan.expires_at + KEEP_AFTER,
        ).save(condition=self._plans.id.does_not_exist())

    def get_plan(self, plan_id: str, *, team: str | None) -> RunPlan:
        """The plan, even past its `expires_at` (whether it may still start a run is the caller's
        question); NotFound for another team's, as for every item."""
        record = self._get(self._plans, "plan", plan_id, team)
        return RunPlan.decode(record.body)

    def keep_plan(self, plan_id: str, until: datetime) -> None:
        """Keep a plan at least until `until` (a run executes it: Inject and its retries read it)."""
        p = self._plans
        try:
            p(id=plan_id).update(actions=[p.ttl.set(until + KEEP_AFTER)], condition=p.id.exists())
        except UpdateError as err:
            if is_condition_failure(err):
                raise NotFound("plan", plan_id) from err
            raise
