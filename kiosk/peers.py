"""The compound's other gates: their passages, held here, so the quota and the anti-passback
hold at every gate of one compound (docs/policy.md, docs/operations.md "Several gates").

Each kiosk serves its own recent *passing* passages to its peers (``peer_page``, behind the
``passages:peer`` token scope: only what the two rules need, no name, no temperature) and
fetches theirs (``checkpoint.peers``, a thread off the gate's loop: a decision never waits
for the network). What a peer sends is judged here before anything of it is kept
(``check_page``): the answer must be of the kiosk its URL is pinned to, every row of that
kiosk (a forged row of another refuses the page), every value bounded; a row stamped further
ahead of this kiosk's clock than ``MAX_AHEAD`` is a clock that was wrong, not a passage: it is
dropped (counted in the peer's status) and neither blocks a household nor hides a real
passage. A peer's answer says its own time (``now``): how far its clock is from this kiosk's
is its ``skew``, shown in its status beyond ``MAX_SKEW`` (a clock far *behind* stamps its
outings early, so they leave the quota's window early here); its rows are not "corrected",
but those it stamped on its clock not set (its page's ``unsynced_from`` on: fake-hwclock's
saved time, hours behind), which this gate, its clock set, dates by that skew.

The rows kept go into ``peer_passages`` (``PeerLedger.merge``: keyed ``(kiosk_id, seq)``, so
a page fetched twice is held once; each peer's cursor in ``peer_cursors``), and only the new
ones into the ``PassageHistory`` (``record_peer_rows``; ``record(..., peer=True)``). At start
the history is rebuilt from the log *and* this table (``load_peer_rows``). The table is
bounded: rows older than ``LEDGER_HORIZON`` (the longest quota period a config may set and a
day, not the period in force: a period lengthened on a restart still finds the other gates'
older outings, which the cursor will not fetch again) and past ``max_rows`` a peer go at each
merge, and retention removes them with the other ledgers (``purge``).

A peer's answer can be authenticated over plain http too: a gate with an issuer key signs each
page it serves (``sign_page``, in the ``SIGNATURE_HEADER``) over its kiosk id, the asker's
fresh ``nonce``, the asked cursor and limit, and the SHA-256 of the exact body; the asking gate
with that peer's key pinned (``compound.peers.trust_key``, a ``.pub`` in its trust folder)
refuses an answer whose signature is not that key's for *this* request (``verify_page``,
``PeerForged``) or that has none (``PeerUnsigned``: told apart, as an older peer sends none):
a page made up by whoever answers at the peer's address, or a real one replayed, is never
kept.

A page carries the serving gate's guards' revocations too (``guard_revocations``: its whole
set, bounded, no reason), judged with the page (``check_page``: the same signature, nonce and
compound) and held as that gate's set in ``peer_revocations`` (``PeerLedger.set_revocations``);
the lists refuse them as ``pass_revoked`` (``kiosk.lists.Lists.peer_revocations``). Only a
restore at that gate lifts one; the office's revocation is never lifted by it (docs/passes.md).
Beside them, ``forgotten`` names those of them a resident's forget made (``revocations_page``):
held so (``peer_revocations.forgotten``), a deny of such a card records no holder here too
(``kiosk.lists.Lists.is_forgotten``; the household only where a hold or this gate's own void
stands: ``kiosk.policy.holds_household``, ``Lists.voided_here``). Only a page signed by the
peer's pinned key is believed on it (``check_page``'s ``signed``): an unpinned peer's
revocations are held as a guard's, whatever its page says. It is a list of its own, not a key of
each revocation: a gate on an earlier release refuses a page whose revocation has a key it does
not know, and ignores one of the page's; a page from such a gate says none, held as today.

A pass the serving gate did not open for (a later row ``not_opened:<seq>``, ``kiosk.links``)
is no passage: the page leaves it out and names it (``not_opened``: the seqs named by rows
after the asked cursor, bounded); the asking gate drops the row it holds of it, fetched
before the gate knew (``PeerLedger.drop_not_opened``), and the history takes it back
(``forget_peer_rows``).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlite_utils import Database

from .clock import ClockReading
from .config.policy import MAX_PERIOD_DAYS, QuotaConfig
from .days import FIRST_DAY, LAST_DAY, span_on
from .files import streamed_rows
from .history import COUNTED_DECISIONS, QUOTA_EXEMPT, ROLE_FLAG, role_flag
from .lists import FORGET_SOURCE, GATE_SOURCES, same_text
from .pass_format import ROLES
from .passes import key_id_of
from .ports import History, Store
from .queries import Since, not_opened_after
from .record import PURGED_HOUSEHOLD
from .schema import sql_migrations
from .stats import households_outing, over_quota, quota_period_start
from .store import HELD_EXIT, StoreFault, format_ts
from .typed import unseen
from .unreadable import UNREADABLE, decode_json
from .wipe import WalWiper, owe_wipe, wipe_removed

log = logging.getLogger(__name__)

__all__ = [
    "MAX_AHEAD",
    "Breach",
    "guard_quarantine",
    "guard_revocations",
    "revocations_page",
    "held_quarantine",
    "held_revocations",
    "late_breaches",
    "MAX_PAGE_NOT_OPENED",
    "MAX_SKEW",
    "MIGRATIONS",
    "NONCE_PATTERN",
    "LEDGER_HORIZON",
    "PEER_SCOPE",
    "SIGNATURE_HEADER",
    "PeerForged",
    "PeerLedger",
    "PeerPageError",
    "PeerQuarantine",
    "PeerRestarted",
    "PeerRevocation",
    "PeerRolledBack",
    "PeerRow",
    "PeerUnsigned",
    "check_page",
    "closed_window",
    "held_rows",
    "history_horizon",
    "load_peer_rows",
    "peer_page",
    "purge",
    "closing_time",
    "forget_removed",
    "forget_peer_rows",
    "record_peer_rows",
    "sign_closing",
    "sign_page",
    "verify_closing",
    "verify_page",
]

#: A ``[compound] id`` as the config allows it (``kiosk.config.compound``).
_COMPOUND_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

#: The token scope a peer's requests carry: recent passing passages, nothing else.
PEER_SCOPE = "passages:peer"
#: A peer's row stamped further ahead of this kiosk's clock is a clock that was wrong.
MAX_AHEAD = timedelta(minutes=10)
#: A peer's clock further than this from this kiosk's (its answer's ``now``) is shown in its
#: status and logged: one behind stamps its outings early, so they leave the quota's window
#: early here. Far more than a fetch's time on the LAN, far less than a quota's period.
MAX_SKEW = timedelta(minutes=2)
#: The most skew kept of a peer's clock, either way: one further off (a host answering year
#: 9999, an RTC gone mad) is kept as this far, so this gate's time plus it is still a time
#: (it was an OverflowError: a 500 of the health report and of every closing notice).
MAX_SKEW_KEPT = timedelta(days=200 * 366)
#: The most rows one answer may carry (a page asked for more is refused by the peer).
MAX_PAGE_ROWS = 1000
#: Bounds of one row's values (the passes' own limits are lower).
MAX_PASS_ID = 128
MAX_HOUSEHOLD = 64
MAX_TS_CHARS = 40
MAX_SEQ = 2**63 - 1
#: The header a page's signature travels in: ``KEYID:SIGNATURE`` (4 hex digits, Base64url).
SIGNATURE_HEADER = "X-Kiosk-Signature"
#: The asker's nonce, fresh for each request: 128 bits and more of Base64url.
NONCE_PATTERN = r"^[A-Za-z0-9_-]{22,64}$"
#: What a page's signature is over begins with this: never a pass's or a list bundle's message.
_PAGE_SIGNED = b"kiosk passages page 1\n"
#: What a closing notice's signature is over begins with this (never a page's message).
_CLOSING_SIGNED = b"kiosk peer closing 1\n"
#: The most of a gate's guards' revocations one page carries (its newest): a page with more
#: is refused whole.
MAX_PAGE_REVOCATIONS = 500
#: Bound of a revocation's guard name as a page carries it (a guard account's name).
MAX_ACTOR = 64
#: A pass id as the lists hold it (``kiosk.lists.RevocationIn``).
_PASS_ID = re.compile(r"^[0-9a-f]{12}$")
_REVOCATION_KEYS = frozenset({"pass_id", "revoked_at", "actor"})
#: The page's key naming the revocations a forget made (``revocations_page``).
FORGOTTEN_KEY = "forgotten"
#: The most of a gate's guards' quarantine entries one page carries (those ending last): a
#: page with more is refused whole.
MAX_PAGE_QUARANTINE = 200
#: The most passes one page names that its gate did not open for (``not_opened``, the first
#: after the asked cursor): a page naming more is refused whole.
MAX_PAGE_NOT_OPENED = 500
#: Bound of a quarantined person's name as a page carries it (``kiosk.lists.QuarantineIn``).
MAX_HOLDER = 64
_QUARANTINE_KEYS = frozenset({"id", "household", "holder", "from", "until", "actor"})
#: A peer's revocations seen unchanged are stamped seen again (a write) at most this often:
#: retention drops those of a peer not heard from within ``store.retention_days``.
SEEN_REFRESH = timedelta(days=1)
_ROW_KEYS = frozenset(
    {"kiosk_id", "seq", "pass_id", "household", "direction", "decision", "ts", "flags"}
)
#: The columns a peer's revocations and guards' quarantine entries are held in (``_hold_set``).
_REVOCATION_COLUMNS = ("pass_id", "revoked_at", "actor", "forgotten")
_QUARANTINE_COLUMNS = ("entry_id", "household", "holder", "from_date", "until_date", "actor")

MIGRATIONS = sql_migrations(
    "kiosk.peers",
    m001_peer_passages="""
    CREATE TABLE peer_passages (
        kiosk_id TEXT NOT NULL, seq INTEGER NOT NULL, pass_id TEXT, household TEXT,
        direction TEXT NOT NULL, decision TEXT NOT NULL, ts TEXT NOT NULL,
        flags TEXT NOT NULL DEFAULT '[]', fetched_at TEXT NOT NULL,
        PRIMARY KEY (kiosk_id, seq)
    );
    CREATE INDEX peer_passages_ts ON peer_passages(ts);
    CREATE TABLE peer_cursors (
        kiosk_id TEXT PRIMARY KEY, after INTEGER NOT NULL, url TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
    m002_peer_origin="""
    ALTER TABLE peer_cursors ADD COLUMN origin TEXT;
    """,
    m003_peer_closed="""
    ALTER TABLE peer_cursors ADD COLUMN closed_at TEXT;
    ALTER TABLE peer_cursors ADD COLUMN closing_said TEXT;
    """,
    # A row fetched while this gate's clock was not set: its boot and monotonic time then,
    # until the clock is set and ``fetched_at`` is dated (``PeerLedger.merge``).
    m004_peer_fetch_clock="""
    ALTER TABLE peer_passages ADD COLUMN fetched_boot TEXT;
    ALTER TABLE peer_passages ADD COLUMN fetched_mono_ns INTEGER;
    CREATE INDEX peer_passages_undated ON peer_passages(fetched_boot)
        WHERE fetched_mono_ns IS NOT NULL;
    """,
    # A peer gate's guards' revocations as its last page said them (``PeerLedger.
    # set_revocations``): refused here as ``pass_revoked`` (``kiosk.lists.Lists``).
    # ``seen_at``: when a page last said them (NULL: on this gate's clock not set).
    m005_peer_revocations="""
    CREATE TABLE peer_revocations (
        kiosk_id TEXT NOT NULL, pass_id TEXT NOT NULL, revoked_at TEXT, actor TEXT,
        seen_at TEXT, PRIMARY KEY (kiosk_id, pass_id)
    );
    """,
    # A peer gate's guards' quarantine entries as its last page said them (``PeerLedger.
    # set_quarantine``): in force here (``kiosk.lists.Lists.peer_quarantine``). ``entry_id``:
    # the entry's number there; ``seen_at`` as for the revocations.
    m006_peer_quarantine="""
    CREATE TABLE peer_quarantine (
        kiosk_id TEXT NOT NULL, entry_id INTEGER NOT NULL, household TEXT NOT NULL,
        holder TEXT, from_date TEXT NOT NULL, until_date TEXT NOT NULL, actor TEXT,
        seen_at TEXT, PRIMARY KEY (kiosk_id, entry_id)
    );
    """,
    # When a purge held the row for the quota's look-back (``purge``'s ``hold``: its pass id
    # nulled, its household kept), as ``events.purged_at``: what the look-back releases. NULL:
    # never held (a row without a pass id, a guard's manual pass there, keeps its retention).
    m007_peer_held="""
    ALTER TABLE peer_passages ADD COLUMN purged_at TEXT;
    """,
    # 1: that gate's page said a resident's forget made the revocation (its ``forgotten``): a
    # deny of the card here records its pass id alone. 0: a guard's, or a gate that says none.
    m008_peer_revocation_forgotten="""
    ALTER TABLE peer_revocations ADD COLUMN forgotten INTEGER NOT NULL DEFAULT 0;
    """,
)

