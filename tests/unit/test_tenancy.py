"""Team boundaries below the API: a team's runs act only on what is its own, and never on the
platform's. The rules on resources, then the run service planning over an in-memory fleet."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from chaosplane.errors import PolicyRefused, PreflightFailed
from chaosplane.faults.base import Resource
from chaosplane.models import FaultType
from chaosplane.probes import Observation
from chaosplane.runs import Runs
from chaosplane.runs.checks import AlarmRef, AlarmState, alarms_of, metrics_of, unfound_alarms
from chaosplane.settings import Settings
from chaosplane.tenancy import (
    SESSION_TEAM_TAG,
    STACK_TAG,
    TEAM_TAG,
    Boundary,
    Environment,
    Outside,
    Place,
    PlatformSelf,
    Scope,
    TeamSettings,
)
from chaosplane.wiring.families import environment_identities, environment_reach, team_identities
from tests.fakes.clock import FakeClock
from tests.fakes.families import FakeInstances
from tests.fakes.store import InMemoryStore
from tests.fakes.workflow import FakeWorkflow

PLATFORM = PlatformSelf(stack_name="chaosplane", ids=frozenset({"arn:aws:sqs:us-east-1:1:chaosplane-dlq"}))


def instance(id_: str, **labels: str) -> Resource:
    return Resource(id_, "ec2:instance", "running", labels=labels)


@pytest.mark.parametrize(
    ("resource", "boundary", "outside"),
    [
        (instance("i-1", **{TEAM_TAG: "red"}), Boundary.TAG, None),
        (instance("i-2", **{TEAM_TAG: "blue"}), Boundary.TAG, Outside.BOUNDARY),
        (instance("i-3"), Boundary.TAG, Outside.BOUNDARY),  # untagged: nobody's, so not red's
        (instance("i-4", **{TEAM_TAG: "Red"}), Boundary.TAG, Outside.BOUNDARY),  # exact, as tags are
        (instance("i-3"), Boundary.ACCOUNT, None),
        (instance("i-2", **{TEAM_TAG: "blue"}), Boundary.ACCOUNT, None),
        # The platform's own, in every boundary: by its stack's tag, its functions' names, named ids.
        (instance("i-5", **{TEAM_TAG: "red", STACK_TAG: "chaosplane"}), Boundary.TAG, Outside.PLATFORM),
        (instance("i-5", **{STACK_TAG: "chaosplane"}), Boundary.ACCOUNT, Outside.PLATFORM),
        (
            Resource("chaosplane-ExecutorFunction-AbC1", "lambda:function", "Active"),
            Boundary.ACCOUNT,
            Outside.PLATFORM,
        ),
        (
            Resource("dlq", "sqs:queue", "ok", detail={"arn": "arn:aws:sqs:us-east-1:1:chaosplane-dlq"}),
            Boundary.ACCOUNT,
            Outside.PLATFORM,
        ),
        (Resource("shop-api", "lambda:function", "Active"), Boundary.ACCOUNT, None),
        # Another stack's tag is not ours.
        (instance("i-6", **{STACK_TAG: "chaosplane-staging"}), Boundary.ACCOUNT, None),
        # An endpoint a team registers is its own by registering it.
        (Resource("https://shop.example/", "http:endpoint", "reachable"), Boundary.TAG, None),
    ],
)
def test_what_a_team_may_act_on(resource: Resource, boundary: Boundary, outside: Outside | None) -> None:
    assert Scope("red", boundary, PLATFORM).outside(resource) is outside


def test_a_pod_is_the_team_s_by_its_namespace_label_never_by_its_own() -> None:
    scope = Scope("red", Boundary.TAG, PLATFORM)
    in_reds = Resource("web-1", "k8s:pod", "Running", labels={}, scope_labels={TEAM_TAG: "red"})
    claims_red = Resource("web-2", "k8s:pod", "Running", labels={TEAM_TAG: "red"}, scope_labels={})
    assert scope.outside(in_reds) is None
    assert scope.outside(claims_red) is Outside.BOUNDARY


# -- planning over a fleet of three teams' instances -----------------------------------------------


@pytest.fixture
def fleet() -> tuple[InMemoryStore, FakeInstances, Runs]:
    clock = FakeClock()
    store = InMemoryStore(clock)
    family = FakeInstances()
    family.add(2)  # red's
    family.add(3, **{TEAM_TAG: "blue"})
    family.add(1, **{TEAM_TAG: ""})  # untagged in effect
    family.add(1, **{STACK_TAG: "chaosplane"})  # red-tagged, but made by the platform's stack
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100, "max_resources": 100})
    workflow = FakeWorkflow()
    runs = Runs(
        store,
        lambda fault: family,
        start_workflow=workflow.start,
        clock=clock,
        rng=random.Random(1),
        platform=PLATFORM,
    )
    return store, family, runs


def test_a_match_everything_target_previews_only_the_team_s_own_and_counts_the_rest(
    fleet: tuple[InMemoryStore, FakeInstances, Runs],
) -> None:
    store, _, runs = fleet
    everything = store.add_target()  # app=web: every instance of the fleet
    experiment = store.add_experiment(everything, selection="ALL")

    preview = runs.preview(experiment.id, team="red")

    assert [r.id for r in preview.selected] == ["i-0000", "i-0001"]
    assert preview.eligible_not_selected == [] and preview.excluded == []
    assert preview.outside == {Outside.BOUNDARY.value: 4, Outside.PLATFORM.value: 1}
    listed = str(preview.model_dump())
    assert "blue" not in listed and "i-0002" not in listed  # never listed, labels or ids


def test_a_run_never_touches_what_is_not_the_team_s(fleet: tuple[InMemoryStore, FakeInstances, Runs]) -> None:
    store, family, runs = fleet
    experiment = store.add_experiment(store.add_target(), selection="ALL")
    run = runs.start(experiment.id, team="red")
    runs.prepare(None, run.id)
    runs.advance(run.id)
    assert sorted(i for i, s in family.states.items() if s == "stopped") == ["i-0000", "i-0001"]


def test_another_team_s_resource_ids_are_refused_without_saying_whose(
    fleet: tuple[InMemoryStore, FakeInstances, Runs],
) -> None:
    store, family, runs = fleet
    reds, blues = "i-00000000000000aa", "i-00000000000000bb"
    family.states |= {reds: "running", blues: "running"}
    family.labels |= {reds: {TEAM_TAG: "red"}, blues: {TEAM_TAG: "blue"}}
    named = store.add_target(selector=None, resource_ids=[reds, blues])
    experiment = store.add_experiment(named, selection="ALL")

    preview = runs.preview(experiment.id, team="red")

    assert not preview.verdict.allowed
    assert "1 of the target's resource ids are not the team's to act on" in preview.verdict.reasons
    assert "blue" not in str(preview.model_dump())
    for plan_id in (preview.plan_id, None):  # the previewed plan, or one the run makes itself
        run = runs.start(experiment.id, team="red", plan_id=plan_id)
        with pytest.raises(PolicyRefused, match="resource ids are not the team's"):
            runs.prepare(None, run.id)
        runs.finalize(run.id, None, None)
    assert set(family.states.values()) == {"running"}


def test_an_account_boundary_reaches_every_team_s_resources_but_never_the_platform_s(
    fleet: tuple[InMemoryStore, FakeInstances, Runs],
) -> None:
    store, _, runs = fleet
    store.settings["red"] = TeamSettings(boundary=Boundary.ACCOUNT)
    experiment = store.add_experiment(store.add_target(), selection="ALL")

    preview = runs.preview(experiment.id, team="red")

    assert len(preview.selected) == 6 and "i-0006" not in {r.id for r in preview.selected}
    assert preview.outside == {Outside.PLATFORM.value: 1}


def test_a_tag_boundary_run_changes_and_restores_as_the_team_and_an_account_one_as_itself() -> None:
    clock, store = FakeClock(), InMemoryStore(FakeClock())
    own, reds = FakeInstances(), FakeInstances()
    reds.add(2)  # the same instances, as the team's session sees them
    own.states, own.labels = reds.states, reds.labels
    asked: list[str] = []

    def acting_as(team: str) -> Callable[[FaultType], FakeInstances]:
        asked.append(team)
        return lambda fault: reds

    workflow = FakeWorkflow()
    runs = Runs(store, lambda fault: own, start_workflow=workflow.start, clock=clock, acting_as=acting_as)
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100, "max_resources": 100})
    experiment = store.add_experiment(store.add_target(), selection="ALL")

    for boundary, acted_by in [(Boundary.TAG, reds), (Boundary.ACCOUNT, own)]:
        store.settings["red"] = TeamSettings(boundary=boundary)
        run = runs.start(experiment.id, team="red")
        runs.prepare(None, run.id)
        runs.advance(run.id)
        store.settings["red"] = TeamSettings(boundary=Boundary.ACCOUNT if acted_by is reds else Boundary.TAG)
        runs.rollback(run.id)  # as the run acted, whatever the team's boundary is now
        runs.finalize(run.id, None, None)
        other = own if acted_by is reds else reds
        assert sorted(acted_by.injected_with) == sorted(acted_by.restored) == ["i-0000", "i-0001"]
        assert other.injected_with == {} and other.restored == []
        acted_by.injected_with.clear()
        acted_by.restored.clear()
    assert set(asked) == {"red"}


class _Clients:
    """Stands for the function's clients: each assumed session is one of these, made once."""

    def __init__(self, name: str) -> None:
        self.name, self.sessions = name, []
        self.ec2, self.secretsmanager = f"{name}-ec2", f"{name}-secrets"
        self.eks, self.sts = f"{name}-eks", f"{name}-sts"

    def assuming(self, role_arn: str, *, session_name: str, tags: dict[str, str], **where: Any) -> _Clients:
        self.sessions.append((role_arn, session_name, tags, *where.values()))
        return _Clients(session_name)


