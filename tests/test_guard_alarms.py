"""Alarms say who, what, reading, direction, date and time, and link to the passage; one
incident is one alarm; a guard closes one or several with what was done; another issuer's
pass is not called forged; open and closed alarms are the same after a restart (issue 17
item 3)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from guard_support import (
    BASE,
    WAIT_S,
    add_event,
    login,
    make_app,
    post,
    refused_with,
    send,
    signed_in,
)

from kiosk.alarms import (
    Alarm,
    AlarmBoard,
    AlarmClosing,
    AlarmDesk,
    AlarmGrown,
    alarm_from_event,
)
from kiosk.store import StoreFault
from ui.auth import COOKIE
from ui.guard.display import alarm_view
from ui.guard.live import FeedStream


def fever(guard_core, household="3-201", holder="Li Wei", temp_c=38.4, direction="out"):
    return add_event(
        guard_core,
        decision="deny",
        reasons=("fever",),
        temp_c=temp_c,
        household=household,
        holder=holder,
        pass_id="c0ffee000001",
        direction=direction,
    )


def cards(html: str) -> list[str]:
    return re.findall(r'<div class="alarm kind-[^"]+".*?</button>', html, re.S)


def test_an_alarm_card_says_who_what_reading_direction_date_and_links_the_passage(
    guard_client, guard_core
):
    fever(guard_core)
    login(guard_client)
    [card] = cards(guard_client.get("/guard?lang=en").text)
    assert "Li Wei · 3-201" in card
    assert "03-02 16:30:00" in card  # local date and time (Asia/Shanghai)
    assert "38.4 °C · out" in card and "Fever" in card
    assert 'href="/guard/passage/1"' in card
    passage = guard_client.get("/guard/passage/1?lang=en").text
    assert "Li Wei" in passage and "38.4" in passage
    assert guard_client.get("/guard/passage/999").status_code == 404
    assert guard_client.get("/guard/passage/abc").status_code == 404  # a page, not JSON
    # more digits than int() reads (4300): no ValueError, no 500
    assert guard_client.get("/guard/passage/" + "9" * 5000).status_code == 404


def test_the_alarm_view_masks_whom_the_role_may_not_see():
    alarm = alarm_from_event(
        {"seq": 1, "decision": "deny", "reasons": ["fever"], "holder": "Wang Fang",
         "household": "3-201", "ts": "2026-03-02T08:30:00+00:00"}
    )  # fmt: skip
    from zoneinfo import ZoneInfo

    shown = alarm_view(alarm, "en", ZoneInfo("UTC"), frozenset())["who"]
    assert "Wang Fang" not in shown and "3-201" not in shown and shown


def test_repeated_denials_of_one_household_are_one_alarm_until_it_is_closed(
    guard_client, guard_core, clock
):
    add_event(
        guard_core, decision="deny", reasons=("quarantined",), household="5-202", holder="Sun Li"
    )
    clock.advance(120)
    add_event(
        guard_core, decision="deny", reasons=("quarantined",), household="5-202", holder="Sun Li"
    )
    login(guard_client)
    [card] = cards(guard_client.get("/guard?lang=en").text)
    assert "2 times" in card and "/guard/passage/1" in card and "/guard/passage/2" in card
    clock.advance(15 * 60)  # long after the last one: a new incident
    add_event(
        guard_core, decision="deny", reasons=("quarantined",), household="5-202", holder="Sun Li"
    )
    assert len(cards(guard_client.get("/guard").text)) == 2


def test_a_bus_alarm_about_a_committed_passage_is_the_same_alarm_in_words(guard_client, guard_core):
    event = add_event(guard_core, decision="deny", reasons=("quarantined",), household="5-202")
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    assert [a.key for a in desk.open_alarms([])] == ["event:1"]
    message = {"type": "alarm", "alarm": "quarantine_breach", "state": "raised", "seq": event.seq}
    assert desk.note_message(message) is False
    [alarm] = desk.open_alarms([])
    assert alarm.detail == "quarantined"  # a reason in words, never the raw bus code


def test_a_bus_alarm_about_a_registered_vehicle_names_its_people_and_plate(guard_core):
    """Before: a bus alarm about a passage whose reasons raise none (the gate needing the
    guard for a registered car) built its card from the event's pass fields only: no one
    named, no plate; the alarm model's one naming rule (the person registered) applies."""
    person = {"plate": "京A12345", "driver": "赵刚", "driver_temp_c": 36.4, "resident_of": "5-101"}
    event = add_event(
        guard_core,
        decision="manual_pass",
        reasons=("guard_override",),
        kind="vehicle",
        temp_c=36.4,
        person=person,
    )
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    message = {"type": "alarm", "alarm": "guard_needed", "state": "raised", "seq": event.seq}
    assert desk.note_message(message) is True
    [alarm] = desk.open_alarms([])
    assert (alarm.holder, alarm.household, alarm.plate) == ("赵刚", "5-101", "京A12345")