#: A log's ``origin`` as a page says it: its first event's id (a UUID).
_ORIGIN = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def history_horizon(period_days: int) -> timedelta:
    """How far back the passage history looks (``PassageHistory.horizon``, as the composition
    root builds it): the quota's period and a day; what a peer is served of the past."""
    return timedelta(days=max(period_days, 1) + 1)


#: How far back ``peer_passages`` keeps the other gates' passages (``PeerLedger``'s horizon at
#: the composition root): what any quota period a config may set needs, whatever the period in
#: force. Trimmed to the period in force, a period lengthened (2 -> 7 days) found the other
#: gates' outings 3-7 days back gone, never fetched again (each peer's cursor is past them):
#: the household went out again at this gate. The history loads only its period's.
LEDGER_HORIZON = history_horizon(MAX_PERIOD_DAYS)


class PeerPageError(ValueError):
    """A peer's answer refused whole: nothing of it is kept, the cursor stays."""


class PeerForged(PeerPageError):
    """An answer not signed by the peer's pinned key for this request: made up by whoever
    answers at its address, or a real page replayed. Refused and counted."""


class PeerUnsigned(PeerForged):
    """An answer with no signature at all from a peer whose key is pinned: a gate without an
    issuer key or on a release before signed pages (or whoever answers at its address, not
    trying to sign). Refused as a forged one is, and told apart from a signature that does not
    verify: the remedy is to upgrade the peer or check the key."""


class PeerRestarted(PeerPageError):
    """The peer's log ends before the cursor: a new database there, its seqs start again."""


class PeerRolledBack(PeerPageError):
    """The peer's log ends before the cursor and is the same log (its ``origin``): restored
    from an older copy. What is held up to its end stays (fetched again it would be counted
    twice); what is past it is of a branch gone, and its seqs will be new passages."""

    def __init__(self, message: str, last: int) -> None:
        super().__init__(message)
        self.last = last


@dataclass(frozen=True)
class PeerRow:
    """One passing passage at a peer gate, as kept here."""

    kiosk_id: str
    seq: int
    pass_id: str | None
    household: str | None
    direction: str
    decision: str
    ts: str  # format_ts: fixed-width UTC
    exempt: bool
    #: The pass's role as its gate recorded it (``kiosk.history.role_flag``; None: a row
    #: from before 2026-12-07, or a page of a gate on a release before it).
    role: str | None = None

    @property
    def flags(self) -> tuple[str, ...]:
        role = (role_flag(self.role),) if self.role is not None else ()
        return ((QUOTA_EXEMPT,) if self.exempt else ()) + role

    @classmethod
    def of_flags(
        cls,
        kiosk_id: str,
        seq: int,
        passage: tuple[str | None, str | None, str, str, str],
        flags: Iterable[str],
    ) -> PeerRow:
        """A row of ``passage`` (pass id, household, direction, decision, ts) and its event
        ``flags``: whether exempt, and its role (one ``ROLES`` names, else none: counted as
        judged then)."""
        flags = tuple(flags)
        role = next((f[len(ROLE_FLAG) :] for f in flags if f.startswith(ROLE_FLAG)), None)
        return cls(kiosk_id, seq, *passage, QUOTA_EXEMPT in flags, role if role in ROLES else None)


@dataclass(frozen=True)
class PeerRevocation:
    """A pass a guard voided at a peer gate (its Passes page or lists), as its page said it."""

    kiosk_id: str
    pass_id: str
    revoked_at: str | None  # format_ts; None: the peer did not say a readable time
    actor: str | None  # the guard's name there
    #: A resident's forget made it there (its page's ``forgotten``): the holder is forgotten.
    forgotten: bool = False


@dataclass(frozen=True)
class PeerQuarantine:
    """A household (``holder`` None) or one person of it a guard quarantined at a peer gate,
    as its page said it: in force here as the lists' own entries are."""

    kiosk_id: str
    entry_id: int  # its number there
    household: str
    holder: str | None
    from_date: str  # ISO date, local to the site, both ends inclusive
    until_date: str
    actor: str | None  # the guard's name there


@dataclass(frozen=True)
class CheckedPage:
    """A peer's answer judged: the rows to keep, the cursor after it, what was dropped."""

    rows: list[PeerRow]
    next: int
    last: int
    ahead: int
    #: The peer's clock less this kiosk's when the answer was judged; ``None``: it did not say
    #: (a peer running the code before ``now`` was in its answer).
    skew: timedelta | None = None
    #: The peer's clock as it answered (its ``now``), ``None`` as for ``skew``.
    said: datetime | None = None
    #: Which log the peer answered from (its first event's id); ``None``: it did not say
    #: (earlier code, or its log is empty).
    origin: str | None = None
    #: Rows left with the peer for the next asks: stamped ahead of a clock not synchronised
    #: (1970 on a Pi booted without network time), which cannot tell them wrong.
    held_back: int = 0
    #: Rows refused for a household or pass id holding a character nobody sees (a
    #: zero-width space, a right-to-left override, a control): the rule the gate's own fields
    #: follow (``kiosk.typed.unseen``); the rest of the page is kept and the cursor passes them.
    refused: int = 0
    #: Rows the peer stamped on its clock not set (its ``unsynced_from`` on) dated here by that
    #: clock's skew, this gate's clock being set (a peer booted on fake-hwclock's saved time).
    redated: int = 0
    #: The peer's guards' revocations, the whole set it holds now; ``None``: its page did not
    #: say (a gate on a release before it): those held here stay as they are.
    revocations: tuple[PeerRevocation, ...] | None = None
    #: The peer's guards' quarantine entries, its whole set; ``None`` as for ``revocations``.
    quarantine: tuple[PeerQuarantine, ...] | None = None
    #: The seqs of the peer's passes its gate did not open for (``not_opened``), named by its
    #: rows after the cursor; ``None``: its page did not say (a gate on a release before it).
    not_opened: tuple[int, ...] | None = None
    #: The peer's quarantine entries with a day outside the days a guard may type
    #: (``kiosk.days``: ``9999-12-31``, a year typed wrong at a gate on an earlier release):
    #: their days clamped to those, in force here as at the peer; the rest of its page kept.
    quarantine_refused: int = 0


# --- the serving side -------------------------------------------------------------------------


def peer_page(
    db: Database,
    kiosk_id: str,
    after: int,
    limit: int,
    since: datetime,
    boot_id: str | None = None,
    clock: ClockReading | None = None,
) -> dict[str, Any]:
    """This kiosk's passing passages after ``after`` stamped from ``since`` on, at most
    ``limit``: ``{"kiosk_id", "passages", "next", "last", "origin"}`` (``next``: the cursor to
    ask from next; ``last``: the log's newest seq; ``origin``: which log, its first event's
    id, ``None`` while it is empty; the API adds ``now``, this kiosk's time). A
    passage stamped on an unsynchronised clock goes at the time its boot's clock dates it
    (``kiosk.dating``); one of this boot (``boot_id``) stamped on a clock never set (1970)
    and not dated yet ends the page before it (``next`` the seq before), to be served once
    dated. A passage of this boot stamped on its clock not set (a clock behind: the time
    fake-hwclock saved, or a floor) and not dated yet is served, the clock read now
    (``clock``) being set, at the time it dates it (``ClockReading.wall_at``); else as
    stamped, the first such seq said (``unsynced_from``, ``None``: none), so the asker dates
    them by this clock's skew (``check_page``). ``StoreFault`` when the log cannot be read."""
    try:
        return _page(db, kiosk_id, after, limit, since, boot_id, clock)
    except sqlite3.Error as exc:
        raise StoreFault("store_fault", f"peer page: {type(exc).__name__}") from None


def _first_dated_since(db: Database, source: str, since: str, after: int) -> int | None:
    """The first ``seq`` of ``source`` dated at or after ``since``: stamped since (the ``ts``
    index), or stamped before NTP stepped the clock and dated since by its boot (the
    unsynchronised rows' index). Without it a page asked from seq 0 (a gate just paired)
    walked ``seq`` up from the log's first row to the look-back: a year of rows. When the
    row after ``after`` (the asker's cursor) is stamped since, that row: no earlier one
    matters to the page, and a poll at the head (every few seconds, for every peer) does not
    walk the look-back's days of rows for their first; None when no row follows it."""
    following = db.execute("SELECT seq, ts FROM events WHERE seq > ? ORDER BY seq LIMIT 1", [after])
    first = following.fetchone()
    if first is None:
        return None  # nothing after the cursor: the page has nothing to read
    if first[1] >= since:
        return int(first[0])
    found = [db.execute("SELECT min(seq) FROM events INDEXED BY events_ts WHERE ts >= ?", [since])]
    if source == "dated_events":
        found.append(db.execute("SELECT min(seq) FROM redated_events WHERE dated_ts >= ?", [since]))
    seqs = [int(row[0]) for row in (c.fetchone() for c in found) if row and row[0] is not None]
    return min(seqs, default=None)


