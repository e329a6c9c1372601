"""Talking to systemd: readiness, status and the watchdog (the ``sd_notify`` protocol).

systemd starts ``kiosk.service`` (``Type=notify``) with ``$NOTIFY_SOCKET`` set: an ``AF_UNIX``
datagram socket, either a path (``/run/systemd/notify``) or an abstract name (``@...``, a
leading NUL on the wire). Each datagram is newline-separated ``KEY=VALUE`` assignments:
``READY=1`` once devices and store are up, ``STATUS=...`` for ``systemctl status``,
``WATCHDOG=1`` as a keep-alive and ``STOPPING=1`` on shutdown. With ``WatchdogSec=`` set,
systemd also passes ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``) and kills and restarts the
service when no ``WATCHDOG=1`` arrives in time. Outside systemd (the demo, tests, a shell)
the variable is absent and every call is a no-op.

The watchdog must not be a timer that pings regardless: :class:`Watchdog` pings only while a
health callback (the engine loop's heartbeat) says the loop is making progress, so a hung
checkpoint loop stops the pings and systemd restarts the daemon. The clock and the sleep are
injected; :meth:`Watchdog.tick` is pure decision logic that tests drive with a fake clock.

Usage in the daemon::

    notifier = Notifier.from_env()
    ...                                              # devices, store and web server up
    notifier.ready("deciding")
    watchdog = Watchdog.from_env(notifier, healthy=runner.healthy, clock=clock)
    task = watchdog.start()                          # an asyncio.Task; no-op when disabled
    ...
    notifier.stopping()
    await watchdog.stop()

Status texts go to the journal: never put personal data in them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

__all__ = ["LongStart", "MonotonicClock", "NotifyError", "Notifier", "Watchdog"]

log = logging.getLogger(__name__)

#: Linux ``sun_path`` holds 108 bytes including the terminating NUL of a path.
_SUN_PATH_MAX = 108


class NotifyError(ValueError):
    """``$NOTIFY_SOCKET`` or ``$WATCHDOG_USEC`` holds something that cannot be used."""


class MonotonicClock(Protocol):
    def monotonic_ns(self) -> int: ...


def socket_address(value: str) -> str | bytes:
    """The ``sendto`` address for a ``$NOTIFY_SOCKET`` value; ``@name`` is abstract."""
    if value.startswith("@"):
        name = value[1:].encode("utf-8")
        if not name:
            raise NotifyError("NOTIFY_SOCKET: empty abstract socket name")
        if len(name) + 1 > _SUN_PATH_MAX:
            raise NotifyError("NOTIFY_SOCKET: abstract socket name too long")
        return b"\0" + name
    if value.startswith("/"):
        if len(value.encode("utf-8")) + 1 > _SUN_PATH_MAX:
            raise NotifyError("NOTIFY_SOCKET: socket path too long")
        return value
    # vsock:CID:PORT and other forms exist in newer systemd; this kiosk runs on Bookworm (252).
    raise NotifyError(f"NOTIFY_SOCKET: unsupported address {value!r} (want /path or @name)")


def _clean(text: str) -> str:
    """One line: a newline inside STATUS would start a new assignment on the wire."""
    return " ".join(text.split())


class Notifier:
    """Sends ``sd_notify`` messages; a no-op when ``address`` is ``None``.

    Send failures are logged once and never raised: the kiosk keeps deciding even if systemd
    cannot hear it (then the watchdog restarts it, which is the right outcome).
    """

    def __init__(self, address: str | None) -> None:
        self._raw = address
        self._addr = socket_address(address) if address else None
        self._sock: socket.socket | None = None
        self._warned = False
        self.last_status: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """From ``$NOTIFY_SOCKET``; an unusable value is logged and gives a no-op notifier."""
        env = os.environ if environ is None else environ
        value = env.get("NOTIFY_SOCKET") or None
        try:
            return cls(value)
        except NotifyError as exc:
            log.warning("systemd notification disabled: %s", exc)
            return cls(None)

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram. True when it was sent."""
        if self._addr is None or not assignments:
            return False
        for item in assignments:
            if "=" not in item or "\n" in item:
                raise ValueError(f"not a single KEY=VALUE assignment: {item!r}")
        payload = "\n".join(assignments).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block the event loop on a busy systemd: a dropped ping is retried anyway.
            self._sock.sendto(payload, socket.MSG_DONTWAIT, self._addr)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd at %s: %s", self._raw, exc.strerror or exc)
                self._warned = True
            self.close()
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Devices, store and web server are up: systemd marks the unit started."""
        return self._state("READY=1", status)

    def status(self, text: str) -> bool:
        """Free text shown by ``systemctl status kiosk`` (no personal data)."""
        self.last_status = _clean(text)
        return self.send(f"STATUS={self.last_status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self._state("STOPPING=1", status)

    def _state(self, item: str, status: str | None) -> bool:
        """``item``, with ``STATUS=`` when ``status`` is given."""
        if status is None:
            return self.send(item)
        self.last_status = _clean(status)
        return self.send(item, f"STATUS={self.last_status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval_ns(environ: Mapping[str, str], pid: int) -> int | None:
    """Half of ``$WATCHDOG_USEC`` in ns, or None when the watchdog is not for this process."""
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != pid:
                return None
        except ValueError:
            raise NotifyError(f"WATCHDOG_PID: not a number: {owner!r}") from None
    try:
        value = int(usec)
    except ValueError:
        raise NotifyError(f"WATCHDOG_USEC: not a number: {usec!r}") from None
    if value <= 0:
        raise NotifyError(f"WATCHDOG_USEC: must be positive, got {value}")
    return value * 1000 // 2


class Watchdog:
    """Pings ``WATCHDOG=1`` every ``interval_ns`` while ``healthy()`` says the loop is alive.

    ``healthy`` is a plain callable (the engine runner's heartbeat check). It runs on the
    event loop, so a blocked loop stops the pings by itself; a loop that runs but whose
    checkpoint engine no longer makes progress stops them through ``healthy()`` returning
    False (or raising). While unhealthy, health is re-checked every ``interval_ns / 4`` so a
    recovery resumes the pings before systemd's deadline if it can.
    """

    def __init__(
        self,
        notifier: Notifier,
        healthy: Callable[[], bool],
        clock: MonotonicClock,
        interval_ns: int | None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if interval_ns is not None and interval_ns <= 0:
            raise ValueError("interval_ns must be positive")
        self._notifier = notifier
        self._healthy = healthy
        self._clock = clock
        self._sleep = sleep
        self.interval_ns = interval_ns
        self.next_due_ns: int | None = None
        self.is_healthy = True
        self.pings = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(
        cls,
        notifier: Notifier,
        healthy: Callable[[], bool],
        clock: MonotonicClock,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> Watchdog:
        """From ``$WATCHDOG_USEC``/``$WATCHDOG_PID``; disabled when absent or not ours."""
        env = os.environ if environ is None else environ
        try:
            interval = watchdog_interval_ns(env, os.getpid())
        except NotifyError as exc:
            log.warning("systemd watchdog disabled: %s", exc)
            interval = None
        if interval is not None and not notifier.enabled:
            log.warning("systemd watchdog disabled: WATCHDOG_USEC set but no NOTIFY_SOCKET")
            interval = None
        return cls(notifier, healthy, clock, interval, sleep=sleep)

    @property
    def enabled(self) -> bool:
        return self.interval_ns is not None

    def _check(self) -> bool:
        try:
            return bool(self._healthy())
        except Exception:  # a broken health check is an unhealthy loop, not a crash here
            log.exception("watchdog health check raised; treating the loop as unhealthy")
            return False

    def tick(self, now_mono_ns: int) -> bool:
        """Ping if due and healthy. Returns True when ``WATCHDOG=1`` was sent."""
        if self.interval_ns is None:
            return False
        if self.next_due_ns is not None and now_mono_ns < self.next_due_ns:
            return False
        if not self._check():
            if self.is_healthy:
                log.warning("checkpoint loop unhealthy: withholding the systemd watchdog ping")
                self._notifier.send("STATUS=loop stalled; watchdog pings withheld")
                self.is_healthy = False
            self.next_due_ns = now_mono_ns + max(1, self.interval_ns // 4)
            return False
        if not self.is_healthy:
            log.warning("checkpoint loop healthy again: watchdog pings resume")
            self.is_healthy = True
            if self._notifier.last_status is not None:
                self._notifier.send(f"STATUS={self._notifier.last_status}")
        self.next_due_ns = now_mono_ns + self.interval_ns
        if self._notifier.watchdog():
            self.pings += 1
            return True
        return False

    async def run(self) -> None:
        """Tick forever on real (or injected) time; returns at once when disabled."""
        if self.interval_ns is None:
            return
        while True:
            now = self._clock.monotonic_ns()
            self.tick(now)
            due = self.next_due_ns if self.next_due_ns is not None else now
            await self._sleep(max(0, due - now) / 1e9)

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a task on the running loop (call from a coroutine)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="kiosk-watchdog")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves, not just our task


class LongStart:
    """Keeps systemd's start timeout (``TimeoutStartSec=90``) off a start that is working: while
    the event log migrates (``EventLog``'s ``on_migrating``: a new index over a big log, ~95 s
    on a Pi 3B for 1.6 M rows, before ``READY=1``), ``EXTEND_TIMEOUT_USEC`` (``extend_s``) and
    ``STATUS=migrating the log: N of M`` at each step and every ``every_s`` between, from a
    thread of its own (the migration holds the writer's thread); the journal says when it
    begins and ends. Without it systemd killed the start, the migration rolled back, and the
    restart began it again, for ever, the gate locked. ``migrating`` is safe from any thread."""

    def __init__(self, notifier: Notifier, *, every_s: float = 10.0, extend_s: float = 30.0):
        if not 0 < every_s < extend_s:
            raise ValueError("every_s must be positive and shorter than extend_s")
        self._notifier = notifier
        self._every_s = every_s
        self._extend_usec = int(extend_s * 1_000_000)
        self._lock = threading.Lock()
        self._progress = (0, 0)
        self._over = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = 0.0

    def migrating(self, done: int, of: int, /, *, failed: bool = False) -> None:
        """Step ``done`` of ``of`` begins; ``done == of``: all applied; ``failed``: step
        ``done`` failed, nothing applied (``kiosk.store.Migrating``)."""
        with self._lock:
            self._progress = (done, of)
            first = self._thread is None
            if first and done < of and not failed:
                self._began = time.monotonic()
                log.warning("migrating the event log (%d steps): the start may take minutes", of)
                self._thread = threading.Thread(target=self._keep_extending, daemon=True)
                self._thread.name = "kiosk-long-start"
                self._thread.start()
        if failed or done >= of:
            self._end(done, of, failed)
            return
        self._say()

    def _end(self, done: int, of: int, failed: bool) -> None:
        """The journal's line and the status at the migration's end: over and starting, or
        failed at its step, never "starting" (said so until 2026-12-07); the start then says
        why it stopped, or stands by."""
        with self._lock:
            if self._thread is None or self._over.is_set():
                return
            self._over.set()
        took = time.monotonic() - self._began
        if not failed:
            log.warning("the event log's migration (%d steps) over after %.0f s", of, took)
            self._extend("the log's migration over; starting")
            return
        where = f"at step {done + 1} of {of}" if done < of else f"as its {of} steps were written"
        log.error(
            "the event log's migration failed %s after %.0f s: rolled back, the log as it was",
            where,
            took,
        )
        self._extend(f"the log's migration failed {where} (rolled back)")

    def _say(self) -> None:
        with self._lock:
            done, of = self._progress
        if not self._over.is_set():
            self._extend(f"migrating the log: {done} of {of}")

    def _extend(self, status: str) -> None:
        """The extension and ``status`` in one datagram (never one thread's between another's)."""
        self._notifier.send(f"EXTEND_TIMEOUT_USEC={self._extend_usec}", f"STATUS={status}")

    def _keep_extending(self) -> None:
        while not self._over.wait(self._every_s):
            self._say()
