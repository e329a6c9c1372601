"""PostgreSQL as the pull's target: every gate's events in one table.

``PgTarget(dsn)`` implements ``office.pull.PullTarget``, so ``office.pull.Puller`` runs the same
loop against it as against a SQLite file — the same resume point (the highest ``seq`` held for
the kiosk), the same chain check of every page against the tail already held, the same retries.
What this module adds is what only the central database needs:

* ``fleet_events``: the event columns (``office.pull.COLUMNS``) typed for PostgreSQL (``jsonb``
  lists, ``boolean``, ``bigint``), plus ``day`` (the event's UTC date) and ``pulled_at``.
  Primary key ``(kiosk_id, seq)``; indexed by ``(day, kiosk_id)``, by ``ts``, by
  ``(kiosk_id, ts)``, and the rows stamped on an unsynchronised clock by ``(kiosk_id,
  boot_id, seq)`` (the district report dates them by their boot: ``office.district``). The
  indexes are built ``CONCURRENTLY`` by the first program that opens a database lacking one
  (``_build_indexes``): the pulls go on meanwhile.
  *Indexed, not partitioned*: a partitioned table's primary key must contain the partition
  key, which would weaken ``(kiosk_id, seq)`` to ``(kiosk_id, seq, day)``; a district's few
  million rows a year are well within what a b-tree on ``day`` serves.
* **Idempotent and safe with several writers**: a page is copied into a temporary table and
  inserted with ``ON CONFLICT DO NOTHING`` in one transaction, under a per-kiosk advisory lock.
  Inside that lock the page is checked again against what the database holds *now* (another
  collector may have written meanwhile): the row before the page must be there and be the
  one the page links to, and a row that was already present must have the same hash — a kiosk
  whose log was replaced under the same id is a ``ChainError``, never a silent mix.
* ``fleet_sources``: which URL served which kiosk (``office.pull`` resumes by it).
* ``fleet_gate_reports`` (schema 2): per gate and local day, the figures of the gate's daily
  report that come from its ledgers, not its events (returnees, home quarantine, service
  requests, helpers' fever checks, unknown plates; ``office.gatereports``): counts only.
  ``final`` once the gate reported the day after it ended. A database made by schema 1 gets
  the table (and version 2) the next time any program of this version opens it.

``TempCluster`` starts a throwaway cluster (``initdb`` + ``pg_ctl``, unix socket only) for the
tests, the fleet bench and trying things out.
"""

from __future__ import annotations

import contextlib
import json
import operator
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import psycopg.types.json

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency, kept optional as in office.pull
    orjson = None  # type: ignore[assignment]
from psycopg.rows import TupleRow

from kiosk import record
from kiosk.export import COLUMNS
from kiosk.hashchain import GENESIS
from kiosk.typed import whole_number
from office.gatereports import POLICY_KEY
from office.pull import (
    ChainError,
    PinError,
    PullError,
    describe_pins,
    pin_refusal,
    source_renames,
)

__all__ = [
    "PgError",
    "PgTarget",
    "TempCluster",
    "collector_runs",
    "connect",
    "ensure_schema",
    "is_pg_dsn",
    "redact_dsn",
]

SCHEMA_VERSION = 4
#: ``fleet_meta`` key of the compounds the office's published lists declare (JSON: a list, or
#: null when they declare none), kept by the collector from its ``lists_bundle_file``.
COMPOUNDS_KEY = "lists.compounds"
#: ``fleet_meta`` key of the gates the collector is configured to pull and how each fares (JSON:
#: a list of ``url``, ``name``, ``kiosk_id``, ``why``: ``ok``, ``never pulled``, ``unreachable``,
#: ``refused: ...``), kept by the collector; the district report names the ones without figures.
GATES_KEY = "collector.gates"
#: ``fleet_meta`` key of the highest list bundle version the collector has served to the
#: gates (``kiosk fleet publish`` goes on above it: a gate refuses a version it went past).
SERVED_KEY = "lists.version_served"
#: ``fleet_meta`` key of when the collector was pulling (JSON: ``[[run id, from, to, expect],
#: ...]``, UTC by the database's clock, the newest last, at most ``MAX_RUNS``): a spell per run
#: of ``kiosk collect``, its ``to`` moved on as it pulls (``record_run``), ``expect`` the
#: seconds its last beat said the next would come within (a spell kept before 2026-12-06 has
#: none). The district report reads a gap longer than that as the office hearing from nobody,
#: no gate's downtime (``collector_runs``).
RUNS_KEY = "collector.runs"
MAX_RUNS = 200
#: A beat within this past the interval the newest spell's last beat expected goes on with it
#: (``kiosk collect --once`` from cron, a collector pulling hourly): no longer than the district
#: report's ``HEARD_WITHIN``, which reads a gap longer than that interval and as long again as
#: the collector down.
RUNS_JOIN = timedelta(minutes=10)
#: The longest interval a beat may expect before its next (``kiosk collect --once --every``).
MAX_EXPECT_S = 7 * 86400.0
#: A spell of ``RUNS_KEY``: run id, from, to, the seconds its last beat expected before the
#: next (None: kept by a collector before 2026-12-06).
Spell = tuple[str, datetime, datetime, float | None]
#: ``fleet_meta`` key of when the newest spell's recent runs began (JSON: ``[[run id, at],
#: ...]``, the newest last, at most ``STARTS_KEPT``): each run's first beat (``started``),
#: beside the spells, not in them (a collector of an older version rewrites ``RUNS_KEY`` with
#: the spells it reads).
STARTS_KEY = "collector.starts"
#: The runs' starts kept. Only a run's first beat adds its start (``record_run``'s ``first``):
#: a run that outlasts this many later starts (a long first pull beating among the runs cron
#: began since) is not begun again by its later beats.
STARTS_KEPT = 16
#: A run of ``STARTS_KEY``: its id, its first beat.
Start = tuple[str, datetime]
#: ``kiosk collect --once`` without ``--every``: the interval its beats expect is learned from
#: the spacing of the starts of the runs of its spell (``learned_expect``), at most this, and
#: this until ``SPACINGS_KEPT`` spacings are held (its first runs, or the first after a gap
#: read as the collector down).
ONCE_EVERY_S = 3600.0
#: The spacings between a spell's runs' starts learned from: the recent runs' (``spacings``).
SPACINGS_KEPT = 4
#: Two runs begun closer than this are two runs at once (two collectors on one database, cron
#: and a run by hand), not how often they run: no spacing.
SPACING_MIN_S = 60.0

