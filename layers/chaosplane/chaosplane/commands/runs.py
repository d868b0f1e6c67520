"""run, stop, results wait: start a run and follow it to its end, as a person or a pipeline.

`run --wait` polls the run's result until it is final, showing its progress: a live panel on a
terminal, one line per change otherwise (CI logs). It exits with the run's outcome (ExitCode).

Interrupting it (Ctrl-C) on a terminal asks whether to stop the run; answering no goes on
watching, a second Ctrl-C at the question leaves the run going. Without a terminal (a pipeline)
an interrupt or SIGTERM stops the run: a cancelled pipeline must leave nothing injected. It then
waits (up to STOP_GRACE seconds) for the rollback, and exits with the run's outcome (2 once it is
`stopped`); a second interrupt exits at once (130), the platform finishing the rollback alone.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from chaosplane.client import (
    Client,
    ClientError,
    Conflict,
    ConnectionFailed,
    NotFound,
    RateLimited,
    ServerError,
)
from chaosplane.commands.context import (
    STATE,
    ExitCode,
    Output,
    emit,
    emit_data,
    err,
    exit_code_of,
    fail,
    table,
)
from chaosplane.commands.junit import write_junit
from chaosplane.commands.resources import OutputOpt, result_view
from chaosplane.contracts import StopConditionState
from chaosplane.models import ExperimentResult, FailureKind, RunStatus, StopKind

STOP_GRACE = 60.0  # seconds to wait for the rollback after a stop we sent
POLL_FAILURES = 10  # consecutive failed polls (after the client's own retries) before giving up
WAIT_MARGIN = 600.0  # beyond the fault's duration, before `--wait` gives up (default --timeout)
STATUS_STYLE = {
    "pending": "yellow",
    "running": "bold yellow",
    "completed": "bold green",
    "stopped": "bold magenta",
    "failed": "bold red",
}


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a CI cancel) interrupts the wait like Ctrl-C, so the run is stopped, not orphaned."""

    def raise_interrupted(signum: int, _: FrameType | None) -> None:
        raise Interrupted(signum)

    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupted)
    except ValueError:  # not the main thread (embedded use): nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _now() -> datetime:
    return datetime.now(UTC)


def _elapsed(result: ExperimentResult) -> float:
    start = result.start_time or result.created_at
    end = result.end_time or _now()
    return max(0.0, (end - start).total_seconds())


def _remaining(result: ExperimentResult) -> float | None:
    if result.status is not RunStatus.RUNNING or result.start_time is None:
        return None
    return max(0.0, result.duration - (_now() - result.start_time).total_seconds())


def _counts(result: ExperimentResult) -> tuple[int, int, int]:
    hit = sum(1 for r in result.resources if r.after is not None)
    restored = sum(1 for r in result.resources if r.restored is not None)
    return len(result.resources), hit, restored


def progress_line(result: ExperimentResult, stops: list[StopConditionState]) -> str:
    selected, hit, restored = _counts(result)
    parts = [
        f"[{_elapsed(result):5.0f}s] {result.status.value}",
        f"hit {hit}/{selected}",
        f"restored {restored}",
    ]
    remaining = _remaining(result)
    if remaining is not None:
        parts.append(f"remaining {remaining:.0f}s")
    if stops:
        parts.append("stop conditions: " + ", ".join(f"{s.alarm}={s.state}" for s in stops))
    return " · ".join(parts)


