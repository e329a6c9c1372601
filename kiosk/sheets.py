"""Tables in and out as the sub-district and the manager have them: CSV or .xlsx.

``read_table(data, filename)`` turns a CSV (UTF-8, with or without BOM; GB18030 as sent by
older office PCs) or the list's sheet of an .xlsx (the first visible one naming its columns)
into a header and rows of text, bounded before it is read (``MAX_BYTES``, ``MAX_ROWS``,
``MAX_COLUMNS``; an .xlsx also by what it unpacks to, ``MAX_UNPACKED_BYTES``); an office
sheet's title, footer and hidden rows are skipped (``Table.layout``). ``diff_rows`` says what an
import would change (added, changed, removed) so it can be shown before it is applied.
``write_xlsx`` / ``write_csv`` write every sheet the kiosk hands out (the daily report, the
guard console's and the API's event exports, a pass batch's passes.csv), by one rule for text
a spreadsheet could run as a formula: in a CSV (``sheet_cell``) a text cell starting with
``= + - @``, a tab or a CR gets a leading ``'`` (``formula_safe``), so a phone number
``+86 138 ...`` reads ``'+86 138 ...``; in an .xlsx (``xlsx_cell``) a text is a text cell, as
written, never a formula. Numbers stay numbers in both. ``csv_text`` writes cells as they
are, only for the kiosk's own reader (the list import's hand-off), never a spreadsheet.

openpyxl reads .xlsx in read-only mode (a zip of XML): no macros run, formulas are read as
their cached values (``data_only``); a formula with no cached value (a file a program wrote
and no spreadsheet ever calculated) is refused with its line and column, never read as blank.
"""

from __future__ import annotations

import _csv
import codecs
import contextlib
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Literal, NamedTuple

from .community import CommunityError
from .headers import Column, Headers, match_header, read_value, refuse_at
from .headers import letter as column_letter

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

__all__ = [
    "MAX_BYTES",
    "MAX_ROWS",
    "Diff",
    "Layout",
    "Skipped",
    "check_code",
    "Table",
    "csv_rows",
    "csv_text",
    "decode_text",
    "diff_rows",
    "find_table",
    "formula_safe",
    "read_table",
    "sheet_cell",
    "write_csv",
    "write_xlsx",
    "xlsx_cell",
]

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20000
MAX_COLUMNS = 40
MAX_CELL = 500
#: An .xlsx is a zip: what it may unpack to in all, checked from its directory before openpyxl
#: reads a byte (a 20 000-row sheet is a few MB of XML; a small upload can unpack to GB).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
#: What a text cell may not start with in a CSV a spreadsheet opens: a formula (``= + - @``),
#: or a tab, carriage return or line feed, which a spreadsheet skips before reading the formula
#: after it, or a NUL (OWASP ASVS 1.2.10). Checked on the first character's compatibility form
#: (NFKC, ``formula_safe``): a Chinese input method's full-width ``＝ ＋ － ＠`` (and the small
#: ``﹦ ﹢ ﹣ ﹫``) are these once width is folded: by a spreadsheet that takes a formula typed
#: or pasted with a full-width ``＝ ＋ －`` first (SpreadJS documents it), or by a clerk's
#: "convert to half width" (ASC) before saving.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


#: How far down a sheet its header may be: below a title, a subtitle, a date line or two.
HEADER_SEARCH_ROWS = 10
#: What the first cell of a line below an office sheet's table starts with: its totals, its
#: signatures and stamp, its date and notes (``制表人：王五``, ``合计``, ``注：...``).
FOOTER_STARTS = (
    "合计", "总计", "小计", "共计", "制表", "填表", "填报", "审核", "审批", "负责人", "签字",
    "签名", "盖章", "联系人", "联系电话", "日期", "备注", "注：", "注:", "说明", "以上",
    "total",
)  # fmt: skip
_FOOTER_WHY = "below the table (合计, 制表人, ...)"
_TITLE_WHY = "above the header"
_HIDDEN_WHY = "hidden in the sheet"
#: A numbered note under a footer's ``备注：`` (``1、...``, ``（2）...``, ``二、...``); never a
#: code such as ``1.201``, whose mark is followed by a digit.
_NOTE_LINE = re.compile(r"^[(（]?(\d{1,2}|[一二三四五六七八九十]{1,3})[、.．)）]\s*[^\d\s]")
#: A line of a footer that holds only a date (``2026年12月5日``, ``2026.12.5``).
_DATE_LINE = re.compile(r"^\d{4}\s*(年\s*\d{1,2}\s*月\s*\d{1,2}\s*日|[-/.]\d{1,2}[-/.]\d{1,2})$")


@dataclass(frozen=True, order=True)
class Skipped:
    """A line of the file that is not a row of the table: part of the ``title`` above the
    header or of the ``footer`` below the table, or ``hidden`` in the sheet (hidden rows,
    rows a filter leaves out: the clerk does not see them on her list)."""

    line: int
    part: Literal["title", "footer", "hidden"]

    @property
    def why(self) -> str:
        return {"title": _TITLE_WHY, "footer": _FOOTER_WHY, "hidden": _HIDDEN_WHY}[self.part]


