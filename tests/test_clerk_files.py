"""The files the compound office's clerks hand the kiosk, as they really come: a title above
the header, a signature line below it, a damaged UTF-8 file, a token with the wrong text."""

from __future__ import annotations

import pytest


def test_a_lists_token_that_is_no_token_stops_the_daemon_naming_the_key(
    tmp_path, capsys, monkeypatch
):
    from checkpoint.cli import main

    monkeypatch.setenv("KIOSK_LISTS_TOKEN", "kt_1_sécret")  # pasted from a chat, with an é
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        '[web]\nport = 0\n[fleet]\nlists_url = "http://office.lan/lists/bundle"\n'
        'lists_token_env = "KIOSK_LISTS_TOKEN"\n'
    )
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "fleet.lists_token_env" in err[0] and "KIOSK_LISTS_TOKEN" in err[0]
    assert "sécret" not in err[0]  # the secret itself is never said


def test_an_unset_or_good_lists_token_is_no_config_problem(monkeypatch):
    from kiosk.config import check_environment, parse_config

    config = parse_config(
        {"fleet": {"lists_url": "http://office.lan/b", "lists_token_env": "KIOSK_LISTS_TOKEN"}}
    )
    assert check_environment(config, {}) == []
    assert check_environment(config, {"KIOSK_LISTS_TOKEN": "kt_1_abc"}) == []
    assert check_environment(config, {"KIOSK_LISTS_TOKEN": "kt 1"})[0].startswith(
        "fleet.lists_token_env: environment variable KIOSK_LISTS_TOKEN"
    )


_QUARANTINE = "household,holder,from,until\n" + "".join(
    f"5-{700 + i},张{name},2026-12-01,2026-12-14\n" for i, name in enumerate("伟芳娜秀英敏静丽")
)


def test_a_utf8_list_with_a_damaged_byte_is_refused_where_it_is_not_read_as_gb18030():
    """One byte of 张秀 (line 5) damaged on a USB stick: the rest of the file is UTF-8 but
    the whole decoded as GB18030 (its byte pairs all fit) and the names imported as 寮犱紵."""
    from kiosk.community import CommunityError
    from kiosk.sheets import decode_text

    data = bytearray(_QUARANTINE.encode())
    at = data.index("秀".encode()) + 1
    data[at] = 0xC9  # was 0xA7
    with pytest.raises(CommunityError) as refused:
        decode_text(bytes(data))
    assert f"line 5, byte {at}" in str(refused.value)  # where 秀 starts
    assert "UTF-8" in str(refused.value)


def test_a_real_gb18030_list_still_reads_rare_name_characters_and_all():
    from kiosk.sheets import decode_text

    text = _QUARANTINE + "5-800,王堃,2026-12-01,2026-12-14\n"  # 堃: GBK, not GB2312
    assert decode_text(text.encode("gb18030")) == text
    assert decode_text(("\ufeff" + text).encode()) == text


def _office_sheet(rows, merged_title: bool = True) -> bytes:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if merged_title:
        sheet.merge_cells("A1:E1")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_TITLED = [
    ["XX小区居家隔离人员名单", None, None, None, None],
    ["填报日期：2026年12月5日"],
    ["household", "holder", "from", "until", "note"],
    ["5-702", "张伟", "2026-12-01", "2026-12-14", "密接"],
    [None],
    ["6-101", "李芳", "2026-12-02", "2026-12-15", ""],
    ["合计", "2人"],
    ["制表人：王五", None, None, "审核人：赵六"],
    ["2026年12月5日"],
]


def test_an_office_sheet_with_a_title_and_a_signature_imports_its_people_only():
    """The usual sheet: a merged title and a date line above the header, a total and the
    signatures below. It was 'cannot tell the list from the columns'; the title is skipped
    and so is the footer (合计 is not a household), and the preview says which lines."""
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    plan = plan_list_import(_office_sheet(_TITLED), "名单.xlsx", Lists())
    assert plan.kind == "quarantine"
    assert [(r["household"], r["holder"]) for r in plan.rows] == [
        ("5-702", "张伟"),
        ("6-101", "李芳"),
    ]
    assert plan.layout.header_line == 3
    assert [(s.line, s.why) for s in plan.layout.skipped] == [
        (1, "above the header"),
        (2, "above the header"),
        (7, "below the table (合计, 制表人, ...)"),
        (8, "below the table (合计, 制表人, ...)"),
        (9, "below the table (合计, 制表人, ...)"),
    ]


def test_a_csv_with_a_title_line_names_the_sheets_lines_in_its_errors():
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    text = (
        "XX小区居家隔离人员名单,,,\nhousehold,holder,from,until\n"
        "5-702,张伟,2026-12-01,2026-12-14\n\n6-101,李芳,2026-12-32,2026-12-15\n"
    )
    with pytest.raises(CommunityError, match=r"^line 5, column C \(from\)"):
        plan_list_import(text.encode(), "q.csv", Lists())


