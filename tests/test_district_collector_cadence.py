"""The district report's ``collector_down`` read against the collector's own cadence, and a
gate's outage across a collector outage (a review of the first ``collector_down``): a gate
silent on both sides of the office's deaf hour was down through it; a gap no longer than the
collector said it would be is the collector pulling (``kiosk collect --once`` from cron every
15 minutes was read as the office deaf all day, and a gate dead since the morning was not
listed at all)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from pgfixture import Network, PagesOnlyTarget, make_kiosk
from test_bounded_collector import _never, _Target

from checkpoint.cli import main
from checkpoint.cli.fleet_cmd import every_arg
from kiosk.config.fleet import CollectorConfig
from office.collector import RUN_BEAT_S, Collector
from office.district import _cadence, _collector_down, _still_down
from office.pg import (
    ONCE_EVERY_S,
    SPACINGS_KEPT,
    PgError,
    beaten,
    collector_runs,
    moved_on,
    spacings,
)

DAY = ("2026-05-01T00:00:00Z", "2026-05-02T00:00:00Z")
H = timedelta(hours=1)


def _u(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 5, 1, h, m, s, tzinfo=UTC)


def _down() -> dict:
    return {"restarts": [], "restarts_total": 0, "restart_minutes": 0.0}


def _gate_down(last: datetime, now: datetime, runs: list) -> dict:
    """``_still_down`` for a gate whose last event and last contact were ``last``, as
    ``_gate_downtime`` reads it."""
    down = _down()
    stamp = {"ts": last.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "seq": 5}
    unheard = _collector_down(runs, now) or []
    _still_down(down, stamp, (last, now), unheard, DAY, ZoneInfo("UTC"), _cadence(runs))
    return down


# ------------------------------------------------------------- a gate across a collector outage


def test_a_gate_down_before_and_after_a_collector_outage_is_down_through_it():
    """Silent from 08:00, the collector deaf 10:00-11:00 and back, the gate still silent at
    12:00: no contact since 08:00, and the office knew it down before the hour and after it.
    Before: 180 minutes, the collector's hour taken out."""
    down = _gate_down(_u(8), _u(12), [("a", _u(0), _u(10), None), ("b", _u(11), _u(12), None)])
    assert down["restart_minutes"] == 240.0
    assert down["restarts"][0]["collector_down_minutes"] == 0.0


def test_a_gate_heard_just_before_a_collector_outage_is_not_down_during_it():
    """Heard at 09:50, the collector deaf from 10:00: the office could not know what the gate
    did in that hour."""
    down = _gate_down(_u(9, 50), _u(12), [("a", _u(0), _u(10), None), ("b", _u(11), _u(12), None)])
    assert down["restart_minutes"] == 130.0 - 60.0
    assert down["restarts"][0]["collector_down_minutes"] == 60.0


def test_a_gate_known_down_when_the_collector_stopped_is_not_counted_while_it_is_off():
    """Silent from 08:00, the collector stopped at 10:00 and not back: after 10:00 nobody knows;
    the gate's minutes are the two hours the collector pulled without hearing it."""
    down = _gate_down(_u(8), _u(12), [("a", _u(0), _u(10), None)])
    assert down["restart_minutes"] == 120.0
    assert down["restarts"][0]["collector_down_minutes"] == 120.0


def test_a_gate_known_down_is_not_counted_through_a_collector_barely_back():
    """The collector back at 11:55, five minutes before the report: not yet long enough to
    say the gate did not answer it."""
    down = _gate_down(_u(8), _u(12), [("a", _u(0), _u(10), None), ("b", _u(11, 55), _u(12), None)])
    assert down["restart_minutes"] == 240.0 - 115.0


# ------------------------------------------------------------- a gap against the cadence


