"""Builds the API resolver from its collaborators (store and run service).

Why a builder instead of module-level routers: the routes close over the store and run service
they are given, so tests and the local runtime pass real or fake ones without patching globals.

Every request passes one gate before Powertools parses it: body size and encoding, then the route's minimum
role (api/access.py), so a caller without the role learns nothing from validation errors. After
the response, every mutating request, every denied one and every one naming a resource the team has
not (a 404 on a path with an id: another team's looks exactly like a missing one) is written to the
audit trail, with the answer's message as its reason. An entry that cannot be written turns the
answer into a 500: an unrecorded change is never reported as done.

Bad input is a 4xx, never a 5xx: a body that is not JSON, or nests deeper than api/body.py allows,
is a 400; a body sent as anything but JSON (a form, multipart) is a 415; a known path asked with a
method it does not have is a 405 naming the ones it has. The
OpenAPI document declares every status each operation can answer (api/responses.py).
"""

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Route
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from chaosplane.api import (
    access,
    audit,
    body,
    experiments,
    notifications,
    responses,
    results,
    safety,
    schedules,
    targets,
    teams,
    ui,
)
from chaosplane.auth import Caller
from chaosplane.errors import Conflict, InvalidRequest, NotFound, TransientError
from chaosplane.faults.http import WebhookSecrets
from chaosplane.faults.specs import MULTI_STEP
from chaosplane.models import AuditEntry, AuditOutcome, FaultType, TargetType, utcnow
from chaosplane.notifications import Notifications
from chaosplane.runs import Runs
from chaosplane.scheduling import Scheduling
from chaosplane.store import Store
from chaosplane.webhooks import Targets

TITLE = "Chaosplane API"
VERSION = "1.0.0"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
logger = logging.getLogger(__name__)


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response[str]:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def _proxy_error(status: int, message: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **(headers or {})},
        "body": json.dumps({"message": message}),
        "isBase64Encoded": False,
    }


def _body_problem(event: Mapping[str, Any], max_bytes: int) -> dict[str, Any] | None:
    """413 or 400 for a body the API will not read, else None.

    API Gateway passes every body base64-encoded (template.yaml makes every media type binary, for
    the fonts): its size is that of the decoded bytes, and those must be UTF-8, as JSON is.
    """
    text = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return (
            _proxy_error(413, f"request body is larger than {max_bytes} bytes")
            if len(text.encode()) > max_bytes
            else None
        )
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        return _proxy_error(400, "body is not valid base64")
    if len(data) > max_bytes:
        return _proxy_error(413, f"request body is larger than {max_bytes} bytes")
    try:
        data.decode()
    except UnicodeDecodeError:
        return _proxy_error(400, "body is not UTF-8")
    return None


_FIELD_NAME = re.compile(r"^[\w.:/-]{1,64}$")


_TAGS = frozenset({*TargetType, *FaultType, MULTI_STEP})


def _field(error: Mapping[str, Any]) -> str:
    """The field an error is about, as the client spelt it.

    Target and experiment bodies are unions tagged by `type`, and pydantic puts the tag in the
    location (`body.ec2-stop.parameters.force`): the client wrote `body.parameters.force`, so
    the tag is left out, and a tag that matches no variant is an error of `body.type`.
    """
    loc = list(error["loc"])
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # A discriminator that is a function (an experiment's: `type`, or `actions`) says `type`.
        tag = str((error.get("ctx") or {}).get("discriminator", "type")).strip("'")
        loc.append("type" if tag.endswith("()") else tag)
    elif len(loc) > 1 and loc[0] == "body" and loc[1] in _TAGS:
        del loc[1]
    # An unknown key is named in the error: never echo such a "name" back.
    return ".".join(str(p) if isinstance(p, int) or _FIELD_NAME.match(str(p)) else "<unknown>" for p in loc)


def _problem(problem: str, within: str | None) -> dict[str, str]:
    """A problem `path: what` of a document the body carries (at `within`), as a field error."""
    path, sep, _ = problem.partition(": ")
    where = ".".join(p for p in ("body", within, path if sep and _FIELD_NAME.match(path) else None) if p)
    return {"field": where, "message": problem, "type": "value_error"}


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "union_tag_not_found" and "()" in str((error.get("ctx") or {}).get("discriminator")):
        return "an experiment needs `type` (its one fault) or `actions` (its steps)"
    return str(error["msg"])


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind in ("", "application/json") or kind.endswith("+json")


def _object_body(text: str) -> Any:
    """Every body of this API is a JSON object. Powertools reads a list body as its first item (as
    for a form's repeated fields), so `[{...}]` or `[null]` would pass for a body: refuse them here."""
    value = body.loads(text)
    if not isinstance(value, dict):
        error = {"type": "model_type", "loc": ("body",), "msg": "Input should be a JSON object", "input": {}}
        raise RequestValidationError([error])
    return value


def _content_type(event: Mapping[str, Any]) -> str:
    headers = event.get("headers") or {}
    return next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "")


