"""The checkpoint loop's order, per-step timeouts and device deadlines."""

from typing import Annotated, Literal

from pydantic import Field

from ._base import Section


class EngineSection(Section):
    order: Literal["code_first", "temperature_first"] = "code_first"
    """Which check the kiosk asks for first."""
    code_timeout_s: float = Field(10.0, gt=0, le=120)
    """After a temperature, how long to wait for a code."""
    left_after_s: float = Field(0.3, gt=0, le=10)
    """Nobody at the thermometer (or a reading fallen far below theirs) this long means the
    person a passage saw there left: a temperature awaiting its code is decided then
    (``no_pass``), a code awaiting its temperature ends as ``no_temperature``. Whoever steps up
    next is measured afresh for their own code."""
    result_hold_s: float = Field(4.0, gt=0, le=60)
    """How long a result stays on the kiosk screen."""
    device_deadline_ms: int = Field(500, ge=10, le=10000)
    """A blocking gate (relay) call longer than this is a fault; the thermometer's reads have
    their own, `thermometer.driver.read_deadline_ms`."""
    store_deadline_ms: int = Field(3000, ge=50, le=30000)
    """An event commit longer than this is a store fault (a dying SD card can stall fsync for
    seconds; the gate never opens on an unconfirmed commit)."""
    tick_ms: int = Field(50, ge=5, le=1000)
    """How often the runner checks step timeouts and the pulse."""
    idle_probe_s: float = Field(1.0, gt=0, le=60)
    """Idle device probe interval: how fast a fault, and a recovery, is noticed."""
    backlog_max: int = Field(1000, ge=1, le=100000)
    """Decisions held in memory while the store is failing, retried on recovery."""
    retry_window_s: float = Field(120.0, ge=0, le=600)
    """A pass shown again the same way within this long of a deny that only asked its
    person to measure again (``no_temperature``, ``temp_implausible``) is that person trying
    again: its event is flagged ``retries:<seq>`` and the reports count one passage, ended as
    the last attempt (``kiosk.links``). 0 links none."""
    cpu: Literal["auto", "off"] | Annotated[int, Field(ge=0, le=1023, strict=True)] = "auto"
    """CPU placement (checkpoint.cpu): 'auto' keeps background helpers (log export) on the
    lowest-numbered CPU and the daemon on the others, when there are two or more; 'off' pins
    nothing; a number pins the daemon to that CPU alone."""
