"""How fast one host may open connections (``web.connections_per_min``): a host opening and
closing connections in a loop made the Pi accept each and, with ``web.tls``, do a TLS
handshake each (CPU the temperature loop needs); ``ConnectionGate`` bounded only how many it
held at once. Past its rate a connection is closed on accept, before any handshake."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from server_support import live_server

from checkpoint.server import ConnectionGate, HostRate, server_config
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.config.web import WebSection

LAN = "127.0.0.2"


def rated_gate(clock: FakeClock, per_min: int = 60, **kw) -> ConnectionGate:
    return ConnectionGate(1000, 1000, opening=HostRate(per_min, clock, **kw))


def test_a_host_opening_connections_in_a_loop_is_refused_past_its_rate(clock):
    gate = rated_gate(clock)  # bursts of 10, then one a second
    admitted = []
    for _ in range(30):
        if gate.admit("192.0.2.7"):
            admitted.append(True)
            gate.release("192.0.2.7")  # closed at once, as the loop does
    assert len(admitted) == 10
    assert gate.opening.refused == 20 and gate.refused == 20
    assert gate.open_total == 0
    assert gate.admit("192.0.2.8")  # another host is not held back
    clock.advance(1)
    assert gate.admit("192.0.2.7") and not gate.admit("192.0.2.7")


def test_an_ipv6_host_rotating_its_addresses_opens_as_one(clock):
    gate = rated_gate(clock)
    answers = [gate.admit(f"2001:db8:1:2::{n:x}") for n in range(1, 31)]
    assert answers.count(True) == 10 and not any(answers[10:])
    assert gate.admit("2001:db8:1:3::1")
    assert len(gate.opening) == 2  # one bucket per /64, not per address


def test_the_kiosks_screen_and_trusted_proxies_are_never_held_back(clock):
    import ipaddress

    exempt = (ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.2"))
    gate = rated_gate(clock, exempt=exempt)
    for _ in range(200):
        for address in ("127.0.0.1", "::ffff:127.0.0.1", "10.0.0.2"):
            assert gate.admit(address)
            gate.release(address)
    assert gate.opening.refused == 0


def test_the_rate_keeps_a_bounded_number_of_hosts(clock):
    gate = rated_gate(clock, max_hosts=64)
    for n in range(1000):
        gate.admit(f"10.1.{n // 250}.{n % 250}")
    assert len(gate.opening) == 64


def test_a_guards_page_loads_and_the_offices_pull_are_never_refused_by_default(clock):
    # A page load opens several connections at once (the page, its style and script, the
    # live stream, a favicon; a browser opens up to six to one host) and an idle one is
    # closed after 5 s (uvicorn's keep-alive), so a guard clicking through the console opens
    # a handful every few seconds; the office PC's browser, its pull and its monitor share
    # one address. A busy hour of that, on the defaults: nothing refused.
    web = parse_config({}).web
    gate = server_config(FastAPI(), web, clock=clock).edge_limits.gate
    for second in range(3600):
        if second % 6 == 0:  # a page load every 6 s: six connections at once, and a stream
            opened = [gate.admit("192.168.1.20") for _ in range(7)]
            assert all(opened), second
            for _ in opened:
                gate.release("192.168.1.20")
        if second % 10 == 0:  # the office's pull, its collector and a monitor: each anew
            for _ in range(3):
                assert gate.admit("192.168.1.20"), second
                gate.release("192.168.1.20")
        clock.advance(1)
    assert gate.refused == 0
    assert web.connections_per_min == 600  # the documented default
    assert not all(gate.admit("192.168.1.66") for _ in range(200))  # a loop still is held


def test_a_catch_up_pull_paced_by_its_tokens_rate_is_never_refused_by_default(clock):
    # The office's pull opens one connection per page (docs/api.md, *Pull*) and asks as fast
    # as its token's rate lets it (web.api_rate_per_min): each page it may ask, it may connect
    # for. Two minutes of a page asked every 40 ms, on the defaults.
    from kiosk.ratelimit import RateLimiter

    web = parse_config({}).web
    gate = server_config(FastAPI(), web, clock=clock).edge_limits.gate
    token = RateLimiter.per_minute(web.api_rate_per_min, clock)
    pages = 0
    for _ in range(3_000):
        if token.take("token:office").allowed:
            assert gate.admit("192.168.1.20"), pages
            gate.release("192.168.1.20")
            pages += 1
        clock.advance(0.04)
    assert pages > 1_000 and gate.refused == 0


def test_the_office_pcs_pull_and_console_are_never_answered_429_by_default(clock):
    # The office PC pulls at its token's pace (web.api_rate_per_min) while a guard there
    # clicks through the console (a page and its handful of files every 6 s): one client.
    from kiosk.ratelimit import RateLimiter

    web = parse_config({}).web
    requests = server_config(FastAPI(), web, clock=clock).app.rate
    token = RateLimiter.per_minute(web.api_rate_per_min, clock)
    for step in range(3_000):  # two minutes
        if token.take("token:office").allowed:
            assert requests.check("192.168.1.20").allowed, step
        if step % 150 == 0:
            assert all(requests.check("192.168.1.20").allowed for _ in range(8)), step
        clock.advance(0.04)
    assert requests.refused == 0


@contextlib.contextmanager
def live(web: WebSection, clock: FakeClock) -> Iterator[tuple[int, ConnectionGate]]:
    """The daemon's own web server (``build_server``) for a one-route app, its loop in a
    thread, on ``clock``: its port and connection gate."""
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict:
        return {"ok": True}

    with live_app(app, web, clock) as (port, server):
        yield port, server.limits.gate


def live_app(app: FastAPI, web: WebSection, clock: FakeClock) -> Any:
    """``app`` behind the daemon's own web server (``build_server``), its loop in a thread,
    on ``clock``: its port and the server."""
    return live_server(app, web, clock)


def closed_at_once(port: int, within_s: float = 3.0) -> bool:
    """A connection from the LAN that sends nothing: True when the server closes it within
    ``within_s`` (an admitted one waits for its request, or its TLS hello, for the header
    timeout)."""
    with socket.socket() as sock:
        sock.bind((LAN, 0))
        sock.settimeout(within_s)
        sock.connect(("127.0.0.1", port))
        try:
            return sock.recv(1024) == b""
        except (ConnectionResetError, ConnectionAbortedError):
            return True
        except TimeoutError:
            return False


@contextlib.contextmanager
def connected(port: int) -> Iterator[socket.socket]:
    """A connection from the LAN that sends nothing, held open until the block ends."""
    with socket.socket() as sock:
        sock.bind((LAN, 0))
        sock.settimeout(3)
        sock.connect(("127.0.0.1", port))
        yield sock


def still_open(sock: socket.socket) -> bool:
    """Whether the server still holds ``sock`` open and has said nothing on it. Asked without
    waiting: a close (or a word) the server made is in the socket by the time it has answered
    a later connection."""
    sock.setblocking(False)
    try:
        sock.recv(1024)  # a close (b"") or anything said: not waiting for the client
    except BlockingIOError:
        return True
    except (ConnectionResetError, ConnectionAbortedError):
        pass
    finally:
        sock.settimeout(3)
    return False


def exchange(port: int, payload: bytes, source: str = LAN) -> bytes:
    """``payload`` on one connection from ``source``; all that comes back until the server
    closes it, or 2 s of silence."""
    with socket.socket() as sock:
        sock.bind((source, 0))
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))
        sock.sendall(payload)
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while got := sock.recv(65536):
                answer += got
        return answer


def ping(port: int) -> bytes:
    with socket.socket() as sock:
        sock.bind((LAN, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        return sock.recv(4096)


def test_against_the_real_server_a_connection_past_the_rate_is_closed_on_accept(clock):
    web = WebSection(port=0, connections_per_min=12, header_timeout_s=10)  # bursts of 2
    with live(web, clock) as (port, gate):
        assert ping(port).startswith(b"HTTP/1.1 200")
        assert ping(port).startswith(b"HTTP/1.1 200")
        assert closed_at_once(port)
        assert gate.opening.refused == 1
        clock.advance(5)  # one a 5 s
        assert ping(port).startswith(b"HTTP/1.1 200")


def test_with_tls_a_connection_past_the_rate_is_closed_before_any_handshake(
    clock, tmp_path, monkeypatch
):
    from test_edge_hostile import _self_signed

    creds = tmp_path / "credentials"
    creds.mkdir()
    _self_signed(creds)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    web = WebSection(port=0, tls=True, connections_per_min=12, header_timeout_s=10)
    with live(web, clock) as (port, gate), connected(port) as first, connected(port) as second:
        assert closed_at_once(port)  # the third at once: no handshake begun
        assert gate.opening.refused == 1
        # The two before it, accepted first, were admitted: held, waiting for their hello.
        assert still_open(first) and still_open(second)
        assert gate.open_total == 2


@pytest.mark.parametrize("per_min", [0, 5, 100001])
def test_the_setting_is_bounded(per_min):
    from kiosk.config import ConfigError

    with pytest.raises(ConfigError):
        parse_config({"web": {"connections_per_min": per_min}})


def test_a_host_pipelining_requests_on_kept_alive_connections_is_held_to_its_rate(clock):
    # The connection rate bounds how often a host connects, not what it sends once in: one
    # kept-alive connection pipelining GET /guard/login (public, a page drawn each) as fast
    # as the Pi answers ran the app for every one, CPU the temperature loop needs, with no
    # bound (the API has its own rate; the console's pages, static files and 404s had none).
    # Past web.requests_per_min it is 429 with Retry-After, the app not run, the connection
    # closed; another host, and the kiosk's own screen, are not held back.
    app = FastAPI()
    ran: list[str] = []

    @app.get("/page")
    def page() -> dict:
        ran.append("page")
        return {}

    web = WebSection(port=0, requests_per_min=60)  # bursts of 10, then one a second
    burst = b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 30
    with live_app(app, web, clock) as (port, _server):
        answer = exchange(port, burst)
        codes = answer.count(b"HTTP/1.1 200"), answer.count(b"HTTP/1.1 429")
        assert codes == (10, 1) and len(ran) == 10, codes
        assert b"retry-after: 1\r\n" in answer.lower()
        one = b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        assert exchange(port, one, source="127.0.0.1").startswith(b"HTTP/1.1 200")
        assert exchange(port, one, source="127.0.0.3").startswith(b"HTTP/1.1 200")
        assert exchange(port, one).startswith(b"HTTP/1.1 429")
        clock.advance(1)
        assert exchange(port, one).startswith(b"HTTP/1.1 200")
