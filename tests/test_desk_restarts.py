"""The guard's alarm desk across daemon restarts and long incidents: when a fault began is
known only while the daemon runs, so after a restart a fault still standing is a card again,
even one a guard closed before (a kept start could hide a new fault: docs/screens.md); a
fault gone and back between two health reports is a new start, one more time on its open
card, counted once whichever of the report and the bus tells it first; a card's stamps of
logged passages are bounded, and a late message about a passage folded out of them is still
known as counted. Clocks are injected (``FakeClock``), nothing waits."""

from __future__ import annotations

from datetime import timedelta

from guard_support import close_core, make_app, make_core, signed_in
from test_device_incidents import done, drawn

from kiosk.alarms import (
    LOGGED_KEPT,
    Alarm,
    AlarmBoard,
    AlarmDesk,
    FaultsNow,
    alarm_of,
    device_alarms,
)

RAISED = {"type": "alarm", "alarm": "reader_fault", "state": "raised"}
CLEARED = {"type": "alarm", "alarm": "reader_fault", "state": "cleared"}


def _closed_on_a_page(core) -> str:
    """The camera failing, its card closed by alice on the console; when its fault began."""
    core.runner.engine.on_reader_fault("cam0", "camera lost")
    began = core.runner.health()["fault_since"]["reader"]
    with signed_in(make_app(core)) as tablet:
        assert done(tablet, tablet.get("/guard?lang=en").text) is None
    return began


def _standing(core) -> list[Alarm]:
    """The device cards a page draws from the health report (``ui.guard.deps``)."""
    report = core.runner.health()
    faults = {d: "fault" for d in report["fault_since"]}
    return device_alarms(faults, report["fault_since"], report.get("fault_raised_ns"))


def _ticking(clock, monkeypatch) -> None:
    """``clock``'s monotonic reading a microsecond later at each read, as a real one: two
    stamps the engine takes one after the other are not the same."""
    read = clock.monotonic_ns

    def tick() -> int:
        clock.mono_ns += 1000
        return read()

    monkeypatch.setattr(clock, "monotonic_ns", tick)


def test_after_a_restart_a_fault_the_guard_closed_before_is_a_card_again(
    data_dir, clock, monkeypatch
):
    """The camera's card closed by alice, the daemon restarted, the camera still failing and
    raised again on the bus: a card again, with a new start, that her close does not close
    (when a fault began is not kept across a restart: a kept start could take a new fault
    for the old closed one; an honest repeat card costs the guard one close)."""
    core = make_core(data_dir, clock, monkeypatch)
    began = _closed_on_a_page(core)
    close_core(core)
    clock.advance(45)
    core = make_core(data_dir, clock, monkeypatch)
    try:
        core.runner.engine.on_reader_fault("cam0", "camera lost")
        desk = AlarmDesk(core.store, core.clock)
        assert desk.note_message({**RAISED, "mono_ns": clock.monotonic_ns()})
        standing = _standing(core)
        [since] = [a.since for a in standing]
        assert since > began
        assert [(a.key, a.count) for a in desk.open_alarms(standing)] == [("device:reader", 1)]
        assert desk.closed_by("device:reader", since) is None
    finally:
        close_core(core)


def test_a_fault_that_cleared_while_the_daemon_was_down_is_a_new_card(data_dir, clock, monkeypatch):
    """The camera's card closed, the daemon stopped; the camera came back meanwhile. The
    first report after the start has no fault, and the camera's next fault is a new start
    and a new card, never hidden by the old close."""
    core = make_core(data_dir, clock, monkeypatch)
    began = _closed_on_a_page(core)
    close_core(core)
    clock.advance(600)
    core = make_core(data_dir, clock, monkeypatch)
    try:
        assert core.runner.health()["fault_since"] == {}
        clock.advance(60)
        core.runner.engine.on_reader_fault("cam0", "camera lost again")
        since = core.runner.health()["fault_since"]["reader"]
        assert since > began
        with signed_in(make_app(core)) as tablet:
            assert drawn(tablet.get("/guard?lang=en").text) == ["device:reader@1"]
    finally:
        close_core(core)


def test_a_fault_gone_and_back_between_two_reports_has_a_new_start(guard_core):
    """The camera failed, came back and failed again between two health reports (the loop
    polls every idle_probe_s): both reports saw it standing and said the first start, and a
    card closed meanwhile hid the new fault. The engine's raise dates it anew."""
    runner, clock = guard_core.runner, guard_core.clock
    runner.engine.on_reader_fault("cam0", "camera lost")
    first = runner.health()["fault_since"]["reader"]
    clock.advance(0.3)
    runner.engine.on_reader_ok("cam0")
    clock.advance(0.3)
    runner.engine.on_reader_fault("cam0", "camera lost again")
    again = clock.now().isoformat()
    clock.advance(0.3)
    assert runner.health()["fault_since"]["reader"] == again != first
    assert runner.health()["fault_since"]["reader"] == again  # the same start, report after


