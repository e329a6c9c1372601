"""Retention: personal data is kept only as long as needed (PIPL Art. 19/47, GDPR Art. 5).

``purge(store, older_than_days, now)`` nulls the personal fields (``pass_id``, ``household``,
``holder``, ``person``) of every event older than the cutoff, and the ``detail`` of audit
rows, and stamps ``purged_at`` (``kiosk.store.purge_personal``: the cut is made in ``seq``
order up to the last clock-synced row older than the cutoff, so rows stamped 1970 before NTP
synced are not missed; inside the outing quota's look-back the households of passing exits
are kept until it has passed them, ``quota_hold``), and
the personal fields of the ledgers around the gate: returnees
whose observation ended and closed household service requests (``kiosk.ledgers``), and
ended quarantine entries and household observation dates of the lists, and revocations: their
reason with the retention window, the row once the revoked pass expired
(``kiosk.lists.purge_revocations``: never while the pass could still open the gate). Before
that it freezes the daily aggregates of every complete day (``kiosk.stats.freeze_days``), so
the daily reports of purged days stay exactly what they were. The row hash covers
``personal_digest`` and not the personal fields themselves (``kiosk.hashchain``), so the
chain keeps verifying after a purge; the salt of a day none of whose rows holds personal
fields any more is then deleted (``kiosk.store.shred_salts``), so the digests left cannot be
tested against guesses. Every purge that changed something writes an audit row (who,
cutoff, how many; a batched purge two, and one per batch between: below); one that found
nothing writes none (an idle gate's hourly purges once added 8,760 rows a year to an audit
kept for ever), and every run is recorded in ``meta`` (``last_run``, in the health report).
A busy gate's did the same, each nulling a few rows: a purge row of a day or more records its
``reach`` (the cutoff of a purge at the end of its local day), and a later single-batch purge
whose cutoff it covers writes none, its counts summed in ``meta`` (``pending_runs``) until
the next purge row takes them (``coalesced``): one row a day, every purged row covered.

The daemon runs it hourly with ``store.retention_days``; ``kiosk purge --older-than DAYS``
runs it by hand (systemd's ``kiosk-purge.timer`` calls that).

A purge never holds the log's writer for long: a passage waits for it and is denied past
``engine.store_deadline_ms``. A big backlog (a restored log, the first purge after weeks on
an unsynchronised clock or after an upgrade, retention lowered: 200,000 rows took seconds
in one transaction) is cut into batches, each its own short write transaction: the daily
reports ``FREEZE_DAYS`` days at a time, then the personal fields ``BATCH_ROWS`` rows at a
time (events first, then audit details; the rows found on a reader, the bounds read once
before the first: ``kiosk.store.purge_bounds``). The writer's queue is first come, first
served and the purge puts one batch on it at a time, so a passage queued while a batch runs
commits before the next. ``kiosk purge`` (another process: a passage of the daemon beside
it waits for the file's lock, not in the queue) pauses between batches for it
(``between_batches``). A purge that fits in one batch is one transaction, as ever.

The audit record of a batched purge: the first batch writes the purge's ``retention_purge``
row (``complete: false``, its cutoff and ``through_seq``, what that batch nulled): its
cutoff covers every later batch, so a purge killed between batches leaves no nulled row that
``verify`` cannot account for. Each later batch writes a ``retention_purge_batch`` row (what
it nulled; an ordinary audit row, purged in its turn). The last transaction writes the
totals as a second ``retention_purge`` row (``complete: true``, ``batches``), with the steps
that must see every field gone: the salts' deletion, the ledgers, the lists. A rerun after a
kill starts over with a new cutoff and nulls what is left, nothing twice. Every batch that
nulled something records the WAL wipe as owed.

A purge is dated by the wall clock, and a Pi has no RTC: booted without network its clock may
be weeks off (ahead after a bad fake-hwclock or a hand mis-set, and a clock ahead would purge
data the site must keep and freeze today's half day as complete). So a purge runs only on a
synchronised clock (``Clock.synced()``), and never on one earlier than the newest
synchronised stamp in the log (a clock set back; ``SET_BACK_TOLERANCE``). Otherwise it
raises ``ClockNotTrusted`` before touching anything; the next run (the daemon's within the
hour, the timer's the next night) tries again. ``trust_unsynced_clock`` is the operator's
explicit word that an unsynchronised clock is right (``kiosk purge --trust-clock``); the
audit row records it.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from kiosk.clock import Clock, ClockReading
from kiosk.config.policy import QuotaConfig
from kiosk.days import as_zone, aware_or_none, day_start, days_before
from kiosk.ledgers import purge_ledgers
from kiosk.lists import (
    mark_purged,
    purge_ended_observation,
    purge_ended_quarantine,
    purge_revocations,
)
from kiosk.ports import Store
from kiosk.privacy_held import purge_held
from kiosk.stats import freeze_days
from kiosk.store import (
    LAST_RUN_KEY,
    PURGE_ACTION,
    date_site_changes,
    format_ts,
    newest_synced_ts,
    purge_bounds,
    purge_candidates,
    purge_rows,
    release_held,
    shred_salts,
    site_changes_pending,
    waiting_for_clock,
)
from kiosk.wipe import WIPE_OWED_KEY, owe_wipe_at, owed_since, settle_wipe  # noqa: F401

log = logging.getLogger(__name__)

MAX_DAYS = 36500
#: How far the newest synchronised stamp may lie after a purge's ``now`` before the clock counts
#: as set back: a passage decided while the daemon's purge waits for the writer is stamped
#: after the ``now`` it read, and a clock a minute behind purges a minute less, nothing more.
SET_BACK_TOLERANCE = timedelta(seconds=60)
#: The most rows (events and audit details) a purge nulls in one write transaction: the
#: writer is held for one batch at a time, and a passage queued meanwhile commits before the
#: next (a few tens of milliseconds a batch on a Pi 4's SD card; a whole backlog of 200,000
#: rows in one transaction held it for seconds, past ``engine.store_deadline_ms``).
BATCH_ROWS = 1000
#: The most days whose daily reports a purge freezes in one write transaction (a busy day's
#: report is tens of milliseconds on a Pi; 60 days at once held the writer 3.4 s).
FREEZE_DAYS = 2
#: The audit action of each batch of a purge after its first (``retention_purge``) but
#: before its last (``retention_purge`` again, with the totals). An ordinary audit row: its
#: detail is purged in its turn, so a big backlog adds no lasting rows (``digest_attested``).
BATCH_ACTION = "retention_purge_batch"

#: Every table of the gate's database, with the personal data it holds (``""``: none) and
#: what prunes it: the registry docs/privacy.md's table of stores follows, row for row. A
#: table added without an entry here (and a row there) fails
#: ``tests/test_retention_registry.py``: personal data is kept only under a rule.
STORES: Mapping[str, tuple[str, str]] = {
    "events": ("pass id, household, holder, person", "kiosk.store.purge_personal"),
    "audit": ("detail", "kiosk.store.purge_personal"),
    "digest_salts": ("the key of a day's personal digests", "kiosk.store.shred_salts"),
    "meta": ("a log's old single salt", "kiosk.store.shred_salts"),
    "digest_attested": (
        "a household's keyed digest while a purge holds it for the quota",
        "kiosk.store.release_held (and a resident's forget)",
    ),
    "boot_clock": ("", "none: a boot's clock offset"),
    "boot_runs": ("", "none: where each boot's rows begin"),
    "decision_tally": ("", "none: counts"),
    "daily_aggregates": ("", "none: counts"),
    "list_revocations": ("pass id, reason", "kiosk.lists.purge_revocations"),
    "list_quarantine": ("household, holder, note", "kiosk.lists.purge_ended_quarantine"),
    "list_households": ("household, note, observation date", "kiosk.lists.purge_ended_observation"),
    "list_meta": ("", "none: the lists' versions and stamps"),
    "obs_people": ("name, household, phone, origin, note", "kiosk.observation.purge"),
    "obs_checks": ("daily temperatures", "kiosk.observation.purge"),
    "obs_status": ("", "none: a record's id, statuses, the manager's name"),
    "obs_acks": ("the days a returnee's fever was acknowledged", "kiosk.observation.purge"),
    "obs_corrections": (
        "the name, household and dates a returnee's record had before a correction",
        "kiosk.observation.purge",
    ),
    "service_requests": ("household, note", "kiosk.services.purge"),
    "peer_passages": ("pass id, household", "kiosk.peers.purge and the merge's trim"),
    "peer_revocations": (
        "pass id, a guard's name",
        "kiosk.peers.purge (a peer not heard from) and each page from that gate",
    ),
    "peer_quarantine": (
        "household, a person's name, a guard's name",
        "kiosk.peers.purge (a peer not heard from) and each page from that gate",
    ),
    "peer_cursors": ("", "none: the peers' addresses and positions"),
    "compound_households": ("households", "the next import of the compound map"),
    "resident_vehicles": ("plates, households", "the next import of the vehicle list"),
    "roster_shifts": ("", "none: staff records"),
    "handovers": ("", "none: staff records"),
    "guard_accounts": ("", "none: staff records"),
    "guard_sessions_revoked": ("", "none: staff records"),
    "api_tokens": ("", "none: staff records"),
    "token_pepper": ("", "none: a key"),
}


class PurgeStore(Store, Protocol):
    """The event log as retention uses it (``kiosk.store.EventLog``): the core's ``Store``
    (with ``submit_audited``) and the WAL wipe."""

    def wipe_wal(self) -> bool:
        """Truncate the WAL, where purged rows survive in their old form."""
        ...

    @property
    def clock(self) -> Clock:
        """The log's clock: whether its wall time is synchronised."""
        ...