def test_a_row_below_a_total_line_is_refused_never_dropped():
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    rows = [*_TITLED[:7], ["7-303", "王强", "2026-12-03", "2026-12-16", ""]]
    with pytest.raises(CommunityError, match="^line 8: .*below line 7 \\(合计"):
        plan_list_import(_office_sheet(rows), "名单.xlsx", Lists())


def test_the_import_preview_says_which_line_was_the_header_and_which_were_skipped(tmp_path, capsys):
    import json

    from checkpoint.cli import main
    from drivers.clocksync import system_clock
    from kiosk.store import EventLog

    EventLog(tmp_path / "k.db", "gate-1", system_clock(), "NORMAL").open().close()
    sheet = tmp_path / "名单.xlsx"
    sheet.write_bytes(_office_sheet(_TITLED))
    code = main(["lists", "import", str(sheet), "--db", str(tmp_path / "k.db")])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    out = json.loads(printed.out)
    assert out["added"] == 2
    assert out["header_line"] == 3
    assert out["skipped"][0] == {"line": 1, "why": "above the header"}
    assert [s["line"] for s in out["skipped"]] == [1, 2, 7, 8, 9]


def test_a_workbook_whose_first_sheet_is_hidden_imports_the_sheet_the_clerk_sees():
    """Last month's list hidden in front of this month's: the hidden one was imported."""
    import io

    import openpyxl

    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    old = book.active
    old.title = "11月"
    old.append(["household", "residents"])
    old.append(["9-901", 3])
    old.sheet_state = "hidden"
    new = book.create_sheet("12月")
    new.append(["household", "residents"])
    new.append(["1-101", 2])
    out = io.BytesIO()
    book.save(out)
    plan = plan_list_import(out.getvalue(), "h.xlsx", Lists())
    assert [r["household"] for r in plan.rows] == ["1-101"]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        (3.1, "3.1"),  # typed 3.10: Excel keeps the number, not the 0
        (1.10101199003071e17, "110101199003071000"),  # an 18-digit code: its last digits gone
    ],
)
def test_a_code_the_spreadsheet_holds_as_a_number_it_changed_is_refused(cell, shown):
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    rows = [["household", "residents"], [1201, 2], [cell, 3]]
    with pytest.raises(
        CommunityError, match=rf"^line 3, column A \(household\): .*number.*{shown}"
    ):
        plan_list_import(_office_sheet(rows, merged_title=False), "h.xlsx", Lists())


def test_a_csv_code_excel_wrote_in_scientific_notation_is_refused():
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    text = "household,residents\n5-702,2\n1.10101E+17,3\n"
    with pytest.raises(CommunityError, match=r"^line 3, column A \(household\): .*1.10101E\+17"):
        plan_list_import(text.encode(), "r.csv", Lists())
    whole = plan_list_import(b"household,residents\n1201,2\n", "h.csv", Lists())
    assert [r["household"] for r in whole.rows] == ["1201"]


def test_a_pass_batch_from_an_office_sheet_prints_no_pass_for_its_total_or_signature(
    tmp_path, capsys
):
    """A households CSV saved from the office's sheet: its title was 'the header needs
    household and holder columns', and with the title deleted its 合计 line was a pass
    printed for household 合计, holder 2人."""
    import csv

    from checkpoint.cli import main

    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    households = tmp_path / "households.csv"
    households.write_text(
        "XX小区纸质通行证名单,,\nhousehold,holder,role\n5-702,张伟,\n6-101,李芳,\n"
        "合计,2人,\n制表人：王五,,\n",
        encoding="gb18030",
    )
    out_dir = tmp_path / "cards"
    argv = ["--key", str(tmp_path / "keys" / "office.key"), "--csv", str(households)]
    code = main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(out_dir)])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((out_dir / "passes.csv").open(encoding="utf-8-sig")))
    assert [(r["household"], r["holder"]) for r in rows] == [("5-702", "张伟"), ("6-101", "李芳")]

    households.write_text("household,holder\n5-702,张伟\n合计,1人\n6-101,李芳\n")
    code = main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "again")])
    assert code == 2 and "line 4: a row below line 3 (合计)" in capsys.readouterr().err


_OLE2 = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)  # an Excel 97-2003 / WPS .et file


@pytest.mark.parametrize("name", ["名单.xls", "名单.et", "名单.xlsx", "名单.csv"])
def test_an_old_excel_or_wps_workbook_is_refused_saying_how_to_save_it(name):
    from kiosk.community import CommunityError
    from kiosk.sheets import read_table

    with pytest.raises(CommunityError, match=r"Excel 97-2003 \(\.xls\) or WPS \(\.et\).*\.xlsx"):
        read_table(_OLE2, name, columns=("household",))


