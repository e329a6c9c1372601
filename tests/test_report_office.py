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

from checkpoint.app import site_record
from checkpoint.cli import main
from kiosk import lists, stats, tokens
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.ledgers import MIGRATIONS
from kiosk.store import EventDraft, EventLog, record_site
from office.district import COMPOUND_COLUMNS, district_csv, district_xlsx
from ui.report_words import file_words

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 2, 12)
MIDNIGHT = datetime(2026, 2, 11, 16, 0, tzinfo=UTC)  # 00:00 Shanghai on DAY
ZH = file_words("zh-CN")

#: The console at 09:00 Shanghai on DAY.
clock, core, app, alice, admin = console_fixtures(MIDNIGHT + timedelta(hours=9))


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def _file_rows(report: dict, words=None) -> list[list[str]]:
    """The rows of ``report``'s CSV as the office gets it (``kiosk.stats.report_file``, what
    ``kiosk report`` and the console write), labelled by ``words``."""
    return _rows(stats.report_file(report, "csv", words).decode("utf-8"))


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
    english = _file_rows(report)
    assert english[0] == ["category", "item", "value"]
    assert ["people", "in", "1"] in english and len(english[1]) == 3  # as before
    chinese = _file_rows(report, ZH)
    assert chinese[0] == ["类别代码", "项目代码", "数值", "类别", "项目"]
    assert ["people", "in", "1", "人员进出", "进入"] in chinese
    assert ["decisions", "deny", "1", "判定", "拒绝"] in chinese
    assert [r[:3] for r in chinese[1:]] == english[1:]  # the data as a script reads it
    book = openpyxl.load_workbook(io.BytesIO(stats.report_file(report, "xlsx", ZH)))
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


def test_the_district_files_carry_each_gates_split_by_its_staffed_hours(gate_log):
    """Before: the district's JSON had each gate's staffed/unstaffed split
    (``by_gate[].staffing``) but its CSV and .xlsx did not: the clerk filing the sheet could
    not see what each kiosk decided alone. A gate the collector fetched no split of says
    ``unknown``, never a blank a SUM adds as 0; one with its hours off, round the clock."""
    part = {"events": 2, "passages": {"total": 2, "passed": 1, "denied": 1}}
    staffing = {"hours": "08:30-17:30", "staffed": part, "unstaffed": part | {"events": 3}}
    report = stats.compute_report(gate_log.reader(), DAY, TZ) | {"scope": "district"}
    report["by_gate"] = [
        {"kiosk_id": "gate-1", "events": 5, "staffing": staffing},
        {"kiosk_id": "gate-2", "events": 1, "staffing": None},
        {"kiosk_id": "gate-3", "events": 1, "staffing": {**staffing, "hours": None}},
    ]
    rows = _rows(district_csv(report))
    assert ["gate gate-1", "staffing.hours", "08:30-17:30"] in rows
    assert ["gate gate-1", "staffing.unstaffed.events", "3"] in rows
    assert ["gate gate-1", "staffing.staffed.passages.denied", "1"] in rows
    assert ["gate gate-2", "staffing.unstaffed.events", "unknown"] in rows
    assert ["gate gate-2", "staffing.hours", "unknown"] in rows
    assert ["gate gate-3", "staffing.hours", "round the clock"] in rows
    chinese = _rows(district_csv(report, ZH))
    said = [r for r in chinese if r[:2] == ["gate gate-1", "staffing.unstaffed.passages.passed"]]
    assert said[0][2:4] == ["1", "岗点 gate-1"] and "无人值守" in said[0][4]
    book = openpyxl.load_workbook(io.BytesIO(district_xlsx(report)))
    by_gate = list(book["by gate"].iter_rows(values_only=True))
    assert ("gate-1", "report", "staffing.unstaffed.events", 3) in by_gate
    assert ("gate-2", "report", "staffing.staffed.events", "unknown") in by_gate


