"""Guard Lambda: a CloudWatch alarm went into ALARM; halt every run that names it as a stop condition."""

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.wiring.runs import build_guard

logger = Logger()
# Only AWS calls are traced: X-Ray's patch of every library it knows would cost the halt's
# cold start its imports (requests, pynamodb's own patch).
tracer = Tracer(patch_modules=("botocore",))
runs = build_guard()


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    detail = event.get("detail") or {}
    alarm = str(detail.get("alarmName", ""))
    state = detail.get("state") or {}
    reason = str(state.get("reason", ""))
    tracer.put_annotation(key="alarm", value=alarm)
    # An environment's alarm comes forwarded from its account, with that account and Region.
    account, region = event.get("account"), event.get("region")
    halted = runs.on_alarm(
        alarm,
        reason,
        _changed_at(state.get("timestamp")),
        account=str(account) if account else None,
        region=str(region) if region else None,
    )
    logger.info("guard", alarm=alarm, account=account, region=region, halted=halted)
    return {"alarm": alarm, "halted": halted}


def _changed_at(timestamp: object) -> datetime | None:
    """When the alarm changed state ("2026-12-02T09:59:15.123+0000"); None if the event lacks it."""
    try:
        changed_at = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None
    return changed_at if changed_at.tzinfo else changed_at.replace(tzinfo=UTC)