def caller_of(event: Mapping[str, Any]) -> Caller | None:
    """The caller the authorizer vouched for; the API trusts nothing else about identity."""
    return Caller.from_context((event.get("requestContext") or {}).get("authorizer"))


def _outcome(status: int) -> AuditOutcome:
    if status in (401, 403):
        return AuditOutcome.DENIED
    if status >= 500:
        return AuditOutcome.FAILED
    if status >= 400:
        return AuditOutcome.REJECTED
    return AuditOutcome.ALLOWED


def _reason(response: dict[str, Any]) -> str | None:
    """The message of an error answer, which says why (at most 500 characters)."""
    try:
        body = json.loads(response.get("body") or "null")
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:500] if message else None


def _resource_id(path_arguments: dict[str, str], response: dict[str, Any]) -> str | None:
    for name in ("target_id", "experiment_id", "result_id"):
        if name in path_arguments:
            return path_arguments[name]
    try:
        body = json.loads(response.get("body") or "null")
    except ValueError:
        return None
    return (body.get("id") or body.get("result_id")) if isinstance(body, dict) else None


class _Resolver(APIGatewayRestResolver):
    def __init__(self, max_body_bytes: int, record_audit: Callable[[AuditEntry], None]) -> None:
        super().__init__(enable_validation=True, json_body_deserializer=_object_body)
        self._max_body_bytes = max_body_bytes
        self._record_audit = record_audit
        self._event: BaseProxyEvent | None = None
        self._lambda_context: Any = None

    # Powertools keeps the event being resolved on a class (BaseRouter.current_event), shared by
    # every resolver in the process: right on Lambda, one event per process, but wrong wherever
    # one process resolves two events at once (the local platform runs each execution environment
    # in a thread). A request could then be routed by another's path or read another's body. This
    # resolver keeps its own; its routers read it through `api_resolver`.
    @property  # type: ignore[override]
    def current_event(self) -> BaseProxyEvent:
        if self._event is None:
            raise RuntimeError("no event is being resolved")
        return self._event

    @current_event.setter
    def current_event(self, event: BaseProxyEvent) -> None:
        self._event = event

    @property
    def lambda_context(self) -> Any:
        return self._lambda_context

    @lambda_context.setter
    def lambda_context(self, context: Any) -> None:
        self._lambda_context = context

    def routes(self) -> list[Route]:
        return [*self._static_routes, *self._dynamic_routes]

    def enable_swagger(self, **options: Any) -> None:
        """Powertools' Swagger UI route, whose handler is made by the first request for it.

        Powertools' enable_swagger imports its OpenAPI models (pydantic models of the whole OpenAPI
        specification, a tenth of a second) as it registers the route, so every cold start paid
        for them; no other request needs them. The route is registered now, and Powertools' own
        handler made on the page's first request: by its enable_swagger, called with this
        resolver as `self` but for `get`, which keeps the handler instead of registering it.
        """
        made: list[Callable[[], Any]] = []
        resolver = self

        class Keeper:
            def __getattr__(self, name: str) -> Any:
                return getattr(resolver, name)

            def get(self, *args: Any, **kwargs: Any) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
                def keep(handler: Callable[[], Any]) -> Callable[[], Any]:
                    made.append(handler)
                    return handler

                return keep

        @self.get(options["path"], include_in_schema=False)
        def swagger() -> Any:
            if not made:
                APIGatewayRestResolver.enable_swagger(Keeper(), **options)  # type: ignore[arg-type]
            return made[0]()

    def _routes_for(self, path: str) -> list[Route]:
        """The routes whose rule matches `path`. A literal path shadows a parameterised one:
        `/experiments/import` is never the experiment `import` (ids are UUIDs), whatever the method."""
        matching = [route for route in self.routes() if route.rule.match(path)]
        return [route for route in matching if "<" not in route.path] or matching

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self._routes_for(path):
            if route.method == method and (found := route.rule.match(path)):
                return route, found.groupdict()
        return None, {}

    def allowed_methods(self, path: str) -> list[str]:
        """The methods some route has for `path` (none for an unknown path)."""
        return sorted({route.method for route in self._routes_for(path)})

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        method, path = str(event.get("httpMethod", "")).upper(), str(event.get("path", ""))
        route, arguments = self._match(method, path)
        caller = caller_of(event)
        try:
            if route is not None:
                access.check(method, route.path, caller)
            if (problem := _body_problem(event, self._max_body_bytes)) is not None:
                response = problem
            elif route is None and (allowed := self.allowed_methods(path)):
                # A known path with a method it lacks: 405 and what it has (RFC 9110 15.5.6).
                response = _proxy_error(
                    405, f"{method} is not allowed on {path}", headers={"Allow": ", ".join(allowed)}
                )
            elif (
                route is not None
                and method in responses.MUTATING
                and event.get("body")
                and not _is_json(_content_type(event))
            ):
                # Every body is JSON; a form (curl without -H) or a multipart body is not parsed.
                response = _proxy_error(415, "send the request body as JSON (Content-Type: application/json)")
            else:
                self._event, self._lambda_context = self._to_proxy_event(dict(event)), context
                try:
                    response = super().resolve(event, context)
                finally:
                    self._event, self._lambda_context = None, None
        except access.Denied as denied:
            response = _proxy_error(denied.status, str(denied))
        status = response["statusCode"]
        if caller is not None and (
            method not in SAFE_METHODS or status in (401, 403) or (status == 404 and arguments)
        ):
            return self._audit(event, caller, method, route.path if route else path, arguments, response)
        return response

    def _audit(
        self,
        event: Mapping[str, Any],
        caller: Caller,
        method: str,
        rule: str,
        arguments: dict[str, str],
        response: dict[str, Any],
    ) -> dict[str, Any]:
        """Record the request; the response as it was, or a 500 if the entry could not be written."""
        status = int(response["statusCode"])
        entry = AuditEntry(
            at=utcnow(),
            team=caller.team,
            principal=caller.principal,
            role=caller.role.label,
            method=method,
            route=re.sub(r"<(\w+)>", r"{\1}", rule),
            path=str(event.get("path", "")),
            resource_id=_resource_id(arguments, response),
            status=status,
            outcome=_outcome(status),
            request_id=str((event.get("requestContext") or {}).get("requestId", "")),
            reason=_reason(response) if status >= 400 else None,
        )
        try:
            self._record_audit(entry)
        except Exception:
            # The entry goes to the log whole, and the caller is told: a change nobody can trace is
            # never answered as done (it may have been made: the request id finds it in the log).
            logger.exception("audit entry could not be written: %s", entry.model_dump_json())
            return _proxy_error(
                500,
                f"the audit trail could not record this request ({entry.request_id}); what it asked "
                "may have been done: check before you repeat it",
            )
        return response