def test_the_district_csvs_compound_rows_are_in_chinese_too(gate_log):
    """Before: the ``compound`` rows of ``kiosk fleet report --lang zh-CN``'s CSV kept 10 of
    their items in English (``gates``, ``roles``, ``disagree``...), words the ``compounds``
    sheet of the workbook already had. Now every item of those rows is in words."""
    report = stats.compute_report(gate_log.reader(), DAY, TZ)
    quota = {"enabled": True, "exits": 2, "period_days": 1, "roles": ["resident"],
             "timezone": "Asia/Shanghai"}  # fmt: skip
    compound = {"id": "c-1", "gates": ["gate-1"], "quota": quota, "households": 1, "exits": 1,
                "histogram": {"1": 1}, "over_quota_households": 0}  # fmt: skip
    report |= {"scope": "district", "by_gate": [{"kiosk_id": "gate-1", "events": 2}]}
    report["exits_per_household"] = {**report["exits_per_household"], "compounds": [compound]}
    rows = [r for r in _rows(district_csv(report, ZH)) if r[0] == "compound c-1"]
    assert len(rows) == len(COMPOUND_COLUMNS) - 1  # every column but the compound's own id
    assert [r[1] for r in rows if r[4] == r[1]] == []
    assert ["compound c-1", "gates", "gate-1", "小区 c-1", "岗点"] in rows


@pytest.mark.slow
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


def _day_around_the_volunteers(log, at):
    """07:00 a resident out, 09:00 one in, 18:00 a fever the guard let through later (a
    guard's decision about a passage of 18:00 is that passage's end, whenever it came)."""
    at.set_wall(MIDNIGHT + timedelta(hours=7))
    log.append(EventDraft(direction="out", decision="pass", household="1-101", temp_c=36.5))
    at.set_wall(MIDNIGHT + timedelta(hours=9))
    log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.6))
    at.set_wall(MIDNIGHT + timedelta(hours=18))
    fever = log.append(EventDraft(direction="in", decision="deny", reasons=("fever",)))
    at.set_wall(MIDNIGHT + timedelta(hours=18, minutes=40))
    override = f"overrides:{fever.seq}"
    log.append(EventDraft(direction="in", decision="manual_pass", operator="Zhao",
                          reasons=("guard_override",), flags=(override,)))  # fmt: skip


def test_the_report_splits_the_day_by_the_staffed_hours(tmp_path):
    """Before: the report counted the day whole; the office could not see what the kiosk
    decided alone while no volunteer stood at the gate (08:30-17:30, ``policy.hours``)."""
    at = FakeClock(start=MIDNIGHT)
    log = EventLog(tmp_path / "k.db", "gate-1", at, "NORMAL", migrations=[stats.MIGRATIONS])
    log.open()
    _day_around_the_volunteers(log, at)
    hours = parse_config({"policy": {"hours": {"enabled": True}}}).policy.hours
    report = stats.daily_report(log.reader(), DAY, TZ, hours=hours)
    staffing = report["staffing"]
    assert staffing["hours"] == "08:30-17:30"
    assert staffing["staffed"] == {
        "events": 1,
        "by_decision": {"pass": 1},
        "passages": {"total": 1, "passed": 1, "denied": 0},
    }
    assert staffing["unstaffed"]["events"] == 3
    assert staffing["unstaffed"]["by_decision"] == {"deny": 1, "manual_pass": 1, "pass": 1}
    assert staffing["unstaffed"]["passages"] == {"total": 2, "passed": 2, "denied": 0}
    rows = _file_rows(report, ZH)
    assert ["staffing", "hours", "08:30-17:30", "值守", "值守时段"] in rows
    passed = [
        "staffing",
        "unstaffed.passages.passed",
        "2",
        "值守",
        "无人值守（机器自行判定）·通行·通过",
    ]
    assert passed in rows
    whole = stats.daily_report(log.reader(), DAY, TZ)["staffing"]  # hours off: round the clock
    assert whole["hours"] is None and whole["staffed"]["events"] == 4
    assert whole["unstaffed"] == {"events": 0, "by_decision": {}, "passages": {
        "total": 0, "passed": 0, "denied": 0}}  # fmt: skip
    log.close()


