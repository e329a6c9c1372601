"""A gate a year on: pages the guard opens all day must read what they show, not the year.

A year of a busy gate is ~700,000 events. Work is counted in SQLite's own steps (its
progress handler), the same on any machine: a query that reads only the recent rows does the
same work over a log ten times as long; one that walks the whole table does ten times as
much (seconds on a Pi's card, for each view)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from sqlite_utils.migrations import Migrations

from kiosk import queries
from kiosk.clock import FakeClock
from kiosk.store import EventDraft, EventLog, format_ts

NOW = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)


class _Log:
    """What ``kiosk.queries`` needs (``reader()``), counting SQLite's steps on its connection."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)
        self.steps = 0

        def count() -> int:
            self.steps += 1
            return 0

        self.conn.set_progress_handler(count, 100)

    def reader(self) -> sqlite_utils.Database:
        return sqlite_utils.Database(self.conn)


def _year_old_log(path: Path, old_rows: int) -> _Log:
    """A log of ``old_rows`` passages stamped last January (personal fields purged, as a
    year's retention leaves them), then today a passage and one visitor's registration."""
    clock = FakeClock(start=NOW - timedelta(days=360))
    with EventLog(path, "gate-1", clock, synchronous="NORMAL") as log:
        log.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
    conn = sqlite3.connect(path)
    with conn:  # the same row again and again, as retention leaves a year of passages
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
            " direction, decision, reasons, kind, flags, personal_digest, purged_at,"
            " prev_hash, hash)"
            " SELECT i, 'id-' || i, kiosk_id, ts, boot_id, mono_ns, clock_synced, direction,"
            " decision, reasons, kind, flags, personal_digest, ts, prev_hash, hash FROM events, n"
            " WHERE seq = 1",
            [old_rows],
        )
        conn.execute(
            "INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
            " direction, decision, reasons, kind, flags, person, personal_digest, prev_hash, hash)"
            " SELECT ? + 1, 'id-recent', kiosk_id, ?, boot_id, mono_ns, 1, direction,"
            " 'manual_pass', reasons, 'registration', flags, ?, personal_digest, prev_hash, hash"
            " FROM events WHERE seq = 1",
            [old_rows, format_ts(NOW - timedelta(hours=1)), '{"name": "王秀英"}'],
        )
    conn.close()
    return _Log(path)


def _steps(log: _Log, ask) -> tuple[int, list]:
    log.steps = 0
    found = ask(log)
    return log.steps, found


@pytest.mark.slow
def test_the_registration_page_reads_todays_rows_not_the_years(tmp_path):
    """Its list of the last 24 hours' registrations (every view of the page) walked the whole
    log back to its first row whenever fewer than 50 were in those hours (most days)."""
    since = format_ts(NOW - timedelta(hours=24))[:19]
    kinds = ("registration", "vehicle")
    logs = [_year_old_log(tmp_path / f"{n}.db", n) for n in (2_000, 20_000)]
    (small, found), (big, found_big) = (
        _steps(log, lambda lg: queries.events_of_kinds_since(lg, kinds, since, 50)) for log in logs
    )
    assert (
        [e["person"]["name"] for e in found]
        == ["王秀英"]
        == [e["person"]["name"] for e in found_big]
    )
    assert big - small < 20, (small, big)


@pytest.mark.slow
def test_the_visitor_search_reads_the_rows_that_can_still_hold_a_person(tmp_path):
    """Searching earlier visitors by name walked every row of the log (a year of them) for
    matches that only the rows within retention can hold (the rest are purged)."""
    since = format_ts(NOW - timedelta(days=30))
    logs = [_year_old_log(tmp_path / f"{n}.db", n) for n in (2_000, 20_000)]
    (small, found), (big, found_big) = (
        _steps(log, lambda lg: queries.past_visitors(lg, "秀英", since=since)) for log in logs
    )
    assert (
        [e["person"]["name"] for e in found]
        == ["王秀英"]
        == [e["person"]["name"] for e in found_big]
    )
    assert big - small < 20, (small, big)


