"""The office's day, as its clerk does it: the district's report sent up in the evening, the
gates' copies pulled by hand. Each test failed before its fix."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import psycopg
import pytest
from support import kiosk_api

from checkpoint.cli import main
from drivers.clocksync import system_clock
from kiosk.clock import FakeClock
from kiosk.days import local_day
from kiosk.store import EventDraft, EventLog
from office.district import district_csv, district_report, district_xlsx
from office.pg import PgTarget

pytest_plugins = ("pgfixture",)

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def _db_now(dsn: str) -> datetime:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0].astimezone(UTC)


def test_the_district_report_of_a_day_not_yet_over_says_its_figures_are_so_far(tmp_path, pg_dsn):
    """The clerk sends the report up at 17:30: the day's passages until then. The report
    read as the whole day's (no word that the day runs on, every gate 'complete'), and the
    district added it up as the day's total. A day not yet over says so: ``day_ended``
    false and ``as_of``, in the JSON and as a row of the CSV the clerk sends; a past day
    ``day_ended`` true."""
    now = _db_now(pg_dsn)
    day = now.date()
    then = max(now - timedelta(minutes=1), datetime(day.year, day.month, day.day, tzinfo=UTC))
    core = kiosk_api(tmp_path / "gate-1.db", "gate-1", FakeClock(start=then))
    try:
        core.store.append(EventDraft(direction="out", decision="pass", household="3-201"))
        with PgTarget(pg_dsn) as target:
            target.write_page("http://gate-1", "gate-1", core.store.events(limit=10))
    finally:
        core.store.close()
    report = district_report(pg_dsn, day, "UTC")
    assert report["events"] == 1
    assert report["day_ended"] is False
    assert now <= datetime.fromisoformat(report["as_of"]) < now + timedelta(minutes=5)
    csv = district_csv(report)
    assert "the day has not ended" in csv.split("report,as_of,")[1].splitlines()[0]
    earlier = district_report(pg_dsn, day - timedelta(days=1), "UTC")
    assert earlier["day_ended"] is True
    assert "has not ended" not in district_csv(earlier)


def test_a_gates_report_for_a_day_not_begun_is_refused_not_all_zeros(tmp_path, capsys):
    """The clerk typed next year (2027-03-02 for 2026-03-02): ``kiosk report`` printed a
    day of zeros, exit 0, and the zeros went into the sheet sent up. A day that has not
    begun on the site's clock, with no event in it, is refused naming today there; a past
    day still reports."""
    path = tmp_path / "kiosk.db"
    log = EventLog(path, "gate-1", system_clock(), "NORMAL").open()
    log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.5))
    today = local_day(log.events()[0]["ts"], "Asia/Shanghai")
    log.close()
    ahead = today.replace(year=today.year + 1) if today.month != 2 else today + timedelta(400)
    code = main(["report", "--day", ahead.isoformat(), "--db", str(path), "--csv",
                 str(tmp_path / "r.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "r.csv").exists()
    assert f"--day {ahead}: that day has not begun (today is {today} in Asia/Shanghai)" in err
    assert main(["report", "--day", today.isoformat(), "--db", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 1


def test_the_district_report_of_a_day_not_begun_is_refused(tmp_path, pg_dsn, monkeypatch, capsys):
    """``kiosk fleet report --day`` a year ahead printed zeros for every gate, as a quiet
    day; it is refused naming the database's today in the zone."""
    now = _db_now(pg_dsn)
    core = kiosk_api(tmp_path / "gate-1.db", "gate-1", FakeClock(start=now - timedelta(days=2)))
    try:
        core.store.append(EventDraft(direction="out", decision="pass", household="3-201"))
        with PgTarget(pg_dsn) as target:
            target.write_page("http://gate-1", "gate-1", core.store.events(limit=10))
    finally:
        core.store.close()
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    ahead = now.date() + timedelta(days=366)
    code = main(["fleet", "report", "--day", ahead.isoformat(), "--tz", "UTC"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert f"--day {ahead}: that day has not begun (today is {now.date()} in UTC)" in err
    assert main(["fleet", "report", "--day", now.date().isoformat(), "--tz", "UTC"]) == 0


def test_the_district_csv_and_workbook_carry_each_gates_figures_that_add_up_to_the_total(
    tmp_path, pg_dsn
):
    """The district received the CSV: one total of passages, fevers and denials, and not a
    figure of any gate (the workbook's ``by gate`` had the office's categories only), so the
    total could not be checked against the gates, nor a gate's share found. Each gate's
    events, passages passed and denied, fever alarms and whether its events are all held are
    rows of both, and they add up to the district's."""
    start = START
    cores = [
        kiosk_api(tmp_path / f"{name}.db", name, FakeClock(start=start))
        for name in ("gate-east", "gate-west")
    ]
    try:
        for n, core in enumerate(cores):
            for i in range(3 + n):
                fever = i == 0
                core.store.append(
                    EventDraft(
                        direction="in",
                        decision="deny" if fever else "pass",
                        reasons=("fever",) if fever else ("ok",),
                        household=f"{n}-10{i}",
                        temp_c=38.4 if fever else 36.5,
                    )
                )
        with PgTarget(pg_dsn) as target:
            for core in cores:
                kiosk_id = core.config.site.kiosk_id
                target.write_page(f"http://{kiosk_id}", kiosk_id, core.store.events(limit=10))
    finally:
        for core in cores:
            core.store.close()
    report = district_report(pg_dsn, start.date(), "Asia/Shanghai")
    rows = list(csv.reader(io.StringIO(district_csv(report))))
    for item, total in (("events", report["events"]), ("fever_alarms", 2),
                        ("passed", report["passages"]["passed"]),
                        ("denied", report["passages"]["denied"])):  # fmt: skip
        each = {r[0]: int(r[2]) for r in rows if r[0].startswith("gate ") and r[1] == item}
        assert each.keys() == {"gate gate-east", "gate gate-west"}, item
        assert sum(each.values()) == total, item
    assert ["gate gate-west", "passed", "3"] in rows
    book = openpyxl.load_workbook(io.BytesIO(district_xlsx(report)))
    sheet = {(r[0], r[1], r[2]): r[3] for r in book["by gate"].iter_rows(values_only=True)}
    assert sheet[("gate-east", "report", "denied")] == 1
    assert sheet[("gate-west", "report", "events")] == 4
    assert sheet[("gate-west", "people", "in")] == 3  # the office's categories, as before


def test_a_figure_no_gate_reported_is_written_unknown_never_a_blank_summed_as_0(tmp_path, pg_dsn):
    """No gate's ledgers reached the office today (the collector could not fetch them): the
    report holds returnees, service requests and quarantined households as ``null``, and the
    CSV and the workbook wrote them as blank cells, which the clerk's SUM (and the district's)
    adds as 0. They read ``unknown``, as the compounds sheet writes it."""
    core = kiosk_api(tmp_path / "gate-1.db", "gate-1", FakeClock(start=START))
    try:
        core.store.append(EventDraft(direction="in", decision="pass", household="1-101"))
        with PgTarget(pg_dsn) as target:
            target.write_page("http://gate-1", "gate-1", core.store.events(limit=10))
    finally:
        core.store.close()
    report = district_report(pg_dsn, START.date(), "Asia/Shanghai")
    assert report["community"]["returnees"] is None and report["ledgers"]["missing"] == ["gate-1"]
    rows = list(csv.reader(io.StringIO(district_csv(report))))
    assert ["returnees", "", "unknown"] in rows
    assert ["quarantined_households", "", "unknown"] in rows
    assert ["people", "in", "1"] in rows
    book = openpyxl.load_workbook(io.BytesIO(district_xlsx(report)))
    daily = {(r[0], r[1]): r[2] for r in book["daily report"].iter_rows(values_only=True)}
    assert daily[("service_requests", None)] == "unknown"
    by_gate = {(r[0], r[1], r[2]): r[3] for r in book["by gate"].iter_rows(values_only=True)}
    assert by_gate[("gate-1", "returnees", None)] == "unknown"
    assert by_gate[("gate-1", "people", "in")] == 1


def _pulled_then_more(tmp_path, monkeypatch):
    """A gate of 40 events pulled into central.db, 300 more since, and ``kiosk pull`` wired to
    it (its HTTP client the gate's API in process)."""
    from test_pull import Network, add_events, make_kiosk

    import office.pull
    from office.pull import pull

    core = make_kiosk(tmp_path / "gate-1.db", "gate-1", FakeClock(start=START), 40)
    target = tmp_path / "central.db"
    client = Network(core).client()
    pull("http://gate-1", core.token, target, client=client)
    add_events(core, 300)
    monkeypatch.setattr(office.pull.httpx, "Client", lambda *a, **k: client)
    return core, target


def _held(target, monkeypatch):
    import office.pull

    monkeypatch.setattr(office.pull, "BUSY_TIMEOUT_MS", 0)  # Excel holds it: no waiting here
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def _read_only(target, monkeypatch):
    import office.pull

    real = sqlite3.connect

    def read_only(path, *args, **kwargs):  # a file the clerk's account may not write
        if str(path) != str(target):
            return real(path, *args, **kwargs)
        return real(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(office.pull.sqlite3, "connect", read_only)


def _full(target, monkeypatch):
    import office.pull

    real = office.pull._connect

    def at_its_size(path):
        conn = real(path)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")  # the disk has no page more
        return conn

    monkeypatch.setattr(office.pull, "_connect", at_its_size)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "says", "again"),
    [
        (_held, "is held open by another program", "run kiosk pull again"),
        (_read_only, "cannot be written (read-only)", "run kiosk pull again"),
        # a full disk is said by the one reading of every verb's (kiosk.cardfault)
        (_full, "the disk is full", "and run it again; nothing was changed"),
    ],
)
def test_a_pull_into_a_file_held_read_only_or_on_a_full_disk_says_so_and_keeps_what_it_had(
    tmp_path, monkeypatch, capsys, make, says, again
):
    """The clerk has central.db open in a viewer while the pull writes (Windows' lock: here a
    held lock), or it is read-only, or the office PC's disk is full: the pull said 'cannot
    use central.db as a pull target: database is locked', as if the file were the wrong one.
    It says what is wrong and what to do, exit 1, the copy as it was; run again, it resumes
    with no gap and no double."""
    core, target = _pulled_then_more(tmp_path, monkeypatch)
    try:
        holder = make(target, monkeypatch)
        code = main(["pull", "http://gate-1", "--token", core.token, "--into", str(target)])
        err = capsys.readouterr().err
        assert code == 1 and says in err, err
        assert again in err and "as a pull target" not in err
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
        monkeypatch.undo()
        from test_pull import Network, kiosk_rows, target_rows

        import office.pull

        client = Network(core).client()
        monkeypatch.setattr(office.pull.httpx, "Client", lambda *a, **k: client)
        assert main(["pull", "http://gate-1", "--token", core.token, "--into", str(target)]) == 0
        assert target_rows(target) == kiosk_rows(core)
    finally:
        core.store.close()


def test_a_gates_report_of_today_says_the_day_runs_on_in_its_csv_and_workbook(tmp_path, capsys):
    """``kiosk report --day`` today, at the gate at 17:30, wrote a sheet that read as the
    whole day's. It says when it was made and, while the day runs on, that its figures are
    so far (``as_of``, ``day_ended``), as the district's does; a past day ``day_ended``."""
    path = tmp_path / "kiosk.db"
    log = EventLog(path, "gate-1", system_clock(), "NORMAL").open()
    log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.5))
    today = local_day(log.events()[0]["ts"], "Asia/Shanghai")
    log.close()
    sheet_csv, xlsx = tmp_path / "r.csv", tmp_path / "r.xlsx"
    argv = ["report", "--day", today.isoformat(), "--db", str(path)]
    assert main([*argv, "--csv", str(sheet_csv), "--xlsx", str(xlsx)]) == 0
    rows = list(csv.reader(io.StringIO(sheet_csv.read_text(encoding="utf-8"))))
    (as_of,) = [r for r in rows if r[:2] == ["report", "as_of"]]
    assert as_of[2].endswith("(Asia/Shanghai): the day has not ended, these are its figures so far")
    book = openpyxl.load_workbook(xlsx)
    cells = {(r[0], r[1]): r[2] for r in book["daily report"].iter_rows(values_only=True)}
    assert "the day has not ended" in cells[("report", "as_of")]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["day_ended"] is False and printed["as_of"]
    past = (today - timedelta(days=1)).isoformat()
    assert main(["report", "--day", past, "--db", str(path), "--csv", str(sheet_csv)]) == 0
    assert "has not ended" not in sheet_csv.read_text(encoding="utf-8")


