"""The guard's cards about a record written or left out after its decision was told
(``kiosk.alarms.RECORD_ALARMS``): a guard's pass held for the log that was not written
(``held_pass_dropped``), a commit that landed past its deadline (``store_late_commit``). They
had no words (title "其他警报", the raw code as detail), were folded silently into a card the
record already had, and were gone after a console restart."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from test_engine import Rig
from test_registered_again import past_its_deadline, registration

from kiosk.alarms import AlarmDesk
from kiosk.store import AlreadyRecorded
from ui.guard.display import alarm_view

TZ = ZoneInfo("Asia/Shanghai")
CLEAR = frozenset({"name", "unit"})


def _dropped(clock, tmp_path, first=lambda rig: None) -> Rig:
    """Bob's registration of Zhang out, let through unrecorded past its commit deadline and
    held; its commit then ended refused: the first tablet's record (#1) stands for it.
    ``first(rig)``: what happens once #1 is written."""
    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    rig.log.append(registration(clock))  # the first tablet's
    first(rig)
    crossing = past_its_deadline(rig, "bob")
    with pytest.raises(AlreadyRecorded) as refused:
        rig.log.append(crossing.draft)
    del rig.ports.cross
    rig.engine.on_late_commit(crossing, refused.value)
    return rig


def _cards(desk: AlarmDesk, lang: str = "zh-CN") -> list[dict]:
    return [alarm_view(a, lang, TZ, CLEAR) for a in desk.open_alarms([])]


def _heard(rig: Rig, clock) -> AlarmDesk:
    desk = AlarmDesk(rig.log, clock)
    desk.open_alarms([])
    for message in rig.messages:
        if message.get("type") == "alarm":
            desk.note_message(message)
    return desk


def test_a_held_pass_not_written_has_words_saying_what_to_do(clock, tmp_path):
    rig = _dropped(clock, tmp_path)
    try:
        [card] = [c for c in _cards(_heard(rig, clock)) if c["kind"] == "record"]
        assert card["key"] == "held_pass_dropped:1" and card["title"] == "通行记录需核对"
        assert "bob 放行" in card["detail"] and "#1" in card["detail"]
        assert "重新登记" in card["todo"] and card["seqs"] == [1]
        assert card["direction"] == "外出" and card["who"]
        [en] = [c for c in _cards(_heard(rig, clock), "en") if c["kind"] == "record"]
        assert en["title"] == "A record to check" and "bob" in en["detail"]
        assert "register them again" in en["todo"]
    finally:
        rig.close()


def test_the_card_is_rebuilt_after_a_console_restart(clock, tmp_path):
    rig = _dropped(clock, tmp_path)
    try:
        again = AlarmDesk(rig.log, clock)  # the console after a restart: no bus message
        [card] = _cards(again)
        assert card["key"] == "held_pass_dropped:1" and "bob 放行" in card["detail"]
    finally:
        rig.close()


def test_the_card_is_its_own_beside_another_on_the_same_record(clock, tmp_path):
    desks: list[AlarmDesk] = []

    def guard_card(rig: Rig) -> None:  # #1 has a card before its held copy is dropped
        desks.append(AlarmDesk(rig.log, clock))
        desks[0].open_alarms([])
        message = {"type": "alarm", "alarm": "guard_needed", "state": "raised", "seq": 1}
        assert desks[0].note_message(message)

    rig = _dropped(clock, tmp_path, guard_card)
    try:
        for message in rig.messages:
            if message.get("type") == "alarm":
                desks[0].note_message(message)
        kinds = sorted(c["kind"] for c in _cards(desks[0]) if c["kind"] != "device")
        assert kinds == ["guard", "record"]  # not folded into the guard's card on #1
    finally:
        rig.close()


@pytest.mark.parametrize(("cause", "said"), [("", "只记录了一次"), ("denied", "闸门未开")])
def test_a_late_commit_has_words(clock, tmp_path, cause, said):
    rig = Rig(clock, tmp_path)
    try:
        rig.log.append(registration(clock))
        desk = AlarmDesk(rig.log, clock)
        message = {"type": "alarm", "alarm": "store_late_commit", "state": "raised", "seq": 1}
        desk.note_message(message | ({"cause": cause} if cause else {}))
        [card] = _cards(desk)
        assert card["title"] == "通行记录需核对" and said in card["detail"]
        assert "#1" in card["todo"]
    finally:
        rig.close()


def _landed_late(clock, tmp_path, cause: str) -> Rig:
    """A commit that missed its deadline and landed after all: bob's registration held
    (``""``: written once), or a resident's pass the screen denied (``denied``)."""
    from test_engine import _hold_crossings, land_late

    rig = Rig(clock, tmp_path, policy={"on_store_fault": "manual"})
    if cause == "denied":
        held = _hold_crossings(rig)
        rig.show(rig.pass_text(household="A-101"), "out")
        rig.emulator.person_arrives(36.6)
        rig.run(3)
        land_late(rig, held[0])
    else:
        crossing = past_its_deadline(rig, "bob")
        rig.engine.on_late_commit(crossing, rig.log.append(crossing.draft))
    return rig


@pytest.mark.parametrize(("cause", "said"), [("", "只记录了一次"), ("denied", "闸门未开")])
def test_a_late_commits_card_is_rebuilt_after_a_console_restart(clock, tmp_path, cause, said):
    """A commit landed past its deadline: its card (check the record; the log says pass for
    a passage the screen denied) was gone after a console restart, with nothing left to
    rebuild it from, unlike the held pass not written. It has its audit row now, as that one
    has, and the card comes back from it, closed if a guard closed it."""
    rig = _landed_late(clock, tmp_path, cause)
    try:
        [seq] = [m["seq"] for m in rig.messages if m.get("alarm") == "store_late_commit"]
        again = AlarmDesk(rig.log, clock)  # the console after a restart: no bus message
        [card] = [c for c in _cards(again) if c["kind"] == "record"]
        assert card["key"] == f"store_late_commit:{seq}" and said in card["detail"]
        assert card["seqs"] == [seq] and f"#{seq}" in card["todo"]
        [closed] = again.close([card["key"]], "alice", [])
        rig.log.audit("alice", "alarm_ack", {"keys": [closed.key], "resolution": "handled"})
        third = AlarmDesk(rig.log, clock)
        assert [c for c in _cards(third) if c["kind"] == "record"] == []
    finally:
        rig.close()