@pytest.mark.slow
def test_the_alarm_desk_finds_the_first_row_of_its_look_back_without_walking_the_year(
    tmp_path,
):
    """At each start the alarm desk asks for the first row of its last hours: SQLite walked
    ``seq`` up from the log's first row to find it."""
    since = format_ts(NOW - timedelta(hours=24))
    logs = [_year_old_log(tmp_path / f"{n}.db", n) for n in (2_000, 20_000)]
    (small, first), (big, first_big) = (
        _steps(log, lambda lg: queries.first_seq_since(lg, since)) for log in logs
    )
    assert (first, first_big) == (2_001, 20_001)
    assert big - small < 20, (small, big)


@pytest.mark.slow
@pytest.mark.parametrize("unsynced", [False, True], ids=["synced", "a-boot-before-ntp"])
def test_the_start_rebuilds_the_quota_history_from_its_look_back_not_the_year(
    tmp_path, monkeypatch, unsynced
):
    """Each start rebuilt the passage history (quota, anti-passback) by walking the whole log
    (an OR in its condition kept SQLite off the ``ts`` index): a year of rows read from the
    card before the gate decides, at every reboot. It reads the look-back's rows, the same."""
    from checkpoint.app import build_core
    from kiosk.config import KioskConfig

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    counts = []
    for n in (2_000, 20_000):
        data_dir = tmp_path / str(n)
        data_dir.mkdir()
        _year_old_log(data_dir / "kiosk.db", n).conn.close()
        conn = sqlite3.connect(data_dir / "kiosk.db")
        with conn:  # a passage of today's look-back, out, with its pass
            conn.execute(
                "INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
                " direction, decision, reasons, kind, flags, pass_id, household,"
                " personal_digest, prev_hash, hash) SELECT ? + 2, 'id-out', kiosk_id, ?,"
                " boot_id, mono_ns, 1, 'out', 'pass', reasons, 'passage', flags,"
                " 'ab12cd34ef56', '5-702', personal_digest, prev_hash, hash"
                " FROM events WHERE seq = 1",
                [n, format_ts(NOW - timedelta(hours=2))],
            )
            if unsynced:  # a boot that never synchronised: the reports' dated view is read
                conn.execute(
                    "INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns,"
                    " clock_synced, direction, decision, reasons, kind, flags,"
                    " personal_digest, prev_hash, hash) SELECT ? + 3, 'id-early', kiosk_id,"
                    " '1970-01-01T00:01:00.000000Z', 'early-boot', mono_ns, 0, 'in', 'pass',"
                    " reasons, 'passage', flags, personal_digest, prev_hash, hash"
                    " FROM events WHERE seq = 1",
                    [n],
                )
        conn.close()
        core = build_core(KioskConfig(), data_dir, FakeClock(start=NOW))
        try:
            reader = core.store.reader().conn
            steps = [0]

            def count(steps=steps) -> int:
                steps[0] += 1
                return 0

            reader.set_progress_handler(count, 100)
            assert core.runner._load_history() == 2  # the passage and the registration
            assert core.history.last_passage("ab12cd34ef56", "out") is not None
            counts.append(steps[0])
        finally:
            core.close()
    assert counts[1] - counts[0] < 20, counts


@pytest.mark.slow
def test_the_calibration_page_of_a_gate_without_a_thermometer_reads_no_year(tmp_path, monkeypatch):
    """The calibration page's "last kiosk reading" walked every row of a pass-only gate's log
    (none holds a reading) back to its first, at each view: it looks at the latest
    ``queries.MEASURED_WITHIN`` passages only (a clinical pair is taken right after one)."""
    monkeypatch.setattr(queries, "MEASURED_WITHIN", 500)  # both logs longer than it
    logs = [_year_old_log(tmp_path / f"{n}.db", n) for n in (2_000, 20_000)]
    (small, found), (big, found_big) = (_steps(log, queries.last_measured) for log in logs)
    assert found is None and found_big is None
    assert big - small < 20, (small, big)


