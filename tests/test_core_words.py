"""The core's refusals (calibration, lists, passes, the community ledgers, the engine's manual
decisions) said in the guard's language: the console shows them through ``ui.core_words``,
never in the core's English on a Chinese page."""

from __future__ import annotations

from guard_support import login, post

from kiosk.calibration import MAX_POINTS, Calibration, CalibrationPoint, default_path


def test_a_full_calibration_file_is_refused_in_the_guards_language(guard_client, guard_core):
    point = CalibrationPoint(36.8, 34.9, 24.0, "2026-03-02T09:00:00+08:00", "guard")
    Calibration(points=(point,) * MAX_POINTS).save(default_path(guard_core.data_dir))
    csrf = login(guard_client)
    guard_client.get("/guard/calibration?lang=zh-CN")  # the guard's page is in Chinese
    form = {"clinical_c": "36.8", "object_c": "34.9", "ambient_c": "24.0"}
    refused = post(guard_client, "/guard/calibration", csrf, **form)
    shown = guard_client.get(refused.headers["location"]).text
    assert "pairs stored already" not in shown
    assert f"已存满 {MAX_POINTS} 组" in shown, shown
    assert len(Calibration.load(default_path(guard_core.data_dir)).points) == MAX_POINTS


# --- every refusal the console can show, said in Chinese ------------------------------------

import ast  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from ui import core_words, i18n  # noqa: E402
from ui.guard.forms import BadInput  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: Where the console's refusals come from: the module, and the errors of it the console
#: catches and shows (``BadInput(str(exc))``: ui/guard/calibration.py, lists.py, passes.py,
#: deps.py ``manual``, community/common.py ``change``).
SOURCES = {
    "kiosk/calibration.py": {"CalibrationError"},
    "kiosk/lists.py": {"ListError", "ValueError"},
    "kiosk/passes.py": {"ValueError"},
    "kiosk/engine.py": {"ValueError"},
    **dict.fromkeys(
        (
            "kiosk/community.py",
            "kiosk/compound.py",
            "kiosk/roster.py",
            "kiosk/services.py",
            "kiosk/vehicles.py",
            "kiosk/listimport.py",
            "kiosk/sheets.py",
            "kiosk/headers.py",
            "kiosk/observation.py",
            *(str(p.relative_to(ROOT)) for p in (ROOT / "ui/guard/community").glob("*.py")),
        ),
        {"CommunityError"},
    ),
}
#: Refusals no page can show, by how they begin, and why.
NOT_ON_A_PAGE = {
    "no pair number": "kiosk calibrate remove (the CLI)",
    "no pairs recorded yet": "kiosk calibrate fit (the CLI)",
    "pair 7 is": "kiosk calibrate fit (the CLI)",
    "the pairs do not determine": "kiosk calibrate fit (the CLI)",
    "fitted 7 ": "kiosk calibrate fit (the CLI)",
    "calibration file ": "the console says cal.file_unreadable instead",
    "lists tables missing": "a programming error (the daemon opens the log with them)",
    "pass key_id does not match": "encode_pass: issue_pass signs with the key it names",
    "valid_from ": "encode_pass: issue_pass sets it from the clock, to the second",
    "validity must be": "encode_pass: issue_pass checks the days first",
    "issue_pass needs now": "the console passes its clock's time",
    "now must be timezone-aware": "the console's clock is aware",
    "a pass's start must be timezone-aware": "the console and the CLI place a typed start",
    "direction must be": "the kiosk screen's direction (JSON, not the console)",
    "person.7: text expected": "the API's and replay's numbers (the console's forms send text)",
    "not a finite number": "a file's numbers (the console says cal.file_unreadable)",
    "expected an object with version": "a file's format (the console says cal.file_unreadable)",
    "ambient range is empty": "a file's format (the console says cal.file_unreadable)",
    "7 7 out of bounds": "a file's format (the console says cal.file_unreadable)",
    "bundle ": "the office's list bundle (the list sync's status and kiosk fleet publish)",
}
#: Words of the core's English that a Chinese sentence keeps: commands, file types, codes.
KEPT = {"kiosk", "calibrate", "remove", "pass", "verify", "Excel", "WPS", "xlsx", "UTF",
        "GB18030", "YYYY", "revocations", "quarantine", "households", "missed_check", "fever",
        "manual_pass", "manual_deny", "degC", "UTC", "CSV", "csv", "compound",
        "vehicles", "lists"}  # fmt: skip


