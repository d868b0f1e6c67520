"""Notifier Lambda: a "Chaosplane Run State Change" event in; Slack, PagerDuty and email out.

Never raises: a notification that cannot be delivered is logged and reported in the result, and
never affects the run. All behaviour lives in chaosplane.notify.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.wiring.notifications import build_notifier

logger = Logger()
notifier = build_notifier()


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result = notifier.handle(event)
    logger.info("notified", result=result)
    return result
