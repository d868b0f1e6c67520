"""A typed Python client of the Chaosplane HTTP API (what the `chaosplane` CLI uses).

    from chaosplane.client import Client

    with Client("https://abc.execute-api.eu-west-1.amazonaws.com/v1", token=TOKEN) as api:
        run = api.run_experiment(experiment_id)
        result = api.wait_for_result(run.result_id)
        print(result.status, result.failure_kind, result.stop_kind)

Requests time out (`timeout`), and are retried with exponential backoff (`retries`) when that is
safe: connection failures always (the request never left), and 429/502/503/504 answers for the
idempotent methods (GET, PUT, DELETE), honouring Retry-After. A POST (create, run, stop, halt) is
retried only on 429, which API Gateway answers before the request reaches the API: retrying a
POST whose answer was lost could start a second run. Errors are typed (`NotFound`, `Conflict`,
`ValidationFailed` with the API's field errors, ...) and carry the API's own message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import requests
from pydantic import BaseModel, TypeAdapter, ValidationError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from chaosplane.contracts import FisImported, LeverResult, RunAccepted, RunRequest, StopConditionState
from chaosplane.models import (
    AuditEntry,
    Experiment,
    ExperimentResult,
    ExperimentSpec,
    Lever,
    Page,
    Schedule,
    Target,
    TargetSpec,
)
from chaosplane.resilience import Resilience

__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "Conflict",
    "ConnectionFailed",
    "FieldError",
    "Forbidden",
    "InvalidArgument",
    "NotFound",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "ValidationFailed",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MAX_PAGE = 100  # the API's largest page
RETRY_STATUSES = (429, 502, 503, 504)
USER_AGENT = "chaosplane-client/1"
M = TypeVar("M", bound=BaseModel)


# -- errors ---------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base of every error this client raises."""


class InvalidArgument(ClientError, ValueError):
    """Refused before sending: e.g. an id that would change the request's path."""


class ConnectionFailed(ClientError):
    """The API could not be reached (refused, DNS, TLS, timeout), after the retries."""


class ApiError(ClientError):
    """The API answered with an error status; `message` is what it said."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})"


class Unauthorized(ApiError):
    """401: no token, or one the API refused (expired, bad signature...): `reason` says which."""

    @property
    def reason(self) -> str | None:
        return self.body.get("reason") if isinstance(self.body, dict) else None

    def __str__(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"{self.message}{why} (HTTP 401)"


class Forbidden(ApiError):
    """403: the token's role may not do this."""


class NotFound(ApiError):
    """404: no such item (or it belongs to another team)."""


class Conflict(ApiError):
    """409: valid, but the current state forbids it (already running, in use, emergency stop...)."""


class FieldError(BaseModel):
    field: str
    message: str
    type: str = ""


class ValidationFailed(ApiError):
    """422 (or 400/413): the request was refused as invalid; `errors` are the API's field errors."""

    @property
    def errors(self) -> list[FieldError]:
        raw = self.body.get("errors") if isinstance(self.body, dict) else None
        return [FieldError.model_validate(e) for e in raw or [] if isinstance(e, dict)]

    def __str__(self) -> str:
        details = "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in self.errors)
        return f"{self.message}{': ' + details if details else ''} (HTTP {self.status})"


class RateLimited(ApiError):
    """429, after the retries: `retry_after` seconds is when the API said to come back."""

    retry_after: float | None = None


class ServerError(ApiError):
    """5xx, after the retries."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: ValidationFailed,
    422: ValidationFailed,
    429: RateLimited,
}


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def error_from(response: requests.Response) -> ApiError:
    """The typed error for an error answer, with the API's message (or the status line)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        text = (response.text or "").strip()
        message = text[:200] if text and not text.startswith("<") else (response.reason or "error")
    kind = _BY_STATUS.get(response.status_code)
    if kind is None:
        kind = ServerError if response.status_code >= 500 else ApiError
    error = kind(response.status_code, message, body)
    if isinstance(error, RateLimited):
        error.retry_after = _retry_after(response)
    return error


# -- answers that have no model in chaosplane.models ------------------------------------------------


