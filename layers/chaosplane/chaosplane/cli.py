"""The `chaosplane` command: the local platform, tokens, and the API (chaosplane/commands/)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chaosplane.commands import config, resources, runs, schedules
from chaosplane.commands.context import STATE, ChaosplaneGroup, ExitCode, Output

app = typer.Typer(
    cls=ChaosplaneGroup,
    help="Chaosplane: a serverless chaos-engineering control plane for AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)


@app.callback()
def _root(
    profile: Annotated[
        str | None,
        typer.Option(help="the config profile to use (env CHAOSPLANE_PROFILE)", show_default=False),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option(help="the API's base URL (env CHAOSPLANE_API_URL)", show_default=False)
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="a bearer token (env CHAOSPLANE_TOKEN)", show_default=False)
    ] = None,
    output: Annotated[
        Output | None,
        typer.Option(
            "--output", "-o", help="table, json or yaml (env CHAOSPLANE_OUTPUT)", show_default=False
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="seconds to wait for each API answer")] = 30.0,
    retries: Annotated[int, typer.Option(min=0, max=10, help="retries of failed requests when safe")] = 3,
    debug: Annotated[bool, typer.Option(help="show tracebacks and HTTP details of errors")] = False,
) -> None:
    """Chaosplane: a serverless chaos-engineering control plane for AWS.

    Exit codes: 0 ok/completed, 1 failed, 2 stopped, 3 refused, 4 usage or auth error.
    """
    STATE.profile, STATE.api_url, STATE.token, STATE.output = profile, api_url, token, output
    STATE.timeout, STATE.retries, STATE.debug = timeout, retries, debug
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s %(message)s")


app.add_typer(resources.targets, name="targets")
app.add_typer(resources.experiments, name="experiments")
app.add_typer(resources.results, name="results")
app.add_typer(resources.safety, name="safety")
app.add_typer(resources.audit, name="audit")
app.add_typer(schedules.schedules, name="schedules")
app.add_typer(config.config, name="config")
app.command("run")(runs.run)
app.command("stop")(runs.stop)
app.command("preview")(resources.experiments_preview)
resources.results.command("wait")(runs.wait_for)


@app.command()
def local(
    port: Annotated[int, typer.Option(help="port of the HTTP API")] = 8080,
    aws_port: Annotated[int, typer.Option(help="port of the embedded AWS endpoint")] = 4566,
    template: Annotated[
        Path, typer.Option(help="the SAM template to deploy", exists=True, dir_okay=False)
    ] = Path("template.yaml"),
    demo: Annotated[bool, typer.Option(help="seed demo instances, a target and an experiment")] = True,
    schedule_every: Annotated[
        float | None, typer.Option(help="run scheduled functions (the sweeper) this often, in seconds")
    ] = None,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            help="reach Kubernetes clusters named like this kubeconfig's contexts (eks-pods targets)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option(help="override a template parameter, as Name=value (e.g. PayloadImage=...); repeatable"),
    ] = None,
) -> None:
    """Run the whole platform on this machine, on an embedded AWS (no AWS account needed)."""
    from chaosplane.auth import Role

    try:
        from chaosplane.local.runtime import DEMO_TEAM, LocalPlatform, PortInUse, serve_until_signalled
    except ModuleNotFoundError as err:  # `pip install chaosplane[cli]` is the CLI, not the platform
        console.print(
            f"[bold red]error:[/] chaosplane local needs the platform's packages ({err}): "
            "from a checkout, `make run`"
        )
        raise typer.Exit(code=int(ExitCode.FAILED)) from err

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("gateway").setLevel(logging.INFO)

    overrides = {}
    for item in parameter or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r} is not Name=value", param_hint="--parameter")
        overrides[name] = value
    platform = LocalPlatform(
        template=template.resolve(),
        port=port,
        aws_port=aws_port,
        schedule_every=schedule_every,
        parameters=overrides,
        kubeconfig=kubeconfig.resolve() if kubeconfig else None,
    )

    def ready() -> None:
        admin = platform.token(Role.ADMIN, DEMO_TEAM)
        console.print(f"[bold green]Chaosplane is running[/] (pid {os.getpid()})")
        console.print(f"  API:          {platform.api_url}")
        console.print(f"  API docs:     {platform.api_url}/docs")
        console.print(f"  AWS endpoint: {platform.aws_endpoint}  (AWS_ENDPOINT_URL={platform.aws_endpoint})")
        console.print(f"  admin token for team {DEMO_TEAM} (12 h):", highlight=False)
        console.print(f"    export TOKEN={admin}", highlight=False)
        if demo:
            seeded = platform.seed_demo(admin)
            console.print(f"  demo target:      {seeded['target']['id']} (EC2 instances tagged app=demo)")
            console.print(f"  demo experiment:  {seeded['experiment']['id']}")
            console.print(
                f'  try: curl -X POST -H "Authorization: Bearer $TOKEN" '
                f"{platform.api_url}/experiments/{seeded['experiment']['id']}/run",
                highlight=False,
            )
        console.print("Press Ctrl-C to stop.", highlight=False)
        sys.stdout.flush()

    try:
        serve_until_signalled(platform, ready)
    except PortInUse as err:
        console.print(f"[bold red]error:[/] {err}; choose another with --port / --aws-port")
        raise typer.Exit(code=2) from err
    console.print("Chaosplane stopped.")


_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """'3600', '90s', '30m', '12h', '7d' -> seconds."""
    text = text.strip().lower()
    unit = _TTL_UNITS.get(text[-1:])
    number = text[:-1] if unit else text
    if not number.isdigit() or int(number) <= 0:
        raise typer.BadParameter("use a positive number of seconds, or e.g. 90s, 30m, 12h, 7d")
    return int(number) * (unit or 1)


@app.command()
def token(
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "operator",
    team: Annotated[str, typer.Option(help="the team the token acts for")] = "demo",
    ttl: Annotated[str, typer.Option(help="lifetime: seconds, or 90s, 30m, 12h, 7d")] = "1h",
    subject: Annotated[str, typer.Option(help="the principal (sub claim)")] = "cli-user",
    secret_id: Annotated[
        str | None,
        typer.Option(help="the HS256 secret (name or ARN; the stack's JwtSecretArn output); default: local"),
    ] = None,
    aws_port: Annotated[int, typer.Option(help="embedded AWS port of `chaosplane local`")] = 4566,
) -> None:
    """Mint a bearer token signed with the platform's HS256 secret (local or deployed)."""
    import boto3

    from chaosplane.auth import Role, mint_token

    chosen = Role.named(role)
    if chosen is None:
        raise typer.BadParameter("role must be viewer, operator or admin", param_hint="--role")
    seconds = parse_ttl(ttl)
    if secret_id is None:
        # The embedded AWS of `chaosplane local`, whose secret is named after the template's resource.
        client = boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        ).client("secretsmanager", endpoint_url=f"http://127.0.0.1:{aws_port}")
        secret_id = "chaosplane-JwtSecret"
    else:
        client = boto3.client("secretsmanager")
    try:
        secret = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except Exception as err:
        console.print(f"[bold red]error:[/] cannot read the signing secret {secret_id}: {err}")
        raise typer.Exit(code=1) from err
    print(mint_token(secret, subject=subject, role=chosen, team=team, ttl_seconds=seconds))


def main() -> None:
    app()
