"""``kiosk run`` standing by while the card keeps its event log from opening (``kiosk.standby``).

Exiting made systemd start the daemon again every 3 s for ever, the screens dark and the
reason only in the journal. Standing by, it serves the standby faces (``ui.standby``) on the
configured port, tells systemd it is up with the reason as its status (``systemctl status
kiosk``), keeps the watchdog fed while its loop runs, and tries the log again, 5 s after the
first failure and then at most a minute apart (a reboot's check or ``chown`` mends the card
without anyone restarting the service). Once the log opens, the daemon starts as ever, in the
same process, the standby server serving until that start has read the log (one server, one
``READY=1``, for the whole standby however often the start is tried); a stop asked meanwhile
ends it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import FastAPI

from checkpoint.notify import Notifier, Watchdog
from checkpoint.server import build_server
from kiosk.backoff import Backoff
from kiosk.config import KioskConfig
from kiosk.core import Core
from kiosk.policy import guard_on_duty
from kiosk.standby import Standby, card_failure
from kiosk.store import format_ts
from ui.standby import create_standby_app

log = logging.getLogger(__name__)

#: The tries of the log while standing by: 5 s after the failure, doubling, a minute apart.
RETRY = Backoff(5.0, 60.0)
#: How long a start tried while standing by may take (kiosk.service's ``TimeoutStartSec``,
#: which bounds the first start until ``READY=1``; the standby said that already): past it
#: the watchdog's pings are withheld and systemd's ``WatchdogSec`` restarts the daemon.
START_BUDGET_S = 90.0


class _Monotonic:
    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


def standby_app(
    config: KioskConfig, standby: Standby, gate: Callable[[], str] = lambda: "locked"
) -> FastAPI:
    """The standby faces for ``config``: its screen says where to call while no guard is on
    duty (``kiosk.policy.guard_on_duty``, the rule the running daemon's decisions and screen
    go by, on the system's clock: no floor is known while standing by); its console what the
    gate does now (``gate``: ``gate_state``)."""
    zone = ZoneInfo(config.site.timezone)
    return create_standby_app(
        standby,
        config.site.kiosk_id,
        local=config.web.screen_addresses,
        on_duty=lambda: guard_on_duty(datetime.now(UTC), config.policy, zone),
        call=config.policy.hours.call,
        gate=gate,
    )


class StandbyServer:
    """The standby faces served on the daemon's port while ``standby`` lasts."""

    def __init__(
        self,
        config: KioskConfig,
        standby: Standby,
        notifier: Notifier,
        *,
        gate_obeyed: bool,
        gate_released: bool = False,
        healthy: Callable[[], bool] = lambda: True,
    ) -> None:
        """``healthy``: whether the watchdog's pings go on (``Held.healthy``: no start tried
        meanwhile past its budget); the loop running is the rest of it."""
        self.standby = standby
        #: Whether the relay obeyed the command that leaves it as the standby wants it.
        self.gate_obeyed = gate_obeyed
        #: That command released the gate (the coil off where ``released_when_stopped``).
        self.gate_released = gate_released
        self.notifier = notifier
        #: The faces served: the console says what the gate does as the status does.
        self.app = standby_app(config, standby, self.gate_state)
        self._server = build_server(self.app, config.web, lang=config.site.language)
        self._task: asyncio.Task[None] | None = None
        self._watchdog = Watchdog.from_env(notifier, healthy, _Monotonic())

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def gate_state(self) -> str:
        """What the gate does now (``gate_state``), as the console says it."""
        return gate_state(self.gate_obeyed, self.gate_released)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="standby-web")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the standby web server did not start")
            await asyncio.sleep(0.02)
        self.notifier.ready(self.status())
        self._watchdog.start()  # the loop runs: nothing else is there to stall

    def status(self) -> str:
        """The unit's status line (``systemctl status kiosk``): no personal data."""
        return (
            f"standing by, not deciding, {gate_words(self.gate_obeyed, self.gate_released)}:"
            f" {self.standby.reason};"
            " see docs/operations.md and /api/v1/health"
        )

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 1.5)
        await self._watchdog.stop()


