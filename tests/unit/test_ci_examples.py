"""The pipeline examples in infra/ci run the experiment with the CLI's real flags and publish JUnit."""

from __future__ import annotations

import re

import pytest
import yaml
from typer.testing import CliRunner

from chaosplane.cli import app
from tests.conftest import ROOT

CI = ROOT / "infra" / "ci"
RUN = re.compile(r"chaosplane run \S.* --wait --junit chaosplane-junit\.xml")


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml", "Jenkinsfile"])
def test_each_pipeline_waits_for_the_run_and_keeps_its_junit_report(name: str) -> None:
    text = (CI / name).read_text()
    assert RUN.search(text), name
    assert "[cli]" in text and "requirements" not in text  # the CLI extra, not the Lambda runtime
    if name.endswith(".yml"):
        yaml.safe_load(text)
    published = {
        "github-actions.yml": "report_paths: chaosplane-junit.xml",
        "gitlab-ci.yml": "junit: chaosplane-junit.xml",
        "Jenkinsfile": "testResults: 'chaosplane-junit.xml'",
    }[name]
    assert published in text


def test_the_flags_the_pipelines_use_exist() -> None:
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--wait" in help_text and "--junit" in help_text
    assert CliRunner().invoke(app, ["preview", "--help"]).exit_code == 0
