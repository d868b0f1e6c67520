"""The package's declared dependencies are the requirements files' pins, so what users install
is what the tests ran on."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT


def test_the_cli_extra_pins_what_the_dev_requirements_pin() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["cli"]
    pins = {}
    for path in ("requirements-dev.txt", "layers/chaosplane/requirements.txt"):
        for line in (ROOT / path).read_text().splitlines():
            found = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
            if found:
                pins[found[1].split("[")[0].lower()] = found[2]
    for requirement in extra:
        name, version = requirement.split("==")
        assert pins[name.lower()] == version, requirement