def _cron(every: timedelta, until: datetime, expect_s: float | None) -> list:
    """``kiosk collect --once`` from cron every ``every`` from just past midnight to ``until``
    (a run's beat a few seconds late, as a run's first pull takes), kept as ``record_run``
    keeps them (``moved_on``)."""
    runs: list = []
    t, k = _u(0, 0, 5), 0
    while t < until:
        runs = moved_on(runs, f"r{k}", t + timedelta(seconds=k % 7), expect_s)
        t, k = t + every, k + 1
    return runs


def test_a_gate_dead_all_morning_is_still_down_with_a_collector_run_every_15_minutes():
    """Cron's ``*/15`` with ``--once --every 15m``: before, each run was a spell of its own,
    every 15-minute gap the collector down, the whole day ``collector_down`` and the gate
    dead since 07:59 not listed at all."""
    runs = _cron(timedelta(minutes=15), _u(12), 900.0)
    now = _u(12, 0, 30)
    assert len(runs) == 1 and _collector_down(runs, now) == []
    down = _gate_down(_u(7, 59), now, runs)
    assert down["restarts_total"] == 1
    assert down["restart_minutes"] == 241.5
    assert down["restarts"][0]["collector_down_minutes"] == 0.0


def test_a_once_run_without_every_is_pulling_throughout_on_cron_hourly_or_more_often():
    """``--once`` without ``--every``: the same, its interval learned from its runs'
    spacing (``beaten``)."""
    runs, _ = _cron_learned(timedelta(minutes=15), 48)
    assert len(runs) == 1 and _collector_down(runs, _u(12, 0, 30)) == []
    hourly, _ = _cron_learned(timedelta(hours=1), 12)
    assert len(hourly) == 1 and _collector_down(hourly, _u(12, 0, 30)) == []


def test_cron_stopped_is_the_collector_down_past_its_interval_and_15_minutes():
    runs = _cron(timedelta(minutes=15), _u(8), 900.0)  # its last run 07:45
    last_beat = runs[-1][2]
    assert _collector_down(runs, last_beat + timedelta(minutes=29)) == []
    assert _collector_down(runs, _u(12)) == [(last_beat, _u(12))]
    restarted = [*runs, ("later", _u(11), _u(12), 900.0)]
    assert _collector_down(restarted, _u(12)) == [(last_beat, _u(11))]


def test_a_collector_pulling_hourly_or_backing_off_is_not_down_between_its_pulls():
    """A collector running on with ``poll_interval_s = 3600``, or every gate failing and its
    pause at 900 s: its beats say so."""
    hourly = [("run", _u(0), _u(11), 3600.0)]
    assert _collector_down(hourly, _u(12, 14)) == []
    assert _collector_down(hourly, _u(12, 15)) == [(_u(11), _u(12, 15))]
    backing_off = [("run", _u(0), _u(11, 45), 900.0)]
    assert _collector_down(backing_off, _u(12, 10)) == []


def test_a_gate_pulled_hourly_is_not_down_between_its_pulls():
    """The collector pulling hourly: a gate heard at 11:00 is not still down at 12:10 (with the
    old 15 minutes it would be, as soon as the hourly collector was read as pulling)."""
    hourly = [("run", _u(0), _u(11), 3600.0)]
    assert _gate_down(_u(11), _u(12, 10), hourly)["restarts_total"] == 0
    assert _gate_down(_u(9), _u(12, 10), hourly)["restarts_total"] == 1


def test_a_gate_pulled_hourly_just_before_a_collector_outage_is_not_down_during_it():
    """Pulled hourly, the gate heard at 09:00 (its next pull due 10:00), the collector down
    09:50-12:00 and not at the gate again by 12:20: the office never tried it after 09:00.
    Before: still down for 200 minutes, the outage read as the gate's (the same silence with
    the collector up lists nothing)."""
    outage = [("a", _u(0), _u(9, 50), 3600.0), ("b", _u(12), _u(12, 19), 3600.0)]
    assert _collector_down(outage, _u(12, 20)) == [(_u(9, 50), _u(12))]
    assert _gate_down(_u(9), _u(12, 20), outage)["restarts_total"] == 0
    assert _gate_down(_u(11, 40), _u(12, 20), [("a", _u(0), _u(12, 19), 3600.0)]) == _down()


