"""The report the office files: its files in the office's language, its CSV opening in Excel,
the day split by staffed hours, and the time the gate was down."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from guard_support import console_fixtures

from checkpoint.cli import main
from kiosk import lists, stats
from kiosk.categories import report_csv, report_xlsx
from kiosk.clock import FakeClock
from kiosk.ledgers import MIGRATIONS
from kiosk.store import EventDraft, EventLog
from office.district import district_csv, district_xlsx
from ui.report_words import file_words

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 2, 12)
MIDNIGHT = datetime(2026, 2, 11, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on DAY
ZH = file_words("zh-CN")

#: The console at 09:00 Shanghai on DAY.
clock, core, app, alice, admin = console_fixtures(MIDNIGHT + timedelta(hours=9))


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.fixture
def gate_log(tmp_path):
    """A gate's log with a day: a resident in at 09:00, a fever at 10:00."""
    at = FakeClock(start=MIDNIGHT + timedelta(hours=9))
    sets = [lists.MIGRATIONS, stats.MIGRATIONS, *MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "gate-1", at, "NORMAL", migrations=sets).open()
    log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.5))
    at.advance(3600)
    log.append(EventDraft(direction="in", decision="deny", reasons=("fever",), temp_c=38.4))
    yield log
    log.close()


def test_a_report_file_in_chinese_keeps_its_codes_and_adds_the_words(gate_log):
    """Before: every report file had English labels only (``category,item,value``, sheets
    ``daily report``...), while the office's clerks read Chinese. In zh-CN the header and the
    sheets are in Chinese and the words stand beside the codes, which stay where they were."""
    report = stats.daily_report(gate_log.reader(), DAY, TZ)
    english = _rows(report_csv(report))
    assert english[0] == ["category", "item", "value"]
    assert ["people", "in", "1"] in english and len(english[1]) == 3  # as before
    chinese = _rows(report_csv(report, ZH))
    assert chinese[0] == ["类别代码", "项目代码", "数值", "类别", "项目"]
    assert ["people", "in", "1", "人员进出", "进入"] in chinese
    assert ["decisions", "deny", "1", "判定", "拒绝"] in chinese
    assert [r[:3] for r in chinese[1:]] == english[1:]  # the data as a script reads it
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(report, ZH)))
    assert book.sheetnames == ["日报", "按小时", "按原因"]
    reasons = list(book["按原因"].iter_rows(values_only=True))
    assert reasons[0] == ("原因代码", "记录条数", "原因") and ("fever", 1, "体温偏高") in reasons
    assert list(book["按小时"].iter_rows(values_only=True))[0][:2] == ("小时", "记录条数")


def test_kiosk_report_lang_writes_chinese_files_and_replaces_its_own(gate_log, tmp_path, capsys):
    path = str(gate_log.path)
    sheet, book = tmp_path / "r.csv", tmp_path / "r.xlsx"
    argv = ["report", "--day", DAY.isoformat(), "--db", path, "--csv", str(sheet)]
    for _ in range(2):  # the daily job writes over yesterday's file of the same name
        assert main([*argv, "--xlsx", str(book), "--lang", "zh-CN"]) == 0
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbf")  # Chinese: Excel needs the BOM
    assert ["people", "in", "1", "人员进出", "进入"] in _rows(sheet.read_text("utf-8"))
    assert openpyxl.load_workbook(book).sheetnames[0] == "日报"
    assert main(argv) == 0  # the default: the file as before, over the Chinese one
    assert _rows(sheet.read_text("utf-8"))[0] == ["category", "item", "value"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--lang", "fr"])
    assert refused.value.code == 2 and "--lang" in capsys.readouterr().err


def test_the_district_files_in_chinese(gate_log):
    report = stats.compute_report(gate_log.reader(), DAY, TZ)
    report |= {"scope": "district", "by_gate": [{"kiosk_id": "gate-1", "events": 2}]}
    rows = _rows(district_csv(report, ZH))
    assert rows[0][3:] == ["类别", "项目"]
    assert ["gate gate-1", "events", "2", "岗点 gate-1", "记录条数"] in rows
    assert ["people", "in", "1", "人员进出", "进入"] in rows
    assert _rows(district_csv(report))[0] == ["category", "item", "value"]
    book = openpyxl.load_workbook(io.BytesIO(district_xlsx(report, ZH)))
    assert book.sheetnames == ["日报", "按小时", "按原因", "按岗点", "按小区"]
    assert next(book["按小区"].iter_rows(values_only=True))[:2] == ("小区", "岗点")


def test_the_consoles_report_files_in_chinese_on_asking(admin, core):
    core.store.append(EventDraft(direction="in", decision="pass", household="1-101"))
    url = f"/guard/community/report.csv?day={DAY}"
    assert _rows(admin.get(url).text)[0] == ["category", "item", "value"]  # as before
    chinese = admin.get(url + "&lang=zh-CN")
    assert ["people", "in", "1", "人员进出", "进入"] in _rows(chinese.text)
    book = admin.get(f"/guard/community/report.xlsx?day={DAY}&lang=zh-CN")
    assert openpyxl.load_workbook(io.BytesIO(book.content)).sheetnames[0] == "日报"
    refused = admin.get(url + "&lang=klingon")
    assert refused.status_code == 400 and "zh-CN" in json.loads(refused.text)["detail"]


def test_the_consoles_report_csv_opens_in_excel_on_a_chinese_windows(admin, core):
    """Before: ``/guard/community/report.csv`` was UTF-8 without the BOM that ``kiosk report``'s
    and the day's export have: Excel on the office's PC read it in GBK, the Chinese as mojibake."""
    core.store.append(EventDraft(direction="in", decision="pass", household="1-101"))
    answer = admin.get(f"/guard/community/report.csv?day={DAY}&lang=zh-CN")
    assert answer.content.startswith("\ufeff类别代码".encode())
    assert answer.content.decode("utf-8-sig") == answer.content[3:].decode("utf-8")
