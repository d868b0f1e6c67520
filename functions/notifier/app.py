"""Notifier Lambda: a "Chaosplane Run State Change" event in; Slack, PagerDuty and email out.

Never raises: a notification that cannot be delivered is logged and reported in the result, and
never affects the run. All behaviour lives in chaosplane.notify.
"""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.wiring.notifications import build_notifier

logger = Logger()
# AWS calls and HTTP (Slack, PagerDuty) traced; not every library X-Ray knows.
tracer = Tracer(patch_modules=("botocore", "httplib"))
notifier = build_notifier()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result = notifier.handle(event)
    if "run_id" in result:
        tracer.put_annotation(key="run_id", value=result["run_id"])
    tracer.put_annotation(key="step", value="notify")
    logger.info("notified", result=result)
    return result