def test_kiosk_report_splits_by_the_configured_hours(tmp_path, capsys):
    at = FakeClock(start=MIDNIGHT)
    data = tmp_path / "data"
    data.mkdir()
    log = EventLog(data / "kiosk.db", "gate-1", at, "NORMAL").open()
    _day_around_the_volunteers(log, at)
    log.close()
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-1"\n[policy.hours]\nenabled = true\n')
    argv = ["report", "--day", DAY.isoformat(), "--config", str(config), "--data", str(data)]
    assert main(argv) == 0
    staffing = json.loads(capsys.readouterr().out)["staffing"]
    assert staffing["hours"] == "08:30-17:30" and staffing["unstaffed"]["events"] == 3


def _recorded_log(tmp_path, site) -> str:
    """The volunteers' day in a log its daemon recorded ``site`` in (``record_site``)."""
    at = FakeClock(start=MIDNIGHT)
    sets = [tokens.MIGRATIONS, stats.MIGRATIONS, lists.MIGRATIONS, *MIGRATIONS]
    log = EventLog(tmp_path / "kiosk.db", "gate-1", at, "NORMAL", migrations=sets).open()
    _day_around_the_volunteers(log, at)
    record_site(log, site)
    log.close()
    return str(log.path)


def test_kiosk_report_of_a_log_alone_splits_by_the_hours_its_daemon_recorded(
    tmp_path, capsys, monkeypatch
):
    """Before: ``kiosk report --db FILE`` without the config took the time zone and quota
    its daemon recorded but not the staffed hours: every passage staffed (hours null, "round
    the clock"), where the console's page of the same day split them 1 and 3."""
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    hours = {"enabled": True, "spans": ["08:30-17:30"]}
    config = parse_config({"site": {"kiosk_id": "gate-1", "timezone": "Asia/Shanghai"},
                           "policy": {"hours": hours}})  # fmt: skip
    db = _recorded_log(tmp_path, site_record(config))
    assert main(["report", "--day", DAY.isoformat(), "--db", db]) == 0
    staffing = json.loads(capsys.readouterr().out)["staffing"]
    assert staffing["hours"] == "08:30-17:30" and staffing["unstaffed"]["events"] == 3


