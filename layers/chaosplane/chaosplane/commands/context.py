"""What every API command shares: where the API is and who we are, output, errors, exit codes.

Connection settings come from, strongest first: flags (`--api-url`, `--token`), the environment
(`CHAOSPLANE_API_URL`, `CHAOSPLANE_TOKEN`), then the profile (`--profile`, `CHAOSPLANE_PROFILE`,
or the config file's default) in `<config dir>/config.toml`. A profile holds an `api_url` and
either a `token` or a `token_command`: an argv (split like a shell would, but run without one)
whose standard output is the token, so a secret manager or an OIDC helper can supply it.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any

import tomli_w
import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from typer._click.exceptions import ClickException, UsageError  # typer vendors click
from typer.core import TyperGroup

try:
    from typer import rich_utils
except ImportError:  # pragma: no cover
    rich_utils = None  # type: ignore[assignment]

from chaosplane.client import (
    ApiError,
    Client,
    ClientError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InvalidArgument,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from chaosplane.models import ExperimentResult, FailureKind, RunStatus

APP_NAME = "chaosplane"
ENV_API_URL = "CHAOSPLANE_API_URL"
ENV_TOKEN = "CHAOSPLANE_TOKEN"
ENV_PROFILE = "CHAOSPLANE_PROFILE"
ENV_CONFIG_DIR = "CHAOSPLANE_CONFIG_DIR"
ENV_OUTPUT = "CHAOSPLANE_OUTPUT"
TOKEN_COMMAND_TIMEOUT = 30.0
PROFILE_KEYS = ("api_url", "token", "token_command", "output")


class ExitCode(IntEnum):
    """The CLI's exit codes: what a pipeline branches on (README: "Exit codes")."""

    OK = 0  # done; for `run --wait`: the run completed
    FAILED = 1  # the run failed (injection, rollback, nothing to hit...), or the API/network failed
    STOPPED = 2  # the run was stopped before its end: a stop condition, the emergency stop, a stop
    REFUSED = 3  # refused before anything was touched: pre-flight, policy, emergency stop, busy
    USAGE = 4  # bad flags or files, invalid input, unknown id, missing/expired/refused token or role
    INTERRUPTED = 130  # Ctrl-C (or SIGTERM) and the run's end was not awaited


def exit_code_of(result: ExperimentResult) -> ExitCode:
    if result.status is RunStatus.SKIPPED:  # a scheduled run refused before it started
        return ExitCode.REFUSED
    if result.status is RunStatus.COMPLETED:
        return ExitCode.OK
    if result.status is RunStatus.STOPPED:
        return ExitCode.STOPPED
    if result.status is RunStatus.FAILED and result.failure_kind in (
        FailureKind.PREFLIGHT,
        FailureKind.POLICY,
    ):
        return ExitCode.REFUSED
    return ExitCode.FAILED


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


class ConfigError(Exception):
    """The CLI is not configured well enough to call the API (exit code 4)."""


# -- the config file ------------------------------------------------------------------------------


def config_dir() -> Path:
    override = os.environ.get(ENV_CONFIG_DIR)
    return Path(override) if override else Path(typer.get_app_dir(APP_NAME))


def config_path() -> Path:
    return config_dir() / "config.toml"


def load_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))  # TOML is UTF-8, whatever the locale
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from err
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"{path}: [profiles.NAME] tables expected")
    return data


def save_config(data: Mapping[str, Any]) -> Path:
    """Write the config file, readable by its owner only (it may hold tokens).

    tomli-w quotes and escapes: a profile named with an emoji or a quote reads back as it was
    written (hand-written TOML from JSON strings did not: JSON escapes an emoji as a surrogate
    pair, which TOML refuses, so every later command failed to read the file).
    """
    document: dict[str, Any] = {}
    if data.get("default_profile"):
        document["default_profile"] = str(data["default_profile"])
    document["profiles"] = {
        str(name): {key: str(profile[key]) for key in PROFILE_KEYS if profile.get(key)}
        for name, profile in sorted((data.get("profiles") or {}).items())
    }
    text = tomli_w.dumps(document)
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)
    return path


def run_token_command(command: str, timeout: float = TOKEN_COMMAND_TIMEOUT) -> str:
    """The token a profile's `token_command` prints (argv, no shell: nothing in it is interpreted)."""
    try:
        argv = shlex.split(command)
    except ValueError as err:
        raise ConfigError(f"token_command is not a valid command line: {err}") from err
    if not argv:
        raise ConfigError("token_command is empty")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as err:
        raise ConfigError(f"token_command: {argv[0]}: command not found") from err
    except subprocess.TimeoutExpired as err:
        raise ConfigError(f"token_command did not finish in {timeout:g}s") from err
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        raise ConfigError(f"token_command exited with {done.returncode}" + (f": {last}" if last else ""))
    token = done.stdout.strip()
    if not token:
        raise ConfigError("token_command printed no token")
    return token


# -- per-invocation state -------------------------------------------------------------------------