class ClockNotTrusted(Exception):
    """The wall clock cannot date a purge: nothing was frozen, purged or audited.

    ``reason``: ``unsynchronised`` (no NTP confirmation; the operator may vouch for the clock
    with ``trust_unsynced_clock``) or ``set_back`` (earlier than a synchronised stamp already
    in the log: evidence that no one's word overrides)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: ``PurgeResult.audit``: its own purge row, the day's row covering it, no row.
AUDITED, PENDING, UNCHANGED = "audited", "pending", "unchanged"


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    events_purged: int
    days_frozen: tuple[date, ...]
    ledger_rows_purged: Mapping[str, int] = field(default_factory=dict)
    quarantine_entries_purged: int = 0
    #: Events past the cutoff by their stamp but kept: stamped while the clock was not
    #: synchronised, with no synchronised row after them that old yet.
    events_waiting_for_clock: int = 0
    #: False only when the operator vouched for an unsynchronised clock.
    clock_synced: bool = True
    #: Household ledger rows whose ended observation (``observation_until``) was emptied.
    household_observations_purged: int = 0
    #: Revocations deleted: their pass expired ``kiosk.lists.REVOCATION_MARGIN`` ago.
    revocations_purged: int = 0
    #: Revocations (older than the cutoff) whose free-text reason was emptied.
    revocation_reasons_purged: int = 0
    #: Digest salts deleted: of periods none of whose rows holds personal fields any more
    #: (``kiosk.store.shred_salts``), and the log's one legacy salt once none of its rows does.
    salts_shredded: int = 0
    #: Write transactions the purge took (``BATCH_ROWS``): 1 unless it had a backlog.
    batches: int = 1
    #: Held decisions' files (``held-events-*.ndjson``) emptied of their personal fields
    #: (``kiosk.privacy_held``).
    held_files_purged: int = 0
    #: The ``before-restore-<UTC>`` folders a restore left in the data dir (an old log,
    #: whole) removed: set aside before the cutoff (``kiosk.backup.purge_set_aside``).
    set_aside_removed: tuple[str, ...] = ()
    #: How the last transaction's changes were audited (not in ``as_dict``): ``AUDITED``
    #: (its own purge row), ``PENDING`` (the day's purge row covers them: their counts wait
    #: for the next purge row) or ``UNCHANGED`` (it changed nothing: no row).
    audit: str = AUDITED
    #: The outing quota's look-back held the cutoff back for the households of passing exits
    #: (``quota_hold``): kept from this time on, everything else purged by ``cutoff``.
    households_held_from: datetime | None = None

    def emptied(self) -> str:
        """What the purge emptied, store by store (counts only, no personal data); "" when
        nothing."""
        counts = {
            "events": self.events_purged,
            **{f"{table} rows": n for table, n in sorted(self.ledger_rows_purged.items())},
            "ended quarantine entries": self.quarantine_entries_purged,
            "ended household observations": self.household_observations_purged,
            "expired revocations": self.revocations_purged,
            "revocations' reasons": self.revocation_reasons_purged,
            "digest salts shredded": self.salts_shredded,
        }
        return ", ".join(f"{name} {n}" for name, n in counts.items() if n)

    def done_words(self) -> str:
        """The purge's last transaction, in the words of one that committed (a step after it
        failing): only what is true of its audit."""
        emptied = self.emptied()
        if self.audit == UNCHANGED or not emptied:
            return "the purge itself is done (there was nothing more to empty: no audit row)"
        if self.audit == PENDING:
            return (
                f"the purge itself is done (emptied: {emptied}; the day's purge row covers it,"
                " its counts are written with the next purge row)"
            )
        return f"the purge itself is done and audited (emptied: {emptied})"

    def as_dict(self) -> dict[str, Any]:
        held = self.households_held_from
        return {
            "cutoff": self.cutoff.isoformat(),
            "households_held_from": None if held is None else held.isoformat(),
            "events_purged": self.events_purged,
            "days_frozen": [d.isoformat() for d in self.days_frozen],
            "ledger_rows_purged": dict(self.ledger_rows_purged),
            "quarantine_entries_purged": self.quarantine_entries_purged,
            "events_waiting_for_clock": self.events_waiting_for_clock,
            "clock_synced": self.clock_synced,
            "household_observations_purged": self.household_observations_purged,
            "revocations_purged": self.revocations_purged,
            "revocation_reasons_purged": self.revocation_reasons_purged,
            "salts_shredded": self.salts_shredded,
            "batches": self.batches,
            "held_files_purged": self.held_files_purged,
            "set_aside_removed": list(self.set_aside_removed),
        }


def check_clock(store: PurgeStore, now: datetime, *, trust_unsynced_clock: bool = False) -> bool:
    """Whether ``now`` may date a purge of ``store``: raises ``ClockNotTrusted`` if not.
    Returns whether the clock is synchronised (False: the operator vouched for it)."""
    return judge_clock(
        now,
        store.clock.synced(),
        store.submit(newest_synced_ts),
        trust_unsynced_clock=trust_unsynced_clock,
    )


def judge_clock(
    now: datetime,
    synced: bool,
    newest: str | None,
    *,
    trust_unsynced_clock: bool = False,
    whose: str = "the wall clock",
    unsynced: str = "no NTP answer since boot; without an RTC it may be weeks off",
    newest_what: str = "the newest synchronised record in the log",
) -> bool:
    """The one rule whether a clock may date a purge, the kiosk's and the office's: it is
    synchronised (or the operator vouched for it), and ``now`` is not earlier than ``newest``
    (``format_ts``; what was written last by a clock to trust) beyond ``SET_BACK_TOLERANCE``.
    ``ClockNotTrusted`` if not; else whether it is synchronised."""
    if not synced and not trust_unsynced_clock:
        raise ClockNotTrusted(
            "unsynchronised",
            f"{whose} is not synchronised ({unsynced}), so it cannot date a purge",
        )
    if newest is not None and format_ts(now + SET_BACK_TOLERANCE) < newest:
        raise ClockNotTrusted(
            "set_back",
            f"{whose} ({format_ts(now)}) is earlier than {newest_what} ({newest}): it was set"
            " back, so it cannot date a purge",
        )
    return synced


def quota_hold(
    now: datetime, older_than_days: int, tz: ZoneInfo | str, quota_cfg: QuotaConfig | None
) -> datetime | None:
    """Where a purge at ``now`` with ``older_than_days`` keeps the households of the outings
    from (UTC), or None: the outing quota's look-back (``period_days`` days on the site's
    clock before ``now``, as the gate counts: ``kiosk.history.PassageHistory.exits_in_period``)
    when the cutoff lies inside it. The gate's history is rebuilt at start from those
    households: an outing's nulled there was no outing to a gate restarted, the household let
    out again. ``store.retention_days`` is at least ``period_days`` (the config's rule), but 2
    days of 24 hours are 49 hours on the site's clock across the autumn change, and ``kiosk
    purge --older-than`` takes 0. Only the household of a passing exit is kept (its direction,
    decision and flags are never purged): names, pass ids, the rest of the row, audit details
    and the ledgers go by the cutoff asked (``purge``)."""
    cutoff = (now - timedelta(days=older_than_days)).astimezone(UTC)
    look_back = quota_look_back(now, tz, quota_cfg)
    return look_back if look_back is not None and look_back < cutoff else None


def quota_look_back(
    now: datetime, tz: ZoneInfo | str, quota_cfg: QuotaConfig | None
) -> datetime | None:
    """The start (UTC) of the outing quota's look-back at ``now`` (``period_days`` days on the
    site's clock, as the gate counts), or None when the quota is off. What an earlier purge
    held for it goes once it has passed it (everything held, the quota off), whatever a
    purge's cutoff: the nightly one's lies far outside it (``purge``, ``release_held``)."""
    if quota_cfg is None or not quota_cfg.enabled:
        return None
    return days_before(now.astimezone(as_zone(tz)), quota_cfg.period_days).astimezone(UTC)


def _date_site_changes(store: PurgeStore) -> None:
    """Date the site's settings' changes a start recorded before NTP set the clock
    (``kiosk.store.date_site_changes``), the clock set now: a day is frozen by the settings
    in force on it."""
    if site_changes_pending(store.reader()):
        reading = ClockReading.take(store.clock)
        store.submit(lambda db: date_site_changes(db, reading, store.boot_id))


def purge(
    store: PurgeStore,
    older_than_days: int,
    now: datetime,
    *,
    tz: ZoneInfo | str = "UTC",
    quota_cfg: QuotaConfig | None = None,
    actor: str = "retention",
    trust_unsynced_clock: bool = False,
    between_batches: Callable[[], None] | None = None,
    held_dir: Path | None = None,
    froze: Callable[[list[date]], None] | None = None,
    after: Callable[[PurgeResult, str], None] | None = None,
) -> PurgeResult:
    """Delete personal fields of events older than ``older_than_days`` before ``now``.

    ``tz`` and ``quota_cfg`` are the site's, so frozen daily reports match the live ones.
    Idempotent: already purged rows are left as they are. ``ClockNotTrusted`` (nothing
    done) when ``store``'s clock is not synchronised, unless ``trust_unsynced_clock``, or
    ``now`` is earlier than the newest synchronised stamp in the log.

    A backlog of more than ``BATCH_ROWS`` rows is nulled in batches, each its own short
    transaction with its audit row (module docstring); ``between_batches`` is called after
    each batch but the last (``kiosk purge`` lets a daemon beside it take the file's write
    lock there). ``held_dir``: the data dir, whose held decisions' files the cutoff also
    empties (``kiosk.privacy_held``) and whose folders a restore set aside before it goes
    (``kiosk.backup.purge_set_aside``). ``froze``: told the days each freezing transaction
    froze, for good (``kiosk purge`` says them when a full card cuts it off after).
    ``after``: told the result once the last transaction committed, and each step after it
    as it begins (``WIPE_STEP``, ``HELD_STEP``, ``SET_ASIDE_STEP``): a failure then is that
    step's, the purge itself done.
    """
    _check_args(older_than_days, now)
    synced = check_clock(store, now, trust_unsynced_clock=trust_unsynced_clock)
    cutoff = (now - timedelta(days=older_than_days)).astimezone(UTC)
    hold = quota_hold(now, older_than_days, tz, quota_cfg)
    _date_site_changes(store)  # before a day is frozen by them
    release = quota_look_back(now, tz, quota_cfg) or now  # ``release_held``'s
    frozen = _freeze(store, tz, quota_cfg, now, between_batches, froze)
    run = _Run(store, cutoff, now, {"older_than_days": older_than_days}, tz, hold)
    run.started["cutoff"] = cutoff.isoformat()
    run.started["households_held_from"] = hold and hold.isoformat()
    run.started["clock_synced"] = synced
    picked = run.batches_but_last(actor, between_batches)
    waiting = waiting_for_clock(store.reader(), cutoff, run.bounds.get("events", 0))
    local_cutoff_day = cutoff.astimezone(as_zone(tz)).date()

    def finish(db: Database) -> PurgeResult:
        revocations, reasons = run.revocations(db)
        nulled = run.null(db, picked)
        count = run.events_purged + nulled.get("events", 0)
        release_held(db, release)  # the households the look-back has passed
        # After the fields: a period's salt goes once none of its rows holds any.
        shredded = shred_salts(db, now)
        reading = ClockReading.take(store.clock)  # dates a close before NTP set the clock
        ledgers = purge_ledgers(
            db, cutoff, local_cutoff_day, now, reading, store.boot_id, hold, release
        )
        ended, observations = _purge_ended(db, local_cutoff_day, now)
        rows = (count, nulled.get("audit", 0), ended, observations, revocations, reasons)
        went = (*rows, *ledgers.values())
        if any(went) or shredded or owed_since(db) is not None:
            owe_wipe_at(db, now)  # dates a debt a removal on an unsynchronised clock left
        run.owed = owed_since(db)
        # Not a salt alone: the day's last purge row keys a fresh one the next purge deletes.
        idle = _record_run(db, now, synced, any(went) or bool(frozen or run.batches), waiting)
        result = PurgeResult(
            cutoff, count, tuple(frozen), ledgers, ended, waiting, synced, observations,
            revocations, reasons, shredded, run.batches + 1, households_held_from=hold,
        )  # fmt: skip
        run.settle(db, result, idle)
        return result

    # The last transaction with its audit row (the totals): verification checks purged rows
    # against the purge rows' cutoffs (and reach).
    result = store.submit_audited(
        finish, actor, PURGE_ACTION, run.final_detail, skip=lambda _done: run.quiet
    )
    result = replace(result, audit=run.audit)
    return _after_commit(store, result, run.owed, held_dir, now, after)


#: The steps of a purge after its last transaction, as ``purge`` names them to ``after``:
#: each one the next purge does again when it fails.
WIPE_STEP = "the WAL's wipe (the purged rows' old forms)"
HELD_STEP = "the held decisions' files (held-events-*.ndjson)"
SET_ASIDE_STEP = "the folders a restore set aside (before-restore-*)"
#: Each step's ``overdue`` cause while it fails (``STEP_FAILED_KEY``).
STEP_CAUSES = {
    WIPE_STEP: "wipe_failed",
    HELD_STEP: "held_failed",
    SET_ASIDE_STEP: "set_aside_failed",
}


def _after_commit(
    store: PurgeStore,
    result: PurgeResult,
    owed: str | None,
    held_dir: Path | None,
    now: datetime,
    after: Callable[[PurgeResult, str], None] | None,
) -> PurgeResult:
    """What a purge does once its last transaction committed, each step told to ``after`` as
    it begins: the WAL's wipe (it still holds the purged rows as they were written; only
    when something went, now or in a purge whose wipe a reader held up: the commits after a
    truncation grow the file again, a dearer fsync), then in ``held_dir`` the held
    decisions' files and the folders a restore set aside."""
    told = after or (lambda _result, _step: None)
    if owed is not None:
        told(result, WIPE_STEP)
        if store.wipe_wal():
            store.submit(lambda db: settle_wipe(db, owed))
        else:  # owed on: overdue (``wipe_failed``) once owed two days (``owed_for``)
            log.warning(
                "retention purge done; only %s after it was held up by a reader (a long"
                " export, a tool left open), tried again within the hour",
                WIPE_STEP,
            )
    if held_dir is None:
        return result
    from kiosk.backup import purge_set_aside

    told(result, HELD_STEP)
    held = purge_held(store, held_dir, result.cutoff, now)
    told(result, SET_ASIDE_STEP)
    removed = tuple(purge_set_aside(held_dir, result.cutoff, now))
    return replace(result, held_files_purged=held, set_aside_removed=removed)


