"""The district's daily report: every gate's day, from the central database.

The figures are the gate's own daily report (``kiosk.stats.compute_report``) computed over the
union of the gates' events — the same code, so a district total is the sum of what each gate
reports, but for the feverish people (``fevers.gate``, ``fever_alarms.people``): a person is
counted once however often refused (``kiosk.categories.FeverishPeople``), by the pass id or a
name and dwelling, and the copy read here holds no pass ids nor holders (and its names are
masked under ``logs:read``), so a pass holder refused twice is one at the gate and two here
(each such event its own person), and a person registered in clear at two gates is one here
and one at each. ``exits_per_household`` is counted per compound with the compound's own
quota, as its gates report it (``office.compounds``): a household out by one gate and again by
another of its compound is counted once against the outing quota. The day's rows (and the
quota's look-back before it, with only the columns the quota reads, ``_LOOKBACK_READ``, a page
at a time) are read from ``fleet_events`` by the ``ts`` index into one in-memory SQLite table
shaped like the kiosk's, which ``compute_report`` reads (each compound's gates' rows by their
ids, each gate's report from its day's rows alone), each dated as its gate dates it
(``kiosk.dating``: one stamped before NTP stepped the gate's clock by its boot's first
synchronised event).

``by_gate`` adds what only the district view has: per gate, the day's events, passes, denials,
fever alarms, the first and last event, and the newest row held centrally (a gate whose log
stops early in the day is a gate that went offline or is not being pulled).

``community`` (the office's categories, ``kiosk.categories``) is rolled up the same way, and
each gate's own is in ``by_gate``. What the events hold is computed from them: people in and
out, fevers at the gate, registrations and vehicles. The figures that come from the gates'
ledgers (``office.gatereports.LEDGER_PATHS``: returnees, quarantined households, service
requests, the helpers' fever checks, unknown plates) are the gates' own counts, fetched by the
collector into ``fleet_gate_reports``, and summed over the gates that reported the day in the
same time zone (or another name of its clock: ``kiosk.days.one_clock``). ``ledgers`` says which did
(``gates``, each one's ``as_of`` and whether the day was ``final`` when it reported) and which
did not (``missing``): a gate that did not answer is left out of the sums and named, never
counted as zero; with no gate reporting, the figures are ``null``. A figure any reporting gate
does not know (``null``) is ``null`` in the sum. Gates share no ledger, but every gate holds
the office's list bundle: quarantined households count the bundle's once and each gate's own
entries (``_quarantined_across``).

Personal fields are whatever the pull brought: with a ``logs:read`` token they are masked, so
``exits_per_household`` counts only rows that carry an unmasked household (``household_rows``
says how many did; a masked code is two characters of it and would merge households); an
outing whose household came masked or was purged is read as the gate reads a purged one
(``_memory_events``): counted in ``exits``, its household figures ``None`` (unknown), never
0. The report itself never names a household or a person.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import psycopg
import sqlite_utils

from kiosk import stats
from kiosk.categories import UNKNOWN, changes_text, rule_text
from kiosk.config.policy import QuotaConfig
from kiosk.days import as_zone, day_bounds, one_clock
from kiosk.record import PURGED_HOUSEHOLD
from office.compounds import (
    compounds,
    district_exits,
    gate_policies,
    json_text,
    lookback_days,
    undeclared,
)
from office.gatereports import LEDGER_PATHS, LISTS_KEY, POLICY_KEY, STAFFING_KEY, UNREADABLE_KEY
from office.pg import (
    COMPOUNDS_KEY,
    GATES_KEY,
    RUNS_KEY,
    PgError,
    Spell,
    collector_runs,
    connect,
)

if TYPE_CHECKING:
    from kiosk.categories import Words

__all__ = ["district_report"]

_REPORT_COLUMNS = ("seq", "kiosk_id", "ts", "direction", "decision", "reasons", "temp_c",
                   "household", "kind", "person", "flags")  # fmt: skip


# A gate's events dated as its own report dates them (``kiosk.dating``): one stamped before
# NTP stepped the gate's clock by the first synchronised event of the same boot (a boot's rows
# are consecutive in ``seq``, so the search stops at the next boot), the others by ``ts``.
# Parameters: the gates (twice), then the window, the gates, the window.
_DATED_SQL = (
    "WITH boots AS (SELECT kiosk_id, boot_id, min(seq) AS first_seq FROM fleet_events"
    " WHERE NOT clock_synced AND (%s::text[] IS NULL OR kiosk_id = ANY(%s))"
    " GROUP BY kiosk_id, boot_id),"
    " offsets AS (SELECT b.kiosk_id, b.boot_id, n.seq AS dated_by,"
    " round(extract(epoch FROM n.ts::timestamptz) * 1000)::bigint - n.mono_ns / 1000000"
    " AS offset_ms FROM boots b CROSS JOIN LATERAL (SELECT s.seq, s.boot_id, s.ts, s.mono_ns"
    " FROM fleet_events s WHERE s.kiosk_id = b.kiosk_id AND s.seq > b.first_seq"
    " AND (s.clock_synced OR s.boot_id <> b.boot_id) ORDER BY s.seq LIMIT 1) n"
    " WHERE n.boot_id = b.boot_id),"
    " dated AS (SELECT e.*, e.ts AS dated_ts,"
    " CASE WHEN e.clock_synced THEN 'clock' ELSE 'unsynced' END AS dating"
    " FROM fleet_events e WHERE e.ts >= %s AND e.ts < %s"
    " AND (%s::text[] IS NULL OR e.kiosk_id = ANY(%s)) AND (e.clock_synced OR NOT EXISTS"
    " (SELECT 1 FROM offsets o WHERE o.kiosk_id = e.kiosk_id AND o.boot_id = e.boot_id"
    " AND o.dated_by > e.seq))"
    " UNION ALL SELECT e.*, d.dated_ts, 'boot' FROM offsets o JOIN fleet_events e"
    " ON e.kiosk_id = o.kiosk_id AND e.boot_id = o.boot_id AND NOT e.clock_synced"
    " AND e.seq < o.dated_by CROSS JOIN LATERAL (SELECT to_char(to_timestamp("
    "(o.offset_ms + e.mono_ns / 1000000) / 1000.0) AT TIME ZONE 'UTC',"
    ' \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') COLLATE "C" AS dated_ts) d'
    " WHERE d.dated_ts >= %s AND d.dated_ts < %s)"
)
#: The day's rows: ``_REPORT_COLUMNS``, the JSON as its text (``json_text``: read as the
#: in-memory table holds it, nothing decoded to be encoded again), then how each was dated and
#: whether it was purged.
_AS_READ = {"ts": "dated_ts"} | {c: f"{c}::text" for c in ("reasons", "person", "flags")}
_DAY_COLUMNS = ", ".join(_AS_READ.get(c, c) for c in _REPORT_COLUMNS)
#: A row of the quota's look-back before the day: what the quota and a guard's decision about a
#: passage of the day before read of it (``kiosk.stats.over_quota_households``,
#: ``kiosk.links.decision_before``), the other columns null: a month of a district's rows.
_LOOKBACK_READ = ("seq", "kiosk_id", "ts", "direction", "decision", "household", "flags")
_LOOKBACK_COLUMNS = ", ".join(
    _AS_READ.get(c, c) if c in _LOOKBACK_READ else "NULL" for c in _REPORT_COLUMNS
)
_ROWS_SQL = (
    f"{_DATED_SQL} SELECT {_DAY_COLUMNS}, dating, purged_at IS NOT NULL"  # noqa: S608 - constants
    " FROM dated ORDER BY dated_ts, kiosk_id, seq"
)
_LOOKBACK_SQL = (
    f"{_DATED_SQL} SELECT {_LOOKBACK_COLUMNS}, dating,"  # noqa: S608 - constants
    " purged_at IS NOT NULL FROM dated ORDER BY dated_ts, kiosk_id, seq"
)
_GATES_SQL = (
    f"{_DATED_SQL} SELECT kiosk_id, count(*),"  # noqa: S608 - constants
    " count(*) FILTER (WHERE reasons ? 'fever'), min(dated_ts), max(dated_ts)"
    " FROM dated GROUP BY kiosk_id"
)
#: The day's rows of each gate as its downtime reads them (``kiosk.stats.downtime_of``).
_DOWN_SQL = (
    f"{_DATED_SQL} SELECT kiosk_id, seq, dated_ts, boot_id, mono_ns, decision, reasons"  # noqa: S608
    " FROM dated ORDER BY kiosk_id, seq"
)
#: A gate's event just before (``<``) or after (``>``) a ``seq``, by its key.
_NEAR_COLUMNS = "kiosk_id, seq, ts, boot_id, mono_ns, decision, reasons"
_NEAR_SQL = {
    "<": f"SELECT {_NEAR_COLUMNS} FROM fleet_events"  # noqa: S608 - constants
    " WHERE kiosk_id = %s AND seq < %s ORDER BY seq DESC LIMIT 1",
    ">": f"SELECT {_NEAR_COLUMNS} FROM fleet_events"  # noqa: S608 - constants
    " WHERE kiosk_id = %s AND seq > %s ORDER BY seq LIMIT 1",
    # A gate's first event stamped from a day's start on (a day it has none of: the one after),
    # by its own (kiosk_id, ts) index (``office.pg``), not through every gate's later rows.
    ">=": f"SELECT {_NEAR_COLUMNS} FROM fleet_events"  # noqa: S608 - constants
    " WHERE kiosk_id = %s AND ts >= %s ORDER BY ts, seq LIMIT 1",
}
# Every gate the database knows, with zero rows for the day too: a silent gate is news.
_HELD_SQL = (
    "SELECT s.kiosk_id, max(s.updated_at),"
    " (SELECT max(seq) FROM fleet_events e WHERE e.kiosk_id = s.kiosk_id)"
    " FROM fleet_sources s WHERE (%s::text[] IS NULL OR s.kiosk_id = ANY(%s))"
    " GROUP BY s.kiosk_id"
)
#: When the office last heard from each gate: a page written (``fleet_sources.updated_at``)
#: or a report fetched (the collector asks for it only after a pull that reached the head).
#: A row of the database's clock alone (kiosk id null) comes first, so ``now`` is known with
#: no gate at all.
_CONTACT_SQL = (
    "SELECT NULL::text, NULL::timestamptz, now() UNION ALL (SELECT kiosk_id, max(at), now()"
    " FROM (SELECT kiosk_id, updated_at AS at FROM fleet_sources"
    " UNION ALL SELECT kiosk_id, fetched_at FROM fleet_gate_reports) heard"
    " WHERE (%s::text[] IS NULL OR kiosk_id = ANY(%s)) GROUP BY kiosk_id)"
)
#: A gate not heard from for this long past the interval its collector's last beat expected
#: (``heard_within``) is off the network, or not pulled, its events of today not all held
#: (``events_missing``): longer than the collector's pause after failures
#: (``error_backoff_max_s``, 300 s). The collector not pulling for this long past the
#: interval its last beat expected (``collector.runs``) is the office hearing from nobody; a
#: gate not heard from for this long past it, while the collector pulled, is still down
#: (``_still_down``).
HEARD_WITHIN = timedelta(minutes=15)


def heard_within(cadence: timedelta) -> timedelta:
    """How long the office may hear nothing, from a gate or from its collector, before the
    report reads it so (``collector_down``, ``still_down``, ``events_missing``): ``HEARD_WITHIN``
    past ``cadence``, the interval the collector's beat expected (``_cadence``: a gate is
    pulled no more often)."""
    return HEARD_WITHIN + cadence


_META_SQL = "SELECT value FROM fleet_meta WHERE key = %s"
#: Each gate's quota policy and peers for the day, as it reported them (``office.compounds``).
_POLICIES_SQL = (
    f"SELECT kiosk_id, timezone, ledgers -> '{POLICY_KEY}' FROM fleet_gate_reports"  # noqa: S608
    " WHERE day = %s AND (%s::text[] IS NULL OR kiosk_id = ANY(%s))"
)
#: The gates' ledger figures of the day, in whatever zone each reported (``_same_day``).
#: Each gate's peers and compound id as its report nearest the day names them
#: (``gate_policies``).
_PEERS_SQL = (
    f"SELECT DISTINCT ON (kiosk_id) kiosk_id, ledgers -> '{POLICY_KEY}'"  # noqa: S608
    f" FROM fleet_gate_reports WHERE jsonb_typeof(ledgers -> '{POLICY_KEY}' -> 'peers') = 'array'"
    " AND (%s::text[] IS NULL OR kiosk_id = ANY(%s))"
    " ORDER BY kiosk_id, abs(day - %s::date), day DESC"
)
_LEDGERS_SQL = (
    "SELECT kiosk_id, ledgers, final, fetched_at, timezone FROM fleet_gate_reports"
    " WHERE day = %s AND (%s::text[] IS NULL OR kiosk_id = ANY(%s))"
)


def _declared(conn: psycopg.Connection[Any]) -> list[str] | None:
    """The compounds the office's published lists declare, as the collector kept them
    (``PgTarget.record_compounds``); None: not known (no collector serving lists, or lists
    declaring none), and every gate's id is taken as its compound."""
    row = conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [COMPOUNDS_KEY]).fetchone()
    try:
        declared = json.loads(row[0]) if row else None
    except ValueError:
        return None
    if not isinstance(declared, list) or not all(isinstance(c, str) for c in declared):
        return None
    return declared