_TYPES = record.PG_TYPES  # the one record definition (kiosk.record)
assert set(_TYPES) == set(COLUMNS), "fleet_events must hold every pulled column"

#: Columns written by the pull, in ``fleet_events`` order (``day`` is derived from ``ts``).
ROW_COLUMNS = (*COLUMNS, "day")
_JSON = record.JSON_FIELDS
_JSON_INDEXES = tuple(i for i, c in enumerate(COLUMNS) if c in _JSON)
_COLS = ", ".join(ROW_COLUMNS)

# ``ts`` stays text: it is part of the hashed row and is compared as text by the reports
# (fixed-width UTC ISO 8601 sorts correctly), exactly as on the kiosk — in the "C" collation,
# since a linguistic one may ignore the punctuation that makes it sort.
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS fleet_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_events (
    {", ".join(f"{c} {_TYPES[c]}" for c in COLUMNS)},
    day date NOT NULL,
    pulled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (kiosk_id, seq)
);
CREATE TABLE IF NOT EXISTS fleet_sources (
    url text PRIMARY KEY,
    kiosk_id text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS fleet_pin_changes (
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    url text NOT NULL,
    kiosk_id text NOT NULL,
    previous text NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_gate_reports (
    kiosk_id text NOT NULL,
    day date NOT NULL,
    timezone text NOT NULL,
    ledgers jsonb NOT NULL,
    final boolean NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (kiosk_id, day)
);
INSERT INTO fleet_meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}')
    ON CONFLICT (key) DO NOTHING;
-- 4: a purge leaves household '' where it had one (kiosk.record.PURGED_HOUSEHOLD); a passing
-- exit purged before may have been an outing: marked so, whose unknown (never no outing).
UPDATE fleet_events SET household = '{record.PURGED_HOUSEHOLD}' WHERE purged_at IS NOT NULL
    AND household IS NULL AND direction = 'out' AND decision IN ('pass', 'manual_pass')
    AND coalesce(NOT flags ? 'unchecked', true)
    AND (SELECT value::int FROM fleet_meta WHERE key = 'schema_version') < 4;
UPDATE fleet_meta SET value = '{SCHEMA_VERSION}'
    WHERE key = 'schema_version' AND value::int < {SCHEMA_VERSION};
"""  # noqa: S608 - built from module constants only

# Any constant will do: it only serialises the CREATE ... IF NOT EXISTS of concurrent starters
# (20 pullers starting together would otherwise race on the catalog).
_SCHEMA_LOCK = 0x6B696F736B  # "kiosk"

#: ``fleet_events``' indexes, by name (``_build_indexes``). Each is built ``CONCURRENTLY``
#: after the schema's transaction, by the first program that opens a database without it:
#: one added by a later version (``fleet_events_kiosk_ts``, 2026-12) is built on a database
#: that may hold years of rows, and a plain ``CREATE INDEX`` holds every pull's insert back
#: for as long as it reads the table.
_INDEXES = {
    "fleet_events_day": "fleet_events (day, kiosk_id)",
    "fleet_events_ts": "fleet_events (ts)",
    "fleet_events_kiosk_ts": "fleet_events (kiosk_id, ts)",
    "fleet_events_unsynced": "fleet_events (kiosk_id, boot_id, seq) WHERE NOT clock_synced",
    "fleet_events_unpurged": "fleet_events (kiosk_id, seq) WHERE purged_at IS NULL",
}
#: Held (for its session) by the program building the indexes: another that opens the
#: database meanwhile leaves them to it; an INVALID index found without it held was left by
#: a build that was cut short.
_INDEX_LOCK = 0x6B696F736C  # "kiosl"


class PgError(PullError):
    """The central database failed or cannot be reached; what was committed stays."""


def is_pg_dsn(text: str) -> bool:
    """``postgresql://...`` or ``postgres://...`` (what ``kiosk pull --into`` accepts)."""
    return text.startswith(("postgresql://", "postgres://"))


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages and status pages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    shown = {k: v for k, v in info.items() if k in ("host", "port", "dbname", "user")}
    return " ".join(f"{k}={v}" for k, v in shown.items())


def connect(
    dsn: str, *, application_name: str = "kiosk-fleet", timeout_s: float = 10
) -> psycopg.Connection[TupleRow]:
    """An autocommit connection (transactions are explicit); raises ``PgError``."""
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # Its message quotes the DSN's text, the password with it: not repeated anywhere.
        raise PgError(
            "cannot connect: the database DSN is not a DSN psycopg can read (a postgresql://"
            " URL or key=value pairs; a % in a password is written %25); its text is not"
            " repeated here, it may hold the password"
        ) from None
    try:
        return psycopg.connect(
            dsn,
            autocommit=True,
            connect_timeout=max(1, int(timeout_s)),
            application_name=application_name,
        )
    except psycopg.Error as exc:
        raise PgError(f"cannot connect to {redact_dsn(dsn)}: {_first_line(exc)}") from None


def served_version(dsn: str) -> int:
    """The highest list bundle version the collector has served (``SERVED_KEY``; 0: none
    kept). ``PgError`` when the database cannot be read."""
    conn = connect(dsn, application_name="kiosk-publish")
    try:
        row = conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [SERVED_KEY]).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0  # a database no collector has written to yet
    except psycopg.Error as exc:
        raise PgError(f"{redact_dsn(dsn)}: {_first_line(exc)}") from None
    finally:
        conn.close()
    text = str(row[0]) if row else ""
    return whole_number(text) or 0


