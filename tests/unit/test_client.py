"""The client against a real loopback HTTP server: retries, backoff, error mapping, pagination."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from chaosplane.client import (
    Client,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    ValidationFailed,
)

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class Server:
    """Answers each request with the next scripted answer for its method and path."""

    url: str = ""
    script: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    seen: list[Request] = field(default_factory=list)
    handler: Callable[[Request], Answer] | None = None

    def answer(self, method: str, path: str, *answers: Answer) -> None:
        self.script[(method, path)] = list(answers)

    def count(self, method: str, path: str) -> int:
        return sum(1 for r in self.seen if r.method == method and r.path == path)

    def __call__(self, environ: dict, start_response: Callable) -> Any:  # type: ignore[type-arg]
        request = Request(environ)
        request.get_data()
        self.seen.append(request)
        if self.handler is not None:
            status, body, headers = self.handler(request)
        else:
            queue = self.script.get((request.method, request.path)) or [(404, {"message": "no script"}, {})]
            status, body, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        text = "" if body is None else (body if isinstance(body, str) else json.dumps(body))
        response = Response(text, status=status, headers=headers, content_type="application/json")
        return response(environ, start_response)


@pytest.fixture(scope="module")
def _http() -> Iterator[Server]:
    app = Server()
    http = make_server("127.0.0.1", 0, app, threaded=True)
    app.url = f"http://127.0.0.1:{http.port}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield app
    http.shutdown()


@pytest.fixture
def server(_http: Server) -> Server:
    """The module's server with a fresh script (one server: shutting one down takes 0.5 s)."""
    _http.script, _http.seen, _http.handler = {}, [], None
    return _http


def client(server: Server, **kwargs: Any) -> Client:
    options = {
        "token": "t0k3n",
        "timeout": 5,
        "retries": 3,
        "backoff": 0.01,
        "sleep": lambda _: None,
        **kwargs,
    }
    return Client(server.url, **options)


def target(n: int) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "team": "demo",
        "name": f"t{n}",
        "type": "ec2-instances",
        "selector": "app=web",
        "created_at": "2026-11-25T10:00:00Z",
        "updated_at": "2026-11-25T10:00:00Z",
    }


def test_a_get_is_retried_on_503_and_honours_retry_after(server: Server) -> None:
    server.answer("GET", "/targets/x", (503, {"message": "busy"}, {"Retry-After": "0"}), (200, target(1), {}))
    found = client(server).get_target("x")
    assert found.name == "t1" and server.count("GET", "/targets/x") == 2
    assert server.seen[0].headers["Authorization"] == "Bearer t0k3n"


def test_a_get_gives_up_after_its_retries_with_the_apis_message(server: Server) -> None:
    server.answer("GET", "/targets/x", (502, {"message": "bad gateway"}, {}))
    with pytest.raises(ServerError) as caught:
        client(server, retries=2).get_target("x")
    assert caught.value.status == 502 and caught.value.message == "bad gateway"
    assert server.count("GET", "/targets/x") == 3  # the first try and two retries


def test_a_post_run_is_never_retried_on_a_server_error(server: Server) -> None:
    server.answer("POST", "/experiments/e/run", (503, {"message": "try again"}, {"Retry-After": "0"}))
    with pytest.raises(ServerError):
        client(server).run_experiment("e")
    assert server.count("POST", "/experiments/e/run") == 1


def test_a_post_is_retried_on_429_after_retry_after(server: Server) -> None:
    slept: list[float] = []
    server.answer(
        "POST",
        "/experiments/e/run",
        (429, {"message": "Too Many Requests"}, {"Retry-After": "2"}),
        (202, {"result_id": "r", "status": "pending"}, {}),
    )
    accepted = client(server, sleep=slept.append).run_experiment("e")
    assert accepted.result_id == "r" and slept == [2.0]


def test_429_after_the_retries_is_rate_limited_with_retry_after(server: Server) -> None:
    server.answer("POST", "/safety/halt", (429, {"message": "Too Many Requests"}, {"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        client(server, retries=1).halt()
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "body", "kind", "text"),
    [
        (
            401,
            {"message": "Unauthorized", "reason": "token expired"},
            Unauthorized,
            "Unauthorized: token expired",
        ),
        (403, {"message": "requires the admin role; you are viewer"}, Forbidden, "requires the admin role"),
        (404, {"message": "target 'x' not found"}, NotFound, "target 'x' not found"),
        (409, {"message": "target is used by experiment(s) e"}, Conflict, "used by experiment(s) e"),
        (500, "<html>oops</html>", ServerError, "INTERNAL SERVER ERROR"),
    ],
)
def test_errors_are_typed_and_carry_the_apis_message(
    server: Server, status: int, body: Any, kind: type, text: str
) -> None:
    server.answer("DELETE", "/targets/x", (status, body, {}))
    with pytest.raises(kind) as caught:
        client(server, retries=0).delete_target("x")
    assert text in str(caught.value) and caught.value.status == status


def test_a_422_carries_the_field_errors(server: Server) -> None:
    errors = [
        {"field": "body.duration", "message": "Input should be greater than or equal to 1", "type": "x"}
    ]
    server.answer("POST", "/experiments", (422, {"message": "request is invalid", "errors": errors}, {}))
    with pytest.raises(ValidationFailed) as caught:
        client(server).create_experiment({"duration": 0})
    assert caught.value.errors[0].field == "body.duration"
    assert "body.duration: Input should be greater" in str(caught.value)


def test_lists_follow_next_token_until_the_end_or_the_limit(server: Server) -> None:
    pages = {None: ([target(1), target(2)], "p2"), "p2": ([target(3)], None)}

    def handler(request: Request) -> Answer:
        items, next_token = pages[request.args.get("next_token")]
        return 200, {"items": items, "next_token": next_token}, {}

    server.handler = handler
    assert [t.name for t in client(server).list_targets()] == ["t1", "t2", "t3"]
    assert [t.name for t in client(server).list_targets(limit=2)] == ["t1", "t2"]
    assert server.seen[-1].args["limit"] == "2"


def test_a_token_provider_is_asked_again_once_after_a_401(server: Server) -> None:
    tokens = iter(["old", "new"])
    server.handler = lambda r: (
        (200, {"status": "ok"}, {})
        if r.headers.get("Authorization") == "Bearer new"
        else (401, {"message": "Unauthorized", "reason": "token expired"}, {})
    )
    api = Client(server.url, token_provider=lambda: next(tokens), sleep=lambda _: None)
    assert api.health() == {"status": "ok"}
    assert [r.headers["Authorization"] for r in server.seen] == ["Bearer old", "Bearer new"]


def test_an_unreachable_api_is_one_clear_error() -> None:
    with pytest.raises(ConnectionFailed) as caught:
        Client("http://127.0.0.1:1", token="x", retries=1, backoff=0.01).health()
    assert "Connection refused" in str(caught.value)


def test_ids_cannot_change_the_path() -> None:
    with pytest.raises(ValueError, match="not an id"):
        Client("http://127.0.0.1:1", token="x").get_target("../audit")
