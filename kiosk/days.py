"""Local days in the site's time zone, as the event log's UTC timestamps sort by."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def as_zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def day_bounds(day: date, tz: ZoneInfo | str) -> tuple[str, str]:
    """UTC ``[start, end)`` of a local day, as the 19-character text events sort by."""
    zone = as_zone(tz)
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start.strftime("%Y-%m-%dT%H:%M:%S"), end.strftime("%Y-%m-%dT%H:%M:%S")


def local_day(ts: str | datetime, tz: ZoneInfo | str) -> date:
    when = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(as_zone(tz)).date()


def when_or_none(text: str | None) -> datetime | None:
    """A stored ISO 8601 time, or ``None`` for an empty column."""
    return None if not text else datetime.fromisoformat(text)
