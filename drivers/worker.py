"""One background thread and the flag that asks it to stop, for a driver's (or a fake
device's) serving loop: the loop polls or waits on ``stopping``; ``stop()`` sets it and
joins, so a stopped device has no thread left behind.

A loop that waits in ``poll()`` on a device registers ``wake_fd`` beside it: ``stop()`` makes
it readable, so the wait ends at once instead of at its timeout (a reader stopped at every
reload or shutdown waited out its read, on the Pi too). A loop that waits in something it
cannot poll (a pyserial port's own read: ``loop://``) names how to end that wait instead
(``wake_also``); ``stop()`` calls it once the flag is set.

A worker starts again once stopped (a fake module's replug), with its flag cleared and a
fresh pipe. Not while its last loop is still running (a stop that gave up waiting, a call
stuck in a driver): clearing the flag would set that loop going again, on a pipe its stop
left readable for good (a spin), beside the new one; ``start`` refuses (``RuntimeError``)
and a later ``stop`` waits for that loop again."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable


class Worker:
    def __init__(self, name: str) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: The read end of the running loop's wake-up pipe (only its thread polls it, and
        #: closes it when the loop ends); None while no loop runs.
        self.wake_fd: int | None = None
        self._wake_w: int | None = None
        self._wake_also: Callable[[], object] | None = None

    def wake_also(self, wake: Callable[[], object] | None) -> None:
        """From the loop: ``wake()`` ends the wait it is about to make that ``wake_fd``
        cannot (None: none). A stop calls it after setting ``stopping``: a wait begun after
        that ends at once too, or the loop sees the flag first; it must not raise."""
        self._wake_also = wake

    def start(self, target: Callable[..., object], *args: object) -> None:
        """Run ``target(*args)`` in the worker's thread; ``RuntimeError`` while a loop runs."""
        if self._thread is not None and self._thread.is_alive():
            said = "already running" if self._wake_w is not None else "stopped, has not ended"
            raise RuntimeError(f"worker {self.name}: its loop is {said}")
        if self._wake_w is not None:  # a loop that ended by itself, never stopped
            os.close(self._wake_w)
        self.stopping.clear()
        self._wake_also = None
        wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wake_fd = wake_r
        self._thread = threading.Thread(
            target=_loop, args=(wake_r, target, args), name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the loop to end, wake its wait, and wait for it, at most ``timeout_s`` (a loop
        still running then is kept: ``start`` refuses until it ends, a stop waits again)."""
        self.stopping.set()
        self.wake_fd = None
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # the loop has ended (its end closed)
                os.write(self._wake_w, b"\0")
            os.close(self._wake_w)
            self._wake_w = None
        wake = self._wake_also
        if wake is not None:
            wake()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if not self._thread.is_alive():
                self._thread = None


def _loop(wake_r: int, target: Callable[..., object], args: tuple[object, ...]) -> None:
    try:
        target(*args)
    finally:
        os.close(wake_r)