def test_kiosk_report_of_a_log_recorded_before_the_hours_says_they_are_unknown(
    tmp_path, capsys, monkeypatch
):
    """A log its daemon recorded before it recorded the staffed hours: the report does not
    call the day staffed round the clock, it says the hours are unknown (and how to give
    them), in its JSON and its files."""
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    config = parse_config({"site": {"kiosk_id": "gate-1", "timezone": "Asia/Shanghai"}})
    older = {k: v for k, v in site_record(config).items() if k != "hours"}  # as recorded then
    db = _recorded_log(tmp_path, older)
    sheet = tmp_path / "r.csv"
    assert main(["report", "--day", DAY.isoformat(), "--db", db]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["staffing"] == {"hours": "unknown"}
    assert "recorded no staffed hours" in out.err and "--config FILE" in out.err
    assert main(["report", "--day", DAY.isoformat(), "--db", db, "--csv", str(sheet)]) == 0
    rows = _rows(sheet.read_text(encoding="utf-8"))
    assert [r for r in rows if r[0] == "staffing"] == [["staffing", "hours", "unknown"]]


def test_a_frozen_day_keeps_the_staffing_split_of_the_hours_in_force_then(tmp_path):
    """Staffed 08:30-17:30 on DAY, frozen the night after; the office then staffed the gate
    round the clock. The past day's report split it by today's hours: the 18:00 fever nobody
    was on duty for counted as staffed, against its own reasons. The split is frozen with
    the day, by the hours its daemon recorded (``record_site``); a day not frozen yet too."""
    day_shift = parse_config({"site": {"kiosk_id": "gate-1"},
                              "policy": {"hours": {"enabled": True}}})  # fmt: skip
    at = FakeClock(start=MIDNIGHT)
    sets = [tokens.MIGRATIONS, stats.MIGRATIONS, lists.MIGRATIONS, *MIGRATIONS]
    log = EventLog(tmp_path / "kiosk.db", "gate-1", at, "NORMAL", migrations=sets).open()
    try:
        record_site(log, site_record(day_shift))
        _day_around_the_volunteers(log, at)
        at.set_wall(MIDNIGHT + timedelta(days=1, hours=3))
        around = parse_config({"policy": {"hours": {"enabled": False}}}).policy.hours
        live = stats.daily_report(log.reader(), DAY, TZ, hours=around)["staffing"]
        assert live["hours"] == "08:30-17:30"  # not frozen yet: by the hours recorded then
        assert stats.freeze_days(log, TZ, None, at.now()) == [DAY]
        record_site(log, site_record(parse_config({"policy": {"hours": {"enabled": False}}})))
        staffing = stats.daily_report(log.reader(), DAY, TZ, hours=around)["staffing"]
        assert staffing["hours"] == "08:30-17:30"
        assert (staffing["staffed"]["events"], staffing["unstaffed"]["events"]) == (1, 3)
    finally:
        log.close()


def _hours(enabled: bool, *spans: str):
    """The site record of a gate staffed ``spans`` (``enabled``), or round the clock."""
    hours = {"enabled": enabled, **({"spans": list(spans)} if spans else {})}
    return site_record(parse_config({"site": {"kiosk_id": "gate-1"}, "policy": {"hours": hours}}))


def _log_staffed(tmp_path, at):
    sets = [tokens.MIGRATIONS, stats.MIGRATIONS, lists.MIGRATIONS, *MIGRATIONS]
    return EventLog(tmp_path / "kiosk.db", "gate-1", at, "NORMAL", migrations=sets).open()


def test_a_day_frozen_after_a_restart_with_new_hours_keeps_its_own(tmp_path):
    """Before: the freeze split a day by the hours recorded at the daemon's LAST start: a
    restart with the gate staffed round the clock at 03:00 the night after, before the
    nightly freeze, froze DAY's 18:00 fever nobody was on duty for as staffed. The log keeps
    each change of the hours with its time (``kiosk.store.recorded_history``) and a day is
    frozen with the hours in force on it."""
    at = FakeClock(start=MIDNIGHT)
    log = _log_staffed(tmp_path, at)
    try:
        record_site(log, _hours(True))
        _day_around_the_volunteers(log, at)
        at.set_wall(MIDNIGHT + timedelta(days=1, hours=3))
        record_site(log, _hours(False))  # the restart, before the freeze
        assert stats.freeze_days(log, TZ, None, at.now()) == [DAY]
        around = parse_config({"policy": {"hours": {"enabled": False}}}).policy.hours
        staffing = stats.daily_report(log.reader(), DAY, TZ, hours=around)["staffing"]
        assert staffing["hours"] == "08:30-17:30"
        assert (staffing["staffed"]["events"], staffing["unstaffed"]["events"]) == (1, 3)
    finally:
        log.close()


def test_a_past_day_not_frozen_yet_is_split_by_the_hours_in_force_on_it(tmp_path):
    """A restart at 00:05 with the gate staffed round the clock: asked at 00:10, before the
    night's freeze, DAY was split by the new hours (its 18:00 fever staffed) and the office
    kept that as final; the freeze then split it by its own. A day not frozen is split by the
    hours in force on it, as the freeze will split it."""
    at = FakeClock(start=MIDNIGHT)
    log = _log_staffed(tmp_path, at)
    around = parse_config({"policy": {"hours": {"enabled": False}}}).policy.hours
    try:
        record_site(log, _hours(True))
        _day_around_the_volunteers(log, at)
        at.set_wall(MIDNIGHT + timedelta(days=1, minutes=5))
        record_site(log, _hours(False))  # the restart
        at.set_wall(MIDNIGHT + timedelta(days=1, minutes=10))
        live = stats.daily_report(log.reader(), DAY, TZ, hours=around)["staffing"]
        assert live["hours"] == "08:30-17:30"
        assert (live["staffed"]["events"], live["unstaffed"]["events"]) == (1, 3)
        assert stats.freeze_days(log, TZ, None, at.now()) == [DAY]
        assert stats.daily_report(log.reader(), DAY, TZ, hours=around)["staffing"] == live
        today = stats.daily_report(log.reader(), DAY + timedelta(days=1), TZ, hours=around)
        assert today["staffing"] == {"hours": "changed during the day"}  # 00:05 on it
    finally:
        log.close()


def test_a_day_whose_hours_changed_during_it_says_so(tmp_path):
    """Staffed 08:30-17:30 until a restart at 12:00 with 06:00-22:00: no one split is the
    day's, and its frozen report says the hours changed during the day rather than pick one;
    the day after is split by the new hours."""
    at = FakeClock(start=MIDNIGHT)
    log = _log_staffed(tmp_path, at)
    try:
        record_site(log, _hours(True))
        _day_around_the_volunteers(log, at)
        at.set_wall(MIDNIGHT + timedelta(hours=12))
        record_site(log, _hours(True, "06:00-22:00"))
        at.set_wall(MIDNIGHT + timedelta(days=1, hours=19))
        log.append(EventDraft(direction="in", decision="pass", household="1-101"))
        at.set_wall(MIDNIGHT + timedelta(days=2, hours=3))
        assert stats.freeze_days(log, TZ, None, at.now()) == [DAY, DAY + timedelta(days=1)]
        staffing = stats.daily_report(log.reader(), DAY, TZ)["staffing"]
        assert staffing == {"hours": "changed during the day"}
        rows = _file_rows(stats.daily_report(log.reader(), DAY, TZ))
        assert [r for r in rows if r[0] == "staffing"] == [
            ["staffing", "hours", "changed during the day"]
        ]
        from office.gatereports import gate_staffing  # the office writes the split unknown

        office = gate_staffing(stats.daily_report(log.reader(), DAY, TZ))
        assert office == {"hours": "changed during the day", "staffed": None, "unstaffed": None}
        after = stats.daily_report(log.reader(), DAY + timedelta(days=1), TZ)["staffing"]
        assert after["hours"] == "06:00-22:00" and after["staffed"]["events"] == 1
    finally:
        log.close()


def _boot(path, at, boot_id):
    sets = [stats.MIGRATIONS]
    return EventLog(path, "gate-1", at, "NORMAL", migrations=sets, boot_id=boot_id).open()


def _at(at, hours, mono_s=None):
    at.set_wall(MIDNIGHT + timedelta(hours=hours))
    if mono_s is not None:  # a new boot: the monotonic clock starts again
        at.mono_ns = int(mono_s * 1e9)


def test_the_report_names_the_restarts_and_the_faults_the_office_only_saw_as_fewer_events(
    tmp_path,
):
    """Before: a gate down for an hour and a half (a power cut) or its thermometer failing
    for a while showed the office nothing but fewer events. The report now names each
    restart (the last event before, when the Pi booted again, its first event after) and
    each spell of decisions with a device fault, from what the log holds."""
    at, path = FakeClock(start=MIDNIGHT), tmp_path / "k.db"
    log = _boot(path, at, "boot-a")
    sensor = {"reasons": ("sensor_fault",), "decision": "deny"}
    for hours, how in ((7, {}), (8, sensor), (8 + 5 / 60, sensor), (8 + 10 / 60, "guard"),
                       (8 + 20 / 60, {}), (9, {})):  # fmt: skip
        _at(at, hours)
        if how == "guard":  # a guard's decision says nothing of the thermometer
            log.append(EventDraft(direction="in", decision="manual_pass", operator="Zhao"))
        else:
            log.append(EventDraft(direction="in", **{"decision": "pass", **how}))
    log.close()
    log = _boot(path, at, "boot-b")  # the power back: booted at 10:29, deciding at 10:30
    _at(at, 10.5, mono_s=60)
    log.append(EventDraft(direction="in", decision="pass"))
    log.close()
    log = _boot(path, at, "boot-c")  # down from that evening until the day after next
    _at(at, 54, mono_s=30)
    log.append(EventDraft(direction="in", decision="pass"))
    down = stats.daily_report(log.reader(), DAY, TZ)["downtime"]
    assert down["boots"] == 2 and down["restarts_total"] == 2
    assert down["restarts"][0] == {
        "from": "2026-02-12T09:00:00+08:00",
        "booted": "2026-02-12T10:29:00+08:00",
        "to": "2026-02-12T10:30:00+08:00",
        "minutes": 90.0,
        "kind": "boot",
    }
    assert down["restarts"][1]["from"] == "2026-02-12T10:30:00+08:00"
    assert down["restart_minutes"] == 90 + 13.5 * 60  # the evening's part of the second
    assert down["faults"] == [
        {"reason": "sensor_fault", "from": "2026-02-12T08:00:00+08:00",
         "to": "2026-02-12T08:05:00+08:00", "events": 2},
    ]  # fmt: skip
    quiet = stats.daily_report(log.reader(), DAY + timedelta(days=1), TZ)["downtime"]
    assert quiet["boots"] == 0 and quiet["restart_minutes"] == 24 * 60  # down all day
    assert quiet["restarts"][0]["booted"] == "2026-02-14T05:59:30+08:00"
    rows = _file_rows(stats.daily_report(log.reader(), DAY, TZ), ZH)
    assert ["downtime", "restarts.1.from", "2026-02-12T09:00:00+08:00", "停机与故障",
            "重启·1·停机前最后一条记录"] in rows  # fmt: skip
    assert next(r[:3] for r in rows if r[1] == "faults.1.reason") == [
        "downtime",
        "faults.1.reason",
        "sensor_fault",
    ]
    log.close()


def _log_begun_the_day_before(core) -> None:
    """A row of the gate's log the day before (its log begun then): that day is one it kept,
    over, not a day before its log (``kiosk.stats.before_log``)."""
    now = core.clock.now()
    core.clock.set_wall(now - timedelta(days=1))
    core.store.audit("installer", "token_created", {"token": "0000"})
    core.clock.set_wall(now)


def test_the_consoles_report_file_of_today_says_its_figures_are_so_far(admin, core):
    """Before: the console's report.csv/.xlsx of today held the morning's figures with nothing
    saying so (``kiosk report``'s files have the ``as_of`` row): a clerk filed 09:00's
    counts as the day's."""
    _log_begun_the_day_before(core)
    core.store.append(EventDraft(direction="in", decision="pass", household="1-101"))
    rows = _rows(admin.get(f"/guard/community/report.csv?day={DAY}").text)
    assert ["report", "as_of", f"{DAY} 09:00 (Asia/Shanghai): {stats.SO_FAR}"] in rows
    book = admin.get(f"/guard/community/report.xlsx?day={DAY}&lang=zh-CN")
    sheet = openpyxl.load_workbook(io.BytesIO(book.content))["日报"]
    made = [r for r in sheet.iter_rows(values_only=True) if r[1] == "as_of"]
    assert made[0][2].endswith("当日尚未结束，以下为截至此时的数字") and made[0][4] == "生成时间"
    yesterday = _rows(admin.get(f"/guard/community/report.csv?day={DAY - timedelta(1)}").text)
    assert ["report", "as_of", f"{DAY} 09:00 (Asia/Shanghai)"] in yesterday  # over: no "so far"


def test_every_face_of_the_console_says_todays_figures_are_so_far(admin, core):
    """Before: at 17:30 only the report's files said the day had not ended; the printable
    report page, the statistics page and the figures sheet of ``/guard/export.xlsx`` showed
    the day's counts so far as if they were its total (a fever at 18:00 silently not in
    them). Each says when it was made, and that the day is not over, in the guard's
    language; a day over says only when."""
    _log_begun_the_day_before(core)
    core.store.append(EventDraft(direction="in", decision="pass", household="1-101"))
    so_far = f"Made at: {DAY} 09:00 (Asia/Shanghai): {stats.SO_FAR}"
    page = admin.get(f"/guard/community/report?day={DAY}&lang=en").text
    assert f'<p id="as-of">{so_far}</p>' in page
    assert page.index('id="as-of"') < page.index("<table>")  # above the table, printed
    assert f'<p id="as-of">{so_far}</p>' in admin.get(f"/guard/stats?day={DAY}&lang=en").text
    chinese = admin.get(f"/guard/stats?day={DAY}&lang=zh-CN").text
    assert f"生成时间: {DAY} 09:00 (Asia/Shanghai): 当日尚未结束，以下为截至此时的数字" in chinese
    book = admin.get(f"/guard/export.xlsx?day={DAY}&lang=en")
    figures = list(openpyxl.load_workbook(io.BytesIO(book.content)).worksheets[0].values)
    assert ("Made at", f"{DAY} 09:00 (Asia/Shanghai): {stats.SO_FAR}") in figures
    yesterday = DAY - timedelta(1)
    over = admin.get(f"/guard/stats?day={yesterday}&lang=en").text
    assert f'<p id="as-of">Made at: {DAY} 09:00 (Asia/Shanghai)</p>' in over


def test_the_apis_report_of_today_says_the_day_has_not_ended(tmp_path):
    """Before: ``/api/v1/stats`` of today at 17:35 had neither ``as_of`` nor ``day_ended``:
    an office dashboard filed the evening's counts as the day's total."""
    from support import kiosk_api

    at = FakeClock(start=MIDNIGHT + timedelta(hours=17, minutes=35))
    site = {"site": {"kiosk_id": "gate-1", "timezone": "Asia/Shanghai"}}
    gate = kiosk_api(tmp_path / "g.db", "gate-1", at, scopes=("stats:read",), config=site)
    try:
        gate.store.append(EventDraft(direction="out", decision="pass"))
        auth = {"Authorization": f"Bearer {gate.token}"}
        today = gate.test_client.get("/api/v1/stats", headers=auth).json()
        assert today["as_of"] == "2026-02-12T09:35:00+00:00" and today["day_ended"] is False
        before = gate.test_client.get(f"/api/v1/stats?day={DAY - timedelta(1)}", headers=auth)
        assert before.json()["day_ended"] is True
        schema = gate.test_client.get("/openapi.json").json()["components"]["schemas"]
        assert {"as_of", "day_ended"} <= set(schema["DailyReport"]["properties"])
    finally:
        gate.store.close()


def test_the_report_page_offers_its_files_in_chinese(admin):
    """The console's report page linked only the English files: a guard had to type
    ``?lang=zh-CN`` into the address to get the office's."""
    page = admin.get(f"/guard/community/report?day={DAY}&lang=zh-CN").text
    assert f'href="/guard/community/report.xlsx?day={DAY}&amp;lang=zh-CN"' in page
    assert f'href="/guard/community/report.csv?day={DAY}&amp;lang=zh-CN"' in page
    assert f'href="/guard/community/report.csv?day={DAY}"' in page  # English, as before


def test_the_days_excel_export_says_what_the_kiosk_decided_alone_and_its_restarts(
    tmp_path, monkeypatch
):
    """The guard's day export (``/guard/export.xlsx``, its figures sheet) had the day whole:
    the office reading it could not see the passages no volunteer stood beside, nor that
    the gate restarted."""
    from guard_support import make_app, make_core, signed_in

    at = FakeClock(start=MIDNIGHT)
    data = tmp_path / "data"
    path = data / "kiosk.db"
    data.mkdir()
    log = _boot(path, at, "boot-a")
    _day_around_the_volunteers(log, at)
    log.close()
    log = _boot(path, at, "boot-b")  # a power cut: back at 19:00
    _at(at, 19, mono_s=40)
    log.append(EventDraft(direction="out", decision="pass", household="1-101"))
    log.close()
    config = parse_config({"site": {"kiosk_id": "gate-1"}, "policy": {"hours": {"enabled": True}}})
    _at(at, 20)
    core = make_core(data, at, monkeypatch, config)
    try:
        with signed_in(make_app(core)) as alice:
            book = alice.get(f"/guard/export.xlsx?day={DAY}&lang=zh-CN")
        figures = dict(
            next(iter(openpyxl.load_workbook(io.BytesIO(book.content)))).iter_rows(values_only=True)
        )
    finally:
        core.close()
    assert figures["有人值守时段通行（08:30-17:30）"] == 1
    assert figures["无人值守时段通行（机器自行判定）"] == 3
    assert figures["重启次数"] == 1 and figures["重启间隔（分钟，至多）"] == 20