def _without_figures(conn: psycopg.Connection[Any], only: list[str] | None) -> list[dict[str, Any]]:
    """The gates the collector is configured to pull (``PgTarget.record_gates``) none of whose
    events the database holds (its URL is no pinned source), each with why: ``refused:
    duplicate id`` (it answered as another gate's kiosk id), ``refused: not its pinned id``,
    ``unreachable``, ``no token``, ``never pulled``, ``ok`` (answered, with no events yet).
    ``only``: the ones that claimed one of those ids. The director reads a gate absent from
    the report as a quiet one: every configured gate is in ``by_gate`` or here."""
    row = conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [GATES_KEY]).fetchone()
    try:
        gates = json.loads(row[0]) if row else []
    except ValueError:
        gates = []
    pinned = {r[0] for r in conn.execute("SELECT url FROM fleet_sources").fetchall()}
    out = []
    for gate in gates if isinstance(gates, list) else []:
        if not isinstance(gate, dict) or gate.get("url") in pinned:
            continue
        if only is not None and gate.get("kiosk_id") not in only:
            continue
        url, why = str(gate.get("url")), str(gate.get("why") or "never pulled")
        why = "no events yet" if why == "ok" else why
        label = str(gate.get("name") or url)
        named = f"{label} ({url})" if label != url else url
        out.append(
            {"gate": label, "url": url, "kiosk_id": gate.get("kiosk_id"), "why": why}
            | {"detail": f"{named}: {why}"}
        )
    return out


