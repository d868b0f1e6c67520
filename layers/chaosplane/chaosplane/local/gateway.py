"""A local API Gateway: HTTP request -> REST API proxy event -> Lambda invoke -> HTTP response.

Powertools' local resolver neither emulates a REST proxy event nor goes through Lambda; this does
both, so the API function runs exactly as API Gateway would call it, via the embedded Lambda.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

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


class LocalGateway:
    """WSGI app: each request is one synchronous invoke of the API function."""

    def __init__(
        self, lambda_client: Any, function_name: str, max_body_bytes: int = 10 * 1024 * 1024
    ) -> None:
        self._lambda = lambda_client
        self._function = function_name
        self._max_body = max_body_bytes  # API Gateway's own payload limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.perf_counter()
        response = self.handle(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        access_log.info(
            "%s %s %s %.0fms", request.method, request.full_path.rstrip("?"), response.status_code, elapsed_ms
        )
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        if (request.content_length or 0) > self._max_body:
            return Response(json.dumps({"message": "Request Too Long"}), 413, mimetype="application/json")
        raw = request.get_data()
        try:
            body = raw.decode() if raw else None
        except UnicodeDecodeError:
            return Response(json.dumps({"message": "body is not UTF-8"}), 400, mimetype="application/json")
        event = rest_event(
            request.method,
            request.path,
            query={k: request.args.getlist(k) for k in request.args},
            headers={k: v for k, v in request.headers.items()},
            body=body,
            source_ip=request.remote_addr or "127.0.0.1",
        )
        invoked = self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
        payload = json.loads(invoked["Payload"].read() or b"null")
        if invoked.get("FunctionError") or not isinstance(payload, dict) or "statusCode" not in payload:
            # What API Gateway answers when the integration fails.
            return Response(
                json.dumps({"message": "Internal server error"}), 502, mimetype="application/json"
            )
        return to_http(payload)


def to_http(payload: dict[str, Any]) -> Response:
    headers = Headers()
    for key, value in (payload.get("headers") or {}).items():
        headers[key] = value
    for key, values in (payload.get("multiValueHeaders") or {}).items():
        for value in values:
            if key not in headers or headers.get(key) != value:
                headers.add(key, value)
    body = payload.get("body") or ""
    data = base64.b64decode(body) if payload.get("isBase64Encoded") else body.encode()
    return Response(data, status=int(payload["statusCode"]), headers=headers)
