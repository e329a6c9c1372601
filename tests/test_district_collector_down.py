"""The office's own collector stopped (or was stopped for the night): the office heard from no
gate, and the district report read every gate not heard from as ``still_down``, its minutes
counted as the gate's downtime. The collector keeps when it was pulling (``collector.runs``,
``PgTarget.record_run``); the report tells the spells it was not (``collector_down``: the
office heard from nobody) and counts none of their minutes against a gate."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pgfixture import Network, make_kiosk
from test_district_silent_day import DAY, MIDNIGHT, gone_gate
from test_fleet_collector import _collector
from test_fleet_pg import pull_pg
from test_fleet_pg_index import waiting_on_a_lock

from office.district import district_csv, district_report
from office.pg import MAX_RUNS, ONCE_EVERY_S, RUNS_KEY, STARTS_KEY, PgTarget, collector_runs

pytest_plugins = ("pgfixture",)

H = timedelta(hours=1)


def _runs(pg_dsn, *spells: tuple[timedelta, timedelta | None]) -> None:
    """The collector's record: a run pulling from ``a`` to ``b`` past DAY's midnight each
    (``b`` None: up to the database's now, still pulling)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]
        value = [
            [
                f"run-{i}",
                (MIDNIGHT + a).isoformat(),
                (now if b is None else MIDNIGHT + b).isoformat(),
            ]
            for i, (a, b) in enumerate(spells)
        ]
        conn.execute(
            "INSERT INTO fleet_meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [RUNS_KEY, json.dumps(value)],
        )


def _report(pg_dsn) -> dict:
    return district_report(pg_dsn, DAY, "Asia/Shanghai")


def test_a_gate_heard_until_the_collector_stopped_is_not_down(tmp_path, pg_dsn):
    """Heard at 15:00, the collector stopped at 15:05 and not started since: before, the gate
    was ``still_down`` from 15:00, 540 minutes of its day; the office had stopped listening."""
    gone_gate(tmp_path, pg_dsn, 14 * H, 15 * H)  # its last event 14:00, heard 15:00
    _runs(pg_dsn, (-H, 15 * H + timedelta(minutes=5)))
    report = _report(pg_dsn)
    [gate] = report["by_gate"]
    assert gate["downtime"]["restarts"] == []
    assert (gate["downtime"]["restarts_total"], gate["downtime"]["restart_minutes"]) == (0, 0.0)
    [spell] = report["collector_down"]
    assert spell["from"] == "2026-03-02T15:05:00+08:00"
    assert spell["minutes"] == 535.0  # 15:05 to midnight
    assert spell["detail"].startswith(
        "the office heard from nobody from 2026-03-02 15:05 to "
    ) and spell["detail"].endswith("(Asia/Shanghai): its collector was down; no gate's downtime")
    rows = list(csv.reader(io.StringIO(district_csv(report))))
    assert ["collector_down", "office", spell["detail"]] in rows
    assert ["gate gate-east", "downtime.restart_minutes", "0.0"] in rows


def test_a_gate_down_before_the_collector_stopped_counts_only_while_it_pulled(tmp_path, pg_dsn):
    gone_gate(tmp_path, pg_dsn, 12 * H, 13 * H)  # heard last at 13:00
    _runs(pg_dsn, (-H, 14 * H))  # the collector pulled until 14:00: an hour without it
    [gate] = _report(pg_dsn)["by_gate"]
    [restart] = gate["downtime"]["restarts"]
    assert (restart["from"], restart["kind"]) == ("2026-03-02T13:00:00+08:00", "still_down")
    assert gate["downtime"]["restart_minutes"] == 60.0
    assert restart["collector_down_minutes"] == round(restart["minutes"] - 60, 1)


def test_the_collectors_night_off_is_taken_out_of_a_gate_down_since_the_afternoon(tmp_path, pg_dsn):
    """Heard at 15:55, the collector deaf from 16:00: the office could not know the gate's
    evening (since 2026-12, a gate heard an hour before the collector stopped is down through
    its night off: the next test)."""
    gone_gate(tmp_path, pg_dsn, 14 * H, 15 * H + timedelta(minutes=55))
    _runs(pg_dsn, (-H, 16 * H), (20 * H, None))  # not pulling 16:00-20:00, pulling since
    report = _report(pg_dsn)
    [gate] = report["by_gate"]
    [restart] = gate["downtime"]["restarts"]
    assert restart["from"] == "2026-03-02T15:55:00+08:00"
    assert gate["downtime"]["restart_minutes"] == 485.0 - 240.0
    assert restart["collector_down_minutes"] == 240.0
    [spell] = report["collector_down"]
    assert (spell["from"], spell["to"], spell["minutes"]) == (
        "2026-03-02T16:00:00+08:00",
        "2026-03-02T20:00:00+08:00",
        240.0,
    )


def test_a_gate_down_before_and_after_the_collectors_night_off_is_down_through_it(tmp_path, pg_dsn):
    """Heard last at 15:00, not heard by the collector pulling until 16:00 nor since it is back
    at 20:00: no contact since 15:00, its outage is one (before, 300 minutes: the collector's
    four hours taken out)."""
    gone_gate(tmp_path, pg_dsn, 14 * H, 15 * H)
    _runs(pg_dsn, (-H, 16 * H), (20 * H, None))
    report = _report(pg_dsn)
    [restart] = report["by_gate"][0]["downtime"]["restarts"]
    assert report["by_gate"][0]["downtime"]["restart_minutes"] == 540.0
    assert restart["collector_down_minutes"] == 0.0
    assert [c["minutes"] for c in report["collector_down"]] == [240.0]


def test_runs_minutes_apart_are_one_collector_pulling(tmp_path, pg_dsn):
    """``kiosk collect --once`` from cron every 5 minutes: no gap is the office deaf."""
    gone_gate(tmp_path, pg_dsn, 14 * H, 15 * H)
    five = timedelta(minutes=5)
    _runs(pg_dsn, *[(-H + k * five, -H + k * five) for k in range(12 * 30)], (29 * H, None))
    report = _report(pg_dsn)
    assert report["collector_down"] == []
    assert report["by_gate"][0]["downtime"]["restart_minutes"] == 540.0


def test_without_the_collectors_record_the_gate_is_down_as_before(tmp_path, pg_dsn):
    gate, report = gone_gate(tmp_path, pg_dsn, 14 * H, 15 * H)  # pulled by ``kiosk pull``
    assert report["collector_down"] is None
    assert gate["downtime"]["restart_minutes"] == 540.0
    assert gate["downtime"]["restarts"][0]["collector_down_minutes"] == 0.0


# --------------------------------------------------------------------------- the record


def _held(target: PgTarget) -> list:
    row = target.conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [RUNS_KEY])
    return collector_runs(row.fetchone())


