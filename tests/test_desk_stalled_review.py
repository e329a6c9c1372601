"""The alarm desk under a stalled store, what a review of d27335b1 found (session 31,
e5f7744a): a close is never held by the held rows' flush; the refusals said at once are;
a close answered late redraws the tablets, or, refused late, says so; a fever closed before
a restart stays closed; a name heard from the bus alone goes with a forget; two fevers
count two; a console slot whose thread never started is given back."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutTimeout

import pytest
from guard_support import WAIT_S, add_event, make_app, refused_with, send, signed_in
from test_desk_stalled_store import (  # noqa: F401
    StalledWriter,
    backlog_written,
    console_threads,
    fever_unlogged,
    rig,
)

from kiosk.alarms import ACK_ACTION, AlarmDesk, closed_detail
from kiosk.deadline import BoundedWork, Busy
from kiosk.store import StoreFault
from ui.auth import REFUSED_COUNTED, RefusedRows
from ui.guard.deps import flush_held
from ui.guard.live import ALARMS_CLOSED

#: A console deadline as the daemon's (``console_work``: a store deadline and a second).
REAL_DEADLINE_S = 1.5


def spied(core) -> list[dict]:
    """The bus messages published on ``core``'s bus from now on."""
    published: list[dict] = []
    real = core.bus.publish

    def spy(message: dict) -> None:
        published.append(message)
        real(message)

    core.bus.publish = spy
    return published


def test_a_close_with_a_row_held_in_memory_is_answered_within_the_deadline(guard_core):
    """A refusal's row the storage refused a moment ago waits in memory; the card then
    stalls writes. Alice's close waited for the whole stall: the held row's flush ran first,
    with no deadline. It is answered at the console's deadline ("still being written"), and
    once the card answers the held row is on record before her close's."""
    with signed_in(make_app(guard_core)) as tablet:
        g = tablet.app.state.guard
        g.console = BoundedWork("console-store", 4, 0.05)
        add_event(guard_core, decision="deny", reasons=("fever",), household="3-201")
        tablet.get("/guard")
        g.held.hold("bob", "sign_in_failed", {}, guard_core.clock.now(), essential=False)
        stalled = StalledWriter(guard_core.store)
        closing = {"csrf": tablet.csrf, "only": "event:1@1"}
        with ThreadPoolExecutor(1) as presses:
            first = presses.submit(send, tablet, "/guard/alarms/ack", closing)
            try:
                answer = first.result(WAIT_S / 2)  # the stall lasts until released
            except FutTimeout:
                answer = None
            finally:
                stalled.release()
            first.result(WAIT_S)
        for thread in console_threads():
            thread.join(WAIT_S)
        assert answer is not None, "the close waited for the stall"
        assert (refused_with(tablet, answer) or "").startswith("存储响应过慢：关闭该警报的记录")
        actions = [a["action"] for a in guard_core.store.audits(0, 1000)]
        assert actions.index("sign_in_failed") < actions.index(ACK_ACTION)
        assert g.alarms.closed_by("event:1") == ("alice", "handled") and len(g.held) == 0


def test_a_minute_of_refused_sign_ins_never_holds_a_page_for_the_stall(guard_core, clock):
    """The count of a minute's refused sign-ins (anyone on the LAN causes them) written
    before a console action or a live page's redraw, on a card stalling writes: waited the
    console's deadline, then the page goes on; a second flush meanwhile starts no write of
    its own. Once the card answers, the count is on record once."""
    with signed_in(make_app(guard_core)) as tablet:
        g = tablet.app.state.guard
        g.console = BoundedWork("console-store", 4, 0.05)
        g.auth.refused_rows = RefusedRows(clock, per_minute=1)
        assert [g.auth.refused_rows.refused(f"10.8.0.{i}") for i in range(3)] == [True] + [
            False
        ] * 2
        clock.advance(61)
        stalled = StalledWriter(guard_core.store)
        try:
            said = asyncio.run(asyncio.wait_for(flush_held(g, bounded=True), WAIT_S / 2))
            again = asyncio.run(asyncio.wait_for(flush_held(g, bounded=True), WAIT_S / 2))
        finally:
            stalled.release()
        for thread in [t for t in threading.enumerate() if t.name == "console-rows"]:
            thread.join(WAIT_S)
        assert said is None and again is None
        counted = [a for a in guard_core.store.audits(0, 1000) if a["action"] == REFUSED_COUNTED]
        assert [c["detail"]["refused"] for c in counted] == [2]


