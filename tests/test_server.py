"""``checkpoint.server``: connection caps, body caps, accept-error logging, the busy port."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import ssl

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from checkpoint.server import (
    AcceptErrorLog,
    BodyLimit,
    ConnectionGate,
    ServerError,
    bind_socket,
    effective_max_connections,
    server_config,
)
from kiosk.config.web import WebSection
from kiosk.ratelimit import client_key


class FakeProtocol:
    def __init__(self) -> None:
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True


def test_the_gate_refuses_past_the_per_address_cap():
    gate = ConnectionGate(max_total=100, max_per_client=2)
    assert gate.admit("10.0.0.9") and gate.admit("10.0.0.9")
    assert not gate.admit("10.0.0.9")
    assert gate.admit("10.0.0.10")
    gate.release("10.0.0.9")
    assert gate.admit("10.0.0.9")
    assert gate.refused == 1


def test_an_ipv6_host_rotating_addresses_in_its_64_is_capped_as_one_network():
    # Every SLAAC host has 2**64 addresses: one new address per connection got a fresh
    # per-client budget each time, so one host could hold every slot (bodies that never
    # come are not evictable) and the office's temperature checks were refused again.
    gate = ConnectionGate(max_total=100, max_per_client=2)
    assert all(gate.admit(f"2001:db8:1:2::{n:x}") for n in range(1, 51))
    assert not gate.admit("2001:db8:1:2:ffff:ffff:ffff:fffe")  # the same /64
    assert gate.admit("2001:db8:1:3::1")  # the next /64 is someone else
    assert gate.admit("192.0.2.1") and gate.open_total == 52
    gate.release("2001:db8:1:2::2")
    assert gate.admit("2001:db8:1:2::99")
    assert gate.refused == 1 and gate.max_per_network == 50


class Silent(FakeProtocol):
    def __init__(self, peer: str) -> None:
        super().__init__()
        self.peer = peer
        self.network = client_key(peer)


def test_at_a_64s_cap_its_own_oldest_silent_connection_makes_room():
    # One machine of a LAN's /64 (the whole LAN, often) flooding idle connections must not
    # lock its neighbours out: at the /64's cap its oldest silent connection is closed.
    gate = ConnectionGate(max_total=100, max_per_client=10, max_per_network=3)
    other, own = Silent("2001:db8:9::1"), Silent("2001:db8:1:2::66")
    assert gate.admit(other.peer) and gate.admit(own.peer)
    gate.waiting[1], gate.waiting[2] = other, own
    assert gate.admit("2001:db8:1:2::67") and gate.admit("2001:db8:1:2::68")
    assert gate.admit("2001:db8:1:2::69")  # a neighbour's request gets in
    assert own.evicted and not other.evicted and gate.evicted == 1
    assert not gate.admit("2001:db8:1:2::70")  # nobody silent left in the /64: refused
    assert gate.refused == 1


def test_one_ipv6_address_is_still_capped_alone():
    gate = ConnectionGate(max_total=100, max_per_client=2)
    assert gate.admit("2001:db8::1") and gate.admit("2001:db8::1")
    assert not gate.admit("2001:db8::1")
    assert gate.admit("2001:db8::2")  # a neighbour in the /64 has its own


def test_an_ipv4_mapped_client_is_capped_with_its_ipv4_address():
    gate = ConnectionGate(max_total=100, max_per_client=2)
    assert gate.admit("::ffff:192.0.2.7") and gate.admit("192.0.2.7")
    assert not gate.admit("::ffff:192.0.2.7")
    assert gate.admit("192.0.2.8")  # IPv4 stays per address


def test_the_screens_headroom_still_goes_by_the_screens_own_address():
    screen = (ipaddress.ip_network("::1/128"),)
    gate = ConnectionGate(max_total=1, max_per_client=10, screens=screen)
    assert gate.admit("2001:db8::5")
    assert gate.admit("::1")  # the kiosk's own screen, past the cap
    assert not gate.admit("::2")  # in ::1's /64 but not the screen


def test_at_the_overall_cap_the_oldest_silent_connection_makes_room():
    gate = ConnectionGate(max_total=2, max_per_client=10)
    silent = FakeProtocol()
    assert gate.admit("a") and gate.admit("b")
    gate.waiting[1] = silent  # "a" has not sent its request yet
    assert gate.admit("c")  # a guard's request gets in
    assert silent.evicted and gate.evicted == 1
    assert not gate.admit("d")  # nobody silent left to close: refused
    assert gate.refused == 1


def test_connections_are_capped_at_half_the_open_file_limit():
    web = WebSection(max_connections=4096)
    assert effective_max_connections(web, nofile=1024) == 512
    assert effective_max_connections(WebSection(max_connections=256), nofile=1024) == 256


def _echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict:
        return {"n": len(await request.body())}

    return app


def test_bodies_over_the_cap_get_413_before_or_while_reading():
    client = TestClient(BodyLimit(_echo_app(), 1024))
    assert client.post("/echo", content=b"x" * 1024).json() == {"n": 1024}
    assert client.post("/echo", content=b"x" * 1025).status_code == 413
    assert client.post("/echo", headers={"Content-Length": "99999999999"}).status_code == 413

    def chunks():
        for _ in range(8):
            yield b"y" * 512

    assert client.post("/echo", content=chunks()).status_code == 413


def test_accept_errors_are_logged_once_per_interval_with_a_count(caplog):
    now = [0.0]
    handler = AcceptErrorLog(None, every_s=10, monotonic=lambda: now[0])
    context = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(errno.EMFILE, "Too many open files"),
    }
    with caplog.at_level(logging.WARNING, logger="checkpoint.server"):
        for _ in range(2048):
            handler(None, context)  # type: ignore[arg-type]
        now[0] = 11.0
        handler(None, context)  # type: ignore[arg-type]
    lines = [r.getMessage() for r in caplog.records if r.name == "checkpoint.server"]
    assert len(lines) == 2
    assert "EMFILE" in lines[0] and "2047 more" in lines[1]
    assert handler.total == 2049


def test_a_busy_port_is_a_clear_server_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServerError) as info:
            bind_socket("127.0.0.1", port)
    expected = f"port {port} on 127.0.0.1 is already in use (another kiosk running?)"
    assert info.value.strerror == expected


def test_proxy_headers_are_believed_only_from_configured_proxies():
    plain = server_config(FastAPI(), WebSection())
    assert plain.proxy_headers is False
    proxied = server_config(FastAPI(), WebSection(trusted_proxies=("10.0.0.2",)))
    assert proxied.proxy_headers is True and proxied.forwarded_allow_ips == ["10.0.0.2"]


def test_tls_without_its_credentials_refuses_to_start(monkeypatch, tmp_path):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("KIOSK_TLS_CERT", raising=False)
    with pytest.raises(ServerError, match="tls_cert/tls_key"):
        server_config(FastAPI(), WebSection(tls=True))
    (tmp_path / "tls_cert").write_text("cert")
    (tmp_path / "tls_key").write_text("key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    # Read as the server is built (``kiosk run`` says what is wrong with them in one line).
    with pytest.raises(ssl.SSLError):
        server_config(FastAPI(), WebSection(tls=True))
    from test_edge_hostile import _self_signed

    _self_signed(tmp_path)
    config = server_config(FastAPI(), WebSection(tls=True))
    # Each connection starts its TLS once counted (caps and header deadline from the accept):
    # uvicorn's own TLS is off.
    assert config.edge_limits.tls is not None and config.ssl_certfile is None


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_connections_on_the_listening_socket_send_without_nagles_delay(host):
    """Before: the socket was made without IPPROTO_TCP, so asyncio (whose accepted sockets
    get TCP_NODELAY only when their protocol says TCP) left Nagle's algorithm on: every
    response written in two pieces on a kept-alive connection (the console, the API, all of
    TLS) waited ~40 ms for the client's delayed ACK."""
    import asyncio

    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    seen: list[int] = []

    async def run() -> None:
        listening = bind_socket(host, 0)

        async def answer(reader, writer) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(answer, sock=listening)
        async with server:
            port = listening.getsockname()[1]
            _, writer = await asyncio.open_connection(host, port)
            while not seen:
                await asyncio.sleep(0)
            writer.close()

    asyncio.run(asyncio.wait_for(run(), 10))
    assert seen and seen[0] != 0