def test_a_run_keeps_one_spell_moved_on_and_a_run_after_a_gap_begins_another(pg_dsn):
    with PgTarget(pg_dsn) as target:
        target.record_run("a")
        target.record_run("a")
        target.record_run("b")  # ``--once`` again within minutes: the same spell goes on
        [(run, begun, ended, expect)] = _held(target)
        assert run == "b" and begun <= ended and expect == ONCE_EVERY_S  # no spacing yet
        an_hour_ago = [["b", (begun - H).isoformat(), (ended - H).isoformat()]]
        target.conn.execute(
            "UPDATE fleet_meta SET value = %s WHERE key = %s", [json.dumps(an_hour_ago), RUNS_KEY]
        )
        target.record_run("c")  # after the collector was down an hour
        runs = _held(target)
    assert [r[0] for r in runs] == ["b", "c"]
    assert runs[0][2] == ended - H and runs[1][1] >= ended


def test_a_run_on_the_cadence_the_spell_expected_goes_on_with_it(pg_dsn):
    """``kiosk collect --once --every 30m``: the next run, 30 minutes on, is the same spell;
    after a spell kept before 2026-12-06 (no interval), 30 minutes is a gap, as it was."""
    half = timedelta(minutes=30)
    with PgTarget(pg_dsn) as target:
        target.record_run("a", 1800.0)
        [(_, begun, ended, expect)] = _held(target)
        assert expect == 1800.0
        held = target.conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [RUNS_KEY])
        assert json.loads(held.fetchone()[0])[0][3] == 1800.0
        earlier = [["a", (begun - half).isoformat(), (ended - half).isoformat(), 1800.0]]
        target.conn.execute(
            "UPDATE fleet_meta SET value = %s WHERE key = %s", [json.dumps(earlier), RUNS_KEY]
        )
        target.record_run("b", 1800.0)
        assert [(r[0], r[1]) for r in _held(target)] == [("b", begun - half)]
        old = [["a", (begun - half).isoformat(), (ended - half).isoformat()]]
        target.conn.execute(
            "UPDATE fleet_meta SET value = %s WHERE key = %s", [json.dumps(old), RUNS_KEY]
        )
        target.record_run("b", 1800.0)
        assert [r[0] for r in _held(target)] == ["a", "b"]