def _dated_args(start: str, end: str, only: list[str] | None) -> list[Any]:
    """``_DATED_SQL``'s parameters for the window ``[start, end)`` and the gates ``only``."""
    return [only, only, start, end, only, only, start, end]


def _clear(household: str | None) -> str | None:
    """A household as pulled, or None when the gate masked it (``kiosk.privacy.mask_code``
    keeps two characters): masked codes collide, so counting them would merge households."""
    return None if household is None or "*" in household else household


def _masked_outing(row: tuple[Any, ...]) -> bool:
    """A passing exit whose household came masked, or was purged (at the gate, or by the
    office's retention: ``office.retention``), which left ``PURGED_HOUSEHOLD`` (a row that
    never had one, null, is no outing): no one's here, whatever its role. Whether it is an
    outing is the count's to judge, by the roles it counts (``kiosk.stats.purged_outing`` in
    ``DayOutings`` and ``over_quota_households``), not by the ``quota_exempt`` it was given
    when it was made: a masked row taken for no outing was counted by its masked code."""
    if row[7] is None or (_clear(row[7]) is not None and row[7] != PURGED_HOUSEHOLD):
        return False
    return row[3] == "out" and row[4] in stats.PASSED


def _memory_events(*parts: Iterable[tuple[Any, ...]]) -> sqlite_utils.Database:
    """An in-memory events table shaped like the kiosk's, of ``parts``' rows in their order.
    An outing no one's here (``_masked_outing``: masked, or purged) is held as the gate holds
    a purged one (``PURGED_HOUSEHOLD``, ``purged_at`` set), so the gate's counts read it as
    the gate does (``kiosk.stats.purged_outing``): the day's count keeps it, the quota's
    look-back takes it as anyone's."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE events (seq INTEGER, kiosk_id TEXT, ts TEXT, direction TEXT,"
        " decision TEXT, reasons TEXT, temp_c REAL, household TEXT, kind TEXT, person TEXT,"
        " flags TEXT, dating TEXT, purged_at TEXT)"
    )
    for rows in parts:
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    *r[:5],
                    json_text(r[5]),
                    r[6],
                    PURGED_HOUSEHOLD if (gone := _masked_outing(r)) else _clear(r[7]),
                    r[8] or "passage",
                    json_text(r[9]),
                    json_text(r[10]),
                    r[11] if len(r) > 11 else None,  # how the row was dated (kiosk.dating)
                    "masked" if gone else None,
                )  # fmt: skip
                for r in rows
            ),
        )
    conn.execute("CREATE INDEX events_ts ON events(ts)")
    return sqlite_utils.Database(conn)


def _district_events(
    conn: psycopg.Connection[Any], args: list[Any], day_rows: list[tuple[Any, ...]]
) -> tuple[sqlite_utils.Database, set[str]]:
    """The district's in-memory events: the quota's look-back (``_LOOKBACK_SQL`` with ``args``,
    its ``_dated_args``) read a page at a time, a month of the district's never held whole here,
    then ``day_rows`` (its outings no one's here held as purged ones: ``_memory_events``); and
    the gates the look-back holds."""
    gates: set[str] = set()

    def kept(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            gates.add(row[1])
            yield row

    with conn.transaction(), conn.cursor("district-lookback") as rows:  # a server-side cursor
        rows.itersize = 10_000
        rows.execute(_LOOKBACK_SQL, args)
        return _memory_events(kept(rows), day_rows), gates


def _utc(text: str) -> datetime:
    """A 19-character UTC text (``day_bounds``) as an aware time."""
    return datetime.fromisoformat(text[:19]).replace(tzinfo=UTC)


def _gate_reports(
    rows: list[tuple[Any, ...]], day: date, zone: ZoneInfo
) -> dict[str, dict[str, Any]]:
    """Each gate's own report (its passages, its office categories), to set beside the
    district's totals, from ``rows``: the day's (what those read; the look-back's rows, a
    month of them, are the district's quota's)."""
    by_kiosk: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_kiosk.setdefault(row[1], []).append(row)
    return {
        kiosk: stats.compute_report(_memory_events(kiosk_rows), day, zone)
        for kiosk, kiosk_rows in by_kiosk.items()
    }


def _at(section: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        section = section.get(key) if isinstance(section, dict) else None
    return section


def _put(section: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(section.get(key), dict):
            section[key] = {}
        section = section[key]
    section[path[-1]] = value


def _add(a: Any, b: Any) -> Any:
    """Counts summed; a mapping key by key (a key one side lacks counts 0 there); unknown
    (None) on either side stays unknown."""
    if a is None or b is None:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [*a, *(k for k in b if k not in a)]
        return {k: _add(a.get(k, 0), b.get(k, 0)) for k in keys}
    if isinstance(a, dict) or isinstance(b, dict):
        return None
    return int(a) + int(b)


def _quarantined_across(figures: list[Any]) -> int | None:
    """Quarantined households across the gates reporting: the office's list bundle is held
    alike by every gate of a compound, so it counts once (``_office_across``), and each
    gate's own entries are summed (``kiosk.categories.quarantine_lists``). Gates that do not
    split their count cannot be summed without counting the office's list once per gate:
    unknown (``None``), unless only one gate reports."""
    if len(figures) == 1:
        only = _at(figures[0], ("quarantined_households",))
        return int(only) if only is not None else None
    splits = [_at(f, (LISTS_KEY,)) for f in figures]
    if not splits or any(
        not isinstance(s, dict) or s.get("office") is None or s.get("local") is None for s in splits
    ):
        return None
    held = [(s, _at(f, (POLICY_KEY, "lists_for"))) for s, f in zip(splits, figures, strict=True)]
    office = _office_across(held)
    return None if office is None else office + sum(int(s["local"]) for s in splits)


def _office_across(held: list[tuple[dict[str, Any], Any]]) -> int | None:
    """The office's quarantined households, from each gate's ``(split, lists_for)``: the
    most any gate holding every entry holds (the newest version); or, by the gates holding
    one compound's entries (``lists_for``), the most any holds of the entries naming no
    compound plus, for each compound, the most any of its gates holds of its own —
    whichever is more."""
    every = [int(s["office"]) for s, lists_for in held if lists_for is None]
    chosen = [(s, lists_for) for s, lists_for in held if lists_for is not None]
    if any(s.get("office_compound") is None for s, _ in chosen):
        return None
    common = [int(s["office"]) - int(s["office_compound"]) for s, _ in chosen]
    own: dict[str, int] = {}
    for s, lists_for in chosen:
        own[lists_for] = max(own.get(lists_for, 0), int(s["office_compound"]))
    by_compound = max(common, default=0) + sum(own.values()) if chosen else 0
    return max(max(every, default=0), by_compound)


def _roll_up_ledgers(
    report: dict[str, Any], gates: list[str], held: dict[str, tuple[Any, bool, Any]]
) -> None:
    """Put the gates' ledger figures into the report (see the module doc), in place."""
    reporting = [g for g in gates if g in held]
    for path in LEDGER_PATHS:
        total: Any = None
        for n, kiosk_id in enumerate(reporting):
            value = _at(held[kiosk_id][0], path)
            total = value if n == 0 else _add(total, value)
        _put(report["community"], path, total)
    report["community"]["quarantined_households"] = _quarantined_across(
        [held[g][0] for g in reporting]
    )
    for gate in report["by_gate"]:
        figures = held.get(gate["kiosk_id"])
        for path in LEDGER_PATHS:
            _put(gate["community"], path, _at(figures[0], path) if figures else None)
        gate["ledgers_as_of"] = figures[2].isoformat() if figures else None
        # The rows of its day its own report could not read (None: not said, not reported).
        gate["unreadable_rows"] = _at(figures[0], (UNREADABLE_KEY,)) if figures else None
    report["ledgers"] = {
        "gates": [
            {"kiosk_id": g, "as_of": held[g][2].isoformat(), "final": held[g][1]} for g in reporting
        ],
        "missing": [g for g in gates if g not in held],
    }


def _by_gate(
    rows: list[tuple[Any, ...]],
    day: date,
    zone: ZoneInfo,
    gates: list[tuple[Any, ...]],
    held: list[tuple[Any, ...]],
    reported: set[str],
) -> list[dict[str, Any]]:
    """Every gate the database knows (``held``, ``reported``), with its day (``gates``: the
    day's counts) and its own report (zeros when it had no events that day)."""
    day_counts = {g[0]: g for g in gates}
    last_held = {h[0]: h for h in held}
    reports = _gate_reports(rows, day, zone)
    quiet = stats.compute_report(_memory_events([]), day, zone)
    out = []
    for kiosk_id in sorted(set(day_counts) | set(last_held) | reported):
        g = day_counts.get(kiosk_id, (kiosk_id, 0, 0, None, None))
        h = last_held.get(kiosk_id, (kiosk_id, None, None))
        gate = reports.get(kiosk_id) or json.loads(json.dumps(quiet))
        out.append(
            {
                "kiosk_id": kiosk_id,
                "events": g[1],
                # Passages by how they ended, as the gate counts them (``stats._outcome``).
                "passed": gate["passages"]["passed"],
                "denied": gate["passages"]["denied"],
                "fever_alarms": g[2],
                "first_event": g[3],
                "last_event": g[4],
                "last_seq_held": h[2],
                "last_pulled_at": h[1].isoformat() if h[1] is not None else None,
                "community": gate["community"],
            }
        )
    return out


def _heard_from(
    report: dict[str, Any],
    heard: list[tuple[Any, ...]],
    bounds: tuple[datetime, datetime],
    zone: ZoneInfo,
    cadence: timedelta,
) -> None:
    """Name the gates whose events of the day (``bounds``) may not all be held
    (``events_missing``): a day that has ended, not heard from since before it ended (its
    last hours, whatever the cadence); today, not heard from within ``heard_within`` the
    collector's ``cadence``, as ``collector_down`` reads it (a gate pulled hourly is not
    missing events between two pulls), or not since the day began. A gate off the network
    keeps deciding; its passages since are on the gate, not in the figures, and its day would
    read as a quiet one. ``as_of`` (the database's clock) and ``day_ended``: a day not over
    yet (the evening's report) is its figures so far, never the day's total."""
    last = {str(r[0]): r[1] for r in heard if r[0] is not None}
    start, end = bounds
    now = next((r[2] for r in heard), end)
    stats.stamp_as_of(report, now)
    until = end if now >= end else max(start, now - heard_within(cadence))
    report["events_missing"] = []
    for gate in report["by_gate"]:
        when = last.get(gate["kiosk_id"])
        gate["last_contact_at"] = when.isoformat() if when is not None else None
        gate["events_complete"] = when is not None and when >= until
        if not gate["events_complete"]:
            since = when.astimezone(zone).strftime("%Y-%m-%d %H:%M") if when else "never"
            report["events_missing"].append(
                {
                    "kiosk_id": gate["kiosk_id"],
                    "last_contact_at": gate["last_contact_at"],
                    "detail": f"{gate['kiosk_id']} not heard from since {since} ({zone.key}):"
                    " its events after that are on the gate, not in these figures",
                }
            )


_KNOWN_SQL = "SELECT kiosk_id FROM fleet_sources UNION SELECT kiosk_id FROM fleet_gate_reports"


def _check_known(conn: psycopg.Connection[Any], only: list[str] | None) -> None:
    """``PgError`` naming the gates asked for that the database does not hold (a typed name:
    its report would be all zeros, as if the gate had had no events)."""
    if only is None:
        return
    known = sorted({row[0] for row in conn.execute(_KNOWN_SQL).fetchall()})
    unknown = [k for k in only if k not in known]
    if unknown:
        held = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") or "none"
        asked = ", ".join(k[:64] for k in unknown[:20])
        raise PgError(f"no gate {asked} in the database (it holds {held})")


#: The zone of each gate's newest ledger report (``office.gatereports``: a gate's own zone).
_ZONES_SQL = (
    "SELECT DISTINCT timezone FROM (SELECT DISTINCT ON (kiosk_id) timezone"
    " FROM fleet_gate_reports WHERE (%s::text[] IS NULL OR kiosk_id = ANY(%s))"
    " ORDER BY kiosk_id, day DESC) newest ORDER BY timezone"
)


def report_zones(
    dsn: str, kiosks: Iterable[str] | None = None, day: date | None = None
) -> list[str]:
    """The time zones the gates (``kiosks``, else all) report their days in, as the collector
    kept them with their newest report; sorted, each once (none before any report). ``day``:
    names that keep one clock all that day (``Asia/Chongqing``, ``Asia/Shanghai``) are one
    zone, given by the first of them."""
    only = sorted(set(kiosks)) if kiosks is not None else None
    conn = connect(dsn, application_name="kiosk-district")
    try:
        names = [str(row[0]) for row in conn.execute(_ZONES_SQL, [only, only]).fetchall()]
    except psycopg.Error as exc:
        raise PgError(f"district report: {str(exc).splitlines()[0]}") from None
    finally:
        conn.close()
    if day is None:
        return names
    kept: list[str] = []
    for name in names:
        if not any(one_clock(name, other, day) for other in kept):
            kept.append(name)
    return kept


def _same_day(rows: Iterable[tuple[Any, ...]], day: date, zone: ZoneInfo) -> list[tuple[Any, ...]]:
    """The ledger rows whose gate's day is the report's: reported in its zone, or in another
    name of its clock (zoneinfo has no table of aliases: the clocks are compared)."""
    return [r for r in rows if r[4] == zone.key or one_clock(str(r[4]), zone, day)]


def district_report(
    conn_or_dsn: str | psycopg.Connection[Any],
    day: date,
    tz: ZoneInfo | str,
    quota_cfg: QuotaConfig | None = None,
    kiosks: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The daily report across gates for local ``day`` in ``tz``; ``kiosks`` limits it."""
    zone = as_zone(tz)
    # Over the quota: each compound's by its own rule (``district_exits``), not all as one.
    quota = (quota_cfg or QuotaConfig()).model_copy(update={"enabled": False})
    own = isinstance(conn_or_dsn, str)
    conn = (
        connect(conn_or_dsn, application_name="kiosk-district")
        if isinstance(conn_or_dsn, str)
        else conn_or_dsn
    )
    try:
        start, end = day_bounds(day, zone)
        only = sorted(set(kiosks)) if kiosks is not None else None
        try:
            _check_known(conn, only)
            held_policies = gate_policies(
                conn.execute(_POLICIES_SQL, [day, only, only]),
                conn.execute(_PEERS_SQL, [only, only, day]),
                _declared(conn),
            )
            longest = QuotaConfig(period_days=lookback_days(held_policies, quota_cfg))
            # A day earlier too: a compound's period runs on its own site's clock.
            lookback = stats.quota_lookback(day - timedelta(days=1), zone, longest)
            day_rows = conn.execute(_ROWS_SQL, _dated_args(start, end, only)).fetchall()
            args = _dated_args(lookback, start, only)
            db, read = _district_events(conn, args, day_rows)
            gates = conn.execute(_GATES_SQL, _dated_args(start, end, only)).fetchall()
            held = conn.execute(_HELD_SQL, [only, only]).fetchall()
            ledgers = _same_day(conn.execute(_LEDGERS_SQL, [day, only, only]), day, zone)
            heard = conn.execute(_CONTACT_SQL, [only, only]).fetchall()
            runs = collector_runs(conn.execute(_META_SQL, [RUNS_KEY]).fetchone())
            without = _without_figures(conn, only)
            down = _downtime(conn, conn.execute(_DOWN_SQL, _dated_args(start, end, only)))
            _quiet_downtime(conn, down, [h[0] for h in held], start)
        except psycopg.Error as exc:
            raise PgError(f"district report: {str(exc).splitlines()[0]}") from None
    finally:
        if own:
            conn.close()
    report = stats.compute_report(db, day, zone, quota)
    report["household_rows"] = sum(1 for r in day_rows if _clear(r[7]))
    gate_ids = read | {r[1] for r in day_rows} | {h[0] for h in held} | set(held_policies)
    window = (_utc(lookback), _utc(end))
    report["exits_per_household"] = district_exits(
        report["exits_per_household"],
        compounds(gate_ids, held_policies),
        held_policies,
        quota_cfg,
        (day, zone, *window),
        day_rows,
        db,
        _masked_outing,
    )
    report["undeclared_compounds"] = [
        item | {"detail": f"undeclared compound {item['compound']} from gate {item['kiosk_id']}"}
        for item in undeclared(sorted(held_policies), held_policies)
    ]
    report["scope"] = "district"
    report["gates"] = len(gates)
    report["by_gate"] = _by_gate(day_rows, day, zone, gates, held, {r[0] for r in ledgers})
    split = {r[0]: (r[1] or {}).get(STAFFING_KEY) for r in ledgers}
    cadence = _collector_view(report, runs, heard, down, (start, end), zone)
    for gate in report["by_gate"]:  # the day split by its own staffed hours, as it said
        gate["staffing"] = split.get(gate["kiosk_id"])
    report["gates_without_figures"] = without
    _heard_from(report, heard, (_utc(start), _utc(end)), zone, cadence)
    _roll_up_ledgers(
        report, [g["kiosk_id"] for g in report["by_gate"]], {r[0]: r[1:4] for r in ledgers}
    )
    return report


#: The ``compounds`` sheet's columns: a compound's quota figures as ``exits_per_household``
#: holds them (``office.compounds``), its rule flattened, every disagreement as text.
COMPOUND_COLUMNS = (
    "compound", "gates", "quota_enabled", "quota_exits", "period_days", "roles", "timezone",
    "households", "exits", "max", "over_quota_households", "disagree", "unknown",
    "peers_unlisted", "peers_outside", "id_missing", "peers_elsewhere", "undeclared",
    "quota_changes",
)  # fmt: skip


def _changes_text(entry: dict[str, Any]) -> str:
    """A compound's ``quota_changes`` as one text, each rule from when it came into force on
    the compound's clock (its ``timezone``; UTC, said, when this office does not know it):
    ``start 1 every 2 days (resident); 12:00 off``; the rules its gates left out of their
    reports said after the first; ``none`` for a day whose rule is known and did not change;
    ``unknown`` where its rule is not known (none held, or its gates' disagree: ``disagree``
    says each gate's changes)."""
    changes = entry.get("quota_changes")
    if not entry.get("quota") or entry.get("disagree"):
        return UNKNOWN
    if not changes:
        return UNKNOWN if entry.get("quota_changes_left_out") else "none"
    name = (entry.get("quota") or {}).get("timezone")
    return changes_text(changes, name, int(entry.get("quota_changes_left_out") or 0))


def _names(items: Iterable[Any]) -> str:
    """A list of gates, or of disagreements (``kiosk_id`` and what is wrong), as one text."""
    out = []
    for item in items:
        if not isinstance(item, dict):
            out.append(str(item))
        elif "quota" in item:
            out.append(f"{item['kiosk_id']}: {rule_text(item['quota'])}")
        elif "missing" in item:
            out.append(f"{item['kiosk_id']} leaves out {', '.join(item['missing'])}")
        elif "peer" not in item:
            out.append(f"undeclared compound {item['compound']} from gate {item['kiosk_id']}")
        else:
            elsewhere = item.get("compound") or "no id"
            out.append(f"{item['kiosk_id']} lists {item['peer']} (compound {elsewhere})")
    return "; ".join(out)


def _compound_row(entry: dict[str, Any]) -> list[Any]:
    quota = entry.get("quota")
    rule = [quota.get(k) for k in ("enabled", "exits", "period_days")] if quota else [None] * 3
    roles = ", ".join(quota.get("roles") or ()) if quota else None
    figures = [entry.get(k) for k in ("households", "exits")]
    histogram = entry.get("histogram")
    high = None if histogram is None else max((int(k) for k in histogram), default=0)
    lists = [_names(entry.get(k) or ()) for k in COMPOUND_COLUMNS[11:-1]] + [_changes_text(entry)]
    row = [entry.get("id") or "", ", ".join(entry.get("gates", ())), *rule, roles]
    row += [quota.get("timezone") if quota else None, *figures, high]
    return [UNKNOWN if v is None else v for v in [*row, entry.get("over_quota_households")]] + lists


def compound_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The ``compounds`` sheet: the header, the district's figures (compound ``district``),
    then a row per compound. A figure the report holds as ``null`` reads ``unknown``."""
    exits = report.get("exits_per_household") or {}
    whole: list[Any] = ["district", ", ".join(g["kiosk_id"] for g in report.get("by_gate", ()))]
    whole += [exits.get(k) for k in ("quota_enabled", "quota_exits", "period_days")]
    whole += ["", ""] + [exits.get(k) for k in ("households", "exits", "max")]
    whole = [UNKNOWN if v is None else v for v in [*whole, exits.get("over_quota_households")]]
    rows = [list(COMPOUND_COLUMNS), whole + [""] * (len(COMPOUND_COLUMNS) - len(whole))]
    return rows + [_compound_row(e) for e in exits.get("compounds", ())]


def _compound_csv_rows(report: dict[str, Any]) -> list[list[Any]]:
    """``compound_rows`` as the CSV's (category, item, value) rows: category
    ``exits_per_household`` for the district, ``compound <id, or its gates>`` for each."""
    header, whole, *each = compound_rows(report)
    district = zip(header[2:11], whole[2:11], strict=True)  # no roles or zone of its own
    out = [["exits_per_household", k, v] for k, v in district if k not in ("roles", "timezone")]
    for row in each:
        label = f"compound {row[0] or row[1]}"
        out += [[label, k, v] for k, v in zip(header[1:], row[1:], strict=True)]
    return out


#: Each gate's own figures beside the district's (``by_gate``), so the totals can be checked
#: against the gates and each gate's share read: the sums of these are the report's
#: ``events``, ``passages`` passed and denied and ``fever_alarms.count``.
GATE_ITEMS = ("events", "passed", "denied", "fever_alarms", "events_complete")


#: Each gate's downtime totals beside them (``kiosk.stats.downtime_of``).
DOWNTIME_ITEMS = ("restarts_total", "restart_minutes", "faults_total")


#: Each gate's day split by its own staffed hours (``by_gate[].staffing``) after them: what
#: its kiosk decided alone.
STAFFING_ITEMS = tuple(
    f"{part}.{item}"
    for part in ("staffed", "unstaffed")
    for item in ("events", "passages.total", "passages.passed", "passages.denied")
)


def _gate_rows(report: dict[str, Any]) -> list[list[Any]]:
    """(gate, item, value) for every gate of ``by_gate`` and each of ``GATE_ITEMS``, then
    its downtime's totals (``downtime.restarts_total``...) and its staffing split
    (``_staffing_rows``)."""
    rows = []
    for gate in report.get("by_gate", ()):
        rows += [[gate["kiosk_id"], item, gate.get(item)] for item in GATE_ITEMS]
        down = gate.get("downtime") or {}
        rows += [[gate["kiosk_id"], f"downtime.{k}", down.get(k)] for k in DOWNTIME_ITEMS]
        rows += [[gate["kiosk_id"], *row] for row in _staffing_rows(gate.get("staffing"))]
    return rows


def _staffing_rows(staffing: dict[str, Any] | None) -> list[list[Any]]:
    """(item, value): ``staffing.hours`` (its spans; ``round the clock`` for hours off) and
    each of ``STAFFING_ITEMS``; every value None (written ``UNKNOWN``) when the collector
    fetched no split of the gate's (``gatereports.gate_staffing``: none fetched, or a gate
    of an older release)."""
    if staffing is None:
        return [[f"staffing.{item}", None] for item in ("hours", *STAFFING_ITEMS)]
    rows = [["staffing.hours", staffing.get("hours") or ROUND_THE_CLOCK]]
    for item in STAFFING_ITEMS:
        value: Any = staffing
        for key in item.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        rows.append([f"staffing.{item}", value])
    return rows


#: ``staffing.hours`` of a gate whose hours are off: every event of it staffed.
ROUND_THE_CLOCK = "round the clock"


def _downtime(
    conn: psycopg.Connection[Any], day_rows: Iterable[tuple[Any, ...]]
) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each gate's chain and day rows for ``kiosk.stats.downtime_of``: its rows of the day
    (dated), with its events just before and after them (by ``seq``, their own stamps)."""
    names = ("kiosk_id", "seq", "ts", "boot_id", "mono_ns", "decision", "reasons")
    by_gate: dict[str, list[dict[str, Any]]] = {}
    for row in day_rows:
        item = dict(zip(names, row, strict=True))
        item["reasons"] = json.dumps(item["reasons"])
        by_gate.setdefault(item["kiosk_id"], []).append(item)
    out = {}
    for kiosk_id, rows in by_gate.items():
        near = []
        for side, seq in (("<", rows[0]["seq"]), (">", rows[-1]["seq"])):
            for found in conn.execute(_NEAR_SQL[side], [kiosk_id, seq]).fetchall():
                item = dict(zip(names, found, strict=True))
                near.append(item | {"reasons": json.dumps(item["reasons"]), "side": side})
        before = [n for n in near if n["side"] == "<"]
        after = [n for n in near if n["side"] == ">"]
        out[kiosk_id] = ([*before, *rows, *after], rows)
    return out


def _gate_downtime(
    report: dict[str, Any],
    down: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    heard: list[tuple[Any, ...]],
    collector: tuple[list[tuple[datetime, datetime]], timedelta],
    bounds: tuple[str, str],
    zone: ZoneInfo,
) -> None:
    """Each gate's ``downtime``: the restarts and fault spells its pulled rows show
    (``kiosk.stats.downtime_of``), and a gate not heard from since its last event still
    down (``_still_down``), but over the spells the office's collector was not pulling
    (``collector``: those, and the interval its last beat expected, ``_cadence``)."""
    unheard, cadence = collector
    contact = {str(r[0]): r[1] for r in heard if r[0] is not None}
    now = next((r[2] for r in heard), _utc(bounds[1]))
    for gate in report["by_gate"]:
        chain, gate_rows = down.get(gate["kiosk_id"], ([], []))
        gate["downtime"] = stats.downtime_of(chain, gate_rows, bounds, zone)
        last = chain[-1] if chain and chain[-1]["seq"] == gate["last_seq_held"] else None
        if last is not None:
            heard_at = (contact.get(gate["kiosk_id"]), now)
            _still_down(gate["downtime"], last, heard_at, unheard, bounds, zone, cadence)


#: A gate's restart that has not ended: no sign of life from it since (``_still_down``).
STILL_DOWN = "still_down"


def _still_down(
    downtime: dict[str, Any],
    last: dict[str, Any],
    heard_at: tuple[datetime | None, datetime],
    unheard: list[tuple[datetime, datetime]],
    bounds: tuple[str, str],
    zone: ZoneInfo,
    cadence: timedelta,
) -> None:
    """A gate whose ``last`` event is the last the office holds of it and that the office has
    not heard from (``heard_at``: its contact) within ``HEARD_WITHIN`` past its collector's
    ``cadence`` (``_cadence``: a gate is pulled no more often) of ``now`` (the report's
    ``as_of``) while its collector pulled (``unheard``: the spells it did not): down
    since its last sign of life (that event, or the contact when later), still down as of
    ``now`` (or off the network: the office cannot tell). Nothing ends the restart
    ``downtime_of`` reads from its events, so it listed none; it is listed (``kind``
    ``still_down``, ``to`` the report's time) when it touches the day, and counted, but the
    minutes the collector was down (``collector_down_minutes``): nobody was heard then. A
    collector spell the office knew the gate down on both sides of is the gate's (``_deaf``)."""
    contact, now = heard_at
    since = max(_utc(last["ts"]), contact) if contact is not None else _utc(last["ts"])
    unheard = [spell for spell in unheard if _deaf(spell, since, now, cadence)]
    pulling = (now - since).total_seconds() - _overlap(unheard, since, now)
    if pulling <= 0 or (contact is not None and pulling < heard_within(cadence).total_seconds()):
        return  # heard from lately, as far as the collector listened
    start, end = _utc(bounds[0]), _utc(bounds[1])
    if since >= end or now <= since:
        return
    low, high = max(since, start), min(now, end)
    within = (high - low).total_seconds() - _overlap(unheard, low, high)
    if len(downtime["restarts"]) < stats.DOWNTIME_LISTED:
        downtime["restarts"].append(
            {
                "from": since.astimezone(zone).isoformat(timespec="seconds"),
                "booted": None,
                "to": now.astimezone(zone).isoformat(timespec="seconds"),
                "minutes": round((now - since).total_seconds() / 60, 1),
                "kind": STILL_DOWN,
                "collector_down_minutes": round(_overlap(unheard, since, now) / 60, 1),
            }
        )
    downtime["restarts_total"] += 1
    downtime["restart_minutes"] = round(downtime["restart_minutes"] + max(0.0, within / 60), 1)


def _deaf(
    spell: tuple[datetime, datetime],
    since: datetime,
    now: datetime,
    cadence: timedelta,
) -> bool:
    """Whether the collector's down ``spell`` is no downtime of a gate heard last at ``since``
    (the office could not know): unless the gate was not heard for ``HEARD_WITHIN`` past the
    collector's ``cadence`` (``_cadence``: a gate is pulled no more often) before the spell
    began and, the collector back, for as long after it ended, up to ``now`` (known down on
    both sides, with no contact between: down through it). A gate pulled hourly at 09:00, the
    collector down from 09:50, was not due again before it: the office never tried it."""
    begun, ended = spell
    window = heard_within(cadence)
    return begun - since < window or now - ended < window


def _overlap(spells: Iterable[tuple[datetime, datetime]], low: datetime, high: datetime) -> float:
    """Seconds of ``spells`` (not overlapping each other) within ``low`` .. ``high``."""
    return sum(max(0.0, (min(b, high) - max(a, low)).total_seconds()) for a, b in spells)


def _collector_down(
    runs: list[Spell] | None, now: datetime
) -> list[tuple[datetime, datetime]] | None:
    """The spells the office's collector was not pulling (``collector.runs``): from its last
    beat to the next, or to ``now``, when that came (or has not come) ``HEARD_WITHIN`` past
    the interval the beat expected (``kiosk collect --once`` from cron, a poll interval or a
    pause after failures: a spell kept before 2026-12-06 said none, 0). Before its first kept
    spell: not known, none. None: it keeps no record."""
    if runs is None:
        return None
    gaps: list[tuple[datetime, datetime]] = []
    reached: datetime | None = None
    due: datetime | None = None
    for _, begun, ended, expect in sorted(runs, key=lambda run: run[1]):
        if reached is not None and due is not None and begun >= due:
            gaps.append((reached, begun))
        late = ended + heard_within(timedelta(seconds=expect or 0))
        reached = ended if reached is None else max(reached, ended)
        due = late if due is None else max(due, late)
    if reached is not None and due is not None and now >= due:
        gaps.append((reached, now))
    return gaps


def _cadence(runs: list[Spell] | None) -> timedelta:
    """The interval the collector's last beat expected before its next (``collector.runs``):
    a gate is pulled no more often (of two ending at once, the newer); 0 when it said none."""
    last = max(reversed(runs or ()), key=lambda run: run[2], default=None)
    return timedelta(seconds=last[3] or 0) if last is not None else timedelta(0)


def _collector_view(
    report: dict[str, Any],
    runs: list[Spell] | None,
    heard: list[tuple[Any, ...]],
    down: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    bounds: tuple[str, str],
    zone: ZoneInfo,
) -> timedelta:
    """The report's ``collector_down`` and each gate's ``downtime`` read against it
    (``_gate_downtime``); the collector's cadence they are read with (``_cadence``: a gate is
    pulled no more often), which ``events_missing`` is read with too."""
    unheard = _collector_down(runs, next((r[2] for r in heard), _utc(bounds[1])))
    cadence = _cadence(runs)
    _gate_downtime(report, down, heard, (unheard or [], cadence), bounds, zone)
    report["collector_down"] = _collector_down_items(unheard, bounds, zone)
    return cadence


def _collector_down_items(
    unheard: list[tuple[datetime, datetime]] | None, bounds: tuple[str, str], zone: ZoneInfo
) -> list[dict[str, Any]] | None:
    """The report's ``collector_down``: each spell the office heard from nobody, its
    collector down, that touches the day; None when the collector keeps no record."""
    if unheard is None:
        return None
    start, end = _utc(bounds[0]), _utc(bounds[1])
    items = []
    for low, high in unheard:
        if high <= start or low >= end:
            continue
        said = [t.astimezone(zone).strftime("%Y-%m-%d %H:%M") for t in (low, high)]
        items.append(
            {
                "from": low.astimezone(zone).isoformat(timespec="seconds"),
                "to": high.astimezone(zone).isoformat(timespec="seconds"),
                "minutes": round(_overlap([(low, high)], start, end) / 60, 1),
                "detail": f"the office heard from nobody from {said[0]} to {said[1]}"
                f" ({zone.key}): its collector was down; no gate's downtime",
            }
        )
    return items


def _quiet_downtime(
    conn: psycopg.Connection[Any],
    down: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
    known: Iterable[str],
    start: str,
) -> None:
    """The chain of each gate the collector knows (``known``) that has no row of the day in
    ``down``: its last event before the day and its first after, as its own report reads a
    day without events (``kiosk.stats``): a new boot between is the day down throughout, not
    a quiet gate. No rows of the day: ``boots`` 0."""
    names = ("kiosk_id", "seq", "ts", "boot_id", "mono_ns", "decision", "reasons")
    for kiosk_id in known:
        if kiosk_id in down:
            continue
        after = conn.execute(_NEAR_SQL[">="], [kiosk_id, start]).fetchall()
        below = after[0][1] if after else _LAST_SEQ
        before = conn.execute(_NEAR_SQL["<"], [kiosk_id, below]).fetchall()
        chain = [dict(zip(names, row, strict=True)) for row in [*before, *after]]
        for item in chain:
            item["reasons"] = json.dumps(item["reasons"])
        down[kiosk_id] = (chain, [])


#: Above any seq: the last event of a gate with none from a day's start on.
_LAST_SEQ = 2**63 - 1


def district_csv(report: dict[str, Any], words: Words | None = None) -> str:
    """The report as the categories' CSV (``kiosk.categories.report_rows``: category, item,
    value), each gate's own figures (category ``gate <id>``: ``_gate_rows``), then the quota
    figures' rows (``_compound_csv_rows``); with ``words``, labelled in their language
    (``kiosk.categories.worded``: the codes stay, the details stay English)."""
    from kiosk.categories import report_rows, worded
    from kiosk.sheets import write_csv

    gates = [[f"gate {kiosk_id}", item, value] for kiosk_id, item, value in _gate_rows(report)]
    rows = _known(report_rows(report)) + _missing_rows(report, words) + _known(gates)
    rows += _compound_csv_rows(report)
    return write_csv(rows if words is None else worded(rows, words))


def _known(rows: list[list[Any]]) -> list[list[Any]]:
    """Rows whose last cell (the value) the report holds as ``null`` (a ledger figure no
    gate reported) written ``UNKNOWN``: a blank cell a spreadsheet's SUM would add as 0."""
    return [[*row[:-1], UNKNOWN] if row and row[-1] is None else row for row in rows]


def _missing_rows(report: dict[str, Any], words: Words | None = None) -> list[list[Any]]:
    """When the figures were taken (a day not over yet says so) and the gates whose events
    of the day may not all be held, as (category, item, value): the clerk reads the sheet,
    not the JSON."""
    return (
        stats.as_of_rows(report, words)
        + [["events_missing", m["kiosk_id"], m["detail"]] for m in report.get("events_missing", ())]
        + [["no_figures", g["gate"], g["detail"]] for g in report.get("gates_without_figures", ())]
        + [["collector_down", "office", c["detail"]] for c in report.get("collector_down") or ()]
        + _not_final_rows(report)
        + _unreadable_rows(report)
    )


def _unreadable_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The gates whose own report of the day left rows out, unreadable (``by_gate[]
    .unreadable_rows``: a damaged field), with how many: that gate's figures are not its
    whole day."""
    rows = []
    for gate in report.get("by_gate", ()):
        count = gate.get("unreadable_rows")
        if isinstance(count, int) and count > 0:
            detail = (
                f"{gate['kiosk_id']}'s log holds {count} row{'' if count == 1 else 's'} of the"
                " day it cannot read (a damaged field), left out of every figure of its"
                " report: its figures are not its whole day (kiosk verify-log at the gate"
                " names them)"
            )
            rows.append(["unreadable_rows", gate["kiosk_id"], detail])
    return rows


def _not_final_rows(report: dict[str, Any]) -> list[list[Any]]:
    """The gates whose ledger figures (returnees, service requests...) were taken before
    their day ended (``ledgers.gates[].final`` false), when: summed with the others', they are
    that gate's day so far, not its day."""
    zone = stats.report_zone(report)
    rows = []
    for gate in (report.get("ledgers") or {}).get("gates", ()):
        if gate.get("final") is False:
            taken = datetime.fromisoformat(gate["as_of"]).astimezone(zone)
            detail = (
                f"{gate['kiosk_id']}'s ledger figures were taken {taken:%Y-%m-%d %H:%M}"
                f" ({zone.key}), before its day ended: they are its day so far"
            )
            rows.append(["ledgers_not_final", gate["kiosk_id"], detail])
    return rows


def district_xlsx(report: dict[str, Any], words: Words | None = None) -> bytes:
    """The categories' workbook (``kiosk.categories.report_sheets``: daily report, by hour, by
    reason, by gate) with a ``compounds`` sheet (``compound_rows``) after them; with
    ``words``, labelled in their language (``kiosk.categories.worded_sheets``)."""
    from kiosk.categories import report_sheets, worded_sheets
    from kiosk.sheets import write_xlsx

    sheets = report_sheets(report)
    sheets["daily report"] += _missing_rows(report, words)
    header, *categories = sheets.get("by gate") or [["gate", "category", "item", "value"]]
    own = [[kiosk_id, "report", item, value] for kiosk_id, item, value in _gate_rows(report)]
    sheets["by gate"] = [header, *_known(own), *_known(categories)]
    sheets["daily report"] = _known(sheets["daily report"])
    sheets["compounds"] = compound_rows(report)
    return write_xlsx(sheets if words is None else worded_sheets(sheets, words))
