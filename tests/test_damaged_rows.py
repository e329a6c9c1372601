"""One event row whose stored fields cannot be read (an SD card's bit rot, a hand edit with the
append-only trigger dropped): before, its day's report raised (``/api/v1/stats`` and the
console's statistics, Excel export and community report 500, ``kiosk report`` a traceback,
exit 1) and so did the freeze before each retention purge, so personal data past retention
was never nulled. Now the row is left out of every figure, counted as ``unreadable_rows`` and
logged once by its ``seq``."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, login, make_app
from support import kiosk_api, reporting_log

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.retention import purge
from kiosk.stats import daily_report
from kiosk.store import EventDraft

DAY = date(2026, 10, 25)
BERLIN = {"site": {"timezone": "Europe/Berlin"}}
#: Each damage as SQL: reasons and flags not JSON (or not a list), a temperature not a number.
DAMAGE = {
    "reasons": "'{not json'",
    "flags": "'[\"overrides:'",
    "flags_not_a_list": "'\"overrides:1\"'",
    "temp_c": "'hot'",
    "person": "'{\"name\": '",
}


def damage(path, field: str, seq: int = 2) -> None:
    """Edit row ``seq``'s ``field`` by hand, as a bit flip or an editor would."""
    column = "flags" if field.startswith("flags") else field
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER events_append_only_update")
    db.execute(f"UPDATE events SET {column} = {DAMAGE[field]} WHERE seq = ?", [seq])  # noqa: S608
    db.commit()
    db.close()


def fever_let_through(store, clock, **who: str) -> None:
    """A fever deny at 11:00 (seq 1), then the guard's pass over it (seq 2)."""
    deny = store.append(
        EventDraft(direction="in", decision="deny", reasons=("fever",), temp_c=38.5, **who)
    )
    clock.advance(30)
    store.append(
        EventDraft(
            direction="in",
            decision="manual_pass",
            reasons=("guard_override",),
            operator="alice",
            flags=(f"overrides:{deny.seq}",),
            temp_c=38.5,
            **who,
        )
    )


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 10, 25, 9, 0, tzinfo=UTC))


@pytest.mark.parametrize("field", list(DAMAGE))
def test_a_damaged_row_is_left_out_of_the_days_report_and_counted(field, tmp_path, clock):
    """Before: JSONDecodeError (reasons, flags) or ValueError (temp_c) out of
    ``daily_report``. The guard's pass is left out: the day is the fever deny alone, and the
    damaged row is no pass."""
    store = reporting_log(tmp_path / "k.db", clock)
    try:
        fever_let_through(store, clock)
        damage(store.path, field)
        report = daily_report(store.reader(), DAY, "Europe/Berlin")
    finally:
        store.close()
    assert report["unreadable_rows"] == 1
    assert (report["events"], report["by_decision"]) == (1, {"deny": 1})
    assert report["passages"]["passed"] == 0 and report["passages"]["denied"] == 1
    assert report["community"]["people"]["in"] == 0
    assert report["overrides"]["let_through_over_a_deny"] == 0


def test_a_sound_day_reports_no_unreadable_rows(tmp_path, clock):
    store = reporting_log(tmp_path / "k.db", clock)
    try:
        fever_let_through(store, clock)
        report = daily_report(store.reader(), DAY, "Europe/Berlin")
    finally:
        store.close()
    assert report["unreadable_rows"] == 0 and report["passages"]["passed"] == 1