def test_once_runs_without_every_expect_the_spacing_of_their_starts_kept_beside(pg_dsn):
    """``kiosk collect --once`` from cron's ``*/15`` without ``--every``: once four spacings
    of its runs' starts are held, its beat expects the next within them (before, the hour:
    the collector stopped was read down 75 minutes on); the starts kept under their own key,
    the spells of four items an older collector reads; starts that do not read taken as
    none."""
    quarter = timedelta(minutes=15)
    with PgTarget(pg_dsn) as target:
        target.record_run("a", first=True)
        [(_, begun, ended, expect)] = _held(target)
        assert expect == ONCE_EVERY_S
        earlier = [["a", (begun - 4 * quarter).isoformat(), (ended - quarter).isoformat(), 3600]]
        starts = [[f"s{k}", (begun - (4 - k) * quarter).isoformat()] for k in range(4)]
        _meta(target, RUNS_KEY, earlier)
        _meta(target, STARTS_KEY, starts)
        target.record_run("b", first=True)
        [(run, _, _, expect)] = _held(target)
        assert run == "b" and 900.0 <= expect < 960.0
        row = target.conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [RUNS_KEY])
        [spell] = json.loads(row.fetchone()[0])
        assert spell[3] == expect and len(spell) == 4
        row = target.conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [STARTS_KEY])
        assert [run for run, _ in json.loads(row.fetchone()[0])] == ["s0", "s1", "s2", "s3", "b"]
        _meta(target, STARTS_KEY, "soon")
        target.record_run("c", first=True)
        assert _held(target)[0][3] == ONCE_EVERY_S


def test_real_pg_a_runs_start_is_the_databases_now_less_its_age(pg_dsn):
    """The first beat, after the run's first page, says how long before it the run began:
    its start and its spell's beginning are the database's now less that."""
    with PgTarget(pg_dsn) as target:
        target.record_run("a", first=True, age_s=300.0)
        [(_, begun, ended, _)] = _held(target)
        row = target.conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [STARTS_KEY])
        [[run, at]] = json.loads(row.fetchone()[0])
    assert ended - begun == timedelta(seconds=300) and (run, at) == ("a", begun.isoformat())


def _meta(target: PgTarget, key: str, value: object) -> None:
    target.conn.execute("UPDATE fleet_meta SET value = %s WHERE key = %s", [json.dumps(value), key])


def test_the_record_is_bounded_and_a_bad_value_is_read_as_none_kept(pg_dsn):
    assert collector_runs(("not json",)) == []
    assert collector_runs(('[["x", "yesterday", 3], ["y"], 5]',)) == []
    assert collector_runs(None) is None
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    spells = [
        [f"run-{k}", (long_ago + k * H).isoformat(), (long_ago + k * H).isoformat()]
        for k in range(MAX_RUNS + 5)
    ]
    with PgTarget(pg_dsn) as target:
        target.conn.execute(
            "INSERT INTO fleet_meta (key, value) VALUES (%s, 'not json')", [RUNS_KEY]
        )
        target.record_run("new")  # a value that does not read is begun again
        assert [r[0] for r in _held(target)] == ["new"]
        target.conn.execute(
            "UPDATE fleet_meta SET value = %s WHERE key = %s", [json.dumps(spells), RUNS_KEY]
        )
        target.record_run("new")
        runs = _held(target)
    assert len(runs) == MAX_RUNS and runs[0][0] == "run-6" and runs[-1][0] == "new"


def test_the_collector_keeps_its_run_as_it_pulls(tmp_path, clock, pg_dsn, monkeypatch):
    gate = make_kiosk(tmp_path / "g.db", "gate-0", clock, 5)
    try:
        collector = _collector([gate], pg_dsn, monkeypatch, net=Network(gate))
        try:
            collector.run_once()
        finally:
            collector.stop()
    finally:
        gate.store.close()
    with psycopg.connect(pg_dsn) as conn:
        runs = collector_runs(
            conn.execute("SELECT value FROM fleet_meta WHERE key = %s", [RUNS_KEY]).fetchone()
        )
    [(_, begun, ended, expect)] = runs
    assert abs(ended - datetime.now(UTC)) < timedelta(minutes=5) and begun <= ended
    assert expect == ONCE_EVERY_S  # ``kiosk collect --once``, its first run: within the hour