def build_app(
    store: Store,
    runs: Runs,
    max_body_bytes: int = 64 * 1024,
    platform_team: str = "platform",
    scheduling: Scheduling | None = None,
    webhook_secrets: WebhookSecrets | None = None,
    notifications_service: Notifications | None = None,
    token_url: str = "",
    region: str | None = None,
) -> APIGatewayRestResolver:
    """`region`: the platform's, for the ARNs of an exported FIS template."""
    app = _Resolver(max_body_bytes, store.record_audit)
    built: list[Notifications] = [notifications_service] if notifications_service else []

    def notifications_of() -> Notifications:
        # Built on first use when not given: its AWS clients are needed by /notifications only.
        if not built:
            from chaosplane.wiring.notifications import build_notifications

            built.append(build_notifications(store))
        return built[0]

    def caller() -> Caller:
        found = caller_of(app.current_event.raw_event)
        if found is None:  # the gate lets no non-public route through without one
            raise RuntimeError("no caller on a route that needs one")
        return found

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me", tags=["auth"])
    def me() -> dict[str, str]:
        """Who the token says you are: the dashboard shows only the buttons your role may use."""
        return caller().context()

    app.include_router(targets.router(store, caller, Targets(store, webhook_secrets)))
    app.include_router(experiments.router(store, runs, caller, scheduling, region))
    if scheduling is not None:
        app.include_router(schedules.router(scheduling, caller))
    app.include_router(results.router(store, runs, caller))
    app.include_router(audit.router(store, caller))
    app.include_router(safety.router(store, runs, caller, platform_team))
    app.include_router(teams.router(store, caller, platform_team))
    app.include_router(notifications.router(notifications_of, caller))
    app.include_router(ui.router(token_url))

    for route in app.routes():
        responses.document(route, public=access.required_role(route.method, route.path) is access.PUBLIC)

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
        errors = [{"field": _field(e), "message": _message(e), "type": e["type"]} for e in err.errors()]
        return _error(422, "request is invalid", errors)

    @app.exception_handler(body.MalformedBody)
    def malformed(err: body.MalformedBody) -> Response[str]:
        return _error(400, str(err), [{"field": "body", "message": str(err), "type": "json_invalid"}])

    @app.exception_handler(NotFound)
    def not_found(err: NotFound) -> Response[str]:
        return _error(404, str(err))

    @app.exception_handler(Conflict)
    def conflict(err: Conflict) -> Response[str]:
        return _error(409, str(err))

    @app.exception_handler(TransientError)
    def busy(err: TransientError) -> Response[str]:
        response = _error(503, str(err))
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(InvalidRequest)
    def unusable(err: InvalidRequest) -> Response[str]:
        if err.problems:
            return _error(422, str(err), [_problem(p, err.field) for p in err.problems])
        if err.field is None:
            return _error(422, str(err))
        return _error(
            422, str(err), [{"field": f"body.{err.field}", "message": str(err), "type": "value_error"}]
        )

    @app.not_found
    def no_route(_: Exception) -> Response[str]:
        return _error(404, f"no route for {app.current_event.http_method} {app.current_event.path}")

    return app
