"""A gate switched off all day showed in the district's report as a quiet gate: its
``downtime`` was read from its rows of the day alone, and it had none. Now a gate the collector
knows with no event that day is read as its own report reads it (``kiosk.stats``, docs/community.md
"Restarts"): its last event before the day and its first after, a restart spanning the day."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
from pgfixture import Network, make_kiosk
from test_fleet_pg import pull_pg

from kiosk import stats, tokens
from kiosk.clock import FakeClock
from kiosk.store import EventDraft, EventLog
from office.district import _NEAR_SQL, district_csv, district_report
from office.pg import PgTarget

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)
MIDNIGHT = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on DAY


def down_gate(
    tmp_path,
    pg_dsn,
    back_after: timedelta,
    same_boot: bool = False,
    first: timedelta = timedelta(hours=-2),
) -> dict:
    """gate-east: two events half an hour apart from ``first`` past DAY's midnight (the
    evening before), then (a new boot unless ``same_boot``) one ``back_after`` past it,
    pulled; its ``by_gate`` row, with the district CSV's rows (``csv``)."""
    at, path = FakeClock(start=MIDNIGHT + first), tmp_path / "east.db"
    sets = [tokens.MIGRATIONS, stats.MIGRATIONS]
    log = EventLog(path, "gate-east", at, "NORMAL", migrations=sets, boot_id="boot-a").open()
    for _ in range(2):
        log.append(EventDraft(direction="in", decision="pass"))
        at.advance(1800)
    log.close()
    at.set_wall(MIDNIGHT + back_after)
    if same_boot:
        at.mono_ns += int(back_after.total_seconds() * 10**9)
    else:
        at.mono_ns = 60 * 10**9
    east = make_kiosk(path, "gate-east", at)
    if same_boot:
        east.store.boot_id = "boot-a"
    try:
        east.store.append(EventDraft(direction="in", decision="pass"))
        pull_pg("http://gate-east", east.token, pg_dsn, Network(east))
        report = district_report(pg_dsn, DAY, "Asia/Shanghai")
    finally:
        east.store.close()
    [gate] = report["by_gate"]
    gate["csv"] = list(csv.reader(io.StringIO(district_csv(report))))
    return gate


def test_a_gate_switched_off_all_day_shows_the_day_down(tmp_path, pg_dsn):
    gate = down_gate(tmp_path, pg_dsn, timedelta(hours=32))  # back at 08:00 the day after
    assert gate["events"] == 0
    down = gate["downtime"]
    assert down["boots"] == 0
    assert down["restarts"] == [
        {
            "from": "2026-03-01T22:30:00+08:00",
            "booted": "2026-03-03T07:59:00+08:00",
            "to": "2026-03-03T08:00:00+08:00",
            "minutes": 2010.0,
            "kind": "boot",
        }
    ]
    assert down["restarts_total"] == 1 and down["restart_minutes"] == 1440.0
    assert ["gate gate-east", "downtime.restart_minutes", "1440.0"] in gate["csv"]


def test_a_gate_on_but_quiet_all_day_shows_no_restart(tmp_path, pg_dsn):
    gate = down_gate(tmp_path, pg_dsn, timedelta(hours=32), same_boot=True)
    assert gate["events"] == 0
    assert gate["downtime"]["restarts_total"] == 0


def gone_gate(tmp_path, pg_dsn, last: timedelta, contact: timedelta | None) -> tuple[dict, dict]:
    """gate-east: two events half an hour apart, the last ``last`` past DAY's midnight, pulled;
    then nothing, the office's last contact with it ``contact`` past midnight (None: its
    pull's own, just now). Its ``by_gate`` row and the report."""
    at = FakeClock(start=MIDNIGHT + last - timedelta(minutes=30))
    east = make_kiosk(tmp_path / "east.db", "gate-east", at)
    try:
        for _ in range(2):
            east.store.append(EventDraft(direction="in", decision="pass"))
            at.advance(1800)
        pull_pg("http://gate-east", east.token, pg_dsn, Network(east))
    finally:
        east.store.close()
    if contact is not None:
        with psycopg.connect(pg_dsn) as conn:
            conn.execute("UPDATE fleet_sources SET updated_at = %s", [MIDNIGHT + contact])
    report = district_report(pg_dsn, DAY, "Asia/Shanghai")
    [gate] = report["by_gate"]
    return gate, report


def _local(text: str) -> str:
    when = datetime.fromisoformat(text).astimezone(ZoneInfo("Asia/Shanghai"))
    return when.isoformat(timespec="seconds")


def test_a_gate_down_since_the_evening_before_and_not_back_is_down_all_day(tmp_path, pg_dsn):
    """Its last event the evening before and nothing since, not heard from: its downtime
    listed nothing (no event of a new boot ends the restart) and read as a quiet day."""
    gate, report = gone_gate(tmp_path, pg_dsn, timedelta(hours=-1), timedelta(hours=-1))
    down = gate["downtime"]
    [restart] = down["restarts"]
    assert restart["kind"] == "still_down"
    assert restart["from"] == "2026-03-01T23:00:00+08:00"
    assert restart["to"] == _local(report["as_of"]) and restart["booted"] is None
    assert down["restarts_total"] == 1 and down["restart_minutes"] == 1440.0
    assert ["gate gate-east", "downtime.restart_minutes", "1440.0"] in list(
        csv.reader(io.StringIO(district_csv(report)))
    )


def test_a_gate_down_since_the_afternoon_is_down_from_its_last_sign_of_life(tmp_path, pg_dsn):
    """The office heard from it after its last event (a pull at the head): down since then."""
    gate, _ = gone_gate(tmp_path, pg_dsn, timedelta(hours=14), timedelta(hours=15))
    [restart] = gate["downtime"]["restarts"]
    assert (restart["from"], restart["kind"]) == ("2026-03-02T15:00:00+08:00", "still_down")
    assert gate["downtime"]["restart_minutes"] == 540.0  # 15:00 to midnight


def test_a_gate_heard_from_just_now_is_up_however_quiet(tmp_path, pg_dsn):
    gate, _ = gone_gate(tmp_path, pg_dsn, timedelta(hours=14), None)
    assert gate["downtime"]["restarts"] == [] and gate["downtime"]["restarts_total"] == 0


def test_a_gate_that_came_back_after_the_day_is_no_longer_down(tmp_path, pg_dsn):
    gate = down_gate(tmp_path, pg_dsn, timedelta(hours=32))
    assert [r["kind"] for r in gate["downtime"]["restarts"]] == ["boot"]


def test_a_silent_gates_neighbours_are_read_by_its_own_index_in_an_existing_database(
    tmp_path, pg_dsn
):
    """Its first event from the day's start on was found by ``kiosk_id = ? AND ts >= ?`` on
    the index of every gate's ``ts``: read through every other gate's later rows. The
    collector's schema adds ``(kiosk_id, ts)``, to a database made before it too."""
    gone_gate(tmp_path, pg_dsn, timedelta(hours=-1), None)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # as a database made before it
        conn.execute("DROP INDEX IF EXISTS fleet_events_kiosk_ts")
    PgTarget(pg_dsn).close()  # the collector's (or a puller's) start
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("SET enable_seqscan = off")  # a few rows: any index beats none here
        plan = conn.execute(
            "EXPLAIN " + _NEAR_SQL[">="], ["gate-east", "2026-03-01T16:00:00Z"]
        ).fetchall()
    text = "\n".join(row[0] for row in plan)
    assert "fleet_events_kiosk_ts" in text, text
