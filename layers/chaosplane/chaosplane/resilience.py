"""The resilience score: over an experiment's (or a target's) last runs, how often the system held.

The window is the last `last` runs that ran (final, not skipped: a skipped run touched nothing),
newest first. Each has a verdict (chaosplane.probes): `passed` and `failed` are decisive;
`inconclusive` (no probes, a probe not asked in every phase, a refused run) is counted but
decides nothing. The score is the percentage of the window's decisive runs that passed,

    score = 100 * passed / (passed + failed)

rounded to one decimal, and `null` when the window has no decisive run: no evidence is not 100%.
A run from before runs had verdicts counts as inconclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from pydantic import BaseModel, Field

from chaosplane.models import Experiment, ExperimentResult, Page, RunStatus, Verdict

DEFAULT_WINDOW = 10
MAX_WINDOW = 100


class ScoredRun(BaseModel):
    result_id: str
    experiment_id: str
    start_time: datetime | None
    status: RunStatus
    verdict: Verdict


class Resilience(BaseModel):
    """How often the system held over the last runs (the formula: docs/probes.md)."""

    score: float | None = Field(description="percent of the window's decisive runs that passed; null: none")
    last: int = Field(description="the window asked for: this many runs at most")
    runs: int = Field(description="runs in the window")
    passed: int
    failed: int
    inconclusive: int
    window: list[ScoredRun] = Field(description="the runs counted, newest first")


def score(results: Iterable[ExperimentResult], last: int = DEFAULT_WINDOW) -> Resilience:
    ran = [r for r in results if r.status.is_final and r.status is not RunStatus.SKIPPED]
    ran.sort(key=lambda r: r.start_time or r.created_at, reverse=True)
    window = [
        ScoredRun(
            result_id=r.id,
            experiment_id=r.experiment_id,
            start_time=r.start_time,
            status=r.status,
            verdict=r.verdict or Verdict.INCONCLUSIVE,
        )
        for r in ran[:last]
    ]
    passed = sum(1 for r in window if r.verdict is Verdict.PASSED)
    failed = sum(1 for r in window if r.verdict is Verdict.FAILED)
    decisive = passed + failed
    return Resilience(
        score=round(100 * passed / decisive, 1) if decisive else None,
        last=last,
        runs=len(window),
        passed=passed,
        failed=failed,
        inconclusive=len(window) - decisive,
        window=window,
    )


def newest_runs(
    list_results: Callable[[str, int, str | None], Page[ExperimentResult]], experiment_id: str, last: int
) -> Iterator[ExperimentResult]:
    """An experiment's runs, newest first, until `last` have run (pending and running ones, and
    skipped ones, are passed over), reading at most a few pages."""
    counted, token = 0, None
    for _ in range(5):
        page = list_results(experiment_id, min(MAX_WINDOW, last * 2), token)
        for result in page.items:
            yield result
            counted += result.status.is_final and result.status is not RunStatus.SKIPPED
            if counted >= last:
                return
        token = page.next_token
        if token is None:
            return


def experiments_on(
    list_experiments: Callable[[int, str | None], Page[Experiment]], target_id: str
) -> Iterator[Experiment]:
    """Every experiment of the team that acts on `target_id` (any of its step targets)."""
    token = None
    while True:
        page = list_experiments(MAX_WINDOW, token)
        yield from (e for e in page.items if target_id in e.target_ids)
        token = page.next_token
        if token is None:
            return
