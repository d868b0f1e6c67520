"""/ui/: the web dashboard, served by the API itself so it works through API Gateway and locally.

Why here and not a bucket: the dashboard then has one origin with the API (no CORS), needs no second
deployment, and the local platform serves it unchanged. The files are few and small (the largest is
~230 KB, far under Lambda's 6 MB response limit); fonts go out base64-encoded, which API Gateway turns
back into bytes because template.yaml lists their media types in BinaryMediaTypes.

Routes take one path segment per level (Powertools' dynamic segments do not match "/"), so the static
folder is flat: /ui/<file>, /ui/js/<file>, /ui/vendor/<file>, /ui/vendor/fonts/<file>.
"""

from __future__ import annotations

import base64
import json
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

# Everything from 'self'; no inline script or style markup; data: images for Bootstrap's SVG icons in
# CSS (form-select arrows, close buttons). The token never leaves sessionStorage but via fetch().
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
BINARY = {"font/woff2", "font/woff", "image/png", "image/x-icon"}  # = template.yaml BinaryMediaTypes
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # no "..", no hidden files


def static_root() -> Traversable:
    return resources.files("chaosplane.ui") / "static"


def _not_found(name: str) -> Response[str]:
    return Response(
        status_code=404,
        content_type="text/plain; charset=utf-8",
        body=f"no such file: {name}\n",
        headers=dict(SECURITY_HEADERS),
    )


def serve(folder: tuple[str, ...], name: str, root: Traversable | None = None) -> Response[Any]:
    """One static file with its content type and the dashboard's security headers."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if not _FILE_NAME.match(name) or suffix not in CONTENT_TYPES:
        return _not_found(name)
    found = root or static_root()
    for part in (*folder, name):
        found = found / part
    if not found.is_file():
        return _not_found(name)
    content_type = CONTENT_TYPES[suffix]
    headers = dict(SECURITY_HEADERS)
    # index.html must always be fresh (it names the modules); the rest may be cached for a while.
    headers["Cache-Control"] = "no-cache" if suffix == ".html" else "public, max-age=300"
    data = found.read_bytes()
    if content_type in BINARY:
        # Encoded here, not by Powertools: its validation middleware decodes a bytes body as UTF-8.
        response: Response[Any] = Response(
            status_code=200,
            content_type=content_type,
            body=base64.b64encode(data).decode(),
            headers=headers,
            compress=False,
        )
        response.base64_encoded = True
        return response
    return Response(status_code=200, content_type=content_type, body=data.decode(), headers=headers)


def router(token_url: str = "") -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.get("/ui/config.json", include_in_schema=False)
    def ui_config() -> Response[str]:
        """What the page needs before sign-in: where to get a token (when the deployment says)."""
        return Response(
            status_code=200,
            content_type="application/json",
            body=json.dumps({"token_url": token_url or None}),
            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
        )

    @r.get("/ui", include_in_schema=False)  # Powertools matches /ui/ here too (it ignores the slash)
    def ui_index() -> Response[Any]:
        if r.current_event.path.endswith("/"):
            return serve((), "index.html")
        # The page's relative URLs need the slash; a relative Location keeps API Gateway's stage
        # prefix (/v1/ui -> /v1/ui/).
        return Response(status_code=301, content_type="text/plain", body="", headers={"Location": "ui/"})

    @r.get("/ui/<name>", include_in_schema=False)
    def ui_file(name: str) -> Response[Any]:
        return serve((), name)

    @r.get("/ui/js/<name>", include_in_schema=False)
    def ui_module(name: str) -> Response[Any]:
        return serve(("js",), name)

    @r.get("/ui/vendor/<name>", include_in_schema=False)
    def ui_vendor(name: str) -> Response[Any]:
        return serve(("vendor",), name)

    @r.get("/ui/vendor/fonts/<name>", include_in_schema=False)
    def ui_font(name: str) -> Response[Any]:
        return serve(("vendor", "fonts"), name)

    return r
