"""The guard's alarm desk across daemon restarts and long incidents: a standing fault keeps
its start across a restart (``kiosk.faultstarts``, kept in the log's ``meta``), so the
guard's close of it still closes it and one that cleared while the daemon was down comes
back as a new card; a fault gone and back between two health reports is a new start, one
more time on its open card; a card's stamps of logged passages are bounded. Clocks are
injected (``FakeClock``), nothing waits."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from guard_support import close_core, make_app, make_core, signed_in
from test_device_incidents import done, drawn

from kiosk.alarms import LOGGED_KEPT, Alarm, AlarmBoard, AlarmDesk, alarm_of, device_alarms
from kiosk.faultstarts import FAULT_SINCE_KEY, FaultStarts, read_starts

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
    report = core.runner.health()
    return device_alarms({d: "fault" for d in report["fault_since"]}, report["fault_since"])


def test_a_fault_raised_on_the_bus_after_a_restart_keeps_the_guards_close(
    data_dir, clock, monkeypatch
):
    """After the daemon restarted, the engine raised the camera's fault again on the bus
    before any page: the desk's card was dated when it heard it, later than alice's close
    read back, and the fault she closed stood open again as new. The report's start is the
    one kept from before the restart, and it closes the card again."""
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
        assert [a.since for a in standing] == [began]
        assert desk.open_alarms(standing) == []
        assert desk.closed_by("device:reader", began) == ("alice", "handled")
    finally:
        close_core(core)


def test_a_fault_that_cleared_while_the_daemon_was_down_is_a_new_card(data_dir, clock, monkeypatch):
    """The camera's card closed, the daemon stopped; the camera came back meanwhile. The
    first report after the start has no fault: the kept start is gone, and the camera's next
    fault is a new start and a new card, never hidden by the old close."""
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


def test_kept_starts_the_log_cannot_read_are_none(guard_core):
    """A damaged value under the key: no start known (every standing fault a new one, the
    safe side), never an error out of the health report."""
    guard_core.store.submit(
        lambda db: db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [FAULT_SINCE_KEY, "{bad"]
        )
    )
    assert read_starts(guard_core.store) == {}
    guard_core.runner.engine.on_reader_fault("cam0", "camera lost")
    assert set(guard_core.runner.health()["fault_since"]) == {"reader"}


def test_kept_starts_a_busy_log_refused_are_read_at_a_later_report(data_dir, clock, monkeypatch):
    """The first report after the restart met a busy log: the kept start is read at the next
    one (nothing written over it meanwhile) for a fault standing at each report, and no
    warning beside the log's own (tests/test_busy_reads.py)."""
    core = make_core(data_dir, clock, monkeypatch)
    core.runner.engine.on_reader_fault("cam0", "camera lost")
    began = core.runner.health()["fault_since"]["reader"]
    close_core(core)
    clock.advance(30)
    core = make_core(data_dir, clock, monkeypatch)
    try:
        reader = core.store.reader

        def busy():
            raise sqlite3.OperationalError("database is locked")

        core.runner.engine.on_reader_fault("cam0", "camera lost")
        monkeypatch.setattr(core.store, "reader", busy)
        assert core.runner.health()["fault_since"]["reader"] != began
        monkeypatch.setattr(core.store, "reader", reader)
        assert core.runner.health()["fault_since"]["reader"] == began
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


def test_the_replays_failing_store_refuses_the_starts_as_the_log_does(store):
    """The demo's and replay's log with an injected full disk (``StoreSwitch``) had no
    unwaited write: the starts could not be kept at all (an error at each change). It
    refuses them while failing, as the log does, and keeps them once recovered."""
    from checkpoint.replay import StoreSwitch
    from kiosk.store import StoreFault

    switch = StoreSwitch(store)
    switch.fail()
    assert isinstance(switch.submit_later(lambda db: None).exception(), StoreFault)
    switch.recover()
    starts = FaultStarts(switch, store.clock)
    began = starts.began({"gate"}, {})
    store.submit(lambda db: None)  # the writes keep their order: the starts are in
    assert read_starts(switch) == began