def claim_version(dsn: str, version: int) -> int:
    """Claim ``version`` for one publish: raise ``SERVED_KEY`` to it, atomically, unless a
    version at or above it is there (another publish, on another machine, took it; or the
    collector served it). 0 when claimed, else the version there. ``PgError`` when the
    database cannot be written."""
    conn = connect(dsn, application_name="kiosk-publish")
    try:
        ensure_schema(conn)
        row = conn.execute(
            "INSERT INTO fleet_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
            " SET value = excluded.value WHERE fleet_meta.value !~ '^[0-9]{1,18}$'"
            " OR fleet_meta.value::bigint < excluded.value::bigint RETURNING value",
            [SERVED_KEY, str(version)],
        ).fetchone()
        if row is not None:
            return 0
        held = conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [SERVED_KEY]).fetchone()
    except psycopg.Error as exc:
        raise PgError(f"{redact_dsn(dsn)}: {_first_line(exc)}") from None
    finally:
        conn.close()
    return int(held[0]) if held is not None else version


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    """Create the fleet tables if missing, then their indexes (idempotent, safe to race).
    ``conn`` in autocommit (``connect``): an index is built outside any transaction."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
        conn.execute(SCHEMA)
        row = conn.execute("SELECT value FROM fleet_meta WHERE key = 'schema_version'").fetchone()
        if row is None or int(row[0]) > SCHEMA_VERSION:
            raise PgError(
                f"fleet schema version {row and row[0]} is newer than this program"
                f" ({SCHEMA_VERSION}); upgrade the kiosk package"
            )
        _renormalise_sources(conn)
    _build_indexes(conn)


def _build_indexes(conn: psycopg.Connection[Any]) -> None:
    """Build the ``_INDEXES`` ``fleet_events`` lacks, each ``CONCURRENTLY``: the pulls go on
    inserting meanwhile (a plain build holds them back until it is done), and so does any
    other program opening the database. An index left INVALID by a build cut short (the
    program stopped, the machine restarted) is dropped and built again. While another
    program builds them (``_INDEX_LOCK`` held), they are left to it: the queries work without
    them, slower."""
    if not _unbuilt(conn):
        return
    locked = conn.execute("SELECT pg_try_advisory_lock(%s)", [_INDEX_LOCK]).fetchone()
    if locked is None or not locked[0]:
        return  # another program builds them
    try:
        for name, invalid in _unbuilt(conn):  # again, under the lock
            if invalid:
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            conn.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {_INDEXES[name]}")
    finally:
        with contextlib.suppress(psycopg.Error):  # a connection lost has let it go already
            conn.execute("SELECT pg_advisory_unlock(%s)", [_INDEX_LOCK])


def _unbuilt(conn: psycopg.Connection[Any]) -> list[tuple[str, bool]]:
    """The ``_INDEXES`` not there or not valid, each with whether it is there (INVALID)."""
    rows = conn.execute(
        "SELECT name, i.indexrelid IS NOT NULL FROM unnest(%s::text[]) AS name"
        " LEFT JOIN pg_index i ON i.indexrelid = to_regclass(name)"
        " WHERE i.indisvalid IS NOT TRUE",
        [list(_INDEXES)],
    ).fetchall()
    return [(str(name), bool(there)) for name, there in rows]


def _renormalise_sources(conn: psycopg.Connection[Any]) -> None:
    """``office.pull.source_renames`` applied to ``fleet_sources`` (in the caller's
    transaction): pins an older version stored under the URL as typed keep holding."""
    rows = conn.execute("SELECT url, kiosk_id FROM fleet_sources").fetchall()
    renames, drops = source_renames([(r[0], r[1]) for r in rows])
    with conn.cursor() as cur:
        for url in drops:
            cur.execute("DELETE FROM fleet_sources WHERE url = %s", [url])
        for old, new in renames:
            cur.execute("UPDATE fleet_sources SET url = %s WHERE url = %s", [new, old])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: Fields a row must carry (``NOT NULL`` in ``fleet_events``).
_REQUIRED = tuple(c for c in COLUMNS if "NOT NULL" in _TYPES[c])
_BIGINT = (-(2**63), 2**63 - 1)


#: Columns of text: a value there must be a JSON string (psycopg dumped an object as an
#: error blamed on the database, a list as a PostgreSQL array literal, "{1}").
_TEXTS = tuple(c for c in COLUMNS if _TYPES[c].startswith("text"))
_get_texts = operator.itemgetter(*_TEXTS)
_TEXT_KINDS = frozenset({str, type(None)})


def _not_text(row: dict[str, Any]) -> str | None:
    """The first text column of ``row`` that holds something else, in words; None if none."""
    try:
        kinds = set(map(type, _get_texts(row)))  # C calls: this runs for every row
    except KeyError:  # a row without some field: it is null there
        kinds = {type(row.get(c)) for c in _TEXTS}
    if kinds <= _TEXT_KINDS:
        return None
    name = next(c for c in _TEXTS if type(row.get(c)) not in _TEXT_KINDS)
    return f"{name} is a JSON {type(row[name]).__name__}, not a text"


def _unstorable(row: dict[str, Any]) -> str | None:
    """What in a row (checked by the pull's chain check: its hash agrees with it) PostgreSQL
    cannot hold, in words; None when it can. Such a row is the kiosk's error (forged or
    broken), not the database's: it must not read as a database failure."""
    for name in _REQUIRED:
        if row.get(name) is None:
            return f"{name} is missing"
    mono = row.get("mono_ns")
    if type(mono) is int and not _BIGINT[0] <= mono <= _BIGINT[1]:
        return f"mono_ns {mono} is out of range"
    not_text = _not_text(row)
    if not_text is not None:
        return not_text
    synced = row.get("clock_synced")
    if synced is not None and type(synced) not in (bool, int):
        return f"clock_synced is a JSON {type(synced).__name__}, not a boolean"
    values = [row.get(name) for name in COLUMNS]
    if orjson is not None:
        try:  # one C call: a NUL is always written as this escape (a hint, checked below)
            if b"\\u0000" not in orjson.dumps(values):
                return None
        except TypeError:  # orjson.JSONEncodeError (a lone surrogate): look one by one
            pass
    for name, value in zip(COLUMNS, values, strict=True):
        if _holds_nul(value):
            return f"{name} holds a NUL character (no text in the database can)"
    return None


