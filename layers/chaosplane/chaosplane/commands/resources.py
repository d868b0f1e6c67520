"""targets, experiments, preview, results, safety, audit: the API's resources from a terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.text import Text

from chaosplane.commands.context import (
    STATE,
    Output,
    emit,
    emit_data,
    err,
    fields_table,
    out,
    table,
    when,
)
from chaosplane.commands.junit import write_junit
from chaosplane.models import TARGET_FIELDS, Experiment, ExperimentResult, Target
from chaosplane.resilience import Resilience

OutputOpt = Annotated[
    Output | None,
    typer.Option("--output", "-o", help="table, json or yaml (default: the root --output, or table)"),
]
LimitOpt = Annotated[int | None, typer.Option(min=1, help="at most this many items (default: all)")]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="a YAML or JSON file with the fields (- for stdin); flags override it"),
]

targets = typer.Typer(help="What experiments hit: EC2 instances by tags or ids, EKS pods by labels.")
experiments = typer.Typer(help="What to inject, where, for how long, how much.")
results = typer.Typer(help="What each run did: resources hit, their states, the timeline.")
safety = typer.Typer(help="The team's blast-radius policy and the emergency stop.")
audit = typer.Typer(help="Who did what (admins).")


# -- input: files and flags -----------------------------------------------------------------------


def load_file(path: Path | None) -> dict[str, Any]:
    """A YAML or JSON mapping; a bad file is a usage error (exit 4) that names the file and line."""
    if path is None:
        return {}
    name = "stdin" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise typer.BadParameter(
            f"cannot read {name}: {error.strerror or error}", param_hint="--file"
        ) from error
    import yaml

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"{name} is not valid JSON: {error}", param_hint="--file") from error
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise typer.BadParameter(f"{name} is not valid YAML{at}: {problem}", param_hint="--file") from error
    if not isinstance(data, dict):
        what = type(data).__name__
        raise typer.BadParameter(f"{name} must hold a mapping of fields, not {what}", param_hint="--file")
    return data


def parse_seconds(text: str) -> int:
    """'30' or '30s', '5m', '2h' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    unit = units.get(text[-1:])
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise typer.BadParameter(f"{text!r} is not a duration: use seconds, or e.g. 90s, 5m, 2h")
    return int(number) * (unit or 1)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """KEY=VALUE pairs; values are read as YAML scalars (true, 100, 1.5, text)."""
    import yaml

    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            params[key.strip()] = value
    return params


def overlay(base: dict[str, Any], **flags: Any) -> dict[str, Any]:
    return {**base, **{k: v for k, v in flags.items() if v is not None}}


def deleted(kind: str, item_id: str, fmt: Output) -> None:
    if fmt is Output.TABLE:
        out.print(f"deleted {kind} {item_id}", highlight=False)
    else:
        emit_data({"deleted": item_id, "kind": kind}, fmt)


# -- targets --------------------------------------------------------------------------------------


def _selects(t: Target) -> str:
    parts = [t.selector or ""] + ([f"ids: {', '.join(t.resource_ids)}"] if t.resource_ids else [])
    return "; ".join(p for p in parts if p)


def target_table(items: list[Target]) -> Any:
    return table(
        ["ID", "NAME", "TYPE", "SELECTS", "WHERE", "CREATED"],
        [
            (
                t.id,
                t.name,
                t.type.value,
                _selects(t),
                f"{t.cluster}/{t.namespace}" if t.cluster else "",
                when(t.created_at),
            )
            for t in items
        ],
    )


def target_fields(t: Target) -> Any:
    return fields_table(
        [
            ("id", t.id),
            ("name", t.name),
            ("description", t.description),
            ("type", t.type.value),
            ("selector", t.selector),
            ("resource_ids", t.resource_ids),
            ("cluster", t.cluster),
            ("namespace", t.namespace),
            ("team", t.team),
            ("created", when(t.created_at)),
            ("updated", when(t.updated_at)),
        ]
    )


@targets.command("list")
def targets_list(output: OutputOpt = None, limit: LimitOpt = None) -> None:
    """The team's targets, newest first."""
    items = STATE.client().list_targets(limit)
    emit(items, STATE.output_format(output), lambda: target_table(items))


