"""Device cards on the guard's alarm desk, one per incident: a device's card is keyed by the
device (``device:NAME``), and each incident carries when it began (``Alarm.since``), so a
fault back after its card was closed is a new card, a stale page's Done cannot close it, a
restart closes again a card whose fault stood since before its close, and the second guard
is told who closed a card gone from the board. The desk's ear is driven here synchronously:
the engine's bus messages are handed to ``AlarmDesk.note_message`` as the ear would."""

from __future__ import annotations

import re
from datetime import timedelta

from guard_support import ADMIN_PW, make_app, refused_with, send, signed_in

from kiosk.alarms import AlarmDesk, power_alarms
from kiosk.devices import Health


def drawn(page: str) -> list[str]:
    return re.findall(r'class="a-pick" name="key" value="([^"]+)"', page)


def incidents(page: str) -> list[str]:
    return re.findall(r'name="incident" value="([^"]+)"', page)


def done(tablet, page: str) -> str | None:
    """The guard presses Done on the page's one card: its form as the page drew it."""
    [card] = drawn(page)
    fields = {"csrf": tablet.csrf, "only": card}
    for value in incidents(page):  # the one card's incident, as its form sends it
        fields["incident"] = value
    return refused_with(tablet, send(tablet, "/guard/alarms/ack", fields))


def heard(core, desk: AlarmDesk, listening) -> None:
    """The bus's alarm messages published since, noted by ``desk`` as its ear notes them."""
    while (message := listening.get_nowait()) is not None:
        if message.get("type") == "alarm":
            desk.note_message(message)


def test_a_relay_fault_back_after_its_card_was_closed_is_a_new_card(guard_core):
    """Closed, the relay answered again (the health loop's poll saw it), then failed again
    two hours later while no page was drawn between: the closed card hid the new fault (the
    desk forgot a closed card only when a page drawn saw the fault gone)."""
    runner = guard_core.runner
    with signed_in(make_app(guard_core)) as tablet:
        runner._gate_health = Health("fault", "relay not answering")
        assert done(tablet, tablet.get("/guard?lang=en").text) is None
        assert drawn(tablet.get("/guard?lang=en").text) == []
        runner._gate_health = Health("ok", "")
        runner.health()  # the health loop's poll: the relay answers
        guard_core.clock.advance(7200)
        runner._gate_health = Health("fault", "relay not answering")
        assert drawn(tablet.get("/guard?lang=en").text) == ["device:gate@1"]


