"""The run service, as the executor, the API and the guard each need it.

The executor and the API get every collaborator (the API starts, previews and stops runs; the
executor carries them out). The guard gets only what halting a run takes: the store, the halter
(Step Functions' SendTaskFailure) and the event publisher.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chaosplane.errors import ErrorName
from chaosplane.events import LEVER_ENGAGED, RUN_EVENT_SOURCE, RUN_STATE_CHANGE, RunEvent
from chaosplane.metrics import MetricReader
from chaosplane.models import ExperimentResult, FaultType, utcnow
from chaosplane.probes import ProbeReaders
from chaosplane.runs import AlarmReader, AlarmState, ExecutionStatus, RunEventPublisher, Runs
from chaosplane.settings import Settings, load_settings
from chaosplane.store import Store
from chaosplane.tenancy import TEAM_TAG, PlatformSelf
from chaosplane.wiring.clients import Clients
from chaosplane.wiring.families import (
    Reach,
    cluster_access,
    environment_identities,
    environment_reach,
    fault_families,
    team_identities,
)
from chaosplane.wiring.telemetry import build_telemetry
from chaosplane.wiring.tracing import PowertoolsTracing

if TYPE_CHECKING:
    from chaosplane.kube import Clusters

logger = logging.getLogger(__name__)
# A token Step Functions no longer knows means the task already ended: nothing left to halt.
_ENDED_TASK = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}
TRACE_ENV = "_X_AMZN_TRACE_ID"  # Lambda's X-Ray trace header for the invocation


def workflow_starter(clients: Clients, state_machine_arn: str) -> Callable[[ExperimentResult], None]:
    def start(result: ExperimentResult) -> None:
        # The execution is named after the result: one run, one execution, found from either side.
        clients.stepfunctions.start_execution(
            stateMachineArn=state_machine_arn,
            name=result.id,
            input=json.dumps({"result_id": result.id, "experiment_id": result.experiment_id}),
        )

    return start


def halt_sender(clients: Clients) -> Callable[[str], None]:
    def halt(task_token: str) -> None:
        try:
            clients.stepfunctions.send_task_failure(
                taskToken=task_token, error=ErrorName.HALTED.value, cause="stop requested"
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in _ENDED_TASK:
                raise
            logger.info("halt: the Observe task had already ended")

    return halt


def alarm_reader(clients: Clients) -> AlarmReader:
    """Alarms' states and owners. Read when an experiment is saved, previewed or started (not
    while a run observes), so one ListTagsForResource an alarm costs a handful of calls a run."""

    def read(names: list[str]) -> dict[str, AlarmState]:
        found: dict[str, AlarmState] = {}
        for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
            pages = clients.cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNames=names[start : start + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for page in pages:
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    tags = clients.cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
                    team = next((t["Value"] for t in tags if t["Key"] == TEAM_TAG), None)
                    found[alarm["AlarmName"]] = AlarmState(
                        alarm["StateValue"], alarm.get("StateReason", ""), team
                    )
        return found

    return read


def metric_reader(clients: Clients) -> MetricReader:
    """Each alarm's own metric (or metric-math expression) over a window, with GetMetricData.

    Composite alarms have no metric of their own: they are listed with no points and a note.
    """

    def read(names: list[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
        # At most ~360 points a series, whatever the run's length: the result item stays far under
        # DynamoDB's 400 KB even with 10 stop conditions over a 12-hour run.
        coarsest = 60 * math.ceil((end - start).total_seconds() / 360 / 60)
        alarms: dict[str, dict[str, Any]] = {}
        for offset in range(0, len(names), 100):
            pages = clients.cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNames=names[offset : offset + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for page in pages:
                for alarm in page.get("MetricAlarms", []):
                    alarms[alarm["AlarmName"]] = alarm
                for alarm in page.get("CompositeAlarms", []):
                    alarms[alarm["AlarmName"]] = {**alarm, "composite": True}
        series: list[dict[str, Any]] = []
        queries: list[dict[str, Any]] = []
        for index, name in enumerate(names):
            alarm = alarms.get(name)
            entry: dict[str, Any] = {"alarm": name, "timestamps": [], "values": []}
            series.append(entry)
            if alarm is None:
                entry["note"] = "alarm not found"
                continue
            if alarm.get("composite"):
                entry["note"] = "composite alarm: no metric of its own"
                continue
            entry.update(
                threshold=alarm.get("Threshold"),
                comparison=alarm.get("ComparisonOperator"),
                state=alarm.get("StateValue"),
            )
            if alarm.get("Metrics"):  # metric math: ask for the same queries, return the alarm's one
                for query in alarm["Metrics"]:
                    queries.append({**query, "Id": f"a{index}_{query['Id']}"})
                    if query.get("ReturnData", True):
                        entry["id"] = f"a{index}_{query['Id']}"
                        entry["label"] = query.get("Label") or query.get("Expression") or name
                continue
            stat = alarm.get("ExtendedStatistic") or alarm.get("Statistic", "Average")
            entry["id"] = f"a{index}"
            metric = f"{alarm.get('Namespace')} {alarm.get('MetricName')}"
            entry["label"] = f"{metric} ({stat}, {alarm.get('Period')}s)"
            queries.append(
                {
                    "Id": entry["id"],
                    "MetricStat": {
                        "Metric": {
                            "Namespace": alarm["Namespace"],
                            "MetricName": alarm["MetricName"],
                            "Dimensions": alarm.get("Dimensions", []),
                        },
                        "Period": max(int(alarm.get("Period", 60)), coarsest),
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
        points: dict[str, list[tuple[str, float]]] = {}
        for offset in range(0, len(queries), 500):  # GetMetricData takes at most 500 queries
            pages = clients.cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries[offset : offset + 500],
                StartTime=start,
                EndTime=end,
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for found in page.get("MetricDataResults", []):
                    pairs = zip(found["Timestamps"], found["Values"], strict=True)
                    points.setdefault(found["Id"], []).extend((t.isoformat(), float(v)) for t, v in pairs)
        for entry in series:
            got = sorted(points.get(entry.pop("id", ""), []))
            entry["timestamps"] = [t for t, _ in got]
            entry["values"] = [v for _, v in got]
        return series

    return read


def execution_status(clients: Clients, state_machine_arn: str) -> ExecutionStatus:
    prefix = state_machine_arn.replace(":stateMachine:", ":execution:")

    def status(name: str) -> str | None:
        try:
            return str(clients.stepfunctions.describe_execution(executionArn=f"{prefix}:{name}")["status"])
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise

    return status


def event_publisher(clients: Clients, bus: str) -> RunEventPublisher:
    def publish(event: RunEvent) -> None:
        entry = {
            "Source": RUN_EVENT_SOURCE,
            "DetailType": RUN_STATE_CHANGE,
            "Detail": event.model_dump_json(),
        }
        trace = os.environ.get(TRACE_ENV)
        if trace:  # the invocation's X-Ray trace goes on with the event, to the notifier's
            entry["TraceHeader"] = trace
        response = clients.events.put_events(Entries=[{**entry, "EventBusName": bus}])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {response['Entries'][0].get('ErrorMessage')}")

    return publish


def probe_readers(clients: Clients, clusters: Callable[[], Clusters]) -> ProbeReaders:
    """What asks the probes' questions: HTTP and Prometheus over one session without retries (a
    probe's tolerance decides what a failure means), CloudWatch, the clusters, and the function's
    credentials to sign Amazon Managed Prometheus queries."""
    sessions: list[Any] = []

    def session() -> Any:
        if not sessions:
            from chaosplane.egress import guarded_session

            sessions.append(guarded_session())
        return sessions[0]

    return ProbeReaders(
        session=session,
        cloudwatch=lambda: clients.cloudwatch,
        kubernetes=lambda cluster: clusters().client(cluster),
        credentials=clients.credentials,
        clock=utcnow,
    )


def lever_fan_out(clients: Clients, bus: str) -> Callable[[str, str], None]:
    """Puts an engaged emergency stop on the bus, where the executor's rule takes it."""

    def fan_out(scope: str, engaged_by: str) -> None:
        detail = json.dumps({"scope": scope, "engaged_by": engaged_by})
        entry = {
            "Source": RUN_EVENT_SOURCE,
            "DetailType": LEVER_ENGAGED,
            "Detail": detail,
            "EventBusName": bus,
        }
        response = clients.events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {response['Entries'][0].get('ErrorMessage')}")

    return fan_out