@dataclass(frozen=True)
class Layout:
    """Where the table is in its file: the header's line, and the lines skipped."""

    header_line: int = 1
    skipped: tuple[Skipped, ...] = ()
    #: The sheet read, when it is not the workbook's first (an instructions sheet in front).
    sheet: str | None = None
    #: The header's columns, each with the field it was taken for (``kiosk.headers``).
    columns: tuple[Column, ...] = ()

    def renamed(self) -> bool:
        """Whether a column was taken for a field it is not named as (``户号`` for
        ``household``), or read past (``手机号``): the preview says which."""
        return any(c.field is None or c.header.lower() != c.field for c in self.columns)

    def fields(self) -> dict[str, str]:
        """Field → the header of the column taken for it."""
        return {c.field: c.header for c in self.columns if c.field}

    def not_kept(self) -> list[str]:
        """The headers of the columns read past (a row number, a phone: not kept)."""
        return [c.header for c in self.columns if c.field is None]

    def lines(self, part: Literal["title", "footer", "hidden"]) -> list[int]:
        """The lines skipped as part of the title, of the footer, or hidden in the sheet."""
        return [s.line for s in self.skipped if s.part == part]

    def shown(self) -> dict[str, Any]:
        """For a preview: nothing when the header is the first line of the first sheet and no
        line was skipped."""
        shown: dict[str, Any] = {}
        if self.renamed():
            shown = {"columns": self.fields(), "not_kept": self.not_kept()}
        if self.header_line == 1 and not self.skipped and self.sheet is None:
            return shown
        return {
            **({"sheet": self.sheet} if self.sheet is not None else {}),
            "header_line": self.header_line,
            "skipped": [{"line": s.line, "why": s.why} for s in self.skipped],
            **shown,
        }


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    #: The file's line of each row (the sheet's row number; a CSV's record), for errors.
    lines: tuple[int, ...] = ()
    layout: Layout = field(default_factory=Layout)

    def numbered(self) -> Iterable[tuple[int, dict[str, str]]]:
        """Each row with its line in the file (header line 1, rows from 2 when not given)."""
        return zip(self.lines or range(2, len(self.rows) + 2), self.rows, strict=True)


#: A file's non-blank lines, each with its line number (the sheet's row, the CSV's record).
Lines = Sequence[tuple[int, list[str]]]


class _DateText(str):
    """The text of a cell the spreadsheet holds as a date (``read_table``'s ``text_columns``)."""


class _NumberText(str):
    """The text of a number cell that may not be what was typed (``read_table``'s
    ``text_columns``): a fraction (``3.10`` typed is the number 3.1) or more digits than a
    spreadsheet keeps (15: an 18-digit code typed loses its last ones, 1.10101E+17)."""


