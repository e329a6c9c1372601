"""A gate whose own clock is not set yet (no network time since it booted) leaves a peer's
passages stamped ahead of it with that peer (``kiosk.peers.check_page``: it cannot tell a
right stamp from a wrong clock), to be fetched once NTP set it. Its guard must not be told
the gates agree meanwhile: the peer's row says how many are held back and why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_compound_gates import NOW, TZ, Gate, peer_entry, resident

from kiosk.clock import FakeClock


@pytest.fixture
def unset_south(tmp_path, monkeypatch):
    """North on a set clock; south, its peer, on a clock NTP has not set (1970): south, its
    clock, its sync of north, and north."""
    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    north = Gate(tmp_path, "gate-north", FakeClock(start=NOW))
    south = Gate(tmp_path, "gate-south", unset, [peer_entry("gate-north")])
    try:
        yield south, unset, south.peer_of(north, monkeypatch), north
    finally:
        south.close()
        north.close()


def test_passages_held_back_on_a_clock_not_set_are_told_not_shown_ok(unset_south):
    from ui.guard.display import health_rows

    south, unset, sync, north = unset_south
    north.passage(resident("1-101"))
    north.passage(resident("2-202"))
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["rows_held"] == 0  # left with north: this clock cannot judge them
    assert peer["held_back"] == 2 and peer["state"] == "held"
    [row] = [
        r
        for r in health_rows(south.core.health(), "en", TZ)
        if r["device"] == "compound gate gate-north"
    ]
    assert row["state"] == "degraded"
    assert "2 of its passages held back" in row["detail"]
    assert "this gate's clock is not set" in row["detail"]
    # NTP sets the clock: they are fetched, counted, and the peer is ok again.
    unset.set_wall(NOW)
    unset.is_synced = True
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["rows_held"] == 2 and peer["held_back"] == 0 and peer["state"] == "ok"


def test_passages_held_back_raise_a_card_on_the_live_page_until_the_clock_is_set(unset_south):
    """The peer's ``held`` state showed only on the Devices page: the guard at the live page was
    not told that outings at the other gate do not count here meanwhile (a resident just let
    out there may be let out again here). It is a standing card, like an outage's, in both
    languages, with no time of a clock not set, gone once NTP sets the clock."""
    from kiosk.alarms import peer_alarms
    from ui.guard.display import alarm_view

    south, unset, sync, north = unset_south
    north.passage(resident("1-101"))
    sync.poll()
    [card] = peer_alarms(south.core.health()["peers"])
    assert (card.key, card.cause) == ("device:peer:gate-north", "held")
    view = alarm_view(card, "en", TZ, frozenset())
    assert "held back" in view["detail"] and "clock is not set" in view["detail"]
    assert "1970" not in view["detail"] and "08:01" not in view["detail"]
    assert "check with the guard there" in view["todo"]
    zh = alarm_view(card, "zh-CN", TZ, frozenset())
    assert "时钟未设定" in zh["detail"] and "核实" in zh["todo"]
    unset.set_wall(NOW)
    unset.is_synced = True
    sync.poll()
    assert peer_alarms(south.core.health()["peers"]) == []
