"""The column headers a clerk's sheet has, per import: which header is which field.

An office's sheet names its columns in Chinese (``户号``, ``姓名``, ``隔离开始日期``...), the
kiosk's imports by their fields (``household``, ``holder``, ``from``...). ``HEADERS`` holds one
table per import (``lists``, ``compound``, ``vehicles``, ``pass_batch``): each field with the
headers that name it, and the columns a sheet often has that the kiosk does not keep (a row
number, a phone, an ID number: personal data the gate does not need), read past, never stored.

A header is matched after ``header_key``: spaces, ``_`` and ``-`` dropped, full width made half
width (NFKC), lower case, a trailing note in brackets (``（必填）``, ``(yyyy-mm-dd)``) and a
``*`` marking a column required dropped. A header no field of the import names stays as it is
written (the import refuses it as an unknown column); one that two fields could claim
(``日期``: from or until?) and two columns claiming one field (``户号`` and ``房号``) are
refused naming both, never guessed (``match_header``). Documented in docs/community.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

from .community import CommunityError

__all__ = [
    "HEADERS",
    "Column",
    "Headers",
    "header_key",
    "column_of",
    "match_header",
    "read_value",
    "refuse_at",
]


@dataclass(frozen=True)
class Headers:
    """An import's fields, each with the other headers that name it (besides the field's
    own name), and the headers of columns read past (``not_kept``)."""

    fields: Mapping[str, tuple[str, ...]]
    not_kept: tuple[str, ...] = ()

    @classmethod
    def plain(cls, names: Iterable[str]) -> Headers:
        """A table of fields known by their own names only."""
        return cls({name: () for name in names})

    @cached_property
    def _claims(self) -> dict[str, list[str]]:
        claims: dict[str, list[str]] = {}
        for name, other in self.fields.items():
            for key in sorted(_keys((name, *other))):
                claims.setdefault(key, []).append(name)
        return claims

    @cached_property
    def _read_past(self) -> frozenset[str]:
        return frozenset(_keys(self.not_kept))

    def claims(self, key: str) -> list[str]:
        """The fields that the header ``key`` (``header_key``) names."""
        return list(self._claims.get(key, ()))

    def reads_past(self, key: str) -> bool:
        """Whether the header ``key`` is a column's that is read past, not kept."""
        return key in self._read_past

    def names(self, text: str) -> bool:
        """Whether a cell is a header this import knows: of a field (or two), or of a
        column read past."""
        key = header_key(text)
        return key in self._claims or key in self._read_past

    def knows(self, text: str) -> bool:
        """Whether a cell names one field, and only one: how the header line (and the sheet
        holding the list) is found. A cell two fields could claim (``日期：`` in a date line
        above the header) or naming a column read past (``联系电话：``, ``序号`` of an
        instructions table) does not make its line the header."""
        return len(self._claims.get(header_key(text), ())) == 1


def _keys(names: Iterable[str]) -> set[str]:
    return {header_key(n) for n in names}


_HOUSEHOLD = ("户号", "房号", "房间号", "门牌号", "门牌", "户编号", "房屋编号", "household code",
              "household no", "room", "room no")  # fmt: skip
_NOTE = ("备注", "notes", "remark", "remarks")
_NOT_KEPT = ("序号", "no.", "#", "手机号", "手机", "手机号码", "电话", "联系电话", "电话号码",
             "联系方式", "身份证号", "身份证", "身份证号码", "证件号码", "phone", "mobile",
             "id number")  # fmt: skip
#: A bare date column: the start or the end? Both claim it: refused naming both, not guessed.
_EITHER_DATE = ("日期", "隔离日期", "date")
_NAME = ("姓名", "名字", "人员姓名", "隔离人员", "持证人", "居民姓名", "name", "holder name")