def platform_self(settings: Settings) -> PlatformSelf:
    """The platform's own resources: its stack's, those named outright, and this very function
    (Lambda names it in the environment)."""
    own = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    return PlatformSelf(
        settings.stack_name,
        settings.platform_resource_ids | ({own} if own else set()),
        settings.platform_account_id,
        settings.aws_region,
    )


def build_runs(
    settings: Settings | None = None, *, clients: Clients | None = None, store: Store | None = None
) -> Runs:
    """The whole run service: the executor's, and the API's (with the API's store and clients)."""
    settings = settings or load_settings()
    clients = clients or Clients(settings)
    machine = settings.state_machine_arn
    clusters = cluster_access(clients, settings)
    elsewhere = environment_reach(clients, settings)
    return Runs(
        store or Store(settings),
        fault_families(clients, settings, clusters),
        start_workflow=workflow_starter(clients, machine) if machine else None,
        send_halt=halt_sender(clients),
        alarms=alarm_reader(clients),
        metrics=metric_reader(clients),
        execution_status=execution_status(clients, machine) if machine else None,
        publish=event_publisher(clients, settings.event_bus_name),
        parallel_changes=settings.parallel_changes,
        telemetry=build_telemetry(settings),
        tracing=PowertoolsTracing(),
        probes=probe_readers(clients, clusters),
        platform=platform_self(settings),
        acting_as=team_identities(clients, settings, clusters),
        fan_out=lever_fan_out(clients, settings.event_bus_name),
        in_place=environment_identities(elsewhere, settings),
        alarms_in=lambda team, place: alarm_reader(elsewhere(team, place).clients),
        metrics_in=lambda team, place: metric_reader(elsewhere(team, place).clients),
        probes_in=lambda team, place: _probes_there(elsewhere(team, place)),
    )


def _probes_there(reach: Reach) -> ProbeReaders:
    return probe_readers(reach.clients, reach.clusters)


def _no_families(fault: FaultType) -> Any:
    raise RuntimeError(f"the guard only halts runs: it has no fault family (asked for {fault.value})")


def build_guard(settings: Settings | None = None) -> Runs:
    """The guard's run service: it halts runs (Runs.on_alarm), and nothing else."""
    settings = settings or load_settings()
    clients = Clients(settings)
    return Runs(
        Store(settings),
        _no_families,
        platform=platform_self(settings),  # which alarms are the platform's own, by name
        send_halt=halt_sender(clients),
        publish=event_publisher(clients, settings.event_bus_name),
        parallel_changes=settings.parallel_changes,
        telemetry=build_telemetry(settings),
        tracing=PowertoolsTracing(),
    )