def test_each_team_acts_in_its_own_session_of_the_team_role_but_pods_and_endpoints_as_the_function() -> None:
    settings = Settings.model_validate(
        {name: "x" for name in ("targets_table", "experiments_table", "results_table", "journal_table")}
        | {"audit_table": "x", "teams_table": "x", "plans_table": "x", "webhook_secret_prefix": "p/"}
        | {"aws_region": "us-east-1", "team_fault_role_arn": "arn:aws:iam::1:role/chaosplane-team-faults"}
    )
    own = _Clients("own")
    families = team_identities(own, settings, clusters=lambda: None)  # type: ignore[arg-type]
    assert families is not None

    assert families("red")(FaultType.EC2_STOP)._ec2 == "chaosplane-red-ec2"
    assert families("red")(FaultType.EC2_REBOOT)._ec2 == "chaosplane-red-ec2"
    assert families("blue")(FaultType.EC2_STOP)._ec2 == "chaosplane-blue-ec2"
    assert own.sessions == [  # once per team, with the team as the session tag
        ("arn:aws:iam::1:role/chaosplane-team-faults", "chaosplane-red", {SESSION_TEAM_TAG: "red"}),
        ("arn:aws:iam::1:role/chaosplane-team-faults", "chaosplane-blue", {SESSION_TEAM_TAG: "blue"}),
    ]
    webhook = families("red")(FaultType.HTTP_WEBHOOK)
    assert webhook._secrets._client == "own-secrets"  # the team's by registering it: the function's own
    assert team_identities(own, settings.model_copy(update={"team_fault_role_arn": None})) is None


