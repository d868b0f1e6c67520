"""Multi-step runs on in-memory fakes: the graph's semantics as the run's steps carry them out.

The state machine's loop (Advance, Observe for `wake_in`, Advance...) is played by `drive`, with
a fake clock: a game day of minutes runs in milliseconds. The embedded-AWS test
(tests/integration/test_multi_step_runs.py) runs the same graph through the real ASL.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest

from chaosplane.errors import AssertionFailed, Conflict, ErrorName, Halted, InjectionFailed, NothingToHit
from chaosplane.models import ActionStatus, Experiment, FailureKind, JournalStatus, RunStatus, Target
from chaosplane.runs import AlarmState, Runs
from chaosplane.steps import StepError
from tests.fakes import FakeClock, FakeInstances, FakeWorkflow, InMemoryStore


@dataclass
class Game:
    store: InMemoryStore
    family: FakeInstances
    clock: FakeClock
    runs: Runs
    web: Target
    db: Target
    alarms: dict[str, AlarmState]
    web_ids: list[str]
    db_ids: list[str]

    def experiment(self, actions: dict[str, Any], duration: int = 900, **body: Any) -> Experiment:
        targets = {"web": {"target": self.web.id}, "db": {"target": self.db.id}, **body.pop("targets", {})}
        return self.store.add_multi_step(targets=targets, actions=actions, duration=duration, **body)

    def state(self, instance: str) -> str:
        return self.family.states[instance]

    def start(self, experiment: Experiment) -> str:
        run = self.runs.start(experiment.id, team="red")
        self.runs.prepare(None, run.id)
        return run.id

    def drive(self, run_id: str, *, until: str | None = None) -> list[tuple[int, str]]:
        """Advance, then hold for `wake_in` on the fake clock, until the graph is finished (or the
        action `until` is in force); each action's start, as seconds from the first Advance."""
        began = self.clock()
        while True:
            advanced = self.runs.advance(run_id)
            actions = self.store.get_result(run_id, team="red").actions
            if advanced.finished or (until and actions.get(until, None) and actions[until].in_force_at):
                break
            self.clock.advance(advanced.wake_in)
        return sorted(
            (int((p.start_time - began).total_seconds()), name)
            for name, p in actions.items()
            if p.start_time is not None
        )

    def finish(self, run_id: str, error: StepError | None = None) -> RunStatus:
        self.runs.rollback(run_id)
        return self.runs.finalize(run_id, error, None).status


def error(name: ErrorName | str, cause: str = "") -> StepError:
    return StepError.model_validate({"Error": str(name), "Cause": cause})


@pytest.fixture
def game() -> Game:
    clock = FakeClock()
    store = InMemoryStore(clock)
    family = FakeInstances()
    web_ids, db_ids = family.add(4, app="web"), family.add(2, app="db")
    alarms: dict[str, AlarmState] = {
        "latency-high": AlarmState("OK", team="red"),
        "errors-high": AlarmState("OK", team="red"),
    }
    workflow = FakeWorkflow()
    runs = Runs(
        store,
        lambda fault: family,
        start_workflow=workflow.start,
        send_halt=workflow.halt,
        alarms=lambda names: {n: alarms[n] for n in names if n in alarms},
        execution_status=lambda name: "RUNNING",
        clock=clock,
        rng=random.Random(3),
        parallel_changes=1,
    )
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100, "max_resources": 100})
    web, db = store.add_target(selector="app=web"), store.add_target(name="db", selector="app=db")
    return Game(store, family, clock, runs, web, db, alarms, web_ids, db_ids)


GAME_DAY = {
    # Stop half the web tier for two minutes; a minute in, stop the databases for a minute; then
    # a minute's wait after the web tier is back.
    "stop-web": {"fault": "ec2-stop", "target": "web", "duration": 120},
    "settle": {"fault": "wait", "duration": 60},
    "stop-db": {"fault": "ec2-stop", "target": "db", "duration": 60, "start_after": ["settle"]},
    "after-web": {"fault": "wait", "duration": 60, "start_after": ["stop-web"]},
}