def progress_panel(result: ExperimentResult, stops: list[StopConditionState]) -> Panel:
    selected, hit, restored = _counts(result)
    remaining = _remaining(result)
    head = Text.assemble(
        (result.status.value.upper(), STATUS_STYLE.get(result.status.value, "")),
        f"   elapsed {_elapsed(result):.0f}s",
        f"   remaining {remaining:.0f}s" if remaining is not None else "",
        f"   hit {hit}/{selected}   restored {restored}",
    )
    parts: list[Any] = [head]
    if result.resources:
        shown = result.resources[:10]
        rows = [(r.id, r.before, r.after, r.restored) for r in shown]
        parts.append(table(["RESOURCE", "BEFORE", "AFTER", "RESTORED"], rows))
        if len(result.resources) > len(shown):
            parts.append(Text(f"... and {len(result.resources) - len(shown)} more"))
    if stops:
        parts.append(
            Text.assemble(
                "stop conditions: ",
                *[
                    (
                        f"{s.alarm}={s.state} ",
                        "bold red" if s.state == "ALARM" else "green" if s.state == "OK" else "yellow",
                    )
                    for s in stops
                ],
            )
        )
    for event in result.timeline[-4:]:
        parts.append(Text(f"{event.at.strftime('%H:%M:%S')} {event.step}: {event.message}", style="dim"))
    return Panel(Group(*parts), title=f"run {result.id} · {result.fault.value}", title_align="left")


class Display:
    """Live panel on a terminal; otherwise one line per change and each new timeline event."""

    def __init__(self, live: bool) -> None:
        self._live: Live | None = Live(console=err, refresh_per_second=4, transient=True) if live else None
        self._last_line = ""
        self._events = 0

    def __enter__(self) -> Display:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.pause()

    def pause(self) -> None:
        if self._live is not None:
            self._live.stop()

    def resume(self) -> None:
        if self._live is not None:
            self._live.start()

    def show(self, result: ExperimentResult, stops: list[StopConditionState]) -> None:
        if self._live is not None:
            self._live.update(progress_panel(result, stops))
            return
        for event in result.timeline[self._events :]:
            err.print(f"  {event.at.strftime('%H:%M:%S')} {event.step}: {event.message}", highlight=False)
        self._events = len(result.timeline)
        line = progress_line(result, stops)
        if line.split("] ", 1)[-1] != self._last_line.split("] ", 1)[-1]:
            err.print(line, highlight=False)
            self._last_line = line

    def say(self, message: str) -> None:
        if self._live is not None:
            self._live.console.print(message, highlight=False)
        else:
            err.print(message, highlight=False)


def verdict(result: ExperimentResult) -> str:
    """What the run did, and (once it has ended) what its probes say of the system under test."""
    said = _what_happened(result)
    if result.verdict is None:
        return said
    failed = [n for n, r in result.probe_records.items() if r.failed_in is not None]
    why = f" (failed: {', '.join(failed)})" if failed else "" if result.probes else " (no probes)"
    return f"{said}\nverdict: {result.verdict.value}{why}"


def _what_happened(result: ExperimentResult) -> str:
    selected, hit, restored = _counts(result)
    took = f"in {_elapsed(result):.1f}s; {hit} of {selected} selected resource(s) hit, {restored} restored"
    if result.status is RunStatus.COMPLETED:
        return f"run {result.id} completed {took}"
    if result.status is RunStatus.STOPPED:
        by = {
            StopKind.ALARM: "by a stop condition",
            StopKind.EMERGENCY: "by the emergency stop",
            StopKind.PROBE: "by a failing probe",
            StopKind.USER: "by a stop request",
        }.get(result.stop_kind or StopKind.USER, "")
        return f"run {result.id} stopped {by} {took}" + (f": {result.error}" if result.error else "")
    if result.status is RunStatus.SKIPPED:
        return f"run {result.id} was skipped (refused before it started): {result.error}"
    kind = result.failure_kind or FailureKind.INJECTION
    refused = kind in (FailureKind.PREFLIGHT, FailureKind.POLICY)
    word = "refused" if refused else "failed"
    return f"run {result.id} {word} ({kind.value}) {took}: {result.error or 'no reason recorded'}"


