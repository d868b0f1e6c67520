"""Starting and stopping runs, and the safety paths: the guard, the emergency stop, the sweeper,
and recovery of runs whose workflow died."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from chaosplane.errors import Conflict, InvalidRequest, NotFound
from chaosplane.events import EventStatus
from chaosplane.graph import ExperimentGraph
from chaosplane.models import ExperimentResult, Lever, RunStatus, StopKind
from chaosplane.plans import refusal_to_start
from chaosplane.runs.checks import AlarmRef, preflight
from chaosplane.runs.lifecycle import Lifecycle
from chaosplane.safety import ALL_TEAMS_LEVER, InsufficientData
from chaosplane.steps import Recovered
from chaosplane.telemetry import Metric

logger = logging.getLogger(__name__)
PENDING_GRACE = timedelta(minutes=5)  # a pending run with no execution after this never will have one
# A run's faults are overdue this long after its end: more than a rollback of its resources takes.
OVERDUE_AFTER = timedelta(minutes=10)
SWEEP_PARALLEL = 8  # runs swept at once
SWEEP_BUDGET_SECONDS = 40.0  # under the minute between two sweeps
SWEEP_BACKOFF_MAX = timedelta(minutes=30)


class Control(Lifecycle):
    # The sweep's memory across ticks in one function instance: runs still being swept on a thread
    # of an earlier tick, and each failing run's failures and when to try it again. A new instance
    # starts afresh, which only means an early retry.
    def __init__(self, *args: Any, sweep_budget: float = SWEEP_BUDGET_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sweep_budget = sweep_budget
        self._sweeping: set[str] = set()
        self._sweep_backoff: dict[str, tuple[int, datetime]] = {}

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

    def on_alarm(
        self,
        alarm: str,
        reason: str,
        changed_at: datetime | None = None,
        *,
        account: str | None = None,
        region: str | None = None,
    ) -> list[str]:
        """An alarm of `account` and `region` (the event's; an environment's alarms are forwarded
        to the platform's bus with their own) went into ALARM at `changed_at`: halt every run in
        progress that names it, by its name if it is the platform's, or by its ARN.

        A run still pending that was requested after the change is left alone: its Prepare has yet
        to check the stop conditions, finds this one in ALARM and refuses the run with nothing
        touched, which tells the user more than "stopped" does. The event is delivered after the
        change, so such a run can be seen here only when the event was slower than the request.
        """
        halted = []
        for run in self._store.active_runs():
            named = next(
                (
                    ref
                    for ref in run.stop_conditions
                    if AlarmRef.of(ref).is_at(alarm, account, region, self._platform)
                ),
                None,
            )
            if run.status.is_final or named is None:
                continue
            if changed_at is not None and run.status is RunStatus.PENDING and run.created_at > changed_at:
                continue
            try:
                self.halt(run.id, f"stop condition {named} went into ALARM: {reason}", StopKind.ALARM)
                halted.append(run.id)
            except Conflict:
                pass  # it ended meanwhile
        self._emit(Metric.GUARD_EVENTS)
        self._emit(Metric.GUARD_HALTS, len(halted))
        return halted

    def engage(self, scope: str, engaged_by: str) -> tuple[Lever, list[str]]:
        """The emergency stop: record it (no new run of `scope` starts from here on), then have
        every run in progress halted, and return at once: the lever and the runs being halted.

        The halts fan out through an event to the executor (`on_lever`), not in this request;
        the sweeper halts every minute whatever runs of an engaged team are left. Without an
        event path (a test's, a script's), they are halted here.
        """
        lever = self._store.engage_lever(scope, engaged_by)
        halting = [
            run.id
            for run in self._store.active_runs()
            if not run.status.is_final and (scope == ALL_TEAMS_LEVER or run.team == scope)
        ]
        if self._fan_out is None:
            self.halt_all(scope, engaged_by)
            return lever, halting
        try:
            self._fan_out(scope, engaged_by)
        except Exception:  # the lever is engaged: the sweeper halts the runs within the minute
            logger.exception("the emergency stop of %s could not be fanned out", scope)
        return lever, halting

    def on_lever(self, scope: str, engaged_by: str) -> list[str]:
        """The fanned-out emergency stop: halt the runs of `scope`, if its lever is engaged in the
        store (an event anyone could have put on the bus proves nothing by itself)."""
        lever = self._store.lever(scope)  # the platform-wide one, when that is engaged
        if lever is None or lever.team != scope:
            logger.warning("emergency stop event for %s, whose lever is not engaged: ignored", scope)
            return []
        return self.halt_all(scope, lever.engaged_by)

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

        - a run of a team whose emergency stop is engaged is halted (a halt the lever missed);
        - a run in progress whose stop condition is in ALARM is halted (a missed alarm event);
        - a run whose execution is gone (aborted, timed out, crashed, never started) is recovered;
        - a run that ended with changes not rolled back is rolled back again.

        Runs are swept in parallel within SWEEP_BUDGET: a run whose rollback hangs (a webhook that
        never answers, or drips its answer) is left to finish on its own thread and reported, and
        the others are swept all the same. A run that fails, or runs over, backs off (1, 2, 4...
        minutes, up to SWEEP_BACKOFF_MAX) without holding up the rest.

        It also samples the faults in force (every run's resources hit and not yet restored), and
        how late it started against `scheduled_at` (the schedule's tick): its own heartbeat.
        """
        report: dict[str, list[str]] = {"halted": [], "recovered": [], "failed": [], "deferred": []}
        active = self._store.active_runs()
        if scheduled_at is not None:
            lag = (self._clock() - scheduled_at).total_seconds() * 1000
            self._emit(Metric.SWEEPER_LAG, max(0.0, lag))
        faulted = {run.id: faults_in_force(run) for run in active}
        self._emit(Metric.FAULTS_ACTIVE, sum(faulted.values()))
        self._emit(Metric.FAULTS_OVERDUE, sum(faulted[run.id] for run in active if self._overdue(run)))
        levers = self._levers({run.team for run in active if not run.status.is_final})
        now = self._clock()
        due = []
        for run in active:
            waiting = self._sweep_backoff.get(run.id)
            if run.id in self._sweeping or (waiting is not None and now < waiting[1]):
                report["deferred"].append(run.id)
            else:
                due.append(run)
        if not due:
            return report
        pool = ThreadPoolExecutor(max_workers=min(SWEEP_PARALLEL, len(due)), thread_name_prefix="sweep")
        futures = {}
        for run in due:
            self._sweeping.add(run.id)
            futures[pool.submit(self._sweep_one, run, levers)] = run
        done, late = wait(futures, timeout=self._sweep_budget)
        pool.shutdown(wait=False)  # a hung run's thread finishes (or not) without holding the sweep
        for future in done:
            run = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # one run's failure is its own
                logger.exception("sweep: run %s", run.id)
                report["failed"].append(f"{run.id}: {type(err).__name__}: {err}")
                self._back_off(run.id)
                continue
            self._sweep_backoff.pop(run.id, None)
            if outcome is not None:
                report[outcome].append(run.id)
        for future in late:
            run = futures[future]
            report["failed"].append(f"{run.id}: over the sweep's budget of {self._sweep_budget:g}s")
            self._back_off(run.id)
        return report

    def _sweep_one(self, run: ExperimentResult, levers: dict[str, Lever]) -> str | None:
        """What the sweep did to one run: "halted", "recovered", or nothing (None)."""
        try:
            if run.status.is_final:
                self.recover(run.id, "run ended with changes not rolled back")
                return "recovered"
            status = self._execution_status(run.id) if self._execution_status else "RUNNING"
            if status is None and self._clock() - run.created_at < PENDING_GRACE:
                return None  # just created; its execution is being started
            if status != "RUNNING":
                self.recover(run.id, f"execution {(status or 'missing').lower()}")
                return "recovered"
            if run.stop_requested:
                return None
            lever = levers.get(run.team) or levers.get(ALL_TEAMS_LEVER)
            if lever is not None:
                self.halt(run.id, f"emergency stop engaged by {lever.engaged_by}", StopKind.EMERGENCY)
                return "halted"
            if run.status is RunStatus.RUNNING:
                states, _ = preflight(run.stop_conditions, self._alarms_of(run.team), InsufficientData.ALLOW)
                firing = [name for name, st in states.items() if st.state == "ALARM"]
                if firing:
                    why = f"stop condition {firing[0]} is in ALARM (sweeper): {states[firing[0]].reason}"
                    self.halt(run.id, why, StopKind.ALARM)
                    return "halted"
            return None
        except Conflict:
            return None  # it ended meanwhile
        finally:
            self._sweeping.discard(run.id)

    def _levers(self, teams: set[str]) -> dict[str, Lever]:
        """The emergency stops engaged, by team (ALL_TEAMS_LEVER: every team's), of these teams."""
        engaged: dict[str, Lever] = {}
        for team in teams:
            lever = self._store.lever(team)
            if lever is not None:
                engaged[lever.team] = lever
        return engaged

    def _back_off(self, run_id: str) -> None:
        failures = self._sweep_backoff.get(run_id, (0, self._clock()))[0] + 1
        wait_for = min(SWEEP_BACKOFF_MAX, timedelta(minutes=2 ** (failures - 1)))
        self._sweep_backoff[run_id] = (failures, self._clock() + wait_for)

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
