"""``kiosk collect``: many kiosks pulled into PostgreSQL, forever, with a status page.

Each kiosk is pulled by ``office.pull.Puller`` into a ``PgTarget`` — the same loop, checks and
retries as ``kiosk pull``; nothing about pulling is re-implemented here. What the collector
adds is the schedule and the bookkeeping:

* a scheduler thread hands due kiosks to a pool of ``max_concurrent`` worker threads; each
  worker keeps its own database connection (psycopg connections are not shared between
  threads) and all share one HTTP client;
* the slots are shared fairly: a pull past its turn (``TURN_S``) while another gate waits
  for a slot ends after the page it read ahead and is queued again behind it, to go on from the
  last seq held (``Turn``);
* a kiosk is pulled again ``poll_interval_s`` after its last pull ended; after a failure the
  pause doubles up to ``error_backoff_max_s``, so a gate that is off the network costs a
  request now and then, not a storm;
* per kiosk: ``last_seq`` held centrally, ``head_seq`` the kiosk reported, ``lag_events``
  between them, when the last pull succeeded, the last error and how many in a row. All of it
  on ``/`` (a small HTML page), ``/status.json`` and ``/metrics`` (Prometheus text) on the
  collector's own port, which also serves the office's signed list bundle at ``/lists/bundle``;
* after a successful pull, at most every ``report_interval_s``, the gate's ledger figures
  for today and the recent days it has not reported yet (``office.gatereports``), with the
  same token: ``report_day``, ``last_report_at`` and ``report_error`` in the status.

Killing the collector at any point is safe: each page is one transaction, and the next start
resumes every kiosk from what the database holds.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import ipaddress
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import date, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import Any
from urllib.parse import parse_qs

import httpx

from drivers.clocksync import system_clock
from kiosk.backoff import Backoff
from kiosk.clock import Clock
from kiosk.config.fleet import CollectorConfig, KioskSource, normalise_url
from kiosk.hosts import host_is_ours, own_host_names
from kiosk.lists import same_text
from kiosk.logs import FlapLimit
from kiosk.ratelimit import ACCEPT_BACKLOG, ClientSlots, RateLimiter, client_key
from office.gatereports import GateRefusal, collect_gate_reports
from office.listsync import BundleFile, compounds_path, declared_compounds, unreadable_bundle
from office.pg import PgError, PgTarget, redact_dsn
from office.pull import (
    MAX_PAGE_BYTES,
    REQUEST_DEADLINE_S,
    PinError,
    Puller,
    PullError,
    PullResult,
    TrustedClient,
    client_timeout,
    page_cap,
)
from office.retention import OfficeRetention

log = logging.getLogger(__name__)

#: Why ``/lists/bundle`` is refused on the LAN when no token is configured.
NO_LISTS_TOKEN = (
    "the list bundle names quarantined households and people; set lists_token_env in the"
    " collector's config and the same token in every gate's [fleet] lists_token_env"
)

#: What the status port withholds from a caller on the LAN without the status token (as the
#: gate's ``/api/v1/health``): the gates' URLs and errors (a map of the compound's gates and
#: their faults) and the database's host, name and user. Ids, names, states, counts and times
#: stay public, so a monitor elsewhere sees which gate is behind.
WITHHELD = (
    "database",
    "kiosks.compound_error",
    "kiosks.last_error",
    "kiosks.report_error",
    "kiosks.url",
    "retention.error",
)
_WITHHELD_KIOSK = frozenset(w.partition(".")[2] for w in WITHHELD if w.startswith("kiosks."))

#: The wait between two tries of one request within a pull (``retries`` tries in all).
REQUEST_BACKOFF = Backoff(base_s=0.5, cap_s=5.0)
#: How often, at most, a run keeps in the database that it is pulling (``PgTarget.record_run``,
#: ``collector.runs``): the district report reads a gap of ``HEARD_WITHIN`` past the interval
#: a beat expected (``_expected_s``) as the office hearing from nobody, its collector down, not
#: as every gate down.
RUN_BEAT_S = 60.0
#: A pull's share of its slot of the pool while other gates wait for one (``Turn``): past it,
#: after the page it read ahead, it yields the slot and is queued again behind them, to go on
#: after the last seq the database holds. Before, ``max_concurrent`` first pulls of a year of
#: events on a slow link held every slot for hours, the other gates not pulled at all, their
#: silence read as their own downtime.
TURN_S = 60.0

#: The longest error a status keeps (``last_error``, ``report_error``: the page, /status.json
#: and the journal): a longer one loses its middle (``clipped``), not its end, where a refusal
#: names its fix (``office.pull.pin_refusal``: ``--repin ID``).
ERROR_CHARS = 400

__all__ = ["Collector", "KioskStatus", "StatusServer"]


def clipped(text: str, limit: int = ERROR_CHARS) -> str:
    """``text`` at most ``limit`` characters: its beginning and its end, its middle ``…``."""
    if len(text) <= limit:
        return text
    head = (limit - 3) // 3
    return f"{text[:head]} … {text[len(text) - (limit - 3 - head) :]}"


@dataclass
class KioskStatus:
    """What the office sees about one kiosk. No personal data: ids, counts, times, errors."""

    url: str
    name: str | None = None
    kiosk_id: str | None = None
    #: pending | ok | yielded (its turn over with ``lag_events`` still to pull) | error
    state: str = "pending"
    last_seq: int = 0
    head_seq: int | None = None
    lag_events: int | None = None
    last_pull_at: str | None = None
    last_success_at: str | None = None
    last_pull_ms: float | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    consecutive_failures: int = 0
    pulls: int = 0
    errors: int = 0
    events_inserted: int = 0
    report_day: str | None = None
    last_report_at: str | None = None
    report_error: str | None = None
    #: The gate reports a ``[compound] id`` the office's lists do not declare (a typo at the
    #: gate): the district report counts it with no compound of that name.
    compound_error: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.kiosk_id or self.url

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Turn:
    """One pull's turn of a slot (``Puller.turn_over``): over once ``share_s`` has passed
    since it began and ``waiting()`` says a gate waits for a slot; ``over`` then stays
    True (the pull ended after the page it read ahead, with more to pull)."""

    def __init__(
        self, monotonic: Callable[[], float], share_s: float, waiting: Callable[[], bool]
    ) -> None:
        self._monotonic, self._waiting = monotonic, waiting
        self._ends = monotonic() + share_s
        self.over = False

    def __call__(self) -> bool:
        self.over = self.over or (self._monotonic() >= self._ends and self._waiting())
        return self.over


def yielded(result: PullResult, turn: Turn | None) -> bool:
    """Whether a pull ended by its turn (``Turn.over``) yielded short of the gate's end, more
    to pull at its next turn; one whose turn ended at its last page (the page read ahead the
    gate's last) reached it: it is caught up, its reports due like any pull's."""
    return turn is not None and turn.over and result.head_seq > result.last_seq


def _bundles(path: Path | None) -> tuple[BundleFile | None, BundleFile | None]:
    """The published list bundle at ``path`` and the same lists with each entry's compound
    (``office.listsync.compounds_path``); none without a ``lists_bundle_file``."""
    if path is None:
        return None, None
    return BundleFile(path), BundleFile(compounds_path(path))


def _iso(when: datetime) -> str:
    return when.isoformat()


#: The pages of all the pulls running at once, together (parsing one holds ~5x its share at
#: most: ``office.pull.value_budget``): one broken or hostile kiosk, or all of them, cannot
#: take more of the office PC's memory.
COLLECT_PAGE_BYTES = 256 << 20


def page_bytes(max_concurrent: int) -> int:
    """Each pull's ``max_page_bytes``: its share of ``COLLECT_PAGE_BYTES``, never below one
    event of the largest kind (a page over it is asked again with fewer events)."""
    return max(page_cap(1), min(MAX_PAGE_BYTES, COLLECT_PAGE_BYTES // max(max_concurrent, 1)))


class GateLines:
    """One gate's trouble of one kind in the log (its pulls, its ledger report, its
    compound), as a flapping device's faults are: a line when the trouble differs from the
    last (a gate switched off for a week is one line, not one per pull), one when it is over,
    at most ``FLAP_LINES`` changes an hour (``FlapLimit``), the rest counted and said with
    the next line; each repeat goes to debug, and the status page says each pull's.
    ``failing``/``working`` begin its lines; ``now_ns``: a monotonic clock."""

    def __init__(self, url: str, now_ns: Callable[[], int], failing: str, working: str) -> None:
        self.url = url
        self._limit = FlapLimit(now_ns)
        self._failing, self._working = failing, working
        self._error: str | None = None

    def said(self, error: str | None) -> None:
        """The latest outcome: ``error`` (the status's words for it), or None: all well."""
        was = self._error
        settled = self._limit.settled(self._working if was is None else self._of(was))
        if settled is not None:  # an hour whose changes went unlogged: the state, and how many
            level = logging.INFO if was is None else logging.WARNING
            log.log(level, "%s", settled, extra={"url": self.url})
        if error == was:
            if error is not None:
                log.debug("%s", self._of(error), extra={"url": self.url})
            return
        self._error = error
        state = self._working if error is None else self._of(error)
        line = self._limit.change(state)
        if line is None:
            log.debug("%s", state, extra={"url": self.url})
        elif error is None:
            log.info("%s", line, extra={"url": self.url})
        else:
            log.warning("%s", line, extra={"url": self.url, "error": error})

    def _of(self, error: str) -> str:
        return f"{self._failing}: {error}"


def _gate_lines(url: str, clock: Clock) -> dict[str, GateLines]:
    """How one gate's pulls, ledger report and compound are said in the log (``GateLines``)."""
    ticks = clock.monotonic_ns
    return {
        "pull": GateLines(url, ticks, "pull failed", "pull works again"),
        "report": GateLines(url, ticks, "gate report failed", "gate report works again"),
        "compound": GateLines(url, ticks, "gate compound", "gate compound declared"),
    }


class Collector:
    """Pulls ``config.kiosks`` into the database at ``dsn``; thread-safe status.

    ``client`` (an ``httpx.Client``) and ``target_factory`` are injectable for tests;
    ``pull_once``/``run_once`` need no threads of their own beyond the pool.
    ``report_interval_s``: how often each gate is asked for its ledger figures (0: at every
    pull)."""

    def __init__(
        self,
        config: CollectorConfig,
        dsn: str,
        *,
        clock: Clock | None = None,
        client: httpx.Client | None = None,
        target_factory: Callable[[str], PgTarget] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        report_interval_s: float = 300.0,
        backoff_wait: Callable[[float], object] | None = None,
        request_deadline_s: float | None = None,
        turn_s: float = TURN_S,
    ) -> None:
        self.config = config
        #: A pull's share of its slot while other gates wait (``TURN_S``); the gates handed
        #: to the pool and waiting for a slot (``_queue``, ``_schedule``).
        self.turn_s, self._queued = turn_s, set[str]()
        #: The whole of one request to a kiosk (``office.deadline``): a kiosk trickling its
        #: answer fails after this, and the other kiosks go on. Never below two read timeouts.
        self.request_deadline_s = request_deadline_s or max(
            REQUEST_DEADLINE_S, 2 * config.timeout_s
        )
        self.dsn = dsn
        self.clock = clock or system_clock()
        #: Its client, made again when the certificates trusted change (``TrustedClient``).
        self._http = TrustedClient(client_timeout(config.timeout_s), client)
        self._target_factory = target_factory or (
            lambda dsn: PgTarget(dsn, application_name="kiosk-collect")
        )
        self._monotonic = monotonic
        self.report_interval_s = report_interval_s
        # After failures in a row the pause between pulls doubles from the poll interval.
        self._poll_backoff = Backoff(config.poll_interval_s, config.error_backoff_max_s)
        self._reported: dict[str, float] = {}  # url -> monotonic time of the last report ask
        self._status = {k.url: KioskStatus(k.url, k.name) for k in config.kiosks}
        #: This run's spell in ``collector.runs`` (``_beat``), when it was last kept, and
        #: whether a beat of it was: the first says so (its start, ``office.pg.started``).
        self._run_id = secrets.token_hex(8)
        self._beat_at: float | None = None
        self._begun = False
        #: When this run began (monotonic): its first beat tried says how long before
        #: (``_began``; once that one is lost, none: ``_beat``).
        self._run_began, self._backdates = monotonic(), True
        #: Whether this is ``run_once`` (``kiosk collect --once``), and how often it is run
        #: (``--every``): its beats expect the next run within it; None: within the interval
        #: the database learns from the spacing of the runs (``office.pg.beaten``).
        self._once = False
        self._once_every_s: float | None = None
        #: Per URL, how its pulls, its ledger report and its compound are said in the log.
        self._lines = {k.url: _gate_lines(k.url, self.clock) for k in config.kiosks}
        #: Per URL: how its last pull fared, in a few words, and the id it claimed when refused
        #: (``_record_gates``: the district report's ``gates_without_figures``).
        self._why: dict[str, tuple[str, str | None]] = {}
        self._gates_recorded: list[dict[str, Any]] | None = None
        self._gates_lock = threading.Lock()
        self._lock = threading.Lock()
        #: Wrong list tokens per client address, an IPv6 one's /64 (``bundle_refusal``).
        self._guesses = RateLimiter(BUNDLE_GUESSES / 60.0, BUNDLE_GUESSES, self.clock)
        self._local = threading.local()
        self._targets: list[PgTarget] = []
        self._stop = threading.Event()
        # A retry's pause ends early on stop(); tests pass one that records instead.
        self._backoff_wait = backoff_wait or self._stop.wait
        self._wake = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._scheduler: threading.Thread | None = None
        #: The published lists, and the same with each entry's compound (``_bundles``).
        self.bundle, self.compound_bundle = _bundles(config.lists_bundle_file)
        #: The published lists' ETags last kept in the database, and the compounds they
        #: declare (``_record_lists``).
        self._lists_recorded: tuple[str, ...] | None = None
        self._declared: list[str] | None = None
        #: Why the bundle file could not be read, as last logged (``bundle_unreadable``).
        self._unreadable_told: str | None = None
        #: The highest version served to the gates, as the database holds it (``_record_lists``).
        self._served_high = 0
        #: The hourly purge of the personal fields past ``retention_days`` (``office.retention``).
        self.retention = OfficeRetention(dsn, config.retention_days, self.clock)
        self._purger: threading.Thread | None = None

    # -- one pull -------------------------------------------------------------------------------

    def _target(self) -> PgTarget:
        target = getattr(self._local, "target", None)
        if target is None:
            target = self._target_factory(self.dsn)
            self._local.target = target
            with self._lock:
                self._targets.append(target)
        return target

    def _drop_target(self) -> None:
        target = getattr(self._local, "target", None)
        if target is not None:
            self._local.target = None
            with self._lock:
                if target in self._targets:
                    self._targets.remove(target)
            target.close()

    def pull_once(self, source: KioskSource, turn: Turn | None = None) -> KioskStatus:
        """Pull one kiosk now; record and return its status. Never raises for a pull error.
        ``turn``: the pull ends when it is over (``Turn``), the status its pages so far."""
        started = self._monotonic()
        error: str | None = None
        result = None
        why: tuple[str, str | None] | None = ("unreachable", None)
        try:
            token = source.token()
        except ValueError as exc:  # read at every pull, so a rotated credential is picked up
            error, why = f"token: {exc}", ("no token", None)
        else:
            try:
                result = self._pull(source, token, turn)
            except PgError as exc:
                error, why = f"database: {exc}", None  # the office's problem, not the gate's
                self._drop_target()  # reconnect next time
            except PullError as exc:
                error = str(exc)
                if isinstance(exc, PinError):
                    why = (exc.why, exc.kiosk_id)
            except Exception as exc:  # a bug must not stop the other kiosks: shown, not lost
                log.exception("pull failed unexpectedly", extra={"url": source.url})
                error = f"{type(exc).__name__}: {exc}"
        # A failed pull (a refusal, a log wiped: not the database's own failure) shows what
        # the database holds of the gate all the same, not an id and seq it never learned.
        held = self._held(source.url) if result is None and why is not None else None
        elapsed_ms = (self._monotonic() - started) * 1000
        snapshot = self._settle(source.url, result, turn, elapsed_ms, error, held)
        self._lines[source.url]["pull"].said(snapshot.last_error if result is None else None)
        self._record_gates(source.url, ("ok", None) if result is not None else why)
        if why is not None:  # not when the database failed: the beat would wait on it again
            self._beat()
        return snapshot

    def _pull(self, source: KioskSource, token: str, turn: Turn | None) -> PullResult:
        """``pull_once``'s pull, its client the latest trust's (``TrustedClient``); then the
        lists' record and the gate's reports, when due."""
        with self._http.use() as client:
            puller = Puller(
                self._target(),
                client=client,
                page_size=self.config.page_size,
                backoff=REQUEST_BACKOFF,
                attempts=self.config.retries,
                sleep=self._backoff_wait,
                request_deadline_s=self.request_deadline_s,
                monotonic=self._monotonic,
                stop=self._stop,
                max_page_bytes=page_bytes(self.config.max_concurrent),
                fields=self.config.personal_fields,
                on_page=lambda: self._beat(pulling=True),
                turn_over=turn,
            )
            result = puller.pull(source.url, token)  # the client and target stay open
        self._record_lists()
        # A pull its turn ended short of its end goes on at its next turn: the gate's
        # reports (up to a week's requests on a slow link) wait for its real end, not
        # the waiting gate; one whose turn ended at its last page is at its end.
        if not self._stop.is_set() and not yielded(result, turn):
            self._reports(source, token, result.url, result.kiosk_id)
        return result

    def _settle(
        self,
        url: str,
        result: PullResult | None,
        turn: Turn | None,
        elapsed_ms: float,
        error: str | None,
        held: tuple[str, int] | None,
    ) -> KioskStatus:
        """Record a pull's outcome in ``url``'s status (``result`` None: it failed with
        ``error``; ``held``: what the database holds of the gate, ``_held``); a copy of it."""
        now = _iso(self.clock.now())
        with self._lock:
            status = self._status[url]
            status.pulls += 1
            status.last_pull_at = now
            status.last_pull_ms = round(elapsed_ms, 1)
            if result is not None:
                status.kiosk_id = result.kiosk_id or status.kiosk_id
                if result.kiosk_id is not None:
                    status.last_seq = result.last_seq
                head = result.head_seq or None
                status.head_seq = max(head, status.last_seq) if head is not None else None
                status.lag_events = (
                    status.head_seq - status.last_seq if status.head_seq is not None else None
                )
                status.state = "yielded" if yielded(result, turn) else "ok"
                status.last_success_at = now
                status.consecutive_failures = 0
                status.events_inserted += result.inserted
            else:
                status.state = "error"
                status.errors += 1
                status.consecutive_failures += 1
                status.last_error = clipped(error or "unknown error")
                status.last_error_at = now
                if held is not None:
                    status.kiosk_id, status.last_seq = held
                    if status.head_seq is not None:
                        status.head_seq = max(status.head_seq, status.last_seq)
                        status.lag_events = status.head_seq - status.last_seq
            snapshot = KioskStatus(**status.as_dict())
        return snapshot

    def _held(self, url: str) -> tuple[str, int] | None:
        """The kiosk id ``url`` is pinned to in the office's database and the last seq held of
        it; None when none is pinned, or the database fails (shown by the next pull)."""
        try:
            target = self._target()
            kiosk_id = target.source_kiosk(normalise_url(url))
            return None if kiosk_id is None else (kiosk_id, target.tail(kiosk_id)[0])
        except ValueError:  # a URL no pull reads: the pull said so
            return None
        except PgError:
            self._drop_target()
            return None

    def _expected_s(self) -> float | None:
        """Within how long this run's next beat is expected: the next ``--once`` run (``run_once``:
        its ``--every``, or None: learned from the spacing of the runs), else the next pull that
        ends, at most ``RUN_BEAT_S`` apart: the soonest pause before a gate's next pull
        (``delay_after``: the poll interval, a failing gate's longer)."""
        if self._once:
            return self._once_every_s
        with self._lock:
            pauses = [self.delay_after(status) for status in self._status.values()]
        return max(RUN_BEAT_S, min(pauses, default=self.config.poll_interval_s))

    def _beat(self, *, pulling: bool = False) -> None:
        """Keep in the database that this run is pulling (``PgTarget.record_run``), at most
        every ``RUN_BEAT_S``, whatever the gates answered, and within how long it expects its
        next beat (``_expected_s``): the district report tells the minutes it was not (the
        office heard from nobody) from gates down, and a gap on its cadence from either.
        ``pulling``: a page of a pull under way was committed (a first pull of a year of
        events is hours of pages: the collector is pulling, not down); a beat that fails then
        is tried again a minute on, the pull's connection left to the pull (its next page
        tells whether the database is gone; one found lost is opened again by the next
        statement, ``PgTarget``: the pull goes on). It never raises: any failure is logged and the
        pull goes on (a beat is the collector's record, not the gate's events). The run's first
        beat tried says how long before it the run began (``age_s``: its start, and its spell's
        beginning); once that one was lost, its first kept says none: nothing recorded the
        time between, the collector down to the district report."""
        now = self._monotonic()
        with self._lock:
            if self._beat_at is not None and now - self._beat_at < RUN_BEAT_S:
                return
            self._beat_at, first = now, not self._begun
            backdates, self._backdates = self._backdates, self._backdates and not first
        try:
            age_s = now - self._run_began if first and backdates else 0.0
            self._target().record_run(self._run_id, self._expected_s(), first=first, age_s=age_s)
            with self._lock:
                self._begun = True
        except Exception as exc:  # noqa: BLE001 - a bug in the beat must not fail the pull
            error = str(exc) if isinstance(exc, PgError) else f"{type(exc).__name__}: {exc}"
            log.warning("collector run not kept", extra={"error": clipped(error)})
            if not pulling:
                with self._lock:
                    self._beat_at = None  # again at the next pull
                if isinstance(exc, PgError):
                    self._drop_target()

    def _record_gates(self, url: str, why: tuple[str, str | None] | None) -> None:
        """Keep in the database the configured gates and how each fares (``GATES_KEY``), when
        that changed: the district report names every one without figures, and why, never
        leaving one out (read as a quiet gate). ``why`` None: unchanged (a database error)."""
        with self._gates_lock:
            if why is not None:
                self._why[url] = why
            with self._lock:
                ids = {u: s.kiosk_id for u, s in self._status.items()}
            gates = [
                {
                    "url": k.url,
                    "name": k.name,
                    "kiosk_id": ids.get(k.url) or self._why.get(k.url, ("", None))[1],
                    "why": self._why.get(k.url, ("never pulled", None))[0],
                }
                for k in self.config.kiosks
            ]
            if gates == self._gates_recorded:
                return
            try:
                self._target().record_gates(gates)
            except PgError as exc:
                log.warning("gate list not kept", extra={"error": str(exc)})
                self._drop_target()
                return
            self._gates_recorded = gates

    def _reports(self, source: KioskSource, token: str, base: str, kiosk_id: str | None) -> None:
        """The gate's ledger figures, when due; a failure is the status's ``report_error``
        (the events pulled stay pulled). A database failure is raised like the pull's."""
        now = self._monotonic()
        last = self._reported.get(source.url)
        if kiosk_id is None or (last is not None and now - last < self.report_interval_s):
            return
        self._reported[source.url] = now
        error: str | None = None
        day, failure = None, None
        try:
            with self._http.use() as client:
                got = collect_gate_reports(
                    client,
                    self._target(),
                    base,
                    kiosk_id,
                    token,
                    deadline_s=self.request_deadline_s,
                    now=self.clock.now() if self.clock.synced() else None,
                )
            day, failure = got.today, got.failed  # today kept, also beside a past day's error
            error = None if got.error is None else clipped(got.error)
        except PgError:
            raise
        except PullError as exc:
            error, failure = clipped(str(exc)), exc
        self._hold_reports(source.url, failure)
        undeclared = self._undeclared(kiosk_id, day) if day is not None else None
        stamp = _iso(self.clock.now())
        with self._lock:
            status = self._status[source.url]
            status.report_error = error
            if day is not None:
                status.report_day = day.isoformat()
                status.last_report_at = stamp
                status.compound_error = undeclared
        self._lines[source.url]["report"].said(error)
        if day is not None:
            self._lines[source.url]["compound"].said(undeclared)

    def _hold_reports(self, url: str, failure: PullError | None) -> None:
        """After a gate's 429 with ``Retry-After`` (``GateRefusal.retry_after_s``, bounded),
        its reports are not asked again before the time it said, however short the report
        interval; the events' pull is not held by it (it has its own backoff)."""
        wait = failure.retry_after_s if isinstance(failure, GateRefusal) else None
        if wait is not None:  # the next ask is a report interval after the "last" one
            held = self._monotonic() + wait - self.report_interval_s
            self._reported[url] = max(self._reported[url], held)

    def _record_lists(self) -> None:
        """Keep in the database what the published lists are, once a publish: the compounds
        they declare (``PgTarget.record_compounds``: the district report's) and the highest
        version served (``PgTarget.record_served``: ``kiosk fleet publish`` goes on above it,
        also when the bundle's folder is restored from a backup)."""
        if self.bundle is None or self.compound_bundle is None:
            return
        try:
            served = (self.bundle.get(), self.compound_bundle.get())
        except OSError:  # unreadable now: the pull stands, and /lists/bundle says so
            return
        stamp = tuple(got[1] for got in served if got is not None)
        with self._lock:
            if stamp == self._lists_recorded:
                return
        declared = declared_compounds(self.bundle.path)
        target = self._target()
        target.record_compounds(declared)
        version = max((got[2] for got in served if got is not None), default=0)
        if version:
            target.record_served(version)
        highest = target.served()
        with self._lock:
            self._lists_recorded, self._declared = stamp, declared
            self._served_high = highest

    def _undeclared(self, kiosk_id: str, day: date) -> str | None:
        """``undeclared compound eats from gate gate-3`` when the gate reports a compound the
        published lists do not declare; None otherwise."""
        with self._lock:
            declared = self._declared
        reported = self._target().reported_compound(kiosk_id, day)
        if declared is None or reported is None or same_text(reported) in declared:
            return None
        return f"undeclared compound {same_text(reported)} from gate {kiosk_id}"

    def run_once(self, every_s: float | None = None) -> list[KioskStatus]:
        """Pull every kiosk to its end, ``max_concurrent`` at a time, in fair turns (``Turn``:
        a pull past its share while a gate waits is queued again behind it); run again within
        ``every_s`` (``kiosk collect --once`` from cron: its beats say so, ``_beat``), None: as
        often as the runs before it began (``office.pg.learned_expect``; the hour until that
        is known)."""
        self._once, self._once_every_s = True, every_s
        self._began()
        statuses: dict[str, KioskStatus] = {}
        with ThreadPoolExecutor(self.config.max_concurrent, "kiosk-collect") as pool:
            turns = {self._queue(pool, source): source for source in self.config.kiosks}
            while turns:
                done, _ = wait(turns, return_when=FIRST_COMPLETED)
                for future in done:
                    source = turns.pop(future)
                    status, more = future.result()
                    if more:  # its turn over, behind the gates waiting
                        turns[self._queue(pool, source)] = source
                    else:
                        statuses[source.url] = status
        return [statuses[source.url] for source in self.config.kiosks]

    def _began(self) -> None:
        """This run begins now, unless a beat of it was kept (its start is said once)."""
        with self._lock:
            if not self._begun:
                self._run_began = self._monotonic()

    def _queue(
        self, pool: ThreadPoolExecutor, source: KioskSource
    ) -> Future[tuple[KioskStatus, bool]]:
        """``source`` handed to the pool, waiting for a slot (``_gate_waits``)."""
        with self._lock:
            self._queued.add(source.url)
        return pool.submit(self._turn_and_release, source)

    def _turn_and_release(self, source: KioskSource) -> tuple[KioskStatus, bool]:
        try:
            return self._turn(source)
        finally:
            self._drop_target()

    def _turn(self, source: KioskSource) -> tuple[KioskStatus, bool]:
        """``source``'s turn of a slot (``Turn``), no longer waiting: its status, and whether
        its turn ended with more to pull (it is queued again at once)."""
        with self._lock:
            self._queued.discard(source.url)
        turn = Turn(self._monotonic, self.turn_s, self._gate_waits)
        status = self.pull_once(source, turn)
        return status, status.state == "yielded"

    # -- the service ------------------------------------------------------------------------

    def delay_after(self, status: KioskStatus) -> float:
        """Pause before this kiosk's next pull: the interval, doubled per failure, capped."""
        if status.consecutive_failures == 0:  # the interval, even one above the error cap
            return self.config.poll_interval_s
        return self._poll_backoff.delay(status.consecutive_failures)

    def start(self) -> None:
        """Start pulling every kiosk on its schedule (returns at once)."""
        self._stop.clear()
        self._once, self._once_every_s = False, None
        self._began()
        self._pool = ThreadPoolExecutor(self.config.max_concurrent, "kiosk-collect")
        self._scheduler = threading.Thread(
            target=self._schedule, name="kiosk-collect-scheduler", daemon=True
        )
        self._scheduler.start()
        self._purger = threading.Thread(
            target=self.retention.loop, args=(self._stop,), name="kiosk-collect-purge", daemon=True
        )
        self._purger.start()

    def _schedule(self) -> None:
        assert self._pool is not None
        due = {k.url: 0.0 for k in self.config.kiosks}
        running: set[str] = set()
        sources = {k.url: k for k in self.config.kiosks}

        def job(source: KioskSource) -> None:
            try:
                status, more = self._turn(source)
                delay = 0.0 if more else self.delay_after(status)  # behind the gates waiting
            except BaseException:  # pragma: no cover - pull_once does not raise
                delay = self.config.error_backoff_max_s
            with self._lock:
                due[source.url] = self._monotonic() + delay
                running.discard(source.url)
            self._wake.set()

        while not self._stop.is_set():
            now = self._monotonic()
            with self._lock:
                ready = [u for u, t in due.items() if t <= now and u not in running]
                running.update(ready)
                self._queued.update(ready)
                waiting = [t for u, t in due.items() if u not in running]
            for url in ready:
                try:
                    self._pool.submit(job, sources[url])
                except RuntimeError:  # the pool is shutting down
                    return
            timeout = max(0.01, min(waiting, default=now + 1.0) - now)
            self._wake.wait(timeout)
            self._wake.clear()

    def _gate_waits(self) -> bool:
        """Whether a gate handed to the pool waits for a slot (a pull past its ``Turn`` then
        yields its own)."""
        with self._lock:
            return bool(self._queued)

    @property
    def client(self) -> httpx.Client:
        """The client the next pull uses while the certificates trusted stay the same."""
        return self._http.current

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop scheduling, let pulls in flight finish their page, close connections."""
        self._stop.set()
        self._wake.set()
        for thread in (self._scheduler, self._purger):
            if thread is not None:
                thread.join(timeout_s)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            targets, self._targets = list(self._targets), []
        for target in targets:
            target.close()
        self._http.close()

    # -- status -------------------------------------------------------------------------------

    def statuses(self) -> list[KioskStatus]:
        with self._lock:
            return [KioskStatus(**s.as_dict()) for s in self._status.values()]

    def bundle_refusal(
        self, authorization: str | None, *, lan: bool, client: str = ""
    ) -> tuple[int, str] | None:
        """Why a request with this ``Authorization`` may not have the list bundle: ``(status,
        message)``, or ``None`` to serve it. With ``lists_token_env``: only ``Bearer <token>``,
        compared in constant time, read at each request (a rotated token is picked up); named
        but unset: nobody. Without one: served on loopback only; on the LAN (``lan``) refused,
        since the bundle names quarantined households and people. Past ``BUNDLE_GUESSES``
        wrong tokens from the ``client`` address within a minute it waits (429, whatever it
        presents): the token is the operator's own string, maybe a weak one."""
        env = self.config.lists_token_env
        if env is None:
            return (403, NO_LISTS_TOKEN) if lan else None
        if not self._guesses.waiting(client_key(client)).allowed:
            return 429, "too many wrong list tokens from this address; wait"
        expected = os.environ.get(env, "").strip()
        presented = (authorization or "").encode("utf-8", "replace")
        if expected and hmac.compare_digest(presented, f"Bearer {expected}".encode()):
            return None
        self._guesses.take(client_key(client))
        return 401, "the list bundle needs the gates' bearer token ([fleet] lists_token_env)"

    def bundle_wait_s(self, client: str) -> str:
        """``Retry-After`` for an address told 429 by ``bundle_refusal``."""
        return self._guesses.waiting(client_key(client)).retry_after_header

    def bundle_notice(self, lan: bool) -> str | None:
        """One line for the start of ``kiosk collect`` when the bundle is refused to every
        gate (the pulls go on); ``None`` when it can be served."""
        if self.bundle is None:
            return None
        env = self.config.lists_token_env
        if env is None and lan:
            return f"/lists/bundle is refused on the LAN: {NO_LISTS_TOKEN}"
        if env is not None and not os.environ.get(env, "").strip():
            return f"/lists/bundle is refused to every gate: {env} (lists_token_env) is not set"
        return None

    def bundle_for(self, query: str) -> tuple[bytes, str, int] | None:
        """The bundle ``/lists/bundle?{query}`` answers: the one naming each entry's compound
        to a gate that names its own (``compound=``), the plain one to any other (a gate of an
        older release refuses a key it does not know) and whenever the plain one is newer
        (published by an older ``kiosk fleet publish``, which does not write the other)."""
        plain = self.bundle.get() if self.bundle is not None else None
        if self.compound_bundle is None or not _asks_compound(query):
            return plain
        tagged = self.compound_bundle.get()
        if tagged is None or (plain is not None and plain[2] > tagged[2]):
            return plain
        return tagged

    def status_view(
        self, authorization: str | None, client: str
    ) -> tuple[bool, tuple[int, str] | None]:
        """Whether a caller of ``/``, ``/status.json`` or ``/metrics`` gets the whole status
        (``WITHHELD`` included), and a refusal ``(status, message)`` to answer instead. The
        whole is this host's (a loopback ``client``) and the ``status_token_env`` token's; a
        caller presenting no token is never counted; a wrong one is counted with the wrong
        list tokens of its address (past ``BUNDLE_GUESSES`` a minute: 429, whatever it
        presents)."""
        if authorization is None:
            return from_this_host(client), None
        if not self._guesses.waiting(client_key(client)).allowed:
            return False, (429, "too many wrong tokens from this address; wait")
        env = self.config.status_token_env
        expected = os.environ.get(env, "").strip() if env else ""
        presented = authorization.encode("utf-8", "replace")
        if expected and hmac.compare_digest(presented, f"Bearer {expected}".encode()):
            return True, None
        self._guesses.take(client_key(client))
        return False, (401, "not the status token (status_token_env); without one: the public part")

    def published(self) -> tuple[tuple[bytes, str, int] | None, str | None]:
        """The plain bundle the file holds (None: none published), and why the file cannot
        be read (None when it can): the collector's user not in the bundle's group."""
        if self.bundle is None:
            return None, None
        try:
            return self.bundle.get(), None
        except OSError as exc:
            return None, self.bundle_unreadable(exc)

    def bundle_unreadable(self, exc: OSError) -> str:
        """Why the bundle file cannot be read, in words; logged when it changes (every gate
        asks every few minutes)."""
        why = unreadable_bundle(self.config.lists_bundle_file or "", exc)
        with self._lock:
            told, self._unreadable_told = self._unreadable_told, why
        if told != why:
            log.warning("%s", why)
        return why

    def status_json(self, whole: bool = True) -> dict[str, Any]:
        """The status; ``whole=False``: without ``WITHHELD``, named in ``withheld``."""
        bundle, unreadable = self.published()
        status: dict[str, Any] = {
            "database": redact_dsn(self.dsn),
            "now": _iso(self.clock.now()),
            "poll_interval_s": self.config.poll_interval_s,
            "lists_bundle_version": bundle[2] if bundle else None,
            "lists_bundle_notice": unreadable or self._bundle_behind(bundle[2] if bundle else None),
            "retention": self.retention.status(),
            "kiosks": [s.as_dict() for s in self.statuses()],
        }
        if whole:
            return status
        del status["database"]
        status["retention"] = {k: v for k, v in status["retention"].items() if k != "error"}
        status["kiosks"] = [
            {k: v for k, v in kiosk.items() if k not in _WITHHELD_KIOSK}
            for kiosk in status["kiosks"]
        ]
        return status | {"withheld": list(WITHHELD)}

    def _bundle_behind(self, version: int | None) -> str | None:
        """Why the gates refuse the bundle file: it holds a version below one served before
        (restored from a backup); ``None`` otherwise."""
        with self._lock:
            high = self._served_high
        if version is None or version >= high:
            return None
        return (
            f"the bundle file holds version {version}, below version {high} served to the gates"
            f" (restored from a backup?): they keep version {high}'s lists and refuse this one"
            " until a publish above it"
        )

    def metrics_text(self, whole: bool = True) -> str:
        """Prometheus text; ``whole=False``: a gate known by neither name nor id yet is
        labelled by its place in the config (``#3``), not its URL."""
        statuses = self.statuses()
        labels = [s.label if whole else _public_label(s, i) for i, s in enumerate(statuses)]
        lines: list[str] = []

        def family(name: str, kind: str, help_: str, value: Callable[[KioskStatus], Any]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for s, label in zip(statuses, labels, strict=True):
                v = value(s)
                if v is not None:
                    lines.append(f'{name}{{kiosk="{_label(label)}"}} {v}')

        family("kiosk_collect_up", "gauge", "1 if the last pull succeeded.",
               lambda s: int(s.state in ("ok", "yielded")))  # fmt: skip
        family("kiosk_collect_last_seq", "gauge", "Highest seq held centrally.",
               lambda s: s.last_seq)  # fmt: skip
        family("kiosk_collect_head_seq", "gauge", "Highest seq the kiosk reported.",
               lambda s: s.head_seq)  # fmt: skip
        family("kiosk_collect_lag_events", "gauge", "Events the kiosk has that are not"
               " central yet (as of the last pull).", lambda s: s.lag_events)  # fmt: skip
        family("kiosk_collect_last_success_timestamp_seconds", "gauge",
               "Unix time of the last successful pull.",
               lambda s: _epoch(s.last_success_at))  # fmt: skip
        family("kiosk_collect_consecutive_failures", "gauge", "Failed pulls in a row.",
               lambda s: s.consecutive_failures)  # fmt: skip
        family("kiosk_collect_pulls_total", "counter", "Pulls attempted.",
               lambda s: s.pulls)  # fmt: skip
        family("kiosk_collect_errors_total", "counter", "Pulls failed.",
               lambda s: s.errors)  # fmt: skip
        family("kiosk_collect_events_inserted_total", "counter",
               "Events written to the central database by this process.",
               lambda s: s.events_inserted)  # fmt: skip
        bundle, _unreadable = self.published()
        if bundle is not None:
            lines.append("# HELP kiosk_collect_lists_bundle_version Published list bundle.")
            lines.append("# TYPE kiosk_collect_lists_bundle_version gauge")
            lines.append(f"kiosk_collect_lists_bundle_version {bundle[2]}")
        lines.append("# HELP kiosk_collect_events_purged_total Events whose personal fields"
                     " this process nulled (retention_days).")  # fmt: skip
        lines.append("# TYPE kiosk_collect_events_purged_total counter")
        purged = self.retention.status()["events_purged_total"]
        lines.append(f"kiosk_collect_events_purged_total {purged}")
        return "\n".join(lines) + "\n"

    def status_html(self, whole: bool = True) -> str:
        """The page; ``whole=False``: without ``WITHHELD`` (said on the page)."""
        bundle, unreadable = self.published()
        behind = unreadable or self._bundle_behind(bundle[2] if bundle else None)
        notice = f'<p class="error">{html.escape(behind)}</p>' if behind else ""
        rows = []
        for i, s in enumerate(self.statuses()):
            shown = s if whole else _public(s)
            cells = (
                s.label if whole else _public_label(s, i), s.kiosk_id or "", s.state,
                s.last_seq, s.head_seq, s.lag_events, s.last_success_at or "never",
                s.consecutive_failures, shown.last_error or "",
                shown.report_error or s.report_day or "", shown.compound_error or "",
            )  # fmt: skip
            tds = "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in cells)
            rows.append(f'<tr class="{html.escape(s.state)}">{tds}</tr>')
        head = "".join(
            f"<th>{h}</th>"
            for h in ("kiosk", "id", "state", "last seq", "head seq", "lag", "last success",
                      "failures", "last error", "ledgers", "compound")
        )  # fmt: skip
        return (
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>"
            "<title>kiosk collect</title><style>body{font:14px sans-serif}"
            "td,th{padding:2px 8px;text-align:left}.error{background:#fdd}</style>"
            f"<h1>kiosk collect</h1><p>{html.escape(_database_line(self.dsn, whole))}</p>"
            f"{notice}"
            f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        )


def _public(status: KioskStatus) -> KioskStatus:
    return KioskStatus(**{k: v for k, v in status.as_dict().items() if k not in _WITHHELD_KIOSK}
                       | {"url": ""})  # fmt: skip


def _public_label(status: KioskStatus, index: int) -> str:
    return status.name or status.kiosk_id or f"#{index + 1}"


def _database_line(dsn: str, whole: bool) -> str:
    if whole:
        return f"database {redact_dsn(dsn)}"
    return (
        "the gates' URLs and errors and the database are shown on this host or with the"
        " status token (status_token_env)"
    )


def from_this_host(client: str) -> bool:
    """Whether a caller's address is this host's own (loopback, also as ``::ffff:127.0.0.1``)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def _epoch(iso: str | None) -> float | None:
    return None if iso is None else round(datetime.fromisoformat(iso).timestamp(), 3)


#: A connection to the status port that has not sent a whole request (or the next one) within
#: this long is closed: each holds a thread, and the port is on the LAN for the gates' lists.
STATUS_TIMEOUT_S = 10.0
#: How often the status server's loop looks whether it was asked to stop (the standard
#: library's 0.5 s made every stop, ``kiosk collect`` on Ctrl-C too, wait up to half a second).
STATUS_POLL_S = 0.05


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address the server is bound to) is reachable from this host only;
    a name other than ``localhost``, or ``0.0.0.0``, is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Wrong ``/lists/bundle`` tokens one address may present in a minute (then 429).
BUNDLE_GUESSES = 10

#: Connections the status server serves at once; one more is answered 503 and closed at once.
STATUS_MAX_CONNECTIONS = 64
#: Of those, what one client address may hold (an IPv6 /64 together: half of them), so one
#: machine on the LAN holding idle connections leaves the port to the gates.
STATUS_MAX_PER_CLIENT = 16
#: ``/lists/bundle``'s answer while the bundle file cannot be read (the status says why).
_UNREADABLE = b'{"detail":"the list bundle cannot be read by the collector now"}'
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"


class _BoundedServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with at most ``max_connections`` threads, at most
    ``max_per_client`` of them one client address's (``ClientSlots``): past them a
    connection gets a 503 without a thread (nothing of it is read). It listens with the
    project's ``ACCEPT_BACKLOG`` (``socketserver``'s 5 made a burst of gates wait seconds)."""

    daemon_threads = True
    request_queue_size = ACCEPT_BACKLOG

    def __init__(
        self, address: tuple[str, int], handler: Any, max_connections: int, max_per_client: int
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        per_client = min(max_per_client, max_connections)
        self._clients = ClientSlots(per_client, max(per_client, max_connections // 2))

    def process_request(self, request: Any, client_address: Any) -> None:
        client = str(client_address[0])
        if not self._clients.take(client):
            self._busy(request)
            return
        if not self._slots.acquire(blocking=False):
            self._clients.give(client)
            self._busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(client)
            raise

    def _busy(self, request: Any) -> None:
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(_BUSY)
        self.shutdown_request(request)

    def _release(self, client: str) -> None:
        self._slots.release()
        self._clients.give(client)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(str(client_address[0]))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone before its answer was written (a tab closed, a probe timed out) is
        not the collector's fault: no line. Anything else is logged with its traceback
        (``socketserver`` printed it to stderr, outside the log's format and level)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.error("status port: answering %s failed", client_address[0], exc_info=True)


class StatusServer:
    """The collector's own small HTTP server (stdlib, one thread per connection, at most
    ``max_connections`` of them; a request not read whole within ``timeout_s``, however its
    bytes trickle in, is cut off)."""

    def __init__(
        self,
        collector: Collector,
        host: str,
        port: int,
        timeout_s: float = STATUS_TIMEOUT_S,
        max_connections: int = STATUS_MAX_CONNECTIONS,
        allowed_hosts: tuple[str, ...] = (),
        max_per_client: int = STATUS_MAX_PER_CLIENT,
    ) -> None:
        self.collector = collector
        handler = _handler_for(collector, own_host_names((*allowed_hosts, host)))
        handler.timeout = timeout_s
        self.httpd = _BoundedServer((host, port), handler, max_connections, max_per_client)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def lan(self) -> bool:
        """Listening on an address other hosts can reach (the bundle then needs a token)."""
        return _on_lan(self.httpd)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": STATUS_POLL_S},
            name="kiosk-collect-http",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _asks_compound(query: str) -> bool:
    """Whether a gate's query names its compound (``compound=ID``); read at most 16 fields
    of it (the request line is the LAN's), anything unreadable is the plain question."""
    try:
        return "compound" in parse_qs(query[:2048], max_num_fields=16)
    except ValueError:
        return False


def _on_lan(server: BaseServer) -> bool:
    address = server.server_address  # (host, port) for the TCP server
    return not is_loopback(str(address[0] if isinstance(address, tuple) else address))


class _CutOffHandler(BaseHTTPRequestHandler):
    """The per-read timeout alone let a byte every few seconds hold the thread: the whole
    request must arrive within ``timeout`` (the answer's sendall has its own).

    A request line ``http.server`` refuses before it has read a version (``HTTP/2.0``,
    ``HTTP/1``) was answered as an HTTP/0.9 request is, a bare page without a status line,
    which a client or a monitor takes for no answer at all: every answer here has one."""

    default_request_version = "HTTP/1.0"

    def setup(self) -> None:
        super().setup()
        self._cutoff = threading.Timer(self.timeout or STATUS_TIMEOUT_S, self._cut_off)
        self._cutoff.daemon = True
        self._cutoff.start()

    def _cut_off(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def parse_request(self) -> bool:
        parsed = super().parse_request()  # reads the headers
        self._cutoff.cancel()
        return parsed

    def finish(self) -> None:
        self._cutoff.cancel()
        super().finish()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """``http.server``'s own refusals of a request it cannot read: a version it does not
        speak is the asker's mistake (400), not a server fault (its 505)."""
        if code == HTTPStatus.HTTP_VERSION_NOT_SUPPORTED:
            code, message = HTTPStatus.BAD_REQUEST, "this port speaks HTTP/1.0 and HTTP/1.1 only"
        super().send_error(code, message, explain)

    def _send(
        self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, status: int, message: str, retry_after: Callable[[], str]) -> None:
        """A 401 (``WWW-Authenticate: Bearer``), 429 (``Retry-After``) or other refusal."""
        extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status == 429:
            extra = {"Retry-After": retry_after()}
        self._send(status, json.dumps({"detail": message}).encode(), "application/json", extra)


#: A ``Host`` the status port does not answer to (``kiosk.hosts``: DNS rebinding).
_MISDIRECTED = (
    b"this status port does not answer to that host name; if it is the office's own,"
    b" add it to allowed_hosts (docs/network.md)\n"
)


def _handler_for(collector: Collector, names: frozenset[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(_CutOffHandler):
        server_version = "kiosk-collect"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the office's access log is not ours to keep

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def send_error(
            self, code: int, message: str | None = None, explain: str | None = None
        ) -> None:
            """``http.server`` answers a method without a ``do_<METHOD>`` here with 501, any
            method the asker sends (POST, TRACE, CONNECT, PROPFIND, an invented one, ``get``:
            methods are case-sensitive): the asker's mistake (405), not a server fault, as
            this port only answers reads. A refusal, not a ``__getattr__`` answering every
            ``do_`` name: that made every attribute of the handler one to mypy."""
            if code != HTTPStatus.NOT_IMPLEMENTED:
                super().send_error(code, message, explain)
                return
            body = b'{"detail":"this port answers GET and HEAD only"}'
            self._send(405, body, "application/json", {"Allow": "GET, HEAD"})

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?", 1)[0]
            host = self.headers.get("Host")
            if host and not host_is_ours(host, names):
                self._send(421, _MISDIRECTED, "text/plain; charset=utf-8")
            elif path in ("/", "/status.json", "/metrics"):
                self._status(path)
            elif path == "/lists/bundle":
                self._bundle()
            else:
                self._send(404, b'{"detail":"not found"}', "application/json")

        def _status(self, path: str) -> None:
            client = str(self.client_address[0])
            whole, refusal = collector.status_view(self.headers.get("Authorization"), client)
            if refusal is not None:
                self._refuse(*refusal, lambda: collector.bundle_wait_s(client))
            elif path == "/":
                body = collector.status_html(whole).encode()
                self._send(200, body, "text/html; charset=utf-8")
            elif path == "/status.json":
                body = json.dumps(collector.status_json(whole), indent=1).encode()
                self._send(200, body, "application/json")
            else:
                body = collector.metrics_text(whole).encode()
                self._send(200, body, "text/plain; version=0.0.4")

        def _bundle(self) -> None:
            client = str(self.client_address[0])
            refusal = collector.bundle_refusal(
                self.headers.get("Authorization"), lan=_on_lan(self.server), client=client
            )
            if refusal is not None:
                self._refuse(*refusal, lambda: collector.bundle_wait_s(client))
                return
            try:
                got = collector.bundle_for(self.path.partition("?")[2])
            except OSError as exc:  # the bundle's group without this user (docs/fleet.md)
                collector.bundle_unreadable(exc)
                self._send(503, _UNREADABLE, "application/json")
                return
            if got is None:
                self._send(404, b'{"detail":"no list bundle published"}', "application/json")
                return
            body, etag, _version = got
            headers = {"ETag": etag, "Cache-Control": "no-cache"}
            match = [t.strip() for t in self.headers.get("If-None-Match", "").split(",")]
            if etag in match or "*" in match:
                self.send_response(304)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                return
            self._send(200, body, "application/json", headers)

    return Handler
