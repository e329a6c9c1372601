"""A quarantined resident let home on a clock NTP has not set: the desk's cards after a
restart are the ones the engine raised.

On a fast, unset clock the pass's rules are judged at the clock's time and at the earliest
real time can be; a quarantine only one of them finds raises no alarm (``kiosk.policy``),
yet the pass keeps the flag ``quarantine``. The restarted desk read that flag as a
``quarantine_return`` card the live desk never drew. Since the kiosk's row records the alarm
the engine raised (flag ``alarm:<name>``), an unset clock's pass draws the card only when its
row records that alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from guard_support import add_event
from test_alarm_agreement import _FastUnsetClock, _live_and_restarted
from test_engine import Rig

from kiosk.alarms import AlarmDesk

#: The log's last set time: the clock reads four days later.
REAL = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "raised"),
    [
        # Quarantined by the real time only (over by the clock's): passed, flagged
        # quarantine, no alarm; the restarted desk drew a quarantine_return card.
        ((0, 1), []),
        # Quarantined by both times: the alarm is raised, live and after a restart.
        ((0, 6), ["quarantine_return"]),
    ],
)
def test_a_return_home_on_a_fast_unset_clock_is_the_card_the_engine_raised(tmp_path, days, raised):
    clock = _FastUnsetClock(REAL)
    rig = Rig(clock, tmp_path, policy={"mode": "pass_only"}, site={"direction": "in"})
    try:
        text = rig.pass_text(household="1-1", holder="Wang L", start_days=-10)
        today = REAL.date()
        first, last = (today + timedelta(days=d) for d in days)
        rig.lists.add_quarantine("1-1", None, first, last, actor="guard")
        rig.show(text, None)
        rig.run(1)
        heard = [m["alarm"] for m in rig.messages if m["type"] == "alarm" and "seq" in m]
        [row] = rig.events()
        live, restarted = _live_and_restarted(rig, clock)
    finally:
        rig.close()
    assert row["decision"] == "pass" and "quarantine" in row["flags"], row
    assert row["clock_synced"] is False
    assert heard == raised
    assert [kind for _, kind, *_ in restarted] == ["quarantine"] * len(raised)
    assert live == restarted


@pytest.mark.parametrize(
    ("clock_synced", "cards"),
    [(True, [("quarantine", "quarantine_return")]), (False, [])],
)
def test_a_pass_flagged_quarantine_without_its_alarm(guard_core, clock_synced, cards):
    """A kiosk's pass flagged ``quarantine`` that records no alarm: on a set clock the engine
    always raised ``quarantine_return`` for it (a row logged before the flag ``alarm:<name>``:
    its card as before); on an unset clock it raised one only when it records it."""
    guard_core.clock.is_synced = clock_synced  # the row's clock as the log stamps it
    add_event(
        guard_core, direction="in", decision="pass", reasons=("ok",), household="1-1",
        flags=("quarantine", "role:resident"),
    )  # fmt: skip
    guard_core.clock.is_synced = True
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    assert [(a.kind, a.detail) for a in desk.open_alarms([])] == cards