def test_actions_start_when_what_they_wait_for_completes_and_each_rolls_back_its_own(game: Game) -> None:
    run_id = game.start(
        game.experiment(GAME_DAY, targets={"web": {"target": game.web.id, "selection": "COUNT(2)"}})
    )
    starts = game.drive(run_id)
    # Two start at once; stop-db a minute in (after settle); after-web once stop-web has held 120 s.
    assert starts == [(0, "settle"), (0, "stop-web"), (60, "stop-db"), (120, "after-web")]
    result = game.store.get_result(run_id, team="red")
    assert {name: p.status for name, p in result.actions.items()} == dict.fromkeys(
        GAME_DAY, ActionStatus.COMPLETED
    )
    # Each fault was undone when its own duration ended, not at the experiment's end.
    web = result.actions["stop-web"]
    assert web.end_time is not None and web.in_force_at is not None
    assert (web.end_time - web.in_force_at).total_seconds() == 120
    assert len(web.resources) == 2 and set(result.actions["stop-db"].resources) == set(game.db_ids)
    assert {r.step for r in result.resources} == {"stop-web", "stop-db"}
    assert all(r.restored == "running" for r in result.resources)
    assert all(game.state(i) == "running" for i in game.web_ids + game.db_ids)
    # The graph finished at 180 s: the experiment ends then, before its 900 s duration.
    assert game.finish(run_id) is RunStatus.COMPLETED
    assert not game.store.locks.target and not game.store.locks.active


def test_every_target_of_the_graph_is_locked_for_the_run(game: Game) -> None:
    run_id = game.start(game.experiment(GAME_DAY))
    single = game.store.add_experiment(game.db)  # another experiment on a step target only
    with pytest.raises(Conflict, match=f"target {game.db.id} is busy"):
        game.runs.start(single.id, team="red")
    game.drive(run_id)
    game.finish(run_id)
    assert game.runs.start(single.id, team="red").status is RunStatus.PENDING


def test_a_halt_mid_graph_undoes_the_latest_injection_first_and_starts_nothing_more(game: Game) -> None:
    run_id = game.start(
        game.experiment(
            {
                "stop-web": {"fault": "ec2-stop", "target": "web"},
                "settle": {"fault": "wait", "duration": 30},
                "stop-db": {"fault": "ec2-stop", "target": "db", "start_after": ["settle"], "duration": 300},
                "later": {"fault": "wait", "duration": 30, "start_after": ["stop-db"]},
            }
        )
    )
    game.drive(run_id, until="stop-db")
    assert all(game.state(i) == "stopped" for i in game.web_ids + game.db_ids)
    game.runs.stop(game.store.results[run_id].experiment_id, team="red")
    with pytest.raises(Halted):
        game.runs.advance(run_id)  # the next Advance (an Observe woken by the halt) goes to Rollback
    assert game.finish(run_id, error(ErrorName.HALTED)) is RunStatus.STOPPED
    # The databases (stopped last) were started first, then the web tier.
    assert game.family.restored == sorted(game.db_ids) + sorted(game.web_ids)
    actions = game.store.get_result(run_id, team="red").actions
    assert actions["stop-web"].status is ActionStatus.STOPPED
    assert actions["stop-db"].status is ActionStatus.STOPPED
    assert actions["settle"].status is ActionStatus.COMPLETED
    assert actions["later"].status is ActionStatus.CANCELLED and actions["later"].start_time is None


def test_a_failed_injection_in_the_second_wave_rolls_back_both_waves(game: Game) -> None:
    game.family.deny = {game.db_ids[1]}
    run_id = game.start(game.experiment(GAME_DAY))
    with pytest.raises(InjectionFailed, match="AccessDenied"):
        game.drive(run_id)
    assert game.state(game.db_ids[0]) == "stopped" and game.state(game.web_ids[0]) == "stopped"
    status = game.finish(run_id, error("InjectionFailed", "stop_instances failed: AccessDenied"))
    assert status is RunStatus.FAILED
    result = game.store.get_result(run_id, team="red")
    assert result.failure_kind is FailureKind.INJECTION
    assert all(game.state(i) == "running" for i in game.web_ids + game.db_ids)
    assert result.actions["stop-db"].status is ActionStatus.INTERRUPTED
    assert result.actions["stop-web"].status is ActionStatus.COMPLETED  # it was in force, undone at the end
    assert result.actions["after-web"].status is ActionStatus.CANCELLED


