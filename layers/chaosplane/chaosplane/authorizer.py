"""The API Gateway TOKEN authorizer: a verified token becomes an Allow policy plus the caller.

The policy allows every method of the stage, because API Gateway caches it per token (TTL in
template.yaml) and reuses it for other routes: what a caller may do per route is decided by the API
itself, from the role in the context. A rejected token gets an explicit Deny whose `reason` the
ACCESS_DENIED gateway response turns into a 401. The verifier is built in chaosplane.wiring.auth.
"""

from __future__ import annotations

from typing import Any

from chaosplane.auth import TokenVerifier, Unauthenticated


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