def _served(app: FastAPI, payload: bytes) -> bytes:
    """What the real server (``build_server``) answers to ``payload`` sent on one connection,
    until it closes the connection (or 5 s)."""
    import asyncio

    from checkpoint.server import build_server

    server = build_server(app, WebSection(host="127.0.0.1", port=0))

    async def exchange() -> bytes:
        server.config.load()
        server.lifespan = server.config.lifespan_class(server.config)
        await server.startup(sockets=[server.sock])
        try:
            port = server.sock.getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return answer
        finally:
            await server.shutdown(sockets=[server.sock])

    return asyncio.run(exchange())


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
    ],
)
def test_a_request_framed_both_by_length_and_chunks_is_refused_and_the_connection_closed(framing):
    # Request smuggling: a body both Content-Length- and chunk-framed was read by its chunks
    # and the connection kept open, so the request hidden after its "0" chunk ran as the
    # next one. A proxy in front (web.trusted_proxies) that frames by the length forwards it
    # as body of the first, and its answer goes to whoever is next on that connection.
    ran: list[str] = []
    app = _echo_app()

    @app.get("/hidden")
    def hidden() -> dict:
        ran.append("hidden")
        return {}

    smuggled = b"GET /hidden HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    head = b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n" + framing + b"\r\n"
    answer = _served(app, head + b"0\r\n\r\n" + smuggled)
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert answer.count(b"HTTP/1.1 ") == 1 and not ran, answer
    assert b"connection: close" in answer.lower()