@pytest.mark.parametrize("name", ["名单.xls", "名单.csv", "名单.et"])
def test_a_workbook_saved_under_another_suffix_is_read_as_the_workbook_it_is(name):
    """WPS and some office systems save an .xlsx as .xls; renamed to .csv it was 'neither
    UTF-8 nor GB18030 text' at a byte of the zip."""
    from kiosk.sheets import read_table

    data = _office_sheet([["household", "residents"], ["5-702", 2]], merged_title=False)
    assert read_table(data, name, columns=("household",)).rows == (
        {"household": "5-702", "residents": "2"},
    )


def test_a_numbers_or_opendocument_sheet_is_refused_saying_to_export_it():
    import io
    import zipfile

    from kiosk.community import CommunityError
    from kiosk.sheets import read_table

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    for name in ("名单.ods", "名单.numbers", "名单.xlsx"):
        with pytest.raises(CommunityError, match="not an Excel workbook.*export it as .xlsx"):
            read_table(out.getvalue(), name)


def test_dates_as_a_clerk_types_them_in_chinese_or_full_width_are_the_dates_meant():
    """2026年12月14日 and a full-width ２０２６－１２－０１ (a Chinese input method) were
    'expected a date such as 2026-03-01': the whole sheet sent back."""
    from datetime import date

    from kiosk.lists import QuarantineIn

    row = QuarantineIn.model_validate(
        {"household": "5-702", "from": "２０２６－１２－０１", "until": "2026年12月14日"}
    )
    assert (row.from_, row.until) == (date(2026, 12, 1), date(2026, 12, 14))
    with pytest.raises(ValueError, match="2026年2月30日 is not a calendar date"):
        QuarantineIn.model_validate(
            {"household": "5-702", "from": "2026年2月30日", "until": "2026-12-14"}
        )


def test_numbered_notes_under_a_footer_are_the_footer_and_a_room_code_is_not():
    """备注： then 1、... 2、... under the table was refused as rows below the footer."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    head = "household,residents\n5-702,2\n备注：\n"
    notes = "1、居家隔离期间不得外出\n（2）每日两次测温\n二、解除后观察7天\n"
    plan = plan_list_import((head + notes).encode(), "h.csv", Lists())
    assert [r["household"] for r in plan.rows] == ["5-702"]
    assert [s.line for s in plan.layout.skipped] == [3, 4, 5, 6]
    with pytest.raises(CommunityError, match="^line 4: a row below line 3"):
        plan_list_import((head + "1.201\n").encode(), "h.csv", Lists())


def test_rows_the_clerk_hid_or_filtered_out_are_not_imported_and_the_preview_says_so():
    """A clerk hides the rows of people released (or filters the sheet to her compound) and
    saves: the hidden rows were imported all the same, people she does not see on her list."""
    import io

    import openpyxl

    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["household", "holder", "from", "until"],
                ["5-702", "张伟", "2026-12-01", "2026-12-14"],
                ["9-901", "released", "2026-11-01", "2026-11-14"],
                ["6-101", "李芳", "2026-12-02", "2026-12-15"]):  # fmt: skip
        sheet.append(row)
    sheet.row_dimensions[3].hidden = True
    out = io.BytesIO()
    book.save(out)
    plan = plan_list_import(out.getvalue(), "q.xlsx", Lists())
    assert [r["household"] for r in plan.rows] == ["5-702", "6-101"]
    assert [(s.line, s.why) for s in plan.layout.skipped] == [(3, "hidden in the sheet")]


def test_a_formula_with_no_saved_value_under_a_title_names_its_column_not_the_title():
    """The refusal named the column by the title (line 4: XX小区住户名单: a formula ...)."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    rows = [
        ["XX小区住户名单"],
        ["household", "residents", "observation_until"],
        ["5-702", 3, "2026-12-14"],
        ["6-101", 2, "=TODAY()+14"],
    ]
    with pytest.raises(CommunityError, match=r"^line 4: observation_until: a formula"):
        plan_list_import(_office_sheet(rows, merged_title=False), "h.xlsx", Lists())


def test_a_workbook_with_its_instructions_sheet_first_imports_the_list_sheet_and_says_so():
    """填表说明 in front of the list: the instructions were read as the list ('cannot tell
    the list from the columns')."""
    import io

    import openpyxl

    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    book.active.title = "填表说明"
    book.active.append(["1、户号按楼-单元-室填写"])
    book.active.append(["2、日期格式 2026-12-01"])
    listed = book.create_sheet("名单")
    listed.append(["household", "residents"])
    listed.append(["5-702", 2])
    out = io.BytesIO()
    book.save(out)
    plan = plan_list_import(out.getvalue(), "h.xlsx", Lists())
    assert [r["household"] for r in plan.rows] == ["5-702"]
    assert plan.layout.sheet == "名单" and plan.layout.shown()["sheet"] == "名单"