class Watcher:
    """Polls one run to its end, showing progress, and handles interrupts and the deadline."""

    def __init__(
        self,
        client: Client,
        result_id: str,
        experiment_id: str,
        *,
        interval: float,
        timeout: float | None,
        display: Display,
        ask: Callable[[], bool],
        interactive: bool,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.result_id = result_id
        self.experiment_id = experiment_id
        self.interval = interval
        self.timeout = timeout
        self.display = display
        self.ask = ask
        self.interactive = interactive
        self.clock = clock
        self.sleep = sleep
        self.stopped_by_us: str | None = None  # why we sent a stop: "interrupt" or "timeout"
        self._stops: list[StopConditionState] = []
        self._stops_polled = -1e9
        self._stops_supported = True

    def _stop_conditions(self, result: ExperimentResult) -> list[StopConditionState]:
        if not result.stop_conditions or not self._stops_supported:
            return []
        now = self.clock()
        if now - self._stops_polled >= max(5.0, self.interval * 3) and not result.status.is_final:
            self._stops_polled = now
            try:
                self._stops = self.client.stop_condition_states(self.result_id)
            except NotFound:
                self._stops_supported = False  # an older API: progress without alarm states
            except ClientError:
                pass  # shown again at the next poll; the run's own record is what counts
        return self._stops

    def _stop(self, why: str) -> None:
        self.stopped_by_us = why
        try:
            self.client.stop_experiment(self.experiment_id)
            self.display.say(f"stop requested ({why}); waiting for the rollback")
        except Conflict:
            self.display.say("the run had already ended")

    def watch(self) -> ExperimentResult | ExitCode:
        started = self.clock()
        deadline = None if self.timeout is None else started + self.timeout
        stop_deadline: float | None = None
        failures = 0
        while True:
            try:
                try:
                    result = self.client.get_result(self.result_id)
                    failures = 0
                except (ConnectionFailed, ServerError, RateLimited) as error:
                    # A blip of the network or the API must not abandon a run mid-fault: keep trying.
                    failures += 1
                    if failures >= POLL_FAILURES:
                        raise
                    self.display.say(f"cannot read the run ({error}); trying again")
                    self.sleep(self.interval)
                    continue
                self.display.show(result, self._stop_conditions(result))
                if result.status.is_final:
                    return result
                now = self.clock()
                if stop_deadline is not None and now >= stop_deadline:
                    self.display.say(f"the run is still {result.status.value} {STOP_GRACE:g}s after the stop")
                    return ExitCode.INTERRUPTED if self.stopped_by_us == "interrupt" else ExitCode.FAILED
                if deadline is not None and now >= deadline and self.stopped_by_us is None:
                    self.display.say(f"gave up waiting after {self.timeout:g}s (--timeout)")
                    self._stop("timeout")
                    stop_deadline = self.clock() + STOP_GRACE
                self.sleep(self.interval)
            except (KeyboardInterrupt, Interrupted) as interrupt:
                if self.stopped_by_us is not None:
                    self.display.say("interrupted again: leaving; the platform finishes the rollback")
                    return ExitCode.INTERRUPTED
                if self.interactive and isinstance(interrupt, KeyboardInterrupt):
                    self.display.pause()
                    try:
                        wanted = self.ask()
                    except (KeyboardInterrupt, typer.Abort):
                        err.print(
                            f"\nleft the run going: chaosplane stop {self.experiment_id}", highlight=False
                        )
                        return ExitCode.INTERRUPTED
                    self.display.resume()
                    if not wanted:
                        continue
                self._stop("interrupt")
                stop_deadline = self.clock() + STOP_GRACE


def finish(result: ExperimentResult | ExitCode, fmt: Output, junit: Path | None, timed_out: bool) -> None:
    """The summary (stdout), the verdict (stderr), the JUnit report; then exit with the outcome."""
    if isinstance(result, ExitCode):
        raise typer.Exit(code=int(result))
    if junit is not None:
        write_junit(result, junit)
        err.print(f"JUnit report: {junit}", highlight=False)
    emit(result, fmt, lambda: result_view(result))
    style = STATUS_STYLE.get(result.status.value, "")
    err.print(Text(verdict(result), style=style))
    code = exit_code_of(result)
    if timed_out and code is ExitCode.STOPPED:
        code = ExitCode.FAILED  # we stopped it because it took too long: that is not the system's doing
    raise typer.Exit(code=int(code))


def follow(
    client: Client,
    result_id: str,
    experiment_id: str,
    duration: int,
    *,
    fmt: Output,
    interval: float,
    timeout: float | None,
    junit: Path | None,
) -> None:
    live = sys.stderr.isatty() and fmt is Output.TABLE
    with sigterm_interrupts(), Display(live) as display:
        watcher = Watcher(
            client,
            result_id,
            experiment_id,
            interval=interval,
            timeout=timeout if timeout is not None else duration + WAIT_MARGIN,
            display=display,
            ask=lambda: typer.confirm("stop the run?", default=False, err=True),
            interactive=interactive(),
        )
        result = watcher.watch()
    finish(result, fmt, junit, timed_out=watcher.stopped_by_us == "timeout")


IntervalOpt = Annotated[float, typer.Option(min=0.1, help="seconds between polls of the run's result")]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(min=1, help="give up (and stop the run) after this many seconds; default: duration + 600"),
]
JunitOpt = Annotated[
    Path | None, typer.Option(help="write the run as a JUnit XML report to this file at its end")
]


