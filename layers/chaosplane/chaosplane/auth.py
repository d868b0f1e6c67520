"""Who is calling: JWT verification for the API Gateway Lambda authorizer, and the caller it yields.

Two modes, chosen in template.yaml: HS256 with a shared secret (self-hosted, the secret in Secrets
Manager) and JWKS for any OIDC issuer (Cognito, Okta, Auth0...), RS256/ES256 only. Each mode has an
explicit algorithm allow-list, so `alg: none` and the classic "HS256 signed with the RSA public key"
confusion are refused before any key is used. Reasons given to the client are short and generic:
they say which check failed, never what the token contained or what was expected.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import jwt

# PyJWT (with cryptography, a tenth of a second) is imported by the code that signs or verifies:
# the API imports this module for Caller and Role only; the authorizer imports PyJWT at cold start.
MAX_LEEWAY_SECONDS = 60
TEAM_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""A team name: what tags, labels, session tags and store keys carry. `*` (the platform-wide
lever's record) and anything else a tag or a key would read differently is never a team."""
_TEAM = re.compile(TEAM_PATTERN)


def is_team(name: object) -> bool:
    return isinstance(name, str) and _TEAM.fullmatch(name) is not None


class Role(IntEnum):
    """Ordered: each role may do everything the ones below it may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def named(cls, name: str) -> Role | None:
        """The role whose label is exactly `name`: no case or Unicode folding, since "adm\\u0131n"
        (a dotless i) upper-cases to ADMIN and an issuer's group names are not ours to reinterpret."""
        return _ROLES_BY_LABEL.get(name)

    @property
    def label(self) -> str:
        return self.name.lower()


_ROLES_BY_LABEL = {role.label: role for role in Role}


class AuthMode(StrEnum):
    HS256 = "HS256"
    JWKS = "JWKS"


ALGORITHMS: dict[AuthMode, list[str]] = {
    AuthMode.HS256: ["HS256"],
    AuthMode.JWKS: ["RS256", "ES256"],
}


@dataclass(frozen=True)
class Caller:
    principal: str
    role: Role
    team: str

    def context(self) -> dict[str, str]:
        """What the authorizer hands API Gateway, and the API reads back (strings only)."""
        return {"principal": self.principal, "role": self.role.label, "team": self.team}

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | None) -> Caller | None:
        if not context:
            return None
        role = Role.named(str(context.get("role", "")))
        principal, team = context.get("principal"), context.get("team")
        if role is None or not principal or not is_team(team):
            return None
        return cls(principal=str(principal), role=role, team=str(team))


class Unauthenticated(Exception):
    """The token is not acceptable. `reason` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthSettings(BaseModel):
    """The authorizer's settings: `settings.from_environment(AuthSettings)`."""

    model_config = ConfigDict(extra="ignore")

    auth_mode: AuthMode = AuthMode.HS256
    jwt_secret_arn: str = ""
    jwks_url: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_token_use: Literal["access", "id"] = "access"
    role_claim: str = "roles"
    team_claim: str = "team"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=MAX_LEEWAY_SECONDS)


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name; names may hold ':' (cognito:groups), so only '.' walks into objects."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _highest_role(value: Any) -> Role | None:
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    roles = [role for name in names if isinstance(name, str) and (role := Role.named(name)) is not None]
    return max(roles, default=None)


