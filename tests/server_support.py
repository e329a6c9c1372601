"""An app behind the daemon's own web server (``checkpoint.server.build_server``: h11 and its
guards, as ``kiosk run`` serves it), its loop in a thread of its own (a browser driver may run
a loop in the test's)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from checkpoint.server import build_server
from kiosk.clock import Clock
from kiosk.config.web import WebSection


@contextlib.contextmanager
def live_server(app: Any, web: WebSection, clock: Clock | None = None) -> Iterator[tuple[int, Any]]:
    """``app`` served on ``web`` (port 0: a free one), on ``clock`` (None: the system's): its
    port and the server."""
    server = build_server(app, web, clock=clock)
    # Its end as a stop ended it before the daemon's own (``Daemon.stop`` ends the live streams
    # first, then its requests after the log's close): what still runs 1 s after the end is
    # cut. Without it a live stream a browser holds keeps the server up for ever.
    server.config.timeout_graceful_shutdown = 1
    up, done = threading.Event(), threading.Event()

    async def life() -> None:
        server.config.load()
        server.lifespan = server.config.lifespan_class(server.config)
        await server.startup(sockets=[server.sock])
        up.set()
        await asyncio.to_thread(done.wait)
        await server.shutdown(sockets=[server.sock])
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in left:  # the API's loop-lag monitor
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    runner = threading.Thread(target=asyncio.run, args=(life(),), daemon=True)
    runner.start()
    assert up.wait(10), "the server did not start"
    try:
        yield server.sock.getsockname()[1], server
    finally:
        done.set()
        runner.join(10)