def test_another_issuers_pass_is_not_called_forged(guard_client, guard_core):
    add_event(guard_core, decision="deny", reasons=("pass_unknown_key",))
    login(guard_client)
    page = guard_client.get("/guard?lang=zh-CN").text
    assert 'class="alarm kind-foreign"' in page
    assert "非本小区通行证" in page and "伪造" not in page


def test_several_alarms_close_at_once_with_an_outcome_and_stay_closed_after_a_restart(guard_core):
    fever(guard_core, household="1-101")
    fever(guard_core, household="2-202")
    fever(guard_core, household="3-303")
    with TestClient(make_app(guard_core), base_url=BASE) as guard_client:
        csrf = login(guard_client)
        response = guard_client.post(
            "/guard/alarms/ack",
            data={"csrf": csrf, "key": ["event:1@1", "event:3@1"], "resolution": "false_alarm"},
            headers={"Origin": BASE},
            follow_redirects=False,
        )
        assert response.status_code == 303 and "err=" not in response.headers["location"]
        assert [
            re.search(r'data-key="([^"]+)"', c).group(1)
            for c in cards(guard_client.get("/guard").text)
        ] == ["event:2"]
    audit = [a for a in guard_core.store.audits() if a["action"] == "alarm_ack"][-1]
    assert audit["detail"]["keys"] == ["event:1", "event:3"]
    assert audit["detail"]["resolution"] == "false_alarm"
    with TestClient(make_app(guard_core), base_url=BASE) as restarted:  # a new app: a new desk
        login(restarted)
        [card] = cards(restarted.get("/guard?lang=en").text)
        assert 'data-key="event:2"' in card and "2-202" in card and "38.4 °C" in card


def test_after_a_restart_a_denial_after_the_close_is_a_new_open_alarm(guard_core, clock):
    fever(guard_core)
    with TestClient(make_app(guard_core), base_url=BASE) as guard_client:
        csrf = login(guard_client)
        clock.advance(60)
        post(guard_client, "/guard/alarms/ack", csrf, only="event:1@1", resolution="sent_home")
        clock.advance(60)
        fever(guard_core)  # the same person again, within the incident window, after the close
        assert len(cards(guard_client.get("/guard").text)) == 1
    with TestClient(make_app(guard_core), base_url=BASE) as restarted:
        login(restarted)
        [card] = cards(restarted.get("/guard").text)
        assert 'data-key="event:2"' in card


def test_closing_with_an_unknown_outcome_is_refused(guard_client, guard_core):
    fever(guard_core)
    csrf = login(guard_client)
    response = post(guard_client, "/guard/alarms/ack", csrf, key="event:1@1", resolution="shrug")
    assert "err=" in response.headers["location"]
    assert len(cards(guard_client.get("/guard").text)) == 1


# --- a full board (keep) --------------------------------------------------------------------


def board_alarm(n: int) -> Alarm:
    return Alarm(key=f"event:{n}", kind="fever", ts=f"2026-03-02T08:{n:02d}:00+00:00", seq=n,
                 household=f"{n}-101", holder="Li", seqs=[n])  # fmt: skip


def test_a_full_board_lets_closed_alarms_go_before_open_ones():
    board = AlarmBoard(keep=3)
    for n in (1, 2, 3):
        board.add(board_alarm(n))
    board.ack("event:3", "guard", "2026-03-02T08:10:00+00:00")
    board.add(board_alarm(4))
    assert [a.key for a in board.open()] == ["event:4", "event:2", "event:1"]


