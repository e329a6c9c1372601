"""The rules that decide, each configurable. See docs/policy.md for every rule and reason."""

import re
from datetime import time, timedelta
from typing import Literal

from pydantic import Field, model_validator

from ._base import ClockTime, FilePath, Section

#: The longest quota period a config may set (``quota.period_days``): what the compound's
#: ledger of the other gates' passages keeps (``kiosk.peers.LEDGER_HORIZON``).
MAX_PERIOD_DAYS = 30


class QuotaConfig(Section):
    enabled: bool = False
    """Household outing quota (one outing every N days)."""
    exits: int = Field(1, ge=1, le=100)
    """Exits allowed per household per period."""
    period_days: int = Field(2, ge=1, le=MAX_PERIOD_DAYS)
    """Length of the rolling quota period in days on the site's clock (out on Saturday at 10:00,
    out again from Monday at 10:00, also across a daylight-saving change)."""
    roles: tuple[Literal["resident", "staff", "delivery", "visitor"], ...] = Field(
        ("resident",), max_length=4, strict=False
    )
    """Pass roles the quota counts and limits; staff and deliveries usually not."""


class PassbackConfig(Section):
    enabled: bool = True
    """Anti-passback: same pass, same direction, too soon."""
    window_min: int = Field(2, ge=0, le=1440)
    """Minutes within which a repeat is passback."""
    mode: Literal["hard", "soft"] = "hard"
    """hard (default): deny a repeat in the same direction within the window and call the guard, who
    may override; soft: allow and flag for the guard."""


_SPAN = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
#: The spans a site may list (volunteers by day, a night guard, a lunch break between).
MAX_SPANS = 8
Span = tuple[time, time]


def _span(text: str) -> Span:
    found = _SPAN.fullmatch(text)
    if found is None:
        raise ValueError(f"a span of hours is written HH:MM-HH:MM, as 20:00-08:00 (got {text!r})")
    h1, m1, h2, m2 = (int(x) for x in found.groups())
    return time(h1, m1), time(h2, m2)


def _unambiguous(start: time, end: time) -> None:
    if start == end:
        raise ValueError(
            f"hours from {start:%H:%M} to {end:%H:%M} are ambiguous (none, or all day): for a"
            " gate staffed round the clock, set enabled = false"
        )


class HoursConfig(Section):
    enabled: bool = False
    """Only let people pass within opening hours."""
    open_at: ClockTime = time(8, 30)
    """Local opening time (site timezone). Later than close_at: the hours run across
    midnight (20:00 to 08:00 for a night guard)."""
    close_at: ClockTime = time(17, 30)
    """Local closing time (site timezone); the same as open_at is refused (ambiguous)."""
    spans: tuple[str, ...] = Field((), max_length=MAX_SPANS, strict=False)
    """Several spans instead of open_at/close_at, each HH:MM-HH:MM in local time, one may
    cross midnight: ["08:30-17:30", "20:00-08:00"] (volunteers by day, a night guard)."""
    applies_to: Literal["out", "both"] = "both"
    """Closed hours limit going out only, or both directions."""
    mode: Literal["staffed", "closed"] = "staffed"
    """staffed: the hours are when a guard is on duty; outside them the kiosk still decides alone
    what it may, denies what needs a guard (no_guard_on_duty, with where to call) and never locks
    residents out. closed: nobody passes outside the hours (outside_hours)."""
    call: str = Field("", max_length=120)
    """Where to call when no guard is on duty, shown with no_guard_on_duty."""

    @model_validator(mode="after")
    def _order(self) -> "HoursConfig":
        if self.spans and self.model_fields_set & {"open_at", "close_at"}:
            raise ValueError("give either spans or open_at/close_at, not both")
        for start, end in self.windows():
            _unambiguous(start, end)
        return self

    def windows(self) -> tuple[Span, ...]:
        """The spans of hours, in the order written: ``spans``, else open_at to close_at."""
        if self.spans:
            return tuple(_span(s) for s in self.spans)
        return ((self.open_at, self.close_at),)

    def longest_unstaffed(self) -> timedelta:
        """The longest stretch of the site's clock day outside the hours, across midnight too
        (none while the hours are off): how long something may wait for a guard."""
        if not self.enabled:
            return timedelta(0)
        day = 24 * 60
        covered = [False] * day
        for start, end in self.windows():
            first, last = start.hour * 60 + start.minute, end.hour * 60 + end.minute
            for minute in range(first, last if first < last else last + day):
                covered[minute % day] = True
        longest = run = 0
        for minute in range(2 * day):  # twice round the clock: a gap across midnight is one
            run = 0 if covered[minute % day] else run + 1
            longest = max(longest, min(run, day))
        return timedelta(minutes=longest)

    def text(self) -> str:
        """``08:30–17:30, 20:00–08:00``: the hours as the kiosk screen says them."""
        return ", ".join(f"{a:%H:%M}–{b:%H:%M}" for a, b in self.windows())


class PolicySection(Section):
    mode: Literal["full", "temperature_only", "pass_only"] = "full"
    """Which checks the site wants: both, temperature only, or pass only."""
    on_sensor_fault: Literal["manual", "deny"] = "manual"
    """Thermometer fault: ask the guard (manual) or deny outright."""
    on_reader_fault: Literal["manual", "deny"] = "manual"
    """Reader fault: ask the guard or deny."""
    on_store_fault: Literal["manual", "deny"] = "deny"
    """Event log cannot be written: nobody passes unrecorded by default."""
    quarantine_blocks: Literal["out", "both"] = "out"
    """Home quarantine denies going out (default) or both directions."""
    observation_blocks: Literal["none", "out", "both"] = "none"
    """A returnee under observation (kiosk.observation) is only flagged (none), or denied going out
    (out) or either way (both): under_observation."""
    quota: QuotaConfig = Field(default_factory=QuotaConfig)
    passback: PassbackConfig = Field(default_factory=PassbackConfig)
    hours: HoursConfig = Field(default_factory=HoursConfig)
    lists_stale_after_h: float = Field(48, gt=0, le=24 * 90)
    """Lists older than this are shown as stale on both screens. Stale lists still apply: the kiosk
    decides offline with what it has."""
    trust_dir: FilePath | None = None
    """Folder of trusted issuer *.pub keys (default: data/trust); a relative path is under the data
    dir, as store.path."""