def test_the_calibration_page_still_finds_a_recent_reading(tmp_path):
    log = _year_old_log(tmp_path / "kiosk.db", 2_000)
    with log.conn:  # a reading after the year's rows, then passages without one
        for seq, temps in ((2_002, (36.6, 34.1, 22.0)), (2_003, (None, None, None))):
            log.conn.execute(
                "INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
                " direction, decision, reasons, kind, flags, personal_digest, prev_hash, hash,"
                " temp_c, temp_object_c, temp_ambient_c)"
                " SELECT ?, 'id-' || ?, kiosk_id, ts, boot_id, mono_ns, 1, direction,"
                " decision, reasons, kind, flags, personal_digest, prev_hash, hash, ?, ?, ?"
                " FROM events WHERE seq = 1",
                [seq, seq, *temps],
            )
    found = queries.last_measured(log)
    assert found is not None and (found.seq, found.temp_object_c) == (2_002, 34.1)


def _first_scrape(log: _Log) -> tuple[int, dict]:
    """What the first ``/metrics`` after a restart reads: a fresh counter's first count."""
    from ui.api import DecisionCounter

    counter = DecisionCounter()
    counter.update(log)
    return counter.after_seq, dict(counter.by_reason)


@pytest.mark.slow
def test_the_first_metrics_count_after_a_restart_reads_the_tally_not_the_year(tmp_path):
    """The first ``/metrics`` after each restart counted decisions over every event of the
    log (a busy gate's year: 1-2 M rows, seconds on a card, on the API's thread). The counts
    are kept with each commit (``decision_tally``): the same few steps over a log ten times as
    long, and the same counts."""
    logs = [_year_old_log(tmp_path / f"{n}.db", n) for n in (2_000, 20_000)]
    (small, (head, counts)), (big, (head_big, counts_big)) = (
        _steps(log, _first_scrape) for log in logs
    )
    assert (head, head_big) == (2_001, 20_001)
    assert counts == {("pass", "ok"): 2_000, ("manual_pass", "ok"): 1}
    assert counts_big == {("pass", "ok"): 20_000, ("manual_pass", "ok"): 1}
    assert big - small < 20, (small, big)


@pytest.mark.slow
def test_a_log_from_before_the_tally_is_counted_whole_once_at_the_upgrade(tmp_path):
    """A card written before the tally existed: its events are counted into it once, when the
    upgraded program opens it, and every event after is counted with its commit."""
    path = tmp_path / "kiosk.db"
    _year_old_log(path, 50).conn.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER events_decision_tally; DROP TABLE decision_tally;"
        " DELETE FROM _sqlite_migrations WHERE name = 'm005_decision_tally';"
    )
    conn.close()
    clock = FakeClock(start=NOW)
    with EventLog(path, "gate-1", clock, synchronous="NORMAL") as log:
        log.append(EventDraft(direction="in", decision="deny", reasons=("fever", "quarantined")))
        assert _first_scrape(_Log(path)) == (
            52,
            {("pass", "ok"): 50, ("manual_pass", "ok"): 1, ("deny", "fever"): 1}
            | {("deny", "quarantined"): 1},
        )


@pytest.mark.slow
def test_the_hourly_purge_reads_the_rows_it_may_purge_not_the_year(tmp_path):
    """Each hourly purge looked for the rows to null from the log's first row: a year of rows
    purged long ago, read from the card every hour (on a reader, but the whole table). It
    reads the rows not purged yet (index ``events_unpurged``): the same over a log ten times
    as long."""
    from support import reporting_log

    from kiosk.retention import purge

    counts = []
    for n in (2_000, 20_000):
        path = tmp_path / f"{n}.db"
        _year_old_log(path, n).conn.close()
        clock = FakeClock(start=NOW)
        log = reporting_log(path, clock)
        try:
            purge(log, 30, NOW, tz="UTC")  # today's first: the old days frozen
            steps = [0]

            def count(steps=steps) -> int:
                steps[0] += 1
                return 0

            log.reader().conn.set_progress_handler(count, 100)
            log.submit(lambda db, count=count: db.conn.set_progress_handler(count, 100))
            clock.advance(3600)
            log.append(EventDraft(direction="in", decision="pass", reasons=("ok",)))
            steps[0] = 0
            purge(log, 30, clock.now(), tz="UTC")
            counts.append(steps[0])
        finally:
            log.close()
    assert counts[1] - counts[0] < 20, counts