def _record_run(db: Database, now: datetime, synced: bool, changed: bool, waiting: int = 0) -> bool:
    """Record this run in ``meta`` (``LAST_RUN_KEY``, one row overwritten); returns whether
    the run goes without an audit row: it changed nothing, on a synchronised clock. The audit
    is kept for ever, and an idle gate's hourly purges wrote 8,760 empty rows a year there;
    that the purge still runs shows here and in the health report instead. (A purge on a
    clock the operator vouched for keeps its row: it records that word.) ``waiting``: the
    events past retention it kept for the clock (``waiting_for_clock``), and since when runs
    have kept some (``waiting_since``, for ``overdue``)."""
    at = now.astimezone(UTC).isoformat()
    run: dict[str, Any] = {"at": at, "clock_synced": synced, "changed": changed}
    if waiting:  # absent: none
        run["waiting_for_clock"] = waiting
        before = last_run(db) or {}
        run["waiting_since"] = (
            before.get("waiting_for_clock") and before.get("waiting_since")
        ) or at
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [LAST_RUN_KEY, json.dumps(run)],
    )
    db.execute("DELETE FROM meta WHERE key = ?", [REFUSED_KEY])  # a purge ran: none refused
    return synced and not changed


def last_run(db: Database | sqlite3.Connection) -> dict[str, Any] | None:
    """The last purge's run (``at``, ``clock_synced``, ``changed``: whether it wrote an audit
    row), None before the first (or a log written before this record)."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [LAST_RUN_KEY]).fetchone()
    if row is None:
        return None
    try:  # NaN, Infinity (a damaged record): null, never a number no JSON answer can carry
        found = json.loads(row[0], parse_constant=lambda _: None)
    except (TypeError, ValueError):
        return None
    return found if isinstance(found, dict) else None


#: The daemon purges hourly and ``kiosk-purge.timer`` nightly: personal data no purge has
#: reached for this long is overdue, a standing alarm on the console (``overdue``).
OVERDUE_AFTER = timedelta(days=2)
#: The ``meta`` key of the purges refused in a row, kept across a restart and a reboot (an
#: unsynchronised Pi restarted daily never reached two days in memory); deleted by the next
#: purge that runs (``_record_run``). ``{"boot": the boot of the latest refusal, "mono_ns":
#: the monotonic time of that boot's first, "last_mono_ns": its latest, "before_s": the
#: seconds refusals were seen in the boots before, "cause": the latest's ClockNotTrusted
#: reason or "store"}``.
REFUSED_KEY = "retention.refused"
#: The ``meta`` key of a step after the purge's commit (``WIPE_STEP`` ...) failing in a row:
#: ``REFUSED_KEY``'s record, ``cause`` the step's (``STEP_CAUSES``). Not deleted by a purge
#: that commits (its step failed after): by the daemon once a purge's steps all succeed.
STEP_FAILED_KEY = "retention.step_failed"


def note_refused(
    db: Database, boot_id: str, mono_ns: int, cause: str, key: str = REFUSED_KEY
) -> dict[str, Any]:
    """Note in ``meta`` a purge refused at ``mono_ns`` of boot ``boot_id`` (``cause`` why),
    going on from the refusals before it (``carried_refusal``); returns the record. ``key``:
    ``STEP_FAILED_KEY`` for a step after the commit failing (``cause`` the step's)."""
    refused = carried_refusal(recorded(db, key), boot_id, mono_ns) | {"cause": cause}
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, json.dumps(refused)])
    return refused