@targets.command("get")
def targets_get(target_id: str, output: OutputOpt = None) -> None:
    """One target."""
    target = STATE.client().get_target(target_id)
    emit(target, STATE.output_format(output), lambda: target_fields(target))


def _target_body(
    base: dict[str, Any],
    name: str | None,
    type_: str | None,
    selector: str | None,
    resource_id: list[str] | None,
    namespace: str | None,
    cluster: str | None,
    description: str | None,
) -> dict[str, Any]:
    return overlay(
        base,
        name=name,
        type=type_,
        selector=selector,
        resource_ids=resource_id or None,
        namespace=namespace,
        cluster=cluster,
        description=description,
    )


NameOpt = Annotated[str | None, typer.Option(help="a name for people")]
DescriptionOpt = Annotated[str | None, typer.Option(help="what it is for")]
TargetTypeOpt = Annotated[str | None, typer.Option("--type", help="ec2-instances or eks-pods")]
SelectorOpt = Annotated[str | None, typer.Option(help="label selector, e.g. 'app=web,env in (dev,staging)'")]
ResourceIdOpt = Annotated[
    list[str] | None, typer.Option("--resource-id", help="an instance id or pod name; repeatable")
]
NamespaceOpt = Annotated[str | None, typer.Option(help="Kubernetes namespace (eks-pods)")]
ClusterOpt = Annotated[str | None, typer.Option(help="EKS cluster name (eks-pods)")]


@targets.command("create")
def targets_create(
    file: FileOpt = None,
    name: NameOpt = None,
    type_: TargetTypeOpt = None,
    selector: SelectorOpt = None,
    resource_id: ResourceIdOpt = None,
    namespace: NamespaceOpt = None,
    cluster: ClusterOpt = None,
    description: DescriptionOpt = None,
    output: OutputOpt = None,
) -> None:
    """Create a target from a file (-f target.yaml) or flags (--name --type --selector ...)."""
    body = _target_body(load_file(file), name, type_, selector, resource_id, namespace, cluster, description)
    if not body:
        raise typer.BadParameter("give a file (-f) or at least --name, --type and --selector")
    target = STATE.client().create_target(body)
    emit(target, STATE.output_format(output), lambda: target_fields(target))


@targets.command("update")
def targets_update(
    target_id: str,
    file: FileOpt = None,
    name: NameOpt = None,
    type_: TargetTypeOpt = None,
    selector: SelectorOpt = None,
    resource_id: ResourceIdOpt = None,
    namespace: NamespaceOpt = None,
    cluster: ClusterOpt = None,
    description: DescriptionOpt = None,
    output: OutputOpt = None,
) -> None:
    """Change a target: the fields in the file and the flags; the others stay as they are."""
    client = STATE.client()
    current = client.get_target(target_id).model_dump(mode="json", include=set(TARGET_FIELDS))
    base = {**current, **load_file(file)}
    body = _target_body(base, name, type_, selector, resource_id, namespace, cluster, description)
    target = client.replace_target(target_id, body)
    emit(target, STATE.output_format(output), lambda: target_fields(target))


@targets.command("delete")
def targets_delete(target_id: str, output: OutputOpt = None) -> None:
    """Delete a target (refused while experiments use it)."""
    STATE.client().delete_target(target_id)
    deleted("target", target_id, STATE.output_format(output))


# -- experiments ----------------------------------------------------------------------------------


def experiment_table(items: list[Experiment]) -> Any:
    return table(
        ["ID", "NAME", "FAULT", "TARGET", "DURATION", "SELECTION", "STATUS", "UPDATED"],
        [
            (
                e.id,
                e.name,
                e.type.value,
                e.target,
                f"{e.duration}s",
                e.selection,
                e.status.value,
                when(e.updated_at),
            )
            for e in items
        ],
    )


