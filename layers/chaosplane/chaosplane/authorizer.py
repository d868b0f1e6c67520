"""The API Gateway TOKEN authorizer: a verified token becomes an Allow policy plus the caller.

The policy allows every method of the stage, because API Gateway caches it per token (TTL in
template.yaml) and reuses it for other routes: what a caller may do per route is decided by the API
itself, from the role in the context. A rejected token gets an explicit Deny whose `reason` the
ACCESS_DENIED gateway response turns into a 401.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jwt

from chaosplane.auth import AuthMode, AuthSettings, TokenVerifier, Unauthenticated

SECRET_MAX_AGE_SECONDS = 300  # a rotated secret is picked up within five minutes
JWKS_LIFESPAN_SECONDS = 300


def stage_wildcard(method_arn: str) -> str:
    """arn:...:api-id/stage/GET/targets -> arn:...:api-id/stage/*/* (the whole stage)."""
    prefix, _, path = method_arn.partition(":execute-api:")
    api_and_stage = "/".join(path.split("/")[:2])
    return f"{prefix}:execute-api:{api_and_stage}/*/*"


def policy(principal: str, effect: str, resource: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


def authorize(verifier: TokenVerifier, event: dict[str, Any]) -> dict[str, Any]:
    method_arn = str(event.get("methodArn", ""))
    try:
        caller = verifier.verify(event.get("authorizationToken"))
    except Unauthenticated as err:
        return policy("anonymous", "Deny", method_arn, {"reason": err.reason})
    return policy(caller.principal, "Allow", stage_wildcard(method_arn), caller.context())


@lru_cache(maxsize=1)
def build_verifier() -> TokenVerifier:
    settings = AuthSettings()
    if settings.auth_mode is AuthMode.HS256:
        if not settings.jwt_secret_arn:
            raise ValueError("AUTH_MODE=HS256 needs JWT_SECRET_ARN")
        from aws_lambda_powertools.utilities import parameters

        arn = settings.jwt_secret_arn
        return TokenVerifier(
            settings, secret=lambda: str(parameters.get_secret(arn, max_age=SECRET_MAX_AGE_SECONDS))
        )
    if not settings.jwks_url:
        raise ValueError("AUTH_MODE=JWKS needs JWKS_URL")
    return TokenVerifier(
        settings,
        jwks=jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=JWKS_LIFESPAN_SECONDS, timeout=5),
    )