def test_when_every_alarm_on_a_full_board_is_open_none_vanishes_unsaid():
    """A board of open alarms only (nobody closed them): the oldest leaves the board, but a
    card says how many open alarms no longer fit, until a guard closes that card."""
    board = AlarmBoard(keep=3)
    for n in range(1, 6):
        board.add(board_alarm(n))
    shown = board.open()
    assert [a.key for a in shown[:3]] == ["event:5", "event:4", "event:3"]
    [card] = shown[3:]
    assert card.kind == "overflow" and card.dropped == 2
    assert card.ts == board_alarm(2).ts  # the newest of them: older than every card above it
    words = alarm_view(card, "en", ZoneInfo("UTC"), frozenset())
    assert "2 more open alarms" in words["detail"] and words["title"] == "Older open alarms"
    assert "2 条" in alarm_view(card, "zh-CN", ZoneInfo("UTC"), frozenset())["detail"]
    assert board.ack(card.key, "guard", "2026-03-02T09:00:00+00:00") is card
    assert [a.key for a in board.open()] == ["event:5", "event:4", "event:3"]
    board.add(board_alarm(6))  # one more pushed off after the close: a new card counts it
    assert [(a.kind, a.dropped) for a in board.open()[3:]] == [("overflow", 1)]


def test_an_alarm_closed_before_a_restart_does_not_count_as_an_open_one_that_did_not_fit(
    guard_core, clock
):
    """After a restart the board is filled again from the log: an alarm closed (audited)
    after newer ones came is closed, and leaves the full board first, uncounted."""
    for household in ("1-101", "2-202", "3-303"):
        fever(guard_core, household=household)
        clock.advance(60)
    guard_core.store.audit("guard", "alarm_ack", {"keys": ["event:1"], "resolution": "handled"})
    desk = AlarmDesk(guard_core.store, guard_core.clock, keep=2)
    assert [a.key for a in desk.open_alarms([])] == ["event:3", "event:2"]


def test_the_live_page_shows_the_card_of_open_alarms_that_did_not_fit(guard_core):
    app = make_app(guard_core)
    app.state.guard.alarms.board.keep = 2
    for household in ("1-101", "2-202", "3-303", "4-404"):
        fever(guard_core, household=household)
    with TestClient(app, base_url=BASE) as guard_client:
        csrf = login(guard_client)
        shown = cards(guard_client.get("/guard?lang=en").text)
        assert len(shown) == 3 and "2 more open alarms" in shown[2]
        key = re.search(r'name="only" value="([^"]+)"', shown[2]).group(1)
        assert key.endswith("@2")  # the card as drawn: the 2 alarms it counts
        post(guard_client, "/guard/alarms/ack", csrf, only=key, resolution="handled")
        assert len(cards(guard_client.get("/guard").text)) == 2


def test_a_person_denied_all_night_is_one_card_with_its_count_not_every_passage():
    """A forged pass left in front of the reader was denied every few minutes all night, one
    incident: the card's list of passages grew by one each time (in memory for as long as it
    stayed open, and sent whole with every alarm update to every console), a link each."""
    from kiosk.alarms import SEQS_KEPT

    board = AlarmBoard()
    for n in range(1, 301):
        minute = f"{8 + n // 60:02d}:{n % 60:02d}"
        board.add(Alarm(key=f"event:{n}", kind="forged", ts=f"2026-03-02T{minute}:00+00:00",
                        seq=n, pass_id="c0ffee000001", seqs=[n]))  # fmt: skip
    [card] = board.open()
    assert card.seq == 1 and card.seqs[0] == 1 and card.seqs[-1] == 300  # first and latest
    assert len(card.seqs) == SEQS_KEPT
    view = alarm_view(card, "en", ZoneInfo("UTC"), frozenset())
    assert view["times"] == "300 times" and view["seqs"] == card.seqs
    # a bus message about a passage the card no longer lists adds nothing to it
    board.add(Alarm(key="event:150", kind="forged", ts="2026-03-02T12:55:00+00:00", seq=150,
                    pass_id="c0ffee000001", seqs=[150]))  # fmt: skip
    assert board.open()[0].seqs[-1] == 300 and len(board.open()) == 1
    assert board.open()[0].ts == "2026-03-02T13:00:00+00:00"  # the latest's, still
    assert alarm_view(board.open()[0], "en", ZoneInfo("UTC"), frozenset())["times"] == "300 times"


