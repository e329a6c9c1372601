"""``kiosk report`` and the imports: a change is shown first, applied only with --apply."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest

from checkpoint.cli import main
from drivers.clocksync import system_clock
from kiosk.config import parse_config
from kiosk.days import local_day
from kiosk.store import EventDraft, EventLog


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "kiosk.db"
    log = EventLog(path, "gate-1", system_clock(), "NORMAL").open()
    log.append(EventDraft(direction="in", decision="pass", household="1-101", temp_c=36.5))
    log.append(EventDraft(direction="out", decision="manual_pass", kind="vehicle", operator="Z",
                          person={"plate": "京A12345", "occupants": 2}))  # fmt: skip
    # The site's day (Asia/Shanghai by default), not the UTC date of the timestamp: from
    # 16:00 UTC they differ.
    day = local_day(log.events()[0]["ts"], parse_config({}).site.timezone).isoformat()
    log.close()
    return path, day


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def audits(path):
    log = EventLog(path, "gate-1", system_clock(), "NORMAL").open()
    try:
        return [a["action"] for a in log.audits(limit=100)]
    finally:
        log.close()


def test_report_prints_json_and_writes_xlsx_and_csv(db, tmp_path, capsys):
    path, day = db
    code, out, _ = run(capsys, "report", "--day", day, "--db", str(path), "--data", str(tmp_path))
    report = json.loads(out)
    assert code == 0 and report["community"]["vehicles"]["occupants"] == 2
    xlsx, csv_file = tmp_path / "r.xlsx", tmp_path / "r.csv"
    code, out, _ = run(capsys, "report", "--day", day, "--db", str(path),
                       "--xlsx", str(xlsx), "--csv", str(csv_file))  # fmt: skip
    assert code == 0 and out == ""
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.read_bytes()))["daily report"]
    cells = {(r[0], r[1]): r[2] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells[("people", "in")] == 1 and cells[("vehicles", "registrations")] == 1
    assert "people,in,1" in csv_file.read_text()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--day", "yesterday"], "not a date"),
        (["--day", "2026-03-02", "--xlsx", "/nonexistent/dir/r.xlsx"], "no such directory"),
    ],
)
def test_report_bad_input_is_one_line_and_exit_2(db, capsys, argv, message):
    path, _ = db
    code, _, err = run(capsys, "report", *argv, "--db", str(path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_lists_import_shows_then_applies_a_quarantine_sheet(db, tmp_path, capsys):
    path, _ = db
    book = openpyxl.Workbook()
    for row in (["household", "holder", "from", "until", "note"],
                ["5-702", "", "2026-02-10", "2026-02-24", "close contact"],
                ["6-101", "Li", "2026-02-11", "2026-02-25", ""]):  # fmt: skip
        book.active.append(row)
    sheet = tmp_path / "quarantine.xlsx"
    book.save(sheet)
    code, out, err = run(capsys, "lists", "import", str(sheet), "--db", str(path))
    assert code == 0 and "--apply" in err
    assert json.loads(out) == {
        "file": "quarantine.xlsx", "list": "quarantine", "added": 2, "changed": 0, "removed": 0,
        "unchanged": 0, "applied": False,
    }  # fmt: skip
    assert "lists.csv" not in audits(path)
    code, out, _ = run(capsys, "lists", "import", str(sheet), "--apply", "--actor", "office",
                       "--db", str(path))  # fmt: skip
    assert code == 0 and json.loads(out)["applied"] is True
    assert audits(path).count("lists.csv") == 1
    code, out, _ = run(capsys, "lists", "import", str(sheet), "--db", str(path))
    assert json.loads(out)["unchanged"] == 2 and json.loads(out)["added"] == 0


def test_lists_import_of_households_shows_what_changes(db, tmp_path, capsys):
    path, _ = db
    first = tmp_path / "h.csv"
    first.write_text("household,residents\n1-101,2\n1-102,3\n")
    run(capsys, "lists", "import", str(first), "--apply", "--db", str(path))
    second = tmp_path / "h2.csv"
    second.write_text("household,residents\n1-101,4\n1-103,1\n")
    code, out, _ = run(capsys, "lists", "import", str(second), "--show-keys", "--db", str(path))
    plan = json.loads(out)
    assert (plan["added"], plan["changed"], plan["removed"]) == (1, 1, 0)
    assert plan["keys"] == {"added": ["1-103"], "changed": ["1-101"], "removed": []}


def test_vehicles_and_compound_import(db, tmp_path, capsys):
    path, _ = db
    cars = tmp_path / "cars.csv"
    cars.write_text("plate,household\n京A12345,1-101\n", encoding="utf-8")
    code, out, _ = run(capsys, "vehicles", "import", str(cars), "--apply", "--db", str(path))
    assert code == 0 and json.loads(out)["added"] == 1
    plan = tmp_path / "map.csv"
    plan.write_text("building,unit,floor,household\n1,1,1,1-101\n1,1,1,1-102\n")
    code, out, _ = run(capsys, "compound", "import", str(plan), "--apply", "--db", str(path))
    assert code == 0 and json.loads(out)["added"] == 2
    assert {"vehicles.import", "compound.import"} <= set(audits(path))


@pytest.mark.parametrize(
    ("verb", "content", "message"),
    [
        ("lists", "colour\nred\n", "cannot tell the list"),
        ("lists", "pass_id\nnot-hex\n", "line 2, column A (pass_id)"),
        ("vehicles", "plate,household\n!!,1\n", "line 2, column A (plate)"),
        ("compound", "building,floor,household\n1,x,1\n", "line 2, column B (floor)"),
    ],
)
def test_a_bad_file_changes_nothing_and_exits_2(db, tmp_path, capsys, verb, content, message):
    path, _ = db
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    code, out, err = run(capsys, verb, "import", str(bad), "--apply", "--db", str(path))
    assert code == 2 and message in err and out == ""
    assert not any(a.endswith("import") or a == "lists.csv" for a in audits(path))


def test_a_missing_file_is_exit_2(db, tmp_path, capsys):
    path, _ = db
    code, _, err = run(capsys, "compound", "import", str(tmp_path / "nope.csv"), "--db", str(path))
    assert code == 2 and "cannot read" in err


def test_a_sheet_without_a_column_keeps_what_that_column_held(db, tmp_path, capsys):
    """Before: a households sheet of `household,residents` only, applied, set every listed
    household's observation_until and note to empty (the gate stopped flagging the
    returnee), and a `pass_id` only sheet wiped the revocations' reasons."""
    import sqlite3

    path, _ = db

    def sheet(name, text, *flags):
        (tmp_path / name).write_text(text)
        code, out, _ = run(
            capsys, "lists", "import", str(tmp_path / name), *flags, "--db", str(path)
        )
        assert code == 0
        return json.loads(out)

    sheet(
        "h.csv", "household,residents,observation_until,note\n1-101,2,2026-12-20,back\n", "--apply"
    )
    assert sheet("h2.csv", "household,residents\n1-101,4\n", "--apply")["changed"] == 1
    sheet("r.csv", "pass_id,reason\nabcdef012345,lost card\n", "--apply")
    assert sheet("r2.csv", "pass_id\nabcdef012345\n")["unchanged"] == 1
    sheet("r2.csv", "pass_id\nabcdef012345\n", "--apply")
    with sqlite3.connect(path) as conn:
        households = conn.execute(
            "select residents, observation_until, note from list_households"
        ).fetchall()
        reasons = conn.execute("select reason from list_revocations").fetchall()
    assert households == [(4, "2026-12-20", "back")]
    assert reasons == [("lost card",)]


