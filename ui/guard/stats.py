"""Statistics of a day (``/guard/stats``) and its export as the office files it: the same
table as CSV (``/guard/export.csv``, UTF-8 with a BOM so Excel opens it) and as an Excel
workbook (``/guard/export.xlsx``: the day's figures, then the events). Local times, headers
and reasons in the guard's language, personal fields masked per role, no internal columns."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from kiosk import queries
from kiosk.days import DayNotBegun, day_bounds, refuse_unbegun
from ui import i18n
from ui.auth import Session
from ui.core_words import refusal_text
from ui.guard.deps import (
    Guard,
    GuardDep,
    PageSession,
    audited,
    note,
    room,
    served_while_stopping,
    wants_json,
)
from ui.guard.display import (
    events_csv,
    events_xlsx,
    export_table,
    fever_times,
    guard_decisions,
    report_summary,
    stats_cards,
    stats_charts,
)
from ui.guard.forms import BadInput
from ui.guard.forms import day as parse_day
from ui.report_words import as_of_line
from ui.views import gate_report

router = room("/guard/stats")

#: Bounded by ``parse_day`` (more than 10 characters is refused there, in the guard's words).
DAY = Query(None, description="The local day, YYYY-MM-DD (default: today).")


def day_of(text: str | None, g: Guard, request: Request) -> date:
    """The day asked for. A day out of range is refused in the guard's language: a JSON 400
    for a JSON caller; else ``BadInput``, which the console's routes answer with a page."""
    try:
        return parse_day(text, g.today())
    except BadInput as exc:
        if wants_json(request):
            raise HTTPException(400, exc.text(g.lang(request))) from None
        raise


def not_begun(g: Guard, request: Request, day: date, events: int) -> str | None:
    """Why ``day`` has no statistics, in the guard's language, when it has not begun and
    holds nothing (``kiosk.days.refuse_unbegun``: the one check of ``kiosk report`` and the
    community report; a year typed wrong is not a day of zeros); else None. A JSON caller
    gets a 400."""
    try:
        refuse_unbegun(day, g.today(), g.tz.key, events)
    except DayNotBegun as exc:
        text = refusal_text(g.lang(request), f"day {day}: {exc}")
        if wants_json(request):
            raise HTTPException(400, text) from None
        return text
    return None


def refused_not_begun(
    request: Request, session: Session, g: Guard, day: date, why: str
) -> Response:
    """A day not begun asked for: today's page, ``why`` above it, the day asked kept in the
    form (to correct, not retype): 400."""
    return day_page(request, session, g, g.today(), flash_err=why, status_code=400, shown=day)


def report_of(g: Guard, day: date) -> dict[str, Any]:
    """``day``'s report, stamped when it was made (``ui.views.gate_report``)."""
    return gate_report(g.core, day)


@router.get("/stats", response_class=HTMLResponse, include_in_schema=False)
def stats_page(
    request: Request, session: PageSession, g: GuardDep, day: str | None = DAY
) -> Response:
    try:
        when = day_of(day, g, request)
    except BadInput as exc:
        return refused_day(request, session, g, exc)
    report = report_of(g, when)
    if (why := not_begun(g, request, when, report["events"])) is not None:
        return refused_not_begun(request, session, g, when, why)
    return day_page(request, session, g, when, report)


def refused_day(request: Request, session: Session, g: Guard, problem: BadInput) -> Response:
    """A day the console cannot show (a link typed or edited by hand): today's page with the
    problem in the guard's language above it, never a JSON error inside the console."""
    text = problem.text(g.lang(request))
    return day_page(request, session, g, g.today(), flash_err=text, status_code=400)


def day_page(
    request: Request,
    session: Session,
    g: Guard,
    when: date,
    report: dict[str, Any] | None = None,
    *,
    shown: date | None = None,
    **ctx: Any,
) -> Response:
    """``when``'s statistics (``report``: read if not given); ``shown``: the day in the form
    (default ``when``)."""
    lang = g.lang(request)
    report = report_of(g, when) if report is None else report
    return g.render(
        request,
        "guard_stats.html",
        session,
        **ctx,
        day=(shown or when).isoformat(),
        report=report,
        as_of=as_of_line(report, lang),  # a day not over: its figures so far
        cards=stats_cards(report),
        fever_times=fever_times(report),
        overrides=guard_decisions(report, lang),  # the day report's card, from this report
        # People who went in and out (the office's ``people``), not events by direction:
        # a denied attempt is nobody through, and a deny the guard overrode is one person.
        directions={
            i18n.t(lang, f"dir.{d}"): n
            for d, n in ((report.get("community") or {}).get("people") or {}).items()
            if d in ("in", "out")
        },
        charts=stats_charts(report, lang, g.fever_c),
        # A purged day frozen in the zone the site had before (``kiosk.stats.frozen_report``).
        zone=None if report.get("timezone", g.tz.key) == g.tz.key else report["timezone"],
        # ... or under a name this system cannot load, shown under the site's zone.
        frozen_zone=report.get("frozen_timezone"),
    )


def export(request: Request, g: Guard, session: Session, day: str | None, fmt: str) -> Response:
    """The day's table (and, for Excel, the day's figures) as a download."""
    try:
        when = day_of(day, g, request)
    except BadInput as exc:
        return refused_day(request, session, g, exc)
    start, end = day_bounds(when, g.tz)
    try:
        rows = queries.event_rows_between(g.core.store, start, end)
    except queries.TooManyRows as many:  # never a file cut short, as if it were the day's all
        return refused_export(request, session, g, when, many)
    if (why := not_begun(g, request, when, len(rows))) is not None:
        return refused_not_begun(request, session, g, when, why)
    lang = g.lang(request)
    headers, table = export_table(rows, lang, g.tz, g.clear(session))
    note(request, day=when.isoformat(), rows=len(rows), format=fmt)
    if fmt == "xlsx":
        body: str | bytes = events_xlsx(
            headers, table, report_summary(report_of(g, when), lang), lang
        )
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        body, media = events_csv(headers, table), "text/csv; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{g.cfg.site.kiosk_id}-{when}.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


def refused_export(
    request: Request, session: Session, g: Guard, day: date, many: queries.TooManyRows
) -> Response:
    """A day with more events than an export holds (``queries.TooManyRows``): the day's page
    saying how many, 400 as the console's other refusals (a JSON caller: 400 ``{"detail":
    ...}``), no file."""
    text = i18n.t(g.lang(request), "export.too_many", n=many.count, limit=many.limit)
    if wants_json(request):
        raise HTTPException(400, text) from None
    return day_page(request, session, g, day, flash_err=text, status_code=400)


def _add_export(fmt: str) -> None:
    """The route ``/guard/export.<fmt>`` (named and audited ``export_<fmt>``)."""

    @router.get(f"/export.{fmt}", name=f"export_{fmt}", include_in_schema=False)
    @served_while_stopping
    @audited(f"export_{fmt}")
    def export_day(
        request: Request, session: PageSession, g: GuardDep, day: str | None = DAY
    ) -> Response:
        return export(request, g, session, day, fmt)


for _fmt in ("csv", "xlsx"):
    _add_export(_fmt)
