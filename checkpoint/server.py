"""The web server with connection discipline: what a hostile LAN can do to it is bounded.

The screens and the API share one asyncio loop with the checkpoint's engine, so a flood of
connections must never reach the point where the loop spends its time on sockets instead of
passages. uvicorn alone bounds none of it: an idle or slowloris connection (headers sent a
byte at a time) stays open for ever, and at the process's open-file limit asyncio's accept
loop logs "socket.accept() out of system resource" once per pending connection per turn
(``backlog`` times, 2,048 in uvicorn) and keeps re-arming itself.

Here (``build_server``):

* ``GuardedH11Protocol`` counts open connections overall, per client address and per IPv6
  /64 and closes a new one at once (RST) past ``web.max_connections_per_client``, past half
  the overall cap from one /64 (unless one of its own silent connections makes room), or past
  ``web.max_connections`` (itself capped at half the open-file limit, so accept never runs
  out of descriptors) unless a connection still silent about its request can be closed to
  make room (``ConnectionGate``); the kiosk's own screen (``web.screen_addresses``) has
  ``SCREEN_HEADROOM`` more, so a flood from many LAN addresses cannot lock it out;
* a host (an IPv6 /64 together) opening connections faster than ``web.connections_per_min``
  has the excess closed on accept (``HostRate``), before any TLS handshake: the caps
  above bound how many it holds, not how fast it makes the Pi accept and, with ``web.tls``,
  shake hands (the kiosk's own screen and ``web.trusted_proxies`` are not limited); once in,
  its requests past ``web.requests_per_min`` are 429, the app not run (``RequestRate``);
* a connection must complete its request headers within ``web.header_timeout_s`` of
  connecting or of its previous response (idle and slowloris connections are closed), a
  request body must arrive within ``web.body_timeout_s``, and a client that reads nothing of
  its response for ``web.write_stall_s`` once its buffers are full (a frozen browser tab's
  live stream) is closed; each connection's kernel send buffer is ``SEND_BUFFER_BYTES``;
* ``BodyLimit`` answers 413 to a body over ``web.max_body_bytes`` (a form's over
  ``FORM_BODY_BYTES``: it is parsed on the loop), from ``Content-Length`` before reading
  anything, or as soon as a chunked body passes the cap;
* accept errors are logged at most once every ``ACCEPT_LOG_EVERY_S`` with a count, and the
  accept loop's batch (``backlog``) is small; so are uvicorn's warnings that any client
  causes per request (a malformed request, an Upgrade header, a broken form body:
  ``ClientNoiseFilter``);
* the listening socket is bound here, so a busy port is one clear ``OSError`` (``kiosk run``:
  exit 1), not uvicorn's ``sys.exit(3)``;
* proxy headers are believed only from ``web.trusted_proxies``; TLS from the ``tls_cert`` /
  ``tls_key`` credentials when ``web.tls`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import html
import ipaddress
import logging
import resource
import socket
import ssl
import sys
import termios
import time
import urllib.parse
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from kiosk.clock import Clock
from kiosk.config.web import WebSection
from kiosk.hosts import host_is_ours, own_host_names
from kiosk.logs import OncePerInterval
from kiosk.ratelimit import ACCEPT_BACKLOG, RateLimiter, Verdict, client_key
from kiosk.secrets import TLS_CREDENTIALS, TLS_MISSING, secret_path
from kiosk.tlscert import TlsCertificate, tls_context
from kiosk.typed import whole_number
from ui.kiosk_screen import Network, in_networks

log = logging.getLogger(__name__)

#: Accept errors (EMFILE ...) are logged at most this often, with how many were swallowed.
ACCEPT_LOG_EVERY_S = 10.0
#: Connections the kiosk's own screen (``web.screen_addresses``) may open past the overall cap.
SCREEN_HEADROOM = 16
_ACCEPT_MESSAGE = "socket.accept() out of system resource"


class ServerError(OSError):
    """The server cannot start (a busy port, a missing certificate): one line, exit 1."""


def open_file_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit to the hard one (systemd's ``LimitNOFILE``); the new
    soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return open_file_limit()


#: Connections closed, or requests refused, for coming too fast are said in the journal at
#: most this often.
RATE_LOG_EVERY_S = 60.0
#: Hosts whose rate is remembered (least recently seen forgotten first: one forgotten comes
#: back with its full burst, which only errs towards admitting).
RATE_MAX_HOSTS = 4096


class HostRate:
    """What one host may do over time: ``per_min`` a minute from one client (``client_key``:
    an IPv6 host's /64 together), in bursts of up to a sixth of it
    (``RateLimiter.per_minute``, on ``clock``). Addresses in ``exempt`` (the kiosk's own
    screen; for connections, the trusted proxies every client comes through) are never held
    back. A refusal is counted and said at most once a minute (``told``: what was done, and
    the setting), never with the address."""

    def __init__(
        self,
        per_min: int,
        clock: Clock,
        exempt: tuple[Network, ...] = (),
        max_hosts: int = RATE_MAX_HOSTS,
        told: tuple[str, str] = ("closed a connection on accept", "web.connections_per_min"),
    ) -> None:
        self.limiter = RateLimiter.per_minute(per_min, clock, max_hosts)
        self.exempt = exempt
        self.refused = 0
        self._clock = clock
        self._told = told
        self._log_every = OncePerInterval(RATE_LOG_EVERY_S)

    def check(self, address: str) -> Verdict:
        """Whether ``address`` may go on now (taking from its host's allowance)."""
        if in_networks(address, self.exempt):
            return Verdict(True)
        verdict = self.limiter.take(client_key(address))
        if verdict.allowed:
            return verdict
        self.refused += 1
        untold = self._log_every.due(self._clock.monotonic_ns() / 1e9)
        if untold is not None:
            done, setting = self._told
            log.warning(
                "%s: its host goes faster than %s (%d so far, %d since the last report)",
                done,
                setting,
                self.refused,
                untold + 1,
            )
        return verdict

    def allows(self, address: str) -> bool:
        return self.check(address).allowed

    def __len__(self) -> int:
        return len(self.limiter)


_TOO_MANY = b"too many requests from this host (web.requests_per_min); retry later\n"


class RequestRate:
    """ASGI middleware: a host's requests over time (``web.requests_per_min``, a ``HostRate``
    by the request's client, the one a trusted proxy names): past it 429 with
    ``Retry-After``, the app not run, and the connection closed. ``ConnectionGate`` bounds how
    often a host connects, not what it sends once in: one kept-alive connection pipelining a
    page (the public sign-in page, drawn each time), a static file or a 404 ran the app as
    fast as the Pi answered."""

    def __init__(self, app: ASGIApp, rate: HostRate) -> None:
        self.app = app
        self.rate = rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        verdict = self.rate.check(str(client[0]) if client else "unknown")
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        await _send_plain(
            send, 429, _TOO_MANY, extra=((b"retry-after", verdict.retry_after_header.encode()),)
        )


def _host_key(address: str, network: str) -> str:
    """One client address as the per-address cap counts it (``network``: its
    ``client_key``): an IPv4-mapped IPv6 address as its IPv4 address (a dual-stack listener
    sees IPv4 clients so)."""
    return network if "/" not in network else address


@dataclass
class ConnectionGate:
    """Open connections overall, per client address and per IPv6 /64, with the caps that
    close new ones.

    At the overall cap a new connection is not refused while some connection is still
    waiting for its request headers: the oldest such one (an idle or slowloris connection) is
    closed to make room. A browser sends its request at once, so a flood of connections that
    send nothing cannot hold every slot against a guard's or the office's request.

    An IPv6 host has the 2**64 addresses of its /64 to connect from, a fresh per-address
    budget each: a /64 together (``client_key``) holds at most ``max_per_network`` (half the
    overall cap by default), so one host rotating addresses leaves the rest for everyone
    else; and at that cap the /64's own oldest silent connection makes room, so one machine
    of a LAN's /64 flooding idle connections does not lock its neighbours out."""

    max_total: int
    max_per_client: int
    #: The kiosk's own screen (``web.screen_addresses``): past ``max_total`` it still gets
    #: ``SCREEN_HEADROOM`` more, so connections held by the LAN (a body that never comes is
    #: not "silent", so not evictable) cannot keep its event stream from reconnecting.
    screens: tuple[Network, ...] = ()
    #: Connections one IPv6 /64 may hold; 0: half of ``max_total`` (at least ``max_per_client``).
    max_per_network: int = 0
    #: How fast one host may open connections (``web.connections_per_min``); None: any.
    opening: HostRate | None = None
    open_total: int = 0
    per_client: Counter[str] = field(default_factory=Counter)
    per_network: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    evicted: int = 0
    waiting: OrderedDict[int, GuardedH11Protocol] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if self.max_per_network <= 0:
            self.max_per_network = max(self.max_per_client, self.max_total // 2)

    def admit(self, address: str) -> bool:
        if self.opening is not None and not self.opening.allows(address):
            self.refused += 1
            return False
        network = client_key(address)
        host = _host_key(address, network)
        if self.per_client[host] >= self.max_per_client:
            self.refused += 1
            return False
        if self.per_network[network] >= self.max_per_network and not self._evict(network):
            self.refused += 1
            return False
        full = self.open_total >= self.max_total and not self._screen_room(address)
        if full and not self._evict(None):
            self.refused += 1
            return False
        self.open_total += 1
        self.per_client[host] += 1
        self.per_network[network] += 1
        return True

    def _evict(self, network: str | None) -> bool:
        """Close the oldest connection still silent about its request (of ``network`` only,
        when given); False when there is none."""
        for key, silent in self.waiting.items():
            if network is None or silent.network == network:
                del self.waiting[key]
                silent.evict()
                self.evicted += 1
                return True
        return False

    def _screen_room(self, address: str) -> bool:
        if self.open_total >= self.max_total + SCREEN_HEADROOM:
            return False
        return in_networks(address, self.screens)

    def release(self, address: str) -> None:
        self.open_total -= 1
        network = client_key(address)
        for counts, key in ((self.per_client, _host_key(address, network)),
                            (self.per_network, network)):  # fmt: skip
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]


#: What a TLS connection may send before its protocol has its secured transport (the
#: request sent with the handshake's last message): more is no request of a browser.
EARLY_MAX_BYTES = 1 << 16


@dataclass(frozen=True)
class Limits:
    gate: ConnectionGate
    header_timeout_s: float
    body_timeout_s: float
    #: ``web.tls``: each connection's TLS is started by its own protocol once it is counted
    #: (``GuardedH11Protocol.connection_made``), so the caps and the header deadline hold from
    #: the TCP accept, the handshake included. asyncio's own TLS server hands a connection to
    #: its protocol only once the handshake is over: a client that never starts one was held
    #: 60 s, counted by no cap (a slowloris on the TLS port, any number of them).
    tls: ssl.SSLContext | None = None
    #: ``web.write_stall_s``: a response its client has stopped reading (the transport's
    #: writing paused, nothing taken from it since) is cut after this.
    write_stall_s: float = 60.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with connection caps, header/body deadlines and a deadline on a
    response its client stopped reading."""

    limits: Limits  # set on the subclass ``protocol_class`` makes
    #: The client's address, and its ``client_key`` (an IPv6 one's /64), as the
    #: ``ConnectionGate`` counts them.
    peer: str = "unknown"
    network: str = "unknown"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"
        self.network = client_key(self.peer)
        self._deadline: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._stall_left = 0  # what the transport held when the stall's timer was armed
        self._timed_cycle: RequestResponseCycle | None = None
        self._counted = self.limits.gate.admit(self.peer)
        self._served = self._counted
        self._raw: asyncio.Transport = transport
        self._early = bytearray()
        if not self._counted:
            # Closed before uvicorn sees it: no task, no buffer, the descriptor freed now.
            transport.abort()
            return
        if self.limits.tls is None:
            super().connection_made(transport)
        else:  # the handshake is timed as the wait for the request's headers
            self._handshake = self.loop.create_task(self._start_tls(transport, self.limits.tls))
        self._await_headers()

    async def _start_tls(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        try:
            secured = await self.loop.start_tls(
                raw, self, context, server_side=True,
                ssl_handshake_timeout=max(self.limits.header_timeout_s, 1.0),
            )  # fmt: skip
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - any end of a handshake
            self._gone()  # failed, cut or timed out: no request ever came
            return
        if not self._served or secured is None:
            self._gone()
            return
        super().connection_made(secured)
        early, self._early = bytes(self._early), bytearray()
        if early:  # what came with the handshake's end, before this task went on
            self.data_received(early)

    def _gone(self) -> None:
        self._served = False
        self._uncount()
        self._disarm()
        self._unstall()
        if not self._raw.is_closing():
            self._raw.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._served:
            return
        if self.transport is None:  # its TLS never started: uvicorn never saw it
            self._gone()
            return
        self._served = False
        self._uncount()
        self._disarm()
        self._unstall()
        super().connection_lost(exc)

    def _open_transport(self) -> asyncio.Transport | None:
        """What to close: uvicorn's transport, or while the TLS handshake runs the socket's."""
        found = self.transport if self.transport is not None else self._raw
        return None if found.is_closing() else found

    def evict(self) -> None:
        """Make room at the overall cap: this connection has not sent its request yet."""
        self._uncount()
        self._disarm()
        if (transport := self._open_transport()) is not None:
            transport.abort()

    def _uncount(self) -> None:
        self.limits.gate.waiting.pop(id(self), None)
        if self._counted:
            self._counted = False
            self.limits.gate.release(self.peer)

    def _await_headers(self) -> None:
        self._arm(self.limits.header_timeout_s)
        self.limits.gate.waiting[id(self)] = self

    def data_received(self, data: bytes) -> None:
        if self.transport is None and self._served and self.limits.tls is not None:
            self._early += data  # the TLS is up, the task that hands it to uvicorn not yet
            if len(self._early) > EARLY_MAX_BYTES:
                self._gone()
            return
        if self.transport is None or not self._served:
            return
        super().data_received(data)
        cycle = self.cycle
        if cycle is None or cycle is self._timed_cycle:
            if cycle is not None and not cycle.more_body:
                self._disarm()  # the body is in: the response may take as long as it needs
            return
        self._headers_complete(cycle)

    def _headers_complete(self, cycle: RequestResponseCycle) -> None:
        """A new request's headers are complete: no longer waiting, and now its body has a
        deadline (if any)."""
        self._timed_cycle = cycle
        self.limits.gate.waiting.pop(id(self), None)
        self._disarm()
        if cycle.more_body:
            self._arm(self.limits.body_timeout_s)

    def on_response_complete(self) -> None:
        answered = self.cycle
        super().on_response_complete()  # starts a pipelined request already read, if any
        if not self._served or self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle is not answered:
            self._headers_complete(self.cycle)
        else:
            self._await_headers()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if (transport := self._open_transport()) is not None:
            transport.abort()

    def pause_writing(self) -> None:
        """The transport's buffer is past its high-water mark, the socket's own full: the
        client is not keeping up. Unless it takes some of what is buffered within
        ``write_stall_s`` the connection is cut (``_stalled``): a browser tab frozen in the
        background keeps its live stream's connection open and reads nothing, and the
        response's next write would wait on it for as long as the tab stays frozen, its slot,
        task and buffers held. A client reading slowly (a big export to a phone on weak
        Wi-Fi) takes some every time and keeps its response, however long it takes."""
        super().pause_writing()
        if self._stall is None and self._served:
            self._arm_stall()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._unstall()

    def _buffered(self) -> int:
        """What is still to reach the client: the transport's buffer and the socket's send
        queue (the kernel frees room for the transport's next write only once a third or
        more of it is acknowledged: a client reading slowly moves this queue long before)."""
        transport = self.transport if self.transport is not None else self._raw
        return transport.get_write_buffer_size() + unsent_bytes(self._raw)

    def _arm_stall(self) -> None:
        self._stall_left = self._buffered()
        self._stall = self.loop.call_later(self.limits.write_stall_s, self._stalled)

    def _unstall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        """Nothing taken for ``write_stall_s``: closed (uvicorn then tells the response its
        client is gone: a stream ends, its generator closed, its bus subscription with it).
        Some taken: watched again."""
        self._stall = None
        if not self._served:
            return  # gone meanwhile
        if self._buffered() < self._stall_left:
            self._arm_stall()  # the client took some: still reading
            return
        # Aborted even while closing: a response handed over whole is closed gracefully once
        # the keep-alive time passes, and a graceful close waits for the client to read it.
        transport = self.transport if self.transport is not None else self._raw
        transport.abort()
        log.info("web: closed a connection that read nothing for %.0f s", self.limits.write_stall_s)


def unsent_bytes(transport: asyncio.BaseTransport) -> int:
    """The bytes in ``transport``'s socket's send queue the client has not acknowledged
    (Linux's ``SIOCOUTQ``); 0 where that cannot be read."""
    sock = transport.get_extra_info("socket")
    try:
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError):
        return 0
    return int.from_bytes(queued, sys.byteorder, signed=True)


def protocol_class(limits: Limits) -> type[GuardedH11Protocol]:
    return type("EdgeH11Protocol", (GuardedH11Protocol,), {"limits": limits})


#: A form's body (urlencoded, or multipart outside a route in ``BodyLimit.larger``) is cut at
#: this: a route parses its form on the event loop, Starlette percent-decoding each field in
#: one blocking step (1 MiB of ``%41`` held the loop 0.25 s on a PC, 2-3 s on a Pi 3B, before
#: the sign-in form even checked its token). The console's largest form is the people page's
#: with every key at its ``maxlength`` in Chinese, 22.9 KB (tests/test_edge_form_body.py);
#: its others are under 16 KiB (docs/network.md).
FORM_BODY_BYTES = 32 * 1024
#: The media types a route parses as a form (``Request.form``).
_URLENCODED = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"

#: A request framed both by ``Content-Length`` and ``Transfer-Encoding`` (RFC 9112 6.3).
_TWO_FRAMINGS = b"a request body framed both by Content-Length and by Transfer-Encoding\n"


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, before reading it when its
    ``Content-Length`` says so, else as soon as the chunks pass the cap. A form's body has
    ``form_bytes`` instead (never more than ``max_bytes``; ``FORM_BODY_BYTES``). A path in
    ``larger`` has its own cap for any body but a urlencoded one (never a smaller one than
    ``max_bytes``): the clerks' sheets' import takes 5 MB of multipart.

    A request with both ``Content-Length`` and ``Transfer-Encoding`` is 400 and its
    connection closed, unread: h11 reads it by its chunks and kept the connection, so a
    request hidden after its last chunk ran next (request smuggling: a proxy in front that
    frames by the length forwards it inside the first one's body)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Mapping[str, int] = {},  # noqa: B006
        form_bytes: int = FORM_BODY_BYTES,
        lang: str = "zh-CN",
    ) -> None:
        self.app = app
        self.lang = lang  # the console's language where the guard chose none (site.language)
        self.max_bytes = max_bytes
        self.form_bytes = min(form_bytes, max_bytes)
        self.larger = {path: max(cap, max_bytes) for path, cap in larger.items()}

    def cap(self, scope: Scope) -> int:
        """The most this request's body may be."""
        form = _form_type(scope)
        if form == _URLENCODED:
            return self.form_bytes
        return self.larger.get(scope.get("path", ""), self.form_bytes if form else self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap(scope)
        length = _header(scope, b"content-length")
        if length is not None and _header(scope, b"transfer-encoding") is not None:
            await _send_plain(send, 400, _TWO_FRAMINGS)  # and the connection closed
            return
        if length is not None and ((declared := whole_number(length)) is None or declared > cap):
            await self._too_large(scope, send)
            return
        seen = 0
        started = rejected = False

        async def counted_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    # Answer now; to the app the client is gone (it stops reading).
                    rejected = True
                    if not started:
                        await self._too_large(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if rejected:
                return  # the app's answer to a body it never got in full
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not rejected:
                raise

    async def _too_large(self, scope: Scope, send: Send) -> None:
        """413: a browser's form (a guard's post, ``Accept: text/html``) gets a short page in
        the console's language saying nothing was saved; anything else the API's JSON."""
        if _form_type(scope) is None or "text/html" not in (_header(scope, b"accept") or ""):
            await _send_plain(send, 413, _TOO_LARGE_JSON, b"application/json")
            return
        page = too_large_page(_console_lang(scope, self.lang), -(-self.cap(scope) // 1024))
        await _send_plain(send, 413, page, b"text/html; charset=utf-8", _PAGE_HEADERS)


_TOO_LARGE_JSON = b'{"detail":"request body too large"}'
#: The too-large page runs nothing and loads nothing.
_PAGE_HEADERS = ((b"content-security-policy", b"default-src 'none'"),)


@functools.cache
def too_large_page(lang: str, kb: int) -> bytes:
    """The page a guard's browser gets for a form over its bound (``kb``: a form's is
    ``FORM_BODY_BYTES``): fixed words in ``lang``, nothing of the request in them, and the
    way back to the console."""
    from ui import i18n

    title, said, back = (
        html.escape(i18n.t(lang, key, kb=kb)) for key in ("edge.title", "edge.said", "edge.back")
    )
    return (
        f'<!doctype html><html lang="{html.escape(lang)}"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><h1>{title}</h1><p>{said}</p>"
        f'<p><a href="/guard">{back}</a></p></html>'
    ).encode()


def _console_lang(scope: Scope, default: str) -> str:
    """The console's language of this request as its pages pick it (``?lang=``, else the
    ``kiosk_lang`` cookie, else ``default``), without the app."""
    from ui.i18n import pick_lang

    query = urllib.parse.parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
    chosen: str | None = next(iter(query.get("lang", [])), None)
    if chosen is None:
        cookies = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookies.load(_header(scope, b"cookie") or "")
        chosen = cookies["kiosk_lang"].value if "kiosk_lang" in cookies else None
    return pick_lang(chosen, default)


#: A host the kiosk does not answer to is said at most this often in the journal.
HOST_LOG_EVERY_S = 60.0
_MISDIRECTED = (
    b"this kiosk does not answer to that host name; if it is the kiosk's own,"
    b" add it to web.allowed_hosts (docs/network.md)\n"
)


class HostCheck:
    """ASGI middleware: 421 for a request whose ``Host`` names neither an IP address nor one
    of the kiosk's own names (``kiosk.hosts``). A page on another domain whose name was
    made to resolve to the kiosk (DNS rebinding) is the kiosk's origin to the browser, which
    then lets its scripts read the kiosk's answers and pass ``Origin`` checks; its requests
    still carry its own name as ``Host``. A request with no ``Host`` (HTTP/1.0, no browser)
    passes."""

    def __init__(
        self,
        app: ASGIApp,
        names: frozenset[str],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.names = names
        self.monotonic = monotonic
        self.refused = 0
        self._log_every = OncePerInterval(HOST_LOG_EVERY_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if not host or host_is_ours(host, self.names):
            await self.app(scope, receive, send)
            return
        self.refused += 1
        if self._log_every.due(self.monotonic()) is not None:
            log.warning(
                "refused a request for host %r (%d so far): not one of this kiosk's names"
                " (web.allowed_hosts)",
                host[:100],
                self.refused,
            )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await _send_plain(send, 421, _MISDIRECTED)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1").strip()
    return None


def _form_type(scope: Scope) -> str | None:
    """The form media type a ``Content-Type`` of the request names (any of them, as Starlette
    reads its first: the part before ``;``, in any case), else None."""
    for key, value in scope.get("headers") or ():
        if key == b"content-type":
            media = bytes(value).decode("latin-1").split(";", 1)[0].strip().lower()
            if media in (_URLENCODED, _MULTIPART):
                return media
    return None


async def _send_plain(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = b"text/plain; charset=utf-8",
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Answer ``status`` with ``body`` before the app read the request, and close."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AcceptErrorLog:
    """A loop exception handler that turns accept-error storms into one line per interval."""

    def __init__(
        self,
        previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None,
        every_s: float = ACCEPT_LOG_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.previous = previous
        self.monotonic = monotonic
        self.total = 0
        self._log_every = OncePerInterval(every_s)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_MESSAGE:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.total += 1
        untold = self._log_every.due(self.monotonic())
        if untold is None:
            return
        exc = context.get("exception")
        code = errno.errorcode.get(getattr(exc, "errno", 0) or 0, "?")
        log.warning(
            "cannot accept connections (%s); %d more like this since the last report",
            code,
            untold,
        )


#: uvicorn's warnings that any client causes at will, one (or two) per request it sends.
CLIENT_CAUSED = (
    "Invalid HTTP request received.",
    "Unsupported upgrade request.",
    "No supported WebSocket library detected.",
)


class ClientNoiseFilter(logging.Filter):
    """On uvicorn's logger: each of ``kinds`` (``CLIENT_CAUSED``) at most once every
    ``every_s``, the next one with how many were dropped, so a script on the LAN cannot fill
    the journal (and past journald's rate limit have the kiosk's own warnings dropped).
    ``kinds=None``: every message of the logger is one kind (the form parser's: all of them
    are about the body a client sent)."""

    def __init__(
        self,
        kinds: tuple[str, ...] | None = CLIENT_CAUSED,
        every_s: float = ACCEPT_LOG_EVERY_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.kinds = kinds
        self.monotonic = monotonic
        self._log_every = OncePerInterval(every_s)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        kinds = self.kinds
        kind = "" if kinds is None else next((k for k in kinds if text.startswith(k)), None)
        if kind is None:
            return True
        dropped = self._log_every.due(self.monotonic(), kind)
        if dropped is None:
            return False
        if dropped:
            record.msg, record.args = f"{text} ({dropped} more like this since the last report)", ()
        return True


def install_client_noise_filter(
    name: str = "uvicorn.error", kinds: tuple[str, ...] | None = CLIENT_CAUSED
) -> ClientNoiseFilter:
    """The ``ClientNoiseFilter`` on logger ``name`` (added once per process)."""
    logger = logging.getLogger(name)
    for existing in logger.filters:
        if isinstance(existing, ClientNoiseFilter):
            return existing
    noise = ClientNoiseFilter(kinds)
    logger.addFilter(noise)
    return noise


def install_accept_log(loop: asyncio.AbstractEventLoop) -> AcceptErrorLog:
    current = loop.get_exception_handler()
    if isinstance(current, AcceptErrorLog):
        return current
    handler = AcceptErrorLog(current)
    loop.set_exception_handler(handler)
    return handler


#: Each connection's kernel send buffer (``SO_SNDBUF``, set on the listening socket: the
#: accepted ones take it; Linux doubles it for its bookkeeping). Left to autotuning it grows to
#: ``net.ipv4.tcp_wmem``'s maximum, 4 MiB: a client that stops reading (a frozen browser tab's
#: live stream) held that much of a Pi's kernel memory per connection, 256 connections a GiB,
#: and its stall showed (``GuardedH11Protocol.pause_writing``) only once 4 MiB had queued, hours
#: of a stream's ticks. 128 KiB still carries 100 MB/s at a LAN's 1-2 ms and ~2.5 MB/s at 100 ms.
SEND_BUFFER_BYTES = 128 * 1024


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a busy port is a clear ``ServerError``. Made as
    TCP by name: asyncio sets TCP_NODELAY on accepted sockets only when their protocol says
    so, and without it a response written in two pieces on a kept-alive connection waits
    ~40 ms for the client's delayed ACK. Its send buffer is ``SEND_BUFFER_BYTES``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerError(
                exc.errno, f"port {port} on {host} is already in use (another kiosk running?)"
            ) from None
        raise ServerError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(ACCEPT_BACKLOG)
    sock.set_inheritable(True)
    return sock


def tls_files(web: WebSection) -> tuple[str, str] | None:
    """``(certfile, keyfile)`` from the credentials when ``web.tls``; None when off."""
    if not web.tls:
        return None
    cert, key = (secret_path(name) for name in TLS_CREDENTIALS)
    if cert is None or key is None:
        raise ServerError(errno.ENOENT, TLS_MISSING)
    return str(cert), str(key)


def certificate_names(cert_file: str) -> tuple[str, ...]:
    """The DNS names a PEM certificate is for (its subject alternative names): the names the
    kiosk is reached by over TLS (``scripts/install --tls-name``). Nothing for a file that is
    not a certificate; the TLS handshake reports that one."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return ()
    return tuple(alternatives.value.get_values_for_type(x509.DNSName))


def certificate_validity(cert_file: str) -> TlsCertificate | None:
    """When the PEM certificate the API serves is valid (``kiosk.tlscert``); None for a file
    that cannot be read or is not a certificate (the TLS handshake reports that one)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except (OSError, ValueError):
        return None
    return TlsCertificate(cert.not_valid_before_utc, cert.not_valid_after_utc)


def effective_max_connections(web: WebSection, nofile: int | None = None) -> int:
    """``web.max_connections``, capped at half the open-file limit (the other half is the
    event log, helpers, devices and the accept that closes the excess)."""
    nofile = open_file_limit() if nofile is None else nofile
    return max(8, min(web.max_connections, nofile // 2))


class EdgeConfig(uvicorn.Config):
    """uvicorn's config with the connection limits it serves under (for /metrics, the bench)."""

    edge_limits: Limits
    client_noise: ClientNoiseFilter
    form_noise: ClientNoiseFilter


def _networks(addresses: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(a, strict=False) for a in addresses)


def server_config(
    app: ASGIApp,
    web: WebSection,
    clock: Clock | None = None,
    *,
    lang: str = "zh-CN",
    **overrides: Any,
) -> EdgeConfig:
    """uvicorn's config for ``app`` under ``web``'s limits. ``clock``: what the rate of new
    connections is timed by (default the machine's: a rate of connections is one of real
    time, whatever clock the checkpoint runs on, e.g. the demo's)."""
    if clock is None:
        from drivers.clocksync import system_clock

        clock = system_clock()
    screens = _networks(web.screen_addresses)
    opening = HostRate(web.connections_per_min, clock, screens + _networks(web.trusted_proxies))
    limits = Limits(
        ConnectionGate(
            effective_max_connections(web),
            web.max_connections_per_client,
            screens,
            opening=opening,
        ),
        web.header_timeout_s,
        web.body_timeout_s,
        tls_context(*tls) if (tls := tls_files(web)) is not None else None,
        web.write_stall_s,
    )
    options: dict[str, Any] = {
        "log_config": None,
        "access_log": False,
        "lifespan": "off",
        # Not uvicorn's: the daemon's stop ends its requests under way (``Daemon._end_web``),
        # once the event log's close has refused their reads (503), never cut before (500).
        "timeout_graceful_shutdown": None,
        "http": protocol_class(limits),
        "ws": "none",
        "backlog": ACCEPT_BACKLOG,
        "timeout_keep_alive": min(5, int(web.header_timeout_s) or 1),
        "proxy_headers": bool(web.trusted_proxies),
        "forwarded_allow_ips": list(web.trusted_proxies) or None,
        "server_header": False,
    }
    options.update(overrides)
    # Bound to a name: that one too; with TLS, the names its certificate is for.
    certified = certificate_names(tls[0]) if tls is not None else ()
    names = own_host_names((*web.allowed_hosts, web.host, *certified))
    from ui.guard.community.imports import LARGE_BODIES

    guarded = HostCheck(BodyLimit(app, web.max_body_bytes, LARGE_BODIES, lang=lang), names)
    requests = HostRate(
        web.requests_per_min, clock, screens, told=("answered 429", "web.requests_per_min")
    )
    config = EdgeConfig(RequestRate(guarded, requests), **options)
    config.edge_limits = limits
    config.client_noise = install_client_noise_filter()
    config.form_noise = install_client_noise_filter("python_multipart.multipart", None)
    return config


class EdgeServer(uvicorn.Server):
    """uvicorn on a socket bound here, minus its signal handling (the daemon owns SIGTERM)."""

    def __init__(self, config: EdgeConfig, sock: socket.socket) -> None:
        super().__init__(config)
        self.sock = sock
        self._limits = config.edge_limits

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        install_accept_log(asyncio.get_running_loop())
        await super().serve(sockets=sockets or [self.sock])

    @property
    def limits(self) -> Limits:
        return self._limits


def build_server(
    app: ASGIApp,
    web: WebSection,
    clock: Clock | None = None,
    *,
    lang: str = "zh-CN",
    **overrides: Any,
) -> EdgeServer:
    """The daemon's web server for ``app`` under ``web``'s limits, its socket bound; ``lang``:
    the site's language (``site.language``), of a page the edge answers a guard itself."""
    config = server_config(app, web, clock, lang=lang, **overrides)
    return EdgeServer(config, bind_socket(web.host, web.port))
