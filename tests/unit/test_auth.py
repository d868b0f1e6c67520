"""The JWT attack suite: every way a token must be refused, in both modes, with real crypto.

JWKS mode fetches keys from a real HTTP server on loopback, so key caching and rotation go through
PyJWKClient exactly as in Lambda.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from chaosplane.auth import AuthMode, AuthSettings, Caller, Role, TokenVerifier, Unauthenticated, mint_token
from chaosplane.authorizer import authorize, stage_wildcard

SECRET = "s3cret-for-tests-only-0123456789abcdef"
NOW = 1_800_000_000
ISSUER = "https://issuer.example"
AUDIENCE = "chaosplane"


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"sub": "alice", "roles": ["operator"], "team": "blue", "iat": NOW, "nbf": NOW, "exp": NOW + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def hs_verifier(**settings: Any) -> TokenVerifier:
    return TokenVerifier(
        AuthSettings(auth_mode=AuthMode.HS256, **settings), secret=lambda: SECRET, clock=lambda: NOW
    )


def reason(verifier: TokenVerifier, token: str | None) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(None if token is None else f"Bearer {token}")
    return caught.value.reason


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.fixture(autouse=True)
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # pyjwt reads the clock itself; pin it so exp/nbf cases are exact.
    monkeypatch.setattr(jwt.api_jwt, "datetime", _FrozenDatetime)


class _FrozenDatetime:
    @staticmethod
    def now(tz: Any = None) -> Any:
        import datetime as real

        return real.datetime.fromtimestamp(NOW, tz=real.UTC)


# -- HS256 ----------------------------------------------------------------------------------------


def test_a_good_hs256_token_yields_the_caller() -> None:
    token = jwt.encode(claims(roles=["viewer", "admin"]), SECRET, algorithm="HS256")
    assert hs_verifier().verify(f"Bearer {token}") == Caller("alice", Role.ADMIN, "blue")


def test_mint_token_round_trips() -> None:
    token = mint_token(SECRET, subject="ci", role=Role.VIEWER, team="red", now=NOW)
    assert hs_verifier().verify(f"bearer {token}") == Caller("ci", Role.VIEWER, "red")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("not-a-jwt", "malformed token"),
        ("a.b.c", "malformed token"),
        (b64({"alg": "none", "typ": "JWT"}) + "." + b64(claims()) + ".", "token algorithm not allowed"),
        (b64({"alg": "HS512", "typ": "JWT"}) + "." + b64(claims()) + ".eA", "token algorithm not allowed"),
    ],
)
def test_malformed_and_unsigned_tokens_are_refused(token: str | None, expected: str) -> None:
    assert reason(hs_verifier(), token) == expected


def test_other_schemes_are_refused() -> None:
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    for header in [f"Basic {token}", token, "Bearer", "Bearer    "]:
        with pytest.raises(Unauthenticated, match="missing bearer token"):
            hs_verifier().verify(header)


@pytest.mark.parametrize(
    ("token_claims", "key", "expected"),
    [
        (claims(), "another-secret-another-secret-0123", "invalid signature"),
        (claims(exp=NOW - 31), SECRET, "token expired"),  # beyond the 30 s leeway
        (claims(nbf=NOW + 31), SECRET, "token not yet valid"),
        (claims(exp=None), SECRET, "missing claim exp"),
        (claims(sub=None), SECRET, "missing claim sub"),
        (claims(roles=None), SECRET, "no chaosplane role in token"),
        (claims(roles=["superuser"]), SECRET, "no chaosplane role in token"),
        (claims(roles="root"), SECRET, "no chaosplane role in token"),
        (claims(team=None), SECRET, "no team in token"),
        (claims(team=["blue"]), SECRET, "no team in token"),
        (claims(team=""), SECRET, "no team in token"),
        # `*` is the platform-wide lever's record; the others would read differently as a tag or a key.
        *[
            (claims(team=t), SECRET, "not a team name")
            for t in ["*", "Blue", " blue", "blue/x", "-b", "b" * 64]
        ],
        # Role names match exactly: "adm\u0131n" (a dotless i) upper-cases to ADMIN.
        *[
            (claims(roles=[r]), SECRET, "no chaosplane role in token")
            for r in ["adm\u0131n", "Admin", " admin", "ADMIN"]
        ],
    ],
)
def test_bad_hs256_tokens_are_refused_with_a_short_reason(
    token_claims: dict, key: str, expected: str
) -> None:
    assert reason(hs_verifier(), jwt.encode(token_claims, key, algorithm="HS256")) == expected


def test_leeway_tolerates_small_clock_skew_only() -> None:
    assert hs_verifier().verify("Bearer " + jwt.encode(claims(exp=NOW - 29), SECRET, algorithm="HS256"))
    assert hs_verifier().verify("Bearer " + jwt.encode(claims(nbf=NOW + 29), SECRET, algorithm="HS256"))
    with pytest.raises(ValueError):
        AuthSettings(jwt_leeway_seconds=61)


def test_issuer_and_audience_are_required_when_configured() -> None:
    verifier = hs_verifier(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    good = claims(iss=ISSUER, aud=AUDIENCE)
    assert verifier.verify("Bearer " + jwt.encode(good, SECRET, algorithm="HS256"))
    cases = [
        ({**good, "iss": "https://evil.example"}, "wrong issuer"),
        ({**good, "aud": "someone-else"}, "wrong audience"),
        ({k: v for k, v in good.items() if k != "iss"}, "missing claim iss"),
        ({k: v for k, v in good.items() if k != "aud"}, "missing claim aud"),
    ]
    for token_claims, expected in cases:
        assert reason(verifier, jwt.encode(token_claims, SECRET, algorithm="HS256")) == expected


def test_token_use_is_checked_where_the_issuer_sets_it() -> None:
    verifier = hs_verifier(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    id_token = claims(iss=ISSUER, aud=AUDIENCE, token_use="id")
    assert reason(verifier, jwt.encode(id_token, SECRET, algorithm="HS256")) == "wrong token use"
    id_verifier = hs_verifier(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_token_use="id")
    assert id_verifier.verify("Bearer " + jwt.encode(id_token, SECRET, algorithm="HS256"))


def test_a_cognito_access_token_names_its_audience_in_client_id() -> None:
    verifier = hs_verifier(jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    access = claims(iss=ISSUER, token_use="access", client_id=AUDIENCE)
    assert verifier.verify("Bearer " + jwt.encode(access, SECRET, algorithm="HS256")).team == "blue"
    cases = [
        ({**access, "client_id": "another-app"}, "wrong audience"),
        # client_id stands for aud only in an access token.
        ({**access, "token_use": None}, "missing claim aud"),
        # With both, aud is the one that counts.
        ({**access, "aud": "another-app"}, "wrong audience"),
    ]
    for token_claims, expected in cases:
        token_claims = {k: v for k, v in token_claims.items() if v is not None}
        assert reason(verifier, jwt.encode(token_claims, SECRET, algorithm="HS256")) == expected


def test_jwks_mode_is_not_built_without_an_issuer_and_an_audience() -> None:
    jwks = jwt.PyJWKClient("http://127.0.0.1:9/jwks.json")
    for missing in [{"jwt_issuer": ISSUER}, {"jwt_audience": AUDIENCE}, {}]:
        settings = AuthSettings(auth_mode=AuthMode.JWKS, jwks_url="http://127.0.0.1:9/jwks.json", **missing)
        with pytest.raises(ValueError, match="needs JWT_ISSUER and JWT_AUDIENCE"):
            TokenVerifier(settings, jwks=jwks)


def test_the_context_the_api_reads_back_holds_a_team_name() -> None:
    context = Caller("alice", Role.ADMIN, "blue").context()
    assert Caller.from_context(context) == Caller("alice", Role.ADMIN, "blue")
    assert Caller.from_context({**context, "team": "*"}) is None
    assert Caller.from_context({**context, "role": "Admin"}) is None


def test_claim_names_are_configurable() -> None:
    verifier = hs_verifier(role_claim="cognito:groups", team_claim="custom:team")
    token = jwt.encode(
        {**claims(roles=None, team=None), "cognito:groups": ["admin"], "custom:team": "green"},
        SECRET,
        algorithm="HS256",
    )
    assert verifier.verify(f"Bearer {token}") == Caller("alice", Role.ADMIN, "green")


def test_reasons_leak_nothing_of_the_token() -> None:
    token = jwt.encode(claims(team=None, sub="secret-principal-name"), SECRET, algorithm="HS256")
    message = reason(hs_verifier(), token)
    assert "secret-principal-name" not in message and "blue" not in message


# -- JWKS -----------------------------------------------------------------------------------------


class Issuer:
    """An OIDC issuer's key set, served over HTTP on loopback; keys can be rotated."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        self.rsa = self.add_rsa("rsa-1")
        self.ec = self.add_ec("ec-1")

    def add_rsa(self, kid: str) -> rsa.RSAPrivateKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = {
            **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())),
            "kid": kid,
            "alg": "RS256",
            "use": "sig",
        }
        return key

    def add_ec(self, kid: str) -> ec.EllipticCurvePrivateKey:
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = {
            **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        }
        return key

    def __call__(self, environ: dict, start_response: Any) -> Any:
        self.fetches += 1
        body = json.dumps({"keys": list(self.keys.values())})
        return Response(body, mimetype="application/json")(environ, start_response)