@pytest.mark.slow
def test_a_peer_gates_first_ask_reads_the_look_back_not_the_year(tmp_path):
    """Another gate of the compound asks for this gate's passages from seq 0 when it is
    paired (or this gate's log started again): the page walked ``seq`` up from the log's
    first row to the quota's look-back, a year of rows read from the card on the API's
    thread. It starts at the look-back's first row."""
    from kiosk.peers import peer_page

    since = NOW - timedelta(days=8)
    logs = [_year_old_log(tmp_path / f"{n}.db", n) for n in (2_000, 20_000)]
    (small, page), (big, page_big) = (
        _steps(log, lambda lg: peer_page(lg.reader(), "gate-1", 0, 500, since)) for log in logs
    )
    assert [p["seq"] for p in page["passages"]] == [2_001]
    assert [p["seq"] for p in page_big["passages"]] == [20_001]
    assert (page["next"], page_big["next"]) == (2_001, 20_001)
    assert big - small < 20, (small, big)


@pytest.mark.slow
def test_a_peer_page_from_seq_0_still_holds_a_passage_dated_after_the_ntp_step(tmp_path):
    """The page starts at the look-back's first row, by its stamp or by the time its boot's
    clock dates it: a passage stamped 1970 before NTP answered, dated within the look-back,
    comes before the first row stamped in it."""
    from kiosk.peers import peer_page

    log = _year_old_log(tmp_path / "kiosk.db", 2_000)
    mono = 10**12
    with log.conn:  # a boot: a passage before NTP answered, then one after, 5 minutes on
        for seq, ts, synced, ahead_ns in (
            (2_002, "1970-01-01T00:16:40.000000Z", 0, 0),
            (2_003, format_ts(NOW - timedelta(minutes=10)), 1, 300 * 10**9),
        ):
            log.conn.execute(
                "INSERT INTO events (seq, id, kiosk_id, ts, boot_id, mono_ns, clock_synced,"
                " direction, decision, reasons, kind, flags, personal_digest, prev_hash, hash)"
                " SELECT ?, 'id-' || ?, kiosk_id, ?, 'boot-2', ?, ?, 'in', 'pass', reasons,"
                " 'passage', flags, personal_digest, prev_hash, hash FROM events WHERE seq = 1",
                [seq, seq, ts, mono + ahead_ns, synced],
            )
    page = peer_page(log.reader(), "gate-1", 0, 500, NOW - timedelta(minutes=30))
    assert [(p["seq"], p["ts"]) for p in page["passages"]] == [
        (2_002, format_ts(NOW - timedelta(minutes=15))),
        (2_003, format_ts(NOW - timedelta(minutes=10))),
    ]


def _empty_log(path: Path, migrations: Migrations) -> sqlite3.Connection:
    """A log with ``migrations``' tables and no row, opened for the rows a test writes."""
    with EventLog(path, "gate-1", FakeClock(start=NOW), "NORMAL", migrations=[migrations]):
        pass
    return sqlite3.connect(path)


