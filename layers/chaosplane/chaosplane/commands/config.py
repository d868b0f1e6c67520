"""`chaosplane config`: named profiles (API URL, token or token command) in the config dir."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chaosplane.commands.context import (
    PROFILE_KEYS,
    STATE,
    ConfigError,
    Output,
    config_path,
    emit,
    err,
    fields_table,
    load_config,
    save_config,
    table,
)

config = typer.Typer(help="Profiles: where the API is and how to get a token (flags and env override them).")
OutputOpt = Annotated[Output | None, typer.Option("--output", "-o", help="table, json or yaml")]


def _redacted(profile: dict[str, Any]) -> dict[str, Any]:
    shown = dict(profile)
    if shown.get("token"):
        shown["token"] = str(shown["token"])[:8] + "..."  # enough to tell two apart, not to use
    return shown


@config.command("set-profile")
def set_profile(
    name: str,
    api_url: Annotated[
        str | None, typer.Option(help="the API's base URL (the stack's ApiUrl output)")
    ] = None,
    token: Annotated[str | None, typer.Option(help="a bearer token (stored in the file, mode 0600)")] = None,
    token_command: Annotated[
        str | None, typer.Option(help="a command that prints a token, e.g. 'vault read -field=token ...'")
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="this profile's default output: table, json, yaml")
    ] = None,
    default: Annotated[bool, typer.Option("--default", help="make it the default profile")] = False,
) -> None:
    """Create or change a profile; only the given fields change."""
    if token and token_command:
        raise typer.BadParameter("give --token or --token-command, not both")
    if output is not None and output not in {o.value for o in Output}:
        raise typer.BadParameter("table, json or yaml", param_hint="--output")
    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise typer.BadParameter("must start with http:// or https://", param_hint="--api-url")
    data = load_config()
    profiles = data.setdefault("profiles", {})
    profile = dict(profiles.get(name, {}))
    changes = {"api_url": api_url, "token": token, "token_command": token_command, "output": output}
    profile.update({k: v for k, v in changes.items() if v is not None})
    if token:
        profile.pop("token_command", None)
    if token_command:
        profile.pop("token", None)
    profiles[name] = {k: profile[k] for k in PROFILE_KEYS if profile.get(k)}
    if default or not data.get("default_profile"):
        data["default_profile"] = name
    path = save_config(data)
    err.print(f"profile {name} saved in {path}", highlight=False)


@config.command("use")
def use(name: str) -> None:
    """Make a profile the default."""
    data = load_config()
    if name not in data.get("profiles", {}):
        raise ConfigError(f"no profile {name!r} in {config_path()}")
    data["default_profile"] = name
    save_config(data)
    err.print(f"default profile: {name}", highlight=False)


@config.command("list")
def list_profiles(output: OutputOpt = None) -> None:
    """The profiles (tokens shortened)."""
    data = load_config()
    default = data.get("default_profile")
    profiles = {name: _redacted(p) for name, p in data.get("profiles", {}).items()}
    rows = [
        (
            "*" if name == default else "",
            name,
            p.get("api_url"),
            "token" if p.get("token") else "command" if p.get("token_command") else "",
        )
        for name, p in sorted(profiles.items())
    ]
    emit(
        {"default_profile": default, "profiles": profiles},
        STATE.output_format(output),
        lambda: table(["", "PROFILE", "API URL", "AUTH"], rows),
    )


@config.command("show")
def show(
    name: Annotated[str | None, typer.Argument(help="default: the default profile")] = None,
    output: OutputOpt = None,
) -> None:
    """One profile (token shortened)."""
    data = load_config()
    chosen = name or data.get("default_profile")
    profiles = data.get("profiles", {})
    if chosen not in profiles:
        raise ConfigError(f"no profile {chosen!r} in {config_path()}")
    profile = _redacted(profiles[chosen])
    emit(
        {"name": chosen, **profile},
        STATE.output_format(output),
        lambda: fields_table([("name", chosen), *profile.items()]),
    )


@config.command("delete-profile")
def delete_profile(name: str) -> None:
    """Remove a profile."""
    data = load_config()
    if name not in data.get("profiles", {}):
        raise ConfigError(f"no profile {name!r} in {config_path()}")
    del data["profiles"][name]
    if data.get("default_profile") == name:
        data.pop("default_profile")
    save_config(data)
    err.print(f"profile {name} deleted", highlight=False)


@config.command("path")
def path() -> None:
    """Where the config file is (CHAOSPLANE_CONFIG_DIR moves it)."""
    typer.echo(str(config_path()))