def test_a_referral_card_says_why_the_guard_is_needed_from_the_bus_or_the_log(guard_core):
    """A pass an unset clock read as not valid yet, a copied pass (passback), an observed
    returnee walking out: the kiosk sent the person to the guard, whose card said "Guard
    needed · Guard needed", nothing of what to check, and was gone after a restart. Each
    card says its reason, from the bus or the log alike; an early pass on a set clock
    calls nobody."""
    from zoneinfo import ZoneInfo

    referrals = [
        (("pass_not_yet_valid",), ("clock_not_set",), "Pass not valid yet"),
        (("passback",), (), "Pass already used this way"),
        (("under_observation",), ("direction_unverified",), "Home observation in force"),
        # Expired by a clock ahead of the newest time known to have passed, not by that time.
        (("pass_expired",), ("clock_not_set",), "Pass has expired"),
    ]
    for reasons, flags, _words in referrals:
        add_event(guard_core, decision="deny", reasons=reasons, flags=flags, household="6-101")
        guard_core.clock.advance(15 * 60)  # each its own incident
    add_event(guard_core, decision="deny", reasons=("pass_not_yet_valid",), household="6-101")
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    for seq in (1, 2, 3, 4):  # the bus's, as the kiosk raised them (the 5th raised nothing)
        message = {"type": "alarm", "alarm": "guard_needed", "state": "raised", "seq": seq}
        desk.note_message(message)
    shown = {
        a.seq: alarm_view(a, "en", ZoneInfo("UTC"), frozenset({"household"}))
        for a in desk.open_alarms([])
    }
    assert sorted(shown) == [1, 2, 3, 4]
    for seq, (_reasons, _flags, words) in enumerate(referrals, start=1):
        assert shown[seq]["detail"] == words, shown[seq]
    fresh = AlarmDesk(guard_core.store, guard_core.clock)  # after a restart: from the log
    assert sorted(a.seq for a in fresh.open_alarms([])) == [1, 2, 3, 4]
    assert all(a.detail != "guard_needed" for a in fresh.open_alarms([]))


def test_a_clock_referral_card_says_every_reason_the_two_times_found(guard_core):
    """The two times disagreeing (a clock not synchronised reading ahead of the newest time
    known to have passed): the card said the first reason only ("Pass has expired") where
    the gate also found the outing over the quota; it says each, in words."""
    from zoneinfo import ZoneInfo

    from ui import i18n

    reasons = ("pass_expired", "quota_exceeded")
    add_event(guard_core, decision="deny", reasons=reasons, flags=("clock_not_set",))
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    [card] = desk.open_alarms([])
    view = alarm_view(card, "en", ZoneInfo("UTC"), frozenset())
    assert card.kind == "guard"
    for code in reasons:
        assert i18n.reason_text("en", code) in view["detail"], view["detail"]
    assert "vouch for it there" in view["todo"]  # what the guard does


def test_a_clock_referral_card_of_disputed_opening_hours_says_to_check_the_hours(guard_core):
    """A person the two times disagreed on the opening hours of (closed by one, open by the
    other) got the clock card's words for a pass, a quarantine and the quota alone: nothing
    said the hours were the question. The card's todo names the opening hours too."""
    from zoneinfo import ZoneInfo

    flags = ("clock_not_set", "clock_not_set:outside_hours")
    add_event(guard_core, decision="deny", reasons=("outside_hours",), flags=flags)
    [card] = AlarmDesk(guard_core.store, guard_core.clock).open_alarms([])
    for lang, words in (("en", "opening hours"), ("zh-CN", "开放时间")):
        view = alarm_view(card, lang, ZoneInfo("UTC"), frozenset())
        assert words in view["todo"], view["todo"]


# --- a card drawn before the incident grew (a stale page) -----------------------------------


def breach(guard_core):
    return add_event(
        guard_core,
        decision="deny",
        reasons=("quarantined",),
        household="5-1-302",
        holder="Wang Fang",
        direction="out",
    )


def drawn(page: str) -> list[str]:
    """The alarm cards as the page drew them: what each card's tick and button send (its
    key, ``@`` and what it counted)."""
    return re.findall(r'class="a-pick" name="key" value="([^"]+)"', page)