def gate_words(obeyed: bool, released: bool = False) -> str:
    """What the standby says of the gate: locked only when the relay obeyed the lock at start
    (``drivers.gate.lock_at_start``), released only when it obeyed the standby's release
    (``released_when_stopped``); else its state is unknown (the journal has the error)."""
    if released:
        if obeyed:
            return (
                "the gate released (the coil off: this wiring releases it while no kiosk decides)"
            )
        return "gate state unknown (the relay could not be commanded released: check the gate)"
    if obeyed:
        return "the gate locked"
    return "gate state unknown (the relay could not be commanded locked at start: check the gate)"


def gate_state(obeyed: bool, released: bool = False) -> str:
    """What the gate does, as the standby's console says it (``ui.standby.GATE_STATES``), by
    the rule of ``gate_words``: ``released``, ``locked``, or ``unknown`` unless obeyed."""
    if not obeyed:
        return "unknown"
    return "released" if released else "locked"


@dataclass
class Held:
    """The standby ``kiosk run`` keeps across the starts it tries again while the card stays
    at fault (each try opens the log, the start meets the fault again): its tries and the
    backoff's step go on, the journal has a line only when the reason changes, and one
    standby server stays up for the whole period (``READY=1`` said once; the guard's page
    kept while the start is tried), until a start runs (``end``) or the daemon stops.
    Before, each start stood by anew: a try every 5 s, its lines each time, the server
    stopped and started again around each try."""

    standby: Standby | None = None
    #: The backoff's step (``RETRY``): one more for each failed try, the start's included.
    step: int = 0
    #: Lines left unsaid for an unchanged reason: the start that then runs says so.
    unsaid: bool = False
    #: The standby's server, while it serves (``serve``).
    server: StandbyServer | None = None
    #: How the run before ended, the marker the first start took
    #: (``checkpoint.app.take_stop_marker``): the starts tried again write no row, the one
    #: that runs says it.
    last_stop: str | None = None
    #: When the start under way with the standby serving began (``clock``'s seconds: the
    #: log opened for it, ``_try_again``); None while none is.
    starting_since: float | None = None
    #: The start under way is past its budget, said so (``healthy``).
    overdue: bool = False
    #: The monotonic clock ``starting_since`` and ``healthy`` read.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    def again(self, exc: Exception, kind: str, *, opened: bool) -> tuple[Standby, bool]:
        """The standby for ``exc``: the one held, one more try (True when its reason or what
        failed changed: worth a line), else a new one (True). ``opened``: the log had opened
        and the start met the fault after it (``Standby.opened``)."""
        self.starting_since = None  # the start tried failed: standing by again
        if self.standby is None:
            self.standby = Standby(str(exc), kind, format_ts(datetime.now(UTC)), opened=opened)
            return self.standby, True
        self.step += 1
        changed = self.standby.failed_again(str(exc), kind, opened=opened)
        self.unsaid = self.unsaid or not changed
        return self.standby, changed

    def healthy(self) -> bool:
        """The standby's watchdog check: False once a start tried with the standby serving
        has taken longer than ``START_BUDGET_S`` (a stalled card's read, a wedged thread):
        no ping, and systemd restarts the daemon, as ``TimeoutStartSec`` did the first start;
        it told ``READY=1`` already, which took that bound away."""
        since = self.starting_since
        if since is None or self.clock() - since <= START_BUDGET_S:
            return True
        if not self.overdue:  # said once: the watchdog checks again every few seconds
            self.overdue = True
            log.error(
                "the start tried while standing by has not ended after %.0f s: withholding"
                " the watchdog's ping (systemd restarts the daemon)",
                START_BUDGET_S,
            )
        return False

    def said(self) -> dict[str, object] | None:
        """The held period, for the row of the start that runs (``record_start``): its kind,
        since when, its failed tries (the reason stays in the journal); None: none held."""
        if self.standby is None:
            return None
        return {"kind": self.standby.kind, "since": self.standby.since, "tries": self.standby.tries}

    async def serve(
        self,
        config: KioskConfig,
        notifier: Notifier | None,
        standby: Standby,
        gate: tuple[bool, bool],
        *,
        say: bool,
    ) -> StandbyServer:
        """The standby server for ``standby``: started (``READY=1``) for the first failure,
        telling systemd through ``notifier`` (None: ``$NOTIFY_SOCKET``'s), else the one
        serving, its status said again when ``say`` (the reason changed) or the gate's state
        did. ``gate``: whether the relay obeyed, and whether that was the standby's release
        (commanded again at each start tried)."""
        obeyed, released = gate
        server = self.server
        if server is None:
            told = notifier or Notifier.from_env()
            server = StandbyServer(
                config,
                standby,
                told,
                gate_obeyed=obeyed,
                gate_released=released,
                healthy=self.healthy,
            )
            await server.start()
            self.server = server
            return server
        before, server.gate_obeyed = server.gate_obeyed, obeyed
        if say or obeyed != before:
            server.notifier.status(server.status())
        return server

    async def end(self, *, stopping: bool = False) -> None:
        """The standby server stopped: a start ran (its own server takes the port), the
        daemon stops (``stopping``: systemd told ``STOPPING=1`` first), or a failure ends it."""
        server, self.server = self.server, None
        self.starting_since = None
        if server is not None:
            if stopping:
                server.notifier.stopping("stopping: standing by ended")
            await server.stop()


