"""The pipeline examples in infra/ci run the experiment with the CLI's real flags and publish JUnit."""

from __future__ import annotations

import re

import pytest
import yaml
from typer.testing import CliRunner

from chaosplane.cli import app
from chaosplane.local.template import load_template
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


def test_the_payload_image_workflow_pushes_the_tag_the_stack_runs() -> None:
    template = load_template(ROOT / "template.yaml")
    workflow = yaml.safe_load((CI / "payload-image.yml").read_text())
    steps = workflow["jobs"]["push"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)

    # It reads the repository from the stack's own output, and the tag from VERSION, the file the
    # template's default tag must match: a stack deployed with the defaults runs what was pushed.
    assert "PayloadRepositoryUri" in template["Outputs"]
    assert "OutputKey=='PayloadRepositoryUri'" in script
    version = (ROOT / "infra" / "payload-image" / "VERSION").read_text().strip()
    assert template["Parameters"]["PayloadImageTag"]["Default"] == version
    assert template["Resources"]["PayloadRepository"]["Properties"]["ImageTagMutability"] == "IMMUTABLE"
    # It runs when the image changes, with OIDC rather than stored keys, and builds before it pushes.
    assert workflow[True]["push"]["paths"] == ["infra/payload-image/**"]  # YAML 1.1 reads `on` as True
    assert workflow["permissions"]["id-token"] == "write"
    assert script.index("docker build") < script.index("docker push")
