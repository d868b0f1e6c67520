"""Steady-state probes, and the verdict of a run: did the system under test hold?

A probe asks one question of the system under test, on its `interval`, within its `timeout`:
an HTTP endpoint answers as expected, a PromQL query or a CloudWatch metric is on the right side
of a threshold, a Deployment has its ready replicas. It fails once `tolerance` evaluations in a
row have failed (one slow answer is not an outage). Its `mode` says when it is asked:

- `before`: the steady state, before anything is injected; a failure refuses the run;
- `during`: while faults are held; a failure with `stop_on_failure` halts the run, as an alarm does;
- `after`: once everything is rolled back, until it passes or its settle window is over;
- `edge`: before and after.

A run's verdict is `passed` when every probe was asked in each of its phases and none failed,
`failed` when one failed, and `inconclusive` otherwise, a run with no probe included: a run that
only "completed" proves nothing about the system.

This module is pure: probes are models, evaluations are data, and what reads the world (an HTTP
client, Prometheus, CloudWatch, Kubernetes) comes in as a `Readers` port. The HTTP and Prometheus
readers at the end use `requests`, imported when first used.
"""

from __future__ import annotations

import functools
import json
import operator
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from chaosplane.models import (
    MAX_KEPT_EVALUATIONS,
    MAX_PROBES,
    WEBHOOK_URL_PATTERN,
    Alarm,
    Evaluation,
    Phase,
    Placed,
    ProbeRecord,
    Verdict,
    check_webhook_url,
)

MAX_SETTLE_SECONDS = 900
MAX_PROBED_BODY = 65536
"""How much of an HTTP probe's body its checks read."""
PROBE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ProbeMode(StrEnum):
    BEFORE = "before"
    DURING = "during"
    AFTER = "after"
    EDGE = "edge"

    def phases(self) -> tuple[Phase, ...]:
        return {
            ProbeMode.BEFORE: (Phase.BEFORE,),
            ProbeMode.DURING: (Phase.DURING,),
            ProbeMode.AFTER: (Phase.AFTER,),
            ProbeMode.EDGE: (Phase.BEFORE, Phase.AFTER),
        }[self]


class Comparison(StrEnum):
    """How a value is held to the threshold: the probe passes while `value <op> threshold`."""

    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="

    def holds(self, value: float, threshold: float) -> bool:
        ops: dict[Comparison, Callable[[float, float], bool]] = {
            Comparison.LT: operator.lt,
            Comparison.LE: operator.le,
            Comparison.GT: operator.gt,
            Comparison.GE: operator.ge,
            Comparison.EQ: operator.eq,
            Comparison.NE: operator.ne,
        }
        return ops[self](value, threshold)


class _Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=PROBE_NAME)]
    interval: float = Field(default=10, ge=1, le=300, description="seconds between two evaluations")
    timeout: float = Field(
        default=5, ge=0.1, le=30, description="seconds one evaluation may take (at most the interval)"
    )
    tolerance: StrictInt = Field(
        default=1, ge=1, le=20, description="failed evaluations in a row before the probe counts as failed"
    )
    mode: ProbeMode = ProbeMode.DURING
    stop_on_failure: bool = Field(default=True, description="a `during` failure halts the run")
    settle: float = Field(
        default=60,
        ge=0,
        le=MAX_SETTLE_SECONDS,
        description="`after` and `edge`: seconds the system has to recover once rolled back",
    )

    @model_validator(mode="before")
    @classmethod
    def _timeout_defaults_within_interval(cls, data: Any) -> Any:
        # Five seconds, or the interval when that is shorter: `interval: 1` alone is valid.
        if isinstance(data, dict) and "timeout" not in data and isinstance(data.get("interval"), int | float):
            return {**data, "timeout": min(5, data["interval"])}
        return data

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> _Probe:
        if self.timeout > self.interval:
            raise ValueError("timeout must not be longer than interval")
        return self


class _Threshold(_Probe):
    comparison: Comparison = Field(description="the probe passes while `value <comparison> threshold`")
    threshold: float


class CloudWatchAlarmProbe(_Probe):
    """A CloudWatch alarm: passes while it is not in ALARM (halted through the alarm's event)."""

    source: Literal["cloudwatch-alarm"]
    alarm: Alarm


