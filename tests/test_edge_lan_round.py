"""A hostile LAN against the real server (``checkpoint.server.build_server`` in front of the
whole app: the kiosk screen, the guard console, the API), over real sockets from a second
loopback address: pipelining, a head at the parser's limit, many small headers, methods no
route takes, odd request targets, ``Host``/``Origin`` games on the guard's POST routes, a
chunked body that never ends, a TLS handshake that stops half-way."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from guard_support import make_core
from server_support import live_server

from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.config.web import WebSection
from ui.app import create_app
from ui.auth import COOKIE, CSRF_HEADER

LAN = "127.0.0.2"
HOST = "kiosk.test"


@contextlib.contextmanager
def serving(app: Any, web: WebSection) -> Iterator[int]:
    """``app`` behind the daemon's own web server, its loop in a thread: its port."""
    with live_server(app, web) as (port, _server):
        yield port


class Kiosk:
    def __init__(self, port: int, core: Any, app: Any) -> None:
        self.port, self.core, self.app = port, core, app
        sessions = app.state.guard.auth.sessions
        cookie, session = sessions.issue(core.accounts.get("root"))
        self.cookie = f"{COOKIE}={cookie}"
        self.csrf = sessions.csrf_token(session)

    def exchange(self, payload: bytes, wait_s: float = 5.0) -> bytes:
        """``payload`` sent on one connection from the LAN; all that comes back until the
        server closes it (or ``wait_s``)."""
        with socket.socket() as sock:
            sock.bind((LAN, 0))
            sock.settimeout(wait_s)
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(payload)
            answer = b""
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                try:
                    got = sock.recv(65536)
                except TimeoutError:
                    break
                except ConnectionResetError:
                    break
                if not got:
                    break
                answer += got
            return answer


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory) -> Iterator[Kiosk]:
    monkeypatch = pytest.MonkeyPatch()
    data_dir = tmp_path_factory.mktemp("lan-round") / "data"
    data_dir.mkdir()
    config = parse_config({"web": {"allowed_hosts": [HOST], "api_worker_process": False}})
    core = make_core(data_dir, FakeClock(), monkeypatch, config)
    app = create_app(core)
    web = WebSection(
        port=0, allowed_hosts=(HOST,), header_timeout_s=1.0, body_timeout_s=1.0,
        connections_per_min=100_000,  # a connection per exchange here, hundreds at once
        requests_per_min=1_000_000,
    )  # fmt: skip
    try:
        with serving(app, web) as port:
            yield Kiosk(port, core, app)
    finally:
        core.close()
        monkeypatch.undo()


