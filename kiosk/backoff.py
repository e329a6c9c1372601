"""Capped doubling waits: the one backoff of the program.

A device that keeps failing (a lost camera, an unplugged scanner, an I2C bus that errors)
and a network call that keeps failing (the pull, the collector's polling) wait longer after
each failure in a row, and never longer than a cap: ``base_s``, ``2 * base_s``,
``4 * base_s`` ... up to ``cap_s``. ``Backoff`` is the rule only; whoever retries counts the
failures in a row, asks ``delay(step)`` for the wait and starts again from step 0 once the
thing works again.

A cap below the base is allowed and means every wait is the cap: the config bounds the two
numbers separately (e.g. a collector polling every 600 s whose error pause is capped at 300 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: ``2.0 ** n`` is a finite float up to here; a longer run of failures waits as if it were this
#: long (the cap long since), instead of ``OverflowError`` after a day of failures.
MAX_DOUBLINGS = 1023


@dataclass(frozen=True)
class Backoff:
    """Waits of ``base_s`` doubled per failure in a row, capped at ``cap_s`` (seconds)."""

    base_s: float
    cap_s: float

    def __post_init__(self) -> None:
        for name, value in (("base_s", self.base_s), ("cap_s", self.cap_s)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Backoff {name} must be positive seconds, not {value!r}")

    def delay(self, step: int) -> float:
        """The wait at ``step`` of a run of failures, counted from 0: ``base_s * 2**step``, at
        most ``cap_s``."""
        if step < 0:
            raise ValueError(f"Backoff step counts failures from 0, not {step}")
        return min(self.cap_s, self.base_s * 2.0 ** min(step, MAX_DOUBLINGS))