def test_a_gate_pulled_hourly_silent_long_before_and_after_a_collector_outage_is_down_through_it():
    """The interval moves the window, not the rule: silent from 08:00 (two pulls missed), the
    collector down 09:50-12:00 and back pulling past its hour by 13:30, the gate still silent."""
    outage = [("a", _u(0), _u(9, 50), 3600.0), ("b", _u(12), _u(13, 29), 3600.0)]
    down = _gate_down(_u(8), _u(13, 30), outage)
    assert down["restart_minutes"] == 330.0
    assert down["restarts"][0]["collector_down_minutes"] == 0.0


def test_spells_kept_before_the_interval_read_as_before():
    """A spell of three (kept before 2026-12-06) expected nothing: a gap of 15 minutes is the
    collector down, as it was read; one with its interval beside it is read by it."""
    held = json.dumps(
        [
            ["old", _u(0).isoformat(), _u(8).isoformat()],
            ["new", _u(8, 15).isoformat(), _u(9).isoformat(), 3600],
            ["odd", _u(9).isoformat(), _u(9).isoformat(), "soon"],
        ]
    )
    runs = collector_runs((held,))
    assert [r[3] for r in runs] == [None, 3600.0, None]
    assert _collector_down(runs[:2], _u(9, 30)) == [(_u(8), _u(8, 15))]
    assert _collector_down(runs[:1], _u(8, 14)) == []
    joined = moved_on(runs[:1], "cron", _u(8, 9), 900.0)  # within RUNS_JOIN of the old spell
    assert joined == [("cron", _u(0), _u(8, 9), 900.0)]
    assert len(moved_on(runs[:1], "cron", _u(8, 11), 900.0)) == 2


def test_a_runs_own_beat_goes_on_with_its_spell_however_late():
    """A collector running on, its beats a minute apart, back after 40 minutes without one
    (the database away): the same run, the same spell (the gap read as the collector down
    by ``_collector_down``, not a spell begun again)."""
    runs = moved_on([("on", _u(0), _u(1), 60.0)], "on", _u(1, 40), 60.0)
    assert runs == [("on", _u(0), _u(1, 40), 60.0)]
    assert len(moved_on(runs, "other", _u(2, 30), 60.0)) == 2


def test_spells_with_later_fields_are_read_not_skipped():
    """A spell of five (its runs' spacings, kept by a collector of 2026-12-06 afternoon) or of
    more (a later version's fields): read by its first four, never dropped when the list is
    rewritten (before, a spell of six was skipped, as a collector of the morning skipped the
    spells of five, the newest spell lost)."""
    held = json.dumps(
        [
            ["five", _u(0).isoformat(), _u(8).isoformat(), 900, [900.0]],
            ["six", _u(8, 5).isoformat(), _u(9).isoformat(), 900, [900.0], {"later": 1}],
        ]
    )
    runs = collector_runs((held,))
    assert runs == [("five", _u(0), _u(8), 900.0), ("six", _u(8, 5), _u(9), 900.0)]
    assert moved_on(runs, "six", _u(9, 1), 900.0)[-1] == ("six", _u(8, 5), _u(9, 1), 900.0)


# ------------------------------------------------------------- the beat says its interval


def _beating(monkeypatch, clock, **config) -> tuple[_Target, Collector]:
    """A collector of one gate whose every pull fails at once (no token), and the one
    database target its beats go to."""
    monkeypatch.delenv("GATE_TOKEN", raising=False)
    target = _Target()
    cfg = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1.lan:8000", "token_env": "GATE_TOKEN"}], **config}
    )
    return target, Collector(
        cfg,
        "postgresql://office/unused",
        clock=clock,
        client=httpx.Client(transport=httpx.MockTransport(_never)),
        target_factory=lambda dsn: target,
        monotonic=lambda: clock.monotonic_ns() / 1e9,
    )


