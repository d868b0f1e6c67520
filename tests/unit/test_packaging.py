"""What `pip install chaosplane[...]` installs is what the requirements files pin, so users get
the versions the tests ran on, and the layer's extra is the layer's own list.

The requirements files are the source of truth (`make` and `sam build` install them); the
pyproject lists are copies that this test keeps equal.
"""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LAYER = ROOT / "layers" / "chaosplane" / "requirements.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)(?P<extras>\[[^\]]*\])?==(?P<version>\S+)$")


def requirements(path: str) -> list[str]:
    """The requirement lines of a requirements file and the files it includes (`-r`)."""
    lines = []
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            lines += requirements(line[3:].strip())
        elif line:
            lines.append(line)
    return lines


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = PIN.match(line)
        assert match, f"{line!r}: pin every requirement with =="
        found[match["name"].lower()] = match["version"]
    return found


def test_the_runtime_extra_is_the_layer_requirements_line_for_line() -> None:
    layer = requirements(str(LAYER.relative_to(ROOT)))
    assert PYPROJECT["optional-dependencies"]["runtime"] == layer


def test_the_bare_dependencies_and_the_cli_extra_pin_what_the_dev_requirements_pin() -> None:
    dev = pins(requirements("requirements-dev.txt"))  # includes the layer's, through requirements.txt
    declared = PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["cli"]
    for name, version in pins(declared).items():
        assert dev.get(name) == version, (
            f"{name}=={version} is pinned {dev.get(name)} in requirements-dev.txt"
        )


def test_the_bare_dependencies_are_what_the_client_imports() -> None:
    assert set(pins(PYPROJECT["dependencies"])) == {"pydantic", "requests"}
