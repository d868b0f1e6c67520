"""each_in_order: up to `width` works at once, outcomes applied in order, nothing new after an error."""

from __future__ import annotations

import threading

import pytest

from chaosplane.parallel import each_in_order

WAIT = 10.0  # seconds a test waits for threads that should already be there: only a bug waits this long


def test_width_works_run_at_once_and_outcomes_come_in_the_items_order() -> None:
    # Given works that each wait until four are running together (one at a time, they never would)...
    together = threading.Barrier(4, timeout=WAIT)
    finish_order: list[int] = []

    def work(n: int) -> int:
        together.wait()
        finish_order.append(n)
        return n * 10

    applied: list[int] = []
    each_in_order(range(8), work, applied.append, width=4)
    # ...all eight ran, four at a time, and were applied in the items' order whatever order they ended in.
    assert applied == [n * 10 for n in range(8)]
    assert sorted(finish_order) == list(range(8))


def test_no_more_than_width_run_at_once() -> None:
    running, most = 0, 0
    lock = threading.Lock()
    release = threading.Event()

    def work(n: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 3:
                release.set()
        release.wait(WAIT)
        with lock:
            running -= 1
        return n

    applied: list[int] = []
    each_in_order(range(12), work, applied.append, width=3)
    assert most == 3 and applied == list(range(12))


def test_after_a_failure_nothing_starts_and_what_was_running_is_applied() -> None:
    # Given item 1 fails while items 0..3 are running...
    started: list[int] = []
    all_running = threading.Barrier(4, timeout=WAIT)

    def work(n: int) -> int:
        started.append(n)
        if n < 4:
            all_running.wait()
        if n == 1:
            raise RuntimeError("access denied on 1")
        return n

    applied: list[int] = []
    with pytest.raises(RuntimeError, match="access denied on 1"):
        each_in_order(range(20), work, applied.append, width=4)
    # ...0 was applied and 4 started in its place before 1's failure was seen; then nothing more
    # started, and what was running (2, 3 and 4) finished and was applied too.
    assert sorted(started) == [0, 1, 2, 3, 4]
    assert applied == [0, 2, 3, 4]


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