class SafetyStatus(BaseModel):
    team: str
    lever: Lever | None = None
    policy: dict[str, Any]  # a dict, not SafetyPolicy: a newer API's extra policy fields still read


_STOP_CONDITIONS = TypeAdapter(list[StopConditionState])


# -- the client -----------------------------------------------------------------------------------


class Client:
    """One API endpoint and one identity. Thread-compatible, not thread-safe (one requests.Session).

    `token` is a bearer token; or `token_provider` is called for one when first needed, and once
    more when the API answers 401 (a rotated or expired token is fetched again, once).
    """

    def __init__(
        self,
        api_url: str,
        token: str | None = None,
        *,
        token_provider: Callable[[], str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise ValueError(f"the API URL must start with http:// or https://, not {api_url!r}")
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._token_provider = token_provider
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._session = session or requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff,
            backoff_max=30,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer is returned, and turned into a typed error here
        )
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _bearer(self, refresh: bool = False) -> str | None:
        if self._token_provider is not None and (refresh or self._token is None):
            self._token = self._token_provider().strip()
        return self._token

    def _send(self, method: str, path: str, json: Any, params: Mapping[str, Any] | None) -> requests.Response:
        headers = {"Accept": "application/json"}
        token = self._bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return self._session.request(
                method,
                f"{self.api_url}{path}",
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers=headers,
                timeout=self.timeout,
            )
        except requests.exceptions.RetryError as err:
            raise ConnectionFailed(f"{method} {path}: gave up after {self._retries} retries: {err}") from err
        except requests.exceptions.Timeout as err:
            why = f"{method} {path}: no answer from {self.api_url} in {self.timeout:g}s"
            raise ConnectionFailed(why) from err
        except requests.exceptions.ConnectionError as err:
            raise ConnectionFailed(f"cannot reach {self.api_url}: {_root_cause(err)}") from err

    def request(
        self, method: str, path: str, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """Send one request; the decoded JSON answer (None for 204), or a typed error."""
        response = self._send(method, path, json, params)
        attempt = 0
        # A POST is retried by hand, and only on 429: the gateway refused it before the API saw it.
        while response.status_code == 429 and method == "POST" and attempt < self._retries:
            wait = _retry_after(response)
            self._sleep(min(30.0, wait if wait is not None else self._backoff * 2**attempt))
            attempt += 1
            response = self._send(method, path, json, params)
        if response.status_code == 401 and self._token_provider is not None:
            self._bearer(refresh=True)
            response = self._send(method, path, json, params)
        if response.status_code >= 400:
            raise error_from(response)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as err:
            raise ServerError(response.status_code, "the API answered with something not JSON") from err

    def _model(self, model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as err:
            why = f"unexpected answer from the API: {err.error_count()} invalid field(s)"
            raise ServerError(200, why) from err

    def _pages(self, model: type[M], path: str, limit: int | None) -> Iterator[M]:
        """Every item of a paginated list (newest first), up to `limit` items."""
        next_token: str | None = None
        seen = 0
        while True:
            size = MAX_PAGE if limit is None else max(1, min(MAX_PAGE, limit - seen))
            raw = self.request("GET", path, params={"limit": size, "next_token": next_token})
            page = self._model(Page[model], raw)  # type: ignore[valid-type]
            for item in page.items:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            next_token = page.next_token
            if not next_token:
                return

    def _page(self, model: type[M], path: str, limit: int, next_token: str | None) -> Page[M]:
        raw = self.request("GET", path, params={"limit": limit, "next_token": next_token})
        return self._model(Page[model], raw)  # type: ignore[valid-type]

    @staticmethod
    def _body(spec: BaseModel | Mapping[str, Any]) -> Any:
        # A mapping goes as it is: the API validates it and answers with field errors.
        return spec.model_dump(mode="json", exclude_unset=True) if isinstance(spec, BaseModel) else dict(spec)

    # -- health ---------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return dict(self.request("GET", "/health"))

    # -- targets --------------------------------------------------------------------------------

    def list_targets(self, limit: int | None = None) -> list[Target]:
        return list(self._pages(Target, "/targets", limit))

    def targets_page(self, limit: int = 25, next_token: str | None = None) -> Page[Target]:
        return self._page(Target, "/targets", limit, next_token)

    def get_target(self, target_id: str) -> Target:
        return self._model(Target, self.request("GET", f"/targets/{_id(target_id)}"))

    def create_target(self, spec: TargetSpec | Mapping[str, Any]) -> Target:
        return self._model(Target, self.request("POST", "/targets", self._body(spec)))

    def replace_target(self, target_id: str, spec: TargetSpec | Mapping[str, Any]) -> Target:
        return self._model(Target, self.request("PUT", f"/targets/{_id(target_id)}", self._body(spec)))

    def delete_target(self, target_id: str) -> None:
        self.request("DELETE", f"/targets/{_id(target_id)}")

    # -- experiments ----------------------------------------------------------------------------

    def list_experiments(self, limit: int | None = None) -> list[Experiment]:
        return list(self._pages(Experiment, "/experiments", limit))

    def experiments_page(self, limit: int = 25, next_token: str | None = None) -> Page[Experiment]:
        return self._page(Experiment, "/experiments", limit, next_token)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._model(Experiment, self.request("GET", f"/experiments/{_id(experiment_id)}"))

    def create_experiment(self, spec: ExperimentSpec | Mapping[str, Any]) -> Experiment:
        return self._model(Experiment, self.request("POST", "/experiments", self._body(spec)))

    def replace_experiment(self, experiment_id: str, spec: ExperimentSpec | Mapping[str, Any]) -> Experiment:
        path = f"/experiments/{_id(experiment_id)}"
        return self._model(Experiment, self.request("PUT", path, self._body(spec)))

    def delete_experiment(self, experiment_id: str) -> None:
        self.request("DELETE", f"/experiments/{_id(experiment_id)}")

    def import_fis(
        self, template: Mapping[str, Any], *, allow_irreversible: bool = False, duration: int | None = None
    ) -> FisImported:
        """Create an AWS FIS template's targets and experiment, together or not at all (a 422
        names every problem)."""
        params: dict[str, Any] = {"allow_irreversible": str(allow_irreversible).lower()}
        if duration is not None:
            params["duration"] = duration
        raw = self.request("POST", "/experiments/import", dict(template), params=params)
        return self._model(FisImported, raw)

    def export_fis(
        self, experiment_id: str, *, account: str | None = None, role_arn: str | None = None
    ) -> dict[str, Any]:
        """The experiment as an AWS FIS CreateExperimentTemplate input."""
        params = {"format": "fis", "account": account, "role_arn": role_arn}
        path = f"/experiments/{_id(experiment_id)}/export"
        return dict(self.request("GET", path, params={k: v for k, v in params.items() if v is not None}))

    def resilience(self, kind: Literal["experiments", "targets"], item_id: str, last: int = 10) -> Resilience:
        """The resilience score of an experiment or a target over its `last` runs."""
        path = f"/{kind}/{_id(item_id)}/resilience"
        return self._model(Resilience, self.request("GET", path, params={"last": last}))

    def preview(self, experiment_id: str) -> dict[str, Any]:
        """What a run would hit now, what it would leave alone and why, and the policy's verdict."""
        return dict(self.request("POST", f"/experiments/{_id(experiment_id)}/preview"))

    def run_experiment(self, experiment_id: str, plan_id: str | None = None) -> RunAccepted:
        """Start a run (never retried but on 429: a lost answer must not start a second run).

        With `plan_id` (a preview's), the run hits exactly the previewed resources, or the API
        answers 409 (Conflict) naming each one that is no longer eligible.
        """
        body = RunRequest(plan_id=plan_id).model_dump(exclude_none=True) if plan_id else None
        return self._model(RunAccepted, self.request("POST", f"/experiments/{_id(experiment_id)}/run", body))

    def stop_experiment(self, experiment_id: str) -> RunAccepted:
        return self._model(RunAccepted, self.request("POST", f"/experiments/{_id(experiment_id)}/stop"))

    # -- schedules ------------------------------------------------------------------------------

    def _schedules(self, experiment_id: str, schedule_id: str = "") -> str:
        path = f"/experiments/{_id(experiment_id)}/schedules"
        return f"{path}/{_id(schedule_id)}" if schedule_id else path

    def list_schedules(self, experiment_id: str) -> list[Schedule]:
        return [self._model(Schedule, item) for item in self.request("GET", self._schedules(experiment_id))]

    def create_schedule(self, experiment_id: str, spec: dict[str, Any]) -> Schedule:
        """A new EventBridge Scheduler schedule for the experiment (not retried: it would make two)."""
        return self._model(Schedule, self.request("POST", self._schedules(experiment_id), json=spec))

    def replace_schedule(self, experiment_id: str, schedule_id: str, spec: dict[str, Any]) -> Schedule:
        path = self._schedules(experiment_id, schedule_id)
        return self._model(Schedule, self.request("PUT", path, json=spec))

    def set_schedule_enabled(self, experiment_id: str, schedule_id: str, enabled: bool) -> Schedule:
        action = "resume" if enabled else "pause"
        path = f"{self._schedules(experiment_id, schedule_id)}/{action}"
        return self._model(Schedule, self.request("POST", path))

    def delete_schedule(self, experiment_id: str, schedule_id: str) -> None:
        self.request("DELETE", self._schedules(experiment_id, schedule_id))

    # -- results --------------------------------------------------------------------------------

    def list_results(self, experiment_id: str, limit: int | None = None) -> list[ExperimentResult]:
        return list(self._pages(ExperimentResult, f"/experiments/{_id(experiment_id)}/results", limit))

    def get_result(self, result_id: str) -> ExperimentResult:
        return self._model(ExperimentResult, self.request("GET", f"/results/{_id(result_id)}"))

    def stop_condition_states(self, result_id: str) -> list[StopConditionState]:
        raw = self.request("GET", f"/results/{_id(result_id)}/stop-conditions")
        try:
            return _STOP_CONDITIONS.validate_python(raw)
        except ValidationError as err:
            raise ServerError(200, "unexpected answer from the API for stop conditions") from err

    def wait_for_result(
        self,
        result_id: str,
        *,
        timeout: float | None = None,
        interval: float = 2.0,
        on_poll: Callable[[ExperimentResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> ExperimentResult:
        """Poll until the run is final; TimeoutError at the deadline (the run itself goes on)."""
        deadline = None if timeout is None else clock() + timeout
        while True:
            result = self.get_result(result_id)
            if on_poll is not None:
                on_poll(result)
            if result.status.is_final:
                return result
            if deadline is not None and clock() >= deadline:
                raise TimeoutError(f"run {result_id} is still {result.status.value} after {timeout:g}s")
            self._sleep(interval)

    # -- safety and audit -----------------------------------------------------------------------

    def safety(self) -> SafetyStatus:
        return self._model(SafetyStatus, self.request("GET", "/safety"))

    def put_policy(self, policy: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
        return dict(self.request("PUT", "/safety/policy", self._body(policy)))

    def halt(self, scope: str = "team") -> LeverResult:
        """The emergency stop: halt every run of the team (scope="all": of every team)."""
        return self._model(LeverResult, self.request("POST", "/safety/halt", {"scope": scope}))

    def release(self, scope: str = "team") -> LeverResult:
        return self._model(LeverResult, self.request("POST", "/safety/release", {"scope": scope}))

    def list_audit(self, limit: int | None = None) -> list[AuditEntry]:
        return list(self._pages(AuditEntry, "/audit", limit))


def _id(value: str) -> str:
    """Ids go into paths: refuse anything that would change the path instead of naming an item."""
    if not value or any(c in value for c in "/?#%") or value in {".", ".."} or not value.isprintable():
        raise InvalidArgument(f"not an id: {value!r}")
    return value


def _root_cause(err: requests.exceptions.RequestException) -> str:
    """'Connection refused', not three nested reprs of urllib3 internals."""
    inner = err.args[0] if err.args else None
    text = str(getattr(inner, "reason", None) or inner or err)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return found.group(1).strip() if found else text