STAGING = Environment(
    name="staging",
    account_id="222222222222",
    regions=["eu-west-1", "eu-central-1"],
    role_arn="arn:aws:iam::222222222222:role/chaosplane-target",
)


def test_an_environment_s_role_is_assumed_with_the_team_s_external_id_and_session_tag_once_per_region() -> (
    None
):
    settings = Settings.model_validate(
        {name: "x" for name in ("targets_table", "experiments_table", "results_table", "journal_table")}
        | {"audit_table": "x", "teams_table": "x", "plans_table": "x", "webhook_secret_prefix": "p/"}
        | {"aws_region": "us-east-1"}
    )
    own = _Clients("own")
    in_place = environment_identities(environment_reach(own, settings), settings)  # type: ignore[arg-type]
    west, central = Place(STAGING, "eu-west-1", "ext-red"), Place(STAGING, "eu-central-1", "ext-red")
    assert in_place("red", west)(FaultType.EC2_STOP)._ec2 == "chaosplane-red-staging-ec2"
    in_place("red", west)(FaultType.EC2_REBOOT)
    # Pods too: the environment's clusters are reached as its role (DescribeCluster, and the
    # token signed by its STS), never as the platform's function.
    eks = in_place("red", west)(FaultType.POD_DELETE)._clusters._eks
    assert (eks._eks, eks._sts) == ("chaosplane-red-staging-eks", "chaosplane-red-staging-sts")
    in_place("red", central)(FaultType.EC2_STOP)
    role = STAGING.role_arn
    assert own.sessions == [  # once per Region, with the ExternalId and the team as the session tag
        (role, "chaosplane-red-staging", {SESSION_TEAM_TAG: "red"}, "ext-red", "eu-west-1"),
        (role, "chaosplane-red-staging", {SESSION_TEAM_TAG: "red"}, "ext-red", "eu-central-1"),
    ]


