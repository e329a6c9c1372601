"""Composition: one asyncio process that builds every part from the config and runs it.

Start order (``Daemon.start``): the event log (schema, single writer) → lists, trust, history,
tokens, accounts → drivers → the engine runner (readers start here) → the web server → the
systemd notification (``READY=1``) and watchdog → the hourly retention purge. ``Daemon.stop``
undoes it within one budget (``STOP_BUDGET_S``, every step drawing on it): the gate is
commanded locked first, before anything that may wait on the storage or the network, the
writes come last: a step that does not end in its share is given up on, the journal saying
which and what was not written; nothing is half-written.

The UI receives a ``Core``: the bundle of core objects it may call. Nothing here is created
at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from checkpoint import cpu
from checkpoint.export_helper import HelperProcessPages
from checkpoint.notify import Notifier, Watchdog
from drivers.clocksync import system_clock
from drivers.factory import build_devices, build_pi_power
from kiosk import accounts, ledgers, lists, peers, stats, tokens
from kiosk.accounts import AccountStore
from kiosk.bus import EventBus
from kiosk.calibration import CalibrationStore, default_path
from kiosk.clock import Clock, FlooredClock
from kiosk.config import KioskConfig, trust_dir
from kiosk.core import HEARTBEAT_MAX_AGE_S, Core, Devices
from kiosk.deadline import STOP_MARGIN_S as STOP_MARGIN_S  # the unit's sum (tests)
from kiosk.deadline import Abandoned, StopBudget, in_daemon_thread
from kiosk.devices import Gate
from kiosk.export import InProcessPages
from kiosk.history import PassageHistory
from kiosk.ledgers import Ledgers
from kiosk.lists import Lists, ListStore
from kiosk.logs import RepeatedFailure
from kiosk.passes import KeyFileError, TrustList, load_private_key
from kiosk.pihealth import PowerWatch
from kiosk.runner import EngineRunner
from kiosk.secrets import get_secret
from kiosk.store import EventLog, Migrating, StoreFault, newest_synced_ts, record_site, vouched_ts
from kiosk.tokens import TokenStore, secret_pepper

if TYPE_CHECKING:
    from checkpoint.peers import PeerSync
    from checkpoint.server import EdgeServer
    from office.listsync import ListSync
    from ui.guard.community.common import Pending
    from ui.guard.deps import Guard

log = logging.getLogger(__name__)

#: How often the daemon checks whether a retention purge is due.
PURGE_CHECK_S = 3600.0
# How often the daemon looks for list changes another process wrote (`kiosk lists import`).
LISTS_CHECK_S = 5.0
#: The checks' round waits on the console's rows this long at most (``checks_once``).
ROWS_WAIT_S = 2.0


@contextlib.contextmanager
def _closing_on_error(*closers: Callable[[], object]) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for close in reversed(closers):
            with contextlib.suppress(Exception):
                close()
        raise


class _Shared(TypedDict):
    """The core objects the engine runner works with and the ``Core`` hands to the screens."""

    trust: TrustList
    lists: ListStore
    history: PassageHistory
    bus: EventBus
    calibration: CalibrationStore


def _ledgers(config: KioskConfig, clock: Clock, store: EventLog) -> Ledgers:
    """The ledgers around the gate on the event log; the observation ledger loaded, so the
    engine's policy sees who is under observation from the first passage."""
    fever_c = float(config.thermometer.thermometry.fever_threshold_c)
    days = config.store.retention_days  # the roster rosters no further ahead (kiosk.roster)
    built = Ledgers.build(store, clock, config.site.timezone, fever_c, retention_days=days)
    built.observation.load()
    return built


def _open_event_log(
    config: KioskConfig,
    data_dir: Path,
    clock: Clock,
    on_migrating: Migrating | None = None,
) -> EventLog:
    store = EventLog.from_config(
        config.store,
        data_dir,
        config.site.kiosk_id,
        clock,
        on_migrating=on_migrating,
        migrations=[
            lists.MIGRATIONS,
            tokens.MIGRATIONS,
            accounts.MIGRATIONS,
            stats.MIGRATIONS,
            *ledgers.MIGRATIONS,
            peers.MIGRATIONS,
        ],
    )
    store.open()
    with _closing_on_error(store.close):
        _check_log_owner(store, config.site.kiosk_id)
        record_site(store, site_record(config))
    return store


def site_record(config: KioskConfig) -> dict[str, Any]:
    """What the log keeps of its site (``kiosk.store.record_site``): the settings its local
    days and daily reports are cut by, for a verb run without the config: the staffed hours
    too (``policy.hours``, the report's ``staffing``; since 2026-12-07), as their spans."""
    hours = config.policy.hours
    return {
        "timezone": config.site.timezone,
        "quota": config.policy.quota.model_dump(mode="json"),
        "hours": {
            "enabled": hours.enabled,
            "spans": [f"{a:%H:%M}-{b:%H:%M}" for a, b in hours.windows()],
        },
    }


class ForeignLog(StoreFault):
    """The data dir's log is another kiosk's (a backup of another gate put back, a changed
    ``site.kiosk_id``): nothing is wrong with the card, and no restart mends it. ``owner``:
    the kiosk id its events were written under."""

    def __init__(self, reason: str, detail: str = "", *, owner: str | None = None) -> None:
        super().__init__(reason, detail)
        self.owner = owner


def _check_log_owner(store: EventLog, kiosk_id: str) -> None:
    """Refuse a log whose events another ``kiosk_id`` wrote: the office keys a kiosk's log by
    its id, so writing on under a new one would end its pull for good (a ChainError)."""
    last = store.reader().execute("SELECT kiosk_id FROM events ORDER BY seq DESC LIMIT 1")
    row = last.fetchone()
    if row is not None and row[0] != kiosk_id:
        raise ForeignLog(
            "store_fault",
            f"{store.path.name} is the event log of kiosk {row[0]!r}, and site.kiosk_id is"
            f" {kiosk_id!r}: set it back, or give this kiosk a new log (docs/operations.md,"
            " changing the config)",
            owner=row[0],
        )


