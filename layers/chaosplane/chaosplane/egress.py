"""Where the platform may send a request to a URL a tenant gave it: webhooks, notification
endpoints, probes.

Such a URL is a way into the platform's own network (server-side request forgery): the
instance metadata service, a loopback admin port, a private subnet. So it is checked twice:

- when it is saved (`check_url`): the scheme (https only when deployed), no credentials, and a
  host that names an address literally is refused in every notation a resolver accepts
  (dotted, decimal `2852039166`, octal, hex, short `127.1`, IPv6, IPv4-mapped `::ffff:a.b.c.d`);
- when a connection is made (`guarded_session`): every address the name resolves to is checked,
  and the connection goes to the address that was checked, so a name that resolves elsewhere a
  second time (DNS rebinding) gains nothing. Redirects are not followed, a body is read up to
  MAX_BODY_BYTES, and each attempt's whole answer must come within its connect and read timeouts
  added up: a server that drips a byte a second never trips a read timeout, so its connection is
  cut at that deadline (`Deadline`).

Refused: loopback, link-local, private, unique-local, shared (CGNAT), multicast, reserved and
unspecified addresses, and the metadata service's. `chaosplane local` (CHAOSPLANE_EGRESS=local)
allows loopback (the tests' servers, a developer's) and plain http, and nothing else.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import threading
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

EGRESS_ENV = "CHAOSPLANE_EGRESS"
MAX_BODY_BYTES = 1024 * 1024
"""The most of a response body read; a longer one is a failure (ResponseTooLarge)."""
METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Egress(StrEnum):
    DEPLOYED = "deployed"
    LOCAL = "local"


class Refused(ValueError):
    """A URL or an address the platform will not send a request to; the message says why."""


class ResponseTooLarge(IOError):
    pass


def mode() -> Egress:
    """Deployed unless the process says it is the local platform: strict is the default."""
    return Egress.LOCAL if os.environ.get(EGRESS_ENV) == Egress.LOCAL.value else Egress.DEPLOYED


def literal_address(host: str) -> Address | None:
    """The address `host` names literally, in any notation a resolver reads as one; None for a name."""
    bare = host.strip("[]").rstrip(".").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9A-Fa-fXx.]+", bare):
        try:  # the C library's own parser: what getaddrinfo would read the host as
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def refusal(address: Address, egress: Egress | None = None) -> str | None:
    """Why no request may go to `address` (None: it may)."""
    egress = egress or mode()
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is None and int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (IPv4-compatible)
            embedded = ipaddress.IPv4Address(int(address))
        if embedded is not None:
            inner = refusal(embedded, egress)
            return None if inner is None else f"{inner} (as {address})"
    if address.is_loopback:
        return None if egress is Egress.LOCAL else "a loopback address"
    if address in METADATA:
        return "the instance metadata service"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "a multicast, unspecified or reserved address"
    if not address.is_global:
        return "a private address"
    return None


def check_url(value: str, egress: Egress | None = None) -> str:
    """`value`, if a request may go to it as far as the URL alone tells; else Refused, saying why."""
    egress = egress or mode()
    parts = urlsplit(value)
    schemes = ("http", "https") if egress is Egress.LOCAL else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise Refused("must be an absolute " + " or ".join(f"{s}://" for s in schemes) + " URL")
    if parts.username is not None or parts.password is not None:
        raise Refused("must not hold credentials; put them in headers (stored as a secret)")
    if parts.fragment:
        raise Refused("must not have a #fragment")
    host = parts.hostname
    address = literal_address(host)
    if address is None and (host == "localhost" or host.endswith(".localhost")):
        address = ipaddress.ip_address("127.0.0.1")
    if address is not None and (why := refusal(address, egress)):
        raise Refused(f"must not point at {why}")
    return value


# -- at connect time ---------------------------------------------------------------------------


def _checked(host: str, port: int, egress: Egress) -> str:
    """The address to connect to for `host`: each one it resolves to is checked, and the first is
    the one connected to."""
    found = [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    if not found:
        raise Refused(f"{host} resolves to no address")
    for text in found:
        if why := refusal(ipaddress.ip_address(str(text).split("%", 1)[0]), egress):
            raise Refused(f"{host} resolves to {why}")
    return str(found[0])


class Deadline(threading.local):
    """The deadline of this thread's request: armed as each attempt sends (a retry re-arms it),
    it shuts the connection's socket down when the attempt's answer is not in by then, which
    ends the read with an error however slowly the server drips."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self._timer: threading.Timer | None = None

    def arm(self, connection: Any) -> None:
        self.disarm()
        if self.seconds is not None:
            self._timer = threading.Timer(self.seconds, _cut, args=(connection,))
            self._timer.daemon = True
            self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _cut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # closed meanwhile: nothing to cut
            sock.shutdown(socket.SHUT_RDWR)


def _total_seconds(timeout: Any) -> float | None:
    """A request's `timeout` (seconds, or (connect, read)) as the time its whole answer may take."""
    if timeout is None:
        return None
    if isinstance(timeout, tuple):
        return sum(float(part) for part in timeout if part is not None) or None
    return 2 * float(timeout)  # requests uses one number for the connect and the read timeouts


def guarded_session(
    egress: Egress | None = None, max_body_bytes: int = MAX_BODY_BYTES, retries: Any = 0
) -> Any:
    """A requests Session that connects only to allowed addresses, follows no redirect, reads at
    most `max_body_bytes` of a body, and cuts an attempt whose answer is not in by its connect and
    read timeouts added up; `retries` as HTTPAdapter's `max_retries` (a urllib3 Retry)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    policy = egress or mode()
    deadline = Deadline()

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            self._dns_host = _checked(self._dns_host, self.port, policy)
            return super()._new_conn()

        def request(self, *args: Any, **kwargs: Any) -> None:
            deadline.arm(self)  # each attempt, on a new connection or a kept one
            super().request(*args, **kwargs)

    class TlsConnection(Connection, HTTPSConnection):  # checked as above; TLS still verifies the name
        pass

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConnection

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}

        def send(self, request: Any, stream: bool = False, *args: Any, **kwargs: Any) -> Any:
            check_url(request.url, policy)
            deadline.seconds = _total_seconds(kwargs.get("timeout"))
            try:
                response = super().send(request, True, *args, **kwargs)
                if not stream:
                    try:
                        body = response.raw.read(max_body_bytes + 1, decode_content=True)
                    except Exception as err:  # cut at the deadline, or the server hung up
                        raise requests.ConnectionError(
                            f"the answer of {request.url} broke off: {err}"
                        ) from err
                    if len(body) > max_body_bytes:
                        response.close()
                        raise ResponseTooLarge(f"the answer of {request.url} is over {max_body_bytes} bytes")
                    response._content = body  # what requests itself does once it has read the body
                    response._content_consumed = True  # type: ignore[attr-defined]
                return response
            finally:
                if not stream:
                    deadline.disarm()

    class Session(requests.Session):
        def send(self, request: Any, **kwargs: Any) -> Any:
            kwargs["allow_redirects"] = False  # a redirect is an answer, never followed
            return super().send(request, **kwargs)

    session = Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, Adapter(max_retries=retries))
    return session