def experiment_fields(e: Experiment) -> Any:
    if e.actions is not None:
        return _multi_step_fields(e)
    return fields_table(
        [
            ("id", e.id),
            ("name", e.name),
            ("description", e.description),
            ("fault", e.type.value),
            ("target", e.target),
            ("parameters", e.parameters),
            ("duration", f"{e.duration}s"),
            ("selection", e.selection),
            ("stop_conditions", e.stop_conditions),
            ("status", e.status.value),
            ("team", e.team),
            ("created", when(e.created_at)),
            ("updated", when(e.updated_at)),
        ]
    )


def _held(action: Any) -> str:
    if action.duration is not None:
        return f"{action.duration}s"
    return "once" if action.completes_when_injected else "to the end"


def _multi_step_fields(e: Experiment) -> Any:
    """A multi-step experiment: its fields, then its step targets and its actions in order."""
    from chaosplane.graph import ExperimentGraph

    graph = ExperimentGraph.of(e)
    head = fields_table(
        [
            ("id", e.id),
            ("name", e.name),
            ("description", e.description),
            ("duration", f"{e.duration}s"),
            ("stop_conditions", e.stop_conditions),
            ("status", e.status.value),
            ("team", e.team),
            ("created", when(e.created_at)),
            ("updated", when(e.updated_at)),
        ]
    )
    targets = table(
        ["step target", "target", "selection", "filters"],
        [
            (
                name,
                step.target,
                step.selection,
                "; ".join(f"{f.path} in {','.join(f.values)}" for f in step.filters),
            )
            for name, step in graph.targets.items()
        ],
        title="targets",
    )
    actions = table(
        ["action", "fault", "target", "duration", "start after"],
        [
            (
                name,
                str(graph.actions[name].fault),
                graph.actions[name].target,
                _held(graph.actions[name]),
                ", ".join(graph.actions[name].start_after),
            )
            for name in graph.order()
        ],
        title="actions",
    )
    return Group(head, targets, actions)


FaultOpt = Annotated[str | None, typer.Option("--type", help="the fault, e.g. ec2-stop, pod-delete")]
TargetOpt = Annotated[str | None, typer.Option("--target", help="the target's id")]
DurationOpt = Annotated[str | None, typer.Option(help="how long the fault is held: seconds, or 90s, 5m, 2h")]
SelectionOpt = Annotated[str | None, typer.Option(help="ALL, COUNT(n) or PERCENT(n)")]
StopConditionOpt = Annotated[
    list[str] | None, typer.Option("--stop-condition", help="a CloudWatch alarm name or ARN; repeatable")
]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="a fault parameter, KEY=VALUE; repeatable")
]


def _experiment_body(
    base: dict[str, Any],
    name: str | None,
    type_: str | None,
    target: str | None,
    duration: str | None,
    selection: str | None,
    stop_condition: list[str] | None,
    param: list[str] | None,
    description: str | None,
) -> dict[str, Any]:
    body = overlay(
        base,
        name=name,
        type=type_,
        target=target,
        duration=parse_seconds(duration) if duration is not None else None,
        selection=selection,
        stop_conditions=stop_condition or None,
        description=description,
    )
    if param:
        body["parameters"] = {**(body.get("parameters") or {}), **parse_params(param)}
    return body


@experiments.command("list")
def experiments_list(output: OutputOpt = None, limit: LimitOpt = None) -> None:
    """The team's experiments, newest first."""
    items = STATE.client().list_experiments(limit)
    emit(items, STATE.output_format(output), lambda: experiment_table(items))


@experiments.command("get")
def experiments_get(experiment_id: str, output: OutputOpt = None) -> None:
    """One experiment."""
    experiment = STATE.client().get_experiment(experiment_id)
    emit(experiment, STATE.output_format(output), lambda: experiment_fields(experiment))


@experiments.command("create")
def experiments_create(
    file: FileOpt = None,
    name: NameOpt = None,
    type_: FaultOpt = None,
    target: TargetOpt = None,
    duration: DurationOpt = None,
    selection: SelectionOpt = None,
    stop_condition: StopConditionOpt = None,
    param: ParamOpt = None,
    description: DescriptionOpt = None,
    output: OutputOpt = None,
) -> None:
    """Create an experiment from a file (-f exp.yaml) or flags (--name --type --target --duration ...)."""
    body = _experiment_body(
        load_file(file), name, type_, target, duration, selection, stop_condition, param, description
    )
    if not body:
        raise typer.BadParameter("give a file (-f) or at least --name, --type, --target and --duration")
    experiment = STATE.client().create_experiment(body)
    emit(experiment, STATE.output_format(output), lambda: experiment_fields(experiment))


