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
from ui.guard.community.common import PREFIX, community_room, render, translator
from ui.guard.deps import Guard, GuardDep, PageSession, audited, note
from ui.guard.forms import FIRST_DAY, LAST_DAY, BadInput
from ui.guard.forms import day as parse_day

router = community_room(f"{PREFIX}/report")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


#: The report's categories and items as a guard reads them (zh-CN, en); the exports keep the
#: office's keys, and the page keeps them in ``data-category`` / ``data-item``.
LABELS: dict[str, tuple[str, str]] = {
    "report": ("报表", "Report"),
    "report.day": ("日期", "Day"),
    "report.scope": ("范围", "Scope"),
    "report.gates": ("岗点", "Gates"),
    "report.events": ("记录条数", "Events"),
    "scope.gate": ("本岗点", "This gate"),
    "decisions": ("判定", "Decisions"),
    "decisions.pass": ("通过", "Pass"),
    "decisions.deny": ("拒绝", "Deny"),
    "decisions.manual_pass": ("人工放行", "Manual pass"),
    "decisions.manual_deny": ("人工拒绝", "Manual deny"),
    "ledgers": ("台账", "Ledgers"),
    "ledgers.gates": ("已上报岗点", "Gates reporting"),
    "ledgers.missing": ("未上报岗点", "Gates missing"),
    "people": ("人员进出", "People"),
    "people.in": ("进入", "In"),
    "people.out": ("外出", "Out"),
    "fevers": ("发热", "Fevers"),
    "fevers.gate": ("闸口测温", "At the gate"),
    "fevers.returnee_checks": ("返回人员测温", "Returnee checks"),
    "returnees": ("返回人员", "Returnees"),
    "returnees.new": ("新登记", "New"),
    "returnees.observing": ("观察中", "Observing"),
    "returnees.cleared": ("已解除", "Cleared"),
    "returnees.escalated": ("已上报", "Escalated"),
    "returnees.transferred": ("已转运", "Transferred"),
    "quarantined_households": ("居家隔离户数", "Quarantined households"),
    "registrations": ("人工登记人数", "People registered by hand"),
    "vehicles": ("车辆", "Vehicles"),
    "vehicles.registrations": ("车辆登记", "Registrations"),
    "vehicles.occupants": ("随车人员", "Occupants"),
    "vehicles.unknown_plates": ("非本小区车牌", "Unknown plates"),
    "service_requests": ("上门服务", "Service requests"),
    "service_requests.opened": ("新提交", "Opened"),
    "service_requests.done": ("已完成", "Done"),
    "service_requests.open_at_end": ("日终未完成", "Open at the day's end"),
}


def labelled(rows: list[list[Any]], lang: str) -> list[list[Any]]:
    """``(category, item, value)`` rows with the category and item (and the scope) in
    ``lang`` appended: a key with no words is shown as it is."""
    tr, index = translator(lang), 0 if lang == "zh-CN" else 1

    def word(key: str, default: str) -> str:
        pair = LABELS.get(key)
        return pair[index] if pair else default

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
