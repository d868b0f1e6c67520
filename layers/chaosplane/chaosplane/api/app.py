"""Builds the API resolver from its collaborators (store and run service).

Why a builder instead of module-level routers: the routes close over the store and run service
they are given, so tests and the local runtime pass real or fake ones without patching globals.
"""

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from chaosplane.api import experiments, results, targets
from chaosplane.errors import Conflict, InvalidRequest, NotFound
from chaosplane.runs import Runs
from chaosplane.store import Store

TITLE = "Chaosplane API"
VERSION = "1.0.0"


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response[str]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


class _Resolver(APIGatewayRestResolver):
    """Refuses oversize bodies before anything parses them (Powertools validates before middlewares)."""

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(enable_validation=True)
        self._max_body_bytes = max_body_bytes

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        body = event.get("body") or ""
        if len(body.encode()) > self._max_body_bytes:
            return {
                "statusCode": 413,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps({"message": f"request body is larger than {self._max_body_bytes} bytes"}),
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def build_app(store: Store, runs: Runs, max_body_bytes: int = 64 * 1024) -> APIGatewayRestResolver:
    app = _Resolver(max_body_bytes)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(targets.router(store))
    app.include_router(experiments.router(store, runs))
    app.include_router(results.router(store))

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=app.get_openapi_json_schema(title=TITLE, version=VERSION),
        )

    app.enable_swagger(path="/docs", title=TITLE, version=VERSION)

    @app.exception_handler(RequestValidationError)
    def invalid(err: RequestValidationError) -> Response[str]:
        # Field-level messages; never echo the input back (it may hold a secret pasted by mistake).
        errors = [{"field": _field(e["loc"]), "message": e["msg"], "type": e["type"]} for e in err.errors()]
        return _error(422, "request is invalid", errors)

    @app.exception_handler(NotFound)
    def not_found(err: NotFound) -> Response[str]:
        return _error(404, str(err))

    @app.exception_handler(Conflict)
    def conflict(err: Conflict) -> Response[str]:
        return _error(409, str(err))

    @app.exception_handler(InvalidRequest)
    def unusable(err: InvalidRequest) -> Response[str]:
        return _error(422, str(err))

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        return _error(404, f"no route for {app.current_event.http_method} {app.current_event.path}")

    return app