# --------------------------------------------------------------------------- events_missing


def _heard(pg_dsn, tmp_path, clock, ago: timedelta, expect_s: float | None) -> dict:
    """gate-0 pulled and last heard ``ago`` before the database's now, its collector's last
    beat then, expecting the next within ``expect_s``: today's report."""
    gate = make_kiosk(tmp_path / "g.db", "gate-0", clock, 3)
    try:
        pull_pg("http://gate-0", gate.token, pg_dsn, Network(gate))
    finally:
        gate.store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]
        conn.execute("UPDATE fleet_sources SET updated_at = %s", [now - ago])
        spell = ["run", (now - 6 * H).isoformat(), (now - ago).isoformat()]
        spell += [] if expect_s is None else [expect_s]
        conn.execute(
            "INSERT INTO fleet_meta (key, value) VALUES (%s, %s)", [RUNS_KEY, json.dumps([spell])]
        )
    # Today's report in a zone where the day began hours before ``ago`` (a gate not heard
    # from since the day began is missing events, whatever the cadence).
    zone = ZoneInfo("UTC" if 3 <= now.astimezone(UTC).hour <= 21 else "Asia/Shanghai")
    return district_report(pg_dsn, now.astimezone(zone).date(), zone.key)


def test_a_gate_between_the_pulls_of_an_hourly_collector_is_not_missing_events(
    tmp_path, clock, pg_dsn
):
    """The collector pulling hourly, the gate heard 30 minutes ago: its events are held up to
    its last pull, its next due in half an hour (before, a flat 15 minutes named it in
    ``events_missing`` between every two pulls). The same cadence as ``collector_down``."""
    report = _heard(pg_dsn, tmp_path, clock, timedelta(minutes=30), 3600.0)
    assert report["events_missing"] == [] and report["collector_down"] == []
    assert report["by_gate"][0]["events_complete"] is True


def test_a_gate_past_its_hourly_pull_and_15_minutes_is_missing_events(tmp_path, clock, pg_dsn):
    report = _heard(pg_dsn, tmp_path, clock, timedelta(minutes=76), 3600.0)
    assert [m["kiosk_id"] for m in report["events_missing"]] == ["gate-0"]
    assert report["by_gate"][0]["events_complete"] is False


def test_a_gate_of_a_collector_saying_no_cadence_is_missing_after_15_minutes(
    tmp_path, clock, pg_dsn
):
    """A spell kept before 2026-12-06 (no interval): 15 minutes, as before."""
    report = _heard(pg_dsn, tmp_path, clock, timedelta(minutes=16), None)
    assert [m["kiosk_id"] for m in report["events_missing"]] == ["gate-0"]


@pytest.mark.slow
def test_real_pg_a_beat_waiting_behind_another_collectors_goes_on_with_its_spell(pg_dsn):
    """Two collectors on one database beat at once: ``b``'s beat waits for the runs' row while
    ``a``'s transaction begins a spell and commits. Before, ``b`` read its transaction's start
    (``now()``, before the wait) as its beat's time: before the spell ``a`` had just begun, so
    it began another (the clock read as stepped back) and the learned cadence was lost. The
    beat's time is read once the row is its own."""
    with PgTarget(pg_dsn) as a, PgTarget(pg_dsn, application_name="kiosk-collect-b") as b:
        a.record_run("a", 900.0)  # the rows exist: the beats lock them
        with a.conn.transaction():
            a.conn.execute(
                "SELECT 1 FROM fleet_meta WHERE key = ANY(%s) FOR UPDATE", [[RUNS_KEY, STARTS_KEY]]
            )
            beat = threading.Thread(target=b.record_run, args=("b", 900.0))
            beat.start()
            waiting_on_a_lock(pg_dsn, "kiosk-collect-b")
            (begun,) = a.conn.execute("SELECT clock_timestamp()").fetchone()
            spell = [["a2", begun.isoformat(), begun.isoformat(), 900.0]]  # begun after b's wait
            a.conn.execute(
                "UPDATE fleet_meta SET value = %s WHERE key = %s", [json.dumps(spell), RUNS_KEY]
            )
        beat.join()
        runs = _held(a)
    assert [(run, at) for run, at, _, _ in runs] == [("b", begun)]  # the spell went on