def test_refusals_said_at_once_do_not_wait_for_their_row_behind_a_stall(guard_core):
    """With the console's deadline as the daemon's (a second and more), a close refused
    because every console worker is held took that whole deadline: the refusal waited for
    its own row, queued behind the stall. It is answered at once; its row is written once
    the card answers."""
    with signed_in(make_app(guard_core)) as tablet:
        g = tablet.app.state.guard
        g.console = BoundedWork("console-store", 1, REAL_DEADLINE_S)
        for household in ("3-201", "5-102"):
            add_event(guard_core, decision="deny", reasons=("fever",), household=household)
        tablet.get("/guard")
        stalled = StalledWriter(guard_core.store)
        with ThreadPoolExecutor(1) as presses:
            try:
                presses.submit(
                    send, tablet, "/guard/alarms/ack", {"csrf": tablet.csrf, "only": "event:1@1"}
                ).result(WAIT_S)
                began = time.monotonic()
                refused = presses.submit(
                    send, tablet, "/guard/alarms/ack", {"csrf": tablet.csrf, "only": "event:2@1"}
                ).result(WAIT_S)
                took = time.monotonic() - began
            finally:
                stalled.release()
        for thread in console_threads():
            thread.join(WAIT_S)
        assert (refused_with(tablet, refused) or "").startswith("存储响应过慢：之前的操作记录")
        assert took < REAL_DEADLINE_S / 2, took
        problems = [
            a["detail"].get("problem")
            for a in guard_core.store.audits(0, 1000)
            if a["action"] == f"{ACK_ACTION}_failed"
        ]
        assert problems == ["err.console_busy"]


def test_a_close_written_after_its_answer_redraws_every_tablet(guard_core):
    """A close answered "still being written" that completes once the card answers told no
    tablet: ``alarms_closed`` was published only for a close in time. It is published when
    the close ends."""
    published = spied(guard_core)
    with signed_in(make_app(guard_core)) as tablet:
        g = tablet.app.state.guard
        g.console = BoundedWork("console-store", 4, 0.05)
        add_event(guard_core, decision="deny", reasons=("fever",), household="3-201")
        tablet.get("/guard")
        stalled = StalledWriter(guard_core.store)
        try:
            answer = send(tablet, "/guard/alarms/ack", {"csrf": tablet.csrf, "only": "event:1@1"})
            before = len(published)
        finally:
            stalled.release()
        for thread in console_threads():
            thread.join(WAIT_S)
        tablet.get("/guard")  # a turn of the app's loop: the close's end is settled there
        assert (refused_with(tablet, answer) or "").startswith("存储响应过慢：关闭该警报的记录")
        closed = [m for m in published[before:] if m["type"] == ALARMS_CLOSED]
        assert closed == [{"type": ALARMS_CLOSED, "keys": ["event:1"]}]


def test_a_close_the_storage_refuses_after_its_answer_is_said(guard_core, caplog):
    """A close answered "still being written", then refused by the card (a full disk after
    the stall): the card stays open, and nothing said so. The journal says it, the attempt's
    row waits in memory, and every tablet draws its alarms again."""
    published = spied(guard_core)
    with signed_in(make_app(guard_core)) as tablet:
        g = tablet.app.state.guard
        g.console = BoundedWork("console-store", 4, 0.05)
        add_event(guard_core, decision="deny", reasons=("fever",), household="3-201")
        tablet.get("/guard")
        release = threading.Event()
        real = guard_core.store.submit_audited

        def stalled_then_full(fn, actor, action, detail, **kw):
            if action == ACK_ACTION:
                assert release.wait(WAIT_S)
                raise StoreFault("store_fault", "SQLITE_FULL")
            return real(fn, actor, action, detail, **kw)

        guard_core.store.submit_audited = stalled_then_full
        try:
            answer = send(tablet, "/guard/alarms/ack", {"csrf": tablet.csrf, "only": "event:1@1"})
            before = len(published)
        finally:
            release.set()
        for thread in console_threads():
            thread.join(WAIT_S)
        guard_core.store.submit_audited = real
        with caplog.at_level(logging.WARNING):
            tablet.get("/guard")  # a turn of the app's loop: the close's end is settled there
        assert (refused_with(tablet, answer) or "").startswith("存储响应过慢：关闭该警报的记录")
        assert "its late record refused, alarms left open (SQLITE_FULL)" in caplog.text
        assert [a.key for a in g.alarms.open_alarms([])] == ["event:1"]
        assert [m["type"] for m in published[before:]].count(ALARMS_CLOSED) == 1
        assert len(g.held) == 1
        asyncio.run(flush_held(g))  # the storage takes writes again
        failed = [
            a for a in guard_core.store.audits(0, 1000) if a["action"] == f"{ACK_ACTION}_failed"
        ]
        assert [(a["actor"], a["detail"]["keys"], a["detail"]["problem"]) for a in failed] == [
            ("alice", ["event:1"], "store_fault")
        ]


def ack_row(rig, who: str = "alice"):  # noqa: F811
    """The close's row as the console's close writes it (``closed_detail``)."""

    def record(closing) -> None:
        detail = {**closed_detail(closing), "resolution": "sent_home", "outcome": "ok"}
        rig.log.audit(who, ACK_ACTION, detail)

    return record