@pytest.fixture
def issuer() -> Iterator[tuple[Issuer, str]]:
    keys = Issuer()
    server = make_server("127.0.0.1", 0, keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield keys, f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


def jwks_verifier(url: str) -> TokenVerifier:
    settings = AuthSettings(auth_mode=AuthMode.JWKS, jwks_url=url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    return TokenVerifier(settings, jwks=jwt.PyJWKClient(url, cache_keys=True, lifespan=300))


def oidc_claims(**overrides: Any) -> dict[str, Any]:
    return claims(**{"iss": ISSUER, "aud": AUDIENCE, **overrides})


def test_rs256_and_es256_tokens_from_the_issuer_verify(issuer: tuple[Issuer, str]) -> None:
    keys, url = issuer
    verifier = jwks_verifier(url)
    rs = jwt.encode(oidc_claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(oidc_claims(roles=["viewer"]), keys.ec, algorithm="ES256", headers={"kid": "ec-1"})
    assert verifier.verify(f"Bearer {rs}").role is Role.OPERATOR
    assert verifier.verify(f"Bearer {es}").role is Role.VIEWER
    verifier.verify(f"Bearer {rs}")
    assert keys.fetches == 1, "keys are cached between verifications"


def test_jwks_attacks_are_refused(issuer: tuple[Issuer, str]) -> None:
    keys, url = issuer
    verifier = jwks_verifier(url)
    public_pem = keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # HS256 "signed" with the RSA public key: the classic algorithm-confusion attack.
    confused = b64({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}) + "." + b64(oidc_claims())
    import hashlib
    import hmac

    signature = hmac.new(public_pem, confused.encode(), hashlib.sha256).digest()
    confused += "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
    cases = [
        (confused, "token algorithm not allowed"),
        (
            jwt.encode(oidc_claims(), SECRET, algorithm="HS256", headers={"kid": "rsa-1"}),
            "token algorithm not allowed",
        ),
        (
            b64({"alg": "none", "kid": "rsa-1"}) + "." + b64(oidc_claims()) + ".",
            "token algorithm not allowed",
        ),
        (
            jwt.encode(oidc_claims(), stranger, algorithm="RS256", headers={"kid": "rsa-1"}),
            "invalid signature",
        ),
        (
            jwt.encode(oidc_claims(), stranger, algorithm="RS256", headers={"kid": "nobody"}),
            "unknown signing key",
        ),
        (jwt.encode(oidc_claims(), keys.rsa, algorithm="RS256"), "unknown signing key"),  # no kid
        # An RS256 key used to vouch for an ES256 header (or the reverse) is refused.
        (
            jwt.encode(oidc_claims(), keys.ec, algorithm="ES256", headers={"kid": "rsa-1"}),
            "token algorithm not allowed",
        ),
        (
            jwt.encode(oidc_claims(exp=NOW - 120), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}),
            "token expired",
        ),
        (
            jwt.encode(
                oidc_claims(iss="https://evil"), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}
            ),
            "wrong issuer",
        ),
        (
            jwt.encode(oidc_claims(aud="other"), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"}),
            "wrong audience",
        ),
    ]
    for token, expected in cases:
        assert reason(verifier, token) == expected, expected


def test_a_rotated_key_is_fetched_when_first_seen(
    issuer: tuple[Issuer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, url = issuer
    verifier = jwks_verifier(url)
    old = jwt.encode(oidc_claims(), keys.rsa, algorithm="RS256", headers={"kid": "rsa-1"})
    verifier.verify(f"Bearer {old}")
    new_key = keys.add_rsa("rsa-2")  # the issuer rotates
    del keys.keys["rsa-1"]
    # PyJWKClient refetches for an unknown kid at most every 30 s (so junk kids cannot flood the
    # issuer); rotations are rarer than that. Let that time pass.
    later = time.monotonic() + 31
    monkeypatch.setattr(jwt.jwks_client.time, "monotonic", lambda: later)
    fresh = jwt.encode(oidc_claims(), new_key, algorithm="RS256", headers={"kid": "rsa-2"})
    assert verifier.verify(f"Bearer {fresh}").principal == "alice"
    assert keys.fetches == 2


def test_an_unreachable_issuer_is_a_401_not_a_crash() -> None:
    verifier = jwks_verifier("http://127.0.0.1:9/jwks.json")
    token = jwt.encode(
        oidc_claims(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": "k"},
    )
    assert reason(verifier, token) == "signing keys unavailable"


# -- the authorizer's answer ----------------------------------------------------------------------


def test_the_authorizer_allows_the_whole_stage_and_passes_the_caller() -> None:
    method_arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/POST/experiments/x/run"
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    decision = authorize(hs_verifier(), {"authorizationToken": f"Bearer {token}", "methodArn": method_arn})
    statement = decision["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert (
        statement["Resource"]
        == stage_wildcard(method_arn)
        == "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"
    )
    assert decision["context"] == {"principal": "alice", "role": "operator", "team": "blue"}


def test_the_authorizer_denies_with_a_reason() -> None:
    decision = authorize(hs_verifier(), {"authorizationToken": "Bearer nope", "methodArn": "arn:x"})
    assert decision["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert decision["context"] == {"reason": "malformed token"}  # all a client learns