def test_each_beat_says_within_how_long_the_next_is_expected(monkeypatch, clock):
    """Every gate failing, its pause doubling up to 900 s: each beat expects the next pull's;
    ``--once`` runs expect the next run's (``--every``, else None: the database learns it
    from the spacing of the runs, ``beaten``)."""
    target, collector = _beating(monkeypatch, clock, poll_interval_s=60, error_backoff_max_s=900)
    try:
        pauses = []
        for _ in range(6):
            collector.pull_once(collector.config.kiosks[0])
            pauses.append(collector.delay_after(collector.statuses()[0]))
            clock.advance(pauses[-1])
        assert pauses[-1] == 900.0 and target.expects == pauses
        collector.run_once(900.0)  # ``--once --every 15m``
        clock.advance(900)
        collector.run_once()  # ``--once``
        assert target.expects[-2:] == [900.0, None]
    finally:
        collector.client.close()


def test_a_collector_running_on_expects_its_soonest_pull_and_beats_once_a_minute(
    monkeypatch, clock
):
    _, hourly = _beating(monkeypatch, clock, poll_interval_s=3600)
    _, fast = _beating(monkeypatch, clock, poll_interval_s=10)
    try:
        assert hourly._expected_s() == 3600.0
        assert fast._expected_s() == RUN_BEAT_S  # at most one beat a minute
    finally:
        hourly.client.close()
        fast.client.close()


# ------------------------------------------------------------- kiosk collect --once --every


def test_every_takes_a_number_and_its_unit_only(capsys):
    assert [every_arg(t) for t in ("15m", "900s", "2h", "1d")] == [900, 900, 7200, 86400]
    for bad in ("15", "15 min", "0m", "30s", "8d", "-5m", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            every_arg(bad)
    with pytest.raises(SystemExit) as info:
        main(["collect", "--config", "x.toml", "--once", "--every", "15"])
    assert info.value.code == 2 and "15m (minutes)" in capsys.readouterr().err
    assert main(["collect", "--config", "x.toml", "--every", "15m"]) == 2
    assert "--every is how often cron runs --once" in capsys.readouterr().err


# ------------------------------------------------------------- a beat while a pull is under way


class _Copy(PagesOnlyTarget):
    """The office's database as a SQLite copy, each page written ``page_s`` after the last on
    the test's clock (a gate with a year of events on a slow link); each beat kept with when
    it came and how many pages were written by then."""

    def __init__(self, path, clock, page_s: float) -> None:
        super().__init__(path)
        self.clock, self.page_s, self.pages = clock, page_s, 0
        self.beats: list[tuple[int, datetime, float | None]] = []
        self.firsts: list[bool] = []  # each beat's: the run's first (its start)

    def write_page(self, url: str, kiosk_id: str, rows: list[dict]) -> int:
        self.clock.advance(self.page_s)
        inserted = super().write_page(url, kiosk_id, rows)
        self.pages += 1
        return inserted

    def record_run(
        self,
        run_id: str,
        expect_s: float | None = None,
        *,
        first: bool = False,
        age_s: float = 0.0,
    ) -> None:
        self.beats.append((self.pages, self.clock.now(), expect_s))
        self.firsts.append(first)


def _first_pull(tmp_path, monkeypatch, clock, page_s: float, kind: type = _Copy) -> _Copy:
    """A collector's first pull of a gate of 60 events, 5 a page: 12 pages, into a ``kind``."""
    gate = make_kiosk(tmp_path / "gate.db", "gate-0", clock, 60)
    monkeypatch.setenv("GATE_TOKEN", gate.token)
    copy = kind(tmp_path / "copy.db", clock, page_s)
    cfg = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-0", "token_env": "GATE_TOKEN"}], "page_size": 5}
    )
    collector = Collector(
        cfg,
        "postgresql://office/unused",
        clock=clock,
        client=Network(gate).client(),
        target_factory=lambda dsn: copy,
        monotonic=lambda: clock.monotonic_ns() / 1e9,
    )
    try:
        assert collector.pull_once(cfg.kiosks[0]).state == "ok"
    finally:
        collector.client.close()
        copy.close()
        gate.store.close()
    assert copy.pages == 12
    return copy


