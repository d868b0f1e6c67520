"""`pip install "chaosplane[cli]"` into a fresh venv gives a CLI that works against a real platform.

The package is built into a wheel from a copy of the sources (setuptools leaves build/ behind, and
a stale build/ ends up in later wheels), installed bare, then with the `cli` extra, in a venv
that sees nothing of this one: no PYTHONPATH, no site-packages. The platform it drives is
`chaosplane local` from this venv, since `local` needs the runtime's packages, not the CLI's.
pip's cache makes the installs quick after the first (about 20 s in all on a warm cache).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.test_local_runtime import Local, shut_down, start_local

pytestmark = pytest.mark.e2e
INSTALL_TIMEOUT = 300


def clean_env(**extra: str) -> dict[str, str]:
    """The user's environment: nothing of this test run's interpreter, AWS or CLI settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CHAOSPLANE_", "PYTHON", "VIRTUAL_ENV"))
    }
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "COLUMNS": "200", **extra}


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Venv:
    root: Path
    wheel: Path

    def bin(self, name: str) -> Path:
        return self.root / "bin" / name

    def pip_install(self, requirement: str) -> None:
        run(
            self.bin("python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            requirement,
            cwd=self.root.parent,
            timeout=INSTALL_TIMEOUT,
        )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    work = tmp_path_factory.mktemp("install")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "layers" / "chaosplane" / "chaosplane",
        source / "layers" / "chaosplane" / "chaosplane",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "-w",
        work / "dist",
        source,
        cwd=work,
        timeout=INSTALL_TIMEOUT,
    )
    (wheel,) = (work / "dist").glob("chaosplane-*.whl")
    run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    return Venv(work / "venv", wheel)


@pytest.fixture(scope="module")
def cli_venv(venv: Venv) -> Venv:
    venv.pip_install(f"{venv.wheel}[cli]")
    return venv


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, cli_venv: Venv) -> Iterator[Local]:
    running = start_local(tmp_path_factory.mktemp("local"))
    yield running
    shut_down(running)


def test_the_bare_package_is_the_client_and_its_models(venv: Venv) -> None:
    # Given the wheel installed without extras
    venv.pip_install(str(venv.wheel))

    # Then the client and the models import, validate, and need neither the CLI's packages nor the SDKs
    probe = """
import importlib.util, json
from chaosplane.client import Client
from chaosplane.models import ExperimentSpec
ExperimentSpec.model_validate({"name": "e", "type": "ec2-stop", "duration": 60,
                               "target": "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"})
print(json.dumps([m for m in ("typer", "boto3", "kubernetes") if importlib.util.find_spec(m)]))
"""
    assert json.loads(run(venv.bin("python"), "-c", probe, cwd=venv.root)) == []


def test_the_cli_extra_gives_a_cli_whose_help_and_imports_work(cli_venv: Venv) -> None:
    run(cli_venv.bin("python"), "-m", "pip", "check", cwd=cli_venv.root)
    assert "Chaosplane" in run(cli_venv.bin("chaosplane"), "--help", cwd=cli_venv.root)
    assert "--secret-id" in run(cli_venv.bin("chaosplane"), "token", "--help", cwd=cli_venv.root)
    # boto3 (for --secret-id) and PyJWT (to sign) are there, the runtime's packages are not
    probe = "import boto3, jwt, tomli_w, importlib.util as u; print(u.find_spec('pynamodb') is None)"
    assert run(cli_venv.bin("python"), "-c", probe, cwd=cli_venv.root).strip() == "True"
    # and `local`, which needs them, says so in one line
    done = subprocess.run(
        [cli_venv.bin("chaosplane"), "local", "--template", ROOT / "template.yaml"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "`make run`" in done.stdout and "Traceback" not in done.stderr


def test_the_installed_cli_drives_the_platform(cli_venv: Venv, local: Local, tmp_path: Path) -> None:
    chaosplane = cli_venv.bin("chaosplane")
    env = clean_env(CHAOSPLANE_CONFIG_DIR=str(tmp_path / "config"))

    # Given a token minted by the installed CLI from the platform's secret (boto3, PyJWT)
    token = run(
        chaosplane, "token", "--role", "admin", "--aws-port", str(local.aws_port), cwd=tmp_path, env=env
    )

    # And a profile with a non-ASCII name holding it (tomli-w)
    profile = "démo 🚀"
    run(
        chaosplane,
        "config",
        "set-profile",
        profile,
        "--api-url",
        local.url,
        "--token",
        token.strip(),
        cwd=tmp_path,
        env=env,
    )

    # When it creates an experiment from a YAML file (PyYAML, the pydantic models) and previews it
    targets = json.loads(run(chaosplane, "-o", "json", "targets", "list", cwd=tmp_path, env=env))
    spec = tmp_path / "experiment.yaml"
    spec.write_text(
        f"name: installed-cli\ntype: ec2-stop\ntarget: {targets[0]['id']}\n"
        "duration: 30\nselection: COUNT(1)\n"
    )
    created = json.loads(
        run(chaosplane, "-o", "json", "experiments", "create", "-f", spec, cwd=tmp_path, env=env)
    )
    preview = run(chaosplane, "preview", created["id"], cwd=tmp_path, env=env)

    # Then the platform answered each command, through the profile
    assert created["name"] == "installed-cli" and created["selection"] == "COUNT(1)"
    assert "ALLOWED" in preview and "would hit" in preview