#: The headers each import knows (the field's own name always names it too).
HEADERS: dict[str, Headers] = {
    "lists": Headers(
        {
            "household": _HOUSEHOLD,
            "holder": _NAME,
            "from": (
                *_EITHER_DATE,
                "开始",
                "隔离开始",
                "隔离开始日期",
                "开始日期",
                "开始时间",
                "起始日期",
                "隔离起始日期",
                "start",
                "start date",
                "from date",
            ),  # fmt: skip
            "until": (
                *_EITHER_DATE,
                "结束",
                "隔离结束",
                "隔离结束日期",
                "结束日期",
                "结束时间",
                "解除日期",
                "解除隔离日期",
                "截止日期",
                "end",
                "end date",
                "until date",
            ),  # fmt: skip
            "pass_id": ("通行证号", "通行证编号", "出入证号", "证号", "pass id", "pass no"),
            "reason": ("原因", "作废原因", "吊销原因", "注销原因"),
            "residents": ("人数", "居住人数", "常住人数", "户内人数", "家庭人数"),
            "observation_until": ("观察截止", "观察截止日期", "观察结束日期", "健康观察截止日期"),
            "note": _NOTE,
        },
        _NOT_KEPT,
    ),
    "compound": Headers(
        {
            "building": ("楼号", "楼栋", "楼栋号", "栋", "栋号", "幢", "幢号", "楼"),
            "unit": ("单元", "单元号"),
            "floor": ("楼层", "层", "层号", "所在楼层"),
            "household": _HOUSEHOLD,
            "residents": ("人数", "居住人数", "常住人数", "户内人数", "家庭人数"),
        },
        _NOT_KEPT,
    ),
    "vehicles": Headers(
        {
            "plate": ("车牌号", "车牌", "车牌号码", "号牌号码", "plate number", "license plate"),
            "household": _HOUSEHOLD,
            "note": _NOTE,
        },
        (*_NOT_KEPT, "车主", "车主姓名", "姓名", "name", "车型", "品牌", "颜色", "车辆颜色"),
    ),
    "pass_batch": Headers(
        {
            "household": _HOUSEHOLD,
            "holder": _NAME,
            "role": ("身份", "角色", "人员类型", "类型"),
            "days": ("天数", "有效天数", "有效期"),
            "flags": ("标记",),
        },
        _NOT_KEPT,
    ),
}

#: What a clerk types in a cell, per kind of value, beside the field's own spelling. A role:
#: the words that name one role only (any other, 业委会 say, is refused: never guessed).
ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "resident": ("居民", "住户", "业主", "租户", "房客", "家属"),
    "staff": ("员工", "物业", "物业人员", "工作人员", "职工"),
    "delivery": ("快递", "快递员", "外卖", "外卖员", "配送", "配送员"),
    "visitor": ("访客", "来访", "来访人员", "来访者", "客人"),
}
#: A count of people: a whole number, typed full width (３) or with its unit (3人, 3口). Days
#: (a pass batch's): a number, with 天 after it or not (7天).
COUNT_UNITS = ("人", "口", "名", "位")
#: The fields holding a value of each kind (any import): how ``read_value`` reads them.
KINDS: dict[str, str] = {
    "role": "role",
    "residents": "count",
    "days": "days",
    "from": "date",
    "until": "date",
    "observation_until": "date",
}
#: A day and month with no year (12月5日, 12.5, 5/12): which year? Refused, never guessed.
_NO_YEAR = re.compile(r"^(\d{1,2}\s*月\s*\d{1,2}\s*[日号]?|\d{1,2}\s*[./-]\s*\d{1,2})$")
#: 2026年12月5号: 号 is how 日 is said aloud, and often typed.
_HAO = re.compile(r"^(\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*)号$")


