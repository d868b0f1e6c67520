"""Builds the real collaborators (DynamoDB store, AWS clients, fault families) from settings.

The only module that turns configuration into live objects; handlers call it once at cold start.
boto3 picks up AWS_ENDPOINT_URL by itself, which is how the same code talks to the embedded AWS.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from chaosplane.errors import ErrorName, NotFound
from chaosplane.events import RUN_EVENT_SOURCE, RUN_STATE_CHANGE, RunEvent
from chaosplane.faults.base import FaultFamily
from chaosplane.faults.catalogue import spec
from chaosplane.faults.ec2 import Ec2Instances
from chaosplane.faults.ecs import EcsTasks
from chaosplane.faults.http import HttpEndpoints, WebhookSecrets
from chaosplane.faults.lambdas import LambdaFunctions
from chaosplane.faults.network import Subnets
from chaosplane.faults.rds import RdsClusters, RdsInstances
from chaosplane.faults.ssm import SsmStress
from chaosplane.kube import Clusters, EksClusters, KubeconfigClusters
from chaosplane.metrics import MetricReader
from chaosplane.models import ExperimentResult, FaultType, TargetType
from chaosplane.notifications import Notifications
from chaosplane.notify import EmailMessage, HttpSender, Notifier
from chaosplane.runs import AlarmReader, AlarmState, ExecutionStatus, RunEventPublisher, Runs
from chaosplane.scheduling import EventBridgeSchedules, Scheduling
from chaosplane.settings import Settings, load_settings
from chaosplane.store import Store

logger = logging.getLogger(__name__)
_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})
# A token Step Functions no longer knows means the task already ended: nothing left to halt.
_ENDED_TASK = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}


class Clients:
    """AWS clients, created once (client creation is not thread-safe; using a client is)."""

    def __init__(self, settings: Settings) -> None:
        session = boto3.session.Session(region_name=settings.aws_region)
        config = _RETRIES.merge(Config(max_pool_connections=settings.connections))

        def client(service: str) -> Any:
            return session.client(service, config=config)

        self.ec2 = client("ec2")
        self.stepfunctions = client("stepfunctions")
        self.cloudwatch = client("cloudwatch")
        self.eks = client("eks")
        self.sts = client("sts")
        self.events = client("events")
        self.scheduler = client("scheduler")
        kubeconfig = (
            KubeconfigClusters(settings.kubeconfig, settings.connections) if settings.kubeconfig else None
        )
        self.clusters = Clusters(
            EksClusters(self.eks, self.sts, connections=settings.connections), kubeconfig
        )
        self.payload_image = settings.payload_image
        self.rds = client("rds")
        self.ecs = client("ecs")
        self.lambda_ = client("lambda")
        self.tagging = client("resourcegroupstaggingapi")
        self.ssm = client("ssm")
        self.secretsmanager = client("secretsmanager")
        self.webhook_secret_prefix = settings.webhook_secret_prefix


def _eks_pods(clients: Clients) -> FaultFamily:
    # Imported when a run first reaches a cluster: the family imports the Kubernetes client, which
    # every other function (and every run that never reaches a cluster) would pay at cold start.
    from chaosplane.faults.eks import EksPods

    return EksPods(clients.clusters, clients.payload_image)


def fault_families(clients: Clients) -> Callable[[FaultType], FaultFamily]:
    """The family (resource adapter) a fault acts through; its `catalogue` entry does the rest."""
    by_target_type: dict[TargetType, Callable[[], FaultFamily]] = {
        TargetType.EC2_INSTANCES: lambda: Ec2Instances(clients.ec2),
        TargetType.EKS_PODS: lambda: _eks_pods(clients),
        # Cloud and external families.
        TargetType.RDS_INSTANCES: lambda: RdsInstances(clients.rds),
        TargetType.RDS_CLUSTERS: lambda: RdsClusters(clients.rds),
        TargetType.ECS_TASKS: lambda: EcsTasks(clients.ecs),
        TargetType.LAMBDA_FUNCTIONS: lambda: LambdaFunctions(clients.lambda_, clients.tagging),
        TargetType.SUBNETS: lambda: Subnets(clients.ec2),
        TargetType.HTTP_ENDPOINT: lambda: HttpEndpoints(
            WebhookSecrets(clients.secretsmanager, clients.webhook_secret_prefix)
        ),
    }
    # Faults whose family is not their target type's (SSM stress acts on EC2 instances, via SSM).
    by_fault: dict[FaultType, Callable[[], FaultFamily]] = {
        FaultType.SSM_CPU_STRESS: lambda: SsmStress(clients.ec2, clients.ssm),
        FaultType.SSM_MEMORY_STRESS: lambda: SsmStress(clients.ec2, clients.ssm),
    }

    def family(fault: FaultType) -> FaultFamily:
        if fault in by_fault:
            return by_fault[fault]()
        return by_target_type[spec(fault).target_type]()

    return family


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
    def read(names: list[str]) -> dict[str, AlarmState]:
        found: dict[str, AlarmState] = {}
        for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
            pages = clients.cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNames=names[start : start + 100], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            )
            for page in pages:
                for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    found[alarm["AlarmName"]] = AlarmState(alarm["StateValue"], alarm.get("StateReason", ""))
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
        response = clients.events.put_events(Entries=[{**entry, "EventBusName": bus}])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {response['Entries'][0].get('ErrorMessage')}")

    return publish


def build_scheduling(settings: Settings | None = None) -> Scheduling | None:
    """The schedules service, when the stack has its Scheduler group, role and queue."""
    settings = settings or load_settings()
    needed = (
        settings.schedule_group,
        settings.scheduler_role_arn,
        settings.schedule_dead_letter_arn,
        settings.state_machine_arn,
    )
    if not all(needed):
        return None
    clients = Clients(settings)
    gateway = EventBridgeSchedules(clients.scheduler, *needed)  # type: ignore[arg-type]  # all set
    return Scheduling(Store(settings), gateway)


def build_webhook_secrets(settings: Settings) -> WebhookSecrets:
    session = boto3.session.Session(region_name=settings.aws_region)
    return WebhookSecrets(session.client("secretsmanager", config=_RETRIES), settings.webhook_secret_prefix)


def build_runs(settings: Settings | None = None) -> Runs:
    settings = settings or load_settings()
    clients = Clients(settings)
    machine = settings.state_machine_arn
    return Runs(
        Store(settings),
        fault_families(clients),
        start_workflow=workflow_starter(clients, machine) if machine else None,
        send_halt=halt_sender(clients),
        alarms=alarm_reader(clients),
        metrics=metric_reader(clients),
        execution_status=execution_status(clients, machine) if machine else None,
        publish=event_publisher(clients, settings.event_bus_name),
        parallel_changes=settings.parallel_changes,
    )


# -- notifications ----------------------------------------------------------------------------------


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class SecretsManagerVault:
    """The teams' notification secrets: one JSON secret per team."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read(self, name: str) -> dict[str, str] | None:
        try:
            value = self._client.get_secret_value(SecretId=name)["SecretString"]
        except ClientError as err:
            if _code(err) == "ResourceNotFoundException":
                return None
            raise
        return {str(k): str(v) for k, v in json.loads(value).items()}

    def write(self, name: str, value: dict[str, str]) -> str:
        text = json.dumps(value)
        try:
            return str(self._client.put_secret_value(SecretId=name, SecretString=text)["ARN"])
        except ClientError as err:
            if _code(err) != "ResourceNotFoundException":
                raise
        created = self._client.create_secret(
            Name=name, SecretString=text, Description="Chaosplane notification channels of one team"
        )
        return str(created["ARN"])

    def delete(self, name: str) -> None:
        # Without a recovery window, so that the team can set a channel again at once.
        try:
            self._client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        except ClientError as err:
            if _code(err) != "ResourceNotFoundException":
                raise