@pytest.mark.parametrize(
    ("environment", "why"),
    [
        (
            {**STAGING.model_dump(), "role_arn": "arn:aws:iam::333333333333:role/x"},
            "a role of account 222222222222",
        ),
        ({**STAGING.model_dump(), "regions": []}, "at least 1 item"),
        ({**STAGING.model_dump(), "regions": ["mars-1"]}, "not Region names"),
        ({**STAGING.model_dump(), "account_id": "12"}, "should match pattern"),
    ],
)
def test_an_environment_names_its_account_s_own_role_and_real_regions(environment: dict, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Environment.model_validate(environment)
    with pytest.raises(ValueError, match="duplicate names"):
        TeamSettings(environments=[STAGING, STAGING])


def test_a_run_in_an_environment_acts_and_rolls_back_there_even_once_the_environment_is_gone() -> None:
    store = InMemoryStore(FakeClock())
    here, there = FakeInstances(), FakeInstances()
    there.add(2)
    acted_in: list[tuple[str, str, str]] = []

    def in_place(team: str, place: Place) -> Callable[[FaultType], FakeInstances]:
        acted_in.append((team, place.environment.name, place.region))
        return lambda fault: there

    runs = Runs(store, lambda fault: here, start_workflow=FakeWorkflow().start, in_place=in_place)
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100, "max_resources": 100})
    store.settings["red"] = TeamSettings(environments=[STAGING], external_id="ext-red")
    experiment = store.add_experiment(
        store.add_target(environment="staging", region="eu-central-1"), selection="ALL"
    )
    run = runs.start(experiment.id, team="red")
    runs.prepare(None, run.id)
    runs.advance(run.id)
    store.settings["red"] = TeamSettings()  # the environment is taken away mid-run...
    runs.rollback(run.id)  # ...and the rollback still acts where the run did
    runs.finalize(run.id, None, None)
    assert sorted(there.injected_with) == sorted(there.restored) == ["i-0000", "i-0001"]
    assert here.injected_with == {} and here.restored == []
    assert set(acted_in) == {("red", "staging", "eu-central-1")}
    # A new run of it is refused: it is never run in the platform's own account instead.
    with pytest.raises(PreflightFailed, match="team red has no environment staging"):
        runs.prepare(None, runs.start(experiment.id, team="red").id)


# -- an environment's alarms: stop conditions by ARN, read there and halting only there -------------

HOME = PlatformSelf(stack_name="chaosplane", account_id="111111111111", region="us-east-1")
FAR = "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:shop-5xx"  # STAGING's, in one of its Regions


def test_an_alarm_reference_is_a_name_or_an_arn_s_account_region_and_name() -> None:
    assert AlarmRef.of("shop-5xx") == AlarmRef("shop-5xx")
    assert AlarmRef.of(FAR) == AlarmRef("shop-5xx", "222222222222", "eu-west-1")
    assert AlarmRef.of("arn:aws-cn:cloudwatch:cn-north-1:333333333333:alarm:a:b") == AlarmRef(
        "a:b", "333333333333", "cn-north-1"
    )


class _Alarms:
    """CloudWatch of each account and Region: alarms by name, and who asked for which."""

    def __init__(self) -> None:
        self.where: dict[tuple[str, str], dict[str, AlarmState]] = {}
        self.asked: list[tuple[str, str, list[str]]] = []

    def reader(self, account: str, region: str) -> Callable[[list[str]], dict[str, AlarmState]]:
        def read(names: list[str]) -> dict[str, AlarmState]:
            self.asked.append((account, region, names))
            alarms = self.where.get((account, region), {})
            return {n: alarms[n] for n in names if n in alarms}

        return read