#: Waits ``delay`` seconds before the next try, or less when the daemon is asked to stop.
Pause = Callable[[StandbyServer, float], Awaitable[None]]


def _pause_until(stopping: asyncio.Event) -> Pause:
    async def pause(_server: StandbyServer, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)

    return pause


async def core_or_standby(
    build: Callable[[], Core],
    config: KioskConfig,
    stopping: asyncio.Event,
    *,
    notifier: Notifier | None = None,
    pause: Pause | None = None,
    gate_locked: bool = True,
    relock: Callable[[], bool] | None = None,
    release: Callable[[], bool] | None = None,
    failed: Exception | None = None,
    held: Held | None = None,
) -> Core | None:
    """``build()`` in a thread; while the card keeps the event log from opening
    (``card_failure``), stand by and try again: the core once it opens, None when a stop
    was asked first (or while the try that opened it was under way: that core is closed).
    Any other failure is raised, as before. ``gate_locked``: whether the relay obeyed the lock
    ``kiosk run`` commanded first; the status and the journal say the gate is locked only then.
    ``relock``: commands it locked again (whether it obeyed), before each try of the log until
    it obeys: no engine runs meanwhile to do it. ``release``: given where the stop releases
    the gate (``kiosk.config.gate.stop_releases``): a kiosk standing by decides nothing and
    leaves the coil off, as a stopped one does, so the gate is commanded released once it
    stands by (whether it obeyed), and again before each try until it obeys, instead of
    ``relock``; the engine locks it when the log opens and it starts. ``failed``: the card
    failure a start of the core built before met (``start_or_card_failure``): standing by
    with it first, the log tried again after the pause. ``held``: the standby kept across the
    starts tried again (``Held``), its tries and pauses going on, its lines only on a change,
    its server serving on when the core is handed back (the start tried with it up: its end
    is ``start_or_card_failure``'s once the start runs, else ``Held.end``); without it, the
    server stops as the core is handed back."""
    owned, held = held is None, held or Held()
    try:
        if failed is not None:
            raise failed
        return await asyncio.to_thread(build)
    except Exception as exc:
        kind = card_failure(exc)
        if kind is None:
            raise
        standby, say = held.again(exc, kind, opened=failed is not None)
    what = standby.what_failed()  # as health and the faces say it (``kiosk.standby``)
    if stopping.is_set():  # a stop asked during the start: nothing to stand up for
        log.error("%s, and the daemon is stopping: %s", what, standby.reason)
        await held.end(stopping=True)
        return None
    if release is not None:  # no kiosk deciding: the coil off
        gate_locked, relock = await asyncio.to_thread(release), release
    elif held.server is not None:  # the standby serving: commanded locked again, or not
        gate_locked = held.server.gate_obeyed
    if say:  # one line per change of the reason, not per start tried again
        log.error(
            "%s: standing by, %s, trying again: %s",
            what,
            gate_words(gate_locked, release is not None),
            standby.reason,
            extra={"kind": standby.kind},
        )
    gate = (gate_locked, release is not None)
    server = await held.serve(config, notifier, standby, gate, say=say)
    try:
        waits = pause or _pause_until(stopping)
        start = failed is not None
        core = await _try_again(build, server, stopping, waits, relock, held, start=start, say=say)
    except BaseException:
        await held.end()
        raise
    if core is None or owned:  # else serving on while the start is tried (``Held``)
        await held.end(stopping=core is None)
    return core


