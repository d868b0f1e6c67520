"""Executor Lambda: one invocation per state of statemachines/experiment.asl.json."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.executor import handle
from chaosplane.wiring.runs import build_runs

logger = Logger()
tracer = Tracer()
runs = build_runs()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    logger.append_keys(step=event.get("step"))
    return handle(runs, event)