def test_an_open_card_counts_a_fault_the_desk_saw_standing_with_a_new_start(guard_core):
    """The desk saw the relay's fault standing at each look, its start changed between them
    (gone and back meanwhile): the open card said it once. Now once more; the same start
    dated a moment otherwise (a compound gate's, dated again at each report) is not."""
    desk = AlarmDesk(guard_core.store, guard_core.clock)
    clock = guard_core.clock
    assert desk.note_message({**RAISED, "alarm": "gate_fault", "mono_ns": clock.monotonic_ns()})
    first = clock.now().isoformat()
    [card] = desk.open_alarms(device_alarms({"gate": "fault"}, {"gate": first}))
    assert card.count == 1
    jitter = (clock.now() + timedelta(microseconds=3)).isoformat()
    [card] = desk.open_alarms(device_alarms({"gate": "fault"}, {"gate": jitter}))
    assert card.count == 1
    clock.advance(90)
    again = clock.now().isoformat()
    [card] = desk.open_alarms(device_alarms({"gate": "fault"}, {"gate": again}))
    assert (card.count, card.since) == (2, first)
    [card] = desk.open_alarms(device_alarms({"gate": "fault"}, {"gate": again}))
    assert card.count == 2
    clock.advance(90)
    assert desk.heard_standing({"gate": clock.now().isoformat()})  # the ear's rebuild too
    assert desk.open_alarms([])[0].count == 3


def test_a_return_heard_on_the_bus_is_not_counted_again_by_its_report(guard_core):
    """The camera's fault cleared and raised again on the bus (one more time, heard), then a
    page drawn with the report's new start: one fault, counted once."""
    runner, clock = guard_core.runner, guard_core.clock
    desk = AlarmDesk(guard_core.store, clock)
    runner.engine.on_reader_fault("cam0", "camera lost")
    assert desk.note_message({**RAISED, "mono_ns": clock.monotonic_ns()})
    assert desk.open_alarms(_standing(guard_core))[0].count == 1
    clock.advance(5)
    runner.engine.on_reader_ok("cam0")
    desk.note_message({**CLEARED, "mono_ns": clock.monotonic_ns()})
    clock.advance(5)
    runner.engine.on_reader_fault("cam0", "camera lost again")
    assert desk.note_message({**RAISED, "mono_ns": clock.monotonic_ns()})
    clock.advance(0.2)  # the bus message heard a moment after the engine's raise
    [card] = desk.open_alarms(_standing(guard_core))
    assert card.count == 2


def _alarms(ear) -> list[dict]:
    """The ``alarm`` messages the subscription ``ear`` holds, oldest first (taken)."""
    messages = iter(ear.get_nowait, None)
    return [m for m in messages if m.get("type") == "alarm"]


def test_a_return_the_report_told_first_is_not_counted_again_by_the_bus(guard_core, monkeypatch):
    """The camera's fault cleared and raised again between two looks; a guard's page drew
    the report (the new start: one more time) before the desk's ear took the bus's cleared
    and raised messages, which then counted the same return again ("3 times" for one
    return). The report carries the engine's stamp of the raise, and the bus's messages of
    it are not news."""
    desk, late = _returns_a_page_counted(guard_core, monkeypatch, returns=1)
    for message in late:
        desk.note_message(message)
    [card] = desk.open_alarms(_standing(guard_core))
    assert card.count == 2


def _returns_a_page_counted(guard_core, monkeypatch, returns=2):
    """The camera failed (seen, heard), came back and failed again ``returns`` times, then a
    guard's page drew the report (one more time: the newest return) before the desk's ear
    took the bus's messages of the returns; the desk and the ear's messages, oldest first."""
    runner, clock = guard_core.runner, guard_core.clock
    _ticking(clock, monkeypatch)
    desk = AlarmDesk(guard_core.store, clock)
    ear = guard_core.bus.subscribe(name="test-ear")
    runner.engine.on_reader_fault("cam0", "camera lost")
    [raised] = _alarms(ear)
    assert desk.note_message(raised)
    assert desk.open_alarms(_standing(guard_core))[0].count == 1
    for _ in range(returns):
        clock.advance(5)
        runner.engine.on_reader_ok("cam0")
        clock.advance(5)
        runner.engine.on_reader_fault("cam0", "camera lost again")
    clock.advance(0.1)
    assert desk.open_alarms(_standing(guard_core))[0].count == 2  # the page, first
    late = _alarms(ear)
    assert [m["state"] for m in late] == ["cleared", "raised"] * returns
    return desk, late


