"""The guard's alarm desk while the card stalls or refuses writes (session 31, d27335b1): a
close whose row is stalled holds none of the loop's workers and is answered within a
deadline, in words; a close taking the raises come since its page drew it says how many; a
fever the log did not take is one card, naming the person, whose row taken later joins it."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from zoneinfo import ZoneInfo

import pytest
from guard_support import WAIT_S, add_event, make_app, refused_with, send, signed_in
from test_engine import Rig

from kiosk.alarms import AlarmDesk
from kiosk.deadline import BoundedWork, Busy
from ui.guard.display import alarm_view


def raised(stamp: int, alarm: str = "sensor_fault") -> dict[str, object]:
    """The engine's bus message about a device (no passage), stamped by its clock."""
    return {"type": "alarm", "alarm": alarm, "state": "raised", "mono_ns": stamp}


class StalledWriter:
    """The real event log's one writer held by a write stalled on the card (a slow sector,
    a full disk retried) until ``release``; every write after it waits behind it."""

    def __init__(self, store) -> None:
        self.entered, self.released = threading.Event(), threading.Event()
        self.pool = ThreadPoolExecutor(1)
        self.stall = self.pool.submit(store.submit, self._held)
        assert self.entered.wait(WAIT_S)

    def _held(self, _db) -> None:
        self.entered.set()
        assert self.released.wait(WAIT_S)

    def release(self) -> None:
        self.released.set()
        self.stall.result(WAIT_S)
        self.pool.shutdown()


def console_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "console-store"]


def alarm_acks(core) -> list[dict]:
    return [a for a in core.store.audits(0, 1000) if a["action"].startswith("alarm_ack")]


def test_a_close_stalled_on_the_card_is_answered_within_the_deadline_and_kept_once(guard_core):
    """The card stalls the row of alice's close: her tablet waited for it with no time limit,
    in a worker of the loop's default executor. She is told within the console's deadline
    that the record is still being written; a second press meanwhile is told she is closing
    it, also at once; once the card answers, the card is closed by her with one row."""
    with signed_in(make_app(guard_core)) as tablet:
        g = tablet.app.state.guard
        g.console = BoundedWork("console-store", 4, 0.05)
        add_event(guard_core, decision="deny", reasons=("fever",), household="3-201")
        tablet.get("/guard")  # the desk read the log
        stalled = StalledWriter(guard_core.store)
        closing = {"csrf": tablet.csrf, "only": "event:1@1"}
        with ThreadPoolExecutor(1) as presses:
            try:
                first = presses.submit(send, tablet, "/guard/alarms/ack", closing).result(WAIT_S)
                again = presses.submit(send, tablet, "/guard/alarms/ack", closing).result(WAIT_S)
                open_meanwhile = [a.key for a in g.alarms.open_alarms([])]
            finally:
                stalled.release()
        for thread in console_threads():
            thread.join(WAIT_S)
        said = refused_with(tablet, first)  # the console's language: Chinese
        assert said is not None and said.startswith("存储响应过慢：关闭该警报的记录仍在写入"), said
        assert (refused_with(tablet, again) or "").startswith("alice 正在处理该警报")
        assert open_meanwhile == ["event:1"]  # not shown closed before its row
        assert g.alarms.closed_by("event:1") == ("alice", "handled")
        rows = alarm_acks(guard_core)
        assert [(r["action"], r["detail"].get("keys")) for r in rows if "keys" in r["detail"]] == [
            ("alarm_ack", ["event:1"])
        ]


def test_a_close_with_every_console_worker_held_is_refused_at_once(guard_core):
    """The console's one worker held by a close stalled on the card: a close of another
    card is told at once that nothing was done (the storage is slow), never queued behind
    the stall; once the card answers, the first is closed and the other still open."""
    with signed_in(make_app(guard_core)) as tablet:
        g = tablet.app.state.guard
        g.console = BoundedWork("console-store", 1, 0.05)
        for household in ("3-201", "5-102"):
            add_event(guard_core, decision="deny", reasons=("fever",), household=household)
        tablet.get("/guard")
        stalled = StalledWriter(guard_core.store)
        with ThreadPoolExecutor(1) as presses:
            try:
                sent = [
                    presses.submit(send, tablet, "/guard/alarms/ack", closing).result(WAIT_S)
                    for closing in (
                        {"csrf": tablet.csrf, "only": f"{key}@1"} for key in ("event:1", "event:2")
                    )
                ]
            finally:
                stalled.release()
        for thread in console_threads():
            thread.join(WAIT_S)
        said = refused_with(tablet, sent[1])
        assert said is not None and said.startswith("存储响应过慢：之前的操作记录仍在写入"), said
        assert [a.key for a in g.alarms.open_alarms([])] == ["event:2"]