def test_a_card_drawn_before_more_attempts_does_not_close_them_unseen(guard_core, clock):
    """A quarantined resident tried to go out; the guard's tablet drew the card (once) and
    slept; she tried twice more (a fresh page says 3 times). The stale card's "false alarm"
    closed all three: two attempts nobody saw, on record as a false alarm. The card sends
    what it counted: the close is refused, saying how many more, nothing closed; the card
    drawn again closes."""
    with signed_in(make_app(guard_core)) as tablet:
        breach(guard_core)
        [stale] = drawn(tablet.get("/guard?lang=en").text)
        assert stale == "event:1@1"
        for _ in range(2):
            clock.advance(120)
            breach(guard_core)
        for field in ("only", "key"):  # its own button, or ticked and closed with others
            closing = {"csrf": tablet.csrf, field: stale, "resolution": "false_alarm"}
            said = refused_with(tablet, send(tablet, "/guard/alarms/ack", closing))
            assert said is not None and "Quarantine breach: 2 more attempts" in said, said
        assert not [a for a in guard_core.store.audits() if a["action"] == "alarm_ack"]
        page = tablet.get("/guard?lang=zh-CN").text
        [card] = cards(page)
        assert "共 3 次" in card
        closing = {"csrf": tablet.csrf, "only": stale}
        said = refused_with(tablet, send(tablet, "/guard/alarms/ack", closing))
        assert said is not None and "又有 2 次" in said, said
        [fresh] = drawn(page)
        assert fresh == "event:1@3"
        closing = {"csrf": tablet.csrf, "only": fresh, "resolution": "handled"}
        assert refused_with(tablet, send(tablet, "/guard/alarms/ack", closing)) is None
        [ack] = [a for a in guard_core.store.audits() if a["action"] == "alarm_ack"]
        assert ack["detail"]["keys"] == ["event:1"] and cards(tablet.get("/guard").text) == []


def test_a_close_that_does_not_say_what_its_card_counted_is_refused(guard_client, guard_core):
    """A page drawn before cards said their count (or a value that is no count) cannot tell
    whether the card grew since: refused, nothing closed, the guard looks again."""
    breach(guard_core)
    csrf = login(guard_client)
    for value in ("event:1", "event:1@", "event:1@three", "event:1@-1", "event:1@" + "9" * 40):
        closing = {"csrf": csrf, "only": value}
        said = refused_with(guard_client, send(guard_client, "/guard/alarms/ack", closing))
        assert said is not None and "页面已过时" in said, (value, said)
    assert len(cards(guard_client.get("/guard").text)) == 1


def test_the_desk_refuses_a_close_of_a_card_grown_since_it_was_drawn(guard_core, clock):
    """The one rule, in the desk: a card's ``count`` as drawn (``seen``) against its count
    now, checked as the close takes the card; refused, nothing is written (``record`` not
    called) and the card stays open for the next close."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    breach(guard_core)
    [card] = desk.open_alarms([])
    assert card.count == 1
    clock.advance(60)
    breach(guard_core)
    written: list[list[str]] = []

    def record(closing: list[Alarm]) -> None:
        written.append([a.key for a in closing])

    with pytest.raises(AlarmGrown) as grown:
        desk.close(["event:1"], "alice", [], "false_alarm", seen={"event:1": 1}, record=record)
    assert (grown.value.alarm.key, grown.value.more) == ("event:1", 1) and written == []
    assert [a.count for a in desk.open_alarms([])] == [2]
    closed = desk.close(["event:1"], "alice", [], seen={"event:1": 2}, record=record)
    assert [a.key for a in closed] == ["event:1"] and written == [["event:1"]]


def test_the_overflow_card_drawn_before_more_alarms_left_the_board_does_not_close_them():
    """The card counting open alarms that no longer fit counts more of them since the page
    drew it: closing it from that page would close alarms nobody saw."""
    board = AlarmBoard(keep=2)
    for n in range(1, 5):
        board.add(board_alarm(n))
    [overflow] = board.open()[2:]
    assert overflow.count == 2  # what its card says ("2 more open alarms")
    board.add(board_alarm(5))
    assert overflow.count == 3


def test_the_live_stream_draws_each_card_with_its_count(guard_core, clock):
    """A page kept current by its stream: the cards it draws again carry the count the form
    sends back (``count``), as the page's own cards do."""
    with signed_in(make_app(guard_core)) as tablet:
        breach(guard_core)
        clock.advance(60)
        breach(guard_core)
        g = tablet.app.state.guard
        session = g.auth.sessions.read(tablet.cookies.get(COOKIE))
        line = asyncio.run(FeedStream(g, session, "en", 0).alarms())
        [card] = json.loads(line.split("data: ", 1)[1])
        assert (card["key"], card["count"]) == ("event:1", 2)


