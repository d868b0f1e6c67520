"""A run as a JUnit XML report: what Jenkins, GitLab CI and GitHub Actions reporters display.

One <testsuite> per run, in the strict Ant format (every attribute and element the strictest readers
require): one testcase for the run's outcome, one per stop condition, one per probe, one per
resource it selected.

- outcome: passes when the run completed. A stop by an alarm is a <failure> (the system under
  test did not take the fault); a refusal (pre-flight, policy, nothing to hit) and a platform
  problem (injection, rollback, aborted) are an <error>; a stop by a person or the emergency
  stop is a <failure> that names who stopped it.
- a stop condition fails when the run was stopped by it.
- a probe fails when it failed (its phase, time and last answer in the message); it is skipped
  when it was not asked in each of its phases (the run ended before, or was refused).
- a resource passes when it was hit and restored; it fails when it was hit and the run ended
  without restoring it (it may still be faulted); it is skipped when it was never hit.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from chaosplane.models import ExperimentResult, FailureKind, RunStatus, StopKind
from chaosplane.probes import ProbeMode

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ERRORS = (FailureKind.PREFLIGHT, FailureKind.POLICY, FailureKind.NOTHING_TO_HIT)


def _text(value: object) -> str:
    return _NOT_XML.sub("?", str(value))


def _seconds(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "0"
    return f"{max(0.0, (end - start).total_seconds()):.3f}"


def _case(suite: ET.Element, classname: str, name: str, time: str = "0") -> ET.Element:
    return ET.SubElement(
        suite, "testcase", {"classname": _text(classname), "name": _text(name), "time": time}
    )


def _mark(case: ET.Element, tag: str, kind: str, message: str, detail: str = "") -> None:
    element = ET.SubElement(case, tag, {"type": _text(kind), "message": _text(message)})
    element.text = _text(detail or message)


def junit_xml(result: ExperimentResult, hostname: str | None = None) -> bytes:
    fault = result.fault.value
    timeline = "\n".join(f"{e.at.isoformat()} {e.step}: {e.message}" for e in result.timeline)
    started = result.start_time or result.created_at
    suite = ET.Element(
        "testsuite",
        {
            "name": _text(f"chaosplane.{fault}.{result.experiment_id}"),
            "timestamp": started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": _text(hostname or socket.gethostname() or "localhost"),
            "time": _seconds(result.start_time, result.end_time),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("result_id", result.id),
        ("experiment_id", result.experiment_id),
        ("team", result.team),
        ("fault", fault),
        ("target_id", result.target_id),
        ("selection", result.selection),
        ("duration", result.duration),
        ("status", result.status.value),
        ("failure_kind", result.failure_kind.value if result.failure_kind else ""),
        ("stop_kind", result.stop_kind.value if result.stop_kind else ""),
        ("error", result.error or ""),
        ("verdict", result.verdict.value if result.verdict else ""),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _text(value)})

    # The run's outcome.
    outcome = _case(
        suite, f"chaosplane.{fault}", "run completed", _seconds(result.start_time, result.end_time)
    )
    why = result.error or ""
    if result.status is RunStatus.STOPPED:
        kind = result.stop_kind or StopKind.USER
        who = {StopKind.USER: "stopped by a person", StopKind.EMERGENCY: "the emergency stop"}.get(kind, "")
        _mark(outcome, "failure", f"stopped:{kind.value}", why or who or "stopped", timeline)
    elif result.status is RunStatus.FAILED:
        kind_name = (result.failure_kind or FailureKind.INJECTION).value
        refused = result.failure_kind in _ERRORS
        _mark(
            outcome, "error", f"{'refused' if refused else 'failed'}:{kind_name}", why or "failed", timeline
        )
    elif not result.status.is_final:
        _mark(outcome, "error", "unfinished", f"the run is still {result.status.value}", timeline)

    # The stop conditions: which one (if any) stopped the run.
    for reference in result.stop_conditions:
        alarm = reference.split(":alarm:", 1)[-1]
        case = _case(suite, f"chaosplane.{fault}.stop_conditions", f"{alarm} stayed out of ALARM")
        stopped_by_alarm = result.stop_kind is StopKind.ALARM and result.status is RunStatus.STOPPED
        fired = stopped_by_alarm and f"stop condition {reference} " in why  # as the halt names it
        if fired:
            _mark(case, "failure", "alarm", why)

    # The probes: did the system under test hold, in each phase it was asked?
    for probe in result.probes:
        name, mode = str(probe["name"]), str(probe.get("mode", "during"))
        record = result.probe_records.get(name)
        evaluations = record.evaluations if record else []
        took = _seconds(evaluations[0].at, evaluations[-1].at) if evaluations else "0"
        case = _case(suite, f"chaosplane.{fault}.probes", f"{name} ({probe['source']}, {mode}) held", took)
        answers = "\n".join(
            f"{e.at.isoformat()} {e.phase.value}: {'ok' if e.ok else 'FAILED'} {e.detail}"
            for e in evaluations
        )
        if record is not None and record.failed_in is not None:
            last = next((e for e in reversed(evaluations) if not e.ok), None)
            message = f"failed {record.failed_in.value} the faults: {last.detail if last else 'failed'}"
            _mark(case, "failure", f"probe:{record.failed_in.value}", message, answers)
        elif not set(ProbeMode(mode).phases()) <= {e.phase for e in evaluations}:
            ET.SubElement(case, "skipped", {"message": "not asked in each of its phases"})

    # The resources the run selected.
    for resource in result.resources:
        case = _case(suite, f"chaosplane.{fault}.resources", f"{resource.id} ({resource.kind}) restored")
        skipped = resource.detail.get("skipped")
        if resource.after is None:
            reason = f"not hit: {skipped}" if skipped else "not hit (the run ended before injecting it)"
            ET.SubElement(case, "skipped", {"message": _text(reason)})
        elif resource.restored is None and result.status.is_final:
            message = f"{resource.id} was left {resource.after} (before: {resource.before}): not restored"
            _mark(case, "failure", "not-restored", message)

    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    ET.SubElement(suite, "system-out").text = _text(timeline)
    ET.SubElement(suite, "system-err").text = ""
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def write_junit(result: ExperimentResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(result))