def recorded(db: Database | sqlite3.Connection, key: str) -> Any:
    """The record ``note_refused`` keeps under ``key`` (decoded; None without one, or one
    that is not JSON): what a restarted daemon goes on from. ``Infinity`` and ``NaN`` (a damaged
    card, a hand edit) read as None: no count of seconds."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    try:
        return json.loads(row[0], parse_constant=lambda _: None) if row is not None else None
    except (TypeError, ValueError):
        return None


def carried_refusal(held: Any, boot_id: str, mono_ns: int) -> dict[str, Any]:
    """The refusals' record (``REFUSED_KEY``) after one more at ``mono_ns`` of ``boot_id``:
    in the same boot it keeps its first monotonic time; after a reboot it starts again on the
    new boot's clock, carrying the time refusals were seen before (``before_s``; how long the
    Pi was off is not known, so not counted: an alarm late, never early)."""
    before = refused_seconds(held, boot_id, mono_ns)
    if before is not None and held.get("boot") == boot_id:
        return dict(held) | {"last_mono_ns": mono_ns}
    first = {"boot": boot_id, "mono_ns": mono_ns, "last_mono_ns": mono_ns}
    return first | {"before_s": before or 0.0}


def refused_seconds(held: Any, boot_id: str, mono_ns: int) -> float | None:
    """How long purges have been refused, by the monotonic clocks (an unset wall clock tells
    no time): the seconds seen in earlier boots and, in ``boot_id`` at ``mono_ns``, since its
    first refusal. None without a record (``carried_refusal``) or with one not of this shape."""
    if not isinstance(held, Mapping):
        return None
    first, last, before = (held.get(k) for k in ("mono_ns", "last_mono_ns", "before_s"))
    if not (type(first) is int and type(last) is int and isinstance(before, int | float)):
        return None
    if isinstance(before, bool) or not math.isfinite(before):
        return None
    end = mono_ns if held.get("boot") == boot_id else last
    return float(before) + max(0, end - first) / 1e9


def overdue(
    last: Mapping[str, Any] | None,
    now: datetime,
    refused_s: float | None = None,
    refused: str | None = None,
    failing: tuple[float | None, str] = (None, ""),
) -> dict[str, Any] | None:
    """Whether the retention purge is overdue, and why (None when it is not): the last run
    (``last_run``) is ``OVERDUE_AFTER`` old by the wall clock ``now``, or the purges have been
    refused that long by the monotonic clocks (``refused_s``, ``refused_seconds``: a clock
    never synchronised moves the wall clock by nothing one can trust, and a log never purged
    has no last run); ``cause`` is then why they are refused (``refused``: ``unsynchronised``,
    ``set_back``, ``store``), or ``not_run`` when the daemon has not seen why. A refusal says
    no row's age: the console words it as purges refused, not as data known to be kept past
    retention. Or the runs have kept events past retention waiting for the clock
    (``waiting_for_clock``) that long: ``cause`` ``waiting_for_clock``, ``waiting`` how many.
    Or a step after the purges' commits (``failing``: for how long, its cause in
    ``STEP_CAUSES``) has failed that long: ``cause`` that step's.
    ``last_run`` is the last run's time, ``days`` the whole days it has been so."""
    limit = OVERDUE_AFTER.total_seconds()
    at = aware_or_none(last.get("at")) if last else None
    waiting = _count(last.get("waiting_for_clock")) if last else 0
    found = {"last_run": at.isoformat() if at else None, "waiting": waiting}
    since_run = (now - at).total_seconds() if at is not None else 0.0
    if since_run >= limit or (refused_s is not None and refused_s >= limit):
        days = int(max(refused_s or 0.0, since_run) // 86400)
        return found | {"cause": refused or "not_run", "days": days}
    failing_s, step = failing
    if failing_s is not None and failing_s >= limit:
        return found | {"cause": step, "days": int(failing_s // 86400)}
    since = aware_or_none(last.get("waiting_since")) if last and waiting else None
    if since is not None and (now - since).total_seconds() >= limit:
        return found | {"cause": "waiting_for_clock", "days": (now - since).days}
    return None


def _count(value: Any) -> int:
    """``value`` as a count of events: a finite number of them, else (a damaged record: text,
    a list, Infinity) 0, never an error that takes the health report down."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(0, int(value))


#: The ``meta`` key of the runs a day's purge row covers that wrote no row of their own
#: (``coalesced``): their counts summed, until the next purge row takes them.
PENDING_KEY = "retention.coalesced"
#: The counts of a purge summed over the runs a purge row coalesces.
_SUMMED = (
    "events_purged",
    "quarantine_entries_purged",
    "household_observations_purged",
    "revocations_purged",
    "revocation_reasons_purged",
    "salts_shredded",
)


def pending_runs(db: Database | sqlite3.Connection) -> dict[str, Any]:
    """The summed counts of the purges since the last purge row that its ``reach`` covered
    (``coalesced``); empty when there are none."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [PENDING_KEY]).fetchone()
    try:
        found = json.loads(row[0]) if row is not None else {}
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _reach(now: datetime, older_than_days: int, tz: ZoneInfo | str) -> datetime:
    """The cutoff of a purge at the end of ``now``'s local day: what the purge row of a run
    at ``now`` covers (``coalesced``). Only with ``older_than_days`` >= 1 is it before the
    row itself (and it is never later than ``now``), so every audit row the later runs null
    was written before it (``verify`` counts an audit row covered only by a purge row after
    it); a purge of 0 days has none."""
    zone = as_zone(tz)
    midnight = day_start(now.astimezone(zone).date() + timedelta(days=1), zone)
    # Never past the run itself: the autumn change's local day has 25 hours.
    return min(midnight - timedelta(days=older_than_days), now.astimezone(UTC))


def _coalesced(db: Database, result: PurgeResult, now: datetime) -> bool:
    """Whether this run's changes go without a row of their own: the latest purge row's
    ``reach`` covers its cutoff (``verify`` checks purged rows against it). Then its counts
    are added to the pending ones (``PENDING_KEY``) the next purge row records."""
    latest = db.execute(
        "SELECT detail FROM audit WHERE action = ? ORDER BY seq DESC LIMIT 1", [PURGE_ACTION]
    ).fetchone()
    try:
        reach = datetime.fromisoformat(str(json.loads(latest[0])["reach"]))
    except (TypeError, ValueError, KeyError):
        return False
    if reach.tzinfo is None or reach < result.cutoff:
        return False
    done = result.as_dict()
    pending = pending_runs(db)
    for key in _SUMMED:
        pending[key] = int(pending.get(key) or 0) + int(done[key])
    ledgers = pending.get("ledger_rows_purged")
    ledgers = dict(ledgers) if isinstance(ledgers, dict) else {}
    for key, n in done["ledger_rows_purged"].items():
        ledgers[key] = int(ledgers.get(key) or 0) + int(n)
    days = pending.get("days_frozen")
    days = days if isinstance(days, list) else []
    pending["days_frozen"] = sorted({*days, *done["days_frozen"]})
    pending |= {"ledger_rows_purged": ledgers, "runs": int(pending.get("runs") or 0) + 1}
    pending |= {"last_at": now.astimezone(UTC).isoformat(), "last_cutoff": done["cutoff"]}
    db.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [PENDING_KEY, json.dumps(pending, sort_keys=True)],
    )
    return True


def _take_pending(db: Database) -> dict[str, Any]:
    """The pending counts (``pending_runs``), cleared: the purge row being written takes
    them, in the same transaction."""
    pending = pending_runs(db)
    db.execute("DELETE FROM meta WHERE key = ?", [PENDING_KEY])
    return pending


def _purge_ended(db: Database, before: date, now: datetime) -> tuple[int, int]:
    """The lists' ended quarantine entries and household observations (in the caller's
    transaction), stamped for every process's snapshot when any went."""
    ended = purge_ended_quarantine(db, before)
    observations = purge_ended_observation(db, before)
    if ended or observations:
        mark_purged(db, now)
    return ended, observations


def _check_args(older_than_days: int, now: datetime) -> None:
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int):
        raise ValueError("older_than_days must be a whole number of days")
    if not 0 <= older_than_days <= MAX_DAYS:
        raise ValueError(f"older_than_days must be between 0 and {MAX_DAYS}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")


def _freeze(
    store: PurgeStore,
    tz: ZoneInfo | str,
    quota_cfg: QuotaConfig | None,
    now: datetime,
    between_batches: Callable[[], None] | None,
    froze: Callable[[list[date]], None] | None = None,
) -> list[date]:
    """Freeze the complete days' reports, ``FREEZE_DAYS`` a transaction (a restored log's
    months take many), each told to ``froze``; returns the days frozen."""
    frozen: list[date] = []
    while True:
        days = freeze_days(store, tz, quota_cfg, now, max_days=FREEZE_DAYS)
        again = set(days) & set(frozen)  # stamped on again meanwhile: the next purge's
        frozen += [d for d in days if d not in again]
        if froze is not None and days:
            froze(days)
        if len(days) < FREEZE_DAYS or again:
            return frozen
        if between_batches is not None:
            between_batches()


@dataclass
class _Run:
    """One purge's way through its batches: the rows it may null (``purge_bounds``, read
    once), how far its batches got, what they nulled."""

    store: PurgeStore
    cutoff: datetime
    now: datetime
    started: dict[str, Any]
    tz: ZoneInfo | str = "UTC"
    #: The outings' households stamped from it on are kept (the quota's look-back), None: none.
    hold: datetime | None = None
    bounds: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    events_purged: int = 0  # by the batches before the last
    revoked: tuple[int, int] | None = None
    batches: int = 0
    #: The WAL wipe's debt this purge settles (``kiosk.wipe.owed_since``), None: none owed.
    owed: str | None = None
    #: The last transaction goes without its audit row (``settle``).
    quiet: bool = False
    #: How it was audited (``PurgeResult.audit``).
    audit: str = AUDITED
    #: The counts of the runs the last transaction's row takes over (``coalesced``).
    coalesced: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bounds = purge_bounds(self.store.reader(), self.cutoff)
        self.after = dict.fromkeys(self.bounds, 0)

    def batches_but_last(
        self, actor: str, between_batches: Callable[[], None] | None
    ) -> dict[str, list[int]]:
        """Every batch but the last, each its own transaction; returns the last's rows."""
        while True:
            picked, more = self.next_batch()
            if not more:
                return picked
            self.batch(picked, actor)
            if between_batches is not None:
                between_batches()

    def settle(self, db: Database, result: PurgeResult, idle: bool) -> None:
        """In the last transaction: whether it goes without its audit row (``quiet``): it
        changed nothing on a synchronised clock (``idle``), or what it changed the day's
        purge row covers (``_coalesced``); else the row takes the pending counts."""
        own_row = result.clock_synced and not idle and self.batches == 0
        self.quiet = idle or (own_row and _coalesced(db, result, self.now))
        self.audit = UNCHANGED if idle else PENDING if self.quiet else AUDITED
        if not self.quiet:
            self.coalesced = _take_pending(db)

    def final_detail(self, done: PurgeResult) -> dict[str, Any]:
        """The last transaction's audit row: the totals, the ``reach`` of a purge of a day or
        more, the runs it coalesced."""
        days = int(self.started["older_than_days"])
        detail = {"older_than_days": days, **done.as_dict(), "complete": True}
        if days >= 1:
            detail["reach"] = _reach(self.now, days, self.tz).isoformat()
        if self.coalesced:
            detail["coalesced"] = self.coalesced
        return detail

    def next_batch(self) -> tuple[dict[str, list[int]], bool]:
        """The rows of the next batch (at most ``BATCH_ROWS``, events first), found on a
        reader, and whether rows remain after them."""
        budget = BATCH_ROWS
        picked: dict[str, list[int]] = {}
        for table, through in self.bounds.items():
            reader = self.store.reader()
            seqs = purge_candidates(
                reader, table, self.cutoff, self.after[table], through, budget + 1, self.now
            )
            if len(seqs) > budget:
                if budget:
                    picked[table] = seqs[:budget]
                return picked, True
            if seqs:
                picked[table] = seqs
            budget -= len(seqs)
        return picked, False

    def null(self, db: Database, picked: Mapping[str, list[int]]) -> dict[str, int]:
        """Null ``picked`` (in the caller's transaction); returns the rows nulled by table."""
        nulled = {
            t: purge_rows(db, t, seqs, self.cutoff, self.now, self.hold)
            for t, seqs in picked.items()
        }
        for table, seqs in picked.items():
            self.after[table] = seqs[-1]
        return nulled

    def revocations(self, db: Database) -> tuple[int, int]:
        """The revocations' purge, in the purge's first transaction: before any audit
        detail goes (a revoked pass's issue record may state its expiry)."""
        if self.revoked is None:
            reading = ClockReading.take(self.store.clock)  # dates one made before NTP set it
            self.revoked = purge_revocations(db, self.cutoff, self.now, reading, self.store.boot_id)
            if any(self.revoked):
                mark_purged(db, self.now)
        return self.revoked

    def batch(self, picked: Mapping[str, list[int]], actor: str) -> None:
        """One batch (not the last) in its own transaction, with its audit row: the first
        batch's is a purge row (the cutoff that covers every batch of the purge, should it
        stop before its last); the others' say what each nulled."""

        def apply(db: Database) -> dict[str, Any]:
            self.revocations(db)
            nulled = self.null(db, picked)
            owe_wipe_at(db, self.now)
            return {
                "events_purged": nulled.get("events", 0),
                "audit_rows_purged": nulled.get("audit", 0),
            }

        first = self.batches == 0
        action = PURGE_ACTION if first else BATCH_ACTION
        detail = {**self.started, "complete": False, "batch": self.batches + 1}
        if first:
            detail["through_seq"] = dict(self.bounds)
        done = self.store.submit_audited(apply, actor, action, lambda d: {**detail, **d})
        self.events_purged += int(done["events_purged"])
        self.batches += 1