#: A passing event of this boot (?) stamped on a clock never set (before 2000: 1970 on a
#: fresh card without network time, no floor to read from) that nothing dated yet: the first
#: ``seq`` after ? (index ``events_unsynced``).
_NEVER_SET_SQL = """
SELECT min(e.seq) FROM events e WHERE e.clock_synced = 0 AND e.boot_id = ? AND e.seq > ?
    AND e.ts < '2000' AND e.decision IN ('pass', 'manual_pass') AND NOT EXISTS (
        SELECT 1 FROM boot_clock b WHERE b.boot_id = e.boot_id AND b.seq > e.seq
    )
"""


#: The first event of this boot (?) stamped on its clock not synchronised, the boot not
#: dated since (no event of it on a set clock: ``kiosk.dating``); from it on, the log's stamps
#: are all that clock's (index ``events_unsynced``).
_UNDATED_SQL = """
SELECT min(seq) FROM events WHERE clock_synced = 0 AND boot_id = ? AND NOT EXISTS (
    SELECT 1 FROM boot_clock b WHERE b.boot_id = ?
)
"""


def _page(
    db: Database,
    kiosk_id: str,
    after: int,
    limit: int,
    since: datetime,
    boot_id: str | None,
    clock: ClockReading | None,
) -> dict[str, Any]:
    from .dating import dated_source

    head = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
    source, ts = dated_source(db)
    # A passage of this boot stamped on a clock never set says nothing of when it happened
    # (1970): the page ends before it until the boot dates it (its next event on a set
    # clock); else it was left out as older than the look-back, then behind the asker's
    # cursor. One of an earlier boot never dated will never be: left out, as it was.
    never_set = source != "events" and boot_id is not None
    hold = db.execute(_NEVER_SET_SQL, [boot_id, after]).fetchone()[0] if never_set else None
    undated = db.execute(_UNDATED_SQL, [boot_id, boot_id]).fetchone()[0] if never_set else None
    # Stamped on this boot's clock not set and not dated yet (a clock behind: fake-hwclock's
    # saved time): dated by the clock once it is set; until then said (``unsynced_from``), so
    # the asking gate dates them by this clock's time as the answer gives it (``now``).
    redate = undated is not None and clock is not None and clock.synced
    look_back = _first_dated_since(db, source, format_ts(since), after)
    lower = max(after, (head if look_back is None else look_back) - 1)
    failed = _not_opened_after(db, lower)
    rows = db.execute(
        f"SELECT seq, pass_id, household, direction, decision, {ts} AS ts, flags, mono_ns"  # noqa: S608
        f" FROM {source} WHERE seq > ? AND seq < ? AND decision IN ('pass', 'manual_pass')"
        f" AND {ts} >= ? AND seq NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?",
        [
            lower,
            MAX_SEQ if hold is None else hold,
            format_ts(since),
            json.dumps(failed),
            limit,
        ],
    ).fetchall()
    passages = [
        {
            "kiosk_id": kiosk_id,
            "seq": seq,
            "pass_id": pass_id,
            # A purged row's household (``PURGED_HOUSEHOLD``, a forget's before the peers read
            # it): none, as the page says it (a peer refuses an empty one, the page whole).
            "household": household or None,
            "direction": direction,
            "decision": decision,
            "ts": format_ts(clock.wall_at(mono)) if redate and clock and seq >= undated else stamp,
            "flags": [
                f for f in _stored_flags(flags, f"seq {seq} of this gate's log") if _served_flag(f)
            ],
        }
        for seq, pass_id, household, direction, decision, stamp, flags, mono in rows
    ]
    full = len(passages) == limit
    nxt = passages[-1]["seq"] if full else max(head, passages[-1]["seq"] if passages else after)
    if hold is not None and not full:
        nxt = hold - 1
    first = db.execute("SELECT id FROM events ORDER BY seq LIMIT 1").fetchone()
    origin = None if first is None else first[0]
    return {
        "kiosk_id": kiosk_id,
        "passages": passages,
        "next": nxt,
        "last": head,
        "origin": origin,
        "unsynced_from": None if redate else undated,
        "not_opened": failed,
    }


def _not_opened_after(db: Database, after: int) -> list[int]:
    """The seqs of this gate's passes it did not open for, named by rows after ``after``
    (the asker's cursor, or the look-back's first row), at most ``MAX_PAGE_NOT_OPENED`` (the
    first), in seq order: nobody went through on them, so the page leaves them out and tells
    the peers, which drop those they hold. Such a row comes after its pass, and a pass the
    asker holds is at or before its cursor, while any row it has not heard of is after it
    (written since its last page): so the rows after the cursor are all it needs, and a
    poll at the head reads none of the look-back (every few seconds, for every peer)."""
    found = not_opened_after(db, after, limit=MAX_PAGE_NOT_OPENED)
    return sorted(seq for seq in found if seq <= MAX_SEQ)


def _guard_rows(db: Database, table: str, sql: str, limit: int, what: str) -> list[Any]:
    """The rows of ``sql`` (one ``LIMIT ?``) from this gate's lists ``table``, none when the
    table is not there yet; ``StoreFault`` (naming ``what``) when they cannot be read."""
    try:
        if not _has(db, table):
            return []
        return db.execute(sql, [limit]).fetchall()
    except sqlite3.Error as exc:
        raise StoreFault("store_fault", f"peer {what}: {type(exc).__name__}") from None


def guard_revocations(db: Database) -> list[dict[str, Any]]:
    """This gate's guards' revocations (``list_revocations`` of source ``guard``: a card voided
    on the Passes or lists page; or ``forget``: a forgotten person's card), newest first, at
    most ``MAX_PAGE_REVOCATIONS``, for its peers' page: pass id, when, the guard's name;
    never the reason (free text). An office's revocation is not among them (every gate has
    it from the office's bundle).
    ``StoreFault`` when the lists cannot be read."""
    return list(revocations_page(db)["revocations"])


def revocations_page(db: Database) -> dict[str, list[Any]]:
    """What a page says of this gate's revocations, read at once: ``revocations``
    (``guard_revocations``) and ``forgotten``, the pass ids of those a resident's forget made
    (source ``forget``), so the other gates record a deny of such a card as this one does,
    naming nobody. ``StoreFault`` when the lists cannot be read."""
    rows = _guard_rows(
        db,
        "list_revocations",
        "SELECT pass_id, revoked_at, actor, source FROM list_revocations"  # noqa: S608
        f" WHERE source IN ({', '.join(repr(s) for s in GATE_SOURCES)})"
        " ORDER BY revoked_at DESC, pass_id LIMIT ?",
        MAX_PAGE_REVOCATIONS,
        "revocations",
    )
    out, forgotten = [], []
    for pass_id, revoked_at, actor, source in rows:
        try:
            at: str | None = format_ts(_when(revoked_at, "revoked_at"))
        except PeerPageError:
            at = None
        who = actor[:MAX_ACTOR] if isinstance(actor, str) and actor else None
        out.append({"pass_id": pass_id, "revoked_at": at, "actor": who})
        if source == FORGET_SOURCE:
            forgotten.append(pass_id)
    return {"revocations": out, FORGOTTEN_KEY: forgotten}


def guard_quarantine(db: Database) -> list[dict[str, Any]]:
    """This gate's guards' quarantine entries (``list_quarantine`` of source ``guard``), those
    ending last first, at most ``MAX_PAGE_QUARANTINE``, for its peers' page: the entry's
    number, household, person (None: the whole household), days and the guard's name; never
    the note (free text). The office's entries reach every gate in its bundle.
    ``StoreFault`` when the lists cannot be read."""
    rows = _guard_rows(
        db,
        "list_quarantine",
        "SELECT id, household, holder, from_date, until_date, actor FROM list_quarantine"
        " WHERE source = 'guard' ORDER BY until_date DESC, id DESC LIMIT ?",
        MAX_PAGE_QUARANTINE,
        "quarantine",
    )
    return [
        {"id": entry_id, "household": household, "holder": holder, "from": start,
         "until": end, "actor": actor[:MAX_ACTOR] if isinstance(actor, str) and actor else None}
        for entry_id, household, holder, start, end, actor in rows
    ]  # fmt: skip


def _page_message(kiosk_id: str, nonce: str, after: int, limit: int, body: bytes) -> bytes:
    asked = f"{kiosk_id}\n{nonce}\n{after}\n{limit}\n".encode()
    return _PAGE_SIGNED + asked + hashlib.sha256(body).digest()


def sign_page(
    key: Ed25519PrivateKey, kiosk_id: str, nonce: str, after: int, limit: int, body: bytes
) -> str:
    """The ``SIGNATURE_HEADER`` of ``body``, this kiosk's answer to ``nonce``, ``after`` and
    ``limit``: bound to that request, so it is worth nothing as the answer to another."""
    signature = key.sign(_page_message(kiosk_id, nonce, after, limit, body))
    encoded = base64.urlsafe_b64encode(signature).decode("ascii").rstrip("=")
    return f"{key_id_of(key.public_key())}:{encoded}"


def verify_page(
    key: Ed25519PublicKey,
    header: str | None,
    kiosk_id: str,
    nonce: str,
    after: int,
    limit: int,
    body: bytes,
) -> None:
    """``PeerForged`` unless ``header`` is ``key``'s signature of ``body`` as the answer of
    ``kiosk_id`` to this very request (``nonce``, ``after``, ``limit``); ``PeerUnsigned`` (a
    ``PeerForged``) when there is no signature at all."""
    _verify(key, header, _page_message(kiosk_id, nonce, after, limit, body), "answer")


def _verify(key: Ed25519PublicKey, header: str | None, message: bytes, what: str) -> None:
    if header is None:
        raise PeerUnsigned(
            "it sends no signature, and its key is pinned here: that gate has no issuer key or"
            " runs a release before signed pages (upgrade it), or the key pinned is not its"
            " own (check trust_key); nothing of it is kept"
        )
    said_id, _, encoded = header.partition(":")
    try:
        signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        key.verify(signature, message)
    except (InvalidSignature, binascii.Error, ValueError):
        theirs = key_id_of(key)
        other = f" (signed by key {_shown(said_id)})" if said_id and said_id != theirs else ""
        raise PeerForged(
            f"its {what} is not signed by its key {theirs} for this request{other}: forged or"
            " replayed, nothing of it is kept"
        ) from None


def _closing_message(kiosk_id: str, to: str, at: str) -> bytes:
    return _CLOSING_SIGNED + f"{kiosk_id}\n{to}\n{at}\n".encode()


def sign_closing(key: Ed25519PrivateKey, kiosk_id: str, to: str, at: str) -> str:
    """The ``SIGNATURE_HEADER`` of gate ``kiosk_id``'s notice to gate ``to`` that it is
    closing (stopping cleanly) at ``at`` (``format_ts``, its clock): bound to that peer and
    that time, so it says nothing to another gate, nor later."""
    signature = key.sign(_closing_message(kiosk_id, to, at))
    encoded = base64.urlsafe_b64encode(signature).decode("ascii").rstrip("=")
    return f"{key_id_of(key.public_key())}:{encoded}"


