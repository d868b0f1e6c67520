"""Guard Lambda: a CloudWatch alarm went into ALARM; halt every run that names it as a stop condition."""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.wiring.runs import build_guard

logger = Logger()
runs = build_guard()


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    detail = event.get("detail") or {}
    alarm = str(detail.get("alarmName", ""))
    reason = str((detail.get("state") or {}).get("reason", ""))
    halted = runs.on_alarm(alarm, reason)
    logger.info("guard", alarm=alarm, halted=halted)
    return {"alarm": alarm, "halted": halted}