def fault(state: str, stamp: int, alarm: str = "sensor_fault") -> dict[str, object]:
    """The engine's bus message about a device (no passage), stamped by its clock."""
    return {"type": "alarm", "alarm": alarm, "state": state, "mono_ns": stamp}


def test_a_device_failing_again_while_its_card_is_open_raises_the_cards_count(guard_core):
    """The thermometer failed, came back and failed twice more before anyone closed its card:
    the card said nothing of the other two (a bus alarm of no passage joining an open card
    was not counted), and a close from a page that drew it once closed all three. Each fault
    after the last cleared is one more time; the same fault said again (a lock retried every
    second, the second console's stream hearing the same message) is not."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    assert desk.note_message(fault("raised", 1))
    [card] = desk.open_alarms([])
    assert (card.key, card.count) == ("device:thermometer", 1)
    for stamp in (2, 4):
        assert not desk.note_message(fault("cleared", stamp))
        assert desk.note_message(fault("raised", stamp + 1))
    for stamp in (1, 2, 3, 4, 5):  # another console's stream hears the same messages
        assert not desk.note_message(fault("cleared" if stamp % 2 == 0 else "raised", stamp))
    [card] = desk.open_alarms([])
    assert card.count == 3
    view = alarm_view(card, "en", ZoneInfo("UTC"), frozenset())
    assert (view["times"], view["count"]) == ("3 times", 3)
    with pytest.raises(AlarmGrown) as grown:
        desk.close([card.key], "alice", [], seen={card.key: 1})
    assert grown.value.more == 2
    for stamp in (10, 11, 12):  # the relay refusing the lock, retried each second
        desk.note_message(fault("raised", stamp, "gate_not_locked"))
    assert [a.count for a in desk.open_alarms([]) if a.key == "device:gate"] == [1]


def test_a_device_failing_again_after_its_card_was_closed_is_a_new_card(guard_core):
    """Closed, then the fault came back (before any page read the board again): a new card,
    counting from one, never the closed one hiding it."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    desk.note_message(fault("raised", 1))
    desk.note_message(fault("cleared", 2))
    desk.note_message(fault("raised", 3))
    assert [a.key for a in desk.close(["device:thermometer"], "alice", [])]
    desk.note_message(fault("cleared", 4))
    assert desk.note_message(fault("raised", 5))
    [card] = desk.open_alarms([])
    assert (card.key, card.count, card.acked_by) == ("device:thermometer", 1, None)


def test_the_live_page_draws_a_device_cards_count_and_sends_it_back(guard_core):
    """The live page says how many times the device failed, and its tick and button send
    that count: a close from the page drawn before the third fault is refused."""
    with signed_in(make_app(guard_core)) as tablet:
        desk = tablet.app.state.guard.alarms
        for stamp, state in enumerate(("raised", "cleared", "raised"), 1):
            desk.note_message(fault(state, stamp))
        page = tablet.get("/guard?lang=en").text
        [card] = cards(page)
        assert "2 times" in card
        assert drawn(page) == ["device:thermometer@2"]
        desk.note_message(fault("cleared", 4))
        desk.note_message(fault("raised", 5))
        closing = {"csrf": tablet.csrf, "only": "device:thermometer@2"}
        said = refused_with(tablet, send(tablet, "/guard/alarms/ack", closing))
        assert said is not None and "Device fault: it happened once more since" in said, said
        assert drawn(tablet.get("/guard").text) == ["device:thermometer@3"]


def stalled_close(desk: AlarmDesk, key: str, first_written: bool = True):
    """Alice's close of ``key`` in a thread of its own, its row stalled on the card until the
    returned event is set (then written, or refused by the storage): (the close's future,
    the event, the pool)."""
    writing, written = threading.Event(), threading.Event()

    def row(_closing) -> None:
        writing.set()
        assert written.wait(2 * WAIT_S)  # the SD card's fsync, stalled
        if not first_written:
            raise StoreFault("store_fault", "commit not confirmed within 3000 ms")

    pool = ThreadPoolExecutor(1)
    first = pool.submit(desk.close, [key], "alice", [], "sent_home", record=row)
    assert writing.wait(WAIT_S)
    return first, written, pool