class MetricDimension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    value: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class CloudWatchMetricProbe(Placed, _Threshold):
    """A CloudWatch metric, or a metric-math expression, against a threshold; no alarm needed."""

    source: Literal["cloudwatch-metric"]
    namespace: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    metric_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    dimensions: list[MetricDimension] = Field(default_factory=list, max_length=30)
    statistic: Literal["Average", "Sum", "Minimum", "Maximum", "SampleCount", "p50", "p90", "p99"] = "Average"
    expression: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = Field(
        default=None, description="metric math (e.g. a SEARCH or a ratio) instead of one metric"
    )
    period: StrictInt = Field(default=60, ge=10, le=3600, description="seconds per datapoint")

    @model_validator(mode="after")
    def _one_metric_or_an_expression(self) -> CloudWatchMetricProbe:
        one_metric = self.namespace is not None and self.metric_name is not None
        if one_metric == (self.expression is not None):
            raise ValueError("give namespace and metric_name, or an expression (not both)")
        if self.expression is not None and self.dimensions:
            raise ValueError("dimensions go with a metric, not with an expression")
        return self


ProbeUrl = Annotated[
    str,
    StringConstraints(min_length=8, max_length=2048),
    Field(json_schema_extra={"pattern": WEBHOOK_URL_PATTERN}),
    AfterValidator(check_webhook_url),
]
"""Outbound probe URLs follow the webhooks' URL policy."""


class PrometheusProbe(_Threshold):
    """A PromQL instant query against a Prometheus HTTP API (any Prometheus, or Amazon Managed
    Prometheus with `sigv4_region`), its one value held to the threshold."""

    source: Literal["prometheus"]
    url: ProbeUrl = Field(description="the server's base URL, e.g. https://prom.example:9090")
    query: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    sigv4_region: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")] | None = Field(
        default=None, description="sign the request for Amazon Managed Prometheus in this Region"
    )


