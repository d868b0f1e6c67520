"""A local API Gateway: HTTP request -> throttle -> authorizer -> REST proxy event -> Lambda.

Powertools' local resolver neither emulates a REST proxy event nor runs a Lambda authorizer; this
does both, in API Gateway's order, from what template.yaml configures: the TOKEN authorizer and its
cache TTL, the routes that need no token, the gateway responses (401 with a reason, 429), the
throttles, one bucket per method shared by every caller as on AWS (`method_of`), and the binary
media types (see `arriving`).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from chaosplane.local.deploy import ApiConfig
from chaosplane.local.template import ACCOUNT_ID

STAGE = "v1"
access_log = logging.getLogger("gateway")


def rest_event(
    method: str,
    path: str,
    *,
    query: Mapping[str, Iterable[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """An API Gateway REST API proxy event (the `/{proxy+}` resource), as Lambda receives it."""
    multi_query: dict[str, list[str]] = {k: list(v) for k, v in (query or {}).items()}
    headers = dict(headers or {})
    now = datetime.now(UTC)
    return {
        "resource": "/" if path == "/" else "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None if path == "/" else {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "resourcePath": "/" if path == "/" else "/{proxy+}",
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "protocol": "HTTP/1.1",
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": body,
        "isBase64Encoded": False,
    }


class TokenBucket:
    """API Gateway's throttle: `rate` requests a second on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token; return 0 if granted, else the seconds until one is available."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate


@dataclass
class _Decision:
    allowed: bool
    principal: str
    context: dict[str, Any]
    expires: float


def first_media_type(header: str | None) -> str:
    """The first media type of a Content-Type or Accept header, without its parameters."""
    return (header or "").split(",")[0].split(";")[0].strip().lower()


def is_binary(media_type: str, binary_media_types: Iterable[str]) -> bool:
    """Whether API Gateway treats `media_type` as binary (entries may hold wildcards, e.g. */*)."""
    return bool(media_type) and any(fnmatch.fnmatchcase(media_type, t.lower()) for t in binary_media_types)


def request_body(raw: bytes, content_type: str | None, binary_media_types: Iterable[str]) -> tuple[str, bool]:
    """The body and isBase64Encoded of the proxy event, as API Gateway passes a request's body:
    base64-encoded when its Content-Type is a binary media type, else as text."""
    if is_binary(first_media_type(content_type), binary_media_types):
        return base64.b64encode(raw).decode(), True
    return raw.decode(), False


def arriving(payload: Mapping[str, Any], accept: str | None, binary_media_types: Iterable[str]) -> bytes:
    """The bytes a client receives for a Lambda proxy response, by API Gateway's rules.

    A base64-encoded body is decoded only when the request's *first* Accept type is a binary media
    type; otherwise the client gets the base64 text itself. A body not marked base64 goes as it is.
    """
    body = str(payload.get("body") or "")
    if payload.get("isBase64Encoded") and is_binary(first_media_type(accept), binary_media_types):
        return base64.b64decode(body)
    return body.encode()


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers=headers, mimetype="application/json")


def _path_matches(resource: str, path: str) -> bool:
    """Does an API Gateway resource path (`/ui`, `/ui/{proxy+}`, `/a/{id}`) match a request path?

    As API Gateway does: a trailing slash is ignored, `{name}` is one segment, `{name+}` one or more.
    """
    pattern = re.sub(r"\\\{\w+\\\+\\\}", "[^?]+", re.escape(resource.rstrip("/") or "/"))
    pattern = re.sub(r"\\\{\w+\\\}", "[^/?]+", pattern)
    return re.fullmatch(pattern, path.rstrip("/") or "/") is not None


def access_line(log_format: str, context: Mapping[str, str]) -> str:
    """An access log line in the stage's Format: each $context.name as API Gateway fills it, "-"
    where it has no value, escaped for the JSON string it stands in."""
    return re.sub(
        r"\$context\.([\w.]+)",
        lambda m: json.dumps(context.get(m[1]) or "-")[1:-1],
        log_format,
    )


def _message_of(response: Response) -> str:
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return ""
    return str(body.get("message") or "") if isinstance(body, dict) else ""


