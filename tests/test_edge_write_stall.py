"""A client that stops reading a response (a browser tab frozen in the background holding a
live stream: it keeps the connection and reads nothing) is cut after ``web.write_stall_s``
(``checkpoint.server.GuardedH11Protocol.pause_writing``), its connection slot and the
response's generator freed; a client that reads slowly keeps its response."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from server_support import live_server

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


def _connect(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tab that holds little
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


def test_the_listening_socket_gives_each_connection_a_bounded_send_buffer():
    sock = bind_socket("127.0.0.1", 0)
    try:
        # Linux reports twice what was set (its bookkeeping): never the 4 MiB autotuning reaches.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) <= 2 * SEND_BUFFER_BYTES
    finally:
        sock.close()
