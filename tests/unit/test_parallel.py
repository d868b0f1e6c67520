"""each_in_order: up to `width` works at once, outcomes applied in order, nothing new after an error."""

from __future__ import annotations

import threading

import pytest

from chaosplane.parallel import each_in_order

WAIT = 10.0  # seconds a test waits for threads that should already be there: only a bug waits this long


def test_outcomes_are_applied_in_the_items_order_whatever_order_the_works_end_in() -> None:
    # Given four works at once where each waits for the next to end: they end 3, 2, 1, 0...
    ended = [threading.Event() for _ in range(4)]
    end_order: list[int] = []

    def work(n: int) -> int:
        if n < 3:
            assert ended[n + 1].wait(WAIT), f"work {n + 1} never ended: works ran one at a time"
        end_order.append(n)
        ended[n].set()
        return n * 10

    applied: list[int] = []
    each_in_order(range(4), work, applied.append, width=4)
    # ...and are applied 0, 1, 2, 3.
    assert end_order == [3, 2, 1, 0]
    assert applied == [0, 10, 20, 30]


def test_no_more_than_width_run_at_once() -> None:
    # Given works held at a gate: exactly `width` start, and the rest only as those end.
    started: list[int] = []
    three_started = threading.Event()
    gate = threading.Event()
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            started.append(n)
            if len(started) == 3:
                three_started.set()
        assert gate.wait(WAIT)
        return n

    def open_gate_once_three_wait() -> None:
        assert three_started.wait(WAIT)
        gate.set()

    def before_each() -> None:
        if len(started) == 3 and not gate.is_set():
            # The fourth is about to start, so the pool must have had room: only if one had ended.
            raise AssertionError(f"a fourth work was starting while {sorted(started)} were held")

    opener = threading.Thread(target=open_gate_once_three_wait)
    opener.start()
    applied: list[int] = []
    each_in_order(range(12), work, applied.append, width=3, before_each=before_each)
    opener.join()
    assert applied == list(range(12))


def test_after_a_failure_nothing_starts_even_if_an_older_work_still_runs() -> None:
    # Given four running, then item 1 failing at once while 0, 2 and 3 run a moment longer...
    started: list[int] = []
    all_four = threading.Barrier(4, timeout=WAIT)
    others_may_end = threading.Event()

    def work(n: int) -> int:
        started.append(n)
        all_four.wait()
        if n == 1:
            raise RuntimeError("access denied on 1")
        others_may_end.wait(0.5)  # nobody sets it: long enough for 1 to have failed first
        return n

    applied: list[int] = []
    with pytest.raises(RuntimeError, match="access denied on 1"):
        each_in_order(range(20), work, applied.append, width=4)
    # ...nothing else started (though 0, the oldest, was still running when 1 failed), and what was
    # running finished and was applied, in order.
    assert sorted(started) == [0, 1, 2, 3]
    assert applied == [0, 2, 3]


def test_a_stop_before_an_item_starts_no_more_and_keeps_what_ran() -> None:
    stop_after = 5
    submitted = 0

    def stop_if_asked() -> None:
        nonlocal submitted
        if submitted == stop_after:
            raise KeyboardInterrupt("stop requested")
        submitted += 1

    applied: list[int] = []
    with pytest.raises(KeyboardInterrupt):
        each_in_order(range(50), lambda n: n, applied.append, width=3, before_each=stop_if_asked)
    assert applied == list(range(stop_after))


def test_a_failure_to_apply_stops_the_rest_too() -> None:
    def apply(n: int) -> None:
        if n == 2:
            raise OSError("record write failed")

    started: list[int] = []

    def work(n: int) -> int:
        started.append(n)
        return n

    with pytest.raises(OSError, match="record write failed"):
        each_in_order(range(100), work, apply, width=2)
    assert sorted(started) == [0, 1, 2, 3]  # 3 started when 1 was applied; nothing after 2's failure


def test_width_one_is_one_after_another() -> None:
    events: list[str] = []
    each_in_order(
        range(3),
        lambda n: events.append(f"work {n}") or n,
        lambda n: events.append(f"apply {n}"),
        width=1,
        before_each=lambda: events.append("check"),
    )
    assert events == [
        "check",
        "work 0",
        "apply 0",
        "check",
        "work 1",
        "apply 1",
        "check",
        "work 2",
        "apply 2",
    ]


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        each_in_order([1], lambda n: n, print, width=0)