def test_a_second_under_voltage_spell_after_the_first_was_closed_is_a_new_card(guard_core):
    """The Pi's power card closed, the supply recovered and dipped again before any page was
    drawn: the new spell (another start) is a card; the closed spell's stays closed."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    began = guard_core.clock.now() - timedelta(minutes=30)

    def spell(minutes: int) -> list:  # a spell began ``minutes`` after the first
        since = (began + timedelta(minutes=minutes)).isoformat()
        return power_alarms({"under_voltage": True, "under_voltage_since": since})

    assert [a.key for a in desk.close(["device:pi_power"], "alice", spell(0))]
    assert desk.open_alarms(spell(0)) == []
    guard_core.clock.advance(3600)
    [card] = desk.open_alarms(spell(80))
    assert (card.key, card.acked_by) == ("device:pi_power", None)


def test_the_last_reader_failing_after_the_first_ones_card_was_closed_is_a_card(guard_core):
    """Two readers: the scanner's card closed while the camera still read passes, then the
    camera failed too, no reader left: the camera's raise was taken as the same fault said
    again, and no card told the guard the gate reads no pass at all. (The engine says
    ``all_down`` with the last reader's raise: tests/test_engine.py.)"""
    desk = AlarmDesk(guard_core.store, guard_core.clock)

    def raised(stamp: int, all_down: bool) -> dict[str, object]:
        said = {"alarm": "reader_fault", "state": "raised", "all_down": all_down}
        return {"type": "alarm", **said, "mono_ns": stamp}

    assert desk.note_message(raised(1, all_down=False))  # the scanner
    assert [a.key for a in desk.close(["device:reader"], "alice", [])] == ["device:reader"]
    guard_core.clock.advance(600)
    assert desk.note_message(raised(2, all_down=True))  # the camera: none left
    [card] = desk.open_alarms([])
    assert (card.key, card.acked_by, card.count) == ("device:reader", None, 1)
    assert not desk.note_message(raised(2, all_down=True))  # another console's stream


def test_a_stale_pages_done_does_not_close_a_new_fault_of_the_same_device(guard_core):
    """Two tablets drew the camera's card; alice closed it, the camera came back, and failed
    again five minutes later; the second tablet's Done from its stale page closed the new
    fault, which nobody had seen (both cards were ``device:reader@1``). It is told who closed
    the card it drew; the new card stays open."""
    engine = guard_core.runner.engine
    listening = guard_core.bus.subscribe(name="test-ear", maxsize=1000)
    engine.on_reader_fault("cam0", "camera lost")
    app = make_app(guard_core)
    with signed_in(app) as alice, signed_in(app, "root", ADMIN_PW) as other:
        desk = app.state.guard.alarms
        heard(guard_core, desk, listening)
        page_a = alice.get("/guard?lang=en").text
        stale = other.get("/guard?lang=en").text
        assert drawn(page_a) == drawn(stale) == ["device:reader@1"]
        assert done(alice, page_a) is None
        guard_core.clock.advance(60)
        engine.on_reader_ok("cam0")  # replugged a minute later
        guard_core.clock.advance(300)
        engine.on_reader_fault("cam0", "camera lost again")
        heard(guard_core, desk, listening)
        listening.close()
        assert drawn(alice.get("/guard?lang=en").text) == ["device:reader@1"]
        said = done(other, stale)
        assert said is not None and "alice" in said, said
        assert drawn(alice.get("/guard?lang=en").text) == ["device:reader@1"]
    acks = [a["actor"] for a in guard_core.store.audits(0, 1000) if a["action"] == "alarm_ack"]
    assert acks == ["alice"]


def test_the_second_guard_is_told_who_closed_a_device_card_gone_since(guard_core):
    """Alice replugged the camera and closed its card; a page drawn since forgot the closed
    card (its fault cleared): the second tablet's close was told "No such open alarm", not
    that alice closed it."""
    engine = guard_core.runner.engine
    engine.on_reader_fault("cam0", "camera lost")
    app = make_app(guard_core)
    with signed_in(app) as alice, signed_in(app, "root", ADMIN_PW) as other:
        page_a = alice.get("/guard?lang=en").text
        page_b = other.get("/guard?lang=en").text
        engine.on_reader_ok("cam0")
        assert done(alice, page_a) is None
        assert drawn(alice.get("/guard?lang=en").text) == []
        said = done(other, page_b)
    assert said is not None and "alice" in said and "No such" not in said, said


def test_a_closed_device_card_stays_closed_across_a_restart_while_its_fault_stands(guard_core):
    """The camera's card closed, the camera still failing: the console restarted and the card
    was back (acknowledgements of device cards were not read back). Closed again, as the
    fault stood since before the close; a fault begun after the close is a card."""
    engine = guard_core.runner.engine
    engine.on_reader_fault("cam0", "camera lost")
    with signed_in(make_app(guard_core)) as tablet:
        assert done(tablet, tablet.get("/guard?lang=en").text) is None
    with signed_in(make_app(guard_core)) as restarted:
        assert drawn(restarted.get("/guard?lang=en").text) == []
    engine.on_reader_ok("cam0")
    guard_core.runner.health()  # the health loop's poll: no reader fails
    guard_core.clock.advance(60)
    engine.on_reader_fault("cam0", "camera lost again")
    with signed_in(make_app(guard_core)) as restarted:
        assert drawn(restarted.get("/guard?lang=en").text) == ["device:reader@1"]
