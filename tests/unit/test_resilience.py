"""The resilience score: the share of the window's decisive runs that passed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chaosplane.models import ExperimentResult, Page
from chaosplane.resilience import newest_runs, score

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def run(n: int, status: str = "completed", verdict: str | None = "passed") -> ExperimentResult:
    at = T0 + timedelta(hours=n)
    return ExperimentResult.model_validate(
        {
            "id": f"r{n}",
            "team": "red",
            "experiment_id": "e",
            "status": status,
            "verdict": verdict,
            "start_time": at,
            "created_at": at,
            "fault": "ec2-stop",
            "target_id": "t",
            "selection": "ALL",
            "duration": 60,
        }
    )


def test_the_score_is_the_percentage_of_decisive_runs_that_passed_over_the_newest_window() -> None:
    runs = [
        *(run(1, verdict="failed"), run(2), run(3, verdict="failed"), run(4), run(5, verdict="inconclusive")),
        *(run(6, "skipped", "inconclusive"), run(7, "running", None), run(8)),
    ]

    scored = score(runs, last=4)

    # The newest four that ran: 8 (passed), 5 (inconclusive), 4 (passed), 3 (failed).
    assert [r.result_id for r in scored.window] == ["r8", "r5", "r4", "r3"]
    assert (scored.passed, scored.failed, scored.inconclusive, scored.runs) == (2, 1, 1, 4)
    assert scored.score == 66.7


def test_no_decisive_run_is_no_score_not_a_perfect_one() -> None:
    assert score([run(1, verdict="inconclusive"), run(2, verdict=None)]).score is None
    assert score([]).runs == 0


def test_the_newest_runs_are_read_page_by_page_only_until_the_window_is_full() -> None:
    pages = {None: ([run(9, "running", None), run(8), run(7)], "p2"), "p2": ([run(6), run(5)], "p3")}
    asked: list[str | None] = []

    def list_results(experiment_id: str, limit: int, token: str | None) -> Page[ExperimentResult]:
        asked.append(token)
        items, following = pages[token]
        return Page[ExperimentResult](items=items, next_token=following)

    got = [r.id for r in newest_runs(list_results, "e", last=3)]
    assert got == ["r9", "r8", "r7", "r6"] and asked == [None, "p2"]
