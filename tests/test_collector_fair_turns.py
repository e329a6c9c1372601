"""The collector's pool is fair: a long first pull (a gate's year of events on a slow link)
yields its slot after its share (``office.collector.TURN_S``) when another gate waits, and
goes on from the last seq held at its next turn. Before, ``max_concurrent`` such pulls held
every slot for hours while the collector beat (up, rightly): the other gates were not pulled
at all, and their silence was read as their own downtime."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter

import pytest
from pgfixture import Network, PagesOnlyTarget, make_kiosk

from kiosk.config.fleet import CollectorConfig
from office.collector import Collector, Turn
from office.pg import PgError
from office.pull import SqliteTarget

PAGE_S = 30.0  # a page of 5 events every 30 s: a slow link
TURN = 60.0  # two pages a turn, and the page read ahead as the second was written


class _Copy(PagesOnlyTarget):
    """The office's database as a SQLite file, each page written ``PAGE_S`` on the test's
    clock after the last; every page's gate and last seq kept in ``written`` (shared by the
    workers' connections), ``pulled`` set once ``until`` holds its last event."""

    def __init__(self, path, clock, written: list, until: dict) -> None:
        super().__init__(path)
        self.conn.close()  # the collector's stop() closes each worker's from its own thread
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.clock, self.written, self.until = clock, written, until

    def write_page(self, url: str, kiosk_id: str, rows: list[dict]) -> int:
        self.clock.advance(PAGE_S)
        inserted = super().write_page(url, kiosk_id, rows)
        self.written.append((kiosk_id, rows[-1]["seq"]))
        last, pulled = self.until.get(kiosk_id, (None, None))
        if pulled is not None and rows[-1]["seq"] == last:
            pulled.set()
        return inserted


@pytest.fixture
def gates(tmp_path, monkeypatch, clock):
    """``long`` (60 events: 12 pages, six minutes) and ``short`` (5 events: one page)."""
    made = {name: make_kiosk(tmp_path / f"{name}.db", name, clock, n) for name, n in
            (("long", 60), ("short", 5))}  # fmt: skip
    for name, gate in made.items():
        monkeypatch.setenv(f"TOKEN_{name.upper()}", gate.token)
    yield made
    for gate in made.values():
        gate.store.close()


def _collector(
    tmp_path, clock, gates, written, until, poll_s: float = 10.0, client=None
) -> Collector:
    cfg = CollectorConfig.model_validate(
        {
            "kiosks": [
                {"url": f"http://{name}", "token_env": f"TOKEN_{name.upper()}"} for name in gates
            ],
            "page_size": 5,
            "max_concurrent": 1,
            "poll_interval_s": poll_s,
        }
    )
    return Collector(
        cfg,
        "postgresql://office/unused",
        clock=clock,
        client=client or Network(*gates.values()).client(),
        target_factory=lambda dsn: _Copy(tmp_path / "copy.db", clock, written, until),
        monotonic=lambda: clock.monotonic_ns() / 1e9,
        turn_s=TURN,
    )


def test_a_turn_is_over_past_its_share_only_while_a_gate_waits(clock):
    waiting = [False]
    turn = Turn(lambda: clock.monotonic_ns() / 1e9, TURN, lambda: waiting[0])
    clock.advance(TURN - 1)
    waiting[0] = True
    assert not turn() and not turn.over  # within its share
    clock.advance(1)
    waiting[0] = False
    assert not turn()  # past it, nobody waiting: it goes on
    waiting[0] = True
    assert turn() and turn.over


@pytest.mark.slow
def test_a_pull_ended_by_its_turn_goes_on_from_the_last_seq_held(tmp_path, clock, gates):
    written: list = []
    collector = _collector(tmp_path, clock, gates, written, {})
    source = collector.config.kiosks[0]
    try:
        turn = Turn(collector._monotonic, TURN, lambda: True)
        status = collector.pull_once(source, turn)
        assert turn.over and (status.state, status.last_seq, status.lag_events) == (
            "yielded",  # not "ok": the office does not read the gate as caught up
            15,
            45,
        )
        assert 'kiosk_collect_up{kiosk="long"} 1' in collector.metrics_text()
        status = collector.pull_once(source)  # no turn: to the end
        assert status.state == "ok"
    finally:
        collector.client.close()
    assert (status.last_seq, status.lag_events) == (60, 0)
    held = [seq for _, seq in written]
    assert held[:3] == [5, 10, 15] and held == sorted(set(held)) and held[-1] == 60
    copy = SqliteTarget(tmp_path / "copy.db")
    try:
        seqs = [r[0] for r in copy.conn.execute("SELECT seq FROM pulled_events ORDER BY seq")]
    finally:
        copy.close()
    assert seqs == list(range(1, 61))