def test_a_pass_batch_household_excel_wrote_in_scientific_notation_prints_no_pass(tmp_path, capsys):
    """A long household code saved by Excel as 1.10101E+17: a paper pass for that code."""
    from checkpoint.cli import main

    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    households = tmp_path / "households.csv"
    households.write_text("household,holder\n5-702,张伟\n1.10101E+17,李芳\n")
    argv = ["--key", str(tmp_path / "keys" / "office.key"), "--csv", str(households)]
    assert (
        main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "cards")]) == 2
    )
    err = capsys.readouterr().err
    assert "line 3, column A (household): the spreadsheet holds a number (1.10101E+17)" in err
    assert not (tmp_path / "cards").exists()


def _as_excel_writes_it(data: bytes) -> bytes:
    """The workbook with its parts named as Excel names them: relative to ``xl/``
    (openpyxl writes ``/xl/worksheets/...``)."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/_rels/workbook.xml.rels":
                body = body.replace(b'Target="/xl/', b'Target="')
            dst.writestr(info, body)
    return out.getvalue()


def test_hidden_rows_are_found_on_the_sheet_read_whichever_way_the_workbook_names_its_parts():
    """The hidden rows are those of the sheet imported (the second, behind a hidden first
    one), found through the workbook's own part names, relative as Excel writes them."""
    import io

    import openpyxl

    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    old = book.active
    old.title = "十一月"
    old.sheet_state = "hidden"
    old.append(["household", "holder", "from", "until"])
    old.append(["1-101", "old", "2026-11-01", "2026-11-14"])
    old.row_dimensions[2].hidden = True
    sheet = book.create_sheet("十二月")
    for row in (["household", "holder", "from", "until"],
                ["5-702", "张伟", "2026-12-01", "2026-12-14"],
                ["6-101", "李芳", "2026-12-02", "2026-12-15"],
                ["9-901", "released", "2026-11-01", "2026-11-14"]):  # fmt: skip
        sheet.append(row)
    sheet.row_dimensions[4].hidden = True
    out = io.BytesIO()
    book.save(out)
    for data in (out.getvalue(), _as_excel_writes_it(out.getvalue())):
        plan = plan_list_import(data, "q.xlsx", Lists())
        assert [r["household"] for r in plan.rows] == ["5-702", "6-101"]
        assert [(s.line, s.why) for s in plan.layout.skipped] == [(4, "hidden in the sheet")]


_CHINESE_QUARANTINE = [
    ["XX小区居家隔离人员名单"],
    ["序号", "户号", "姓名", "手机号", "身份证号", "隔离开始日期（必填）", "隔离结束日期*", "备注"],
    [1, "5-702", "张伟", "13800138000", "110101199003071234", "2026-12-01", "2026-12-14", "密接"],
    [2, "6-101", "李芳", "13900139000", "110101199203071234", "2026-12-02", "2026-12-15", ""],
]


def test_a_sheet_with_chinese_column_headers_imports_and_the_preview_says_which_is_which():
    """户号, 姓名, 隔离开始日期（必填） ...: 'cannot tell the list from the columns'. The
    headers are the fields they name; the row number, phone and ID columns are read past
    (never stored) and the preview says which column was taken for which field."""
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    plan = plan_list_import(_office_sheet(_CHINESE_QUARANTINE, False), "名单.xlsx", Lists())
    assert plan.kind == "quarantine"
    assert [dict(r) for r in plan.rows] == [
        {"household": "5-702", "holder": "张伟", "from": "2026-12-01", "until": "2026-12-14",
         "note": "密接"},
        {"household": "6-101", "holder": "李芳", "from": "2026-12-02", "until": "2026-12-15",
         "note": ""},
    ]  # fmt: skip
    shown = plan.layout.shown()
    assert shown["columns"] == {
        "household": "户号",
        "holder": "姓名",
        "from": "隔离开始日期（必填）",
        "until": "隔离结束日期*",
        "note": "备注",
    }
    assert shown["not_kept"] == ["序号", "手机号", "身份证号"]
    assert "13800138000" not in repr(plan)


