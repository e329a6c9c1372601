"""The office's retention on its PostgreSQL (``kiosk fleet purge DSN``, the collector's hourly
purge): ``fleet_events`` filled by a ``logs:personal`` collector kept clear names for ever."""

from __future__ import annotations

import json
from datetime import date

import psycopg
import pytest
from office_retention_support import NAME, gate_clock, gate_with_history, snapshot
from pgfixture import add_events

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.config.fleet import CollectorConfig
from kiosk.record import PURGED_HOUSEHOLD
from office.collector import Collector
from office.pg import PgTarget

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL

_COLUMNS = "seq, pass_id, household, holder, person, purged_at, hash, prev_hash, personal_digest"


def _rows(dsn):
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(f"SELECT {_COLUMNS} FROM fleet_events ORDER BY seq")  # noqa: S608
        names = [d.name for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _central(tmp_path, pg_dsn, clock=None):
    clock = clock or gate_clock()
    gate = gate_with_history(tmp_path, clock)
    with PgTarget(pg_dsn) as target:
        target.write_page("http://gate-1", "gate-1", gate.store.events(limit=1000))
    return gate, clock


def _collector(pg_dsn, clock, days=30):
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "GATE1_TOKEN"}], "retention_days": days}
    )
    return Collector(config, pg_dsn, clock=clock)


def _assert_purged(rows):
    old, recent = rows[:7], rows[7:]
    for row in old:
        assert (row["pass_id"], row["holder"]) == (None, None)
        assert row["household"] in (None, PURGED_HOUSEHOLD)  # emptied; "": it had one
        assert row["purged_at"] is not None
    assert [r["person"] for r in old] == [None] * 6 + [{"occupants": 2, "feverish": 2}]
    assert [r["holder"] for r in recent] == [NAME] * 4


