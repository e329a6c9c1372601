"""Token-bucket rate limiting with an injected clock.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``; each request takes one.
An empty bucket answers how long until the next token, which the API sends as ``Retry-After``.
Buckets are keyed (per API token, per client address); the number of keys is bounded so an
attacker cycling addresses cannot grow memory without limit: the least recently used bucket
is dropped first (a dropped bucket comes back full, which only ever errs towards allowing).
A limit kept per client keys it by ``client_key``: an IPv6 client by its /64, since one host
there has 2**64 addresses to take a fresh budget from. The connections a server holds per
client (``ClientSlots``) and queues before it takes them (``ACCEPT_BACKLOG``) are here too.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from kiosk.clock import Clock


def client_key(addr: str) -> str:
    """Whom a per-client limit counts ``addr`` as: an IPv4 address (an IPv4-mapped IPv6 one
    as that IPv4 address), or an IPv6 address's /64, the least a network hands one home or
    phone (a host rotating addresses inside it is one sender). Anything else (``unknown``,
    a test client's name) is itself, cut to 64 characters."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return addr[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: float = 0.0

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, rounded up and at least 1 (RFC 9110 delay-seconds)."""
        return str(max(1, math.ceil(self.retry_after_s)))


class RateLimiter:
    """Many token buckets, one per key, sharing a rate, a burst and a clock. Thread-safe."""

    def __init__(
        self,
        rate_per_s: float,
        burst: float,
        clock: Clock,
        max_keys: int = 10_000,
    ) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s must be > 0, burst >= 1, max_keys >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        # key -> (tokens, monotonic ns of the last refill)
        self._buckets: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def per_minute(cls, per_min: int, clock: Clock, max_keys: int = 10_000) -> RateLimiter:
        """``per_min`` requests a minute on average, with bursts up to a sixth of that."""
        return cls(per_min / 60.0, max(1.0, per_min / 6.0), clock, max_keys)

    def take(self, key: str, cost: float = 1.0) -> Verdict:
        now = self._clock.monotonic_ns()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            elapsed_s = max(0, now - last) / 1e9
            tokens = min(self.burst, tokens + elapsed_s * self.rate_per_s)
            if tokens >= cost:
                verdict = Verdict(True)
                tokens -= cost
            else:
                verdict = Verdict(False, (cost - tokens) / self.rate_per_s)
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return verdict

    def waiting(self, key: str, cost: float = 1.0) -> Verdict:
        """Whether ``key`` could take ``cost`` now, taking nothing: a limit on failures only
        (wrong secrets) asks this first and ``take``s for each failure."""
        now = self._clock.monotonic_ns()
        with self._lock:
            found = self._buckets.get(key)
        if found is None:
            return Verdict(True)
        tokens, last = found
        tokens = min(self.burst, tokens + max(0, now - last) / 1e9 * self.rate_per_s)
        if tokens >= cost:
            return Verdict(True)
        return Verdict(False, (cost - tokens) / self.rate_per_s)

    def __len__(self) -> int:
        return len(self._buckets)


class RepeatTally:
    """The same read, written down once per ``every_s`` per key, its repeats in between
    counted: an office dashboard polling the same report every 10 s is one audit row an hour
    saying how many polls it stands for, not 360. ``due`` says whether a row is due (and the
    repeats since the last one); ``written`` that it was written (a row that failed is due
    again). At most ``max_keys`` keys, the least recently used dropped first (its next read
    is written: errs towards writing). Thread-safe; an injected clock."""

    def __init__(self, every_s: float, clock: Clock, max_keys: int = 1024) -> None:
        if every_s <= 0 or max_keys < 1:
            raise ValueError("every_s must be > 0, max_keys >= 1")
        self._every_ns = int(every_s * 1e9)
        self._clock = clock
        self._max_keys = max_keys
        # key -> (monotonic ns of its last row, reads not written since)
        self._rows: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def due(self, key: str) -> int | None:
        """None: a repeat within ``every_s`` of the key's last row, counted; else a row is due
        and this is how many repeats it stands for besides this read."""
        now = self._clock.monotonic_ns()
        with self._lock:
            found = self._rows.get(key)
            if found is None:
                return 0
            last, repeats = found
            if 0 <= now - last < self._every_ns:
                self._rows[key] = (last, repeats + 1)
                self._rows.move_to_end(key)
                return None
            return repeats

    def written(self, key: str) -> None:
        """The row ``due`` asked for is written: the repeats start again from none."""
        now = self._clock.monotonic_ns()
        with self._lock:
            self._rows.pop(key, None)
            self._rows[key] = (now, 0)
            while len(self._rows) > self._max_keys:
                self._rows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rows)


#: The listen queue of every server of the project (the kiosk's web server, the collector's
#: status port): connections the kernel completes before the server takes them. Past it a
#: client's SYN is dropped and sent again 1 s, 3 s, 7 s later (behind ``socketserver``'s 5, a
#: compound's gates fetching their lists in the same second waited so). In asyncio's accept
#: loop (the kiosk's uvicorn) also the connections one turn takes when the socket is ready.
ACCEPT_BACKLOG = 128


class ClientSlots:
    """Connections held per client address (an IPv4-mapped IPv6 one as its IPv4 address) and
    per IPv6 /64 (``client_key``), with their caps: one host cannot hold every connection of
    a server, nor one host rotating through its /64's addresses. ``take`` before serving a
    connection (False: over a cap, refuse it), ``give`` once it is closed. Thread-safe."""

    def __init__(self, per_address: int, per_network: int) -> None:
        if per_address < 1 or per_network < 1:
            raise ValueError("per_address and per_network must be >= 1")
        self.per_address = per_address
        self.per_network = per_network
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def _keys(self, address: str) -> tuple[tuple[str, int], ...]:
        """What ``address`` counts against, with each one's cap: itself, and an IPv6
        address its /64 too."""
        network = client_key(address)
        if "/" not in network:  # IPv4 (mapped or not), or no address: the address alone
            return ((network, self.per_address),)
        return (address, self.per_address), (network, self.per_network)

    def take(self, address: str) -> bool:
        keys = self._keys(address)
        with self._lock:
            if any(self._held.get(key, 0) >= cap for key, cap in keys):
                return False
            for key, _cap in keys:
                self._held[key] = self._held.get(key, 0) + 1
        return True

    def give(self, address: str) -> None:
        with self._lock:
            for key, _cap in self._keys(address):
                left = self._held.get(key, 0) - 1
                if left > 0:
                    self._held[key] = left
                else:
                    self._held.pop(key, None)