def verify_closing(
    key: Ed25519PublicKey, header: str | None, kiosk_id: str, to: str, at: str
) -> None:
    """``PeerForged`` unless ``header`` is ``key``'s signature of ``kiosk_id``'s closing
    notice to ``to`` at ``at``; ``PeerUnsigned`` when there is none."""
    _verify(key, header, _closing_message(kiosk_id, to, at), "closing notice")


def closing_time(value: str) -> datetime:
    """A closing notice's time (UTC, ISO 8601 with its offset); ``PeerPageError``."""
    return _when(value, "closing")


# --- the fetching side: what a peer sent, judged ------------------------------------------------


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if isinstance(value, int | float | bool) or value is None:
        return repr(value)[:40]
    return f"a JSON {'list' if isinstance(value, list) else 'object'}"


def _seq(value: object, what: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SEQ:
        raise PeerPageError(f"{what} is {_shown(value)}, not a seq")
    return value


def _text(row: Mapping[str, Any], key: str, most: int) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= most or not _storable(value):
        # Its value is not repeated: it may be a person's (the error goes to the log).
        raise PeerPageError(f"row {key} is not text of 1 to {most} characters")
    return value


def _storable(value: str) -> bool:
    """Whether ``value`` is text SQLite can hold: JSON may carry a lone surrogate
    (``"\\ud800"``), which no UTF-8 encoder takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _when(value: object, what: str = "row ts") -> datetime:
    if not isinstance(value, str) or len(value) > MAX_TS_CHARS:
        raise PeerPageError(f"{what} is {_shown(value)}, not a time")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PeerPageError(f"{what} is {_shown(value)}, not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise PeerPageError(f"{what} is {_shown(value)}, without its UTC offset")
    try:
        return when.astimezone(UTC)
    except OverflowError:  # year 1 with an offset east of UTC
        raise PeerPageError(f"{what} is {_shown(value)}, out of range") from None


def _row(raw: object, kiosk_id: str) -> tuple[PeerRow, datetime]:
    if not isinstance(raw, dict):
        raise PeerPageError("a passage that is not a JSON object")
    if not raw.keys() <= _ROW_KEYS:
        raise PeerPageError(f"a passage with a field {_shown(sorted(raw.keys() - _ROW_KEYS)[0])}")
    if raw.get("kiosk_id") != kiosk_id:
        raise PeerPageError(
            f"a passage of kiosk {_shown(raw.get('kiosk_id'))} in the answer of {kiosk_id}"
            " (a forged row: the page is refused)"
        )
    direction, decision = raw.get("direction"), raw.get("decision")
    if direction not in ("in", "out"):
        raise PeerPageError(f"row direction is {_shown(direction)}, not 'in' or 'out'")
    if not isinstance(decision, str) or decision not in COUNTED_DECISIONS:  # a list: unhashable
        raise PeerPageError(f"row decision is {_shown(decision)}, not a passing decision")
    flags = raw.get("flags", [])
    if not isinstance(flags, list) or len(flags) > 8:
        raise PeerPageError(f"row flags is {_shown(flags)}, not a short list")
    if not all(isinstance(f, str) and len(f) <= 40 for f in flags):
        raise PeerPageError("row flags holds a value that is not a short text")
    when = _when(raw.get("ts"))
    row = PeerRow.of_flags(
        kiosk_id,
        _seq(raw.get("seq"), "row seq"),
        (
            _text(raw, "pass_id", MAX_PASS_ID),
            # A gate before 2026-12-07 served a purged row's household as ``PURGED_HOUSEHOLD``.
            None
            if raw.get("household") == PURGED_HOUSEHOLD
            else _text(raw, "household", MAX_HOUSEHOLD),
            str(direction),
            str(decision),
            format_ts(when),
        ),
        flags,
    )
    return row, when


def _stored_flags(text: str | None, row: str) -> list[str]:
    """A passage's stored ``flags`` (``kiosk.unreadable.decode_json``). Text a damaged card
    left that is no JSON list reads as none: no role and never ``quota_exempt``, so the
    passage counts as any outing, never less. Logged by ``row`` (the gate and seq) alone."""
    decoded = decode_json({"flags": text or "[]"}, ["flags"])
    flags = decoded["flags"]
    if UNREADABLE in decoded or not isinstance(flags, list):
        log.warning(
            "passage %s: its flags cannot be read (damaged); counted as an outing of no"
            " role, not exempt (kiosk verify-log names the event row)",
            row,
        )
        return []
    return [str(flag) for flag in flags]


def _served_flag(flag: str) -> bool:
    """A flag of a passage that the other gates' quota reads: ``quota_exempt``, the role."""
    return flag == QUOTA_EXEMPT or flag.startswith(ROLE_FLAG)


def check_page(
    page: object,
    kiosk_id: str,
    after: int,
    limit: int,
    now: datetime,
    compound: str | None = None,
    origin: str | None = None,
    synced: bool = True,
    *,
    signed: bool = False,
) -> CheckedPage:
    """A peer's answer to ``after=after&limit=limit``, judged: ``PeerPageError`` (nothing
    kept) unless it is of ``kiosk_id`` (the id its URL is pinned to), of this gate's
    ``compound`` when both say theirs (``[compound] id``, case ignored: another compound's
    3-201 is another household), with at most ``limit`` rows of that kiosk, each seq after
    ``after`` and after the one before, every value within its bounds. Rows stamped more than
    ``MAX_AHEAD`` after ``now`` are dropped (``ahead``), and so are rows whose household or pass
    id holds a character nobody sees (``refused``, ``kiosk.typed.unseen``); the page's own
    ``now``, when it has one, less ``now`` is its ``skew``. ``PeerRestarted`` when its log
    ends before ``after``, or is another log than ``origin`` (the one held here, when both are
    known); ``PeerRolledBack`` when it ends before ``after`` and is that same log. On a clock not
    ``synced`` a row ahead of it is no proof of a wrong one: the page ends before it (``next``
    the seq before), to be asked for again (``held_back``) once the clock is set. Rows from
    the page's ``unsynced_from`` on were stamped on the peer's clock not set (fake-hwclock's
    saved time, hours behind): on a ``synced`` clock here they are dated by its skew
    (``redated``; a passage at 10:00 stamped 07:00 is counted at 10:00, for the passback and
    the quota), the others kept as stamped. ``signed``: by the peer's pinned key (its marks)."""
    if not isinstance(page, dict):
        raise PeerPageError("the answer is not a JSON object (not a kiosk?)")
    if page.get("kiosk_id") != kiosk_id:
        raise PeerPageError(
            f"answers as kiosk {_shown(page.get('kiosk_id'))}, and its URL is pinned to"
            f" {kiosk_id} (compound.peers kiosk_id): nothing of it is kept"
        )
    _same_compound(page.get("compound"), compound)
    last, said_origin = _same_log(page, after, origin)
    raw = _passages(page, limit)
    said = None if page.get("now") is None else _when(page.get("now"), "now")
    skew = None if said is None else max(-MAX_SKEW_KEPT, min(MAX_SKEW_KEPT, said - now))
    undated, shift = _undated(page, skew, synced)
    redated = 0
    rows: list[PeerRow] = []
    ahead, previous, latest = 0, after, now + MAX_AHEAD
    held: int | None = None  # on a clock not set: the seq before the first row ahead of it
    held_back = refused = 0
    failed = _not_opened(page.get("not_opened"))
    for item in raw:
        row, when = _row(item, kiosk_id)
        if row.seq <= previous:
            raise PeerPageError(f"row seq {row.seq} does not follow {previous}")
        moved = shift is not None and undated is not None and row.seq >= undated
        if moved:
            row, when, moved = _dated_by(row, when, shift)
        if when > latest and not synced and held is None:
            held = previous
        previous = row.seq
        if held is not None:
            held_back += 1
            continue
        if unseen(row.household or "") or unseen(row.pass_id or ""):
            refused += 1  # its value is not repeated: it may be a person's
            continue
        if when > latest:
            ahead += 1
            continue
        if failed is not None and row.seq in failed:
            continue  # its gate did not open for it: nobody went through
        rows.append(row)
        redated += moved
    nxt = _seq(page.get("next"), "next")
    if nxt < previous or nxt > max(last, previous):
        raise PeerPageError(f"next is {nxt}, outside {previous}..{max(last, previous)}")
    nxt = nxt if held is None else held  # held_back is 0 when nothing is held
    revocations = _revocations(page.get("revocations"), kiosk_id, page.get(FORGOTTEN_KEY), signed)
    quarantine, outside = _quarantine(page.get("quarantine"), kiosk_id)
    return CheckedPage(
        rows, nxt, last, ahead, skew, said, said_origin, held_back, refused, redated, revocations,
        quarantine, None if failed is None else tuple(sorted(failed)), outside,
    )  # fmt: skip


def _passages(page: dict[str, Any], limit: int) -> list[Any]:
    """A page's ``passages``, a list of at most ``limit`` (its rows judged one by one)."""
    raw = page.get("passages")
    if not isinstance(raw, list):
        raise PeerPageError("the answer has no passages list")
    if len(raw) > limit:
        raise PeerPageError(f"{len(raw)} passages in a page asked for at most {limit}")
    return raw


def _not_opened(raw: object) -> frozenset[int] | None:
    """A page's ``not_opened`` judged (``PeerPageError``: the page is refused whole): at most
    ``MAX_PAGE_NOT_OPENED`` seqs; ``None`` when the page says none (a peer on an earlier
    release)."""
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > MAX_PAGE_NOT_OPENED:
        raise PeerPageError(
            f"not_opened is {_shown(raw)}, not a list of at most {MAX_PAGE_NOT_OPENED} seqs"
        )
    return frozenset(_seq(item, "a not_opened seq") for item in raw)


def _quarantine(raw: object, kiosk_id: str) -> tuple[tuple[PeerQuarantine, ...] | None, int]:
    """A page's ``quarantine`` judged (``PeerPageError``: the page is refused whole): at most
    ``MAX_PAGE_QUARANTINE`` entries, each numbered once, its household and person readable
    text within bounds, its days calendar dates in order; ``None`` when the page says none
    (a peer on an earlier release). An entry with a day outside ``FIRST_DAY``..``LAST_DAY``
    has its days clamped to them and stays in force (the peer holds the household in: this
    gate must not let it out), counted: with how many were, never refusing the page."""
    if raw is None:
        return None, 0
    if not isinstance(raw, list) or len(raw) > MAX_PAGE_QUARANTINE:
        raise PeerPageError(
            f"quarantine is not a list of at most {MAX_PAGE_QUARANTINE} ({_shown(raw)})"
        )
    out: dict[int, PeerQuarantine] = {}
    outside = 0
    for item in raw:
        if not isinstance(item, dict) or not item.keys() <= _QUARANTINE_KEYS:
            raise PeerPageError(
                "a quarantine entry that is not an object of id, household, holder, from,"
                " until, actor"
            )
        entry_id = _seq(item.get("id"), "a quarantine entry's id")
        if entry_id in out:
            raise PeerPageError(f"quarantine entry {entry_id} is said twice")
        household = _text(item, "household", MAX_HOUSEHOLD)
        holder = _text(item, "holder", MAX_HOLDER)
        if household is None or unseen(household) or (holder is not None and unseen(holder)):
            raise PeerPageError("a quarantine entry's household or person is not readable text")
        start, end = _day(item.get("from")), _day(item.get("until"))
        if end < start:
            raise PeerPageError(f"quarantine entry {entry_id} ends before it starts")
        if not FIRST_DAY <= start <= end <= LAST_DAY:
            outside += 1  # clamped, counted: in force here as at the peer, never for good
            start, end = _clamped(start), _clamped(end)
        actor = _text(item, "actor", MAX_ACTOR)
        out[entry_id] = PeerQuarantine(
            kiosk_id, entry_id, household, holder, start.isoformat(), end.isoformat(),
            None if actor is None or unseen(actor) else actor,
        )  # fmt: skip
    return tuple(out.values()), outside


def _clamped(day: date) -> date:
    """``day`` held to ``FIRST_DAY``..``LAST_DAY`` (days in order stay in order)."""
    return min(max(day, FIRST_DAY), LAST_DAY)


def _day(value: object) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise PeerPageError(f"a quarantine day is {_shown(value)}, not a date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeerPageError(f"a quarantine day is {_shown(value)}, not a date") from None


def _revocations(
    raw: object, kiosk_id: str, forgotten: object = None, marks: bool = True
) -> tuple[PeerRevocation, ...] | None:
    """A page's ``revocations`` judged (``PeerPageError``: the page is refused whole): at most
    ``MAX_PAGE_REVOCATIONS``, each a pass id of the lists' form, its time and guard's name
    bounded; ``None`` when the page says none (a peer on an earlier release). Those its
    ``forgotten`` names (``_forgotten``) are marked so only when ``marks`` (a page signed by the
    peer's pinned key), the list judged all the same: anyone answering at an unpinned peer's
    address could say a card was forgotten, and this gate's deny of it would name nobody. An
    unsigned page's revocations are held as a guard's, as an earlier gate's."""
    marked = _forgotten(forgotten)
    if raw is None:
        if marked:
            raise PeerPageError("forgotten names revocations the page does not hold")
        return None
    if not isinstance(raw, list) or len(raw) > MAX_PAGE_REVOCATIONS:
        raise PeerPageError(
            f"revocations is not a list of at most {MAX_PAGE_REVOCATIONS} ({_shown(raw)})"
        )
    out: dict[str, PeerRevocation] = {}
    for item in raw:
        if not isinstance(item, dict) or not item.keys() <= _REVOCATION_KEYS:
            raise PeerPageError("a revocation that is not an object of pass_id, revoked_at, actor")
        pass_id = item.get("pass_id")
        if not isinstance(pass_id, str) or not _PASS_ID.fullmatch(pass_id):
            raise PeerPageError(f"a revocation's pass_id is {_shown(pass_id)}, not 12 hex digits")
        at = item.get("revoked_at")
        when = None if at is None else format_ts(_when(at, "revoked_at"))
        actor = _text(item, "actor", MAX_ACTOR)
        if actor is not None and unseen(actor):
            actor = None  # a name nobody could read: the revocation holds, unnamed
        mark = marks and pass_id in marked
        out.setdefault(pass_id, PeerRevocation(kiosk_id, pass_id, when, actor, mark))
    if not marked <= out.keys():
        raise PeerPageError("forgotten names revocations the page does not hold")
    return tuple(out.values())


def _forgotten(raw: object) -> frozenset[str]:
    """A page's ``forgotten`` judged: a list of at most ``MAX_PAGE_REVOCATIONS`` pass ids of the
    lists' form (``PeerPageError`` else); none when the page says none (a gate on a release
    before it: its revocations held as a guard's)."""
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or len(raw) > MAX_PAGE_REVOCATIONS:
        raise PeerPageError(
            f"forgotten is not a list of at most {MAX_PAGE_REVOCATIONS} ({_shown(raw)})"
        )
    for pass_id in raw:
        if not isinstance(pass_id, str) or not _PASS_ID.fullmatch(pass_id):
            raise PeerPageError(f"a forgotten pass_id is {_shown(pass_id)}, not 12 hex digits")
    return frozenset(raw)


def _same_log(page: dict[str, Any], after: int, origin: str | None) -> tuple[int, str | None]:
    """The page's ``last`` and ``origin``: ``PeerRolledBack`` or ``PeerRestarted`` when its
    log ends before ``after`` or is another than ``origin`` (``check_page``)."""
    last = _seq(page.get("last"), "last")
    said_origin = _origin(page.get("origin"))
    if last < after and origin is not None and said_origin == origin:
        raise PeerRolledBack(
            f"its log ends at seq {last}, before {after} already fetched, and is the same log"
            " (restored from an older copy?)",
            last,
        )
    if last < after:
        raise PeerRestarted(f"its log ends at seq {last}, before {after} already fetched")
    if origin is not None and said_origin is not None and said_origin != origin:
        raise PeerRestarted(
            f"it answers from another log than the one held here (its first event"
            f" {said_origin}, not {origin}: a new card?)"
        )
    return last, said_origin


def _undated(
    page: dict[str, Any], skew: timedelta | None, synced: bool
) -> tuple[int | None, timedelta | None]:
    """The page's ``unsynced_from`` (the first seq stamped on the peer's clock not set), and
    the skew those rows are dated by: on this clock set only, and not one beyond what is kept
    (a clock at year 9999 tells no time)."""
    said = page.get("unsynced_from")
    undated = None if said is None else _seq(said, "unsynced_from")
    trusted = skew is not None and abs(skew) < MAX_SKEW_KEPT
    return undated, (skew if synced and undated is not None and trusted else None)


def _dated_by(
    row: PeerRow, when: datetime, skew: timedelta | None
) -> tuple[PeerRow, datetime, bool]:
    """A row the peer stamped on its clock not set, dated by that clock's ``skew`` (its
    ``now`` less this clock's, set); whether it moved (one dated beyond the calendar stays)."""
    if skew is None:
        return row, when, False
    try:
        dated = when - skew
    except OverflowError:
        return row, when, False
    return dataclasses.replace(row, ts=format_ts(dated)), dated, True


def _origin(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ORIGIN.fullmatch(value):
        raise PeerPageError(f"origin is {_shown(value)}, not an event id")
    return value


def _same_compound(said: object, compound: str | None) -> None:
    """``PeerPageError`` when the peer says a compound (``[compound] id``) other than this
    gate's: its passages are of another compound's households, under codes of their own."""
    if said is None or compound is None:
        return
    if not isinstance(said, str) or not _COMPOUND_ID.fullmatch(said):
        raise PeerPageError(f"compound is {_shown(said)}, not a compound id")
    if said.casefold() != compound.casefold():  # ids are ASCII ([compound] id)
        raise PeerPageError(
            f"a gate of compound {said.casefold()}, and this gate's is {compound.casefold()}"
            " ([compound] id): its passages are another compound's households; nothing of it"
            " is kept (fix compound.peers or the ids)"
        )


def closed_window(
    now: datetime, tz: ZoneInfo, hours: tuple[time, time]
) -> tuple[datetime | None, datetime]:
    """A peer's closed hours (``closed_from``, ``closed_until``: local times in ``tz``, the
    window across midnight when ``from`` is the later) at ``now``: when the window ``now`` is
    in began (``None``: it is not in one), and when the last one ended (at or before
    ``now``). Each window is the instants its times name on its days (``local_at``: a time the
    spring change skips is when the clock went on, one the autumn change repeats its first
    pass), ``now`` compared with them as an instant: 02:10 of the repeated hour's second pass
    is after a window that ended at 02:30 of the first."""
    day = now.astimezone(tz).date()
    # The windows begun on the two days before now's and on its own: the last that ended is
    # among them, and the one now is in.
    windows = [span_on(day + timedelta(days=days), hours, tz) for days in (-2, -1, 0)]
    began = next((b for b, e in reversed(windows) if b <= now < e), None)
    return began, max(e for _, e in windows if e <= now)


# --- the table ----------------------------------------------------------------------------------


#: A trim that dropped rows (a busy peer's polls trim a row or two each, at ``max_rows`` or as
#: rows age past the look-back) wipes the WAL at most this often; between, the wipe stays owed
#: (``kiosk.wipe``): done by the next trim past it, or the hourly purge.
TRIM_WIPE_EVERY_S = 300.0


class PeerLedger:
    """``peer_passages`` and ``peer_cursors`` on the event log (writes through its writer).

    ``boot_id``: the boot the gate's monotonic clock is of (the log's). With it, a row fetched
    on a clock not set keeps that boot and the monotonic time (``merge``'s ``mono_ns``) beside
    its ``fetched_at`` (1970, or the last shutdown's time), and the first merge on this boot's
    clock once set dates it: the alarms' look-back after a restart reads when it was learnt."""

    def __init__(
        self, store: Store, horizon: timedelta, max_rows: int = 20000, boot_id: str | None = None
    ) -> None:
        self.store = store
        self.horizon = horizon
        self.max_rows = max_rows
        self.boot_id = boot_id
        self._trim_wiped: int | None = None  # the monotonic ns of a trim's last wipe

    def cursor(self, kiosk_id: str) -> int:
        row = (
            self.store.reader()
            .execute("SELECT after FROM peer_cursors WHERE kiosk_id = ?", [kiosk_id])
            .fetchone()
        )
        return int(row[0]) if row is not None else 0

    def origin(self, kiosk_id: str) -> str | None:
        """Which of the peer's logs the rows held are of (``CheckedPage.origin``)."""
        row = (
            self.store.reader()
            .execute("SELECT origin FROM peer_cursors WHERE kiosk_id = ?", [kiosk_id])
            .fetchone()
        )
        return None if row is None or row[0] is None else str(row[0])

    def held(self) -> dict[str, int]:
        """Rows held of each peer."""
        rows = self.store.reader().execute(
            "SELECT kiosk_id, COUNT(*) FROM peer_passages GROUP BY kiosk_id"
        )
        return {kiosk_id: int(count) for kiosk_id, count in rows.fetchall()}

    def merge(
        self,
        url: str,
        kiosk_id: str,
        page: CheckedPage,
        now: datetime,
        *,
        synced: bool = True,
        mono_ns: int | None = None,
    ) -> list[PeerRow]:
        """Keep ``page``'s rows and move the cursor, in one transaction; the rows that were
        new (a row already held is not returned twice). Then the table is trimmed: a peer's
        oldest past ``max_rows``, and, on a synchronised clock (``synced``: one far ahead
        would drop every real row), rows older than the horizon (a trim that dropped any
        wipes the WAL after the commit, ``kiosk.wipe``). ``mono_ns``: this boot's
        monotonic clock at ``now`` (with the ledger's ``boot_id``): a row fetched on a clock
        not set keeps it, and one fetched so earlier in this boot is dated on a set one."""
        fetched = format_ts(now)
        since = format_ts(now - self.horizon) if synced else None
        boot = self.boot_id if mono_ns is not None else None
        undated = (boot, mono_ns) if boot is not None and not synced else (None, None)
        dating = (
            (now, mono_ns, boot) if boot is not None and mono_ns is not None and synced else None
        )
        if not page.rows and self._idle(url, kiosk_id, page, since, dating is not None):
            return []  # a poll with nothing new (most are): no commit, no fsync on the card
        trimmed: list[int] = []

        def write(db: Database) -> list[PeerRow]:
            if dating is not None:
                _date_fetches(db, *dating)
            new = []
            for row in page.rows:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO peer_passages (kiosk_id, seq, pass_id, household,"
                    " direction, decision, ts, flags, fetched_at, fetched_boot, fetched_mono_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        row.kiosk_id,
                        row.seq,
                        row.pass_id,
                        row.household,
                        row.direction,
                        row.decision,
                        row.ts,
                        json.dumps(list(row.flags)),
                        fetched,
                        *undated,
                    ],
                )
                if cursor.rowcount:
                    new.append(row)
            db.execute(
                "INSERT INTO peer_cursors (kiosk_id, after, url, updated_at, origin)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (kiosk_id) DO UPDATE SET"
                " after = excluded.after, url = excluded.url, updated_at = excluded.updated_at,"
                " origin = COALESCE(excluded.origin, origin)",
                [kiosk_id, page.next, url, fetched, page.origin],
            )
            trimmed.append(self._trim(db, kiosk_id, since))
            return new

        new = self.store.submit(write)
        if any(trimmed) and self._trim_wipe_due():
            wipe_removed(self.store)  # the trimmed rows' pass ids and households
        return new

    def _trim_wipe_due(self) -> bool:
        """Whether a trim that dropped rows wipes the WAL now: the first, then at most once
        per ``TRIM_WIPE_EVERY_S`` (one per poll of a busy peer was a checkpoint and an fsync
        of the card every few seconds); between, the wipe stays owed."""
        if not isinstance(self.store, WalWiper):
            return False
        now = self.store.clock.monotonic_ns()
        last = self._trim_wiped
        if last is not None and now - last < TRIM_WIPE_EVERY_S * 1e9:
            return False
        self._trim_wiped = now
        return True

    def _idle(
        self, url: str, kiosk_id: str, page: CheckedPage, since: str | None, dating: bool
    ) -> bool:
        """Whether keeping ``page`` (no rows) would change nothing but the cursor's
        ``updated_at``: the cursor, URL and origin as held, nothing to trim (no row past
        the horizon, none past ``max_rows``) and, when ``dating``, no row of this boot's
        fetched on its clock not set. Asked on a reader, so an idle poll writes nothing (one
        every ``poll_s`` per peer was a WAL frame and an fsync on the SD card)."""
        db = self.store.reader()
        if (
            dating
            and db.execute(
                "SELECT 1 FROM peer_passages WHERE fetched_boot = ? AND fetched_mono_ns IS NOT NULL"
                " LIMIT 1",
                [self.boot_id],
            ).fetchone()
        ):
            return False
        held = db.execute(
            "SELECT after, url, origin FROM peer_cursors WHERE kiosk_id = ?", [kiosk_id]
        ).fetchone()
        if held is None or (held[0], held[1]) != (page.next, url):
            return False
        if page.origin is not None and held[2] != page.origin:
            return False
        if (
            since is not None
            and db.execute("SELECT 1 FROM peer_passages WHERE ts < ? LIMIT 1", [since]).fetchone()
        ):
            return False
        over = db.execute(
            "SELECT 1 FROM peer_passages WHERE kiosk_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
            [kiosk_id, self.max_rows],
        ).fetchone()
        return over is None

    def restart(self, kiosk_id: str, now: datetime) -> None:
        """The peer's log is shorter than the cursor (a new database there): its seqs start
        again, so its rows held and the cursor go (the history keeps what it counted)."""

        def write(db: Database) -> int:
            gone = db.execute("DELETE FROM peer_passages WHERE kiosk_id = ?", [kiosk_id])
            db.execute("DELETE FROM peer_cursors WHERE kiosk_id = ?", [kiosk_id])
            return _owe_if(self.store, db, gone.rowcount)

        if self.store.submit(write):
            wipe_removed(self.store)  # the rows' pass ids and households

    def set_closed(
        self, url: str, kiosk_id: str, at: datetime | None, said: datetime | None, now: datetime
    ) -> None:
        """Keep that the peer said it is closing (``at``, this gate's clock; ``said``, its
        own), or (``None``) that it answered again: a restart of this gate still knows."""
        values = [None if t is None else format_ts(t) for t in (at, said)]

        def write(db: Database) -> None:
            db.execute(
                "INSERT INTO peer_cursors (kiosk_id, after, url, updated_at, closed_at,"
                " closing_said) VALUES (?, 0, ?, ?, ?, ?) ON CONFLICT (kiosk_id) DO UPDATE SET"
                " closed_at = excluded.closed_at, closing_said = excluded.closing_said",
                [kiosk_id, url, format_ts(now), *values],
            )

        self.store.submit(write)

    def closings(self) -> dict[str, tuple[datetime, datetime]]:
        """The peers that said they are closing and have not answered since: ``{kiosk_id:
        (when, by its clock)}``."""
        rows = self.store.reader().execute(
            "SELECT kiosk_id, closed_at, closing_said FROM peer_cursors"
            " WHERE closed_at IS NOT NULL AND closing_said IS NOT NULL"
        )
        return {k: (_stamp(at), _stamp(said)) for k, at, said in rows.fetchall()}

    def set_revocations(
        self,
        kiosk_id: str,
        revocations: Iterable[PeerRevocation],
        now: datetime,
        *,
        synced: bool = True,
    ) -> bool:
        """Hold ``revocations`` as the peer's whole set (those it no longer says were restored
        there, and go); whether the set changed. Unchanged, nothing is written but the time
        they were seen, once a ``SEEN_REFRESH`` on a synchronised clock (a poll every few
        seconds is no write on the card)."""
        wanted = {(r.pass_id, r.revoked_at, r.actor, int(r.forgotten)) for r in revocations}
        return self._hold_set(
            "peer_revocations", _REVOCATION_COLUMNS, kiosk_id, wanted, now, synced
        )

    def set_quarantine(
        self,
        kiosk_id: str,
        entries: Iterable[PeerQuarantine],
        now: datetime,
        *,
        synced: bool = True,
    ) -> bool:
        """Hold ``entries`` as the peer's whole set of guards' quarantine (those it no longer
        says were lifted there, and go); whether the set changed. Written as
        ``set_revocations`` writes: unchanged, only the time seen, once a ``SEEN_REFRESH``."""
        wanted = {
            (q.entry_id, q.household, q.holder, q.from_date, q.until_date, q.actor) for q in entries
        }
        return self._hold_set("peer_quarantine", _QUARANTINE_COLUMNS, kiosk_id, wanted, now, synced)

    def _hold_set(
        self,
        table: str,
        columns: tuple[str, ...],
        kiosk_id: str,
        wanted: set[tuple[Any, ...]],
        now: datetime,
        synced: bool,
    ) -> bool:
        """``wanted`` (rows of ``columns``) as the peer's whole set in ``table``; whether it
        changed. Unchanged, nothing is written but the time the rows were seen (``seen_at``),
        once a ``SEEN_REFRESH`` on a synchronised clock. Rows the peer no longer holds (a
        quarantine its guard lifted early, a void restored) are wiped from the WAL too
        (``kiosk.wipe``)."""
        listed = ", ".join(columns)
        held = {
            tuple(row[:-1]): row[-1]
            for row in self.store.reader().execute(
                f"SELECT {listed}, seen_at FROM {table} WHERE kiosk_id = ?",  # noqa: S608
                [kiosk_id],
            )
        }
        changed = set(held) != wanted
        due = format_ts(now - SEEN_REFRESH)
        old = synced and any(seen is None or seen < due for seen in held.values())
        if not changed and not old:
            return False
        seen_at = format_ts(now) if synced else None
        marks = ", ".join("?" * (len(columns) + 2))
        gone = bool(held.keys() - wanted)

        def write(db: Database) -> None:
            db.execute(f"DELETE FROM {table} WHERE kiosk_id = ?", [kiosk_id])  # noqa: S608
            db.conn.executemany(
                f"INSERT INTO {table} (kiosk_id, {listed}, seen_at) VALUES ({marks})",  # noqa: S608
                [(kiosk_id, *row, seen_at) for row in sorted(wanted, key=str)],
            )
            if gone:
                owe_wipe(self.store, db)

        self.store.submit(write)
        if gone:
            wipe_removed(self.store)
        return changed

    def drop_not_opened(self, kiosk_id: str, seqs: Iterable[int]) -> list[PeerRow]:
        """Drop the peer's rows held here that its gate says it did not open for (its page's
        ``not_opened``, fetched before it knew): nobody went through on them. The rows
        dropped, for the history to take back (``forget_peer_rows``); none held (most asks:
        a page says them until its cursor passes their rows), nothing is written."""
        wanted = json.dumps(sorted(set(seqs)))
        if wanted == "[]":
            return []
        held = self.store.reader().execute(
            "SELECT seq, pass_id, household, direction, decision, ts, flags FROM peer_passages"
            " WHERE kiosk_id = ? AND seq IN (SELECT value FROM json_each(?))",
            [kiosk_id, wanted],
        )
        rows = [
            PeerRow.of_flags(
                kiosk_id,
                int(seq),
                (p, h, str(d), str(dec), str(ts)),
                _stored_flags(f, f"{kiosk_id} seq {seq}"),
            )
            for seq, p, h, d, dec, ts, f in held.fetchall()
        ]
        if not rows:
            return []
        gone = json.dumps([row.seq for row in rows])

        def write(db: Database) -> None:
            db.execute(
                "DELETE FROM peer_passages WHERE kiosk_id = ?"
                " AND seq IN (SELECT value FROM json_each(?))",
                [kiosk_id, gone],
            )
            owe_wipe(self.store, db)  # their pass ids and households

        self.store.submit(write)
        wipe_removed(self.store)
        return rows

    def rolled_back(self, kiosk_id: str, last: int) -> None:
        """The peer's log was restored from an older copy ending at ``last``: its rows held
        past that go (the history keeps what it counted) and the cursor is ``last``."""

        def write(db: Database) -> int:
            sql = "DELETE FROM peer_passages WHERE kiosk_id = ? AND seq > ?"
            gone = db.execute(sql, [kiosk_id, last])
            db.execute("UPDATE peer_cursors SET after = ? WHERE kiosk_id = ?", [last, kiosk_id])
            return _owe_if(self.store, db, gone.rowcount)

        if self.store.submit(write):
            wipe_removed(self.store)  # the rows' pass ids and households

    def _trim(self, db: Database, kiosk_id: str, since: str | None) -> int:
        """Drop the rows past the horizon and the peer's past ``max_rows``; how many went. Any
        that went owe a WAL wipe (``kiosk.wipe``: their pass ids and households); a trim that
        drops nothing (most polls) owes none, so no poll checkpoints for nothing."""
        gone = 0
        if since is not None:
            gone += db.execute("DELETE FROM peer_passages WHERE ts < ?", [since]).rowcount
        gone += db.execute(
            "DELETE FROM peer_passages WHERE kiosk_id = ? AND seq <= (SELECT seq FROM"
            " peer_passages WHERE kiosk_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            [kiosk_id, kiosk_id, self.max_rows],
        ).rowcount
        return _owe_if(self.store, db, gone)


def _owe_if(store: object, db: Database, gone: int) -> int:
    """``gone`` peer rows deleted in ``db``'s transaction: any owe a WAL wipe (``kiosk.wipe``:
    their pass ids and households), none owe nothing (no checkpoint for nothing)."""
    if gone > 0:
        owe_wipe(store, db)
    return gone


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _date_fetches(db: Database, now: datetime, mono_ns: int, boot_id: str) -> None:
    """Date the rows fetched on this boot's clock before it was set (``now`` at monotonic
    ``mono_ns``, set): each ``fetched_at`` becomes ``now`` less the monotonic time since."""
    from .dating import dated_ts_sql

    now_ms = int(now.timestamp() * 1000)
    ms = ":now_ms - (:mono_ns - fetched_mono_ns) / 1000000"
    db.execute(
        f"UPDATE peer_passages SET fetched_at = {dated_ts_sql(ms)},"  # noqa: S608
        " fetched_boot = NULL, fetched_mono_ns = NULL"
        " WHERE fetched_boot = :boot AND fetched_mono_ns IS NOT NULL",
        {"now_ms": now_ms, "mono_ns": mono_ns, "boot": boot_id},
    )


def purge(
    db: Database,
    cutoff: datetime,
    hold: datetime | None = None,
    release: datetime | None = None,
    purged_at: datetime | None = None,
) -> int:
    """Retention (``kiosk.ledgers.purge_ledgers``): peers' rows stamped before ``cutoff``.
    ``hold`` (``kiosk.retention.quota_hold``): the passing exits stamped from it on keep their
    household whatever their role, as the gate's own do (``kiosk.store.HELD_EXIT``), their
    pass id nulled and ``purged_at`` set (``purged_at``, else the cutoff), the other rows
    deleted; a later purge deletes them once the look-back has passed them (``release``: its
    start, whatever that purge's cutoff). Only rows a purge held: one that never had a pass id
    (a guard's manual pass typed with a household there) keeps ``cutoff``'s retention."""
    if not _has_table(db):
        return 0
    before = format_ts(cutoff if hold is None or hold >= cutoff else hold)
    cursor = db.execute("DELETE FROM peer_passages WHERE ts < ?", [before])
    gone = max(cursor.rowcount, 0)
    if release is not None:
        held = db.execute(
            "DELETE FROM peer_passages WHERE purged_at IS NOT NULL AND ts < ?",
            [format_ts(release)],
        )
        gone += max(held.rowcount, 0)
    if before != format_ts(cutoff):
        held = db.execute(  # the look-back's exits keep what the quota needs
            f"DELETE FROM peer_passages WHERE ts < ? AND NOT ({HELD_EXIT})",  # noqa: S608
            [format_ts(cutoff)],
        )
        kept = db.execute(
            "UPDATE peer_passages SET pass_id = NULL, purged_at = ?"
            " WHERE ts < ? AND purged_at IS NULL",
            [format_ts(purged_at or cutoff), format_ts(cutoff)],
        )
        gone += max(held.rowcount, 0) + max(kept.rowcount, 0)
    for table in ("peer_revocations", "peer_quarantine"):  # of a peer not heard from since
        if _has(db, table):
            cursor = db.execute(
                f"DELETE FROM {table} WHERE seen_at < ?",  # noqa: S608 - this module's tables
                [format_ts(cutoff)],
            )
            gone += max(cursor.rowcount, 0)
    return gone


#: What is held of each peer, by its kiosk id: what ``forget_removed`` drops of one no longer
#: configured (its cursor too, so listed again it is fetched from its start).
_HELD_TABLES = ("peer_passages", "peer_revocations", "peer_quarantine", "peer_cursors")


def forget_removed(store: Store, configured: Iterable[str]) -> dict[str, int]:
    """At start: drop what is held of gates no longer in ``compound.peers`` (``configured``,
    their kiosk ids): a gate taken out (decommissioned, or another compound's listed by
    mistake) must not keep refusing cards no guard can restore, stopping residents, or
    counting in the quota. ``{kiosk_id: rows dropped}``; nothing written when there is none
    (read first)."""
    keep = json.dumps(sorted(set(configured)))
    reader = store.reader()
    # Two statements at every start (not two per table): which tables the log has, then
    # every table's count of rows of removed gates, table by table as before.
    present = {
        str(r[0])
        for r in reader.execute(
            "SELECT name FROM sqlite_master WHERE name IN (SELECT value FROM json_each(?))",
            [json.dumps(_HELD_TABLES)],
        ).fetchall()
    }
    tables = [t for t in _HELD_TABLES if t in present]
    if not tables:
        return {}
    counts = " UNION ALL ".join(
        f"SELECT {i}, kiosk_id, count(*) FROM {table} WHERE kiosk_id NOT IN"  # noqa: S608
        " (SELECT value FROM json_each(:keep)) GROUP BY kiosk_id"
        for i, table in enumerate(tables)
    )
    gone: dict[str, int] = {}
    for _, kiosk_id, count in reader.execute(counts + " ORDER BY 1, 2", {"keep": keep}):
        gone[str(kiosk_id)] = gone.get(str(kiosk_id), 0) + int(count)
    if not gone:
        return {}

    def write(db: Database) -> None:
        for table in tables:
            db.execute(
                f"DELETE FROM {table} WHERE kiosk_id NOT IN"  # noqa: S608 - this module's tables
                " (SELECT value FROM json_each(?))",
                [keep],
            )
        owe_wipe(store, db)  # its guards' quarantine entries (names), its passages

    store.submit(write)
    wipe_removed(store)
    return gone


def held_quarantine(db: Database) -> list[PeerQuarantine]:
    """The peers' guards' quarantine entries held here, by gate and household (none in a log
    without the table): in force here, and shown to this gate's guard."""
    if not _has(db, "peer_quarantine"):
        return []
    rows = db.execute(
        "SELECT kiosk_id, entry_id, household, holder, from_date, until_date, actor"
        " FROM peer_quarantine ORDER BY kiosk_id, household, entry_id"
    ).fetchall()
    return [
        PeerQuarantine(str(k), int(i), str(h), p, str(f), str(u), a) for k, i, h, p, f, u, a in rows
    ]


def held_revocations(db: Database) -> list[PeerRevocation]:
    """The peers' guards' revocations held here, by gate and pass id (none in a log without
    the table): what this gate refuses for them, and what its guard is shown."""
    if not _has(db, "peer_revocations"):
        return []
    rows = db.execute(
        "SELECT kiosk_id, pass_id, revoked_at, actor, forgotten FROM peer_revocations"
        " ORDER BY kiosk_id, revoked_at DESC, pass_id"
    ).fetchall()
    return [PeerRevocation(str(k), str(p), r, a, bool(f)) for k, p, r, a, f in rows]


def held_rows(db: Database, rows: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of the peers' passages ``rows`` (``(kiosk_id, seq)``) are still held here (not
    purged by retention, nor trimmed): by their keys."""
    wanted = json.dumps(sorted({(str(k), int(s)) for k, s in rows}))
    if wanted == "[]" or not _has_table(db):
        return set()
    found = db.execute(
        "SELECT p.kiosk_id, p.seq FROM json_each(?) AS j JOIN peer_passages AS p"
        " ON p.kiosk_id = json_extract(j.value, '$[0]') AND p.seq = json_extract(j.value, '$[1]')",
        [wanted],
    )
    return {(str(k), int(s)) for k, s in found}


def _has_table(db: Database) -> bool:
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'peer_passages'"
    ).fetchone()
    return found is not None


# --- into the history -----------------------------------------------------------------------------


def record_peer_rows(history: History, rows: Iterable[PeerRow | Mapping[str, Any]]) -> int:
    """Record peers' passages in ``history`` (``record(..., peer=True)``); how many."""
    counted = 0
    for row in rows:
        if isinstance(row, PeerRow):
            history.record(
                row.pass_id,
                row.household,
                row.direction,
                row.decision,
                row.ts,
                row.flags,
                peer=True,
            )
        else:
            said = f"{row.get('kiosk_id', 'a peer')} seq {row.get('seq', '?')}"
            flags = tuple(_stored_flags(row["flags"], said))
            history.record(
                row["pass_id"],
                row["household"],
                row["direction"],
                row["decision"],
                row["ts"],
                flags,
                peer=True,
            )
        counted += 1
    return counted


def forget_peer_rows(history: History, rows: Iterable[PeerRow]) -> int:
    """Take back from ``history`` the peers' passages their gates did not open for
    (``PeerLedger.drop_not_opened``; a pass's passage before one comes back,
    ``PassageHistory.forget``); how many it held."""
    return sum(
        history.forget(row.pass_id, row.household, row.direction, row.ts, row.flags) for row in rows
    )


def load_peer_rows(db: Database, history: History, since: datetime) -> int:
    """At start, after the log's own rows: the peers' rows held, stamped from ``since`` on
    (none in a log without the table)."""
    if not _has_table(db):
        return 0
    with streamed_rows(
        db,
        "SELECT kiosk_id, seq, pass_id, household, direction, decision, ts, flags"
        " FROM peer_passages WHERE ts >= ? ORDER BY ts",
        [format_ts(since)],
    ) as rows:
        return record_peer_rows(history, rows)


# --- outings over the quota found late ---------------------------------------------------------

#: Peers' rows read per call of ``late_breaches``.
LATE_BATCH = 500


@dataclass(frozen=True)
class Breach:
    """An outing over the quota that a peer's passages show this gate late: the gates and
    times (``format_ts``) of the outing before it and of the outing itself."""

    household: str
    first: tuple[str, str]
    second: tuple[str, str]
    #: The outing over the quota's ``seq`` at its gate (``second``'s).
    seq: int
    #: Whether it was this gate's (then ``seq`` is one of this log's events).
    here: bool
    #: The outing before it's ``seq`` at its gate (``first``'s): with ``seq``, the rows the
    #: breach was read from, which retention purges in their turn.
    first_seq: int | None = None

    @property
    def rows(self) -> list[tuple[str, int]]:
        """The passages it was read from, ``(gate, seq)``, the outing before's first."""
        first = [(self.first[0], self.first_seq)] if self.first_seq is not None else []
        return [*first, (self.second[0], self.seq)]

    @property
    def key(self) -> str:
        """One per outing over the quota: the gate that let it out, then its ``seq``."""
        return f"{self.second[0]}:{self.seq}"


@dataclass(frozen=True)
class _Outing:
    gate: str
    seq: int
    ts: str
    fetched_at: str | None  # a peer's: when this gate learnt of it
    decision: str
    #: This gate's: its boot and monotonic time; a peer's fetched on a clock not set: the
    #: boot and monotonic time it was fetched at (``fetched_at`` is the clock's guess).
    boot: str | None = None
    mono_ns: int | None = None


def late_breaches(
    db: Database,
    after: int,
    kiosk_id: str,
    quota: QuotaConfig,
    tz: ZoneInfo,
    fetched_since: str | Since = "",
    boot_id: str = "",
    now: ClockReading | None = None,
) -> tuple[list[Breach], int]:
    """The outings over the quota (``kiosk.stats.over_quota``, the report's rule) that the
    peers' rows kept after rowid ``after`` (and fetched from ``fetched_since`` on: a row
    fetched on this gate's clock not set yet and not dated since, by the monotonic clock of
    its boot when that is ``fetched_since``'s, else by its boot's dating) show, and the last
    rowid read. Only those of two gates that did not know of each other's outing: one
    at this gate let out before the peer's outing before it was known here (the engine that
    knew denied it, or a guard let it out knowingly), or a peer's. At most ``LATE_BATCH`` rows
    a call. ``boot_id``: this gate's boot now (a row fetched on its clock not set is told
    from the guard's pass by the monotonic clock, not by that clock's guess); ``now``: its
    clock read now (this boot's outings stamped before it was set are dated by it)."""
    if not quota.enabled or not _has_table(db):
        return [], after
    rows = list(
        db.query(
            "SELECT rowid, * FROM peer_passages WHERE rowid > ? ORDER BY rowid LIMIT ?",
            [after, LATE_BATCH],
        )
    )
    last = int(rows[-1]["rowid"]) if rows else after
    roles = quota.roles
    new = [r for r in _fetched_since(db, rows, fetched_since) if households_outing(r, roles)]
    fresh = {(str(r["kiosk_id"]), int(r["seq"])) for r in new}
    found: dict[str, Breach] = {}
    # A household as the quota counts it (``same_text``): ``A-101`` here and ``a-101`` at the
    # peer, or a full-width ``Ａ-101`` on an older pass, are one household's outings.
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(new, key=lambda r: str(r["household"])):
        groups.setdefault(same_text(str(r["household"])), []).append(r)
    for key, rows_of in sorted(groups.items()):
        household = str(rows_of[0]["household"])
        times = [r["ts"] for r in rows_of]
        span = timedelta(days=quota.period_days + 1)
        lo, hi = format_ts(_stamp(min(times)) - span), format_ts(_stamp(max(times)) + span)
        outings = _outings(db, key, kiosk_id, lo, hi, now, boot_id, roles=roles)
        stamps = [_stamp(o.ts) for o in outings]
        for i, later in enumerate(outings):
            if i == 0 or not over_quota(stamps[i], stamps[:i], quota, tz):
                continue
            # The latest outing in its period at a gate that did not know of it (with more
            # than one outing a period, the one before may be this gate's own).
            start = quota_period_start(stamps[i], quota, tz)
            before = next(
                (
                    o
                    for o, t in zip(reversed(outings[:i]), reversed(stamps[:i]), strict=True)
                    if t > start and _unknown(o, later, kiosk_id, fresh, boot_id)
                ),
                None,
            )
            if before is None:
                continue
            here = later.gate == kiosk_id
            pair = (before.gate, before.ts), (later.gate, later.ts)
            breach = Breach(household, *pair, later.seq, here, before.seq)
            found.setdefault(breach.key, breach)
    return list(found.values()), last


def _spellings(db: Database, key: str, lo: str, hi: str) -> list[str]:
    """How the passages between ``lo`` and ``hi``, this gate's and its peers', spell the
    household whose ``same_text`` is ``key`` (by the ``ts`` indexes: the quota's look-back)."""
    found: set[str] = set()
    for table in ("events", "peer_passages"):
        rows = db.execute(
            f"SELECT DISTINCT household FROM {table}"  # noqa: S608 - a table name of this module
            " WHERE ts >= ? AND ts < ? AND household IS NOT NULL",
            [lo, hi],
        )
        found.update(str(h) for (h,) in rows if same_text(str(h)) == key)
    return sorted(found)


def _fetched_since(
    db: Database, rows: list[dict[str, Any]], since: str | Since
) -> list[dict[str, Any]]:
    """The ``rows`` fetched at or after ``since``. One fetched on a clock not set (its
    ``fetched_at`` the clock's 1970 or the last shutdown's time) and never dated: by this
    boot's monotonic clock, an earlier boot's by its offset once it recorded a synchronised
    event (``kiosk.dating``); an earlier boot never dated, by the clock not set, a lower
    bound."""
    if isinstance(since, str):
        return [r for r in rows if r["fetched_at"] >= since]
    boots = {r["fetched_boot"] for r in rows if r.get("fetched_mono_ns") is not None}
    boots.discard(since.boot_id)
    offsets = dict(
        db.execute(
            "SELECT boot_id, offset_ms FROM boot_clock WHERE boot_id IN"
            " (SELECT value FROM json_each(?))",
            [json.dumps(sorted(b for b in boots if isinstance(b, str)))],
        ).fetchall()
        if boots and _has(db, "boot_clock")
        else []
    )

    def learnt_since(row: dict[str, Any]) -> bool:
        mono = row.get("fetched_mono_ns")
        if row["fetched_at"] >= since.ts or mono is None:
            return bool(row["fetched_at"] >= since.ts)
        if row["fetched_boot"] == since.boot_id:
            return int(mono) >= since.mono_ns
        offset = offsets.get(row["fetched_boot"])
        return offset is not None and int(offset) + int(mono) // 1_000_000 >= since.ms

    return [r for r in rows if learnt_since(r)]


def _own_outings(
    db: Database,
    spellings: list[str],
    span: tuple[str, str],
    now: ClockReading | None,
    boot_id: str,
) -> list[dict[str, Any]]:
    """A household's passages at this gate (as any of ``spellings`` spells it) stamped within
    ``span`` or on a clock not set, ``ts`` when they happened: one stamped on a clock not set
    (1970 on a fresh card without network time) at the time its boot's first synchronised
    event dates it (``kiosk.dating``), or, of this boot (``boot_id``) and not dated yet, by
    the clock read ``now`` once it is set; else its stamp, all there is."""
    cols = "seq, ts, direction, decision, household, flags, boot_id, mono_ns, clock_synced"
    rows = list(
        db.query(
            f"SELECT {cols} FROM events"  # noqa: S608
            f" WHERE household IN ({', '.join('?' * len(spellings))})"
            " AND ((ts >= ? AND ts < ?) OR clock_synced = 0)",
            [*spellings, *span],
        )
    )
    undated = {r["boot_id"] for r in rows if not r["clock_synced"]}
    found = (
        db.execute(
            "SELECT boot_id, offset_ms, seq FROM boot_clock WHERE boot_id IN"
            " (SELECT value FROM json_each(?))",
            [json.dumps(sorted(str(b) for b in undated))],
        ).fetchall()
        if undated and _has(db, "boot_clock")
        else []
    )
    boots = {str(b): (int(offset), int(seq)) for b, offset, seq in found}
    for row in rows:
        if row["clock_synced"]:
            continue
        mono, dating = int(row["mono_ns"]), boots.get(str(row["boot_id"]))
        if dating is not None and int(row["seq"]) < dating[1]:
            at = datetime.fromtimestamp((dating[0] + mono // 1_000_000) / 1000, UTC)
            row["ts"] = format_ts(at)
        elif row["boot_id"] == boot_id and now is not None and now.synced:
            row["ts"] = format_ts(now.wall_at(mono))
    return rows


def _has(db: Database, table: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [table]).fetchone()
    return found is not None


def _outings(
    db: Database,
    key: str,
    kiosk_id: str,
    lo: str,
    hi: str,
    now: ClockReading | None = None,
    boot_id: str = "",
    *,
    roles: Collection[str] | None = None,
) -> list[_Outing]:
    """The outings at this gate and its peers between ``lo`` and ``hi`` of the household
    whose ``same_text`` is ``key``, however each passage spells it, in time order (this
    gate's at the time they happened, ``_own_outings``), of the ``roles`` the quota counts
    (``kiosk.history.counted_outing``)."""
    cols = "seq, ts, direction, decision, household, flags"
    spellings = _spellings(db, key, lo, hi)
    some = f"household IN ({', '.join('?' * len(spellings))}) AND ts >= ? AND ts < ?"
    own = _own_outings(db, spellings, (lo, hi), now, boot_id)
    failed = _not_opened_among(db, spellings, own)
    out = [
        _Outing(
            kiosk_id, int(r["seq"]), str(r["ts"]), None, str(r["decision"]),
            r["boot_id"], r["mono_ns"],
        )
        for r in own
        if households_outing(r, roles) and lo <= r["ts"] < hi
        and int(r["seq"]) not in failed
    ]  # fmt: skip
    out += [
        _Outing(
            str(r["kiosk_id"]), int(r["seq"]), str(r["ts"]), str(r["fetched_at"]), "pass",
            r["fetched_boot"], r["fetched_mono_ns"],
        )
        for r in db.query(
            f"SELECT kiosk_id, fetched_at, fetched_boot, fetched_mono_ns, {cols}"  # noqa: S608
            f" FROM peer_passages WHERE {some}",
            [*spellings, lo, hi],
        )
        if households_outing(r, roles)
    ]  # fmt: skip
    return sorted(out, key=lambda o: (o.ts, o.gate, o.seq))


def _not_opened_among(db: Database, spellings: list[str], own: list[dict[str, Any]]) -> set[int]:
    """The seqs of ``own``'s passes that a later row says this gate did not open for
    (``not_opened:<seq>``, which names the pass's household too): nobody went through, no
    outing. Found by the household's index from the first pass on, wherever the row is
    stamped: one just past the window (stamped when the relay's failure was known) still
    takes back its pass at the window's end."""
    passes = {int(r["seq"]) for r in own if r["decision"] in COUNTED_DECISIONS}
    if not passes:
        return set()
    return passes & set(not_opened_after(db, min(passes), spellings))


def _unknown(
    before: _Outing, later: _Outing, kiosk_id: str, fresh: set[tuple[str, int]], boot_id: str
) -> bool:
    """Whether two outings in one period are a breach found late: at two gates, one of them
    just come from a peer, and, when the later is this gate's, not let out knowing of the
    earlier: the engine let it out (it would have denied it, knowing), or a guard did before
    the earlier was learnt here."""
    if before.gate == later.gate:
        return False
    if (before.gate, before.seq) not in fresh and (later.gate, later.seq) not in fresh:
        return False
    if later.gate != kiosk_id or later.decision == "pass":
        return True
    return _learnt_after(before, later, boot_id)


def _learnt_after(before: _Outing, later: _Outing, boot_id: str) -> bool:
    """Whether the peer's outing ``before`` was learnt here after this gate's ``later``. One
    fetched on a clock not set (1970, or the time saved before a power cut): by the monotonic
    clock in the boot of the guard's pass; after it when fetched in this boot and the pass
    was of an earlier one; else by the times written."""
    if before.mono_ns is not None:
        if before.boot == later.boot and later.mono_ns is not None:
            return before.mono_ns > later.mono_ns
        if before.boot == boot_id and later.boot != boot_id:
            return True
    return (before.fetched_at or "") > later.ts
