"""Many resources changed at once, a few at a time, with the record kept in order.

Why: a run changes each resource with one or more AWS or Kubernetes calls (and an in-pod fault
waits for its container to start), so one after another a run of hundreds of resources outlives
the executor's timeout. A bounded number at a time keeps the API rate and the blast of a failure
small, and keeps each resource's journal-first order as it is.

Every `work` runs in a pool thread; `before_each` and `apply` run in the caller's thread, so the
caller's record (and its writes) need no lock. Results are applied in the items' order.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

# Resources changed (or restored) at once by a run, unless settings say otherwise. Ten keeps well
# inside the AWS APIs' request rates (the SDK retries what is throttled) and keeps what is already
# running when a change fails, and so has to be rolled back too, small.
CHANGES_AT_ONCE = 10

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")
logger = logging.getLogger(__name__)


def each_in_order(
    items: Iterable[Item],
    work: Callable[[Item], Outcome],
    apply: Callable[[Outcome], None],
    *,
    width: int,
    before_each: Callable[[], None] = lambda: None,
) -> None:
    """`apply(work(item))` for every item, with up to `width` works running at once.

    `before_each` runs before each item starts; it may raise to start no more (a stop request).
    On the first error, from any of the three, nothing more starts, even when the work that failed
    is not the oldest running; the works already running finish and their outcomes are applied
    (they may have changed something, which the record should show), then the first error is raised.
    So after a stop request at most `width` changes that had already started still complete (after a
    failure, `width - 1`), and none starts.
    """
    if width < 1:
        raise ValueError(f"width must be at least 1, not {width}")
    running: deque[Future[Outcome]] = deque()
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="change") as pool:
        try:
            for item in items:
                if len(running) == width:
                    apply(_oldest(running))
                _raise_any_failure(running)
                before_each()
                running.append(pool.submit(work, item))
            while running:
                apply(_oldest(running))
        except BaseException:
            _finish(running, apply)
            raise


def _oldest(running: deque[Future[Outcome]]) -> Outcome:
    """The oldest work's outcome once it is done; but first the error of any work that failed.

    A failure is seen as soon as it happens, not when its turn comes: nothing more starts after it.
    """
    while True:
        _raise_any_failure(running)
        if running[0].done():
            return running.popleft().result()
        wait([f for f in running if not f.done()], return_when=FIRST_COMPLETED)


def _raise_any_failure(running: deque[Future[Outcome]]) -> None:
    failed = next((f for f in running if f.done() and f.exception() is not None), None)
    if failed is not None:
        running.remove(failed)
        failed.result()  # raises its error


def _finish(running: deque[Future[Outcome]], apply: Callable[[Outcome], None]) -> None:
    """Wait for what is still running and apply what succeeded; the caller raises the first error."""
    while running:
        future = running.popleft()
        try:
            apply(future.result())
        except BaseException:  # the first error is the one reported; later ones only logged
            logger.exception("a change running alongside a failed one failed too")
