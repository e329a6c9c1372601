"""Recent passages, in memory, for the two rules that need the past: quota and anti-passback.

Why in memory: ``decide`` is pure and runs on the pass/deny path; it must not query SQLite.
The event log is the truth: ``load`` rebuilds this from its rows at start, and the engine
calls ``record`` after each event is *committed*, so the history never holds a passage the
log lost (a crash between the two loses at most one passage from memory, never the reverse).

What counts:

* **Quota**: exits (direction ``out``, decision ``pass`` or ``manual_pass``) per household.
  A denied attempt is not an outing. One history per kiosk database, so a kiosk with several
  gates (or a ``both`` direction kiosk) counts them all together.
* **Anti-passback**: the last *passing* passage of a pass per direction. A denied attempt is
  not a passage, so someone denied for a warm wrist and re-measured is not flagged.

Memory stays bounded: entries older than ``horizon`` (the longest quota period the config
allows plus a day) are dropped as new ones arrive.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = ["COUNTED_DECISIONS", "PassageHistory"]

#: Decisions that mean someone actually went through.
COUNTED_DECISIONS = frozenset({"pass", "manual_pass"})
_DIRECTIONS = frozenset({"in", "out"})


def _aware(ts: datetime | str) -> datetime:
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise ValueError("passage time must be a timezone-aware datetime or ISO 8601 text")
    return ts


class PassageHistory:
    """Exits per household and the last passage per (pass, direction)."""

    def __init__(self, horizon: timedelta = timedelta(days=31)) -> None:
        self.horizon = horizon
        self._exits: dict[str, list[datetime]] = {}  # household -> sorted exit times
        self._last: dict[tuple[str, str], datetime] = {}  # (pass_id, direction) -> time
        self._newest: datetime | None = None
        self._pruned_at: datetime | None = None

    def record(
        self,
        pass_id: str | None | object,
        household: str | None = None,
        direction: str | None = None,
        decision: str | None = None,
        ts: datetime | str | None = None,
    ) -> None:
        """Remember one committed event; only passing decisions count (see module doc).

        Also accepts the committed event itself (``record(event)``: any object or mapping with
        ``pass_id``, ``household``, ``direction``, ``decision``, ``ts``), as the engine does."""
        if direction is None and not isinstance(pass_id, str | None):
            event = pass_id

            def get(key: str) -> Any:
                if isinstance(event, Mapping):
                    return event.get(key)
                return getattr(event, key, None)

            pass_id, household = get("pass_id"), get("household")
            direction, decision, ts = get("direction"), get("decision"), get("ts")
        if direction not in _DIRECTIONS:
            raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
        if decision not in COUNTED_DECISIONS:
            return
        if ts is None:
            raise ValueError("passage time is required")
        ts = _aware(ts)
        if household and direction == "out":
            bisect.insort(self._exits.setdefault(household, []), ts)
        if isinstance(pass_id, str) and pass_id:
            key = (pass_id, direction)
            previous = self._last.get(key)
            if previous is None or ts > previous:
                self._last[key] = ts
        if self._newest is None or ts > self._newest:
            self._newest = ts
            # Pruning walks every household: do it at most hourly, not on every passage.
            if self._pruned_at is None or ts - self._pruned_at > timedelta(hours=1):
                self._pruned_at = ts
                self._prune(ts - self.horizon)

    def load(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Rebuild from event-log rows (``pass_id``, ``household``, ``direction``,
        ``decision``, ``ts``), in any order. Returns how many rows counted."""
        counted = 0
        for row in rows:
            if row.get("decision") not in COUNTED_DECISIONS:
                continue
            if row.get("direction") not in _DIRECTIONS:
                continue
            self.record(
                row.get("pass_id"),
                row.get("household"),
                row["direction"],
                row["decision"],
                row["ts"],
            )
            counted += 1
        return counted

    def exits_since(self, household: str, since: datetime) -> int:
        """Exits of ``household`` strictly after ``since``."""
        times = self._exits.get(household)
        if not times:
            return 0
        return len(times) - bisect.bisect_right(times, since)

    def exits_in_period(self, household: str, now: datetime, period_days: int) -> int:
        """Exits in the rolling window ``(now - period_days, now]`` (later ones, after a wall
        clock step backwards, count too: erring towards the quota, never past it)."""
        return self.exits_since(household, now - timedelta(days=period_days))

    def last_passage(self, pass_id: str, direction: str) -> datetime | None:
        return self._last.get((pass_id, direction))

    def __len__(self) -> int:
        return sum(len(v) for v in self._exits.values()) + len(self._last)

    def _prune(self, before: datetime) -> None:
        for household in list(self._exits):
            times = self._exits[household]
            cut = bisect.bisect_left(times, before)
            if cut:
                del times[:cut]
            if not times:
                del self._exits[household]
        for key in [k for k, ts in self._last.items() if ts < before]:
            del self._last[key]
