"""CLI configuration: profiles in the config dir, the environment over them, flags over both."""

from __future__ import annotations

import json
import shlex
import stat
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaosplane.cli import app
from chaosplane.commands.context import ConfigError, State, run_token_command


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAOSPLANE_CONFIG_DIR", str(tmp_path))
    for name in ("CHAOSPLANE_API_URL", "CHAOSPLANE_TOKEN", "CHAOSPLANE_PROFILE", "CHAOSPLANE_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def printer(text: str, code: int = 0) -> str:
    """A token command: argv of this Python printing `text` (no shell involved)."""
    return shlex.join([sys.executable, "-c", f"import sys; print({text!r}); sys.exit({code})"])


def test_profiles_are_saved_owner_only_and_the_first_is_the_default(config_dir: Path) -> None:
    assert (
        cli(
            "config", "set-profile", "prod", "--api-url", "https://prod.example/v1", "--token", "abcdefghijkl"
        )[0]
        == 0
    )
    assert (
        cli(
            "config",
            "set-profile",
            "dev",
            "--api-url",
            "http://127.0.0.1:8080",
            "--token-command",
            "get-token dev",
        )[0]
        == 0
    )
    path = config_dir / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = tomllib.loads(path.read_text())
    assert data["default_profile"] == "prod"
    assert data["profiles"]["dev"] == {"api_url": "http://127.0.0.1:8080", "token_command": "get-token dev"}

    code, out, _ = cli("config", "list", "-o", "json")
    listed = json.loads(out)
    assert code == 0 and listed["profiles"]["prod"]["token"] == "abcdefgh..."  # never the whole token
    assert cli("config", "use", "dev")[0] == 0
    assert tomllib.loads(path.read_text())["default_profile"] == "dev"
    assert cli("config", "use", "nope")[0] == 4
    assert cli("config", "delete-profile", "dev")[0] == 0
    assert "dev" not in tomllib.loads(path.read_text())["profiles"]
    assert cli("config", "set-profile", "x", "--api-url", "ftp://nope")[0] == 4


def test_flags_override_the_environment_which_overrides_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    cli("config", "set-profile", "prod", "--api-url", "https://prod.example/v1", "--token", "from-profile")
    state = State()
    assert (state.client().api_url, state.client()._bearer()) == ("https://prod.example/v1", "from-profile")

    monkeypatch.setenv("CHAOSPLANE_API_URL", "https://env.example")
    monkeypatch.setenv("CHAOSPLANE_TOKEN", "from-env")
    state = State()
    assert (state.client().api_url, state.client()._bearer()) == ("https://env.example", "from-env")

    state = State(api_url="https://flag.example", token="from-flag")
    assert (state.client().api_url, state.client()._bearer()) == ("https://flag.example", "from-flag")


def test_a_token_command_is_run_without_a_shell_when_the_token_is_needed() -> None:
    cli(
        "config",
        "set-profile",
        "dev",
        "--api-url",
        "http://127.0.0.1:9",
        "--token-command",
        printer("tok-123"),
    )
    assert State().client()._bearer() == "tok-123"
    assert run_token_command(printer("$HOME; rm -rf /")) == "$HOME; rm -rf /"  # printed, never interpreted
    with pytest.raises(ConfigError, match="exited with 3"):
        run_token_command(printer("x", code=3))
    with pytest.raises(ConfigError, match="command not found"):
        run_token_command("no-such-command-anywhere --flag")


def test_missing_configuration_is_a_usage_error_that_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = cli("targets", "list")
    assert code == 4 and "no API URL" in err and "Traceback" not in err
    code, _, err = cli("--api-url", "http://127.0.0.1:9", "targets", "list")
    assert code == 4 and "no token" in err
    code, _, err = cli("--profile", "ghost", "targets", "list")
    assert code == 4 and "no profile 'ghost'" in err
    monkeypatch.setenv("CHAOSPLANE_OUTPUT", "xml")
    code, _, err = cli("--api-url", "http://127.0.0.1:9", "--token", "t", "targets", "list")
    assert code == 4 and "output must be table, json or yaml" in err


def test_a_profile_named_with_an_emoji_round_trips_and_commands_keep_working(config_dir: Path) -> None:
    # Given a profile whose name and values are not ASCII (and hold TOML's quote and backslash)
    name, token = 'équipe 🚀 "prod" \\ 東京', "jeton-é-🚀"
    api_url = "https://chaos.example/ü/v1"
    assert cli("config", "set-profile", name, "--api-url", api_url, "--token", token)[0] == 0
    assert cli("config", "set-profile", "plain", "--api-url", "http://127.0.0.1:9", "--token", "t")[0] == 0

    # Then the file is TOML that reads back the same, and every command still reads it
    data = tomllib.loads((config_dir / "config.toml").read_text(encoding="utf-8"))
    assert data["default_profile"] == name
    assert data["profiles"][name] == {"api_url": api_url, "token": token}
    code, out, _ = cli("config", "list", "-o", "json")
    assert code == 0 and json.loads(out)["profiles"][name]["api_url"] == api_url
    code, out, _ = cli("config", "show", name, "-o", "json")
    assert code == 0 and json.loads(out)["name"] == name
    assert (State().client().api_url, State().client()._bearer()) == (api_url, token)
    code, _, err = cli("--profile", "plain", "targets", "list")
    assert code == 1 and "cannot reach http://127.0.0.1:9" in err  # past the config, at the network
    assert cli("config", "use", "plain")[0] == 0
    assert cli("config", "delete-profile", name)[0] == 0
    assert tomllib.loads((config_dir / "config.toml").read_text(encoding="utf-8")) == {
        "default_profile": "plain",
        "profiles": {"plain": {"api_url": "http://127.0.0.1:9", "token": "t"}},
    }
