"""A whole-request deadline for the office's HTTP clients.

httpx's timeouts are per read: a host that sends one byte every few seconds (its headers or a
body) never trips them, and holds the caller for as long as it likes. ``Deadline`` bounds the
whole request: a timer shuts the request's socket down when the time is up (the blocked read
then fails at once), and ``check`` between the body's pieces catches a transport without a
socket (tests' mock transports). ``httpx_args`` gives what the request must carry: the trace
hook that hands the socket over, and ``Connection: close`` so the request always opens its own
connection (a pooled one would not be seen being opened).

One connection per request was measured against kept-alive connections in one run (the real
kiosk core behind ``checkpoint.server.build_server``, loopback, taken under load; medians of
60 requests of one event): 4.7 ms closed vs 48.0 ms kept alive over HTTP, 48.0 vs 48.0 ms
over TLS. The kiosk's server leaves Nagle's algorithm on (its listening socket is made
without ``IPPROTO_TCP``, so asyncio does not set ``TCP_NODELAY`` on the connections), and a
response written in two pieces on a kept-alive connection waits for the client's delayed
ACK, ~40 ms. With ``TCP_NODELAY`` set on that server the handshake is all that is left:
4.5 vs 3.1 ms (HTTP), 6.7 vs 4.2 ms (TLS) per request, against 120-260 ms for a 5,000-event
page: 1-2 % of a pull. Whole pulls of 50,000 events (pages of 5,000 and 1,000) showed
no difference beyond the run-to-run noise (each mode ranged 4,000-18,000 ev/s under load).
A kept-alive connection would also hide its socket from the deadline until its headers
arrive (httpx names a pooled connection's stream only on the response), which is the one
moment a trickled header needs it. So: ``Connection: close``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any


class DeadlineExceeded(Exception):
    """The request did not complete within its deadline."""


class Deadline:
    """Use as a context manager around one request; ``expired`` tells afterwards whether a
    failure was the deadline's doing."""

    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._end = monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        return self._expired or self._monotonic() >= self._end

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def httpx_args(self, headers: dict[str, str]) -> dict[str, Any]:
        """Keyword arguments for ``client.stream``: ``headers`` plus ``Connection: close``,
        and the trace hook."""
        return {"headers": {**headers, "Connection": "close"}, "extensions": {"trace": self._trace}}

    def check(self) -> None:
        """``DeadlineExceeded`` once the time is up."""
        if self.expired:
            raise DeadlineExceeded(f"no complete answer within {self.seconds:g} s")

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        if not event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if not self._expired:
                self._sockets.append(sock)
                return
        _shut(sock)  # opened after the time was up

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to wait on
