"""Starting and stopping runs, and the safety paths: the guard, the emergency stop, the sweeper,
and recovery of runs whose workflow died."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from chaosplane.errors import Conflict, InvalidRequest, NotFound
from chaosplane.events import EventStatus
from chaosplane.graph import ExperimentGraph
from chaosplane.models import ExperimentResult, RunStatus, StopKind
from chaosplane.plans import refusal_to_start
from chaosplane.runs.checks import alarm_name, preflight
from chaosplane.runs.lifecycle import Lifecycle
from chaosplane.safety import ALL_TEAMS_LEVER, InsufficientData
from chaosplane.steps import Recovered
from chaosplane.telemetry import Metric

logger = logging.getLogger(__name__)
PENDING_GRACE = timedelta(minutes=5)  # a pending run with no execution after this never will have one
# A run's faults are overdue this long after its end: more than a rollback of its resources takes.
OVERDUE_AFTER = timedelta(minutes=10)


class Control(Lifecycle):
    # -- API side -------------------------------------------------------------------------------

    def start(self, experiment_id: str, *, team: str, plan_id: str | None = None) -> ExperimentResult:
        """Create the run and start its workflow; if the start fails, nothing is left behind.

        With `plan_id` (from a preview), the run hits exactly that plan's resources, or it is
        refused (409) naming each one that is no longer eligible, before anything is recorded.
        """
        if self._start_workflow is None:
            raise RuntimeError("this component cannot start runs (no state machine configured)")
        experiment, policy = self._store.experiment_and_policy(experiment_id, team=team)
        # The experiment was checked against its target when it was saved, and a target's type
        # cannot change; the emergency stop is enforced by create_run's transaction.
        if plan_id is not None:
            graph = ExperimentGraph.of(experiment)
            targets = self._step_targets(graph, team)
            try:
                plan = self._store.get_plan(plan_id, team=team)
            except NotFound as err:
                raise InvalidRequest(f"plan {plan_id!r} does not exist", field="plan_id") from err
            refusal = refusal_to_start(plan, experiment, self._clock())
            if refusal is not None:
                raise Conflict(refusal)
            stale, _ = self._plan_problems(
                plan, graph, targets, policy, multi_step=experiment.actions is not None
            )
            if stale:
                raise Conflict(
                    f"plan {plan.id} cannot run as previewed; no longer eligible: " + "; ".join(stale)
                )
        result = self._store.create_run(
            experiment, max_concurrent_runs=policy.max_concurrent_runs, plan_id=plan_id
        )
        try:
            self._start_workflow(result)
        except Exception:
            self._store.abandon_run(result.id, experiment.id)
            raise
        self._announce(result, None, EventStatus.PENDING)
        return result

    def stop(self, experiment_id: str, *, team: str) -> ExperimentResult:
        result_id = self._store.active_run_of(experiment_id, team=team)
        if result_id is None:
            raise Conflict(f"experiment {experiment_id} is not running")
        self.halt(result_id, None)
        return self._store.get_result(result_id, team=team)

    def halt(self, result_id: str, reason: str | None, kind: StopKind = StopKind.USER) -> None:
        """Stop a run now: it goes to rollback at once and ends `stopped` (with `reason`, if any)."""
        before = self._store.get_result(result_id, team=None)
        self._trace(before, "halt")
        token = self._store.request_stop(result_id, reason, kind)
        if token is not None and self._send_halt is not None:
            self._send_halt(token)  # first: the halt is what is waited for; the event can follow
        # Without a token, Observe has not started: Inject and Observe check the flag themselves.
        if not before.stop_requested:
            old = EventStatus(before.status.value)
            self._announce(before, old, EventStatus.STOPPING, reason, stop_kind=kind)

    # -- recovery ---------------------------------------------------------------------------------

    def recover(self, result_id: str, reason: str) -> Recovered:
        """Finish a run whose workflow ended without finishing it (aborted, timed out, crashed).

        Rolls back whatever the journal still holds, then finalizes the run (if it is not final
        yet) or releases its locks (if Finalize ran while the rollback was incomplete).
        Safe to call for any run, any number of times.
        """
        result = self._store.get_result(result_id, team=None)
        if result.status.is_final and not self._unrestored(result_id):
            self._store.finish_run(result, result.status, None, result.metrics, "", release=True)
            return Recovered(rolled_back=0, status=result.status, result_id=result_id)
        rolled = self.rollback(result_id)
        final = self.finalize(result_id, self._workflow_ended(reason), None)
        if result.status.is_final:
            # It ended with its rollback incomplete; now everything is restored: say so, so that
            # whoever was paged about resources left faulted hears that they no longer are.
            status = EventStatus(result.status.value)
            self._announce(result, status, status, "rollback completed by recovery", rollback_complete=True)
        return Recovered(rolled_back=rolled.rolled_back, status=final.status, result_id=result_id)

    # -- safety: the guard, the sweeper, the emergency stop ---------------------------------------

    def on_alarm(self, alarm: str, reason: str, changed_at: datetime | None = None) -> list[str]:
        """An alarm went into ALARM (at `changed_at`): halt every run in progress that names it.

        A run still pending that was requested after the change is left alone: its Prepare has yet
        to check the stop conditions, finds this one in ALARM and refuses the run with nothing
        touched, which tells the user more than "stopped" does. The event is delivered after the
        change, so such a run can be seen here only when the event was slower than the request.
        """
        halted = []
        for run in self._store.active_runs():
            if run.status.is_final or alarm not in {alarm_name(ref) for ref in run.stop_conditions}:
                continue
            if changed_at is not None and run.status is RunStatus.PENDING and run.created_at > changed_at:
                continue
            try:
                self.halt(run.id, f"stop condition {alarm} went into ALARM: {reason}", StopKind.ALARM)
                halted.append(run.id)
            except Conflict:
                pass  # it ended meanwhile
        self._emit(Metric.GUARD_EVENTS)
        self._emit(Metric.GUARD_HALTS, len(halted))
        return halted

    def halt_all(self, team: str, engaged_by: str) -> list[str]:
        """The emergency stop: halt every run in progress of `team` (or of every team)."""
        halted = []
        for run in self._store.active_runs():
            if run.status.is_final or (team != ALL_TEAMS_LEVER and run.team != team):
                continue
            try:
                self.halt(run.id, f"emergency stop engaged by {engaged_by}", StopKind.EMERGENCY)
                halted.append(run.id)
            except Conflict:
                pass
        return halted

    def sweep(self, scheduled_at: datetime | None = None) -> dict[str, list[str]]:
        """The fallback for every event that might be missed, run every minute.

        - a run in progress whose stop condition is in ALARM is halted (a missed alarm event);
        - a run whose execution is gone (aborted, timed out, crashed, never started) is recovered;
        - a run that ended with changes not rolled back is rolled back again.

        It also samples the faults in force (every run's resources hit and not yet restored), and
        how late it started against `scheduled_at` (the schedule's tick): its own heartbeat.
        """
        report: dict[str, list[str]] = {"halted": [], "recovered": [], "failed": []}
        active = self._store.active_runs()
        if scheduled_at is not None:
            lag = (self._clock() - scheduled_at).total_seconds() * 1000
            self._emit(Metric.SWEEPER_LAG, max(0.0, lag))
        faulted = {run.id: faults_in_force(run) for run in active}
        self._emit(Metric.FAULTS_ACTIVE, sum(faulted.values()))
        self._emit(Metric.FAULTS_OVERDUE, sum(faulted[run.id] for run in active if self._overdue(run)))
        for run in active:
            try:
                if run.status.is_final:
                    self.recover(run.id, "run ended with changes not rolled back")
                    report["recovered"].append(run.id)
                    continue
                status = self._execution_status(run.id) if self._execution_status else "RUNNING"
                if status is None and self._clock() - run.created_at < PENDING_GRACE:
                    continue  # just created; its execution is being started
                if status != "RUNNING":
                    self.recover(run.id, f"execution {(status or 'missing').lower()}")
                    report["recovered"].append(run.id)
                    continue
                if run.status is RunStatus.RUNNING and not run.stop_requested:
                    states, _ = preflight(run.stop_conditions, self._alarms, InsufficientData.ALLOW)
                    firing = [name for name, st in states.items() if st.state == "ALARM"]
                    if firing:
                        reason = states[firing[0]].reason
                        why = f"stop condition {firing[0]} is in ALARM (sweeper): {reason}"
                        self.halt(run.id, why, StopKind.ALARM)
                        report["halted"].append(run.id)
            except Exception as err:  # one stuck run must not stop the sweep of the others
                logger.exception("sweep: run %s", run.id)
                report["failed"].append(f"{run.id}: {type(err).__name__}: {err}")
        return report

    def _overdue(self, run: ExperimentResult) -> bool:
        """Past its end and the time a rollback takes: what it still holds should be restored."""
        if run.status.is_final:
            return True
        if run.start_time is None:
            return False
        return self._clock() > run.start_time + timedelta(seconds=run.duration) + OVERDUE_AFTER


def faults_in_force(run: ExperimentResult) -> int:
    """The run's resources hit and not (yet) recorded restored."""
    return sum(1 for r in run.resources if r.after is not None and r.restored is None)