def test_stalled_closes_of_many_cards_leave_the_loops_workers_free(guard_core):
    """Closes of different cards while the card stalls the first one's row: each held a
    worker of the loop's default executor until the stall ended, and with the guards' taps
    they were all taken (the desk's ear, every page, the sign-in share them). The console's
    own workers take them, each answered at its deadline (the record still being written),
    one past them refused at once; the loop's workers stay free: the ear hears meanwhile."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    for stamp, alarm in enumerate(("sensor_fault", "reader_fault", "gate_fault"), start=1):
        desk.note_message(raised(stamp, alarm))
    keys = [a.key for a in desk.open_alarms([])]
    assert len(keys) == 3
    work = BoundedWork("console-store", 2, 0.05)

    def row(closing) -> None:  # the close's own row, on the real log
        guard_core.store.audit("alice", "alarm_ack", {"keys": [a.key for a in closing]})

    async def scene() -> list[object]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        closes = [work.run(partial(desk.close, [k], "alice", [], record=row)) for k in keys]
        said = await asyncio.gather(*closes, return_exceptions=True)
        heard = await asyncio.wait_for(desk._heard(raised(9, "store_fault")), WAIT_S)  # noqa: SLF001
        return [*said, heard]

    stalled = StalledWriter(guard_core.store)
    try:
        *said, heard = asyncio.run(asyncio.wait_for(scene(), WAIT_S))
    finally:
        stalled.release()
    for thread in console_threads():
        thread.join(WAIT_S)
    assert sorted(type(s).__name__ for s in said) == ["Abandoned", "Abandoned", "Busy"]
    assert heard is True
    closed = sorted(a.key for a in desk.board.alarms.values() if a.acked_by)
    [refused] = [k for k, s in zip(keys, said, strict=True) if isinstance(s, Busy)]
    assert closed == sorted(k for k in keys if k != refused)  # each written once, then closed
    rows = [a["detail"]["keys"] for a in alarm_acks(guard_core)]
    assert sorted(k for ks in rows for k in ks) == closed


def test_a_close_taking_raises_since_its_page_says_how_many(guard_core):
    """A close of the backlog's card raised three times more since the page drew it said
    "it happened again", with no count: it says how many times now."""
    with signed_in(make_app(guard_core)) as tablet:
        desk = tablet.app.state.guard.alarms
        desk.note_message(raised(10, "store_backlog_full"))
        tablet.get("/guard")
        for stamp in (11, 12, 13):
            desk.note_message(raised(stamp, "store_backlog_full"))
        closing = {"csrf": tablet.csrf, "only": "bus:store_backlog_full@1"}
        sent = send(tablet, "/guard/alarms/ack", closing)
        assert sent.status_code == 303 and "&n=3&sig=" in sent.headers["location"]
        page = tablet.get(sent.headers["location"] + "&lang=en").text
        assert "it happened again after your page showed it, 3 more times" in page
        edited = tablet.get("/guard?msg=ok.alarm_closed_since&n=x%B2&lang=en").text
        assert "it happened again" not in edited  # unsigned: no banner (was: one, no count)


def fever_unlogged(rig: Rig) -> dict:
    """Li Wei of A-101 denied for a fever while the card refuses writes: the engine's alarm
    message (no seq), nothing in the log."""
    rig.store.fail()
    rig.show(rig.pass_text(household="A-101", holder="Li Wei"))
    rig.emulator.person_arrives(38.6)
    rig.run(6)
    rig.emulator.person_leaves()
    [message] = [m for m in rig.messages if m["type"] == "alarm" and m["alarm"] == "fever"]
    assert message["seq"] is None and rig.events() == []
    return message


def backlog_written(rig: Rig) -> list[dict]:
    """The rows the engine's backlog wrote once the card took writes again."""
    rig.store.recover()
    rig.run(6)
    return rig.events()


@pytest.fixture
def rig(clock, tmp_path):
    rig = Rig(clock, tmp_path)
    yield rig
    rig.close()


def test_a_fever_the_log_did_not_take_is_one_card_naming_the_person(rig):
    """A fever while the card refused writes raised a card of its passage naming nobody;
    when the held row reached the log, a second card (``event:SEQ``) opened for the same
    fever. The message names the person (masked on the card as the console masks names), and
    the row joins the card: one fever, one card, counted once."""
    message = fever_unlogged(rig)
    desk = AlarmDesk(rig.log, rig.clock)
    desk.note_message(message)
    [card] = desk.open_alarms([])
    assert (card.holder, card.household, card.temp_c, card.count) == (
        "Li Wei", "A-101", message["temp_c"], 1
    )  # fmt: skip
    masked = alarm_view(card, "en", ZoneInfo("UTC"), frozenset())
    assert "Li Wei" not in str(masked) and "L" in masked["who"]
    [row] = backlog_written(rig)
    assert row["decision"] == "deny" and "fever" in row["reasons"]
    assert [(a.key, a.seqs, a.count) for a in desk.open_alarms([])] == [(card.key, [row["seq"]], 1)]


def test_a_fever_card_closed_before_its_row_reached_the_log_stays_closed(rig):
    """The guard closed the fever's card while its row waited in the backlog: the row then
    opened a new card for the fever she had handled. It closes into the closed card."""
    desk = AlarmDesk(rig.log, rig.clock)
    desk.note_message(fever_unlogged(rig))
    [card] = desk.open_alarms([])
    assert [a.key for a in desk.close([card.key], "alice", [], "sent_home")] == [card.key]
    [row] = backlog_written(rig)
    assert desk.open_alarms([]) == []
    assert desk.board.alarms[card.key].seqs == [row["seq"]]


@pytest.mark.parametrize("order", ["message_first", "row_first"])
def test_a_fever_heard_after_its_row_was_read_is_not_a_second_card(rig, order):
    """The desk reads the log at any page's request: the held row may be read before the
    desk's ear notes the bus message about it. Either way, one card."""
    message = fever_unlogged(rig)
    desk = AlarmDesk(rig.log, rig.clock)
    if order == "message_first":
        desk.note_message(message)
    [row] = backlog_written(rig)
    desk.open_alarms([])
    desk.note_message(message)
    assert [(a.seqs, a.count) for a in desk.open_alarms([])] == [([row["seq"]], 1)]