def test_the_office_postgresql_past_retention_loses_its_personal_fields(
    tmp_path, pg_dsn, monkeypatch, capsys
):
    from drivers import clocksync

    gate, clock = _central(tmp_path, pg_dsn)
    before = _rows(pg_dsn)
    assert [r["holder"] for r in before[:6]] == [NAME] * 6  # 40 days old, still clear
    monkeypatch.setattr(clocksync, "system_clock", lambda *a, **kw: FakeClock(start=clock.now()))
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)  # no TARGET: the office database
    assert main(["fleet", "purge", "--older-than", "30"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["events_purged"] == 7
    after = _rows(pg_dsn)
    _assert_purged(after)
    assert snapshot(after) == snapshot(before)
    db = str(gate.store.path)
    assert main(["verify-log", "--db", db, "--against", pg_dsn]) == 0, capsys.readouterr().err
    with psycopg.connect(pg_dsn) as conn:
        (value,) = conn.execute(
            "SELECT value FROM fleet_meta WHERE key = 'retention.last_purge'"
        ).fetchone()
    assert json.loads(value)["events_purged"] == 7
    gate.store.close()


def test_the_collector_purges_on_its_own_every_hour(tmp_path, pg_dsn):
    gate, clock = _central(tmp_path, pg_dsn)
    collector = _collector(pg_dsn, FakeClock(start=clock.now()))
    runs = []

    class Stop:  # stands in for the collector's stop event: two rounds, then stopped
        waits: list[float] = []

        def is_set(self):
            return len(self.waits) >= 2

        def wait(self, timeout):
            self.waits.append(timeout)
            return self.is_set()

    real = collector.retention.run_once
    collector.retention.run_once = lambda stop=None: runs.append(real(stop))
    stop = Stop()
    collector.retention.loop(stop)
    assert stop.waits == [3600.0, 3600.0]
    assert [r.events_purged for r in runs] == [7, 0]
    _assert_purged(_rows(pg_dsn))
    status = collector.status_json()["retention"]
    assert (status["events_purged"], status["events_purged_total"]) == (0, 7)
    assert status["error"] is None and status["retention_days"] == 30
    assert "kiosk_collect_events_purged_total 7" in collector.metrics_text()
    gate.store.close()


def test_the_collector_with_an_unsynchronised_clock_purges_nothing(tmp_path, pg_dsn):
    gate, clock = _central(tmp_path, pg_dsn)
    before = _rows(pg_dsn)
    office_clock = FakeClock(start=clock.now(), is_synced=False)
    collector = _collector(pg_dsn, office_clock)
    assert collector.retention.run_once() is None  # never raises: a status
    assert "not synchronised" in collector.status_json()["retention"]["error"]
    assert _rows(pg_dsn) == before
    office_clock.is_synced = True  # NTP answered: the next hour purges
    assert collector.retention.run_once().events_purged == 7
    assert collector.status_json()["retention"]["error"] is None
    gate.store.close()


def test_a_database_outage_is_the_purges_status_not_a_crash(tmp_path, pg_dsn):
    collector = _collector("postgresql://nobody@/nowhere?host=/nonexistent", FakeClock())
    assert collector.retention.run_once() is None
    assert collector.status_json()["retention"]["error"].startswith("database: ")


def test_batches_leave_no_transaction_open_while_pages_go_in(tmp_path, pg_dsn, monkeypatch):
    import office.retention as retention

    gate, clock = _central(tmp_path, pg_dsn)
    monkeypatch.setattr(retention, "BATCH_ROWS", 3)
    copy = retention.PgCopy(pg_dsn)
    inserted = []

    def page_between() -> None:  # the collector's worker writing a page meanwhile
        assert copy.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        last = inserted[-1] if inserted else gate.store.events(limit=1000)[-1]["seq"]
        add_events(gate, 1)
        with PgTarget(pg_dsn) as target:
            target.conn.execute("SET lock_timeout = '1s'")
            target.write_page("http://gate-1", "gate-1", gate.store.events(after_seq=last))
        inserted.append(last + 1)

    try:
        result = retention.purge_copy(
            copy, 30, clock.now(), clock_synced=True, between_batches=page_between
        )
    finally:
        copy.close()
    assert (result.events_purged, result.batches, len(inserted)) == (7, 3, 2)
    rows = _rows(pg_dsn)
    assert len(rows) == 13
    _assert_purged(rows[:11])
    gate.store.close()


def test_a_purged_days_outings_per_household_are_unknown_not_zero(tmp_path, pg_dsn):
    from zoneinfo import ZoneInfo

    from office.district import district_report
    from office.retention import PgCopy, purge_copy

    gate, clock = _central(tmp_path, pg_dsn)
    day = _rows(pg_dsn)[0]  # the old passages' day
    tz = ZoneInfo("UTC")
    with psycopg.connect(pg_dsn) as conn:
        (ts,) = conn.execute("SELECT ts FROM fleet_events WHERE seq = %s", [day["seq"]]).fetchone()
    old_day = date.fromisoformat(ts[:10])
    report = district_report(pg_dsn, old_day, tz)
    before = report["exits_per_household"]
    assert (before["households"], before["exits"]) == (3, 3)
    copy = PgCopy(pg_dsn)
    try:
        assert purge_copy(copy, 30, clock.now(), clock_synced=True).events_purged == 7
    finally:
        copy.close()
    after = district_report(pg_dsn, old_day, tz)
    # The outings are there, counted as the gate counts its purged ones; whose they were is
    # no longer known: unknown, never 0.
    assert after["exits_per_household"]["households"] is None
    assert after["exits_per_household"]["exits"] == 3
    assert after["passages"] == report["passages"]
    gate.store.close()


def _footprint(dsn):
    """Every table of the office database with its row count, and ``fleet_meta``'s keys (a
    record written per run would show in one of them)."""
    with psycopg.connect(dsn) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() ORDER BY table_name"
            )
        ]
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
        keys = [r[0] for r in conn.execute("SELECT key FROM fleet_meta ORDER BY key")]
    return counts, keys


def _last_purge(dsn):
    with psycopg.connect(dsn) as conn:
        (value,) = conn.execute(
            "SELECT value FROM fleet_meta WHERE key = 'retention.last_purge'"
        ).fetchone()
    return json.loads(value)


@pytest.mark.slow
def test_idle_hourly_purges_add_no_row_and_still_show_they_ran(tmp_path, pg_dsn):
    """The gate's idle hourly purge once wrote an audit row per run, kept for ever (8,760 a
    year). The collector's keeps one ``fleet_meta`` row, overwritten: two days of idle hours
    add no row anywhere, and that row and the status date the last run."""
    from datetime import UTC, timedelta

    gate, clock = _central(tmp_path, pg_dsn)
    office_clock = FakeClock(start=clock.now())
    collector = _collector(pg_dsn, office_clock)
    assert collector.retention.run_once().events_purged == 7
    after_first, rows = _footprint(pg_dsn), _rows(pg_dsn)
    for _ in range(48):
        office_clock.advance(3600)
        assert collector.retention.run_once().events_purged == 0
    assert _footprint(pg_dsn) == after_first
    assert _rows(pg_dsn) == rows
    last = _last_purge(pg_dsn)
    cutoff = (office_clock.now() - timedelta(days=30)).astimezone(UTC)
    assert (last["cutoff"], last["events_purged"]) == (cutoff.isoformat(), 0)
    status = collector.status_json()["retention"]
    assert status["last_purge_at"] == office_clock.now().isoformat()
    assert (status["events_purged"], status["events_purged_total"]) == (0, 7)
    gate.store.close()
