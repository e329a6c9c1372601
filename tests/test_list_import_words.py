"""A list import's refusal names the line and the column and says what is wrong in the gate's
words, in the CLI and on the console, never pydantic's. Before: ``line 2, column C (until):
Value error, expected a date ...``, ``column A (pass_id): String should have at least 12
characters``, ``Input should be less than or equal to 100``, ``Field required``."""

from __future__ import annotations

import re

import pytest

from checkpoint.cli import main
from kiosk.community import CommunityError
from kiosk.listimport import plan_list_import
from kiosk.lists import HouseholdIn, Lists, QuarantineIn, RevocationIn, value_problem
from ui import core_words

#: pydantic's own words and its links: none reaches the operator.
PYDANTIC = re.compile(
    r"Value error|Input should|Field required|String should|Extra inputs|pydantic|errors\.", re.I
)


@pytest.mark.parametrize(
    ("sheet", "english", "chinese"),
    [
        ("household,from,until\n1-101,2026-03-01,\n",
         "line 2, column C (until): expected a date such as 2026-03-01 (or 2026/3/1, 2026年3月1日)",
         "第 2 行，C 列（结束日期）：应为日期，例如 2026-03-01（或 2026/3/1、2026年3月1日）"),
        ("pass_id,reason\nzz,lost\n",
         "line 2, column A (pass_id): should be at least 12 characters long",
         "第 2 行，A 列（通行证编号）：至少 12 个字符"),
        ("household,residents\n1-1,101\n",
         'line 2, column B (residents): should be at most 100 (got "101")',
         '第 2 行，B 列（人数）：应不大于 100（填写的是 "101"）'),
        ("household,residents,note\n1-1,3," + "x" * 201 + "\n",
         "line 2, column C (note): should be at most 200 characters long (got 201)",
         "第 2 行，C 列（备注）：最多 200 个字符（现为 201 个）"),
        ("household,from,until\n,2026-03-01,2026-03-05\n",
         "line 2, column A (household): should not be empty",
         "第 2 行，A 列（户号）：不能为空"),
    ],
)  # fmt: skip
def test_a_list_imports_refusal_is_in_the_gates_words(sheet, english, chinese):
    with pytest.raises(CommunityError) as refused:
        plan_list_import(sheet.encode(), "名单.csv", Lists())
    assert str(refused.value) == english
    assert core_words.refusal_text("zh-CN", english) == chinese


def test_the_cli_says_it_with_the_line_and_column(tmp_path, capsys):
    db = tmp_path / "kiosk.db"
    assert main(["token", "new", "--db", str(db), "--scope", "logs:read"]) == 0
    sheet = tmp_path / "q.csv"
    sheet.write_text("household,from,until\n1-101,2026-03-01,2026-13-01\n")
    capsys.readouterr()
    assert main(["lists", "import", "--db", str(db), str(sheet)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kiosk lists: q.csv: line 2, column C (until): "), err
    assert not PYDANTIC.search(err), err


def every_field_problem() -> list[str]:
    """What each field check of the lists' rows says (a list edit's form, an import's cell)."""
    bad = [
        (RevocationIn, {}),
        (RevocationIn, {"pass_id": "zz"}),
        (RevocationIn, {"pass_id": "abcdefabcdef", "reason": "r" * 201, "x": "1"}),
        (QuarantineIn, {"household": "", "from": "2026-13-01", "until": 7}),
        (HouseholdIn, {"household": "1-1", "residents": 3.5, "observation_until": "x"}),
        (HouseholdIn, {"household": "1-1", "residents": 101, "note": 5}),
        (HouseholdIn, {"household": "1-1", "residents": -1}),
    ]
    said = []
    for model, values in bad:
        try:
            model.model_validate(values)
        except Exception as exc:  # pydantic's ValidationError
            said += [value_problem(err) for err in exc.errors()]
    return said


def test_no_field_check_says_pydantics_words_and_each_has_the_guards():
    said = every_field_problem()
    assert len(said) > 10
    for text in said:
        assert not PYDANTIC.search(text), text
        zh = core_words.refusal_text("zh-CN", f"line 2: household: {text}")
        assert not re.search(r"[A-Za-z]{4,}", zh.replace("household", "")), (text, zh)