def _returnees(path: Path, days: int) -> _Log:
    """A returnee back on each of the last ``days`` days, each observed 14 days (cleared at
    its end) with two checks a day, a fever in one of every fifth one's."""
    from kiosk import observation

    conn = _empty_log(path, observation.MIGRATIONS)
    back = "date(:now, '-' || i || ' days')"
    with conn:
        conn.execute(
            "WITH RECURSIVE p(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM p WHERE i < :n)"
            " INSERT INTO obs_people (id, name, household, date_back, observation_until,"
            f" status, created_at) SELECT i, 'x', '1-101', {back}, date({back}, '+13 days'),"
            f" 'cleared', {back} || 'T08:00:00.000000Z' FROM p",
            {"n": days, "now": NOW.date().isoformat()},
        )
        conn.execute(
            "INSERT INTO obs_status (person_id, status, at) SELECT id, 'observing', created_at"
            " FROM obs_people UNION ALL SELECT id, 'cleared', observation_until ||"
            " 'T09:00:00.000000Z' FROM obs_people"
        )
        conn.execute(
            "WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 27)"
            " INSERT INTO obs_checks (person_id, day, at, temp_c, fever)"
            " SELECT id, date(date_back, '+' || (j / 2) || ' days'), 'x', 36.5,"
            " id % 5 = 0 AND j = 2 * ((id - 1) % 14) FROM obs_people, k"
        )
    conn.close()
    return _Log(path)


@pytest.mark.slow
def test_the_daily_reports_returnees_read_the_days_not_the_years(tmp_path):
    """The daily report's returnees (the statistics page, the office's ``/api/v1/stats``, each
    day's freeze) read every returnee ever registered (retention empties a record, the row
    stays), each with a query of its status, and every check kept for the day's fevers: a
    year's returnees at each view. It reads those of the day: the same over ten times as
    many before."""
    from kiosk.observation import counts_for_day

    day = (NOW - timedelta(days=1)).date()
    logs = [_returnees(tmp_path / f"{n}.db", n) for n in (365, 3_650)]
    (small, found), (big, found_big) = (
        _steps(log, lambda lg: counts_for_day(lg.reader(), day, "UTC")) for log in logs
    )
    assert found == found_big
    assert found == {"new": 1, "observing": 13, "cleared": 1, "escalated": 0} | {
        "transferred": 0,
        "fever_checks": 2,
    }
    assert big - small < 20, (small, big)


def _service_requests(path: Path, days: int) -> _Log:
    """A food request opened at 08:00 on each of the last ``days`` days and done at 10:00,
    and one opened yesterday still open."""
    from kiosk import services

    conn = _empty_log(path, services.MIGRATIONS)
    day = "date(:now, '-' || i || ' days')"
    with conn:
        conn.execute(
            "WITH RECURSIVE p(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM p WHERE i < :n)"
            " INSERT INTO service_requests (household, kind, note, state, opened_at, opened_by,"
            f" taken_by, done_at) SELECT '', 'food', '', 'done', {day} || 'T08:00:00.000000Z',"
            f" 'a', 'b', {day} || 'T10:00:00.000000Z' FROM p",
            {"n": days, "now": NOW.date().isoformat()},
        )
        conn.execute(
            "INSERT INTO service_requests (household, kind, note, state, opened_at, opened_by)"
            " VALUES ('5-702', 'medicine', '', 'open', ?, 'a')",
            [format_ts(NOW - timedelta(hours=20))],
        )
    conn.close()
    return _Log(path)


@pytest.mark.slow
def test_the_daily_reports_service_requests_read_the_days_not_the_years(tmp_path):
    """The daily report's service requests read every request ever opened (a done one keeps
    its row) at each report: a year's requests at each view. It reads those of the day and
    those still open: the same over ten times as many before."""
    from zoneinfo import ZoneInfo

    from kiosk.services import counts_for_day

    day = (NOW - timedelta(days=1)).date()
    logs = [_service_requests(tmp_path / f"{n}.db", n) for n in (365, 3_650)]
    (small, found), (big, found_big) = (
        _steps(log, lambda lg: counts_for_day(lg.reader(), day, ZoneInfo("UTC"))) for log in logs
    )
    assert found == found_big
    assert found == {
        "opened": 2,
        "done": 1,
        "open_at_end": 1,
        "by_kind": {"food": 1, "medicine": 1},
    }
    assert big - small < 20, (small, big)
