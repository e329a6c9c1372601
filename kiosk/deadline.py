"""One deadline mechanism for every blocking device call.

Each device (thermometer, gate, ...) gets a ``DeviceWorker``: its own daemon thread that runs
the device's blocking calls one at a time. The caller waits at most the deadline; a call that
does not return in time becomes the device's fault (``SensorFault``, ``GateFault``), and while
that abandoned call is still stuck inside the driver, further calls fail fast instead of
piling threads up behind it. A hung I2C read or a wedged USB relay therefore never stalls the
decision loop. ``call`` is for the asyncio loop (the runner), ``call_sync`` for plain threads
(the bench, command-line tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from kiosk.devices import DeviceFault

T = TypeVar("T")
log = logging.getLogger(__name__)
_STOP = object()


class DeviceWorker:
    """A daemon thread that runs one device's blocking calls, one at a time, under deadlines.

    Daemon, not a ``ThreadPoolExecutor``: an executor's threads are joined at interpreter
    exit, so a read stuck forever in a driver would keep the kiosk from shutting down.
    """

    def __init__(
        self, name: str, deadline_s: float, fault_cls: type[DeviceFault] = DeviceFault
    ) -> None:
        self.name = name
        self.deadline_s = deadline_s
        self.fault_cls = fault_cls
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._busy_since: float | None = None
        self._pending = 0  # submitted and not finished
        self._count_lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self.timeouts = 0
        self.calls = 0
        # The thread starts with the first call, not here: a runner built and closed without
        # one device call (most tests, a verb that never drives the gate) starts no thread.
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._start_lock = threading.Lock()

    def _start(self) -> None:
        """Start the device thread if it is not running yet (once; never after ``stop``)."""
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._stopped:
                thread = threading.Thread(target=self._run, name=f"device-{self.name}", daemon=True)
                thread.start()
                self._thread = thread

    @property
    def hung(self) -> bool:
        """A call has been running past its deadline (the driver is stuck)."""
        since = self._busy_since
        return since is not None and time.monotonic() - since > self.deadline_s

    @property
    def busy(self) -> bool:
        """A call is pending: running (maybe stuck past its deadline) or not yet started."""
        return self._pending > 0

    def call_after(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` behind whatever call is pending, waiting for nothing: at shutdown
        the gate's lock must follow a stuck open command whenever that one returns (a failure
        is logged)."""
        self._enqueue(fn, args, None, self._log_failure)

    def _enqueue(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop | None,
        fut: asyncio.Future[Any] | Callable[[tuple[bool, Any]], None],
    ) -> None:
        """Count ``fn(*args)`` pending and hand it to the device thread, which settles ``fut``
        with its outcome: an asyncio future on ``loop``, or (``loop`` None) a function."""
        with self._count_lock:
            self._pending += 1
            self._idle.clear()
        self._start()
        self._jobs.put((fn, args, loop, fut))

    def _log_failure(self, outcome: tuple[bool, Any]) -> None:
        ok, value = outcome
        if not ok:
            log.warning("%s: queued call failed: %s", self.name, value)

    async def call(self, fn: Callable[..., T], *args: Any, deadline_s: float | None = None) -> T:
        """``fn(*args)`` in the device thread; past the deadline raise ``fault_cls``."""
        deadline = self.deadline_s if deadline_s is None else deadline_s
        self._refuse_behind_pending()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self.calls += 1
        self._enqueue(fn, args, loop, fut)
        # asyncio.wait, not wait_for: it never cancels the call's future and (unlike 3.11's
        # wait_for) never swallows a cancellation of the caller.
        done, _ = await asyncio.wait({fut}, timeout=deadline)
        if not done:
            fut.add_done_callback(_consume)
            raise self._timed_out(deadline)
        return fut.result()

    def _refuse_behind_pending(self) -> None:
        """``fault_cls`` when the previous call is still inside the driver (or not even
        started): a call does not queue behind it."""
        if self._pending:
            raise self.fault_cls(f"{self.name}: previous call has not returned (device hung)")

    def _timed_out(self, deadline: float) -> DeviceFault:
        """The fault of a call that gave no answer within ``deadline`` seconds, counted."""
        self.timeouts += 1
        return self.fault_cls(
            f"{self.name}: no answer within {deadline * 1000:.0f} ms (device hung)"
        )

    def call_sync(self, fn: Callable[..., T], *args: Any, deadline_s: float | None = None) -> T:
        """``call`` for a caller that is a plain thread (the bench, tools): same rules."""
        deadline = self.deadline_s if deadline_s is None else deadline_s
        self._refuse_behind_pending()
        done = threading.Event()
        box: dict[str, tuple[bool, Any]] = {}

        def settle(outcome: tuple[bool, Any]) -> None:
            box["outcome"] = outcome
            done.set()

        self.calls += 1
        self._enqueue(fn, args, None, settle)
        if not done.wait(deadline):
            raise self._timed_out(deadline)
        ok, value = box["outcome"]
        if not ok:
            raise value
        result: T = value
        return result

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            fn, args, loop, fut = job
            self._busy_since = time.monotonic()
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            finally:
                self._busy_since = None
                with self._count_lock:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.set()
            if loop is None:
                fut(outcome)  # a call_sync caller: ``fut`` is its settle function
                continue
            try:
                loop.call_soon_threadsafe(_settle, fut, outcome)
            except RuntimeError:
                pass  # the loop is gone (shutdown); nobody is waiting any more

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no call is pending (a stuck one has returned); False on timeout."""
        return self._idle.wait(timeout_s)

    def stop(self) -> None:
        """End the device thread after the calls queued before; a worker never called starts
        none. Calls after ``stop`` are never run (their callers get the deadline fault)."""
        with self._start_lock:
            self._stopped = True
            started = self._thread is not None
        if started:
            self._jobs.put(_STOP)


def _settle(fut: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if fut.done():
        return
    ok, value = outcome
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # mark a late failure as seen: it was already reported as a fault


class Abandoned(Exception):
    """``in_daemon_thread``'s call did not return in time; it is left running."""


