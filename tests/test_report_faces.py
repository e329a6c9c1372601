"""The gate's report files and the guard's exports say what the other faces say: the
households' outings in ``kiosk report --csv/--xlsx`` and the console's ``report.{csv,xlsx}``
and ``export.xlsx`` as in the JSON; a day's export whole or refused, never cut; a day typed
the same way taken or refused the same way by the console, the API and ``kiosk report``."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime

import openpyxl
import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, close_core, login, make_app, make_core
from support import kiosk_api, reporting_log

from checkpoint.cli import main
from kiosk import queries
from kiosk.categories import exits_rows
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.config.policy import QuotaConfig
from kiosk.days import OutsideDays, typed_day
from kiosk.stats import daily_report, report_file
from kiosk.store import EventDraft
from ui.guard.display import report_summary

DAY = date(2026, 3, 2)
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def outings(tmp_path):
    """A day of two outings of household A-101 under a quota of 1 in 2 days: one over."""
    clock = FakeClock(start=START)
    log = reporting_log(tmp_path / "k.db", clock)
    for _ in range(2):
        log.append(
            EventDraft(direction="out", decision="pass", reasons=("ok",), temp_c=36.5,
                       pass_id="aa01", household="A-101", holder="Li Lei",
                       flags=("role:resident",))
        )  # fmt: skip
        clock.advance(3600)
    quota = QuotaConfig(enabled=True, exits=1, period_days=2)
    try:
        yield daily_report(log.reader(), DAY, "Asia/Shanghai", quota)
    finally:
        log.close()


def _exits(rows) -> dict[str, object]:
    return {r[1]: r[2] for r in rows if r and r[0] == "exits_per_household"}


def test_the_gates_report_files_carry_the_households_outings_as_its_json(outings):
    exits = outings["exits_per_household"]
    assert (exits["households"], exits["exits"], exits["over_quota_households"]) == (1, 2, 1)
    text = report_file(outings, "csv").decode("utf-8-sig")
    in_csv = _exits(csv.reader(io.StringIO(text)))
    book = openpyxl.load_workbook(io.BytesIO(report_file(outings, "xlsx")))
    in_xlsx = _exits(book["daily report"].iter_rows(values_only=True))
    assert in_csv["households"] == "1" and in_xlsx["households"] == 1
    assert in_csv["exits"] == "2" and in_xlsx["exits"] == 2
    assert in_csv["over_quota_households"] == "1" and in_xlsx["over_quota_households"] == 1
    assert in_csv["quota_exits"] == "1" and in_csv["period_days"] == "2"
    assert in_csv["quota_changes"] == "none" == in_xlsx["quota_changes"]


def test_an_outing_figure_the_report_does_not_know_is_written_unknown_never_blank():
    section = {
        "quota_enabled": True, "quota_exits": 1, "period_days": 2, "quota_roles": [],
        "households": None, "exits": 3, "max": None, "over_quota_households": None,
    }  # fmt: skip
    rows = _exits(exits_rows(section, "Asia/Shanghai"))
    assert rows["households"] == rows["max"] == rows["over_quota_households"] == "unknown"
    assert rows["exits"] == 3 and rows["quota_roles"] == "every role"


def test_a_day_whose_quota_changed_writes_its_rules_as_the_district_does():
    section = {
        "quota_enabled": True, "quota_exits": 1, "period_days": 2, "quota_roles": ["resident"],
        "households": 0, "exits": 0, "max": 0, "over_quota_households": 0,
        "quota_changes": [
            {"from": None, "quota_enabled": False, "quota_exits": 2, "period_days": 1,
             "quota_roles": []},
            {"from": "2026-03-02T04:00:00+00:00", "quota_enabled": True, "quota_exits": 1,
             "period_days": 2, "quota_roles": ["resident"]},
        ],
        "quota_changes_left_out": 3,
    }  # fmt: skip
    rows = _exits(exits_rows(section, "Asia/Shanghai"))
    assert (
        rows["quota_changes"]
        == "start off; (3 more rules not listed); 12:00 1 every 2 days (resident)"
    )


def test_a_report_without_outings_counted_writes_no_outing_rows():
    assert exits_rows(None, "UTC") == []


def test_the_guards_export_figures_carry_the_households_out_and_over_the_quota(outings):
    summary = dict(report_summary(outings, "en"))
    assert summary["Households that went out"] == 1
    assert summary["Households over the outing quota"] == 1
    outings["exits_per_household"]["over_quota_households"] = None
    assert dict(report_summary(outings, "en"))["Households over the outing quota"] == "unknown"


@pytest.fixture
def console(tmp_path, monkeypatch):
    clock = FakeClock(start=datetime(2026, 10, 26, 12, 0, tzinfo=UTC))
    data = tmp_path / "data"
    data.mkdir()
    core = make_core(data, clock, monkeypatch, parse_config({"site": {"timezone": "UTC"}}))
    try:
        with TestClient(make_app(core), base_url=BASE, raise_server_exceptions=False) as c:
            login(c, "root", "office-admin-pw")
            yield core, clock, c
    finally:
        close_core(core)


def test_a_day_with_more_events_than_an_export_holds_is_refused_naming_how_many(
    console, monkeypatch
):
    core, clock, c = console
    for _ in range(12):
        core.store.append(EventDraft(direction="in", decision="pass", reasons=("ok",), temp_c=36.5))
        clock.advance(60)
    monkeypatch.setattr(queries, "MAX_ROWS", 1)  # an export holds 10
    page = c.get("/guard/stats?day=2026-10-26&lang=en").text
    assert re.search(r'<div class="v">12</div><div class="l">Total', page)
    for fmt in ("csv", "xlsx"):
        r = c.get(f"/guard/export.{fmt}?day=2026-10-26&lang=en")
        assert r.status_code == 400 and "attachment" not in r.headers.get("content-disposition", "")
        assert "The day holds 12 events, more than one export holds (10)" in r.text
    monkeypatch.setattr(queries, "MAX_ROWS", 2)
    whole = c.get("/guard/export.csv?day=2026-10-26&lang=en")
    assert whole.status_code == 200 and len(whole.text.strip().splitlines()) == 13


@pytest.mark.parametrize(
    "text", ["20261025", "2026-W43-7", "2026-298", "2026-02-30", "2026-13-01", "2026-1-1",
             "2026-10-25\n", "２０２６-10-25", "2026-10-25T00", "", "x" * 5000],
)  # fmt: skip
def test_a_day_is_only_ever_written_yyyy_mm_dd(text):
    with pytest.raises(ValueError, match="YYYY-MM-DD|day is out of range|must be in"):
        typed_day(text)


def test_a_typed_day_outside_the_days_a_person_may_type_is_said_so():
    assert typed_day("2026-10-25") == date(2026, 10, 25)
    for text in ("1999-12-31", "3000-01-01"):
        with pytest.raises(OutsideDays):
            typed_day(text)


BAD_DAYS = ["20261025", "2026-W43-7", "2026-02-30", "2026-13-01", "1999-12-31", "9998-12-31"]


def test_the_api_the_console_and_kiosk_report_refuse_the_same_days(tmp_path, console, capsys):
    _core, _clock, c = console
    api = kiosk_api(tmp_path / "api.db", "gate-1", _clock, scopes=("stats:read",))
    auth = {"Authorization": f"Bearer {api.token}"}
    try:
        for text in BAD_DAYS:
            assert (
                api.test_client.get("/api/v1/stats", params={"day": text}, headers=auth).status_code
                == 422
            ), text
            assert c.get("/guard/stats", params={"day": text}).status_code == 400, text
            assert c.get("/guard/export.csv", params={"day": text}).status_code == 400, text
            assert main(["report", "--day", text, "--db", str(tmp_path / "api.db")]) == 2, text
        capsys.readouterr()
        today = api.test_client.get("/api/v1/stats", params={"day": ""}, headers=auth)
        assert today.status_code == 200 and today.json()["day"] == "2026-10-26"
        assert c.get("/guard/stats", params={"day": ""}).status_code == 200
    finally:
        api.store.close()