@pytest.mark.slow
def test_a_pull_its_turn_ended_leaves_the_gates_reports_to_its_real_end(tmp_path, clock, gates):
    """The gate's ledger reports (a week's requests at its first, each up to the request
    deadline on a slow link) are not fetched when a turn ends: the gate waiting for the slot
    would wait for them too. They come at the pull's real end."""
    written: list = []
    collector = _collector(tmp_path, clock, gates, written, {})
    asked: list = []
    collector._reports = lambda source, *rest: asked.append(source.url)
    source = collector.config.kiosks[0]
    try:
        turn = Turn(collector._monotonic, TURN, lambda: True)
        collector.pull_once(source, turn)
        assert turn.over and asked == []
        collector.pull_once(source)  # no turn: to the end
    finally:
        collector.client.close()
    assert asked == ["http://long"]


@pytest.mark.slow
def test_a_pull_with_no_gate_waiting_goes_on_to_its_end_in_one_turn(tmp_path, clock, gates):
    """A gate's own place in the queue is not a gate waiting: alone, it pulls to its end."""
    collector = _collector(tmp_path, clock, gates, [], {})
    source = collector.config.kiosks[0]
    with collector._lock:
        collector._queued.add(source.url)  # as the scheduler queues it for a slot
    try:
        status, more = collector._turn(source)
    finally:
        collector.client.close()
    assert (status.last_seq, status.lag_events, more) == (60, 0, False)


@pytest.mark.slow
def test_a_long_first_pull_yields_its_slot_to_a_waiting_gate(tmp_path, clock, gates):
    """One slot, the long gate's first pull in it: the short gate is pulled after the long
    one's first turn (three pages), not after its twelve; the long pull then goes on to the
    end, each page once."""
    written: list = []
    short_pulled, long_pulled = threading.Event(), threading.Event()
    until = {"short": (5, short_pulled), "long": (60, long_pulled)}
    # An hour between pulls: a pull its turn ended is queued again at once, not an hour on.
    collector = _collector(tmp_path, clock, gates, written, until, poll_s=3600.0)
    collector.retention.run_once = lambda stop: None  # no office database to purge
    collector.start()
    try:
        assert short_pulled.wait(30) and long_pulled.wait(30)
    finally:
        collector.stop()
    assert written.index(("short", 5)) == 3  # after the long pull's first turn
    held = [seq for gate, seq in written if gate == "long"]
    assert held[:3] == [5, 10, 15] and held == sorted(set(held)) and held[-1] == 60


@pytest.mark.slow
def test_once_shares_its_slots_too_and_pulls_each_gate_to_its_end(tmp_path, clock, gates):
    """``kiosk collect --once`` (``run_once``): the short gate after the long one's first
    turn, and the run ends with both pulled to their last event."""
    written: list = []
    collector = _collector(tmp_path, clock, gates, written, {})
    try:
        statuses = collector.run_once(900.0)
    finally:
        collector.client.close()
    assert [(s.url, s.state, s.last_seq, s.lag_events) for s in statuses] == [
        ("http://long", "ok", 60, 0),
        ("http://short", "ok", 5, 0),
    ]
    assert written.index(("short", 5)) == 3
    held = [seq for gate, seq in written if gate == "long"]
    assert held[:3] == [5, 10, 15] and held == sorted(set(held)) and held[-1] == 60


class _Counting(Network):
    """The gates' network, every event it serves counted by seq (``served``)."""

    def __init__(self, *kiosks) -> None:
        super().__init__(*kiosks)
        self.served: list[int] = []

    def __call__(self, request):
        response = super().__call__(request)
        if response.status_code == 200:
            self.served += [row["seq"] for row in json.loads(response.content)["events"]]
        return response


@pytest.mark.slow
def test_each_page_is_fetched_once_across_turns_and_no_fetch_runs_on(tmp_path, clock, gates):
    """The pull reads a page ahead of the one it writes. Before, a turn ending left the page
    read ahead (and the pages queued behind it) behind, its request running on in a thread,
    and the next turn asked for the same events again: a page in three sent twice on the slow
    links the turns are for. A turn is decided before its read-ahead is asked for: what was
    asked is written, and only the held row a resume checks (``past_held``) comes twice."""
    written: list = []
    network = _Counting(*gates.values())
    collector = _collector(tmp_path, clock, gates, written, {}, client=network.client())
    source = collector.config.kiosks[0]
    ends: list[int] = []  # where each turn ended
    try:
        while not ends or ends[-1] < 60:
            turn = Turn(collector._monotonic, TURN, lambda: True)
            ends.append(collector.pull_once(source, turn).last_seq)
            assert not _fetching()
    finally:
        collector.client.close()
    served = Counter(network.served)
    assert sorted(served) == list(range(1, 61)) and len(ends) > 2
    # twice: the first row (the gate's id, asked once before its first pull) and each
    # turn's last row, the one the next turn's resume checks
    assert {seq: n for seq, n in served.items() if n > 1} == dict.fromkeys({1, *ends[:-1]}, 2)


