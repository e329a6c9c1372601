"""The daily report in the office's categories (``/guard/community/report``), printable, and
exported as .xlsx and CSV (counts only: no personal data; each export audited, as the day's
export of events is)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kiosk.categories import report_csv, report_rows, report_xlsx
from kiosk.stats import daily_report
from ui.guard.community.common import PREFIX, TEXT, community_room, render, translator
from ui.guard.deps import Guard, GuardDep, PageSession, audited, note
from ui.guard.forms import FIRST_DAY, LAST_DAY, BadInput
from ui.guard.forms import day as parse_day

router = community_room(f"{PREFIX}/report")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def labelled(rows: list[list[Any]], lang: str) -> list[list[Any]]:
    """``(category, item, value)`` rows with the category and item (and the scope) in
    ``lang`` appended: a key with no words is shown as it is."""
    tr = translator(lang)

    def word(key: str, default: str) -> str:
        return tr(f"r.{key}") if f"r.{key}" in TEXT else default

    out = []
    for category, item, value in rows:
        kind = str(item).removeprefix("by_kind.")
        item_text = tr(f"k.{kind}") if kind != item else word(f"{category}.{item}", str(item))
        shown = word(f"scope.{value}", str(value)) if item == "scope" else value
        out.append([category, item, shown, word(category, str(category)), item_text])
    return out


#: What a ``?day=`` the report cannot take gets (the console's days: ``forms.FIRST_DAY`` to
#: ``forms.LAST_DAY``).
BAD_DAY = f"day: expected YYYY-MM-DD from {FIRST_DAY} to {LAST_DAY}"


def report_for(g: Guard, request: Request) -> dict[str, Any] | None:
    """The report of ``?day=`` (default today); None when the day is not a date the console
    takes."""
    try:
        day = parse_day(request.query_params.get("day", "")[:11], g.today())
    except BadInput:
        return None
    freshness = g.core.lists.current.freshness
    return daily_report(g.core.store.reader(), day, g.tz, g.cfg.policy.quota, freshness)


@router.get("/report", response_class=HTMLResponse, include_in_schema=False)
def report(request: Request, session: PageSession, g: GuardDep) -> Response:
    data = report_for(g, request)
    if data is None:
        return render(g, request, "community_report.html", session, rows=[], day="",
                      flash_err=BAD_DAY)  # fmt: skip
    rows = labelled(report_rows(data)[1:], g.lang(request))
    return render(g, request, "community_report.html", session, rows=rows, day=data["day"])


@router.get("/report.{fmt}", name="report_export", include_in_schema=False)
@audited("report_export")
def export(fmt: str, request: Request, session: PageSession, g: GuardDep) -> Response:
    data = report_for(g, request)
    if data is None or fmt not in ("xlsx", "csv"):
        return JSONResponse({"detail": f"{BAD_DAY}; format: xlsx or csv"}, 400)
    note(request, day=data["day"], format=fmt)
    name = f"report-{g.cfg.site.kiosk_id}-{data['day']}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{quote(name)}"'}
    if fmt == "xlsx":
        return Response(report_xlsx(data), media_type=XLSX, headers=headers)
    return Response(report_csv(data), media_type="text/csv; charset=utf-8", headers=headers)
