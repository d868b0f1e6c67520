"""One plan: a preview's plan_id runs exactly the previewed resources, over HTTP on the embedded AWS."""

from __future__ import annotations

import pytest

from tests.conftest import Platform
from tests.integration.test_runs import setup_experiment


@pytest.mark.parametrize("selection", ["ALL", "COUNT(2)", "PERCENT(50)"])
def test_a_run_with_the_previews_plan_hits_exactly_what_the_preview_showed(
    platform: Platform, selection: str
) -> None:
    # Given six running instances and an experiment that samples some of them...
    web = platform.instances(6, {"app": "web"})
    experiment = setup_experiment(platform, selection=selection)
    # ...the preview names what a run would hit, and for how long the plan holds...
    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview")
    shown = sorted(r["id"] for r in preview["selected"])
    assert preview["plan_id"] and preview["expires_at"] and preview["verdict"]["allowed"]
    # ...and the run given that plan hits exactly those, and nothing else.
    body = {"plan_id": preview["plan_id"]}
    run = platform.json("POST", f"/experiments/{experiment['id']}/run", body, expect=202)
    result = platform.wait_for_result(run["result_id"])
    assert result["status"] == "completed" and result["plan_id"] == preview["plan_id"]
    assert sorted(r["id"] for r in result["resources"]) == shown
    assert all(r["after"] and r["restored"] for r in result["resources"])
    assert set(platform.states(web).values()) == {"running"}


def test_a_stale_plan_is_refused_with_409_naming_the_resource_and_nothing_starts(platform: Platform) -> None:
    web = platform.instances(3, {"app": "web"})
    experiment = setup_experiment(platform, selection="COUNT(2)")
    preview = platform.json("POST", f"/experiments/{experiment['id']}/preview")
    gone = preview["selected"][0]["id"]
    platform.ec2.stop_instances(InstanceIds=[gone])  # its owner stopped it since the preview
    response = platform.api("POST", f"/experiments/{experiment['id']}/run", {"plan_id": preview["plan_id"]})
    assert response.status_code == 409
    assert f"{gone}: it is stopped now (was running)" in response.get_json()["message"]
    assert platform.json("GET", f"/experiments/{experiment['id']}/results")["items"] == []
    assert platform.states([w for w in web if w != gone]) == {w: "running" for w in web if w != gone}


def test_an_unknown_plan_is_a_422_on_the_field_and_a_malformed_body_changes_nothing(
    platform: Platform,
) -> None:
    platform.instances(1, {"app": "web"})
    experiment = setup_experiment(platform)
    unknown = platform.api("POST", f"/experiments/{experiment['id']}/run", {"plan_id": "no-such-plan"})
    assert unknown.status_code == 422
    assert [e["field"] for e in unknown.get_json()["errors"]] == ["body.plan_id"]
    extra = platform.api("POST", f"/experiments/{experiment['id']}/run", {"plan_id": "x", "force": True})
    assert extra.status_code == 422
    assert platform.json("GET", f"/experiments/{experiment['id']}/results")["items"] == []


def test_the_openapi_document_describes_the_preview_and_the_run_body(platform: Platform) -> None:
    document = platform.json("GET", "/openapi.json")
    preview = document["paths"]["/experiments/{experiment_id}/preview"]["post"]
    schema = preview["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/Preview")
    assert {"plan_id", "expires_at", "selected", "verdict"} <= set(
        document["components"]["schemas"]["Preview"]["properties"]
    )
    run = document["paths"]["/experiments/{experiment_id}/run"]["post"]
    assert "requestBody" in run
