"""Configuration, read once from the environment at cold start and validated.

A missing variable fails at start-up with its name, never deep inside a request.

Plain pydantic models, validated from the environment by `from_environment`, rather than
pydantic-settings: its import (dotenv, asyncio, a dozen sources) cost every cold start about a
tenth of a second, for the one source used here. Names match as they did there: a field is read
from its name in upper or lower case, or only from its alias when it has one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from chaosplane.auth import TEAM_PATTERN
from chaosplane.parallel import CHANGES_AT_ONCE

Model = TypeVar("Model", bound=BaseModel)


def _names(model: type[BaseModel]) -> set[str]:
    """The variables `model` reads: each field's alias(es), or its name."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(str(alias) if alias else name)
    return names


def from_environment(model: type[Model], environ: Mapping[str, str] | None = None) -> Model:
    """`model` validated from the environment's variables of its fields, and only those (an error
    must never print the rest of the environment: credentials live there)."""
    wanted = _names(model)
    found = os.environ if environ is None else environ
    return model.model_validate(
        {key: value for name, value in found.items() if (key := name.lower()) in wanted}
    )


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    targets_table: str
    experiments_table: str
    results_table: str
    journal_table: str
    audit_table: str
    teams_table: str
    plans_table: str
    aws_region: str = Field(validation_alias=AliasChoices("aws_region", "aws_default_region"))
    # Only the API function starts runs; the executor never needs it (and must not: that would be a
    # dependency cycle in template.yaml, since the state machine invokes the executor).
    state_machine_arn: str | None = None
    max_body_bytes: int = 64 * 1024
    parallel_changes: int = Field(default=CHANGES_AT_ONCE, ge=1, le=50)  # resources a run changes at once
    # Admins of this team may engage the emergency stop for every team.
    platform_team: str = Field(default="platform", pattern=TEAM_PATTERN)
    # What the platform knows as its own, never to be faulted (chaosplane/tenancy.py): its stack's
    # name (CloudFormation's tag on what the stack made, and its functions' name prefix), and ids
    # or ARNs named outright (comma-separated).
    stack_name: str = ""
    platform_resources: str = ""
    # The platform's own account: an alarm is named by its name here, by its ARN anywhere else.
    platform_account_id: str = ""
    # The role a tag-boundary team's runs act as, with the team as a session tag (the executor's).
    team_fault_role_arn: str | None = None
    # Where people get a token (an OIDC issuer's sign-in page): the dashboard's sign-in page links it.
    token_url: str = ""
    # EventBridge: where run state changes go, and the schedules' group, role and dead-letter queue.
    event_bus_name: str = "default"
    schedule_group: str | None = None
    scheduler_role_arn: str | None = None
    schedule_dead_letter_arn: str | None = None
    # The image of the ephemeral container that carries in-pod faults (infra/payload-image).
    payload_image: str | None = None
    # Local mode: clusters named like a context of this kubeconfig are reached through it; any
    # other cluster name is an EKS cluster. A deliberate variable, not KUBECONFIG, so that a
    # developer's everyday kubeconfig is never picked up by accident.
    kubeconfig: str | None = Field(default=None, validation_alias="chaosplane_kubeconfig")
    # http-endpoint targets: each one's webhook headers and signing secret are the secret
    # <prefix><target id> (the executor may read, and the API write, only under this prefix).
    webhook_secret_prefix: str
    # Notifications (chaosplane/notify.py). The topic that carries email; the path of the teams'
    # secrets (Slack webhook, PagerDuty routing key); the hosts a Slack webhook may be on
    # (comma-separated; plain http is allowed only for a loopback host listed here, for tests);
    # and the PagerDuty Events API v2 endpoint (e.g. https://events.eu.pagerduty.com/v2/enqueue).
    notifications_topic_arn: str | None = None
    notifications_secret_prefix: str | None = None
    notify_allowed_hosts: str = "hooks.slack.com"
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"
    # Where the platform's own metrics go (chaosplane/telemetry.py): CloudWatch as EMF log lines,
    # the local platform's Prometheus registry (`chaosplane local` serves it at /metrics), or nowhere.
    metrics: Literal["emf", "prometheus", "none"] = Field(
        default="emf", validation_alias="chaosplane_metrics"
    )

    @property
    def connections(self) -> int:
        """HTTP connections per AWS or Kubernetes client: one per change running at once, and a few
        for the run's own record (DynamoDB) and stop checks on the caller's thread."""
        return max(10, self.parallel_changes + 4)

    @property
    def platform_resource_ids(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.platform_resources.split(",") if r.strip())

    @property
    def allowed_webhook_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.notify_allowed_hosts.split(",") if h.strip())


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    return from_environment(Settings)