def settle_trust_wait(seconds: float) -> None:
    """How a start waits before it reads a trust folder that failed again
    (``kiosk.passes.TrustList.settled``; a test's stand-in never sleeps)."""
    time.sleep(seconds)


def _shared_parts(
    config: KioskConfig,
    data_dir: Path,
    clock: Clock,
    store: EventLog,
    trust_wait: Callable[[float], None] | None = None,
) -> _Shared:
    trust_path = trust_dir(config, data_dir)
    trust_path.mkdir(parents=True, exist_ok=True)
    floor = clock.raise_floor if isinstance(clock, FlooredClock) else None
    # A gate taken out of compound.peers counts here no more (kiosk.peers.forget_removed).
    dropped = peers.forget_removed(store, (p.kiosk_id for p in config.compound.peers))
    for gate, rows in dropped.items():
        log.warning(
            "compound: %s is not in compound.peers any more: the %d rows held of it here"
            " (passages, revocations, quarantine entries) are dropped",
            gate,
            rows,
        )
    list_store = ListStore(store, clock, passed=floor)
    list_store.load()
    say_shared_keys(list_store.current)
    issued = list_store.current.freshness.bundle_issued_at
    if floor is not None and issued is not None and not clock.synced():
        floor(issued)  # the office's last bundle was issued before this start
    horizon = peers.history_horizon(config.policy.quota.period_days)
    return _Shared(
        # A key caught half-copied: read once more after a moment before the start fails.
        trust=TrustList.settled(trust_path, trust_wait or settle_trust_wait),
        lists=list_store,
        # Whose exits are outings: the roles in force, read from each row's recorded role
        # whatever the quota's setting when it was made (``kiosk.history.counted_outing``).
        history=PassageHistory(horizon=horizon, roles=config.policy.quota.roles),
        bus=EventBus(),
        calibration=CalibrationStore(default_path(data_dir)),
    )


def say_shared_keys(current: Lists) -> None:
    """One warning at start when entries of the households list share a key
    (``Lists.households_sharing_a_key``: spellings an earlier release told apart), by count,
    never by name, so the admin merges them (docs/operations.md, *Upgrading*)."""
    shared = current.households_sharing_a_key()
    if shared:
        log.warning(
            "lists: %d entries of the households list are one household however spelled"
            " (3号楼 701 and 3号楼701 are one since 2026-12): the gate holds each such household"
            " as one entry, the latest observation in force; merge them on the console's lists"
            " page",
            shared,
        )


def _issuer_key() -> tuple[Ed25519PrivateKey | None, str | None]:
    """The key for issuing passes at the guard screen, if the ``issuer_key_path`` secret names
    a usable one, and why not when it names one that is not (damaged on the card: the guard's
    Passes page says so, never "no key"); without it the gate still decides, only on-the-spot
    issuing is off."""
    key_path = get_secret("issuer_key_path")
    if not key_path:
        return None, None
    try:
        return load_private_key(key_path), None
    except KeyFileError as exc:
        log.warning("issuer key unusable; passes cannot be issued here: %s", exc)
        return None, str(exc)


def _floor_from_log(clock: Clock, store: EventLog) -> None:
    """The machine's clock reads no earlier than the newest synchronised stamp in the log
    (or the time a guard vouched for since, ``kiosk.store.vouched_ts``) while it is not
    synchronised (``kiosk.clock.FlooredClock``): a Pi that lost its saved
    clock and has no network decides passes, expiry and the quota by a time that has passed,
    not by 1970."""
    if isinstance(clock, FlooredClock):
        for newest in (store.submit(newest_synced_ts), store.submit(vouched_ts)):
            if newest is not None:
                clock.raise_floor(datetime.fromisoformat(newest))


def build_core(
    config: KioskConfig,
    data_dir: Path,
    clock: Clock | None = None,
    devices: Devices | None = None,
    *,
    gate: Gate | None = None,
    on_migrating: Migrating | None = None,
    trust_wait: Callable[[float], None] | None = None,
) -> Core:
    """Every core object, wired; nothing started yet except the event log's writer.

    The one composition root: the daemon, the demo, replay (``checkpoint.replay``, stepped in
    virtual time by ``checkpoint.virtual``) and the benches build the program here.
    ``gate``: the relay ``kiosk run`` built and commanded locked before anything else
    (``drivers.gate.lock_at_start``), driven from here on. ``on_migrating``: told the log's
    migration's progress as it opens (``EventLog``; the daemon's ``LongStart``).
    ``trust_wait``: how it waits to read a trust folder that failed again
    (``settle_trust_wait``)."""
    clock = clock or FlooredClock(system_clock())
    data_dir.mkdir(parents=True, exist_ok=True)
    store = _open_event_log(config, data_dir, clock, on_migrating)
    with _closing_on_error(store.close):
        _floor_from_log(clock, store)
        shared = _shared_parts(config, data_dir, clock, store, trust_wait)
        ledgers_ = _ledgers(config, clock, store)
        devices = devices or build_devices(config, clock, gate=gate)
        issuer_key, issuer_key_problem = _issuer_key()
    with _closing_on_error(store.close, devices.close):
        runner = EngineRunner(
            config,
            clock,
            thermometer=devices.thermometer,
            readers=devices.readers,
            gate=devices.gate,
            store=store,
            observation=ledgers_.observation,
            **shared,
        )
        runner.held_dir = data_dir  # a stop keeps the decisions the log never took here
        return Core(
            config=config,
            clock=clock,
            data_dir=data_dir,
            store=store,
            tokens=TokenStore(store, secret_pepper(), clock=clock),
            accounts=AccountStore.from_secrets(store, now=clock.now),
            devices=devices,
            runner=runner,
            ledgers=ledgers_,
            issuer_key=issuer_key,
            issuer_key_problem=issuer_key_problem,
            pages=HelperProcessPages() if config.web.api_worker_process else InProcessPages(),
            **shared,
        )


def settle_for_service(core: Core) -> cpu.CpuPlan:
    """What the kiosk process does once everything is built and serving, before READY=1
    (``Daemon.start``; the pull bench's server does the same so it measures the service):

    * pin the process to its CPUs and keep helpers off them (``engine.cpu``, ``checkpoint.cpu``);
    * move everything built so far, which lives as long as the process, out of the garbage
      collector's sight, so a collection during a passage scans only what is new (the loop's
      p99 under a pull drops measurably, see the pull bench)."""
    plan = cpu.plan(core.config.engine.cpu)
    cpu.pin_process(plan)
    gc.collect()
    gc.freeze()
    return plan


