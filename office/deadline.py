"""A whole-request deadline for the office's HTTP clients.

httpx's timeouts are per read: a host that sends one byte every few seconds (its headers or a
body) never trips them, and holds the caller for as long as it likes. ``Deadline`` bounds the
whole request: a timer shuts the request's socket down when the time is up (the blocked read
then fails at once), and ``check`` between the body's pieces catches a transport without a
socket (tests' mock transports). ``httpx_args`` gives what the request must carry: the trace
hook that hands the socket over, and ``Connection: close`` so the request always opens its own
connection (a pooled one would not be seen being opened).
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
