"""The outbound URL policy: every notation of a forbidden address is refused when a URL is saved,
and a name that resolves to one is refused when the connection is made."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from chaosplane.egress import Egress, Refused, ResponseTooLarge, check_url, guarded_session

SSRF = [
    "https://169.254.169.254/latest/meta-data/",  # the metadata service, dotted
    "https://2852039166/",  # decimal
    "https://0xa9fea9fe/",  # hex
    "https://0251.0376.0251.0376/",  # octal
    "https://169.254.43518/",  # short
    "https://[fd00:ec2::254]/",  # the metadata service, IPv6
    "https://[::ffff:169.254.169.254]/",  # IPv4-mapped
    "https://[::ffff:a9fe:a9fe]/",  # IPv4-mapped, in hex
    "https://[::169.254.169.254]/",  # IPv4-compatible
    "https://[2002:a9fe:a9fe::1]/",  # 6to4 around it
    "https://127.0.0.1:8080/admin",  # loopback
    "https://127.1/",
    "https://2130706433/",
    "https://[::1]/",
    "https://localhost/",
    "https://admin.localhost/",
    "https://10.0.0.5/",  # private
    "https://172.16.3.4/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",  # shared (CGNAT)
    "https://[fc00::1]/",  # unique-local
    "https://[fe80::1%25eth0]/",  # link-local, with a zone
    "https://169.254.0.1/",
    "https://0.0.0.0/",  # unspecified
    "https://224.0.0.1/",  # multicast
    "https://240.0.0.1/",  # reserved
]


@pytest.mark.parametrize("url", SSRF)
def test_every_notation_of_a_forbidden_address_is_refused(url: str) -> None:
    with pytest.raises(Refused, match="must not point at"):
        check_url(url, Egress.DEPLOYED)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://shop.example/", "https://"),  # deployed: https only
        ("ftp://shop.example/", "https://"),
        ("https://user:pw@shop.example/", "credentials"),
        ("https://shop.example/#x", "fragment"),
    ],
)
def test_a_deployed_platform_takes_https_urls_without_secrets_in_them(url: str, why: str) -> None:
    with pytest.raises(Refused, match=why):
        check_url(url, Egress.DEPLOYED)


def test_public_hosts_pass_and_the_local_platform_allows_loopback_and_nothing_else() -> None:
    for url in [
        "https://shop.example/health",
        "https://8.8.8.8/",
        "https://[2606:4700::1111]/",
        "https://cafe.de/",
    ]:
        assert check_url(url, Egress.DEPLOYED) == url
    for url in ["http://127.0.0.1:8080/", "http://localhost/", "http://[::1]/", "http://[::ffff:127.0.0.1]/"]:
        assert check_url(url, Egress.LOCAL) == url
    for url in ["http://169.254.169.254/", "http://10.0.0.1/", "http://[::ffff:10.0.0.1]/"]:
        with pytest.raises(Refused):
            check_url(url, Egress.LOCAL)


class Server:
    def __init__(self) -> None:
        self.body, self.location = b"ok", ""
        self.drip: str | None = None  # "headers" or "body": one byte each DRIP_EVERY seconds
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if outer.drip is not None:
                    return self._drip(outer.drip)
                self.send_response(302 if outer.location else 200)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def _drip(self, what: str) -> None:
                head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"p" * 60 + b"\r\nContent-Length: 100\r\n\r\n"
                if what == "body":
                    self.wfile.write(head)
                for byte in head if what == "headers" else b"x" * 100:
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:  # the client cut the connection: as it should
                        return
                    time.sleep(DRIP_EVERY)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.httpd.shutdown()


def test_a_name_is_checked_where_it_resolves_at_connect_time(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name that resolved to a public address when it was saved, and to loopback now (DNS
    # rebinding): there is nothing literal to refuse in the URL; the connection is refused.
    resolve = socket.getaddrinfo

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        return resolve("127.0.0.1" if host == "shop.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"https://shop.example:{server.port}/"
    assert check_url(url, Egress.DEPLOYED) == url
    with pytest.raises(Refused, match=r"shop\.example resolves to a loopback address"):
        guarded_session(Egress.DEPLOYED).get(url, timeout=2)
    # The local platform allows loopback, by name too: and it connects to the address it checked.
    assert guarded_session(Egress.LOCAL).get(f"http://shop.example:{server.port}/", timeout=2).text == "ok"


def test_redirects_are_not_followed_and_bodies_are_bounded(server: Server) -> None:
    session = guarded_session(Egress.LOCAL, max_body_bytes=1000)
    server.location = "http://169.254.169.254/latest/meta-data/"
    for follow in (True, False):
        answer = session.get(f"http://127.0.0.1:{server.port}/", timeout=2, allow_redirects=follow)
        assert answer.status_code == 302 and answer.history == []  # answered, not followed
    server.location, server.body = "", b"x" * 1001
    with pytest.raises(ResponseTooLarge):
        session.get(f"http://127.0.0.1:{server.port}/", timeout=2)
    server.body = b"x" * 1000
    assert len(session.get(f"http://127.0.0.1:{server.port}/", timeout=2).content) == 1000


DRIP_EVERY = 0.2  # a byte each 0.2 s: never a read timeout of 0.5 s; 20 s or more for the headers or the body


@pytest.mark.parametrize("what", ["headers", "body"])
def test_an_answer_dripped_a_byte_at_a_time_is_cut_at_the_attempt_s_deadline(
    server: Server, what: str
) -> None:
    session = guarded_session(Egress.LOCAL)
    server.drip = what
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{server.port}/", timeout=(0.5, 0.5))  # whole answer in 1 s
    # Cut near its 1 s deadline, not after the 20 s or more the server would take to finish.
    assert time.monotonic() - started < 10
    server.drip = None  # the session goes on working, on a new connection
    assert session.get(f"http://127.0.0.1:{server.port}/", timeout=(0.5, 0.5)).text == "ok"
