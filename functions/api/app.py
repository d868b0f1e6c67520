"""API Lambda: API Gateway REST proxy events in, JSON out. All behaviour lives in chaosplane.api."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.api import build_app
from chaosplane.settings import load_settings
from chaosplane.store import Store
from chaosplane.wiring import build_notifications, build_runs, build_scheduling, build_webhook_secrets

logger = Logger()
tracer = Tracer()
settings = load_settings()
store = Store(settings)
app = build_app(
    store,
    build_runs(settings),
    max_body_bytes=settings.max_body_bytes,
    platform_team=settings.platform_team,
    scheduling=build_scheduling(settings),
    webhook_secrets=build_webhook_secrets(settings),
    notifications_service=build_notifications(store, settings),
    token_url=settings.token_url,
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