def test_a_team_reads_its_environments_alarms_there_by_arn_and_nobody_else_s() -> None:
    cloudwatch = _Alarms()
    red = AlarmState("OK", team="red")
    cloudwatch.where[("111111111111", "us-east-1")] = {
        "shop-5xx": red,
        "blue-5xx": AlarmState("OK", team="blue"),
    }
    cloudwatch.where[("222222222222", "eu-west-1")] = {"shop-5xx": AlarmState("ALARM", "far", team="red")}
    cloudwatch.where[("222222222222", "us-west-2")] = {"shop-5xx": red}  # not one of its Regions
    cloudwatch.where[("333333333333", "eu-west-1")] = {"shop-5xx": red}  # not one of its accounts
    scope = Scope("red", Boundary.TAG, HOME, TeamSettings(environments=[STAGING], external_id="ext"))
    read_in: list[tuple[str, str, str]] = []

    def in_place(team: str, place: Place) -> Callable[[list[str]], dict[str, AlarmState]]:
        read_in.append((team, place.environment.name, place.external_id))
        return cloudwatch.reader(place.environment.account_id, place.region)

    here = "arn:aws:cloudwatch:us-east-1:111111111111:alarm:shop-5xx"
    other_region = FAR.replace("eu-west-1", "us-west-2")
    elsewhere = FAR.replace("222222222222", "333333333333")
    references = ["shop-5xx", here, FAR, other_region, elsewhere, "blue-5xx"]
    read = alarms_of(scope, cloudwatch.reader("111111111111", "us-east-1"), in_place)
    assert read is not None

    found = read(references)

    assert found == {"shop-5xx": red, here: red, FAR: AlarmState("ALARM", "far", team="red")}
    assert read_in == [("red", "staging", "ext")]  # as the team, with its ExternalId
    assert sorted(cloudwatch.asked) == [  # one read where each is, by name; none anywhere else
        ("111111111111", "us-east-1", ["shop-5xx", "blue-5xx"]),
        ("222222222222", "eu-west-1", ["shop-5xx"]),
    ]
    # The same answer as missing ones, in every check of a run's alarms.
    assert unfound_alarms(references, read) == [
        f"alarm {other_region} does not exist",
        f"alarm {elsewhere} does not exist",
        "alarm blue-5xx does not exist",
    ]

    # An environment that cannot be read (its role denied) finds none of its alarms, and only those.
    def denied(team: str, place: Place) -> Callable[[list[str]], dict[str, AlarmState]]:
        raise RuntimeError("AccessDenied: sts:AssumeRole")

    unreadable = alarms_of(scope, cloudwatch.reader("111111111111", "us-east-1"), denied)
    assert set(unreadable([FAR, "shop-5xx"])) == {"shop-5xx"}  # type: ignore[misc]
    # A component that reads no other account finds none of them.
    assert set(alarms_of(scope, cloudwatch.reader("111111111111", "us-east-1"))([FAR, "shop-5xx"])) == {  # type: ignore[misc]
        "shop-5xx"
    }


def test_the_metrics_of_a_team_s_stop_conditions_are_read_where_each_alarm_is() -> None:
    scope = Scope("red", Boundary.TAG, HOME, TeamSettings(environments=[STAGING], external_id="ext"))

    def reader(where: str) -> Any:
        def read(names: list[str], start: Any, end: Any) -> list[dict[str, Any]]:
            return [{"alarm": n, "timestamps": ["t"], "values": [1.0], "label": where} for n in names]

        return read

    read = metrics_of(scope, reader("home"), lambda team, place: reader(place.region))
    elsewhere = FAR.replace("222222222222", "333333333333")

    series = read(["shop-5xx", FAR, elsewhere], None, None)  # type: ignore[arg-type]

    assert [(s["alarm"], s.get("label"), s["values"]) for s in series] == [
        ("shop-5xx", "home", [1.0]),
        (FAR, "eu-west-1", [1.0]),
        (elsewhere, None, []),  # no account of the team's: nothing read, and said so
    ]
    assert series[2]["note"] == "alarm not found"


