"""Which kiosk this is and how it speaks."""

from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from ._base import ClockTime, Section


class SiteConfig(Section):
    kiosk_id: str = Field("gate-1", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    """Stable identifier of this kiosk; part of every event's key (kiosk_id, seq)."""
    site_name: str = Field("Demo compound", max_length=120)
    """Shown on the screens."""
    direction: Literal["in", "out", "both"] = "both"
    """Which way people pass. 'both': the screen or scanner says per passage."""
    default_direction: Literal["in", "out"] = "in"
    """Direction assumed when a 'both' kiosk is not told otherwise."""
    direction_from: Literal["screen", "readers"] = "screen"
    """Where a 'both' kiosk learns each passage's direction: 'screen' (the kiosk screen's buttons; a
    quarantined household then always needs the guard) or 'readers' (each reader's `direction`: one
    reader per lane, the screen's buttons are refused)."""
    language: Literal["zh-CN", "en"] = "zh-CN"
    """Default language of the screens (each screen can switch)."""
    timezone: str = Field("Asia/Shanghai", max_length=64)
    """IANA zone for opening hours and daily reports (events are stored in UTC)."""
    quiet_at_night: bool = False
    """The kiosk screen neither chimes nor speaks from `quiet_from` to `quiet_until` (the site's
    clock; across midnight when `quiet_from` is later): a gate under bedroom windows. The
    screen shows everything as by day."""
    quiet_from: ClockTime = time(22, 0)
    """When the quiet night starts (with `quiet_at_night`), the site's clock."""
    quiet_until: ClockTime = time(7, 0)
    """When the quiet night ends (equal to `quiet_from`: never quiet)."""

    def guard_way(self, *said: str | None) -> str | None:
        """The way a guard's action is recorded with: the first way ``said`` (the guard's
        choice, the way of the passage it is about, a scenario step's), else this gate's own
        at a one-way gate; None at a gate both ways with nothing said (a person without a
        pass: the guard must say it, never ``default_direction``, which recorded a resident
        let out at an out-only gate as coming in). The console, replay and the demo take it
        from here alike."""
        for way in said:
            if way:
                return way
        return None if self.direction == "both" else self.direction

    def assumed_way(self) -> str:
        """The way of a guard's action that names none and needs no choice (an evacuation
        started, a registration posted without one): this gate's own at a one-way gate
        (``guard_way``; was ``default_direction``, "in" at an out-only gate too), else the
        one the forms show chosen, ``default_direction``."""
        return self.guard_way() or self.default_direction

    def quiet_at(self, now: time) -> bool:
        """Whether the screen is quiet at the site's clock time ``now``."""
        start, end = self.quiet_from, self.quiet_until
        if not self.quiet_at_night or start == end:
            return False
        return start <= now < end if start < end else (now >= start or now < end)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
            # Debian 13 (Raspberry Pi OS Trixie) moved the old names ('PRC', 'Asia/Calcutta')
            # to the package tzdata-legacy, which it does not install.
            raise ValueError(
                f"unknown IANA timezone {value!r} in this system's zone data (e.g."
                " 'Asia/Shanghai'; an old name such as 'PRC' or 'Asia/Calcutta' needs the"
                " package tzdata-legacy on Debian 13: sudo apt-get install tzdata-legacy)"
            ) from None
        return value
