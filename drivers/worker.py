"""One background thread and the flag that asks it to stop, for a driver's (or a fake
device's) serving loop: the loop polls or waits on ``stopping``; ``stop()`` sets it and
joins, so a stopped device has no thread left behind."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, target: Callable[..., object], *args: object) -> None:
        self.stopping.clear()
        self._thread = threading.Thread(target=target, args=args, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the loop to end and wait for it, at most ``timeout_s``."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