def test_chinese_headers_of_the_map_the_vehicles_and_households_in_full_width_too(tmp_path):
    from drivers.clocksync import system_clock
    from kiosk import compound, vehicles
    from kiosk.compound import CompoundMap
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists
    from kiosk.store import EventLog
    from kiosk.vehicles import VehicleList

    sets = [compound.MIGRATIONS, vehicles.MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "g", system_clock(), "NORMAL", migrations=sets).open()
    try:
        text = "楼栋,单元,楼层,房号,居住人数\n5,1,7,5-702,3\n"
        plan = CompoundMap(log, log.clock).plan_import(text.encode("gb18030"), "平面图.csv")
        assert [(d.household, d.building, d.floor, d.residents) for d in plan.dwellings] == [
            ("5-702", "5", 7, 3)
        ]
        cars = "序号,车牌号,户号,车主姓名,联系电话\n1,京A12345,5-702,张伟,13800138000\n"
        vehicles = VehicleList(log, log.clock).plan_import(cars.encode(), "车辆.csv")
        assert dict(vehicles.rows) == {"京A12345": {"household": "5-702", "note": ""}}
    finally:
        log.close()
    households = "ＨＯＵＳＥＨＯＬＤ,人数,Observation Until\n5-702,3,2026-12-14\n"
    plan_h = plan_list_import(households.encode(), "h.csv", Lists())
    assert plan_h.kind == "households" and plan_h.rows[0]["residents"] == "3"


@pytest.mark.parametrize(
    ("header", "refused"),
    [
        ("户号,姓名,日期\n", "^line 1: column C \\(日期\\) could be from or until"),
        (
            "户号,姓名,房号,开始日期,结束日期\n",
            "^line 1: columns A \\(户号\\) and C \\(房号\\) are both household",
        ),  # fmt: skip
    ],
)
def test_a_header_two_fields_could_claim_or_two_columns_claiming_one_are_refused(header, refused):
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    with pytest.raises(CommunityError, match=refused):
        plan_list_import((header + "5-702,张伟,2026-12-01,2026-12-14\n").encode(), "q.csv", Lists())


def test_the_cli_preview_says_which_column_was_taken_for_which_field(tmp_path, capsys):
    import json

    from checkpoint.cli import main
    from drivers.clocksync import system_clock
    from kiosk.store import EventLog

    EventLog(tmp_path / "k.db", "gate-1", system_clock(), "NORMAL").open().close()
    sheet = tmp_path / "名单.xlsx"
    sheet.write_bytes(_office_sheet(_CHINESE_QUARANTINE, False))
    assert main(["lists", "import", str(sheet), "--db", str(tmp_path / "k.db")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 2 and out["header_line"] == 2
    assert out["columns"]["household"] == "户号"
    assert out["not_kept"] == ["序号", "手机号", "身份证号"]


def test_a_pass_batch_from_a_sheet_with_chinese_headers_prints_its_passes(tmp_path, capsys):
    import csv

    from checkpoint.cli import main

    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    households = tmp_path / "households.csv"
    households.write_text(
        "序号,户号,姓名,联系电话,有效天数\n1,5-702,张伟,13800138000,7\n", encoding="gb18030"
    )
    argv = ["--key", str(tmp_path / "keys" / "office.key"), "--csv", str(households)]
    code = main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "cards")])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "cards" / "passes.csv").open(encoding="utf-8-sig")))
    assert [(r["household"], r["holder"]) for r in rows] == [("5-702", "张伟")]
    households.write_text("户号,房号,姓名\n5-702,702,张伟\n")
    assert (
        main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "again")]) == 2
    )
    assert "columns A (户号) and B (房号) are both household" in capsys.readouterr().err


def _merged_household_sheet(merge: bool) -> bytes:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["XX小区居家隔离人员名单"],
                ["户号", "姓名", "开始日期", "结束日期"],
                ["5-702", "张伟", "2026-12-01", "2026-12-14"],
                [None, "张芳", "2026-12-01", "2026-12-14"],
                [None, "张强", "2026-12-01", "2026-12-14"],
                ["6-101", "李芳", "2026-12-02", "2026-12-15"]):  # fmt: skip
        sheet.append(row)
    sheet.merge_cells("A1:D1")
    if merge:
        sheet.merge_cells("A3:A5")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_household_merged_over_its_people_is_each_persons_household():
    """户号 merged over the three people of one household: lines 4 and 5 were refused as an
    empty household. A merged range reads as its top-left cell, as the clerk sees it."""
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    plan = plan_list_import(_merged_household_sheet(True), "名单.xlsx", Lists())
    assert sorted((r["household"], r["holder"]) for r in plan.rows) == sorted(
        [("5-702", "张伟"), ("5-702", "张芳"), ("5-702", "张强"), ("6-101", "李芳")]
    )
    assert plan.layout.header_line == 2


def test_an_empty_household_cell_that_is_not_merged_is_still_refused_at_its_line():
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    with pytest.raises(CommunityError, match=r"^line 4, column A \(户号\)"):
        plan_list_import(_merged_household_sheet(False), "名单.xlsx", Lists())


