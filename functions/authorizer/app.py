"""Authorizer Lambda: API Gateway TOKEN authorizer events in, an IAM policy and the caller out."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from chaosplane.authorizer import authorize
from chaosplane.wiring.auth import build_verifier

logger = Logger()
# Only AWS calls (the HS256 secret's read) are traced: patching every library X-Ray knows would
# import them all in front of every request's cold start.
tracer = Tracer(patch_modules=("botocore",))
verifier = build_verifier()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    decision = authorize(verifier, event)
    statement = decision["policyDocument"]["Statement"][0]
    # Log the decision, never the token.
    logger.info(
        "authorizer",
        effect=statement["Effect"],
        principal=decision["principalId"],
        reason=decision["context"].get("reason"),
    )
    return decision
