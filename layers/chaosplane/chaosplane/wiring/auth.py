"""The authorizer function: its token verifier, for the stack's HS256 secret or an OIDC issuer's keys.

The HS256 secret is read from Secrets Manager on the first token and again once it is five minutes
old, so a rotated secret is picked up within five minutes. (Powertools' parameters utility did this
before; it imports boto3 and AppConfig's provider, a fifth of a second at every cold start.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import jwt

from chaosplane.auth import AuthMode, AuthSettings, TokenVerifier
from chaosplane.settings import from_environment

SECRET_MAX_AGE_SECONDS = 300  # a rotated secret is picked up within five minutes
JWKS_LIFESPAN_SECONDS = 300


def cached(
    read: Callable[[], str], max_age: float, clock: Callable[[], float] = time.monotonic
) -> Callable[[], str]:
    """`read()`'s value, read again when the one held is `max_age` seconds old."""
    lock = threading.Lock()
    held: list[tuple[float, str]] = []

    def value() -> str:
        with lock:
            if not held or clock() - held[0][0] >= max_age:
                held[:] = [(clock(), read())]
            return held[0][1]

    return value


def secret_reader(secret_id: str) -> Callable[[], str]:
    """Reads the secret's string; its client is made on the first read (the region is botocore's)."""
    made: list[Any] = []

    def read() -> str:
        if not made:
            import botocore.session

            from chaosplane.wiring.clients import RETRIES

            made.append(botocore.session.get_session().create_client("secretsmanager", config=RETRIES))
        return str(made[0].get_secret_value(SecretId=secret_id)["SecretString"])

    return read


def build_verifier() -> TokenVerifier:
    """One per cold start (the handler module keeps it): it holds the secret it read, or the keys."""
    settings = from_environment(AuthSettings)
    if settings.auth_mode is AuthMode.HS256:
        if not settings.jwt_secret_arn:
            raise ValueError("AUTH_MODE=HS256 needs JWT_SECRET_ARN")
        read = secret_reader(settings.jwt_secret_arn)
        return TokenVerifier(settings, secret=cached(read, SECRET_MAX_AGE_SECONDS))
    if not settings.jwks_url:
        raise ValueError("AUTH_MODE=JWKS needs JWKS_URL")
    return TokenVerifier(
        settings,
        jwks=jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=JWKS_LIFESPAN_SECONDS, timeout=5),
    )
