"""A list CSV with a stray quote: refused naming its line, the lists unchanged (rvbad #1).

A `"` opened in a cell and never closed ran to the end of the file: every row after it was
swallowed into that cell and the import said `added 1`, exit 0; with --apply the two stolen
passes after it stayed valid, two confined households could leave."""

from __future__ import annotations

import json
import sqlite3

import pytest

from checkpoint.cli import main

UNCLOSED = {
    "revocations": 'pass_id,reason\n0123456789ab,"lost\n0123456789ac,stolen\n0123456789ad,stolen\n',
    "quarantine": (
        "household,holder,from,until,note\n"
        'B-201,,2026-03-01,2026-03-14,"close contact\n'
        "B-202,,2026-03-01,2026-03-14,\n"
        "B-203,,2026-03-01,2026-03-14,\n"
    ),
    "households": ('household,residents,note\nC-101,3,"new\nC-102,2,observed\nC-103,4,observed\n'),
}

#: A quote closed further down: the rows between swallowed into one single-line cell.
CLOSED_LATER = {
    "revocations": 'pass_id,reason\n0123456789ab,"lost\n0123456789ac,stolen"\n',
    "quarantine": (
        "household,holder,from,until,note\n"
        'B-201,,2026-03-01,2026-03-14,"close contact\nB-202,,2026-03-01,2026-03-14,"\n'
    ),
    "households": 'household,residents,note\nC-101,3,"new\nC-102,2,observed"\n',
    "holder": ('household,holder,from,until,note\nB-201,"Li\nB-202",2026-03-01,2026-03-14,\n'),
}


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _in_force(capsys, db):
    """The lists' rows, after a good import made them (one row in each)."""
    if not db.exists():
        seed = db.parent / "seed.csv"
        for text in (
            "pass_id,reason\n0123456789ff,lost\n",
            "household,from,until\nZ-1,2026-03-01,2026-03-14\n",
            "household,residents\nZ-2,1\n",
        ):
            seed.write_text(text)
            assert _run(capsys, "lists", "import", str(seed), "--db", str(db), "--apply")[0] == 0
    with sqlite3.connect(db) as conn:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()  # noqa: S608
            for table in ("list_revocations", "list_quarantine", "list_households")
        ]


REFUSED = {
    **{f"unclosed {kind}": (text, ("line 2", "quote")) for kind, text in UNCLOSED.items()},
    **{f"line break {case}": (text, ("line 2, column", "line break"))
       for case, text in CLOSED_LATER.items()},
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_stray_quote_or_a_line_break_in_a_cell_is_refused_naming_its_line(tmp_path, capsys, case):
    """An unclosed quote (no strict reading ran the rows below into its cell), or a line
    break in a single-line cell (a quote closed further down): refused naming line 2, the
    lists in force as they were."""
    text, said = REFUSED[case]
    db = tmp_path / "kiosk.db"
    sheet = tmp_path / "list.csv"
    sheet.write_text(text, encoding="utf-8")
    before = _in_force(capsys, db)
    code, out, err = _run(capsys, "lists", "import", str(sheet), "--db", str(db), "--apply")
    assert code == 2 and out == "", (out, err)
    assert all(words in err for words in said), err
    assert _in_force(capsys, db) == before


def test_a_good_file_still_imports(tmp_path, capsys):
    db = tmp_path / "kiosk.db"
    sheet = tmp_path / "list.csv"
    sheet.write_text('pass_id,reason\n0123456789ab,"lost, reported"\n0123456789ac,stolen\n')
    code, out, err = _run(capsys, "lists", "import", str(sheet), "--db", str(db), "--apply")
    assert code == 0, err
    assert json.loads(out)["added"] == 2


#: The same stray quote in the other sheets `kiosk ... import` reads: the resident vehicles'
#: and the compound map's (its table and a good file that makes one row of it).
OTHER_SHEETS = {
    "vehicles": (
        "resident_vehicles",
        "plate,household\n粤B00001,1-100\n",
        'plate,household\n粤B12345,"1-101\n粤B22222,1-102\n粤B33333,1-103\n',
    ),
    "compound": (
        "compound_households",
        "building,unit,floor,household\n1,1,1,1-1-100\n",
        'building,unit,floor,household\n1,1,1,"1-1-101\n1,1,1,1-1-102\n1,1,1,1-1-103\n',
    ),
}


@pytest.mark.parametrize("verb", sorted(OTHER_SHEETS))
def test_an_unclosed_quote_in_a_vehicle_or_compound_sheet_is_refused(tmp_path, capsys, verb):
    """Refused naming the stray quote, nothing applied: the strict CSV reader's. Unstrict,
    the rows below the quote ran into its cell, refused only for the line breaks in it
    ("control characters are not allowed"), the operator never told of the quote."""
    table, good, bad = OTHER_SHEETS[verb]
    db = tmp_path / "kiosk.db"
    sheet = tmp_path / f"{verb}.csv"
    sheet.write_text(good, encoding="utf-8")
    assert _run(capsys, verb, "import", str(sheet), "--db", str(db), "--apply")[0] == 0
    with sqlite3.connect(db) as conn:
        before = conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
    assert len(before) == 1
    sheet.write_text(bad, encoding="utf-8")
    code, out, err = _run(capsys, verb, "import", str(sheet), "--db", str(db), "--apply")
    assert code == 2 and out == "", (out, err)
    assert "line 2" in err and "quote" in err, err
    with sqlite3.connect(db) as conn:
        assert conn.execute(f"SELECT * FROM {table}").fetchall() == before  # noqa: S608