def test_a_gates_ledger_figures_taken_before_its_day_ended_are_named_in_the_sheets(
    tmp_path, pg_dsn
):
    """South's ledgers (returnees, service requests) were fetched at 09:00 and then it went
    off the network: the district's CSV summed its morning figures with north's whole day
    and wrote ``ledgers, gates, gate-north, gate-south``, as if both were the day's; only
    the JSON said ``final: false``. A gate whose figures were taken before its day ended is
    a row of the CSV and the workbook, with when they were taken."""
    from test_fleet_quota import _gate, _out, _to_the_office

    north, south = _gate(tmp_path, "gate-north"), _gate(tmp_path, "gate-south")
    try:
        _out(north, "3-201", 0)
        _out(south, "4-101", 0)
        north.clock.set_wall(START + timedelta(days=1))  # north's day is over when fetched
        _to_the_office(pg_dsn, north, south)
    finally:
        north.store.close()
        south.store.close()
    report = district_report(pg_dsn, START.date(), "Asia/Shanghai")
    final = {g["kiosk_id"]: g["final"] for g in report["ledgers"]["gates"]}
    assert final == {"gate-north": True, "gate-south": False}
    rows = list(csv.reader(io.StringIO(district_csv(report))))
    (row,) = [r for r in rows if r[0] == "ledgers_not_final"]
    assert row[1] == "gate-south"
    (held,) = [g for g in report["ledgers"]["gates"] if g["kiosk_id"] == "gate-south"]
    taken = datetime.fromisoformat(held["as_of"]).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"taken {taken:%Y-%m-%d %H:%M} (Asia/Shanghai), before its day ended" in row[2]
    book = openpyxl.load_workbook(io.BytesIO(district_xlsx(report)))
    cells = {(r[0], r[1]): r[2] for r in book["daily report"].iter_rows(values_only=True)}
    assert "before its day ended" in cells[("ledgers_not_final", "gate-south")]
