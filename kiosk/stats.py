"""The daily report (日报): what happened at the gate on one local day.

``daily_report(reader, day, tz, quota_cfg)`` counts the day's events by decision, reason,
direction and local hour, the fever alarms, a histogram of body temperatures (one reading
per passage: a guard's decision about a passage of the day is that passage, and so is a
resident's next try after a measure-again deny, ``kiosk.links``) and the exits
per household measured against the outing quota. It holds no personal data: households appear
only as counts (how many households went out once, twice, ...; how many exceeded the quota,
none when the site has no quota),
never by name, so the report can be kept after the events' personal fields are purged.
``community`` holds the office's categories (people in/out, fevers, returnees, quarantined
households, registrations, vehicles, service requests: ``kiosk.categories``).

Frozen aggregates: retention nulls ``household`` in old events, after which a live count could
no longer tell households apart. So before a purge, every complete day is computed once and
kept in the ``daily_aggregates`` table (``freeze_days``); ``daily_report`` answers from there
when a day is frozen, so a purged day reports exactly what it reported before. Days are frozen
as soon as they are complete (not only when they are purged) so the quota look-back, which
needs the ``period_days`` days before the day (``quota_lookback``), still sees intact
households. A frozen day that got events after it was frozen (stamped on it by a clock set
back: ``through_seq`` is the last ``seq`` its frozen copy saw) is counted live again while its
events are intact, and frozen again by the next ``freeze_days``. A day already purged is never
frozen (its households are gone); its copy frozen under another name of the site's clock (a
zone renamed) is its own, and one frozen in the zone the site had before (a zone corrected) is
its report, naming that zone (``frozen_report``). A day whose outings lost their households
with no copy kept reports them unknown (``unknown_outings``), never 0; a day whose quota
period before it holds such an outing that may have been one of its households' reports its
``over_quota_households`` unknown (``over_quota_households``).
Over the quota is what the gate counts: an outing with ``exits`` or more before
it in the rolling period before it, not a count over calendar days.

Days are local days in the site timezone; events are stored in UTC ISO 8601, compared as text
on their first 19 characters (``YYYY-MM-DDTHH:MM:SS``), which every UTC ISO form shares.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import json
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from kiosk.categories import (
    community_section,
    csv_file,
    quarantine_lists,
    report_rows,
    report_sheets,
    worded,
    worded_sheets,
)
from kiosk.config.policy import HoursConfig, QuotaConfig
from kiosk.dating import dated_source
from kiosk.days import (
    as_zone,
    day_bounds,
    day_hours,
    days_before,
    hour_key,
    known_zone,
    local_day,
    one_clock,
    within_spans,
)
from kiosk.files import streamed_rows
from kiosk.history import counted_outing
from kiosk.links import (
    GUARD_DECISIONS,
    NOT_OPENED,
    OVERRIDING,
    Key,
    decision_before,
    guard_decision,
    not_opened,
    overridden,
    passage_key,
    retried,
)
from kiosk.lists import Freshness, same_text
from kiosk.pihealth import power_spells
from kiosk.ports import Store
from kiosk.record import PURGED_HOUSEHOLD
from kiosk.sheets import write_csv, write_xlsx
from kiosk.store import define_counted_outing, recorded_history
from kiosk.unreadable import (
    UNREADABLE,
    a_time,
    also_checked,
    readable_rows,
    undated_args,
    undated_sql,
)

MIGRATIONS = Migrations("kiosk.stats")

#: Temperature histogram: 0.5 °C bins from 35.0 to 39.0, plus one below and one above.
TEMP_LOW_C = 35.0
TEMP_HIGH_C = 39.0
TEMP_BIN_C = 0.5

PASSED = ("pass", "manual_pass")


@MIGRATIONS()
def m001_daily_aggregates(db: Database) -> None:
    _create_aggregates(db)


def _create_aggregates(db: Database) -> None:
    db.table("daily_aggregates").create(
        {"day": str, "tz": str, "report": str, "frozen_at": str, "through_seq": int},
        pk=("day", "tz"),
        not_null={"report", "frozen_at"},
        if_not_exists=True,
    )
    if "through_seq" not in db.table("daily_aggregates").columns_dict:
        db.execute("ALTER TABLE daily_aggregates ADD COLUMN through_seq INTEGER")


def _has_table(db: Database, name: str) -> bool:
    return bool(list(db.query("select 1 from sqlite_master where type='table' and name=?", [name])))


def _temperature_bins() -> list[tuple[float | None, float | None]]:
    edges: list[tuple[float | None, float | None]] = [(None, TEMP_LOW_C)]
    low = TEMP_LOW_C
    while low < TEMP_HIGH_C:
        edges.append((low, round(low + TEMP_BIN_C, 2)))
        low = round(low + TEMP_BIN_C, 2)
    edges.append((TEMP_HIGH_C, None))
    return edges


def _bin_index(temp_c: float, bins: list[tuple[float | None, float | None]]) -> int:
    for i, (lo, hi) in enumerate(bins):
        if (lo is None or temp_c >= lo) and (hi is None or temp_c < hi):
            return i
    return len(bins) - 1  # pragma: no cover - the last bin is open-ended


@contextmanager
def _events_between(
    db: Database,
    start: str,
    end: str,
    columns: str,
    kiosks: Collection[str] | None = None,
    skipped: list[int] | None = None,
) -> Iterator[Iterator[dict[str, Any]]]:
    """The events dated (``kiosk.dating``) in ``[start, end)``, in ``seq`` order, one at a time
    within the block (a quota period's may be a month's: ``streamed_rows``); ``ts`` is their
    dated time and ``dating`` how it was dated (null in a table of rows dated without it).
    ``kiosks``: only theirs (a compound of the district's, ``office.compounds``). A row whose
    fields cannot be read is left out, its ``seq`` put into ``skipped``
    (``kiosk.unreadable.readable_rows``); with ``skipped``, one whose time is no time is of the
    day of the row before it in the log (``undated_sql``), a deny kept dated as that row
    (without, it is in none: the look-backs and spells read no such row)."""
    source, ts = dated_source(db)
    dated = source == "dated_events" or "dating" in db.table("events").columns_dict
    dating = "dating" if dated else "null"
    wanted = [c.strip() for c in columns.split(",")]
    wanted += also_checked([c.split()[-1] for c in wanted])
    picked = ", ".join(
        {"ts": f"{ts} as ts", "dating": f"{dating} as dating"}.get(c, c) for c in wanted
    )
    only = "" if kiosks is None else f" and kiosk_id in ({', '.join('?' * len(kiosks))})"
    timed = f"{ts} >= ? and {ts} < ? and {a_time(ts)}"
    sql = f"select {picked} from {source} where {timed}{only}"  # noqa: S608
    args: list[object] = [start, end, *(kiosks or ())]
    if skipped is not None:  # the day's figures: every row of it
        sql += f" union all {undated_sql(source, ts, picked, only)}"
        args += undated_args(source, start, end, kiosks or ())
    with streamed_rows(db, f"{sql} order by seq", args) as rows:
        yield readable_rows(rows, skipped, since=start)


def households_outing(row: Mapping[str, Any], roles: Collection[str] | None = None) -> bool:
    """Whether an events row is one of its household's outings, as the quota counting
    ``roles`` counts them (``kiosk.history.counted_outing``; None: as judged when it was made):
    a passing exit of a role it counts, not a staff member's or a delivery's. A pass the
    gate did not open for is one until its ``not_opened`` row is read (``not_opened_pass``)."""
    if row["direction"] != "out" or row["decision"] not in PASSED or not row["household"]:
        return False
    return counted_outing(json.loads(row["flags"]) if row["flags"] else (), roles)


def purged_outing(row: Mapping[str, Any], roles: Collection[str] | None = None) -> bool:
    """Whether an events row is an outing (``households_outing``) whose household was purged
    (``purged``: by retention or a forget), so no count can tell whose it was: the purge left
    ``PURGED_HOUSEHOLD`` where it had one. A row that never had one (null: a visitor's pass, a
    guard's pass for nobody) is no outing, purged or not."""
    if not row["purged"] or row["household"] != PURGED_HOUSEHOLD:
        return False
    return households_outing({**row, "household": "purged"}, roles)


def unknown_outings(exits: dict[str, Any], *, count: int | None = None) -> None:
    """``exits_per_household`` of a day with outings by households nobody can tell apart any
    more (purged here, masked or purged in the office's copy): unknown (``None``), never 0.
    ``count``: the day's outings, when every one is a row here (a purged one keeps its
    direction, decision and flags: an outing all the same, nobody's name): the ``exits``
    kept; the household figures need whose each was, which is what went."""
    for key in ("households", "exits", "histogram", "max", "over_quota_households"):
        exits[key] = None
    exits["exits"] = count


def gate_not_opened(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``rows`` (a day's, in ``seq`` order) as the day's figures take them. A deny whose flags
    cannot be read (``kiosk.unreadable``) right after a pass of the same person at its gate
    may be the row saying the gate did not open for it (``not_opened``): read as that one, so
    the pass counts as no outing and its passage as denied; the row is counted unreadable all
    the same. A pass it did not undo is counted one short, never one too many. The same
    person: of the same household and, when both rows name a pass, of the same pass (a
    child's deny right after the mother's exit is not hers)."""
    before: dict[str, dict[str, Any]] = {}  # each gate's row before
    for row in rows:
        last, before[str(row["kiosk_id"])] = before.get(str(row["kiosk_id"])), row
        if (
            last is not None
            and "flags" in row.get(UNREADABLE, ())
            and (last["decision"], row["decision"]) in ((d, "deny") for d in PASSED)
            and all(last[n] == row[n] for n in ("direction", "household"))
            and _same_pass(last, row)
        ):
            row = {**row, "flags": json.dumps([f"{NOT_OPENED}{last['seq']}"])}  # noqa: PLW2901
        yield row


def _same_pass(one: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    """Whether two events rows are of the same pass, or either names none (nor can: a copy
    without pass ids)."""
    held = (one.get("pass_id"), other.get("pass_id"))
    return None in held or held[0] == held[1]


def not_opened_pass(row: Mapping[str, Any]) -> Key | None:
    """The pass (kiosk, seq) an events row says the gate did not open for
    (``kiosk.links``: ``not_opened:<seq>``), or None: nobody went through on it, so it is no
    outing."""
    seq = not_opened(json.loads(row["flags"]) if row["flags"] else ())
    return None if seq is None else (str(row["kiosk_id"]), seq)


#: A passage's reading and whether a guard took it by hand (``hand_readings``).
Reading = tuple[float | None, bool]


def _reading(readings: dict[Key, Reading], key: Key, row: Mapping[str, Any]) -> None:
    """Put an event's body temperature into ``readings`` (one per passage, ``key``: its
    ``passage_key``). A passage's first row and each attempt that tries it again
    (``retries:<seq>``) put theirs: the last attempt's reading is the passage's. A guard's
    decision about it is not another reading: it copied the kiosk's reading (or had none),
    or it carries the guard's hand reading, which replaces the kiosk's: a hand reading is a
    guard's decision with a temperature and no sensor reading beside it (a winter day's hand
    checks, the air outside the thermometer's range)."""
    temp_c = None if row["temp_c"] is None else float(row["temp_c"])
    own = key == (str(row["kiosk_id"]), int(row["seq"]))
    attempt = own or retried(json.loads(row["flags"]) if row["flags"] else []) is not None
    if attempt or temp_c is not None:
        manual = str(row["decision"]).startswith("manual_")
        readings[key] = (temp_c, manual and temp_c is not None and row["temp_object_c"] is None)


def _outcome(
    outcomes: dict[Key, str], key: Key, row: Mapping[str, Any], guards: _GuardDecisions
) -> bool:
    """Put an event's decision into ``outcomes`` (one per passage, ``key``: its
    ``passage_key``): a guard's decision about a passage of the day is how that passage
    ended, and so is an attempt that tries it again after a measure-again deny, not another
    passage (a deny the guard let through is one passage, passed; a fever the guard
    confirmed is one passage, denied; a resident who held no wrist up and then passed is one
    passage, passed); a guard's decision is counted into ``guards`` by what it did to the
    passage's decision so far. Whether the event is a passage of its own."""
    guards.count(row, key, outcomes.get(key))
    outcomes[key] = str(row["decision"])
    return key[1] == int(row["seq"])


class _GuardDecisions:
    """The report's ``overrides``: the day's guard decisions by what they did
    (``kiosk.links.guard_decision``), and ``overriding``, those that overrode the kiosk's.
    One about a passage of another day (a deny at 23:50 let through at 00:05) is told by the
    decision the log holds for it; one about a row the database does not hold (the district's
    copy of a day) as about a deny, which is what the kiosk sends to the guard."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.counts: Counter[str] = Counter()

    def count(self, row: Mapping[str, Any], key: Key, before: str | None) -> None:
        if not str(row["decision"]).startswith("manual_"):
            return
        about = overridden(json.loads(row["flags"]) if row["flags"] else [])
        if about is not None and key[1] == int(row["seq"]):  # a passage of another day
            before = decision_before(self.db, str(row["kiosk_id"]), about, int(row["seq"]))
        self.counts[guard_decision(str(row["decision"]), before)] += 1

    def section(self) -> dict[str, int]:
        out = {name: self.counts[name] for name in GUARD_DECISIONS}
        return out | {"overriding": sum(self.counts[name] for name in OVERRIDING)}


class DayOutings:
    """A day's outings per household however its passes spell it (``exits``), counted from
    its rows in ``seq`` order (``count``), and those whose household was purged or came
    masked (``emptied``: ``purged_outing``, whose nobody can tell); a ``not_opened`` row
    after an outing takes it back. The one count of a day's outings: the gate's report and
    each compound of the office's district report (``office.compounds``). ``roles``: the
    roles the quota counts (``quota.roles``), the rule the over-quota count beside it reads
    (``over_quota_households``): a courier's exit is no outing, whatever was judged when it
    was made; ``by_gate``: a gate's own roles instead, by its ``kiosk_id`` (None: as judged
    then). ``rules``: the quotas in force during a day whose rule changed during it
    (``QuotaRules``; ``rules_by_gate``: a gate's own), each row counted by the roles of the
    one in force at its ``ts``: staff counted until noon are out in the morning's count."""

    def __init__(
        self,
        roles: Collection[str] | None = None,
        by_gate: Mapping[str, Collection[str] | None] | None = None,
        rules: QuotaRules | None = None,
        rules_by_gate: Mapping[str, QuotaRules] | None = None,
    ) -> None:
        self.exits: Counter[str] = Counter()
        self.outings: dict[Key, str] = {}  # the exits counted, by (kiosk, seq)
        self.emptied: set[Key] = set()
        self.roles, self.by_gate = roles, by_gate or {}
        self.rules, self.rules_by_gate = rules, rules_by_gate or {}

    def _roles(self, row: Mapping[str, Any]) -> Collection[str] | None:
        gate = str(row["kiosk_id"])
        rules = self.rules_by_gate.get(gate, self.rules)
        if not rules:
            return self.by_gate.get(gate, self.roles)
        ts = row["ts"]
        return quota_at(rules, ts if isinstance(ts, datetime) else _utc(str(ts))).roles

    def count(self, row: Mapping[str, Any]) -> None:
        key = (str(row["kiosk_id"]), int(row["seq"]))
        roles = self._roles(row)
        if households_outing(row, roles):
            self.outings[key] = same_text(row["household"])
            self.exits[same_text(row["household"])] += 1
        elif purged_outing(row, roles):
            self.emptied.add(key)
        elif (failed := not_opened_pass(row)) is not None and failed in self.emptied:
            self.emptied.discard(failed)
        elif failed is not None and failed in self.outings:
            household = self.outings.pop(failed)  # the gate did not open: no outing
            self.exits[household] -= 1
            if not self.exits[household]:  # its only outing did not happen: no household out
                del self.exits[household]

    def unknown(self, section: dict[str, Any]) -> dict[str, Any]:
        """``section`` (``exits_per_household``'s figures) with what the emptied outings
        leave unknown (``unknown_outings``): all but the count of outings."""
        if self.emptied:
            unknown_outings(section, count=sum(self.exits.values()) + len(self.emptied))
        return section


def quota_lookback(day: date, tz: ZoneInfo | str, quota: QuotaConfig) -> str:
    """Where the outings that count against ``day``'s start: one rolling period
    (``period_days`` days on the site's clock, as the gate counts them:
    ``kiosk.policy.quota_reached``) before the day begins, as the 19-character UTC text events
    sort by; the earlier of that and ``period_days`` x 24 h (a daylight-saving change between)."""
    start, _ = day_bounds(day, tz)
    try:
        hours = (datetime.fromisoformat(start) - timedelta(days=quota.period_days)).isoformat()
        local, _ = day_bounds(day - timedelta(days=quota.period_days), tz)
    except OverflowError:  # the calendar's first days
        return datetime.min.isoformat()
    return min(hours, local)


def _utc(ts: str) -> datetime:
    when = datetime.fromisoformat(ts)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


#: The outing quotas in force on a day (``day_quotas``), each with when it came into force
#: (None: the one in force when the day began), in order: a restart with a new quota during
#: the day changes the rule its later outings were let out by, never its earlier ones'.
QuotaRules = Sequence[tuple[datetime | None, QuotaConfig]]


def quota_at(rules: QuotaRules, when: datetime) -> QuotaConfig:
    """The quota of ``rules`` in force at ``when``: the last come into force by then."""
    found = rules[0][1]
    for since, quota in rules:
        if since is None or since <= when:
            found = quota
    return found


def over_quota_households(
    db: Database,
    day: date,
    zone: ZoneInfo,
    quota: QuotaConfig,
    households: set[str],
    site: ZoneInfo | None = None,
    kiosks: Collection[str] | None = None,
    rules: QuotaRules | None = None,
    by_gate: Mapping[str, QuotaRules] | None = None,
) -> int | None:
    """How many of ``households`` (out on ``day``) went out beyond the quota that day, counted
    as the gate counts (``kiosk.policy.quota_reached``): an outing with ``quota.exits`` or
    more before it in the rolling period (``period_days`` days on the site's clock) before it.
    Only an override or a gate that could not know (another kiosk's log) lets one through.
    Unknown (``None``, never a count that reads it as no outing) when the look-back before
    the day holds outings whose household was purged (``purged_outing``: retention shorter
    than the look-back, which reaches a period before the day's start) enough to put a
    household over were they its own (``_count_over``).
    ``site``: the site's zone when the day is cut in another (the office's district report);
    ``kiosks``: the outings at these gates only (one compound's, of the district's rows);
    ``rules``: the quotas in force during the day when it changed (``QuotaRules``), each
    outing judged by the one in force when it was made (None: ``quota`` all day);
    ``by_gate``: a gate's own rules instead, for its outings, by its ``kiosk_id`` (the gates of
    one compound restart with a new quota seconds apart, each judging by its own)."""
    rules = list(rules or [(None, quota)])
    own = dict(by_gate or {})
    on = [q for each in (rules, *own.values()) for _, q in each if q.enabled]
    if not on:  # no quota, nobody over it
        return 0
    start, end = day_bounds(day, zone)
    clock = site or zone
    cols = f"seq, kiosk_id, ts, direction, decision, household, flags, {_purged_sql(db)} as purged"
    back = [day, day - timedelta(days=1)] if clock is not zone else [day]  # another clock:
    lookback = min(quota_lookback(d, zone, q) for d in back for q in on)  # a day earlier
    taken: dict[Key, tuple[str, Outing]] = {}  # the outings, by (kiosk, seq)
    unclear: dict[Key, datetime] = {}  # the look-back's outings whose household was purged
    with _events_between(db, lookback, end, cols, kiosks) as rows:
        for row in rows:
            if (
                any(households_outing(row, q.roles) for q in on)
                and same_text(row["household"]) in households
            ):
                gate = str(row["kiosk_id"])
                taken[(gate, int(row["seq"]))] = (
                    same_text(row["household"]),
                    (_utc(row["ts"]), row["flags"], own.get(gate, rules)),
                )
            elif (failed := not_opened_pass(row)) is not None:
                taken.pop(failed, None)
                unclear.pop(failed, None)
            elif any(purged_outing(row, q.roles) for q in on) and row["ts"][:19] < start[:19]:
                unclear[(str(row["kiosk_id"]), int(row["seq"]))] = _utc(row["ts"])
    outings: dict[str, list[Outing]] = {}
    for household, outing in taken.values():
        outings.setdefault(household, []).append(outing)
    return _count_over(outings, _utc(start), list(unclear.values()), clock)


#: An outing as the over-quota count reads it: its time, its flags, and the rules of the gate
#: it was made at (``QuotaRules``).
Outing = tuple[datetime, str | None, QuotaRules]


def _count_over(
    outings: Mapping[str, list[Outing]],
    day_start: datetime,
    purged: list[datetime],
    clock: ZoneInfo,
) -> int | None:
    """How many households (``outings``: each one's, in order) went out beyond the quota
    from ``day_start``, each outing by the quota in force when and where it was made (its
    gate's rules); None when one not over by its known outings could be over were the
    look-back's outings whose household was purged (``purged``, before the day:
    ``purged_outing``) its own: its known ones and those in an outing's period reach
    ``quota.exits``. Fewer cannot tip it, whoever's they were: not over, known."""
    over = 0
    for times in outings.values():
        judged = []  # each of the day's outings counted by its rule, the ones before it
        for i, (when, flags, rules) in enumerate(times):
            quota = quota_at(rules, when)
            if when >= day_start and quota.enabled and _counts_to(flags, quota):
                before = [t for t, f, _ in times[:i] if _counts_to(f, quota)]
                judged.append((when, before, quota))
        if any(over_quota(t, before, q, clock) for t, before, q in judged):
            over += 1
        elif any(over_quota(t, [*before, *purged], q, clock) for t, before, q in judged):
            return None
    return over


def _counts_to(flags: str | None, quota: QuotaConfig) -> bool:
    """Whether a passing exit with ``flags`` is an outing to ``quota`` (its roles)."""
    return counted_outing(json.loads(flags) if flags else (), quota.roles)


def over_quota(
    when: datetime, before: Iterable[datetime], quota: QuotaConfig, clock: ZoneInfo
) -> bool:
    """Whether an outing at ``when`` went beyond the quota, ``before`` its household's outings
    before it: ``quota.exits`` or more of them in the rolling period (``period_days`` days on
    the site's clock) before it. The rule on stored passages (this report's, the guard's card
    for a breach a peer's passages show late, ``kiosk.peers.late_breaches``), as the engine's
    ``kiosk.policy.quota_reached`` holds it on its history."""
    start = quota_period_start(when, quota, clock)
    return sum(start < earlier for earlier in before) >= quota.exits


def quota_period_start(when: datetime, quota: QuotaConfig, clock: ZoneInfo) -> datetime:
    """Where the rolling period before an outing at ``when`` starts (exclusive): ``period_days``
    days earlier on the site's clock (47 or 49 hours across a daylight-saving change)."""
    return days_before(when.astimezone(clock), quota.period_days)


def _temperature_counts(
    readings: Iterable[float | None], bins: list[tuple[float | None, float | None]]
) -> list[int]:
    counts = [0] * len(bins)
    for temp_c in readings:
        if temp_c is not None:
            counts[_bin_index(temp_c, bins)] += 1
    return counts


def _report_columns(db: Database) -> tuple[str, bool]:
    """The events' columns the report reads, and whether they hold the sensor's reading: the
    district's copy (``office.district``) holds none, so its hand readings cannot be told from
    copied ones (``hand_readings`` null); ``purged``: whether retention or a forget nulled the
    row's personal fields (the district's copy says so itself: ``office.district``)."""
    held = db.table("events").columns_dict
    sensor = "temp_object_c" in held
    cols = (
        "seq, ts, dating, kiosk_id, direction, decision, reasons, temp_c, household, flags,"
        f" {'temp_object_c' if sensor else 'null as temp_object_c'}, {_purged_sql(db)} as purged,"
        f" {'pass_id' if 'pass_id' in held else 'null as pass_id'}"
    )
    return cols, sensor


def _purged_sql(db: Database) -> str:
    """Whether an events row's personal fields were nulled (retention, a forget), as SQL: the
    district's copy has no such column (it tells its masked and purged rows itself)."""
    return "purged_at is not null" if "purged_at" in db.table("events").columns_dict else "0"


def compute_report(
    db: Database,
    day: date,
    tz: ZoneInfo | str,
    quota_cfg: QuotaConfig | None = None,
    rules: QuotaRules | None = None,
) -> dict[str, Any]:
    """The report for ``day`` computed from the events table (ignores frozen aggregates);
    ``rules``: the quotas in force during it when it changed during it (``day_quotas``)."""
    zone = as_zone(tz)
    quota = quota_cfg or QuotaConfig()
    start, end = day_bounds(day, zone)
    by_decision: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    by_direction: Counter[str] = Counter()
    by_hour = [0] * 24
    passage_hours = [0] * 24  # the hour each passage came to the gate
    hours = _Hours(day, zone)
    bins = _temperature_bins()
    readings: dict[Key, Reading] = {}
    outcomes: dict[Key, str] = {}
    guards = _GuardDecisions(db)
    seen: dict[Key, Key] = {}  # each row's passage (``kiosk.links.passage_key``)
    fevers: list[datetime] = []  # local, with the UTC offset: which 02:30 it was
    day_outings = DayOutings(quota.roles, rules=rules)  # the over-quota count's rules
    kiosks: set[str] = set()
    dating: Counter[str | None] = Counter()
    cols, sensor = _report_columns(db)
    unreadable: list[int] = []  # rows left out: a field damaged (``kiosk.unreadable``)
    with _events_between(db, start, end, cols, skipped=unreadable) as rows:
        for row in gate_not_opened(rows):
            dating[row["dating"]] += 1
            kiosks.add(row["kiosk_id"])
            by_decision[row["decision"]] += 1
            by_direction[row["direction"] or "unknown"] += 1
            reasons = json.loads(row["reasons"]) if row["reasons"] else []
            for reason in reasons:
                by_reason[reason] += 1
            local = datetime.fromisoformat(row["ts"]).astimezone(zone)
            by_hour[local.hour] += 1
            if "fever" in reasons:
                fevers.append(local)
            key = passage_key(row, seen)
            _reading(readings, key, row)
            passage = _outcome(outcomes, key, row, guards)
            passage_hours[local.hour] += passage
            hours.count(local, passage)
            day_outings.count(row)
    exits_section = _day_exits(db, (day, zone), quota, day_outings, rules)
    temp_counts = _temperature_counts((t for t, _ in readings.values()), bins)
    no_temperature = sum(temp_c is None for temp_c, _ in readings.values())
    community = _community(db, day, zone)

    return {
        "day": day.isoformat(),
        "timezone": zone.key,
        "kiosks": sorted(kiosks),
        "events": by_decision.total(),  # one decision a row
        "by_decision": dict(sorted(by_decision.items())),
        "passages": {**_passages(outcomes.values()), "by_hour": passage_hours},
        "by_reason": dict(sorted(by_reason.items())),
        "by_direction": dict(sorted(by_direction.items())),
        "by_hour": by_hour,
        "hours": hours.section(),
        "fever_alarms": _fever_alarms(fevers, community),
        "temperature_histogram": [
            {"from_c": lo, "to_c": hi, "count": n}
            for (lo, hi), n in zip(bins, temp_counts, strict=True)
        ],
        "no_temperature": no_temperature,
        "hand_readings": sum(hand for _, hand in readings.values()) if sensor else None,
        "overrides": guards.section(),
        "exits_per_household": exits_section,
        "community": community,
        "quarantine_lists": quarantine_lists(db, day),
        # Dated by their boot's clock once synchronised; dated only by an unsynced clock.
        "clock": {"redated": dating["boot"], "unsynced": dating["unsynced"]},
        "unreadable_rows": len(unreadable),
    }


def _fever_alarms(fevers: list[datetime], community: Mapping[str, Any]) -> dict[str, Any]:
    """``count``: the refusals for a fever (one per event), at their local times, not the
    alarm board's cards (``kiosk.alarms``: a person's repeat within ``INCIDENT_WINDOW_S`` is
    one more time on its card); ``people``: the feverish people they are about, each once
    (``categories.FeverishPeople``), the office's 发热."""
    return {
        "count": len(fevers),
        "people": community["fevers"]["gate"],
        "times": [t.strftime("%H:%M:%S") for t in fevers],
        "at": [t.isoformat(timespec="seconds") for t in fevers],
    }


class _Hours:
    """The report's ``hours``: the day's real hours (``kiosk.days.day_hours``: the hour the
    autumn change repeats twice, the one the spring change skips not at all), each with the
    events and the passages that came in it. ``by_hour`` (24 clock hours) is kept as it was."""

    def __init__(self, day: date, zone: ZoneInfo) -> None:
        self.starts = day_hours(day, zone)
        self.index = {hour_key(start): i for i, start in enumerate(self.starts)}
        self.events = [0] * len(self.starts)
        self.passages = [0] * len(self.starts)

    def count(self, local: datetime, passage: bool) -> None:
        i = self.index.get(hour_key(local))
        if i is not None:  # always, but for a zone's offset of seconds before 1900
            self.events[i] += 1
            self.passages[i] += passage

    def section(self) -> list[dict[str, Any]]:
        return [
            {"hour": start.hour, "start": start.isoformat(), "events": n, "passages": p}
            for start, n, p in zip(self.starts, self.events, self.passages, strict=True)
        ]


def _day_exits(
    db: Database,
    when: tuple[date, ZoneInfo],
    quota: QuotaConfig,
    day_outings: DayOutings,
    rules: QuotaRules | None,
) -> dict[str, Any]:
    """``exits_per_household`` of the day ``when`` (in its zone) from its outings counted."""
    exits = day_outings.exits
    over = over_quota_households(db, *when, quota, set(exits), rules=rules) if exits else 0
    return day_outings.unknown(_exits_section(quota, exits, over, rules))


def _exits_section(
    quota: QuotaConfig, exits: Counter[str], over_quota: int | None, rules: QuotaRules | None
) -> dict[str, Any]:
    """``exits_per_household``: counts only, never a household's name. The quota fields are
    the rule in force when the day ended; ``quota_changes``, only for a day whose rule
    changed during it, says so: every rule in force during it, from when."""
    section = {
        **quota_fields(quota),
        "households": len(exits),
        "exits": sum(exits.values()),
        "histogram": {str(k): v for k, v in sorted(Counter(exits.values()).items())},
        "max": max(exits.values(), default=0),
        "over_quota_households": over_quota,
    }
    if rules:
        listed = _listed_changes(rules)
        section["quota_changes"] = [
            {"from": None if since is None else since.astimezone(UTC).isoformat()}
            | quota_fields(rule)
            for since, rule in listed
        ]
        if len(rules) > MAX_QUOTA_CHANGES:  # abridged (0 left out of a day of 49 rules)
            section["quota_changes_left_out"] = len(rules) - len(listed)
    return section


#: The most rules a complete ``quota_changes`` lists, the bound of an office before
#: 2026-12-07 (it refuses a report listing more): a daemon restarted with a changed quota every
#: few minutes (a crash loop on a flapping config) changes it more often in a day.
MAX_QUOTA_CHANGES = 48
#: The length of an abridged ``quota_changes`` (one past ``MAX_QUOTA_CHANGES``): an office
#: that does not know ``quota_changes_left_out`` refuses the day rather than take the list
#: as the day's every rule; this one accepts it only with ``quota_changes_left_out``.
ABRIDGED_QUOTA_CHANGES = MAX_QUOTA_CHANGES + 1


def _listed_changes(rules: QuotaRules) -> QuotaRules:
    """The day's rules as its report lists them: all of them, or past ``MAX_QUOTA_CHANGES``
    the first (in force when the day began) and the last ``MAX_QUOTA_CHANGES`` (the list
    ``ABRIDGED_QUOTA_CHANGES`` long), those between left out (the report says how many:
    ``quota_changes_left_out``). The day is counted by all of them."""
    if len(rules) <= MAX_QUOTA_CHANGES:
        return rules
    return [rules[0], *rules[len(rules) - MAX_QUOTA_CHANGES :]]


def quota_fields(quota: QuotaConfig) -> dict[str, Any]:
    """A quota as ``exits_per_household`` says it."""
    return {
        "quota_enabled": quota.enabled,
        "quota_exits": quota.exits,
        "period_days": quota.period_days,
        "quota_roles": list(quota.roles),  # whose outings count (staff, deliveries: not usually)
    }


def _passages(outcomes: Iterable[str]) -> dict[str, int]:
    """The day's passages by how they ended (``_outcome``)."""
    ends = Counter(outcomes)
    passed = sum(ends[d] for d in PASSED)
    return {"total": ends.total(), "passed": passed, "denied": ends.total() - passed}


def _community(db: Database, day: date, zone: ZoneInfo) -> dict[str, Any]:
    return community_section(db, day, zone)


def _freshness(lists_freshness: Freshness | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if lists_freshness is None:
        return None
    if isinstance(lists_freshness, Mapping):
        items = dict(lists_freshness)
    else:
        items = dataclasses.asdict(lists_freshness)
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in items.items()}


def frozen_report(db: Database, day: date, tz: ZoneInfo | str) -> dict[str, Any] | None:
    """The frozen report of ``day``: the one frozen in ``tz``, else under another name of its
    clock that day (``kiosk.days.one_clock``: ``PRC`` renamed ``Asia/Shanghai``), named
    ``tz``; else, when the day's events were purged (their households cannot be counted
    again), the one frozen in the zone the site had before (a zone corrected), naming that
    zone, or ``tz`` when this system cannot load it (``_frozen_elsewhere``). A copy frozen
    after the day's events were purged counts nothing and is none. None when none is, or when
    events stamped on it were recorded after it was frozen (a clock set back) and its events
    are intact, so a live count holds them (the next ``freeze_days`` freezes it again)."""
    if not _has_table(db, "daily_aggregates"):
        return None
    zone = as_zone(tz)
    purged = _first_purge(db, day, zone)
    rows = [r for r in _frozen_rows(db, day) if purged is None or _counted(r, purged)]
    own = [r for r in rows if r["tz"] == zone.key] or [r for r in rows if _its_clock(r, zone, day)]
    if own:
        through_seq = own[0]["through_seq"]
        if through_seq is not None and _recount(db, day, zone, through_seq):
            return None
        report: dict[str, Any] = json.loads(own[0]["report"])
        report.pop(HELD_WHEN_FROZEN, None)
        return report | {"timezone": zone.key}
    if purged is None or not rows:
        return None
    return _frozen_elsewhere(rows[0], zone)


#: The key of a frozen copy (never served) that says its day had purged rows when it was
#: frozen, their outings' households held for the quota's look-back (``kiosk.store.purge_rows``'
#: ``hold``): counted from them, a copy that stays good once ``release_held`` empties them.
HELD_WHEN_FROZEN = "_households_held"


def _counted(row: Mapping[str, Any], purged: str) -> bool:
    """Whether a frozen copy counted its day's outings: frozen before its first purge, or
    after it while the outings' households were held (``HELD_WHEN_FROZEN``); a copy an
    older release froze after the purge counted nothing."""
    if row["frozen_at"] <= purged:
        return True
    report = json.loads(row["report"])
    return isinstance(report, dict) and report.get(HELD_WHEN_FROZEN) is True


def _frozen_elsewhere(row: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """The copy of a purged day frozen under a zone not of ``zone``'s clock that day (not
    ``_its_clock``), naming that zone (a zone corrected: its figures are that zone's day). One
    frozen under a name this system's zone data lacks (``PRC`` on Trixie without
    ``tzdata-legacy``) whose recorded clock is not ``zone``'s or who recorded none (frozen
    before 2026-12-05: no ``hours``) names ``zone``, which every face reads its day in, and
    ``frozen_timezone`` the name it was frozen under: a clock this system cannot read, its
    figures kept as they were."""
    report: dict[str, Any] = json.loads(row["report"])
    report.pop(HELD_WHEN_FROZEN, None)
    if known_zone(row["tz"]) is None:
        return report | {"timezone": zone.key, "frozen_timezone": row["tz"]}
    return report | {"timezone": row["tz"]}


def _its_clock(row: Mapping[str, Any], zone: ZoneInfo, day: date) -> bool:
    """Whether a copy frozen under another name is of ``zone``'s clock all ``day``: its name
    keeps it (``one_clock``); or, a name this system's zone data lacks (``PRC`` on Trixie
    without ``tzdata-legacy``: why it was renamed), the clock the copy recorded, each of its
    hours' start with its UTC offset (``hours``), is ``zone``'s that day."""
    if one_clock(row["tz"], zone, day):
        return True
    if known_zone(row["tz"]) is not None:
        return False
    hours = json.loads(row["report"]).get("hours")
    starts = [hour.get("start") for hour in hours] if isinstance(hours, list) else None
    return starts == [start.isoformat() for start in day_hours(day, zone)]


def _frozen_rows(db: Database, day: date) -> list[dict[str, Any]]:
    """The copies of ``day`` frozen in any zone, the newest first (``frozen_at`` cut to the
    19 characters a ``purged_at`` compares by)."""
    through = "through_seq" if _has_through(db) else "null"
    return list(
        db.query(
            f"select tz, report, {through} as through_seq, substr(frozen_at, 1, 19)"  # noqa: S608
            " as frozen_at from daily_aggregates where day = ? order by frozen_at desc, tz",
            [day.isoformat()],
        )
    )


def _purged(db: Database, day: date, zone: ZoneInfo) -> bool:
    """Whether an event of ``day`` was purged: its first row tells (a walk over a restored
    log's purged months reads one row a day)."""
    return _purged_where(db, day, zone, "")


def _lost(db: Database, day: date, zone: ZoneInfo, roles: Collection[str]) -> bool:
    """Whether an outing of ``day`` lost its household (purged: retention, a forget), so its
    report can be counted no more: an outing as the quota counting ``roles`` counts it
    (``purged_outing``: by ``kiosk.history.counted_outing``, the SQL function
    ``kiosk.store.define_counted_outing`` defines), not a courier's, a visitor's or an exit
    exempt before the roles were flagged, which no count of the day reads. One whose
    household a purge kept for the quota's look-back (``kiosk.store.purge_rows``' ``hold``)
    is still known, and the day is frozen from it before ``kiosk.store.release_held``
    empties it."""
    define_counted_outing(db)
    said = json.dumps(sorted(roles)).replace("'", "''")
    outing = (
        f" and household = '{PURGED_HOUSEHOLD}' and direction = 'out'"
        f" and decision in ('pass', 'manual_pass') and counted_outing(flags, '{said}')"
    )
    return _purged_where(db, day, zone, outing)


def _purged_where(db: Database, day: date, zone: ZoneInfo, also: str) -> bool:
    start, end = day_bounds(day, zone)
    source, ts = dated_source(db)
    found = db.execute(
        f"select 1 from {source} where {ts} >= ? and {ts} < ?"  # noqa: S608
        f" and purged_at is not null{also} limit 1",
        [start, end],
    )
    return found.fetchone() is not None


def _first_purge(db: Database, day: date, zone: ZoneInfo) -> str | None:
    """When the first of ``day``'s events was purged (``purged_at``, 19 characters), or None
    when none was."""
    start, end = day_bounds(day, zone)
    source, ts = dated_source(db)
    found = db.execute(
        f"select min(substr(purged_at, 1, 19)) from {source}"  # noqa: S608
        f" where {ts} >= ? and {ts} < ?",
        [start, end],
    ).fetchone()
    return None if found is None else found[0]


def _has_through(db: Database) -> bool:
    return "through_seq" in db.table("daily_aggregates").columns_dict


def _touched_days(db: Database, zone: ZoneInfo, through: Mapping[str, int | None]) -> set[str]:
    """The local days of the events recorded since the last freeze (``seq`` above the
    highest ``through_seq``; each freeze takes the events before it) and of those their boot
    dated since (``_moved_minutes``): the days a freeze may have to count (again)."""
    seqs = [seq for seq in through.values() if seq is not None]
    if not seqs:
        return set()
    minutes = db.execute(
        "select distinct substr(ts, 1, 16) from events where seq > ?", [max(seqs)]
    ).fetchall()
    minutes += _moved_minutes(db, min(seqs))
    return {local_day(m[0] + ":00+00:00", zone).isoformat() for m in minutes if m[0]}


def _late_days(
    db: Database, zone: ZoneInfo, through: Mapping[str, int | None], touched: set[str]
) -> set[str]:
    """The frozen days to count and freeze again: those ``touched`` (``_touched_days``)
    whose events are intact (``_recount``)."""
    late: set[str] = set()
    for day in touched & set(through):
        seq = through[day]
        if seq is not None and _recount(db, date.fromisoformat(day), zone, seq):
            late.add(day)
    return late


def _moved_minutes(db: Database, after_seq: int) -> list[tuple[str]]:
    """The minutes (UTC, ``YYYY-MM-DDTHH:MM``) events left and joined when their boot was
    dated by an event after ``after_seq`` (``kiosk.dating``): both days count differently."""
    if dated_source(db)[0] != "dated_events":
        return []
    rows = db.execute(
        "select distinct substr(ts, 1, 16), substr(dated_ts, 1, 16) from redated_events"
        " where dated_by > ?",
        [after_seq],
    ).fetchall()
    return [(m,) for row in rows for m in row]


def _recount(db: Database, day: date, zone: ZoneInfo, through_seq: int) -> bool:
    """Whether a frozen ``day`` must be counted again: it has an event recorded after it was
    frozen (``seq`` above ``through_seq``), or one that moved into or out of it when its boot
    was dated since (``kiosk.dating``), and no event of it was purged yet."""
    start, end = day_bounds(day, zone)
    source, ts = dated_source(db)
    window = f"from {source} where {ts} >= ? and {ts} < ?"
    late = db.execute(f"select 1 {window} and seq > ? limit 1", [start, end, through_seq])
    if late.fetchone() is None and not _moved(db, start, end, through_seq):
        return False
    return not _purged(db, day, zone)


def _moved(db: Database, start: str, end: str, through_seq: int) -> bool:
    """Whether an event stamped in ``[start, end)`` was dated out of it by its boot's clock
    after ``through_seq`` (a frozen copy counted it there)."""
    if dated_source(db)[0] != "dated_events":
        return False
    found = db.execute(
        "select 1 from redated_events where dated_by > ? and ts >= ? and ts < ? limit 1",
        [through_seq, start, end],
    )
    return found.fetchone() is not None


def daily_report(
    reader: Database,
    day: date,
    tz: ZoneInfo | str,
    quota_cfg: QuotaConfig | None = None,
    lists_freshness: Freshness | Mapping[str, Any] | None = None,
    hours: HoursConfig | None = None,
    *,
    hours_known: bool = True,
) -> dict[str, Any]:
    """The daily report for a local ``day``: frozen if that day was frozen, else live.

    ``lists_freshness`` (``Lists.freshness`` or a mapping with ``updated_at``/``source``) is
    live information and is added as given, never frozen. A day not frozen (today; a past
    day the night's freeze has not reached yet) is counted as the freeze will count it, by
    the settings in force on it as the daemon recorded them (``recorded_history``): its
    outings by the quota (``day_quotas``: each by the one in force when it was made;
    ``quota_cfg`` where none was recorded), its ``staffing`` (the day split by the staffed
    hours: ``staffing_section``) by the hours (``_day_staffing``), so a report asked for
    between a restart with new settings and the freeze is the one kept after it.
    ``staffing`` is the frozen copy's for a frozen day; one with no hours recorded on it
    (frozen before 2026-12-07, a log whose daemon recorded none) is split by ``hours``
    (``policy.hours``) from fields retention keeps, or, ``hours_known`` false (a log alone
    whose daemon recorded none), ``STAFFING_UNKNOWN``.
    """
    zone = as_zone(tz)
    frozen = frozen_report(reader, day, zone)
    rules = None
    if frozen is None:
        quota_cfg, rules = day_quotas(recorded_history(reader, "quota"), day, zone, quota_cfg)
    report = frozen or compute_report(reader, day, zone, quota_cfg, rules)
    report.setdefault("unreadable_rows", 0)  # frozen before they were counted: none (it froze)
    report["before_log"] = frozen is None and before_log(reader, day, zone)
    report["lists_freshness"] = _freshness(lists_freshness)
    if frozen is None or not isinstance(frozen.get("staffing"), dict):
        recorded = _day_staffing(reader, day, zone, recorded_history(reader, "hours"))
        report["staffing"] = recorded or (
            staffing_section(reader, day, zone, hours) if hours_known else dict(STAFFING_UNKNOWN)
        )
    report["downtime"] = downtime_section(reader, day, zone)
    return report


def before_log(db: Database, day: date, tz: ZoneInfo | str) -> bool:
    """Whether ``day`` ended before the log's first row whose time is known (an event or an
    audit row stamped on a synchronised clock: a gate installed since, its tokens made, its
    daemon started), none dated into it by its boot's clock (``kiosk.dating``): a day the gate
    never kept, whose zeros are no count. A row stamped before NTP set the clock (1970, the
    fake-hwclock's date) says nothing of when the log began: until 2026-12-08 one such row (a
    first boot's, a restart's ``daemon.start``) made no day before the log. False for a log
    holding no row of a known time. Two probes of ``events_synced_ts``, ``audit_synced_ts``."""
    _, end = day_bounds(day, tz)
    tables = ("events", "audit") if db["audit"].exists() else ("events",)
    firsts = [db.execute(_FIRST_SYNCED_SQL.format(t)).fetchone()[0] for t in tables]
    known = [str(ts)[:19] for ts in firsts if ts is not None]
    if not known or min(known) < end:
        return False
    if dated_source(db)[0] != "dated_events":
        return True
    dated = db.execute("select 1 from redated_events where dated_ts < ? limit 1", [end])
    return dated.fetchone() is None


#: The first ``ts`` of a table of the log (``events``, ``audit``) stamped on a synchronised
#: clock (``kiosk.store`` migration m012's index: one probe).
_FIRST_SYNCED_SQL = "select min(ts) from {} where clock_synced = 1"


#: Reasons that say a device of the checkpoint was out of order when the kiosk decided.
FAULT_REASONS = ("sensor_fault", "reader_fault", "store_fault", "gate_fault")
#: The restarts, the fault spells and the power spells a report lists, each: a boot loop, a
#: flapping sensor or a flapping supply (one power spell a ``pihealth.COALESCE_S`` at most)
#: must not make a report the office's collector refuses (``office.gatereports``); the
#: totals count them all.
DOWNTIME_LISTED = 24


def downtime_section(db: Database, day: date, tz: ZoneInfo | str) -> dict[str, Any]:
    """``downtime``: when the gate was down or out of order on ``day``, from what the log
    holds (a daemon that is down writes nothing, and the log keeps no heartbeat): ``boots``,
    the boots of the Pi that decided that day; ``restarts``, each change of boot between two
    consecutive events whose span touches the day (``from`` the last event before it,
    ``booted`` when the new boot began — its first event less its monotonic time —, ``to``
    its first event, ``minutes`` from ``from`` to ``to``: the longest the gate can have
    been down; ``kind`` ``boot``), and each restart of the daemon within one boot its audit
    rows show (``daemon_restarts``: ``kind`` ``daemon_stopped`` or ``daemon_died``, ``booted``
    null), the first ``DOWNTIME_LISTED`` by ``from``, with ``restarts_total`` and
    ``restart_minutes`` (the minutes within the day they cover); ``faults``, each spell of the
    kiosk's decisions carrying a device fault (``FAULT_REASONS``: ``reason``, ``from`` and
    ``to`` its first and last such event, ``events``), the first ``DOWNTIME_LISTED``, with
    ``faults_total``; ``power``, the spells of the Pi's own under-voltage or throttling
    (``power_section``), with ``power_total``. Local times with their UTC offset."""
    zone = as_zone(tz)
    start, end = day_bounds(day, zone)
    cols = "seq, ts, boot_id, mono_ns, decision, reasons"
    with _events_between(db, start, end, cols) as found:
        rows = list(found)
    before, after = _neighbours(db, start, rows)
    daemon = daemon_rows(db, start, end)
    down = downtime_of([*before, *rows, *after], rows, (start, end), zone, daemon)
    return {**down, **power_section(db, (start, end), zone)}


def power_section(db: Database, bounds: tuple[str, str], zone: ZoneInfo) -> dict[str, Any]:
    """The Pi's own spells of under-voltage and throttling that touch the day (``bounds``),
    from the audit rows the daemon writes (``kiosk.pihealth.power_spells``): ``power``, the
    first ``DOWNTIME_LISTED``, each ``condition`` (``under_voltage``, ``throttled``),
    ``from``, ``to`` (null: not over; one the Pi died in ends at its last sign of life),
    ``minutes`` and ``flaps`` (the times it came back within the spell); ``power_total``
    counts them all. The office pulls no audit rows: the district's report has none."""
    spells = power_spells(db, bounds)
    return {
        "power": [_power_view(s, zone) for s in spells[:DOWNTIME_LISTED]],
        "power_total": len(spells),
    }


def _power_view(spell: Mapping[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    since, to, length = spell["from"], spell["to"], spell["length"]
    return {
        "condition": spell["condition"],
        "from": None if since is None else _local(since, zone),
        "to": None if to is None else _local(to, zone),
        "minutes": None if length is None else round(length.total_seconds() / 60, 1),
        "flaps": spell["flaps"],
        "dating": spell["dating"],
    }


def downtime_of(
    chain: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    bounds: tuple[str, str],
    zone: ZoneInfo,
    daemon: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """``downtime_section`` of one gate's events: ``rows``, the day's (``bounds``, as
    ``day_bounds`` gives them) in ``seq`` order, each with ``ts``, ``boot_id``, ``mono_ns``,
    ``decision`` and ``reasons`` (JSON text); ``chain``, the same with the events just before
    and after them (the office's district report counts each gate's so); ``daemon``, the
    daemon's start and stop rows of its audit table (``daemon_rows``; none: the office pulls
    no audit rows, and only the changes of boot are counted)."""
    day_span = (_utc(bounds[0]), _utc(bounds[1]))
    restarts = sorted(
        [*_restarts(chain, day_span), *daemon_restarts(daemon, chain, day_span)],
        key=lambda restart: restart[0],
    )
    faults = _fault_spells(rows)
    within = _minutes_within([(since, to) for since, _, to, _ in restarts], day_span)
    return {
        "boots": len({row["boot_id"] for row in rows if row["boot_id"]}),
        "restarts": [_restart_view(r, zone) for r in restarts[:DOWNTIME_LISTED]],
        "restarts_total": len(restarts),
        "restart_minutes": round(within, 1),
        "faults": [_spell_view(f, zone) for f in faults[:DOWNTIME_LISTED]],
        "faults_total": len(faults),
    }


def _neighbours(
    db: Database, start: str, rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The event just before the day's and the one just after (by ``seq``, the order the
    gate decided in): a restart's span may begin the day before, or end the day after. A
    day without events: those around its start (the gate down all day)."""
    source, ts = dated_source(db)
    cols = f"seq, {ts} as ts, boot_id, mono_ns"
    if rows:  # before the first, after the last
        below, above = int(rows[0]["seq"]), int(rows[-1]["seq"])
    else:  # before and from the first event stamped after the day began
        found = db.execute("select seq from events where ts >= ? order by ts limit 1", [start])
        seq = found.fetchone()
        below = above = _LAST_SEQ if seq is None else int(seq[0])
        above -= 1
    # Found in ``events`` by its key, then read dated: the view is a union, whose ORDER BY
    # with LIMIT reads (and sorts) every row before the day.
    near = db.execute(
        "select (select max(seq) from events where seq < ?),"
        " (select min(seq) from events where seq > ?)",
        [below, above],
    ).fetchone()
    one = f"select {cols} from {source} where seq = ?"  # noqa: S608
    before, after = ([] if seq is None else list(db.query(one, [seq])) for seq in near)
    return before, after


_LAST_SEQ = 2**63 - 1
#: A restart: the last event of the boot before, when the new boot began (None when its
#: monotonic time cannot tell), the first event of the new boot; and its kind (``boot``, or
#: a restart of the daemon within one boot: ``daemon_restarts``).
Restart = tuple[datetime, datetime | None, datetime, str]
#: The audit actions of the daemon's start and of its clean stop (``checkpoint.app``).
DAEMON_START, DAEMON_STOP = "daemon.start", "daemon.stop"


def daemon_rows(db: Database, start: str, end: str) -> list[dict[str, Any]]:
    """The daemon's start and stop rows (``DAEMON_START``, ``DAEMON_STOP``) stamped in
    ``[start, end)``, with the one before and the one after them, in ``seq`` order: ``ts``,
    ``boot_id`` and ``action`` (no personal field: retention keeps them). None without an
    audit table (a log of events alone)."""
    if not db["audit"].exists():
        return []
    cols, acts = "seq, ts, boot_id, action", [DAEMON_START, DAEMON_STOP]
    pick = f"select {cols} from audit where action in (?, ?)"  # noqa: S608 - constants
    before = db.query(f"{pick} and ts < ? order by seq desc limit 1", [*acts, start])
    within = db.query(f"{pick} and ts >= ? and ts < ? order by seq", [*acts, start, end])
    after = db.query(f"{pick} and ts >= ? order by seq limit 1", [*acts, end])
    return [*before, *within, *after]


def daemon_restarts(
    daemon: Sequence[Mapping[str, Any]],
    chain: Sequence[Mapping[str, Any]],
    day_span: tuple[datetime, datetime],
) -> list[Restart]:
    """Each start of the daemon (``daemon``, its start and stop rows in ``seq`` order) after
    a run of the same boot whose span touches the day: from its clean stop
    (``daemon_stopped``), or else from the run's last sign of life, its last event in
    ``chain`` or its own start (``daemon_died``: a crash, a kill, a stand-by). A start on a
    new boot is the change of boot ``_restarts`` counts from the events; a first start on
    record has no run before it to tell of."""
    found: list[Restart] = []
    for prev, row in zip(daemon, daemon[1:], strict=False):
        if row["action"] != DAEMON_START or not row["boot_id"]:
            continue
        to, boot = _utc(row["ts"]), row["boot_id"]
        if prev["action"] == DAEMON_STOP and prev["boot_id"] == boot:
            since, kind = _utc(prev["ts"]), "daemon_stopped"
        else:
            alive = [_utc(e["ts"]) for e in chain if e["boot_id"] == boot]
            alive += [_utc(prev["ts"])] if prev["boot_id"] == boot else []
            alive = [when for when in alive if when < to]
            if not alive:
                continue
            since, kind = max(alive), "daemon_died"
        if since < day_span[1] and to > day_span[0]:
            found.append((since, None, to, kind))
    return found


def _minutes_within(
    spans: Sequence[tuple[datetime, datetime]], day_span: tuple[datetime, datetime]
) -> float:
    """The minutes of the day that ``spans`` cover, each counted once."""
    total, reached = 0.0, day_span[0]
    for since, to in sorted(spans):
        since, to = max(since, reached), min(to, day_span[1])
        if to > since:
            total += (to - since).total_seconds() / 60
            reached = to
    return total


def _restarts(
    chain: Sequence[Mapping[str, Any]], day_span: tuple[datetime, datetime]
) -> list[Restart]:
    """Each change of boot between consecutive events of ``chain`` whose span touches the
    day (``day_span``)."""
    found: list[Restart] = []
    for a, b in zip(chain, chain[1:], strict=False):
        if not a["boot_id"] or not b["boot_id"] or a["boot_id"] == b["boot_id"]:
            continue
        since, to = _utc(a["ts"]), _utc(b["ts"])
        if since >= day_span[1] or to <= day_span[0] or to < since:
            continue
        booted = None
        if isinstance(b["mono_ns"], int) and b["mono_ns"] >= 0:
            booted = to - timedelta(microseconds=b["mono_ns"] // 1000)
            booted = booted if since <= booted <= to else None
        found.append((since, booted, to, "boot"))
    return found


def _fault_spells(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, datetime, datetime, int]]:
    """The spells of decisions carrying a device fault (``FAULT_REASONS``), by reason: from
    the first to the last of them, ended by the kiosk's next decision without it (it worked
    again: a guard's manual decision says nothing about the device) or by a new boot."""
    spells: list[tuple[str, datetime, datetime, int]] = []
    open_: dict[str, tuple[datetime, datetime, int]] = {}
    boot = None
    for row in rows:
        if row["boot_id"] != boot:
            spells += [(r, *span) for r, span in open_.items()]
            open_, boot = {}, row["boot_id"]
        reasons = json.loads(row["reasons"]) if row["reasons"] else []
        when = _utc(row["ts"])
        for reason in FAULT_REASONS:
            if reason in reasons:
                since, _, n = open_.get(reason, (when, when, 0))
                open_[reason] = (since, when, n + 1)
            elif reason in open_ and row["decision"] in ("pass", "deny"):
                spells.append((reason, *open_.pop(reason)))
    spells += [(r, *span) for r, span in open_.items()]
    return sorted(spells, key=lambda spell: (spell[1], spell[0]))


def _restart_view(restart: Restart, zone: ZoneInfo) -> dict[str, Any]:
    since, booted, to, kind = restart
    return {
        "from": _local(since, zone),
        "booted": None if booted is None else _local(booted, zone),
        "to": _local(to, zone),
        "minutes": round((to - since).total_seconds() / 60, 1),
        "kind": kind,
    }


def _spell_view(spell: tuple[str, datetime, datetime, int], zone: ZoneInfo) -> dict[str, Any]:
    reason, since, to, events = spell
    return {"reason": reason, "from": _local(since, zone), "to": _local(to, zone), "events": events}


def _local(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).isoformat(timespec="seconds")


def _staffed_spans(hours: HoursConfig | None) -> str | None:
    """The staffed hours as the config writes its spans (``08:30-17:30, 20:00-08:00``), or
    None when they are off (a gate staffed round the clock)."""
    if hours is None or not hours.enabled:
        return None
    return ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in hours.windows())


#: ``staffing`` of a report whose staffed hours are not known (``kiosk report`` of a log its
#: daemon recorded before it recorded the hours, without the config): not split, and never
#: "staffed round the clock" (``hours`` null), which the gate may not have been.
STAFFING_UNKNOWN = {"hours": "unknown"}


def staffing_section(
    db: Database, day: date, tz: ZoneInfo | str, hours: HoursConfig | None
) -> dict[str, Any]:
    """``staffing``: the day's events and passages split by whether they came in the staffed
    hours (``policy.hours`` as configured when the report is made, on the site's wall clock as
    the policy reads them: ``HoursConfig.covers``), so the office sees what the kiosk decided
    alone. Each part: ``events``, ``by_decision`` and ``passages`` (``total``, ``passed``,
    ``denied``; a passage in the part it came to the gate in, ended as ``passages`` ends it).
    With the hours off (a gate staffed round the clock) every event is staffed."""
    zone = as_zone(tz)
    start, end = day_bounds(day, zone)
    spans = _staffed_spans(hours)
    events = {"staffed": Counter[str](), "unstaffed": Counter[str]()}
    outcomes: dict[str, dict[Key, str]] = {"staffed": {}, "unstaffed": {}}
    part_of: dict[Key, str] = {}
    seen: dict[Key, Key] = {}
    with _events_between(db, start, end, "seq, ts, kiosk_id, decision, flags") as rows:
        for row in rows:
            when = _utc(row["ts"])
            staffed = spans is None or (
                hours is not None and within_spans(when, hours.windows(), zone)
            )
            part = "staffed" if staffed else "unstaffed"
            events[part][row["decision"]] += 1
            key = passage_key(row, seen)
            part_of.setdefault(key, part)  # the part the passage came in, however it ended
            outcomes[part_of[key]][key] = str(row["decision"])
    return {
        "hours": spans,
        **{
            part: {
                "events": counts.total(),
                "by_decision": dict(sorted(counts.items())),
                "passages": _passages(outcomes[part].values()),
            }
            for part, counts in events.items()
        },
    }


def report_zone(report: Mapping[str, Any]) -> ZoneInfo:
    """The zone a report's day and times are read in: its ``timezone``; UTC for one without
    or naming a zone this system's zone data lacks (``kiosk.days.known_zone``: a gate's
    ``frozen_report`` serves none, a report read from elsewhere may), never an error."""
    return known_zone(report.get("timezone") or "UTC") or ZoneInfo("UTC")


#: The ``as_of`` row's words for a day not over yet (``as_of_rows``).
SO_FAR = "the day has not ended, these are its figures so far"
#: Its words for a day that ended before the gate's log began (``before_log``).
BEFORE_LOG = "the day ended before this gate's log began: nothing was kept, not a day of zeros"


def stamp_as_of(report: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``report`` with ``as_of`` (``now``, UTC) and ``day_ended``: whether its local day was
    over at ``now``. A report made before midnight (the evening's) is the day so far, never
    to be read, or added up, as the day's total."""
    _, end = day_bounds(date.fromisoformat(report["day"]), report_zone(report))
    report["as_of"] = now.astimezone(UTC).isoformat()
    report["day_ended"] = now >= _utc(end)
    return report


def as_of_rows(
    report: Mapping[str, Any], words: Callable[[str], str | None] | None = None
) -> list[list[Any]]:
    """The ``(report, as_of, TEXT)`` row of a sheet for a report ``stamp_as_of`` stamped
    (``as_of_text``); none for one not stamped."""
    text = as_of_text(report, words)
    return [] if text is None else [["report", "as_of", text]]


def as_of_text(
    report: Mapping[str, Any], words: Callable[[str], str | None] | None = None
) -> str | None:
    """When a report ``stamp_as_of`` stamped was made, in its local time and, for a day not
    over, ``SO_FAR`` (in ``words``' language, its ``so_far``: ``kiosk.categories.Words``):
    what every face of the report says of it; None for one not stamped."""
    if not report.get("as_of"):
        return None
    zone = report_zone(report)
    when = datetime.fromisoformat(report["as_of"]).astimezone(zone)
    text = f"{when:%Y-%m-%d %H:%M} ({zone.key})"
    if report.get("day_ended") is False:
        text += f": {(words and words('so_far')) or SO_FAR}"
    if report.get("before_log"):
        text += f": {(words and words('before_log')) or BEFORE_LOG}"
    return text


def report_file(
    report: Mapping[str, Any],
    fmt: Literal["csv", "xlsx"],
    words: Callable[[str], str | None] | None = None,
) -> bytes:
    """A gate's report as the file the office files (``kiosk report``, the console's
    ``report.{fmt}``): the categories' sheets (``kiosk.categories.report_sheets``, the CSV
    their ``daily report``) with the row saying when it was made (``as_of_rows``: a day not
    over says its figures are so far), labelled by ``words`` (``kiosk.categories.worded``;
    None: the codes are the words, as before); a CSV with the BOM when it is not ASCII."""
    if fmt == "csv":
        rows = report_rows(report) + as_of_rows(report, words)
        return csv_file(write_csv(rows if words is None else worded(rows, words)))
    sheets = report_sheets(report)
    sheets["daily report"] += as_of_rows(report, words)
    return write_xlsx(sheets if words is None else worded_sheets(sheets, words))


def _next_day_with_events(
    db: Database, day: date, zone: ZoneInfo, redated: list[str]
) -> date | None:
    """The first local day after ``day`` that has an event, or None."""
    _, end = day_bounds(day, zone)
    first = _first_ts(db, end, redated)
    return None if first is None else local_day(first, zone)


def _first_ts(db: Database, since: str, redated: list[str]) -> str | None:
    """The earliest stamp or dated time (``redated``, sorted: ``_redated_times``) at or after
    ``since``, or None: a day with an event, or one an event was dated out of (it is counted
    again, empty)."""
    found = [db.execute("select min(ts) from events where ts >= ?", [since]).fetchone()[0]]
    at = bisect.bisect_left(redated, since)
    if at < len(redated):
        found.append(redated[at])
    return min((ts for ts in found if ts is not None), default=None)


def _redated_times(db: Database) -> list[str]:
    """The dated times of the events their boot dated later (``kiosk.dating``), sorted: read
    once a freeze, not once a day."""
    if dated_source(db)[0] != "dated_events":
        return []
    return sorted(row[0] for row in db.execute("select dated_ts from redated_events"))


def _walk_start(
    db: Database,
    zone: ZoneInfo,
    through: Mapping[str, int | None],
    unfrozen: set[str],
    redated: list[str],
) -> date | None:
    """The first day a freeze must look at, or None (no events). Each freeze walks from its
    start over every day with events up to the last day it freezes, so the one that wrote
    the highest ``through_seq`` left every day with events up to its last one frozen, as of
    that seq: a freeze starts after that day, or at an ``unfrozen`` day touched since
    (``_touched_days``: a late day, or one a clock set back stamped first). Without a
    ``through_seq`` (none frozen, or frozen before it was kept) it starts at the first day."""
    seqs = [seq for seq in through.values() if seq is not None]
    if not seqs:
        first = _first_ts(db, "", redated)
        return None if first is None else local_day(first, zone)
    last = max(day for day, seq in through.items() if seq == max(seqs))
    starts = [date.fromisoformat(day) for day in unfrozen]
    after = _next_day_with_events(db, date.fromisoformat(last), zone, redated)
    if after is not None:
        starts.append(after)
    return min(starts, default=None)


def _frozen_through(db: Database, zone: ZoneInfo) -> dict[str, int | None]:
    """The days frozen in ``zone``, each with its ``through_seq``; and those frozen under
    another name of its clock that day (``_its_clock``: ``PRC`` renamed ``Asia/Shanghai``, as
    Trixie asks) and not in ``zone``: frozen already, as ``frozen_report`` serves them, so not
    frozen again under the new name and today's rules (the quota switched on since would
    change a past day's report). A zone really changed keeps another clock: its days are
    counted again in the new zone (docs/privacy.md, *Freeze*)."""
    rows = db.query("select day, tz, through_seq from daily_aggregates order by frozen_at desc")
    own: dict[str, int | None] = {}
    others: dict[str, list[tuple[str, int | None]]] = {}
    for r in rows:
        if r["tz"] == zone.key:
            own[r["day"]] = r["through_seq"]
        else:
            others.setdefault(r["day"], []).append((r["tz"], r["through_seq"]))
    through = dict(own)
    for day, copies in others.items():
        if day in own:
            continue
        for name, seq in copies:
            if _clock_of_day(db, name, zone, day):
                through[day] = seq
                break
    return through


def _clock_of_day(db: Database, name: str, zone: ZoneInfo, day: str) -> bool:
    """``_its_clock`` of the copy of ``day`` frozen under ``name``: a name this system knows
    by the zones (``one_clock``, remembered: a renamed site's year of days is compared once
    a process, not at every hourly freeze), one it lacks by the hours its copy recorded."""
    if known_zone(name) is not None:
        return _one_clock_day(name, zone.key, day)
    found = db.execute(
        "select report from daily_aggregates where day = ? and tz = ?", [day, name]
    ).fetchone()
    row = {"tz": name, "report": found[0] if found else "{}"}
    return _its_clock(row, zone, date.fromisoformat(day))


@functools.lru_cache(maxsize=4096)
def _one_clock_day(name: str, zone: str, day: str) -> bool:
    return one_clock(name, zone, date.fromisoformat(day))


#: The staffing of a frozen day whose staffed hours changed during it (a restart with new
#: ``policy.hours``): no one split is the day's.
STAFFING_CHANGED = {"hours": "changed during the day"}


#: A setting's history (``kiosk.store.recorded_history``): each value with when it came into
#: force (None: from the log's start), oldest first.
History = list[tuple[str | None, dict[str, Any]]]


def _in_force(
    history: History, day: date, zone: ZoneInfo
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The values of a setting's ``history`` in force when ``day`` began (the last of them its
    own), and those that came into force during it, in order."""
    start, end = day_bounds(day, zone)
    began = [v for since, v in history if since is None or since[:19] <= start]
    during = [v for since, v in history if since is not None and start < since[:19] < end]
    return began, during


def day_quotas(
    history: History, day: date, zone: ZoneInfo, quota_cfg: QuotaConfig | None
) -> tuple[QuotaConfig | None, QuotaRules | None]:
    """The outing quota ``day`` is counted by, as the daemon recorded each with the time it
    came into force (``history``: ``recorded_history`` of ``quota``): the one in force when it
    ended, which its report shows (the rule its evening's report counted by and the gate let
    its last households out by, not a restart's since: staff counted from 00:05 the next day
    would put a household over a quota it never was under); and, when a restart brought
    another during the day, every one in force during it (``QuotaRules``; else None), each
    outing judged by its own: a household let out at 08:00 and 10:00 under the morning's
    rule was over no quota switched on at 12:00. ``quota_cfg`` when none was recorded by then
    (a log before this version) or the last cannot be read."""
    start, end = day_bounds(day, zone)
    began = [v for since, v in history if since is None or since[:19] <= start][-1:]
    during = [(since, v) for since, v in history if since is not None and start < since[:19] < end]
    values = [(None, v) for v in began] + during
    try:
        last = QuotaConfig.model_validate(values[-1][1]) if values else None
    except ValueError:  # pydantic's ValidationError is one
        last = None
    if last is None:  # none recorded by then, or it cannot be read
        return quota_cfg, None
    rules: list[tuple[datetime | None, QuotaConfig]] = []
    for since, value in values:
        try:  # a damaged entry (its value, or its time: a bad sector) is passed over
            quota = QuotaConfig.model_validate(value)
            at = None if since is None else _utc(str(since))
        except ValueError:
            continue
        if not rules or quota != rules[-1][1]:  # a restart that changed nothing: no change
            rules.append((None if not rules else at, quota))
    return last, (rules if len(rules) > 1 else None)


def _day_staffing(
    db: Database, day: date, zone: ZoneInfo, history: History
) -> dict[str, Any] | None:
    """``day``'s split by the staffed hours in force on it, as the daemon recorded them with
    the time each came into force (``history``: ``kiosk.store.recorded_history`` of ``hours``):
    ``STAFFING_CHANGED`` when they changed during it, None when none were recorded by then (a
    day before the log recorded any) or they cannot be read."""
    in_force, during = _in_force(history, day, zone)
    if not in_force:
        return None
    if any(h != in_force[-1] for h in during):
        return dict(STAFFING_CHANGED)
    try:
        hours = HoursConfig.model_validate(in_force[-1])
    except ValueError:  # pydantic's ValidationError is one
        return None
    return staffing_section(db, day, zone, hours)


def freeze_days(
    store: Store,
    tz: ZoneInfo | str,
    quota_cfg: QuotaConfig | None,
    now: datetime,
    *,
    max_days: int | None = None,
) -> list[date]:
    """Freeze every complete local day (before today in ``tz``) that has events and is not
    frozen yet, oldest first; at most ``max_days`` (one write transaction: retention freezes
    a restored log's months a few days at a time, so a passage need not wait for them all).
    Each by the settings in force on it as the daemon recorded them (``recorded_history``):
    its outings by the quota (``day_quotas``: each by the one in force when it was made;
    ``quota_cfg`` where none was recorded), its ``staffing`` by the staffed hours
    (``_day_staffing``). Returns the days frozen. Idempotent."""
    zone = as_zone(tz)
    today = now.astimezone(zone).date()

    def write(db: Database) -> list[date]:
        # A log opened without this module's MIGRATIONS still gets its table (same schema).
        _create_aggregates(db)
        redated = _redated_times(db)
        through = _frozen_through(db, zone)
        touched = _touched_days(db, zone, through)
        frozen = set(through) - _late_days(db, zone, through, touched)
        # Not from the first day with events: a restored log frozen a few days a
        # transaction walked its frozen days again at each one (days² queries).
        day = _walk_start(db, zone, through, touched - frozen, redated)
        head = db.execute("select max(seq) from events").fetchone()[0]
        hours, quotas = recorded_history(db, "hours"), recorded_history(db, "quota")
        stamp = now.astimezone(UTC).isoformat()
        done: list[date] = []
        # Day to day with events only: one passage stamped 1970 before NTP synced must not
        # make every run walk the empty days since then inside the writer's transaction.
        while day is not None and day < today:
            # A day whose outings' households were purged is counted no more (a zone
            # renamed or corrected since it was frozen: ``frozen_report``); one whose are
            # held for the quota's look-back is, before they are emptied.
            quota, rules = day_quotas(quotas, day, zone, quota_cfg)  # the rules in force on it
            roles = (quota or QuotaConfig()).roles  # whose outings compute_report counts
            if day.isoformat() not in frozen and not _lost(db, day, zone, roles):
                report = compute_report(db, day, zone, quota, rules)
                if _first_purge(db, day, zone) is not None:  # held: counted all the same
                    report[HELD_WHEN_FROZEN] = True
                staffing = _day_staffing(db, day, zone, hours)
                if staffing is not None:  # the split by the hours in force, kept with the day
                    report["staffing"] = staffing
                db.table("daily_aggregates").insert(
                    {
                        "day": day.isoformat(),
                        "tz": zone.key,
                        "report": json.dumps(report, ensure_ascii=False),
                        "frozen_at": stamp,
                        "through_seq": head,
                    },
                    replace=True,
                )
                done.append(day)
                if max_days is not None and len(done) >= max_days:
                    break
            day = _next_day_with_events(db, day, zone, redated)
        return done

    return store.submit(write)