def stop_on_signals(stop: Callable[[], None]) -> None:
    """Call ``stop`` on this loop at SIGTERM (systemd stopping the kiosk) or SIGINT (^C)
    instead of dying by the default action (no clean stop, the gate not commanded locked).
    ``kiosk run`` installs this before it builds anything: a stop asked for while it starts
    waits for the start, then stops cleanly."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)


#: Left in the data dir by the daemon's clean stop, taken by its next start: whether the
#: last run stopped cleanly (its audit row may be missing: a full card at the stop).
STOPPED_MARKER = "daemon-stopped"


def take_stop_marker(core: Core) -> str:
    """How the last run ended, the marker ``record_stop`` leaves taken: ``clean`` (it was
    there), ``unclean`` (a crash, a kill, a power cut: no marker) or ``none`` (no start on
    record before it). Taken before anything of the start that a crash could interrupt."""
    try:  # only whether it is there counts: taken unread
        (core.data_dir / STOPPED_MARKER).unlink()
        return "clean"
    except OSError:  # none left: the last run did not stop cleanly, if there was one
        started = "select 1 from audit where action = ? limit 1"
        seen = core.store.reader().execute(started, [stats.DAEMON_START]).fetchone()
        return "none" if seen is None else "unclean"


def record_start(
    core: Core,
    last: str | None = None,
    standby: dict[str, object] | None = None,
    *,
    failed: bool = False,
) -> None:
    """The daemon's start, as an audit row (``daemon.start``, actor ``daemon``): its detail
    says how the last run ended (``last_stop``: ``take_stop_marker``'s word, the marker
    taken first: a crash of this run must not read as a clean stop). ``last``: that word,
    when the start took the marker already (``Daemon.start_deciding``; ``kiosk run``'s start
    tried again after a card-fault standby keeps the word its first try took: no marker is
    left meanwhile, so a kill before this row reads as the run before it ended). ``standby``:
    the standby ``kiosk run`` held before this start (``checkpoint.standby.Held.said``: its
    kind, since when, its failed tries), said once here: the starts it tried write no row.
    ``failed``: the start failed before it read the look-back, not for the card's fault
    (``Daemon.stop`` writes its row then, ``"failed": true``): a crash loop stays counted.
    The daily report's ``downtime`` counts the restarts within a boot from these rows
    (``kiosk.stats.daemon_restarts``). A card that refuses the row is a warning line."""
    detail: dict[str, object] = {"last_stop": last or take_stop_marker(core)}
    if standby is not None:
        detail["standby"] = standby
    if failed:
        detail["failed"] = True
    try:
        core.store.audit("daemon", stats.DAEMON_START, detail)
    except StoreFault as exc:
        log.warning("the daemon's start could not be recorded in the audit table: %s", exc)


def record_stop(core: Core) -> None:
    """The daemon's clean stop, once the gate is locked and the engine's writes are in: its
    audit row (``daemon.stop``) while the log is open, then the marker ``take_stop_marker``
    takes (it holds the stop's time, for whoever reads the data dir)."""
    try:
        core.store.audit("daemon", stats.DAEMON_STOP)
    except StoreFault as exc:
        log.warning("the daemon's stop could not be recorded in the audit table: %s", exc)
    mark_stopped(core.data_dir, core.clock.now())


def mark_stopped(data_dir: Path, now: datetime) -> None:
    """The marker ``take_stop_marker`` takes, left in ``data_dir`` holding ``now``: the run
    stopped cleanly. By ``record_stop``, and by ``kiosk run`` giving back the marker a start
    took before the card failed it, when its standby (``checkpoint.standby``) ended in a
    stop: no row was written, so the next run says how the run before it ended, as for a
    standby whose log never opened. A standby that ends in a start leaves none: that start
    is told the word taken (``record_start(core, last=...)``)."""
    with contextlib.suppress(OSError):  # a failing card: the next start reads it as a crash
        (data_dir / STOPPED_MARKER).write_text(now.isoformat(timespec="seconds"), encoding="ascii")


#: The whole stop, from the signal: every step of it draws on it (``kiosk.deadline.StopBudget``,
#: ``Daemon.stop``). With the exit's grace after it and ``STOP_MARGIN_S``, within systemd's
#: ``TimeoutStopSec`` (systemd/kiosk.service; tests/test_stop_budget.py checks the sum).
STOP_BUDGET_S = 10.0
#: Kept back of it for the gate's lock (a relay command under way waited for, then the
#: lock: twice ``engine.device_deadline_ms`` at most) and for the writes: no step before
#: them takes these.
STOP_LOCK_S = 1.0
STOP_WRITES_S = 2.0
#: What ``TimeoutStopSec`` leaves over the stop and the exit's grace: ``STOP_MARGIN_S``
#: (``kiosk.deadline``: the relay's floor at a spent budget is cut to it).
#: Each step's own cap, within what the budget leaves it: the web server's end (its
#: requests under way), the background tasks' end once cancelled, closing the relay and the
#: thermometer, the API's page helper (it ends by itself once this process is gone), the
#: list sync, the peers (``checkpoint.peers.FAREWELL_S`` for telling them it is closing).
WEB_STOP_S = 1.5
TASKS_STOP_S = 1.0
DEVICES_CLOSE_S = 2.0
HELPER_STOP_S = 2.0
LISTS_STOP_S = 1.0
PEERS_STOP_S = 1.0
#: After the stop, how long the process may take to end (``ExitAfterStop``).
EXIT_GRACE_S = 2.0

#: A stop's write: its thread's name, the write, and what it leaves unwritten if given up.
_WriteStep = tuple[str, Callable[[], object], Callable[[], str]]


def _close_devices(devices: Devices, grant_s: float) -> None:
    """The relay (commanded locked already) and the thermometer closed, in ``Devices.close``'s
    order, within the step's grant; the readers were stopped by the engine
    (``EngineRunner.finish_stop``): one stuck in its driver is not waited for again here."""
    devices.close_outputs(grant_s)


def _failure_kind(exc: BaseException) -> str:
    """What failed, by name only (SQLite's error's, errno's, else the exception's class):
    never its message, which may quote what it read."""
    for failed in (exc, exc.__cause__):
        found = getattr(failed, "sqlite_errorname", "") or errno.errorcode.get(
            getattr(failed, "errno", None) or 0, ""
        )
        if found:
            return str(found)
    return type(exc).__name__


def _rows(n: int) -> str:
    return f"{n} audit row(s)"


def _last_console_rows(guard: Guard) -> None:
    """The console's rows at the stop: those held, the minute in progress's count of refused
    sign-ins; then what is left is said in the log (``HeldRows.close``)."""
    from ui.guard.deps import write_due

    write_due(guard, stopping=True)
    guard.held.close(guard.core.store)


def _console_left(guard: Guard) -> Callable[[], str]:
    def left() -> str:
        due = len(guard.auth.refused_rows.due(stopping=True))  # never taken: lost with these
        said = _rows(guard.held.unwritten() + due)
        return f"{said} ({guard.held.dropped} more not kept)" if guard.held.dropped else said

    return left


class ExitAfterStop:
    """``kiosk run``'s end: a thread still stuck in a write to a stalled card (a purge, a Pi
    power poll: the loop's executor; a console request's row: the web's worker threads) is
    waited for by ``asyncio.run`` and by the interpreter's exit for ever, and systemd would
    kill the daemon at ``TimeoutStopSec`` (the stop's own writes are given up and said
    already: ``Daemon._stop_writes``). Built before the loop runs; ``arm`` after the stop:
    the process is ended with the stop's code ``grace_s`` later, naming the threads that
    hold it up, unless ``settle`` (once the loop is closed) finds every thread started
    since has ended. A daemon thread: it dies with a process that ends by itself."""

    def __init__(
        self, grace_s: float = EXIT_GRACE_S, *, exit_: Callable[[int], object] = os._exit
    ) -> None:
        self.grace_s, self._exit = grace_s, exit_
        self._before = set(threading.enumerate())
        self._timer: threading.Timer | None = None
        self._armed_at = 0.0

    def arm(self, code: int) -> threading.Timer:
        self._timer = threading.Timer(self.grace_s, self._end, args=(code,))
        self._timer.name, self._timer.daemon = "kiosk-exit-after-stop", True
        self._armed_at = time.monotonic()
        self._timer.start()
        return self._timer

    def settle(self) -> bool:
        """Disarmed once the threads started since it was built have ended (each waited for
        what is left of ``grace_s``); False (still armed) if one has not."""
        if self._timer is None:
            return True
        for thread in self._started():
            thread.join(max(0.0, self._armed_at + self.grace_s - time.monotonic()))
        if self._started():
            return False
        self._timer.cancel()
        return True

    def _started(self) -> list[threading.Thread]:
        me = threading.current_thread()
        return [
            t
            for t in threading.enumerate()
            if t not in self._before and t is not me and not t.daemon and t.is_alive()
        ]

    def _end(self, code: int) -> None:
        stuck = sorted(t.name for t in self._started())
        log.error(
            "stopping: the process had not ended %.1f s after the stop (threads still in a"
            " call: %s); ended now",
            self.grace_s,
            ", ".join(stuck) or "none",
        )
        for handler in logging.getLogger().handlers:  # the journal gets every line first
            with contextlib.suppress(Exception):
                handler.flush()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        self._exit(code)


class Daemon:
    """The kiosk process: core, engine, web server, systemd integration, retention."""

    def __init__(
        self,
        core: Core,
        *,
        notifier: Notifier | None = None,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.core = core
        self.notifier = notifier or Notifier.from_env()
        self._server: EdgeServer | None = None
        self._server_task: asyncio.Task[None] | None = None
        self._watchdog: Watchdog | None = None
        self._purge_task: asyncio.Task[None] | None = None
        self._lists_task: asyncio.Task[None] | None = None
        self._lists_failures = RepeatedFailure(
            log, "reloading the lists failed; will retry", "reloading the lists works again"
        )
        self._lists_sync: ListSync | None = None
        self._peers: PeerSync | None = None
        self._news_task: asyncio.Task[None] | None = None
        #: The Pi's power and heat, read every ``pi_health.poll_s`` off the loop.
        self._pi_power: PowerWatch | None = None
        self._pi_power_task: asyncio.Task[None] | None = None
        #: The guard console's state once started (``ui.guard.deps.Guard``): its audit rows
        #: held during a storage outage and its counted refused sign-ins (``checks_once``).
        self.guard: Guard | None = None
        self._rows_task: asyncio.Task[None] | None = None
        #: How long ``checks_once`` waits on the console's rows before its round ends.
        self.rows_wait_s = ROWS_WAIT_S
        self._rows_failures = RepeatedFailure(
            log, "writing the console's audit rows due failed; will retry", "they are written again"
        )
        #: The console's import previews (names, households, plates of a sheet not applied
        #: yet): the hourly purge drops the expired ones (``purge_once``).
        self.previews: Pending | None = None
        #: Whether the record of a purge step failing (``STEP_FAILED_KEY``) was cleared since
        #: the start: a purge whose steps all succeed clears it once, then when one is noted.
        self._step_record_cleared = False
        #: Set to stop (``request_stop``); given, it may already be set by a signal that came
        #: while the program was starting.
        self._stopping = stopping or asyncio.Event()
        #: The whole stop's budget (``stop``) and what it keeps back for its last steps.
        self.stop_budget_s = STOP_BUDGET_S
        self.stop_reserves_s = {"gate lock": STOP_LOCK_S, "writes": STOP_WRITES_S}
        #: When the stop was asked (the loop's clock), if before ``stop`` began: a SIGTERM
        #: while the kiosk was starting (``kiosk run``). The budget counts from it, as
        #: systemd's ``TimeoutStopSec`` counts from the signal.
        self.stop_asked_at: float | None = None
        #: The helpers whose threads use the event log (the list sync's apply, the peers'
        #: pages), each set once none of their threads uses the log and none will (or there
        #: is none, or no stop began): set by the helper itself (``ListSync.log_released``:
        #: once no apply is under way; ``PeerSync.log_released``: once no page is kept);
        #: the log closes after them all (``_close_log``).
        self._log_users = {name: threading.Event() for name in ("list sync", "peers", "web")}
        for stopped in self._log_users.values():
            stopped.set()
        self.cpu_plan: cpu.CpuPlan | None = None
        #: A start begun (``start_deciding``) whose row is not written yet: its ``last`` and
        #: ``standby``, for the stop to write it (``_write_steps``) when the start failed
        #: before it read the look-back (a card fault's stands by instead: no stop, no row).
        self._start_unrecorded: tuple[str, dict[str, object] | None] | None = None

    @property
    def url(self) -> str:
        web = self.core.config.web
        host = "127.0.0.1" if web.host in ("0.0.0.0", "::") else web.host
        return f"http://{host}:{self.port}"

    @property
    def port(self) -> int:
        if self._server is not None and self._server.servers:
            sockets = self._server.servers[0].sockets
            if sockets:
                return int(sockets[0].getsockname()[1])
        return self.core.config.web.port

    async def start(self) -> None:
        await self.start_deciding()
        await self.start_serving()

    async def start_deciding(
        self, last: str | None = None, standby: dict[str, object] | None = None
    ) -> None:
        """The start's steps before the web server (the runner: the history's look-back read
        from the log, then its record): a card failure here is one the daemon stands by for
        (``checkpoint.standby.start_or_card_failure``), nothing served yet, and no row
        written: ``daemon.start`` is the start that read the look-back, before the engine
        decides anything. ``last``, ``standby``: as ``record_start``'s (``last`` given: the
        marker was taken already). A start that fails before then for another reason (a row
        the history cannot decode, a bug) is stopped: its row is written by the stop
        (``_write_steps``), as it was at the start before, so a crash loop stays a row per
        start."""
        said = await asyncio.to_thread(take_stop_marker, self.core) if last is None else last
        self._start_unrecorded = (said, standby)

        def loaded() -> None:
            record_start(self.core, said, standby)
            self._start_unrecorded = None

        await self.core.runner.start(loaded=loaded)

    async def start_serving(self) -> None:
        """The web server, then the watchdog and the background tasks."""
        from checkpoint.server import build_server
        from ui.app import create_app

        self.core.web_uses.open()  # closed by an earlier stop of this core, if any
        self.core.bus.open_streams()  # so are the live streams
        self.core.pages.open()  # so are the API's pages
        app = create_app(self.core)
        self.guard = app.state.guard
        self.previews = app.state.community_imports
        web = self.core.config.web
        self._server = build_server(app, web, lang=self.core.config.site.language)
        self._server_task = asyncio.create_task(self._server.serve(), name="web")
        while not self._server.started:
            if self._server_task.done():
                await self._server_task
                raise RuntimeError(f"web server did not start on {web.host}:{web.port}")
            await asyncio.sleep(0.02)
        self.cpu_plan = settle_for_service(self.core)
        self.notifier.ready(f"deciding; {self.url}")
        # Only a stalled loop is worth a restart; a full disk or a dead sensor is not (the
        # kiosk stays up in degraded mode and says so), so the watchdog watches the heartbeat.
        self._watchdog = Watchdog.from_env(
            self.notifier,
            lambda: self.core.runner.loop_healthy(HEARTBEAT_MAX_AGE_S),
            self.core.clock,
        )
        if self._watchdog is not None:
            self._watchdog.start()
        self._purge_task = asyncio.create_task(self._purge_loop(), name="retention")
        await self._watch_pi_power()
        self._lists_task = asyncio.create_task(self._checks_loop(), name="checks")
        if self.core.config.fleet.lists_url:  # else not even imported: httpx is ~5 MB
            from office.listsync import ListSync

            self._lists_sync = ListSync.from_config(self.core)
        if self._lists_sync is not None:
            self.core.lists_sync = self._lists_sync
            self._lists_sync.start()
        if self.core.config.compound.peers:  # else not even imported (httpx)
            from checkpoint.peers import PeerSync

            self._peers = PeerSync.from_config(self.core)
        if self._peers is not None:
            self.core.peers = self._peers
            self._peers.start()
            # Its passing decisions told to the peers at once (the push thread sends them).
            news = self._peers.follow(self.core.bus)
            self._news_task = asyncio.create_task(news, name="peers-news")
        log.info("kiosk started", extra={"url": self.url, "kiosk_id": self.core.store.kiosk_id})

    def stop_budget(self) -> StopBudget:
        """The stop's one budget (``stop_budget_s`` from now, ``stop_reserves_s`` kept back
        for the gate's lock and the writes), on the loop's clock."""
        loop = asyncio.get_running_loop()
        budget = StopBudget(self.stop_budget_s, dict(self.stop_reserves_s), now=loop.time)
        if self.stop_asked_at is not None:  # asked while starting: counted from the signal
            budget.spent_before("the start", self.stop_asked_at)
        return budget

    async def stop(self) -> None:
        """Reverse order, within one budget (``stop_budget``; ``STOP_BUDGET_S``, systemd's
        ``TimeoutStopSec`` less the exit's grace and a margin): the web server told to end,
        the live streams ended (``EventBus.end_streams``) and the background tasks cancelled
        (neither waited for), the gate commanded locked
        (``EngineRunner.lock_for_stop``: first, nothing opens it after; then a crossing under
        way is waited for, before anything that may wait on the storage or the network); then,
        all at once, the web server's end, the
        background tasks', the engine's rest and the devices, the page helper, the list sync
        and the peers, each within its own cap and what the budget leaves them; then the
        writes, which have the rest (``_stop_writes``), and the web server's requests still
        under way ended (``_end_web``). A step not done in time goes on in
        its thread, left to the exit; one journal line says what was given up (``_say_stop``)."""
        budget = self.stop_budget()
        self.notifier.stopping("stopping")
        if self._server is not None:
            self._server.should_exit = True  # no new connection; its end is waited for below
        self.core.bus.end_streams()  # the live streams end now, cleanly (not cut at its end)
        background = self._cancel_background()
        started = await self.core.runner.lock_for_stop(budget)
        outcomes = await asyncio.gather(
            self._stop_web(budget),
            self._end_background(background, budget),
            self._stop_engine(budget, started=started),
            self._stop_step(budget, "page helper", HELPER_STOP_S, self._close_pages),
            self._stop_helpers(budget),
            return_exceptions=True,
        )
        for outcome in outcomes:  # a step's bug: said, and the writes still come
            if isinstance(outcome, Exception):
                log.error("stopping: a step failed", exc_info=outcome)
        unwritten = await self._stop_writes(budget)
        await self._end_web(budget)
        cpu.release()
        self._say_stop(budget, unwritten)
        log.info("kiosk stopped")

    def _close_pages(self, _grant_s: float) -> None:
        """The API's pages closed (``PageSource.close``): its page helper stopped, and none
        asked of it after, a request's under way included (503, the checkpoint is stopping)."""
        self.core.pages.close()

    def _cancel_background(self) -> list[asyncio.Task[Any]]:
        """The background tasks cancelled (a write of theirs still stuck goes on in its
        thread; the console's rows' thread writes or holds them: ``HeldRows.write``) and the
        watchdog's end begun: what the stop waits for, after the gate's lock."""
        tasks = [
            task
            for task in (
                self._purge_task,
                self._lists_task,
                self._news_task,
                self._pi_power_task,
                self._rows_task,
                self.guard.stop_hearing() if self.guard is not None else None,
            )
            if task is not None
        ]
        for task in tasks:
            task.cancel()
        if self._watchdog is not None:
            tasks.append(asyncio.create_task(self._watchdog.stop(), name="watchdog-stop"))
        return tasks

    async def _end_background(self, tasks: list[asyncio.Task[Any]], budget: StopBudget) -> None:
        if not tasks:
            return
        step = "background tasks"
        _, left = await asyncio.wait(tasks, timeout=budget.grant(step, TASKS_STOP_S))
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # seen: a task's failure was logged by it already
        if left:
            budget.gave_up(step)

    async def _stop_web(self, budget: StopBudget) -> None:
        """The web server's end (its requests under way; the live streams ended at the stop's
        start), waited for within its grant but not cut there; then the console's uses of the
        log close (``Core.web_uses``): an audited request still under way keeps the log open
        until it ends (``_close_log``), and none begins after. A request still under way is
        left to the log's close (a read refused from its start: 503) and ended after the
        writes (``_end_web``), never cut before: uvicorn cancelling it answered a 500 with a
        traceback. A read outlasting its request is the log's own use, in the thread that
        reads: ``EventLog.close`` waits for it (docs/operations.md)."""
        task = self._server_task
        if task is not None:
            await asyncio.wait({task}, timeout=budget.grant("web server", WEB_STOP_S))
        self._log_users["web"] = self.core.web_uses.released
        self.core.web_uses.close(0)

    async def _end_web(self, budget: StopBudget) -> None:
        """After the writes (the log closed: a read under way refused, a 503), the web
        server's end, within what the budget leaves (``WEB_STOP_S`` at most): past it its
        requests still under way and the server are cancelled, and the step given up."""
        task, server = self._server_task, self._server
        if task is None:
            return
        step = "web server"
        done, _ = await asyncio.wait({task}, timeout=budget.grant(step, WEB_STOP_S))
        if not done:
            for request in () if server is None else server.server_state.tasks:
                request.cancel()  # uvicorn's: its requests' tasks
            task.cancel()
            budget.gave_up(step)
        elif not task.cancelled() and task.exception() is not None:
            log.warning("stopping: the web server ended with %r", task.exception())

    async def _stop_engine(self, budget: StopBudget, *, started: bool) -> None:
        """The engine's rest (its tasks, readers, held decisions), then the relay and the
        thermometer closed (``_close_devices``)."""
        if started:
            await self.core.runner.finish_stop(budget)
        devices = self.core.devices
        await self._stop_step(
            budget, "devices", DEVICES_CLOSE_S, lambda s: _close_devices(devices, s)
        )

    async def _stop_helpers(self, budget: StopBudget) -> None:
        """The list sync, and the compound's peers: told this gate is closing (a clean stop,
        not an outage: no alarm there), then stopped; each within its grant."""
        sync, peers = self._lists_sync, self._peers
        if sync is not None:
            # Set by the sync once it has stopped and no apply of its is under way, however
            # long after its stop returned (an apply outlasting the stop's wait).
            self._log_users["list sync"] = sync.log_released
            await self._stop_step(budget, "list sync", LISTS_STOP_S, sync.stop)
        if peers is not None:
            from checkpoint.peers import FAREWELL_S

            def farewell(wait_s: float) -> bool:  # False: a peer not told (no answer)
                return None not in peers.farewell(wait_s).values()

            self._log_users["peers"] = peers.log_released  # as the list sync's
            await self._stop_step(budget, "peers farewell", FAREWELL_S, farewell)
            await self._stop_step(budget, "peers", PEERS_STOP_S, peers.stop)

    async def _stop_step(
        self, budget: StopBudget, step: str, own_s: float, fn: Callable[[float], object]
    ) -> bool:
        """``fn(its grant)`` in a daemon thread within its grant (``_bounded``): whether it
        was done; given up (``StopBudget.gave_up``) when not, or when it says so (False)."""
        grant = budget.grant(step, own_s)
        box: list[object] = []
        name = "kiosk-stop-" + step.replace(" ", "-")
        done = await self._bounded(name, lambda: box.append(fn(grant)), grant)
        if not done or box == [False]:
            budget.gave_up(step)
        return done

    async def _bounded(self, name: str, fn: Callable[[], object], timeout_s: float) -> bool:
        """``fn()`` in a daemon thread, ``timeout_s`` at most: whether it returned (a failure
        is logged); left running past it, to the process's exit (``in_daemon_thread``)."""
        try:
            await in_daemon_thread(name, fn, timeout_s)
        except Abandoned:
            return False
        except Exception:
            log.exception("stopping: %s failed", name)
        return True

    async def _stop_writes(self, budget: StopBudget) -> list[_WriteStep]:
        """The stop's writes, once the gate is locked, in this order: the Pi's power spells'
        end rows, the console's rows (held during an outage, the minute's refused sign-ins
        count), the daemon's stop row and marker (``record_stop``), the event log's close.
        Together they have what is left of ``budget`` (its reserve for them at least, kept
        from every step before): past it the step under way and those after it are given
        up; those are returned, for the journal line (``_say_stop``)."""
        steps = self._write_steps()
        for i, (name, write, _left) in enumerate(steps):
            if not await self._bounded(name, write, budget.grant("writes", math.inf)):
                budget.gave_up("writes")
                return steps[i:]
        return []

    def _write_steps(self) -> list[_WriteStep]:
        """``(thread name, the write, what it leaves unwritten)`` for each of the stop's."""
        steps: list[_WriteStep] = []
        power, guard = self._pi_power, self.guard
        if power is not None:  # an open spell's end, written while the log is open
            steps.append(("kiosk-stop-power", power.close, lambda: _rows(power.unwritten())))
        if guard is not None:  # one last try; what is left is said in the log
            steps.append(
                ("kiosk-stop-console", lambda: _last_console_rows(guard), _console_left(guard))
            )
        unrecorded = self._start_unrecorded
        if unrecorded is not None:  # the start failed before its row: written first
            steps.append(
                (
                    "kiosk-stop-start",
                    lambda: record_start(self.core, *unrecorded, failed=True),
                    lambda: "the daemon.start row of the start that failed",
                )
            )
        steps.append(
            (
                "kiosk-stop-record",
                lambda: record_stop(self.core),
                lambda: (
                    "the daemon.stop row and the daemon-stopped marker (the next start"
                    " says the last stop was unclean)"
                ),
            )
        )
        steps.append(
            (
                "kiosk-stop-log",
                self._close_log,
                lambda: "the event log left open (the next start recovers it from its WAL)",
            )
        )
        return steps

    def _close_log(self) -> None:
        """The event log closed once the helpers that use it from their threads say no use
        of it by them is under way and none begins (``ListSync.log_released``: its stop
        begun and no apply under way; ``PeerSync.stop`` returned; the console's actions
        outlasting the web server's end: ``Core.web_uses``), then once no read of it is
        under way in any thread (``EventLog.close``: every statement and fetch on its
        readers counts): one closed under a running query crashed the process. However long
        that takes: within the writes' grant, as every write; past it the log is left open,
        and the journal line says so."""
        for stopped in self._log_users.values():
            stopped.wait()
        self.core.store.close()

    def _say_stop(self, budget: StopBudget, unwritten: list[_WriteStep]) -> None:
        """One journal line when the stop gave up on a step: which one used up the budget
        and what each given up had; when the storage did not take the writes, what each
        left unwritten, in counts (no personal data)."""
        if unwritten:
            left = "; ".join(
                f"{name.removeprefix('kiosk-stop-')}: {say()}" for name, _, say in unwritten
            )
            # A write given no time at all was not refused by the storage: the budget was
            # gone before it (a start that took it all).
            no_time = any(n == "writes" and granted <= 0 for n, _, granted in budget.given_up)
            why = "no time was left for the writes" if no_time else "the storage did not answer"
            log.error(
                "stopping: %s within the stop's %.1f s; given up at %s, not written: %s; %s",
                why,
                budget.total_s,
                unwritten[0][0].removeprefix("kiosk-stop-"),
                left,
                budget.said(),
            )
        elif budget.given_up:
            log.warning("stopping: within the stop's %.1f s, %s", budget.total_s, budget.said())

    def request_stop(self) -> None:
        self._stopping.set()

    async def run_until_signal(self) -> None:
        stop_on_signals(self.request_stop)
        await self._stopping.wait()

    async def _watch_pi_power(self) -> None:
        """The Pi's power and heat (``kiosk.pihealth``): read once now, then every
        ``pi_health.poll_s`` in a thread; health, the console and ``/metrics`` read the last."""
        section = self.core.config.pi_health
        source = build_pi_power(section, self.core.data_dir)
        store = self.core.store
        self._pi_power = PowerWatch(
            source, self.core.clock, store, hot_c=section.hot_c, boot_id=store.boot_id
        )
        self.core.pi_power = self._pi_power
        if source is None:
            return
        await asyncio.to_thread(self._pi_power.poll)
        self._pi_power_task = asyncio.create_task(self._pi_power_loop(), name="pi-power")

    async def _pi_power_loop(self) -> None:
        assert self._pi_power is not None
        failures = RepeatedFailure(
            log, "reading the Pi's power and heat failed", "the Pi's power and heat read again"
        )
        while True:
            await asyncio.sleep(self.core.config.pi_health.poll_s)
            try:  # a bug (a file's trouble is in the reading): the gate decides on
                await asyncio.to_thread(self._pi_power.poll)
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.worked()

    def _purge_refused(self, cause: str) -> None:
        """Note a purge refused: since when (the first of a row, by the monotonic clock, which
        an unset wall clock does not move) and why, for health's ``retention.overdue``, in the
        log's ``meta`` so a restart or a reboot goes on counting (``note_refused``); in memory
        alone while the card refuses that write too."""
        self.core.purge_refused = self._noted(self.core.purge_refused, cause)

    def _noted(self, held: dict[str, Any] | None, cause: str, key: str = "") -> dict[str, Any]:
        """One more of a row of refusals (or, ``key`` ``STEP_FAILED_KEY``, of a step after
        the commit failing) written in ``meta`` and returned; carried in memory from ``held``
        while the card refuses that write or the record there cannot be read as one."""
        from kiosk.retention import REFUSED_KEY, carried_refusal, note_refused

        store, mono = self.core.store, self.core.clock.monotonic_ns()
        try:
            return store.submit(
                lambda db: note_refused(db, store.boot_id, mono, cause, key or REFUSED_KEY)
            )
        except StoreFault:  # the card
            return carried_refusal(held, store.boot_id, mono) | {"cause": cause}
        except (LookupError, TypeError, ValueError) as exc:  # a damaged record, said by kind
            log.warning("the purge's refusal record cannot be read: %s", type(exc).__name__)
            return carried_refusal(held, store.boot_id, mono) | {"cause": cause}

    def _purge_step_failed(self, step: str, exc: Exception) -> None:
        """A purge committed, then ``step`` after it failed: the purges are not refused (its
        commit cleared their record), the step's own row of failures goes on (``overdue``'s
        ``STEP_CAUSES``, the same two days), one journal line without personal data."""
        from kiosk.retention import STEP_CAUSES, STEP_FAILED_KEY

        self.core.purge_refused = None
        held = self.core.purge_step_failed
        self.core.purge_step_failed = self._noted(held, STEP_CAUSES[step], STEP_FAILED_KEY)
        log.warning(
            "retention purge done; only %s after it failed (%s), tried again within the hour",
            step,
            _failure_kind(exc),
        )

    def _purge_steps_done(self) -> None:
        """Every step after a purge's commit done: the record of one failing cleared (read
        from the log once after the start: a restart forgets it in memory)."""
        from kiosk.retention import STEP_FAILED_KEY

        if self.core.purge_step_failed is None and self._step_record_cleared:
            return
        try:
            self.core.store.submit(
                lambda db: db.execute("DELETE FROM meta WHERE key = ?", [STEP_FAILED_KEY])
            )
        except StoreFault:
            return  # the next purge clears it
        self.core.purge_step_failed = None
        self._step_record_cleared = True

    async def _purge_loop(self) -> None:
        """Hourly purge of personal data past ``store.retention_days`` (also a systemd timer).
        It shares the engine's writer: a big backlog goes in short batches, one on the
        writer's queue at a time, so a passage queued meanwhile commits before the next
        batch (``kiosk.retention``)."""
        while True:
            try:
                await asyncio.to_thread(self.purge_once)
            except Exception:
                log.exception("retention purge failed; will retry")
            await asyncio.sleep(PURGE_CHECK_S)

    async def _checks_loop(self) -> None:
        """``checks_once`` every ``LISTS_CHECK_S``."""
        while True:
            await asyncio.sleep(LISTS_CHECK_S)
            await self.checks_once()

    async def checks_once(self) -> None:
        """Put in force the lists another process changed (``kiosk lists import --apply``
        beside the daemon); write the console's audit rows due (``console_rows``: a burst of
        refused sign-ins counted, once its minute is over, not at the next console action),
        in a task of their own waited on ``rows_wait_s`` at most."""
        await asyncio.to_thread(self.lists_check)
        if self._rows_task is None or self._rows_task.done():
            self._rows_task = asyncio.create_task(self.console_rows(), name="console-rows")
        # Never longer than this: a writer stuck behind a failing card must not hold up the
        # next lists check (a revocation applied beside the daemon). The rows' task goes on;
        # no other starts before it ends.
        await asyncio.wait({self._rows_task}, timeout=self.rows_wait_s)

    async def console_rows(self, *, stopping: bool = False) -> None:
        """The console's audit rows due, written (``ui.guard.deps.flush_held``): those held
        during a storage outage, then the count of each minute over whose refused sign-ins
        were not written each, and at the stop (``stopping``) the minute in progress's. A
        failure is logged once per kind (``RepeatedFailure``); the rows wait for the next."""
        if self.guard is None:
            return
        from ui.guard.deps import flush_held

        try:
            await flush_held(self.guard, stopping=stopping)
        except Exception as exc:
            self._rows_failures.failed(exc)
        else:
            self._rows_failures.worked()

    def lists_check(self) -> None:
        """``lists_once``, its failure logged once per kind of error (the loop tries again
        every ``LISTS_CHECK_S``: a failing card would write a traceback at each)."""
        try:
            self.lists_once()
        except Exception as exc:
            self._lists_failures.failed(exc)
        else:
            self._lists_failures.worked()

    def lists_once(self) -> None:
        """One check for list changes written by another process; logs a reload."""
        if self.core.lists.reload_if_changed():
            log.info("lists changed in the database: reloaded")
        # A resident forgotten by another process (kiosk person forget): their passages leave
        # the history the quota and anti-passback read.
        self.core.runner.drop_forgotten()

    def purge_once(self) -> None:
        """One retention purge by the daemon's clock; a clock that cannot date one (not
        synchronised, or set back) or a card that cannot take it (full, failing) is one
        warning line in the journal, and the next check retries."""
        from kiosk.retention import ClockNotTrusted, purge

        if self.previews is not None:  # by the monotonic clock: whatever the wall clock says
            self.previews.expire(self.core.clock.monotonic_ns() / 1e9)
        cfg = self.core.config
        steps: list[str] = []  # the step after the commit that began last
        try:
            result = purge(
                self.core.store,
                cfg.store.retention_days,
                self.core.clock.now(),
                tz=cfg.site.timezone,
                quota_cfg=cfg.policy.quota,
                actor="daemon",
                held_dir=self.core.data_dir,
                after=lambda _done, step: steps.append(step),
            )
        except ClockNotTrusted as exc:
            log.warning("retention purge skipped, tried again within the hour: %s", exc)
            self._purge_refused(exc.reason)
            return
        except Exception as exc:  # a full or failing card: the store's health says so too
            if steps:  # after the commit: the purge is done
                self._purge_step_failed(steps[-1], exc)
                self.lists_once()
                return
            if not isinstance(exc, StoreFault):  # health's retention.overdue says so too
                self._purge_refused("failed")
                raise
            log.warning("retention purge failed, tried again within the hour: %s", exc)
            self._purge_refused("store")
            return
        self.core.purge_refused = None
        self._purge_steps_done()
        # The lists' snapshot forgets what the purge took from them (``lists.mark_purged``).
        self.lists_once()
        if result.events_purged:
            log.info("retention purge", extra={"rows": result.events_purged})
        for name in result.set_aside_removed:
            why = "a restore set it aside before the cutoff"
            if name.startswith("."):  # a stage: ``kiosk.backup.purge_set_aside``
                why = "a killed backup or restore left it, an hour ago or more"
            log.info("retention: removed %s (%s)", name, why)
        if result.events_waiting_for_clock:
            log.warning(
                "retention: events past retention kept until the clock is synchronised",
                extra={"rows": result.events_waiting_for_clock},
            )
