"""Local days in the site's time zone, as the event log's UTC timestamps sort by."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The days a person may type: a guard's form, the API's ``?day=``, a quarantine's days on
#: the lists. A year typed wrong (``9999-12-31``, ``0001-01-01``) is refused, never a
#: quarantine for good nor a day before the gate existed.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2999, 12, 31)


class OutsideDays(ValueError):
    """A typed time on none of the days a person may type (``typed_instant``)."""


#: The longest ISO 8601 time a person or a form sends (microseconds and a UTC offset in
#: seconds: ``2026-03-02T08:30:00.000000+05:30:00.000000``, 42 characters).
TYPED_INSTANT_CHARS = 42


def typed_instant(text: str) -> datetime:
    """A date and time a person typed, or a form sent back (ISO 8601, with or without a UTC
    offset), on one of the days a person may type (``FIRST_DAY``..``LAST_DAY``, its date as
    written): a pass's start, a shift's ends, the clock reading a guard vouches for, the
    CLI's ``--start`` and ``--at``. ``ValueError`` for text that is not such a time,
    ``OutsideDays`` (a ``ValueError`` too) for one on another day. The one parser of every
    typed instant: held to those days, it converts to any zone, takes a pass's days and
    compares with the clock, where one at the calendar's ends (``0001-01-01T00:00+14:00``,
    ``9999-12-31T23:59-14:00``) raised ``OverflowError`` past every ``except ValueError``
    (a 500, a traceback)."""
    if len(text) > TYPED_INSTANT_CHARS:
        raise ValueError(f"{text[:TYPED_INSTANT_CHARS]!r}...: too long for a time")
    when = datetime.fromisoformat(text)
    if not FIRST_DAY <= when.date() <= LAST_DAY:
        raise OutsideDays(f"{text!r} is outside {FIRST_DAY}..{LAST_DAY}")
    return when


#: How a day is typed: ``2026-10-25``, ASCII digits, nothing before or after it.
_DAY_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def typed_day(text: str) -> date:
    """A day a person typed: ``kiosk report --day``, the console's and the API's ``?day=``,
    the one parser of all three. ``YYYY-MM-DD`` only (``date.fromisoformat`` takes
    ``20261025`` and ``2026-W43-7`` too), on one of ``FIRST_DAY``..``LAST_DAY``:
    ``ValueError`` for text that is no such day (``2026-02-30``), ``OutsideDays`` for one
    outside them."""
    if not _DAY_TEXT.fullmatch(text):
        raise ValueError(f"{text[:12]!r} is not a day written YYYY-MM-DD")
    day = date.fromisoformat(text)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise OutsideDays(f"{text} is outside {FIRST_DAY}..{LAST_DAY}")
    return day


def as_zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


#: Where a local midnight before 0001-01-01 or after 9999-12-31 in UTC sorts, as text.
_FIRST, _LAST = "0001-01-01T00:00:00", "9999-12-31T23:59:59"


def day_start(day: date, tz: ZoneInfo | str) -> datetime:
    """The first instant of the local ``day`` on the clock of ``tz``, in UTC: its midnight by
    ``local_at``'s rule, the one way every place finds where a local day begins (the reports'
    ``day_bounds``, retention's reach, the staffed hours' midnight in ``kiosk.roster``). A
    midnight the spring change skips (Africa/Cairo 2024-04-26, America/Santiago 2024-09-08:
    23:59:59, then 01:00 summer time) is when the clock went on, which ends the day before; one
    the autumn change repeats (America/Havana 2024-11-03: 01:00 summer time, then 00:00) is
    its first pass, and the day holds both. ``OverflowError`` past the calendar's ends."""
    return local_at(day, time(0), tz).astimezone(UTC)


def _utc_midnight(day: date, zone: ZoneInfo, days_after: int) -> str:
    try:
        return day_start(day + timedelta(days=days_after), zone).isoformat()[:19]
    except OverflowError:  # the first or last calendar day: its bound is the calendar's own
        return _FIRST if day.year == 1 else _LAST


def day_bounds(day: date, tz: ZoneInfo | str) -> tuple[str, str]:
    """UTC ``[start, end)`` of a local day, as the 19-character text events sort by (the
    first and last days of the calendar included: their bounds stop at its ends)."""
    zone = as_zone(tz)
    return _utc_midnight(day, zone, 0), _utc_midnight(day, zone, 1)


def local_day(ts: str | datetime, tz: ZoneInfo | str) -> date:
    when = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(as_zone(tz)).date()


def aware_or_none(value: object) -> datetime | None:
    """A stored ISO 8601 time with its UTC offset; None for anything else (missing, not a
    time, a time without its offset)."""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def when_or_none(text: str | None) -> datetime | None:
    """A stored ISO 8601 time, or ``None`` for an empty column."""
    return None if not text else datetime.fromisoformat(text)


#: Every UTC offset in use is a whole number of quarter hours from the next: a day's hours
#: are found by looking at its clock every quarter hour.
_QUARTER = timedelta(minutes=15)


