"""The daily report in the office's categories (``/guard/community/report``), printable, and
exported as .xlsx and CSV (counts only: no personal data; each export audited, as the day's
export of events is)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kiosk.categories import category_words, item_words, report_rows, value_words
from kiosk.days import DayNotBegun, refuse_unbegun
from kiosk.stats import report_file
from ui.core_words import refusal_text
from ui.guard.community.common import PREFIX, community_room, render
from ui.guard.deps import Guard, GuardDep, PageSession, audited, note, served_while_stopping
from ui.guard.forms import FIRST_DAY, LAST_DAY, BadInput
from ui.guard.forms import day as parse_day
from ui.report_words import FILE_LANGS, as_of_line, file_words, words
from ui.views import gate_report

router = community_room(f"{PREFIX}/report")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def labelled(rows: list[list[Any]], lang: str) -> list[list[Any]]:
    """``(category, item, value)`` rows with the category and item (and the scope, and a
    value that is a code: ``kiosk.categories.value_words``, 是 for ``True``) in ``lang``
    appended (``ui.report_words``, as the files say them): a key with no words is shown as it
    is."""
    said = words(lang)
    out = []
    for category, item, value in rows:
        worded = value_words(said, item, value)
        shown = (said(f"r.scope.{value}") or value) if item == "scope" else worded or value
        out.append(
            [
                category,
                item,
                shown,
                category_words(said, category),
                item_words(said, category, item),
            ]
        )
    return out


#: What a ``?day=`` the report cannot take gets (the console's days: ``forms.FIRST_DAY`` to
#: ``forms.LAST_DAY``).
BAD_DAY = f"day: expected YYYY-MM-DD from {FIRST_DAY} to {LAST_DAY}"


class NoReport(Exception):
    """Why ``?day=`` has no report, in the guard's language."""


def report_for(g: Guard, request: Request) -> dict[str, Any]:
    """The report of ``?day=`` (default today). ``NoReport``: the day is not a date the
    console takes, or it has not begun and holds nothing (``kiosk.days.refuse_unbegun``, as
    ``kiosk report --day`` refuses it: a year typed wrong is not a day of zeros sent up)."""
    try:
        day = parse_day(request.query_params.get("day", "")[:11], g.today())
    except BadInput:
        raise NoReport(BAD_DAY) from None
    data = gate_report(g.core, day)
    try:
        refuse_unbegun(day, g.today(), g.tz.key, data["events"])
    except DayNotBegun as exc:
        raise NoReport(refusal_text(g.lang(request), f"day {day}: {exc}")) from None
    return data


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report(request: Request, session: PageSession, g: GuardDep) -> Response:
    try:
        data = report_for(g, request)
    except NoReport as why:  # the day as typed stays in the form, to be corrected
        typed = request.query_params.get("day", "")[:11]
        return render(g, request, "community_report.html", session, rows=[], day=typed,
                      flash_err=str(why), status_code=400)  # fmt: skip
    lang = g.lang(request)
    rows = labelled(report_rows(data)[1:], lang)
    return render(g, request, "community_report.html", session, rows=rows, day=data["day"],
                  as_of=as_of_line(data, lang))  # fmt: skip


@router.get("/report.{fmt}", name="report_export", include_in_schema=False)
@served_while_stopping
@audited("report_export")
def export(fmt: str, request: Request, session: PageSession, g: GuardDep) -> Response:
    if fmt not in ("xlsx", "csv"):
        return JSONResponse({"detail": "format: xlsx or csv"}, 400)
    try:
        data = report_for(g, request)
    except NoReport as why:
        return JSONResponse({"detail": str(why)}, 400)
    lang = request.query_params.get("lang")
    try:
        said = file_words(lang)
    except ValueError:
        return JSONResponse({"detail": f"lang: one of {', '.join(FILE_LANGS)}"}, 400)
    note(request, day=data["day"], format=fmt, **({"lang": lang} if lang else {}))
    name = f"report-{g.cfg.site.kiosk_id}-{data['day']}.{fmt}"
    # Not kept in the browser's cache, as every download of the console.
    headers = {
        "Content-Disposition": f'attachment; filename="{quote(name)}"',
        "Cache-Control": "no-store",
    }
    # As ``kiosk report`` writes it: the row saying when it was made (today's figures are so
    # far, not the day's: ``report_for`` stamped it), the CSV with the BOM Excel on a Chinese
    # Windows needs.
    body = report_file(data, "xlsx" if fmt == "xlsx" else "csv", said)
    media = XLSX if fmt == "xlsx" else "text/csv; charset=utf-8"
    return Response(body, media_type=media, headers=headers)