def _ended_late(late: Callable[[Any], None], fut: asyncio.Future[Any]) -> None:
    """A call given up at its deadline ended: its result, or its exception, to ``late``."""
    if not fut.cancelled():
        exc = fut.exception()
        late(fut.result() if exc is None else exc)


async def in_daemon_thread(
    name: str, fn: Callable[[], T], timeout_s: float, late: Callable[[Any], None] | None = None
) -> T:
    """``fn()`` in a daemon thread of its own, awaited ``timeout_s`` at most; its result or
    its exception, or ``Abandoned`` when it has not returned by then (a write to a storage
    that does not answer: a failing card stalls them for minutes). The thread is left to
    finish or to die with the process: a daemon thread, not the loop's executor, whose
    threads ``asyncio.run`` and the interpreter's exit wait for, for ever (a stop's last
    writes must never keep the process from ending). ``late``: told on the loop what the
    call returned or raised when it ends after ``Abandoned`` (nobody waits for it any more:
    a close whose row was written late, or refused)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def run() -> None:
        try:
            outcome: tuple[bool, Any] = (True, fn())
        except BaseException as exc:  # handed to the caller, never lost
            outcome = (False, exc)
        try:
            loop.call_soon_threadsafe(_settle, fut, outcome)
        except RuntimeError:
            pass  # the loop is gone: nobody is waiting any more

    threading.Thread(target=run, name=name, daemon=True).start()
    done, _ = await asyncio.wait({fut}, timeout=max(0.0, timeout_s))
    if not done:
        fut.add_done_callback(_consume if late is None else functools.partial(_ended_late, late))
        raise Abandoned(f"{name}: not done within {timeout_s:.1f} s")
    return fut.result()


def close_within(what: str, close: Callable[[], object], timeout_s: float) -> bool:
    """A device's ``close`` (``what``: ``gate``, ``thermometer``) in a daemon thread, waited
    for ``timeout_s`` at most: whether it returned (a failure included: a close that raised
    has nothing left to do). One stuck in its driver is said in the journal and left to the
    process's exit: the one bounded close of the relay, for the daemon's stop
    (``Devices.close_outputs``), ``kiosk run --lock-gate`` and ``kiosk run``'s end after a
    failed start or a standby (a bare ``close()`` there held the exit past systemd's
    ``TimeoutStopSec``)."""

    def run() -> None:
        with contextlib.suppress(Exception):
            close()

    thread = threading.Thread(target=run, name=f"kiosk-close-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        log.warning(
            "closing the devices: the %s did not close within %.1f s (its close is stuck in"
            " its driver); left to the process's exit",
            what,
            timeout_s,
        )
        return False
    return True


#: What systemd's ``TimeoutStopSec`` leaves over the stop's budget and the exit's grace: the
#: signal's way to the loop, a step's overrun of its grant by a loop turn, the interpreter's
#: end (``checkpoint.app``'s sum). A step's floor (``StopBudget.grant``'s ``at_least_s``)
#: never goes past it.
STOP_MARGIN_S = 2.0


class StopBudget:
    """One deadline for a whole stop, every step of it drawing on it (``Daemon.stop``).

    ``total_s`` from its making (``now``: the loop's clock); ``reserves``: the seconds kept
    back for the steps that must come last whatever came before (the gate's lock, the
    writes), by step name. ``grant(step, own_s)`` is the time that step may take: its own cap,
    cut to what is left less the reserves of the steps after it (a reserve's own step draws
    on it, and it is kept back no more). ``gave_up(step)`` records a step left unfinished at
    its grant; ``said()`` is what the journal line says of them: which one used up the
    budget (the longest given up), and the others."""

    def __init__(
        self,
        total_s: float,
        reserves: dict[str, float] | None = None,
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_s = total_s
        self._now = now
        self.ends = now() + total_s
        self._reserves = dict(reserves or {})
        #: Each step granted so far, ``(name, its own cap, granted)``, in order; and those
        #: given up at their grant.
        self.steps: list[tuple[str, float, float]] = []
        self.given_up: list[tuple[str, float, float]] = []
        #: What used the budget before the stop itself began (``spent_before``), with its
        #: seconds: the start a SIGTERM had to wait for.
        self.before: list[tuple[str, float]] = []

    def spent_before(self, what: str, asked_at: float) -> None:
        """The stop was asked at ``asked_at`` (this budget's clock), while ``what`` was under
        way (the start, which the stop waited for): the budget ends ``total_s`` after that,
        as systemd's ``TimeoutStopSec`` counts from the signal, and the journal line names
        ``what`` when it is what used the budget up (``said``)."""
        self.ends = min(self.ends, asked_at + self.total_s)
        self.before.append((what, max(0.0, self._now() - asked_at)))

    def left(self) -> float:
        """Seconds left of the whole budget (never below 0)."""
        return max(0.0, self.ends - self._now())

    def grant(self, step: str, own_s: float, *, at_least_s: float = 0.0) -> float:
        """How long ``step`` may take from now: ``own_s`` at most, and never into the
        reserves of the steps still to come (``step``'s own reserve is drawn on now); never
        less than ``at_least_s`` however little is left (the relay's lock: one command's
        deadline), cut to the margin systemd leaves after the budget (``STOP_MARGIN_S``: a
        10 s ``engine.device_deadline_ms`` would run into its SIGKILL)."""
        self._reserves.pop(step, None)
        left = self.left() - sum(self._reserves.values())
        granted = max(0.0, min(at_least_s, STOP_MARGIN_S), min(own_s, left))
        self.steps.append((step, own_s, granted))
        return granted

    def gave_up(self, step: str) -> None:
        """``step`` did not end within its last grant (it goes on, left to the exit)."""
        for name, own_s, granted in reversed(self.steps):
            if name == step:
                self.given_up.append((name, own_s, granted))
                return

    @property
    def cut(self) -> bool:
        """Some step was granted less than its own cap: the budget ran short. A step with no
        cap of its own (``math.inf``: the stop's writes, given the rest) is never cut by it:
        before, one granted made every stop line blame a step given up at its own cap."""
        return any(granted < own_s for _, own_s, granted in self.steps if math.isfinite(own_s))

    def said(self) -> str:
        """The given-up steps for the journal line: the one that used up the most of the
        budget first (``used up by``) when it ran short, each with the seconds it had; or
        what used it before the stop began (``spent_before``: the start), with its seconds,
        when that took more than any step given up."""
        if not self.given_up:
            return "no step given up"
        each = ", ".join(f"{name} ({granted:.1f} s)" for name, _, granted in self.given_up)
        if not self.cut:
            return f"given up: {each}"
        name, granted = max(((n, g) for n, _, g in self.given_up), key=lambda s: s[1])
        for what, took_s in self.before:
            if took_s > granted:
                name, granted = f"{what} ({took_s:.1f} s)", took_s
        return f"the budget used up by {name}; given up: {each}"


class Stopped(Exception):
    """A use of the event log asked for once its helper's stop began (``LogUses``): the
    helper's thread leaves the log alone (the daemon closes it next), what it came with
    dropped."""


class LogUses:
    """Uses of the event log from threads, and their end at a close: the log is closed under
    none of them (one closed under a running query crashed the process). A helper's (the list
    sync's apply, the peers' pages), the console's actions (``Core.web_uses``), and every
    statement and fetch on the log's readers (``EventLog``'s own, taken in the thread that
    reads). ``using()`` around each use (``enter``/``leave`` for a caller that counts many
    small ones); once ``close`` began a use is refused (``refusal``: ``Stopped`` unless
    said); uses do not wait for each other. ``close(wait_s)`` refuses new ones and waits for
    those under way, ``wait_s`` at most (None: until they end): whether none is;
    ``released`` is set once closed and none is under way, however long after (a use on a
    slow card outlasting the wait), and the daemon closes the log only then; ``open`` again
    at a start."""

    def __init__(self, refusal: Callable[[], Exception] = Stopped) -> None:
        self._gate = threading.Condition()
        self._users = 0
        self._closed = False
        self._refusal = refusal
        self.released = threading.Event()

    def open(self) -> None:
        with self._gate:
            self._closed = False
            self.released.clear()

    @property
    def closed(self) -> bool:
        """``close`` began (and no ``open`` since): every use is refused."""
        return self._closed

    def enter(self) -> None:
        """One use begins: refused (``refusal``) once ``close`` began."""
        with self._gate:
            if self._closed:
                raise self._refusal()
            self._users += 1

    def leave(self) -> None:
        """The use ``enter`` began has ended."""
        with self._gate:
            self._users -= 1
            if self._closed and self._users == 0:  # the close's wait ran out before
                self.released.set()
            self._gate.notify_all()

    @contextlib.contextmanager
    def using(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def close(self, wait_s: float | None) -> bool:
        with self._gate:
            self._closed = True
            idle = self._gate.wait_for(lambda: self._users == 0, wait_s)
            if idle:
                self.released.set()
        return idle


class Busy(Exception):
    """``BoundedWork.run`` refused a call at once: every one of its workers is held by a
    call that has not returned (a write stalled on the card); nothing was started."""


class BoundedWork:
    """One kind of blocking work (the guard console's store work: an alarm closed and its
    row) off the loop: at most ``workers`` calls at once, each in a daemon thread of its own
    (``in_daemon_thread``; no executor), awaited ``deadline_s`` at most. A
    stalled write holds one of these, never a worker of the loop's default executor, which
    the daemon's other parts share (the desk's ear, every page's reads, the sign-in); past
    the deadline the caller gets ``Abandoned`` and the call goes on to its end (its outcome
    is its own: neither lost nor done twice); with every worker held, ``Busy`` at once. The
    caller's context (the request's audit) goes with the call, as ``asyncio.to_thread``'s."""

    def __init__(self, name: str, workers: int, deadline_s: float) -> None:
        self.name, self.workers, self.deadline_s = name, workers, deadline_s
        self._lock = threading.Lock()
        self._running = 0

    @property
    def running(self) -> int:
        """The calls not returned yet (within their deadline or past it)."""
        return self._running

    async def run(self, fn: Callable[[], T], late: Callable[[Any], None] | None = None) -> T:
        """``fn()``'s result (``late``: as ``in_daemon_thread``'s). Its slot is counted down
        once, when it returns, or at once when its thread could not start (a Pi short of
        memory: the slot was kept for ever, and four such refused every close after)."""
        with self._lock:
            if self._running >= self.workers:
                raise Busy(f"{self.name}: {self._running} calls have not returned")
            self._running += 1
        context = contextvars.copy_context()
        held = [True]

        def release() -> None:
            with self._lock:
                if held[0]:
                    held[0] = False
                    self._running -= 1

        def call() -> T:
            try:
                return context.run(fn)
            finally:
                release()

        try:
            return await in_daemon_thread(self.name, call, self.deadline_s, late)
        except Abandoned:
            raise  # still running: its slot is counted down when it returns
        except Exception:
            release()  # its thread never started (or it returned, its slot counted down)
            raise
