"""Fuzz the spreadsheet reader (kiosk/sheets.py ``read_table``): CSV bytes (UTF-8, GB18030)
and .xlsx, either as raw bytes or as a well-formed zip whose sheet XML (or styles) is fuzzed,
so openpyxl's cell parsing is reached; a table read is then checked as the compound map
(``kiosk.compound.parse_map``) and its cells as number plates (``normalise_plate``). Only
``CommunityError`` may come out.
"""

from __future__ import annotations

import io
import zipfile

import atheris
from _fuzz import instrumented, run

with instrumented():
    from kiosk.community import CommunityError
    from kiosk.compound import parse_map
    from kiosk.sheets import read_table, write_xlsx
    from kiosk.vehicles import normalise_plate

_BOOK = write_xlsx({"s": [["household", "residents", "from"], ["12-3", 4, "2026-03-01"]]})
_PARTS = {
    i.filename: zipfile.ZipFile(io.BytesIO(_BOOK)).read(i)
    for i in zipfile.ZipFile(io.BytesIO(_BOOK)).infolist()
}
_SHEET = "xl/worksheets/sheet1.xml"
#: The sheet's XML up to and with its header row; the rows after it are fuzzed.
_HEAD = _PARTS[_SHEET].partition(b"</row>")[0] + b"</row>"
_TAIL = b"</sheetData>" + _PARTS[_SHEET].partition(b"</sheetData>")[2]


def _zipped(fdp: atheris.FuzzedDataProvider) -> bytes:
    parts = dict(_PARTS)
    which = fdp.PickValueInList([_SHEET, _SHEET, "xl/styles.xml", "xl/workbook.xml"])
    fuzzed = fdp.ConsumeBytes(fdp.remaining_bytes())
    parts[which] = _HEAD + fuzzed + _TAIL if which == _SHEET else fuzzed
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:
        payload, name = fdp.ConsumeBytes(fdp.remaining_bytes()), "list.csv"
    elif mode == 1:
        payload, name = fdp.ConsumeBytes(fdp.remaining_bytes()), "list.xlsx"
    else:
        payload, name = _zipped(fdp), "list.xlsx"
    try:
        table = read_table(payload, name, required=("household",), text_columns=("household",))
    except CommunityError:
        return
    try:
        parse_map(table)
    except CommunityError:
        pass
    for row in table.rows[:50]:
        for value in row.values():
            try:
                normalise_plate(value)
            except CommunityError:
                pass


if __name__ == "__main__":
    run(one_input)