@pytest.mark.parametrize("first_written", [True, False], ids=["written", "refused"])
def test_a_second_close_while_the_first_is_written_is_told_at_once_who_is_closing(
    guard_core, first_written
):
    """Two guards close one card at the very same moment, the first's row stalled on the
    card: the second waited for it with no time limit (a worker of the loop's executor held
    as long as the SD card stalled). It is told at once who is closing it, nothing closed;
    once the first's row is written, who closed it and as what; refused by the storage
    (nothing closed), the card is still open and the second guard closes it."""
    fever(guard_core)
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    desk.open_alarms([])
    first, written, pool = stalled_close(desk, "event:1", first_written)
    with pool:
        try:
            with pytest.raises(AlarmClosing) as closing:
                desk.close(["event:1"], "bob", [], record=lambda _closing: None)
            assert closing.value.who == "alice"
        finally:
            written.set()
        if first_written:
            assert [a.key for a in first.result(WAIT_S)] == ["event:1"]
            assert desk.closed_by("event:1") == ("alice", "sent_home")
        else:
            with pytest.raises(StoreFault):
                first.result(WAIT_S)
            closed = desk.close(["event:1"], "bob", [], record=lambda _closing: None)
            assert [(a.key, a.acked_by) for a in closed] == [("event:1", "bob")]


def test_presses_during_a_stalled_close_leave_the_desks_ear_a_worker(guard_core):
    """The first close's row stalled on the card, the guards press close again and again
    (two tablets, the button not answering): each press waited on the desk in a worker of
    the loop's executor (8 on a Pi), and with them all taken the desk's ear could note no
    new alarm, nor a guard sign in, until the stall ended. Each press is answered at once
    ("alice is closing it"), and the ear hears meanwhile."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    desk.note_message(fault("raised", 1, "store_backlog_full"))
    first, written, pool = stalled_close(desk, "bus:store_backlog_full")

    async def scene() -> list[object]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))
        press = partial(desk.close, ["bus:store_backlog_full"], "bob", [])
        presses = [asyncio.to_thread(press, record=lambda _c: None) for _ in range(7)]
        said = await asyncio.wait_for(asyncio.gather(*presses, return_exceptions=True), WAIT_S)
        heard = fault("raised", 2, "sensor_fault")
        return [*said, await asyncio.wait_for(desk._heard(heard), WAIT_S)]  # noqa: SLF001

    with pool:
        try:
            *said, heard = asyncio.run(scene())
        finally:
            written.set()
        assert first.result(WAIT_S)
    assert [type(s).__name__ for s in said] == ["AlarmClosing"] * 7
    assert heard is True


def test_the_console_says_who_is_closing_a_card_whose_close_is_being_written(guard_core):
    """A second tablet's close while the first's row is stalled: "alice is closing this
    alarm now", at once, nothing written by it."""
    with signed_in(make_app(guard_core)) as tablet:
        desk = tablet.app.state.guard.alarms
        desk.note_message(fault("raised", 1))
        first, written, pool = stalled_close(desk, "device:thermometer")
        with pool:
            try:
                closing = {"csrf": tablet.csrf, "only": "device:thermometer@1"}
                said = refused_with(tablet, send(tablet, "/guard/alarms/ack", closing))
            finally:
                written.set()
            assert first.result(WAIT_S)
        assert said is not None and said.startswith("alice 正在处理该警报"), said
        acks = [a for a in guard_core.store.audits(0, 1000) if a["action"] == "alarm_ack"]
        assert acks == []  # nothing written (alice's row is the test's stand-in, no audit)


