"""schedules: when an experiment runs by itself (EventBridge Scheduler expressions)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from chaosplane.commands.context import STATE, emit, fields_table, table, when
from chaosplane.commands.resources import OutputOpt
from chaosplane.models import Schedule

schedules = typer.Typer(help="When an experiment runs by itself: cron(...), rate(...) or at(...).")
ExpressionOpt = Annotated[
    str | None, typer.Option("--expression", "-e", help="e.g. 'cron(0 9 ? * MON-FRI *)' or 'rate(1 day)'")
]
TimezoneOpt = Annotated[
    str | None, typer.Option("--timezone", help="IANA time zone, e.g. Europe/Paris (UTC)")
]
StartOpt = Annotated[str | None, typer.Option("--start", help="not before this ISO time (with its offset)")]
EndOpt = Annotated[str | None, typer.Option("--end", help="not after this ISO time (with its offset)")]
DisabledOpt = Annotated[bool, typer.Option("--disabled", help="create it paused")]


def schedule_table(items: list[Schedule]) -> Any:
    return table(
        ["ID", "EXPRESSION", "TIME ZONE", "ENABLED", "NEXT RUN", "DESCRIPTION"],
        [
            (
                s.id,
                s.expression,
                s.timezone,
                "yes" if s.enabled else "paused",
                when(s.next_runs[0]) if s.next_runs else None,
                s.description,
            )
            for s in items
        ],
    )


def schedule_fields(schedule: Schedule) -> Any:
    shown = schedule.model_dump(mode="json")
    shown["next_runs"] = [when(moment) for moment in schedule.next_runs]
    return fields_table(shown.items())


@schedules.command("list")
def schedules_list(experiment_id: str, output: OutputOpt = None) -> None:
    """An experiment's schedules, with each one's next fire time."""
    items = STATE.client().list_schedules(experiment_id)
    emit(items, STATE.output_format(output), lambda: schedule_table(items))


@schedules.command("create")
def schedules_create(
    experiment_id: str,
    expression: ExpressionOpt = None,
    timezone: TimezoneOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    disabled: DisabledOpt = False,
    description: Annotated[str | None, typer.Option(help="what this schedule is for")] = None,
    output: OutputOpt = None,
) -> None:
    """Run the experiment on a schedule (the platform's pre-flight, policy and emergency stop apply)."""
    if not expression:
        raise typer.BadParameter("give --expression, e.g. 'cron(0 9 ? * MON-FRI *)'")
    body: dict[str, Any] = {"expression": expression, "enabled": not disabled}
    optional = {"timezone": timezone, "start_date": start, "end_date": end, "description": description}
    body.update({key: value for key, value in optional.items() if value is not None})
    created = STATE.client().create_schedule(experiment_id, body)
    emit(created, STATE.output_format(output), lambda: schedule_fields(created))


@schedules.command("pause")
def schedules_pause(experiment_id: str, schedule_id: str, output: OutputOpt = None) -> None:
    """Stop a schedule from firing until it is resumed."""
    found = STATE.client().set_schedule_enabled(experiment_id, schedule_id, False)
    emit(found, STATE.output_format(output), lambda: Text(f"schedule {schedule_id} paused"))


@schedules.command("resume")
def schedules_resume(experiment_id: str, schedule_id: str, output: OutputOpt = None) -> None:
    """Let a paused schedule fire again."""
    found = STATE.client().set_schedule_enabled(experiment_id, schedule_id, True)
    emit(found, STATE.output_format(output), lambda: schedule_fields(found))


@schedules.command("delete")
def schedules_delete(experiment_id: str, schedule_id: str) -> None:
    """Delete a schedule (from EventBridge Scheduler too)."""
    STATE.client().delete_schedule(experiment_id, schedule_id)
    typer.echo(f"schedule {schedule_id} deleted", err=True)
