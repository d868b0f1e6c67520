"""Plans: what a preview showed, or a Prepare chose, kept for the run that carries it out."""

from __future__ import annotations

from chaosplane.plans import KEEP_AFTER, RunPlan
from chaosplane.store.base import StoreBase
from chaosplane.store.records import PlanRecord


class Plans(StoreBase):
    def _plan_record(self, plan: RunPlan) -> PlanRecord:
        return self._plans(
            id=plan.id,
            scope=plan.team,
            experiment_id=plan.experiment_id,
            created_at=plan.created_at,
            expires_at=plan.expires_at,
            body=plan.encode(),
            ttl=max(plan.expires_at, plan.created_at) + KEEP_AFTER,
        )

    def save_plan(self, plan: RunPlan) -> None:
        self._plan_record(plan).save(condition=self._plans.id.does_not_exist())

    def get_plan(self, plan_id: str, *, team: str | None) -> RunPlan:
        """The plan, even past its `expires_at` (whether it may still start a run is the caller's
        question); NotFound for another team's, as for every item."""
        record = self._get(self._plans, "plan", plan_id, team)
        return RunPlan.decode(record.body)
