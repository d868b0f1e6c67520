"""What a run would do, and what its stop conditions say: the read side of the lifecycle."""

from __future__ import annotations

import logging
from typing import Any

from chaosplane.contracts import StopConditionState
from chaosplane.faults import catalogue
from chaosplane.graph import ExperimentGraph
from chaosplane.metrics import READ_AGAIN_UNTIL, loses_points, series_for
from chaosplane.models import FaultType
from chaosplane.plans import Preview, RunPlan
from chaosplane.probes import parse_probes
from chaosplane.runs.base import RunsBase
from chaosplane.runs.checks import check_graph_fits, preflight

logger = logging.getLogger(__name__)


class Previews(RunsBase):
    def preview(self, experiment_id: str, *, team: str) -> Preview:
        """Plan a run now, store the plan, and show it: a run given its id hits exactly this."""

        experiment = self._store.get_experiment(experiment_id, team=team)
        graph, multi_step = ExperimentGraph.of(experiment), experiment.actions is not None
        targets = self._step_targets(graph, team)
        check_graph_fits(
            graph, {t.id: t for t in targets.values()}, experiment.allow_irreversible, multi_step=multi_step
        )
        policy, lever = self._store.policy_and_lever(team)
        planned = self._plan_steps(graph, targets, experiment.duration, policy, multi_step=multi_step)
        plan = RunPlan.for_preview(planned, experiment, self._clock())
        self._store.save_plan(plan)
        scope = self._scope(team)
        states, problems = preflight(
            experiment.stop_conditions, self._alarms_of(team, scope), policy.insufficient_data
        )
        problems += self._unplaced_probes(scope, parse_probes(experiment.probes))
        problems += list(
            dict.fromkeys(
                problem
                for _, action in graph.faults()
                for problem in self._access_problems(targets[str(action.target)], FaultType(action.fault))
            )
        )
        refusals = (
            plan.refusals + problems + ([f"the emergency stop is engaged ({lever.team})"] if lever else [])
        )
        stop_conditions = [
            StopConditionState(alarm=ref, state=states[ref].state if ref in states else "MISSING")
            for ref in experiment.stop_conditions
        ]
        return Preview.of(
            plan,
            schedule=graph.schedule(),
            irreversible=any(catalogue.spec(FaultType(a.fault)).irreversible for _, a in graph.faults()),
            stop_conditions=stop_conditions,
            policy=policy,
            refusals=refusals,
        )

    def stop_condition_states(self, result_id: str, *, team: str) -> list[dict[str, str]]:
        """The current state of a run's stop conditions, for people and pipelines watching it."""
        result = self._store.get_result(result_id, team=team)
        names = list(result.stop_conditions)
        read = self._alarms_of(team)
        states = read(names) if names and read is not None else {}
        return [
            {
                "alarm": name,
                "state": states[name].state if name in states else "MISSING",
                "reason": states[name].reason if name in states else "",
            }
            for name in names
        ]

    def metric_series(self, result_id: str, *, team: str) -> dict[str, Any]:
        """The stop conditions' metrics around the run (the result page's chart).

        Read now, unless the run kept a complete chart. The chart kept when a run ends stops at
        its end; the first read once the minutes after it have passed is kept in its place.
        """
        result = self._store.get_result(result_id, team=team)
        kept = result.metrics.get("stop_conditions")
        if isinstance(kept, dict) and kept.get("complete"):
            return kept
        now = self._clock()
        if isinstance(kept, dict) and result.end_time and now >= result.end_time + READ_AGAIN_UNTIL:
            return {**kept, "complete": True}  # too late to read again: what was kept is what there is
        read = self._metrics_of(team)
        if read is None:
            raise RuntimeError("this component cannot read CloudWatch metrics")
        chart = series_for(result, read, now)
        if chart["complete"] and result.stop_conditions:
            if isinstance(kept, dict) and loses_points(kept, chart):
                chart = {**kept, "complete": True}  # an alarm deleted since: keep the points we had
            self._store.keep_chart(result_id, chart, before=result.metrics)
        return chart

    def missing_alarms(self, alarms: list[str], *, team: str) -> list[str]:
        """The alarms (names or ARNs) the team cannot use: missing, or, within a tag boundary, not
        tagged as the team's, or an ARN of an account and Region that is neither the platform's nor
        one of the team's environments (none of them told apart)."""
        names = list(dict.fromkeys(alarms))
        if not names:
            return []
        read = self._alarms_of(team)
        if read is None:
            raise RuntimeError("this component cannot read CloudWatch alarms")
        found = read(names)
        return [name for name in names if name not in found]
