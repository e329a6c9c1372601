"""EventBus: asyncio pub/sub from the engine to the screens (SSE / WebSocket).

The decision path publishes and moves on: ``publish`` never awaits and never blocks. Each
subscriber has its own bounded queue; a subscriber that falls ``maxsize`` messages behind
(a frozen browser tab, a stalled SSE socket) is dropped rather than allowed to hold memory
or slow the loop, and is told so with one final ``{"type": "dropped"}`` message so it can
reconnect and re-read the current state.

Messages are plain dicts ``{"type": "state"|"decision"|"alarm"|"health", ...}`` (and the
console's ``peers``, ``alarms_closed`` and ``alarms_heard`` (the alarm desk's: an ``alarm``
it heard changed the open alarms), and ``recorded``: a row written after its decision
was told, which the compound's gates are poked for; the screens ignore them). The last
message of each type ``state`` and ``health`` is kept, so a screen that connects mid-passage
shows the current prompt at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

log = logging.getLogger(__name__)

#: Message types kept for late subscribers (the current prompt, the current device health).
STICKY_TYPES = ("state", "health")


class Subscription:
    """One subscriber's bounded queue. Iterate it (``async for msg in sub``) or ``await get()``.

    Iteration ends after the ``dropped`` message or after ``close()``.
    """

    def __init__(self, bus: EventBus, maxsize: int, name: str, *, stream: bool = False) -> None:
        self._bus = bus
        self.name = name
        self.stream = stream
        self.maxsize = maxsize
        self._items: deque[dict[str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.dropped = False

    def _offer(self, message: dict[str, Any]) -> bool:
        """Queue a message; False means this subscriber is too slow and must be dropped."""
        if self.closed:
            return True
        if len(self._items) >= self.maxsize:
            return False
        self._items.append(message)
        self._wake()
        return True

    def _drop(self, reason: str) -> None:
        self._items.clear()
        self._items.append({"type": "dropped", "reason": reason})
        self.dropped = True
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def pending(self) -> int:
        return len(self._items)

    def get_nowait(self) -> dict[str, Any] | None:
        return self._items.popleft() if self._items else None

    async def get(self) -> dict[str, Any] | None:
        """The next message, or None once the subscription is closed and drained."""
        while not self._items:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        message = await self.get()
        if message is None:
            raise StopAsyncIteration
        return message

    def close(self) -> None:
        """Unsubscribe (the screen went away)."""
        self.closed = True
        self._bus._remove(self)
        self._wake()


class EventBus:
    """Fan-out of engine messages to any number of screens, never blocking the publisher.

    All methods run on the event loop's thread; from another thread use
    ``publish_threadsafe``.
    """

    def __init__(self, maxsize: int = 256) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._subs: list[Subscription] = []
        self._sticky: dict[str, dict[str, Any]] = {}
        self.dropped_total = 0
        self.published_total = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.streams_ended = False

    def subscribe(
        self, *, maxsize: int | None = None, name: str = "screen", stream: bool = False
    ) -> Subscription:
        """A new subscriber; it first receives the current state and health, if any.
        ``stream``: a web client's live stream (every long response takes one, the camera
        preview too), ended at the daemon's stop (``end_streams``);
        one asked after that is closed at once (its stream ends where it begins)."""
        sub = Subscription(self, maxsize or self.maxsize, name, stream=stream)
        if stream and self.streams_ended:
            sub.closed = True
            return sub
        for kind in STICKY_TYPES:
            if kind in self._sticky:
                sub._offer(self._sticky[kind])
        self._subs.append(sub)
        return sub

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def last(self, kind: str) -> dict[str, Any] | None:
        return self._sticky.get(kind)

    def publish(self, message: dict[str, Any]) -> None:
        """Deliver to every subscriber now; slow ones are dropped, never waited for."""
        if "type" not in message:
            raise ValueError("bus messages need a 'type'")
        self.published_total += 1
        if message["type"] in STICKY_TYPES:
            self._sticky[message["type"]] = message
        for sub in list(self._subs):
            if not sub._offer(message):
                self._subs.remove(sub)
                sub._drop("slow")
                self.dropped_total += 1
                log.warning("bus: dropped slow subscriber %s (%d queued)", sub.name, sub.maxsize)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the loop for ``publish_threadsafe``."""
        self._loop = loop

    def publish_threadsafe(self, message: dict[str, Any]) -> None:
        if self._loop is None:
            raise RuntimeError("EventBus.bind(loop) first")
        self._loop.call_soon_threadsafe(self.publish, message)

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def end_streams(self) -> None:
        """The daemon's stop begins: every web client's live stream (``subscribe(stream=True)``)
        ends, cleanly, where it is, and one asked after ends at once: the web server's end
        waits for none of them (they would hold it to its graceful timeout, and be cut there
        with a traceback). The engine's and the helpers' subscriptions go on."""
        self.streams_ended = True
        for sub in [s for s in self._subs if s.stream]:
            sub.close()

    def open_streams(self) -> None:
        """A start (again, of this bus): live streams are served until ``end_streams``."""
        self.streams_ended = False

    def close(self) -> None:
        """End every subscription (shutdown)."""
        for sub in list(self._subs):
            sub.close()