@dataclass
class State:
    """The root command's options, read by every subcommand."""

    profile: str | None = None
    api_url: str | None = None
    token: str | None = None
    output: Output | None = None
    timeout: float = 30.0
    retries: int = 3
    debug: bool = False
    _client: Client | None = field(default=None, repr=False)

    def reset(self) -> None:
        if self._client is not None:
            self._client.close()
        self.__init__()  # type: ignore[misc]

    def _profile(self) -> tuple[str | None, dict[str, Any]]:
        config = load_config()
        profiles: dict[str, Any] = config.get("profiles", {})
        name = self.profile or os.environ.get(ENV_PROFILE) or config.get("default_profile")
        if name is None:
            return ("default", profiles["default"]) if "default" in profiles else (None, {})
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"no profile {name!r} in {config_path()} (profiles: {known})")
        return name, dict(profiles[name])

    def output_format(self, override: Output | None = None) -> Output:
        if override is not None:
            return override
        if self.output is not None:
            return self.output
        chosen = os.environ.get(ENV_OUTPUT) or self._profile()[1].get("output")
        if chosen:
            try:
                return Output(chosen)
            except ValueError as err:
                raise ConfigError(f"output must be table, json or yaml, not {chosen!r}") from err
        return Output.TABLE

    def client(self) -> Client:
        if self._client is not None:
            return self._client
        self.output_format()  # a bad CHAOSPLANE_OUTPUT or profile output fails before any request
        name, profile = self._profile()
        api_url = self.api_url or os.environ.get(ENV_API_URL) or profile.get("api_url")
        if not api_url:
            raise ConfigError(
                f"no API URL: pass --api-url, set {ENV_API_URL}, or add a profile "
                "(chaosplane config set-profile NAME --api-url URL ...)"
            )
        token = self.token or os.environ.get(ENV_TOKEN)
        provider: Callable[[], str] | None = None
        if not token:
            if profile.get("token"):
                token = str(profile["token"])
            elif profile.get("token_command"):
                command = str(profile["token_command"])
                provider = lambda: run_token_command(command)  # noqa: E731
        if not token and provider is None:
            where = f" or a token/token_command in profile {name!r}" if name else ""
            raise ConfigError(f"no token: pass --token, set {ENV_TOKEN}{where}")
        try:
            self._client = Client(
                str(api_url), token, token_provider=provider, timeout=self.timeout, retries=self.retries
            )
        except ValueError as err:
            raise ConfigError(str(err)) from err
        return self._client


STATE = State()
out = Console(soft_wrap=True)  # results, tables: what a script may read
err = Console(stderr=True, soft_wrap=True, highlight=False)  # progress and errors


# -- output ---------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """JSON-able data from models, lists of models, dicts."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit_data(value: Any, fmt: Output) -> None:
    """json / yaml: the API's own field names, to stdout, nothing else on it."""
    data = plain(value)
    if fmt is Output.JSON:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    sys.stdout.flush()


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("-" if cell is None or cell == "" else str(cell) for cell in row))
    return grid


def fields_table(pairs: Iterable[tuple[str, Any]]) -> Table:
    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in pairs:
        if isinstance(value, dict | list):
            value = json.dumps(plain(value)) if value else "-"
        grid.add_row(key, "-" if value is None or value == "" else str(value))
    return grid


def emit(value: Any, fmt: Output, render_table: Callable[[], Any]) -> None:
    if fmt is Output.TABLE:
        out.print(render_table())
    else:
        emit_data(value, fmt)


# -- errors ---------------------------------------------------------------------------------------


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Say what went wrong in one line on stderr; the caller raises what this returns."""
    err.print(f"[bold red]error:[/] {message}", markup=True)
    return typer.Exit(code=int(code))


def code_for(error: BaseException) -> ExitCode:
    if isinstance(
        error, Unauthorized | Forbidden | ValidationFailed | NotFound | InvalidArgument | ConfigError
    ):
        return ExitCode.USAGE
    return ExitCode.FAILED


def describe(error: BaseException) -> str:
    if isinstance(error, Unauthorized):
        hint = " (mint a new one: chaosplane token, or your identity provider)" if error.reason else ""
        return f"{error}{hint}"
    if isinstance(error, Conflict | ApiError | ConnectionFailed | ClientError | ConfigError):
        return str(error)
    return f"{type(error).__name__}: {error}"


class ChaosplaneGroup(TyperGroup):
    """The root command: one line per error, never a traceback (unless --debug), and exit codes
    that mean something (usage errors are 4, not click's 2; see ExitCode)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = self._main(args, prog_name or APP_NAME, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _main(
        self, args: Sequence[str] | None, prog_name: str, complete_var: str | None, **extra: Any
    ) -> int:
        STATE.reset()
        for console in (out, err):
            # Not a terminal (a pipe, a CI log): wide enough that ids are never folded.
            console.width = None if console.is_terminal else int(os.environ.get("COLUMNS") or 200)  # type: ignore[assignment]
        debug = os.environ.get("CHAOSPLANE_DEBUG") == "1" or "--debug" in (args or sys.argv[1:])
        # urllib3 logs each retry as a warning: noise in a terminal, unless asked for.
        logging.getLogger("urllib3").setLevel(logging.DEBUG if debug else logging.ERROR)
        try:
            result = super().main(
                args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
            return result if isinstance(result, int) else 0
        except UsageError as error:
            # Bad flags or arguments: the usage hint and the message, as click shows them.
            if rich_utils is not None:
                rich_utils.rich_format_error(error)
            else:  # pragma: no cover - rich is always there with typer here
                error.show()
            return int(ExitCode.USAGE)
        except typer.Abort:
            err.print("aborted")
            return int(ExitCode.INTERRUPTED)
        except ClickException as error:
            error.show()
            return error.exit_code
        except (ClientError, ConfigError) as error:
            if debug or STATE.debug:
                err.print_exception()
            fail(describe(error), code_for(error))
            return int(code_for(error))
        except KeyboardInterrupt:
            err.print("interrupted")
            return int(ExitCode.INTERRUPTED)
        except Exception as error:  # one line for people, the traceback for --debug
            if debug or STATE.debug:
                err.print_exception()
                return int(ExitCode.FAILED)
            fail(f"{describe(error)} (run with --debug for the traceback)", ExitCode.FAILED)
            return int(ExitCode.FAILED)
        finally:
            STATE.reset()
