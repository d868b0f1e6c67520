"""The `chaosplane` CLI over HTTP against `chaosplane local`: every command, format and exit code.

Most commands run in-process (typer's CliRunner, with the environment a user would set); the
ones whose behaviour depends on being a separate process (progress lines in a CI log, SIGTERM
from a cancelled pipeline) run as a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from typer.testing import CliRunner

from chaosplane.auth import Role, mint_token
from chaosplane.cli import app
from chaosplane.tenancy import TEAM_TAG
from tests.conftest import ROOT, put_alarm, wait_until
from tests.e2e.test_local_runtime import CLI, Local, shut_down, start_local
from tests.junit_schema import assert_valid_junit

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    running = start_local(tmp_path_factory.mktemp("cli"))
    yield running
    shut_down(running)


class Env:
    def __init__(self, local: Local, config_dir: Path) -> None:
        self.local = local
        self.token = str(local.http.headers["Authorization"]).split()[1]
        self.vars: dict[str, str | None] = {
            "CHAOSPLANE_API_URL": local.url,
            "CHAOSPLANE_TOKEN": self.token,
            "CHAOSPLANE_CONFIG_DIR": str(config_dir),
            "CHAOSPLANE_PROFILE": None,
            "CHAOSPLANE_OUTPUT": None,
            "COLUMNS": "250",
        }

    def aws(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        ).client(service, endpoint_url=f"http://127.0.0.1:{self.local.aws_port}")

    def cli(self, *args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Any:
        result = CliRunner().invoke(app, list(args), env={**self.vars, **(env or {})}, input=input)
        if "--debug" not in args:
            assert "Traceback" not in result.output, result.output
        return result

    def ok(self, *args: str) -> Any:
        result = self.cli(*args)
        assert result.exit_code == 0, (args, result.output)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok("-o", "json", *args).stdout)

    def subprocess(self, *args: str) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CHAOSPLANE_"))}
        env.update({k: v for k, v in self.vars.items() if v is not None})
        return subprocess.Popen(
            [str(CLI), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def instances(self, tag: str, count: int = 2, team: str = "demo") -> list[str]:
        """`count` instances tagged app=`tag`, the `team`'s own."""
        tags = [{"Key": "app", "Value": tag}, {"Key": TEAM_TAG, "Value": team}]
        found = self.aws("ec2").run_instances(
            ImageId="ami-12c6146b",
            MinCount=count,
            MaxCount=count,
            InstanceType="t3.micro",
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )
        return [i["InstanceId"] for i in found["Instances"]]

    def states(self, ids: list[str]) -> set[str]:
        found = self.aws("ec2").describe_instances(InstanceIds=ids)
        return {i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]}

    def alarm(self, name: str, state: str = "OK", team: str = "demo") -> None:
        cloudwatch = self.aws("cloudwatch")
        put_alarm(cloudwatch, name, team=team)
        cloudwatch.set_alarm_state(
            AlarmName=name, StateValue=state, StateReason=f"set to {state} by the test"
        )

    def target(self, tag: str, env: dict[str, str | None] | None = None) -> dict[str, Any]:
        args = ["--name", tag, "--type", "ec2-instances", "--selector", f"app={tag}"]
        result = self.cli("-o", "json", "targets", "create", *args, env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def experiment(self, tag: str, *extra: str, count: int = 2) -> tuple[dict[str, Any], list[str]]:
        """Instances tagged app=<tag>, a target on them and a 2 s ec2-stop experiment of one of them."""
        ids = self.instances(tag, count)
        target = self.target(tag)
        args = ["--name", f"stop {tag}", "--type", "ec2-stop", "--target", target["id"], "--duration", "2s"]
        experiment = self.json("experiments", "create", *args, "--selection", "COUNT(1)", *extra)
        return experiment, ids

    def secret(self) -> str:
        return str(
            self.aws("secretsmanager").get_secret_value(SecretId="chaosplane-JwtSecret")["SecretString"]
        )

    def token_for(self, role: Role, team: str = "demo", **kwargs: Any) -> str:
        return mint_token(self.secret(), subject=f"{role.label}-user", role=role, team=team, **kwargs)


@pytest.fixture
def env(local: Local, tmp_path: Path) -> Env:
    return Env(local, tmp_path)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for_final(env: Env, result_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        found: dict[str, Any] = env.json("results", "get", result_id)
        return found if found["status"] in ("completed", "stopped", "failed", "skipped") else None

    return wait_until(final, timeout=30)  # type: ignore[no-any-return]


# -- resources, in every output format -------------------------------------------------------------


def test_targets_create_get_list_update_delete_in_every_format(env: Env, tmp_path: Path) -> None:
    tag = unique("web")
    created = env.target(tag)
    assert created["selector"] == f"app={tag}" and created["team"] == "demo"

    as_yaml = yaml.safe_load(env.ok("targets", "get", created["id"], "-o", "yaml").stdout)
    assert as_yaml["id"] == created["id"] and as_yaml["type"] == "ec2-instances"
    listing = env.ok("targets", "list").stdout
    assert created["id"] in listing and "ec2-instances" in listing and "SELECTS" in listing
    assert created["id"] in {t["id"] for t in env.json("targets", "list")}
    assert created["id"] in {t["id"] for t in yaml.safe_load(env.ok("-o", "yaml", "targets", "list").stdout)}
    assert len(env.json("targets", "list", "--limit", "1")) == 1
    assert f"app={tag}" in env.ok("targets", "get", created["id"]).stdout

    updated = env.json("targets", "update", created["id"], "--selector", f"app={tag},tier=front")
    assert updated["selector"] == f"app={tag},tier=front" and updated["name"] == tag  # the rest unchanged

    spec = tmp_path / "target.yaml"
    spec.write_text(
        f"name: from-file\ntype: ec2-instances\nresource_ids: [i-0123456789abcdef0]\nselector: app={tag}\n"
    )
    from_file = env.json("targets", "create", "-f", str(spec), "--name", "flag-wins")
    assert from_file["name"] == "flag-wins" and from_file["resource_ids"] == ["i-0123456789abcdef0"]
    from_stdin = env.cli("-o", "json", "targets", "create", "-f", "-", input=spec.read_text())
    assert from_stdin.exit_code == 0 and json.loads(from_stdin.stdout)["name"] == "from-file"

    assert env.json("targets", "delete", from_file["id"]) == {"deleted": from_file["id"], "kind": "target"}
    assert yaml.safe_load(
        env.ok("-o", "yaml", "targets", "delete", json.loads(from_stdin.stdout)["id"]).stdout
    )
    assert f"deleted target {created['id']}" in env.ok("targets", "delete", created["id"]).stdout
    gone = env.cli("targets", "get", created["id"])
    assert gone.exit_code == 4 and "not found (HTTP 404)" in gone.stderr


def test_experiments_create_from_files_and_flags_update_list_get_delete(env: Env, tmp_path: Path) -> None:
    tag = unique("api")
    target = env.target(tag)
    spec = {
        "name": "from json",
        "type": "ec2-stop",
        "target": target["id"],
        "duration": 30,
        "selection": "ALL",
    }
    (tmp_path / "e.json").write_text(json.dumps(spec))
    (tmp_path / "e.yaml").write_text(
        yaml.safe_dump({**spec, "name": "from yaml", "parameters": {"force": True}})
    )

    from_json = env.json("experiments", "create", "-f", str(tmp_path / "e.json"))
    from_yaml = env.json("experiments", "create", "-f", str(tmp_path / "e.yaml"))
    flags = ["--name", "flags", "--type", "ec2-stop", "--target", target["id"], "--duration", "5m"]
    flags += ["--selection", "PERCENT(50)", "--param", "force=true", "--description", "by flags"]
    from_flags = env.json("experiments", "create", *flags)
    assert (from_json["duration"], from_yaml["parameters"], from_flags["duration"]) == (
        30,
        {"force": True},
        300,
    )
    assert from_flags["parameters"] == {"force": True} and from_flags["selection"] == "PERCENT(50)"

    updated = env.json(
        "experiments", "update", from_json["id"], "--duration", "10", "--selection", "COUNT(1)"
    )
    assert (updated["duration"], updated["selection"], updated["name"]) == (10, "COUNT(1)", "from json")
    (tmp_path / "patch.yaml").write_text("description: changed by file\n")
    patched = env.json("experiments", "update", from_json["id"], "-f", str(tmp_path / "patch.yaml"))
    assert patched["description"] == "changed by file" and patched["duration"] == 10

    listed = {e["id"] for e in env.json("experiments", "list")}
    assert {from_json["id"], from_yaml["id"], from_flags["id"]} <= listed
    assert from_yaml["id"] in {
        e["id"] for e in yaml.safe_load(env.ok("-o", "yaml", "experiments", "list").stdout)
    }
    shown = env.ok("experiments", "get", from_flags["id"]).stdout
    assert "PERCENT(50)" in shown and "300s" in shown and "by flags" in shown
    assert (
        yaml.safe_load(env.ok("experiments", "get", from_flags["id"], "-o", "yaml").stdout)["name"] == "flags"
    )
    assert from_flags["id"] in env.ok("experiments", "list").stdout

    for item in (from_json, from_yaml, from_flags):
        deleted = env.cli("experiments", "delete", item["id"])
        assert deleted.exit_code == 0 and f"deleted experiment {item['id']}" in deleted.stdout
    env.ok("targets", "delete", target["id"])


def test_schedules_create_list_pause_resume_delete_and_a_due_one_fires(env: Env) -> None:
    experiment, _ = env.experiment(unique("cron"))

    bad = env.cli("schedules", "create", experiment["id"], "--expression", "0 9 * * 1")
    assert bad.exit_code == 4 and "not a schedule expression" in bad.output
    weekly = env.json(
        "schedules", "create", experiment["id"], "-e", "cron(0 9 ? * MON-FRI *)", "--timezone", "Europe/Paris"
    )
    assert weekly["enabled"] is True and len(weekly["next_runs"]) == 3
    shown = env.ok("schedules", "list", experiment["id"]).stdout
    assert weekly["id"] in shown and "cron(0 9 ? * MON-FRI *)" in shown and "Europe/Paris" in shown
    assert env.json("schedules", "pause", experiment["id"], weekly["id"])["enabled"] is False
    assert "paused" in env.ok("schedules", "list", experiment["id"]).stdout
    assert env.json("schedules", "resume", experiment["id"], weekly["id"])["enabled"] is True
    env.ok("schedules", "delete", experiment["id"], weekly["id"])
    assert env.json("schedules", "list", experiment["id"]) == []

    # One due in two seconds: the local platform's Scheduler fires it and the run is a real one.
    soon = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
    env.json("schedules", "create", experiment["id"], "-e", f"at({soon})")
    fired = wait_until(lambda: env.json("results", "list", experiment["id"]) or None, timeout=30)
    result = wait_for_final(env, fired[0]["id"])
    assert result["trigger"] == "schedule" and result["status"] == "completed", result


def test_preview_safety_status_and_audit(env: Env) -> None:
    experiment, _ = env.experiment(unique("pv"))
    preview = env.json("preview", experiment["id"])
    assert preview["verdict"]["allowed"] is True and len(preview["selected"]) == 1
    shown = env.ok("experiments", "preview", experiment["id"]).stdout
    assert "ALLOWED" in shown and "would hit" in shown and preview["selected"][0]["id"] in shown
    assert yaml.safe_load(env.ok("-o", "yaml", "preview", experiment["id"]).stdout)["fault"] == "ec2-stop"

    status = env.json("safety", "status")
    assert status["lever"] is None and status["policy"]["max_percent"] == 50
    assert "released" in env.ok("safety", "status").stdout
    assert yaml.safe_load(env.ok("-o", "yaml", "safety", "status").stdout)["team"] == "demo"
    audit = env.json("audit", "list", "--limit", "5")
    assert len(audit) == 5 and audit[0]["principal"]
    assert "OUTCOME" in env.ok("audit", "list").stdout


def test_safety_set_policy_from_a_file(env: Env, tmp_path: Path) -> None:
    other = {"CHAOSPLANE_TOKEN": env.token_for(Role.ADMIN, team=unique("team"))}
    policy = tmp_path / "policy.yaml"
    policy.write_text("max_percent: 100\nmax_resources: 3\n")
    result = env.cli("-o", "json", "safety", "set-policy", "-f", str(policy), env=other)
    assert result.exit_code == 0 and json.loads(result.stdout)["max_resources"] == 3
    assert "max_resources" in env.cli("safety", "set-policy", "-f", str(policy), env=other).stdout
    policy.write_text("max_percent: 1000\n")
    refused = env.cli("safety", "set-policy", "-f", str(policy), env=other)
    assert refused.exit_code == 4 and "max_percent" in refused.stderr


# -- runs and their exit codes ---------------------------------------------------------------------


def test_run_wait_completes_with_exit_0_and_writes_a_valid_junit_report(env: Env, tmp_path: Path) -> None:
    experiment, ids = env.experiment(unique("ok"))
    report = tmp_path / "reports" / "run.xml"
    result = env.cli("run", experiment["id"], "--wait", "--interval", "0.3", "--junit", str(report))
    assert result.exit_code == 0, result.output
    assert "completed in" in result.stderr and "1 of 1 selected resource(s) hit, 1 restored" in result.stderr
    assert "verdict: inconclusive (no probes)" in result.stderr  # completed, but that proves nothing
    scored = env.json("experiments", "resilience", experiment["id"], "--last", "5")
    assert (scored["score"], scored["runs"], scored["inconclusive"], scored["last"]) == (None, 1, 1, 5)
    assert "no decisive run" in env.ok("experiments", "resilience", experiment["id"]).stdout
    assert env.json("targets", "resilience", experiment["target"])["runs"] == 1
    assert "timeline" in result.stdout and "rollback" in result.stdout
    suite = assert_valid_junit(report.read_bytes())
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    assert env.states(ids) == {"running"}

    runs = env.json("results", "list", experiment["id"])
    assert runs[0]["status"] == "completed" and runs[0]["failure_kind"] is None
    assert runs[0]["id"] in env.ok("results", "list", experiment["id"]).stdout
    assert (
        yaml.safe_load(env.ok("-o", "yaml", "results", "list", experiment["id"]).stdout)[0]["id"]
        == runs[0]["id"]
    )
    again = tmp_path / "again.xml"
    got = env.cli("-o", "yaml", "results", "get", runs[0]["id"], "--junit", str(again))
    assert got.exit_code == 0 and yaml.safe_load(got.stdout)["status"] == "completed"
    assert assert_valid_junit(again.read_bytes()).get("name") == suite.get("name")
    assert "resources" in env.ok("results", "get", runs[0]["id"]).stdout
    waited = env.cli("results", "wait", runs[0]["id"])  # attaching to a finished run: its outcome at once
    assert waited.exit_code == 0 and "completed" in waited.stderr


def test_run_without_wait_then_stop_and_a_busy_experiment_is_refused(env: Env) -> None:
    experiment, ids = env.experiment(unique("st"))
    env.json("experiments", "update", experiment["id"], "--duration", "600")
    result_id = env.ok("run", experiment["id"], "-q").stdout.strip()
    wait_until(lambda: "stopped" in env.states(ids), timeout=20)
    busy = env.cli("run", experiment["id"])
    assert busy.exit_code == 3 and "run refused" in busy.stderr and "already running" in busy.stderr

    stopped = env.cli("-o", "json", "stop", experiment["id"], "--wait", "--interval", "0.3")
    assert stopped.exit_code == 0, stopped.output
    final = json.loads(stopped.stdout)
    assert (final["id"], final["status"], final["stop_kind"]) == (result_id, "stopped", "user")
    assert env.states(ids) == {"running"}
    not_running = env.cli("stop", experiment["id"])
    assert not_running.exit_code == 1 and "is not running" in not_running.stderr

    accepted = env.json("run", experiment["id"])
    assert accepted["status"] == "pending"
    assert "stop requested" in env.ok("stop", experiment["id"]).stdout
    assert wait_for_final(env, accepted["result_id"])["status"] == "stopped"


def test_a_run_that_fails_exits_1(env: Env) -> None:
    tag = unique("none")  # a target that matches nothing
    target = env.target(tag)
    args = ["--name", "nothing", "--type", "ec2-stop", "--target", target["id"], "--duration", "2"]
    experiment = env.json("experiments", "create", *args)
    result = env.cli("-o", "json", "run", experiment["id"], "--wait", "--interval", "0.3")
    assert result.exit_code == 1, result.output
    final = json.loads(result.stdout)
    assert (final["status"], final["failure_kind"]) == ("failed", "nothing-to-hit")
    assert "failed (nothing-to-hit)" in result.stderr


def test_a_run_refused_by_preflight_exits_3(env: Env) -> None:
    alarm = unique("latency")
    env.alarm(alarm)
    experiment, ids = env.experiment(unique("pf"), "--stop-condition", alarm)
    env.alarm(alarm, "ALARM")
    result = env.cli("run", experiment["id"], "--wait", "--interval", "0.3")
    assert result.exit_code == 3, result.output
    assert "refused (preflight)" in result.stderr and f"{alarm} is in ALARM" in result.stderr
    assert env.states(ids) == {"running"}


def test_the_emergency_stop_refuses_runs_with_exit_3_until_released(env: Env) -> None:
    team = unique("team")
    as_team = {"CHAOSPLANE_TOKEN": env.token_for(Role.ADMIN, team=team)}
    tag = unique("lever")
    env.instances(tag, team=team)
    target = env.target(tag, env=as_team)
    args = [
        "--name",
        "x",
        "--type",
        "ec2-stop",
        "--target",
        target["id"],
        "--duration",
        "2",
        "--selection",
        "COUNT(1)",
    ]
    experiment = json.loads(env.cli("-o", "json", "experiments", "create", *args, env=as_team).stdout)

    halted = env.cli("-o", "json", "safety", "halt", env=as_team)
    assert halted.exit_code == 0 and json.loads(halted.stdout)["lever"]["engaged_by"] == "admin-user"
    assert "ENGAGED" in env.cli("safety", "status", env=as_team).stdout
    refused = env.cli("run", experiment["id"], "--wait", env=as_team)
    assert refused.exit_code == 3 and "emergency stop is engaged" in refused.stderr
    released = env.cli("safety", "release", env=as_team)
    assert released.exit_code == 0 and "released" in released.stdout
    ran = env.cli("run", experiment["id"], "--wait", "--interval", "0.3", env=as_team)
    assert ran.exit_code == 0, ran.output


def test_a_run_halted_by_its_stop_condition_exits_2_with_progress_lines_in_a_ci_log(env: Env) -> None:
    alarm = unique("errors")
    env.alarm(alarm)
    experiment, ids = env.experiment(unique("al"), "--stop-condition", alarm)
    env.json("experiments", "update", experiment["id"], "--duration", "600")
    process = env.subprocess("run", experiment["id"], "--wait", "--interval", "0.3")
    wait_until(lambda: "stopped" in env.states(ids), timeout=30)
    time.sleep(2)  # long enough for a progress line with the alarm's state
    env.alarm(alarm, "ALARM")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert f"stop conditions: {alarm}=OK" in err  # plain progress lines, not a live panel
    assert "running · hit 1/1" in err and "inject: ec2-stop" in err
    assert "stopped by a stop condition" in err and f"{alarm} went into ALARM" in err
    assert env.states(ids) == {"running"}
    assert "RESOURCE" in out and "timeline" in out


def test_sigterm_from_a_cancelled_pipeline_stops_the_run_and_leaves_nothing_injected(env: Env) -> None:
    experiment, ids = env.experiment(unique("cancel"))
    env.json("experiments", "update", experiment["id"], "--duration", "600")
    process = env.subprocess("-o", "json", "run", experiment["id"], "--wait", "--interval", "0.3")
    wait_until(lambda: "stopped" in env.states(ids), timeout=30)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert "stop requested (interrupt)" in err
    final = json.loads(out)
    assert (final["status"], final["stop_kind"]) == ("stopped", "user")
    assert env.states(ids) == {"running"}


# -- usage and auth errors: exit 4, one line, no traceback ------------------------------------------


def test_bad_files_are_usage_errors(env: Env, tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: x\ntype: [ec2-stop\n")
    not_a_mapping = tmp_path / "list.yaml"
    not_a_mapping.write_text("- a\n- b\n")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"name": }')
    cases = {
        str(tmp_path / "missing.yaml"): "cannot read",
        str(bad_yaml): "is not valid YAML (line 3",
        str(not_a_mapping): "must hold a mapping of fields, not list",
        str(bad_json): "is not valid JSON",
    }
    for path, message in cases.items():
        result = env.cli("experiments", "create", "-f", path)
        assert result.exit_code == 4 and message in result.output, (path, result.output)


def test_invalid_input_shows_the_apis_field_errors_in_one_line_with_exit_4(env: Env) -> None:
    args = ["--name", "x", "--type", "ec2-explode", "--target", "nope", "--duration", "0"]
    result = env.cli("experiments", "create", *args)
    assert result.exit_code == 4
    assert (
        "request is invalid" in result.stderr
        and "body.type" in result.stderr
        and "(HTTP 422)" in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["targets", "lst"], "No such command"),
        (["targets", "list", "--limit", "0"], "--limit"),
        (["-o", "xml", "targets", "list"], "'xml' is not one of"),
        (["targets", "list", "--nope"], "No such option"),
        (["experiments", "create", "--duration", "soon"], "is not a duration"),
        (["experiments", "create", "--param", "force"], "is not KEY=VALUE"),
        (["experiments", "create"], "give a file (-f)"),
        (["run"], "Missing argument"),
        (["run", "../audit"], "not an id"),
        (["run", "00000000-0000-0000-0000-000000000000"], "not found"),
    ],
)
def test_bad_flags_and_arguments_exit_4(env: Env, args: list[str], message: str) -> None:
    result = env.cli(*args)
    assert result.exit_code == 4, (args, result.output)
    assert message in result.output


def test_an_expired_a_missing_an_invalid_and_a_weak_token_exit_4(env: Env) -> None:
    expired = env.token_for(Role.ADMIN, ttl_seconds=60, now=time.time() - 3600)
    result = env.cli("targets", "list", env={"CHAOSPLANE_TOKEN": expired})
    assert result.exit_code == 4 and "token expired" in result.stderr and "(HTTP 401)" in result.stderr
    result = env.cli("--token", "not-a-jwt", "targets", "list")
    assert result.exit_code == 4 and "HTTP 401" in result.stderr
    result = env.cli("targets", "list", env={"CHAOSPLANE_TOKEN": None})
    assert result.exit_code == 4 and "no token" in result.stderr
    result = env.cli("safety", "halt", env={"CHAOSPLANE_TOKEN": env.token_for(Role.VIEWER)})
    assert result.exit_code == 4 and "requires the admin role" in result.stderr


def test_an_unreachable_api_is_one_line_and_debug_shows_the_traceback(env: Env) -> None:
    nowhere = {"CHAOSPLANE_API_URL": "http://127.0.0.1:9"}
    result = env.cli("--retries", "0", "targets", "list", env=nowhere)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: cannot reach http://127.0.0.1:9: Connection refused"
    debug = env.cli("--debug", "--retries", "0", "targets", "list", env=nowhere)
    assert debug.exit_code == 1 and "Traceback" in debug.stderr


def test_a_profile_with_a_token_command_reaches_the_api_and_flags_override_it(
    env: Env, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(env.token)
    profile = ["--api-url", env.local.url, "--token-command", f"cat {token_file}"]
    assert env.cli("config", "set-profile", "local", *profile).exit_code == 0
    no_env: dict[str, str | None] = {"CHAOSPLANE_API_URL": None, "CHAOSPLANE_TOKEN": None}
    listed = env.cli("-o", "json", "targets", "list", env=no_env)
    assert listed.exit_code == 0 and isinstance(json.loads(listed.stdout), list)
    wrong = env.cli("--api-url", "http://127.0.0.1:9", "--retries", "0", "targets", "list", env=no_env)
    assert wrong.exit_code == 1 and "127.0.0.1:9" in wrong.stderr


def test_an_fis_template_is_imported_shown_run_and_exported_back(env: Env, tmp_path: Path) -> None:
    tag = unique("fis")
    ids = env.instances(tag, 2)
    template = {
        "description": "Stop the tier, then wait",
        "targets": {
            "tier": {
                "resourceType": "aws:ec2:instance",
                "resourceTags": {"app": tag},
                "selectionMode": "COUNT(1)",
            }
        },
        "actions": {
            "stop": {
                "actionId": "aws:ec2:stop-instances",
                "parameters": {"startInstancesAfterDuration": "PT1S"},
                "targets": {"Instances": "tier"},
            },
            "settle": {
                "actionId": "aws:fis:wait",
                "parameters": {"duration": "PT1S"},
                "startAfter": ["stop"],
            },
        },
        "stopConditions": [{"source": "none"}],
        "roleArn": "arn:aws:iam::123456789012:role/fis",
    }
    (tmp_path / "template.yaml").write_text(yaml.safe_dump(template))

    shown = env.ok("experiments", "import", str(tmp_path / "template.yaml"), "--duration", "30s").stdout
    assert "targets created" in shown and "tier" in shown and "note: roleArn" in shown
    imported = env.json("experiments", "import", str(tmp_path / "template.yaml"), "--duration", "30s")
    experiment = imported["experiment"]
    assert experiment["duration"] == 30 and set(experiment["actions"]) == {"stop", "settle"}
    view = env.ok("experiments", "get", experiment["id"]).stdout
    assert "actions" in view and "aws" not in view and "settle" in view and "start after" in view

    result = env.cli("run", experiment["id"], "--wait", "--interval", "0.3")
    assert result.exit_code == 0, result.output
    assert env.states(ids) == {"running"}
    updated = env.json("experiments", "update", experiment["id"], "--duration", "40s")
    assert updated["duration"] == 40 and updated["actions"] == experiment["actions"]

    out = tmp_path / "exported.json"
    env.ok("experiments", "export", experiment["id"], "--role-arn", template["roleArn"], "--out", str(out))
    exported = json.loads(out.read_text())
    assert exported["targets"] == template["targets"] and exported["roleArn"] == template["roleArn"]
    assert exported["actions"]["settle"] == template["actions"]["settle"]
    assert json.loads(env.ok("experiments", "export", experiment["id"]).stdout)["actions"].keys() == {
        "stop",
        "settle",
    }


def test_a_template_that_does_not_map_exits_4_naming_it_and_creates_nothing(env: Env, tmp_path: Path) -> None:
    template = {
        "targets": {
            "r": {
                "resourceType": "aws:iam:role",
                "resourceArns": ["arn:aws:iam::123456789012:role/x"],
                "selectionMode": "ALL",
            }
        },
        "actions": {
            "capacity": {
                "actionId": "aws:ec2:api-insufficient-instance-capacity-error",
                "targets": {"Roles": "r"},
            }
        },
        "stopConditions": [{"source": "none"}],
    }
    (tmp_path / "bad.json").write_text(json.dumps(template))
    before = len(env.json("targets", "list"))
    result = env.cli("experiments", "import", str(tmp_path / "bad.json"))
    assert result.exit_code == 4, result.output
    assert (
        "aws:ec2:api-insufficient-instance-capacity-error" in result.stderr
        and "aws:iam:role" in result.stderr
    )
    assert len(env.json("targets", "list")) == before