def test_a_run_that_died_between_waves_is_recovered_from_the_journal(game: Game) -> None:
    run_id = game.start(game.experiment(GAME_DAY))
    game.drive(run_id, until="stop-db")
    journal = game.store.journal(run_id)
    assert {e.step for e in journal} == {"stop-web", "stop-db"}
    game.runs._execution_status = lambda name: "ABORTED"
    assert game.runs.sweep()["recovered"] == [run_id]
    assert all(game.state(i) == "running" for i in game.web_ids + game.db_ids)
    assert all(e.status is JournalStatus.ROLLED_BACK for e in game.store.journal(run_id))
    result = game.store.get_result(run_id, team="red")
    assert result.status is RunStatus.FAILED and result.failure_kind is FailureKind.ABORTED
    assert not game.store.locks.target


def test_an_advance_retried_after_a_crash_injects_nothing_twice(game: Game) -> None:
    run_id = game.start(game.experiment(GAME_DAY))
    game.runs.advance(run_id)
    # The function died after its writes and before it answered: Step Functions retries it.
    stopped = [i for i in game.web_ids if game.state(i) == "stopped"]
    game.runs.advance(run_id)
    assert [i for i in game.web_ids if game.state(i) == "stopped"] == stopped
    assert len(game.store.journal(run_id)) == len(stopped)


def test_assert_alarm_state_fails_the_run_when_an_alarm_is_not_as_wanted(game: Game) -> None:
    actions = {
        "stop-web": {"fault": "ec2-stop", "target": "web", "duration": 60},
        "check": {
            "fault": "assert-alarm-state",
            "parameters": {"alarms": ["errors-high"], "states": ["OK"]},
            "start_after": ["stop-web"],
        },
        "stop-db": {"fault": "ec2-stop", "target": "db", "start_after": ["check"], "duration": 60},
    }
    run_id = game.start(game.experiment(actions))
    game.runs.advance(run_id)
    game.alarms["errors-high"] = AlarmState("ALARM", "5xx over 1%", team="red")
    game.clock.advance(60)
    with pytest.raises(AssertionFailed, match="errors-high is ALARM"):
        game.runs.advance(run_id)
    status = game.finish(run_id, error(ErrorName.ASSERTION_FAILED, "check: errors-high is ALARM"))
    result = game.store.get_result(run_id, team="red")
    assert status is RunStatus.FAILED and result.failure_kind is FailureKind.ASSERTION
    assert result.actions["stop-db"].status is ActionStatus.CANCELLED
    assert all(game.state(i) == "running" for i in game.db_ids)  # never stopped


def test_assert_alarm_state_passes_on_and_the_next_action_starts(game: Game) -> None:
    actions = {
        "check": {"fault": "assert-alarm-state", "parameters": {"alarms": ["errors-high"], "states": ["OK"]}},
        "stop-db": {"fault": "ec2-stop", "target": "db", "start_after": ["check"], "duration": 60},
    }
    run_id = game.start(game.experiment(actions))
    assert game.drive(run_id) == [(0, "check"), (0, "stop-db")]
    assert game.finish(run_id) is RunStatus.COMPLETED


def test_the_preview_shows_each_step_target_and_the_run_hits_exactly_it(game: Game) -> None:
    experiment = game.experiment(GAME_DAY, targets={"web": {"target": game.web.id, "selection": "COUNT(1)"}})
    preview = game.runs.preview(experiment.id, team="red")
    assert preview.steps == {"stop-web": "web", "stop-db": "db"}
    assert sorted((r.step, r.id) for r in preview.selected)[:2] == [
        ("db", game.db_ids[0]),
        ("db", game.db_ids[1]),
    ]
    web = [r.id for r in preview.selected if r.step == "web"]
    assert len(web) == 1
    run = game.runs.start(experiment.id, team="red", plan_id=preview.plan_id)
    game.runs.prepare(None, run.id)
    game.drive(run.id)
    result = game.store.get_result(run.id, team="red")
    assert result.actions["stop-web"].resources == web


def test_a_step_target_that_selects_nothing_fails_the_run_before_anything_is_touched(game: Game) -> None:
    for instance in game.db_ids:
        game.family.states[instance] = "stopped"
    run = game.runs.start(game.experiment(GAME_DAY).id, team="red")
    with pytest.raises(NothingToHit, match=f"step target db \\({game.db.id}\\) matched no resource"):
        game.runs.prepare(None, run.id)
    assert all(game.state(i) == "running" for i in game.web_ids)