def test_merged_ranges_that_overlap_are_refused_not_filled_without_end():
    """A crafted file repeating one large merged range: each would fill the whole sheet."""
    import io
    import re
    import zipfile

    from kiosk.community import CommunityError
    from kiosk.sheets import read_table

    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(_merged_household_sheet(True))) as src,
        zipfile.ZipFile(out, "w") as dst,
    ):
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = re.sub(
                    rb'<mergeCell ref="A3:A5" ?/>', b'<mergeCell ref="A1:A9"/>' * 50, body
                )
            dst.writestr(info, body)
    with pytest.raises(CommunityError, match="merged cells that overlap"):
        read_table(out.getvalue(), "q.xlsx", columns=("户号",))


def _padded_code_sheet(number_format: str) -> bytes:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["户号", "人数"], [702, 3], [1201, 2], ["5-702", 1]):
        sheet.append(row)
    for number in (2, 3):
        sheet.cell(number, 1).number_format = number_format
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_code_shown_with_its_leading_zero_by_a_0000_format_is_read_as_shown():
    """0702 typed into a column formatted 0000: Excel keeps the number 702 and shows 0702;
    the import read household 702, another household (or nobody's)."""
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    for data in (_padded_code_sheet("0000"), _as_excel_writes_it(_padded_code_sheet("0000"))):
        plan = plan_list_import(data, "h.xlsx", Lists())
        assert sorted(r["household"] for r in plan.rows) == ["0702", "1201", "5-702"]
    general = plan_list_import(_padded_code_sheet("General"), "h.xlsx", Lists())
    assert sorted(r["household"] for r in general.rows) == ["1201", "5-702", "702"]


def test_a_fraction_in_a_zero_padded_code_column_is_still_refused():
    """0000 shows 3.1 as 0003: not the code typed either."""
    import io

    import openpyxl

    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    for row in (["户号", "人数"], [702, 3], [3.1, 2]):
        book.active.append(row)
    book.active.cell(3, 1).number_format = "0000"
    out = io.BytesIO()
    book.save(out)
    with pytest.raises(CommunityError, match=r"^line 3, column A \(户号\): .*number \(3.1\)"):
        plan_list_import(out.getvalue(), "h.xlsx", Lists())


def test_a_header_and_notes_merged_across_two_columns_are_one_column_as_the_clerk_sees_it():
    """备注 merged over columns E:F for width, each note merged the same: the clerk sees one
    note column, not two columns both named 备注."""
    import io

    import openpyxl

    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["户号", "姓名", "开始日期", "结束日期", "备注"],
                ["5-702", "张伟", "2026-12-01", "2026-12-14", "密接"],
                [None, "张芳", "2026-12-01", "2026-12-14", "同住"]):  # fmt: skip
        sheet.append(row)
    for merged in ("E1:F1", "E2:F2", "E3:F3", "A2:A3"):
        sheet.merge_cells(merged)
    out = io.BytesIO()
    book.save(out)
    plan = plan_list_import(out.getvalue(), "名单.xlsx", Lists())
    assert sorted((r["household"], r["holder"], r["note"]) for r in plan.rows) == [
        ("5-702", "张伟", "密接"), ("5-702", "张芳", "同住"),
    ]  # fmt: skip


def test_a_date_line_above_a_chinese_header_is_the_title_and_an_instructions_table_no_list():
    """日期： and 联系电话： in a line above the header (a column named 日期 could be from or
    until; a phone column is read past) took that line for the header; an instructions
    sheet laid out as 序号 | 说明 in front of the list was read as the list."""
    import io

    import openpyxl

    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    book.active.title = "填表说明"
    book.active.append(["序号", "说明"])
    book.active.append([1, "户号按楼-单元-室填写"])
    listed = book.create_sheet("名单")
    for row in (["填报单位：XX社区", None, "日期：", "2026-12-05", "联系电话：", "13800138000"],
                ["户号", "姓名", "开始日期", "结束日期"],
                ["5-702", "张伟", "2026-12-01", "2026-12-14"]):  # fmt: skip
        listed.append(row)
    out = io.BytesIO()
    book.save(out)
    plan = plan_list_import(out.getvalue(), "名单.xlsx", Lists())
    assert [(r["household"], r["holder"]) for r in plan.rows] == [("5-702", "张伟")]
    assert plan.layout.sheet == "名单" and plan.layout.header_line == 2


def test_a_two_row_header_with_the_dates_under_a_merged_period_imports():
    """户号 and 姓名 merged down two rows, 隔离时间 merged over 开始日期 | 结束日期 below it:
    line 2 (the dates' names) was read as a household 户号 with holder 姓名."""
    import io

    import openpyxl

    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["XX小区居家隔离人员名单"],
                ["户号", "姓名", "隔离时间", None, "备注"],
                [None, None, "开始日期", "结束日期", None],
                ["5-702", "张伟", "2026-12-01", "2026-12-14", "密接"]):  # fmt: skip
        sheet.append(row)
    for merged in ("A1:E1", "A2:A3", "B2:B3", "C2:D2", "E2:E3"):
        sheet.merge_cells(merged)
    out = io.BytesIO()
    book.save(out)
    plan = plan_list_import(out.getvalue(), "名单.xlsx", Lists())
    assert plan.kind == "quarantine"
    assert [dict(r) for r in plan.rows] == [
        {"household": "5-702", "holder": "张伟", "from": "2026-12-01", "until": "2026-12-14",
         "note": "密接"}
    ]  # fmt: skip
    assert plan.layout.header_line == 3
    assert plan.layout.lines("title") == [1, 2]


