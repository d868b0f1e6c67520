"""The API function: its resolver, over one store and one set of clients.

Everything the routes use is built here, but cheaply: each AWS client is made by the first request
that needs it, and a fault family (with its module) by the first preview or run of its type.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from chaosplane.api import build_app
from chaosplane.faults.http import WebhookSecrets
from chaosplane.scheduling import EventBridgeSchedules, Scheduling
from chaosplane.settings import Settings, load_settings
from chaosplane.store import Store
from chaosplane.wiring.clients import Clients
from chaosplane.wiring.notifications import build_notifications
from chaosplane.wiring.runs import build_runs


def build_scheduling(
    settings: Settings | None = None, *, clients: Clients | None = None, store: Store | None = None
) -> Scheduling | None:
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
    clients = clients or Clients(settings)
    gateway = EventBridgeSchedules(clients.lazy("scheduler"), *needed)  # type: ignore[arg-type]  # all set
    return Scheduling(store or Store(settings), gateway)


def build_webhook_secrets(settings: Settings, *, clients: Clients | None = None) -> WebhookSecrets:
    clients = clients or Clients(settings)
    return WebhookSecrets(clients.lazy("secretsmanager"), settings.webhook_secret_prefix)


def build_api(settings: Settings | None = None) -> APIGatewayRestResolver:
    settings = settings or load_settings()
    clients = Clients(settings)
    store = Store(settings)
    return build_app(
        store,
        build_runs(settings, clients=clients, store=store),
        max_body_bytes=settings.max_body_bytes,
        platform_team=settings.platform_team,
        scheduling=build_scheduling(settings, clients=clients, store=store),
        webhook_secrets=build_webhook_secrets(settings, clients=clients),
        notifications_service=build_notifications(store, settings, clients=clients),
        token_url=settings.token_url,
        region=settings.aws_region,
    )
