"""Issue 17 item 11: the statistics page shows every reason with readable labels on whole-
number axes, counts registrations, vehicles and quarantined households; the daily report is
exported as the office files it (local time, Chinese headers, reasons in words, no internal
columns) as CSV with a BOM and as .xlsx, checked here against the events."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from guard_support import ADMIN_PW, BASE, add_event, login, make_app

from ui import i18n
from ui.charts import Bar, axis_ticks, bar_chart, hbar_chart, text_width

SVG = "{http://www.w3.org/2000/svg}"
#: Nine deny reasons: more than the old cap of eight.
REASONS = (
    "fever",
    "pass_expired",
    "pass_revoked",
    "quarantined",
    "quota_exceeded",
    "passback",
    "outside_hours",
    "no_pass",
    "pass_unknown_key",
)


def a_day(guard_core) -> list[dict]:
    """A day at the gate: kiosk passes and denies, a registration, two vehicles."""
    add_event(
        guard_core,
        decision="pass",
        temp_c=36.5,
        household="1-101",
        holder="王秀英",
        pass_id="ab" * 6,
    )
    for i, code in enumerate(REASONS):
        add_event(guard_core, decision="deny", reasons=(code,), temp_c=36.6 + i / 10)
    add_event(
        guard_core,
        decision="manual_pass",
        reasons=("guard_override",),
        operator="alice",
        kind="registration",
        person={"name": "李雷", "phone": "13900139000", "unit": "3-402", "note": "送货"},
        temp_c=36.4,
    )
    for plate in ("京A12345", "沪B99999"):
        add_event(
            guard_core,
            decision="manual_pass",
            reasons=("guard_override",),
            operator="alice",
            kind="vehicle",
            person={"plate": plate, "driver": "赵刚", "driver_temp_c": 36.5,
                    "passengers": [{"name": "赵敏", "temp_c": 36.7}], "occupants": 1,
                    "note": "搬家"},
            temp_c=36.7,
        )  # fmt: skip
    guard_core.lists.add_quarantine(
        household="5-202",
        holder=None,
        from_date=date(2026, 3, 1),
        until_date=date(2026, 3, 14),
        note="",
        actor="t",
    )
    return guard_core.store.events()


def test_every_reason_is_shown_with_counts_of_registrations_vehicles_and_quarantine(
    guard_client, guard_core
):
    a_day(guard_core)
    login(guard_client)
    page = guard_client.get("/guard/stats?day=2026-03-02").text
    chart = page.split('id="by-reason"')[1].split("</svg>")[0]
    labels = re.findall(r'<text class="label"[^>]*>([^<]+)<', chart)
    assert sorted(labels) == sorted(i18n.reason_text("zh-CN", c) for c in REASONS)
    for kpi, n in (("registrations", 1), ("vehicles", 2), ("quarantined", 1)):
        assert re.search(rf'id="kpi-{kpi}"><div class="v">{n}</div>', page), kpi


def test_the_reasons_chart_has_a_row_per_reason_and_labels_that_do_not_overlap():
    bars = [Bar(f"原因很长的一段文字{i}", i + 1, "deny") for i in range(12)]
    root = ET.fromstring(hbar_chart(bars, title="t"))
    labels = [e for e in root.iter(SVG + "text") if e.get("class") == "label"]
    ys = [float(e.get("y")) for e in labels]
    assert len(labels) == 12
    assert min(b - a for a, b in zip(ys, ys[1:], strict=False)) >= 11 + 4  # a line apart
    label_right = max(float(e.get("x")) for e in labels)
    bars_left = min(float(r.get("x")) for r in root.iter(SVG + "rect"))
    assert label_right <= bars_left  # labels end left of the bars


def test_vertical_bar_labels_are_thinned_until_they_fit_their_slot():
    bars = [Bar(f"标签{i:02d}", 1) for i in range(24)]
    svg = bar_chart(bars, title="t", width=640)
    shown = re.findall(r'class="label" x="([\d.]+)"[^>]*>([^<]+)<', svg)
    xs = [float(x) for x, _ in shown]
    widest = max(text_width(label) for _x, label in shown)
    assert len(shown) < 24 and min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= widest


@pytest.mark.parametrize("top", [1, 2, 5, 10, 20, 50])
def test_count_axes_are_whole_numbers(top):
    assert all(float(t).is_integer() for t in axis_ticks(float(top), [1.0, float(top)]))
    svg = (
        bar_chart([Bar("a", top * 0.8)], title="t")
        if top > 1
        else bar_chart([Bar("a", 1)], title="t")
    )
    axis = re.findall(r'class="axis"[^>]*>([^<]+)<', svg)
    assert all(re.fullmatch(r"\d+", a) for a in axis), axis


def test_fractional_values_keep_the_half_tick():
    assert axis_ticks(5.0, [0.5, 2.5]) == [0.0, 2.5, 5.0]


def local(ts: str) -> str:
    return (
        datetime.fromisoformat(ts)
        .astimezone(ZoneInfo("Asia/Shanghai"))
        .strftime("%Y-%m-%d %H:%M:%S")
    )


def test_the_csv_is_the_office_table(guard_client, guard_core):
    events = a_day(guard_core)
    login(guard_client)
    response = guard_client.get("/guard/export.csv?day=2026-03-02")
    assert response.content.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    header, body = rows[0], rows[1:]
    assert header[:6] == ["时间", "闸机", "方向", "类型", "结果", "原因"]
    assert not re.search(r"[A-Za-z]", "".join(header).replace("°C", ""))  # Chinese headers
    assert not {"hash", "latency_ms", "prev_hash", "seq", "temp_object_c"} & set(header)
    assert len(body) == len(events)
    assert [r[0] for r in body] == [local(e["ts"]) for e in events]  # local time
    assert body[0][0].endswith("16:30:00")  # 08:30 UTC is 16:30 in Shanghai
    assert [r[5] for r in body[1:10]] == [i18n.reason_text("zh-CN", c) for c in REASONS]
    assert all("[" not in r[5] and "_" not in r[5] for r in body)  # reasons in words
    vehicle = body[-1]
    assert vehicle[3] == "车辆登记" and vehicle[10] == "沪B99999"
    assert vehicle[11] == "赵刚 36.5 °C、赵敏 36.7 °C"
    assert "13900139000" not in response.text  # masked for a guard


def test_the_xlsx_holds_the_days_figures_and_its_events(guard_client, guard_core):
    from openpyxl import load_workbook

    events = a_day(guard_core)
    login(guard_client)
    response = guard_client.get("/guard/export.xlsx?day=2026-03-02")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["当日统计", "通行记录"]
    figures = {row[0]: row[1] for row in book["当日统计"].iter_rows(values_only=True)}
    passes = sum(e["decision"] in ("pass", "manual_pass") for e in events)
    denies = sum(e["decision"] in ("deny", "manual_deny") for e in events)
    assert figures["合计"] == len(events) and figures["通过"] == passes
    assert figures["拒绝"] == denies == len(REASONS)
    assert figures["人员登记"] == 1 and figures["车辆登记"] == 2 and figures["居家隔离户数"] == 1
    assert sum(v for k, v in figures.items() if str(k).startswith("拒绝原因：")) == len(REASONS)
    sheet = list(book["通行记录"].iter_rows(values_only=True))
    assert len(sheet) == len(events) + 1
    temps = [r[6] for r in sheet[1:]]
    assert temps == [round(e["temp_c"], 1) for e in events]  # numbers, not text
    assert isinstance(temps[0], float)
    assert [r[0] for r in sheet[1:]] == [local(e["ts"]) for e in events]
    assert any(a["action"] == "export_xlsx" for a in guard_core.store.audits())


def test_a_formula_typed_into_a_name_stays_text_in_the_xlsx(guard_client, guard_core):
    from openpyxl import load_workbook

    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), kind="registration",
              person={"name": "=HYPERLINK(\"x\")"})  # fmt: skip
    with TestClient(make_app(guard_core), base_url=BASE) as admin:
        login(admin, "root", ADMIN_PW)
        book = load_workbook(io.BytesIO(admin.get("/guard/export.xlsx?day=2026-03-02").content))
    cell = book["通行记录"]["I2"]
    assert cell.data_type == "s" and str(cell.value).startswith("=HYPERLINK")


def test_the_xlsx_export_needs_a_session_and_a_good_day(guard_client):
    assert guard_client.get("/guard/export.xlsx", follow_redirects=False).status_code == 303
    login(guard_client)
    assert guard_client.get("/guard/export.xlsx?day=yesterday").status_code == 400


def test_the_xlsx_counts_unregistered_vehicles_against_the_resident_list(guard_client, guard_core):
    from openpyxl import load_workbook

    from kiosk import vehicles
    from kiosk.vehicles import VehicleList

    guard_core.store.submit(vehicles.MIGRATIONS.apply)
    cars = VehicleList(guard_core.store, guard_core.clock)
    cars.apply(cars.plan_import("plate,household\n京A12345,3-402\n".encode(), "c.csv"), "t")
    a_day(guard_core)  # 京A12345 (a resident's) and 沪B99999 (not on the list)
    login(guard_client)
    book = load_workbook(io.BytesIO(guard_client.get("/guard/export.xlsx?day=2026-03-02").content))
    figures = dict(book["当日统计"].iter_rows(values_only=True))
    assert figures["非本小区登记车辆"] == 1 and figures["车辆登记"] == 2


@pytest.mark.parametrize("prefix", ["\t", "\r"])
def test_a_name_starting_with_a_tab_or_carriage_return_is_never_a_formula_in_the_csv(
    guard_client, guard_core, prefix
):
    """A spreadsheet skips a leading tab or CR and runs what follows as a formula: the API's
    CSV neutralised them, the guard's did not (one rule for both now)."""
    add_event(guard_core, decision="manual_pass", reasons=("guard_override",), kind="registration",
              person={"name": prefix + "=cmd|calc", "note": prefix + "@SUM(1)"})  # fmt: skip
    login(guard_client)
    response = guard_client.get("/guard/export.csv?day=2026-03-02")
    row = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))[0]
    assert row["姓名"] == "'" + prefix + "=cmd|calc"
    assert row["事由或备注"] == "'" + prefix + "@SUM(1)"


