"""The district report's ``collector_down`` read against the collector's own cadence, and a
gate's outage across a collector outage (a review of the first ``collector_down``): a gate
silent on both sides of the office's deaf hour was down through it; a gap no longer than the
collector said it would be is the collector pulling (``kiosk collect --once`` from cron every
15 minutes was read as the office deaf all day, and a gate dead since the morning was not
listed at all)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from office.district import _collector_down, _still_down

DAY = ("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z")


def _u(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 5, 1, h, m, s, tzinfo=UTC)


def _down() -> dict:
    return {"restarts": [], "restarts_total": 0, "restart_minutes": 0.0}


def _gate_down(last: datetime, now: datetime, runs: list) -> dict:
    """``_still_down`` for a gate whose last event and last contact were ``last``."""
    down = _down()
    stamp = {"ts": last.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "seq": 5}
    _still_down(down, stamp, (last, now), _collector_down(runs, now) or [], DAY, ZoneInfo("UTC"))
    return down


# ------------------------------------------------------------- a gate across a collector outage


def test_a_gate_down_before_and_after_a_collector_outage_is_down_through_it():
    """Silent from 08:00, the collector deaf 10:00-11:00 and back, the gate still silent at
    12:00: no contact since 08:00, and the office knew it down before the hour and after it.
    Before: 180 minutes, the collector's hour taken out."""
    down = _gate_down(_u(8), _u(12), [("a", _u(0), _u(10)), ("b", _u(11), _u(12))])
    assert down["restart_minutes"] == 240.0
    assert down["restarts"][0]["collector_down_minutes"] == 0.0


def test_a_gate_heard_just_before_a_collector_outage_is_not_down_during_it():
    """Heard at 09:50, the collector deaf from 10:00: the office could not know what the gate
    did in that hour."""
    down = _gate_down(_u(9, 50), _u(12), [("a", _u(0), _u(10)), ("b", _u(11), _u(12))])
    assert down["restart_minutes"] == 130.0 - 60.0
    assert down["restarts"][0]["collector_down_minutes"] == 60.0


def test_a_gate_known_down_when_the_collector_stopped_is_not_counted_while_it_is_off():
    """Silent from 08:00, the collector stopped at 10:00 and not back: after 10:00 nobody knows;
    the gate's minutes are the two hours the collector pulled without hearing it."""
    down = _gate_down(_u(8), _u(12), [("a", _u(0), _u(10))])
    assert down["restart_minutes"] == 120.0
    assert down["restarts"][0]["collector_down_minutes"] == 120.0


def test_a_gate_known_down_is_not_counted_through_a_collector_barely_back():
    """The collector back at 11:55, five minutes before the report: not yet long enough to
    say the gate did not answer it."""
    down = _gate_down(_u(8), _u(12), [("a", _u(0), _u(10)), ("b", _u(11, 55), _u(12))])
    assert down["restart_minutes"] == 240.0 - 115.0