def day_hours(day: date, tz: ZoneInfo | str) -> list[datetime]:
    """The local hours of ``day`` as distinct instants, in order: each clock hour with its
    UTC offset, as the first local instant of the day in it. 24 on most days, 25 on the day
    the autumn change repeats an hour (02:00 summer time, then 02:00 winter time), 23 on the
    day the spring change skips one (no 02:00). ``hour_key`` finds an instant's."""
    zone = as_zone(tz)
    start, end = (datetime.fromisoformat(b).replace(tzinfo=UTC) for b in day_bounds(day, zone))
    hours: dict[tuple[int, timedelta | None], datetime] = {}
    at = start
    while at < end:
        try:
            local = at.astimezone(zone)
            hours.setdefault((local.hour, local.utcoffset()), local)
            at += _QUARTER
        except OverflowError:  # the calendar's last instants
            break
    return list(hours.values())


def hour_key(local: datetime) -> tuple[int, timedelta | None]:
    """The hour of ``day_hours`` a local time is in: its clock hour and UTC offset."""
    return local.hour, local.utcoffset()


#: Longer than any quota period and its day (``QuotaConfig.period_days`` is at most 30): two
#: zones' clocks are compared over this much at most (``same_clock``).
_LONGEST = timedelta(days=32)


def same_clock(a: ZoneInfo, b: ZoneInfo, since: datetime, until: datetime) -> bool:
    """Whether two zones keep the same clock from ``since`` to ``until`` (aware times): their
    UTC offsets agree all along (every quarter hour, the last ``_LONGEST`` of it at most).
    zoneinfo has no table of aliases; this is what an alias means for a day's or a period's
    count (``PRC`` and ``Asia/Shanghai``, ``US/Eastern`` and ``America/New_York``)."""
    if a.key == b.key:
        return True
    when = max(since, until - _LONGEST)
    while when <= until:
        if when.astimezone(a).utcoffset() != when.astimezone(b).utcoffset():
            return False
        when += _QUARTER
    return until.astimezone(a).utcoffset() == until.astimezone(b).utcoffset()