def test_the_api_and_the_guard_console_write_csv_text_by_one_rule():
    from kiosk.sheets import FORMULA_STARTS, formula_safe
    from ui.api import _csv_cell
    from ui.guard.display import events_csv

    for start in FORMULA_STARTS:
        text = start + "1+1"
        guard_cell = list(csv.reader(io.StringIO(events_csv(["h"], [[text]])[1:])))[1][0]
        assert _csv_cell(text) == guard_cell == formula_safe(text) == "'" + text
    assert _csv_cell(-3.5) == -3.5 and events_csv(["h"], [[-3.5]]).endswith("-3.5\r\n")
    assert formula_safe("张三") == "张三"


def test_the_guard_consoles_csv_is_the_one_writers_csv_behind_a_bom():
    """The guard's export and the kiosk's other sheets are written by one writer
    (``kiosk.sheets.write_csv``): the same CR LF line ends and the same quoting of a cell with
    a comma, a quote, a CR, an LF or a lone CR. Only the BOM (Excel on a Chinese Windows) and
    the formula rule for text cells are the guard export's own."""
    from kiosk.sheets import formula_safe, write_csv
    from ui.guard.display import events_csv

    headers = ["时间", "姓名", "事由或备注", "体温"]
    table = [
        ["2026-03-02 08:00:00", "张, 三", 'say "hi"', 36.6],
        ["2026-03-02 08:01:00", "a\rb", "c\r\nd", None],
        ["2026-03-02 08:02:00", "=1+1", "e\nf", -3],
    ]
    text = events_csv(headers, table)
    expected_rows = [[c if isinstance(c, int | float) else formula_safe(c or "") for c in r]
                     for r in table]  # fmt: skip
    assert text == "\ufeff" + write_csv([headers, *expected_rows])
    assert text.count("\r\n") == 1 + len(table) + 1  # the rows, and one CR LF inside a cell
    assert list(csv.reader(io.StringIO(text[1:], newline="")))[2][1:3] == ["a\rb", "c\r\nd"]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_repeated_autumn_hour_is_told_apart_in_the_csv_and_xlsx(lang):
    """Berlin's clocks go back at 03:00 on 25 October 2026: 00:30 and 01:30 UTC are both
    02:30 local. Each exported row says its offset from UTC (a column added at the end, the
    damaged fields' one after it)."""
    from openpyxl import load_workbook

    from ui.guard.display import events_csv, events_xlsx, export_table

    rows = [
        {"ts": f"2026-10-25T0{h}:30:00+00:00", "kiosk_id": "gate-1", "direction": "in",
         "decision": "pass", "reasons": ["ok"]}
        for h in (0, 1)
    ]  # fmt: skip
    headers, table = export_table(rows, lang, ZoneInfo("Europe/Berlin"), frozenset())
    assert headers[:-2] == [i18n.t(lang, k) for k in (
        "export.time", "export.gate", "export.direction", "export.kind", "export.decision",
        "export.reasons", "export.temp", "export.household", "export.name", "export.phone",
        "export.plate", "export.occupants", "export.note", "export.operator",
        "export.pass_id")]  # fmt: skip
    assert headers[-2] == i18n.t(lang, "export.utc_offset")
    assert [r[0] for r in table] == ["2026-10-25 02:30:00"] * 2  # the clerk's local time
    assert [r[-2] for r in table] == ["UTC+02:00", "UTC+01:00"]
    text = events_csv(headers, table).lstrip("\ufeff")
    body = list(csv.reader(io.StringIO(text)))[1:]
    assert [(r[0], r[-2]) for r in body] == [
        ("2026-10-25 02:30:00", "UTC+02:00"),
        ("2026-10-25 02:30:00", "UTC+01:00"),
    ]
    sheet = load_workbook(io.BytesIO(events_xlsx(headers, table, [], lang))).worksheets[1]
    assert [r[-2] for r in sheet.iter_rows(min_row=2, values_only=True)] == [
        "UTC+02:00",
        "UTC+01:00",
    ]