def statuses(answer: bytes) -> list[int]:
    """The status of each response in ``answer`` (a response follows its predecessor's body
    at once, on no line of its own)."""
    return [int(found) for found in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def request(method: str, target: str, *headers: str, host: str = HOST, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --- pipelining, the head's size, many headers ---------------------------------------------


def test_pipelined_requests_are_each_answered_in_order_on_one_connection(kiosk):
    paths = ["/api/v1/events", "/guard/login", "/static/style.css", "/nowhere"] * 5
    payload = b"".join(request("GET", p) for p in paths) + request(
        "GET", "/guard/login", "Connection: close"
    )
    got = statuses(kiosk.exchange(payload))
    assert got == [401, 200, 200, 404] * 5 + [200], got


def test_a_head_at_the_parsers_limit_is_answered_and_one_past_it_is_a_400(kiosk):
    # h11 holds a request's head to 16 KiB: a head just under it is a request like any other,
    # one past it a 400 and the connection closed; neither is a 5xx, and the next is served.
    under = request(
        "GET", "/guard/login?next=/guard", "X-Pad: " + "a" * 15_800, "Connection: close"
    )
    assert len(under) < 16 * 1024
    assert statuses(kiosk.exchange(under)) == [200]
    # A head not ended past the limit (the bound is on what is held waiting for its end).
    over = request("GET", "/guard/login", "X-Pad: " + "a" * 17_000)[:-4]
    assert statuses(kiosk.exchange(over)) == [400]
    long_target = "/api/v1/events?pad=" + "x" * 16_500  # past web.max_request_bytes
    assert statuses(kiosk.exchange(request("GET", long_target, "Connection: close"))) == [414]
    assert statuses(kiosk.exchange(request("GET", "/guard/login", "Connection: close"))) == [200]


def test_thousands_of_small_headers_are_no_server_error(kiosk):
    many = [f"X-{i}: v" for i in range(1_500)]
    for path in ("/guard/login", "/api/v1/events", "/kiosk", "/guard"):
        payload = request("GET", path, *many, "Connection: close")
        assert len(payload) < 16 * 1024
        (status,) = statuses(kiosk.exchange(payload))
        assert status < 500, (path, status)
    cookies = [f"Cookie: c{i}=v" for i in range(1_200)]
    (status,) = statuses(kiosk.exchange(request("GET", "/guard", *cookies, "Connection: close")))
    assert status == 303  # no session among them: to the sign-in


# --- methods and targets no route takes ------------------------------------------------------


#: Routes that take GET or POST alone: another method there is 405 (Method Not Allowed).
ROUTED = ("/guard/login", "/api/v1/events", "/metrics", "/kiosk/direction", "/guard/manual")


@pytest.mark.parametrize(
    "method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "HEAD"]
)
def test_a_method_no_route_takes_is_a_4xx_never_a_5xx(kiosk, method):
    paths = ["/guard", "/guard/login", "/guard/manual", "/guard/passes/revoke", "/api/v1/events",
             "/api/v1/passages", "/api/v1/health", "/metrics", "/kiosk", "/kiosk/direction",
             "/kiosk/events", "/static/guard.js", "/openapi.json", "/"]  # fmt: skip
    for path in paths:
        (status,) = statuses(kiosk.exchange(request(method, path, f"Cookie: {kiosk.cookie}",
                                                    "Connection: close")))  # fmt: skip
        if method == "HEAD" and path == "/api/v1/health":  # taken: GET's answer, not deciding
            (got,) = statuses(kiosk.exchange(request("GET", path, "Connection: close")))
            assert status == got, (method, path, status, got)
            continue
        assert status < 500, (method, path, status)
        if method in ("PUT", "DELETE", "PATCH") and path in ROUTED:
            assert status == 405, (method, path, status)


@pytest.mark.parametrize(
    "target",
    [
        "*",
        "kiosk.test:443",
        "http://kiosk.test/guard",
        "http://evil.example/api/v1/health",
        "//guard",
        "/guard/../api/v1/health",
        "/%2e%2e/etc/passwd",
        "/static/%2e%2e/app.py",
        "/guard%00",
        "/%ff%fe",
    ],  # fmt: skip
)
def test_odd_request_targets_are_no_server_error(kiosk, target):
    for method in ("GET", "OPTIONS", "CONNECT", "POST"):
        answer = kiosk.exchange(
            request(method, target, f"Cookie: {kiosk.cookie}", "Connection: close")
        )
        got = statuses(answer)
        assert got and got[0] < 500, (method, target, answer[:200])
        assert b"import " not in answer  # no source file served


# --- Host and Origin on the guard's POST routes ----------------------------------------------


def guard_post(kiosk: Kiosk, path: str, *headers: str, host: str = HOST) -> int:
    body = f"csrf={kiosk.csrf}".encode()
    payload = request(
        "POST", path, f"Cookie: {kiosk.cookie}", "Content-Type: application/x-www-form-urlencoded",
        "Connection: close", *headers, host=host, body=body,
    )  # fmt: skip
    got = statuses(kiosk.exchange(payload))
    assert len(got) == 1, got
    return got[0]


@pytest.mark.parametrize(
    ("headers", "host", "expected"),
    [
        (("Origin: http://evil.example",), HOST, 403),
        (("Origin: null",), HOST, 403),
        (("Origin: http://kiosk.test.evil.example",), HOST, 403),
        (("Origin: http://kiosk.test@evil.example",), HOST, 403),
        (("Origin: http://evil.example@kiosk.test",), HOST, 403),
        (("Origin: http://kiosk.test:8080",), HOST, 403),
        (("Origin: ",), HOST, 403),
        (("Referer: http://evil.example/kiosk.test",), HOST, 403),
        (("Origin: http://evil.example", "Origin: http://kiosk.test"), HOST, 403),
        (("Origin: http://evil.example",), "evil.example", 421),
        (("Origin: http://evil.example",), "kiosk.test.", 403),
        ((), "evil.example", 421),
    ],
)
def test_host_and_origin_games_on_the_guards_post_routes_are_refused(
    kiosk, headers, host, expected
):
    for path in ("/guard/alarms/ack", "/guard/passes/revoke", "/guard/logout"):
        assert guard_post(kiosk, path, *headers, host=host) == expected, (path, headers, host)


def test_two_host_headers_are_a_400_whichever_comes_first(kiosk):
    # One read by the rebinding check and another by a proxy in front would let a name past
    # it: the parser refuses the request (RFC 9112 3.2) before any route or check runs.
    for first, second in ((HOST, "evil.example"), ("evil.example", HOST)):
        headers = (f"Host: {second}", f"Cookie: {kiosk.cookie}", "Connection: close")
        payload = request("POST", "/guard/alarms/ack", *headers, host=first)
        assert statuses(kiosk.exchange(payload)) == [400]


def test_the_guards_own_post_with_its_origin_and_token_still_goes_through(kiosk):
    # The refusals above are not a refusal of everything: the console's own form post does.
    status = guard_post(kiosk, "/guard/alarms/ack", "Origin: http://KIOSK.TEST",
                        f"{CSRF_HEADER}: {kiosk.csrf}")  # fmt: skip
    assert status in (200, 303), status


# --- bodies and handshakes that never end (wall-time deadlines) -------------------------------


@pytest.mark.slow  # integration: real deadlines
def test_a_chunked_body_that_never_ends_is_cut_at_the_body_deadline(kiosk):
    for path in ("/guard/login", "/api/v1/events", "/api/v1/health"):
        with socket.socket() as sock:
            sock.bind((LAN, 0))
            sock.settimeout(0.2)
            sock.connect(("127.0.0.1", kiosk.port))
            sock.sendall(request("POST", path, "Transfer-Encoding: chunked",
                                 "Content-Type: application/x-www-form-urlencoded"))  # fmt: skip
            started, closed, answer = time.monotonic(), False, b""
            while time.monotonic() - started < 6 and not closed:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(b"1\r\na\r\n")  # one byte a chunk, for ever
                try:
                    got = sock.recv(65536)
                    answer += got
                    closed = got == b""
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed = True
            assert closed, (path, answer[:200])
            assert time.monotonic() - started < 4  # body_timeout_s (1 s) and slack
            assert all(s < 500 for s in statuses(answer)), (path, answer[:200])


def client_hello() -> bytes:
    """A real TLS ClientHello, as a browser's handshake begins."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=HOST)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


@pytest.mark.slow  # integration: real deadlines
def test_a_tls_handshake_that_stops_half_way_is_cut_and_its_slot_freed(tmp_path, monkeypatch):
    # Half a ClientHello, or a whole one and then silence (the server's answer never taken
    # up): either holds a connection, and the handshake's buffers, until the header deadline.
    import ssl

    from fastapi import FastAPI
    from test_edge_hostile import _self_signed

    creds = tmp_path / "credentials"
    creds.mkdir()
    _self_signed(creds)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    web = WebSection(port=0, tls=True, header_timeout_s=1.0, max_connections_per_client=2)
    hello = client_hello()
    with serving(FastAPI(), web) as port:
        for part in (hello[:40], hello):
            with socket.socket() as sock:
                sock.bind((LAN, 0))
                sock.settimeout(4)
                sock.connect(("127.0.0.1", port))
                sock.sendall(part)
                started = time.monotonic()
                with contextlib.suppress(ConnectionResetError):
                    while sock.recv(65536):  # the server's hello, then its close
                        pass
                assert time.monotonic() - started < 3, part[:5]
        # Both of the address's slots are free again: two handshakes at once complete.
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with contextlib.ExitStack() as held:
            for _ in range(2):
                raw = held.enter_context(socket.socket())
                raw.bind((LAN, 0))
                raw.settimeout(4)
                raw.connect(("127.0.0.1", port))
                held.enter_context(context.wrap_socket(raw, server_hostname=HOST))