@pytest.mark.parametrize(
    ("account", "region", "halts"),
    [
        ("222222222222", "eu-west-1", {"by-arn"}),  # forwarded from the environment
        ("111111111111", "us-east-1", {"by-name"}),  # the platform's own
        ("333333333333", "eu-west-1", set()),  # a same-named alarm of someone else's account
        (None, None, {"by-name", "by-arn"}),  # an event that does not say where (older guards)
    ],
)
def test_an_alarm_event_halts_the_runs_that_name_that_alarm_where_it_is(
    account: str | None, region: str | None, halts: set[str]
) -> None:
    store = InMemoryStore(FakeClock())
    family = FakeInstances()
    family.add(2)
    workflow = FakeWorkflow()
    settings = TeamSettings(environments=[STAGING], external_id="ext")
    runs = Runs(
        store,
        lambda fault: family,
        start_workflow=workflow.start,
        send_halt=workflow.halt,
        alarms=lambda names: {n: AlarmState("OK", team="red") for n in names},
        alarms_in=lambda team, place: lambda names: {n: AlarmState("OK", team="red") for n in names},
        platform=HOME,
    )
    store.settings["red"] = settings
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100})
    started = {  # a target each: one run at a time holds a target
        name: runs.start(store.add_experiment(store.add_target(), stop_conditions=[alarm]).id, team="red").id
        for name, alarm in (("by-name", "shop-5xx"), ("by-arn", FAR))
    }

    halted = runs.on_alarm("shop-5xx", "Threshold Crossed", account=account, region=region)

    assert set(halted) == {started[name] for name in halts}
    for name, alarm in (("by-name", "shop-5xx"), ("by-arn", FAR)):  # each halt names its own alarm
        if name in halts:
            reason = store.get_result(started[name], team="red").stop_reason
            assert reason == f"stop condition {alarm} went into ALARM: Threshold Crossed", reason


class _Asked:
    """Probe readers of one place, noting each probe asked there."""

    def __init__(self, where: str, asked: list[tuple[str, str]]) -> None:
        self.where, self.asked = where, asked

    def observe(self, probe: Any) -> Observation:
        self.asked.append((self.where, probe.name))
        return Observation(True, 0.0, "fine")


def test_a_probe_in_an_environment_is_asked_there_and_a_run_is_refused_once_it_is_gone() -> None:
    clock = FakeClock()
    store = InMemoryStore(clock)
    family = FakeInstances()
    family.add(2)
    asked: list[tuple[str, str]] = []
    runs = Runs(
        store,
        lambda fault: family,
        start_workflow=FakeWorkflow().start,
        clock=clock,
        probes=_Asked("home", asked),
        probes_in=lambda team, place: _Asked(f"{team}@{place.environment.name}/{place.region}", asked),
    )
    store.settings["red"] = TeamSettings(environments=[STAGING], external_id="ext")
    store.policies["red"] = store.policy("red").model_copy(update={"max_percent": 100})
    errors = {"source": "cloudwatch-metric", "namespace": "Shop", "metric_name": "5xx", "mode": "before"}
    errors |= {"comparison": "<", "threshold": 1}
    probes = [  # the far one before the faults and after them (edge), the near one before
        {**errors, "name": "far", "environment": "staging", "region": "eu-central-1", "mode": "edge"},
        {**errors, "name": "near"},
    ]
    experiment = store.add_experiment(store.add_target(), probes=probes)
    run = runs.start(experiment.id, team="red")
    runs.prepare(None, run.id)
    runs.advance(run.id)
    runs.rollback(run.id)
    assert runs.settle(run.id).done
    runs.finalize(run.id, None, None)

    far = ("red@staging/eu-central-1", "far")
    assert sorted(asked) == [("home", "near"), far, far]  # before and after the faults, there
    store.settings["red"] = TeamSettings()  # the environment is taken away: no run asks it there
    refusal = "probe far: team red has no environment staging (PUT /teams/red)"
    assert refusal in runs.preview(experiment.id, team="red").verdict.reasons
    with pytest.raises(PreflightFailed, match=re.escape(refusal)):
        runs.prepare(None, runs.start(experiment.id, team="red").id)