@pytest.mark.slow
def test_a_long_first_pull_beats_as_its_pages_are_written(tmp_path, monkeypatch, clock):
    """A page a minute for 12 minutes: a beat after each, not only when the pull ends (before,
    the report read the collector down from its previous beat on, 16 minutes into the pull)."""
    copy = _first_pull(tmp_path, monkeypatch, clock, RUN_BEAT_S + 1)
    assert [pages for pages, _, _ in copy.beats] == list(range(1, 13))
    assert {expect for _, _, expect in copy.beats} == {RUN_BEAT_S}  # poll_interval_s 10, at least


@pytest.mark.slow
def test_only_the_runs_first_beat_kept_says_it_is_its_start(tmp_path, monkeypatch, clock):
    """The database adds a run's start only at its first beat (``office.pg.started``): a
    long pull's later beats say they are not (before, one outlasting the 16 starts kept was
    counted as begun again). A first beat not kept leaves the next one first."""
    copy = _first_pull(tmp_path, monkeypatch, clock, RUN_BEAT_S + 1)
    assert copy.firsts == [True] + [False] * 11
    refused = _first_pull(tmp_path / "refused", monkeypatch, clock, RUN_BEAT_S + 1, _Refusing)
    assert len(refused.firsts) == 12 and all(refused.firsts)


@pytest.mark.slow
def test_a_pull_beats_at_most_once_a_minute_however_many_pages(tmp_path, monkeypatch, clock):
    copy = _first_pull(tmp_path, monkeypatch, clock, 1.0)
    assert [pages for pages, _, _ in copy.beats] == [1]


@pytest.mark.slow
def test_a_pull_stuck_after_its_pages_is_the_collector_down_past_its_cadence(
    tmp_path, monkeypatch, clock
):
    """The beats of a pull kept as ``record_run`` keeps them: the collector pulling while
    pages come; none for longer than its beat expected and 15 minutes more, it is down."""
    copy = _first_pull(tmp_path, monkeypatch, clock, RUN_BEAT_S + 1)
    began = copy.beats[0][1]
    runs: list = [("before", began - 2 * H, began - timedelta(minutes=20), 10.0)]
    for _, at, expect in copy.beats:
        runs = moved_on(runs, "this", at, expect)
    last = copy.beats[-1][1]
    assert _collector_down(runs, last) == [(runs[0][2], began)]  # down before it began
    assert len(_collector_down(runs, last + timedelta(minutes=15, seconds=59))) == 1
    stuck = last + timedelta(minutes=16)  # its beats expected one within a minute
    assert _collector_down(runs, stuck)[1:] == [(last, stuck)]


class _Refusing(_Copy):
    """A database that takes the pages but not the beats."""

    def record_run(self, *args: object, **kwargs: object) -> None:
        super().record_run(*args, **kwargs)
        raise PgError("the beat's row is locked")


@pytest.mark.slow
def test_a_beat_failing_during_a_pull_leaves_the_pull_alone(tmp_path, monkeypatch, clock, caplog):
    """Tried again a minute on, not at every page, and the pull's connection not closed
    under it: all 12 pages written."""
    copy = _first_pull(tmp_path, monkeypatch, clock, RUN_BEAT_S / 2 + 1, _Refusing)
    assert [pages for pages, _, _ in copy.beats] == [1, 3, 5, 7, 9, 11]
    assert sum(r.message == "collector run not kept" for r in caplog.records) == 6


# ------------------------------------------------------------- --once without --every: learned