class TokenVerifier:
    """Verifies a bearer token and turns its claims into a Caller."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        secret: Callable[[], str] | None = None,
        jwks: jwt.PyJWKClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.auth_mode is AuthMode.HS256 and secret is None:
            raise ValueError("HS256 mode needs the shared secret")
        if settings.auth_mode is AuthMode.JWKS and jwks is None:
            raise ValueError("JWKS mode needs a JWKS client")
        if settings.auth_mode is AuthMode.JWKS and not (settings.jwt_issuer and settings.jwt_audience):
            # An issuer's keys sign tokens for every client it has: without both, any of them would do.
            raise ValueError("JWKS mode needs JWT_ISSUER and JWT_AUDIENCE")
        self._settings = settings
        self._secret = secret
        self._jwks = jwks
        self._clock = clock
        self._algorithms = ALGORITHMS[settings.auth_mode]

    def verify(self, authorization: str | None) -> Caller:
        import jwt

        token = self._bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as err:
            raise Unauthenticated("malformed token") from err
        if header.get("alg") not in self._algorithms:
            raise Unauthenticated("token algorithm not allowed")
        key = self._key(token, header)
        claims = self._decode(token, key)
        return self._caller(claims)

    @staticmethod
    def _bearer(authorization: str | None) -> str:
        if not authorization:
            raise Unauthenticated("missing bearer token")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("missing bearer token")
        return token.strip()

    def _key(self, token: str, header: Mapping[str, Any]) -> Any:
        import jwt

        if self._settings.auth_mode is AuthMode.HS256:
            assert self._secret is not None
            return self._secret()
        assert self._jwks is not None
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as err:
            raise Unauthenticated("signing keys unavailable") from err
        except jwt.PyJWKClientError as err:
            raise Unauthenticated("unknown signing key") from err
        except jwt.DecodeError as err:
            raise Unauthenticated("malformed token") from err
        if signing_key.algorithm_name != header.get("alg"):
            # A key published for ES256 must not verify an RS256 token, nor the reverse.
            raise Unauthenticated("token algorithm not allowed")
        return signing_key.key

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        import jwt

        settings = self._settings
        required = ["exp", "sub"] + (["iss"] if settings.jwt_issuer else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                issuer=settings.jwt_issuer or None,
                leeway=settings.jwt_leeway_seconds,
                # The audience is checked below, once the signature holds: Cognito's access tokens
                # name their client in client_id, not aud.
                options={"require": required, "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as err:
            raise Unauthenticated("token expired") from err
        except jwt.ImmatureSignatureError as err:
            raise Unauthenticated("token not yet valid") from err
        except jwt.InvalidIssuerError as err:
            raise Unauthenticated("wrong issuer") from err
        except jwt.InvalidAudienceError as err:
            raise Unauthenticated("wrong audience") from err
        except jwt.MissingRequiredClaimError as err:
            raise Unauthenticated(f"missing claim {err.claim}") from err
        except jwt.InvalidSignatureError as err:
            raise Unauthenticated("invalid signature") from err
        except jwt.InvalidTokenError as err:
            raise Unauthenticated("invalid token") from err
        self._check_use_and_audience(claims)
        return claims

    def _check_use_and_audience(self, claims: Mapping[str, Any]) -> None:
        """`token_use`, where the issuer sets it (Cognito: access or id), is the one this API takes;
        the audience is `aud`, or for an access token without one, `client_id`."""
        settings = self._settings
        use = claims.get("token_use")
        if use is not None and use != settings.jwt_token_use:
            raise Unauthenticated("wrong token use")
        if not settings.jwt_audience:
            return
        aud = claims.get("aud")
        if aud is None and use == "access" and "client_id" in claims:
            if claims["client_id"] != settings.jwt_audience:
                raise Unauthenticated("wrong audience")
            return
        if aud is None:
            raise Unauthenticated("missing claim aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if settings.jwt_audience not in audiences:
            raise Unauthenticated("wrong audience")

    def _caller(self, claims: Mapping[str, Any]) -> Caller:
        settings = self._settings
        role = _highest_role(_claim(claims, settings.role_claim))
        if role is None:
            raise Unauthenticated("no chaosplane role in token")
        team = _claim(claims, settings.team_claim)
        if not isinstance(team, str) or not team:
            raise Unauthenticated("no team in token")
        if not is_team(team):
            raise Unauthenticated("not a team name")
        principal = claims.get("sub")
        if not isinstance(principal, str) or not principal:
            raise Unauthenticated("missing claim sub")
        return Caller(principal=principal, role=role, team=team)


def mint_token(
    secret: str,
    *,
    subject: str,
    role: Role,
    team: str,
    ttl_seconds: int = 3600,
    role_claim: str = "roles",
    team_claim: str = "team",
    issuer: str | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token for the self-hosted mode (`chaosplane token`, tests, the local demo)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        role_claim: [role.label],
        team_claim: team,
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    import jwt

    return jwt.encode(claims, secret, algorithm="HS256")