async def _try_again(
    build: Callable[[], Core],
    server: StandbyServer,
    stopping: asyncio.Event,
    pause: Pause,
    relock: Callable[[], bool] | None,
    held: Held,
    *,
    start: bool = False,
    say: bool = True,
) -> Core | None:
    """The log tried again after each pause until it opens (its core), or a stop (None).
    ``start``: the standby is for the start's card fault, the log having opened: the core is
    for trying the start again (said so, when ``say``: the standby's line was said). The
    pauses grow from ``held``'s step."""
    standby = server.standby
    while True:
        await pause(server, RETRY.delay(held.step))
        if stopping.is_set():
            return None
        if not server.gate_obeyed and relock is not None:
            await _relock(server, relock)
        try:
            core = await asyncio.to_thread(build)
        except Exception as exc:
            kind = card_failure(exc)
            if kind is None:
                raise
            if standby.failed_again(str(exc), kind):  # one line per change, not per try
                log.error("still standing by, the event log cannot be opened: %s", exc)
                server.notifier.status(server.status())
            held.step += 1
            continue
        if stopping.is_set():  # asked while the try was under way: nothing starts
            await asyncio.to_thread(core.close)
            return None
        held.starting_since, held.overdue = held.clock(), False  # the start's budget
        opens = "opens: trying the start again" if start else "opens again"
        if say:
            log.warning("the event log %s after %d failed tries: starting", opens, standby.tries)
        return core


async def _relock(server: StandbyServer, relock: Callable[[], bool]) -> None:
    """The relay that refused the lock at start (or the standby's release), commanded so
    again; once it obeys, the status says so (the relay's own line says each failure)."""
    if await asyncio.to_thread(relock):
        server.gate_obeyed = True
        server.notifier.status(server.status())


async def start_or_card_failure(
    start: Callable[[], Awaitable[None]], core: Core, held: Held | None = None
) -> Exception | None:
    """``start()`` (the daemon's): None once started; the card failure (``card_failure``: a
    full card SQLite met reading the history's look-back) that stopped it, the core closed
    but its relay (``Core.close_keeping_gate``), for ``core_or_standby(failed=...)`` to
    stand by with: exiting, systemd restarted the daemon every 3 s for ever, no console. Any
    other failure is raised, the core as it was. ``held``: the standby of the starts before
    (``Held``): its fault met again is no new line; a start that runs after lines left
    unsaid says so."""
    standby = held.standby if held is not None else None
    try:
        await start()
    except Exception as exc:
        kind = card_failure(exc)
        if kind is None:
            raise
        if standby is None or (str(exc), kind) != (standby.reason, standby.kind):
            log.error("the start met the card's fault: %s", exc)
        await asyncio.to_thread(core.close_keeping_gate)
        return exc
    if held is not None and standby is not None and held.unsaid:
        log.warning("the start ran after %d failed tries: starting", standby.tries)
    if held is not None:  # the daemon's own server next, on the same port
        await held.end()
    return None