def test_report_never_writes_over_a_file_that_is_not_a_report(db, tmp_path, capsys):
    """Before: `kiosk report --xlsx kiosk.toml` (or `--csv quarantine.csv`, the sheet just
    imported) replaced that file with the report, silently."""
    path, day = db
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-1"\n')
    sheet = tmp_path / "quarantine.csv"
    sheet.write_text("household,holder,from,until\n1-1,,2026-03-01,2026-03-14\n")
    for flag, target, message in (
        ("--xlsx", config, "must end in .xlsx"),
        ("--csv", config, "must end in .csv"),
        ("--csv", sheet, "not a report"),
    ):
        code, _, err = run(capsys, "report", "--day", day, "--db", str(path), flag, str(target))
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert config.read_text() == '[site]\nkiosk_id = "gate-1"\n'
    assert sheet.read_text().startswith("household,holder")
    report = tmp_path / "r.csv"
    for _ in range(2):  # an earlier report is replaced: the daily cron job writes the same name
        code, _, _ = run(capsys, "report", "--day", day, "--db", str(path), "--csv", str(report))
        assert code == 0 and "people,in,1" in report.read_text()


@pytest.mark.parametrize(
    "sheet",
    [
        # A header cell that sets the terminal's title and hides what follows.
        "household,holder,from,until,note,\x1b]0;kiosk: ok\x07\x1b[8mx\n"
        "1-101,,2026-03-01,2026-03-05,,\n",
        # A header cell with a right-to-left override and a C1 control (CSI).
        "household,holder,from,until,note,\u202eeton\x9b8m\n1-101,,2026-03-01,2026-03-05,,\n",
    ],
)
def test_a_sheet_error_quoting_a_cell_prints_no_terminal_escape(db, tmp_path, capsys, sheet):
    """A clerk's sheet whose header held terminal escapes had them printed raw in the
    refusal ('unknown columns for quarantine: ...'): the operator's terminal took its title
    from the sheet and hid the rest of the line. What nobody sees is printed escaped; the
    refusal still names the cell."""
    path, _day = db
    file = tmp_path / "q.csv"
    file.write_text(sheet, encoding="utf-8")
    code, _out, err = run(capsys, "lists", "import", str(file), "--db", str(path))
    assert code == 2 and "q.csv" in err
    assert err.endswith("\n") and err[:-1].isprintable(), repr(err)
    assert "\\x1b" in err or "\\u202e" in err


FORGED = "kiosk compound: applied 120 households (in force, audited)"


@pytest.mark.parametrize(
    ("verb", "sheet"),
    [
        # A count's cell quoting a line of the CLI's own (read_value's refusal quotes it).
        ("compound", f'building,unit,floor,household,residents\n1,1,3,A-101,"x\n{FORGED}"\n'),
        # The same line in a header cell the refusal names.
        ("compound", f'building,floor,household,"residents\n{FORGED}"\n1,x,A-101,2\n'),
        ("lists", f'household,residents\n1-101,"x\n{FORGED}"\n'),
    ],
)
def test_a_sheet_error_quoting_a_cell_is_one_line(db, tmp_path, capsys, verb, sheet):
    """A cell's line break was printed as it was in the refusal naming the cell: the cell
    forged a second line on the operator's terminal ("applied 120 households", while
    nothing was). The refusal is one line, the line break in it escaped."""
    path, _day = db
    file = tmp_path / "c.csv"
    file.write_text(sheet, encoding="utf-8")
    code, out, err = run(capsys, verb, "import", str(file), "--apply", "--db", str(path))
    assert code == 2 and out == "" and "c.csv" in err, err
    assert err.count("\n") == 1 and err.endswith("\n"), repr(err)
    assert "\\n" + FORGED in err