def _sample(node: ast.expr) -> tuple[str, list[str]] | None:
    """A text the expression could be (each part ``7``), and its literal words; None when
    it is not a string or an f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, [node.value]
    if isinstance(node, ast.JoinedStr):
        text = "".join(
            v.value if isinstance(v, ast.Constant) else ("'7'" if v.conversion == 114 else "7")
            for v in node.values
        )
        return text, [v.value for v in node.values if isinstance(v, ast.Constant)]
    return None


def _refusals() -> list[tuple[str, str, list[str]]]:
    found = []
    for path, errors in SOURCES.items():
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            texts: list[ast.expr] = []
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", "")
                texts = node.exc.args[:1] if name in errors else []
            elif isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "missing":
                texts = [node.value]  # the refusal of a row that is not there
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "row_by_id":
                texts = node.args[3:4]
            for text in texts:
                sample = _sample(text)
                if sample and not sample[0].startswith(tuple(NOT_ON_A_PAGE)):
                    found.append((f"{path}:{node.lineno}", *sample))
    return found


REFUSALS = _refusals()


def test_the_catalogue_finds_the_core_refusals():
    assert len(REFUSALS) > 60  # the scan still reads the raise sites


@pytest.mark.parametrize(("where", "text", "literal"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_every_refusal_reaches_a_chinese_page_in_chinese(where, text, literal):
    zh = BadInput(text).text("zh-CN")
    assert re.search(r"[\u4e00-\u9fff]", zh), f"{where}: {text!r} is shown as {zh!r}"
    words = {w for part in literal for w in re.findall(r"[A-Za-z][A-Za-z_]{2,}", part)}
    assert not [w for w in words - KEPT if re.search(rf"\b{w}\b", zh)], zh
    assert BadInput(text).text("en") == text  # the English is the core's own


@pytest.mark.parametrize(
    "text",
    [
        "household: required",
        "note: should be at most 200 characters long (got 201)",
        "pass_id: must be 12 hex digits (as printed by kiosk pass verify)",
        "line 3: household: should not be empty",
        "line 3: pass_id: must be 12 hex digits (as printed by kiosk pass verify); "
        "line 4: household: required (and 2 more lines); nothing imported",
        # What a list import's line says of a field (kiosk.lists.value_problem).
        "line 2: household: should be at least 12 characters long",
        "line 2: from: 2026-13-01 is not a calendar date",
        "line 2: residents: should be a whole number",
        "line 2: residents: should be at least 0 (got -1)",
        "line 2: residents: should be at most 100 (got 101)",
    ],
)
def test_the_field_checks_a_ledger_repeats_are_said_in_chinese_too(text):
    zh = core_words.refusal_text("zh-CN", text)
    assert not re.search(r"[A-Za-z]{4,}", zh.replace("household", "")), zh
    assert core_words.refusal_text("en", text) == text


def test_a_refusal_in_no_known_form_is_shown_as_it_came():
    assert core_words.refusal_text("zh-CN", "a sentence the core never said") == (
        "a sentence the core never said"
    )


def test_every_form_has_its_words_in_both_languages():
    assert core_words.KEYS and all(i18n.has(k) for k in core_words.KEYS)


def test_a_day_the_statistics_refuse_is_said_in_the_guards_language(guard_client):
    login(guard_client)
    guard_client.get("/guard/stats?lang=zh-CN")
    for path in ("/guard/stats?day=1999-12-31", "/guard/export.csv?day=2026-02-30"):
        # a JSON caller; the console gets a page (tests/test_guard_outage_pages.py)
        refused = guard_client.get(path, headers={"Accept": "application/json"})
        assert refused.status_code == 400
        detail = refused.json()["detail"]
        assert re.search(r"[\u4e00-\u9fff]", detail) and "Day" not in detail, detail


def test_a_shift_time_out_of_range_is_said_with_its_dates():
    """The handover desk's refusal carries two dates, not line numbers."""
    text = "'2026-13-01': expected a local date and time from 2000-01-01 to 2999-12-31"
    assert core_words.refusal_text("zh-CN", text) == (
        "'2026-13-01'：应为 2000-01-01 到 2999-12-31 之间的本地日期和时间"
    )


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("line 2: column F (日期) could be from or until: name it as one of them",
         "第 2 行：F 列（日期）可能是开始日期，也可能是结束日期：请把列名改为其中之一"),
        ("line 2: columns B (户号) and D (房号) are both household: keep one",
         "第 2 行：B 列（户号）和 D 列（房号）都是户号：只保留一列"),
    ],
)  # fmt: skip
def test_a_sheets_column_headers_refused_are_said_in_chinese(english, chinese):
    assert BadInput(english).text("zh-CN") == chinese