def test_the_damaged_row_is_logged_once_by_its_seq_and_no_name(tmp_path, clock, caplog):
    store = reporting_log(tmp_path / "k.db", clock, "gate-damaged-log")
    try:
        fever_let_through(store, clock, holder="Zhangsan Secret", household="A-101")
        damage(store.path, "reasons")
        with caplog.at_level(logging.DEBUG):
            daily_report(store.reader(), DAY, "Europe/Berlin")
            daily_report(store.reader(), DAY, "Europe/Berlin")
    finally:
        store.close()
    told = [r.getMessage() for r in caplog.records if r.name == "kiosk.unreadable"]
    assert len(told) == 1 and "event seq 2: its reasons cannot be read" in told[0]
    assert not any(
        "Zhangsan" in r.getMessage() or "A-101" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize("field", ["reasons", "flags", "temp_c"])
def test_the_office_api_answers_the_day_with_the_row_counted(field, tmp_path, clock):
    """Before: ``/api/v1/stats`` for the day was a 500."""
    api = kiosk_api(tmp_path / "k.db", "gate-1", clock, scopes=("stats:read",), config=BERLIN)
    try:
        fever_let_through(api.store, clock)
        damage(api.store.path, field)
        clock.set_wall(datetime(2026, 10, 27, 3, 0, tzinfo=UTC))
        client = TestClient(api.app, raise_server_exceptions=False)
        r = client.get(
            "/api/v1/stats?day=2026-10-25", headers={"Authorization": f"Bearer {api.token}"}
        )
    finally:
        api.store.close()
    assert r.status_code == 200, r.text
    assert r.json()["unreadable_rows"] == 1 and r.json()["events"] == 1


def test_the_consoles_statistics_and_files_answer_the_day(guard_core, clock):
    """Before: /guard/stats, /guard/export.xlsx and /guard/community/report.csv were 500s (the
    CSV export, read forgivingly, was a 200)."""
    fever_let_through(guard_core.store, clock)
    damage(guard_core.store.path, "reasons")
    clock.advance(3600)
    with TestClient(make_app(guard_core), base_url=BASE, raise_server_exceptions=False) as c:
        login(c)
        paths = ("/guard/stats", "/guard/export.xlsx", "/guard/community/report.csv")
        status = [c.get(p, params={"day": "2026-10-25"}).status_code for p in paths]
    assert status == [200, 200, 200]


def test_kiosk_report_prints_the_day_with_the_row_counted(tmp_path, clock, capsys):
    """Before: a 29-line traceback, exit 1."""
    store = reporting_log(tmp_path / "k.db", clock)
    fever_let_through(store, clock)
    store.close()
    damage(tmp_path / "k.db", "reasons")
    capsys.readouterr()
    assert main(["report", "--day", "2026-10-25", "--db", str(tmp_path / "k.db")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["unreadable_rows"], report["events"]) == (1, 1)


def test_the_purge_nulls_what_retention_says_past_a_damaged_day(tmp_path):
    """Before: the purge froze the damaged day first, which raised, so the resident's
    passage of 2026-09-01, past a 30-day retention, kept its name every hour."""
    clock = FakeClock(start=datetime(2026, 9, 1, 9, 0, tzinfo=UTC))
    store = reporting_log(tmp_path / "k.db", clock)
    store.append(
        EventDraft(
            direction="out",
            decision="pass",
            reasons=("ok",),
            temp_c=36.5,
            pass_id="aa01aa01aa01",
            household="A-101",
            holder="Old Resident",
        )
    )
    clock.set_wall(datetime(2026, 10, 25, 9, 0, tzinfo=UTC))
    fever_let_through(store, clock)
    damage(store.path, "reasons", seq=3)
    try:
        result = purge(store, 30, datetime(2026, 11, 5, 3, 0, tzinfo=UTC), tz="Europe/Berlin")
        holder = store.reader().execute("select holder from events where seq = 1").fetchone()[0]
        frozen = daily_report(store.reader(), DAY, "Europe/Berlin")
    finally:
        store.close()
    assert result.events_purged == 1 and holder is None
    assert (frozen["unreadable_rows"], frozen["events"]) == (1, 1)  # frozen, left out too


@pytest.mark.parametrize("field", ["temp_c", "reasons", "person"])
def test_a_damaged_deny_still_ends_its_passage_denied(field, tmp_path, clock):
    """A resident's exit pass the gate did not open for (the kiosk's deny ``not_opened:1``),
    the deny's ``field`` damaged: left out whole, it let the pass stand as the passage's end,
    a pass and the household's outing in the report (review of 5b5fd35e). A damaged deny is
    kept, its damaged field read as nothing; a damaged pass is still left out."""
    store = reporting_log(tmp_path / "k.db", clock)
    try:
        who = {"pass_id": "aa01aa01aa01", "household": "A-101", "holder": "R"}
        out = store.append(
            EventDraft(direction="out", decision="pass", reasons=("ok",), temp_c=36.5, **who)
        )
        clock.advance(5)
        gate_fault = {"reasons": ("gate_fault",), "flags": (f"not_opened:{out.seq}",)}
        store.append(EventDraft(direction="out", decision="deny", temp_c=36.5, **gate_fault, **who))
        damage(store.path, field)
        report = daily_report(store.reader(), DAY, "Europe/Berlin")
    finally:
        store.close()
    assert report["unreadable_rows"] == 1
    assert report["by_decision"] == {"pass": 1, "deny": 1}
    assert (report["passages"]["passed"], report["passages"]["denied"]) == (0, 1)
    assert report["exits_per_household"]["households"] == 0
