"""API Lambda: API Gateway REST proxy events in, JSON out. All behaviour lives in chaosplane.api."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.wiring.api import build_api

logger = Logger()
tracer = Tracer()
app = build_api()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