def method_of(methods: Iterable[tuple[str, str]], method: str, path: str) -> tuple[str, str] | None:
    """The API method (method or ANY, resource path) that serves a request, as API Gateway picks it:
    the resource with the fewest greedy `{name+}` segments, then its own method before ANY."""
    resources = sorted(
        {resource for _, resource in methods if _path_matches(resource, path)},
        key=lambda resource: ("+}" in resource, -len(resource)),
    )
    for resource in resources[:1]:
        for candidate in ((method, resource), ("ANY", resource)):
            if candidate in methods:
                return candidate
    return None


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value, pattern)


class LocalGateway:
    """WSGI app: throttling, the authorizer and the API function, in API Gateway's order."""

    def __init__(
        self,
        lambda_client: Any,
        config: ApiConfig,
        max_body_bytes: int = 10 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lambda = lambda_client
        self._config = config
        self._max_body = max_body_bytes  # API Gateway's own payload limit
        self._clock = clock
        self._decisions: dict[str, _Decision] = {}
        self._buckets: dict[tuple[str, str] | None, TokenBucket] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.perf_counter()
        context: dict[str, str] = {}
        response = self.handle(request, context)
        context.update(
            {
                "status": str(response.status_code),
                "responseLatency": f"{(time.perf_counter() - started) * 1000:.0f}",
                "responseLength": str(response.content_length or 0),
            }
        )
        if self._config.access_log_format is None:
            access_log.info(
                "%s %s %s %sms",
                request.method,
                request.full_path.rstrip("?"),
                context["status"],
                context["responseLatency"],
            )
        else:
            access_log.info("%s", access_line(self._config.access_log_format, context))
        return response(environ, start_response)

    def handle(self, request: Request, context: dict[str, str] | None = None) -> Response:
        """Answer `request`; `context` gets what its access log line says ($context.* by name)."""
        context = {} if context is None else context
        api_method = method_of(self._config.methods, request.method, request.path)
        context.update(
            {
                "requestId": str(uuid.uuid4()),
                "identity.sourceIp": request.remote_addr or "127.0.0.1",
                "identity.userAgent": request.headers.get("User-Agent", ""),
                "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "httpMethod": request.method,
                "resourcePath": api_method[1] if api_method else "",
                "path": f"/{STAGE}{request.path}",
            }
        )
        response = self._handle(request, api_method, context)
        if response.status_code >= 400 and "error.message" not in context:
            context["error.message"] = _message_of(response)
        return response

    def _handle(
        self, request: Request, api_method: tuple[str, str] | None, context: dict[str, str]
    ) -> Response:
        if (request.content_length or 0) > self._max_body:
            return _json(413, {"message": "Request Too Long"})
        raw = request.get_data()
        encoded = False
        try:
            body, encoded = (
                request_body(raw, request.headers.get("Content-Type"), self._config.binary_media_types)
                if raw
                else (None, False)
            )
        except UnicodeDecodeError:
            return _json(400, {"message": "body is not UTF-8"})
        event = rest_event(
            request.method,
            request.path,
            query={k: request.args.getlist(k) for k in request.args},
            headers=dict(request.headers.items()),
            body=body,
            source_ip=request.remote_addr or "127.0.0.1",
        )
        event["isBase64Encoded"] = encoded
        event["requestContext"]["requestId"] = context["requestId"]
        # Throttled before the authorizer: a flood without tokens spends the same method's bucket.
        wait = self._bucket(api_method).take()
        if wait > 0:
            context["error.responseType"] = "THROTTLED"
            return self._gateway_response(
                "THROTTLED",
                {},
                default=(429, {"message": "Too Many Requests"}),
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if self._needs_authorizer(request.method, request.path):
            token = request.headers.get(self._config.identity_header)
            if not token:
                context["error.responseType"] = "UNAUTHORIZED"
                return self._gateway_response("UNAUTHORIZED", {}, default=(401, {"message": "Unauthorized"}))
            decision = self._authorize(token, request.method, request.path)
            if decision is None:
                context["error.responseType"] = "AUTHORIZER_FAILURE"
                return _json(500, {"message": None})  # what API Gateway answers when the authorizer fails
            context.update({f"authorizer.{k}": v for k, v in decision.context.items()})
            context["authorizer.principalId"] = decision.principal
            if not decision.allowed:
                context["error.responseType"] = "ACCESS_DENIED"
                return self._gateway_response(
                    "ACCESS_DENIED", decision.context, default=(403, {"message": "Forbidden"})
                )
            event["requestContext"]["authorizer"] = {"principalId": decision.principal, **decision.context}
        return self._invoke(event, request.headers.get("Accept"))

    def _needs_authorizer(self, method: str, path: str) -> bool:
        if self._config.authorizer_function is None:
            return False
        return not any(m == method and _path_matches(p, path) for m, p in self._config.public_routes)

    def _authorize(self, token: str, method: str, path: str) -> _Decision | None:
        now = self._clock()
        with self._lock:
            cached = self._decisions.get(token)
        if cached is not None and cached.expires > now:
            return cached
        method_arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:local/{STAGE}/{method}{path}"
        invoked = self._lambda.invoke(
            FunctionName=self._config.authorizer_function,
            Payload=json.dumps(
                {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
            ).encode(),
        )
        answer = json.loads(invoked["Payload"].read() or b"null")
        if invoked.get("FunctionError") or not isinstance(answer, dict) or "policyDocument" not in answer:
            return None
        statements = answer["policyDocument"].get("Statement", [])
        applicable = [st for st in statements if _matches(str(st.get("Resource", "")), method_arn)]
        allowed = bool(applicable) and all(st.get("Effect") == "Allow" for st in applicable)
        decision = _Decision(
            allowed=allowed,
            principal=str(answer.get("principalId", "")),
            context={k: str(v) for k, v in (answer.get("context") or {}).items()},
            expires=now + self._config.authorizer_ttl_seconds,
        )
        if self._config.authorizer_ttl_seconds > 0:
            with self._lock:
                self._decisions[token] = decision
        return decision

    def _bucket(self, api_method: tuple[str, str] | None) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(api_method)
            if bucket is None:
                rate, burst = self._config.method_throttles.get(
                    api_method or ("", ""), (self._config.rate_limit, self._config.burst_limit)
                )
                bucket = TokenBucket(rate, burst, self._clock)
                self._buckets[api_method] = bucket
            return bucket

    def _gateway_response(
        self,
        kind: str,
        authorizer_context: dict[str, Any],
        default: tuple[int, dict[str, Any]],
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Render a gateway response as template.yaml's GatewayResponses configure it."""
        configured = self._config.gateway_responses.get(kind)
        if configured is None:
            return _json(default[0], default[1], headers)
        template = configured.get("ResponseTemplates", {}).get("application/json")
        if template is None:
            body = json.dumps(default[1])
        else:
            body = re.sub(
                r"\$context\.authorizer\.(\w+)",
                lambda m: json.dumps(str(authorizer_context.get(m[1], "")))[1:-1],
                template,
            )
        all_headers = {
            name: value.strip("'")
            for name, value in configured.get("ResponseParameters", {}).get("Headers", {}).items()
        }
        all_headers.update(headers or {})
        return Response(
            body,
            int(configured.get("StatusCode", default[0])),
            headers=all_headers,
            mimetype="application/json",
        )

    def _invoke(self, event: dict[str, Any], accept: str | None) -> Response:
        invoked = self._lambda.invoke(FunctionName=self._config.function, Payload=json.dumps(event).encode())
        payload = json.loads(invoked["Payload"].read() or b"null")
        if invoked.get("FunctionError") or not isinstance(payload, dict) or "statusCode" not in payload:
            # What API Gateway answers when the integration fails; the log says why (CloudWatch would).
            access_log.error(
                "integration failed for %s %s: %s",
                event.get("httpMethod"),
                event.get("path"),
                json.dumps(payload)[:2000],
            )
            return _json(502, {"message": "Internal server error"})
        return to_http(payload, arriving(payload, accept, self._config.binary_media_types))


def to_http(payload: dict[str, Any], data: bytes) -> Response:
    headers = Headers()
    for key, value in (payload.get("headers") or {}).items():
        headers[key] = value
    for key, values in (payload.get("multiValueHeaders") or {}).items():
        for value in values:
            if key not in headers or headers.get(key) != value:
                headers.add(key, value)
    return Response(data, status=int(payload["statusCode"]), headers=headers)
