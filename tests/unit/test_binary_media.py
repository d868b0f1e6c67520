"""What a browser receives for each dashboard file through API Gateway, by API Gateway's rules.

API Gateway turns a Lambda proxy response marked isBase64Encoded back into bytes only when the
request's *first* Accept type is one of the API's BinaryMediaTypes; otherwise the client gets the
base64 text. Browsers ask for fonts with `*/*` first, so listing `font/woff2` is not enough: the
font arrives as text and the icons never show. The local gateway applies the same rules
(chaosplane.local.gateway.arriving), so these hold locally too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosplane.api.ui import BINARY, serve, static_root
from chaosplane.local.gateway import arriving, is_binary, request_body
from chaosplane.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "layers" / "chaosplane" / "chaosplane" / "ui" / "static"


def binary_media_types() -> list[str]:
    api = load_template(ROOT / "template.yaml")["Resources"]["ChaosplaneApi"]["Properties"]
    return [t.replace("~1", "/") for t in api["BinaryMediaTypes"]]


# The Accept headers browsers send for each kind of request (Chrome, then Firefox).
BROWSER_ACCEPT = {
    ".html": [
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ],
    ".css": ["text/css,*/*;q=0.1", "text/css,*/*;q=0.1"],
    ".js": ["*/*", "*/*"],
    ".svg": ["image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8", "image/avif,image/webp,*/*"],
    ".woff2": ["*/*", "application/font-woff2;q=1.0,application/font-woff;q=0.9,*/*;q=0.8"],
    ".woff": ["*/*", "application/font-woff2;q=1.0,application/font-woff;q=0.9,*/*;q=0.8"],
    ".json": ["application/json", "application/json"],  # the dashboard's fetch() (js/api.js)
}


def dashboard_files() -> list[Path]:
    files = sorted(p for p in STATIC.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not any(p.suffix == ".woff2" for p in files):
        pytest.skip("no vendor files: run `make ui` first")
    return files


def test_every_dashboard_file_reaches_a_browser_byte_for_byte() -> None:
    # Given the template's BinaryMediaTypes, when a browser asks for each file with its own Accept
    # header, then the bytes it receives are the file's.
    types = binary_media_types()
    for path in dashboard_files():
        response = serve(path.parent.relative_to(STATIC).parts, path.name, static_root())
        assert response.status_code == 200, path
        payload = {"body": response.body, "isBase64Encoded": response.base64_encoded}
        for accept in BROWSER_ACCEPT[path.suffix]:
            assert arriving(payload, accept, types) == path.read_bytes(), (path.name, accept)


def test_only_binary_files_leave_the_function_base64_encoded() -> None:
    # Text goes as text, so it arrives intact whatever the Accept header (curl, a client without one).
    for path in dashboard_files():
        response = serve(path.parent.relative_to(STATIC).parts, path.name, static_root())
        assert response.base64_encoded == (response.headers["Content-Type"] in BINARY), path.name
        if not response.base64_encoded:
            payload = {"body": response.body, "isBase64Encoded": False}
            assert arriving(payload, None, binary_media_types()) == path.read_bytes()


def test_listing_only_the_font_types_would_break_the_fonts() -> None:
    # The configuration this replaced: Chrome's `*/*` is not font/woff2, so the font came as text.
    font = STATIC / "vendor" / "fonts" / "bootstrap-icons.woff2"
    if not font.exists():
        pytest.skip("no vendor files: run `make ui` first")
    response = serve(("vendor", "fonts"), font.name, static_root())
    payload = {"body": response.body, "isBase64Encoded": True}
    assert arriving(payload, "*/*", ["font/woff2", "font/woff"]) != font.read_bytes()
    assert arriving(payload, "*/*", binary_media_types()) == font.read_bytes()


def test_request_bodies_arrive_base64_encoded_and_json_responses_as_they_are() -> None:
    types = binary_media_types()
    assert request_body(b'{"name": "x"}', "application/json", types) == ("eyJuYW1lIjogIngifQ==", True)
    assert is_binary("application/json", types) and not is_binary("", types)
    api_json = {"body": '{"id": "exp-1"}', "isBase64Encoded": False}
    assert arriving(api_json, "application/json", types) == b'{"id": "exp-1"}'