class HttpProbe(_Probe):
    """An HTTP endpoint: passes on an expected status, within a latency, with a body that matches."""

    source: Literal["http"]
    url: ProbeUrl
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expected_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=lambda: [200], min_length=1, max_length=20
    )
    max_latency_ms: float | None = Field(default=None, gt=0, le=30000)
    body_regex: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    body_jsonpath: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        default=None,
        description="a JSONPath into the JSON body, e.g. $.checks[*].status; it must match something",
    )
    body_equals: Any = Field(
        default=None,
        description='with body_jsonpath: the JSON value every match must equal, e.g. "up"',
    )

    @field_validator("body_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"body_regex does not compile: {err}") from None
        return value

    @field_validator("body_jsonpath")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            _jsonpath(value)
        return value

    @model_validator(mode="after")
    def _equals_needs_a_path(self) -> HttpProbe:
        if self.body_equals is not None and self.body_jsonpath is None:
            raise ValueError("body_equals needs body_jsonpath")
        if len(json.dumps(self.body_equals)) > 1024:
            raise ValueError("body_equals is over 1024 characters of JSON")
        return self


class KubernetesProbe(Placed, _Probe):
    """Ready replicas of a Deployment or StatefulSet at least `min_ready`, or no pod of `selector`
    in CrashLoopBackOff."""

    source: Literal["kubernetes"]
    cluster: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    check: Literal["ready-replicas", "no-crashloop"]
    kind: Literal["Deployment", "StatefulSet"] | None = None
    workload: Annotated[str, StringConstraints(min_length=1, max_length=253)] | None = None
    min_ready: StrictInt | None = Field(default=None, ge=0, le=10000)
    selector: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None

    @model_validator(mode="after")
    def _what_it_checks(self) -> KubernetesProbe:
        if self.check == "ready-replicas":
            if self.kind is None or self.workload is None or self.min_ready is None:
                raise ValueError("ready-replicas needs kind, workload and min_ready")
            if self.selector is not None:
                raise ValueError("ready-replicas takes no selector")
        elif self.selector is None or self.kind or self.workload or self.min_ready is not None:
            raise ValueError("no-crashloop needs a selector, and only that")
        return self


Probe = Annotated[
    CloudWatchAlarmProbe | CloudWatchMetricProbe | PrometheusProbe | HttpProbe | KubernetesProbe,
    Discriminator("source"),
]
"""A stop condition or probe, tagged by `source`."""


def _unique_names(probes: list[_Probe]) -> list[_Probe]:
    names = [p.name for p in probes]
    if len(set(names)) != len(names):
        raise ValueError("probe names must be unique (the verdict and the charts go by name)")
    return probes


Probes = Annotated[
    list[Probe],
    Field(max_length=MAX_PROBES, description="steady-state probes, by `source`"),
    AfterValidator(_unique_names),
]
"""An experiment's probes (one fault's or many steps')."""

_PROBES: TypeAdapter[list[_Probe]] = TypeAdapter(Probes)


def parse_probes(values: Sequence[Mapping[str, Any]]) -> list[_Probe]:
    """The probes an experiment or a run keeps as JSON, as models."""
    return _PROBES.validate_python(list(values))


def canonical_probes(values: Sequence[Any]) -> list[dict[str, Any]]:
    """Probes checked and written out with their defaults: what the store keeps."""
    return [p.model_dump(mode="json") for p in _PROBES.validate_python(list(values))]


def probe_alarms(values: Sequence[Mapping[str, Any]]) -> list[str]:
    """The alarms of every `cloudwatch-alarm` probe, whatever its mode."""
    return [str(v["alarm"]) for v in values if v.get("source") == "cloudwatch-alarm"]


def halting_alarms(values: Sequence[Mapping[str, Any]]) -> list[str]:
    """The alarms of `cloudwatch-alarm` probes that halt a run while faults are held."""
    return [
        str(v["alarm"])
        for v in values
        if v.get("source") == "cloudwatch-alarm"
        and v.get("stop_on_failure", True)
        and v.get("mode", ProbeMode.DURING.value) == ProbeMode.DURING.value
    ]


# -- evaluations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """One answer to a probe's question."""

    ok: bool
    value: float | None = None
    detail: str = ""


class Readers(Protocol):
    """What asks the world a probe's question (each within the probe's timeout)."""

    def observe(self, probe: _Probe) -> Observation: ...


def evaluate(
    probe: _Probe, record: ProbeRecord, readers: Readers, phase: Phase, now: Callable[[], datetime]
) -> bool:
    """Ask `probe` once in `phase`, keep the answer in `record`; True once it has failed
    (`tolerance` failures in a row, before or during faults; after them, failures are the
    recovery under way, and only the settle window running out fails it: `check_phase`).
    A reader that raises is a failed evaluation, not a crash."""
    started = time.monotonic()
    try:
        observed = readers.observe(probe)
    except Exception as err:  # a probe that cannot be asked counts against the steady state
        observed = Observation(ok=False, detail=f"{type(err).__name__}: {err}"[:300])
    took = time.monotonic() - started
    if observed.ok and took > probe.timeout:
        observed = Observation(ok=False, value=observed.value, detail=f"answered after {took:.1f}s")
    record.evaluations.append(
        Evaluation(at=now(), phase=phase, ok=observed.ok, value=observed.value, detail=observed.detail)
    )
    del record.evaluations[:-MAX_KEPT_EVALUATIONS]
    if record.failed_in is None and phase is not Phase.AFTER and record.streak(phase) >= probe.tolerance:
        record.failed_in, record.failed_at = phase, record.evaluations[-1].at
    return record.failed_in is not None


def verdict(probes: Iterable[_Probe], records: Mapping[str, ProbeRecord]) -> Verdict:
    """`failed` if a probe failed during or after the faults; `passed` if every probe was
    evaluated in each of its phases and none failed; otherwise `inconclusive`: no probe, one
    never asked (a run halted before its `after`), or a steady state that did not hold before
    anything was injected (the run was refused, and tested nothing)."""
    listed = list(probes)
    if any(r.failed_in in (Phase.DURING, Phase.AFTER) for r in records.values()):
        return Verdict.FAILED
    if any(r.failed_in is Phase.BEFORE for r in records.values()):
        return Verdict.INCONCLUSIVE
    if not listed:
        return Verdict.INCONCLUSIVE
    for probe in listed:
        record = records.get(probe.name)
        asked = {e.phase for e in record.evaluations} if record else set()
        if not set(probe.mode.phases()) <= asked:
            return Verdict.INCONCLUSIVE
    return Verdict.PASSED


def due(
    probes: Iterable[_Probe], records: Mapping[str, ProbeRecord], phase: Phase, now: datetime
) -> list[_Probe]:
    """The probes of `phase` whose interval has passed since their last evaluation in it."""
    ready = []
    for probe in probes:
        if phase not in probe.mode.phases():
            continue
        record = records.get(probe.name)
        last = (
            next((e.at for e in reversed(record.evaluations) if e.phase is phase), None) if record else None
        )
        if last is None or (now - last).total_seconds() >= probe.interval:
            ready.append(probe)
    return ready


@dataclass(frozen=True)
class PhaseCheck:
    """What one look at a phase's probes found."""

    asked: list[str]
    """The probes evaluated in this look."""
    failed: list[str]
    """The probes that have failed in this phase (this look, or an earlier one)."""
    wake_in: float | None
    """Seconds until a probe of the phase is due again; None: the phase has nothing left to ask."""


def check_phase(
    probes: Iterable[_Probe],
    records: dict[str, ProbeRecord],
    readers: Readers,
    phase: Phase,
    now: Callable[[], datetime],
    *,
    since: datetime | None = None,
) -> PhaseCheck:
    """Ask the phase's due probes, and say what failed and when to look again.

    - before: each probe until it passes once (the steady state holds) or fails;
    - during: each probe on its interval, as long as it has not failed;
    - after: each probe until it passes, within its `settle` seconds from `since` (the rollback's
      end); one that has not passed by then fails.
    """
    mine = [p for p in probes if phase in p.mode.phases()]
    for probe in mine:
        records.setdefault(probe.name, ProbeRecord(name=probe.name))

    def open_(probe: _Probe) -> bool:
        record = records[probe.name]
        if record.failed_in is not None:
            return False
        return phase is Phase.DURING or not record.passed_in(phase)

    asked = due([p for p in mine if open_(p)], records, phase, now())
    for probe in asked:
        evaluate(probe, records[probe.name], readers, phase, now)
    at = now()
    waits: list[float] = []
    for probe in mine:
        if not open_(probe):
            continue
        if phase is Phase.AFTER:
            window_ends = (since or at) + timedelta(seconds=probe.settle)
            if at >= window_ends:
                record = records[probe.name]
                record.failed_in, record.failed_at = Phase.AFTER, at
                last = record.last_in(Phase.AFTER)
                record.evaluations.append(
                    Evaluation(
                        at=at,
                        phase=Phase.AFTER,
                        ok=False,
                        value=None,
                        detail=f"not recovered within {probe.settle:g}s"
                        + (f" (last: {last.detail})" if last and last.detail else ""),
                    )
                )
                continue
            waits.append((window_ends - at).total_seconds())
        last_at = records[probe.name].last_in(phase)
        next_due = probe.interval - ((at - last_at.at).total_seconds() if last_at else probe.interval)
        waits.append(max(0.0, next_due))
    failed = [p.name for p in mine if records[p.name].failed_in is phase]
    return PhaseCheck(asked=[p.name for p in asked], failed=failed, wake_in=min(waits) if waits else None)


class ProbeReaders:
    """The `Readers` port over real clients, each made when a probe first needs it: an HTTP
    session, CloudWatch metrics, Kubernetes clients by cluster name, and AWS credentials for
    Amazon Managed Prometheus. Alarm probes are read as their team sees its alarms
    (`TeamReaders`): by name or ARN, in the team's environments, within its boundary."""

    def __init__(
        self,
        *,
        session: Callable[[], Any],
        cloudwatch: Callable[[], Any] | None = None,
        kubernetes: Callable[[str], Any] | None = None,
        credentials: Callable[[], Any] | None = None,
        clock: Callable[[], datetime],
    ) -> None:
        self._session = session
        self._cloudwatch = cloudwatch
        self._kubernetes = kubernetes
        self._credentials = credentials
        self._clock = clock

    def observe(self, probe: _Probe) -> Observation:
        if isinstance(probe, HttpProbe):
            return observe_http(probe, self._session())
        if isinstance(probe, PrometheusProbe):
            signing = self._credentials() if probe.sigv4_region and self._credentials else None
            return observe_prometheus(probe, self._session(), signing)
        if isinstance(probe, CloudWatchMetricProbe):
            return observe_cloudwatch_metric(probe, self._needs(self._cloudwatch, probe)(), self._clock())
        if isinstance(probe, KubernetesProbe):
            from kubernetes import client as k8s

            api = self._needs(self._kubernetes, probe)(probe.cluster)
            return observe_kubernetes(probe, k8s.AppsV1Api(api), k8s.CoreV1Api(api))
        raise TypeError(f"no reader for probe {probe.name} ({type(probe).__name__})")

    @staticmethod
    def _needs(reader: Any, probe: _Probe) -> Any:
        if reader is None:
            raise RuntimeError(f"this component cannot read {probe.__class__.__name__} probes")
        return reader


class TeamReaders:
    """`readers` as a team asks: its alarm probes through the team's alarms (by the reference the
    probe names: chaosplane.runs.checks.alarms_of), and a probe in one of its environments through
    the readers there (`elsewhere`)."""

    def __init__(
        self,
        readers: Readers,
        alarms: Callable[[list[str]], Mapping[str, Any]] | None,
        elsewhere: Callable[[Placed], Readers] | None = None,
    ) -> None:
        self._readers = readers
        self._alarms = alarms
        self._elsewhere = elsewhere

    def observe(self, probe: _Probe) -> Observation:
        if isinstance(probe, CloudWatchAlarmProbe):
            if self._alarms is None:
                raise RuntimeError("this component cannot read CloudWatch alarms")
            states = self._alarms([probe.alarm])
            if probe.alarm not in states:
                return Observation(False, None, f"alarm {probe.alarm} does not exist")
            state = str(states[probe.alarm].state)
            return Observation(state != "ALARM", None, f"{probe.alarm} is {state}")
        if isinstance(probe, Placed) and probe.environment is not None:
            if self._elsewhere is None:
                raise RuntimeError("this component cannot read other accounts")
            return self._elsewhere(probe).observe(probe)
        return self._readers.observe(probe)


# -- readers: HTTP and Prometheus -------------------------------------------------------------------


def observe_http(probe: HttpProbe, session: Any) -> Observation:
    """One request, no redirect followed (a redirect to somewhere else is not the endpoint)."""
    started = time.monotonic()
    response = session.request(probe.method, probe.url, timeout=probe.timeout, allow_redirects=False)
    latency_ms = (time.monotonic() - started) * 1000
    if response.status_code not in probe.expected_status:
        return Observation(False, latency_ms, f"status {response.status_code}")
    if probe.max_latency_ms is not None and latency_ms > probe.max_latency_ms:
        return Observation(False, latency_ms, f"{latency_ms:.0f} ms, over {probe.max_latency_ms:.0f} ms")
    body = response.text[:MAX_PROBED_BODY]
    if probe.body_regex is not None and not re.search(probe.body_regex, body):
        return Observation(False, latency_ms, "the body does not match body_regex")
    if probe.body_jsonpath is not None:
        problem = _jsonpath_problem(probe, body)
        if problem:
            return Observation(False, latency_ms, problem)
    return Observation(True, latency_ms, f"status {response.status_code} in {latency_ms:.0f} ms")


def _jsonpath_problem(probe: HttpProbe, body: str) -> str | None:
    """Why the body fails `body_jsonpath` (and `body_equals`), or None when it holds. A body that is
    not JSON, a path that matches nothing, and any match that differs all fail: a health endpoint
    whose every component must be up reads `$.checks[*].status` equals "up"."""
    assert probe.body_jsonpath is not None
    try:
        document = json.loads(body)
    except ValueError:
        return "the body is not JSON"
    found = [match.value for match in _jsonpath(probe.body_jsonpath).find(document)]
    if not found:
        return f"{probe.body_jsonpath} matches nothing"
    if probe.body_equals is not None:
        wrong = [value for value in found if value != probe.body_equals]
        if wrong:
            found_text, wanted_text = json.dumps(wrong[0])[:100], json.dumps(probe.body_equals)[:100]
            return f"{probe.body_jsonpath} is {found_text}, not {wanted_text}"
    return None


@functools.lru_cache(maxsize=64)
def _jsonpath(expression: str) -> Any:
    """The parsed JSONPath (jsonpath-ng's extended grammar, with filters); a ValueError naming the
    problem when it does not parse. Parsing is slow next to matching, so each is parsed once."""
    from jsonpath_ng.exceptions import JSONPathError
    from jsonpath_ng.ext.parser import parse

    try:
        return parse(expression)
    except JSONPathError as err:
        raise ValueError(f"body_jsonpath does not parse: {err}") from None


def observe_prometheus(probe: PrometheusProbe, session: Any, credentials: Any = None) -> Observation:
    """An instant query; the probe holds its one sample to the threshold (none, or several: failed,
    as the question has no single answer). With `sigv4_region`, the request is signed with
    `credentials` (botocore's) for Amazon Managed Prometheus (service `aps`)."""
    from urllib.parse import urlencode

    # The query string is made once, and sent as signed: a signature covers it byte for byte.
    url = probe.url.rstrip("/") + "/api/v1/query?" + urlencode({"query": probe.query})
    headers: dict[str, str] = {}
    if probe.sigv4_region is not None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if credentials is None:
            raise RuntimeError(f"probe {probe.name} needs AWS credentials to sign its query")
        signed = AWSRequest(method="GET", url=url)
        SigV4Auth(credentials, "aps", probe.sigv4_region).add_auth(signed)
        headers = dict(signed.headers)
    response = session.get(url, headers=headers, timeout=probe.timeout, allow_redirects=False)
    if response.status_code != 200:
        return Observation(False, None, f"Prometheus answered {response.status_code}")
    body = response.json()
    if body.get("status") != "success":
        return Observation(False, None, f"query failed: {body.get('error', 'no reason given')}"[:300])
    data = body.get("data", {})
    if data.get("resultType") == "scalar":
        samples = [data.get("result")]
    else:
        samples = [r.get("value") for r in data.get("result", [])]
    if len(samples) != 1 or not samples[0]:
        return Observation(False, None, f"the query gave {len(samples)} samples, not one")
    value = float(samples[0][1])
    holds = probe.comparison.holds(value, probe.threshold)
    verb = "" if holds else "not "
    return Observation(holds, value, f"{value:g} {verb}{probe.comparison.value} {probe.threshold:g}")


# -- readers: CloudWatch and Kubernetes ----------------------------------------------------------


def observe_cloudwatch_metric(probe: CloudWatchMetricProbe, cloudwatch: Any, now: datetime) -> Observation:
    """The latest datapoint of the metric (or expression) over the last three periods, held to the
    threshold; no datapoint is a failure (the question has no answer)."""
    if probe.expression is not None:
        query: dict[str, Any] = {"Id": "probe", "Expression": probe.expression, "Period": probe.period}
    else:
        metric = {
            "Namespace": probe.namespace,
            "MetricName": probe.metric_name,
            "Dimensions": [{"Name": d.name, "Value": d.value} for d in probe.dimensions],
        }
        query = {
            "Id": "probe",
            "MetricStat": {"Metric": metric, "Period": probe.period, "Stat": probe.statistic},
        }
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[query],
        StartTime=now - timedelta(seconds=3 * probe.period),
        EndTime=now,
        ScanBy="TimestampDescending",
    )
    results: list[dict[str, Any]] = answer.get("MetricDataResults", [])
    values = results[0].get("Values", []) if results else []
    if not values:
        return Observation(False, None, "no datapoint in the last three periods")
    value = float(values[0])
    holds = probe.comparison.holds(value, probe.threshold)
    verb = "" if holds else "not "
    return Observation(holds, value, f"{value:g} {verb}{probe.comparison.value} {probe.threshold:g}")


def observe_kubernetes(probe: KubernetesProbe, apps: Any, core: Any) -> Observation:
    """`apps` and `core`: the cluster's AppsV1Api and CoreV1Api, as the executor's identity."""
    if probe.check == "ready-replicas":
        assert probe.workload is not None and probe.min_ready is not None
        read = (
            apps.read_namespaced_deployment
            if probe.kind == "Deployment"
            else apps.read_namespaced_stateful_set
        )
        workload = read(probe.workload, probe.namespace)
        ready = int((workload.status and workload.status.ready_replicas) or 0)
        holds = ready >= probe.min_ready
        return Observation(holds, float(ready), f"{ready} ready of {probe.min_ready} wanted")
    pods = core.list_namespaced_pod(probe.namespace, label_selector=probe.selector).items
    looping = sorted(
        pod.metadata.name
        for pod in pods
        for status in (pod.status.container_statuses or [])
        if status.state and status.state.waiting and status.state.waiting.reason == "CrashLoopBackOff"
    )
    if looping:
        return Observation(False, float(len(looping)), "in CrashLoopBackOff: " + ", ".join(looping[:10]))
    return Observation(True, 0.0, f"none of {len(pods)} pods in CrashLoopBackOff")