def test_returns_before_the_one_the_report_told_still_count_when_the_bus_tells_them(
    guard_core, monkeypatch
):
    """Two returns, the page's count first: it had moved the card past every bus message of
    them, the first return lost ("2 times" for three faults). Only the raise the report
    told is not news."""
    desk, late = _returns_a_page_counted(guard_core, monkeypatch)
    for message in [*late, *late]:  # a second console's stream hands them again
        desk.note_message(message)
    [card] = desk.open_alarms(_standing(guard_core))
    assert card.count == 3
    assert not card.cleared  # standing: a raise said again is no new fault


def test_the_ears_rebuild_between_late_messages_loses_no_return(guard_core, monkeypatch):
    """As above; the ear took the first cleared message, rebuilt its cards from the report
    (the raise the page counted, not news), then took the rest: the first return is still
    counted."""
    desk, (first, *rest) = _returns_a_page_counted(guard_core, monkeypatch)
    desk.note_message(first)
    report = guard_core.runner.health()
    assert not desk.heard_standing(FaultsNow(report["fault_since"], report["fault_raised_ns"]))
    for message in rest:
        desk.note_message(message)
    assert [a.count for a in desk.open_alarms([])] == [3]


def test_a_return_the_ears_rebuild_took_first_is_not_counted_again_by_the_bus(
    guard_core, monkeypatch
):
    """As a page's report, the desk's ear rebuilding its cards from the health report
    (``heard_standing``, at each subscription) told a return before the bus's messages of it
    queued meanwhile: counted once."""
    runner, clock = guard_core.runner, guard_core.clock
    _ticking(clock, monkeypatch)
    desk = AlarmDesk(guard_core.store, clock)
    ear = guard_core.bus.subscribe(name="test-ear")

    def faults_now() -> FaultsNow:
        report = runner.health()
        return FaultsNow(report["fault_since"], report["fault_raised_ns"])

    runner.engine.on_reader_fault("cam0", "camera lost")
    [raised] = _alarms(ear)
    assert desk.note_message(raised)
    desk.heard_standing(faults_now())
    clock.advance(5)
    runner.engine.on_reader_ok("cam0")
    clock.advance(5)
    runner.engine.on_reader_fault("cam0", "camera lost again")
    assert desk.heard_standing(faults_now())
    for message in _alarms(ear):
        desk.note_message(message)
    assert [a.count for a in desk.open_alarms([])] == [2]


def _passage(seq: int) -> Alarm:
    event = {
        "seq": seq,
        "ts": f"2026-03-02T08:30:{seq % 60:02d}+00:00",
        "household": "A-101",
        "holder": "Li Wei",
        "boot_id": "boot-1",
        "mono_ns": seq * 10**9,
    }
    return alarm_of(event, "fever", "fever")


def test_a_cards_logged_stamps_are_bounded_to_its_first_and_latest(guard_core):
    """A person denied every few seconds over a shift: the card's seqs were bounded, its
    stamps of logged passages (``Alarm.logged``) grew by one a passage for the daemon's
    life. Now its first and latest ``LOGGED_KEPT``, saying how many were folded; a message
    heard late about a kept passage is still not counted again."""
    board = AlarmBoard()
    passages = 600
    for seq in range(1, passages + 1):
        board.add(_passage(seq))
    [card] = board.alarms.values()
    assert card.times == passages
    assert len(card.logged) == LOGGED_KEPT
    assert card.logged[0] == ("boot-1", 10**9)
    assert card.logged[-1] == ("boot-1", passages * 10**9)
    assert card.logged_folded == passages - LOGGED_KEPT
    late = Alarm(key="bus:fever:7", kind="fever", ts="", unlogged=[card.logged[-1]])
    assert not board.add(late)
    assert card.times == passages


def test_a_late_message_about_a_folded_passage_is_not_counted_again(guard_core):
    """Twenty passages of one person on one card, the stamps of the ninth to the
    nineteenth folded (``LOGGED_KEPT``); a bus message heard late about the seventh (the
    storage had refused its row when it was raised) was no longer known as counted: "21
    times" for twenty passages. It is known by the stamps folded; another person's message
    of that moment is still a card (nothing hidden)."""
    board = AlarmBoard()
    for seq in range(1, 21):
        board.add(_passage(seq))
    [card] = board.alarms.values()
    assert (card.times, card.logged_folded) == (20, 20 - LOGGED_KEPT)
    about = {"kind": "fever", "ts": "2026-03-02T08:30:07+00:00", "household": "A-101"}
    late = Alarm(key="bus:fever:7", holder="Li Wei", unlogged=[("boot-1", 7 * 10**9)], **about)
    assert not board.add(late)
    assert (card.times, len(board.alarms)) == (20, 1)
    other = Alarm(
        key="bus:fever:8", holder="Wang Fang", unlogged=[("boot-1", 7 * 10**9 + 1)], **about
    )
    assert board.add(other)
    assert len(board.alarms) == 2