def test_a_bus_alarm_of_no_passage_raised_again_is_one_card_with_its_count(guard_core):
    """The held records over the backlog's bound (one dropped at each raise; beside it an
    alarm name the desk has no kind for), raised again and again: a card each time, where a
    device's repeats fold into one card with a count. One card per alarm while it is open,
    counting each raise (the same message heard again is not one more); closed, the next
    raise is a new card."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    for stamp in (1, 2, 3):
        assert desk.note_message(fault("raised", stamp, "store_backlog_full") | {"dropped": stamp})
    assert not desk.note_message(fault("raised", 3, "store_backlog_full"))  # another stream's copy
    assert desk.note_message(fault("raised", 4, "tamper"))
    assert {a.key: a.count for a in desk.open_alarms([])} == {
        "bus:store_backlog_full": 3,
        "bus:tamper": 1,
    }
    [full] = [a for a in desk.open_alarms([]) if a.detail == "store_backlog_full"]
    assert alarm_view(full, "en", ZoneInfo("UTC"), frozenset())["times"] == "3 times"
    assert [a.key for a in desk.close([full.key], "alice", [], seen={full.key: 3})]
    assert desk.note_message(fault("raised", 5, "store_backlog_full"))
    assert [
        (a.count, a.acked_by) for a in desk.open_alarms([]) if a.detail == "store_backlog_full"
    ] == [(1, None)]


def test_two_peoples_fevers_the_log_did_not_take_are_two_cards(clock, tmp_path):
    """Two residents of two households denied for fever while the card refuses writes: the
    engine's alarms name their passages but no seq (nothing committed). Each was keyed as an
    alarm of no passage (``bus:fever``): one card "2 times", naming nobody, one close closing
    both. A card per passage now, each counted once; the alarm of no passage at all
    (``store_backlog_full``) is still one card."""
    from test_engine import Rig

    rig = Rig(clock, tmp_path)
    try:
        rig.store.fail()
        for household, holder in (("A-101", "Li Wei"), ("B-202", "Zhang San")):
            rig.show(rig.pass_text(household=household, holder=holder))
            rig.emulator.person_arrives(38.6)
            rig.run(6)
            rig.emulator.person_leaves()
            rig.run(6)
        fevers = [m for m in rig.messages if m["type"] == "alarm" and m["alarm"] == "fever"]
        passages = [m["passage"] for m in fevers]
        assert [m["seq"] for m in fevers] == [None, None] and len(set(passages)) == 2
        desk = AlarmDesk(rig.log, rig.clock)
        for message in fevers + fevers:  # every console's stream hands the desk each one
            desk.note_message(message)
        desk.note_message(fault("raised", 1, "store_backlog_full"))
        desk.note_message(fault("raised", 2, "store_backlog_full"))
        assert sorted((a.key, a.kind, a.count) for a in desk.open_alarms([])) == [
            ("bus:fever:" + str(passages[0]), "fever", 1),
            ("bus:fever:" + str(passages[1]), "fever", 1),
            ("bus:store_backlog_full", "other", 2),
        ]
        first = f"bus:fever:{passages[0]}"
        closed = desk.close([first], "alice", [], seen={first: 1})
        assert [a.key for a in closed] == [first]  # the other person's card stays open
        assert [a.key for a in desk.open_alarms([]) if a.kind == "fever"] == [
            f"bus:fever:{passages[1]}"
        ]
    finally:
        rig.close()


def test_a_card_raised_every_second_closes_with_the_raises_since_its_page_drew_it(guard_core):
    """The backlog dropping a held record each second (``store_backlog_full``): every raise
    counted on its one card, and a close from the page drawn one raise before refused
    ("Alarm: 1 more attempts", of records dropped): a card no guard could close. A repeat is
    the same condition, no one new to see: the close goes through, saying so, and the next
    raise is a new card."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    for stamp in range(1, 4):
        desk.note_message(fault("raised", 2 * stamp, "store_backlog_full"))
        [card] = desk.open_alarms([])
        drawn_count = card.count  # the page redraws on ALARMS_HEARD
        desk.note_message(fault("raised", 2 * stamp + 1, "store_backlog_full"))  # the click's way
        closed = desk.close([card.key], "alice", [], seen={card.key: drawn_count})
        assert [(a.key, a.count) for a in closed] == [("bus:store_backlog_full", 2)]
        assert desk.open_alarms([]) == []
    with signed_in(make_app(guard_core)) as tablet:
        desk = tablet.app.state.guard.alarms
        desk.note_message(fault("raised", 10, "store_backlog_full"))
        assert drawn(tablet.get("/guard").text) == ["bus:store_backlog_full@1"]
        desk.note_message(fault("raised", 11, "store_backlog_full"))
        closing = {"csrf": tablet.csrf, "only": "bus:store_backlog_full@1"}
        sent = send(tablet, "/guard/alarms/ack", closing)
        assert sent.status_code == 303 and "msg=ok.alarm_closed_since" in sent.headers["location"]
        page = tablet.get(sent.headers["location"] + "&lang=en").text
        assert "it happened again after your page showed it" in page
        assert drawn(page) == []
