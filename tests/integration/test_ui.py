"""The dashboard's static files through the local gateway: public, typed, under a strict CSP."""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chaosplane.api import build_app
from chaosplane.api.ui import CONTENT_SECURITY_POLICY
from chaosplane.auth import Role
from chaosplane.local.gateway import rest_event
from chaosplane.settings import load_settings
from chaosplane.store import Store
from chaosplane.wiring.runs import build_runs
from tests.conftest import ROOT, Platform

STATIC = ROOT / "layers" / "chaosplane" / "chaosplane" / "ui" / "static"


def test_the_index_is_public_html_with_a_strict_csp(platform: Platform) -> None:
    # Given no token, when the browser asks for /ui/, then it gets the page under the CSP.
    response = platform.api("GET", "/ui/", token="")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY and "unsafe" not in CONTENT_SECURITY_POLICY
    assert '<script type="module" src="js/app.js">' in response.get_data(as_text=True)


def test_ui_without_slash_redirects_relative_so_the_stage_prefix_stays(platform: Platform) -> None:
    response = platform.api("GET", "/ui", token="")
    assert response.status_code == 301 and response.headers["Location"] == "ui/"


def test_modules_vendor_files_and_fonts_come_with_their_types(platform: Platform) -> None:
    cases = {
        "/ui/js/app.js": "text/javascript; charset=utf-8",
        "/ui/app.css": "text/css; charset=utf-8",
        "/ui/vendor/bootstrap.min.css": "text/css; charset=utf-8",
        "/ui/vendor/chart.umd.min.js": "text/javascript; charset=utf-8",
        "/ui/vendor/fonts/bootstrap-icons.woff2": "font/woff2",
    }
    for path, content_type in cases.items():
        response = platform.api("GET", path, token="")
        assert response.status_code == 200, path
        assert response.headers["Content-Type"] == content_type, path
    # As a browser asks for a font: `*/*` first (tests/unit/test_binary_media.py has the rules).
    font = platform.api("GET", "/ui/vendor/fonts/bootstrap-icons.woff2", token="", accept="*/*").get_data()
    assert font == Path(STATIC / "vendor" / "fonts" / "bootstrap-icons.woff2").read_bytes()


def test_nothing_outside_the_static_folder_is_served(platform: Platform) -> None:
    for path in ("/ui/..%2Fapi%2Fui.py", "/ui/js/..", "/ui/.hidden.js", "/ui/missing.js", "/ui/__init__.py"):
        assert platform.api("GET", path, token="").status_code == 404, path


def test_me_says_who_the_token_is_for(platform: Platform) -> None:
    me = platform.json("GET", "/me", token=platform.token(role=Role.VIEWER, subject="ann"))
    assert me == {"principal": "ann", "role": "viewer", "team": "test"}
    assert platform.api("GET", "/me", token="").status_code == 401


def test_the_page_learns_where_to_get_a_token(platform: Platform) -> None:
    assert platform.json("GET", "/ui/config.json", token="") == {"token_url": None}
    app = build_app(
        Store(load_settings()), build_runs(load_settings()), token_url="https://id.example.com/token"
    )
    event = rest_event("GET", "/ui/config.json")
    answer = app.resolve(event, None)
    assert json.loads(answer["body"]) == {"token_url": "https://id.example.com/token"}


def test_concurrent_requests_each_get_their_own_file(platform: Platform) -> None:
    # Given a browser loading the dashboard's modules at once, as it does on every page, each in
    # its own execution environment of the API function; then every answer is the file it asked for.
    # Powertools keeps the event being resolved on a class, shared by every resolver in a process,
    # so without the API's own per-resolver event a request could be routed by another's path.
    modules = sorted(p.name for p in (STATIC / "js").glob("*.js"))
    wanted = {name: (STATIC / "js" / name).read_text() for name in modules}
    start = threading.Barrier(len(modules))

    def fetch(name: str) -> list[str]:
        start.wait()
        return [platform.api("GET", f"/ui/js/{name}", token="").get_data(as_text=True) for _ in range(5)]

    switch_every = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns far more often: a race shows in a few requests
    try:
        with ThreadPoolExecutor(max_workers=len(modules)) as pool:
            answers = dict(zip(modules, pool.map(fetch, modules), strict=True))
    finally:
        sys.setswitchinterval(switch_every)

    wrong = [
        (name, n) for name, bodies in answers.items() for n, body in enumerate(bodies) if body != wanted[name]
    ]
    assert wrong == []