def _chart_tables(page: str) -> dict[str, list[list[str]]]:
    """Each chart's name (its aria-label) → the rows of the table a screen reader reads
    beside it (header first), from the page's HTML."""
    found = {}
    for name, table in re.findall(
        r'<svg[^>]*role="img" aria-label="([^"]+)".*?</svg>\s*<div class="sr-only">'
        r"<table>(.*?)</table></div>",
        page,
        flags=re.S,
    ):
        caption = re.search(r"<caption>(.*?)</caption>", table, flags=re.S)
        assert caption and caption.group(1) == name
        rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
        found[name] = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, flags=re.S) for r in rows]
    return found


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_each_chart_gives_a_screen_reader_its_figures(guard_client, guard_core, lang):
    a_day(guard_core)
    login(guard_client)
    page = guard_client.get(f"/guard/stats?day=2026-03-02&lang={lang}").text
    tables = _chart_tables(page)
    _ = i18n.translator(lang)
    assert set(tables) == {_(k) for k in ("stats.per_hour", "stats.by_reason",
                                          "stats.temp_hist", "stats.exits")}  # fmt: skip
    hours = tables[_("stats.per_hour")]
    assert hours[0] == [_("stats.col_hour"), _("stats.col_passages")]
    assert [r[0] for r in hours[1:]] == [f"{h:02d}" for h in range(24)]
    assert sum(int(r[1]) for r in hours[1:]) > 0
    reasons = tables[_("stats.by_reason")]
    assert reasons[0] == [_("stats.col_reason"), _("stats.col_denies")]
    assert sorted(r[0] for r in reasons[1:]) == sorted(i18n.reason_text(lang, c) for c in REASONS)
    assert all(r[1] == "1" for r in reasons[1:])
    temps = tables[_("stats.temp_hist")]
    assert temps[0] == [_("stats.col_temp"), _("stats.col_people")]
    assert sum(int(r[1]) for r in temps[1:]) == 13  # every reading of the day
    exits = tables[_("stats.exits")]
    assert exits[0] == [_("stats.col_exits"), _("stats.col_households")]


def test_a_chart_with_no_figures_tells_a_screen_reader_so(guard_client):
    login(guard_client)
    page = guard_client.get("/guard/stats?day=2026-03-01&lang=en").text
    tables = _chart_tables(page)
    assert len(tables) == 4
    for rows in tables.values():
        assert rows[1:] == [["No data for this day"]]
