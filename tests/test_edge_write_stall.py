"""A client that stops reading a response (a browser tab frozen in the background holding a
live stream: it keeps the connection and reads nothing) is cut after ``web.write_stall_s``
(``checkpoint.server.GuardedH11Protocol.pause_writing``), its connection slot and the
response's generator freed; a client that reads slowly keeps its response."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from server_support import live_server
from starlette.responses import Response

from checkpoint.server import SEND_BUFFER_BYTES, bind_socket
from kiosk.config.web import WebSection
from ui.views import ClosingStream

CHUNK = b"x" * 65536


class Streamer:
    """An ASGI app streaming without end (a live stream's ticks, faster), and telling when its
    generator was closed (a stream's ``finally``: its bus subscription let go)."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.sent = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                self.sent += len(CHUNK)
                yield CHUNK
                await asyncio.sleep(0)  # a live stream awaits its next message here
        finally:
            self.closed.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await ClosingStream(self.chunks(), media_type="text/plain")(scope, receive, send)


@pytest.fixture
def served() -> Iterator[tuple[int, Any, Streamer]]:
    app = Streamer()
    web = WebSection(port=0, write_stall_s=0.3, connections_per_min=100_000)
    with live_server(app, web) as (port, server):
        yield port, server, app


def _connect(port: int, rcvbuf: int = 4096) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # default: a tab holding little
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def test_a_client_that_reads_nothing_is_cut_and_its_slot_and_stream_freed(served):
    port, server, app = served
    with _connect(port) as frozen:
        assert app.closed.wait(10), "the stream of a client reading nothing was never ended"
        assert server.limits.gate.open_total == 0  # its connection slot given back
        frozen.settimeout(5)
        got = b""
        try:
            while chunk := frozen.recv(1 << 20):  # what the buffers held, then the end
                got += chunk
        except ConnectionResetError:
            pass  # aborted: the rest of the buffers dropped
        assert got.startswith(b"HTTP/1.1 200")


def test_a_client_that_keeps_reading_keeps_its_response(served):
    port, _server, app = served
    with _connect(port) as reading:
        got = 0
        while got < 40 * len(CHUNK):  # many times the buffers: the writes paused and resumed
            chunk = reading.recv(1 << 16)
            assert chunk, "a client still reading was cut"
            got += len(chunk)
        assert not app.closed.is_set()


#: A day's export as the console hands it over: one body, whole.
EXPORT = b"x" * (4 << 20)


async def export(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await Response(EXPORT, media_type="text/csv")(scope, receive, send)


@contextlib.contextmanager
def released(server: Any) -> Iterator[threading.Event]:
    """Set once the server lets go of a connection (its slot given back)."""
    gate, freed = server.limits.gate, threading.Event()
    release = gate.release

    def counted(address: str) -> None:
        release(address)
        freed.set()

    gate.release = counted
    yield freed


def test_a_client_that_reads_nothing_of_a_whole_body_is_cut_though_it_is_closing():
    """A response handed to the transport whole (an export) is complete at once, and once the
    keep-alive time passes uvicorn closes its transport gracefully: a close that waits for the
    client to read it all, for ever if it never does. The stall aborts it even so."""
    web = WebSection(port=0, header_timeout_s=0.5, write_stall_s=1.5, connections_per_min=10**5)
    # The keep-alive closes it at 1 s, the stall comes at 1.5 s.
    with live_server(export, web) as (port, server), released(server) as freed, _connect(port):
        assert freed.wait(10), "a client reading nothing of an export kept its connection"
        assert server.limits.gate.open_total == 0


async def small_export(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await Response(EXPORT[: 1 << 20], media_type="text/csv")(scope, receive, send)


@pytest.mark.slow
def test_a_client_reading_an_export_slowly_is_never_cut_however_long_it_takes():
    """Read at ~128 KiB/s, a 1 MiB export takes ~8 s, past a 0.5 s stall: each check finds
    that the client took some since the last, and the response goes on to its end. At this
    pace the kernel lets the transport write again only every ~0.7 s (once a third of the send
    buffer is acknowledged): what the client took is seen in the socket's send queue first."""
    web = WebSection(port=0, write_stall_s=0.5, connections_per_min=10**5)
    pace = threading.Event()  # never set: its wait is the reader's pace
    with live_server(small_export, web) as (port, _server), _connect(port, 8192) as reading:
        got = b""
        while chunk := reading.recv(8192):
            got += chunk
            pace.wait(1 / 16)  # 8 KiB every 1/16 s
        assert got.endswith(b"x" * 1000) and len(got) > 1 << 20


def test_the_listening_socket_gives_each_connection_a_bounded_send_buffer():
    sock = bind_socket("127.0.0.1", 0)
    try:
        # Linux reports twice what was set (its bookkeeping): never the 4 MiB autotuning reaches.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * SEND_BUFFER_BYTES
    finally:
        sock.close()