class SnsEmailSubscriptions:
    """Email subscriptions of the notifications topic, one filter policy on `team` each."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def team_of(self, address: str) -> str | None:
        pages = self._client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=self._topic_arn)
        for page in pages:
            for subscription in page.get("Subscriptions", []):
                if subscription["Protocol"] != "email" or subscription["Endpoint"].lower() != address.lower():
                    continue
                arn = subscription["SubscriptionArn"]
                if not arn.startswith("arn:"):
                    return ""  # pending confirmation: its attributes cannot be read
                attributes = self._client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
                teams = json.loads(attributes.get("FilterPolicy") or "{}").get("team") or [""]
                return str(teams[0])
        return None

    def subscribe(self, address: str, team: str) -> str:
        response = self._client.subscribe(
            TopicArn=self._topic_arn,
            Protocol="email",
            Endpoint=address,
            Attributes={
                "FilterPolicy": json.dumps({"team": [team]}),
                "FilterPolicyScope": "MessageAttributes",
            },
            ReturnSubscriptionArn=True,  # the real ARN even while pending: needed to unsubscribe
        )
        return str(response["SubscriptionArn"])

    def unsubscribe(self, subscription_arn: str) -> None:
        try:
            self._client.unsubscribe(SubscriptionArn=subscription_arn)
        except ClientError as err:
            if _code(err) not in ("NotFound", "NotFoundException"):
                raise


def email_publisher(client: Any, topic_arn: str) -> Callable[[EmailMessage], None]:
    def publish(message: EmailMessage) -> None:
        client.publish(
            TopicArn=topic_arn,
            Subject=message.subject,
            Message=message.body,
            MessageAttributes={"team": {"DataType": "String", "StringValue": message.team}},
        )

    return publish


def build_notifications(store: Store, settings: Settings | None = None) -> Notifications:
    """The API's notification settings service."""
    settings = settings or load_settings()
    session = boto3.session.Session(region_name=settings.aws_region)
    topic = settings.notifications_topic_arn
    return Notifications(
        store,
        SecretsManagerVault(session.client("secretsmanager", config=_RETRIES)),
        SnsEmailSubscriptions(session.client("sns", config=_RETRIES), topic) if topic else None,
        secret_prefix=settings.notifications_secret_prefix,
        allowed_hosts=settings.allowed_webhook_hosts,
    )


def build_notifier(settings: Settings | None = None) -> Notifier:
    settings = settings or load_settings()
    session = boto3.session.Session(region_name=settings.aws_region)
    secrets = session.client("secretsmanager", config=_RETRIES)
    store = Store(settings)
    topic = settings.notifications_topic_arn

    def read_secret(arn: str) -> dict[str, str]:
        return {
            str(k): str(v)
            for k, v in json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"]).items()
        }

    def run_is_final(run_id: str) -> bool:
        try:
            return store.get_result(run_id, team=None).status.is_final
        except NotFound:
            return False

    return Notifier(
        config=store.notifications,
        secrets=read_secret,
        http=HttpSender(),
        publish_email=email_publisher(session.client("sns", config=_RETRIES), topic) if topic else None,
        pagerduty_url=settings.pagerduty_events_url,
        allowed_hosts=settings.allowed_webhook_hosts,
        run_is_final=run_is_final,
    )