#: Digits a spreadsheet's number keeps exactly (Excel: 15 significant digits).
_EXACT_DIGITS = 15
#: A number as Excel writes one too long for its cell into a CSV: ``1.10101E+17``.
_SCIENTIFIC = re.compile(r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        when = value.date().isoformat() if value.time() == datetime.min.time() else str(value)
        return _DateText(when)
    if isinstance(value, date):
        return _DateText(value.isoformat())
    if isinstance(value, int | float) and not isinstance(value, bool):
        whole = isinstance(value, int) or value.is_integer()
        # As the spreadsheet shows it (its 15 digits): 110101199003071000, not ...071008.
        shown = value if isinstance(value, int) else Decimal(f"{value:.15g}")
        text = str(int(shown)) if whole else str(shown)
        exact = whole and len(text.lstrip("-")) <= _EXACT_DIGITS
        return text if exact else _NumberText(text)
    return str(value).strip()


def decode_text(data: bytes) -> str:
    """A CSV's bytes as text: UTF-8 (with Excel's BOM or without) or else GB18030, the
    encoding a Chinese Windows Excel saves "CSV" in; UTF-16 when it starts with its BOM, as
    Excel saves a sheet as "Unicode Text". Every CSV the kiosk takes from a person is read
    this way (the list imports, the map, ``kiosk pass batch``). Raises ``CommunityError`` for
    bytes that are none of them, naming the first byte that is not UTF-8.

    A UTF-8 file with a damaged byte or two (a USB stick, a cut download) often decodes as
    GB18030 too (UTF-8's Chinese bytes pair up as GB18030's): its names would be read as
    mojibake (张伟 as 寮犱紵), a wrong person on a list. So GB18030 is taken only for bytes
    that are not mostly UTF-8 (``_mostly_utf8``) and read as the Chinese text an office PC
    writes (``_reads_as_chinese``); else the file is refused where it stops being UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = exc.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)
    line, byte = data.count(b"\n", 0, bad) + 1, bad + 1
    if _mostly_utf8(data):
        raise CommunityError(
            f"line {line}, byte {byte}: not UTF-8, in a file that is UTF-8 elsewhere (damaged on"
            " the way?); nothing read: save it again as CSV UTF-8"
        )
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise CommunityError(
            f"line {line}, byte {byte}: CSV is neither UTF-8 nor GB18030 text"
        ) from None
    if not _reads_as_chinese(text):
        raise CommunityError(
            f"line {line}, byte {byte}: CSV is neither UTF-8 nor GB18030 text (read as GB18030"
            " it is not the Chinese an office PC writes); save it again as CSV UTF-8"
        )
    return text


def _mostly_utf8(data: bytes) -> bool:
    """Whether the bytes beyond ASCII are at least twice as many in whole UTF-8 characters
    as outside them (GB18030 text has a few UTF-8-looking pairs by chance, far fewer)."""
    text = data.decode("utf-8", "surrogateescape")
    bad = sum(1 for c in text if "\udc80" <= c <= "\udcff")
    good = sum(len(c.encode()) for c in text if c > "\x7f" and not "\udc80" <= c <= "\udcff")
    return good >= 2 * bad


def _reads_as_chinese(text: str) -> bool:
    """Whether at least 4 in 5 characters beyond ASCII are GB2312's: its hanzi (lead byte
    B0-F7) or its symbols and full-width forms (A1-A9), as names and notes typed on an office
    PC are. UTF-8 read as GB18030 falls in the rare GBK areas and the private-use ones."""
    wide = [c for c in text if c > "\x7f"]
    common = 0
    for c in wide:
        code = c.encode("gb18030")
        if len(code) == 2 and (0xB0 <= code[0] <= 0xF7 or 0xA1 <= code[0] <= 0xA9):
            common += 0xA1 <= code[1] <= 0xFE
    return common * 5 >= len(wide) * 4


def csv_rows(text: str) -> _csv.Reader:
    """The rows of a CSV's text (``decode_text``), split at commas, or at tabs when its first
    line has tabs and no comma: Excel's "Text (Tab delimited)" and "Unicode Text" (a cell's
    own comma stays in it there). ``csv.Error`` for text the csv module cannot read, a stray
    quote too (``strict``): unstrict, a ``"`` opened and never closed ran the cell to the end
    of the file, every row after it swallowed and the import told of the rows before only."""
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = "\t" if "\t" in first and "," not in first else ","
    return csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)


def csv_refusal(line: int, exc: csv.Error) -> str:
    """What is wrong at ``line`` (the row the csv module could not read): its own words, and
    the likely cause, a stray quote."""
    return (
        f'line {line}: {exc} (a stray quote (") in this row? a cell that starts with a quote'
        " runs to the next quote, over the lines below; quote the whole cell and double the"
        ' quote inside it, "")'
    )


def _csv_rows(data: bytes) -> list[list[str]]:
    text = decode_text(data)
    rows: list[list[str]] = []
    try:
        rows.extend(list(r) for r in csv_rows(text))
    except csv.Error as exc:  # the row after the last one read (a row as the sheet numbers it)
        raise CommunityError(csv_refusal(len(rows) + 1, exc)) from None
    return rows


def _open_book(data: bytes, data_only: bool) -> Any:
    import openpyxl  # ~9 MB once loaded: only when a spreadsheet comes (docs/memory.md)

    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=data_only)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise CommunityError(f"not a readable .xlsx file ({type(exc).__name__})") from None


def _sheet_to_read(book: Any, columns: Headers) -> tuple[int, str | None]:
    """Which sheet is the list: of the sheets the clerk sees (a hidden one, last month's list
    kept behind this month's, never), the first whose first ``HEADER_SEARCH_ROWS`` lines name
    one of ``columns`` (an instructions sheet, 填表说明, in front of the list is not it); none
    does: the first she sees. Its index, and its name when it is not that first one."""
    shown = [i for i, sheet in enumerate(book.worksheets) if sheet.sheet_state == "visible"]
    if not shown:
        raise CommunityError("not a readable .xlsx file (it has no visible sheet)")
    for index in shown if columns.fields else ():
        head = book.worksheets[index].iter_rows(
            values_only=True, max_row=HEADER_SEARCH_ROWS, max_col=MAX_COLUMNS + 1
        )
        if any(isinstance(v, str) and columns.knows(v) for row in head for v in row):
            return index, None if index == shown[0] else str(book.worksheets[index].title)
    return shown[0], None


def _sheet_rows(sheet: Any) -> Iterable[tuple[object, ...]]:
    """The rows of ``sheet``, every row numbered by its place (read-only openpyxl fills in
    the rows a file leaves out)."""
    rows: Iterable[tuple[object, ...]] = sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1)
    return rows


_SHEET_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"


#: Merged ranges a sheet may have: a list merges a household's cell or two per household.
MAX_MERGED = 4 * MAX_ROWS
#: A merged range's reference, ``A3:A5`` (a single cell ``A3`` merges nothing).
_RANGE = re.compile(r"^([A-Z]{1,3})(\d{1,7}):([A-Z]{1,3})(\d{1,7})$")


class _Range(NamedTuple):
    """A merged range: its first and last row and column (from 1), as ``A3:A5`` says."""

    top: int
    left: int
    bottom: int
    right: int


class _Marks(NamedTuple):
    """What a sheet's XML says of its cells and openpyxl's read-only sheet does not."""

    hidden: frozenset[int]  # the rows it hides
    merged: tuple[_Range, ...]  # its merged ranges


#: A cell's reference, ``B3``.
_CELL = re.compile(r"^([A-Z]{1,3})(\d{1,7})$")
#: A number format that shows a number with leading zeros to its width: ``0000``.
_ZERO_PADDED = re.compile(r"^0{2,20}$")
_STYLES_TYPE = "/styles"
#: Cell styles a workbook may have (Excel's own limit: about 64 000); those beyond are unread.
_MAX_STYLES = 65536


def _sheet_marks(data: bytes, title: str, rows: list[list[str]]) -> _Marks:
    """Of the sheet named ``title``: the rows it hides, rows the clerk hid (people released)
    and rows a filter leaves out (another compound's) (``<row r="7" hidden="1">``); and its
    merged ranges (``<mergeCell ref="A3:A5"/>``: a 户号 merged over a household's people).
    openpyxl's read-only sheet says neither; the sheet's XML part does, read as a stream from
    the workbook's zip (found by its name through ``xl/workbook.xml`` and its relationships,
    as every reader of the format finds it). On the way, a number in ``rows`` (the sheet's,
    as read) whose format shows it zero-padded is made the text shown (``_as_shown``)."""
    hidden: set[int] = set()
    merged: list[_Range] = []
    number = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        widths = _padded_styles(archive)
        part = _sheet_part(archive, title)
        with archive.open(part) as source:
            for _event, element in _elements(source):
                if element.tag == f"{_SHEET_NS}c" and widths:
                    _as_shown(element, widths, rows)
                elif element.tag == f"{_SHEET_NS}row":
                    number = int(element.get("r") or number + 1)
                    if element.get("hidden") in ("1", "true"):
                        hidden.add(number)
                    element.clear()
                elif element.tag == f"{_SHEET_NS}mergeCell":
                    if (found := _RANGE.match(element.get("ref") or "")) is not None:
                        merged.append(_merged_range(found))
                    if len(merged) > MAX_MERGED:
                        raise CommunityError(f"more than {MAX_MERGED} merged cells")
                    element.clear()
    return _Marks(frozenset(hidden), tuple(merged))


def _as_shown(element: Element, widths: Mapping[int, int], rows: list[list[str]]) -> None:
    """A number cell (no ``t``, or ``t="n"``) in a zero-padded format (``widths``: style →
    digits shown) as the sheet shows it: 702 as ``0702``. One read as other than a whole
    number (a fraction, more than 15 digits) is left as it is: refused where a code is read
    (``check_code``)."""
    style = element.get("s") or ""
    if element.get("t", "n") != "n" or not style.isdigit() or int(style) not in widths:
        return
    if (found := _CELL.match(element.get("r") or "")) is None:
        return
    row, column = int(found.group(2)), _column_number(found.group(1))
    if row <= len(rows) and column <= len(rows[row - 1]):
        text = rows[row - 1][column - 1]
        if type(text) is str and text.isdigit():
            rows[row - 1][column - 1] = text.zfill(widths[int(style)])


def _padded_styles(archive: zipfile.ZipFile) -> dict[int, int]:
    """The workbook's cell styles (their index, as a cell's ``s`` names it) whose number
    format shows a number zero-padded (``0000``), each with its width; from its styles part
    (``xl/styles.xml``, as the workbook's relationships name it). None when it has none."""
    formats: dict[str, str] = {}
    styles: dict[int, int] = {}
    depth, index = 0, 0
    try:
        source = archive.open(_styles_part(archive))
    except KeyError:
        return {}
    with source:
        for event, element in _elements(source, ("start", "end")):
            if element.tag == f"{_SHEET_NS}numFmt" and event == "end":
                formats[element.get("numFmtId") or ""] = element.get("formatCode") or ""
                element.clear()
            elif element.tag == f"{_SHEET_NS}cellXfs":
                depth = 1 if event == "start" else 0
            elif element.tag == f"{_SHEET_NS}xf" and depth and event == "end":
                code = formats.get(element.get("numFmtId") or "", "")
                if _ZERO_PADDED.match(code):
                    styles[index] = len(code)
                index += 1
                element.clear()
                if index > _MAX_STYLES or len(formats) > _MAX_STYLES:
                    break
    return styles


def _styles_part(archive: zipfile.ZipFile) -> str:
    with archive.open("xl/_rels/workbook.xml.rels") as source:
        for _event, element in _elements(source):
            if element.tag == f"{_RELS_NS}Relationship" and (element.get("Type") or "").endswith(
                _STYLES_TYPE
            ):
                target = element.get("Target") or ""
                return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return "xl/styles.xml"


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _merged_range(found: re.Match[str]) -> _Range:
    left, top, right, bottom = found.groups()
    return _Range(int(top), _column_number(left), int(bottom), _column_number(right))


def _fill_merged(rows: list[list[str]], merged: Iterable[_Range]) -> None:
    """Each row of a merged range holds its top-left cell's value in the range's first column,
    as the clerk sees it (a file keeps the value in that cell only): a 户号 merged over three
    people is each one's. The range's other columns stay as they are: across columns the
    clerk sees one cell (a header or a note merged over two columns for width), not two. Only
    the rows and columns read, and never more cells than the rows read have (ranges that
    overlap are no spreadsheet's)."""
    budget = len(rows) * (MAX_COLUMNS + 1)
    for cells in merged:
        if cells.top > len(rows) or cells.left > MAX_COLUMNS + 1 or cells.bottom <= cells.top:
            continue
        first = rows[cells.top - 1]
        value = first[cells.left - 1] if cells.left <= len(first) else ""
        for number in range(cells.top + 1, min(cells.bottom, len(rows)) + 1):
            row = rows[number - 1]
            row.extend([""] * (cells.left - len(row)))
            row[cells.left - 1] = value
            budget -= 1
            if budget < 0:
                raise CommunityError("merged cells that overlap: not a sheet a spreadsheet saves")


def _sheet_part(archive: zipfile.ZipFile, title: str) -> str:
    """The zip member holding the worksheet named ``title``. KeyError when the workbook does
    not say (a damaged file: refused by ``_xlsx_rows`` as not readable)."""
    rel_id = None
    with archive.open("xl/workbook.xml") as source:
        for _event, element in _elements(source):
            if element.tag == f"{_SHEET_NS}sheet" and element.get("name") == title:
                rel_id = element.get(_REL_ID)
                break
    with archive.open("xl/_rels/workbook.xml.rels") as source:
        for _event, element in _elements(source):
            if element.tag == f"{_RELS_NS}Relationship" and element.get("Id") == rel_id:
                target = element.get("Target") or ""
                return target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    raise KeyError(title)


def _elements(
    source: IO[bytes], events: tuple[Literal["start", "end"], ...] = ("end",)
) -> Iterator[tuple[str, Element]]:
    from xml.etree.ElementTree import iterparse  # noqa: S405 - the file's own part, bounded

    return iterparse(source, events)  # noqa: S314 - expat refuses entity bombs


def _check_unpacked(data: bytes) -> None:
    """Refuse a zip that unpacks to more than ``MAX_UNPACKED_BYTES``, from its directory
    (Python's zipfile stops a member at its declared size, so the sizes cannot lie)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CommunityError(f"not a readable .xlsx file ({type(exc).__name__})") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise CommunityError(
            f".xlsx unpacks to {unpacked // (1024 * 1024)} MB, more than"
            f" {MAX_UNPACKED_BYTES // (1024 * 1024)} MB: save it as CSV or split it"
        )


class _XlsxSheet(NamedTuple):
    rows: list[list[str]]
    hidden: frozenset[int]  # the rows the sheet hides
    name: str | None  # the sheet's, when it is not the first the clerk sees


def _xlsx_rows(data: bytes, columns: Headers) -> _XlsxSheet:
    """The first sheet's rows as text. A formula is read as the value saved with it; one with
    no saved value (a file written by a program, never opened and saved by Excel or WPS) is
    refused, naming its line and column (by the header: the first line naming one of
    ``columns``, as ``read_table`` finds it), rather than read as a blank. The sheet is
    ``_sheet_to_read``'s; with its rows (a merged range's cells all hold its top-left cell's
    value, as the clerk sees them), the rows it hides (``_sheet_marks``) and its name."""
    _check_unpacked(data)
    try:
        return _read_xlsx(data, columns)
    except CommunityError:
        raise
    except Exception as exc:  # noqa: BLE001 - openpyxl's errors on a damaged file are many
        # (ParseError, IndexError, ValueError, ...): each is a file that cannot be read.
        raise CommunityError(f"not a readable .xlsx file ({type(exc).__name__})") from None


def _read_xlsx(data: bytes, columns: Headers) -> _XlsxSheet:
    book = _open_book(data, True)
    try:
        formulas = _open_book(data, False)
    except BaseException:
        book.close()
        raise
    try:
        index, name = _sheet_to_read(book, columns)
        rows: list[list[str]] = []
        header: list[str] = []
        named = False
        for number, (values, written) in enumerate(
            zip(
                _sheet_rows(book.worksheets[index]),
                _sheet_rows(formulas.worksheets[index]),
                strict=False,
            ),
            start=1,
        ):
            if len(rows) > MAX_ROWS + 1:
                break
            for i, (value, text) in enumerate(zip(values, written, strict=False)):
                if value is None and _is_formula(text):
                    column = header[i] if i < len(header) and header[i] else f"column {i + 1}"
                    raise CommunityError(
                        f"line {number}: {column}: a formula with no saved value (or an empty"
                        " result); paste the values, or open and save the file in Excel or WPS"
                    )
            rows.append([_cell(v) for v in values])
            if not named and any(rows[-1]):  # the header names the columns, not a title
                cells = [c.strip() for c in rows[-1]]
                named = number <= HEADER_SEARCH_ROWS and any(columns.knows(c) for c in cells)
                header = cells if named or not header else header
        marks = _sheet_marks(data, book.worksheets[index].title, rows)
        _fill_merged(rows, marks.merged)
        return _XlsxSheet(rows, marks.hidden, name)
    finally:
        book.close()
        formulas.close()


def _is_formula(value: object) -> bool:
    return (isinstance(value, str) and value.startswith("=")) or type(value).__name__ in (
        "ArrayFormula",
        "DataTableFormula",
    )


def read_table(
    data: bytes,
    filename: str,
    required: Iterable[str] = (),
    text_columns: Iterable[str] = (),
    columns: Iterable[str] | Headers = (),
    one_line: Iterable[str] = (),
) -> Table:
    """The header and rows of a CSV or .xlsx file (by its name's suffix). Blank lines are
    skipped; a header must name each column once; ``required`` columns must be present. A
    cell of ``text_columns`` that an .xlsx holds as a date is refused: Excel turns a typed
    household code such as ``12-3`` into 3 December, which would be read as ``2026-12-03``.
    A cell of ``one_line`` (a reason, a name, a note) holding a line break is refused: in a
    CSV it is most often a stray quote that ran the cell on over the rows below
    (``check_one_line``).

    An office's sheet has a title (a merged ``XX小区居家隔离人员名单``, a date line) above its
    header and totals and signatures below its table: the header is the first line of the
    first ``HEADER_SEARCH_ROWS`` naming one of ``columns`` (the names the caller knows; none:
    the first line), and the lines from the first starting with ``FOOTER_STARTS`` on are the
    footer, skipped (a line there that is neither a footer's nor a date is refused, never
    dropped). ``Table.layout`` says which lines were skipped; errors name the file's lines.

    ``columns`` given as ``kiosk.headers.Headers`` names each field by the headers a clerk's
    sheet has (``户号`` for ``household``): the table's header and rows are by field, a column
    read past (``手机号``) is left out, and ``Table.layout.columns`` says which is which."""
    if len(data) > MAX_BYTES:
        raise CommunityError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    known = columns if isinstance(columns, Headers) else Headers.plain(columns)
    lines, hidden, sheet = _numbered_lines(data, filename, known)
    head, body, layout = find_table(lines, known)
    header, named = _header(layout.header_line, head, required, known)
    skipped = tuple(sorted((*layout.skipped, *hidden)))
    layout = Layout(layout.header_line, skipped, sheet, named)
    if len(body) > MAX_ROWS:
        raise CommunityError(f"more than {MAX_ROWS} rows")
    checks = {name: [check_one_line] for name in one_line}
    for name in text_columns:
        checks.setdefault(name, []).append(check_code)
    rows = [_row(line, values, header, checks, named) for line, values in body]
    kept = tuple(h for h in header if h)
    return Table(kept, tuple(rows), tuple(line for line, _ in body), layout)


def find_table(lines: Lines, columns: Iterable[str] | Headers) -> tuple[list[str], Lines, Layout]:
    """The header's cells, the table's lines and the layout, of a file's non-blank ``lines``
    (each with its line number), as ``read_table`` finds them: the header by ``columns``
    below a title, the footer skipped. ``CommunityError`` for a line below the footer that
    is no footer's (``kiosk pass batch`` reads its CSV this way too). A header of two lines
    (``隔离时间`` merged over ``开始日期 | 结束日期`` in the line below) is read as one: its
    second line is the header's line, the first one above it (``_two_line_header``)."""
    known = columns if isinstance(columns, Headers) else Headers.plain(columns)
    at = _header_at(lines, known)
    head = lines[at][1]
    if (both := _two_line_header(lines, at, known)) is not None:
        head, at = both, at + 1
    title = tuple(Skipped(line, "title") for line, _ in lines[:at])
    body, footer = _split_footer(lines[at + 1 :])
    return head, body, Layout(lines[at][0], (*title, *footer))


def _two_line_header(lines: Lines, at: int, columns: Headers) -> list[str] | None:
    """The header's cells when the line right below ``lines[at]`` is the header's second
    line: each of its cells names a column (``columns.names``) or repeats the one above (a
    name merged down both lines), and one names a field the first line does not. Each
    column named by its lower cell, else by its upper one (``户号`` merged down). None when
    the line below is not (a row of the table)."""
    if at + 1 >= len(lines) or lines[at + 1][0] != lines[at][0] + 1:
        return None
    upper, lower = lines[at][1], lines[at + 1][1]
    above = [*upper, *[""] * (len(lower) - len(upper))]
    cells = [(up.strip(), low.strip()) for up, low in zip(above, lower, strict=False)]
    if any(low and low != up and not columns.names(low) for up, low in cells):
        return None
    if not any(low != up and columns.knows(low) for up, low in cells):
        return None
    return [low or up for up, low in cells] + list(above[len(lower) :])


def _numbered_lines(
    data: bytes, filename: str, columns: Headers
) -> tuple[list[tuple[int, list[str]]], tuple[Skipped, ...], str | None]:
    """The file's lines that are not blank nor hidden in the sheet, each with its line (the
    sheet's row number); the hidden ones that are not blank, skipped; the sheet's name when
    it is not the workbook's first (``_sheet_to_read``)."""
    if _file_kind(data, filename.lower()) == "xlsx":
        raw, hidden, sheet = _xlsx_rows(data, columns)
    else:
        raw, hidden, sheet = _csv_rows(data), frozenset(), None
    numbered = [(n, r) for n, r in enumerate(raw, start=1) if any(c.strip() for c in r)]
    skipped = tuple(Skipped(n, "hidden") for n, _r in numbered if n in hidden)
    numbered = [(n, r) for n, r in numbered if n not in hidden]
    if not numbered:
        raise CommunityError("the file is empty (a header line is required)")
    return numbered, skipped, sheet


#: The first bytes of a Compound File: Excel 97-2003's .xls, WPS's .et, old Word files.
_OLE2_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")


def _file_kind(data: bytes, name: str) -> Literal["xlsx", "csv"]:
    """How to read a file: by what it holds where that is a workbook (WPS and some office
    systems save an .xlsx as .xls; a clerk renames one .csv), else by its name. A workbook
    the kiosk cannot read is refused saying how to save it."""
    if data.startswith(_OLE2_MAGIC):
        raise CommunityError(
            "an Excel 97-2003 (.xls) or WPS (.et) workbook, which the kiosk does not read:"
            " in Excel or WPS, Save As 'Excel Workbook (*.xlsx)' or 'CSV UTF-8'"
        )
    if data.startswith(b"PK\x03\x04"):
        names: list[str] = []
        with (
            contextlib.suppress(zipfile.BadZipFile, ValueError, OSError),
            zipfile.ZipFile(io.BytesIO(data)) as archive,
        ):
            names = archive.namelist()
        if names and "xl/workbook.xml" not in names:
            raise CommunityError(
                "not an Excel workbook (a Numbers or OpenDocument sheet?): export it as"
                " .xlsx ('Excel Workbook') or CSV"
            )
        if names or name.endswith(".xlsx"):
            return "xlsx"  # a damaged zip named .xlsx is refused as such, saying why
    if name.endswith(".xlsx"):
        return "xlsx"  # refused as not a readable .xlsx, saying why
    if name.endswith((".csv", ".txt")):
        return "csv"
    raise CommunityError("expected a .csv or .xlsx file")


def _header_at(raw: Lines, columns: Headers) -> int:
    """The index in ``raw`` of the header: the first line of the first ``HEADER_SEARCH_ROWS``
    with a cell naming one of ``columns``; else the first line (its errors say what it
    lacks)."""
    for index, (line, values) in enumerate(raw):
        if line > HEADER_SEARCH_ROWS:
            break
        if any(columns.knows(c) for c in values):
            return index
    return 0


def _header(
    line: int, values: Sequence[str], required: Iterable[str], columns: Headers
) -> tuple[tuple[str, ...], tuple[Column, ...]]:
    """The field of each column (``""`` for one read past, not kept) and the columns as
    ``kiosk.headers.match_header`` takes them (none when the import names no columns)."""
    cells = [c.strip() for c in values]
    while cells and not cells[-1]:
        cells.pop()
    if len(cells) > MAX_COLUMNS:
        raise CommunityError(f"more than {MAX_COLUMNS} columns")
    if "" in cells:
        raise CommunityError(f"line {line}: header: every column needs a name, each name once")
    named = match_header(line, cells, columns) if columns.fields else ()
    header = tuple(c.field or "" for c in named) if named else tuple(c.lower() for c in cells)
    if not named and len(set(header)) != len(header):
        raise CommunityError(f"line {line}: header: every column needs a name, each name once")
    if missing := [c for c in required if c not in header]:
        raise CommunityError(f"missing columns: {', '.join(missing)}")
    return header, named


def _first_cell(values: Sequence[str]) -> str:
    return next((c.strip() for c in values if c.strip()), "")


def _split_footer(lines: Lines) -> tuple[Lines, tuple[Skipped, ...]]:
    """The table's lines and the footer's (from the first line starting with
    ``FOOTER_STARTS``). A line below that is neither a footer's, a date nor a numbered note
    is refused: a resident typed under the total is not dropped unseen."""
    start = next(
        (i for i, (_n, v) in enumerate(lines) if _first_cell(v).lower().startswith(FOOTER_STARTS)),
        len(lines),
    )
    for line, values in lines[start + 1 :]:
        first = _first_cell(values)
        if not (
            first.lower().startswith(FOOTER_STARTS)
            or _DATE_LINE.match(first)
            or _NOTE_LINE.match(first)
        ):
            total = lines[start]
            raise CommunityError(
                f"line {line}: a row below line {total[0]} ({_first_cell(total[1])[:20]}), which"
                " ends the table: move it above, or delete it"
            )
    footer = tuple(Skipped(line, "footer") for line, _ in lines[start:])
    return lines[:start], footer


def _row(
    line: int,
    values: Sequence[str],
    header: tuple[str, ...],
    checks: Mapping[str, Sequence[Callable[[int, Column, str], None]]],
    named: Sequence[Column] = (),
) -> dict[str, str]:
    if any(v.strip() for v in values[len(header) :]):
        raise CommunityError(f"line {line}: more fields than the header")
    if any(len(v) > MAX_CELL for v in values):
        raise CommunityError(f"line {line}: a cell longer than {MAX_CELL} characters")
    padded = [*values[: len(header)], *[""] * (len(header) - len(values))]
    row: dict[str, str] = {}
    for index, (name, value) in enumerate(zip(header, padded, strict=True)):
        column = Column(named[index].header if named else name, column_letter(index), name)
        for check in checks.get(name, ()):
            check(line, column, value)
        try:  # 居民 is resident, 3人 is 3 (kiosk.headers.read_value)
            row[name] = read_value(name, value).strip()
        except ValueError as exc:
            refuse_at(line, name, (column,), str(exc))
    return {h: v for h, v in row.items() if h}


def check_one_line(line: int, column: Column, value: str) -> None:
    """Refuse a line break in a single-line cell (a reason, a name, a note). In a CSV it is
    most often a stray quote: the cell ran on over the rows below, which were never read as
    rows (two stolen passes not revoked, confined households let out)."""
    if "\n" in value or "\r" in value:
        refuse_at(
            line,
            column.field or column.header,
            (column,),
            'a line break in the cell (a stray quote (") in the file runs a cell on over the'
            " rows below it); keep it on one line",
        )


def check_code(line: int, column: Column, value: str) -> None:
    """Refuse a code (household, pass id, plate...) the spreadsheet changed as it read it: a
    date (``12-3`` typed is 3 December), a number with a fraction (``3.10`` is 3.1) or one
    longer than it keeps (an 18-digit code), or such a number as Excel writes it into a CSV
    (``1.10101E+17``). Read as it is, it would be another household, or nobody's (``kiosk
    pass batch`` checks its households CSV's codes this way too). The error names the
    column as the clerk headed it, and its letter."""
    if isinstance(value, _DateText):
        raise CommunityError(
            f"line {line}, column {column.letter} ({column.header}): the spreadsheet holds a date"
            f" ({value}) here;"
            " Excel turns codes such as 12-3 into dates: format the column as text"
            " and type them again"
        )
    if isinstance(value, _NumberText) or _SCIENTIFIC.match(value.strip()):
        raise CommunityError(
            f"line {line}, column {column.letter} ({column.header}): the spreadsheet holds a"
            f" number ({value.strip()}) here,"
            " not the code as typed (Excel drops a trailing 0 and the digits after the 15th):"
            " format the column as text and type them again"
        )


@dataclass(frozen=True)
class Diff:
    """What applying new keyed rows would do to the current ones."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    details: Mapping[str, Mapping[str, tuple[Any, Any]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": self.unchanged,
        }


def diff_rows(
    current: Mapping[str, Mapping[str, Any]],
    new: Mapping[str, Mapping[str, Any]],
    *,
    replace: bool,
) -> Diff:
    """Keys added, changed (with field → (old, new)) and, when ``replace``, removed."""
    added = sorted(k for k in new if k not in current)
    changed: dict[str, dict[str, tuple[Any, Any]]] = {}
    for key in sorted(k for k in new if k in current):
        fields = {
            f: (current[key].get(f), v) for f, v in new[key].items() if current[key].get(f) != v
        }
        if fields:
            changed[key] = fields
    removed = sorted(k for k in current if k not in new) if replace else []
    unchanged = sum(1 for k in new if k in current and k not in changed)
    return Diff(tuple(added), tuple(changed), tuple(removed), unchanged, changed)


def write_xlsx(
    sheets: Mapping[str, Sequence[Sequence[object]]],
    *,
    widths: Mapping[str, Sequence[float]] | None = None,
    frozen: Iterable[str] = (),
) -> bytes:
    """An .xlsx with one sheet per entry (title → rows, the first row a header). Every text
    is a text cell, as written (``xlsx_cell``); ``widths`` gives a sheet's first columns their
    widths, and each sheet in ``frozen`` keeps its header row in view."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    book = openpyxl.Workbook(write_only=True)  # no default sheet; rows streamed out
    for title, rows in sheets.items():
        sheet = book.create_sheet(title=title[:31])
        for column, width in enumerate((widths or {}).get(title, ()), start=1):
            sheet.column_dimensions[get_column_letter(column)].width = width
        if title in frozen:
            sheet.freeze_panes = "A2"
        for row in rows:
            sheet.append([xlsx_cell(sheet, value) for value in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_cell(sheet: Any, value: object) -> object:
    """``value`` as a cell of ``sheet`` (write-only): a number, a date or a blank as it is;
    anything else a text cell holding the text as written. openpyxl takes a text starting
    with ``=`` for a formula, which the workbook would calculate when opened: never here. A
    text cell needs no leading ``'`` (that is the CSV's way to say "text")."""
    from openpyxl.cell import WriteOnlyCell

    if value is None or isinstance(value, int | float | date | datetime):
        return value
    cell = WriteOnlyCell(sheet, value=str(value))
    cell.data_type = "s"
    return cell


def formula_safe(text: str) -> str:
    """``text`` as a CSV text cell a spreadsheet shows as text and never runs (CSV injection):
    one starting with ``FORMULA_STARTS``, in any width (``＝1+1``), gets a leading ``'``."""
    lead = unicodedata.normalize("NFKC", text[:1])
    return "'" + text if lead.startswith(FORMULA_STARTS) else text


def sheet_cell(value: object) -> object:
    """``value`` as a cell of a CSV a spreadsheet opens, the one rule of every CSV the kiosk
    writes (``write_csv``): a number as it is (a leading ``-`` is its sign), a blank empty,
    any text by ``formula_safe``. A phone number ``+86 138 ...`` is text that starts with
    ``+``: it gets the leading ``'`` too (a spreadsheet would otherwise read it as a formula,
    or ``+8613800138000`` as 8.6E+12), and keeps every digit behind it."""
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    return formula_safe(str(value))


def write_csv(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text, the one writer of the kiosk's sheets: every cell by ``sheet_cell``.
    Lines end in CR LF (RFC 4180): the csv module quotes a cell holding a character of the
    line end, so every cell with a CR or an LF (a lone CR is an old Mac line end) is text
    inside quotes, never a split row."""
    return csv_text([sheet_cell(v) for v in row] for row in rows)


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text with every cell as it is, quoted as ``write_csv`` quotes: only for
    a reader of the kiosk's own (the list import's hand-off to the list store), never a file
    a spreadsheet opens."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