def _fetching() -> bool:
    return any(t.name == "kiosk-pull-fetch" and t.is_alive() for t in threading.enumerate())


class _Beats(_Copy):
    """The copy, each beat's ``first`` and ``age_s`` kept."""

    beats: list = []

    def record_run(self, run_id, expect_s=None, *, first=False, age_s=0.0) -> None:
        self.beats.append((first, age_s))


@pytest.mark.slow
def test_a_runs_first_beat_says_how_long_before_it_the_run_began(tmp_path, clock, gates):
    """``--once``: the run's first beat comes after its first page, 30 s on the test's clock:
    it says the run began 30 s before it (the database keeps that as the run's start)."""
    beats: list = []
    collector = _collector(tmp_path, clock, gates, [], {})
    collector._target_factory = lambda dsn: _Beats(tmp_path / "copy.db", clock, [], {})
    _Beats.beats = beats
    clock.advance(7.0)  # made before it runs: the run begins with run_once
    try:
        collector.run_once(900.0)
    finally:
        collector.client.close()
    assert beats[0] == (True, PAGE_S) and not any(first for first, _ in beats[1:])


@pytest.mark.slow
def test_a_gate_its_turn_pulled_to_its_last_page_has_its_reports_fetched(
    tmp_path, clock, monkeypatch
):
    """A turn that ends as the page read ahead is the gate's last: that page is written, the
    gate is caught up ('ok', not queued again), and its ledger reports are fetched in this run.
    Before, they were skipped whenever the turn was over: ``--once`` never fetched them that
    run, the daemon a poll interval later."""
    made = {name: make_kiosk(tmp_path / f"{name}.db", name, clock, n) for name, n in
            (("long", 15), ("short", 5))}  # fmt: skip
    for name, gate in made.items():
        monkeypatch.setenv(f"TOKEN_{name.upper()}", gate.token)
    written: list = []
    collector = _collector(tmp_path, clock, made, written, {})
    asked: list = []
    collector._reports = lambda source, *rest: asked.append(source.url)
    try:
        statuses = collector.run_once(900.0)
    finally:
        collector.client.close()
        for gate in made.values():
            gate.store.close()
    assert written == [("long", 5), ("long", 10), ("long", 15), ("short", 5)]
    assert [(s.state, s.lag_events) for s in statuses] == [("ok", 0), ("ok", 0)]
    # caught up, not queued again: one pull each (a pull more reads nothing, and its
    # reports would be fetched then: the list below alone does not show it)
    assert [(s.url, s.pulls) for s in statuses] == [("http://long", 1), ("http://short", 1)]
    assert sorted(asked) == ["http://long", "http://short"]


class _FirstBeatLost(_Beats):
    """The copy, its first beat not kept (the database gone just after the run's start)."""

    def record_run(self, run_id, expect_s=None, *, first=False, age_s=0.0) -> None:
        if not self.beats:
            self.beats.append(("lost", age_s))
            raise PgError("office: the database system is shutting down")
        super().record_run(run_id, expect_s, first=first, age_s=age_s)


@pytest.mark.slow
def test_a_run_whose_first_beat_was_lost_does_not_backdate_its_spell(tmp_path, clock, gates):
    """Its first beat, after its first page, not kept: the next one, a minute on, is its first
    kept. Before, it said the run began 90 s before it, and the spell began there, over the
    time nothing was recorded (hours, when the database was down that long: read as the
    collector up). A run's first kept beat goes back no further than itself once one was lost."""
    beats: list = []
    collector = _collector(tmp_path, clock, gates, [], {})
    collector._target_factory = lambda dsn: _FirstBeatLost(tmp_path / "copy.db", clock, [], {})
    _FirstBeatLost.beats = beats
    try:
        collector.run_once(900.0)
    finally:
        collector.client.close()
    assert beats[:2] == [("lost", PAGE_S), (True, 0.0)]
    assert not any(first is True for first, _ in beats[2:])