@pytest.mark.parametrize("order", ["closed_then_row", "row_then_closed"])
def test_a_fever_closed_before_a_restart_stays_closed(rig, order):  # noqa: F811
    """A fever the log did not take, closed by alice, its row written by the backlog before
    or after her close: after a restart the fever was open again, naming the person (the
    close's row named only the card of the bus message). Its row names the passages."""
    desk = AlarmDesk(rig.log, rig.clock)
    desk.note_message(fever_unlogged(rig))
    [card] = desk.open_alarms([])
    if order == "row_then_closed":
        backlog_written(rig)
        desk.open_alarms([])
    desk.close([card.key], "alice", [], "sent_home", record=ack_row(rig))
    if order == "closed_then_row":
        backlog_written(rig)
    assert desk.open_alarms([]) == []
    rig.clock.advance(60)
    restarted = AlarmDesk(rig.log, rig.clock)  # the daemon restarted
    assert restarted.open_alarms([]) == []
    assert restarted.closed_by("event:1") == ("alice", "sent_home")


def test_a_name_heard_from_the_bus_alone_goes_with_a_forget(rig):  # noqa: F811
    """A fever whose row never reached the log: its card named the person for the daemon's
    life, a forget of them notwithstanding. A forget empties it (the card stays)."""
    from kiosk.people import Person, forget

    desk = AlarmDesk(rig.log, rig.clock)
    message = fever_unlogged(rig)
    desk.note_message(message)
    [card] = desk.open_alarms([])
    desk.close([card.key], "alice", [], "sent_home")
    rig.store.recover()
    rig.clock.advance(3600 * 24 * 20)
    person = Person.of(pass_ids=[message["pass_id"]])
    assert person is not None
    forget(rig.log, person, rig.clock.now(), actor="root", force=True)
    desk.open_alarms([])
    kept = desk.board.alarms[card.key]
    assert (kept.holder, kept.household, kept.pass_id) == (None, None, None)


def test_a_forget_before_the_desks_first_look_empties_a_bus_cards_name(rig):  # noqa: F811
    """No console page drawn since the start: the desk's first look came after the forget, so
    the forget was taken as already seen and the fever's card kept the name."""
    from kiosk.people import Person, forget

    desk = AlarmDesk(rig.log, rig.clock)
    message = fever_unlogged(rig)
    desk.note_message(message)
    rig.store.recover()
    person = Person.of(pass_ids=[message["pass_id"]])
    assert person is not None
    forget(rig.log, person, rig.clock.now(), actor="root", force=True)
    [card] = [a for a in desk.open_alarms([]) if a.kind == "fever"]
    assert (card.holder, card.household, card.pass_id) == (None, None, None)


def test_a_name_heard_from_the_bus_alone_goes_when_the_backlog_drops_a_record(rig):  # noqa: F811
    """The engine dropped a held record (its backlog full): the fever's row may never come,
    and with it the only way its name is forgotten. The name goes at once."""
    desk = AlarmDesk(rig.log, rig.clock)
    desk.note_message(fever_unlogged(rig))
    desk.note_message({"type": "alarm", "alarm": "store_backlog_full", "state": "raised"})
    [fever] = [a for a in desk.open_alarms([]) if a.kind == "fever"]
    assert (fever.holder, fever.household, fever.pass_id) == (None, None, None)


def two_fevers(rig) -> list[dict]:  # noqa: F811
    rig.store.fail()
    for _ in range(2):
        rig.show(rig.pass_text(household="A-101", holder="Li Wei"))
        rig.emulator.person_arrives(38.6)
        rig.run(6)
        rig.emulator.person_leaves()
        rig.run(3)
    found = [m for m in rig.messages if m["type"] == "alarm" and m["alarm"] == "fever"]
    assert len(found) == 2 and all(m["seq"] is None for m in found)
    return found


@pytest.mark.parametrize(
    "order",
    [("m1", "m2", "rows"), ("rows", "m1", "m2"), ("m1", "rows", "m2"), ("m2", "rows", "m1")],
)
def test_two_fevers_heard_and_read_in_any_order_count_two(rig, order):  # noqa: F811
    """Li Wei refused twice for a fever while the card refused writes; the backlog wrote
    both rows later. The desk heard the messages before or after reading the rows: read
    first, the card counted four (a message was matched only with its latest passage)."""
    first, second = two_fevers(rig)
    desk = AlarmDesk(rig.log, rig.clock)
    for step in order:
        if step == "rows":
            backlog_written(rig)
            desk.open_alarms([])
        else:
            desk.note_message(first if step == "m1" else second)
    assert [(a.seqs, a.count) for a in desk.open_alarms([])] == [([1, 2], 2)]


def test_a_console_slot_whose_thread_never_started_is_given_back(monkeypatch):
    """A Pi short of memory: the console call's thread could not start. Its slot was kept
    for ever, and after four such every close was refused until a restart."""
    work = BoundedWork("console-store", 4, WAIT_S)
    real_start = threading.Thread.start

    def no_thread(self):
        if self.name == "console-store":
            raise RuntimeError("can't start new thread")
        return real_start(self)

    async def scene() -> list[object]:
        said: list[object] = []
        with monkeypatch.context() as m:
            m.setattr(threading.Thread, "start", no_thread)
            for _ in range(5):
                try:
                    await work.run(lambda: None)
                except (RuntimeError, Busy) as exc:
                    said.append(type(exc).__name__)
        said.append(await work.run(lambda: "closed"))
        return said

    assert asyncio.run(scene()) == ["RuntimeError"] * 5 + ["closed"]
    assert work.running == 0