def known_zone(name: ZoneInfo | str) -> ZoneInfo | None:
    """The zone ``name``, or None when this system's zone data lacks it (Trixie keeps ``PRC``
    and ``Asia/Calcutta`` in ``tzdata-legacy``, which it does not install)."""
    try:
        return as_zone(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
        return None


def one_clock(name: str, other: ZoneInfo | str, day: date) -> bool:
    """Whether the zone ``name`` keeps the clock of ``other`` all through ``day`` (cut in
    ``other``): its day is the same day, hour for hour (``same_clock``). An unknown name
    keeps none. The one rule for a day counted under another name of the site's clock: the
    gate's frozen reports (``kiosk.stats``), the office's ledgers and zones
    (``office.district``)."""
    zone, ref = known_zone(name), known_zone(other)
    if zone is None or ref is None:
        return False
    start, end = (datetime.fromisoformat(b).replace(tzinfo=UTC) for b in day_bounds(day, ref))
    return same_clock(zone, ref, start, end)


def days_before(when: datetime, days: int) -> datetime:
    """``days`` days before ``when`` on ``when``'s own clock (its zone: the same local time,
    47 or 49 hours across a daylight-saving change). A local time that clock skipped (the
    spring change's hour: no 02:20 that Sunday in Berlin) is when the clock went on (03:00
    summer time), the first instant whose local time is not earlier; read with the offset
    before the change (as Python does) it was an hour later, and a period from it left out
    outings of that hour. A repeated one (the autumn change) is its first."""
    return _shown(when - timedelta(days=days))


def local_at(day: date, when: time, tz: ZoneInfo | str) -> datetime:
    """``when`` (a time of day) on ``day`` on the clock of ``tz``, by ``days_before``'s rule: a
    time the clock skipped (no 02:30 on the spring change's Sunday in Berlin) is when the clock
    went on (03:00 summer time), not an hour later in the future (as ``datetime.combine``
    reads it, with the offset before the change); a repeated one is its first. The one way a
    local time of day is placed on a day: a peer's closed hours (``kiosk.peers``), the staffed
    hours (``kiosk.roster``), a day's start (``day_start``)."""
    return _shown(datetime.combine(day, when.replace(tzinfo=None, fold=0), as_zone(tz)))


def span_on(day: date, span: tuple[time, time], tz: ZoneInfo | str) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` of a span of local times of day (hours written
    ``22:00-02:30``) begun on ``day``: each end where ``local_at`` places it (a time the spring
    change skips, when the clock went on; one the autumn change repeats, its first pass), the
    end on the next day when it is not after the start (across midnight; a span starting when
    it ends is a whole day). The one way a span of hours is read: the gate's opening and
    staffed hours (``within_spans``), the roster's staffed stretches, a peer's closed hours."""
    start, end = span
    across = timedelta(days=int(end <= start))
    return (
        local_at(day, start, tz).astimezone(UTC),
        local_at(day + across, end, tz).astimezone(UTC),
    )


def within_spans(now: datetime, spans: Iterable[tuple[time, time]], tz: ZoneInfo | str) -> bool:
    """Whether the instant ``now`` lies in one of ``spans`` (``span_on``), begun on its local
    day or the day before (one across midnight): 02:15 of the autumn change's second pass is
    after a span that ended at 02:30 of the first, and inside one that began then."""
    zone = as_zone(tz)
    today = now.astimezone(zone).date()
    return any(
        begins <= now < ends
        for span in spans
        for day in (today - timedelta(days=1), today)
        for begins, ends in (span_on(day, span, zone),)
    )


def _shown(local: datetime) -> datetime:
    """``local`` (aware, in its zone) if its clock showed that time; a skipped one is when the
    clock went on (``days_before``)."""
    zone = local.tzinfo
    if zone is None or zone is UTC:
        return local
    later = local.replace(fold=0).astimezone(UTC)
    if later.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return local  # a time the clock showed
    earlier, wall = local.replace(fold=1).astimezone(UTC), local.replace(tzinfo=None)
    while later - earlier > _INSTANT:  # the change lies between the two readings
        middle = earlier + (later - earlier) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            later = middle
        else:
            earlier = middle
    return later


#: The precision a skipped time's change is found to.
_INSTANT = timedelta(microseconds=1)


class NoSuchTime(ValueError):
    """A local time typed for a zone whose clock skipped it (the spring change's hour)."""


def local_instants(wall: datetime, zone: tzinfo) -> tuple[datetime, ...]:
    """The instants a local clock time (``wall``, without an offset) names in ``zone``, in
    order, in UTC (two times of one zone compare and subtract as wall-clock times, their
    fold ignored): one on most days; two in the hour the autumn change repeats (02:30 summer
    time, then 02:30 winter time); none in the hour the spring change skips."""
    found: set[datetime] = set()
    for fold in (0, 1):
        try:
            at = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            shown = at.astimezone(zone).replace(tzinfo=None)
        except OverflowError:  # the calendar's first or last hours: no change there
            return (wall.replace(tzinfo=zone),)
        if shown == wall:
            found.add(at)
    return tuple(sorted(found))


def local_instant(
    wall: datetime,
    zone: tzinfo,
    *,
    near: datetime | None = None,
    not_before: datetime | None = None,
) -> datetime:
    """The instant a local time a person typed for ``zone`` names (``wall``, without an
    offset: a form's ``datetime-local``, a ``--start``), the one rule of every such time.
    One the spring change skips (no 02:30 that Sunday in Berlin) is ``NoSuchTime``: the
    person typed a time the site's clocks never showed. One the autumn change repeats is the
    occurrence nearest ``near`` (the clock's reading), of those not before ``not_before`` (a
    time known to have passed) when one is not; without ``near``, its first (the earlier
    hour, as a roster's shift is planned)."""
    instants = local_instants(wall, zone)
    if not instants:
        name = getattr(zone, "key", None) or str(zone)
        when = wall.isoformat(timespec="minutes")
        raise NoSuchTime(f"{when}: no such time in {name} (the clocks go forward)")
    if near is None or len(instants) == 1:
        return instants[0]
    reference = near
    return min(
        instants, key=lambda at: (not_before is not None and at < not_before, abs(at - reference))
    )


def offset_text(when: datetime) -> str:
    """``UTC+02:00``, the UTC offset of an aware time, as the exports write it."""
    offset = when.strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:5]}" if offset else ""


def repeated(when: datetime) -> bool:
    """Whether the local time of the aware ``when`` happens twice that day (the hour the
    autumn change repeats)."""
    return when.replace(fold=1 - when.fold).utcoffset() != when.utcoffset()


def shown_local(when: datetime, zone: tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``when`` as the site's clock showed it, for a person to read: a local time the autumn
    change repeats carries its UTC offset (``2026-10-25 02:30 UTC+01:00``), which tells the
    two apart; every other time as it reads."""
    local = when.astimezone(zone)
    shown = local.strftime(fmt)
    return f"{shown} {offset_text(local)}" if repeated(local) else shown


class DayNotBegun(ValueError):
    """A report asked of a day that has not begun and holds nothing (``refuse_unbegun``)."""


def refuse_unbegun(day: date, today: date, zone: str, events: int) -> None:
    """``DayNotBegun`` for a report of a day after ``today`` (the site's day, in ``zone``)
    that holds no event: a year typed wrong (next year's) is not a day of zeros sent up. A day
    ahead that holds events (a clock set wrong) still reports. The one check of ``kiosk
    report``, ``kiosk fleet report`` and the console's report page and files."""
    if day > today and not events:
        raise DayNotBegun(
            f"that day has not begun (today is {today} in {zone}): nothing to report; check"
            " the day typed"
        )
