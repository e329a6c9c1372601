"""Load a bench section keeps up on a thread of its own while it measures (``with Flood(...):``)."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Self


class Background(ABC):
    """Work on a daemon thread from entering ``with`` until leaving it.

    A subclass does its work in ``_run`` until ``_stop`` is set; leaving the ``with`` sets it
    and waits up to ``join_s`` for the thread (a daemon: one that hangs does not keep the
    bench from exiting)."""

    join_s = 5.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @abstractmethod
    def _run(self) -> None:
        """The work, until ``self._stop`` is set."""

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.join_s)


async def until_stopped(
    stop: threading.Event, tasks: Sequence[asyncio.Task[None]], poll_s: float
) -> None:
    """Let ``tasks`` run until ``stop`` is set (looked at every ``poll_s``), then cancel them
    and wait until each has ended."""
    while not stop.is_set():
        await asyncio.sleep(poll_s)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
