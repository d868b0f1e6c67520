"""Runs (results): created with their locks, changed step by step, finished and released atomically."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.update import Action

from chaosplane.errors import Conflict, NotFound, RunExists
from chaosplane.models import (
    STOP_STEP,
    ActionProgress,
    Experiment,
    ExperimentResult,
    ExperimentStatus,
    FailureKind,
    JournalEntry,
    JournalStatus,
    Page,
    ProbeRecord,
    ResourceState,
    RunStatus,
    StopKind,
    Target,
    TimelineEvent,
    Trigger,
    Verdict,
    new_id,
)
from chaosplane.plans import KEEP_AFTER, RunPlan
from chaosplane.safety import SafetyPolicy
from chaosplane.store.base import ACTIVE, ALL_TEAMS, MAX_TRANSACTION_ITEMS, LocksMoved, is_condition_failure
from chaosplane.store.experiments import Experiments
from chaosplane.store.plans import Plans
from chaosplane.store.records import TimelineMap
from chaosplane.store.teams import Teams


class Results(Experiments, Teams, Plans):
    def _why_not_started(self, result_id: str, experiment: Experiment, team_refused: Exception) -> Exception:
        try:
            self._results.get(result_id, consistent_read=True, attributes_to_get=["id"])
            return RunExists(f"result {result_id} already exists")
        except DoesNotExist:
            pass
        if self._experiment_record(experiment.id, None).active_run:
            return Conflict(f"experiment {experiment.id} is already running")
        for target_id in experiment.target_ids:
            if self._target_record(target_id, None).active_run:
                return Conflict(f"target {target_id} is busy with another run (one run per target at a time)")
        return team_refused

    def _why_not_finished(self, result_id: str, locks_moved: Exception) -> Exception:
        record = self._result_record(result_id)
        return RunExists("finalized concurrently") if RunStatus(record.status).is_final else locks_moved

    def _result_record(self, result_id: str, team: str | None = None) -> Any:
        return self._get(self._results, "result", result_id, team)

    @classmethod
    def _result(cls, record: Any) -> ExperimentResult:
        values = cls._values(record)
        values["duration"] = int(values["duration"])
        values["timeline"] = [t.attribute_values for t in values.get("timeline") or []]
        values["trigger"] = values.get("trigger") or Trigger.API.value
        return ExperimentResult.model_validate(values)

    def create_run(
        self,
        experiment: Experiment,
        result_id: str | None = None,
        *,
        max_concurrent_runs: int = 5,
        trigger: Trigger = Trigger.API,
        schedule_id: str | None = None,
        plan_id: str | None = None,
    ) -> ExperimentResult:
        """Create a `pending` result and lock its experiment and target to it, atomically.

        Fails with Conflict when the experiment or the target already has an active run, so two
        clicks on "run" (or a schedule firing during a manual run, or two experiments on one
        target) never overlap; with RunExists when a run with this id is already recorded.
        """
        now = self._clock()
        record = self._results(
            id=result_id or new_id(),
            scope=experiment.team,
            experiment_id=experiment.id,
            experiment_name=experiment.name,
            created_at=now,
            status=RunStatus.PENDING.value,
            fault=experiment.type.value,
            target_id=experiment.target,
            selection=experiment.selection,
            duration=experiment.duration,
            parameters=experiment.parameters,
            stop_conditions=experiment.halting_alarms,
            probes=experiment.probes,
            active=ACTIVE,
            trigger=trigger.value,
            schedule_id=schedule_id,
            plan_id=plan_id,
            steps=experiment.frozen_steps(),
            timeline=[TimelineMap(at=now, step="created", message=f"run requested ({trigger.value})")],
        )
        e, t, teams = self._experiments, self._targets, self._teams
        team_refused = LocksMoved("the team may not start another run now")
        try:
            with self._transaction(lambda: self._why_not_started(record.id, experiment, team_refused)) as tx:
                tx.save(record, condition=self._results.id.does_not_exist())
                tx.update(
                    e(id=experiment.id),
                    actions=[e.active_run.set(record.id), e.status.set(RunStatus.PENDING.value)],
                    condition=e.id.exists() & e.active_run.does_not_exist(),
                )
                for target_id in experiment.target_ids:
                    tx.update(
                        t(id=target_id),
                        actions=[t.active_run.set(record.id)],
                        condition=t.id.exists() & t.active_run.does_not_exist(),
                    )
                tx.update(
                    teams(team=experiment.team),
                    actions=[teams.running.add(1)],
                    condition=teams.halted_at.does_not_exist()
                    & (teams.running.does_not_exist() | (teams.running < max_concurrent_runs)),
                )
                tx.condition_check(teams, ALL_TEAMS, condition=teams.halted_at.does_not_exist())
        except LocksMoved as err:
            # The transaction refused it; only now is the emergency stop worth a read, to say which.
            lever = self.lever(experiment.team)
            if lever is not None:
                where = "platform-wide" if lever.team == ALL_TEAMS else f"for team {lever.team}"
                raise Conflict(
                    f"the emergency stop is engaged {where} (by {lever.engaged_by}); no run may start"
                ) from err
            raise Conflict(
                f"team {experiment.team} already has {max_concurrent_runs} runs in progress (its limit)"
            ) from err
        return self._result(record)

    def record_skipped_run(
        self, experiment: Experiment, result_id: str, reason: str, trigger: Trigger, schedule_id: str | None
    ) -> ExperimentResult:
        """A run that was refused before it could start (locks, emergency stop): final at once.

        It takes no lock and changes nothing else; it exists so that a schedule's refusals are
        visible. Idempotent: a retried Prepare finds the record it wrote.
        """
        now = self._clock()
        record = self._results(
            id=result_id,
            scope=experiment.team,
            experiment_id=experiment.id,
            experiment_name=experiment.name,
            created_at=now,
            start_time=now,
            end_time=now,
            status=RunStatus.SKIPPED.value,
            success=False,
            verdict=Verdict.INCONCLUSIVE.value,
            error=reason,
            fault=experiment.type.value,
            target_id=experiment.target,
            selection=experiment.selection,
            duration=experiment.duration,
            parameters=experiment.parameters,
            stop_conditions=experiment.halting_alarms,
            probes=experiment.probes,
            trigger=trigger.value,
            schedule_id=schedule_id,
            steps=experiment.frozen_steps(),
            timeline=[TimelineMap(at=now, step="skipped", message=reason)],
        )
        try:
            record.save(condition=self._results.id.does_not_exist())
        except PutError as err:
            if not is_condition_failure(err):
                raise
        return self.get_result(result_id, team=None)

    def abandon_run(self, result_id: str, experiment_id: str) -> None:
        """Undo `create_run` when the workflow could not be started: no half-written run remains."""
        record = self._result_record(result_id)
        self.release_run(result_id, experiment_id, self._result(record).target_ids)
        self._results(id=result_id).delete()
        # The experiment's status goes back to what its latest finished run says.
        latest = next(
            iter(self._results.by_experiment.query(experiment_id, scan_index_forward=False, limit=1)), None
        )
        status = latest.status if latest is not None else ExperimentStatus.CREATED.value
        self._experiments(id=experiment_id).update(actions=[self._experiments.status.set(status)])

    def release_run(self, result_id: str, experiment_id: str, target_ids: Sequence[str]) -> None:
        """Free the experiment, its targets and the team's run slot (each only if this run holds it)."""
        r, teams = self._results, self._teams
        try:
            record = self._results.get(result_id, consistent_read=True)
        except DoesNotExist:
            record = None
        if record is not None and record.active:
            try:
                with self._transaction(lambda: RunExists("released concurrently")) as tx:
                    tx.update(r(id=result_id), actions=[r.active.remove()], condition=r.active.exists())
                    tx.update(teams(team=record.scope), actions=[teams.running.add(-1)])
            except RunExists:
                pass
        held: list[tuple[Any, str]] = [(self._experiments, experiment_id)]
        held += [(self._targets, target_id) for target_id in target_ids]
        for model, item_id in held:
            try:
                model(id=item_id).update(
                    actions=[model.active_run.remove()], condition=model.active_run == result_id
                )
            except UpdateError as err:
                if not is_condition_failure(err):
                    raise

    def get_result(self, result_id: str, *, team: str | None) -> ExperimentResult:
        return self._result(self._result_record(result_id, team))

    # -- reads of two records in one call, for the steps that need both at once -------------------

    def experiment_and_policy(self, experiment_id: str, *, team: str) -> tuple[Experiment, SafetyPolicy]:
        self._check_id("experiment", experiment_id)
        experiment, policy = self._get_together((self._experiments, experiment_id), (self._teams, team))
        found = self._found(experiment, "experiment", experiment_id, team)
        return self._experiment(found), self._policy(policy)

    def target_and_policy(self, target_id: str, *, team: str) -> tuple[Target, SafetyPolicy]:
        self._check_id("target", target_id)
        target, policy = self._get_together((self._targets, target_id), (self._teams, team))
        return self._target(self._found(target, "target", target_id, team)), self._policy(policy)

    def result_and_plan(self, result_id: str, plan_id: str) -> tuple[ExperimentResult, RunPlan]:
        """A run and its plan (of the same team, as every run's is)."""
        self._check_id("result", result_id)
        self._check_id("plan", plan_id)
        result, plan = self._get_together((self._results, result_id), (self._plans, plan_id))
        run = self._result(self._found(result, "result", result_id, None))
        return run, RunPlan.decode(self._found(plan, "plan", plan_id, run.team).body)

    def list_results(self, experiment_id: str, limit: int, next_token: str | None) -> Page[ExperimentResult]:
        records, token = self._page(
            self._results.by_experiment.query, experiment_id, "experiment_id", limit, next_token, ["id"]
        )
        return Page[ExperimentResult](items=[self._result(r) for r in records], next_token=token)

    def update_run(
        self,
        result_id: str,
        *,
        event: tuple[str, str] | None = None,
        status: RunStatus | None = None,
        resources: list[ResourceState] | None = None,
        metrics: dict[str, Any] | None = None,
        start_time: datetime | None = None,
        events: list[tuple[str, str]] | None = None,
        journal_marks: list[tuple[JournalEntry, JournalStatus]] | None = None,
        actions: dict[str, ActionProgress] | None = None,
        probe_records: dict[str, ProbeRecord] | None = None,
    ) -> None:
        """Change a run's record in one write; timeline events are appended, never rewritten.

        `journal_marks` (entries now applied or rolled back) go in the same write, a transaction:
        a step's progress and its journal's marks cost one call, not one per resource. A mark
        only tells a retried step what it need not redo; the entry itself was written before its
        change, so a mark lost in a crash makes a step redo an idempotent change, never skip one.
        """
        r = self._results
        changes: list[Any] = []
        lines = [*(events or []), *([event] if event is not None else [])]
        if lines:
            now = self._clock()
            appended = [TimelineMap(at=now, step=step, message=message) for step, message in lines]
            changes.append(r.timeline.set(r.timeline.append(appended)))
        if status is not None:
            changes.append(r.status.set(status.value))
        if resources is not None:
            changes.append(r.resources.set([res.model_dump(mode="json") for res in resources]))
        if metrics is not None:
            changes.append(r.metrics.set(metrics))
        if start_time is not None:
            changes.append(r.start_time.set(start_time))
        if actions is not None:
            changes.append(r.actions.set({name: p.model_dump(mode="json") for name, p in actions.items()}))
        if probe_records is not None:
            changes.append(
                r.probe_records.set({name: p.model_dump(mode="json") for name, p in probe_records.items()})
            )
        if not journal_marks:
            self._results(id=result_id).update(actions=changes, condition=r.id.exists())
            return
        j, now = self._journal, self._clock()
        marks: list[tuple[Any, list[Action]]] = [
            (j(result_id=entry.result_id, key=entry.key), [j.status.set(status.value), j.updated_at.set(now)])
            for entry, status in journal_marks
        ]
        first = MAX_TRANSACTION_ITEMS - 1 if changes else MAX_TRANSACTION_ITEMS
        chunks = [marks[:first]] + [
            marks[i : i + MAX_TRANSACTION_ITEMS] for i in range(first, len(marks), MAX_TRANSACTION_ITEMS)
        ]
        for number, chunk in enumerate(chunks):
            with self._transaction() as tx:
                if number == 0 and changes:
                    tx.update(self._results(id=result_id), actions=changes, condition=r.id.exists())
                for record, mark in chunk:
                    tx.update(record, actions=mark)

    def keep_chart(self, result_id: str, chart: dict[str, Any], *, before: dict[str, Any]) -> None:
        """Keep a finished run's stop-condition chart in its `metrics`, read as `before`.

        Only if `metrics` is still `before`: a recovery that wrote its own figures meanwhile wins,
        and the chart is kept on a later read.
        """
        r = self._results
        final = [s.value for s in RunStatus if s.is_final]
        try:
            self._results(id=result_id).update(
                actions=[r.metrics.set({**before, "stop_conditions": chart})],
                condition=r.status.is_in(*final) & (r.metrics == before),
            )
        except UpdateError as err:
            if not is_condition_failure(err):
                raise

    def mark_running(
        self, result: ExperimentResult, plan: RunPlan, *, plan_is_new: bool, event: tuple[str, str]
    ) -> None:
        """Record the run's plan and mark it `running`, in one transaction: a Prepare that fails
        half-way leaves the run pending with no plan, and its retry plans again."""
        now = self._clock()
        r, p = self._results, self._plans
        with self._transaction() as tx:
            if plan_is_new:
                tx.save(self._plan_record(plan), condition=p.id.does_not_exist())
            else:  # a preview's plan: kept for as long as this run may read it
                until = now + timedelta(seconds=result.duration) + KEEP_AFTER
                tx.update(p(id=plan.id), actions=[p.ttl.set(until)], condition=p.id.exists())
            tx.update(
                r(id=result.id),
                actions=[
                    r.status.set(RunStatus.RUNNING.value),
                    r.start_time.set(now),
                    r.plan_id.set(plan.id),
                    r.resources.set([res.model_dump(mode="json") for res in plan.resources()]),
                    r.timeline.set(r.timeline.append([TimelineMap(at=now, step=event[0], message=event[1])])),
                ],
                condition=r.status == RunStatus.PENDING.value,
            )
            tx.update(
                self._experiments(id=result.experiment_id),
                actions=[self._experiments.status.set(RunStatus.RUNNING.value)],
                condition=self._experiments.active_run == result.id,
            )

    def register_task_token(self, result_id: str, token: str, event: tuple[str, str]) -> bool:
        """Store the Observe task's token (and its line on the timeline, in the same write);
        returns whether a stop was already requested."""
        record = self._results(id=result_id)
        r = self._results
        record.update(
            actions=[
                r.task_token.set(token),
                r.timeline.set(
                    r.timeline.append([TimelineMap(at=self._clock(), step=event[0], message=event[1])])
                ),
            ],
            condition=r.id.exists(),
        )
        return bool(record.stop_requested)

    def request_stop(
        self, result_id: str, reason: str | None = None, kind: StopKind = StopKind.USER
    ) -> str | None:
        """Flag the run to stop; returns the Observe task token if Observe has started.

        `reason` (an alarm, the emergency stop) becomes the run's error; a plain stop has none.
        The first reason given, and the first kind, are kept.
        """
        record = self._results(id=result_id)
        r = self._results
        actions: list[Action] = [
            r.stop_requested.set(True),
            r.stop_kind.set(r.stop_kind | kind.value),
            # On the timeline in the same write: a halt is latency-critical, one write is enough.
            r.timeline.set(
                r.timeline.append(
                    [
                        TimelineMap(
                            at=self._clock(),
                            step=STOP_STEP,
                            message=f"{reason or 'stop requested'}; rolling back",
                        )
                    ]
                )
            ),
        ]
        if reason is not None:
            actions.append(r.stop_reason.set(r.stop_reason | reason))
        try:
            record.update(
                actions=actions,
                condition=self._results.status.is_in(RunStatus.PENDING.value, RunStatus.RUNNING.value),
            )
        except UpdateError as err:
            if is_condition_failure(err):
                raise Conflict("the run has already ended") from err
            raise
        return record.task_token

    def stop_requested(self, result_id: str) -> bool:
        # Asked before every resource of a run: read the one flag, not the whole (growing) record.
        try:
            record = self._results.get(
                result_id, consistent_read=True, attributes_to_get=[self._results.stop_requested.attr_name]
            )
        except DoesNotExist:
            raise NotFound("result", result_id) from None
        return bool(record.stop_requested)

    def finish_run(
        self,
        result: ExperimentResult,
        status: RunStatus,
        error: str | None,
        metrics: dict[str, Any],
        message: str,
        *,
        release: bool,
        failure_kind: FailureKind | None = None,
        verdict: Verdict = Verdict.INCONCLUSIVE,
    ) -> ExperimentResult:
        """Write the run's final state and, when `release`, free its experiment and target.

        `result` is the run as the caller just read it: the write is conditional on its status,
        so a concurrent Finalize's write stands, and the answer is built from it rather than read
        again (Finalize is on the halt's critical path).
        A run whose rollback is incomplete ends `failed` but keeps its locks: nobody may start
        another run on resources that may still be faulted until recovery has rolled them back.
        Idempotent: a run already final is left as it is.
        """
        result_id = result.id
        if result.status.is_final:
            if release:
                self.release_run(result_id, result.experiment_id, result.target_ids)
            return result
        now = self._clock()
        r, e = self._results, self._experiments
        line = TimelineMap(at=now, step="finalize", message=message)
        result_actions: list[Action] = [
            r.status.set(status.value),
            r.end_time.set(now),
            r.success.set(verdict is Verdict.PASSED),
            r.verdict.set(verdict.value),
            r.metrics.set(metrics),
            r.task_token.remove(),
            r.timeline.set(r.timeline.append([line])),
        ]
        if error is not None:
            result_actions.append(r.error.set(error))
        if failure_kind is not None:
            result_actions.append(r.failure_kind.set(failure_kind.value))
        if result.start_time is None:
            result_actions.append(r.start_time.set(now))
        final = result.model_copy(
            update={
                "status": status,
                "end_time": now,
                "success": verdict is Verdict.PASSED,
                "verdict": verdict,
                "metrics": metrics,
                "error": error if error is not None else result.error,
                "failure_kind": failure_kind if failure_kind is not None else result.failure_kind,
                "start_time": result.start_time or now,
                "timeline": [*result.timeline, TimelineEvent(at=now, step=line.step, message=message)],
            }
        )
        t, teams = self._targets, self._teams
        if release:
            # The normal end: the run becomes final and frees its experiment, target and team slot
            # in one transaction, so whoever sees it final can start the next run at once.
            held = LocksMoved("a lock moved on")
            try:
                with self._transaction(lambda: self._why_not_finished(result_id, held)) as tx:
                    tx.update(
                        self._results(id=result_id),
                        actions=[*result_actions, r.active.remove()],
                        condition=(r.status == result.status.value) & r.active.exists(),
                    )
                    tx.update(
                        e(id=result.experiment_id),
                        actions=[e.status.set(status.value), e.active_run.remove()],
                        condition=e.active_run == result_id,
                    )
                    for target_id in result.target_ids:
                        tx.update(
                            t(id=target_id),
                            actions=[t.active_run.remove()],
                            condition=t.active_run == result_id,
                        )
                    tx.update(teams(team=result.team), actions=[teams.running.add(-1)])
                return final
            except RunExists:
                return self.get_result(result_id, team=None)  # finalized concurrently: that write stands
            except LocksMoved:
                pass  # released already (an earlier recovery), or changed since read: the slow way
        try:
            with self._transaction(lambda: RunExists("finalized concurrently")) as tx:
                tx.update(
                    self._results(id=result_id),
                    actions=result_actions,
                    condition=r.status == result.status.value,
                )
                tx.update(e(id=result.experiment_id), actions=[e.status.set(status.value)])
        except RunExists:
            return self.get_result(result_id, team=None)
        if release:
            self.release_run(result_id, result.experiment_id, result.target_ids)
        return self.get_result(result_id, team=None)

    def active_runs(self) -> list[ExperimentResult]:
        """Every run that holds locks: in progress, or ended with faults not yet rolled back."""
        return [self._result(r) for r in self._results.by_active.query(ACTIVE)]
