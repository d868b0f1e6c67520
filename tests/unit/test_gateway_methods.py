"""Which API method serves a request, by API Gateway's rules, and that every MethodSettings entry
names a method template.yaml really has (API Gateway refuses to deploy a stage that names another)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosplane.local.gateway import method_of
from chaosplane.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def api_methods() -> set[tuple[str, str]]:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    return {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "Api"
    }


@pytest.mark.parametrize(
    ("method", "path", "served_by"),
    [
        ("POST", "/safety/halt", ("POST", "/safety/halt")),
        ("POST", "/safety/halt/", ("POST", "/safety/halt")),  # a trailing slash is the same resource
        ("DELETE", "/safety/halt", ("ANY", "/safety/halt")),
        ("POST", "/safety/release", ("ANY", "/{proxy+}")),  # a sibling of its own resource
        ("GET", "/health", ("GET", "/health")),
        ("PUT", "/health", ("ANY", "/health")),
        ("GET", "/ui/js/app.js", ("GET", "/ui/{proxy+}")),  # the longer greedy resource
        ("GET", "/targets/abc", ("ANY", "/{proxy+}")),
    ],
)
def test_a_request_is_served_by_the_most_specific_resource_then_its_own_method(
    method: str, path: str, served_by: tuple[str, str]
) -> None:
    assert method_of(api_methods(), method, path) == served_by


def test_every_method_setting_names_a_method_of_the_api() -> None:
    api = load_template(ROOT / "template.yaml")["Resources"]["ChaosplaneApi"]["Properties"]
    named = {
        (setting["HttpMethod"], setting["ResourcePath"][1:].replace("~1", "/"))
        for setting in api["MethodSettings"]
        if setting["ResourcePath"] != "/*"
    }
    assert named and named <= api_methods()