def run(
    experiment_id: str,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="follow the run to its end; exit with its outcome")
    ] = False,
    interval: IntervalOpt = 2.0,
    timeout: TimeoutOpt = None,
    junit: JunitOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the run's id")] = False,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan", help="a preview's plan_id: hit exactly what it showed, or be refused (exit 3)"
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Start a run of an experiment. With --wait, show its progress and exit with its outcome:
    0 completed, 1 failed, 2 stopped, 3 refused (pre-flight, policy, emergency stop, busy, a stale plan)."""
    client = STATE.client()
    fmt = STATE.output_format(output)
    experiment = client.get_experiment(experiment_id)
    try:
        accepted = client.run_experiment(experiment.id, plan_id=plan)
    except Conflict as refused:
        # Already running, target busy, the team's concurrency limit, the emergency stop: refused.
        raise fail(f"run refused: {refused.message}", ExitCode.REFUSED) from refused
    if quiet:
        sys.stdout.write(accepted.result_id + "\n")
    elif fmt is Output.TABLE:
        what = f"{experiment.name}, {experiment.type.value}, {experiment.duration}s"
        err.print(f"run {accepted.result_id} started ({what})", highlight=False)
    elif not wait:
        emit_data(accepted, fmt)
    if wait:
        follow(
            client,
            accepted.result_id,
            experiment.id,
            experiment.duration,
            fmt=fmt,
            interval=interval,
            timeout=timeout,
            junit=junit,
        )
    elif junit is not None:
        raise typer.BadParameter("--junit needs --wait (or use: chaosplane results get ID --junit FILE)")


def wait_for(
    result_id: str,
    interval: IntervalOpt = 2.0,
    timeout: TimeoutOpt = None,
    junit: JunitOpt = None,
    output: OutputOpt = None,
) -> None:
    """Follow a run already started (e.g. after a lost connection) to its end; exit with its outcome."""
    client = STATE.client()
    result = client.get_result(result_id)
    follow(
        client,
        result.id,
        result.experiment_id,
        result.duration,
        fmt=STATE.output_format(output),
        interval=interval,
        timeout=timeout,
        junit=junit,
    )


def stop(
    experiment_id: str,
    wait: Annotated[bool, typer.Option("--wait", "-w", help="wait until the rollback is done")] = False,
    interval: IntervalOpt = 1.0,
    output: OutputOpt = None,
) -> None:
    """Stop an experiment's run now: it rolls back at once and ends `stopped`."""
    client = STATE.client()
    fmt = STATE.output_format(output)
    try:
        accepted = client.stop_experiment(experiment_id)
    except Conflict as error:
        raise fail(error.message, ExitCode.FAILED) from error
    if not wait:
        emit(accepted, fmt, lambda: Text(f"stop requested for run {accepted.result_id}; it rolls back now"))
        return
    result = client.wait_for_result(accepted.result_id, timeout=STOP_GRACE * 5, interval=interval)
    emit(result, fmt, lambda: result_view(result))
    err.print(Text(verdict(result), style=STATUS_STYLE.get(result.status.value, "")))
    if result.status is not RunStatus.STOPPED:
        raise typer.Exit(code=int(exit_code_of(result)))