def _cron_learned(every: timedelta, runs_: int, start: datetime | None = None) -> tuple:
    """``runs_`` runs of ``kiosk collect --once`` without ``--every``, ``every`` apart, their
    beats kept as ``record_run`` keeps them (``beaten``): the spells and their runs' starts."""
    runs: list = []
    starts: list = []
    t = start or _u(0, 0, 5)
    for k in range(runs_):
        runs, starts = beaten(runs, starts, f"r{k}", t + timedelta(seconds=k % 7), None, first=True)
        t += every
    return runs, starts


def test_once_without_every_expects_the_spacing_of_its_runs():
    """Cron's ``*/15`` leaving ``--every`` out: its beats expected the next within the hour,
    and the collector stopped was read down only 75 minutes on. Now after a second run the
    interval is the spacing of its recent runs' starts, once 4 are held: down 30 minutes on."""
    runs, starts = _cron_learned(timedelta(minutes=15), 16)
    [(_, _, last, expect)] = runs
    assert 900.0 <= expect <= 906.0 and len(spacings(starts)) == SPACINGS_KEPT
    assert _collector_down(runs, last + timedelta(minutes=29)) == []
    assert _collector_down(runs, last + timedelta(minutes=31)) == [
        (last, last + timedelta(minutes=31))
    ]
    down = _gate_down(last - timedelta(hours=2), last + timedelta(minutes=1), runs)
    assert down["restarts_total"] == 1  # a gate silent for two hours of it: still down


def test_the_first_once_runs_without_every_expect_the_hour():
    [(_, _, _, expect)], starts = _cron_learned(timedelta(minutes=15), 1)
    assert (expect, spacings(starts)) == (ONCE_EVERY_S, [])
    [(_, _, _, expect)], starts = _cron_learned(timedelta(minutes=15), SPACINGS_KEPT)
    assert (expect, len(spacings(starts))) == (ONCE_EVERY_S, SPACINGS_KEPT - 1)


def test_the_learned_interval_is_the_longest_recent_spacing_within_the_hour():
    """A run by hand two minutes after cron's (hourly) does not make the next hour a gap;
    two runs beating at once (seconds apart) are no spacing; a spacing past the hour (a long
    run) is held to the hour."""
    runs, starts = _cron_learned(timedelta(hours=1), 3)
    by_hand = _u(2, 2)
    runs, starts = beaten(runs, starts, "by-hand", by_hand, None, first=True)
    assert runs[-1][3] == ONCE_EVERY_S
    runs, starts = beaten(runs, starts, "r3", _u(3, 0, 5), None, first=True)
    assert runs[-1][3] == ONCE_EVERY_S and len(spacings(starts)) == SPACINGS_KEPT
    runs, again = beaten(runs, starts, "r3-again", _u(3, 0, 35), None, first=True)
    assert len(runs) == 1 and spacings(again) == spacings(starts) and runs[-1][3] == ONCE_EVERY_S
    slow, _ = _cron_learned(timedelta(minutes=68), 3)
    assert slow[-1][3] == ONCE_EVERY_S


def test_the_learned_interval_follows_cron_and_begins_again_after_an_outage():
    """Cron from hourly to ``*/15``: once its last hourly spacing is older than the kept ones,
    15 minutes. After a gap read as the collector down, no history: the hour again."""
    runs, starts = _cron_learned(timedelta(hours=1), 3)
    for k in range(SPACINGS_KEPT):
        quarter = _u(2) + (k + 1) * timedelta(minutes=15)
        runs, starts = beaten(runs, starts, f"q{k}", quarter, None, first=True)
    assert runs[-1][3] == 900.0
    runs, starts = beaten(runs, starts, "back", _u(6), None, first=True)
    assert (len(runs), runs[-1][3], starts) == (2, ONCE_EVERY_S, [("back", _u(6))])


def test_every_still_says_the_interval_whatever_the_spacing():
    runs, _ = _cron_learned(timedelta(minutes=15), 3)
    runs, _ = beaten(runs, [("r", _u(0, 30))], "every", _u(0, 45, 5), 1800.0, first=True)
    assert runs[-1][3] == 1800.0