def read_value(field: str, text: str) -> str:
    """A cell of ``field`` as the import reads it (``KINDS``): a role typed 居民 is
    ``resident`` (``ROLE_WORDS``), a count typed ３ or 3人 is ``3``, days typed 7天 are
    ``7``, a date typed
    2026年12月5号 is 2026年12月5日; any other field's, or a blank cell, as it is.
    ``ValueError`` saying what is accepted for one that is none of them, and for a date with
    no year (12月5日): the import never puts a year of its own on a list."""
    kind, value = KINDS.get(field), unicodedata.normalize("NFKC", text).strip()
    if kind is None or not value:
        return text
    if kind == "role":
        for role, words in ROLE_WORDS.items():
            if value.lower() == role or value in words:
                return role
        accepted = ", ".join(w for words in ROLE_WORDS.values() for w in words)
        raise ValueError(f"{value} is none of {', '.join(ROLE_WORDS)} (or {accepted})")
    if kind == "count":
        digits = value.removesuffix(next((u for u in COUNT_UNITS if value.endswith(u)), ""))
        if digits.strip().isascii() and digits.strip().isdigit():
            return str(int(digits))
        raise ValueError(f"{value} is not a count: a whole number such as 3 (or 3人)")
    if kind == "days":  # 7, 1.5, 7天
        number = value.removesuffix("天").strip()
        if re.fullmatch(r"\d{1,4}(\.\d{1,4})?", number):
            return number
        raise ValueError(f"{value} is not a number of days: such as 7 (or 7天, 0.5)")
    if _NO_YEAR.match(value):
        raise ValueError(f"{value} has no year: type the date with its year (2026年12月5日)")
    return f"{said.group(1)}日" if (said := _HAO.match(value)) else text


#: A note in brackets at a header's end (``（必填）``, ``(yyyy-mm-dd)``, ``【选填】``).
_TRAILING_NOTE = re.compile(r"[(\[【][^()\[\]【】]*[)\]】]$")


def header_key(text: str) -> str:
    """A header as it is matched: half width, lower case, no spaces, ``_`` or ``-``, no
    ``*`` marking it required, no note in brackets at its end."""
    key = unicodedata.normalize("NFKC", text).strip().lower()
    while True:
        shorter = _TRAILING_NOTE.sub("", key.strip(" *:")).strip(" *:")
        if shorter == key:
            break
        key = shorter
    return re.sub(r"[\s_\-]+", "", key)


@dataclass(frozen=True)
class Column:
    """A column of the file: its header as written, its letter, the field it was taken for
    (``None``: read past, not kept; the header itself: a column no field names)."""

    header: str
    letter: str
    field: str | None


def letter(index: int) -> str:
    """A column's letter as a spreadsheet shows it (0 → A, 26 → AA)."""
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("A") + rest) + text
    return text


def match_header(line: int, cells: Sequence[str], headers: Headers) -> tuple[Column, ...]:
    """Each header cell on ``line`` with the field it names. ``CommunityError`` for a header
    two fields could claim, and for two columns claiming one field, naming both."""
    columns: list[Column] = []
    taken: dict[str, Column] = {}
    for index, cell in enumerate(cells):
        written, key = cell.strip(), header_key(cell)
        claims = headers.claims(key) if key else []
        if len(claims) > 1:
            raise CommunityError(
                f"line {line}: column {letter(index)} ({written}) could be {claims[0]} or"
                f" {' or '.join(claims[1:])}: name it as one of them"
            )
        name: str | None = claims[0] if claims else None
        if not claims and not headers.reads_past(key):
            name = written.lower()  # unknown: the import refuses it by this name
        column = Column(written, letter(index), name)
        if name and name in taken:
            first = taken[name]
            raise CommunityError(
                f"line {line}: columns {first.letter} ({first.header}) and {column.letter}"
                f" ({written}) are both {name}: keep one"
            )
        if name:
            taken[name] = column
        columns.append(column)
    return tuple(columns)


def column_of(field: str, columns: Iterable[Column]) -> Column | None:
    """The column taken for ``field``, to name in a row's error as the clerk headed it
    (``line 5, column C (隔离开始日期): …``, not ``from``); None when the sheet has none."""
    return next((c for c in columns if c.field == field), None)


def refuse_at(line: int, field: str, columns: Iterable[Column], reason: str) -> NoReturn:
    """Refuse a row's value, naming its line and its column as the clerk headed it with its
    letter (``line 5, column C (隔离开始日期): …``); a field no column of ``columns`` was
    taken for (a value the row lacks) by its name (``line 5: until: …``). The console says
    both in its language (``core.line_column``, ``core.line``)."""
    if (at := column_of(field, columns)) is not None:
        raise CommunityError(f"line {line}, column {at.letter} ({at.header}): {reason}")
    raise CommunityError(f"line {line}: {field}: {reason}")