@experiments.command("update")
def experiments_update(
    experiment_id: str,
    file: FileOpt = None,
    name: NameOpt = None,
    type_: FaultOpt = None,
    target: TargetOpt = None,
    duration: DurationOpt = None,
    selection: SelectionOpt = None,
    stop_condition: StopConditionOpt = None,
    param: ParamOpt = None,
    description: DescriptionOpt = None,
    output: OutputOpt = None,
) -> None:
    """Change an experiment: the fields in the file and the flags; the others stay as they are."""
    client = STATE.client()
    current = client.get_experiment(experiment_id).request_body()
    base = {**current, **load_file(file)}
    body = _experiment_body(
        base, name, type_, target, duration, selection, stop_condition, param, description
    )
    experiment = client.replace_experiment(experiment_id, body)
    emit(experiment, STATE.output_format(output), lambda: experiment_fields(experiment))


@experiments.command("import")
def experiments_import(
    file: Annotated[Path, typer.Argument(help="an AWS FIS experiment template, JSON or YAML (- for stdin)")],
    allow_irreversible: Annotated[
        bool, typer.Option(help="consent to actions that cannot be rolled back (terminate, pod delete)")
    ] = False,
    duration: Annotated[
        str | None, typer.Option(help="the experiment's duration (default: from its longest chain)")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Create an experiment, and its targets, from an AWS FIS experiment template."""
    template = load_file(file)
    seconds = parse_seconds(duration) if duration is not None else None
    imported = STATE.client().import_fis(template, allow_irreversible=allow_irreversible, duration=seconds)

    def view() -> Any:
        rows = [(name, t.id, t.type.value, t.name) for name, t in imported.targets.items()]
        return Group(
            experiment_fields(imported.experiment),
            table(["FIS target", "target id", "type", "name"], rows, title="targets created"),
            *(Text(f"note: {note}", style="dim") for note in imported.notes),
        )

    emit(imported, STATE.output_format(output), view)


@experiments.command("export")
def experiments_export(
    experiment_id: str,
    format_: Annotated[str, typer.Option("--format", help="the document to write: fis")] = "fis",
    account: Annotated[str | None, typer.Option(help="the AWS account, for ARNs of bare ids")] = None,
    role_arn: Annotated[str | None, typer.Option(help="the roleArn FIS runs the experiment as")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write to this file instead of stdout")] = None,
) -> None:
    """Write an experiment as an AWS FIS template (aws fis create-experiment-template --cli-input-json)."""
    if format_ != "fis":
        raise typer.BadParameter("the only format is fis", param_hint="--format")
    template = STATE.client().export_fis(experiment_id, account=account, role_arn=role_arn)
    text = json.dumps(template, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


def resilience_view(scored: Resilience) -> Any:
    headline = "no decisive run" if scored.score is None else f"{scored.score:g}%"
    rows = [
        (r.result_id, r.start_time.isoformat() if r.start_time else "", r.status.value, r.verdict.value)
        for r in scored.window
    ]
    return Group(
        Text.assemble(("resilience ", "bold"), (headline, "bold")),
        Text(
            f"{scored.passed} passed, {scored.failed} failed, {scored.inconclusive} inconclusive "
            f"of the last {scored.runs} run(s) (window {scored.last})",
            style="dim",
        ),
        table(["result", "started", "status", "verdict"], rows, title="runs counted"),
    )


LastOpt = Annotated[int, typer.Option("--last", min=1, max=100, help="how many of the latest runs to score")]


@experiments.command("resilience")
def experiments_resilience(experiment_id: str, last: LastOpt = 10, output: OutputOpt = None) -> None:
    """How often the system held over the experiment's last runs (passed / decisive verdicts)."""
    scored = STATE.client().resilience("experiments", experiment_id, last)
    emit(scored, STATE.output_format(output), lambda: resilience_view(scored))


@targets.command("resilience")
def targets_resilience(target_id: str, last: LastOpt = 10, output: OutputOpt = None) -> None:
    """How often the system held over the last runs of the experiments acting on the target."""
    scored = STATE.client().resilience("targets", target_id, last)
    emit(scored, STATE.output_format(output), lambda: resilience_view(scored))


@experiments.command("delete")
def experiments_delete(experiment_id: str, output: OutputOpt = None) -> None:
    """Delete an experiment (refused while it runs)."""
    STATE.client().delete_experiment(experiment_id)
    deleted("experiment", experiment_id, STATE.output_format(output))


def preview_view(preview: dict[str, Any]) -> Any:
    verdict = preview.get("verdict", {})
    allowed = bool(verdict.get("allowed"))
    parts: list[Any] = [
        Text.assemble(
            ("ALLOWED" if allowed else "REFUSED", "bold green" if allowed else "bold red"),
            f"  {preview.get('fault')} · selection {preview.get('selection')}",
            ("  · IRREVERSIBLE" if preview.get("irreversible") else "", "bold yellow"),
        )
    ]
    parts += [Text(f"  refused: {reason}", style="red") for reason in verdict.get("reasons", [])]
    if preview.get("plan_id"):
        parts.append(
            Text(
                f"  plan {preview['plan_id']} (run it with --plan until {preview.get('expires_at')})",
                style="dim",
            )
        )

    def rows(items: list[dict[str, Any]], why: bool = False) -> list[tuple[Any, ...]]:
        return [
            (r["id"], r.get("kind"), r.get("state"), *((r.get("reason"), r.get("detail")) if why else ()))
            for r in items
        ]

    parts.append(table(["ID", "KIND", "STATE"], rows(preview.get("selected", [])), title="would hit"))
    if preview.get("eligible_not_selected"):
        parts.append(
            table(
                ["ID", "KIND", "STATE"],
                rows(preview["eligible_not_selected"]),
                title="eligible, not selected",
            )
        )
    if preview.get("excluded"):
        parts.append(
            table(
                ["ID", "KIND", "STATE", "WHY", "DETAIL"], rows(preview["excluded"], True), title="left alone"
            )
        )
    if preview.get("stop_conditions"):
        stops = [(s["alarm"], s["state"]) for s in preview["stop_conditions"]]
        parts.append(table(["ALARM", "STATE"], stops, title="stop conditions"))
    return Group(*parts)


@experiments.command("preview")
def experiments_preview(experiment_id: str, output: OutputOpt = None) -> None:
    """What a run would hit now, what it would leave alone and why, and the policy's verdict."""
    preview_command(experiment_id, output)


def preview_command(experiment_id: str, output: Output | None) -> None:
    found = STATE.client().preview(experiment_id)
    emit(found, STATE.output_format(output), lambda: preview_view(found))


# -- results --------------------------------------------------------------------------------------


def _hit(r: ExperimentResult) -> str:
    injected = sum(1 for x in r.resources if x.after is not None)
    return f"{injected}/{len(r.resources)}"


def _why(r: ExperimentResult) -> str:
    kind = (
        r.failure_kind.value
        if r.failure_kind
        else (r.stop_kind.value if r.stop_kind and r.status.value == "stopped" else "")
    )
    text = (r.error or "").splitlines()[0] if r.error else ""
    return f"[{kind}] {text}" if kind else text


def result_table(items: list[ExperimentResult]) -> Any:
    return table(
        ["ID", "STATUS", "FAULT", "STARTED", "ENDED", "HIT", "WHY"],
        [
            (r.id, r.status.value, r.fault.value, when(r.start_time), when(r.end_time), _hit(r), _why(r))
            for r in items
        ],
    )


def result_view(r: ExperimentResult) -> Any:
    head = fields_table(
        [
            ("id", r.id),
            ("experiment", r.experiment_id),
            ("status", r.status.value),
            ("failure_kind", r.failure_kind.value if r.failure_kind else None),
            ("stop_kind", r.stop_kind.value if r.stop_kind else None),
            ("error", r.error),
            ("fault", r.fault.value),
            ("target", r.target_id),
            ("selection", r.selection),
            ("duration", f"{r.duration}s"),
            ("stop_conditions", r.stop_conditions),
            ("started", when(r.start_time)),
            ("ended", when(r.end_time)),
            ("metrics", r.metrics),
        ]
    )
    resources = table(
        ["RESOURCE", "KIND", "BEFORE", "AFTER", "RESTORED", "NOTE"],
        [(x.id, x.kind, x.before, x.after, x.restored, x.detail.get("skipped", "")) for x in r.resources],
        title="resources",
    )
    timeline = table(
        ["AT", "STEP", "MESSAGE"], [(when(e.at), e.step, e.message) for e in r.timeline], title="timeline"
    )
    return Group(head, resources, timeline)


@results.command("list")
def results_list(experiment_id: str, output: OutputOpt = None, limit: LimitOpt = 20) -> None:
    """An experiment's runs, newest first."""
    items = STATE.client().list_results(experiment_id, limit)
    emit(items, STATE.output_format(output), lambda: result_table(items))


@results.command("get")
def results_get(
    result_id: str,
    output: OutputOpt = None,
    junit: Annotated[
        Path | None, typer.Option(help="also write the run as a JUnit XML report to this file (for CI)")
    ] = None,
) -> None:
    """One run: status, why it ended, each resource before/after/restored, the timeline."""
    result = STATE.client().get_result(result_id)
    if junit is not None:
        write_junit(result, junit)
        err.print(f"JUnit report: {junit}", highlight=False)
    emit(result, STATE.output_format(output), lambda: result_view(result))


# -- safety ---------------------------------------------------------------------------------------


@safety.command("status")
def safety_status(output: OutputOpt = None) -> None:
    """The team's emergency stop (engaged or not, by whom, when) and its policy."""
    found = STATE.client().safety()

    def view() -> Any:
        lever = found.lever
        state = (
            Text(
                f"ENGAGED ({'platform-wide' if lever.team == '*' else lever.team}) "
                f"by {lever.engaged_by} at {when(lever.engaged_at)}",
                style="bold red",
            )
            if lever
            else Text("released", style="green")
        )
        return Group(
            Text.assemble(("emergency stop: ", "bold"), state), fields_table(sorted(found.policy.items()))
        )

    emit(found, STATE.output_format(output), view)


ScopeOpt = Annotated[bool, typer.Option("--all", help="every team (platform admins only)")]


@safety.command("halt")
def safety_halt(all_teams: ScopeOpt = False, output: OutputOpt = None) -> None:
    """The emergency stop: halt every run of the team now and refuse new ones until released."""
    found = STATE.client().halt("all" if all_teams else "team")
    fmt = STATE.output_format(output)
    emit(
        found,
        fmt,
        lambda: Text(
            f"emergency stop engaged; halting {len(found.halting)} run(s): {', '.join(found.halting) or '-'}"
        ),
    )


@safety.command("release")
def safety_release(all_teams: ScopeOpt = False, output: OutputOpt = None) -> None:
    """Release the emergency stop: runs may start again."""
    found = STATE.client().release("all" if all_teams else "team")
    emit(found, STATE.output_format(output), lambda: Text("emergency stop released"))


@safety.command("set-policy")
def safety_set_policy(
    file: Annotated[Path, typer.Option("--file", "-f", help="YAML or JSON: the whole policy (admin)")],
    output: OutputOpt = None,
) -> None:
    """Replace the team's blast-radius policy (fields left out take their defaults)."""
    policy = STATE.client().put_policy(load_file(file))
    emit(policy, STATE.output_format(output), lambda: fields_table(sorted(policy.items())))


# -- audit ----------------------------------------------------------------------------------------


@audit.command("list")
def audit_list(output: OutputOpt = None, limit: LimitOpt = 50) -> None:
    """The team's audit trail, newest first (admins)."""
    items = STATE.client().list_audit(limit)
    rows = [(when(a.at), a.principal, a.role, a.method, a.path, a.status, a.outcome.value) for a in items]
    emit(
        items,
        STATE.output_format(output),
        lambda: table(["AT", "WHO", "ROLE", "METHOD", "PATH", "STATUS", "OUTCOME"], rows),
    )