def _holds_nul(value: object) -> bool:
    """Whether a text anywhere in ``value`` (a JSON value) holds U+0000."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _copy_row(row: dict[str, Any]) -> list[Any]:
    problem = _unstorable(row)
    if problem is not None:
        raise PullError(f"seq {row.get('seq')}: {problem}")
    values = [row.get(c) for c in COLUMNS]
    for i in _JSON_INDEXES:
        if values[i] is not None:
            values[i] = psycopg.types.json.Jsonb(values[i])
    values.append(_day_of(row))
    return values


#: A kiosk's ``ts``: UTC, ``2026-03-02T08:30:00.000000Z`` (``kiosk.store``), read by the
#: district report as text and as ``timestamptz``.
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]00:00)")


def _day_of(row: dict[str, Any]) -> date:
    """The UTC date of a row's ``ts``; ``PullError`` when it is no UTC timestamp (the hash
    covers whatever the kiosk sent: a malformed one is the kiosk's problem, not the
    database's, and must not reach the district report, whose ``ts::timestamptz`` fails on
    it for every gate)."""
    ts = row.get("ts")
    if isinstance(ts, str) and _TS.fullmatch(ts):
        try:
            return datetime.fromisoformat(ts).date()  # the fields in range: no hour 99
        except ValueError:
            pass
    raise PullError(f"seq {row.get('seq')}: ts {str(ts)[:40]!r} is not a UTC timestamp")


def _json_of(row: tuple[Any, ...]) -> Any:
    """The JSON value a ``fleet_meta`` row holds, None when it does not read: not JSON, or
    nested deeper than the parser goes (``'[' * 100000``: RecursionError)."""
    try:
        return json.loads(row[0])
    except (TypeError, ValueError, RecursionError):
        return None


def collector_runs(row: tuple[Any, ...] | None) -> list[Spell] | None:
    """The collector's runs as ``RUNS_KEY``'s row holds them (``Spell``: run id, from, to,
    aware, and the interval expected, None in a spell of three, kept before 2026-12-06); None
    when there is no row (no collector kept any: pulls by ``kiosk pull``, or a database of an
    older version). A spell of more than four is read by its first four (a later version's
    fields never erase it); one that does not read is skipped, never a failure."""
    if row is None:
        return None
    held = _json_of(row)
    runs = []
    for item in held if isinstance(held, list) else ():
        try:
            run_id, begun, ended = (str(item[0]), *map(datetime.fromisoformat, item[1:3]))
        except (TypeError, ValueError, IndexError, KeyError):
            continue
        if len(item) >= 3 and begun.tzinfo is not None and ended.tzinfo is not None:
            runs.append((run_id, begun, ended, _expect(item[3:4])))
    return runs


def held_starts(row: tuple[Any, ...] | None) -> list[Start]:
    """When the newest spell's recent runs began as ``STARTS_KEY``'s row holds them, the newest
    ``STARTS_KEPT``; none when there is no row or it does not read, a run that does not read
    left out."""
    held = _json_of(row) if row is not None else None
    starts = []
    for item in held if isinstance(held, list) else ():
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            continue
        try:
            at = datetime.fromisoformat(item[1])
        except (TypeError, ValueError):
            continue
        if at.tzinfo is not None:
            starts.append((item[0], at))
    return starts[-STARTS_KEPT:]


def _expect(rest: list[Any]) -> float | None:
    """A spell's expected interval as held (seconds, 0 .. ``MAX_EXPECT_S``), else None: none
    held (kept before 2026-12-06), or one that does not read (its spell read as without)."""
    value = rest[0] if rest else None
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value) if value <= MAX_EXPECT_S else None
    return None


def _goes_on(last: Spell, run_id: str, now: datetime) -> bool:
    """Whether a beat of ``run_id`` at ``now`` goes on with the spell ``last``: it is this
    run's, or its last beat expected this one within ``RUNS_JOIN`` (the interval it said, none
    in a spell kept before 2026-12-06); never when ``now`` is before the spell began (the
    database's clock stepped back further than the spell's age: it begins again, and the
    learning of its runs' spacing with it, rather than every start after the step read as
    before the spell, none learned from until real time caught up)."""
    last_id, begun, ended, expected = last
    if now < begun:
        return False
    return last_id == run_id or now - ended < RUNS_JOIN + timedelta(seconds=expected or 0)


def moved_on(
    runs: list[Spell],
    run_id: str,
    now: datetime,
    expect_s: float | None,
    since: datetime | None = None,
) -> list[Spell]:
    """``runs`` with the beat of ``run_id`` at ``now`` (``record_run``): the newest spell ends
    now when the beat goes on with it (``_goes_on``); else one begins (a start after the
    collector was down). ``since``: when the beat's run began, if it began earlier (its first
    beat, after its first page): the spell is from then. Its expected interval is this beat's.
    A spell begun is the newest: the spells dated after its beginning (the database's clock
    stepped back) are cut, dropped or ended at it, never read as a gap before them."""
    since = now if since is None else min(since, now)
    if runs and _goes_on(runs[-1], run_id, now):
        _, begun, ended, _ = runs[-1]
        return [*runs[:-1], (run_id, min(begun, since), max(now, ended), expect_s)]
    cut = [(r, b, min(e, since), x) for r, b, e, x in runs if b < since]
    return [*cut, (run_id, since, now, expect_s)]


def started(
    runs: list[Spell],
    starts: list[Start],
    run_id: str,
    now: datetime,
    *,
    first: bool,
    at: datetime | None = None,
) -> list[Start]:
    """The starts of the newest spell's runs with the beat of ``run_id`` at ``now``: a run's
    ``first`` beat adds its start, ``at`` (when the run began; ``now`` without), the starts
    in time order (once: said again, its commit's answer lost, it is kept), its
    later beats none (minutes apart in a long pull, or among the beats of a run cron began
    meanwhile, also once its start is no longer kept); only the starts since the spell it goes
    on with began (``_goes_on``): a beat that begins a spell has none before it. The newest
    ``STARTS_KEPT`` kept."""
    goes_on = bool(runs) and _goes_on(runs[-1], run_id, now)
    kept = [start for start in starts if start[1] >= runs[-1][1]] if goes_on else []
    if first and all(run != run_id for run, _ in kept):
        kept = sorted([*kept, (run_id, now if at is None else min(at, now))], key=_when)
    return kept[-STARTS_KEPT:]


def _when(start: Start) -> datetime:
    return start[1]


def spacings(starts: list[Start]) -> list[float]:
    """The newest ``SPACINGS_KEPT`` spacings between the runs' ``starts``, each from the start
    before it (cron's period, however long a run pulls or whether runs overlap), at least
    ``SPACING_MIN_S``: two runs begun at once are no spacing."""
    gaps = [(b - a).total_seconds() for (_, a), (_, b) in zip(starts, starts[1:], strict=False)]
    return [gap for gap in gaps if gap >= SPACING_MIN_S][-SPACINGS_KEPT:]


def learned_expect(spaced: list[float]) -> float:
    """The interval a ``--once`` run without ``--every`` expects its next within: the longest
    of its spell's recent ``spacings`` (one run by hand between two of cron's is not the
    cadence), at most ``ONCE_EVERY_S``; that until ``SPACINGS_KEPT`` are held (two runs by
    hand minutes apart are not cron's)."""
    if len(spaced) < SPACINGS_KEPT:
        return ONCE_EVERY_S
    return min(ONCE_EVERY_S, max(spaced))


def beaten(
    runs: list[Spell],
    starts: list[Start],
    run_id: str,
    now: datetime,
    expect_s: float | None,
    *,
    first: bool,
    age_s: float = 0.0,
) -> tuple[list[Spell], list[Start]]:
    """``record_run``'s beat: ``runs`` moved on (``moved_on``) and the newest spell's runs'
    starts (``started``: ``first``, the run's first beat, adds its start: ``age_s`` before
    ``now``, when the run began, not when its first page was written), the beat expecting
    its next within ``expect_s`` or, None (``kiosk collect --once`` without ``--every``), the
    interval learned from their spacing (``learned_expect``)."""
    since = now - timedelta(seconds=min(max(age_s, 0.0), MAX_EXPECT_S)) if first else now
    starts = started(runs, starts, run_id, now, first=first, at=since)
    expect = expect_s if expect_s is not None else learned_expect(spacings(starts))
    return moved_on(runs, run_id, now, expect, since), starts


class PgTarget:
    """A ``office.pull.PullTarget`` on PostgreSQL. One connection; use one per thread."""

    def __init__(self, dsn: str, *, application_name: str = "kiosk-pull") -> None:
        self.dsn, self._application_name = dsn, application_name
        self.conn = self._open()

    def _open(self) -> psycopg.Connection[Any]:
        conn = connect(self.dsn, application_name=self._application_name)
        try:
            ensure_schema(conn)
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS fleet_stage"
                " (LIKE fleet_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
        except psycopg.Error as exc:
            conn.close()
            raise PgError(f"{redact_dsn(self.dsn)}: {_first_line(exc)}") from None
        except BaseException:
            conn.close()
            raise
        return conn

    # -- office.pull.PullTarget ----------------------------------------------------------------

    def source_kiosk(self, url: str) -> str | None:
        with self._errors():
            row = self.conn.execute(
                "SELECT kiosk_id FROM fleet_sources WHERE url = %s", [url]
            ).fetchone()
        return row[0] if row else None

    def tail(self, kiosk_id: str) -> tuple[int, str]:
        with self._errors():
            row = self.conn.execute(
                "SELECT seq, hash FROM fleet_events WHERE kiosk_id = %s ORDER BY seq DESC LIMIT 1",
                [kiosk_id],
            ).fetchone()
        return (int(row[0]), row[1]) if row else (0, GENESIS)

    def write_page(self, url: str, kiosk_id: str, rows: list[dict[str, Any]]) -> int:
        """Insert one verified page and the source in one transaction; new rows counted."""
        if not rows:
            return 0
        first = rows[0]
        staged = [_copy_row(row) for row in rows]  # a malformed row is refused before
        with self._errors(), self.conn.transaction():
            cur = self.conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [kiosk_id])
            refusal = self._pin_conflict(url, kiosk_id)  # again, under the kiosk's lock
            if refusal is not None:
                raise refusal
            if first["seq"] > 1:
                held = cur.execute(
                    "SELECT hash FROM fleet_events WHERE kiosk_id = %s AND seq = %s",
                    [kiosk_id, first["seq"] - 1],
                ).fetchone()
                if held is None:
                    raise ChainError(
                        f"seq {first['seq']}: the database lacks seq {first['seq'] - 1}"
                        " (rows were removed from the central table)"
                    )
                if held[0] != first["prev_hash"]:
                    raise ChainError(
                        f"seq {first['seq']}: prev_hash does not match the hash of seq"
                        f" {first['seq'] - 1} held centrally"
                    )
            with cur.copy(f"COPY fleet_stage ({_COLS}) FROM STDIN") as copy:  # noqa: S608
                for values in staged:
                    copy.write_row(values)
            cur.execute(
                f"INSERT INTO fleet_events ({_COLS}) SELECT {_COLS} FROM fleet_stage"  # noqa: S608
                " ON CONFLICT (kiosk_id, seq) DO NOTHING"
            )
            inserted = cur.rowcount
            if inserted < len(rows):
                clash = cur.execute(
                    "SELECT s.seq FROM fleet_stage s JOIN fleet_events e"
                    " ON e.kiosk_id = s.kiosk_id AND e.seq = s.seq"
                    " WHERE e.hash <> s.hash ORDER BY s.seq LIMIT 1"
                ).fetchone()
                if clash is not None:
                    raise ChainError(
                        f"seq {clash[0]}: differs from the row already held centrally"
                        f" (kiosk {kiosk_id}'s log is not the one pulled before)"
                    )
            cur.execute(
                "INSERT INTO fleet_sources (url, kiosk_id, updated_at) VALUES (%s, %s, now())"
                " ON CONFLICT (url) DO UPDATE SET kiosk_id = excluded.kiosk_id,"
                " updated_at = excluded.updated_at",
                [url, kiosk_id],
            )
        return inserted

    def pin_conflict(self, url: str, kiosk_id: str) -> PinError | None:
        with self._errors():
            return self._pin_conflict(url, kiosk_id)

    def _pin_conflict(self, url: str, kiosk_id: str) -> PinError | None:
        own = self.conn.execute("SELECT kiosk_id FROM fleet_sources WHERE url = %s", [url])
        held = own.fetchone()
        holder = self.conn.execute(
            "SELECT url FROM fleet_sources WHERE kiosk_id = %s AND url <> %s ORDER BY url LIMIT 1",
            [kiosk_id, url],
        ).fetchone()
        return pin_refusal(url, kiosk_id, held[0] if held else None, holder[0] if holder else None)

    def repin(self, url: str, kiosk_id: str) -> str:
        """Pin ``kiosk_id`` to ``url``, releasing the id's other source and the URL's old id,
        recorded in ``fleet_pin_changes``, in one transaction; what was released, in words."""
        with self._errors(), self.conn.transaction():
            cur = self.conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [kiosk_id])
            own = cur.execute("SELECT kiosk_id FROM fleet_sources WHERE url = %s", [url]).fetchone()
            holders = cur.execute(
                "SELECT url FROM fleet_sources WHERE kiosk_id = %s AND url <> %s ORDER BY url",
                [kiosk_id, url],
            ).fetchall()
            what = describe_pins(url, own[0] if own else None, [h[0] for h in holders])
            cur.execute(
                "DELETE FROM fleet_sources WHERE kiosk_id = %s AND url <> %s", [kiosk_id, url]
            )
            cur.execute(
                "INSERT INTO fleet_sources (url, kiosk_id, updated_at) VALUES (%s, %s, now())"
                " ON CONFLICT (url) DO UPDATE SET kiosk_id = excluded.kiosk_id,"
                " updated_at = excluded.updated_at",
                [url, kiosk_id],
            )
            cur.execute(
                "INSERT INTO fleet_pin_changes (url, kiosk_id, previous) VALUES (%s, %s, %s)",
                [url, kiosk_id, what],
            )
        return what

    def pin_changes(self) -> list[tuple[Any, ...]]:
        with self._errors():
            return self.conn.execute(
                "SELECT at, url, kiosk_id, previous FROM fleet_pin_changes ORDER BY at"
            ).fetchall()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()

    # -- the gates' ledger reports (office.gatereports) ----------------------------------

    def write_gate_report(
        self, kiosk_id: str, day: date, timezone: str, ledgers: dict[str, Any], final: bool
    ) -> None:
        """Keep one gate's ledger figures for one day (replacing an earlier copy)."""
        with self._errors():
            self.conn.execute(
                "INSERT INTO fleet_gate_reports (kiosk_id, day, timezone, ledgers, final)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kiosk_id, day) DO UPDATE SET"
                " timezone = excluded.timezone, ledgers = excluded.ledgers,"
                " final = excluded.final, fetched_at = excluded.fetched_at",
                [kiosk_id, day, timezone, psycopg.types.json.Jsonb(ledgers), final],
            )

    def final_report_days(self, kiosk_id: str, since: date) -> set[date]:
        """The days from ``since`` whose report the gate gave after they ended."""
        with self._errors():
            rows = self.conn.execute(
                "SELECT day FROM fleet_gate_reports WHERE kiosk_id = %s AND day >= %s AND final",
                [kiosk_id, since],
            ).fetchall()
        return {r[0] for r in rows}

    def record_compounds(self, declared: list[str] | None) -> None:
        """Keep the compounds the office's published lists declare (``COMPOUNDS_KEY``; None:
        none declared), for the district report to tell a gate's mistyped id from one."""
        with self._errors():
            self.conn.execute(
                "INSERT INTO fleet_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value WHERE fleet_meta.value <> excluded.value",
                [COMPOUNDS_KEY, json.dumps(declared)],
            )

    def record_gates(self, gates: list[dict[str, Any]]) -> None:
        """Keep the collector's configured gates and how each fares (``GATES_KEY``)."""
        with self._errors():
            self.conn.execute(
                "INSERT INTO fleet_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value WHERE fleet_meta.value <> excluded.value",
                [GATES_KEY, json.dumps(gates)],
            )

    def record_run(
        self,
        run_id: str,
        expect_s: float | None = None,
        *,
        first: bool = False,
        age_s: float = 0.0,
    ) -> None:
        """The collector run ``run_id`` is pulling now, its next beat expected within
        ``expect_s``, or (None) within the interval learned from the spacing of the runs'
        starts (``beaten``); ``first``: the run's first beat (only that adds a start), the run
        begun ``age_s`` before it (its start, by the database's clock: the database's now
        less that). At most ``MAX_RUNS`` spells kept, and the starts beside them."""
        with self._errors(), self.conn.transaction():
            held: dict[str, str] = dict(
                self.conn.execute(
                    "SELECT key, value FROM fleet_meta WHERE key = ANY(%s) FOR UPDATE",
                    [[RUNS_KEY, STARTS_KEY]],
                ).fetchall()
            )
            # The beat's time once the rows are this beat's (not ``now()``, its transaction's
            # start, before the lock's wait): another collector's beat committed meanwhile is
            # before it, never read as the clock stepped back (``_goes_on``).
            (now,) = self.conn.execute("SELECT clock_timestamp()").fetchone() or (
                datetime.now(UTC),
            )
            runs = collector_runs((held[RUNS_KEY],) if RUNS_KEY in held else None) or []
            starts = held_starts((held[STARTS_KEY],) if STARTS_KEY in held else None)
            runs, starts = beaten(
                runs, starts, run_id, now.astimezone(UTC), expect_s, first=first, age_s=age_s
            )
            kept = [
                [r, f.isoformat(), t.isoformat(), *([] if e is None else [e])]
                for r, f, t, e in runs[-MAX_RUNS:]
            ]
            self.conn.execute(
                "INSERT INTO fleet_meta (key, value) VALUES (%s, %s), (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [
                    RUNS_KEY,
                    json.dumps(kept),
                    STARTS_KEY,
                    json.dumps([[r, at.isoformat()] for r, at in starts]),
                ],
            )

    def record_served(self, version: int) -> None:
        """Keep ``version`` as the highest bundle version served (``SERVED_KEY``) when it is
        higher than the one kept: written only when it grows."""
        with self._errors():
            self.conn.execute(
                "INSERT INTO fleet_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value WHERE fleet_meta.value !~ '^[0-9]{1,18}$'"
                " OR fleet_meta.value::bigint < excluded.value::bigint",
                [SERVED_KEY, str(version)],
            )

    def served(self) -> int:
        """The highest bundle version kept as served (``SERVED_KEY``; 0: none)."""
        with self._errors():
            row = self.conn.execute(
                "SELECT value FROM fleet_meta WHERE key = %s", [SERVED_KEY]
            ).fetchone()
        text = str(row[0]) if row else ""
        return whole_number(text) or 0

    def reported_compound(self, kiosk_id: str, day: date) -> str | None:
        """The ``[compound] id`` the gate's report of ``day`` names (``id``, else
        ``lists_for``), as kept by ``write_gate_report``; None: none."""
        with self._errors():
            row = self.conn.execute(
                "SELECT coalesce(ledgers -> %s ->> 'id', ledgers -> %s ->> 'lists_for')"
                " FROM fleet_gate_reports WHERE kiosk_id = %s AND day = %s",
                [POLICY_KEY, POLICY_KEY, kiosk_id, day],
            ).fetchone()
        return str(row[0]) if row and row[0] is not None else None

    # -- reads for the collector and reports ----------------------------------------------

    def tails(self) -> dict[str, tuple[int, str]]:
        """``kiosk_id -> (last seq, last ts)`` for every kiosk held."""
        with self._errors():
            rows = self.conn.execute(
                "SELECT DISTINCT ON (kiosk_id) kiosk_id, seq, ts FROM fleet_events"
                " ORDER BY kiosk_id, seq DESC"
            ).fetchall()
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """A database error as ``PgError``; a connection found lost (by the statement before:
        the server restarted, a firewall's idle cut) is opened again first, so one lost
        between two transactions fails only the statement that found it (a collector's beat
        during a pull: the pull's next page goes on, on the new connection)."""
        if self.conn.broken:
            self.conn.close()
            self.conn = self._open()
        try:
            yield
        except psycopg.Error as exc:
            raise PgError(f"{redact_dsn(self.dsn)}: {_first_line(exc)}") from None

    def __enter__(self) -> PgTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- throwaway cluster


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` (``$PATH``, else Debian's layout)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return versions[0].parent if versions else None


class TempCluster:
    """A throwaway PostgreSQL cluster in a temporary directory, reachable on a unix socket only.

    ``initdb`` refuses to run as root: as root the cluster runs as ``run_as`` (default: the
    Debian ``postgres`` user), which is given the directory. ``durable=False`` turns fsync
    off (tests); the bench keeps it on."""

    def __init__(
        self,
        base_dir: str | Path | None = None,
        *,
        durable: bool = False,
        run_as: str = "postgres",
        port: int = 5432,
    ) -> None:
        pg_bin = find_pg_bin()
        if pg_bin is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bin = pg_bin
        self.dir = Path(tempfile.mkdtemp(prefix="kiosk-pg-", dir=base_dir))
        self.data = self.dir / "data"
        self.socket_dir = self.dir / "sock"
        self.port = port
        self.durable = durable
        self.user: str | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                info = pwd.getpwnam(run_as)
            except KeyError:
                raise PermissionError(
                    f"running as root and there is no {run_as!r} user to run PostgreSQL as"
                ) from None
            self.user = run_as
            self.socket_dir.mkdir()
            for path in (self.dir, self.socket_dir):
                os.chown(path, info.pw_uid, info.pw_gid)
        else:
            self.socket_dir.mkdir()
        self.role = self.user or _current_user()
        self.started = False

    def _run(self, *args: str, timeout: float = 60) -> None:
        proc = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self.user,
            cwd=self.dir,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")

    def initdb(self) -> Path:
        """The cluster's data directory made by ``initdb`` (not yet served: ``start``)."""
        initdb = ["initdb", "-D", str(self.data), "-A", "trust", "-U", self.role, "-E", "UTF8"]
        self._run(*initdb, *([] if self.durable else ["--no-sync"]))
        return self.data

    def start(self, template: Path | None = None) -> TempCluster:
        """The server started on the data directory: ``initdb``'s (made here unless it was
        already), or a copy of ``template``, one ``initdb`` made before for a cluster of the
        same server, user and arguments (the tests keep one: ~0.5 s of CPU less a start)."""
        if template is not None:
            copy = ["cp", "-a", "--", str(template), str(self.data)]
            subprocess.run(copy, check=True, capture_output=True, timeout=60)
        elif not self.data.exists():
            self.initdb()
        options = [
            "-c listen_addresses=''",
            f"-c unix_socket_directories={self.socket_dir}",
            f"-p {self.port}",
            "-c max_connections=200",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"),
            "-o", " ".join(options), "-w", "-t", "60", "start",
        )  # fmt: skip
        self.started = True
        return self

    def dsn(self, dbname: str = "postgres") -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{self.role}@/{dbname}?host={host}&port={self.port}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database; returns its DSN."""
        if not name.replace("_", "").isalnum():
            raise ValueError("database names here are letters, digits and _")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TempCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name