def test_no_header_of_the_tables_names_two_fields_but_the_bare_dates():
    """A header two fields claim is refused: only 日期 / 隔离日期 / date are meant to be."""
    from kiosk.headers import HEADERS, header_key

    either = {header_key(h) for h in ("日期", "隔离日期", "date")}
    for kind, table in HEADERS.items():
        keys = [
            k for f, other in table.fields.items() for k in {header_key(h) for h in (f, *other)}
        ]
        twice = {k for k in keys if keys.count(k) > 1}
        assert twice <= either, (kind, twice)
        assert not {header_key(h) for h in table.not_kept} & set(keys), kind


def test_a_rows_error_names_the_column_as_the_clerk_headed_it_on_the_cli_and_the_console():
    """A sheet headed 隔离开始日期 got 'line 4: from: …' (and 'household' for 户号): the
    clerk has no column named so. The error names the column as written and its letter, and
    the console still says it in Chinese."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists
    from ui import core_words

    def refused(row: int, column: int, value: object) -> tuple[str, str]:
        """The import's refusal of the sheet with that one cell changed, and the console's."""
        rows = [list(r) for r in _CHINESE_QUARANTINE]
        rows[row][column] = value
        with pytest.raises(CommunityError) as refusal:
            plan_list_import(_office_sheet(rows, False), "名单.xlsx", Lists())
        return str(refusal.value), core_words.refusal_text("zh-CN", str(refusal.value))

    text, zh = refused(2, 5, "2026-13-01")
    assert text.startswith("line 3, column F (隔离开始日期（必填）): "), text
    assert zh.startswith("第 3 行，F 列（隔离开始日期（必填））："), zh
    assert "calendar" not in zh and "from" not in zh
    text, zh = refused(3, 1, 5.1)  # a number the spreadsheet changed (5.10 typed)
    assert text.startswith("line 4, column B (户号): the spreadsheet holds a number"), text
    assert zh.startswith("第 4 行，B 列（户号）：表格里这里是数字"), zh


@pytest.mark.parametrize(
    ("kind", "text", "english", "chinese"),
    [
        ("compound", "楼栋,单元,楼层,房号,居住人数\n5,1,7,5-702,300\n",
         "line 2, column E (居住人数): must be 0 to 99",
         "第 2 行，E 列（居住人数）：应在 0 到 99 之间"),
        ("compound", "楼栋,单元,楼层,房号\n5,1,七层,5-702\n",
         "line 2, column C (楼层): '七层' is not a whole number",
         "第 2 行，C 列（楼层）：'七层' 不是整数"),
        ("compound", "楼栋,单元,楼层,房号\n,1,7,5-702\n",
         "line 2, column A (楼栋): required", "第 2 行，A 列（楼栋）：必填"),
        ("vehicles", "序号,车牌号,户号\n1,!!,5-702\n",
         "line 2, column B (车牌号): 4 to 10 letters, digits or a province character",
         "第 2 行，B 列（车牌号）：应为 4 到 10 个字母、数字或省份简称"),
        ("vehicles", "车牌号,户号\n京A12345,\n",
         "line 2, column B (户号): required", "第 2 行，B 列（户号）：必填"),
    ],
)  # fmt: skip
def test_the_map_and_vehicles_name_the_column_as_headed_in_their_errors(
    tmp_path, kind, text, english, chinese
):
    """楼层 typed 七层 said "line 2: floor '七层' is not a whole number": no column floor."""
    from drivers.clocksync import system_clock
    from kiosk import compound, vehicles
    from kiosk.community import CommunityError
    from kiosk.compound import CompoundMap
    from kiosk.store import EventLog
    from kiosk.vehicles import VehicleList
    from ui import core_words

    sets = [compound.MIGRATIONS, vehicles.MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "g", system_clock(), "NORMAL", migrations=sets).open()
    try:
        ledger = CompoundMap if kind == "compound" else VehicleList
        with pytest.raises(CommunityError) as refused:
            ledger(log, log.clock).plan_import(text.encode(), "名单.csv")
    finally:
        log.close()
    assert str(refused.value) == english
    assert core_words.refusal_text("zh-CN", english) == chinese


def test_a_count_typed_as_a_clerk_types_it_is_the_count_and_a_date_with_no_year_is_refused():
    """人数 typed 3人 or a full-width ３, an end date 2026年12月14号: the whole sheet sent
    back. A date with no year (12月5日, 12.5) is refused at its line and column, never given
    a year; a count that is not one (三口之家) is refused saying what is accepted."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists
    from ui import core_words

    text = "户号,人数,观察截止日期\n5-702,3人,2026年12月14号\n5-703,３,2026.12.5\n5-704,2 人,\n"
    plan = plan_list_import(text.encode(), "住户.csv", Lists())
    assert [(r["household"], r["residents"], r["observation_until"]) for r in plan.rows] == [
        ("5-702", "3", "2026年12月14日"),
        ("5-703", "3", "2026.12.5"),
        ("5-704", "2", ""),
    ]
    for cell, why in [
        ("12月5日", "has no year"),
        ("12.5", "has no year"),
        ("5/12", "has no year"),
    ]:
        bad = f"户号,人数,观察截止日期\n5-702,3,2026-12-01\n5-703,3,{cell}\n"
        with pytest.raises(CommunityError) as refused:
            plan_list_import(bad.encode(), "住户.csv", Lists())
        assert str(refused.value).startswith(f"line 3, column C (观察截止日期): {cell} {why}")
    bad = "户号,人数\n5-702,三口之家\n"
    with pytest.raises(CommunityError) as refused:
        plan_list_import(bad.encode(), "住户.csv", Lists())
    assert str(refused.value) == (
        "line 2, column B (人数): 三口之家 is not a count: a whole number such as 3 (or 3人)"
    )
    said = core_words.refusal_text("zh-CN", str(refused.value))
    assert said == "第 2 行，B 列（人数）：三口之家 不是人数：应为整数，如 3（或 3人）"
    said = core_words.refusal_text("zh-CN", "line 3, column C (观察截止日期): 12.5 has no year:"
                                   " type the date with its year (2026年12月5日)")  # fmt: skip
    assert (
        said == "第 3 行，C 列（观察截止日期）：12.5 没有年份：请连同年份输入日期（2026年12月5日）"
    )


