"""Retention: personal data is kept only as long as needed (PIPL Art. 19/47, GDPR Art. 5).

``purge(store, older_than_days, now)`` nulls the personal fields (``pass_id``, ``household``,
``holder``, ``person``) of every event older than the cutoff, and the ``detail`` of audit
rows, and stamps ``purged_at`` (``kiosk.store.purge_personal``: the cut is made in ``seq``
order up to the last clock-synced row older than the cutoff, so rows stamped 1970 before NTP
synced are not missed), and the personal fields of the ledgers around the gate: returnees
whose observation ended and closed household service requests (``kiosk.ledgers``), and
ended quarantine entries and household observation dates of the lists, and revocations: their
reason with the retention window, the row once the revoked pass expired
(``kiosk.lists.purge_revocations``: never while the pass could still open the gate). Before
that it freezes the daily aggregates of every complete day (``kiosk.stats.freeze_days``), so
the daily reports of purged days stay exactly what they were. The row hash covers
``personal_digest`` and not the personal fields themselves (``kiosk.hashchain``), so the
chain keeps verifying after a purge; the salt of a day none of whose rows holds personal
fields any more is then deleted (``kiosk.store.shred_salts``), so the digests left cannot be
tested against guesses. Every purge writes an audit row (who, cutoff, how many).

The daemon runs it daily with ``store.retention_days``; ``kiosk purge --older-than DAYS``
runs it by hand (systemd's ``kiosk-purge.timer`` calls that).

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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from kiosk.clock import Clock
from kiosk.config.policy import QuotaConfig
from kiosk.days import as_zone
from kiosk.ledgers import purge_ledgers
from kiosk.lists import purge_ended_observation, purge_ended_quarantine, purge_revocations
from kiosk.ports import Store
from kiosk.stats import freeze_days
from kiosk.store import (
    PURGE_ACTION,
    format_ts,
    newest_synced_ts,
    purge_personal,
    shred_salts,
    waiting_for_clock,
)

MAX_DAYS = 36500
#: How far the newest synchronised stamp may lie after a purge's ``now`` before the clock counts
#: as set back: a passage decided while the daemon's purge waits for the writer is stamped
#: after the ``now`` it read, and a clock a minute behind purges a minute less, nothing more.
SET_BACK_TOLERANCE = timedelta(seconds=60)
#: The ``meta`` key present while a WAL wipe is owed: set in the transaction of a purge that
#: removed anything, deleted once a wipe completed. A wipe a reader held up (a long export)
#: is so tried again by the next purge, even one that finds nothing new to remove.
WIPE_OWED_KEY = "retention.wal_wipe_owed"


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff.isoformat(),
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
        }


def check_clock(store: PurgeStore, now: datetime, *, trust_unsynced_clock: bool = False) -> bool:
    """Whether ``now`` may date a purge of ``store``: raises ``ClockNotTrusted`` if not.
    Returns whether the clock is synchronised (False: the operator vouched for it)."""
    synced = store.clock.synced()
    if not synced and not trust_unsynced_clock:
        raise ClockNotTrusted(
            "unsynchronised",
            "the wall clock is not synchronised (no NTP answer since boot; without an RTC it"
            " may be weeks off), so it cannot date a purge",
        )
    newest = store.submit(newest_synced_ts)
    if newest is not None and format_ts(now + SET_BACK_TOLERANCE) < newest:
        raise ClockNotTrusted(
            "set_back",
            f"the wall clock ({format_ts(now)}) is earlier than the newest synchronised record"
            f" in the log ({newest}): it was set back, so it cannot date a purge",
        )
    return synced


def purge(
    store: PurgeStore,
    older_than_days: int,
    now: datetime,
    *,
    tz: ZoneInfo | str = "UTC",
    quota_cfg: QuotaConfig | None = None,
    actor: str = "retention",
    trust_unsynced_clock: bool = False,
) -> PurgeResult:
    """Delete personal fields of events older than ``older_than_days`` before ``now``.

    ``tz`` and ``quota_cfg`` are the site's, so frozen daily reports match the live ones.
    Idempotent: already purged rows are left as they are. ``ClockNotTrusted`` (nothing
    done) when ``store``'s clock is not synchronised, unless ``trust_unsynced_clock``, or
    ``now`` is earlier than the newest synchronised stamp in the log.
    """
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int):
        raise ValueError("older_than_days must be a whole number of days")
    if not 0 <= older_than_days <= MAX_DAYS:
        raise ValueError(f"older_than_days must be between 0 and {MAX_DAYS}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    synced = check_clock(store, now, trust_unsynced_clock=trust_unsynced_clock)
    cutoff = (now - timedelta(days=older_than_days)).astimezone(UTC)
    frozen = freeze_days(store, tz, quota_cfg, now)

    local_cutoff_day = cutoff.astimezone(as_zone(tz)).date()

    owed: list[bool] = []

    def apply(db: Database) -> PurgeResult:
        # Before the audit details go: a revoked pass's issue record may state its expiry.
        revocations, reasons = purge_revocations(db, cutoff, now)
        count = purge_personal(db, cutoff, now)
        # After the fields: a period's salt goes once none of its rows holds any.
        shredded = shred_salts(db, now)
        ledgers = purge_ledgers(db, cutoff, now)
        ended = purge_ended_quarantine(db, local_cutoff_day)
        observations = purge_ended_observation(db, local_cutoff_day)
        waiting = waiting_for_clock(db, cutoff)
        went = (count, ended, observations, revocations, reasons, shredded, *ledgers.values())
        if any(went):
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [WIPE_OWED_KEY, format_ts(now)],
            )
        owed.append(_wipe_owed(db))
        return PurgeResult(
            cutoff,
            count,
            tuple(frozen),
            ledgers,
            ended,
            waiting,
            synced,
            observations,
            revocations,
            reasons,
            shredded,
        )

    # One transaction with its audit row: verification checks purged rows against it.
    result = store.submit_audited(
        apply,
        actor,
        PURGE_ACTION,
        lambda done: {"older_than_days": older_than_days, **done.as_dict()},
    )
    # The WAL still holds the purged rows as they were written: truncate it. Only when
    # something went, now or in a purge whose wipe a reader held up: the commits after a
    # truncation grow the file again (a dearer fsync).
    if owed[-1] and store.wipe_wal():
        store.submit(_wipe_done)
    return result


def _wipe_owed(db: Database) -> bool:
    return db.execute("SELECT 1 FROM meta WHERE key = ?", [WIPE_OWED_KEY]).fetchone() is not None


def _wipe_done(db: Database) -> None:
    db.execute("DELETE FROM meta WHERE key = ?", [WIPE_OWED_KEY])
