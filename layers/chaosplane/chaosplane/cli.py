"""The `chaosplane` command."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="Chaosplane: a serverless chaos-engineering control plane for AWS.", no_args_is_help=True
)
console = Console(soft_wrap=True)


@app.callback()
def _root() -> None:
    """Chaosplane: a serverless chaos-engineering control plane for AWS."""


@app.command()
def local(
    port: Annotated[int, typer.Option(help="port of the HTTP API")] = 8080,
    aws_port: Annotated[int, typer.Option(help="port of the embedded AWS endpoint")] = 4566,
    template: Annotated[
        Path, typer.Option(help="the SAM template to deploy", exists=True, dir_okay=False)
    ] = Path("template.yaml"),
    demo: Annotated[bool, typer.Option(help="seed demo instances, a target and an experiment")] = True,
) -> None:
    """Run the whole platform on this machine, on an embedded AWS (no AWS account needed)."""
    from chaosplane.local.runtime import LocalPlatform, PortInUse, serve_until_signalled

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("gateway").setLevel(logging.INFO)

    platform = LocalPlatform(template=template.resolve(), port=port, aws_port=aws_port)

    def ready() -> None:
        console.print(f"[bold green]Chaosplane is running[/] (pid {os.getpid()})")
        console.print(f"  API:          {platform.api_url}")
        console.print(f"  API docs:     {platform.api_url}/docs")
        console.print(f"  AWS endpoint: {platform.aws_endpoint}  (AWS_ENDPOINT_URL={platform.aws_endpoint})")
        if demo:
            seeded = platform.seed_demo()
            console.print(f"  demo target:      {seeded['target']['id']} (EC2 instances tagged app=demo)")
            console.print(f"  demo experiment:  {seeded['experiment']['id']}")
            console.print(
                f"  try: curl -X POST {platform.api_url}/experiments/{seeded['experiment']['id']}/run"
            )
        console.print("Press Ctrl-C to stop.", highlight=False)
        sys.stdout.flush()

    try:
        serve_until_signalled(platform, ready)
    except PortInUse as err:
        console.print(f"[bold red]error:[/] {err}; choose another with --port / --aws-port")
        raise typer.Exit(code=2) from err
    console.print("Chaosplane stopped.")


def main() -> None:
    app()