def test_a_pass_batch_role_typed_in_chinese_is_the_role_and_an_unknown_one_is_refused(
    tmp_path, capsys
):
    """身份 typed 居民, 员工, 物业: 'role must be one of resident, staff, ...' for every row. The
    unambiguous words are the roles; 业委会 (which?) is refused naming line, column, the
    words accepted; no pass is printed."""
    import csv

    from checkpoint.cli import main

    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    households = tmp_path / "households.csv"
    households.write_text(
        "户号,姓名,身份\n5-702,张伟,居民\n5-703,李芳,租户\n0-001,王五,物业\n0-002,赵六,员工\n"
    )
    argv = ["--key", str(tmp_path / "keys" / "office.key"), "--csv", str(households)]
    code = main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "cards")])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "cards" / "passes.csv").open(encoding="utf-8-sig")))
    assert [r["role"] for r in rows] == ["resident", "resident", "staff", "staff"]
    households.write_text("户号,姓名,身份\n5-702,张伟,居民\n5-703,李芳,业委会\n")
    assert (
        main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "again")]) == 2
    )
    err = capsys.readouterr().err
    assert "line 3, column C (身份): 业委会 is none of resident, staff, delivery, visitor" in err
    assert "居民" in err and not (tmp_path / "again" / "passes.csv").exists()


def test_a_pass_batch_names_the_column_as_headed_for_its_days_and_flags_and_reads_7天(
    tmp_path, capsys
):
    """有效天数 typed 7天 was "line 2: could not convert string to float: '7天'", and an
    unknown 标记 "line 2: unknown flag": which column? 7天 is 7 days; the rest are refused
    naming line and column as headed, and no pass is printed."""
    import csv
    from datetime import datetime

    from checkpoint.cli import main

    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    households = tmp_path / "households.csv"
    households.write_text("户号,姓名,有效天数\n5-702,张伟,7天\n5-703,李芳,３\n")
    argv = ["--key", str(tmp_path / "keys" / "office.key"), "--csv", str(households)]
    code = main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "cards")])
    assert code == 0, capsys.readouterr().err
    rows = list(csv.DictReader((tmp_path / "cards" / "passes.csv").open(encoding="utf-8-sig")))
    days = [
        datetime.fromisoformat(r["valid_until"]) - datetime.fromisoformat(r["valid_from"])
        for r in rows
    ]
    assert [d.days for d in days] == [7, 3]
    households.write_text("户号,姓名,有效天数,标记\n5-702,张伟,七天,\n5-703,李芳,7,陪同人\n")
    assert (
        main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "again")]) == 2
    )
    err = capsys.readouterr().err
    assert "line 2, column C (有效天数): 七天 is not a number of days" in err, err
    assert "line 3, column D (标记): unknown flag '陪同人'" in err, err
    assert not (tmp_path / "again").exists()
